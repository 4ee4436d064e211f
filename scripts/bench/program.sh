#!/usr/bin/env bash
# Stream Manager benchmark (see scripts/bench/program.py): a 2x2 wall mosaic + captions + text program at
# 1280x720 30 fps (x264 veryfast) pushed over RTMP to nginx-rtmp; encode speed, dropped frames, fps,
# layer-change latency over RTMP, CPU; then the most programs this machine renders in real time.
#
#   scripts/bench/program.sh [seconds, default 120]
# Needs ffmpeg and nginx with the RTMP module (apt-get install ffmpeg nginx-light libnginx-mod-rtmp).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .build/release/streamhub ] || swift build -c release --product streamhub
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { echo "nginx's RTMP module is needed: apt-get install nginx-light libnginx-mod-rtmp" >&2; exit 1; }
exec python3 scripts/bench/program.py "${1:-120}"
