"""Fixtures that run the real streamhub binary and real PostgreSQL servers on loopback."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("STREAMHUB_BIN", str(ROOT / ".build" / "debug" / "streamhub"))
SERVICE_KEY = "integration-service-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10):
    """Returns (status, headers, body) without raising on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def cli(data: str, *args, stdin: str | None = None):
    """Runs a streamhub command on a data directory, with no other STREAMHUB_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
    env["STREAMHUB_DATA_DIR"] = data
    return subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as error:  # the server may still be starting
            last = error
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s (last error: {last})")


class Server:
    """One streamhub process with its own data directory and port."""

    def __init__(self, data_dir: str, extra_env: dict | None = None, args: list | None = None):
        self.port = int((extra_env or {}).get("STREAMHUB_PORT") or free_port())
        self.data_dir = data_dir
        self.log_path = Path(data_dir) / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
        env.update({
            "STREAMHUB_PORT": str(self.port),
            "STREAMHUB_GRPC_PORT": str(free_port()),
            "STREAMHUB_DATA_DIR": data_dir,
            "STREAMHUB_SERVICE_KEYS": SERVICE_KEY,
            "STREAMHUB_ALLOW_PRIVATE_SOURCES": "true",
            # Periodic status checks write to streams; the tests that want them turn them on.
            "STREAMHUB_STATUS_CHECKS": "false",
        })
        env.update(extra_env or {})
        self.log = open(self.log_path, "wb")
        # Its own process group, so that the ffmpeg processes it starts (which stay in the group) can be
        # found and stopped when the test ends, also after a kill -9 that left them running.
        self.process = subprocess.Popen([BINARY, "serve", *(args or [])], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_until(lambda: self.process.poll() is None and http("GET", self.url("/health"), timeout=2)[0] in (200, 503),
                   60, f"server on port {self.port} to answer /health")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def publish(self, events) -> int:
        status, _, _ = http("POST", self.url("/api/v1/events"), json.dumps(events).encode(),
                            {"X-Service-Key": SERVICE_KEY, "Content-Type": "application/json"})
        return status

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def stop_group(self, timeout: float = 10):
        """Kills whatever is left of the server's process group (ffmpeg left by a kill -9) and waits until none
        of it runs, so nothing writes into the data directory once the test is over."""
        group = self.process.pid
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                return
            if not running_in_group(group):
                return  # only zombies are left, for init to reap
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of the server's group {group} still run after SIGKILL")
            time.sleep(0.05)


def running_in_group(group: int) -> bool:
    """Whether a process of process group `group` exists that is not a zombie (Linux /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command's closing parenthesis: state, ppid, pgrp, ...
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="streamhub-it-") as directory:
        yield directory


@pytest.fixture
def start_server(data_dir):
    servers = []

    def start(extra_env=None, args=None, data=None):
        server = Server(data or tempfile.mkdtemp(dir=data_dir), extra_env, args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL if server.process.poll() is None else signal.SIGTERM)
        server.stop_group()


def cut_listeners(database_url: str) -> int:
    """Terminates every instance's LISTEN connection (its backend) on the database; answers how many were cut."""
    cut = subprocess.run(["psql", database_url, "-At", "-c",
                          "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(cut)


def postgres_available() -> bool:
    return bool(list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))) or bool(shutil_which("pg_ctl"))


def shutil_which(name):
    import shutil
    return shutil.which(name)


class Postgres:
    """A throwaway PostgreSQL server owned by one test (so the test may stop and restart it)."""

    def __init__(self, directory: str):
        self.directory = directory
        script = ROOT / "scripts" / "test-postgres.sh"
        self.script = str(script)
        self.admin_url = subprocess.check_output([self.script, "start", directory], text=True).strip()

    def create_database(self) -> str:
        name = "it_" + uuid.uuid4().hex[:12]
        subprocess.check_call(["psql", self.admin_url, "-q", "-c", f"CREATE DATABASE {name}"])
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def stop(self):
        subprocess.check_call([self.script, "stop", self.directory])

    def start_again(self):
        subprocess.check_call([self.script, "restart-server", self.directory])


@pytest.fixture
def postgres():
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries are not installed")
    directory = tempfile.mkdtemp(prefix="streamhub-pg-")
    server = Postgres(directory)
    yield server
    server.stop()
