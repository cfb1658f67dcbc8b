#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store's PostgreSQL tests and print its URL.
# Installs Debian's postgresql when it is missing (CI runs as root). Exits non-zero if it cannot.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
port=${BLITZ_PG_PORT:-$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
dir=$(mktemp -d /tmp/blitz-pg.XXXXXX)
chown postgres "$dir"
su postgres -s /bin/sh -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-k $dir -p $port -c listen_addresses=127.0.0.1' start" >/dev/null
su postgres -s /bin/sh -c "$bin/createdb -h 127.0.0.1 -p $port blitz_test"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/blitz_test"
