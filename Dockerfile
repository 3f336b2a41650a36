# The flyteadmin image: `flyteadmin serve` and `flyteadmin operator`, as the Helm chart runs them
# (charts/flyteadmin). Build: docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) \
#   -t flyteadmin-k8s:<tag> .
#
# A second target, gcs-emulator, adds a GCS emulator for clusters without a real bucket
# (`make e2e-kind`, docs/e2e.md): docker build --target gcs-emulator ... It is the Python
# gcp-storage-emulator, not the dev stack's fake-gcs-server: signed URLs reach it both by the
# in-cluster Service name and through a port-forward, and fake-gcs-server serves signed-URL
# paths for one host name only.
FROM python:3.11-slim AS flyteadmin

# PYTHONSAFEPATH: never let the working directory shadow the standard library (the source tree
# has an operator/ folder); no bytecode writes on the chart's read-only root filesystem.
ENV PYTHONSAFEPATH=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY core core
COPY api_server api_server
COPY operator operator
# flyteadmin/core, api_server and operator are relative links to the folders above (README's
# layout); COPY keeps them as links, and pip's build follows them.
COPY flyteadmin flyteadmin
# The Go wrapper modules are package data (flyteadmin/gotools; only `flyteadmin dev` uses them).
COPY tools tools
# GetVersion (`flytectl version`) reports this commit and the build time (flyteadmin/buildinfo.py).
ARG GIT_COMMIT=unknown
# --build-arg EXTRAS=tracing adds OpenTelemetry export (config.tracing, docs/operations.md).
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}" && python -m flyteadmin.buildinfo --commit "$GIT_COMMIT" \
    && rm -rf /src

WORKDIR /
# The chart's pod security context runs as 65532 (non-root) with a read-only root filesystem
# and HOME=/tmp (an emptyDir).
USER 65532:65532
CMD ["flyteadmin", "--help"]


FROM flyteadmin AS gcs-emulator
USER root
RUN pip install gcp-storage-emulator==2026.7.19
USER 65532:65532
EXPOSE 9023
CMD ["gcp-storage-emulator", "start", "--host", "0.0.0.0", "--port", "9023", "--in-memory", \
     "--default-bucket", "flyteadmin"]
