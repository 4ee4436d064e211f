"""A synthetic stream origin for the status-check benchmark: many "hosts" (one port each) serving HLS
playlists that are live, ended, gone, slow, or that never answer.

    /live/N.m3u8   a media playlist that moves with the clock, no ENDLIST
    /ended/N.m3u8  a playlist with EXT-X-ENDLIST
    /gone/N.m3u8   404
    /slow/N.m3u8   live, after a 1-3 s delay
    /hang/N.m3u8   never answers

It records when each request arrived on which port, and how many were in flight at once, and writes
that to the stats file on SIGTERM (or when asked with GET /__stats on any port).

Run: python3 status_origin.py FIRST_PORT PORT_COUNT STATS_FILE
"""
import asyncio
import json
import random
import signal
import sys
import time

first_port, port_count, stats_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
arrivals = {}  # port -> [monotonic seconds]
inflight = 0
max_inflight = 0
total = 0


def playlist(ended: bool) -> bytes:
    sequence = int(time.time() // 2)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", f"#EXT-X-MEDIA-SEQUENCE:{sequence}"]
    for index in range(sequence, sequence + 3):
        lines += ["#EXTINF:2.0,", f"segment{index}.ts"]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


def stats() -> dict:
    per_port_max = 0
    for times in arrivals.values():
        times.sort()
        start = 0
        for end in range(len(times)):
            while times[end] - times[start] >= 1.0:
                start += 1
            per_port_max = max(per_port_max, end - start + 1)
    return {"requests": total, "max_inflight": max_inflight, "max_per_host_per_second": per_port_max, "hosts": len(arrivals)}


async def handle(reader, writer, port):
    global inflight, max_inflight, total
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path == "/__stats":
                body, status = json.dumps(stats()).encode(), "200 OK"
            else:
                total += 1
                arrivals.setdefault(port, []).append(time.monotonic())
                inflight += 1
                max_inflight = max(max_inflight, inflight)
                try:
                    kind = path.split("/")[1]
                    if kind == "hang":
                        await reader.read()  # until the client gives up and closes
                        return
                    if kind == "slow":
                        await asyncio.sleep(random.uniform(1, 3))
                    if kind in ("live", "slow"):
                        body, status = playlist(False), "200 OK"
                    elif kind == "ended":
                        body, status = playlist(True), "200 OK"
                    else:
                        body, status = b"not found\n", "404 Not Found"
                finally:
                    inflight -= 1
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, IndexError):
        pass
    finally:
        writer.close()


async def main():
    servers = []
    for port in range(first_port, first_port + port_count):
        servers.append(await asyncio.start_server(lambda r, w, p=port: handle(r, w, p), "127.0.0.1", port, backlog=1024))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    with open(stats_path, "w") as f:
        json.dump(stats(), f)


asyncio.run(main())
