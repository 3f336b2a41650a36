"""flyteadmin-k8s: a Kubernetes-native Flyte control plane."""

import os

# gRPC's fork handlers make a child that is forked only to exec another program (subprocess
# with a preexec_fn, as the dev stack starts etcd, kube-apiserver, propeller, ...) abort before
# its exec now and then while gRPC threads are busy: about one start in four under load on this
# machine. Nothing here forks to go on using gRPC (API-server workers are spawned), so they are
# off. Read when grpc is first imported: every entry point imports this package before it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
