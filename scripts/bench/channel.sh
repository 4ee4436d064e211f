# Sourced by the fan-out benchmarks: where a channel's clients subscribe and where its events are published.
#
# channel_endpoints BINARY CHANNEL DATA_DIR KEY sets SUB (the subscriber path), PUB (the publish path) and
# FIELDS (extra JSON fields of a published event). For captions it creates an overlay community in DATA_DIR
# first (the server started afterwards on DATA_DIR serves it); /events clients sign in with the service key.
channel_endpoints() {
    local bin=$1 channel=$2 data=$3 key=$4
    FIELDS=""
    if [ "$channel" = captions ]; then
        local created community overlay_key
        created=$(STREAMHUB_DATA_DIR="$data" STREAMHUB_LOG_LEVEL=error "$bin" overlay create bench)
        community=$(sed -n 's/.*community \([0-9]*\).*/\1/p' <<<"$created" | head -1)
        overlay_key=$(sed -n 's/.*overlay key \([0-9a-f]*\).*/\1/p' <<<"$created" | head -1)
        SUB="/ws/captions/$community?key=$overlay_key"; PUB=/api/v1/internal/captions; FIELDS="\"community_id\":$community,"
    else
        SUB="/events?types=transcription&key=$key"; PUB=/api/v1/events
    fi
}

# nchan_start DIR PORT starts nginx + nchan (scripts/bench/nchan.conf.template: one channel, WebSocket
# subscribers on /events, publisher on /pub) with its files under DIR, in the background; nchan_stop DIR stops it
# and waits until its master has gone.
nchan_start() {
    local dir=$1 port=$2
    mkdir -p "$dir/body"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" scripts/bench/nchan.conf.template >"$dir/nginx.conf"
    nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.log" 2>&1 &
}

nchan_stop() {
    local dir=$1
    [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do pgrep -f "nginx: master" >/dev/null || break; sleep 0.05; done
}
