#!/usr/bin/env bash
# What the test suite needs besides the virtualenv, started or installed if absent, so that
# `make test` passes by itself on a fresh machine of this kind (the tests never skip):
# the local PostgreSQL server, RabbitMQ (the Celery test) and Debian's Chromium (the UI test;
# Playwright cannot download a browser of its own here).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! port_open 5672; then
  echo "test-services: starting RabbitMQ"
  service rabbitmq-server start
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "test-services: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
for port in 5432 5672; do
  for _ in $(seq 30); do port_open "$port" && break; sleep 1; done
  port_open "$port" || { echo "test-services: nothing listens on 127.0.0.1:$port" >&2; exit 1; }
done
