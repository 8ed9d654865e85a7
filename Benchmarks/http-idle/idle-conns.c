/*
 * idle-conns: memory a server spends per idle keep-alive connection
 * (Benchmarks/scripts/bench-http.sh and bench-resp.sh; docs/benchmarks.md).
 *
 * Reads the server's VmRSS (/proc/PID/status, summed over every PID given with -S),
 * opens N connections to 127.0.0.1:PORT (nonblocking connects driven by epoll, at
 * most -b in progress at once so the listen backlog never overflows), sends one
 * request on each and reads its whole response, keeps them all open and idle, waits
 * -w seconds for the server to settle, reads VmRSS again and prints
 *
 *   RESULT conns=N rss_before_kb=B rss_after_kb=A bytes_per_conn=(A-B)*1024/N seconds=T
 *
 * then closes everything. Requests: -m http sends "GET / HTTP/1.1" and expects a
 * 200 response with a Content-Length body; -m resp sends the RESP array PING and
 * expects "+PONG". RLIMIT_NOFILE is raised to what N needs (up to the hard limit).
 * Loopback source ports suffice for 10,000 connections to one port.
 *
 *   idle-conns -p PORT -S PID[,PID...] [-n 10000] [-m http|resp] [-b 128] [-w 1]
 *
 * Exit status: 0 when every connection got its response, 1 otherwise, 2 for usage.
 * Build: cc -O2 -Wall -Wextra -o idle-conns idle-conns.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { IDLE_UNUSED, CONNECTING, SENDING, READING, DONE };

struct conn {
    int fd;
    enum state st;
    size_t sent;
    size_t got;
    char buf[512];
};

static const char *http_req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle-conns\r\n\r\n";
static const char *resp_req = "*1\r\n$4\r\nPING\r\n";
static int mode_http = 1;

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
            fprintf(stderr, "idle-conns: cannot read %s: %s\n", path, strerror(errno));
            return -1;
        }
        long v = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
        fclose(f);
        if (v < 0) {
            fprintf(stderr, "idle-conns: no VmRSS in %s\n", path);
            return -1;
        }
        total += v;
    }
    return total;
}

/* Whether c->buf holds one whole response; -1 when it is malformed. */
static int response_complete(struct conn *c) {
    c->buf[c->got] = 0;
    if (!mode_http) {
        if (c->got < 7) return 0;
        return memcmp(c->buf, "+PONG\r\n", 7) == 0 ? 1 : -1;
    }
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

static void usage(void) {
    fprintf(stderr, "usage: idle-conns -p PORT -S PID[,PID...] [-n CONNS] [-m http|resp] [-b IN_PROGRESS] [-w SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int port = 0, n = 10000, batch = 128;
    double settle = 1.0;
    const char *pids = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:m:b:w:S:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'w': settle = atof(optarg); break;
        case 'S': pids = optarg; break;
        case 'm':
            if (strcmp(optarg, "http") == 0) mode_http = 1;
            else if (strcmp(optarg, "resp") == 0) mode_http = 0;
            else usage();
            break;
        default: usage();
        }
    }
    if (port < 1 || port > 65535 || n < 1 || n > 1000000 || batch < 1 || !pids || settle < 0) usage();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)n + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
            fprintf(stderr, "idle-conns: need %lu open files, the hard limit is %lu\n", (unsigned long)want,
                    (unsigned long)rl.rlim_max);
            return 2;
        }
    }

    long before = rss_kb(pids);
    if (before < 0) return 1;

    struct conn *conns = calloc((size_t)n, sizeof *conns);
    int ep = epoll_create1(0);
    if (!conns || ep < 0) { perror("idle-conns: setup"); return 1; }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *req = mode_http ? http_req : resp_req;
    size_t reqlen = strlen(req);

    double t0 = now();
    int started = 0, done = 0, active = 0, failed = 0;
    struct epoll_event evs[256];
    while (done < n) {
        while (active < batch && started < n) {
            struct conn *c = &conns[started];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) { perror("idle-conns: socket"); return 1; }
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                fprintf(stderr, "idle-conns: connect %d: %s\n", started, strerror(errno));
                return 1;
            }
            c->st = CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)started};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            started++;
            active++;
        }
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k == 0) {
            fprintf(stderr, "idle-conns: no progress for 10 s (%d of %d connections done)\n", done, n);
            return 1;
        }
        for (int i = 0; i < k; i++) {
            struct conn *c = &conns[evs[i].data.u32];
            if (c->st == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    fprintf(stderr, "idle-conns: connect %u: %s\n", evs[i].data.u32, strerror(err));
                    return 1;
                }
                c->st = SENDING;
            }
            if (c->st == SENDING) {
                ssize_t w = write(c->fd, req + c->sent, reqlen - c->sent);
                if (w > 0) c->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN) { perror("idle-conns: write"); return 1; }
                if (c->sent == reqlen) {
                    c->st = READING;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                continue;
            }
            if (c->st == READING) {
                ssize_t r = read(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    fprintf(stderr, "idle-conns: connection %u closed before its response\n", evs[i].data.u32);
                    failed++;
                    c->st = DONE;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    done++;
                    active--;
                    continue;
                }
                if (r < 0) continue;
                c->got += (size_t)r;
                int rc = response_complete(c);
                if (rc != 0) {
                    if (rc < 0) {
                        fprintf(stderr, "idle-conns: connection %u: unexpected response: %.60s\n", evs[i].data.u32, c->buf);
                        failed++;
                    }
                    c->st = DONE;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    done++;
                    active--;
                }
            }
        }
    }
    double t1 = now();
    struct timespec ts = {.tv_sec = (time_t)settle, .tv_nsec = (long)((settle - (time_t)settle) * 1e9)};
    nanosleep(&ts, NULL);
    long after = rss_kb(pids);
    if (after < 0) return 1;
    printf("RESULT conns=%d failed=%d rss_before_kb=%ld rss_after_kb=%ld bytes_per_conn=%.0f seconds=%.3f\n", n, failed,
           before, after, (double)(after - before) * 1024.0 / n, t1 - t0);
    fflush(stdout);
    for (int i = 0; i < n; i++) close(conns[i].fd);
    return failed ? 1 : 0;
}
