"""Speech-to-text benchmark (driven by scripts/bench/stt.sh): the built-in engine's real-time factor, the
word error rate on the test corpus, how many live streams one instance transcribes in real time, and the
delay from speech in the source to its caption on an overlay WebSocket client.

Speech is made here: flite speaks the test corpus (22 sentences, voices slt and rms) into one WAV. Live
sources are ffmpeg writing HLS in real time (-re) with program date times, so a sentence's moment in the
source is its offset plus the first segment's date. Everything runs on this machine's cores: the server,
the engines, ffmpeg for every source, and this script."""
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import speech  # noqa: E402
import websockets  # noqa: E402

BINARY = os.environ.get("STREAMHUB_BIN", os.path.join(ROOT, ".build", "release", "streamhub"))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, key=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not happen within {timeout}s")


def serve_directory(directory):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=directory))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Server:
    def __init__(self, work, extra=None):
        self.data = tempfile.mkdtemp(dir=work)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
        env.update({"STREAMHUB_DATA_DIR": self.data, "STREAMHUB_PORT": str(self.port), "STREAMHUB_GRPC_PORT": str(free_port()),
                    "STREAMHUB_ALLOW_PRIVATE_SOURCES": "true", "STREAMHUB_STATUS_CHECKS": "false", "STREAMHUB_LOG_LEVEL": "warning",
                    "STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0", "STREAMHUB_STT_MAX_TRANSCRIBERS": "64"})
        env.update(extra or {})
        self.env = env
        overlay = subprocess.run([BINARY, "overlay", "create", "bench"], env=env, capture_output=True, text=True, check=True).stdout
        self.overlay_key = re.search(r"overlay key ([0-9a-f]{64})", overlay).group(1)
        self.community = int(re.search(r"community (\d+)", overlay).group(1))
        created = subprocess.run([BINARY, "apikey", "create", "--name", "bench", "--role", "admin"], env=env, capture_output=True, text=True, check=True)
        self.key = re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)
        self.log = open(os.path.join(self.data, "server.log"), "wb")
        self.process = subprocess.Popen([BINARY, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait(lambda: request("GET", self.url("/health"))[0] == 200, 60, "the server to start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            pass
    return total


def descendants(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    found = [int(p) for p in out]
    for child in list(found):
        found += descendants(child)
    return found


def engine_rtf(wav, work):
    """The built-in engine alone on the corpus' PCM (model load included)."""
    script = os.path.join(work, "engine.py")
    source = open(os.path.join(ROOT, "Sources", "Transcription", "Engine", "SpeechEngines.swift")).read()
    body = source.split('static let pocketsphinxScript = #"""\n')[1].split('    """#')[0]
    open(script, "w").write("\n".join(line[4:] for line in body.split("\n")))
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", wav, "-f", "s16le", "-ac", "1", "-ar", "16000", "-"], capture_output=True, check=True).stdout
    started = time.monotonic()
    subprocess.run([sys.executable, "-u", script], input=pcm, capture_output=True, check=True)
    return (time.monotonic() - started) / (len(pcm) / 32000), len(pcm) / 32000


def pipeline(work, wav, spans, vod_dir):
    """A recorded VOD transcribed from the beginning through the server: pipeline RTF and WER."""
    origin = serve_directory(vod_dir)
    server = Server(work)
    try:
        playlist = open(os.path.join(vod_dir, "vod.m3u8")).read()
        base = speech.first_program_date_time(playlist)
        status, made = request("POST", server.url("/api/v1/recordings"), {"url": f"http://127.0.0.1:{origin.server_address[1]}/vod.m3u8"}, server.key)
        rid = made["id"]
        wait(lambda: request("GET", server.url(f"/api/v1/recordings/{rid}"), key=server.key)[1]["segments"] == playlist.count("#EXTINF"), 120, "the VOD")
        wait(lambda: request("GET", server.url(f"/api/v1/recordings/{rid}"), key=server.key)[1]["state"] == "stopped", 120, "the VOD")
        started = time.monotonic()
        status, made = request("POST", server.url("/api/v1/transcribers"), {"recording_id": rid, "start_at": "beginning"}, server.key)
        tid = made["id"]
        wait(lambda: request("GET", server.url(f"/api/v1/transcribers/{tid}"), key=server.key)[1]["state"] == "finished", 600, "the transcriber")
        elapsed = time.monotonic() - started
        done = request("GET", server.url(f"/api/v1/transcribers/{tid}"), key=server.key)[1]
        lines = request("GET", server.url(f"/api/v1/recordings/{rid}/transcript"), key=server.key)[1]["lines"]
        errors = total = 0
        for start, end, sentence in spans:
            heard = " ".join(line["text"] for line in lines if base + start - 1 <= line["start"] <= base + end + 0.5)
            reference = speech.words(sentence)
            errors += speech.word_errors(reference, speech.words(heard))
            total += len(reference)
        return elapsed / done["audio_seconds"], errors / total, done["audio_seconds"]
    finally:
        server.stop()
        origin.shutdown()


class Listener:
    """An overlay caption client: the arrival time of every final caption."""

    def __init__(self, url):
        self.finals = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self.run(url)), daemon=True).start()
        assert self.ready.wait(10)

    async def run(self, url):
        async with websockets.connect(url, max_queue=None) as ws:
            self.ready.set()
            while not self.stop.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                if frame.get("is_final"):
                    self.finals.append((time.time(), frame["text"]))


def live_step(work, wav, spans, streams, seconds):
    """`streams` live sources, each recorded and transcribed with its captions on the community's overlay."""
    server = Server(work)
    sources, origins = [], []
    try:
        starts = []
        for index in range(streams):
            directory = tempfile.mkdtemp(dir=work)
            sources.append(subprocess.Popen(speech.hls_arguments(wav, os.path.join(directory, "live.m3u8"), live=True)))
            origins.append((serve_directory(directory), directory))
        listener = Listener(f"ws://127.0.0.1:{server.port}/ws/captions/{server.community}?key={server.overlay_key}")
        events = {}
        for index, (origin, directory) in enumerate(origins):
            playlist = os.path.join(directory, "live.m3u8")
            wait(lambda: os.path.exists(playlist) and "#EXT-X-PROGRAM-DATE-TIME" in open(playlist).read(), 30, "a live source")
            starts.append(speech.first_program_date_time(open(playlist).read()))
            status, made = request("POST", server.url("/api/v1/recordings"), {"url": f"http://127.0.0.1:{origin.server_address[1]}/live.m3u8"}, server.key)
            rid = made["id"]
            status, made = request("POST", server.url("/api/v1/transcribers"), {"recording_id": rid, "community_id": server.community}, server.key)
            assert status == 201, made
            events[made["id"]] = (rid, starts[-1])
        pids = [server.process.pid] + descendants(server.process.pid)
        cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
        time.sleep(seconds)
        pids = [server.process.pid] + descendants(server.process.pid)
        cpu = (cpu_seconds(pids) - cpu_before) / (time.monotonic() - wall_before)
        ended_by = time.time()
        listener.stop.set()
        # Each transcriber's final lines with their media times; a caption's delay is its arrival after the
        # end of the sentence it belongs to (the sentence's end in the source: its date + offset).
        delays, heard, expected = [], 0, 0
        for tid, (rid, start) in events.items():
            lines = request("GET", server.url(f"/api/v1/recordings/{rid}/transcript"), key=server.key)[1]["lines"]
            arrivals = {}
            for arrived, text in listener.finals:
                arrivals.setdefault(text, []).append(arrived)
            for line in lines:
                offset = line["start"] - start
                sentence = next((span for span in spans if span[0] - 1 <= offset <= span[1] + 0.5), None)
                if sentence is None or not arrivals.get(line["text"]):
                    continue
                arrived = min(arrivals[line["text"]], key=lambda t: abs(t - (start + sentence[1])))
                delays.append(arrived - (start + sentence[1]))
                heard += 1
            # Sentences that ended early enough to be captioned within the run.
            expected += len([span for span in spans if start + span[1] + 10 < ended_by])
        delays.sort()
        return {"streams": streams, "captions": heard, "expected": expected, "cpu_cores": cpu,
                "p50": statistics.median(delays) if delays else None,
                "p95": delays[int(len(delays) * 0.95) - 1] if len(delays) >= 2 else (delays[0] if delays else None),
                "max": delays[-1] if delays else None}
    finally:
        for source in sources:
            source.kill()
        for origin, _ in origins:
            origin.shutdown()
        server.stop()


def main():
    ladder = [int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "1 4 8 12 16").split()]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    work = tempfile.mkdtemp(prefix="streamhub-stt-bench-")
    wav, spans = speech.speak(work)
    vod_dir = os.path.join(work, "vod")
    os.makedirs(vod_dir)
    speech.make_vod(wav, vod_dir)
    rtf, audio = engine_rtf(wav, work)
    print(f"built-in engine alone: {audio:.1f} s of speech, real-time factor {rtf:.3f} (model load included)", flush=True)
    pipeline_rtf, wer, fed = pipeline(work, wav, spans, vod_dir)
    print(f"through the server (recorded VOD, ffmpeg per segment + engine): real-time factor {pipeline_rtf:.3f} on {fed:.0f} s; "
          f"word error rate {wer:.3f} on {len(spans)} sentences", flush=True)
    print("| live streams | captions | caption delay p50 | p95 | max | server CPU (cores) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for streams in ladder:
        result = live_step(work, wav, spans, streams, seconds)
        fmt = lambda v: "—" if v is None else f"{v:.2f} s"  # noqa: E731
        print(f"| {streams} | {result['captions']} of ≥ {result['expected']} | {fmt(result['p50'])} | {fmt(result['p95'])} | {fmt(result['max'])} | {result['cpu_cores']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
