/*
 * tls-handshakes: a TLS 1.2 handshake load generator (OpenSSL) for the TLS benchmark
 * (Benchmarks/scripts/bench-tls.sh; docs/benchmarks.md "TLS").
 *
 * Opens TLS connections to HOST:PORT in a loop, at most -c at once (nonblocking
 * sockets, one level-triggered epoll instance, one thread), for -d seconds. Each
 * connection: TCP connect, a TLS 1.2 handshake that can only negotiate
 * ECDHE-ECDSA-AES128-GCM-SHA256 with the group P-256 and ECDSA+SHA256 signatures
 * (SNI "localhost"; the client offers session tickets), with --get one keep-alive
 * "GET / HTTP/1.1" whose whole response (a 200 with a Content-Length body) is read,
 * then close_notify and close. Every handshake is checked: protocol TLS 1.2 and that
 * cipher suite, or it counts as an error.
 *
 * Modes:
 *   default    full handshakes: no session is ever offered to the server.
 *   --resume   resumed handshakes: the session of the first full handshake (its
 *              session ticket, or the session ID when the server issues no ticket;
 *              SSL_get1_session) is offered on every later connection (SSL_set_session).
 *              SSL_session_reused tells whether the server resumed it; when it did not,
 *              the new session replaces the offered one. A server that does not resume
 *              shows as resumed=0 in the result.
 *   --rate R   open-loop: start R connections per second (at most -c at once) instead
 *              of keeping -c busy; the background handshake load of the latency
 *              scenario. -d 0 runs until SIGTERM or SIGINT.
 *
 * Output: a human line on stderr (protocol, suite, group, whether the server issued a
 * ticket), then one machine-readable line on stdout:
 *   RESULT mode=full|resume handshakes=N seconds=T rate=R full=F resumed=K errors=E
 *          p50_us=.. p99_us=.. max_us=.. load_cpu=.. client_cpu_us_per_hs=.. ticket=0|1
 * handshakes: connections that completed (handshake, and with --get the response) in
 * the measured time; rate = handshakes / seconds; full / resumed: how many of them
 * SSL_session_reused reported as not resumed / resumed; p50/p99/max: connect() to the
 * end of the handshake (µs); load_cpu: this process's CPU seconds per second (near
 * 1.00: the load generator, not the server, is the limit); client_cpu_us_per_hs: its
 * CPU per handshake.
 *
 *   tls-handshakes -p PORT [-H 127.0.0.1] [-c 32] [-d 10] [--resume] [--get]
 *                  [--rate R] [-C CA.pem]
 * -C CA.pem: verify the server's certificate chain and its name "localhost" (costs
 * client CPU; the benchmark checks the certificate once with curl instead).
 *
 * Exit status: 0 when no connection failed, 1 otherwise, 2 for usage.
 * Build: cc -O2 -Wall -Wextra -o tls-handshakes tls-handshakes.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SUITE "ECDHE-ECDSA-AES128-GCM-SHA256"
#define MAX_ERRORS_SHOWN 5

enum state { FREE, CONNECTING, HANDSHAKE, WRITING, READING };

struct conn {
    int fd;
    enum state st;
    uint32_t events;
    SSL *ssl;
    double t_start;
    size_t got;
    char buf[1024];
};

static const char *request = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tls-handshakes\r\n\r\n";
static volatile sig_atomic_t stop;
static int errors, errors_shown;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void error_at(const char *what, const char *detail) {
    errors++;
    if (errors_shown < MAX_ERRORS_SHOWN) {
        errors_shown++;
        fprintf(stderr, "tls-handshakes: %s: %s\n", what, detail);
        ERR_print_errors_fp(stderr);
        if (errors_shown == MAX_ERRORS_SHOWN) fprintf(stderr, "tls-handshakes: (further errors are only counted)\n");
    }
    ERR_clear_error();
}

/* 1: c->buf holds one whole 200 response with a Content-Length body; 0: not yet; -1: malformed. */
static int response_complete(struct conn *c) {
    c->buf[c->got] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return c->got >= sizeof c->buf - 1 ? -1 : 0;
    if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0) return -1;
    size_t head = (size_t)(end - c->buf) + 4;
    const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    if (!cl || cl > end) return -1;
    long len = strtol(cl + 17, NULL, 10);
    if (len < 0) return -1;
    return c->got >= head + (size_t)len ? 1 : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: tls-handshakes -p PORT [-H HOST] [-c CONCURRENT] [-d SECONDS] [--resume] [--get] [--rate R] [-C CA.pem]\n");
    exit(2);
}

/* Globals of the run. */
static int ep;
static SSL_CTX *ctx;
static struct conn *conns;
static int nconns, active;
static struct sockaddr_in addr;
static int resume, get, verify;
static SSL_SESSION *session; /* the session offered with --resume */
static int said_first;
static long completed, n_resumed, n_full;
static double *lat;
static size_t nlat, caplat;
static double t_begin, t_end;

static void set_events(struct conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void finish(struct conn *c, int ok) {
    if (c->ssl) {
        if (ok) SSL_shutdown(c->ssl); /* sends close_notify; the answer is not awaited */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->st = FREE;
    active--;
}

static void count_done(struct conn *c, int reused) {
    double t = now();
    if (t > t_end) return; /* finished after the measured interval */
    completed++;
    if (reused) n_resumed++;
    else n_full++;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) { perror("tls-handshakes: realloc"); exit(1); }
    }
    lat[nlat++] = (t - c->t_start) * 1e6;
}

static int start_conn(void) {
    int i;
    for (i = 0; i < nconns && conns[i].st != FREE; i++) {}
    if (i == nconns) return 0;
    struct conn *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("tls-handshakes: socket"); exit(1); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->t_start = now();
    c->got = 0;
    active++;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s", strerror(errno));
        close(c->fd);
        c->fd = -1;
        active--;
        error_at("connect", msg);
        return -1;
    }
    c->ssl = SSL_new(ctx);
    if (!c->ssl) { ERR_print_errors_fp(stderr); exit(1); }
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (verify) SSL_set1_host(c->ssl, "localhost");
    if (resume && session) SSL_set_session(c->ssl, session);
    c->st = CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 1;
}

/* An SSL call returned r <= 0: wait for the socket, or fail the connection. */
static void ssl_wait(struct conn *c, int r, const char *what) {
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) set_events(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE) set_events(c, EPOLLOUT);
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "SSL error %d%s%s", e, e == SSL_ERROR_SYSCALL && errno ? ", " : "",
                 e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : (e == SSL_ERROR_SYSCALL ? " (unexpected EOF)" : ""));
        error_at(what, msg);
        finish(c, 0);
    }
}

static void step(struct conn *c) {
    if (c->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            error_at("connect", strerror(err));
            finish(c, 0);
            return;
        }
        c->st = HANDSHAKE;
    }
    if (c->st == HANDSHAKE) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) { ssl_wait(c, r, "handshake"); return; }
        const char *cipher = SSL_get_cipher_name(c->ssl);
        if (SSL_version(c->ssl) != TLS1_2_VERSION || !cipher || strcmp(cipher, SUITE) != 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "negotiated %s %s, not TLSv1.2 " SUITE, SSL_get_version(c->ssl), cipher ? cipher : "?");
            error_at("handshake", msg);
            finish(c, 0);
            return;
        }
        int reused = SSL_session_reused(c->ssl);
        if (!said_first) {
            said_first = 1;
            SSL_SESSION *s = SSL_get_session(c->ssl);
            int group = SSL_get_negotiated_group(c->ssl);
            fprintf(stderr, "tls-handshakes: %s %s, group %s, server certificate %s, session ticket from the server: %s\n",
                    SSL_get_version(c->ssl), cipher, group ? OBJ_nid2sn(group) : "?",
                    verify ? "verified" : "not verified (-C not given)",
                    s && SSL_SESSION_has_ticket(s) ? "yes" : "no");
        }
        if (resume && !reused) {
            SSL_SESSION *s = SSL_get1_session(c->ssl);
            if (s) {
                if (session) SSL_SESSION_free(session);
                session = s;
            }
        }
        if (!get) {
            count_done(c, reused);
            finish(c, 1);
            return;
        }
        c->st = WRITING;
        c->got = 0;
    }
    if (c->st == WRITING) {
        int r = SSL_write(c->ssl, request, (int)strlen(request));
        if (r <= 0) { ssl_wait(c, r, "write"); return; }
        c->st = READING;
        set_events(c, EPOLLIN);
    }
    if (c->st == READING) {
        int reused = SSL_session_reused(c->ssl);
        for (;;) {
            int r = SSL_read(c->ssl, c->buf + c->got, (int)(sizeof c->buf - 1 - c->got));
            if (r <= 0) {
                if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
                    error_at("read", "close_notify before the whole response");
                    finish(c, 0);
                    return;
                }
                ssl_wait(c, r, "read");
                return;
            }
            c->got += (size_t)r;
            int rc = response_complete(c);
            if (rc < 0) {
                char msg[96];
                snprintf(msg, sizeof msg, "unexpected response: %.60s", c->buf);
                error_at("read", msg);
                finish(c, 0);
                return;
            }
            if (rc > 0) {
                count_done(c, reused);
                finish(c, 1);
                return;
            }
        }
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *cafile = NULL;
    int port = 0, conc = 32;
    double duration = 10, rate = 0;
    static const struct option longopts[] = {
        {"resume", no_argument, NULL, 'r'}, {"get", no_argument, NULL, 'g'},
        {"rate", required_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "p:H:c:d:C:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'H': host = optarg; break;
        case 'c': conc = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'C': cafile = optarg; break;
        case 'r': resume = 1; break;
        case 'g': get = 1; break;
        case 'R': rate = atof(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || port < 1 || port > 65535 || conc < 1 || conc > 10000 || duration < 0 || rate < 0 ||
        (duration == 0 && rate == 0))
        usage();
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "tls-handshakes: -H wants an IPv4 address, got '%s'\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, SUITE) || !SSL_CTX_set1_groups_list(ctx, "P-256") ||
        !SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256")) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* sessions are kept by hand (--resume) */
    if (cafile) {
        if (!SSL_CTX_load_verify_locations(ctx, cafile, NULL)) { ERR_print_errors_fp(stderr); return 1; }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        verify = 1;
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)conc + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)conc + 64 ? rl.rlim_max : (rlim_t)conc + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    nconns = conc;
    conns = calloc((size_t)conc, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) { perror("tls-handshakes: setup"); return 1; }

    /* --resume: one full handshake first, outside the measured time, for the session. */
    if (resume) {
        t_end = 1e300;
        start_conn();
        struct epoll_event evs[4];
        double give_up = now() + 10;
        while (active > 0 && now() < give_up) {
            int k = epoll_wait(ep, evs, 4, 100);
            for (int i = 0; i < k; i++) step(&conns[evs[i].data.u32]);
        }
        if (!session || active > 0) {
            fprintf(stderr, "tls-handshakes: the first (full) handshake failed; no session to resume\n");
            return 1;
        }
        completed = n_full = n_resumed = 0;
        nlat = 0;
    }

    t_begin = now();
    t_end = duration > 0 ? t_begin + duration : 1e300;
    double cpu0 = cpu_seconds();
    long started = 0;
    struct epoll_event evs[256];
    while (!stop) {
        double t = now();
        if (t >= t_end) break;
        while (active < conc) {
            if (rate > 0 && started >= (long)(rate * (t - t_begin)) + 1) break;
            int r = start_conn();
            if (r == 0) break;
            started++;
        }
        int timeout = 100;
        if (rate > 0) {
            double next = t_begin + started / rate;
            timeout = (int)((next - now()) * 1000) + 1;
            if (timeout < 0) timeout = 0;
            if (timeout > 100) timeout = 100;
        }
        if (active == 0 && rate == 0) {
            /* Every start failed at once (connect errors): do not spin. */
            usleep(1000);
            continue;
        }
        int k = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < k; i++) step(&conns[evs[i].data.u32]);
    }
    double t_stop = now();
    double cpu1 = cpu_seconds();
    double seconds = (t_stop < t_end ? t_stop : t_end) - t_begin;
    for (int i = 0; i < nconns; i++)
        if (conns[i].st != FREE) finish(&conns[i], 0);

    double p50 = 0, p99 = 0, mx = 0;
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_double);
        p50 = lat[(size_t)(0.50 * (nlat - 1))];
        p99 = lat[(size_t)(0.99 * (nlat - 1))];
        mx = lat[nlat - 1];
    }
    int ticket = session ? SSL_SESSION_has_ticket(session) : -1;
    printf("RESULT mode=%s handshakes=%ld seconds=%.3f rate=%.1f full=%ld resumed=%ld errors=%d p50_us=%.0f p99_us=%.0f "
           "max_us=%.0f load_cpu=%.3f client_cpu_us_per_hs=%.1f get=%d offered_rate=%.1f",
           resume ? "resume" : "full", completed, seconds, seconds > 0 ? completed / seconds : 0, n_full, n_resumed,
           errors, p50, p99, mx, seconds > 0 ? (cpu1 - cpu0) / seconds : 0,
           completed ? (cpu1 - cpu0) * 1e6 / completed : 0, get, rate);
    if (ticket >= 0) printf(" ticket=%d", ticket);
    printf("\n");
    fflush(stdout);
    return errors ? 1 : 0;
}
