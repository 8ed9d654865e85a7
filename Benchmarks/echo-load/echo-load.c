/*
 * echo-load: a neutral, closed-loop TCP echo load generator.
 *
 * Every connection sends a message of -s bytes, waits for the whole echo,
 * checks every byte, records the round trip's latency, and sends the next one
 * (with -P N, up to N messages are in flight per connection). All connections
 * are connected before the clock starts. After -w seconds of warmup, round
 * trips that complete during the next -d seconds are counted; then no new
 * messages are sent, the echoes still in flight are awaited (and verified) for
 * at most DRAIN_TIMEOUT_S seconds, and the connections are closed.
 *
 * Data: each connection has its own pseudo-random byte sequence (seeded by its
 * index) of length size + PATTERN_PERIOD; message n is the window that starts
 * at n % PATTERN_PERIOD. Consecutive messages differ, and so do connections, so
 * echoes that are truncated, reordered, duplicated or delivered to the wrong
 * connection fail the comparison.
 *
 * Latency: CLOCK_MONOTONIC from the first attempt to write a message to the
 * read that completes its echo, kept in a log-bucketed histogram (HDR style,
 * 64 sub-buckets per power of two: values are reported to within 1/64, about
 * 1.6 %, of the truth) whose size does not depend on the run's length.
 *
 * I/O: nonblocking sockets, TCP_NODELAY, one level-triggered epoll instance
 * per thread, partial reads and writes handled at every byte offset, writes
 * with send(MSG_NOSIGNAL), or sendmsg gathering up to the pipeline depth of
 * messages in one call.
 *
 * Output: a human line, then one machine-readable line:
 *   RESULT conns=64 size=64 pipeline=1 threads=1 duration=5.00 roundtrips=...
 *          rate=... mbps=... p50_us=... p90_us=... p99_us=... p999_us=...
 *          max_us=... mean_us=... load_cpu=... warmup_roundtrips=...
 *          drained_roundtrips=... connect_s=... dead_conns=0 drain_timeouts=0
 *          errors=0 verify_failures=0
 * mbps: megabytes per second in each direction. load_cpu: CPU time of the
 * load generator's threads during the measurement per second of it (near
 * 1.0 x threads means the generator, not the server, may be the limit).
 * warmup_roundtrips / drained_roundtrips: completed before / after the
 * measured interval (the server served them too). With -S PID:
 * srv_cpu_util (the server's CPU seconds per measured second, from
 * /proc/PID/stat at the measurement's start and end; 10 ms ticks) and
 * srv_cpu_us_per_rt (that CPU time per measured round trip).
 *
 * Exit status: 0 success; 1 a verification failure, a connection that died or
 * an echo still missing after the drain timeout (the RESULT line is printed
 * anyway); 2 usage error; 3 setup failure (resolve, file limit, connect,
 * memory, threads).
 *
 * Build (glibc >= 2.34 has pthreads in libc; add -pthread on older systems):
 *   cc -O2 -Wall -Wextra -o .build-bench-tools/echo-load Benchmarks/echo-load/echo-load.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h> /* isfinite (a macro: no libm needed) */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_PERIOD 251u       /* prime: message n starts at n % 251 in its connection's sequence */
#define MAX_CONNS 100000
#define MAX_SIZE (16u << 20)      /* 16 MiB per message */
#define MAX_PIPELINE 1024
#define MAX_THREADS 256
#define MAX_SECONDS 86400.0
#define MAX_PATTERN_MEMORY (2ull << 30) /* 2 GiB for all the connections' byte sequences */
#define READ_BUFFER_SIZE (256u << 10)
#define READS_PER_EVENT 4         /* reads per readiness event before serving other connections */
#define IOV_BATCH 64              /* messages gathered into one sendmsg */
#define EPOLL_BATCH 512
#define MAX_WAIT_MS 50            /* epoll_wait never sleeps longer, so phase changes are seen */
#define DRAIN_TIMEOUT_S 5.0
#define CONNECT_PARALLEL 128      /* connects in progress at once (stays under listen backlogs) */
#define CONNECT_ATTEMPTS 5
#define CONNECT_TIMEOUT_MS 3000
#define CONNECT_PHASE_LIMIT_S 120.0
#define MAX_REPORTED_PROBLEMS 10  /* detailed messages per kind; the rest are only counted */

/* ---------------------------------------------------------------- histogram */

/* Values below 2^HIST_SUB_BITS are exact; above, each power of two is cut into
 * 2^(HIST_SUB_BITS-1) equal buckets. Covers the whole uint64 range. */
#define HIST_SUB_BITS 7
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 2) * HIST_HALF)

struct histogram {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t min, max;
    long double sum;
};

static unsigned hist_index(uint64_t v) {
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (HIST_SUB_BITS - 1);
    return shift * HIST_HALF + (unsigned)(v >> shift);
}

/* The middle of bucket i (exact for the small, one-value buckets). */
static double hist_value(unsigned i) {
    if (i < (1u << HIST_SUB_BITS))
        return (double)i;
    unsigned shift = i / HIST_HALF - 1;
    uint64_t sub = i % HIST_HALF + HIST_HALF;
    return ((double)sub + 0.5) * (double)(1ull << shift);
}

static void hist_init(struct histogram *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static void hist_record(struct histogram *h, uint64_t v) {
    h->counts[hist_index(v)]++;
    h->total++;
    h->sum += (long double)v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

static void hist_merge(struct histogram *into, const struct histogram *from) {
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum += from->sum;
    if (from->min < into->min) into->min = from->min;
    if (from->max > into->max) into->max = from->max;
}

/* The value at quantile q (0 < q <= 1): the smallest bucket whose cumulative
 * count reaches ceil(q * total), clamped to the exact min and max. */
static double hist_quantile(const struct histogram *h, double q) {
    if (h->total == 0)
        return 0.0;
    double exact = q * (double)h->total;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact) rank++; /* ceil, without libm */
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = hist_value(i);
            if (v < (double)h->min) v = (double)h->min;
            if (v > (double)h->max) v = (double)h->max;
            return v;
        }
    }
    return (double)h->max;
}

/* ----------------------------------------------------------------- options */

struct options {
    const char *host;
    const char *port;
    int conns;
    uint32_t size;
    double duration;
    double warmup;
    int pipeline;
    int threads;
    long server_pid; /* -S: sample this process's CPU time at the measurement's start and end */
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: echo-load [-h host] [-p port] [-c connections] [-s message_size]\n"
            "                 [-d duration_s] [-w warmup_s] [-P pipeline_depth] [-t threads] [-S pid]\n"
            "  -h host      server address or name (default 127.0.0.1)\n"
            "  -p port      server TCP port (default 9999)\n"
            "  -c N         connections, 1-%d (default 64)\n"
            "  -s BYTES     message size, 1-%u (default 64)\n"
            "  -d SECONDS   measured duration, > 0 (default 5; fractions allowed)\n"
            "  -w SECONDS   warmup before measuring, >= 0 (default 1)\n"
            "  -P N         messages in flight per connection, 1-%d (default 1)\n"
            "  -t N         threads, 1-%d and at most -c (default 1)\n"
            "  -S PID       also report the CPU time process PID (the server) used during the\n"
            "               measurement: srv_cpu_util and srv_cpu_us_per_rt (from /proc/PID/stat)\n"
            "Prints a human line and a 'RESULT key=value ...' line. Exit status: 0 ok,\n"
            "1 verification failure or dead connection, 2 usage, 3 setup failure.\n",
            MAX_CONNS, MAX_SIZE, MAX_PIPELINE, MAX_THREADS);
}

static _Noreturn void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("echo-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

static long parse_long(const char *text, char flag, long lo, long hi) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        usage_error("-%c must be an integer from %ld to %ld, got '%s'", flag, lo, hi, text);
    return v;
}

static double parse_seconds(const char *text, char flag, double lo, int lo_inclusive) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v > MAX_SECONDS ||
        (lo_inclusive ? v < lo : v <= lo))
        usage_error("-%c must be a number of seconds %s %g and at most %g, got '%s'", flag,
                    lo_inclusive ? ">=" : ">", lo, MAX_SECONDS, text);
    return v;
}

static void parse_options(int argc, char **argv, struct options *o) {
    o->host = "127.0.0.1";
    o->port = "9999";
    o->conns = 64;
    o->size = 64;
    o->duration = 5.0;
    o->warmup = 1.0;
    o->pipeline = 1;
    o->threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
    }
    int ch;
    opterr = 0;
    while ((ch = getopt(argc, argv, ":h:p:c:s:d:w:P:t:S:")) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': parse_long(optarg, 'p', 1, 65535); o->port = optarg; break;
        case 'c': o->conns = (int)parse_long(optarg, 'c', 1, MAX_CONNS); break;
        case 's': o->size = (uint32_t)parse_long(optarg, 's', 1, MAX_SIZE); break;
        case 'd': o->duration = parse_seconds(optarg, 'd', 0.0, 0); break;
        case 'w': o->warmup = parse_seconds(optarg, 'w', 0.0, 1); break;
        case 'P': o->pipeline = (int)parse_long(optarg, 'P', 1, MAX_PIPELINE); break;
        case 't': o->threads = (int)parse_long(optarg, 't', 1, MAX_THREADS); break;
        case 'S': o->server_pid = parse_long(optarg, 'S', 1, INT_MAX); break;
        case ':': usage_error("-%c needs a value", optopt);
        default: usage_error("unknown option -%c", optopt);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (o->threads > o->conns)
        usage_error("-t %d is more threads than connections (-c %d)", o->threads, o->conns);
    if ((uint64_t)o->conns * (o->size + PATTERN_PERIOD) > MAX_PATTERN_MEMORY)
        usage_error("-c %d x -s %u needs more than %llu MiB of per-connection data", o->conns, o->size,
                    MAX_PATTERN_MEMORY >> 20);
}

/* ------------------------------------------------------------------- state */

struct conn {
    int fd;
    int index;
    int alive;
    int out_armed;          /* EPOLLOUT is in the interest set */
    uint8_t *pattern;       /* size + PATTERN_PERIOD bytes */
    uint64_t sent;          /* messages written completely */
    uint32_t send_off;      /* bytes of message `sent` already written */
    uint64_t stamped;       /* messages whose start time is set */
    uint64_t received;      /* echoes received completely */
    uint32_t recv_off;      /* bytes of echo `received` already received */
    uint64_t *start_ns;     /* ring of `pipeline` start times, by message number */
};

struct worker {
    int id;
    pthread_t thread;
    int epfd;
    struct conn *conns;
    int nconns;
    int alive;
    int stopping;
    uint8_t *rbuf;
    struct histogram hist;
    uint64_t warmup_roundtrips, drained_roundtrips;
    uint64_t errors, verify_failures, drain_timeouts;
    int measuring;                      /* this thread has seen the measurement start */
    uint64_t cpu_measure_ns, cpu_end_ns; /* its CPU time then, and when it saw the end */
};

static struct options opt;
static uint64_t t_start_ns, t_measure_ns, t_end_ns; /* set by main before the start barrier */
static pthread_barrier_t start_barrier;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned reported_errors, reported_verify;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *phase_name(const struct worker *w, uint64_t now) {
    if (w->stopping) return "drain";
    if (now < t_measure_ns) return "warmup";
    return "measurement";
}

/* Prints at most MAX_REPORTED_PROBLEMS detailed messages of one kind (all threads together). */
static void report(unsigned *counter, const char *fmt, ...) {
    pthread_mutex_lock(&report_lock);
    unsigned n = (*counter)++;
    if (n < MAX_REPORTED_PROBLEMS) {
        va_list ap;
        va_start(ap, fmt);
        fputs("echo-load: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    } else if (n == MAX_REPORTED_PROBLEMS) {
        fputs("echo-load: (further messages of this kind are only counted)\n", stderr);
    }
    pthread_mutex_unlock(&report_lock);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t index) {
    /* splitmix64 seeded by the connection index: distinct, cheap, reproducible. */
    uint64_t x = 0x9E3779B97F4A7C15ull * ((uint64_t)index + 1);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (size_t k = 0; k < 8 && i + k < n; k++)
            p[i + k] = (uint8_t)(z >> (8 * k));
    }
}

static const uint8_t *message_bytes(const struct conn *c, uint64_t n) {
    return c->pattern + (n % PATTERN_PERIOD);
}

/* ------------------------------------------------------------------ run loop */

static void conn_kill(struct worker *w, struct conn *c) {
    if (!c->alive) return;
    c->alive = 0;
    w->alive--;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    /* Closing also removes it from the epoll set; the explicit DEL documents it. */
    close(c->fd);
    c->fd = -1;
}

static void conn_error(struct worker *w, struct conn *c, uint64_t now, const char *what, int err) {
    w->errors++;
    report(&reported_errors,
           "connection %d died during %s: %s%s%s (%" PRIu64 " echoes completed, %" PRIu64 " messages in flight)",
           c->index, phase_name(w, now), what, err ? ": " : "", err ? strerror(err) : "", c->received,
           c->sent - c->received + (c->send_off > 0));
    conn_kill(w, c);
}

static int set_out_interest(struct worker *w, struct conn *c, int on) {
    if (c->out_armed == on) return 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) return -1;
    c->out_armed = on;
    return 0;
}

/* Writes as much as the pipeline allows (while stopping: only the rest of a
 * partly written message). Returns -1 if the connection died. */
static int conn_send(struct worker *w, struct conn *c, uint64_t now) {
    const uint32_t size = opt.size;
    const uint64_t depth = (uint64_t)opt.pipeline;
    int blocked = 0; /* the socket took less than offered: wait for EPOLLOUT */
    for (;;) {
        uint64_t limit = c->received + depth; /* first message number not allowed yet */
        if (w->stopping) {
            uint64_t finish = c->sent + (c->send_off > 0);
            if (finish < limit) limit = finish;
        }
        if (c->sent >= limit) break;

        struct iovec iov[IOV_BATCH];
        int n = 0;
        size_t want = 0;
        for (uint64_t m = c->sent; m < limit && n < IOV_BATCH; m++, n++) {
            uint32_t off = (m == c->sent) ? c->send_off : 0;
            iov[n].iov_base = (void *)(message_bytes(c, m) + off);
            iov[n].iov_len = size - off;
            want += size - off;
            if (m >= c->stamped) {
                c->start_ns[m % depth] = now;
                c->stamped = m + 1;
            }
        }
        ssize_t wrote;
        if (n == 1) {
            wrote = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            wrote = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (wrote < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                blocked = 1;
                break;
            }
            conn_error(w, c, now, "write failed", errno);
            return -1;
        }
        size_t left = (size_t)wrote;
        while (left > 0) {
            uint32_t rest = size - c->send_off;
            if (left >= rest) {
                left -= rest;
                c->sent++;
                c->send_off = 0;
            } else {
                c->send_off += (uint32_t)left;
                left = 0;
            }
        }
        if ((size_t)wrote < want) {
            blocked = 1;
            break;
        }
    }
    if (set_out_interest(w, c, blocked) != 0) {
        conn_error(w, c, now, "epoll_ctl(MOD) failed", errno);
        return -1;
    }
    return 0;
}

static void verify_failure(struct worker *w, struct conn *c, uint64_t now, const uint8_t *got,
                           const uint8_t *expected, uint32_t n) {
    uint32_t at = 0;
    while (at < n && got[at] == expected[at]) at++;
    w->verify_failures++;
    report(&reported_verify,
           "VERIFY FAILURE on connection %d during %s: echo of message %" PRIu64 " differs at byte %u of %u "
           "(expected 0x%02x, got 0x%02x)",
           c->index, phase_name(w, now), c->received, c->recv_off + at, opt.size, expected[at], got[at]);
    conn_kill(w, c);
}

/* Reads and verifies what the connection has; completes round trips; refills
 * the pipeline. Returns -1 if the connection died. */
static int conn_receive(struct worker *w, struct conn *c) {
    const uint32_t size = opt.size;
    for (int round = 0; round < READS_PER_EVENT; round++) {
        ssize_t r = recv(c->fd, w->rbuf, READ_BUFFER_SIZE, MSG_DONTWAIT);
        uint64_t now = now_ns();
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_error(w, c, now, "read failed", errno);
            return -1;
        }
        if (r == 0) {
            conn_error(w, c, now, "server closed the connection", 0);
            return -1;
        }
        const uint8_t *p = w->rbuf;
        size_t left = (size_t)r;
        while (left > 0) {
            uint64_t in_flight = (c->sent - c->received) * size + c->send_off - c->recv_off;
            if (left > in_flight) {
                w->verify_failures++;
                report(&reported_verify,
                       "VERIFY FAILURE on connection %d during %s: received %zu bytes but only %" PRIu64
                       " were sent and not yet echoed",
                       c->index, phase_name(w, now), left, in_flight);
                conn_kill(w, c);
                return -1;
            }
            uint32_t n = size - c->recv_off;
            if (n > left) n = (uint32_t)left;
            const uint8_t *expected = message_bytes(c, c->received) + c->recv_off;
            if (memcmp(p, expected, n) != 0) {
                verify_failure(w, c, now, p, expected, n);
                return -1;
            }
            p += n;
            left -= n;
            c->recv_off += n;
            if (c->recv_off == size) {
                uint64_t started = c->start_ns[c->received % (uint64_t)opt.pipeline];
                if (now >= t_measure_ns && now < t_end_ns)
                    hist_record(&w->hist, now - started);
                else if (now < t_measure_ns)
                    w->warmup_roundtrips++;
                else
                    w->drained_roundtrips++;
                c->received++;
                c->recv_off = 0;
            }
        }
        if (conn_send(w, c, now) != 0) return -1;
        if ((size_t)r < READ_BUFFER_SIZE) break;
    }
    return 0;
}

static int conn_drained(const struct conn *c) {
    return c->sent == c->received && c->send_off == 0;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct epoll_event events[EPOLL_BATCH];
    uint64_t drain_deadline = 0;

    pthread_barrier_wait(&start_barrier);
    uint64_t now = now_ns();
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].alive) conn_send(w, &w->conns[i], now);

    for (;;) {
        now = now_ns();
        if (!w->measuring && now >= t_measure_ns) {
            w->measuring = 1;
            w->cpu_measure_ns = thread_cpu_ns();
        }
        if (!w->stopping && now >= t_end_ns) {
            w->stopping = 1;
            w->cpu_end_ns = thread_cpu_ns();
            drain_deadline = now + (uint64_t)(DRAIN_TIMEOUT_S * 1e9);
            /* Stop filling the pipelines; keep finishing partly written messages. */
            for (int i = 0; i < w->nconns; i++)
                if (w->conns[i].alive) conn_send(w, &w->conns[i], now);
        }
        if (w->stopping) {
            int busy = 0;
            for (int i = 0; i < w->nconns; i++)
                if (w->conns[i].alive && !conn_drained(&w->conns[i])) busy++;
            if (busy == 0) break;
            if (now >= drain_deadline) {
                for (int i = 0; i < w->nconns; i++) {
                    struct conn *c = &w->conns[i];
                    if (!c->alive || conn_drained(c)) continue;
                    w->drain_timeouts++;
                    w->errors++;
                    report(&reported_errors,
                           "connection %d: %" PRIu64 " echo(es) still missing %.0f s after the run "
                           "(%" PRIu64 " of %u bytes of the current one received)",
                           c->index, c->sent - c->received + (c->send_off > 0), DRAIN_TIMEOUT_S,
                           (uint64_t)c->recv_off, opt.size);
                }
                break;
            }
        }
        if (w->alive == 0) break;

        uint64_t next = w->stopping ? drain_deadline : (now < t_measure_ns ? t_measure_ns : t_end_ns);
        uint64_t wait_ns = next > now ? next - now : 0;
        int timeout = (int)((wait_ns + 999999) / 1000000);
        if (timeout > MAX_WAIT_MS) timeout = MAX_WAIT_MS;
        int n = epoll_wait(w->epfd, events, EPOLL_BATCH, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "echo-load: thread %d: epoll_wait failed: %s\n", w->id, strerror(errno));
            for (int i = 0; i < w->nconns; i++)
                if (w->conns[i].alive) {
                    w->errors++;
                    conn_kill(w, &w->conns[i]);
                }
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c->alive) continue;
            uint32_t e = events[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                /* Reading reports the error or the end of the stream, after any data left. */
                if (conn_receive(w, c) != 0) continue;
            }
            if ((e & EPOLLOUT) && c->alive)
                conn_send(w, c, now_ns());
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ connect */

struct pending {
    int conn;
    int fd;
    int attempt;
    uint64_t deadline;
};

static int open_socket(const struct addrinfo *ai, int *err) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) return fd;
    *err = errno;
    close(fd);
    return -1;
}

static int retryable(int err) {
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EAGAIN || err == ECONNRESET ||
           err == EADDRNOTAVAIL || err == EINTR || err == ENETUNREACH || err == EHOSTUNREACH;
}

/* Connects fds[0..n) to ai, at most CONNECT_PARALLEL at a time, each with
 * CONNECT_ATTEMPTS attempts of CONNECT_TIMEOUT_MS. Returns 0, or -1 after
 * reporting the first connection that could not be established. */
static int connect_all(const struct addrinfo *ai, int *fds, int n, const char *where) {
    struct pending slots[CONNECT_PARALLEL];
    struct pollfd pfds[CONNECT_PARALLEL];
    int active = 0, next = 0, done = 0;
    uint64_t phase_deadline = now_ns() + (uint64_t)(CONNECT_PHASE_LIMIT_S * 1e9);
    uint64_t retry_at[CONNECT_PARALLEL];
    int failed_conn = -1, failed_err = 0, failed_attempts = 0;

    while (done < n) {
        uint64_t now = now_ns();
        if (now >= phase_deadline) {
            fprintf(stderr, "echo-load: connecting %d connections to %s took longer than %.0f s (%d connected)\n",
                    n, where, CONNECT_PHASE_LIMIT_S, done);
            goto fail;
        }
        /* Fill free slots with new connections. */
        while (active < CONNECT_PARALLEL && next < n) {
            slots[active] = (struct pending){.conn = next++, .fd = -1, .attempt = 0, .deadline = 0};
            retry_at[active] = now;
            active++;
        }
        /* Start attempts whose time has come. */
        for (int i = 0; i < active; i++) {
            if (slots[i].fd >= 0 || retry_at[i] > now) continue;
            int err = 0;
            slots[i].attempt++;
            slots[i].fd = open_socket(ai, &err);
            if (slots[i].fd < 0) {
                if (!retryable(err) || slots[i].attempt >= CONNECT_ATTEMPTS) {
                    failed_conn = slots[i].conn, failed_err = err, failed_attempts = slots[i].attempt;
                    goto fail;
                }
                retry_at[i] = now + 100000000ull * (uint64_t)slots[i].attempt;
                continue;
            }
            slots[i].deadline = now + (uint64_t)CONNECT_TIMEOUT_MS * 1000000ull;
        }
        /* Wait for progress (or the next retry / deadline, at most 100 ms). */
        int np = 0;
        uint64_t wake = now + 100000000ull;
        int map[CONNECT_PARALLEL];
        for (int i = 0; i < active; i++) {
            if (slots[i].fd >= 0) {
                pfds[np] = (struct pollfd){.fd = slots[i].fd, .events = POLLOUT};
                map[np++] = i;
                if (slots[i].deadline < wake) wake = slots[i].deadline;
            } else if (retry_at[i] < wake) {
                wake = retry_at[i];
            }
        }
        int timeout = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
        int r = poll(pfds, (nfds_t)np, timeout);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "echo-load: poll failed while connecting: %s\n", strerror(errno));
            goto fail;
        }
        now = now_ns();
        for (int k = 0; k < np; k++) {
            struct pending *s = &slots[map[k]];
            int err = 0;
            if (r > 0 && pfds[k].revents) {
                socklen_t len = sizeof err;
                if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
                if (err == 0) {
                    fds[s->conn] = s->fd;
                    s->fd = -1;
                    s->conn = -1; /* slot is free */
                    done++;
                    continue;
                }
            } else if (now >= s->deadline) {
                err = ETIMEDOUT;
            } else {
                continue;
            }
            close(s->fd);
            s->fd = -1;
            if (!retryable(err) || s->attempt >= CONNECT_ATTEMPTS) {
                failed_conn = s->conn, failed_err = err, failed_attempts = s->attempt;
                goto fail;
            }
            retry_at[map[k]] = now + 100000000ull * (uint64_t)s->attempt;
        }
        /* Compact: drop the slots whose connection is established. */
        int j = 0;
        for (int i = 0; i < active; i++) {
            if (slots[i].conn < 0) continue;
            slots[j] = slots[i];
            retry_at[j] = retry_at[i];
            j++;
        }
        active = j;
    }
    return 0;

fail:
    if (failed_conn >= 0)
        fprintf(stderr, "echo-load: cannot connect connection %d of %d to %s after %d attempt(s): %s (%d connected)\n",
                failed_conn, n, where, failed_attempts, strerror(failed_err), done);
    for (int i = 0; i < active; i++)
        if (slots[i].fd >= 0) close(slots[i].fd);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    return -1;
}

/* --------------------------------------------------------------------- main */

/* utime + stime of process pid in clock ticks (all its threads), or -1. */
static long long process_cpu_ticks(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
    if (p == NULL) return -1;
    unsigned long long utime, stime;
    /* after ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
    return (long long)(utime + stime);
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void raise_file_limit(int conns) {
    struct rlimit rl;
    rlim_t need = (rlim_t)conns + 64 + (rlim_t)opt.threads;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "echo-load: getrlimit(RLIMIT_NOFILE) failed: %s\n", strerror(errno));
        exit(3);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            fprintf(stderr,
                    "echo-load: %d connections need %llu file descriptors, but the hard limit is %llu "
                    "(raise it with `ulimit -Hn` as root or in limits.conf)\n",
                    conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
            exit(3);
        }
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "echo-load: cannot raise the file descriptor limit to %llu: %s\n",
                    (unsigned long long)rl.rlim_max, strerror(errno));
            exit(3);
        }
    }
}

static void *xcalloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "echo-load: out of memory allocating %s (%zu x %zu bytes)\n", what, n, size);
        exit(3);
    }
    return p;
}

static void free_conns(struct conn *conns, int n) {
    for (int i = 0; i < n; i++) {
        free(conns[i].pattern);
        free(conns[i].start_ns);
    }
    free(conns);
}

int main(int argc, char **argv) {
    parse_options(argc, argv, &opt);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_file_limit(opt.conns);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "echo-load: cannot resolve %s port %s: %s\n", opt.host, opt.port, gai_strerror(gai));
        return 3;
    }
    char where[300];
    snprintf(where, sizeof where, "%s%s%s:%s", ai->ai_family == AF_INET6 ? "[" : "", opt.host,
             ai->ai_family == AF_INET6 ? "]" : "", opt.port);

    /* Per-connection data (allocated before connecting, so a failure costs no connections). */
    struct conn *conns = xcalloc((size_t)opt.conns, sizeof *conns, "connections");
    for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        c->fd = -1;
        c->index = i;
        c->pattern = xcalloc(opt.size + PATTERN_PERIOD, 1, "message data");
        fill_pattern(c->pattern, opt.size + PATTERN_PERIOD, (uint32_t)i);
        c->start_ns = xcalloc((size_t)opt.pipeline, sizeof *c->start_ns, "timestamps");
    }

    int *fds = xcalloc((size_t)opt.conns, sizeof *fds, "descriptors");
    for (int i = 0; i < opt.conns; i++) fds[i] = -1;
    uint64_t t_connect = now_ns();
    if (connect_all(ai, fds, opt.conns, where) != 0) {
        freeaddrinfo(ai);
        free(fds);
        free_conns(conns, opt.conns);
        return 3;
    }
    double connect_s = (double)(now_ns() - t_connect) / 1e9;
    freeaddrinfo(ai);

    /* Distribute the connections over the threads: thread k gets a contiguous block. */
    struct worker *workers = xcalloc((size_t)opt.threads, sizeof *workers, "threads");
    int base = 0;
    for (int k = 0; k < opt.threads; k++) {
        struct worker *w = &workers[k];
        w->id = k;
        w->nconns = opt.conns / opt.threads + (k < opt.conns % opt.threads);
        w->conns = &conns[base];
        base += w->nconns;
        w->rbuf = xcalloc(READ_BUFFER_SIZE, 1, "read buffer");
        hist_init(&w->hist);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            fprintf(stderr, "echo-load: epoll_create1 failed: %s\n", strerror(errno));
            return 3;
        }
        for (int i = 0; i < w->nconns; i++) {
            struct conn *c = &w->conns[i];
            c->fd = fds[c->index];
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                fprintf(stderr, "echo-load: epoll_ctl(ADD) failed: %s\n", strerror(errno));
                return 3;
            }
            c->alive = 1;
            w->alive++;
        }
    }

    int rc = pthread_barrier_init(&start_barrier, NULL, (unsigned)opt.threads + 1);
    if (rc != 0) {
        fprintf(stderr, "echo-load: pthread_barrier_init failed: %s\n", strerror(rc));
        return 3;
    }
    for (int k = 0; k < opt.threads; k++) {
        rc = pthread_create(&workers[k].thread, NULL, worker_main, &workers[k]);
        if (rc != 0) {
            fprintf(stderr, "echo-load: cannot start thread %d: %s\n", k, strerror(rc));
            return 3;
        }
    }
    t_start_ns = now_ns();
    t_measure_ns = t_start_ns + (uint64_t)(opt.warmup * 1e9);
    t_end_ns = t_measure_ns + (uint64_t)(opt.duration * 1e9);
    pthread_barrier_wait(&start_barrier);

    /* The main thread is idle while the workers run: let it sample the server at the boundaries. */
    long long srv_ticks0 = -1, srv_ticks1 = -1;
    if (opt.server_pid > 0) {
        sleep_until(t_measure_ns);
        srv_ticks0 = process_cpu_ticks(opt.server_pid);
        sleep_until(t_end_ns);
        srv_ticks1 = process_cpu_ticks(opt.server_pid);
        if (srv_ticks0 < 0 || srv_ticks1 < 0)
            fprintf(stderr, "echo-load: cannot read the CPU time of process %ld from /proc/%ld/stat\n",
                    opt.server_pid, opt.server_pid);
    }

    struct histogram total;
    hist_init(&total);
    uint64_t errors = 0, verify = 0, warm = 0, drained = 0, timeouts = 0, dead = 0, load_cpu_ns = 0;
    for (int k = 0; k < opt.threads; k++) {
        struct worker *w = &workers[k];
        pthread_join(w->thread, NULL);
        hist_merge(&total, &w->hist);
        errors += w->errors;
        verify += w->verify_failures;
        warm += w->warmup_roundtrips;
        drained += w->drained_roundtrips;
        timeouts += w->drain_timeouts;
        if (w->cpu_end_ns > w->cpu_measure_ns) load_cpu_ns += w->cpu_end_ns - w->cpu_measure_ns;
        for (int i = 0; i < w->nconns; i++) {
            if (w->conns[i].alive) close(w->conns[i].fd);
            else dead++;
        }
        close(w->epfd);
        free(w->rbuf);
    }
    pthread_barrier_destroy(&start_barrier);
    free(workers);
    free(fds);
    free_conns(conns, opt.conns);

    double seconds = (double)(t_end_ns - t_measure_ns) / 1e9;
    double rate = (double)total.total / seconds;
    double mbps = rate * opt.size / 1e6;
    double mean_us = total.total ? (double)(total.sum / total.total) / 1e3 : 0.0;
    double p50 = hist_quantile(&total, 0.50) / 1e3, p90 = hist_quantile(&total, 0.90) / 1e3;
    double p99 = hist_quantile(&total, 0.99) / 1e3, p999 = hist_quantile(&total, 0.999) / 1e3;
    double max_us = total.total ? (double)total.max / 1e3 : 0.0;
    double min_us = total.total ? (double)total.min / 1e3 : 0.0;
    /* CPU the load generator's threads used per measured second (1.0 = one core busy). */
    double load_cpu = (double)load_cpu_ns / 1e9 / seconds;
    char srv[128] = "";
    if (srv_ticks0 >= 0 && srv_ticks1 >= 0) {
        double srv_us = (double)(srv_ticks1 - srv_ticks0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
        snprintf(srv, sizeof srv, " srv_cpu_util=%.3f srv_cpu_us_per_rt=%.3f", srv_us / 1e6 / seconds,
                 total.total ? srv_us / (double)total.total : 0.0);
    }

    printf("echo-load %s: %d conn x %u B, pipeline %d, %d thread(s): %" PRIu64 " round trips in %.2f s = %.1f/s "
           "(%.2f MB/s each way); latency us: min %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f mean %.1f; "
           "load CPU %.2f; connect %.2f s, warmup %" PRIu64 " round trips; %" PRIu64 " errors, %" PRIu64
           " verify failures\n",
           where, opt.conns, opt.size, opt.pipeline, opt.threads, total.total, seconds, rate, mbps, min_us, p50,
           p90, p99, p999, max_us, mean_us, load_cpu, connect_s, warm, errors, verify);
    printf("RESULT conns=%d size=%u pipeline=%d threads=%d duration=%.2f warmup=%.2f roundtrips=%" PRIu64
           " rate=%.1f mbps=%.3f min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f"
           " mean_us=%.1f load_cpu=%.3f warmup_roundtrips=%" PRIu64 " drained_roundtrips=%" PRIu64 " connect_s=%.3f"
           " dead_conns=%" PRIu64 " drain_timeouts=%" PRIu64 "%s errors=%" PRIu64 " verify_failures=%" PRIu64 "\n",
           opt.conns, opt.size, opt.pipeline, opt.threads, seconds, opt.warmup, total.total, rate, mbps, min_us,
           p50, p90, p99, p999, max_us, mean_us, load_cpu, warm, drained, connect_s, dead, timeouts, srv, errors, verify);

    if (verify > 0 || errors > 0 || dead > 0) {
        fprintf(stderr, "echo-load: FAILED: %" PRIu64 " verify failure(s), %" PRIu64 " error(s), %" PRIu64
                        " connection(s) lost\n", verify, errors, dead);
        return 1;
    }
    if (total.total == 0) {
        fprintf(stderr, "echo-load: FAILED: no round trip completed during the measurement\n");
        return 1;
    }
    return 0;
}
