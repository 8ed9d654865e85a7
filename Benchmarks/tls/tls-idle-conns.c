/*
 * tls-idle-conns: memory a server spends per idle TLS keep-alive connection
 * (Benchmarks/scripts/bench-tls.sh; docs/benchmarks.md "TLS"). The TLS sibling of
 * Benchmarks/http-idle/idle-conns.c.
 *
 * Reads the server's VmRSS (/proc/PID/status, summed over every PID given with -S),
 * opens N TLS connections to 127.0.0.1:PORT (nonblocking connects and handshakes
 * driven by epoll, at most -b in progress at once), on each one does a full TLS 1.2
 * handshake (ECDHE-ECDSA-AES128-GCM-SHA256, group P-256, SNI "localhost"; the client
 * offers no session, so each connection holds its own), sends one keep-alive
 * "GET / HTTP/1.1" and reads its whole response (a 200 with a Content-Length body),
 * then keeps them all open and idle, waits -w seconds for the server to settle, reads
 * VmRSS again and prints
 *
 *   RESULT conns=N failed=F rss_before_kb=B rss_after_kb=A bytes_per_conn=(A-B)*1024/N seconds=T
 *
 * then closes everything. RLIMIT_NOFILE is raised to what N needs (up to the hard limit).
 *
 *   tls-idle-conns -p PORT -S PID[,PID...] [-n 2000] [-b 64] [-w 1]
 *
 * Exit status: 0 when every connection got its response, 1 otherwise, 2 for usage.
 * Build: cc -O2 -Wall -Wextra -o tls-idle-conns tls-idle-conns.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

enum state { UNUSED, CONNECTING, HANDSHAKE, WRITING, READING, DONE };

struct conn {
    int fd;
    enum state st;
    uint32_t events;
    SSL *ssl;
    size_t got;
    char buf[512];
};

static const char *request = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tls-idle-conns\r\n\r\n";
static int ep;
static struct conn *conns;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(const char *pids) {
    long total = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", pids);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", p);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "tls-idle-conns: cannot read %s: %s\n", path, strerror(errno));
            return -1;
        }
        long v = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
        fclose(f);
        if (v < 0) {
            fprintf(stderr, "tls-idle-conns: no VmRSS in %s\n", path);
            return -1;
        }
        total += v;
    }
    return total;
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

static void set_events(struct conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static int failed, done, active;

/* The connection is finished (idle now, or failed): it leaves epoll but stays open. */
static void retire(struct conn *c, const char *error) {
    if (error) {
        if (failed < 5) {
            fprintf(stderr, "tls-idle-conns: connection %ld: %s\n", (long)(c - conns), error);
            ERR_print_errors_fp(stderr);
        }
        failed++;
    }
    ERR_clear_error();
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->st = DONE;
    done++;
    active--;
}

/* An SSL call returned r <= 0: wait for the socket, or fail the connection. */
static void ssl_wait(struct conn *c, int r, const char *what) {
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) set_events(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE) set_events(c, EPOLLOUT);
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: SSL error %d%s", what, e, e == SSL_ERROR_SYSCALL ? " (connection closed or reset)" : "");
        retire(c, msg);
    }
}

static void step(struct conn *c) {
    if (c->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            retire(c, strerror(err));
            return;
        }
        c->st = HANDSHAKE;
    }
    if (c->st == HANDSHAKE) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) { ssl_wait(c, r, "handshake"); return; }
        const char *cipher = SSL_get_cipher_name(c->ssl);
        if (SSL_version(c->ssl) != TLS1_2_VERSION || !cipher || strcmp(cipher, SUITE) != 0) {
            retire(c, "negotiated something other than TLS 1.2 " SUITE);
            return;
        }
        c->st = WRITING;
    }
    if (c->st == WRITING) {
        int r = SSL_write(c->ssl, request, (int)strlen(request));
        if (r <= 0) { ssl_wait(c, r, "write"); return; }
        c->st = READING;
        set_events(c, EPOLLIN);
    }
    if (c->st == READING) {
        for (;;) {
            int r = SSL_read(c->ssl, c->buf + c->got, (int)(sizeof c->buf - 1 - c->got));
            if (r <= 0) { ssl_wait(c, r, "read"); return; }
            c->got += (size_t)r;
            int rc = response_complete(c);
            if (rc < 0) { retire(c, "unexpected response"); return; }
            if (rc > 0) { retire(c, NULL); return; }
        }
    }
}

static void usage(void) {
    fprintf(stderr, "usage: tls-idle-conns -p PORT -S PID[,PID...] [-n CONNS] [-b IN_PROGRESS] [-w SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int port = 0, n = 2000, batch = 64;
    double settle = 1.0;
    const char *pids = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:b:w:S:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'w': settle = atof(optarg); break;
        case 'S': pids = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || port < 1 || port > 65535 || n < 1 || n > 1000000 || batch < 1 || !pids || settle < 0) usage();
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)n + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
            fprintf(stderr, "tls-idle-conns: need %lu open files, the hard limit is %lu\n", (unsigned long)want,
                    (unsigned long)rl.rlim_max);
            return 2;
        }
    }

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, SUITE) || !SSL_CTX_set1_groups_list(ctx, "P-256") ||
        !SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256")) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* the client's memory is not measured; keep it small */

    long before = rss_kb(pids);
    if (before < 0) return 1;

    conns = calloc((size_t)n, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) { perror("tls-idle-conns: setup"); return 1; }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    double t0 = now();
    int started = 0;
    struct epoll_event evs[256];
    while (done < n) {
        while (active < batch && started < n) {
            struct conn *c = &conns[started];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) { perror("tls-idle-conns: socket"); return 1; }
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                fprintf(stderr, "tls-idle-conns: connect %d: %s\n", started, strerror(errno));
                return 1;
            }
            c->ssl = SSL_new(ctx);
            if (!c->ssl) { ERR_print_errors_fp(stderr); return 1; }
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_connect_state(c->ssl);
            SSL_set_tlsext_host_name(c->ssl, "localhost");
            c->st = CONNECTING;
            c->events = EPOLLOUT;
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)started};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            started++;
            active++;
        }
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k == 0) {
            fprintf(stderr, "tls-idle-conns: no progress for 10 s (%d of %d connections done)\n", done, n);
            return 1;
        }
        for (int i = 0; i < k; i++) step(&conns[evs[i].data.u32]);
    }
    double t1 = now();
    struct timespec ts = {.tv_sec = (time_t)settle, .tv_nsec = (long)((settle - (time_t)settle) * 1e9)};
    nanosleep(&ts, NULL);
    long after = rss_kb(pids);
    if (after < 0) return 1;
    printf("RESULT conns=%d failed=%d rss_before_kb=%ld rss_after_kb=%ld bytes_per_conn=%.0f seconds=%.3f\n", n, failed,
           before, after, (double)(after - before) * 1024.0 / n, t1 - t0);
    fflush(stdout);
    for (int i = 0; i < n; i++) close(conns[i].fd); /* no close_notify: the measurement is over */
    return failed ? 1 : 0;
}
