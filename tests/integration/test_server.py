"""The streamhub binary as operators and clients meet it: CLI, lifecycle, health, scale-out."""
import asyncio
import json
import signal
import subprocess
import threading
import time

import pytest
import websockets

from conftest import BINARY, SERVICE_KEY, cut_listeners, http, wait_until

SETTINGS = ["--host", "--port", "--grpc-port", "--data-dir", "--database-url", "--service-keys", "--jwt-secret",
            "--allow-private-sources", "--log-level", "--log-format", "--instance-id", "--max-body-size",
            "--ws-max-frame-size", "--ws-max-queued-bytes", "--ws-ping-interval", "--shutdown-timeout", "--job-lease", "--advertise-url"]


def test_help_explains_every_option():
    output = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in SETTINGS:
        assert flag in output, f"{flag} missing from serve --help"
    assert "STREAMHUB_DATA_DIR" in output
    top = subprocess.run([BINARY, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in top and "migrate" in top


def test_version_prints_a_version():
    output = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert output and output[0].isdigit()


@pytest.mark.parametrize("args,env,name", [
    (["--port", "http"], {}, "--port"),
    ([], {"STREAMHUB_PORT": "99999"}, "STREAMHUB_PORT"),
    ([], {"STREAMHUB_LOG_FORMAT": "xml"}, "STREAMHUB_LOG_FORMAT"),
    ([], {"STREAMHUB_DATABASE_URL": "mysql://x/y"}, "STREAMHUB_DATABASE_URL"),
])
def test_invalid_setting_is_one_line_and_exit_code_2(args, env, name, tmp_path):
    result = subprocess.run([BINARY, "serve", *args], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "STREAMHUB_DATA_DIR": str(tmp_path / "d"), **env})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert not (tmp_path / "d").exists(), "nothing may start before the configuration is valid"


def test_migrate_creates_and_then_reports_up_to_date(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "STREAMHUB_DATA_DIR": str(tmp_path)}
    first = subprocess.run([BINARY, "migrate"], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "applied" in first.stdout
    assert (tmp_path / "streamhub.sqlite").exists()
    second = subprocess.run([BINARY, "migrate"], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "up to date" in second.stdout


async def open_events(server, count):
    clients = []
    for _ in range(count):
        ws = await websockets.connect(server.ws_url(f"/events?key={SERVICE_KEY}"))
        await ws.send(json.dumps({"subscribe": ["*"]}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["event"] == "subscribed"
        clients.append(ws)
    return clients


def test_sigterm_closes_websockets_with_1001_and_exits_0(start_server):
    server = start_server()

    async def scenario():
        clients = await open_events(server, 3)
        assert server.publish({"event": "transcription", "text": "before shutdown"}) == 202
        for ws in clients:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["text"] == "before shutdown"
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        codes = []
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            codes.append(closed.value.rcvd.code if closed.value.rcvd else None)
        return codes, started

    codes, started = asyncio.run(scenario())
    assert codes == [1001, 1001, 1001]
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "stopped" in server.logs()


def test_sigint_also_stops_gracefully(start_server):
    server = start_server()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=10) == 0


def test_health_turns_503_while_postgres_is_down_and_recovers(start_server, postgres):
    server = start_server({"STREAMHUB_DATABASE_URL": postgres.create_database()})
    status, _, body = http("GET", server.url("/health"))
    assert status == 200 and json.loads(body)["database"]["kind"] == "postgres"

    postgres.stop()
    wait_until(lambda: http("GET", server.url("/health"), timeout=8)[0] == 503, 30, "/health to answer 503")
    status, _, body = http("GET", server.url("/health"), timeout=8)
    assert json.loads(body)["database"]["status"] == "unavailable"

    postgres.start_again()
    wait_until(lambda: http("GET", server.url("/health"), timeout=8)[0] == 200, 60, "/health to recover")
    # The backplane reconnects too: events flow again.
    async def roundtrip():
        [ws] = await open_events(server, 1)
        assert server.publish({"event": "wake_word", "word": "back", "confidence": 1}) == 202
        return json.loads(await asyncio.wait_for(ws.recv(), 10))["word"]
    assert asyncio.run(roundtrip()) == "back"


def test_two_instances_on_one_postgres_share_every_event(start_server, postgres):
    url = postgres.create_database()
    a = start_server({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_INSTANCE_ID": "node-a"})
    b = start_server({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_INSTANCE_ID": "node-b"})

    async def scenario():
        [on_a] = await open_events(a, 1)
        [on_b] = await open_events(b, 1)
        # Wait until B's backplane listener is up: publish probes on A until one reaches B.
        deadline = time.monotonic() + 30
        while True:
            assert a.publish({"event": "transcription", "text": "probe"}) == 202
            try:
                message = json.loads(await asyncio.wait_for(on_b.recv(), 0.5))
                if message.get("text") == "probe":
                    break
            except asyncio.TimeoutError:
                assert time.monotonic() < deadline, "instance B never received an event from A"
        while True:  # drain probes
            try:
                await asyncio.wait_for(on_b.recv(), 0.3)
            except asyncio.TimeoutError:
                break
        for index in range(50):
            assert a.publish({"event": "transcription", "text": f"from-a-{index}"}) == 202
        assert b.publish({"event": "transcription", "text": "from-b"}) == 202
        seen_on_b = []
        while len(seen_on_b) < 51:
            seen_on_b.append(json.loads(await asyncio.wait_for(on_b.recv(), 10))["text"])
        # A's own client sees its own events once and B's event once.
        seen_on_a = []
        while "from-b" not in seen_on_a:
            seen_on_a.append(json.loads(await asyncio.wait_for(on_a.recv(), 10))["text"])
        return seen_on_b, seen_on_a

    seen_on_b, seen_on_a = asyncio.run(scenario())
    assert [t for t in seen_on_b if t.startswith("from-a")] == [f"from-a-{i}" for i in range(50)]
    assert seen_on_b.count("from-b") == 1
    from_a_on_a = [t for t in seen_on_a if t.startswith("from-a")]
    assert len(from_a_on_a) == len(set(from_a_on_a)), "duplicates on the publishing instance"


def test_json_logs_carry_the_request_id(start_server):
    server = start_server({"STREAMHUB_LOG_FORMAT": "json", "STREAMHUB_LOG_LEVEL": "debug"})
    _, headers, _ = http("GET", server.url("/health"))
    request_id = headers["X-Request-Id"]
    server.stop()
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    assert all({"ts", "level", "message"} <= line.keys() for line in lines)
    assert any(line.get("request_id") == request_id for line in lines)


def test_scheduled_jobs_run_on_one_instance_and_move_within_a_lease_when_it_dies(start_server, postgres):
    """Two instances, one database, a 3-second maintenance lease: one instance runs the scheduled jobs; a key
    due for rotation is rotated once (the key OBS uses keeps its grace period); kill -9 of that instance
    moves the jobs to the other within the lease; a graceful stop hands them over at once."""
    url = postgres.create_database()
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_JOB_LEASE": "3", "STREAMHUB_SERVICE_KEYS": SERVICE_KEY}
    a = start_server({**env, "STREAMHUB_INSTANCE_ID": "jobs-a"})
    wait_until(lambda: lease(a).startswith("held here"), 20, "the first instance to take the maintenance lease")
    b = start_server({**env, "STREAMHUB_INSTANCE_ID": "jobs-b"})
    wait_until(lambda: lease(b) == "held by jobs-a", 20, "the second instance to see who holds it")
    assert lease(a).startswith("held here")
    assert 'streamhub_job_lease_held{lease="maintenance"} 1' in http("GET", a.url("/metrics"))[2].decode()
    assert 'streamhub_job_lease_held{lease="maintenance"} 0' in http("GET", b.url("/metrics"))[2].decode()

    # A community whose key rotates hourly, made due on both instances at once.
    admin = admin_token(a, url)
    auth = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    status, _, body = http("POST", a.url("/api/v1/communities"), json.dumps({"name": "Night desk"}).encode(), auth)
    assert status == 201, body
    created = json.loads(body)
    community, key = created["community"]["id"], created["overlay_key"]
    assert http("PUT", b.url(f"/api/v1/communities/{community}/overlay_key/schedule"), json.dumps({"every_seconds": 3600}).encode(), auth)[0] == 200
    subprocess.run(["psql", url, "-q", "-c", f"UPDATE overlay_keys SET next_rotation_at = 1 WHERE community_id = {community}"], check=True)

    def key_status(server):
        return json.loads(http("GET", server.url(f"/api/v1/communities/{community}"), headers=auth)[2])["overlay_key"]
    wait_until(lambda: key_status(b)["previous_prefix"] is not None, 30, "the scheduled rotation")
    time.sleep(12)  # both instances' 10-second maintenance ticks have passed: a second rotation would show now
    rotations = [server.logs().count("rotated overlay key on schedule") for server in (a, b)]
    assert rotations == [1, 0], f"one rotation, on the lease holder: {rotations}"
    assert key_status(a)["previous_prefix"] == key[:8], "the key retired is the one in use, not a key made a moment ago"
    assert http("GET", a.url(f"/overlay/{key}"))[0] == 200, "the key OBS uses still opens the overlay (grace period)"

    # kill -9 of the holder: the other takes the jobs within the lease (3 s, tried every second).
    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: lease(b).startswith("held here"), 10, "the other instance to take the lease")
    assert time.monotonic() - killed < 3 + 1 + 1.5, "taken over within one lease period (and one try)"
    subprocess.run(["psql", url, "-q", "-c", f"UPDATE overlay_keys SET next_rotation_at = 1 WHERE community_id = {community}"], check=True)
    wait_until(lambda: b.logs().count("rotated overlay key on schedule") == 1, 30, "the jobs to run on the survivor")

    # A graceful stop hands the lease over at once.
    c = start_server({**env, "STREAMHUB_INSTANCE_ID": "jobs-c"})
    wait_until(lambda: lease(c) == "held by jobs-b", 20, "the third instance to see who holds it")
    b.stop()
    stopped = time.monotonic()
    wait_until(lambda: lease(c).startswith("held here"), 10, "the third instance to take the lease")
    assert time.monotonic() - stopped < 2.5, "handed over, not waited out"


def lease(server) -> str:
    status, _, body = http("GET", server.url("/health"))
    if status != 200:
        return ""
    return json.loads(body).get("services", {}).get("maintenance_lease", {}).get("detail") or ""


def admin_token(server, url) -> str:
    import os
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, "STREAMHUB_DATABASE_URL": url}
    created = subprocess.run([BINARY, "apikey", "create", "--name", "jobs-test", "--role", "admin"], capture_output=True, text=True, timeout=60, env=env)
    assert created.returncode == 0, created.stderr
    import re
    return re.search(r"(shk_[0-9a-f]{64})", created.stdout).group(1)


def _cli(env_extra: dict, *args, stdin=None):
    import os
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMHUB_")}, **env_extra}
    return subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True, timeout=120, env=env)


def _write_load(server, key, stop, written):
    """Creates streams as fast as one client can until `stop` is set."""
    n = 0
    while not stop.is_set():
        n += 1
        status, _, _ = http("POST", server.url("/api/v1/streams"), json.dumps({"link": f"https://twitch.tv/load_{threading.get_ident()}_{n}"}).encode(),
                            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        if status == 201:
            written.append(n)


def _sqlite_tables(path):
    import sqlite3
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    content = {t: sorted(map(repr, db.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    db.close()
    return content


def _postgres_tables(url):
    tables = subprocess.check_output(["psql", url, "-At", "-c", "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"], text=True).split()
    return {t: sorted(subprocess.check_output(["psql", url, "-At", "-c", f'SELECT t::text FROM "{t}" t'], text=True).splitlines()) for t in tables}


def test_a_backup_taken_under_write_load_restores_into_a_fresh_instance_table_for_table(start_server, data_dir):
    """SQLite: `streamhub backup` while writes flow; `streamhub restore` into a new data directory; every table
    of the restored database equals the snapshot's, and the restored instance accepts the old credentials."""
    import os
    live = os.path.join(data_dir, "live")
    os.makedirs(live)
    server = start_server(data=live)
    admin = _cli({"STREAMHUB_DATA_DIR": live}, "apikey", "create", "--name", "backup-test", "--role", "admin")
    assert admin.returncode == 0, admin.stderr
    import re
    key = re.search(r"(shk_[0-9a-f]{64})", admin.stdout).group(1)
    assert _cli({"STREAMHUB_DATA_DIR": live}, "user", "create", "--email", "ed@example.org", "--role", "editor", "--password-stdin",
                stdin="editor password\n").returncode == 0
    token = json.loads(http("POST", server.url("/api/v1/users/login"), json.dumps({"email": "ed@example.org", "password": "editor password"}).encode(),
                            {"Content-Type": "application/json"})[2])["token"]
    stop, written = threading.Event(), []
    writers = [threading.Thread(target=_write_load, args=(server, key, stop, written)) for _ in range(3)]
    for w in writers:
        w.start()
    wait_until(lambda: len(written) >= 30, 30, "writes to flow")
    backup = os.path.join(data_dir, "backup-1")
    taken = _cli({"STREAMHUB_DATA_DIR": live}, "backup", backup)
    during = len(written)
    wait_until(lambda: len(written) >= during + 30, 30, "writes to go on after the backup")
    stop.set()
    for w in writers:
        w.join()
    assert taken.returncode == 0, taken.stderr
    manifest = json.load(open(os.path.join(backup, "manifest.json")))
    assert manifest["kind"] == "sqlite" and set(manifest["files"]) == {"streamhub.sqlite", "jwt-secret"}, manifest
    assert oct(os.stat(os.path.join(backup, "jwt-secret")).st_mode & 0o777) == "0o600"
    snapshot = _sqlite_tables(os.path.join(backup, "streamhub.sqlite"))
    streams_in_backup = len(snapshot["streams"])
    assert 30 <= streams_in_backup < len(written), (streams_in_backup, len(written))
    # Into a backup directory again: refused, nothing overwritten.
    assert _cli({"STREAMHUB_DATA_DIR": live}, "backup", backup).returncode != 0

    fresh = os.path.join(data_dir, "fresh")
    restored = _cli({"STREAMHUB_DATA_DIR": fresh}, "restore", backup)
    assert restored.returncode == 0, restored.stderr
    assert _cli({"STREAMHUB_DATA_DIR": fresh}, "restore", backup).returncode != 0, "never over an existing database"
    after = _sqlite_tables(os.path.join(fresh, "streamhub.sqlite"))
    assert after.keys() == snapshot.keys()
    for table in snapshot:
        assert after[table] == snapshot[table], f"table {table} differs after restore"
    again = start_server(data=fresh)
    status, _, body = http("GET", again.url("/api/v1/streams?per_page=1"), headers={"Authorization": f"Bearer {key}"})
    assert status == 200 and json.loads(body)["meta"]["total_count"] == streams_in_backup, "the API key works, every stream is there"
    assert http("GET", again.url("/api/v1/users/me"), headers={"Authorization": f"Bearer {token}"})[0] == 200, "a token from before still signs in"
    server.stop()


def test_postgres_backups_restore_table_for_table_and_the_schedule_keeps_the_newest(start_server, postgres, data_dir):
    import os
    import re
    if not shutil_which("pg_dump"):
        pytest.skip("pg_dump is not installed")
    url = postgres.create_database()
    server = start_server({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_BACKUP_INTERVAL": "2", "STREAMHUB_BACKUP_KEEP": "2", "STREAMHUB_JOB_LEASE": "3"})
    key = re.search(r"(shk_[0-9a-f]{64})", _cli({"STREAMHUB_DATABASE_URL": url}, "apikey", "create", "--name", "pg", "--role", "admin").stdout).group(1)
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_write_load, args=(server, key, stop, written))
    writer.start()
    wait_until(lambda: len(written) >= 20, 30, "writes to flow")
    backup = os.path.join(data_dir, "pg-backup")
    taken = _cli({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_DATA_DIR": server.data_dir}, "backup", backup)
    stop.set()
    writer.join()
    assert taken.returncode == 0, taken.stderr
    target = postgres.create_database()
    restored = _cli({"STREAMHUB_DATABASE_URL": target, "STREAMHUB_DATA_DIR": os.path.join(data_dir, "pg-fresh")}, "restore", backup)
    assert restored.returncode == 0, restored.stderr
    assert _cli({"STREAMHUB_DATABASE_URL": target, "STREAMHUB_DATA_DIR": os.path.join(data_dir, "pg-fresh")}, "restore", backup).returncode != 0
    # The dump is one transaction: compare it, restored, with a second restore of the same dump's listing.
    check = postgres.create_database()
    subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={check}", os.path.join(backup, "streamhub.pgdump")], check=True)
    assert _postgres_tables(target) == _postgres_tables(check)
    restored_streams = int(subprocess.check_output(["psql", target, "-At", "-c", "SELECT COUNT(*) FROM streams"], text=True))
    assert 20 <= restored_streams <= len(written)

    # The schedule: a backup every 2 s, the newest 2 kept, under <data dir>/backups.
    backups_dir = os.path.join(server.data_dir, "backups")
    wait_until(lambda: "backup written" in server.logs() and server.logs().count("backup written") >= 3, 30, "three scheduled backups")
    names = sorted(n for n in os.listdir(backups_dir) if n.startswith("backup-"))
    assert len(names) == 2, names
    assert all(os.path.exists(os.path.join(backups_dir, n, "streamhub.pgdump")) for n in names)


def shutil_which(name):
    import shutil
    return shutil.which(name)


def test_events_published_while_a_listener_was_cut_are_replayed_in_order_without_duplicates(start_server, postgres):
    """pg_terminate_backend cuts every instance's LISTEN connection while A keeps publishing: B's clients still
    get every event once, in A's order (the listener replays the event log before going live again)."""
    url = postgres.create_database()
    a = start_server({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_INSTANCE_ID": "log-a"})
    b = start_server({"STREAMHUB_DATABASE_URL": url, "STREAMHUB_INSTANCE_ID": "log-b"})

    async def scenario():
        [on_b] = await open_events(b, 1)
        # Wait until B hears A.
        deadline = time.monotonic() + 30
        while True:
            assert a.publish({"event": "transcription", "text": "probe"}) == 202
            try:
                if json.loads(await asyncio.wait_for(on_b.recv(), 0.5)).get("text") == "probe":
                    break
            except asyncio.TimeoutError:
                assert time.monotonic() < deadline, "B never heard A"
        while True:
            try:
                await asyncio.wait_for(on_b.recv(), 0.3)
            except asyncio.TimeoutError:
                break
        total = 300
        for n in range(total):
            assert a.publish({"event": "transcription", "text": f"n{n}", "is_final": True}) == 202
            if n == 100:
                cut = cut_listeners(url)
                assert cut >= 2, f"both listeners cut: {cut}"
            if 100 < n < 160:
                await asyncio.sleep(0.01)  # keep publishing through the reconnect
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < total and time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(on_b.recv(), 5))
            except asyncio.TimeoutError:
                break
            if message.get("event") == "transcription" and str(message.get("text", "")).startswith("n"):
                seen.append(int(message["text"][1:]))
        assert seen == list(range(total)), f"got {len(seen)}; first missing {next((i for i in range(total) if i not in seen), None)}"
        await on_b.close()

    asyncio.run(scenario())
    assert "replayed the event log" in b.logs()
    metrics = http("GET", b.url("/metrics"))[2].decode()
    assert 'streamhub_events_dropped_total{reason="backplane_gap"}' not in metrics or \
        'streamhub_events_dropped_total{reason="backplane_gap"} 0' in metrics


def test_postgres_restarted_under_writes_gives_clear_503s_and_loses_no_acknowledged_write(start_server, postgres):
    """While PostgreSQL is down: writes answer 503 database_unavailable at once (never hang, never 500),
    /health says so; after it is back everything acknowledged is there and writes work again."""
    import re
    url = postgres.create_database()
    # The test server runs with synchronous_commit off (speed); this database commits durably, as production does.
    dbname = url.rsplit("/", 1)[1]
    subprocess.run(["psql", url, "-q", "-c", f"ALTER DATABASE {dbname} SET synchronous_commit = on"], check=True)
    server = start_server({"STREAMHUB_DATABASE_URL": url})
    key = re.search(r"(shk_[0-9a-f]{64})", _cli({"STREAMHUB_DATABASE_URL": url}, "apikey", "create", "--name", "w", "--role", "editor").stdout).group(1)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    acknowledged = []
    stop, outcomes = threading.Event(), []

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                status, _, body = http("POST", server.url("/api/v1/streams"), json.dumps({"link": f"https://twitch.tv/pg_restart_{n}"}).encode(), auth,
                                       timeout=20)
            except Exception as error:  # a hang shows as a timeout here
                status, body = -1, str(error).encode()
            outcomes.append((status, time.monotonic() - started, body[:200]))
            if status == 201:
                acknowledged.append(json.loads(body)["id"])
            time.sleep(0.02)
    assert http("GET", server.url("/api/v1/streams?per_page=5"), headers=auth)[0] == 200  # warms the list cache
    thread = threading.Thread(target=writer)
    thread.start()
    wait_until(lambda: len(acknowledged) >= 20, 30, "writes to flow")
    postgres.stop()
    down_at = len(outcomes)
    try:
        wait_until(lambda: sum(1 for o in outcomes[down_at:] if o[0] == 503) >= 5, 60, "writes to be refused with 503")
    except AssertionError:
        print("OUTCOMES", [(o[0], round(o[1], 2), o[2][:120]) for o in outcomes[down_at:down_at + 8]])
        raise
    wait_until(lambda: http("GET", server.url("/health"), timeout=8)[0] == 503, 30, "/health to say the database is down")
    read = http("GET", server.url("/api/v1/streams?per_page=5"), headers=auth, timeout=10)
    assert read[0] in (200, 503), read[:2]
    postgres.start_again()
    wait_until(lambda: http("GET", server.url("/health"), timeout=8)[0] == 200, 60, "/health to recover")
    back_at = len(outcomes)
    wait_until(lambda: any(o[0] == 201 for o in outcomes[back_at:]), 30, "writes to work again")
    stop.set()
    thread.join()
    during = outcomes[down_at:back_at]
    assert all(o[0] in (201, 503) for o in during), [(o[0], round(o[1], 1), o[2][:160]) for o in during if o[0] not in (201, 503)]
    slowest = max(o[1] for o in during if o[0] == 503)
    assert slowest < 5, f"a refused write took {slowest:.1f} s"
    refused = next(o for o in during if o[0] == 503)
    assert b"database_unavailable" in refused[2], refused
    rows = set(int(x) for x in subprocess.check_output(["psql", url, "-At", "-c", "SELECT id FROM streams"], text=True).split())
    assert set(acknowledged) <= rows, f"lost: {sorted(set(acknowledged) - rows)[:5]}"


def test_a_websocket_asked_for_where_there_is_none_gets_a_clear_404(start_server):
    """An upgrade request to a path with no WebSocket (a page, an API route, nothing) is answered — 404 with the
    JSON error, connection closed — instead of being left without an answer."""
    import socket
    server = start_server()
    for path in ("/nope", "/api/v1/streams", "/health"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
            answer = b""
            while True:
                chunk = conn.recv(4096)  # the server closes after its answer (a timeout here fails the test)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404"), (path, answer[:200])
        assert json.loads(body)["error"]["code"] == "not_found", body
    assert http("GET", server.url("/health"))[0] == 200, "the server goes on"
