#!/usr/bin/env bash
# flyteconsole's page checks (../shared/console/visit.py) against stock flyteadmin v1.16.8 +
# PostgreSQL (the anchor, ../shared/anchor), to tell the console's own behaviour from ours
# (docs/console.md, decision 88). Run from the project root, after the anchor is built:
#
#   PW_PY=/tmp/playwright-venv/bin/python bash tools/console/against_anchor.sh
#
# Starts `flyteadmin dev` without propeller (flyteadmin's execution cluster: nothing runs, so
# the execution pages cannot pass), Postgres and flyteadmin with CORS for the console's origin,
# registers ../shared/console/flyteproj with `--copy none` (flyteadmin's local storage signs no
# upload URLs), creates two executions, serves the console on 28090 and visits its pages.
# Stops everything it started on exit.
set -u
ROOT=$(pwd)
SHARED=${SHARED:-$ROOT/../shared}
export ANCHOR_RUN=${ANCHOR_RUN:-/tmp/console-anchor-run}
VENV=$ROOT/.venv
PW_PY=${PW_PY:-/tmp/playwright-venv/bin/python}
WORK=$(mktemp -d /tmp/console-anchor.XXXXXX)
CONSOLE_PID=""
cleanup() {
  [ -n "$CONSOLE_PID" ] && kill -TERM -- "-$CONSOLE_PID" 2>/dev/null
  bash "$SHARED/anchor/admin_stop.sh" >/dev/null 2>&1
  bash "$SHARED/anchor/pg_stop.sh" >/dev/null 2>&1
  bash "$SHARED/anchor/project_stop.sh" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$ANCHOR_RUN"

read -r _ KC < <(PROJ_GRPC_PORT=38589 PROJ_HTTP_PORT=38588 bash "$SHARED/anchor/project_start.sh" | tail -1)
bash "$SHARED/anchor/pg_start.sh" >/dev/null
# The anchor's start script with CORS on for the console's origin (the browser calls the admin).
sed -e "s|^HERE=.*|HERE=$SHARED/anchor|" \
    -e 's|allowCors: false|allowCors: true\n    allowedOrigins: ["http://127.0.0.1:28090"]\n    allowedHeaders: ["Content-Type", "flyte-authorization"]|' \
    "$SHARED/anchor/admin_start.sh" > "$WORK/admin_start.sh"
bash "$WORK/admin_start.sh" "$KC" >/dev/null || { echo "FAIL setup: flyteadmin"; exit 1; }
printf 'admin:\n  endpoint: dns:///127.0.0.1:%s\n  insecure: true\n' "${ADMIN_GRPC_PORT:-38189}" > "$WORK/flyte.yaml"

PYTHONSAFEPATH=1 "$VENV/bin/python" - "$WORK/flyte.yaml" <<'PY'
import sys
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
from flytekit.models.project import Project
remote = FlyteRemote(Config.auto(sys.argv[1]))
remote.client.register_project(Project("flytesnacks", "flytesnacks", "the console check"))
PY
(cd "$SHARED/console/flyteproj" && "$VENV/bin/pyflyte" -c "$WORK/flyte.yaml" register \
  --project flytesnacks --domain development --version v1 --copy none --image python:3.11 \
  consoleproj) > "$WORK/register.log" 2>&1 || { tail -20 "$WORK/register.log"; exit 1; }
EXEC_ID=$(PYTHONSAFEPATH=1 "$VENV/bin/python" - "$WORK/flyte.yaml" <<'PY'
import sys
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
r = FlyteRemote(Config.auto(sys.argv[1]), default_project="flytesnacks", default_domain="development")
ex = r.execute(r.fetch_launch_plan(name="consoleproj.wf.pipeline", version="v1"), inputs={"a": 3, "b": 4})
r.execute(r.fetch_launch_plan(name="consoleproj.wf.pipeline_fixed", version="v1"), inputs={"b": 2})
print(ex.id.name)
PY
)
(cd "$SHARED/console/dist" && exec setsid env NODE_ENV=production BASE_URL=/console PORT=28090 \
  ADMIN_API_URL=http://127.0.0.1:${ADMIN_HTTP_PORT:-38188} node server.js) > "$WORK/console.log" 2>&1 &
CONSOLE_PID=$!
for _ in $(seq 1 30); do
  curl -fsS -o /dev/null http://127.0.0.1:28090/console/select-project 2>/dev/null && break
  sleep 1
done
mkdir -p "$WORK/shots"
"$PW_PY" "$SHARED/console/visit.py" http://127.0.0.1:28090 "http://127.0.0.1:${ADMIN_HTTP_PORT:-38188}" \
  "$EXEC_ID" "$WORK/shots" "${REPORT:-$WORK/report.json}"
