"""Three StreamHub instances on one PostgreSQL behind nginx, configured with deploy/nginx-streamhub.conf."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile

import pytest
import websockets

from conftest import ROOT, SERVICE_KEY, free_port, http, wait_until

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


class Nginx:
    """nginx running the repository's sample configuration, pointed at the given instances."""

    def __init__(self, directory: str, ports: list[int]):
        self.port = free_port()
        sample = (ROOT / "deploy" / "nginx-streamhub.conf").read_text()
        for placeholder, port in zip((8027, 8028, 8029), ports):
            assert f"127.0.0.1:{placeholder} " in sample
            sample = sample.replace(f"127.0.0.1:{placeholder} ", f"127.0.0.1:{port} ")
        assert "listen 8080;" in sample
        sample = sample.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        with open(os.path.join(directory, "streamhub.conf"), "w") as conf:
            conf.write(sample)
        with open(os.path.join(directory, "nginx.conf"), "w") as conf:
            conf.write(f"""daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  include {directory}/streamhub.conf;
}}
""")
        self.process = subprocess.Popen([NGINX, "-c", os.path.join(directory, "nginx.conf"), "-p", directory],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: http("GET", self.url("/health"))[0] == 200, 10, "nginx to pass requests on")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_three_instances_behind_nginx_deliver_every_event_once_in_order_and_see_real_clients(start_server, postgres, data_dir):
    url = postgres.create_database()
    env = {"STREAMHUB_DATABASE_URL": url, "STREAMHUB_TRUSTED_PROXIES": "127.0.0.1", "STREAMHUB_LOGIN_FAILURE_LIMIT": "5"}
    servers = [start_server({**env, "STREAMHUB_INSTANCE_ID": f"lb-{n}"}) for n in range(3)]
    proxy = Nginx(tempfile.mkdtemp(dir=data_dir), [s.port for s in servers])
    try:
        async def scenario():
            clients = []
            for _ in range(9):
                ws = await websockets.connect(proxy.ws_url(f"/events?key={SERVICE_KEY}"))
                await ws.send(json.dumps({"subscribe": ["transcription"]}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == "subscribed"
                clients.append(ws)
            # least_conn spreads them: every instance holds some.
            counts = []
            for server in servers:
                metrics = http("GET", server.url("/metrics"))[2].decode()
                line = next((l for l in metrics.splitlines() if l.startswith("streamhub_ws_connections{") and "events" in l), "x 0")
                counts.append(float(line.split()[-1]))
            assert all(c >= 1 for c in counts), f"connections per instance: {counts}"
            # Wait until every instance hears every other: a probe from each reaches every client.
            for n, server in enumerate(servers):
                deadline = asyncio.get_event_loop().time() + 30
                pending = set(range(len(clients)))
                while pending:
                    assert server.publish({"event": "transcription", "text": f"probe{n}"}) == 202
                    for index in list(pending):
                        try:
                            while json.loads(await asyncio.wait_for(clients[index].recv(), 0.3)).get("text") != f"probe{n}":
                                pass
                            pending.discard(index)
                        except asyncio.TimeoutError:
                            pass
                    assert asyncio.get_event_loop().time() < deadline, f"instance {n} is not heard everywhere"
            for ws in clients:  # drain the probes
                while True:
                    try:
                        await asyncio.wait_for(ws.recv(), 0.3)
                    except asyncio.TimeoutError:
                        break
            # 60 events from each instance, interleaved.
            for i in range(60):
                for n, server in enumerate(servers):
                    assert server.publish({"event": "transcription", "text": f"{n}:{i}"}) == 202
            for index, ws in enumerate(clients):
                seen = {0: [], 1: [], 2: []}
                while sum(len(v) for v in seen.values()) < 180:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    text = message.get("text", "")
                    if ":" in text:
                        origin, i = text.split(":")
                        seen[int(origin)].append(int(i))
                for origin in seen:
                    assert seen[origin] == list(range(60)), f"client {index}, instance {origin}: {seen[origin][:10]}…"
                await ws.close()

        asyncio.run(scenario())

        # Sign-in failures are counted per real client (X-Forwarded-For from the trusted proxy), across instances.
        def fail(client_ip):
            return http("POST", proxy.url("/api/v1/users/login"), json.dumps({"email": "x@example.org", "password": "not it at all"}).encode(),
                        {"Content-Type": "application/json", "X-Forwarded-For": client_ip})[0]
        assert [fail("10.0.0.1") for _ in range(5)] == [401] * 5
        wait_until(lambda: fail("10.0.0.1") == 429, 5, "the sixth failure of one client refused on whichever instance")
        assert fail("10.0.0.2") == 401, "another client keeps its own budget"
    finally:
        proxy.stop()
