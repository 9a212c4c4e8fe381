#!/usr/bin/env bash
# Make sure what the tests need outside Python is present: Debian's Chromium for the browser
# tests, and the local PostgreSQL / Redis / RabbitMQ used by the scale tests (started if stopped).
# Safe to run repeatedly; installs only what is missing (needs root for apt-get).
set -uo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the browser tests"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "!! could not install chromium; browser tests will fail"
  else
    echo "!! chromium is missing: install it (apt-get install chromium) for the browser tests"
  fi
fi

if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's haproxy (load-balancer tests, deploy checks)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; } \
      || echo "!! could not install haproxy; load-balancer tests will fail"
  else
    echo "!! haproxy is missing: install it (apt-get install haproxy) for the load-balancer tests"
  fi
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! port_open 6379 && command -v redis-server >/dev/null 2>&1; then
  echo "==> starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi
if ! port_open 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
  echo "==> starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do port_open 5672 && break; sleep 1; done
fi
exit 0
