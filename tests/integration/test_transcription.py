"""Speech to text through the real binary: flite speaks a corpus of known sentences, ffmpeg muxes them into
HLS on loopback, StreamHub records the stream and transcribes it with the built-in PocketSphinx engine. The
words, the wake word's time, the captions on an overlay WebSocket, the events on /events, the transcript
(JSON and WebVTT), the search and its VOD URL (checked with ffprobe) are asserted by content; a command
engine from the tests runs end to end, and engines that die or print garbage, audio-less sources and bad
requests get clear errors."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import websockets

sys.path.insert(0, os.path.dirname(__file__))
import speech  # noqa: E402
from conftest import SERVICE_KEY, cli, http, wait_until  # noqa: E402
from test_discovery import api_key, get_json, post_json  # noqa: E402
from test_recorder import Origin  # noqa: E402


def _pocketsphinx() -> bool:
    return subprocess.run([sys.executable, "-c", "import pocketsphinx"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(shutil.which("flite") is None or shutil.which("ffmpeg") is None or not _pocketsphinx(),
                                reason="flite, ffmpeg and the pocketsphinx Python package are needed")

ENGINE = os.path.join(os.path.dirname(__file__), "stt", "command_engine.py")
# The word error rate the built-in engine must stay under on the corpus (measured: 0.10 on flite's slt and rms).
WER_BOUND = 0.20


class Events:
    """Collects the JSON frames of a WebSocket on a background thread."""

    def __init__(self, url: str, subscribe=None):
        self.frames: list[dict] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run(url, subscribe)), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), f"{url} did not connect"

    async def _run(self, url, subscribe):
        async with websockets.connect(url) as ws:
            if subscribe:
                await ws.send(json.dumps({"subscribe": subscribe}))
            self.ready.set()
            while not self.stop.is_set():
                try:
                    self.frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except asyncio.TimeoutError:
                    continue

    def close(self):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def corpus():
    directory = tempfile.mkdtemp(prefix="streamhub-speech-")
    wav, spans = speech.speak(directory)
    vod = speech.make_vod(wav, directory)
    silent = os.path.join(directory, "video-only")
    os.makedirs(silent)
    speech.make_vod(wav, silent, audio=False)
    # 35 s of digital silence with video, and a playlist whose "segments" are random bytes.
    quiet = os.path.join(directory, "silent")
    os.makedirs(quiet)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=160x120:r=10", "-f", "lavfi", "-i",
                    "anullsrc=r=48000:cl=mono", "-t", "35", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac",
                    "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod", os.path.join(quiet, "vod.m3u8")],
                   check=True, timeout=60)
    garbage = os.path.join(directory, "garbage")
    os.makedirs(garbage)
    entries = ""
    for index in range(5):
        with open(os.path.join(garbage, f"g{index}.ts"), "wb") as out:
            out.write(os.urandom(20_000))
        entries += f"#EXTINF:1.0,\ng{index}.ts\n"
    with open(os.path.join(garbage, "vod.m3u8"), "w") as out:
        out.write("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n" + entries + "#EXT-X-ENDLIST\n")
    origin = Origin(directory)
    yield {"wav": wav, "spans": spans, "origin": origin, "playlist": open(vod).read(), "dir": directory}
    origin.stop()
    shutil.rmtree(directory, ignore_errors=True)


def record(server, key, url) -> str:
    status, created = post_json(server, "/api/v1/recordings", key, {"url": url, "retention": "1h"})
    assert status == 201, created
    rid = created["id"]
    wait_until(lambda: get_json(server, f"/api/v1/recordings/{rid}", key)["state"] == "stopped", 60, "the VOD to be recorded whole")
    return rid


def transcriber(server, key, tid) -> dict:
    return get_json(server, f"/api/v1/transcribers/{tid}", key)


def test_transcribes_a_recording_into_events_captions_transcripts_and_search(start_server, data_dir, corpus):
    data = os.path.join(data_dir, "stt")
    created = cli(data, "overlay", "create", "newsdesk")
    overlay_key = re.search(r"overlay key ([0-9a-f]{64})", created.stdout).group(1)
    community = int(re.search(r"community (\d+)", created.stdout).group(1))
    commands = f"steady=python3 {ENGINE};garbage=python3 {ENGINE} --garbage;dies=python3 {ENGINE} --die"
    server = start_server(data=data, extra_env={"STREAMHUB_STT_COMMANDS": commands})
    key = api_key(data, "editor")
    viewer = api_key(data, "viewer")

    engines = {e["name"]: e for e in get_json(server, "/api/v1/transcribers/engines", viewer)["engines"]}
    assert engines["pocketsphinx"]["available"] and engines["steady"]["available"], engines

    rid = record(server, key, corpus["origin"].url("vod.m3u8"))
    # The source's first program date time: the recording keeps it as the media time of its first segment.
    base = speech.first_program_date_time(corpus["playlist"])
    wait_until(lambda: get_json(server, f"/api/v1/recordings/{rid}", key)["segments"] == corpus["playlist"].count("#EXTINF"), 10,
               "the VOD to be recorded whole")

    events = Events(server.ws_url(f"/events?token={key}"), subscribe=["transcription", "wake_word", "transcriber_state"])
    captions = Events(server.ws_url(f"/ws/captions/{community}?key={overlay_key}"))
    try:
        status, made = post_json(server, "/api/v1/transcribers", key, {
            "recording_id": rid, "community_id": community, "wake_words": [speech.WAKE_WORD], "start_at": "beginning"})
        assert status == 201, made
        tid = made["id"]
        assert made["engine"] == "pocketsphinx" and made["language"] == "en-US" and made["wake_words"] == [speech.WAKE_WORD]
        wait_until(lambda: transcriber(server, key, tid)["state"] == "finished", 150, "the transcriber to finish the recording")
        done = transcriber(server, key, tid)
        assert done["error"] is None and done["utterances"] >= len(speech.CORPUS) - 2 and done["audio_seconds"] >= 95, done
        assert done["engine_restarts"] == 0 and done["decode_errors"] == 0 and done["bad_lines"] == 0, done

        # The transcript: every sentence found at its time, the word error rate under the bound.
        transcript = get_json(server, f"/api/v1/recordings/{rid}/transcript", viewer)
        lines = transcript["lines"]
        assert lines == sorted(lines, key=lambda line: line["start"])
        errors = total = 0
        for start, end, sentence in corpus["spans"]:
            heard = [line["text"] for line in lines if base + start - 1 <= line["start"] <= base + end + 0.5]
            reference = speech.words(sentence)
            errors += speech.word_errors(reference, speech.words(" ".join(heard)))
            total += len(reference)
        wer = errors / total
        print(f"word error rate on {len(speech.CORPUS)} sentences: {wer:.3f}")
        assert wer <= WER_BOUND, (wer, [line["text"] for line in lines])
        assert any("warehouse fire" in line["text"] for line in lines)

        # The wake word: once, at its time in the media (within 1 s).
        wait_until(lambda: any(f.get("event") == "wake_word" for f in events.frames), 10, "the wake word event")
        wakes = [f for f in events.frames if f.get("event") == "wake_word"]
        spoken = next(span for span in corpus["spans"] if speech.WAKE_WORD in span[2].lower())
        assert len(wakes) == 1, wakes
        assert wakes[0]["word"] == speech.WAKE_WORD and 0 < wakes[0]["confidence"] <= 1
        assert abs(wakes[0]["timestamp"] - (base + spoken[0])) <= 1.0, (wakes[0], base + spoken[0])
        assert wakes[0]["recording_id"] == rid and wakes[0]["transcriber_id"] == tid

        # /events: the seed's shape, interim and final, one session, with the recording and media time.
        said = [f for f in events.frames if f.get("event") == "transcription"]
        finals = [f for f in said if f["is_final"]]
        assert len(finals) == done["utterances"] and any(not f["is_final"] for f in said)
        assert {f["session_id"] for f in said} == {done["session_id"]}
        assert all(f["recording_id"] == rid and f["transcriber_id"] == tid and f["community_id"] == community for f in said)
        assert [f["text"] for f in finals] == [line["text"] for line in lines]
        assert all(abs(f["media_time"] - line["start"]) < 0.01 for f, line in zip(finals, lines))
        wait_until(lambda: any(f.get("event") == "transcriber_state" and f.get("state") == "finished" for f in events.frames), 5,
                   "the transcriber_state event saying finished")

        # The community's overlay got the captions, interim ones too, final ones in order.
        wait_until(lambda: len([c for c in captions.frames if c.get("is_final")]) >= len(finals), 10, "the captions on the overlay")
        shown = [c["text"] for c in captions.frames if c.get("is_final")]
        assert shown == [f["text"] for f in finals]
        assert any(not c.get("is_final", True) for c in captions.frames)

        # WebVTT for a VOD window: cue times from `from`.
        first = lines[0]
        status, headers, body = http("GET", server.url(f"/api/v1/recordings/{rid}/transcript?format=vtt&from={int(base)}"),
                                     headers={"Authorization": f"Bearer {viewer}"})
        assert status == 200 and headers["Content-Type"].startswith("text/vtt"), body
        vtt = body.decode()
        assert vtt.startswith("WEBVTT\n\n1\n") and first["text"] in vtt
        cue = re.search(r"1\n(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> ", vtt)
        seconds = int(cue.group(1)) * 3600 + int(cue.group(2)) * 60 + int(cue.group(3)) + int(cue.group(4)) / 1000
        assert abs(seconds - (first["start"] - int(base))) < 0.01
        window = get_json(server, f"/api/v1/recordings/{rid}/transcript?from={base + 40}&to={base + 50}", viewer)["lines"]
        assert window and all(base + 40 <= line["start"] < base + 50 for line in window)

        # Search finds the sentence; its VOD URL starts within 2 s before it (ffprobe on the served VOD).
        found = get_json(server, "/api/v1/transcripts/search?q=Warehouse%20FIRE", viewer)["results"]
        assert len(found) == 1 and "warehouse fire" in found[0]["text"] and found[0]["recording_id"] == rid, found
        sentence = next(span for span in corpus["spans"] if "warehouse" in span[2])
        source_pts = speech.probe_start(corpus["origin"].url("vod.m3u8")) + sentence[0]
        vod_pts = speech.probe_start(server.url(found[0]["vod_url"]))
        assert 0 <= source_pts - vod_pts <= 2.0 + 0.3, (source_pts, vod_pts, found[0])
        assert get_json(server, "/api/v1/transcripts/search?q=zebra%20crossing", viewer)["results"] == []

        # Metrics and health say what ran.
        metrics = http("GET", server.url("/metrics"))[2].decode()
        assert re.search(r"streamhub_transcription_utterances_total \d+", metrics) and rid not in metrics
        assert "transcription" in json.loads(http("GET", server.url("/health"))[2])["services"]
    finally:
        events.close()
        captions.close()

    # A command engine from the tests, end to end: its lines become the transcript.
    status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": rid, "engine": "steady", "start_at": "beginning"})
    assert status == 201, made
    wait_until(lambda: transcriber(server, key, made["id"])["state"] == "finished", 60, "the command engine's transcriber to finish")
    steady = transcriber(server, key, made["id"])
    assert steady["utterances"] >= 45 and steady["error"] is None, steady
    said = get_json(server, f"/api/v1/transcripts/search?q=two%20seconds%20of%20audio%20from%2010&recording_id={rid}", viewer)["results"]
    assert len(said) == 1 and said[0]["transcriber_id"] == made["id"] and abs(said[0]["start"] - (base + 10)) < 0.05, said

    # An engine that prints garbage and one that dies: a clear error, restarts with backoff, nothing else touched.
    for engine, expected in (("garbage", "not {\"text\",\"is_final\"} JSON"), ("dies", "the engine exited")):
        status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": rid, "engine": engine, "start_at": "beginning"})
        assert status == 201, made
        wait_until(lambda: transcriber(server, key, made["id"])["engine_restarts"] >= 1, 30, f"the {engine} engine to be restarted")
        broken = transcriber(server, key, made["id"])
        assert expected in (broken["error"] or ""), broken
        status, _, stopped = http("DELETE", server.url(f"/api/v1/transcribers/{made['id']}"), headers={"Authorization": f"Bearer {key}"})
        assert status == 200 and json.loads(stopped)["desired"] == "stopped"
        wait_until(lambda: transcriber(server, key, made["id"])["state"] == "stopped", 15, f"the {engine} transcriber to stop")
    assert len([line for line in get_json(server, f"/api/v1/recordings/{rid}/transcript", viewer)["lines"] if line["transcriber_id"] == tid]) == len(lines)

    # A source without audio: the transcriber says so.
    silent = record(server, key, corpus["origin"].url("video-only/vod.m3u8"))
    status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": silent, "start_at": "beginning"})
    assert status == 201, made
    wait_until(lambda: transcriber(server, key, made["id"])["state"] == "finished", 30, "the audio-less recording to be done")
    assert "no audio" in (transcriber(server, key, made["id"])["error"] or ""), transcriber(server, key, made["id"])

    # The CLI lists them, creates one, stops and starts it (the running server follows).
    listed = cli(data, "transcriber", "list")
    assert listed.returncode == 0 and tid in listed.stdout and "finished" in listed.stdout, listed
    status, dead = post_json(server, "/api/v1/recordings", key, {"url": "http://127.0.0.1:9/none.m3u8"})
    assert status == 201, dead
    created = cli(data, "transcriber", "start", "--recording", dead["id"], "--wake-word", "hello")
    assert created.returncode == 0, created.stderr
    waiting = re.search(r"transcriber ([0-9a-f]{32})", created.stdout).group(1)
    wait_until(lambda: transcriber(server, key, waiting)["state"] == "waiting" and transcriber(server, key, waiting)["owner"], 20,
               "the server to take the CLI's transcriber")
    assert "the recording is" in transcriber(server, key, waiting)["error"]
    assert cli(data, "transcriber", "stop", waiting).returncode == 0
    wait_until(lambda: transcriber(server, key, waiting)["state"] == "stopped", 20, "the CLI's stop to reach the server")
    assert cli(data, "transcriber", "start", waiting).returncode == 0
    wait_until(lambda: transcriber(server, key, waiting)["state"] == "waiting", 20, "the CLI's start to reach the server")
    assert cli(data, "transcriber", "stop", "0" * 32).returncode != 0


def test_bad_requests_get_clear_errors_and_change_nothing(start_server, data_dir, corpus):
    server = start_server()
    data = server.data_dir
    key = api_key(data, "editor")
    viewer = api_key(data, "viewer")
    rid = record(server, key, corpus["origin"].url("vod.m3u8"))
    before = get_json(server, "/api/v1/transcribers", viewer)["transcribers"]

    def post(body: bytes, token=key, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, _, answer = http("POST", server.url("/api/v1/transcribers"), body, headers)
        return status, json.loads(answer) if answer else None

    cases = [
        (b"{not json", key, 400, "invalid_json"),
        (json.dumps({"recording_id": 5}).encode(), key, 400, "invalid_json"),
        (json.dumps({"recording_id": rid, "wake_words": "computer"}).encode(), key, 400, "invalid_json"),
        (json.dumps({"recording_id": rid, "notes": "x" * 20_000}).encode(), key, 413, "payload_too_large"),
        (json.dumps({}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "url": corpus["origin"].url("vod.m3u8")}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": "f" * 32}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": "../../etc/passwd"}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "engine": "rm -rf /"}).encode(), key, 422, "unknown_engine"),
        (json.dumps({"recording_id": rid, "language": "fr-FR"}).encode(), key, 422, "unsupported_language"),
        (json.dumps({"recording_id": rid, "language": "<script>"}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "community_id": 999}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "wake_words": ["w"] * 21}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "wake_words": ["!!!"]}).encode(), key, 422, "validation_failed"),
        (json.dumps({"recording_id": rid, "start_at": "yesterday"}).encode(), key, 422, "validation_failed"),
        (json.dumps({"url": "file:///etc/passwd"}).encode(), key, 422, None),
        (json.dumps({"url": "gopher://127.0.0.1:25/"}).encode(), key, 422, None),
        (json.dumps({"recording_id": rid}).encode(), None, 401, "unauthenticated"),
        (json.dumps({"recording_id": rid}).encode(), "shk_" + "0" * 64, 401, None),
        (json.dumps({"recording_id": rid}).encode(), "not.a.jwt", 401, None),
        (json.dumps({"recording_id": rid}).encode(), viewer, 403, "forbidden"),
    ]
    for body, token, status, code in cases:
        got, answer = post(body, token)
        assert got == status, (body[:80], got, answer)
        assert answer["error"]["message"], answer
        if code:
            assert answer["error"]["code"] == code, (body[:80], answer)

    for path, status in [("/api/v1/transcribers/" + "0" * 32, 404), ("/api/v1/transcribers/..%2F..%2Fetc", 404),
                         ("/api/v1/recordings/" + "0" * 32 + "/transcript", 404), (f"/api/v1/recordings/{rid}/transcript?from=soon", 400),
                         (f"/api/v1/recordings/{rid}/transcript?from=20&to=10", 400), (f"/api/v1/recordings/{rid}/transcript?format=srt", 400),
                         ("/api/v1/transcripts/search", 400), ("/api/v1/transcripts/search?q=%21%21", 400),
                         ("/api/v1/transcripts/search?q=a&limit=0", 400), ("/api/v1/transcripts/search?q=" + "a" * 201, 400),
                         ("/api/v1/transcripts/search?q=a&recording_id=x", 400)]:
        got, _, answer = http("GET", server.url(path), headers={"Authorization": f"Bearer {viewer}"})
        assert got == status and json.loads(answer)["error"]["message"], (path, got, answer)
    for path in ["/api/v1/transcribers", f"/api/v1/recordings/{rid}/transcript", "/api/v1/transcripts/search?q=fire"]:
        assert http("GET", server.url(path))[0] == 401, path
    status, _, _ = http("DELETE", server.url("/api/v1/transcribers/" + "0" * 32), headers={"Authorization": f"Bearer {viewer}"})
    assert status == 403
    # Audio that is all silence, and segments ffmpeg cannot decode: said on the transcriber, counted.
    quiet = record(server, key, corpus["origin"].url("silent/vod.m3u8"))
    status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": quiet, "start_at": "beginning"})
    assert status == 201, made
    wait_until(lambda: transcriber(server, key, made["id"])["state"] == "finished", 60, "the silent recording to be transcribed")
    silent = transcriber(server, key, made["id"])
    assert silent["utterances"] == 0 and "no sound" in silent["error"], silent
    status, broken = post_json(server, "/api/v1/recordings", key, {"url": corpus["origin"].url("garbage/vod.m3u8")})
    assert status == 201, broken
    wait_until(lambda: get_json(server, f"/api/v1/recordings/{broken['id']}", key)["segments"] == 5, 30, "the garbage to be recorded")
    status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": broken["id"], "start_at": "beginning"})
    assert status == 201, made
    wait_until(lambda: transcriber(server, key, made["id"])["decode_errors"] == 5, 60, "five segments that do not decode")
    undecodable = transcriber(server, key, made["id"])
    assert "could not decode the audio" in undecodable["error"] and undecodable["utterances"] == 0, undecodable
    # An HLS link: recorded first (through the source guard), then transcribed.
    status, made = post_json(server, "/api/v1/transcribers", key, {"url": corpus["origin"].url("vod.m3u8"), "start_at": "beginning"})
    assert status == 201 and made["source_url"] == corpus["origin"].url("vod.m3u8"), made
    assert get_json(server, f"/api/v1/recordings/{made['recording_id']}", key)["source_url"] == corpus["origin"].url("vod.m3u8")
    http("DELETE", server.url(f"/api/v1/transcribers/{made['id']}"), headers={"Authorization": f"Bearer {key}"})

    # SQL in the search is text: nothing breaks, nothing found.
    assert get_json(server, "/api/v1/transcripts/search?q=%27%20OR%201%3D1%20--%20%25_", viewer)["results"] == []
    listed = get_json(server, "/api/v1/transcribers", viewer)["transcribers"]
    assert [t for t in listed if t["recording_id"] == rid] == before, "the bad requests created nothing"


def test_an_instance_without_the_engine_says_how_to_install_it(start_server, data_dir):
    server = start_server(extra_env={"STREAMHUB_STT_PYTHON": "/nonexistent/python3"})
    key = api_key(server.data_dir, "editor")
    engines = {e["name"]: e for e in get_json(server, "/api/v1/transcribers/engines", key)["engines"]}
    assert engines["pocketsphinx"]["available"] is False and "pip install pocketsphinx" in engines["pocketsphinx"]["detail"]
    status, recording = post_json(server, "/api/v1/recordings", key, {"url": "http://127.0.0.1:9/none.m3u8"})
    assert status == 201, recording
    status, answer = post_json(server, "/api/v1/transcribers", key, {"recording_id": recording["id"]})
    assert status == 503 and answer["error"]["code"] == "engine_unavailable" and "pip install pocketsphinx" in answer["error"]["message"]


def test_a_live_stream_is_captioned_as_it_is_spoken_to_the_right_clients_and_resumes_after_a_restart(start_server, data_dir, corpus):
    data = os.path.join(data_dir, "stt-live")
    created = cli(data, "overlay", "create", "desk-a")
    key_a = re.search(r"overlay key ([0-9a-f]{64})", created.stdout).group(1)
    community_a = int(re.search(r"community (\d+)", created.stdout).group(1))
    key_b = re.search(r"overlay key ([0-9a-f]{64})", cli(data, "overlay", "create", "desk-b").stdout).group(1)
    live = tempfile.mkdtemp(dir=data_dir)
    source = subprocess.Popen(speech.hls_arguments(corpus["wav"], os.path.join(live, "live.m3u8"), live=True))
    origin = Origin(live)
    server = start_server(data=data)
    try:
        key = api_key(data, "editor")
        viewer = api_key(data, "viewer")
        wait_until(lambda: os.path.exists(os.path.join(live, "live.m3u8")), 20, "the live source to start")
        status, made = post_json(server, "/api/v1/recordings", key, {"url": origin.url("live.m3u8"), "retention": "1h"})
        assert status == 201, made
        rid = made["id"]
        wait_until(lambda: get_json(server, f"/api/v1/recordings/{rid}", key)["state"] == "recording", 20, "the recording to start")

        captions = Events(server.ws_url(f"/ws/captions/{community_a}?key={key_a}"))
        as_viewer = Events(server.ws_url(f"/events?token={viewer}"))
        as_b = Events(server.ws_url(f"/events?key={key_b}"))
        as_service = Events(server.ws_url(f"/events?key={SERVICE_KEY}"))
        status, made = post_json(server, "/api/v1/transcribers", key, {"recording_id": rid, "community_id": community_a})
        assert status == 201, made
        tid = made["id"]
        wait_until(lambda: len([c for c in captions.frames if c.get("is_final")]) >= 2, 60, "two spoken sentences captioned live")
        for client in (captions, as_viewer, as_b, as_service):
            client.close()
        said = [f for f in as_viewer.frames if f.get("event") == "transcription" and f.get("transcriber_id") == tid]
        assert said and all(f["recording_id"] == rid for f in said), as_viewer.frames[-5:]
        assert [f for f in as_service.frames if f.get("event") == "transcription" and f.get("transcriber_id") == tid]
        assert not [f for f in as_b.frames if f.get("event") in ("transcription", "wake_word", "caption", "transcriber_state")], as_b.frames
        # Captions arrive a few seconds after the words were spoken (the segment, the pause that ends the utterance).
        final = next(c for c in captions.frames if c.get("is_final"))
        assert final["text"] and final["detected_lang"] == "en-US"
        before = transcriber(server, key, tid)
        assert before["state"] == "running" and before["utterances"] >= 2, before

        # A restart: the transcriber is resumed where it was, in a new session.
        server.stop()
        server = start_server(data=data)
        wait_until(lambda: transcriber(server, key, tid)["state"] == "running", 30, "the transcriber to resume after the restart")
        wait_until(lambda: transcriber(server, key, tid)["utterances"] > before["utterances"], 60, "a sentence transcribed after the restart")
        after = transcriber(server, key, tid)
        assert after["session_id"] != before["session_id"] and after["position"] > before["position"], (before, after)
        lines = get_json(server, f"/api/v1/recordings/{rid}/transcript", viewer)["lines"]
        assert {line["session_id"] for line in lines} == {before["session_id"], after["session_id"]}
        starts = [line["start"] for line in lines]
        assert starts == sorted(starts) and len(set(starts)) == len(starts), "no line transcribed twice across the restart"
    finally:
        source.kill()
        source.wait()
        origin.stop()


def test_a_programs_output_is_transcribed(start_server, data_dir, corpus):
    live = tempfile.mkdtemp(dir=data_dir)
    source = subprocess.Popen(speech.hls_arguments(corpus["wav"], os.path.join(live, "live.m3u8"), live=True))
    origin = Origin(live)
    server = start_server()
    try:
        key = api_key(server.data_dir, "admin")
        wait_until(lambda: os.path.exists(os.path.join(live, "live.m3u8")), 20, "the live source to start")
        status, program = post_json(server, "/api/v1/programs", key, {"name": "speech", "width": 160, "height": 90, "fps": 10, "preset": "ultrafast",
                                                                       "video_bitrate": 200})
        assert status == 201, program
        status, layer = post_json(server, "/api/v1/programs/speech/layers", key, {"kind": "source", "url": origin.url("live.m3u8"), "x": 0, "y": 0,
                                                                                  "width": 160, "height": 90})
        assert status == 201, layer
        status, _, answer = http("PATCH", server.url("/api/v1/programs/speech"), json.dumps({"audio_layer_id": layer["id"]}).encode(),
                                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert status == 200, answer
        assert post_json(server, "/api/v1/programs/speech/start", key)[0] == 200
        status, made = post_json(server, "/api/v1/transcribers", key, {"program": "speech"})
        assert status == 201 and made["source_url"] == "program://speech/live.m3u8", made
        recording = get_json(server, f"/api/v1/recordings/{made['recording_id']}", key)
        assert recording["source_url"] == "program://speech/live.m3u8"
        # The program's output (its source's speech) is recorded from disk and transcribed.
        wait_until(lambda: transcriber(server, key, made["id"])["utterances"] >= 2, 90, "the program's speech to be transcribed")
        lines = get_json(server, f"/api/v1/recordings/{made['recording_id']}/transcript", key)["lines"]
        heard = set(speech.words(" ".join(line["text"] for line in lines)))
        spoken = set(speech.words(" ".join(speech.CORPUS)))
        assert len(heard & spoken) >= 5, lines
        # A second transcriber of the same program reuses its recording; an unknown program is refused.
        status, again = post_json(server, "/api/v1/transcribers", key, {"program": "speech", "engine": "pocketsphinx"})
        assert status == 201 and again["recording_id"] == made["recording_id"], again
        status, answer = post_json(server, "/api/v1/transcribers", key, {"program": "nope"})
        assert status == 422, answer
        # Users cannot name a program URL themselves: the source guard refuses the scheme.
        status, answer = post_json(server, "/api/v1/recordings", key, {"url": "program://speech/live.m3u8"})
        assert status == 422 and answer["error"]["code"] == "url_refused", answer
    finally:
        source.kill()
        source.wait()
        origin.stop()


def test_another_instance_takes_a_transcriber_over_when_its_owner_dies(start_server, postgres, data_dir, corpus):
    """Two instances on PostgreSQL and one recordings volume: kill -9 the one running a transcriber and the
    other takes it over within the lease, in a new session, further on."""
    import signal
    url = postgres.create_database()
    shared = os.path.join(data_dir, "stt-shared")  # one volume for both instances' recordings
    os.makedirs(shared)
    live = tempfile.mkdtemp(dir=data_dir)
    source = subprocess.Popen(speech.hls_arguments(corpus["wav"], os.path.join(live, "live.m3u8"), live=True))
    origin = Origin(live)
    common = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_RECORDER_LEASE": "6", "STREAMHUB_RECORDER_PREVIEW_INTERVAL": "0",
              "STREAMHUB_STT_COMMANDS": f"steady=python3 {ENGINE}"}
    try:
        a = start_server(data=shared, extra_env={**common, "STREAMHUB_INSTANCE_ID": "instance-a"})
        b = start_server(data=shared, extra_env={**common, "STREAMHUB_INSTANCE_ID": "instance-b"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
        env.update({"STREAMHUB_DATA_DIR": shared, "STREAMHUB_DATABASE_URL": url})
        from conftest import BINARY
        created = subprocess.run([BINARY, "apikey", "create", "--name", "failover", "--role", "editor"], capture_output=True, text=True, env=env, timeout=60)
        key = re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)
        wait_until(lambda: os.path.exists(os.path.join(live, "live.m3u8")), 20, "the live source to start")
        status, rec = post_json(a, "/api/v1/recordings", key, {"url": origin.url("live.m3u8")})
        assert status == 201 and rec["owner"] == "instance-a", rec
        status, made = post_json(a, "/api/v1/transcribers", key, {"recording_id": rec["id"], "engine": "steady"})
        assert status == 201, made
        tid = made["id"]
        wait_until(lambda: transcriber(b, key, tid)["utterances"] >= 2 and transcriber(b, key, tid)["owner"], 40,
                   "the transcriber to run (seen from instance b)")
        before = transcriber(b, key, tid)
        victim = a if before["owner"] == "instance-a" else b
        survivor = b if victim is a else a
        victim.stop(signal.SIGKILL)
        survivor_name = "instance-a" if survivor is a else "instance-b"
        wait_until(lambda: transcriber(survivor, key, tid)["owner"] == survivor_name, 30, "the survivor to take the lapsed lease")
        wait_until(lambda: transcriber(survivor, key, tid)["utterances"] > before["utterances"] + 1, 40, "the survivor to go on transcribing")
        after = transcriber(survivor, key, tid)
        assert after["state"] == "running" and after["session_id"] != before["session_id"] and after["position"] > before["position"], after
        lines = get_json(survivor, f"/api/v1/recordings/{rec['id']}/transcript", key)["lines"]
        assert {line["session_id"] for line in lines} >= {before["session_id"], after["session_id"]}
    finally:
        source.kill()
        source.wait()
        origin.stop()
