#!/usr/bin/env python3
"""Wall benchmark (not a test): on this machine, in headless Chromium against the real binary.

1. Control-to-display latency: 3 displays of one wall open (each playing one recorded tile); 100 changes
   (blur toggles of cell 1, as a control page makes them) through the REST API; each display notes when the
   tile's `data-blurred` changed (a MutationObserver, browser clock = this machine's clock). p50/p95/max.
2. Playback: a 3×3 wall of nine 640×360 30 fps recordings (one ffmpeg source recorded nine times) in one
   headless Chromium for N seconds: per tile, frames decoded and dropped (`getVideoPlaybackQuality()`),
   and the browser's CPU (utime+stime of every Chromium process, from /proc) over the same interval.

    scripts/bench/wall.py [--seconds 30] [--changes 100] [--binary .build/release/streamhub]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "bench-password-0123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, payload=None, token=None):
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode() if payload is not None else None, method=method,
                                     headers={"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        return json.loads(body) if body else None


def wait(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def chrome(width=1920, height=1080):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def chromium_cpu_seconds():
    """utime+stime of every Chromium process (and its children that ended), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            if "chrom" not in name:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += sum(int(value) for value in fields[11:15])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total / ticks


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--binary", default=os.environ.get("STREAMHUB_BIN") or str(ROOT / ".build" / "release" / "streamhub"))
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        subprocess.run(["swift", "build", "-c", "release", "--product", "streamhub"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="streamhub-wall-bench-")
    processes = []
    try:
        media = os.path.join(work, "media")
        os.makedirs(media)
        processes.append(subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                                           "-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac",
                                           "-f", "hls", "-hls_time", "1", "-hls_list_size", "10", "-hls_flags", "delete_segments",
                                           os.path.join(media, "live.m3u8")], stdin=subprocess.DEVNULL))
        origin_port = free_port()
        processes.append(subprocess.Popen([sys.executable, "-m", "http.server", str(origin_port), "--bind", "127.0.0.1"], cwd=media,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
        port = free_port()
        env.update({"STREAMHUB_DATA_DIR": os.path.join(work, "data"), "STREAMHUB_PORT": str(port), "STREAMHUB_GRPC_PORT": str(free_port()),
                    "STREAMHUB_ALLOW_PRIVATE_SOURCES": "true", "STREAMHUB_STATUS_CHECKS": "false", "STREAMHUB_LOG_LEVEL": "error"})
        subprocess.run([args.binary, "user", "create", "--email", "bench@example.org", "--role", "editor", "--password-stdin"],
                       input=PASSWORD, text=True, env=env, check=True, capture_output=True)
        processes.append(subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        wait(lambda: call(base, "GET", "/health") is not None, 30, "the server")
        token = call(base, "POST", "/api/v1/users/login", {"email": "bench@example.org", "password": PASSWORD})["token"]
        wait(lambda: os.path.exists(os.path.join(media, "live.m3u8")), 20, "ffmpeg")
        source = f"http://127.0.0.1:{origin_port}/live.m3u8"
        recordings = [call(base, "POST", "/api/v1/recordings", {"url": source}, token)["id"] for _ in range(9)]
        wait(lambda: all(call(base, "GET", f"/api/v1/recordings/{r}", token=token)["segments"] >= 4 for r in recordings), 60, "nine recordings")

        # 1. Latency with three displays.
        call(base, "POST", "/api/v1/walls", {"name": "latency", "columns": 2, "rows": 2}, token)
        call(base, "PUT", "/api/v1/walls/latency/cells/1", {"recording_id": recordings[0]}, token)
        displays = [chrome(1280, 720) for _ in range(3)]
        try:
            for driver in displays:
                driver.get(f"{base}/wall/latency?token={token}")
                wait(lambda: driver.execute_script("return document.body.dataset.connection") == "open"
                     and driver.execute_script("return document.querySelector('.tile[data-cell=\"1\"]')?.dataset.state") == "playing", 30, "a display")
                driver.execute_script("""
                    window.__changes = [];
                    new MutationObserver((records) => { for (const r of records) if (r.attributeName === 'data-blurred'
                        && r.target.dataset.blurred !== r.oldValue) window.__changes.push([Date.now(), r.target.dataset.blurred]); })
                      .observe(document.getElementById('wall'), {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-blurred']});""")
            sent = []
            for i in range(args.changes):
                blurred = i % 2 == 0
                sent.append(time.time() * 1000)
                call(base, "PUT", "/api/v1/walls/latency/cells/1", {"recording_id": recordings[0], "blurred": blurred}, token)
                time.sleep(0.15)
            time.sleep(2)
            latencies = []
            for driver in displays:
                seen = driver.execute_script("return window.__changes")
                if len(seen) != args.changes:
                    print(f"warning: a display saw {len(seen)} of {args.changes} changes", file=sys.stderr)
                for (at, _), start in zip(seen, sent):
                    latencies.append(at - start)
        finally:
            for driver in displays:
                driver.quit()
        print(f"control-to-display latency, {args.changes} changes × 3 displays: p50 {percentile(latencies, 50):.0f} ms, "
              f"p95 {percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms")

        # 2. A 3×3 wall of recorded tiles in one browser.
        call(base, "POST", "/api/v1/walls", {"name": "nine", "columns": 3, "rows": 3}, token)
        for cell, recording in enumerate(recordings, start=1):
            call(base, "PUT", f"/api/v1/walls/nine/cells/{cell}", {"recording_id": recording}, token)
        driver = chrome()
        try:
            driver.get(f"{base}/wall/nine?token={token}")
            wait(lambda: driver.execute_script("return [...document.querySelectorAll('.tile')].filter(t => t.dataset.state === 'playing').length") == 9,
                 60, "nine tiles playing")
            time.sleep(3)
            quality = "return [...document.querySelectorAll('.tile video')].map(v => { const q = v.getVideoPlaybackQuality(); return [q.totalVideoFrames, q.droppedVideoFrames]; })"
            before, cpu_before, started = driver.execute_script(quality), chromium_cpu_seconds(), time.time()
            time.sleep(args.seconds)
            after, cpu_after, elapsed = driver.execute_script(quality), chromium_cpu_seconds(), time.time() - started
        finally:
            driver.quit()
        print(f"3×3 wall of 640×360 30 fps recordings, one headless Chromium, {elapsed:.0f} s:")
        print("tile  decoded/s  dropped/s  dropped %")
        for index, ((d0, x0), (d1, x1)) in enumerate(zip(before, after), start=1):
            decoded, dropped = d1 - d0, x1 - x0
            print(f"{index:>4}  {decoded / elapsed:9.1f}  {dropped / elapsed:9.1f}  {100 * dropped / max(1, decoded):8.1f}")
        cores = (cpu_after - cpu_before) / elapsed
        print(f"Chromium CPU: {cores:.2f} cores ({100 * cores / os.cpu_count():.0f} % of {os.cpu_count()})")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
