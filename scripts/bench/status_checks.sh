#!/usr/bin/env bash
# Status-check benchmark: 10,000 streams against a local origin (60 % live, 15 % ended, 10 % gone,
# 10 % slow at 1-3 s, 5 % never answering), spread over 50 origin "hosts" (ports). Measures the time and
# the server's CPU for one full check cycle (every stream checked once), and checks the caps held:
# at most --concurrency checks in flight, at most --host-rate requests per second to each host.
#
#   scripts/bench/status_checks.sh [--streams N] [--concurrency C] [--host-rate R] [--timeout S]
set -euo pipefail
cd "$(dirname "$0")/../.."
streams=10000 concurrency=200 host_rate=10 timeout=10 hosts=50
while [ $# -gt 0 ]; do
    case "$1" in
        --streams) streams=$2; shift ;;
        --concurrency) concurrency=$2; shift ;;
        --host-rate) host_rate=$2; shift ;;
        --timeout) timeout=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
binary=.build/release/streamhub
swift build -c release --product streamhub >&2
work=$(mktemp -d /tmp/streamhub-status.XXXXXX)
origin_pid="" server_pid=""
trap 'kill $server_pid $origin_pid 2>/dev/null || true; rm -rf "$work"' EXIT
first_port=$(python3 -c '
import socket
for base in range(42000, 60000, 100):
    try:
        socks = []
        for p in range(base, base + 50):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export STREAMHUB_DATA_DIR=$work/data STREAMHUB_PORT=$port STREAMHUB_GRPC_PORT=0 STREAMHUB_LOG_LEVEL=warning
export STREAMHUB_ALLOW_PRIVATE_SOURCES=true STREAMHUB_STATUS_CONCURRENCY=$concurrency STREAMHUB_STATUS_HOST_RATE=$host_rate
export STREAMHUB_STATUS_TIMEOUT=$timeout
"$binary" migrate >/dev/null
python3 - "$work/data/streamhub.sqlite" "$streams" "$first_port" "$hosts" <<'PY'
import sqlite3, sys, time
path, count, first, hosts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kinds = ["live"] * 60 + ["ended"] * 15 + ["gone"] * 10 + ["slow"] * 10 + ["hang"] * 5
now = time.time()
db = sqlite3.connect(path)
db.executemany(
    "INSERT INTO streams (link, platform, status, kind, is_pinned, is_archived, created_at, updated_at, version) VALUES (?, 'hls', 'unknown', 'video', 0, 0, ?, ?, 1)",
    [(f"http://127.0.0.1:{first + i % hosts}/{kinds[i % 100]}/{i}.m3u8", now, now) for i in range(count)])
db.commit()
PY
python3 scripts/bench/status_origin.py "$first_port" "$hosts" "$work/origin.json" >"$work/origin.log" 2>&1 &
origin_pid=$!
for _ in $(seq 100); do grep -q ready "$work/origin.log" 2>/dev/null && break; sleep 0.1; done

"$binary" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
ticks=$(getconf CLK_TCK)
cpu_start=$(cpu)
start=$(date +%s.%N)
checks() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^streamhub_status_checks_total/ {s += $2} END {print s + 0}'; }
while [ "$(checks)" -lt "$streams" ]; do
    sleep 0.2
    if [ "$(echo "$(date +%s.%N) - $start > 600" | bc)" = 1 ]; then echo "gave up after 600 s" >&2; break; fi
done
end=$(date +%s.%N)
cpu_end=$(cpu)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
metrics=$(curl -fs "http://127.0.0.1:$port/metrics")
kill "$origin_pid"; wait "$origin_pid" 2>/dev/null || true
python3 - "$work/origin.json" "$start" "$end" "$cpu_start" "$cpu_end" "$ticks" "$streams" "$concurrency" "$host_rate" "$rss_kb" "$work/data/streamhub.sqlite" <<PY
import json, re, sys
origin = json.load(open(sys.argv[1]))
start, end = float(sys.argv[2]), float(sys.argv[3])
cpu = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6])
streams, concurrency, rate, rss = int(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
metrics = """$metrics"""
by = {m.group(1): float(m.group(2)) for m in re.finditer(r'streamhub_status_checks_total\{result="(\w+)"\} ([0-9.e+]+)', metrics)}
wall = end - start
print(f"streams checked: {int(sum(by.values())):,} of {streams:,} (live {int(by.get('live', 0)):,}, offline {int(by.get('offline', 0)):,}, unknown {int(by.get('unknown', 0)):,})")
print(f"one full cycle: {wall:.1f} s wall, {cpu:.1f} s server CPU ({cpu / wall * 100:.0f} % of one core), peak RSS {rss / 1024:.0f} MiB")
print(f"origin: {origin['requests']:,} requests, at most {origin['max_inflight']} in flight (cap {concurrency}), "
      f"at most {origin['max_per_host_per_second']} per host in any second (cap {rate:g})")
import sqlite3
db = sqlite3.connect(f"file:{sys.argv[11]}?mode=ro", uri=True)
for status, reason, n in db.execute("SELECT status, reason, COUNT(*) FROM stream_checks WHERE status != 'live' GROUP BY status, reason ORDER BY 3 DESC LIMIT 6"):
    print(f"  {n:>6,} {status}: {reason}")
ok = wall < 60 and origin["max_inflight"] <= concurrency and origin["max_per_host_per_second"] <= rate
print("target (all checked in < 60 s within the caps):", "met" if ok else "NOT met")
PY
