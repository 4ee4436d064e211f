"""The seed's own /events design (Realtime STT WebSocket module), for side-by-side benchmarks.

As the seed describes it: FastAPI/Starlette WebSockets on uvicorn, every client in one set, and a
broadcast that awaits send_text for each client in turn, dropping clients whose send fails. A POST
endpoint stands in for the seed's event handlers calling broadcast_event.

Run: python3 seed_events_server.py PORT
"""
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

active_connections: set[WebSocket] = set()


async def events(websocket: WebSocket):
    await websocket.accept()
    active_connections.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        active_connections.discard(websocket)


async def broadcast(message: str) -> int:
    delivered = 0
    for connection in list(active_connections):
        try:
            await connection.send_text(message)
            delivered += 1
        except Exception:
            active_connections.discard(connection)
    return delivered


async def publish(request: Request):
    body = (await request.body()).decode()
    return JSONResponse({"delivered": await broadcast(body)}, status_code=202)


app = Starlette(routes=[WebSocketRoute("/events", events), Route("/publish", publish, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=4096,
                ws_ping_interval=None, ws_max_size=65536)
