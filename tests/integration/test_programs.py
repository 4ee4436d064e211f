"""The Stream Manager with real parts: a program shows a recording of an ffmpeg-made live HLS source, its output
is checked with ffprobe and by its pixels, and it survives kill -9 of the server."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import free_port, http, wait_until
from test_discovery import api_key, get_json, post_json
from test_recorder import LiveSource, live_source  # noqa: F401 (fixture)

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
    # A URL source is read through a recording of it: the running one is reused.
    status, by_url = post_json(server, "/api/v1/programs/news/layers", key, {"kind": "source", "url": live_source.url(), "x": 240, "y": 0,
                                                                             "width": 80, "height": 45, "visible": False})
    assert status == 201 and by_url["recording_id"] == rid and by_url["url"] == live_source.url(), by_url
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


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


class RtmpServer:
    """nginx with the RTMP module on loopback; its on_publish callback counts publishing sessions by key."""

    def __init__(self, directory: str):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs
        import threading

        self.directory = directory
        self.port = free_port()
        self.publishes: list[str] = []
        server = self

        class Callback(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                if self.path == "/publish":
                    server.publishes.append(form.get("name", [""])[0])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.callback = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
        self.callback.daemon_threads = True
        threading.Thread(target=self.callback.serve_forever, daemon=True).start()
        hook = f"http://127.0.0.1:{self.callback.server_address[1]}"
        with open(os.path.join(directory, "nginx.conf"), "w") as conf:
            conf.write(f"""load_module {RTMP_MODULE};
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    application live {{ live on; record off; on_publish {hook}/publish; }}
  }}
}}
""")
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen([NGINX, "-c", os.path.join(self.directory, "nginx.conf"), "-p", self.directory],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.accepts(), 10, "nginx-rtmp to listen")

    def accepts(self) -> bool:
        import socket
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"


@pytest.fixture
def rtmp(data_dir):
    if NGINX is None or not os.path.exists(RTMP_MODULE):
        pytest.skip("nginx with the RTMP module is not installed (apt-get install nginx-light libnginx-mod-rtmp)")
    directory = os.path.join(data_dir, "rtmp")
    os.makedirs(directory, exist_ok=True)
    server = RtmpServer(directory)
    yield server
    server.stop()
    server.callback.shutdown()


def rtmp_frames(url, count=2, width=320, height=180):
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, timeout=30)
    size = width * height * 3
    if out.returncode != 0 or len(out.stdout) < size * count:
        return None
    return [out.stdout[i * size:(i + 1) * size] for i in range(count)]


def red_at(frame, x, y, width=320) -> bool:
    i = (y * width + x) * 3
    return frame[i] > 180 and frame[i + 1] < 80 and frame[i + 2] < 80


def patch_json(server, path, key, body):
    status, _, text = http("PATCH", server.url(path), json.dumps(body).encode(), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    return status, json.loads(text or b"null")


def test_a_program_pushes_to_rtmp_changes_live_without_reconnecting_and_keeps_keys_secret(start_server, data_dir, rtmp):
    data = os.path.join(data_dir, "push")
    key = api_key(data, "admin")
    editor = api_key(data, "editor")
    server = start_server(data=data)
    secret = "sk_live_7f3a9c2e5b1d"
    assert post_json(server, "/api/v1/programs", key, {"name": "air", "width": 320, "height": 180, "fps": 10, "preset": "ultrafast",
                                                        "video_bitrate": 400})[0] == 201
    status, box = post_json(server, "/api/v1/programs/air/layers", key, {"kind": "text", "text": ".", "x": 200, "y": 100, "width": 80,
                                                                         "height": 50, "visible": False, "style": {"background": "#ff0000"}})
    assert status == 201, box

    # Bad targets are refused with a reason, and nothing is stored.
    for url, why in [("http://127.0.0.1/live/key", "scheme"), ("rtmp://169.254.169.254/live/key", "metadata"),
                     (f"rtmp://127.0.0.1:{rtmp.port}/live", "application and a stream key"), ("rtmp://user@127.0.0.1/live/k", "credentials"),
                     ("rtmp://127.0.0.1/" + "k" * 1100, "1024"), ("rtmp://exa mple.com/live/k", "spaces")]:
        status, error = post_json(server, "/api/v1/programs/air/outputs", key, {"url": url})
        assert status == 422 and why in json.dumps(error), (url, status, error)
    for body in [b"{", b'{"url": 5}', b"[]", b'{"url": "' + b"x" * 20000 + b'"}']:
        status, _, text = http("POST", server.url("/api/v1/programs/air/outputs"), body, {"Authorization": f"Bearer {key}",
                                                                                         "Content-Type": "application/json"})
        assert status in (400, 413, 422), (body[:20], status, text)
    viewer = api_key(data, "viewer")
    assert post_json(server, "/api/v1/programs/air/outputs", viewer, {"url": rtmp.url(secret)})[0] == 403
    assert get_json(server, "/api/v1/programs/air/outputs", key)["outputs"] == []

    status, output = post_json(server, "/api/v1/programs/air/outputs", editor, {"url": rtmp.url(secret)})
    assert status == 201, output
    assert output["url"] == f"rtmp://127.0.0.1:{rtmp.port}/live/…5b1d", output
    assert post_json(server, "/api/v1/programs/air/outputs", key, {"url": rtmp.url(secret)})[0] == 409
    for path in ["/api/v1/programs/air", "/api/v1/programs/air/outputs", "/api/v1/programs"]:
        assert secret not in json.dumps(get_json(server, path, key)), path

    assert post_json(server, "/api/v1/programs/air/start", key)[0] == 200
    wait_until(lambda: rtmp.publishes == [secret], 40, "the program to publish to the RTMP server")

    # What the RTMP server receives: H.264 320x180 at 10 fps with AAC audio.
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", rtmp.url(secret)], capture_output=True, text=True, timeout=30)
    streams = json.loads(probe.stdout)["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"], video["r_frame_rate"]) == ("h264", 320, 180, "10/1"), video
    assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in streams)

    # The red box appears where it is put and goes when hidden, in frames received over RTMP, without a reconnect.
    wait_until(lambda: (f := rtmp_frames(rtmp.url(secret))) is not None and not red_at(f[0], 240, 125), 30, "the frame without the box")
    assert patch_json(server, f"/api/v1/programs/air/layers/{box['id']}", key, {"visible": True})[0] == 200
    wait_until(lambda: (f := rtmp_frames(rtmp.url(secret))) is not None and red_at(f[-1], 240, 125), 30, "the red box over RTMP")
    assert patch_json(server, f"/api/v1/programs/air/layers/{box['id']}", key, {"x": 20, "y": 20})[0] == 200
    wait_until(lambda: (f := rtmp_frames(rtmp.url(secret))) is not None and red_at(f[-1], 60, 45) and not red_at(f[-1], 240, 125), 30,
               "the box moved")
    assert patch_json(server, f"/api/v1/programs/air/layers/{box['id']}", key, {"visible": False})[0] == 200
    wait_until(lambda: (f := rtmp_frames(rtmp.url(secret))) is not None and not red_at(f[-1], 60, 45), 30, "the box hidden")
    assert rtmp.publishes == [secret], "the RTMP session stayed connected through live changes"
    assert get_json(server, "/api/v1/programs/air", key)["stream"]["restarts"] == 0

    # The RTMP server goes away and comes back: the program keeps its HLS going, fails, reconnects, and
    # the error it reports (and logs) never shows the key.
    rtmp.stop()
    wait_until(lambda: any(o["failures"] > 0 for o in get_json(server, "/api/v1/programs/air", key)["stream"]["outputs"]), 20,
               "the failure in the state")
    program = get_json(server, "/api/v1/programs/air", key)
    assert program["stream"]["isLive"] and program["stream"]["restarts"] == 0
    assert secret not in json.dumps(program)
    rtmp.start()
    wait_until(lambda: rtmp.publishes == [secret, secret], 30, "the output to reconnect")
    assert get_json(server, "/api/v1/programs/air", key)["stream"]["restarts"] == 0
    assert secret not in server.logs()
    metrics = http("GET", server.url("/metrics"), headers={"Authorization": f"Bearer {key}"})[2].decode()
    assert 'streamhub_program_output_failures_total{program="air"}' in metrics and secret not in metrics

    # Removing the output ends the push.
    output_id = get_json(server, "/api/v1/programs/air/outputs", key)["outputs"][0]["id"]
    assert http("DELETE", server.url(f"/api/v1/programs/air/outputs/{output_id}"), headers={"Authorization": f"Bearer {key}"})[0] == 204
    assert get_json(server, "/api/v1/programs/air/outputs", key)["outputs"] == []
    assert post_json(server, "/api/v1/programs/air/stop", key)[0] == 200
    server.stop()


def colour_at(frame, x, y, width=320):
    i = (y * width + x) * 3
    return frame[i], frame[i + 1], frame[i + 2]


def test_a_wall_layer_follows_its_wall_live_and_shows_a_slate_for_a_dead_source(start_server, data_dir):
    import tempfile
    data = os.path.join(data_dir, "mosaic")
    key = api_key(data, "admin")
    server = start_server(data=data)
    blue = LiveSource(tempfile.mkdtemp(dir=data_dir), "color=c=0x0000ff:s=320x240:r=25")
    green = LiveSource(tempfile.mkdtemp(dir=data_dir), "color=c=0x00ff00:s=320x240:r=25")
    try:
        recordings = {}
        for name, source in (("blue", blue), ("green", green)):
            status, made = post_json(server, "/api/v1/recordings", key, {"url": source.url()})
            assert status in (200, 201, 202), made
            recordings[name] = made["id"]
        for rid in recordings.values():
            wait_until(lambda: get_json(server, f"/api/v1/recordings/{rid}", key)["segments"] >= 2, 30, "two recorded segments")
        assert post_json(server, "/api/v1/walls", key, {"name": "mix", "columns": 2, "rows": 1})[0] == 201
        assert http("PUT", server.url("/api/v1/walls/mix/cells/1"), json.dumps({"recording_id": recordings["blue"]}).encode(),
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})[0] == 200

        assert post_json(server, "/api/v1/programs", key, {"name": "mosaic", "width": 320, "height": 180, "fps": 10, "preset": "ultrafast",
                                                            "video_bitrate": 400})[0] == 201
        # A wall that does not exist, or one too big to decode live, is refused.
        assert post_json(server, "/api/v1/programs/mosaic/layers", key, {"kind": "wall", "wall": "nope"})[0] == 422
        assert post_json(server, "/api/v1/walls", key, {"name": "huge", "columns": 5, "rows": 4})[0] == 201
        status, error = post_json(server, "/api/v1/programs/mosaic/layers", key, {"kind": "wall", "wall": "huge"})
        assert status == 422 and "at most 16 cells" in json.dumps(error), error
        status, layer = post_json(server, "/api/v1/programs/mosaic/layers", key, {"kind": "wall", "wall": "mix", "x": 0, "y": 0,
                                                                                  "width": 320, "height": 180})
        assert status == 201, layer
        assert post_json(server, "/api/v1/programs/mosaic/start", key)[0] == 200
        wait_until(lambda: state(server, key, "mosaic")["isLive"], 40, "the program to go live")

        def tiles():
            f = frames(server, key, "mosaic", count=1)
            # Inside the pictures (4:3 sources are letterboxed in 160x180 tiles), above the slate's "No signal".
            return None if f is None else (colour_at(f[0], 80, 60), colour_at(f[0], 240, 60))

        blue_ = lambda c: c[2] > 150 and c[0] < 80 and c[1] < 80  # noqa: E731
        green_ = lambda c: c[1] > 150 and c[0] < 80 and c[2] < 80  # noqa: E731
        slate_ = lambda c: max(c) < 90  # noqa: E731 (the dark "No signal" tile)
        wait_until(lambda: (t := tiles()) is not None and blue_(t[0]) and slate_(t[1]), 30, "cell 1 blue, empty cell 2 a slate")

        # A tile swap on the wall shows in the program without restarting it.
        assert http("PUT", server.url("/api/v1/walls/mix/cells/2"), json.dumps({"recording_id": recordings["green"]}).encode(),
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})[0] == 200
        wait_until(lambda: (t := tiles()) is not None and blue_(t[0]) and green_(t[1]), 30, "cell 2 green")
        assert state(server, key, "mosaic")["restarts"] == 0

        # A source layer over the corner: another recording is a live switch too.
        status, corner = post_json(server, "/api/v1/programs/mosaic/layers", key, {"kind": "source", "recording_id": recordings["green"],
                                                                                   "x": 0, "y": 0, "width": 80, "height": 44})
        assert status == 201, corner

        def corner_colour():
            f = frames(server, key, "mosaic", count=1)
            return None if f is None else colour_at(f[0], 40, 22)

        wait_until(lambda: (c := corner_colour()) is not None and green_(c), 30, "the corner source green")
        restarts = state(server, key, "mosaic")["restarts"]
        status, _, text = http("PATCH", server.url(f"/api/v1/programs/mosaic/layers/{corner['id']}"),
                               json.dumps({"recording_id": recordings["blue"]}).encode(), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert status == 200, text
        wait_until(lambda: (c := corner_colour()) is not None and blue_(c), 30, "the corner source switched to blue")
        assert state(server, key, "mosaic")["restarts"] == restarts, "switching a source's recording is live"

        # The blue source dies: its tile becomes the slate and the program stays live.
        blue.stop()
        wait_until(lambda: (t := tiles()) is not None and slate_(t[0]) and green_(t[1]), 40, "the dead source's slate")
        wait_until(lambda: (c := corner_colour()) is not None and slate_(c), 20, "the dead source's slate in the source layer")
        live = state(server, key, "mosaic")
        assert live["isLive"] and live["restarts"] == restarts and live["error"] is None
        assert post_json(server, "/api/v1/programs/mosaic/stop", key)[0] == 200
    finally:
        for source in (blue, green):
            source.stop()
            source.origin.stop()
        server.stop()


def test_the_chat_channel_carries_linked_chat_moderation_and_presence(start_server, data_dir):
    from websockets.sync.client import connect
    from fake_discord import FakeGateway
    gateway = FakeGateway(token="bot-token-123", heartbeat_ms=400)
    data = os.path.join(data_dir, "chat")
    key = api_key(data, "admin")
    server = start_server(data=data, extra_env={"STREAMHUB_DISCORD_TOKEN": "bot-token-123", "STREAMHUB_DISCORD_CHANNELS": "111,222",
                                                "STREAMHUB_DISCORD_GATEWAY_URL": gateway.url})
    try:
        assert post_json(server, "/api/v1/programs", key, {"name": "talk", "width": 320, "height": 180})[0] == 201
        patch = lambda body: http("PATCH", server.url("/api/v1/programs/talk"), json.dumps(body).encode(),  # noqa: E731
                                  {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        for bad in [["discord"], ["Discord:1"], ["twitch:" + "x" * 300], ["twitch:a b"], ["x:1"] * 21, "discord:111", [5]]:
            status, _, text = patch({"chat_channels": bad})
            assert status in (400, 422), (bad, status, text)
        status, _, text = patch({"chat_channels": ["discord:111", "twitch:#SomeChannel"]})
        assert status == 200 and json.loads(text)["chat_channels"] == ["discord:111", "twitch:somechannel"], text
        wait_until(lambda: get_json(server, "/health", key)["services"]["discord_gateway"]["status"] == "running", 20, "the gateway READY")

        url = server.url(f"/api/stream/ws?target=chat&program=talk&token={key}").replace("http://", "ws://")
        with connect(url) as chat:
            welcome = json.loads(chat.recv(timeout=10))
            assert welcome["type"] == "welcome" and welcome["channels"] == ["discord:111", "twitch:somechannel"]

            def next_of(kind):
                while True:
                    message = json.loads(chat.recv(timeout=10))
                    if message["type"] == kind:
                        return message["payload"]

            # A message in a linked channel arrives; one in another watched channel does not.
            gateway.message("222", "not linked to this program")
            gateway.message("111", "Hello from the newsroom <b>bold</b>", author="ada")
            line = next_of("chat")
            assert (line["program"], line["source"], line["channel"], line["author"], line["text"]) == (
                "talk", "discord", "111", "Ada", "Hello from the newsroom <b>bold</b>"), line
            # A moderator deletes it: the channel says which message.
            gateway.send({"op": 0, "t": "MESSAGE_DELETE", "s": 99, "d": {"id": line["id"], "channel_id": "111", "guild_id": "7"}})
            deleted = next_of("moderation")
            assert (deleted["action"], deleted["message_id"], deleted["channel"]) == ("message_deleted", line["id"], "111")

            # Presence: a control page says it is here.
            status, _, text = http("POST", server.url("/api/v1/programs/talk/presence"), json.dumps({"session": "a" * 20, "page": "control"}).encode(),
                                   {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            assert status == 202, text
            here = next_of("presence")
            assert (here["program"], here["session"], here["state"]) == ("talk", "a" * 20, "here")
            for body in [{"session": "short"}, {"session": "a" * 20, "page": "display"}, {"session": "a" * 20, "state": "maybe"}]:
                assert http("POST", server.url("/api/v1/programs/talk/presence"), json.dumps(body).encode(),
                            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})[0] == 422, body
    finally:
        gateway.stop()
        server.stop()


def test_a_source_layer_plays_its_recording_minutes_behind_live(start_server, data_dir):
    """Two layers of one recording: live on the left, 10 s behind on the right. The source turns from red to
    green at t=30 s; the live half turns green first while the rewound half stays red, then follows."""
    import tempfile
    data = os.path.join(data_dir, "timeshift")
    key = api_key(data, "admin")
    server = start_server(data=data)
    source = LiveSource(tempfile.mkdtemp(dir=data_dir), "color=c=0xff0000:s=320x240:r=25,drawbox=c=0x00ff00:t=fill:enable='gte(t,30)'")
    try:
        status, recording = post_json(server, "/api/v1/recordings", key, {"url": source.url()})
        assert status in (200, 201, 202), recording
        rid = recording["id"]
        assert post_json(server, "/api/v1/programs", key, {"name": "shift", "width": 320, "height": 180, "fps": 10, "preset": "ultrafast",
                                                            "video_bitrate": 400})[0] == 201
        status, live = post_json(server, "/api/v1/programs/shift/layers", key, {"kind": "source", "recording_id": rid, "x": 0, "y": 0,
                                                                                "width": 160, "height": 180})
        assert status == 201, live
        status, behind = post_json(server, "/api/v1/programs/shift/layers", key, {"kind": "source", "recording_id": rid, "x": 160, "y": 0,
                                                                                  "width": 160, "height": 180, "rewind_seconds": 10})
        assert status == 201 and behind["rewind_seconds"] == 10, behind
        assert post_json(server, "/api/v1/programs/shift/start", key)[0] == 200

        def halves():
            f = frames(server, key, "shift", count=1)
            if f is None:
                return None
            return colour_at(f[0], 80, 90), colour_at(f[0], 240, 90)
        red = lambda rgb: rgb[0] > 180 and rgb[1] < 80 and rgb[2] < 80  # noqa: E731
        green = lambda rgb: rgb[1] > 180 and rgb[0] < 80 and rgb[2] < 80  # noqa: E731
        wait_until(lambda: (h := halves()) is not None and red(h[0]) and red(h[1]), 40, "both halves red before the switch")
        wait_until(lambda: (h := halves()) is not None and green(h[0]), 40, "the live half green after the switch")
        h = halves()
        assert h is not None and green(h[0]) and red(h[1]), f"the rewound half is still red: {h}"
        wait_until(lambda: (h := halves()) is not None and green(h[1]), 40, "the rewound half green ten seconds later")
        assert state(server, key, "shift")["restarts"] == 0
        assert post_json(server, "/api/v1/programs/shift/stop", key)[0] == 200
    finally:
        source.stop()
        source.origin.stop()
        server.stop()


def database_key(database_url: str, role: str) -> str:
    from conftest import BINARY
    import re
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": database_url}
    created = subprocess.run([BINARY, "apikey", "create", "--name", f"tests-{role}", "--role", role], capture_output=True, text=True, timeout=60, env=env)
    assert created.returncode == 0, created.stderr
    return re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)


def test_with_two_instances_a_program_renders_once_is_served_by_both_and_moves_when_its_instance_dies(start_server, postgres, data_dir, rtmp):
    """Two instances on one PostgreSQL, each with its own disk: the program renders on one of them (one ffmpeg,
    one RTMP publish), the other serves its HLS, preview and state from it with the caller's credentials, and
    takes it over when the first dies with its processes."""
    url = postgres.create_database()
    key = database_key(url, "admin")
    viewer = database_key(url, "viewer")
    # One JWT secret for both, as the README asks of a deployment (page sessions work on either instance).
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_JOB_LEASE": "4", "STREAMHUB_JWT_SECRET": "two-instances-one-secret-0123456789abcdef"}
    disks = {name: os.path.join(data_dir, f"disk-{name}") for name in ("a", "b")}
    for disk in disks.values():
        os.makedirs(disk)
    servers = {name: start_server(data=disks[name], extra_env={**env, "STREAMHUB_INSTANCE_ID": f"render-{name}"}) for name in ("a", "b")}
    secret = "sk_live_0123456789ab"
    a = servers["a"]
    assert post_json(a, "/api/v1/programs", key, {"name": "desk", "width": 320, "height": 180, "fps": 10, "preset": "ultrafast",
                                                   "video_bitrate": 400})[0] == 201
    assert post_json(a, "/api/v1/programs/desk/layers", key, {"kind": "text", "text": "Night desk", "x": 0, "y": 0, "width": 320, "height": 180,
                                                               "style": {"background": "#ff0000"}})[0] == 201
    assert post_json(a, "/api/v1/programs/desk/outputs", key, {"url": rtmp.url(secret)})[0] == 201
    assert post_json(a, "/api/v1/programs/desk/start", key)[0] == 200

    def renderers():
        return {name: ffmpeg_processes(disk) for name, disk in disks.items()}

    wait_until(lambda: sum(renderers().values()) == 1 and all(state(s, key, "desk")["frameCount"] > 20 for s in servers.values()), 40,
               "the program to render, with its state on both instances")
    holder = next(name for name, count in renderers().items() if count == 1)
    other = "b" if holder == "a" else "a"
    # Both instances have had several lease periods (4 s, renewed every 1.3 s) to try: one renders.
    wait_until(lambda: rtmp.publishes == [secret], 20, "the one publish")
    deadline = state(servers[other], key, "desk")["frameCount"] + 30
    wait_until(lambda: state(servers[other], key, "desk")["frameCount"] > deadline, 20, "the state to keep coming to the other instance")
    assert renderers() == {holder: 1, other: 0} and rtmp.publishes == [secret]
    assert state(servers[other], key, "desk")["isLive"]

    # The other instance serves the output from the instance rendering it, with the caller's credentials.
    wait_until(lambda: (f := frames(servers[other], viewer, "desk")) is not None and colour_at(f[0], 160, 150)[0] > 200, 30,
               "the red program through the other instance")
    status, headers, jpeg = http("GET", servers[other].url("/programs/desk/preview-320.jpg"), headers={"Authorization": f"Bearer {viewer}"})
    assert status == 200 and headers.get("Content-Type") == "image/jpeg" and jpeg[:2] == b"\xff\xd8", (status, headers)
    for credentials in [{}, {"Authorization": "Bearer shk_" + "0" * 64}]:
        assert http("GET", servers[other].url("/programs/desk/live.m3u8"), headers=credentials)[0] == 401
    # The control page on the other instance shows the live preview (fetched through it) with its state.
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        from types import SimpleNamespace
        from test_pages import browser, open_page, wait_for
        with browser(1200, 800) as page:
            open_page(page, SimpleNamespace(server=servers[other]), "/programs/desk/control", viewer)
            wait_for(page, lambda d: int(d.execute_script("return document.body.dataset.previewFrames || 0")) >= 3, 30,
                     "preview frames on the instance that does not render the program")
            assert page.execute_script("return document.getElementById('preview').naturalWidth") == 320
    # A request marked as passed on already is answered from the instance's own disk (no loops).
    assert http("GET", servers[other].url("/programs/desk/live.m3u8"),
                headers={"Authorization": f"Bearer {viewer}", "X-StreamHub-Proxied": "render-x"})[0] == 404

    # The instance rendering it dies with its processes (a crashed container): the other takes it over.
    servers[holder].stop(signal.SIGKILL)
    servers[holder].stop_group()
    wait_until(lambda: renderers()[other] == 1 and state(servers[other], key, "desk")["frameCount"] > 20, 40, "the program to move")
    wait_until(lambda: rtmp.publishes == [secret, secret], 30, "the publish from the other instance")
    assert frames(servers[other], viewer, "desk") is not None

    # Stopped: nothing renders any more.
    assert post_json(servers[other], "/api/v1/programs/desk/stop", key)[0] == 200
    wait_until(lambda: renderers()[other] == 0, 15, "the renderer to stop")
    assert not state(servers[other], key, "desk")["isLive"]
