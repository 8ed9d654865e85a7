/*
 * c-echo-epoll: the "minimal C epoll echo" anchor of the echo benchmark
 * (Benchmarks/scripts/bench-echo.sh, docs/benchmarks.md "Echo (Events)").
 *
 * One thread, one level-triggered epoll instance, nonblocking sockets,
 * accept4 until EAGAIN, TCP_NODELAY on accepted sockets. A readable
 * connection gets one read into a shared 64 KiB buffer and the bytes are
 * written straight back. Whatever the socket does not take is copied into
 * the connection's pending buffer, reading from that connection stops
 * (EPOLLIN off, EPOLLOUT on) until the pending bytes are written, and the
 * buffer is freed: memory per connection is bounded by one read.
 *
 *   c-echo-epoll [--host ADDR] [--port N]      (default 127.0.0.1:9999)
 *
 * Build: cc -O2 -Wall -Wextra -o .build-bench-tools/c-echo-epoll Benchmarks/echo-load/c-echo-epoll.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE (64u << 10)
#define EPOLL_BATCH 256
#define BACKLOG 1024

struct conn {
    int fd;
    char *pending;   /* NULL, or BUFFER_SIZE bytes of which [off, len) are still to be written */
    size_t off, len;
};

static int listen_fd = -1;
static unsigned long reported;

static void log_conn_error(const char *what, int err) {
    /* Resets at the end of a load run are normal: stay quiet about them. */
    if (err == ECONNRESET || err == EPIPE) return;
    if (reported++ < 20) fprintf(stderr, "c-echo-epoll: %s: %s\n", what, strerror(err));
}

static void conn_close(int epfd, struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Writes [off, len) of the pending buffer; returns 1 when empty, 0 if the socket is full, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            log_conn_error("write", errno);
            return -1;
        }
        c->off += (size_t)w;
    }
    return 1;
}

static int set_events(int epfd, struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        log_conn_error("epoll_ctl(MOD)", errno);
        return -1;
    }
    return 0;
}

static void on_readable(int epfd, struct conn *c, char *buf) {
    ssize_t r;
    do {
        r = recv(c->fd, buf, BUFFER_SIZE, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        log_conn_error("read", errno);
        conn_close(epfd, c);
        return;
    }
    if (r == 0) {
        conn_close(epfd, c);
        return;
    }
    size_t off = 0;
    while (off < (size_t)r) {
        ssize_t w = send(c->fd, buf + off, (size_t)r - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            log_conn_error("write", errno);
            conn_close(epfd, c);
            return;
        }
        off += (size_t)w;
    }
    if (off == (size_t)r) return;
    /* The socket is full: keep the rest, stop reading until it is written. */
    c->pending = malloc(BUFFER_SIZE);
    if (c->pending == NULL) {
        fprintf(stderr, "c-echo-epoll: out of memory; closing a connection\n");
        conn_close(epfd, c);
        return;
    }
    c->len = (size_t)r - off;
    c->off = 0;
    memcpy(c->pending, buf + off, c->len);
    if (set_events(epfd, c, EPOLLOUT) != 0) conn_close(epfd, c);
}

static void on_writable(int epfd, struct conn *c) {
    int done = flush_pending(c);
    if (done < 0) {
        conn_close(epfd, c);
        return;
    }
    if (done == 0) return;
    free(c->pending);
    c->pending = NULL;
    c->off = c->len = 0;
    if (set_events(epfd, c, EPOLLIN) != 0) conn_close(epfd, c);
}

static void on_accept(int epfd) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued; try again on the next event. */
            log_conn_error("accept", errno);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            fprintf(stderr, "c-echo-epoll: out of memory; refusing a connection\n");
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log_conn_error("epoll_ctl(ADD)", errno);
            close(fd);
            free(c);
        }
    }
}

static void usage(FILE *out) {
    fputs("usage: c-echo-epoll [--host ADDR] [--port N]   (default 127.0.0.1:9999)\n", out);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *port = "9999";
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--port") == 0 || strcmp(argv[i], "-p") == 0) && i + 1 < argc) {
            port = argv[++i];
            char *end;
            long p = strtol(port, &end, 10);
            if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
                fprintf(stderr, "c-echo-epoll: --port must be 1-65535, got '%s'\n", port);
                return 2;
            }
        } else if ((strcmp(argv[i], "--host") == 0 || strcmp(argv[i], "-h") == 0) && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "c-echo-epoll: unknown or incomplete argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "c-echo-epoll: cannot resolve %s port %s: %s\n", host, port, gai_strerror(gai));
        return 1;
    }
    listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listen_fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(listen_fd, BACKLOG) != 0) {
        fprintf(stderr, "c-echo-epoll: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }
    freeaddrinfo(ai);

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    static struct conn listener; /* its address marks the listening socket's events */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &lev) != 0) {
        fprintf(stderr, "c-echo-epoll: epoll setup failed: %s\n", strerror(errno));
        return 1;
    }
    static char buf[BUFFER_SIZE];
    printf("c-echo-epoll listening on %s:%s\n", host, port);
    fflush(stdout);

    struct epoll_event events[EPOLL_BATCH];
    for (;;) {
        int n = epoll_wait(epfd, events, EPOLL_BATCH, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "c-echo-epoll: epoll_wait failed: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == &listener) {
                on_accept(epfd);
            } else if (c->pending != NULL) {
                on_writable(epfd, c); /* EPOLLOUT, or EPOLLERR/EPOLLHUP: the write reports the error */
            } else {
                on_readable(epfd, c, buf); /* EPOLLIN, or EPOLLERR/EPOLLHUP: the read reports the error */
            }
        }
    }
}
