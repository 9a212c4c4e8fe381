#!/usr/bin/env bash
# Start the action server, the web service and Rasa; stop them all on Ctrl-C or when one fails.
# Called by `make run` after set-up and training (tests/browser/test_run_script.py starts it the
# same way, on free ports from RASA_PORT/ACTION_PORT/WEB_PORT and its own CARTGUARD_DATA_DIR).
#
# * Every process listens on CARTGUARD_HOST (default 127.0.0.1). For a deployment behind a
#   TLS-terminating proxy set CARTGUARD_HOST=0.0.0.0 and CARTGUARD_BEHIND_TLS_PROXY=1.
# * Secrets reach the processes through the environment only (exported from
#   `cartguard shell-env`), never on a command line that `ps` shows to every local user.
# * The browser origins Rasa accepts are one setting, CARTGUARD_ALLOWED_ORIGINS (default: the
#   printed URL, http://localhost:WEB_PORT and http://127.0.0.1:WEB_PORT); cartguard.rasa_main
#   passes them all after ONE --cors flag (Rasa keeps only the last --cors flag).
# * The console gets one line per step; library output goes to $CARTGUARD_DATA_DIR/logs/.
set -euo pipefail
# Logs, databases and files the processes create hold conversation data: owner-only.
umask 077
cd "$(dirname "$0")/.."
BIN=.venv/bin
export CARTGUARD_DATA_DIR=${CARTGUARD_DATA_DIR:-$PWD/var}
export RASA_PORT=${RASA_PORT:-5005} ACTION_PORT=${ACTION_PORT:-5055} WEB_PORT=${WEB_PORT:-8080}
export PAYMENT_PROVIDER_PORT=${PAYMENT_PROVIDER_PORT:-8090} SMTP_PORT=${SMTP_PORT:-8025}
MODEL=${CARTGUARD_MODEL:-models/cartguard.tar.gz}
LOGS="$CARTGUARD_DATA_DIR/logs"
mkdir -p "$LOGS"
set -a
eval "$($BIN/cartguard shell-env 2>>"$LOGS/setup.log")"
set +a
URL="${CARTGUARD_PUBLIC_WEB_URL:-http://localhost:$WEB_PORT}"
URL="${URL%/}/"
probe=${CARTGUARD_HOST:-127.0.0.1}
case "$probe" in 0.0.0.0 | "::" | "[::]") probe=127.0.0.1 ;; esac

pids=()
names=()
cleanup() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "==> stopping ${names[*]}"
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 20); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.5
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name, log file, command...
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

answers() { # url: an HTTP URL that answers 2xx, or smtp://host:port that accepts a connection
  case "$1" in
    smtp://*) local hostport=${1#smtp://}; (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null ;;
    *) curl -fsS -o /dev/null "$1" 2>/dev/null ;;
  esac
}

wait_for() { # name, url, seconds, log file
  local name=$1 url=$2 limit=$3 log=$4 waited=0
  printf "    %-17s" "$name"
  until answers "$url"; do
    for index in "${!pids[@]}"; do
      if ! kill -0 "${pids[$index]}" 2>/dev/null; then
        echo
        echo "!! the ${names[$index]} stopped while starting; last lines of its log:"
        tail -n 25 "${logs_of[$index]}" | sed 's/^/   | /'
        exit 1
      fi
    done
    sleep 1
    waited=$((waited + 1))
    if [ $((waited % 5)) = 0 ]; then printf "."; fi
    if [ "$waited" -ge "$limit" ]; then
      echo
      echo "!! the $name did not answer within ${limit} s; see $log"
      exit 1
    fi
  done
  echo " ready after ${waited} s"
}

if [ ! -f "$MODEL" ]; then
  echo "!! no trained model at $MODEL: run \`make train\` first"
  exit 1
fi

echo "==> starting the assistant on $probe (logs in $LOGS/)"
logs_of=("$LOGS/payment-provider.log" "$LOGS/mail-catcher.log" "$LOGS/actions.log"
  "$LOGS/web.log" "$LOGS/rasa.log")
# development stand-ins (loopback only): the card payment provider and an SMTP mail catcher
start "payment provider" "${logs_of[0]}" $BIN/python -m devtools.payment_provider
start "mail catcher" "${logs_of[1]}" $BIN/python -m devtools.mail_catcher
start "action server" "${logs_of[2]}" $BIN/python -m cartguard.action_server --port "$ACTION_PORT"
start "web service" "${logs_of[3]}" $BIN/python -m cartguard.webapp
start "Rasa" "${logs_of[4]}" \
  $BIN/python -m cartguard.rasa_main run --model "$MODEL" \
  --endpoints endpoints.yml --credentials credentials.yml --port "$RASA_PORT" --enable-api

wait_for "payment provider" "http://127.0.0.1:$PAYMENT_PROVIDER_PORT/healthz" 90 "${logs_of[0]}"
wait_for "mail catcher" "smtp://127.0.0.1:$SMTP_PORT" 90 "${logs_of[1]}"
wait_for "action server" "http://$probe:$ACTION_PORT/health" 90 "${logs_of[2]}"
wait_for "web service" "http://$probe:$WEB_PORT/healthz" 90 "${logs_of[3]}"
echo "    Rasa is loading the model (about a minute on 2 cores)"
wait_for "Rasa" "http://$probe:$RASA_PORT/" 300 "${logs_of[4]}"

rule="------------------------------------------------------------------------------"
echo
echo "$rule"
echo " Cartguard is running. Open:  $URL"
echo
$BIN/cartguard demo-info 2>>"$LOGS/setup.log" || echo " (demo logins are shown only with generated dev keys)"
echo
echo " Logs: $LOGS/    Stop: Ctrl-C"
echo "$rule"
# Stop everything as soon as one process ends (the others are of no use without it).
wait -n "${pids[@]}" || true
echo "!! a process stopped; see the logs in $LOGS/"
exit 1
