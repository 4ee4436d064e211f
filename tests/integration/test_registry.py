"""The registry through the real binary: the account commands operators script, and a schema-driven
fuzz run (schemathesis) against the running server and its own OpenAPI document."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BINARY, http


def cli(data: str, *args, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}
    env["STREAMHUB_DATA_DIR"] = data
    return subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


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
         "--exclude-path", "/events", "--exclude-path", "/api/v1/cable", "--exclude-path", "/api/v1/users/logout",
         "--phases", "coverage,fuzzing", "--max-time", budget, "--workers", "1", "--suppress-health-check", "all",
         "--seed", "20261126", "--no-color"],
        capture_output=True, text=True, timeout=int(budget) + 240)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " 500 " not in server.logs() and "internal_error" not in server.logs(), server.logs()[-4000:]
    assert re.search(r"\d+ generated, \d+ passed", run.stdout), report
