#!/usr/bin/env bash
# Recorder benchmark: K live sources on a synthetic origin (nginx serving playlists that a script slides
# every 2 s over a few real ffmpeg segments), K concurrent recordings for D seconds; then live.m3u8 and
# segment serving under wrk, side by side with nginx serving the same segment file.
#
#   scripts/bench/recorder.sh [--sources K] [--seconds D] [--connections C]
#
# Reports: missed segments, errors, RSS per source, server CPU; live.m3u8 req/s (while recording, and
# idle); segment req/s for StreamHub and nginx and their ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
sources=500 seconds=60 connections=64
while [ $# -gt 0 ]; do
    case "$1" in
        --sources) sources=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
binary=.build/release/streamhub
swift build -c release --product streamhub >&2
work=$(mktemp -d /tmp/streamhub-recorder.XXXXXX)
chmod 755 "$work"   # nginx workers run as nobody
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/origin-nginx.pid" ] && kill "$(cat "$work/origin-nginx.pid")" 2>/dev/null || true
    [ -f "$work/files-nginx.pid" ] && kill "$(cat "$work/files-nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Real segments: 2 s of 320x240 H.264 + AAC each.
mkdir -p "$work/origin"
ffmpeg -loglevel error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine -t 8 -c:v libx264 -preset ultrafast -g 50 -b:v 200k \
    -c:a aac -f hls -hls_time 2 -hls_list_size 0 -hls_segment_filename "$work/origin/seg%d.ts" "$work/origin/source.m3u8"
nginx_conf() { # name port root workers
    cat >"$work/$1.conf" <<CONF
worker_processes ${4:-1};
pid $work/$1.pid;
error_log $work/$1-error.log;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    server { listen 127.0.0.1:$2; root $3; }
}
CONF
    nginx -c "$work/$1.conf"
}
origin_port=$(free_port)
nginx_conf origin-nginx "$origin_port" "$work/origin"
python3 scripts/bench/recorder_origin.py "$work/origin" "$sources" >"$work/writer.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/writer.log" && break; sleep 0.1; done

port=$(free_port)
export STREAMHUB_DATA_DIR=$work/data STREAMHUB_PORT=$port STREAMHUB_GRPC_PORT=0 STREAMHUB_LOG_LEVEL=warning
export STREAMHUB_ALLOW_PRIVATE_SOURCES=true STREAMHUB_RECORDER_PREVIEW_INTERVAL=0 STREAMHUB_STATUS_CHECKS=false
export STREAMHUB_WRITE_RATE_LIMIT=1000000 STREAMHUB_RECORDER_MAX_RECORDINGS=$((sources + 10))
key=$("$binary" apikey create --name bench --role editor | grep -o 'shk_[0-9a-f]*')
"$binary" serve >"$work/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
sleep 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
rss_base=$(rss)

python3 - "$port" "$key" "$origin_port" "$sources" >"$work/ids" <<'PY'
import json, sys, urllib.request
port, key, origin, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for k in range(count):
    body = json.dumps({"url": f"http://127.0.0.1:{origin}/s{k}.m3u8", "retention": 3600}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/recordings", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(request))["id"])
PY
cpu_start=$(cpu)
sleep "$seconds"
cpu_end=$(cpu)
rss_after=$(rss)
summary() {
    curl -fs "http://127.0.0.1:$port/api/v1/recordings?per_page=500&page=$1" -H "Authorization: Bearer $key"
}
python3 - "$sources" "$seconds" "$rss_base" "$rss_after" "$cpu_start" "$cpu_end" "$(getconf CLK_TCK)" "$port" "$key" <<'PY'
import json, math, sys, urllib.request
sources, seconds, base, after, c0, c1, tick, port, key = sys.argv[1:]
sources, seconds = int(sources), int(seconds)
items = []
for page in range(1, math.ceil(sources / 500) + 1):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/recordings?per_page=500&page={page}", headers={"Authorization": f"Bearer {key}"})
    items += json.load(urllib.request.urlopen(request))["recordings"]
states = {}
for r in items:
    states[r["state"]] = states.get(r["state"], 0) + 1
segments = sum(r["segments"] for r in items)
missed = sum(r["missed_segments"] for r in items)
errors = sum(r["errors"] for r in items)
fetch = sorted(r["mean_fetch_ms"] for r in items)
errors_seen = sorted({r["error"] for r in items if r["error"]})[:3]
if errors_seen:
    print("errors seen:", errors_seen)
print(f"recording: {sources} sources for {seconds} s: states {states}; {segments} segments ({segments / sources / seconds * 2:.2f} of every expected 2-s segment), "
      f"missed {missed}, errors {errors}; mean fetch per recording p50 {fetch[len(fetch)//2]:.1f} ms, max {fetch[-1]:.1f} ms")
print(f"memory: RSS {int(base)/1024:.1f} MiB idle -> {int(after)/1024:.1f} MiB with {sources} recordings = {(int(after)-int(base))/sources:.0f} KiB per source")
print(f"cpu: {(int(c1)-int(c0))/int(tick):.1f} s of server CPU over {seconds} s ({(int(c1)-int(c0))/int(tick)/seconds*100:.0f} % of one core)")
PY

id=$(head -1 "$work/ids")
segment=$(ls "$work/data/recordings/$id" | grep '\.ts$' | tail -3 | head -1)
size=$(stat -c %s "$work/data/recordings/$id/$segment")
echo "live.m3u8 while $sources recordings run (wrk -t2 -c$connections -d10s):"
wrk -t2 -c"$connections" -d10s --latency "http://127.0.0.1:$port/recordings/$id/live.m3u8" | python3 scripts/bench/wrk_summary.py
# Stop every recording but the one measured: then the server serves one live stream.
tail -n +2 "$work/ids" | while read -r rid; do curl -fs -X DELETE "http://127.0.0.1:$port/api/v1/recordings/$rid" -H "Authorization: Bearer $key" >/dev/null; done
sleep 2
echo "live.m3u8 with that one recording running (wrk -t2 -c$connections -d10s):"
wrk -t2 -c"$connections" -d10s --latency "http://127.0.0.1:$port/recordings/$id/live.m3u8" | python3 scripts/bench/wrk_summary.py
curl -fs -X DELETE "http://127.0.0.1:$port/api/v1/recordings/$id" -H "Authorization: Bearer $key" >/dev/null
sleep 2
echo "live.m3u8 once stopped (served from the index, cached 1 s):"
wrk -t2 -c"$connections" -d10s --latency "http://127.0.0.1:$port/recordings/$id/live.m3u8" | python3 scripts/bench/wrk_summary.py
# The origin is no longer needed: free its CPU for the serving comparison.
kill "${pids[0]}" 2>/dev/null || true
files_port=$(free_port)
nginx_conf files-nginx "$files_port" "$work/data/recordings/$id" 2
kill "$(cat "$work/origin-nginx.pid")"; rm -f "$work/origin-nginx.pid"
sleep 1
echo "segment $segment ($size bytes), StreamHub and nginx (2 workers, sendfile) alternating, 3 rounds of wrk -t2 -c$connections -d10s:"
for round in 1 2 3; do
    streamhub=$(wrk -t2 -c"$connections" -d10s --latency "http://127.0.0.1:$port/recordings/$id/segments/$segment" | python3 scripts/bench/wrk_summary.py)
    nginx=$(wrk -t2 -c"$connections" -d10s --latency "http://127.0.0.1:$files_port/$segment" | python3 scripts/bench/wrk_summary.py)
    echo "  round $round StreamHub $streamhub"
    echo "  round $round nginx     $nginx"
    echo "$streamhub" | awk '{print $1}' >>"$work/streamhub.rps"
    echo "$nginx" | awk '{print $1}' >>"$work/nginx.rps"
done
python3 - "$work/streamhub.rps" "$work/nginx.rps" <<'PY'
import statistics, sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
print(f"  median StreamHub {statistics.median(a):.0f} req/s, nginx {statistics.median(b):.0f} req/s: ratio {statistics.median(a) / statistics.median(b):.2f}")
PY
