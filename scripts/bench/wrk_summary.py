#!/usr/bin/env python3
"""Reads `wrk --latency` output on stdin and prints one line: requests/s, p50, p99 (ms), non-2xx/3xx."""
import re
import sys

text = sys.stdin.read()


def ms(label: str) -> float:
    match = re.search(r"\s" + label + r"%\s+([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
p50, p99 = ms("50"), ms("99")
print(f"{rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  non-2xx {errors.group(1) if errors else 0}")
