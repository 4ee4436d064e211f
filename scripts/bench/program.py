#!/usr/bin/env python3
"""Stream Manager benchmark: one program — a 2x2 wall mosaic of four 640x360 30 fps live HLS sources, a captions
layer and a text layer — rendered at 1280x720 30 fps with x264 veryfast and pushed over RTMP to nginx-rtmp, for
DURATION seconds. Reports encode speed (min and mean), dropped frames, measured fps against the target, the
latency of a layer change (from the REST call to the first frame received over RTMP that shows it: p50, p95),
and the CPU the server and its ffmpeg processes used. Then adds identical programs (HLS only) one at a time
until one no longer keeps up, to find the most programs this machine renders in real time.

    scripts/bench/program.sh [DURATION, default 120]     (the wrapper builds the release binary, starts nginx)

Sources are encoded before the run (so their encoding does not compete with the program's) and served as live
HLS by a sliding playlist that follows the clock.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import partial

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("STREAMHUB_BIN", os.path.join(ROOT, ".build", "release", "streamhub"))
DURATION = int(sys.argv[1]) if len(sys.argv) > 1 else 120
SERVICE_KEY = "bench-service-key-0123456789abcdef"
work = tempfile.mkdtemp(prefix="streamhub-program-bench-")
processes = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, key=None, headers=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def wait(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out: {what}")


def cpu_seconds(pid):
    """User+system CPU seconds of a process and all its descendants (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                pass
    total, stack = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while stack:
        current = stack.pop()
        try:
            fields = open(f"/proc/{current}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
        stack.extend(children.get(current, []))
    return total


# ---------- sources: encoded first, then served live ----------

SEGMENTS = DURATION + 120
HUES = [0, 90, 180, 270]


def encode_sources():
    for k, hue in enumerate(HUES):
        folder = os.path.join(work, f"s{k}")
        os.makedirs(folder)
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=30,hue=h={hue}", "-f", "lavfi", "-i", "sine=f=440:r=48000",
                        "-t", str(SEGMENTS), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-b:v", "800k", "-c:a", "aac", "-f", "hls",
                        "-hls_time", "1", "-hls_list_size", "0", "-hls_segment_filename", os.path.join(folder, "seg-%d.ts"),
                        os.path.join(folder, "vod.m3u8")], check=True)


def serve_sources():
    start = time.time()

    def keep_live():
        # A sliding window of 6 one-second segments whose newest follows the clock.
        while True:
            n = int(time.time() - start) + 6
            for k in range(len(HUES)):
                first = max(0, n - 5)
                lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
                for seq in range(first, n + 1):
                    lines += ["#EXTINF:1.000,", f"seg-{seq % SEGMENTS}.ts"]
                path = os.path.join(work, f"s{k}", "live.m3u8")
                try:
                    with open(path + ".tmp", "w") as f:
                        f.write("\n".join(lines) + "\n")
                    os.rename(path + ".tmp", path)
                except OSError:
                    return  # the run is over and its folder gone
            time.sleep(0.2)

    threading.Thread(target=keep_live, daemon=True).start()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=work))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


# ---------- RTMP ----------

def start_rtmp():
    port = free_port()
    folder = os.path.join(work, "rtmp")
    os.makedirs(folder)
    with open(os.path.join(folder, "nginx.conf"), "w") as conf:
        conf.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}
""")
    processes.append(subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", os.path.join(folder, "nginx.conf"), "-p", folder],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, 10, "nginx-rtmp")
    return port


class RtmpWatcher:
    """Decodes the RTMP stream (scaled down) and notes when a marker area turns red or stops being red."""

    def __init__(self, url, x, y):
        self.width, self.height = 320, 180
        self.x, self.y = x // 4, y // 4
        self.red = None
        self.changes = []  # (time, red)
        self.frames = 0
        self.process = subprocess.Popen(["ffmpeg", "-v", "error", "-fflags", "nobuffer", "-flags", "low_delay", "-i", url,
                                         "-vf", f"scale={self.width}:{self.height}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                                        stdout=subprocess.PIPE)
        processes.append(self.process)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        size = self.width * self.height * 3
        while True:
            frame = self.process.stdout.read(size)
            if len(frame) < size:
                return
            self.frames += 1
            i = (self.y * self.width + self.x) * 3
            red = frame[i] > 150 and frame[i + 1] < 90 and frame[i + 2] < 90
            if red != self.red:
                self.red = red
                self.changes.append((time.time(), red))


def main():
    print(f"encoding four 640x360 30 fps sources ({SEGMENTS} s each)…", flush=True)
    encode_sources()
    origin = serve_sources()
    rtmp_port = start_rtmp()
    port = free_port()
    data = os.path.join(work, "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
    env.update({"STREAMHUB_DATA_DIR": data, "STREAMHUB_PORT": str(port), "STREAMHUB_GRPC_PORT": str(free_port()),
                "STREAMHUB_ALLOW_PRIVATE_SOURCES": "true", "STREAMHUB_STATUS_CHECKS": "false", "STREAMHUB_LOG_LEVEL": "warning",
                "STREAMHUB_SERVICE_KEYS": SERVICE_KEY, "STREAMHUB_WRITE_RATE_LIMIT": "100000"})
    key = subprocess.run([BINARY, "apikey", "create", "--name", "bench", "--role", "admin"], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    server = subprocess.Popen([BINARY, "serve"], env=env, stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    processes.append(server)
    base = f"http://127.0.0.1:{port}"
    wait(lambda: urllib.request.urlopen(base + "/health", timeout=2).status in (200, 503), 30, "the server")

    recordings = []
    for k in range(len(HUES)):
        recordings.append(call("POST", base + "/api/v1/recordings", {"url": f"{origin}/s{k}/live.m3u8"}, key)["id"])
    for rid in recordings:
        wait(lambda: call("GET", f"{base}/api/v1/recordings/{rid}", key=key)["segments"] >= 3, 60, "recordings")
    call("POST", base + "/api/v1/walls", {"name": "bench", "columns": 2, "rows": 2}, key)
    for cell, rid in enumerate(recordings, start=1):
        call("PUT", f"{base}/api/v1/walls/bench/cells/{cell}", {"recording_id": rid}, key)
    community = call("POST", base + "/api/v1/communities", {"name": "Bench"}, key)["community"]["id"]

    def make_program(name, rtmp):
        call("POST", base + "/api/v1/programs", {"name": name, "width": 1280, "height": 720, "fps": 30, "preset": "veryfast",
                                                 "video_bitrate": 3000}, key)
        call("POST", f"{base}/api/v1/programs/{name}/layers", {"kind": "wall", "wall": "bench", "x": 0, "y": 0, "width": 1280, "height": 720}, key)
        call("POST", f"{base}/api/v1/programs/{name}/layers", {"kind": "captions", "community_id": community, "x": 0, "y": 600, "width": 1280,
                                                               "height": 110, "style": {"lines": 2, "font_size": 40}}, key)
        call("POST", f"{base}/api/v1/programs/{name}/layers", {"kind": "text", "text": "StreamHub benchmark", "x": 20, "y": 20, "width": 420,
                                                               "height": 56, "style": {"font_size": 36}}, key)
        # The change marker: a red box toggled over a black one (so the mosaic's own colours never count).
        call("POST", f"{base}/api/v1/programs/{name}/layers", {"kind": "text", "text": " ", "x": 1090, "y": 30, "width": 140, "height": 100,
                                                               "style": {"background": "#000000"}}, key)
        marker = call("POST", f"{base}/api/v1/programs/{name}/layers", {"kind": "text", "text": " ", "x": 1100, "y": 40, "width": 120, "height": 80,
                                                                        "visible": False, "style": {"background": "#ff0000"}}, key)
        if rtmp:
            call("POST", f"{base}/api/v1/programs/{name}/outputs", {"url": f"rtmp://127.0.0.1:{rtmp_port}/live/{name}"}, key)
        call("POST", f"{base}/api/v1/programs/{name}/start", key=key)
        return marker["id"]

    marker = make_program("main", True)
    state = lambda name: call("GET", f"{base}/api/v1/programs/{name}", key=key)["stream"]  # noqa: E731
    wait(lambda: state("main")["isLive"] and state("main")["frameCount"] > 90, 60, "the program live")
    watcher = RtmpWatcher(f"rtmp://127.0.0.1:{rtmp_port}/live/main", 1160, 80)
    wait(lambda: watcher.frames > 30, 30, "frames over RTMP")

    stop = threading.Event()

    def captions():
        n = 0
        while not stop.is_set():
            n += 1
            call("POST", base + "/api/v1/internal/captions", {"community_id": community, "text": f"Caption line {n}: the storm moves east",
                                                               "is_final": True}, headers={"X-Service-Key": SERVICE_KEY})
            stop.wait(2)

    threading.Thread(target=captions, daemon=True).start()
    print(f"running for {DURATION} s…", flush=True)
    samples, latencies = [], []
    cpu0, t0 = cpu_seconds(server.pid), time.time()
    frames0 = state("main")["frameCount"]
    next_toggle, visible = time.time() + 2, False
    while time.time() - t0 < DURATION:
        samples.append(state("main"))
        if time.time() >= next_toggle:
            visible = not visible
            sent = time.time()
            call("PATCH", f"{base}/api/v1/programs/main/layers/{marker}", {"visible": visible}, key)
            deadline = sent + 10
            while time.time() < deadline and not any(t >= sent and red == visible for t, red in watcher.changes):
                time.sleep(0.02)
            seen = [t for t, red in watcher.changes if t >= sent and red == visible]
            latencies.append(seen[0] - sent if seen else float("inf"))
            next_toggle = time.time() + 3
        time.sleep(0.5)
    elapsed = time.time() - t0
    if os.environ.get("BENCH_DEBUG"):
        print("watcher frames", watcher.frames, "changes", watcher.changes[:6], "alive", watcher.process.poll())
    cpu = (cpu_seconds(server.pid) - cpu0) / elapsed
    final = state("main")
    stop.set()

    speeds = [s["speed"] for s in samples[4:] if s["isLive"]]
    fps = (final["frameCount"] - frames0) / elapsed
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print("\n## One program: 2x2 wall of 640x360 sources + captions + text → 1280x720 30 fps, x264 veryfast, HLS + RTMP")
    print(f"| run | {elapsed:.0f} s |\n| --- | --- |")
    print(f"| encode speed | min {min(speeds):.3f}x, mean {statistics.mean(speeds):.3f}x |")
    print(f"| dropped + duplicated frames | {final['droppedFrames']} |")
    print(f"| fps (frames / wall time) | {fps:.2f} of 30 ({(fps / 30 - 1) * 100:+.1f} %); state fps mean {statistics.mean(s['fps'] for s in samples[4:]):.2f} |")
    print(f"| layer change → pixels over RTMP | p50 {p(0.5) * 1000:.0f} ms, p95 {p(0.95) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms ({len(latencies)} changes) |")
    print(f"| CPU (server + its ffmpeg processes) | {cpu:.2f} cores |")
    print(f"| restarts | {final['restarts']} |")

    # How many programs keep up: add HLS-only copies until one falls behind.
    print("\n## Programs in real time on this machine")
    sustained = 1
    for count in range(2, 5):
        make_program(f"extra{count}", False)
        names = ["main"] + [f"extra{i}" for i in range(2, count + 1)]
        wait(lambda: all(state(n)["isLive"] for n in names), 60, "the programs live")
        time.sleep(10)
        before = {n: state(n) for n in names}
        cpu0, t0 = cpu_seconds(server.pid), time.time()
        time.sleep(30)
        after = {n: state(n) for n in names}
        cpu = (cpu_seconds(server.pid) - cpu0) / (time.time() - t0)
        rates = [(after[n]["frameCount"] - before[n]["frameCount"]) / (time.time() - t0) for n in names]
        dropped = sum(after[n]["droppedFrames"] - before[n]["droppedFrames"] for n in names)
        keeps_up = min(rates) >= 30 * 0.97 and dropped == 0
        print(f"| {count} programs | fps {', '.join(f'{r:.1f}' for r in rates)} | dropped {dropped} | CPU {cpu:.2f} cores | {'keeps up' if keeps_up else 'falls behind'} |")
        if not keeps_up:
            break
        sustained = count
    print(f"\nMost programs in real time: {sustained}")


try:
    main()
finally:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(work, ignore_errors=True)
