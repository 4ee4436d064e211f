#!/usr/bin/env bash
# User-space instructions per delivered frame, counted by valgrind's callgrind (repeatable on a noisy
# machine, unlike wall time). For a channel it runs the server under callgrind twice with N WebSocket
# clients connected: once publishing E events, once publishing 1, with instrumentation on only while
# publishing (wsload toggles it). The difference, divided by N x (E - 1), is what one more frame to one
# more client costs the server: the broadcast itself plus its share of the publish request.
#
# Usage: scripts/bench/callgrind.sh [--channel events|captions] [--binary PATH] [--clients N] [--events E]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHANNEL=events; BINARY=""; CLIENTS=200; EVENTS=100
while [ $# -gt 0 ]; do
    case "$1" in
        --channel) CHANNEL=$2; shift ;;
        --binary) BINARY=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
if [ -z "$BINARY" ]; then swift build -c release --product streamhub >&2; BINARY=$ROOT/.build/release/streamhub; fi
WORK=$(mktemp -d /tmp/streamhub-callgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -o "$WORK/wsload" scripts/bench/wsload.c -lm
KEY=bench-service-key-0123456789

run() {  # events -> total instructions while publishing
    local events=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$WORK/data" "$WORK"/cg.out*
    local sub fields="" pub
    if [ "$CHANNEL" = captions ]; then
        local created community key
        created=$(STREAMHUB_DATA_DIR="$WORK/data" STREAMHUB_LOG_LEVEL=error "$BINARY" overlay create bench)
        community=$(sed -n 's/.*community \([0-9]*\).*/\1/p' <<<"$created" | head -1)
        key=$(sed -n 's/.*overlay key \([0-9a-f]*\).*/\1/p' <<<"$created" | head -1)
        sub="/ws/captions/$community?key=$key"; pub=/api/v1/internal/captions; fields="\"community_id\":$community,"
    else
        sub="/events?types=transcription&key=$KEY"; pub=/api/v1/events
    fi
    STREAMHUB_SERVICE_KEYS=$KEY STREAMHUB_LOG_LEVEL=error STREAMHUB_DATA_DIR="$WORK/data" STREAMHUB_WS_PING_INTERVAL=3600 \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
        "$BINARY" serve --port "$port" --grpc-port 0 >"$WORK/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.2; done
    # One event a second for `events` seconds: slow enough that the instrumented server keeps up.
    "$WORK/wsload" --port "$port" --path "$sub" --clients "$CLIENTS" --rate 1 --duration "$events" --connect-rate 200 \
        --pub-path "$pub" --pub-header "X-Service-Key: $KEY" --pub-fields "$fields" --label "$CHANNEL" \
        --on-publish-start "callgrind_control -i on $pid >/dev/null" --on-publish-end "callgrind_control -i off $pid >/dev/null" >"$WORK/load.json"
    kill -INT "$pid"; wait "$pid" || true
    python3 - "$WORK/load.json" >&2 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'  {r["label"]}: {r["connected"]} clients, {r["published"]} published, {r["received"]} of {r["expected"]} delivered')
PY
    callgrind_annotate "$WORK/cg.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,
}

echo "==> $CHANNEL: $CLIENTS clients, $EVENTS events vs 1 event, under callgrind ($BINARY)" >&2
many=$(run "$EVENTS")
one=$(run 1)
python3 - "$many" "$one" "$CLIENTS" "$EVENTS" "$CHANNEL" <<'PY'
import sys
many, one, clients, events, channel = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
frames = clients * (events - 1)
print(f"{channel}: {(many - one) / frames:,.0f} user-space instructions per delivered frame "
      f"({many:,} with {events} events, {one:,} with 1; {clients} clients)")
PY
