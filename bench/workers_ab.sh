#!/bin/bash
# The anchor's client (../shared/anchor/bench_admin.py) against `flyteadmin dev --workers W`
# for each W in WORKERS (default "1 2"), ROUNDS times (2), alternating, each on a fresh stack
# (the anchor's project_start.sh options, plus --workers). Run from the project root; results
# (one JSON per run) under OUT, then a table of every figure's rate per run. About 4 minutes a
# run on 2 cores. Figures only.
#
#     WORKERS="1 2" ROUNDS=2 OUT=/tmp/workers-ab bash bench/workers_ab.sh
set -euo pipefail
ANCHOR=${ANCHOR:-../shared/anchor}
WORKERS=${WORKERS:-1 2}; ROUNDS=${ROUNDS:-2}; OUT=${OUT:-/tmp/workers-ab}
export ANCHOR_RUN=${ANCHOR_RUN:-/tmp/workers-ab-run}
mkdir -p "$OUT" "$ANCHOR_RUN"
trap '"$ANCHOR/project_stop.sh" > /dev/null 2>&1 || true' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKERS; do
    D=$ANCHOR_RUN/dev; rm -rf "$D"; mkdir -p "$D"
    setsid nohup .venv/bin/flyteadmin --log-level WARNING dev --grpc-port 38089 --http-port 38088 \
      --data-dir "$D/data" --no-propeller --no-pod-runner --workers "$w" > "$D/dev.log" 2>&1 &
    PID=$!; echo $PID > "$ANCHOR_RUN/dev.pid"
    for _ in $(seq 1 600); do grep -qs "ready:" "$D/dev.log" && break; sleep 0.2; done
    grep -qs "ready:" "$D/dev.log" || { tail -20 "$D/dev.log"; exit 1; }
    sleep 5
    .venv/bin/python "$ANCHOR/bench_admin.py" --endpoint 127.0.0.1:38089 --project anchorb \
      --watch-tree "dev-tree=$PID" --json "$OUT/w$w-r$round.json" > "$OUT/w$w-r$round.out" 2>&1
    echo "workers $w, round $round: done (load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$ANCHOR/project_stop.sh" > /dev/null 2>&1
    while ss -ltnH "( sport = :38089 or sport = :38088 )" | grep -q .; do sleep 1; done
    sleep 3
  done
done
.venv/bin/python - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
runs = sorted(Path(sys.argv[1]).glob("w*-r*.json"))
rates: dict[str, dict[str, float]] = {}
for run in runs:
    for fig in json.loads(run.read_text())["figures"]:
        name = f"{fig['name']} ({fig['clients']} clients)"
        rates.setdefault(name, {})[run.stem] = fig.get("req_s") or fig.get("events_per_s") or 0
print("| figure | " + " | ".join(r.stem for r in runs) + " |")
print("|---|" + "---|" * len(runs))
for name, by_run in rates.items():
    print(f"| {name} | " + " | ".join(f"{by_run.get(r.stem, 0):,.0f}" for r in runs) + " |")
PYEOF
