#!/usr/bin/env bash
# Speech-to-text benchmark: the built-in PocketSphinx engine's real-time factor alone and through the
# server, the word error rate on the test corpus, and a ladder of live streams transcribed at once with
# the delay from speech in the source to the caption on an overlay client (p50/p95). Release build.
#
#   scripts/bench/stt.sh ["1 4 8 12" streams ladder] [seconds per step, default 60]
# Needs flite (apt install flite), ffmpeg and the pocketsphinx Python package (pip install pocketsphinx).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .build/release/streamhub ] || swift build -c release --product streamhub
command -v flite >/dev/null || { echo "flite is needed: apt-get install flite" >&2; exit 1; }
python3 -c 'import pocketsphinx' 2>/dev/null || { echo "pocketsphinx is needed: pip install pocketsphinx" >&2; exit 1; }
exec python3 scripts/bench/stt.py "${1:-1 4 8 12 16}" "${2:-60}"
