#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store's PostgreSQL tests and print its URL.
# Installs Debian's postgresql when it is missing (runs as root). Exits non-zero if it cannot
# install, start or reach it. Its files go to $BLITZ_PG_DIR (default: a new /tmp/blitz-pg.*);
# `postgres.sh --stop DIR` stops the server started there and removes DIR.
set -euo pipefail
if [ "${1:-}" = "--stop" ]; then
  dir=${2:?usage: postgres.sh --stop DIR}
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ -f "$dir/data/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -m immediate -w stop" >/dev/null
  fi
  rm -rf "$dir"
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
port=${BLITZ_PG_PORT:-$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
dir=${BLITZ_PG_DIR:-$(mktemp -d /tmp/blitz-pg.XXXXXX)}
mkdir -p "$dir"
chown postgres "$dir"
su postgres -s /bin/sh -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-k $dir -p $port -c listen_addresses=127.0.0.1' start" >/dev/null
su postgres -s /bin/sh -c "$bin/createdb -h 127.0.0.1 -p $port blitz_test"
# Reachable over TCP as the tests will reach it, or this fails here rather than in every test.
su postgres -s /bin/sh -c "$bin/psql -h 127.0.0.1 -p $port -d blitz_test -qAtc 'select 1'" >/dev/null
echo "postgresql+psycopg://postgres@127.0.0.1:$port/blitz_test"
