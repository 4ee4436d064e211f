#!/usr/bin/env bash
# Caption ingest: POST /api/v1/internal/captions as fast as wrk can (16 connections, one community, no
# WebSocket listeners), then checks every accepted caption was stored by the batching writer.
#   scripts/bench/captions_ingest.sh [seconds, default 15]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-15}
binary=.build/release/streamhub
[ -x "$binary" ] || swift build -c release --product streamhub
work=$(mktemp -d /tmp/streamhub-captions.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export STREAMHUB_DATA_DIR=$work STREAMHUB_PORT=$port STREAMHUB_GRPC_PORT=0 STREAMHUB_LOG_LEVEL=error
export STREAMHUB_SERVICE_KEYS=bench-service-key-0123456789 STREAMHUB_CAPTION_RETENTION=86400
community=$("$binary" overlay create bench | sed -n 's/.*community \([0-9]*\).*/\1/p' | head -1)
"$binary" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
export STREAMHUB_BENCH_COMMUNITY=$community STREAMHUB_BENCH_SERVICE_KEY=$STREAMHUB_SERVICE_KEYS
printf 'POST /api/v1/internal/captions  '
wrk -t2 -c16 -d"${duration}s" --latency -s scripts/bench/captions_ingest.lua "http://127.0.0.1:$port" | tee "$work/wrk.txt" | python3 scripts/bench/wrk_summary.py
sleep 1
stored=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^streamhub_captions_stored_total/ {s+=$2} END {print s+0}')
dropped=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^streamhub_captions_dropped_total/ {s+=$2} END {print s+0}')
echo "stored by the batching writer: $stored, dropped: $dropped"
