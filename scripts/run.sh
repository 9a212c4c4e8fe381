#!/usr/bin/env bash
# Start the action server, the web service and Rasa on localhost; stop all three on Ctrl-C.
# Called by `make run` after set-up and training. Logs go to $CARTGUARD_DATA_DIR/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
set -a; eval "$($BIN/cartguard shell-env)"; set +a
RASA_PORT=${RASA_PORT:-5005}; ACTION_PORT=${ACTION_PORT:-5055}; WEB_PORT=${WEB_PORT:-8080}
LOGS="$CARTGUARD_DATA_DIR/logs"; mkdir -p "$LOGS"
pids=()
cleanup() { echo; echo "==> stopping"; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

start() { # name, log file, command...
  local name=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  echo "==> started $name (pid $!, log $log)"
}

wait_for() { # name, url, seconds
  local name=$1 url=$2 limit=$3 waited=0
  printf "==> waiting for %s" "$name"
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    for pid in "${pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo; echo "!! a process exited early; last lines of the logs:"; tail -n 20 "$LOGS"/*.log; exit 1
      fi
    done
    sleep 2; waited=$((waited + 2)); printf "."
    if [ "$waited" -ge "$limit" ]; then echo; echo "!! $name did not start in ${limit}s, see $LOGS"; exit 1; fi
  done
  echo " up after ${waited}s"
}

start "action server" "$LOGS/actions.log" $BIN/python -m cartguard.action_server --port "$ACTION_PORT"
start "web service" "$LOGS/web.log" $BIN/python -m cartguard.webapp
start "Rasa (loading the model takes about a minute)" "$LOGS/rasa.log" \
  $BIN/python -m cartguard.rasa_main run --model models/cartguard.tar.gz \
  --endpoints endpoints.yml --credentials credentials.yml --port "$RASA_PORT" \
  --enable-api --jwt-secret="$CARTGUARD_RASA_JWT_SECRET" --jwt-method HS256 \
  --cors "http://localhost:$WEB_PORT" --cors "http://127.0.0.1:$WEB_PORT"

wait_for "action server" "http://127.0.0.1:$ACTION_PORT/health" 60
wait_for "web service" "http://127.0.0.1:$WEB_PORT/healthz" 60
wait_for "Rasa" "http://127.0.0.1:$RASA_PORT/" 240

echo
echo "======================================================================"
echo " Cartguard is running. Open:  http://localhost:$WEB_PORT/"
echo
$BIN/cartguard demo-info || true
echo " Stop with Ctrl-C. Logs: $LOGS"
echo "======================================================================"
wait
