#!/usr/bin/env bash
# The README's main command (`make run`): the whole pipeline on this machine, no cloud account, no Docker.
# On a fresh clone it installs what it needs (virtualenvs, the Rust core, kinesalite; cached under
# ~/.cache/eventpipe, so later runs work offline), starts the local stack (`eventpipe up`), sends sample shop
# traffic, waits until it is committed to Iceberg and modelled by dbt + checked by GX, prints where to look,
# and keeps the stack running in the foreground until Ctrl-C.
#
# Usage: scripts/run.sh [--demo] [--events N] [--state-dir DIR]
#   --demo         stop the stack after the summary instead of staying in the foreground
#   --events N     sample events to send (default 5000)
#   --state-dir    the stack's state folder (default .eventpipe in the repository; a second run resumes it)
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

demo=0
events=5000
state="${EVENTPIPE_STATE_DIR:-$REPO_ROOT/.eventpipe}"
while [ $# -gt 0 ]; do
  case "$1" in
    --demo) demo=1 ;;
    --events) events="${2:?--events needs a number}"; shift ;;
    --state-dir) state="${2:?--state-dir needs a folder}"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log "installing (first run only): virtualenvs services + analytics + dashboard, the Rust core, kinesalite, Prometheus"
"$REPO_ROOT/scripts/venv.sh" services
"$REPO_ROOT/scripts/venv.sh" analytics
"$REPO_ROOT/scripts/tools.sh" node >/dev/null
# Monitoring is optional: without Prometheus (Debian's package, needs apt) or the dashboard's virtualenv the stack
# runs without them and says so.
"$REPO_ROOT/scripts/venv.sh" dashboard ||
  log "warning: could not build the dashboard's virtualenv; the stack runs without the dashboard"
"$REPO_ROOT/scripts/tools.sh" prometheus >/dev/null ||
  log "warning: could not install Prometheus (Debian's prometheus package); the stack runs without it"
# Data Docs CSS/JS for offline quality reports (cached once; without them the reports render unstyled).
"$VENVS_DIR/analytics/bin/python" -m eventpipe_quality vendor-assets >/dev/null ||
  log "warning: could not fetch the Data Docs assets; quality reports will render unstyled"

ep="$VENVS_DIR/services/bin/eventpipe"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

log "starting the stack (state: $state, logs: $state/logs)"
"$ep" up --state-dir "$state" &
up_pid=$!
stopped=0
stop_stack() {
  [ "$stopped" = 1 ] && return 0
  stopped=1
  if kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM "$up_pid" 2>/dev/null || true
    wait "$up_pid" || true
  fi
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

"$ep" wait --state-dir "$state" --timeout 180

log "sending $events sample events (2% re-sends, 1% invalid) and waiting until they are committed"
"$ep" send --state-dir "$state" --count "$events" --duplicates 0.02 --invalid 0.01 --rate 2000 --wait --timeout 300

log "waiting for dbt build + Great Expectations on the new snapshot"
"$ep" wait --state-dir "$state" --modelled --timeout 600

"$ep" status --state-dir "$state"
query="select event_type, count(*) as events, round(sum(amount), 2) as revenue from warehouse.marts.fact_events group by 1 order by 2 desc"
"$ep" query --state-dir "$state" "$query"

echo
"$ep" where --state-dir "$state"   # URLs, files and commands to try (eventpipe_cli.where; tested by tests/docs)

if [ "$demo" = 1 ]; then
  log "--demo: stopping the stack"
  stop_stack
  exit 0
fi
log "the stack keeps running; Ctrl-C stops it (a second run resumes from $state)"
wait "$up_pid"
