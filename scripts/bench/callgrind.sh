#!/usr/bin/env bash
# User-space instructions per delivered frame, counted by valgrind's callgrind (repeatable on a noisy
# machine, unlike wall time), for /events and overlay captions, for one or more builds.
#
# For a build and a channel it runs the server under callgrind with N WebSocket clients connected and
# publishes E events (one a second), with instrumentation on only while publishing (wsload toggles it around
# its publishing phase). Two figures per delivered frame:
#   broadcast  the inclusive count of the hub's per-loop delivery (WebSocketHub.deliver: the loop over the
#              clients, NIO's write and flush for each) divided by the frames delivered: what one more client
#              costs a broadcast;
#   whole      (everything counted with E events - everything with 1 event) / (N x (E - 1)): the broadcast
#              plus 1/N of the publish request plus the background work of E - 1 more seconds.
# The kernel's part of a frame (most of it, on loopback) is not counted: see cpu_per_frame.sh.
#
# valgrind 3.19 cannot read the DWARF of Swift 6 release builds and dies where Swift's async main parks the
# main thread; the script runs a copy without debug sections and preloads valgrind_dispatch_main.c.
#
# Usage: scripts/bench/callgrind.sh [--channels "events captions"] [--clients N] [--events E] [--keep DIR]
#                                   [BINARY=label …]     (default: this tree's release build)
#   e.g. scripts/bench/callgrind.sh /tmp/streamhub-before=before .build/release/streamhub=after
# --keep DIR keeps each run's callgrind.out (for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHANNELS="events captions"; CLIENTS=500; EVENTS=21; KEEP=""; BINARIES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --channels) CHANNELS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --keep) KEEP=$2; shift ;;
        *=*) BINARIES+=("$1") ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
if [ ${#BINARIES[@]} -eq 0 ]; then swift build -c release --product streamhub >&2; BINARIES=("$ROOT/.build/release/streamhub=streamhub"); fi
WORK=$(mktemp -d /tmp/streamhub-callgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[ -n "$KEEP" ] && mkdir -p "$KEEP"
cc -O2 -o "$WORK/wsload" scripts/bench/wsload.c -lm
SWIFT_LIB=$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux
cc -O2 -shared -fPIC -o "$WORK/shim.so" scripts/bench/valgrind_dispatch_main.c -L"$SWIFT_LIB" -Wl,-rpath,"$SWIFT_LIB" -ldispatch
KEY=bench-service-key-0123456789
. scripts/bench/channel.sh

run() {  # binary label channel events -> "instructions in all, in WebSocketHub.deliver, frames delivered" while publishing
    local bin=$1 label=$2 channel=$3 events=$4 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$WORK/data" "$WORK"/cg.out*
    channel_endpoints "$bin" "$channel" "$WORK/data" "$KEY"
    STREAMHUB_SERVICE_KEYS=$KEY STREAMHUB_LOG_LEVEL=error STREAMHUB_DATA_DIR="$WORK/data" STREAMHUB_WS_PING_INTERVAL=3600 \
        LD_PRELOAD="$WORK/shim.so" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
        "$bin" serve --port "$port" --grpc-port 0 >"$WORK/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.2; done
    # One event a second: slow enough that the instrumented server keeps up.
    "$WORK/wsload" --port "$port" --path "$SUB" --clients "$CLIENTS" --rate 1 --duration "$events" --connect-rate 200 \
        --pub-path "$PUB" --pub-header "X-Service-Key: $KEY" --pub-fields "$FIELDS" --label "$channel" \
        --on-publish-start "callgrind_control -i on $pid >/dev/null" --on-publish-end "callgrind_control -i off $pid >/dev/null" >"$WORK/load.json"
    kill -INT "$pid"; wait "$pid" || true
    python3 - "$WORK/load.json" >&2 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'  {r["label"]}: {r["connected"]} clients, {r["published"]} published, {r["received"]} of {r["expected"]} delivered, {r["lost"]} lost')
PY
    [ -n "$KEEP" ] && cp "$WORK/cg.out" "$KEEP/callgrind.out.$label.$channel.$events"
    local total deliver received
    total=$(sed -n 's/^totals: *//p' "$WORK/cg.out" | head -1)
    deliver=$(callgrind_annotate --inclusive=yes --threshold=100 "$WORK/cg.out" 2>/dev/null |
        awk '/WebSocketHubC7deliver/ { gsub(",", "", $1); print $1; exit }')
    received=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$WORK/load.json")
    echo "$total ${deliver:-0} $received"
}

echo "| build | channel | broadcast: instructions per delivered frame | whole: instructions per delivered frame | counted with $EVENTS events / with 1 ($CLIENTS clients) |"
echo "| --- | --- | --- | --- | --- |"
for entry in "${BINARIES[@]}"; do
    bin=${entry%%=*}; label=${entry#*=}
    # valgrind cannot read the debug sections of a Swift 6 release build: measure a stripped copy.
    cp "$bin" "$WORK/streamhub-$label"; strip --strip-debug "$WORK/streamhub-$label"
    for channel in $CHANNELS; do
        echo "==> $label $channel: $CLIENTS clients, $EVENTS events vs 1, under callgrind" >&2
        many=$(run "$WORK/streamhub-$label" "$label" "$channel" "$EVENTS")
        one=$(run "$WORK/streamhub-$label" "$label" "$channel" 1)
        python3 - "$many" "$one" "$CLIENTS" "$EVENTS" "$channel" "$label" <<'PY'
import sys
(many, deliver, received), (one, _, received_one) = (list(map(int, a.split())) for a in sys.argv[1:3])
clients, events, channel, label = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
print(f"| {label} | {channel} | {deliver / max(1, received):,.0f} | {(many - one) / max(1, received - received_one):,.0f} | {many:,} / {one:,} |")
PY
    done
done
