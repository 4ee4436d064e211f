"""Discovery and status checking through the real binary: a real IRC server (ngircd) standing in for
Twitch chat, a local Discord gateway that follows Discord's documented protocol, a live HLS stream made
by ffmpeg, and yt-dlp's generic extractor on a local page."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import cli, free_port, http, wait_until
from fake_discord import FakeGateway

NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd") else None)


def api_key(data: str, role: str = "editor") -> str:
    created = cli(data, "apikey", "create", "--name", f"tests-{role}", "--role", role)
    assert created.returncode == 0, created.stderr
    return re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)


def get_json(server, path: str, key: str):
    status, _, body = http("GET", server.url(path), headers={"Authorization": f"Bearer {key}"})
    assert status == 200, body
    return json.loads(body)


def post_json(server, path: str, key: str, payload=None):
    status, _, body = http("POST", server.url(path), json.dumps(payload).encode() if payload is not None else None,
                           {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    return status, json.loads(body) if body else None


def stream_links(server, key: str) -> dict:
    return {s["link"]: s for s in get_json(server, "/api/v1/streams?per_page=100&is_archived=any", key)["streams"]}


def health(server) -> dict:
    return json.loads(http("GET", server.url("/health"))[2])


def service_state(server, name: str):
    services = health(server).get("services", {})
    entry = services.get(name) if isinstance(services, dict) else None
    return entry.get("status") if isinstance(entry, dict) else entry


# MARK: Twitch chat over a real IRC server

class IRCServer:
    def __init__(self, directory: str):
        self.port = free_port()
        self.directory = directory
        self.config = Path(directory) / "ngircd.conf"
        self.config.write_text(f"""
[Global]
    Name = irc.streamhub.test
    Info = StreamHub test IRC server
    Listen = 127.0.0.1
    Ports = {self.port}
    MotdPhrase = hello
[Limits]
    PingTimeout = 5
    PongTimeout = 5
    MaxConnectionsIP = 0
    MaxNickLength = 20
[Options]
    DNS = no
    Ident = no
    PAM = no
    RequireAuthPing = no
""")
        self.start()

    def start(self):
        self.process = subprocess.Popen([NGIRCD, "-n", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() is None, 10, "ngircd to listen")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class IRCClient:
    def __init__(self, port: int, nick: str):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.wait_for(" 001 ")

    def send(self, line: str):
        self.socket.sendall(line.encode() + b"\r\n")

    def wait_for(self, marker: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                text = line.decode(errors="replace")
                if text.startswith("PING"):
                    self.send("PONG" + text[4:])
                if marker in text:
                    return text
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = self.socket.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("the IRC server closed the connection")
            self.buffer += chunk
        raise AssertionError(f"no IRC line with {marker!r} within {timeout}s")

    def close(self):
        self.socket.close()


@pytest.mark.skipif(NGIRCD is None, reason="ngircd is not installed")
def test_twitch_chat_connector_reads_a_real_irc_server(start_server, data_dir):
    irc = IRCServer(tempfile.mkdtemp(dir=data_dir))
    data = os.path.join(data_dir, "twitch")
    key = api_key(data)
    server = start_server(data=data, extra_env={
        "STREAMHUB_TWITCH_CHANNELS": "newsroom,second",
        "STREAMHUB_TWITCH_IRC_URL": f"irc://127.0.0.1:{irc.port}",
    })
    try:
        wait_until(lambda: service_state(server, "twitch_chat") == "running", 20, "the Twitch connector to join")
        poster = IRCClient(irc.port, "poster")
        poster.send("JOIN #newsroom")
        poster.wait_for("JOIN")
        # The connector joined: it is on the channel's member list.
        poster.send("NAMES #newsroom")
        assert "justinfan" in poster.wait_for(" 353 ")
        poster.send("PRIVMSG #newsroom :LIVE from Chicago, IL twitch.tv/chi_live_cam and some chatter")
        poster.send("PRIVMSG #newsroom :no links in this one")
        wait_until(lambda: "https://twitch.tv/chi_live_cam" in stream_links(server, key), 15, "the posted link to become a stream")
        stream = stream_links(server, key)["https://twitch.tv/chi_live_cam"]
        assert (stream["city"], stream["state"], stream["posted_by"]) == ("Chicago", "IL", "poster")

        # ngircd pings every 5 s and drops clients that do not answer within 5 s: the connector (which
        # answers) is still connected after 12 s; the test's own poster (which did not) reconnects.
        poster.close()
        time.sleep(12)
        poster = IRCClient(irc.port, "poster1b")
        poster.send("JOIN #newsroom")
        poster.wait_for("JOIN")
        metrics = http("GET", server.url("/metrics"))[2].decode()
        assert re.search(r'streamhub_chat_reconnects_total\{source="twitch"\} 0', metrics) or "streamhub_chat_reconnects_total" not in metrics
        poster.send("PRIVMSG #newsroom :still here https://kick.com/still_here")
        wait_until(lambda: "https://kick.com/still_here" in stream_links(server, key), 15, "a link after the PING rounds")

        # The IRC server restarts: the connector reconnects with backoff and rejoins.
        poster.close()
        irc.stop()
        wait_until(lambda: service_state(server, "twitch_chat") == "degraded", 20, "the connector to notice the server went away")
        irc.start()
        wait_until(lambda: service_state(server, "twitch_chat") == "running", 30, "the connector to reconnect")
        poster = IRCClient(irc.port, "poster2")
        poster.send("JOIN #second")
        poster.wait_for("JOIN")
        poster.send("PRIVMSG #second :back again youtu.be/dQw4w9WgXcQ")
        wait_until(lambda: "https://youtube.com/watch?v=dQw4w9WgXcQ" in stream_links(server, key), 15, "a link after the reconnect")
        poster.close()
    finally:
        irc.stop()


# MARK: Discord gateway

def test_discord_connector_follows_the_gateway_protocol(start_server, data_dir):
    gateway = FakeGateway(token="bot-token-123", heartbeat_ms=400)
    data = os.path.join(data_dir, "discord")
    key = api_key(data)
    server = start_server(data=data, extra_env={
        "STREAMHUB_DISCORD_TOKEN": "bot-token-123",
        "STREAMHUB_DISCORD_CHANNELS": "111,222",
        "STREAMHUB_DISCORD_GATEWAY_URL": gateway.url,
    })
    try:
        wait_until(lambda: service_state(server, "discord_gateway") == "running", 20, "READY")
        identify = gateway.connections[0]["received"][0]
        assert identify["op"] == 2
        assert identify["d"]["token"] == "bot-token-123"
        assert identify["d"]["intents"] == 33281
        assert "v=10" in gateway.connections[0]["path"] and "encoding=json" in gateway.connections[0]["path"]

        gateway.message("111", "Portland, OR https://www.twitch.tv/PDX_Live")
        gateway.message("333", "not a watched channel https://twitch.tv/elsewhere_cam")
        gateway.message("222", "self https://twitch.tv/from_the_bot", author_id="999000")
        wait_until(lambda: "https://twitch.tv/pdx_live" in stream_links(server, key), 15, "the Discord link to become a stream")
        stream = stream_links(server, key)["https://twitch.tv/pdx_live"]
        assert (stream["city"], stream["state"], stream["posted_by"]) == ("Portland", "OR", "Volunteer")

        # Heartbeats carry the last sequence number and are acknowledged.
        wait_until(lambda: gateway.ops(0).count(1) >= 2, 10, "heartbeats")
        last_beat = [p for p in gateway.connections[0]["received"] if p["op"] == 1][-1]
        assert last_beat["d"] == gateway.sequence

        # RECONNECT (op 7): a new connection to resume_gateway_url that RESUMEs the session.
        gateway.send({"op": 7, "d": None})
        wait_until(lambda: len(gateway.connections) >= 2 and gateway.ops(1)[:1] == [6], 15, "a RESUME")
        resume = gateway.connections[1]["received"][0]["d"]
        assert resume["session_id"] == "session-1" and resume["token"] == "bot-token-123" and resume["seq"] >= 4
        assert gateway.connections[1]["path"].startswith("/resume")
        gateway.message("111", "after resume https://kick.com/resumed_cam")
        wait_until(lambda: "https://kick.com/resumed_cam" in stream_links(server, key), 15, "a link after RESUME")

        # INVALID_SESSION (op 9, d: false): wait 1-5 s, then IDENTIFY afresh on the main gateway URL.
        gateway.send({"op": 9, "d": False})
        wait_until(lambda: len(gateway.connections) >= 3 and gateway.ops(2)[:1] == [2], 15, "a new IDENTIFY")
        assert not gateway.connections[2]["path"].startswith("/resume")

        # A zombied connection (no heartbeat ACK): closed and resumed.
        gateway.acknowledge = False
        wait_until(lambda: len(gateway.connections) >= 4 and gateway.ops(3)[:1] == [6], 15, "a RESUME after missed ACKs")
        gateway.acknowledge = True

        # Authentication failed (4004): the connector stops and says why in /health.
        gateway.token = "rotated"
        gateway.session_id = "session-2"
        gateway.send({"op": 9, "d": False})
        wait_until(lambda: service_state(server, "discord_gateway") == "failed", 20, "the connector to give up on 4004")
        links = stream_links(server, key)
        assert "https://twitch.tv/elsewhere_cam" not in links, "messages outside the configured channels are ignored"
        assert "https://twitch.tv/from_the_bot" not in links, "the bot's own messages are ignored"
    finally:
        gateway.stop()


# MARK: Status checks against real HLS and yt-dlp

class StaticFiles:
    def __init__(self, directory: str):
        handler = partial(QuietHandler, directory=directory)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_status_follows_a_real_ffmpeg_hls_stream_and_yt_dlp(start_server, data_dir):
    media = tempfile.mkdtemp(dir=data_dir)
    ffmpeg = subprocess.Popen([
        "ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_list_size", "5",
        os.path.join(media, "live.m3u8")], stdin=subprocess.PIPE)
    files = StaticFiles(media)
    Path(media, "og.html").write_text(
        '<html><head><title>Cam</title><meta property="og:title" content="Cam">'
        f'<meta property="og:video" content="{files.url("live.m3u8")}"><meta property="og:video:type" content="application/x-mpegURL">'
        '</head><body>cam</body></html>')
    data = os.path.join(data_dir, "status")
    key = api_key(data)
    server = start_server(data=data, extra_env={"STREAMHUB_STATUS_CHECKS": "true", "STREAMHUB_STATUS_TIMEOUT": "20"})
    try:
        wait_until(lambda: os.path.exists(os.path.join(media, "live.m3u8")), 20, "ffmpeg to write the playlist")
        status, hls = post_json(server, "/api/v1/streams", key, {"link": files.url("live.m3u8")})
        assert status == 201, hls
        # The periodic checker picks new streams up within seconds.
        wait_until(lambda: get_json(server, f"/api/v1/streams/{hls['id']}", key)["status"] == "live", 30, "the scheduler to find the stream live")

        if shutil.which("yt-dlp"):
            _, page = post_json(server, "/api/v1/streams", key, {"link": files.url("og.html")})
            status, checked = post_json(server, f"/api/v1/streams/{page['id']}/check", key)
            assert status == 200, checked
            assert (checked["method"], checked["status"]) == ("yt-dlp", "live"), checked

        # ffmpeg stops cleanly and writes EXT-X-ENDLIST: offline.
        ffmpeg.communicate(b"q", timeout=20)
        assert "#EXT-X-ENDLIST" in Path(media, "live.m3u8").read_text()
        status, checked = post_json(server, f"/api/v1/streams/{hls['id']}/check", key)
        assert (checked["status"], checked["method"]) == ("offline", "hls"), checked
        assert "ENDLIST" in checked["reason"]

        # The playlist disappears: offline, gone.
        os.remove(os.path.join(media, "live.m3u8"))
        status, checked = post_json(server, f"/api/v1/streams/{hls['id']}/check", key)
        assert checked["status"] == "offline" and "404" in checked["reason"], checked
        history = get_json(server, f"/api/v1/streams/{hls['id']}/checks", key)["checks"]
        assert [c["status"] for c in history][:3] == ["offline", "offline", "live"]
        metrics = http("GET", server.url("/metrics"))[2].decode()
        assert 'streamhub_status_checks_total{result="live"}' in metrics
        assert "streamhub_status_check_duration_seconds" in metrics
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.kill()
            ffmpeg.wait()
        files.stop()


@pytest.mark.skipif(NGIRCD is None, reason="ngircd is not installed")
def test_a_chat_connector_configured_on_two_instances_runs_once_and_moves_when_its_instance_dies(start_server, postgres, data_dir):
    """Both instances are configured with the same Twitch channels; one joins (a lease), the other stands by,
    and takes over within a lease after kill -9. Each message is ingested once."""
    irc = IRCServer(tempfile.mkdtemp(dir=data_dir))
    url = postgres.create_database()
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_JOB_LEASE": "3", "STREAMHUB_TWITCH_CHANNELS": "newsroom",
           "STREAMHUB_TWITCH_IRC_URL": f"irc://127.0.0.1:{irc.port}"}
    a = start_server({**env, "STREAMHUB_INSTANCE_ID": "chat-a"})
    poster = None
    try:
        wait_until(lambda: service_state(a, "twitch_chat") == "running", 20, "the connector to join on the first instance")
        b = start_server({**env, "STREAMHUB_INSTANCE_ID": "chat-b"})
        wait_until(lambda: detail(b, "twitch_chat") == "standing by: runs on chat-a", 20, "the second instance to stand by")
        assert service_state(b, "twitch_chat") == "stopped"
        key = admin_key(url)

        poster = IRCClient(irc.port, "poster")
        poster.send("JOIN #newsroom")
        poster.wait_for("JOIN")
        assert chat_readers(poster) == 1, "one connector in the channel, not one per instance"
        poster.send("PRIVMSG #newsroom :first https://twitch.tv/lease_one")
        wait_until(lambda: "https://twitch.tv/lease_one" in stream_links(b, key), 15, "the link from the connector on the first instance")

        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: service_state(b, "twitch_chat") == "running", 20, "the second instance to take the connector over")
        assert time.monotonic() - killed < 3 + 1 + 5, "within one lease (3 s), one try (1 s) and the IRC handshake"
        # A fresh poster: ngircd drops clients that leave its pings unanswered, as this one did meanwhile.
        poster.close()
        poster = IRCClient(irc.port, "poster2")
        poster.send("JOIN #newsroom")
        poster.wait_for("JOIN")
        wait_until(lambda: chat_readers(poster) == 1, 10, "one connector in the channel again")
        poster.send("PRIVMSG #newsroom :second https://twitch.tv/lease_two")
        try:
            wait_until(lambda: "https://twitch.tv/lease_two" in stream_links(b, key), 15, "the link from the connector on the second instance")
        except AssertionError:
            print("instance B's log:", b.logs()[-3000:])
            raise
        counts = subprocess.run(["psql", url, "-At", "-c", "SELECT s.link, COUNT(*) FROM stream_sightings g JOIN streams s ON s.id = g.stream_id "
                                 "GROUP BY s.link ORDER BY s.link"], capture_output=True, text=True, check=True).stdout.split()
        assert counts == ["https://twitch.tv/lease_one|1", "https://twitch.tv/lease_two|1"], counts
    finally:
        if poster:
            poster.close()
        irc.stop()


def detail(server, name: str):
    services = health(server).get("services", {})
    return (services.get(name) or {}).get("detail")


def chat_readers(poster) -> int:
    """How many anonymous connectors (justinfan…) are in #newsroom."""
    poster.send("NAMES #newsroom")
    names = poster.wait_for(" 353 ")
    return len(re.findall(r"justinfan\d+", names))


def admin_key(database_url: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": database_url}
    from conftest import BINARY
    created = subprocess.run([BINARY, "apikey", "create", "--name", "tests-admin", "--role", "admin"], capture_output=True, text=True, timeout=60, env=env)
    assert created.returncode == 0, created.stderr
    return re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)
