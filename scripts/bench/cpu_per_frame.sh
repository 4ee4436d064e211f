#!/usr/bin/env bash
# Server CPU per delivered frame, user and kernel apart, for /events and /ws/captions side by side.
#
# For each binary and channel: a fresh server, N WebSocket clients, R events/s for D seconds (wsload);
# the server's utime and stime are read from /proc just before and just after the publishing phase (wsload's
# hooks), and divided by the frames delivered. Each cell is the median of K runs.
#
# (callgrind.sh counts the user-space instructions of a frame, repeatably; this script gives the kernel's share.)
#
# Usage: scripts/bench/cpu_per_frame.sh [--clients N] [--rate R] [--duration D] [--runs K] [BINARY=label …]
#   e.g. scripts/bench/cpu_per_frame.sh /tmp/streamhub-before=before .build/release/streamhub=after nchan=nchan
# `nchan` as the binary measures nginx + nchan serving the same channel shape (its two workers' CPU summed).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=2000; RATE=10; DURATION=20; RUNS=3; BINARIES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        *=*) BINARIES+=("$1") ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ ${#BINARIES[@]} -eq 0 ]; then swift build -c release --product streamhub >&2; BINARIES=("$PWD/.build/release/streamhub=streamhub"); fi
WORK=$(mktemp -d /tmp/streamhub-cpu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/wsload" scripts/bench/wsload.c -lm
KEY=bench-service-key-0123456789
. scripts/bench/channel.sh
TICKS=$(getconf CLK_TCK)

one() {  # binary channel -> "user_us_per_frame kernel_us_per_frame lost"
    local bin=$1 channel=$2 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$WORK/data"
    local pids
    if [ "$bin" = nchan ]; then
        nchan_start "$WORK/nginx" "$port"
        SUB=/events; PUB=/pub; FIELDS=""
        for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
        pids=$(pgrep -f "nginx: worker process" | paste -sd' ' -)
    else
        channel_endpoints "$bin" "$channel" "$WORK/data" "$KEY"
        STREAMHUB_SERVICE_KEYS=$KEY STREAMHUB_LOG_LEVEL=error STREAMHUB_DATA_DIR="$WORK/data" \
            "$bin" serve --port "$port" --grpc-port 0 >"$WORK/server.log" 2>&1 &
        pids=$!
        for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.05; done
    fi
    # utime and stime of the server's processes, summed.
    local snap="cat $(printf '/proc/%s/stat ' $pids) | awk '{u += \$14; s += \$15} END {print u, s}'"
    "$WORK/wsload" --port "$port" --path "$SUB" --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" \
        --pub-path "$PUB" --pub-header "X-Service-Key: $KEY" --pub-fields "$FIELDS" --label "$channel" \
        --on-publish-start "$snap > $WORK/cpu.start" --on-publish-end "$snap > $WORK/cpu.end" >"$WORK/load.json"
    if [ "$bin" = nchan ]; then
        nchan_stop "$WORK/nginx"
    else
        kill "$pids"; wait "$pids" 2>/dev/null || true
    fi
    python3 - "$WORK/load.json" "$WORK/cpu.start" "$WORK/cpu.end" "$TICKS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
u0, s0 = map(int, open(sys.argv[2]).read().split()); u1, s1 = map(int, open(sys.argv[3]).read().split())
ticks = int(sys.argv[4]); frames = max(1, r["received"])
print(f'{(u1 - u0) / ticks * 1e6 / frames:.3f} {(s1 - s0) / ticks * 1e6 / frames:.3f} {r["lost"]}')
PY
}

echo "| build | channel | user µs / frame | kernel µs / frame | lost |"
echo "| --- | --- | --- | --- | --- |"
for entry in "${BINARIES[@]}"; do
    bin=${entry%%=*}; label=${entry#*=}
    for channel in events captions; do
        results=()
        for _ in $(seq 1 "$RUNS"); do results+=("$(one "$bin" "$channel")"); done
        printf '%s\n' "${results[@]}" >"$WORK/runs"
        python3 - "$WORK/runs" "$label" "$channel" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
user = statistics.median(r[0] for r in rows); kernel = statistics.median(r[1] for r in rows); lost = int(sum(r[2] for r in rows))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {user:.2f} | {kernel:.2f} | {lost} |")
PY
    done
done
