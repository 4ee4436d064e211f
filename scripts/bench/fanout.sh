#!/usr/bin/env bash
# Fan-out benchmark: StreamHub vs the Python seed design (vs nginx + nchan), same load generator, same
# machine, one run. Two channels:
#   --channel events    WS /events, published by POST /api/v1/events; peers: seed_events_server.py, nchan
#   --channel captions  WS /ws/captions/{community}?key=, captions POSTed to /api/v1/internal/captions;
#                       peer: seed_captions_server.py (the browser-source seed's design)
#
# For each server it finds the largest number of WebSocket clients that still get 10 events/s with
# p99 delivery latency under 50 ms and no loss (a ladder of client counts, then one bisection step),
# and measures 19,000 clients at 1 event/s. Each measurement starts a fresh server; memory per idle
# connection is (server RSS with N idle clients - RSS before) / N.
#
# Usage: scripts/bench/fanout.sh [--channel events|captions] [--quick] [--servers "streamhub python nchan"]
#                               [--duration S] [--ladder "1000 2000 ..."]
# Server kinds: streamhub (this tree's release build), streamhub-before (the binary in $BEFORE_BINARY, e.g.
# an older commit's release build, for before/after in one run), python (the seed design), nchan.
# Writes a Markdown table to stdout and raw JSON lines to $OUT (default /tmp/streamhub-fanout.jsonl).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHANNEL=events
SERVERS=""
DURATION=15
LADDER="1000 2000 3000 4000 5000 6000 7000 8000 10000 12000 14000 16000 19000"
BIG=19000
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) LADDER="1000 4000"; BIG=4000; DURATION=5 ;;
        --servers) SERVERS=$2; shift ;;
        --channel) CHANNEL=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --ladder) LADDER=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$CHANNEL" in
    events) SERVERS=${SERVERS:-"streamhub python nchan"} ;;
    captions) SERVERS=${SERVERS:-"streamhub python nchan"}
        # The seed's caption design holds far fewer clients: start the ladder lower so it gets a figure.
        [ "$LADDER" = "1000 2000 3000 4000 5000 6000 7000 8000 10000 12000 14000 16000 19000" ] &&
            LADDER="250 500 1000 1500 2000 2500 3000 3500 4000 4500 5000 6000 7000 8000 10000 12000 14000 16000 19000" ;;
    *) echo "unknown channel $CHANNEL (events or captions)" >&2; exit 2 ;;
esac
OUT=${OUT:-/tmp/streamhub-fanout-$CHANNEL.jsonl}
: >"$OUT"
WORK=$(mktemp -d /tmp/streamhub-bench.XXXXXX)
KEY=bench-service-key-0123456789
. scripts/bench/channel.sh

echo "==> preparing (release build, load generator, peers)" >&2
if ! [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null
fi
python3 -c 'import uvicorn, starlette, websockets' 2>/dev/null || python3 -m pip install -q uvicorn starlette websockets
swift build -c release --product streamhub >&2
cc -O2 -o "$WORK/wsload" scripts/bench/wsload.c -lm

SERVER_PIDS=""
start_server() {  # kind port -> sets SERVER_PIDS, PUB_PATH, PUB_HEADER, PUB_FIELDS, SUB_PATH
    local kind=$1 port=$2
    PUB_FIELDS=""
    local bin="$ROOT/.build/release/streamhub"
    [ "$kind" = streamhub-before ] && bin=${BEFORE_BINARY:?set BEFORE_BINARY to the binary to compare with}
    case "$CHANNEL:$kind" in
        captions:streamhub* | events:streamhub*)
            rm -rf "$WORK/data"
            # /events clients sign in with the service key (a speech consumer); older builds ignore it.
            channel_endpoints "$bin" "$CHANNEL" "$WORK/data" "$KEY"
            STREAMHUB_SERVICE_KEYS=$KEY STREAMHUB_LOG_LEVEL=warning STREAMHUB_DATA_DIR="$WORK/data" \
                "$bin" serve --port "$port" --grpc-port 0 >"$WORK/streamhub.log" 2>&1 &
            SERVER_PIDS=$!
            PUB_PATH=$PUB; PUB_HEADER="X-Service-Key: $KEY"; PUB_FIELDS=$FIELDS; SUB_PATH=$SUB ;;
        captions:python)
            rm -f "$WORK"/seed-captions.db*
            local key
            key=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
            python3 scripts/bench/seed_captions_server.py "$port" "$WORK/seed-captions.db" "$KEY" 1 "$key" >"$WORK/python.log" 2>&1 &
            SERVER_PIDS=$!
            PUB_PATH=/api/v1/internal/captions; PUB_HEADER="X-Service-Key: $KEY"; PUB_FIELDS='"community_id":1,'
            SUB_PATH="/ws/captions/1?key=$key" ;;
        events:python)
            python3 scripts/bench/seed_events_server.py "$port" >"$WORK/python.log" 2>&1 &
            SERVER_PIDS=$!
            PUB_PATH=/publish; PUB_HEADER=""; SUB_PATH=/events ;;
        *:nchan)
            nchan_start "$WORK/nginx" "$port"
            PUB_PATH=/pub; PUB_HEADER=""; SUB_PATH=/events ;;
    esac
    for _ in $(seq 1 200); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
        sleep 0.05
    done
    if [ "$kind" = nchan ]; then
        SERVER_PIDS=$(pgrep -f "nginx: worker process" | paste -sd, -)
    fi
}

stop_server() {
    local kind=$1
    if [ "$kind" = nchan ]; then
        nchan_stop "$WORK/nginx"
    else
        kill "$SERVER_PIDS" 2>/dev/null || true
        wait "$SERVER_PIDS" 2>/dev/null || true
    fi
    sleep 1  # let the kernel release the sockets of the previous run
}

measure() {  # kind clients rate -> JSON line
    local kind=$1 clients=$2 rate=$3 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    start_server "$kind" "$port"
    local line
    line=$("$WORK/wsload" --port "$port" --path "$SUB_PATH" --clients "$clients" --rate "$rate" --duration "$DURATION" \
        --pub-path "$PUB_PATH" --pub-header "$PUB_HEADER" --pub-fields "$PUB_FIELDS" --server-pids "$SERVER_PIDS" --label "$kind")
    stop_server "$kind"
    echo "$line" >>"$OUT"
    echo "$line" >&2
    echo "$line"
}

passes() {  # JSON line -> 0 when p99 < 50 ms, nothing lost and every client stayed
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["connected"]==r["clients"] and r["lost"]==0 and r["disconnected_during_run"]==0 and 0<=r["p99_ms"]<50 else 1)' "$1"
}

declare -A BEST BEST_LINE BIG_LINE
for kind in $SERVERS; do
    echo "==> $kind" >&2
    best=0; best_line=""; failed_at=0
    for n in $LADDER; do
        line=$(measure "$kind" "$n" 10)
        if passes "$line"; then best=$n; best_line=$line; else failed_at=$n; break; fi
    done
    if [ "$failed_at" -gt 0 ] && [ "$best" -gt 0 ]; then
        mid=$(( (best + failed_at) / 2 / 500 * 500 ))
        if [ "$mid" -gt "$best" ] && [ "$mid" -lt "$failed_at" ]; then
            line=$(measure "$kind" "$mid" 10)
            if passes "$line"; then best=$mid; best_line=$line; fi
        fi
    fi
    BEST[$kind]=$best; BEST_LINE[$kind]=$best_line
    BIG_LINE[$kind]=$(measure "$kind" "$BIG" 1)
done

python3 - "$OUT" "$BIG" "$CHANNEL" $SERVERS <<'PY'
import json, sys
path, big, channel, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print(f"channel: {channel}\n")
rows = [json.loads(l) for l in open(path) if l.strip()]
def ok(r): return r["connected"] == r["clients"] and r["lost"] == 0 and r["disconnected_during_run"] == 0 and 0 <= r["p99_ms"] < 50
best = {}
for k in kinds:
    passing = [r for r in rows if r["label"] == k and r["rate"] == 10 and ok(r)]
    best[k] = max(passing, key=lambda r: r["clients"]) if passing else None
print("| server | largest N at 10/s with p99 < 50 ms | p50 / p99 / max ms there | %d clients at 1/s: p50 / p99 / max ms | lost | KiB per idle connection |" % big)
print("| --- | --- | --- | --- | --- | --- |")
for k in kinds:
    b = best[k]
    g = [r for r in rows if r["label"] == k and r["rate"] == 1 and r["clients"] == big]
    g = g[-1] if g else None
    bs = f'{b["clients"]:,}' if b else "none"
    bl = f'{b["p50_ms"]:.1f} / {b["p99_ms"]:.1f} / {b["max_ms"]:.1f}' if b else "-"
    gl = f'{g["p50_ms"]:.1f} / {g["p99_ms"]:.1f} / {g["max_ms"]:.1f} ({g["connected"]:,} connected)' if g else "-"
    lost = f'{g["lost"]:,} of {g["expected"]:,}' if g else "-"
    mem = f'{g["rss_per_idle_conn_kb"]:.1f}' if g else "-"
    print(f"| {k} | {bs} | {bl} | {gl} | {lost} | {mem} |")
if best.get("streamhub") and best.get("nchan"):
    print(f'\nStreamHub / nchan clients at 10/s: {best["streamhub"]["clients"] / best["nchan"]["clients"]:.2f}x')
if best.get("streamhub") and best.get("streamhub-before"):
    print(f'StreamHub / StreamHub before clients at 10/s: {best["streamhub"]["clients"] / best["streamhub-before"]["clients"]:.2f}x')
if best.get("streamhub") and best.get("python"):
    print(f'StreamHub / Python seed clients at 10/s: {best["streamhub"]["clients"] / best["python"]["clients"]:.2f}x')
PY
rm -rf "$WORK"
