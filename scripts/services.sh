#!/usr/bin/env bash
# Start the PostgreSQL and Redis servers the test suite talks to, where they are installed and not running.
# Safe to run again: a running service is left alone.
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  fi
fi

ok=0
pg_up || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432 (database 'test' is needed)" >&2; ok=1; }
redis_up || { echo "services: Redis is not reachable on 127.0.0.1:6379" >&2; ok=1; }
if pg_up && ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  echo "services: creating database 'test'"
  createdb -h 127.0.0.1 -U postgres test || ok=1
fi
exit $ok
