#!/usr/bin/env bash
# Registry benchmark: 5,000 streams; GET /api/v1/streams filtered and paginated under load (wrk), alone
# and while a writer keeps changing streams (so the list cache is invalidated all the time), and
# POST /api/v1/streams throughput; on SQLite and on PostgreSQL. Uses the release binary.
#
#   scripts/bench/registry.sh [seconds per run, default 20]
# Needs wrk (apt install wrk); PostgreSQL runs are skipped without PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-20}
binary=.build/release/streamhub
[ -x "$binary" ] || swift build -c release --product streamhub
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d /tmp/streamhub-bench.XXXXXX)
chmod 755 "$work"  # the postgres user runs the database server inside it
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    scripts/test-postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

summarise() { python3 scripts/bench/wrk_summary.py; }

run_backend() {
    local name=$1 url=$2
    local data="$work/$name" port
    port=$(free_port)
    mkdir -p "$data"
    # Status checks off: they would check 5,000 invented links with yt-dlp on the same cores; the writes
    # come from the writer below instead.
    export STREAMHUB_DATA_DIR=$data STREAMHUB_PORT=$port STREAMHUB_LOG_LEVEL=error STREAMHUB_WRITE_RATE_LIMIT=1000000 STREAMHUB_STATUS_CHECKS=false
    if [ -n "$url" ]; then export STREAMHUB_DATABASE_URL=$url; else unset STREAMHUB_DATABASE_URL; fi
    STREAMHUB_BENCH_KEY=$("$binary" apikey create --name bench --role admin 2>/dev/null)
    export STREAMHUB_BENCH_KEY
    "$binary" serve >"$data/server.log" 2>&1 &
    pids+=($!)
    local base="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -fs "$base/health" >/dev/null && break; sleep 0.1; done
    python3 scripts/bench/registry_seed.py "$base" "$STREAMHUB_BENCH_KEY" 5000 >/dev/null

    echo "== $name: 5,000 streams"
    wrk -t2 -c32 -d3s -s scripts/bench/registry_reads.lua "$base" >/dev/null  # warm-up, not measured
    # Reads alone, then while a writer changes streams 20 and 100 times a second (open-loop, keep-alive):
    # each at saturation (32 connections as fast as they can) and at an offered rate (the same 32
    # connections paced to offer about 5,500 or 3,300 requests a second), whose latency is the one a user sees.
    export STREAMHUB_BENCH_CONNECTIONS=32
    for case in "0 5500" "20 5500" "100 3300"; do
        set -- $case
        local writes=$1 offered=$2 writer=""
        for mode in saturated offered; do
            if [ "$writes" != 0 ]; then
                python3 scripts/bench/registry_writer.py "$base" "$STREAMHUB_BENCH_KEY" "$writes" "$duration" 5000 2>"$data/writer.txt" &
                writer=$!
            fi
            if [ "$mode" = offered ]; then export STREAMHUB_BENCH_RATE=$offered; label="offered ~$offered/s"; else unset STREAMHUB_BENCH_RATE; label="saturated"; fi
            printf '  GET  /streams, %3s writes/s, %-16s ' "$writes" "$label"
            wrk -t2 -c32 -d"${duration}s" --latency -s scripts/bench/registry_reads.lua "$base" | summarise
            if [ -n "$writer" ]; then wait "$writer" || true; printf '       (%s)\n' "$(cat "$data/writer.txt")"; fi
        done
    done
    unset STREAMHUB_BENCH_RATE
    printf '  POST /streams                        '
    wrk -t2 -c16 -d"${duration}s" --latency -s scripts/bench/registry_writes.lua "$base" | summarise
    kill "${pids[-1]}" 2>/dev/null || true
    wait "${pids[-1]}" 2>/dev/null || true
}

run_backend sqlite ""
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    admin=$(STREAMHUB_PG_DURABLE=1 scripts/test-postgres.sh start "$work/pg")
    run_backend postgres "${admin%/*}/postgres"
else
    echo "== postgres: skipped (no PostgreSQL server binaries)"
fi
