#!/bin/bash
# The product's side of the anchor benchmark (../shared/anchor/bench_admin.py against a fresh
# `flyteadmin dev`, as ../shared/anchor/run_all.sh runs it), followed on the same stack by
# bench.apiserver_ceiling: kube-apiserver's own rate for copies of the objects the product just
# wrote. Run from the project root, after run_all.sh, on a quiet machine:
#
#     bash bench/anchor_ceiling.sh [OUT_DIR]
#
# OUT_DIR (default /tmp/anchor-ceiling/<stamp>) gets B.json/B.out (bench_admin) and
# ceiling.json/ceiling.out.
set -euo pipefail
ANCHOR=${ANCHOR:-../shared/anchor}
OUT=${1:-/tmp/anchor-ceiling/$(date +%Y%m%d-%H%M%S)}
export ANCHOR_RUN=${ANCHOR_RUN:-/tmp/anchor-ceiling-run}
mkdir -p "$OUT" "$ANCHOR_RUN"
trap '"$ANCHOR/project_stop.sh" > /dev/null 2>&1 || true' EXIT
read -r DEVPID KC < <("$ANCHOR/project_start.sh")
by_cmdline() { pgrep -f "$1.*$ANCHOR_RUN" | head -1; }
APIPID=$(by_cmdline kube-apiserver); ETCDPID=$(by_cmdline /etcd)
echo "load before: $(cat /proc/loadavg)" | tee "$OUT/load.txt"
.venv/bin/python "$ANCHOR/bench_admin.py" --endpoint "127.0.0.1:${PROJ_GRPC_PORT:-38089}" \
  --project anchorb --label "project + ceiling" --watch "kube-apiserver=$APIPID" \
  --watch "etcd=$ETCDPID" --watch-tree "dev-tree=$DEVPID" --json "$OUT/B.json" > "$OUT/B.out"
sleep 20  # the operator's trailing work (namespaces, launches) settles
.venv/bin/python -m bench.apiserver_ceiling --kubeconfig "$KC" --apiserver-pid "$APIPID" \
  --etcd-pid "$ETCDPID" --json "$OUT/ceiling.json" | tee "$OUT/ceiling.out"
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT/load.txt"
echo "results: $OUT"
