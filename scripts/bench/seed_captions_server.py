"""The browser-source seed's own caption design, for side-by-side benchmarks with StreamHub.

As ../shared/seeds/browser-source-core-module.md describes it: an async Python web server (Starlette on
uvicorn here; the seed names Quart, same model), a global registry
`caption_connections = {community_id: set(websockets)}`, and the caption broadcast flow:
verify X-Service-Key, store the caption in the database (one synchronous insert per caption, as pyDAL
does), look up the community's connections, serialise the payload once and `send` it to each client in
turn, removing the dead ones. A WebSocket connect validates the overlay key against the database and
replays the last 10 captions of the last 5 minutes.

Run: python3 seed_captions_server.py PORT DB_PATH SERVICE_KEY COMMUNITY_ID OVERLAY_KEY
"""
import hmac
import json
import sqlite3
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PORT, DB_PATH, SERVICE_KEY, COMMUNITY_ID, OVERLAY_KEY = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]

db = sqlite3.connect(DB_PATH, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS overlay_keys (community_id INTEGER PRIMARY KEY, current_key TEXT NOT NULL)")
db.execute("CREATE TABLE IF NOT EXISTS caption_events (id INTEGER PRIMARY KEY, community_id INTEGER, payload TEXT, created_at REAL)")
db.execute("CREATE INDEX IF NOT EXISTS caption_events_recent ON caption_events (community_id, created_at)")
db.execute("INSERT OR REPLACE INTO overlay_keys VALUES (?, ?)", (COMMUNITY_ID, OVERLAY_KEY))

caption_connections: dict[int, set[WebSocket]] = {}


def key_community(key: str):
    row = db.execute("SELECT community_id FROM overlay_keys WHERE current_key = ?", (key,)).fetchone()
    return row[0] if row else None


async def captions_socket(websocket: WebSocket):
    community = int(websocket.path_params["community_id"])
    if key_community(websocket.query_params.get("key", "")) != community:
        await websocket.close(code=4403)
        return
    await websocket.accept()
    caption_connections.setdefault(community, set()).add(websocket)
    try:
        rows = db.execute(
            "SELECT payload FROM caption_events WHERE community_id = ? AND created_at > ? ORDER BY id DESC LIMIT 10",
            (community, time.time() - 300)).fetchall()
        for (payload,) in reversed(rows):
            await websocket.send_text(payload)
        while True:
            if await websocket.receive_text() == "ping":
                await websocket.send_text("pong")
    except WebSocketDisconnect:
        pass
    finally:
        caption_connections.get(community, set()).discard(websocket)


async def internal_captions(request: Request):
    if not hmac.compare_digest(request.headers.get("x-service-key", ""), SERVICE_KEY):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    body = await request.json()
    community = int(body["community_id"])
    text = body.get("translated_message") or body.get("text") or body.get("original_message")
    if not text:
        return JSONResponse({"error": "text is required"}, status_code=400)
    now = time.time()
    payload = json.dumps(separators=(",", ":"), obj={
        "type": "caption", "text": text, "is_final": body.get("is_final", True), "username": body.get("username"),
        "original": body.get("original_message", text), "translated": body.get("translated_message"),
        "detected_lang": body.get("detected_language"), "target_lang": body.get("target_language"),
        "confidence": body.get("confidence"), "timestamp": now,
    })
    db.execute("INSERT INTO caption_events (community_id, payload, created_at) VALUES (?, ?, ?)", (community, payload, now))
    delivered = 0
    for connection in list(caption_connections.get(community, ())):
        try:
            await connection.send_text(payload)
            delivered += 1
        except Exception:
            caption_connections[community].discard(connection)
    return JSONResponse({"stored": True, "delivered_to": delivered}, status_code=202)


app = Starlette(routes=[
    WebSocketRoute("/ws/captions/{community_id}", captions_socket),
    Route("/api/v1/internal/captions", internal_captions, methods=["POST"]),
])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(PORT), log_level="warning", backlog=4096,
                ws_ping_interval=None, ws_max_size=65536)
