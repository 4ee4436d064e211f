#!/usr/bin/env bash
# Fan-out benchmark: StreamHub vs the Python seed design (vs nginx + nchan), same load generator, same
# machine, one run. Two channels:
#   --channel events    WS /events, published by POST /api/v1/events; peers: seed_events_server.py, nchan
#   --channel captions  WS /ws/captions/{community}?key=, captions POSTed to /api/v1/internal/captions;
#                       peer: seed_captions_server.py (the browser-source seed's design)
#
# For each server it finds the largest number of WebSocket clients that still get 10 events/s with
# p99 delivery latency under 50 ms, no loss and every client in the same order (a ladder of client counts, then one bisection step),
# and measures 19,000 clients at 1 event/s. Each measurement starts a fresh server; memory per idle
# connection is (server RSS with N idle clients - RSS before) / N.
#
# The servers are measured side by side: at each point of the ladder every server still in the race runs,
# one after the other, `--repeat K` times over (interleaved, so a slow minute of the machine falls on all of
# them); a point passes on the median p99 of its K runs, with no loss and no disconnect in any of them.
#
# Usage: scripts/bench/fanout.sh [--channel events|captions|both] [--quick] [--servers "streamhub python nchan"]
#                               [--duration S] [--ladder "1000 2000 ..."] [--repeat K]
# Server kinds: streamhub (this tree's release build), streamhub-before (the binary in $BEFORE_BINARY, e.g.
# an older commit's release build, for before/after in one run), python (the seed design), nchan. A kind may
# name its channel, `streamhub@captions`: `--channel both` races StreamHub's two channels and nchan in one run.
# Writes a Markdown table to stdout and raw JSON lines to $OUT (default /tmp/streamhub-fanout.jsonl).
set -euo pipefail
# The whole script is one block, read before it runs: editing the file during a run cannot change the run.
{
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHANNEL=events
SERVERS=""
DURATION=15
LADDER="1000 2000 3000 4000 5000 6000 7000 8000 10000 12000 14000 16000 19000"
BIG=19000
REPEAT=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) LADDER="1000 4000"; BIG=4000; DURATION=5 ;;
        --servers) SERVERS=$2; shift ;;
        --channel) CHANNEL=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --ladder) LADDER=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
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
    both) SERVERS=${SERVERS:-"streamhub@captions streamhub@events nchan"} ;;
    *) echo "unknown channel $CHANNEL (events, captions or both)" >&2; exit 2 ;;
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
start_server() {  # kind[@channel] port -> sets SERVER_PIDS, PUB_PATH, PUB_HEADER, PUB_FIELDS, SUB_PATH
    local kind=${1%@*} port=$2 channel=$CHANNEL
    [ "$1" != "$kind" ] && channel=${1#*@}
    PUB_FIELDS=""
    local bin="$ROOT/.build/release/streamhub"
    [ "$kind" = streamhub-before ] && bin=${BEFORE_BINARY:?set BEFORE_BINARY to the binary to compare with}
    case "$channel:$kind" in
        captions:streamhub* | events:streamhub*)
            rm -rf "$WORK/data"
            # /events clients sign in with the service key (a speech consumer); older builds ignore it.
            channel_endpoints "$bin" "$channel" "$WORK/data" "$KEY"
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
        *) echo "no server kind $kind for channel $channel" >&2; exit 2 ;;
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

passes() {  # kind clients -> 0 when the median p99 of the point's runs at 10/s is under 50 ms and no run lost anything
            # or delivered to any client in another order than to the others
    python3 - "$OUT" "$1" "$2" <<'PY'
import json, statistics, sys
path, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [r for r in map(json.loads, filter(str.strip, open(path))) if r["label"] == kind and r["clients"] == n and r["rate"] == 10]
clean = all(r["connected"] == r["clients"] and r["lost"] == 0 and r["disconnected_during_run"] == 0 and r.get("clients_out_of_order", 0) == 0
            and r["p99_ms"] >= 0 for r in runs)
sys.exit(0 if runs and clean and statistics.median(r["p99_ms"] for r in runs) < 50 else 1)
PY
}

declare -A BEST FAILED_AT
for kind in $SERVERS; do BEST[$kind]=0; FAILED_AT[$kind]=0; done
racing=$SERVERS
for n in $LADDER; do
    [ -n "${racing// /}" ] || break
    echo "==> $n clients at 10/s: $racing" >&2
    for _ in $(seq 1 "$REPEAT"); do
        for kind in $racing; do measure "$kind" "$n" 10 >/dev/null; done
    done
    still=""
    for kind in $racing; do
        if passes "$kind" "$n"; then BEST[$kind]=$n; still="$still $kind"; else FAILED_AT[$kind]=$n; fi
    done
    racing=$still
done
# One bisection step between each server's last passing and first failing point (to a multiple of 500).
bisect=""
declare -A MID
for kind in $SERVERS; do
    best=${BEST[$kind]} failed=${FAILED_AT[$kind]}
    [ "$best" -gt 0 ] && [ "$failed" -gt 0 ] || continue
    mid=$(( (best + failed) / 2 / 500 * 500 ))
    if [ "$mid" -gt "$best" ] && [ "$mid" -lt "$failed" ]; then MID[$kind]=$mid; bisect="$bisect $kind"; fi
done
if [ -n "$bisect" ]; then
    for _ in $(seq 1 "$REPEAT"); do
        for kind in $bisect; do measure "$kind" "${MID[$kind]}" 10 >/dev/null; done
    done
fi
echo "==> $BIG clients at 1/s: $SERVERS" >&2
for _ in $(seq 1 "$REPEAT"); do
    for kind in $SERVERS; do measure "$kind" "$BIG" 1 >/dev/null; done
done

python3 - "$OUT" "$BIG" "$CHANNEL" $SERVERS <<'PY'
import json, sys
path, big, channel, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print(f"channel: {channel}\n")
rows = [json.loads(l) for l in open(path) if l.strip()]
import statistics
def point(kind, clients, rate):
    return [r for r in rows if r["label"] == kind and r["clients"] == clients and r["rate"] == rate]
def ok(runs):
    return bool(runs) and all(r["connected"] == r["clients"] and r["lost"] == 0 and r["disconnected_during_run"] == 0
                              and r.get("clients_out_of_order", 0) == 0 and r["p99_ms"] >= 0 for r in runs) \
        and statistics.median(r["p99_ms"] for r in runs) < 50
def med(runs, key): return statistics.median(r[key] for r in runs)
repeat = max((len(point(r["label"], r["clients"], r["rate"])) for r in rows), default=1)
best = {}
for k in kinds:
    passing = sorted({r["clients"] for r in rows if r["label"] == k and r["rate"] == 10 and ok(point(k, r["clients"], 10))})
    best[k] = passing[-1] if passing else None
note = f" (median of {repeat} runs per point)" if repeat > 1 else ""
print(f"| server | largest N at 10/s with p99 < 50 ms{note} | p50 / p99 / max ms there | %d clients at 1/s: p50 / p99 / max ms | lost | KiB per idle connection |" % big)
print("| --- | --- | --- | --- | --- | --- |")
for k in kinds:
    b = point(k, best[k], 10) if best[k] else None
    g = point(k, big, 1)
    bs = f'{best[k]:,}' if b else "none"
    bl = f'{med(b, "p50_ms"):.1f} / {med(b, "p99_ms"):.1f} / {med(b, "max_ms"):.1f}' if b else "-"
    gl = f'{med(g, "p50_ms"):.1f} / {med(g, "p99_ms"):.1f} / {med(g, "max_ms"):.1f} ({min(r["connected"] for r in g):,} connected)' if g else "-"
    lost = f'{sum(r["lost"] for r in g):,} of {sum(r["expected"] for r in g):,}' if g else "-"
    if g and any(r.get("clients_out_of_order", 0) for r in g): lost += f' ({sum(r.get("clients_out_of_order", 0) for r in g):,} clients out of order)'
    mem = f'{med(g, "rss_per_idle_conn_kb"):.1f}' if g else "-"
    print(f"| {k} | {bs} | {bl} | {gl} | {lost} | {mem} |")
if repeat > 1:
    print("\nEvery point's runs (p99 ms at 10/s; at the last line, 1/s):")
    for k in kinds:
        points = sorted({(r["rate"] == 1, r["clients"]) for r in rows if r["label"] == k})
        print(f"- {k}: " + "; ".join(f'{n:,}{" at 1/s" if slow else ""}: ' + ", ".join(f'{r["p99_ms"]:.1f}' for r in point(k, n, 1 if slow else 10)) for slow, n in points))
print()
for ours in (k for k in kinds if k.split("@")[0] == "streamhub"):
    for name in (k for k in kinds if k != ours and not k.startswith("streamhub@")):
        if best.get(ours) and best.get(name):
            print(f'{ours} / {name} clients at 10/s: {best[ours] / best[name]:.2f}x')
        g, h = point(ours, big, 1), point(name, big, 1)
        if g and h:
            print(f'{ours} / {name} p99 at {big:,} clients, 1/s: {med(g, "p99_ms") / med(h, "p99_ms"):.2f}x')
if best.get("streamhub@captions") and best.get("streamhub@events"):
    print(f'captions / events clients at 10/s: {best["streamhub@captions"] / best["streamhub@events"]:.2f}x')
PY
rm -rf "$WORK"
exit
}
