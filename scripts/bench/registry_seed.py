#!/usr/bin/env python3
"""Seeds N streams through the API (with realistic variety) for the registry benchmark.

    registry_seed.py BASE_URL API_KEY [N]
"""
import json
import random
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, key = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
random.seed(5000)
cities = [("Portland", "OR"), ("Chicago", "IL"), ("Denver", "CO"), ("Austin", "TX"), ("Atlanta", "GA"), ("Seattle", "WA"), ("Boise", "ID")]
hosts = ["twitch.tv/", "youtube.com/@", "kick.com/", "tiktok.com/@", "example.org/live/"]


def post(index: int) -> int:
    city, state = random.choice(cities)
    body = {
        "link": f"https://{hosts[index % len(hosts)]}streamer{index}",
        "source": f"Streamer{index}", "title": f"Live from {city} #{index}", "city": city, "state": state,
        "status": random.choice(["live", "offline", "unknown"]), "notes": "seeded for the benchmark",
        "is_pinned": index % 50 == 0,
    }
    request = urllib.request.Request(f"{base}/api/v1/streams", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


with ThreadPoolExecutor(8) as pool:
    statuses = list(pool.map(post, range(count)))
assert all(status == 201 for status in statuses), set(statuses)
print(f"seeded {count} streams")
