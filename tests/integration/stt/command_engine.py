"""A command engine for the tests, speaking StreamHub's engine protocol: 16 kHz mono s16le PCM on stdin, JSON
lines {"text","is_final"} on stdout. `python3 command_engine.py` reports every two seconds of audio it reads
(an interim line, then a final one with its times); `--garbage` writes lines that are not JSON; `--die` exits
after its first second of audio."""
import json
import sys

RATE = 16000
mode = sys.argv[1] if len(sys.argv) > 1 else ""
received = 0
reported = 0
while True:
    chunk = sys.stdin.buffer.read(3200)
    if not chunk:
        break
    received += len(chunk) // 2
    if mode == "--die" and received >= RATE:
        sys.exit(3)
    if mode == "--garbage":
        print("this is not json", flush=True)
        continue
    while received - reported >= 2 * RATE:
        start = reported / RATE
        print(json.dumps({"text": "two seconds", "is_final": False, "start": start}), flush=True)
        print(json.dumps({"text": f"two seconds of audio from {start:.0f}", "is_final": True, "start": start, "end": start + 2}), flush=True)
        reported += 2 * RATE
