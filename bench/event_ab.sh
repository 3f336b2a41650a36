#!/bin/bash
# A/B of event ingestion between two checkouts of this project: bench.event_waves against a
# fresh anchor stack (../shared/anchor/project_start.sh) running checkout A, then B, ROUNDS
# times, alternating, so that the machine's drift hits both alike. Run from the project root
# (its .venv runs both: each checkout's code is put first on PYTHONPATH, through a folder that
# holds only its `flyteadmin` package, because a checkout's `operator/` folder would shadow the
# standard library's module). Prints the benchmark's last two lines per run. BENCH names another
# benchmark module with its options, e.g. BENCH="bench.registration_waves --count 2000", and
# TAIL how many of its last lines to print (2).
#
#     bash bench/event_ab.sh A_CHECKOUT B_CHECKOUT [ROUNDS=3] [WAVES=5]
#
# e.g. `git worktree add /tmp/base HEAD~1` and `bash bench/event_ab.sh /tmp/base . 3 5`.
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-3}; WAVES=${4:-5}
read -r -a BENCH <<< "${BENCH:-bench.event_waves --waves $WAVES}"
ANCHOR=${ANCHOR:-../shared/anchor}
export ANCHOR_RUN=${ANCHOR_RUN:-/tmp/event-ab-run}
PATHS=$(mktemp -d)
trap '"$ANCHOR/project_stop.sh" > /dev/null 2>&1 || true; rm -rf "$PATHS"' EXIT
mkdir -p "$PATHS/A" "$PATHS/B" "$ANCHOR_RUN"
ln -s "$A/flyteadmin" "$PATHS/A/flyteadmin"; ln -s "$B/flyteadmin" "$PATHS/B/flyteadmin"
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    PYTHONPATH="$PATHS/$side" "$ANCHOR/project_start.sh" > /dev/null
    echo "$side ($round): $(.venv/bin/python -m "${BENCH[@]}" | tail -"${TAIL:-2}" | tr '\n' ' ')"
    "$ANCHOR/project_stop.sh" > /dev/null 2>&1
    # The next stack binds the same ports: wait until this one's workers have let them go.
    while ss -ltnH "( sport = :${PROJ_GRPC_PORT:-38089} or sport = :${PROJ_HTTP_PORT:-38088} )" \
        | grep -q .; do sleep 1; done
    sleep 2
  done
done
