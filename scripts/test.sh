#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need when it is missing, starts a throwaway
# PostgreSQL server, runs the Swift tests on SQLite and PostgreSQL, then the integration tests against
# the real binary. Stops PostgreSQL on the way out, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v ngircd >/dev/null || [ -x /usr/sbin/ngircd ] || need_apt+=(ngircd)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need_apt+=(libnginx-mod-rtmp)
command -v flite >/dev/null || need_apt+=(flite)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "==> installing ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "==> ${need_apt[*]} missing and not root: PostgreSQL tests will be skipped" >&2
    fi
fi
python3 -c 'import pytest, websockets, selenium, pocketsphinx' 2>/dev/null && command -v schemathesis >/dev/null && command -v yt-dlp >/dev/null || {
    echo "==> installing Python test packages"
    python3 -m pip install -q pytest websockets schemathesis selenium yt-dlp pocketsphinx
}

pg_dir=$(mktemp -d /tmp/streamhub-pg.XXXXXX)
cleanup() { scripts/test-postgres.sh stop "$pg_dir" || true; rm -rf "$pg_dir"; }
trap cleanup EXIT
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null; then
    STREAMHUB_TEST_DATABASE_URL=$(scripts/test-postgres.sh start "$pg_dir")
    export STREAMHUB_TEST_DATABASE_URL
    echo "==> PostgreSQL for tests at $STREAMHUB_TEST_DATABASE_URL"
fi

echo "==> building"
swift build --build-tests
echo "==> Swift tests (SQLite${STREAMHUB_TEST_DATABASE_URL:+ and PostgreSQL})"
swift test --skip-build
echo "==> integration tests against the streamhub binary"
python3 -m pytest -q tests/integration
