// wsload: a compiled WebSocket fan-out load generator.
//
// Opens N WebSocket clients, then publishes events over HTTP at a fixed rate (open loop: a slow server
// does not slow the publisher down) and measures, for every event and every client, the time from just
// before the publish request was written to the moment the client read the frame.
//
// Each published event carries "<seq>:<send time in µs>" in its "text" field; clients find it in the
// frame, so the same generator measures StreamHub, the Python seed design and nginx + nchan. It also checks
// that every client read the events in one and the same order ("clients_out_of_order" counts those that did not).
//
// Build: cc -O2 -o wsload wsload.c -lm
// Usage: wsload --port P --path /events --clients N --rate R --duration S
//               --pub-port P --pub-path /api/v1/events [--pub-header 'X-Service-Key: k']
//               [--pub-fields '"community_id":1,'] [--server-pids 123,456] [--label name]
//               [--on-publish-start 'cmd'] [--on-publish-end 'cmd']   (run with system() around the publishing
//               phase, after every client connected and before the drain: callgrind.sh toggles instrumentation)
// Prints one JSON object with the results.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };
enum { P_CONNECTING, P_IDLE, P_BUSY, P_DEAD };

typedef struct {
    int fd;
    int state;
    unsigned char *buf;
    size_t len, cap;
    uint64_t order_hash;  // of the sequence of events this client read, in the order it read them
    long count;           // events read
} client_t;

typedef struct {
    int fd;
    int state;
    char out[4096];
    size_t out_len, out_off;
    char in[8192];
    size_t in_len;
} publisher_t;

#define MAX_PUB 64
#define CLIENT_TAG 0x100000000ULL
#define PUB_TAG 0x200000000ULL

static const char *host = "127.0.0.1";
static int port = 8027, pub_port = 0, clients_target = 1000, duration = 20, connect_rate = 4000;
static double rate = 10;
static const char *path = "/events", *pub_path = "/api/v1/events", *pub_header = "";
static const char *server_pids = "", *label = "server";
static const char *pub_fields = "";  // extra JSON members put first in every published body, e.g. "community_id":1,

static client_t *clients;
static publisher_t pubs[MAX_PUB];
static int npubs;
static int epfd;
static uint32_t *latencies;  // µs
static size_t nlat, caplat;
static uint32_t *received_per_seq;
static long published, pub_ok, pub_err, frames, closes, pings, max_seq;
static long measure_from_seq = 1;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(void) {
    long total = 0;
    char pids[1024];
    snprintf(pids, sizeof pids, "%s", server_pids);
    for (char *pid = strtok(pids, ","); pid; pid = strtok(NULL, ",")) {
        char path_buf[64], line[256];
        snprintf(path_buf, sizeof path_buf, "/proc/%s/status", pid);
        FILE *f = fopen(path_buf, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmRSS:", 6)) total += atol(line + 6);
        fclose(f);
    }
    return total;
}

static int open_socket(int to_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(to_port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void watch(int fd, uint64_t tag, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    epoll_ctl(epfd, op, fd, &ev);
}

static void client_close(client_t *c) {
    if (c->state == C_CLOSED) return;
    if (c->state == C_OPEN) closes++;
    c->state = C_CLOSED;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void record(client_t *c, long seq, int64_t sent) {
    if (seq < 1 || seq > max_seq) return;
    received_per_seq[seq]++;
    // Every client must read the events in one and the same order (the server's).
    c->order_hash = (c->order_hash ^ (uint64_t)seq) * 0x100000001b3ULL;
    c->count++;
    if (seq < measure_from_seq) return;
    int64_t latency = now_us() - sent;
    if (latency < 0) latency = 0;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        latencies = realloc(latencies, caplat * sizeof *latencies);
    }
    latencies[nlat++] = (uint32_t)(latency > 0xffffffff ? 0xffffffff : latency);
}

// Finds "text":"<seq>:<us>" in a payload.
static void parse_payload(client_t *c, const unsigned char *p, size_t n) {
    static const char key[] = "\"text\":\"";
    const unsigned char *m = memmem(p, n, key, sizeof key - 1);
    if (!m) return;
    m += sizeof key - 1;
    const unsigned char *end = p + n;
    long seq = 0;
    int64_t sent = 0;
    while (m < end && *m >= '0' && *m <= '9') seq = seq * 10 + (*m++ - '0');
    if (m >= end || *m != ':') return;
    m++;
    while (m < end && *m >= '0' && *m <= '9') sent = sent * 10 + (*m++ - '0');
    frames++;
    record(c, seq, sent);
}

static void send_pong(client_t *c, const unsigned char *payload, size_t n) {
    unsigned char frame[2 + 4 + 125];
    if (n > 125) n = 125;
    frame[0] = 0x8A;
    frame[1] = 0x80 | (unsigned char)n;
    memset(frame + 2, 0, 4);  // zero mask key: payload unchanged
    memcpy(frame + 6, payload, n);
    (void)!write(c->fd, frame, 6 + n);
    pings++;
}

static void process_frames(client_t *c) {
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *f = c->buf + off;
        int opcode = f[0] & 0x0f;
        size_t plen = f[1] & 0x7f, hdr = 2;
        if (plen == 126) {
            if (c->len - off < 4) break;
            plen = (f[2] << 8) | f[3];
            hdr = 4;
        } else if (plen == 127) {
            if (c->len - off < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = (plen << 8) | f[2 + i];
            hdr = 10;
        }
        if (c->len - off < hdr + plen) break;
        if (opcode == 1) parse_payload(c, f + hdr, plen);
        else if (opcode == 9) send_pong(c, f + hdr, plen);
        else if (opcode == 8) { client_close(c); return; }
        off += hdr + plen;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

static void client_readable(client_t *c) {
    for (;;) {
        if (c->cap - c->len < 2048) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n == 0) { client_close(c); return; }
        if (n < 0) {
            if (errno != EAGAIN) client_close(c);
            return;
        }
        c->len += n;
        if (c->state == C_HANDSHAKE) {
            unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) continue;
            if (memcmp(c->buf, "HTTP/1.1 101", 12)) { client_close(c); return; }
            size_t consumed = end + 4 - c->buf;
            memmove(c->buf, c->buf + consumed, c->len - consumed);
            c->len -= consumed;
            c->state = C_OPEN;
        }
        if (c->state == C_OPEN) process_frames(c);
        if (c->state == C_CLOSED) return;
    }
}

static void client_writable(client_t *c) {
    if (c->state != C_CONNECTING) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { c->state = C_CLOSED; close(c->fd); return; }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
    (void)!write(c->fd, req, n);
    c->state = C_HANDSHAKE;
    watch(c->fd, CLIENT_TAG | (uint64_t)(c - clients), EPOLLIN, EPOLL_CTL_MOD);
}

static void pub_flush(publisher_t *p) {
    while (p->out_off < p->out_len) {
        ssize_t n = write(p->fd, p->out + p->out_off, p->out_len - p->out_off);
        if (n < 0) {
            if (errno == EAGAIN) {
                watch(p->fd, PUB_TAG | (uint64_t)(p - pubs), EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            p->state = P_DEAD;
            pub_err++;
            return;
        }
        p->out_off += n;
    }
    watch(p->fd, PUB_TAG | (uint64_t)(p - pubs), EPOLLIN, EPOLL_CTL_MOD);
}

static void publish_one(void) {
    publisher_t *p = NULL;
    for (int i = 0; i < npubs; i++)
        if (pubs[i].state == P_IDLE) { p = &pubs[i]; break; }
    if (!p && npubs < MAX_PUB) {
        p = &pubs[npubs++];
        memset(p, 0, sizeof *p);
        p->fd = open_socket(pub_port);
        p->state = P_CONNECTING;
        watch(p->fd, PUB_TAG | (uint64_t)(p - pubs), EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
    }
    if (!p) { pub_err++; return; }
    long seq = ++published;
    char body[512];
    int blen;
    // The same body suits every server: StreamHub validates and re-publishes it, the others pass it on.
    blen = snprintf(body, sizeof body, "{%s\"event\":\"transcription\",\"text\":\"%ld:%lld\",\"is_final\":true,\"session_id\":\"bench\"}",
                    pub_fields, seq, (long long)now_us());
    p->out_len = snprintf(p->out, sizeof p->out,
                          "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s%s\r\n%s",
                          pub_path, host, pub_port, blen, pub_header, *pub_header ? "\r\n" : "", "", body);
    p->out_off = 0;
    p->in_len = 0;
    if (p->state == P_IDLE) {
        p->state = P_BUSY;
        pub_flush(p);
    }
}

static void pub_event(publisher_t *p, uint32_t events) {
    if (p->state == P_CONNECTING && (events & EPOLLOUT)) {
        p->state = P_BUSY;
        pub_flush(p);
        return;
    }
    if (events & EPOLLOUT) pub_flush(p);
    if (!(events & EPOLLIN)) return;
    for (;;) {
        ssize_t n = read(p->fd, p->in + p->in_len, sizeof p->in - p->in_len - 1);
        if (n == 0) { p->state = P_DEAD; close(p->fd); return; }
        if (n < 0) return;
        p->in_len += n;
        p->in[p->in_len] = 0;
        char *end = strstr(p->in, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(p->in, "content-length:");
        long length = cl && cl < end ? atol(cl + 15) : 0;
        if ((size_t)(end + 4 - p->in) + length > p->in_len) continue;
        int status = atoi(p->in + 9);
        if (status >= 200 && status < 300) pub_ok++; else pub_err++;
        p->in_len = 0;
        p->state = P_IDLE;
        return;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void loop_until(double deadline, int publishing, double *next_pub) {
    struct epoll_event events[1024];
    while (mono() < deadline) {
        int timeout = 50;
        if (publishing) {
            double wait = *next_pub - mono();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
            if (timeout > 50) timeout = 50;
        }
        int n = epoll_wait(epfd, events, 1024, timeout);
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag & PUB_TAG) pub_event(&pubs[tag & 0xffffffff], events[i].events);
            else {
                client_t *c = &clients[tag & 0xffffffff];
                if (events[i].events & (EPOLLERR | EPOLLHUP) && c->state != C_OPEN) { client_close(c); continue; }
                if (events[i].events & EPOLLOUT) client_writable(c);
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) client_readable(c);
            }
        }
        while (publishing && mono() >= *next_pub) {
            publish_one();
            *next_pub += 1.0 / rate;
        }
    }
}

static int count_state(int state) {
    int n = 0;
    for (int i = 0; i < clients_target; i++) n += clients[i].state == state;
    return n;
}

static const char *on_publish_start, *on_publish_end;

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--path")) path = v;
        else if (!strcmp(k, "--clients")) clients_target = atoi(v);
        else if (!strcmp(k, "--rate")) rate = atof(v);
        else if (!strcmp(k, "--duration")) duration = atoi(v);
        else if (!strcmp(k, "--connect-rate")) connect_rate = atoi(v);
        else if (!strcmp(k, "--pub-port")) pub_port = atoi(v);
        else if (!strcmp(k, "--pub-path")) pub_path = v;
        else if (!strcmp(k, "--pub-header")) pub_header = v;
        else if (!strcmp(k, "--pub-fields")) pub_fields = v;
        else if (!strcmp(k, "--server-pids")) server_pids = v;
        else if (!strcmp(k, "--label")) label = v;
        else if (!strcmp(k, "--on-publish-start")) on_publish_start = v;
        else if (!strcmp(k, "--on-publish-end")) on_publish_end = v;
        else { fprintf(stderr, "unknown option %s\n", k); return 2; }
    }
    if (!pub_port) pub_port = port;
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);

    epfd = epoll_create1(0);
    clients = calloc(clients_target, sizeof *clients);
    max_seq = (long)(rate * duration) + 16;
    received_per_seq = calloc(max_seq + 1, sizeof *received_per_seq);
    long rss_base = rss_kb();

    // Connect at a bounded rate, so accept queues do not overflow.
    double start = mono();
    int opened = 0;
    while (opened < clients_target) {
        int batch = connect_rate / 20;
        for (int b = 0; b < batch && opened < clients_target; b++, opened++) {
            client_t *c = &clients[opened];
            c->fd = open_socket(port);
            if (c->fd < 0) { c->state = C_CLOSED; continue; }
            c->state = C_CONNECTING;
            watch(c->fd, CLIENT_TAG | (uint64_t)opened, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
        }
        loop_until(mono() + 0.05, 0, NULL);
    }
    double connect_deadline = mono() + 60;
    while (count_state(C_OPEN) + count_state(C_CLOSED) < clients_target && mono() < connect_deadline)
        loop_until(mono() + 0.1, 0, NULL);
    double connect_seconds = mono() - start;
    // Let servers finish registering (upgrade handlers run after the 101), then measure idle memory.
    loop_until(mono() + 2.0, 0, NULL);
    int connected = count_state(C_OPEN);
    long rss_idle = rss_kb();

    // Publish for `duration` seconds; the first second is warm-up and not in the latency figures.
    measure_from_seq = (long)rate + 1;
    long closes_before = closes;
    if (on_publish_start && system(on_publish_start) != 0) fprintf(stderr, "--on-publish-start failed\n");
    double next_pub = mono();
    loop_until(mono() + duration, 1, &next_pub);
    long rss_busy = rss_kb();
    // Drain: wait until every open client has every event, or 5 s.
    double drain_deadline = mono() + 5;
    for (;;) {
        long want = 0, got = 0;
        int open_now = count_state(C_OPEN);
        for (long s = 1; s <= published; s++) { want += open_now; got += received_per_seq[s] < (uint32_t)open_now ? received_per_seq[s] : open_now; }
        if (got >= want || mono() > drain_deadline) break;
        loop_until(mono() + 0.1, 0, NULL);
    }
    if (on_publish_end && system(on_publish_end) != 0) fprintf(stderr, "--on-publish-end failed\n");
    int still_open = count_state(C_OPEN);
    long expected = 0, received = 0;
    for (long s = 1; s <= published; s++) {
        expected += connected;
        received += received_per_seq[s];
    }
    // Clients that read every event but in another order than the first such client.
    long out_of_order = 0;
    client_t *reference = NULL;
    for (int i = 0; i < clients_target; i++) {
        client_t *c = &clients[i];
        if (c->state != C_OPEN || c->count != published) continue;
        if (!reference) reference = c;
        else if (c->order_hash != reference->order_hash) out_of_order++;
    }
    qsort(latencies, nlat, sizeof *latencies, cmp_u32);
    double p50 = nlat ? latencies[nlat / 2] / 1000.0 : -1;
    double p99 = nlat ? latencies[(size_t)(nlat * 0.99)] / 1000.0 : -1;
    double p999 = nlat ? latencies[(size_t)(nlat * 0.999)] / 1000.0 : -1;
    double mx = nlat ? latencies[nlat - 1] / 1000.0 : -1;
    double mn = nlat ? latencies[0] / 1000.0 : -1;
    printf("{\"label\":\"%s\",\"clients\":%d,\"connected\":%d,\"connect_seconds\":%.1f,\"rate\":%.1f,\"duration\":%d,"
           "\"published\":%ld,\"publish_ok\":%ld,\"publish_errors\":%ld,\"expected\":%ld,\"received\":%ld,\"lost\":%ld,"
           "\"disconnected_during_run\":%ld,\"clients_out_of_order\":%ld,\"open_at_end\":%d,\"samples\":%zu,\"min_ms\":%.2f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"p999_ms\":%.2f,\"max_ms\":%.2f,"
           "\"rss_base_kb\":%ld,\"rss_idle_kb\":%ld,\"rss_busy_kb\":%ld,\"rss_per_idle_conn_kb\":%.2f}\n",
           label, clients_target, connected, connect_seconds, rate, duration, published, pub_ok, pub_err, expected, received,
           expected - received, closes - closes_before, out_of_order, still_open, nlat, mn, p50, p99, p999, mx, rss_base, rss_idle, rss_busy,
           connected ? (double)(rss_idle - rss_base) / connected : 0.0);
    return 0;
}
