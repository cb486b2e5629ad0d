/* A subscriber load-generator process in C: the same program as bench/subscribers.py, so that
 * the generator is not what limits a fan-out benchmark (Python spends 15-20 us per frame).
 * `realtime bench` builds it with `cc -O2` when there is a C compiler and runs the Python one
 * otherwise; the runner cannot tell them apart.
 *
 *     cc -O2 -o subscribers bench/subscribers.c
 *     ./subscribers '<json config>'        or        ./subscribers @config.json
 *
 * Config: targets [[host, port], ...], channels [...], count, max_seconds, name, ping_every
 * (seconds between application pings per connection, 0 for none), parallel (concurrent
 * handshakes, default 100). Connection i goes to targets[i % len] (IPv4 loopback) and
 * subscribes to channels[i % len]; it is ready when `subscribed` comes back, failed on `reset`
 * or `error`, a lost connection, or after 30 s.
 *
 * It prints one JSON line when connected ({"ready": n, "failed": n}), then obeys stdin lines:
 * `dump PATH` writes the (send time, latency) samples since the last dump to PATH (8-byte
 * little-endian count n, n int64 send times in ns, n int64 latencies in us) and prints the
 * counters as one JSON line; `mem` prints {"open": n}; `stop` (or EOF) closes everything and
 * exits. It exits by itself after max_seconds whatever happens.
 *
 * One epoll loop, edge-triggered, non-blocking sockets. Latency marker: every benchmark
 * comment body starts with `bench <CLOCK_MONOTONIC ns of the send>`; the receive time is read
 * once per read(), as the Python generator does once per data_received.
 *
 * Cost: under 1 us of user time per frame; the read() itself costs the kernel several us
 * (mostly the ACK it sends), the same as for the Python generator. Being fast has one catch:
 * woken for every frame, the generator would make the server pay a wake-up per frame (about
 * 15 % more server CPU in a 1,000-subscriber fan-out than with the Python generator). So after
 * a wait that brought events it naps NAP_NS before polling again; frames that arrive during
 * the nap wait for it, which adds at most NAP_NS (0.1 ms) to their measured latency.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)
#define READY_TIMEOUT_NS (30LL * 1000000000LL)
#define PING_TICK_NS 100000000LL
#define LINGER_NS 200000000LL
#define STDIN_TOKEN UINT32_MAX
#define IN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)
#define NAP_NS 100000

static void die(const char *what) {
    fprintf(stderr, "subscribers: %s\n", what);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory");
    return q;
}

/* Grow *buf to hold at least `need` bytes (doubling). */
static void reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (*cap >= need) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    *buf = xrealloc(*buf, c);
    *cap = c;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* -- a tiny JSON parser, enough for the config -------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int type;
    double num;
    char *str;          /* J_STR: UTF-8, NUL-terminated */
    struct jv *items;   /* J_ARR, J_OBJ */
    char **keys;        /* J_OBJ */
    size_t n;
} jv;

typedef struct {
    const char *p, *end;
} jp;

static void jfail(const char *why) {
    fprintf(stderr, "subscribers: bad JSON config: %s\n", why);
    exit(1);
}

static void jws(jp *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p, const char *end) {
    if (end - p < 4) jfail("short \\u escape");
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
        else jfail("bad \\u escape");
    }
    return v;
}

static char *utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

static char *jstring(jp *s) {
    s->p++; /* the opening quote */
    const char *start = s->p;
    while (s->p < s->end && *s->p != '"') s->p += (*s->p == '\\') ? 2 : 1;
    if (s->p >= s->end) jfail("unterminated string");
    char *out = xrealloc(NULL, (size_t)(s->p - start) + 1), *o = out;
    for (const char *q = start; q < s->p; q++) {
        if (*q != '\\') {
            *o++ = *q;
            continue;
        }
        q++;
        switch (*q) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(q + 1, s->p);
            q += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s->p - q >= 7 && q[1] == '\\' && q[2] == 'u') {
                unsigned lo = (unsigned)hex4(q + 3, s->p);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    q += 6;
                }
            }
            o = utf8_put(o, cp);
            break;
        }
        default: *o++ = *q; break; /* \" \\ \/ */
        }
    }
    *o = 0;
    s->p++; /* the closing quote */
    return out;
}

static void jvalue(jp *s, jv *v, int depth) {
    if (depth > 32) jfail("nested too deep");
    jws(s);
    if (s->p >= s->end) jfail("unexpected end");
    memset(v, 0, sizeof *v);
    char ch = *s->p;
    if (ch == '{' || ch == '[') {
        int obj = ch == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? J_OBJ : J_ARR;
        size_t cap = 0;
        s->p++;
        jws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return;
        }
        for (;;) {
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                v->items = xrealloc(v->items, cap * sizeof *v->items);
                if (obj) v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
            }
            if (obj) {
                jws(s);
                if (s->p >= s->end || *s->p != '"') jfail("expected a key");
                v->keys[v->n] = jstring(s);
                jws(s);
                if (s->p >= s->end || *s->p != ':') jfail("expected ':'");
                s->p++;
            }
            jvalue(s, &v->items[v->n++], depth + 1);
            jws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
            } else if (s->p < s->end && *s->p == close) {
                s->p++;
                return;
            } else {
                jfail("expected ',' or a closing bracket");
            }
        }
    } else if (ch == '"') {
        v->type = J_STR;
        v->str = jstring(s);
    } else if (s->end - s->p >= 4 && !memcmp(s->p, "true", 4)) {
        v->type = J_BOOL;
        v->num = 1;
        s->p += 4;
    } else if (s->end - s->p >= 5 && !memcmp(s->p, "false", 5)) {
        v->type = J_BOOL;
        s->p += 5;
    } else if (s->end - s->p >= 4 && !memcmp(s->p, "null", 4)) {
        v->type = J_NULL;
        s->p += 4;
    } else {
        char tmp[64];
        size_t k = 0;
        while (s->p + k < s->end && k < sizeof tmp - 1 && strchr("+-0123456789.eE", s->p[k]))
            k++;
        if (!k) jfail("unexpected character");
        memcpy(tmp, s->p, k);
        tmp[k] = 0;
        char *stop;
        v->type = J_NUM;
        v->num = strtod(tmp, &stop);
        if (*stop) jfail("bad number");
        s->p += k;
    }
}

static jv *jget(jv *obj, const char *key) {
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

static double jnum(jv *obj, const char *key, double fallback) {
    jv *v = jget(obj, key);
    if (!v || v->type == J_NULL) return fallback;
    if (v->type != J_NUM && v->type != J_BOOL) jfail(key);
    return v->num;
}

/* A string as Python's json.dumps writes it (ensure_ascii: anything outside ' '..'~' escaped). */
static size_t json_quote(char *out, const char *s) {
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp = *p;
        int extra = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
        if (extra) cp &= 0x3F >> extra;
        p++;
        for (int i = 0; i < extra && (*p & 0xC0) == 0x80; i++) cp = (cp << 6) | (*p++ & 0x3F);
        if (cp == '"' || cp == '\\') {
            *o++ = '\\';
            *o++ = (char)cp;
        } else if (cp == '\n' || cp == '\r' || cp == '\t' || cp == '\b' || cp == '\f') {
            *o++ = '\\';
            *o++ = cp == '\n' ? 'n' : cp == '\r' ? 'r' : cp == '\t' ? 't' : cp == '\b' ? 'b' : 'f';
        } else if (cp >= 0x20 && cp < 0x7F) {
            *o++ = (char)cp;
        } else {
            unsigned units[2] = {cp, 0};
            int nu = 1;
            if (cp >= 0x10000) {
                units[0] = 0xD800 + ((cp - 0x10000) >> 10);
                units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
                nu = 2;
            }
            for (int i = 0; i < nu; i++) {
                *o++ = '\\';
                *o++ = 'u';
                for (int sh = 12; sh >= 0; sh -= 4) *o++ = hex[(units[i] >> sh) & 0xF];
            }
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}

/* -- state ------------------------------------------------------------------------------- */

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_UPGRADED, ST_CLOSING, ST_CLOSED };

typedef struct conn {
    int fd;
    int open_idx;        /* position in G.open, -1 when not in the open set */
    uint8_t state;
    uint8_t resolved;    /* the "ready" future is done (ok, failed or timed out) */
    int close_code;      /* from the server's close frame; -1 = None */
    uint32_t epev;       /* the epoll events registered */
    int64_t t0;          /* when the connect started */
    uint32_t target;
    uint32_t channel;
    uint8_t *rb;         /* bytes read but not parsed yet (a partial head or frame) */
    size_t rlen, rcap;
    uint8_t *frag;       /* a fragmented message being assembled */
    size_t flen, fcap;
    uint8_t *ob;         /* bytes to write that the socket did not take yet */
    size_t olen, ocap;
} conn;

typedef struct {
    int code; /* -1 = None */
    long long count;
} closed_count;

static struct {
    int ep;
    conn *conns;
    long count, next, oldest, inflight, parallel, ok, failed;
    conn **open;
    long open_n;
    long lingering;              /* closing connections still flushing their output */
    struct sockaddr_in *addrs;
    char **hosts;
    int *ports;
    size_t ntargets;
    char **subscribe;            /* the subscribe op per channel, JSON text */
    size_t nchannels;
    double ping_every;
    int64_t started, deadline;
    uint64_t rng;
    uint8_t rbuf[READ_CHUNK];
    /* counters since the last dump */
    long long events, frames, bytes;
    int64_t *sent, *lat;
    size_t nsamples, scap;
    closed_count *closed;
    size_t nclosed, closed_cap;
    /* stdin */
    uint8_t *in;
    size_t inlen, incap;
    int stdin_polled, stop;
} G;

static uint64_t rnd(void) { /* xorshift64* */
    G.rng ^= G.rng >> 12;
    G.rng ^= G.rng << 25;
    G.rng ^= G.rng >> 27;
    return G.rng * 0x2545F4914F6CDD1DULL;
}

static void set_events(conn *c, uint32_t ev) {
    if (c->epev == ev) return;
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - G.conns)};
    if (epoll_ctl(G.ep, c->epev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0)
        die("epoll_ctl");
    c->epev = ev;
}

static void count_closed(int code) {
    for (size_t i = 0; i < G.nclosed; i++) {
        if (G.closed[i].code == code) {
            G.closed[i].count++;
            return;
        }
    }
    if (G.nclosed == G.closed_cap) {
        G.closed_cap = G.closed_cap ? G.closed_cap * 2 : 8;
        G.closed = xrealloc(G.closed, G.closed_cap * sizeof *G.closed);
    }
    G.closed[G.nclosed++] = (closed_count){code, 1};
}

static void resolve(conn *c, int ok) {
    if (c->resolved) return;
    c->resolved = 1;
    if (ok) G.ok++;
    else G.failed++;
    G.inflight--;
}

static void leave_open_set(conn *c) {
    if (c->open_idx < 0) return;
    conn *last = G.open[--G.open_n];
    G.open[c->open_idx] = last;
    last->open_idx = c->open_idx;
    c->open_idx = -1;
    count_closed(c->close_code);
}

static void release(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = ST_CLOSED;
    free(c->rb);
    free(c->frag);
    free(c->ob);
    c->rb = c->frag = c->ob = NULL;
    c->rlen = c->rcap = c->flen = c->fcap = c->olen = c->ocap = 0;
}

/* The connection is gone (EOF, error, or we are done with it): like connection_lost. */
static void lost(conn *c) {
    if (c->state == ST_CLOSING) G.lingering--;
    leave_open_set(c);
    resolve(c, 0);
    c->state = ST_CLOSED;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    /* the buffers may be in use by the caller's parse loop: on_readable frees them */
}

/* Like transport.close(): stop reading, flush what is queued, then close. */
static void close_conn(conn *c) {
    if (c->state == ST_CLOSING || c->state == ST_CLOSED) return;
    if (c->olen == 0) {
        lost(c);
        return;
    }
    leave_open_set(c);
    resolve(c, 0);
    c->state = ST_CLOSING;
    G.lingering++;
    set_events(c, EPOLLOUT | EPOLLET);
}

static void flush(conn *c) {
    size_t done = 0;
    while (done < c->olen) {
        ssize_t w = send(c->fd, c->ob + done, c->olen - done, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            c->olen = 0;
            lost(c);
            return;
        }
        done += (size_t)w;
    }
    memmove(c->ob, c->ob + done, c->olen - done);
    c->olen -= done;
    if (c->olen == 0) {
        if (c->state == ST_CLOSING) lost(c);
        else set_events(c, IN_EVENTS);
    }
}

static void send_raw(conn *c, const uint8_t *p, size_t n) {
    if (c->fd < 0 || c->state == ST_CLOSING) return;
    size_t done = 0;
    if (c->olen == 0) {
        while (done < n) {
            ssize_t w = send(c->fd, p + done, n - done, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                return; /* the read side will see the error */
            }
            done += (size_t)w;
        }
        if (done == n) return;
    }
    reserve(&c->ob, &c->ocap, c->olen + n - done);
    memcpy(c->ob + c->olen, p + done, n - done);
    c->olen += n - done;
    set_events(c, IN_EVENTS | EPOLLOUT);
}

/* A client frame (clients must mask), FIN set. */
static void send_frame(conn *c, int opcode, const uint8_t *p, size_t n) {
    uint8_t small[512];
    uint8_t *f = n + 14 <= sizeof small ? small : xrealloc(NULL, n + 14);
    size_t h = 0;
    f[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        f[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint32_t key32 = (uint32_t)rnd();
    uint8_t key[4];
    memcpy(key, &key32, 4);
    memcpy(f + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) f[h + i] = p[i] ^ key[i & 3];
    send_raw(c, f, h + n);
    if (f != small) free(f);
}

static void send_text(conn *c, const char *text) {
    if (c->state == ST_HANDSHAKE || c->state == ST_UPGRADED)
        send_frame(c, 1, (const uint8_t *)text, strlen(text));
}

/* -- connecting -------------------------------------------------------------------------- */

static void connected(conn *c) {
    c->open_idx = (int)G.open_n;
    G.open[G.open_n++] = c;
    c->state = ST_HANDSHAKE;
    set_events(c, IN_EVENTS);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[18] = {0};
    uint64_t a = rnd(), b = rnd();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    char key[25];
    for (int i = 0, o = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        key[o++] = b64[(v >> 18) & 63];
        key[o++] = b64[(v >> 12) & 63];
        key[o++] = b64[(v >> 6) & 63];
        key[o++] = b64[v & 63];
    }
    key[22] = key[23] = '=';
    key[24] = 0;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     G.hosts[c->target], G.ports[c->target], key);
    if (n < 0 || (size_t)n >= sizeof req) die("host name too long");
    send_raw(c, (const uint8_t *)req, (size_t)n);
}

/* A connect that failed: like create_connection raising OSError (never in the open set). */
static void connect_failed(conn *c) {
    resolve(c, 0);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = ST_CLOSED;
}

static void start(conn *c) {
    G.inflight++;
    c->t0 = now_ns();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        connect_failed(c);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in *sa = &G.addrs[c->target];
    if (connect(c->fd, (struct sockaddr *)sa, sizeof *sa) == 0) {
        connected(c);
    } else if (errno == EINPROGRESS) {
        c->state = ST_CONNECTING;
        set_events(c, EPOLLOUT | EPOLLET);
    } else {
        connect_failed(c);
    }
}

static void start_more(void) {
    while (G.inflight < G.parallel && G.next < G.count) start(&G.conns[G.next++]);
}

static void connect_done(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) connect_failed(c);
    else connected(c);
}

/* Connections not ready 30 s after their connect started count as failed (and, like the
 * Python one after wait_for gives up, stay open if they are). */
static void check_timeouts(int64_t now) {
    while (G.oldest < G.next) {
        conn *c = &G.conns[G.oldest];
        if (!c->resolved) {
            if (now - c->t0 < READY_TIMEOUT_NS) break;
            if (c->state == ST_CONNECTING) connect_failed(c);
            else resolve(c, 0);
        }
        G.oldest++;
    }
}

/* -- receiving ----------------------------------------------------------------------------- */

static const char EVENT[] = "\"type\":\"event\"";
static const char MARK[] = "\"body\":\"bench ";

static void sample(int64_t sent, int64_t now) {
    if (G.nsamples == G.scap) {
        G.scap = G.scap ? G.scap * 2 : 4096;
        G.sent = xrealloc(G.sent, G.scap * sizeof *G.sent);
        G.lat = xrealloc(G.lat, G.scap * sizeof *G.lat);
    }
    int64_t d = now - sent, q = d / 1000;
    if (d % 1000 < 0) q--; /* floor division, as Python's // */
    G.sent[G.nsamples] = sent;
    G.lat[G.nsamples++] = q;
}

static void text_frame(conn *c, const uint8_t *p, size_t n, int64_t now) {
    G.frames++;
    G.bytes += (long long)n;
    long long events = 0;
    const uint8_t *q = p, *end = p + n;
    while ((q = memmem(q, (size_t)(end - q), EVENT, sizeof EVENT - 1))) {
        events++;
        q += sizeof EVENT - 1;
    }
    if (events) {
        G.events += events;
        q = p;
        while ((q = memmem(q, (size_t)(end - q), MARK, sizeof MARK - 1))) {
            const uint8_t *d = q + sizeof MARK - 1, *e = d;
            uint64_t v = 0;
            while (e < end && *e >= '0' && *e <= '9') {
                if (e - d < 19) v = v * 10 + (uint64_t)(*e - '0');
                e++;
            }
            if (e > d && e < end && *e == ' ') {
                sample((int64_t)v, now);
                q = e + 1;
            } else {
                q++;
            }
        }
    } else if (!c->resolved && memmem(p, n, "\"subscribed\"", 12)) {
        resolve(c, 1);
    } else if (memmem(p, n, "\"reset\"", 7) || memmem(p, n, "\"error\"", 7)) {
        resolve(c, 0);
    }
}

/* Parse the complete frames at buf[0..n); returns how many bytes they took. */
static size_t frames(conn *c, const uint8_t *buf, size_t n, int64_t now) {
    size_t pos = 0;
    while (n - pos >= 2) {
        uint8_t b0 = buf[pos];
        uint64_t length = buf[pos + 1] & 0x7F;
        size_t head = 2;
        if (length == 126) {
            if (n - pos < 4) break;
            length = (uint64_t)buf[pos + 2] << 8 | buf[pos + 3];
            head = 4;
        } else if (length == 127) {
            if (n - pos < 10) break;
            length = 0;
            for (size_t i = 2; i < 10; i++) length = length << 8 | buf[pos + i];
            head = 10;
        }
        if ((uint64_t)(n - pos - head) < length) break;
        const uint8_t *payload = buf + pos + head;
        size_t plen = (size_t)length;
        pos += head + plen;
        int opcode = b0 & 0x0F;
        if (opcode == 0) {
            reserve(&c->frag, &c->fcap, c->flen + plen);
            memcpy(c->frag + c->flen, payload, plen);
            c->flen += plen;
            if (!(b0 & 0x80)) continue;
            payload = c->frag;
            plen = c->flen;
            c->flen = 0;
            opcode = 1;
        } else if (!(b0 & 0x80)) {
            reserve(&c->frag, &c->fcap, plen);
            memcpy(c->frag, payload, plen);
            c->flen = plen;
            continue;
        }
        if (opcode == 1) {
            text_frame(c, payload, plen, now);
        } else if (opcode == 9) { /* ping: answer, or the server closes us after its timeout */
            send_frame(c, 0xA, payload, plen);
        } else if (opcode == 8) {
            c->close_code = plen >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
            send_frame(c, 0x8, payload, plen >= 2 ? 2 : plen);
            close_conn(c);
            break;
        }
    }
    return pos;
}

/* One read() and what it brought; returns whether to read again: the socket is edge-triggered,
 * so until it is drained (a short read, or EOF when the peer has shut down). */
static int on_readable(conn *c, int hup) {
    uint8_t *data;
    ssize_t r;
    size_t asked;
    for (;;) {
        if (c->rlen == 0) {
            asked = READ_CHUNK;
            r = read(c->fd, G.rbuf, asked);
            data = G.rbuf;
        } else {
            reserve(&c->rb, &c->rcap, c->rlen + 65536);
            asked = c->rcap - c->rlen;
            r = read(c->fd, c->rb + c->rlen, asked);
            data = c->rb;
        }
        if (r >= 0 || errno != EINTR) break;
    }
    if (r < 0 && errno == EAGAIN) return 0;
    if (r <= 0) {
        lost(c);
        release(c);
        return 0;
    }
    int more = hup || (size_t)r == asked;
    int64_t now = now_ns();
    size_t have = data == G.rbuf ? (size_t)r : c->rlen + (size_t)r;
    size_t used = 0;
    if (c->state == ST_HANDSHAKE) {
        const uint8_t *end = memmem(data, have, "\r\n\r\n", 4);
        if (!end) {
            used = have; /* keep it all: the head is not complete */
            if (data == G.rbuf) {
                reserve(&c->rb, &c->rcap, have);
                memcpy(c->rb, data, have);
            }
            c->rlen = have;
            return more;
        }
        size_t status = have < 12 ? have : 12;
        if (!memmem(data, status, " 101", 4)) {
            close_conn(c);
            if (c->state == ST_CLOSED) release(c);
            return 0;
        }
        used = (size_t)(end - data) + 4;
        c->state = ST_UPGRADED;
        send_text(c, G.subscribe[c->channel]);
    }
    used += frames(c, data + used, have - used, now);
    if (c->state == ST_CLOSED) {
        release(c);
        return 0;
    }
    if (c->state == ST_CLOSING) {
        c->rlen = 0;
        return 0;
    }
    size_t left = have - used;
    if (data == G.rbuf) {
        if (left) {
            reserve(&c->rb, &c->rcap, left);
            memcpy(c->rb, data + used, left);
        }
    } else {
        memmove(c->rb, c->rb + used, left);
    }
    c->rlen = left;
    if (left == 0 && c->rcap > (1u << 20)) { /* a big frame went by: give its memory back */
        free(c->rb);
        c->rb = NULL;
        c->rcap = 0;
    }
    return more;
}

/* -- commands ------------------------------------------------------------------------------ */

static void print_line(const char *text) {
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void dump(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint8_t head[8];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)G.nsamples >> (8 * i));
    /* array('q').tofile writes native int64: little-endian on every machine this runs on */
    size_t n = G.nsamples;
    if (fwrite(head, 1, 8, f) != 8 || (n && fwrite(G.sent, 8, n, f) != n) ||
        (n && fwrite(G.lat, 8, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    printf("{\"events\": %lld, \"frames\": %lld, \"bytes\": %lld, \"samples\": %zu, "
           "\"open\": %ld, \"closed\": {",
           G.events, G.frames, G.bytes, G.nsamples, G.open_n);
    for (size_t i = 0; i < G.nclosed; i++) {
        if (G.closed[i].code < 0) printf("%s\"None\": %lld", i ? ", " : "", G.closed[i].count);
        else printf("%s\"%d\": %lld", i ? ", " : "", G.closed[i].code, G.closed[i].count);
    }
    print_line("}}");
    G.events = G.frames = G.bytes = 0;
    G.nsamples = 0;
}

static void command(char *line) {
    /* Python's str.strip(): whitespace at both ends */
    while (*line == ' ' || (*line >= '\t' && *line <= '\r')) line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || (line[n - 1] >= '\t' && line[n - 1] <= '\r'))) n--;
    line[n] = 0;
    if (!n || !strcmp(line, "stop")) {
        G.stop = 1;
        return;
    }
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = 0;
    else arg = line + n;
    if (!strcmp(line, "dump")) {
        dump(arg);
    } else if (!strcmp(line, "mem")) {
        char text[64];
        snprintf(text, sizeof text, "{\"open\": %ld}", G.open_n);
        print_line(text);
    }
}

static void on_stdin(void) {
    reserve(&G.in, &G.incap, G.inlen + 4096);
    ssize_t r = read(0, G.in + G.inlen, G.incap - G.inlen - 1);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r > 0) G.inlen += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < G.inlen && !G.stop; i++) {
        if (G.in[i] == '\n') {
            G.in[i] = 0;
            command((char *)G.in + start);
            start = i + 1;
        }
    }
    memmove(G.in, G.in + start, G.inlen - start);
    G.inlen -= start;
    if (r <= 0 && !G.stop) { /* EOF: a last line without a newline, then stop */
        G.in[G.inlen] = 0;
        if (G.inlen) command((char *)G.in);
        G.stop = 1;
    }
}

/* Each open connection sends {"op":"ping"} about every ping_every seconds, spread evenly. */
static void ping_tick(long long *n) {
    if (!G.open_n) return;
    double x = (double)G.open_n * 0.1 / G.ping_every;
    long share = (long)x;
    double frac = x - (double)share;
    if (frac > 0.5 || (frac == 0.5 && (share & 1))) share++; /* round half to even */
    if (share < 1) share = 1;
    for (long k = 0; k < share; k++) { /* sending never changes the open set */
        char text[64];
        snprintf(text, sizeof text, "{\"op\":\"ping\",\"id\":%lld}", *n + k);
        send_text(G.open[(*n + k) % G.open_n], text);
    }
    *n += share;
}

/* -- the loop ------------------------------------------------------------------------------ */

static void gave_up(void) {
    char text[96];
    snprintf(text, sizeof text, "{\"error\": \"gave up after %.0fs\"}",
             (double)(now_ns() - G.started) / 1e9);
    print_line(text);
    exit(0);
}

enum { PHASE_CONNECT, PHASE_RUN, PHASE_LINGER };

static void loop(int phase) {
    struct epoll_event evs[512];
    int64_t next_ping = now_ns() + PING_TICK_NS, linger_end = now_ns() + LINGER_NS;
    long long pings = 0;
    int nap = 0, poll_now = 0;
    for (;;) {
        int64_t now = now_ns();
        if (now >= G.deadline) gave_up();
        if (phase == PHASE_CONNECT) {
            check_timeouts(now);
            start_more();
            if (G.ok + G.failed >= G.count) return;
        } else if (phase == PHASE_RUN) {
            if (G.stdin_polled) on_stdin();
            if (G.stop) return;
            if (G.ping_every > 0 && now >= next_ping) {
                ping_tick(&pings);
                next_ping = now + PING_TICK_NS;
            }
        } else if (!G.lingering || now >= linger_end) {
            return;
        }
        int64_t wake = now + 1000000000LL;
        if (phase == PHASE_CONNECT) wake = now + PING_TICK_NS; /* the 30 s timeouts */
        else if (phase == PHASE_LINGER) wake = linger_end;
        else if (G.stdin_polled) wake = now;
        else if (G.ping_every > 0) wake = next_ping;
        if (G.deadline < wake) wake = G.deadline;
        int64_t ms = (wake - now + 999999) / 1000000;
        if (nap) {
            struct timespec ts = {0, NAP_NS};
            nanosleep(&ts, NULL);
        }
        int n = epoll_wait(G.ep, evs, 512, nap || poll_now || ms < 0 ? 0 : (int)ms);
        nap = phase == PHASE_RUN && n > 0 && n < 512; /* see the top of the file */
        poll_now = n == 512;
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint32_t ev = evs[i].events;
            if (evs[i].data.u32 == STDIN_TOKEN) {
                on_stdin();
                continue;
            }
            conn *c = &G.conns[evs[i].data.u32];
            if (c->state == ST_CONNECTING) {
                connect_done(c);
                continue;
            }
            if (c->state == ST_CLOSED) continue;
            if ((ev & EPOLLOUT) && c->olen) flush(c);
            if (c->state == ST_HANDSHAKE || c->state == ST_UPGRADED) {
                int hup = (ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0;
                if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                    while (on_readable(c, hup)) {}
            } else if (c->state == ST_CLOSING && (ev & (EPOLLERR | EPOLLHUP))) {
                lost(c);
            }
            if (c->state == ST_CLOSED) release(c);
        }
    }
}

/* -- setup --------------------------------------------------------------------------------- */

static char *read_config(const char *arg) {
    if (arg[0] != '@') return strdup(arg);
    FILE *f = fopen(arg + 1, "rb");
    if (!f) {
        perror(arg + 1);
        exit(1);
    }
    uint8_t *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        reserve(&text, &cap, len + 65536);
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    text[len] = 0;
    return (char *)text;
}

static void configure(const char *arg) {
    char *text = read_config(arg);
    jp s = {text, text + strlen(text)};
    jv root;
    jvalue(&s, &root, 0);
    jws(&s);
    if (s.p != s.end) jfail("trailing characters");
    if (root.type != J_OBJ) jfail("not an object");
    jv *targets = jget(&root, "targets"), *channels = jget(&root, "channels");
    if (!targets || targets->type != J_ARR || !targets->n) jfail("targets");
    if (!channels || channels->type != J_ARR || !channels->n) jfail("channels");
    G.ntargets = targets->n;
    G.addrs = xrealloc(NULL, G.ntargets * sizeof *G.addrs);
    G.hosts = xrealloc(NULL, G.ntargets * sizeof *G.hosts);
    G.ports = xrealloc(NULL, G.ntargets * sizeof *G.ports);
    for (size_t i = 0; i < G.ntargets; i++) {
        jv *t = &targets->items[i];
        if (t->type != J_ARR || t->n != 2 || t->items[0].type != J_STR ||
            t->items[1].type != J_NUM)
            jfail("a target is not [host, port]");
        G.hosts[i] = t->items[0].str;
        G.ports[i] = (int)t->items[1].num;
        struct sockaddr_in *sa = &G.addrs[i];
        memset(sa, 0, sizeof *sa);
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)G.ports[i]);
        if (inet_pton(AF_INET, G.hosts[i], &sa->sin_addr) != 1) {
            struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
            if (getaddrinfo(G.hosts[i], NULL, &hints, &res) != 0) die("cannot resolve a target");
            sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
            freeaddrinfo(res);
        }
    }
    G.nchannels = channels->n;
    G.subscribe = xrealloc(NULL, G.nchannels * sizeof *G.subscribe);
    for (size_t i = 0; i < G.nchannels; i++) {
        jv *ch = &channels->items[i];
        if (ch->type != J_STR) jfail("a channel is not a string");
        /* json.dumps({"op": "subscribe", "channel": channel}) */
        char *op = xrealloc(NULL, 12 * strlen(ch->str) + 64);
        size_t k = (size_t)sprintf(op, "{\"op\": \"subscribe\", \"channel\": ");
        k += json_quote(op + k, ch->str);
        strcpy(op + k, "}");
        G.subscribe[i] = op;
    }
    double count = jnum(&root, "count", -1);
    if (count < 0) jfail("count");
    G.count = (long)count;
    G.parallel = (long)jnum(&root, "parallel", 100);
    if (G.parallel < 1) G.parallel = 1;
    G.ping_every = jnum(&root, "ping_every", 0);
    G.deadline = G.started + (int64_t)(jnum(&root, "max_seconds", 600) * 1e9);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s '<json config>' | @config.json\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 10000UL, 0UL, 0UL, 0UL); /* naps of 100 us, not 150 */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    G.started = now_ns();
    configure(argv[1]);
    if (getrandom(&G.rng, sizeof G.rng, 0) != sizeof G.rng)
        G.rng = (uint64_t)G.started ^ ((uint64_t)getpid() << 32);
    G.rng |= 1;
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0) die("epoll_create1");
    G.conns = calloc((size_t)G.count + 1, sizeof *G.conns);
    G.open = calloc((size_t)G.count + 1, sizeof *G.open);
    if (!G.conns || !G.open) die("out of memory");
    for (long i = 0; i < G.count; i++) {
        conn *c = &G.conns[i];
        c->fd = -1;
        c->open_idx = -1;
        c->close_code = -1;
        c->target = (uint32_t)((size_t)i % G.ntargets);
        c->channel = (uint32_t)((size_t)i % G.nchannels);
    }

    loop(PHASE_CONNECT);
    printf("{\"ready\": %ld, \"failed\": %ld}\n", G.ok, G.failed);
    fflush(stdout);

    struct epoll_event e = {.events = EPOLLIN, .data.u32 = STDIN_TOKEN};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, 0, &e) < 0) {
        if (errno != EPERM) die("epoll_ctl stdin");
        G.stdin_polled = 1; /* a regular file (or /dev/null): always readable */
    }
    loop(PHASE_RUN);
    if (!G.stdin_polled) epoll_ctl(G.ep, EPOLL_CTL_DEL, 0, &e);

    while (G.open_n) {
        conn *c = G.open[G.open_n - 1];
        static const uint8_t normal[2] = {0x03, 0xE8}; /* 1000 */
        send_frame(c, 0x8, normal, 2);
        close_conn(c);
        if (c->state == ST_CLOSED) release(c);
    }
    loop(PHASE_LINGER);
    return 0;
}
