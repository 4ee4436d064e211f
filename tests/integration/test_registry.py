"""The registry through the real binary: the account commands operators script, and a schema-driven
fuzz run (schemathesis) against the running server and its own OpenAPI document."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BINARY, cli, http




def login(server, email: str, password: str) -> str:
    status, _, body = http("POST", server.url("/api/v1/users/login"), json.dumps({"email": email, "password": password}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)["token"]


def test_fresh_server_explains_how_to_create_the_first_admin(start_server):
    server = start_server()
    assert "streamhub user create --email" in server.logs()


def test_user_and_apikey_commands(start_server, data_dir):
    data = os.path.join(data_dir, "accounts")
    created = cli(data, "user", "create", "--email", "ops@example.org", "--role", "admin", "--password-stdin", stdin="a long password\n")
    assert created.returncode == 0, created.stderr
    assert "ops@example.org" in created.stdout
    duplicate = cli(data, "user", "create", "--email", "OPS@example.org", "--role", "admin", "--password-stdin", stdin="a long password\n")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    weak = cli(data, "user", "create", "--email", "x@example.org", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "at least 8" in weak.stderr
    no_tty = cli(data, "user", "create", "--email", "y@example.org", stdin="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    listed = cli(data, "user", "list")
    assert "ops@example.org\tadmin" in listed.stdout

    key = cli(data, "apikey", "create", "--name", "checker", "--role", "editor")
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert re.fullmatch(r"shk_[0-9a-f]{64}", secret)
    assert secret not in cli(data, "apikey", "list").stdout

    server = start_server(data=data)
    token = login(server, "ops@example.org", "a long password")
    status, _, _ = http("GET", server.url("/api/v1/users/me"), headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    status, _, body = http("POST", server.url("/api/v1/streams"), json.dumps({"link": "https://twitch.tv/cli"}).encode(),
                           {"X-API-Key": secret, "Content-Type": "application/json"})
    assert status == 201, body
    revoked = cli(data, "apikey", "revoke", "checker")
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
    assert cli(data, "apikey", "revoke", "nope").returncode == 1


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(start_server, data_dir):
    data = os.path.join(data_dir, "fuzz")
    assert cli(data, "user", "create", "--email", "fuzz@example.org", "--role", "admin", "--password-stdin",
               stdin="fuzzing admin password\n").returncode == 0
    server = start_server(data=data, extra_env={"STREAMHUB_WRITE_RATE_LIMIT": "1000000", "STREAMHUB_LOG_LEVEL": "warning"})
    token = login(server, "fuzz@example.org", "fuzzing admin password")
    budget = os.environ.get("STREAMHUB_FUZZ_SECONDS", "60")
    run = subprocess.run(
        ["schemathesis", "run", server.url("/api/v1/openapi.json"), "--url", server.url(""),
         "-H", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
         # WebSocket endpoints answer 101; logging out would end the run's own session.
         "--exclude-path", "/events", "--exclude-path", "/api/v1/cable", "--exclude-path", "/api/stream/ws", "--exclude-path", "/api/v1/users/logout",
         "--phases", "coverage,fuzzing", "--max-time", budget, "--workers", "1", "--suppress-health-check", "all",
         "--seed", "20261126", "--no-color"],
        capture_output=True, text=True, timeout=int(budget) + 240)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " 500 " not in server.logs() and "internal_error" not in server.logs(), server.logs()[-4000:]
    assert re.search(r"\d+ generated, \d+ passed", run.stdout), report


def test_two_instances_share_streams_cable_events_locks_and_logouts(start_server, postgres, data_dir):
    import asyncio
    import time
    import websockets

    url = postgres.create_database()
    shared_secret = "a-shared-jwt-secret-for-both-instances-0123"
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_JWT_SECRET": shared_secret}
    a = start_server({**env, "STREAMHUB_INSTANCE_ID": "reg-a"})
    b = start_server({**env, "STREAMHUB_INSTANCE_ID": "reg-b"})
    setup = subprocess.run([BINARY, "user", "create", "--email", "ed@example.org", "--role", "editor", "--password-stdin"],
                           input="editor password\n", capture_output=True, text=True, timeout=60,
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": url})
    assert setup.returncode == 0, setup.stderr
    token = login(a, "ed@example.org", "editor password")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def scenario():
        async with websockets.connect(b.ws_url(f"/api/v1/cable?token={token}")) as cable_b:
            assert json.loads(await asyncio.wait_for(cable_b.recv(), 10))["event"] == "welcome"
            # Wait until B hears A through the backplane: create streams on A until one arrives on B.
            deadline = time.monotonic() + 30
            probe = 0
            while True:
                status, _, body = http("POST", a.url("/api/v1/streams"), json.dumps({"link": f"https://twitch.tv/probe{probe}"}).encode(), auth)
                assert status == 201, body
                probe += 1
                try:
                    frame = json.loads(await asyncio.wait_for(cable_b.recv(), 0.5))
                    if frame["event"] == "stream_created":
                        break
                except asyncio.TimeoutError:
                    assert time.monotonic() < deadline, "instance B never heard instance A"
            # B's cached list must show what A wrote.
            status, _, body = http("GET", b.url("/api/v1/streams?per_page=100"), headers=auth)
            before = json.loads(body)["meta"]["total_count"]
            status, _, body = http("POST", a.url("/api/v1/streams"), json.dumps({"link": "https://twitch.tv/shared"}).encode(), auth)
            created = json.loads(body)
            while True:
                frame = json.loads(await asyncio.wait_for(cable_b.recv(), 10))
                if frame["event"] == "stream_created" and frame["stream"]["id"] == created["id"]:
                    break
            status, _, body = http("GET", b.url("/api/v1/streams?per_page=100"), headers=auth)
            assert json.loads(body)["meta"]["total_count"] == before + 1
            # A lock taken on A is seen and honoured on B.
            assert http("PUT", a.url(f"/api/v1/streams/{created['id']}/lock"), headers=auth)[0] == 200
            while json.loads(await asyncio.wait_for(cable_b.recv(), 10))["event"] != "stream_locked":
                pass
            setup2 = subprocess.run([BINARY, "user", "create", "--email", "other@example.org", "--role", "editor", "--password-stdin"],
                                    input="other password\n", capture_output=True, text=True, timeout=60,
                                    env={**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": url})
            assert setup2.returncode == 0
            other = login(b, "other@example.org", "other password")
            status, _, _ = http("PATCH", b.url(f"/api/v1/streams/{created['id']}"), json.dumps({"title": "x"}).encode(),
                                {"Authorization": f"Bearer {other}", "Content-Type": "application/json"})
            assert status == 423
            # A logout on A is honoured on B: its sockets on both instances close with 4401 within a second.
            sockets = []
            for server in (a, b):
                ws = await websockets.connect(server.ws_url(f"/events?token={token}"))
                await ws.send(json.dumps({"subscribe": ["*"]}))
                while json.loads(await asyncio.wait_for(ws.recv(), 10)).get("event") != "subscribed":
                    pass
                sockets.append(ws)
            assert http("POST", a.url("/api/v1/users/logout"), headers=auth)[0] == 204
            logged_out = time.monotonic()

            async def closed_code(ws):
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 3)
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None, time.monotonic() - logged_out
            for name, (code, after) in zip("ab", [await closed_code(ws) for ws in sockets]):
                assert code == 4401, f"socket on {name} closed with {code}"
                assert after < 1.0, f"socket on {name} closed {after:.2f}s after the logout"
            deadline = time.monotonic() + 10
            while http("GET", b.url("/api/v1/users/me"), headers=auth)[0] != 401:
                assert time.monotonic() < deadline, "instance B still accepts a token logged out on A"
                await asyncio.sleep(0.05)

    asyncio.run(scenario())


def test_a_disabled_user_and_a_revoked_key_stop_working_on_every_instance_within_a_second(start_server, postgres):
    """Account changes travel on the bus: every instance drops its cached answer and closes the sockets."""
    import asyncio
    import time
    import websockets

    url = postgres.create_database()
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_JWT_SECRET": "a-shared-jwt-secret-for-both-instances-0123"}
    a = start_server({**env, "STREAMHUB_INSTANCE_ID": "acct-a"})
    b = start_server({**env, "STREAMHUB_INSTANCE_ID": "acct-b"})
    plain = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": url}
    for email, role in (("boss@example.org", "admin"), ("temp@example.org", "viewer")):
        made = subprocess.run([BINARY, "user", "create", "--email", email, "--role", role, "--password-stdin"],
                              input="a long password\n", capture_output=True, text=True, timeout=60, env=plain)
        assert made.returncode == 0, made.stderr
    admin = {"Authorization": f"Bearer {login(a, 'boss@example.org', 'a long password')}", "Content-Type": "application/json"}
    temp_token = login(a, "temp@example.org", "a long password")
    temp = {"Authorization": f"Bearer {temp_token}"}
    status, _, body = http("POST", a.url("/api/v1/api_keys"), json.dumps({"name": "feed", "role": "viewer"}).encode(), admin)
    assert status == 201, body
    key = json.loads(body)
    key_header = {"Authorization": f"Bearer {key['key']}"}
    # Both instances know both credentials (and have cached them).
    for server in (a, b):
        assert http("GET", server.url("/api/v1/users/me"), headers=temp)[0] == 200
        assert http("GET", server.url("/api/v1/streams"), headers=key_header)[0] == 200
    me = json.loads(http("GET", a.url("/api/v1/users/me"), headers=temp)[2])

    async def wait_for_backplane():
        # B hears A: a stream created on A arrives on B's /events.
        async with websockets.connect(b.ws_url(f"/events?token={temp_token}")) as ws:
            await ws.send(json.dumps({"subscribe": ["stream_created"]}))
            json.loads(await asyncio.wait_for(ws.recv(), 10))
            deadline = time.monotonic() + 30
            for probe in range(1000):
                http("POST", a.url("/api/v1/streams"), json.dumps({"link": f"https://twitch.tv/acct{probe}"}).encode(), admin)
                try:
                    if json.loads(await asyncio.wait_for(ws.recv(), 0.5)).get("event") == "stream_created":
                        return
                except asyncio.TimeoutError:
                    assert time.monotonic() < deadline, "instance B never heard instance A"
    asyncio.run(wait_for_backplane())

    def refused_everywhere_within_a_second(headers, what):
        started = time.monotonic()
        pending = {a.port: a, b.port: b}
        while pending:
            for port, server in list(pending.items()):
                if http("GET", server.url("/api/v1/streams"), headers=headers)[0] == 401:
                    del pending[port]
            assert time.monotonic() - started < 1.0, f"{what} still works on {sorted(pending)} after a second"
            time.sleep(0.02)

    status, _, body = http("PATCH", a.url(f"/api/v1/users/{me['id']}"), json.dumps({"disabled": True}).encode(), admin)
    assert status == 200, body
    refused_everywhere_within_a_second(temp, "a disabled user's token")
    assert http("DELETE", a.url(f"/api/v1/api_keys/{key['api_key']['id']}"), headers=admin)[0] == 204
    refused_everywhere_within_a_second(key_header, "a revoked API key")


def test_write_and_login_failure_limits_hold_across_instances(start_server, postgres):
    """The limits are the deployment's, not each instance's: spends travel on the bus every quarter second."""
    import time

    url = postgres.create_database()
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_WRITE_RATE_LIMIT": "20", "STREAMHUB_LOGIN_FAILURE_LIMIT": "5"}
    a = start_server({**env, "STREAMHUB_INSTANCE_ID": "limit-a"})
    b = start_server({**env, "STREAMHUB_INSTANCE_ID": "limit-b"})
    plain = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": url}
    made = subprocess.run([BINARY, "apikey", "create", "--name", "writer", "--role", "editor"], capture_output=True, text=True, timeout=60, env=plain)
    key = re.search(r"(shk_[0-9a-f]{64})", made.stdout).group(1)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def write(server, n):
        return http("POST", server.url("/api/v1/streams"), json.dumps({"link": f"https://twitch.tv/limit_{n}"}).encode(), auth)[0]

    # Wait until the bus carries A's spends to B (B's own answer tells): spend 15 on A, then B allows 5 more.
    assert [write(a, n) for n in range(15)] == [201] * 15
    time.sleep(1)  # a quarter-second batch plus the bus: let A's spends reach B
    on_b = [write(b, 100 + n) for n in range(8)]
    assert on_b.count(201) == 5 and on_b[5:] == [429, 429, 429], on_b
    total = int(subprocess.check_output(["psql", url, "-At", "-c", "SELECT COUNT(*) FROM streams"], text=True))
    assert total == 20, "20 writes a minute for the key, over both instances"

    # Login failures from one address: 3 on A and 2 on B use up the 5; the next try is refused on either.
    def fail(server):
        return http("POST", server.url("/api/v1/users/login"), json.dumps({"email": "nobody@example.org", "password": "wrong password"}).encode(),
                    {"Content-Type": "application/json"})[0]
    assert [fail(a) for _ in range(3)] == [401] * 3
    time.sleep(1)
    assert [fail(b) for _ in range(2)] == [401] * 2
    time.sleep(1)
    assert fail(a) == 429 and fail(b) == 429
