#!/usr/bin/env python3
"""Changes streams at a steady rate beside a read benchmark: PATCH /api/v1/streams/{id} {"title"} on keep-alive
connections, paced open-loop (a slow answer does not slow the next write), from several threads.

    registry_writer.py BASE_URL API_KEY WRITES_PER_SECOND SECONDS [STREAMS]
Prints how many writes were sent and how many failed."""
import http.client
import sys
import threading
import time
from urllib.parse import urlparse

base, key, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
streams = int(sys.argv[5]) if len(sys.argv) > 5 else 5000
address = urlparse(base)
threads = 4
sent = [0] * threads
failed = [0] * threads


def writer(index):
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    interval = threads / rate
    start = time.monotonic() + index * interval / threads
    n = 0
    while True:
        due = start + n * interval
        if due - start > seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        i = n * threads + index
        try:
            connection.request("PATCH", f"/api/v1/streams/{i % streams + 1}", body=f'{{"title":"changed {i}"}}',
                               headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failed[index] += 1
        except (OSError, http.client.HTTPException):
            failed[index] += 1
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        sent[index] += 1
        n += 1


workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(f"writes sent {sum(sent)}, failed {sum(failed)}", file=sys.stderr)
