#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server for tests.
#   scripts/test-postgres.sh start DIR   -> prints the admin URL; the server lives in DIR
#   scripts/test-postgres.sh stop DIR
# initdb and pg_ctl refuse to run as root, so as root they run as the postgres user.
set -euo pipefail

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] && command -v pg_ctl >/dev/null; then bin=$(dirname "$(command -v pg_ctl)"); fi
    [ -n "$bin" ] || { echo "PostgreSQL server binaries not found" >&2; exit 3; }
    echo "$bin"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd=${1:?start|stop}
dir=${2:?directory}
bin=$(pg_bin)
case "$cmd" in
    start)
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres "$dir"
        as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
        port=$(free_port)
        # Tests trade durability for speed; benchmarks (STREAMHUB_PG_DURABLE=1) keep PostgreSQL's defaults.
        fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        [ "${STREAMHUB_PG_DURABLE:-0}" = 1 ] && fast=""
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $fast -c max_connections=400" \
            start >/dev/null
        echo "$port" >"$dir/port"
        echo "postgres://postgres@127.0.0.1:$port/postgres"
        ;;
    stop)
        [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        ;;
    restart-server)
        # Stops and starts the server on the same port (used to prove /health recovers).
        port=$(cat "$dir/port")
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
        ;;
    *)
        echo "usage: $0 start|stop|restart-server DIR" >&2; exit 2 ;;
esac
