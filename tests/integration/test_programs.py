"""The Stream Manager with real parts: a program shows a recording of an ffmpeg-made live HLS source, its output
is checked with ffprobe and by its pixels, and it survives kill -9 of the server."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import http, wait_until
from test_discovery import api_key, get_json, post_json
from test_recorder import live_source  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg is not installed")


def state(server, key, name):
    return get_json(server, f"/api/v1/programs/{name}", key)["stream"]


def frames(server, key, name, count=2, width=320, height=180):
    """`count` decoded RGB frames of the program's HLS output, read through StreamHub with the key."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-headers", f"Authorization: Bearer {key}\r\n", "-i", server.url(f"/programs/{name}/live.m3u8"),
                          "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=30)
    size = width * height * 3
    if out.returncode != 0 or len(out.stdout) < size * count:
        return None
    return [out.stdout[i * size:(i + 1) * size] for i in range(count)]


def colourful(frame) -> bool:
    """testsrc's bars: many pixels far from the dark canvas."""
    bright = sum(1 for i in range(0, len(frame), 3 * 97) if max(frame[i], frame[i + 1], frame[i + 2]) > 120)
    return bright > len(frame) // (3 * 97) // 3


def ffmpeg_processes(data) -> int:
    found = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"ffmpeg") and os.path.join(data, "programs").encode() in b"".join(cmdline):
                found += 1
    return found


def test_a_program_shows_a_recording_and_comes_back_after_kill_9(start_server, data_dir, live_source):
    data = os.path.join(data_dir, "program")
    key = api_key(data, "admin")
    server = start_server(data=data)
    status, recording = post_json(server, "/api/v1/recordings", key, {"url": live_source.url()})
    assert status in (200, 201, 202), recording
    rid = recording["id"]
    wait_until(lambda: get_json(server, f"/api/v1/recordings/{rid}", key)["segments"] >= 3, 30, "the recording to have 3 segments")

    status, program = post_json(server, "/api/v1/programs", key, {"name": "news", "width": 320, "height": 180, "fps": 10, "preset": "ultrafast",
                                                                   "video_bitrate": 500})
    assert status == 201, program
    status, layer = post_json(server, "/api/v1/programs/news/layers", key, {"kind": "source", "recording_id": rid, "x": 0, "y": 0,
                                                                            "width": 320, "height": 180})
    assert status == 201, layer
    status, _ = post_json(server, "/api/v1/programs/news/layers", key, {"kind": "text", "text": "LIVE", "x": 10, "y": 10, "width": 80,
                                                                       "height": 30})
    assert status == 201
    status, _, audio = http("PATCH", server.url("/api/v1/programs/news"), json.dumps({"audio_layer_id": layer["id"]}).encode(),
                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert status == 200, audio
    assert post_json(server, "/api/v1/programs/news/start", key)[0] == 200
    wait_until(lambda: state(server, key, "news")["isLive"] and state(server, key, "news")["frameCount"] > 20, 40, "the program to go live")

    # The output: H.264 320x180 with AAC audio, showing the recording's moving test pattern.
    probe = subprocess.run(["ffprobe", "-v", "error", "-headers", f"Authorization: Bearer {key}\r\n", "-show_streams", "-of", "json",
                            server.url("/programs/news/live.m3u8")], capture_output=True, text=True, timeout=30)
    streams = json.loads(probe.stdout)["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in streams)
    wait_until(lambda: (f := frames(server, key, "news")) is not None and colourful(f[0]) and f[0] != f[1], 30,
               "the recording's moving pattern in the output")
    live = state(server, key, "news")
    assert live["targetFPS"] == 10 and live["droppedFrames"] >= 0 and live["error"] is None

    # Without credentials there is nothing to see.
    assert http("GET", server.url("/programs/news/live.m3u8"))[0] == 401

    # kill -9: the server's ffmpeg is left behind; the next start stops it and renders the program again.
    server.stop(signal.SIGKILL)
    assert ffmpeg_processes(data) == 1
    server = start_server(data=data)
    wait_until(lambda: state(server, key, "news")["isLive"] and state(server, key, "news")["frameCount"] > 10, 40,
               "the program to resume after kill -9")
    assert "stopped an ffmpeg left over by an earlier run" in server.logs()
    assert ffmpeg_processes(data) == 1
    wait_until(lambda: (f := frames(server, key, "news")) is not None and colourful(f[0]), 30, "the output after the restart")

    assert post_json(server, "/api/v1/programs/news/stop", key)[0] == 200
    wait_until(lambda: ffmpeg_processes(data) == 0, 15, "the renderer to stop")
    server.stop()
