#!/usr/bin/env python3
"""A synthetic live HLS origin for the recorder benchmark: keeps K live media playlists s0.m3u8 … s{K-1}.m3u8
in a directory (nginx serves it), each a sliding window of 6 two-second segments whose media sequence follows
the clock (each stream with its own phase). Segment URIs point at a few real segment files (seg0.ts … seg3.ts)
with a query string that makes every URI unique. Playlists are replaced atomically (write, then rename).

    recorder_origin.py DIRECTORY K
"""
import os
import sys
import time

directory, count = sys.argv[1], int(sys.argv[2])
files = sorted(n for n in os.listdir(directory) if n.startswith("seg") and n.endswith(".ts"))
duration, window = 2.0, 6
start = time.time()
current = [-1] * count


def write(k: int, n: int):
    first = max(0, n - window + 1)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(duration)}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for seq in range(first, n + 1):
        lines += [f"#EXTINF:{duration:.3f},", f"{files[seq % len(files)]}?s={k}&n={seq}"]
    path = os.path.join(directory, f"s{k}.m3u8")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(path + ".tmp", path)


print("ready", flush=True)
while True:
    now = time.time()
    for k in range(count):
        # Streams start with 6 segments of history, their segment boundaries spread over the 2 s.
        n = int((now - start + (k % 20) * duration / 20) / duration) + window
        if n != current[k]:
            write(k, n)
            current[k] = n
    time.sleep(0.1)
