"""The recorder against real sources: ffmpeg writing live HLS on loopback, served by an origin that can fail
on demand; playback checked with ffmpeg and ffprobe; kill -9 and resume; hostile playlists and inputs."""
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import websockets

from conftest import http, wait_until
from test_discovery import api_key, get_json, post_json

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg is not installed")


class Origin:
    """Serves a directory; `mode` makes it answer 404, hang, or serve `overrides` (path → bytes) instead."""

    def __init__(self, directory: str):
        self.mode = "normal"
        self.overrides: dict[str, bytes] = {}
        self.requests: list[str] = []
        origin = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def end_headers(self):
                # Public HLS origins answer CORS for web players (the wall's MediaSource player fetches them).
                self.send_header("Access-Control-Allow-Origin", "*")
                super().end_headers()

            def do_GET(self):
                origin.requests.append(self.path)
                if self.path in origin.overrides:
                    body = origin.overrides[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if origin.mode == "404":
                    self.send_error(404)
                    return
                if origin.mode == "hang" and self.path.endswith(".m3u8"):
                    time.sleep(15)
                    return
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=directory))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.server.shutdown()


def start_ffmpeg(directory: str, video: str = "testsrc=size=320x240:rate=25") -> subprocess.Popen:
    return subprocess.Popen([
        "ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_list_size", "8",
        "-hls_flags", "delete_segments", os.path.join(directory, "live.m3u8")], stdin=subprocess.PIPE)


class LiveSource:
    """ffmpeg writing live HLS (1-second segments) into a directory that an Origin serves."""

    def __init__(self, directory: str, video: str = "testsrc=size=320x240:rate=25"):
        self.media = directory
        self.video = video
        self.origin = Origin(directory)
        self.ffmpeg = None
        self.start()

    def start(self):
        """Starts a fresh stream (media sequence from 0) and waits for its playlist."""
        for name in os.listdir(self.media):
            os.remove(os.path.join(self.media, name))
        self.ffmpeg = start_ffmpeg(self.media, self.video)
        wait_until(lambda: os.path.exists(os.path.join(self.media, "live.m3u8")), 20, "ffmpeg to write the playlist")

    def stop(self):
        """Stops ffmpeg cleanly: it writes EXT-X-ENDLIST."""
        if self.ffmpeg.poll() is None:
            try:
                self.ffmpeg.communicate(b"q", timeout=20)
            except subprocess.TimeoutExpired:
                self.ffmpeg.kill()
                self.ffmpeg.wait()

    def url(self, name: str = "live.m3u8") -> str:
        return self.origin.url(name)


@pytest.fixture
def live_source(data_dir):
    source = LiveSource(tempfile.mkdtemp(dir=data_dir))
    yield source
    source.stop()
    source.origin.stop()


def recording(server, key, rid):
    return get_json(server, f"/api/v1/recordings/{rid}", key)


def playlist_entries(text: str):
    return re.findall(r"#EXTINF:([0-9.]+),\n(\S+)", text)


def media_sequence(text: str) -> int:
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))


def probe_duration(path: str) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", path], capture_output=True, text=True)
    return float(json.loads(out.stdout)["format"]["duration"])


def test_records_plays_back_exports_and_survives_a_source_restart(start_server, data_dir, live_source):
    origin = live_source.origin
    data = os.path.join(data_dir, "rec")
    key = api_key(data)
    server = start_server(data=data, extra_env={"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "2"})
    events: list = []
    states: list = []
    previews: list = []

    async def listen(stop: asyncio.Event):
        async with websockets.connect(server.ws_url(f"/events?token={key}")) as events_ws, \
                websockets.connect(server.ws_url(f"/api/stream/ws?target=state&token={key}")) as state_ws, \
                websockets.connect(server.ws_url("/api/stream/ws?target=preview"), additional_headers={"Authorization": f"Bearer {key}"}) as preview_ws:
            await events_ws.send(json.dumps({"subscribe": ["recording_state", "recording_export"]}))

            async def pump(ws, sink):
                while not stop.is_set():
                    try:
                        sink.append(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        pass
            await asyncio.gather(pump(events_ws, events), pump(state_ws, states), pump(preview_ws, previews))

    stop_listening = asyncio.Event()
    loop = asyncio.new_event_loop()
    listener = threading.Thread(target=lambda: loop.run_until_complete(listen(stop_listening)), daemon=True)
    listener.start()
    try:
        wait_until(lambda: len(states) >= 1 and len(previews) >= 1, 10, "the state and preview channels to welcome us")
        assert json.loads(states[0])["type"] == "welcome" and json.loads(previews[0])["type"] == "welcome"

        status, created = post_json(server, "/api/v1/recordings", key, {"url": origin.url("live.m3u8"), "retention": "1h"})
        assert status == 201, created
        rid = created["id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid) and created["state"] == "starting" and created["input_kind"] == "hls"

        wait_until(lambda: recording(server, key, rid)["segments"] >= 12, 40, "12 segments to be recorded")
        current = recording(server, key, rid)
        assert current["state"] == "recording" and current["missed_segments"] == 0 and current["errors"] == 0, current
        assert current["media"]["codec"] == "h264" and current["media"]["width"] == 320 and current["media"]["fps"] == 25, current

        # live.m3u8 slides: 5 segments, MEDIA-SEQUENCE moving on.
        status, headers, body = http("GET", server.url(f"/recordings/{rid}/live.m3u8"))
        assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl" and headers["Cache-Control"] == "no-cache"
        first = body.decode()
        assert len(playlist_entries(first)) == 5
        wait_until(lambda: media_sequence(http("GET", server.url(f"/recordings/{rid}/live.m3u8"))[2].decode()) > media_sequence(first), 10,
                   "the live window to slide")

        # A segment: content type, cacheable forever, ranges.
        segment = playlist_entries(first)[0][1]
        status, headers, whole = http("GET", server.url(f"/recordings/{rid}/{segment}"))
        assert status == 200 and headers["Content-Type"] == "video/mp2t" and "immutable" in headers["Cache-Control"] and whole[0] == 0x47
        status, headers, part = http("GET", server.url(f"/recordings/{rid}/{segment}"), headers={"Range": "bytes=188-375"})
        assert status == 206 and part == whole[188:376] and headers["Content-Range"] == f"bytes 188-375/{len(whole)}"
        status, headers, _ = http("GET", server.url(f"/recordings/{rid}/{segment}"), headers={"Range": f"bytes={len(whole)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"

        # The VOD window plays: ffmpeg remuxes it, ffprobe reports its duration within a segment.
        start = int(time.time()) - 10
        vod_url = server.url(f"/recordings/{rid}/start/{start}/0.1/vod.m3u8")
        status, _, body = http("GET", vod_url)
        vod = body.decode()
        assert status == 200 and "#EXT-X-ENDLIST" in vod and "#EXT-X-PLAYLIST-TYPE:VOD" in vod, vod
        listed = sum(float(d) for d, _ in playlist_entries(vod))
        assert 6 <= listed <= 8.5, vod
        out = os.path.join(data_dir, "window.mp4")
        remux = subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", vod_url, "-c", "copy", out], capture_output=True, text=True)
        assert remux.returncode == 0, remux.stderr
        assert abs(probe_duration(out) - listed) <= 1.1, (probe_duration(out), listed)
        # The same window in the original recorder's YYYYMMDDHHMMSS form.
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(start))
        assert http("GET", server.url(f"/recordings/{rid}/start/{stamp}/0.1/vod.m3u8"))[2].decode() == vod
        # ?utc= starts the sliding window at that moment.
        status, _, body = http("GET", server.url(f"/recordings/{rid}/live.m3u8?utc={start}"))
        assert status == 200 and len(playlist_entries(body.decode())) == 5 and "#EXT-X-ENDLIST" not in body.decode()

        # The original recorder's paths serve the most recently started recording.
        status, _, body = http("GET", server.url("/live/stream.m3u8"))
        assert status == 200 and playlist_entries(body.decode())
        assert http("GET", server.url("/live/" + playlist_entries(body.decode())[0][1]))[0] == 200
        assert http("GET", server.url(f"/start/{start}/0.1/vod.m3u8"))[0] == 200

        # Export: remuxed without re-encoding, progress events, then the file.
        status, job = post_json(server, f"/api/v1/recordings/{rid}/exports", key, {"start": start, "duration": 6, "format": "mp4"})
        assert status == 202, job
        deadline = time.monotonic() + 30
        while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = get_json(server, f"/api/v1/recordings/{rid}/exports/{job['id']}", key)
        assert job["state"] == "done" and job["progress"] == 1, job
        status, headers, exported = http("GET", server.url(f"/api/v1/recordings/{rid}/exports/{job['id']}/file"),
                                         headers={"Authorization": f"Bearer {key}"})
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        Path(data_dir, "export.mp4").write_bytes(exported)
        assert 5 <= probe_duration(os.path.join(data_dir, "export.mp4")) <= 9
        wait_until(lambda: any(json.loads(e).get("event") == "recording_export" and json.loads(e)["export"]["state"] == "done"
                               for e in events if isinstance(e, str)), 5, "the export's progress events")

        # Preview thumbnails: on disk and on the preview channel.
        wait_until(lambda: http("GET", server.url(f"/recordings/{rid}/preview.jpg"))[0] == 200, 15, "a preview thumbnail")
        assert http("GET", server.url(f"/recordings/{rid}/preview.jpg"))[2][:2] == b"\xff\xd8"
        wait_until(lambda: any(isinstance(p, bytes) for p in previews), 15, "a preview frame")
        frame = next(p for p in previews if isinstance(p, bytes))
        length = int.from_bytes(frame[:4], "big")
        header = json.loads(frame[4:4 + length])
        assert header["recordingId"] == rid and header["format"] == "jpeg" and frame[4 + length:4 + length + 2] == b"\xff\xd8"

        # The source restarts (sequence numbers from 0 again): a discontinuity, then recording again.
        live_source.stop()
        wait_until(lambda: recording(server, key, rid)["state"] == "stalled", 20, "the ended source to stall the recording")
        before = recording(server, key, rid)["segments"]
        live_source.start()
        wait_until(lambda: recording(server, key, rid)["segments"] >= before + 4, 40, "recording to resume after the restart")
        assert recording(server, key, rid)["state"] == "recording"
        wait_until(lambda: "#EXT-X-DISCONTINUITY\n" in http("GET", server.url(f"/recordings/{rid}/live.m3u8"))[2].decode(), 10,
                   "the live window to carry the discontinuity")

        # The state channel and /events saw it all.
        updates = [json.loads(s) for s in states if isinstance(s, str) and json.loads(s)["type"] == "stateUpdate"]
        mine = [u["payload"] for u in updates if u["payload"]["recording"]["id"] == rid]
        assert {"isLive", "isPaused", "fps", "targetFPS", "frameCount", "droppedFrames", "averageRenderTime", "startTime"} <= set(mine[-1]["stream"])
        assert any(u["stream"]["isLive"] for u in mine) and any(u["recording"]["state"] == "stalled" for u in mine)
        assert any(json.loads(e).get("event") == "recording_state" and json.loads(e)["recording"]["id"] == rid for e in events if isinstance(e, str))
        metrics = http("GET", server.url("/metrics"))[2].decode()
        ref = json.loads(http("GET", server.url(f"/api/v1/recordings/{rid}"), headers={"Authorization": f"Bearer {key}"})[2])["metrics_ref"]
        assert rid not in metrics, "a recording id is the capability to play it: never a metrics label"
        assert f'streamhub_recorder_segments_total{{recording="{ref}"}}' in metrics
        assert f'streamhub_recorder_segment_fetch_seconds_bucket{{recording="{ref}"' in metrics

        # DELETE stops it; what was recorded stays playable.
        status, _, body = http("DELETE", server.url(f"/api/v1/recordings/{rid}"), headers={"Authorization": f"Bearer {key}"})
        assert status == 200 and json.loads(body)["state"] == "stopped"
        kept = recording(server, key, rid)["segments"]
        assert http("GET", server.url(f"/recordings/{rid}/live.m3u8"))[0] == 200
        listing = get_json(server, "/api/v1/recordings?state=stopped", key)
        assert [r["id"] for r in listing["recordings"]] == [rid] and listing["meta"]["total_count"] == 1
        assert kept >= before + 4
    finally:
        stop_listening.set()
        listener.join(5)


def test_stalls_on_404_and_timeouts_then_recovers(start_server, data_dir, live_source):
    origin = live_source.origin
    data = os.path.join(data_dir, "stall")
    key = api_key(data)
    server = start_server(data=data, extra_env={"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"})
    _, created = post_json(server, "/api/v1/recordings", key, {"url": origin.url("live.m3u8")})
    rid = created["id"]
    wait_until(lambda: recording(server, key, rid)["state"] == "recording", 20, "recording to start")

    origin.mode = "404"
    wait_until(lambda: recording(server, key, rid)["state"] == "stalled", 15, "a 404 to stall the recording")
    assert "404" in recording(server, key, rid)["error"]
    origin.mode = "normal"
    wait_until(lambda: recording(server, key, rid)["state"] == "recording", 20, "recovery after the 404s")

    origin.mode = "hang"
    wait_until(lambda: recording(server, key, rid)["state"] == "stalled", 30, "a timeout to stall the recording")
    assert "timed out" in recording(server, key, rid)["error"]
    origin.mode = "normal"
    wait_until(lambda: recording(server, key, rid)["state"] == "recording", 40, "recovery after the timeouts")
    assert recording(server, key, rid)["errors"] >= 2



def index_and_files(data: str, rid: str):
    with sqlite3.connect(os.path.join(data, "streamhub.sqlite")) as db:
        rows = {r[0] for r in db.execute("SELECT file_name FROM recording_segments WHERE recording_id = ?", (rid,))}
        rows |= {r[0] for r in db.execute("SELECT map_file FROM recording_segments WHERE recording_id = ? AND map_file IS NOT NULL", (rid,))}
    files = {n for n in os.listdir(os.path.join(data, "recordings", rid)) if re.fullmatch(r"(init-)?\d{10}\.\w+", n)}
    return rows, files


def test_kill_9_mid_recording_resumes_with_files_and_index_in_agreement(start_server, data_dir, live_source):
    origin = live_source.origin
    data = os.path.join(data_dir, "kill")
    key = api_key(data)
    env = {"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"}
    server = start_server(data=data, extra_env=env)
    _, created = post_json(server, "/api/v1/recordings", key, {"url": origin.url("live.m3u8")})
    rid = created["id"]
    wait_until(lambda: recording(server, key, rid)["segments"] >= 5, 30, "5 segments")
    # Leave the debris a crash can: a half-written file and a finished file the index never got.
    directory = os.path.join(data, "recordings", rid)
    Path(directory, "0000099998.ts.part").write_bytes(b"\x47" * 188)
    Path(directory, "0000099999.ts").write_bytes(b"\x47" * 188)
    server.stop(signal.SIGKILL)
    before = recording_segments = len(index_and_files(data, rid)[0])

    server = start_server(data=data, extra_env=env)
    wait_until(lambda: recording(server, key, rid)["segments"] >= before + 4, 40, "the recording to resume after kill -9")
    assert recording(server, key, rid)["state"] == "recording"
    assert "resuming recording" in server.logs()
    assert not os.path.exists(os.path.join(directory, "0000099998.ts.part"))
    assert not os.path.exists(os.path.join(directory, "0000099999.ts"))
    server.stop()  # SIGTERM: in-flight index writes land
    rows, files = index_and_files(data, rid)
    assert rows == files and len(rows) >= recording_segments + 4
    # Numbering went on from where the index stopped: no sequence is used twice.
    with sqlite3.connect(os.path.join(data, "streamhub.sqlite")) as db:
        sequences = [r[0] for r in db.execute("SELECT sequence FROM recording_segments WHERE recording_id = ? ORDER BY sequence", (rid,))]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))



def test_hostile_playlists_and_bad_requests(start_server, data_dir):
    media = tempfile.mkdtemp(dir=data_dir)
    origin = Origin(media)
    data = os.path.join(data_dir, "hostile")
    key = api_key(data)
    viewer = api_key(data, "viewer")
    server = start_server(data=data, extra_env={"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"})
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        origin.overrides["/long.m3u8"] = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n" + b"a" * (1 << 20) + b"\n"
        origin.overrides["/huge.m3u8"] = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + b"#EXTINF:2,\ns.ts\n" * 1_000_000
        origin.overrides["/self.m3u8"] = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nself.m3u8\n"
        origin.overrides["/private.m3u8"] = (b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
                                             + b"#EXTINF:2,\nhttp://169.254.169.254/latest/meta-data/a.ts\n#EXTINF:2,\nhttp://169.254.169.254/b.ts\n")
        ids = {}
        for name in ("long", "huge", "self", "private"):
            status, created = post_json(server, "/api/v1/recordings", key, {"url": origin.url(f"{name}.m3u8")})
            assert status == 201, created
            ids[name] = created["id"]
        wait_until(lambda: recording(server, key, ids["self"])["state"] == "failed", 15, "the self-referencing master to fail")
        assert "points back to itself" in recording(server, key, ids["self"])["error"]
        wait_until(lambda: "longer than" in (recording(server, key, ids["long"])["error"] or ""), 15, "the megabyte line to be refused")
        wait_until(lambda: "larger than" in (recording(server, key, ids["huge"])["error"] or ""), 15, "the huge playlist to be refused")
        wait_until(lambda: recording(server, key, ids["private"])["missed_segments"] >= 2, 15, "metadata-address segments to be refused")
        assert "SSRF" in recording(server, key, ids["private"])["error"]
        assert all(recording(server, key, i)["segments"] == 0 for i in ids.values())
        assert all(not p.startswith("/latest") for p in origin.requests)

        before = get_json(server, "/api/v1/recordings", key)["meta"]["total_count"]
        bad_posts = [
            (b"{not json", 400), (b"[]", 400), (json.dumps({"url": 5}).encode(), 400), (json.dumps({}).encode(), 422),
            (json.dumps({"url": "file:///etc/passwd"}).encode(), 422), (json.dumps({"url": "http://169.254.169.254/x.m3u8"}).encode(), 422),
            (json.dumps({"url": "http://user:pw@example.com/x.m3u8"}).encode(), 422),
            (json.dumps({"url": origin.url("a.m3u8"), "variant": "fastest"}).encode(), 422),
            (json.dumps({"url": origin.url("a.m3u8"), "retention": 5}).encode(), 422),
            (json.dumps({"url": origin.url("a.m3u8"), "retention": "forever"}).encode(), 400),
            (json.dumps({"url": origin.url("a.m3u8"), "stream_id": 999999}).encode(), 422),
            (json.dumps({"url": origin.url("a.m3u8"), "stream_id": "x"}).encode(), 400),
            (json.dumps({"url": "http://x/" + "a" * 3000}).encode(), 422),
            (b"{" + b" " * (2 << 20) + b"}", 413),
        ]
        for body, expected in bad_posts:
            status, _, answer = http("POST", server.url("/api/v1/recordings"), body, auth)
            assert status == expected, (body[:80], status, answer)
            assert "error" in json.loads(answer) and json.loads(answer)["error"]["message"]
        assert http("POST", server.url("/api/v1/recordings"), b"{}", {"Content-Type": "application/json"})[0] == 401
        assert http("POST", server.url("/api/v1/recordings"), b"{}", {"Authorization": "Bearer shk_" + "0" * 64})[0] == 401
        assert http("POST", server.url("/api/v1/recordings"), json.dumps({"url": origin.url("a.m3u8")}).encode(),
                    {"Authorization": f"Bearer {viewer}", "Content-Type": "application/json"})[0] == 403
        assert http("DELETE", server.url(f"/api/v1/recordings/{ids['long']}"), headers={"Authorization": f"Bearer {viewer}"})[0] == 403
        assert http("DELETE", server.url("/api/v1/recordings/" + "f" * 32), headers=auth)[0] == 404
        for bad in ({"start": "yesterday", "duration": 5}, {"start": 1, "duration": 0}, {"start": time.time(), "duration": 5, "format": "avi"},
                    {"start": time.time() - 60, "duration": 10 ** 9}):
            status, _, answer = http("POST", server.url(f"/api/v1/recordings/{ids['long']}/exports"), json.dumps(bad).encode(), auth)
            assert status in (400, 422), (bad, status, answer)
        assert get_json(server, "/api/v1/recordings", key)["meta"]["total_count"] == before

        rid = ids["long"]
        for path, expected in [
            ("/recordings/nothex/live.m3u8", 404), ("/recordings/" + "0" * 32 + "/live.m3u8", 404),
            (f"/recordings/{rid}/live.m3u8", 404),  # nothing recorded yet
            (f"/recordings/{rid}/live.m3u8?utc=soon", 400),
            (f"/recordings/{rid}/segments/..%2F..%2Fstreamhub.sqlite", 404), (f"/recordings/{rid}/segments/0000000001.sqlite", 404),
            (f"/recordings/{rid}/segments/%2e%2e", 404), (f"/recordings/{rid}/segments/0000000001.ts", 404),
            (f"/recordings/{rid}/start/notatime/5/vod.m3u8", 400), (f"/recordings/{rid}/start/20261301000000/5/vod.m3u8", 400),
            (f"/recordings/{rid}/start/1700000000/0/vod.m3u8", 400), (f"/recordings/{rid}/start/1700000000/99999/vod.m3u8", 400),
            (f"/recordings/{rid}/start/1700000000/5/vod.m3u8", 404), ("/api/stream/ws?target=bogus", 400), ("/api/stream/ws?target=layers", 426), ("/api/stream/ws", 426),
        ]:
            status, _, body = http("GET", server.url(path))
            assert status == expected, (path, status, body)
    finally:
        origin.stop()


def test_refuses_private_sources_unless_allowed(start_server, data_dir):
    data = os.path.join(data_dir, "strict")
    key = api_key(data)
    server = start_server(data=data, extra_env={"STREAMHUB_ALLOW_PRIVATE_SOURCES": "false", "STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"})
    for url in ("http://127.0.0.1:1/live.m3u8", "http://localhost/live.m3u8", "http://10.0.0.8/live.m3u8", "http://[::1]/x.m3u8"):
        status, answer = post_json(server, "/api/v1/recordings", key, {"url": url})
        assert status == 422 and answer["error"]["code"] == "url_refused", (url, answer)
    assert get_json(server, "/api/v1/recordings", key)["meta"]["total_count"] == 0


def test_page_urls_resolve_through_yt_dlp_and_a_missing_yt_dlp_fails_only_its_recording(start_server, data_dir, live_source):
    origin = live_source.origin
    Path(live_source.media, "page.html").write_text(
        '<html><head><title>Cam</title><meta property="og:title" content="Cam">'
        f'<meta property="og:video" content="{origin.url("live.m3u8")}"><meta property="og:video:type" content="application/x-mpegURL">'
        '</head><body>cam</body></html>')
    if shutil.which("yt-dlp"):
        data = os.path.join(data_dir, "ytdlp")
        key = api_key(data)
        server = start_server(data=data, extra_env={"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"})
        status, created = post_json(server, "/api/v1/recordings", key, {"url": origin.url("page.html")})
        assert status == 201 and created["input_kind"] == "other", created
        wait_until(lambda: recording(server, key, created["id"])["segments"] >= 3, 60, "the page's stream to be recorded")
        assert recording(server, key, created["id"])["media_url"] == origin.url("live.m3u8")
        server.stop()

    data = os.path.join(data_dir, "noytdlp")
    key = api_key(data)
    server = start_server(data=data, extra_env={"STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0", "STREAMHUB_YTDLP_PATH": "/nonexistent/yt-dlp"})
    _, page = post_json(server, "/api/v1/recordings", key, {"url": origin.url("page.html")})
    _, hls = post_json(server, "/api/v1/recordings", key, {"url": origin.url("live.m3u8")})
    wait_until(lambda: recording(server, key, page["id"])["state"] == "failed", 15, "the page recording to fail")
    assert "yt-dlp" in recording(server, key, page["id"])["error"] and "not installed" in recording(server, key, page["id"])["error"]
    wait_until(lambda: recording(server, key, hls["id"])["segments"] >= 3, 30, "the HLS recording beside it to go on")
    assert recording(server, key, hls["id"])["state"] == "recording"



def test_another_instance_takes_a_recording_over_when_its_owner_dies(start_server, postgres, data_dir, live_source):
    origin = live_source.origin
    url = postgres.create_database()
    shared = os.path.join(data_dir, "shared")  # one volume for both instances' recordings
    os.makedirs(shared)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
    env.update({"STREAMHUB_DATA_DIR": shared, "STREAMHUB_DATABASE_URL": url})
    created = subprocess.run([os.environ.get("STREAMHUB_BIN", str(Path(__file__).resolve().parents[2] / ".build" / "debug" / "streamhub")),
                              "apikey", "create", "--name", "failover", "--role", "editor"], capture_output=True, text=True, env=env, timeout=60)
    key = re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)
    common = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_RECORDER_LEASE": "6", "STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"}
    a = start_server(data=shared, extra_env={**common, "STREAMHUB_INSTANCE_ID": "instance-a"})
    b = start_server(data=shared, extra_env={**common, "STREAMHUB_INSTANCE_ID": "instance-b"})
    status, rec = post_json(a, "/api/v1/recordings", key, {"url": origin.url("live.m3u8")})
    assert status == 201 and rec["owner"] == "instance-a", rec
    rid = rec["id"]
    wait_until(lambda: recording(b, key, rid)["segments"] >= 3, 30, "instance b to see instance a's progress")
    status, _, body = http("GET", b.url(f"/recordings/{rid}/live.m3u8"))
    assert status == 200 and playlist_entries(body.decode()), "any instance serves the live playlist from the index"

    a.stop(signal.SIGKILL)
    before = recording(b, key, rid)["segments"]
    wait_until(lambda: recording(b, key, rid)["owner"] == "instance-b", 20, "instance b to take the lapsed lease")
    # Both are awaited together: one snapshot may catch a passing "stalled" (the resume's own, or a slow reload
    # of the source on a loaded machine) after the new segments came.
    wait_until(lambda: (r := recording(b, key, rid))["segments"] >= before + 3 and r["state"] == "recording", 30,
               "instance b to go on recording")
    assert http("DELETE", b.url(f"/api/v1/recordings/{rid}"), headers={"Authorization": f"Bearer {key}"})[0] == 200
    wait_until(lambda: "instance-b" not in [r.get("owner") for r in get_json(b, "/api/v1/recordings?state=recording", key)["recordings"]],
               10, "the recording to stop")
    b.stop()
    rows = set(subprocess.check_output(["psql", url, "-At", "-c", f"SELECT file_name FROM recording_segments WHERE recording_id = '{rid}'"],
                                       text=True).split())
    files = {n for n in os.listdir(os.path.join(shared, "recordings", rid)) if re.fullmatch(r"\d{10}\.ts", n)}
    assert rows == files and len(rows) >= before + 3


def test_any_instance_serves_any_recordings_segments_from_the_owners_disk(start_server, postgres, data_dir, live_source):
    """Two instances, two disks, one database: a segment asked of the instance that does not hold it is
    fetched from the one that does (its address from the instance directory), Range requests included."""
    url = postgres.create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
    env.update({"STREAMHUB_DATABASE_URL": url})
    created = subprocess.run([os.environ.get("STREAMHUB_BIN", str(Path(__file__).resolve().parents[2] / ".build" / "debug" / "streamhub")),
                              "apikey", "create", "--name", "proxy", "--role", "editor"], capture_output=True, text=True, env=env, timeout=60)
    key = re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)
    common = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0"}
    for disk in ("disk-a", "disk-b"):
        os.makedirs(os.path.join(data_dir, disk))
    a = start_server(data=os.path.join(data_dir, "disk-a"), extra_env={**common, "STREAMHUB_INSTANCE_ID": "disk-a"})
    b = start_server(data=os.path.join(data_dir, "disk-b"), extra_env={**common, "STREAMHUB_INSTANCE_ID": "disk-b"})
    status, rec = post_json(a, "/api/v1/recordings", key, {"url": live_source.url()})
    assert status == 201 and rec["owner"] == "disk-a", rec
    rid = rec["id"]
    wait_until(lambda: recording(b, key, rid)["segments"] >= 3, 30, "three segments")
    status, _, body = http("GET", b.url(f"/recordings/{rid}/live.m3u8"))
    assert status == 200
    name = playlist_entries(body.decode())[0][1].split("/")[-1]
    assert not os.path.exists(os.path.join(data_dir, "disk-b", "recordings", rid, name)), "not on b's disk"
    on_a = http("GET", a.url(f"/recordings/{rid}/segments/{name}"))
    on_b = http("GET", b.url(f"/recordings/{rid}/segments/{name}"))
    assert on_a[0] == 200 and on_b[0] == 200 and on_b[2] == on_a[2] and len(on_a[2]) > 1000, (on_b[0], len(on_b[2]))
    assert on_b[1].get("Content-Type") == "video/mp2t"
    part = http("GET", b.url(f"/recordings/{rid}/segments/{name}"), headers={"Range": "bytes=188-375"})
    assert part[0] == 206 and part[2] == on_a[2][188:376] and part[1].get("Content-Range", "").startswith("bytes 188-375/"), part[:2]
    # A player on b plays the recording whole (playlist from the index, segments through b).
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", b.url(f"/recordings/{rid}/live.m3u8")],
                           capture_output=True, text=True, timeout=30)
    assert "video" in probe.stdout, probe.stderr
    # A request already passed on is never passed on again (no loops), and an unknown segment is 404.
    assert http("GET", b.url(f"/recordings/{rid}/segments/{name}"), headers={"X-StreamHub-Proxied": "disk-a"})[0] == 404
    assert http("GET", b.url(f"/recordings/{rid}/segments/9999999999.ts"))[0] == 404
    # The owner gone: a clear 502 until another instance takes the recording over.
    a.stop(signal.SIGKILL)
    missing = http("GET", b.url(f"/recordings/{rid}/segments/{name}"))
    assert missing[0] in (404, 502), missing[:2]
