/* CStrataSys implementation. _GNU_SOURCE makes glibc declare accept4 and the
 * Linux-only constants the ABI assertions check. */
#define _GNU_SOURCE 1
#include "include/CStrataSys.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* Every build proves the host's ABI table: abi/host.h includes the generated
 * _Static_assert header for this OS/arch/libc, or stops with #error. */
#include "abi/host.h"

int strata_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
#if defined(__linux__) || defined(__FreeBSD__)
    return accept4(fd, addr, len, flags);
#else
    int s = accept(fd, addr, len);
    if (s < 0) return s;
    if ((flags & O_NONBLOCK) && fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0) goto fail;
    if ((flags & FD_CLOEXEC) && fcntl(s, F_SETFD, FD_CLOEXEC) < 0) goto fail;
    return s;
fail: {
        int saved = errno;
        close(s);
        errno = saved;
        return -1;
    }
#endif
}

struct cmsghdr *strata_cmsg_firsthdr(const struct msghdr *msg) { return CMSG_FIRSTHDR((struct msghdr *)msg); }
struct cmsghdr *strata_cmsg_nxthdr(const struct msghdr *msg, const struct cmsghdr *cmsg) {
    return CMSG_NXTHDR((struct msghdr *)msg, (struct cmsghdr *)cmsg);
}
unsigned char *strata_cmsg_data(const struct cmsghdr *cmsg) { return CMSG_DATA((struct cmsghdr *)cmsg); }
size_t strata_cmsg_space(size_t length) { return CMSG_SPACE(length); }
size_t strata_cmsg_len(size_t length) { return CMSG_LEN(length); }

int strata_msg_nosignal(void) {
#if defined(MSG_NOSIGNAL)
    return MSG_NOSIGNAL;
#else
    return 0;
#endif
}

#if defined(__linux__)
int strata_io_uring_setup(unsigned entries, struct io_uring_params *params) {
    return (int)syscall(__NR_io_uring_setup, entries, params);
}
int strata_io_uring_register(int fd, unsigned opcode, void *arg, unsigned nr_args) {
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}
const uint8_t strata_IOSQE_FIXED_FILE = IOSQE_FIXED_FILE;
const uint8_t strata_IOSQE_IO_LINK = IOSQE_IO_LINK;
const uint8_t strata_IOSQE_ASYNC = IOSQE_ASYNC;
const uint8_t strata_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
const uint8_t strata_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;
#endif

/* --- Threads --- */
#if defined(__linux__) || defined(__FreeBSD__)
#include <pthread.h>
#include <string.h>
#if defined(__FreeBSD__)
#include <pthread_np.h>
#endif

int strata_thread_set_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

int strata_thread_get_name(char *buf, size_t length) {
    return pthread_getname_np(pthread_self(), buf, length);
}

uint64_t strata_thread_id(void) {
#if defined(__linux__)
    return (uint64_t)syscall(SYS_gettid);
#else
    return (uint64_t)pthread_getthreadid_np();
#endif
}
#endif

#if defined(__linux__)
#include <sched.h>

int strata_thread_set_affinity(const int *cpus, size_t count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (size_t i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return EINVAL;
        CPU_SET((size_t)cpus[i], &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int strata_thread_get_affinity(int *cpus, size_t capacity, size_t *count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) return rc;
    size_t n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (n < capacity) cpus[n] = cpu;
        n++;
    }
    *count = n;
    return 0;
}

int strata_cpu_setsize(void) { return CPU_SETSIZE; }
#endif
/* --- end Threads --- */

/* --- io_uring (Events) --- */
/* Wrappers over liburing 2.3 for StrataEvents' io_uring backend. Why C: liburing.h defines
 * _GNU_SOURCE/_XOPEN_SOURCE for every includer, so it stays out of the public header, and its
 * SQE/CQE helpers are static inline functions and macros over C11 atomics. shim.c already defines
 * _GNU_SOURCE and includes <linux/io_uring.h> (a superset of liburing 2.3's copy of it). */
#if defined(__linux__)
#include <liburing.h>
#include <string.h>

size_t strata_uring_size(void) { return sizeof(struct io_uring); }
size_t strata_uring_alignment(void) { return _Alignof(struct io_uring); }

int strata_uring_queue_init(unsigned entries, struct io_uring *ring, struct io_uring_params *params) {
    return io_uring_queue_init_params(entries, ring, params);
}

void strata_uring_queue_exit(struct io_uring *ring) { io_uring_queue_exit(ring); }

int strata_uring_ring_fd(const struct io_uring *ring) { return ring->ring_fd; }

unsigned strata_uring_features(const struct io_uring *ring) { return ring->features; }

int strata_uring_enable_rings(struct io_uring *ring) {
    return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}

int strata_uring_register_ring_fd(struct io_uring *ring) { return io_uring_register_ring_fd(ring); }

int strata_uring_probe(struct io_uring *ring, uint8_t *supported, unsigned count) {
    /* On the stack: the header promises no allocation (io_uring_get_probe_ring mallocs). */
    union {
        struct io_uring_probe probe;
        unsigned char bytes[sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op)];
    } storage;
    memset(&storage, 0, sizeof(storage));
    int rc = io_uring_register_probe(ring, &storage.probe, 256);
    if (rc < 0) return rc;
    for (unsigned op = 0; op < count; op++) {
        supported[op] = (uint8_t)io_uring_opcode_supported(&storage.probe, (int)op);
    }
    return (int)storage.probe.last_op + 1;
}

int strata_uring_register_buf_ring(struct io_uring *ring, void *ring_memory, unsigned entries, uint16_t group) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)(uintptr_t)ring_memory;
    reg.ring_entries = entries;
    reg.bgid = group;
    return io_uring_register_buf_ring(ring, &reg, 0);
}

int strata_uring_unregister_buf_ring(struct io_uring *ring, uint16_t group) {
    return io_uring_unregister_buf_ring(ring, group);
}

void strata_uring_buf_ring_init(void *ring_memory) { io_uring_buf_ring_init((struct io_uring_buf_ring *)ring_memory); }

void strata_uring_buf_ring_add(void *ring_memory, void *address, unsigned length, uint16_t id,
                               unsigned mask, unsigned offset) {
    io_uring_buf_ring_add((struct io_uring_buf_ring *)ring_memory, address, length, id, (int)mask, (int)offset);
}

void strata_uring_buf_ring_advance(void *ring_memory, unsigned count) {
    io_uring_buf_ring_advance((struct io_uring_buf_ring *)ring_memory, (int)count);
}

int strata_uring_submit(struct io_uring *ring) { return io_uring_submit(ring); }

int strata_uring_submit_and_wait(struct io_uring *ring, int64_t timeout_ns) {
    /* Completions already in the ring, or overflowed ones, end the wait at once. Entering with
     * GETEVENTS (submit_and_get_events) also runs DEFER_TASKRUN work and flushes the overflow
     * list; submit_and_wait_timeout would enter without GETEVENTS when a CQE is already there. */
    if (timeout_ns == 0 || io_uring_cq_ready(ring) > 0 || io_uring_cq_has_overflow(ring)) {
        return io_uring_submit_and_get_events(ring);
    }
    struct io_uring_cqe *cqe = NULL;
    if (timeout_ns < 0) return io_uring_submit_and_wait_timeout(ring, &cqe, 1, NULL, NULL);
    struct __kernel_timespec ts;
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    return io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
}

int strata_uring_get_events(struct io_uring *ring) { return io_uring_get_events(ring); }

unsigned strata_uring_sq_flags(const struct io_uring *ring) { return IO_URING_READ_ONCE(*ring->sq.kflags); }

unsigned strata_uring_cq_ready(const struct io_uring *ring) { return io_uring_cq_ready(ring); }

unsigned strata_uring_reap(struct io_uring *ring, struct strata_uring_cqe *out, unsigned max) {
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
        if (n == max) break;
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    io_uring_cq_advance(ring, n);
    return n;
}

unsigned strata_uring_discard_unsubmitted(struct io_uring *ring, uint64_t uncounted) {
    /* liburing maps SQ slot i to sqes[i & mask]; [khead, sqe_tail) is queued but unconsumed
     * (sqe_head..sqe_tail not yet flushed, khead..sqe_head flushed but not entered). */
    struct io_uring_sq *sq = &ring->sq;
    unsigned head = IO_URING_READ_ONCE(*sq->khead);
    unsigned counted = 0;
    for (unsigned i = head; i != sq->sqe_tail; i++) {
        if (sq->sqes[i & sq->ring_mask].user_data != uncounted) counted++;
    }
    sq->sqe_head = head;
    sq->sqe_tail = head;
    IO_URING_WRITE_ONCE(*sq->ktail, head);
    return counted;
}

int strata_uring_queue_accept(struct io_uring *ring, uint64_t user_data, int fd, int multishot) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    if (multishot) {
        io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
        io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_recv(struct io_uring *ring, uint64_t user_data, int fd, void *buf, size_t length,
                            int group, int multishot) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    if (group >= 0) {
        if (multishot) {
            io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        } else {
            io_uring_prep_recv(sqe, fd, NULL, length, 0);
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = (uint16_t)group;
    } else {
        io_uring_prep_recv(sqe, fd, buf, length, 0);
    }
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_send(struct io_uring *ring, uint64_t user_data, int fd, const void *buf, size_t length,
                            int zerocopy, unsigned zc_flags) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    if (zerocopy) {
        io_uring_prep_send_zc(sqe, fd, buf, length, MSG_NOSIGNAL, zc_flags);
    } else {
        io_uring_prep_send(sqe, fd, buf, length, MSG_NOSIGNAL);
    }
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_sendmsg(struct io_uring *ring, uint64_t user_data, int fd, const struct msghdr *msg) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_writev(struct io_uring *ring, uint64_t user_data, int fd, const struct iovec *iov,
                              unsigned count) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_writev(sqe, fd, iov, count, (__u64)-1);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_connect(struct io_uring *ring, uint64_t user_data, int fd, const struct sockaddr *address,
                               socklen_t length) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_connect(sqe, fd, address, length);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_close(struct io_uring *ring, uint64_t user_data, int fd) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_close(sqe, fd);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_read(struct io_uring *ring, uint64_t user_data, int fd, void *buf, unsigned length) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, length, 0);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_poll(struct io_uring *ring, uint64_t user_data, int fd, unsigned events) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, events);
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_cancel(struct io_uring *ring, uint64_t user_data, uint64_t target, int skip_success) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_cancel64(sqe, target, 0);
    if (skip_success) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_cancel_fd(struct io_uring *ring, uint64_t user_data, int fd, int skip_success) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    if (skip_success) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    sqe->user_data = user_data;
    return 0;
}

int strata_uring_queue_cancel_any(struct io_uring *ring, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    sqe->user_data = user_data;
    return 0;
}
#endif
/* --- end io_uring --- */
