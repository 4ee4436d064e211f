"""A local stand-in for the Discord Gateway (v10, JSON encoding), faithful to Discord's documented
payloads and opcodes, scripted by the test.

Every connection gets HELLO (op 10) with a heartbeat interval. The client must IDENTIFY (op 2) with the
bot token and intents, or RESUME (op 6) with the session id and last sequence; the gateway answers READY
(with session_id and resume_gateway_url) or RESUMED. Heartbeats (op 1) are acknowledged (op 11) unless
the test stops acknowledging. The test pushes dispatches (op 0), RECONNECT (op 7), INVALID_SESSION
(op 9) or a close code into the current connection, and reads what each connection received.
"""
import asyncio
import json
import threading

import websockets


class FakeGateway:
    def __init__(self, token: str, heartbeat_ms: int = 400):
        self.token = token
        self.heartbeat_ms = heartbeat_ms
        self.connections = []  # one dict per connection: path, received ops, payloads
        self.acknowledge = True
        self.sequence = 0
        self.session_id = "session-1"
        self._current = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def main():
            self._server = await websockets.serve(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            await asyncio.Future()

        self._loop.run_until_complete(main())

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    async def _handle(self, websocket):
        connection = {"path": websocket.request.path, "received": [], "socket": websocket}
        self.connections.append(connection)
        self._current = connection
        await websocket.send(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}, "s": None, "t": None}))
        try:
            async for text in websocket:
                payload = json.loads(text)
                connection["received"].append(payload)
                op = payload.get("op")
                if op == 1:
                    if self.acknowledge:
                        await websocket.send(json.dumps({"op": 11}))
                elif op == 2:
                    data = payload["d"]
                    if data.get("token") != self.token:
                        await websocket.close(4004, "Authentication failed.")
                        return
                    await websocket.send(json.dumps({"op": 0, "t": "READY", "s": self._next_sequence(), "d": {
                        "v": 10, "session_id": self.session_id, "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume",
                        "user": {"id": "999000", "username": "streamhub-bot", "bot": True}, "guilds": []}}))
                elif op == 6:
                    data = payload["d"]
                    if data.get("token") != self.token or data.get("session_id") != self.session_id:
                        await websocket.send(json.dumps({"op": 9, "d": False}))
                        continue
                    await websocket.send(json.dumps({"op": 0, "t": "RESUMED", "s": self._next_sequence(), "d": {}}))
        except websockets.ConnectionClosed:
            pass

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def message(self, channel_id: str, content: str, author: str = "volunteer", author_id: str = "42"):
        payload = {"op": 0, "t": "MESSAGE_CREATE", "s": self._next_sequence(), "d": {
            "id": str(1000 + self.sequence), "channel_id": channel_id, "guild_id": "7", "content": content,
            "timestamp": "2026-11-26T01:02:03.000000+00:00",
            "author": {"id": author_id, "username": author, "global_name": author.title(), "bot": False}}}
        self._call(self._current["socket"].send(json.dumps(payload)))

    def send(self, payload: dict):
        self._call(self._current["socket"].send(json.dumps(payload)))

    def close_current(self, code: int, reason: str = ""):
        self._call(self._current["socket"].close(code, reason))

    def ops(self, index: int) -> list:
        return [payload.get("op") for payload in self.connections[index]["received"]]

    def stop(self):
        self._loop.call_soon_threadsafe(self._server.close)
