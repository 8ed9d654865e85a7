/*
 * CStrataSys: the C shim. It holds only what Swift cannot import, each item with
 * a one-line reason, plus (in shim.c) the generated compile-time ABI assertions
 * for the host target (abi/host.h → abi/<target>.h, generated from abi-tables/).
 *
 * Symbols are prefixed strata_. Nothing here allocates or keeps state.
 */
#ifndef CSTRATASYS_H
#define CSTRATASYS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__linux__)
/* Not part of Swift's Glibc/Musl module maps: included here so Swift sees them. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <linux/io_uring.h>
#endif

#if defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/event.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* accept4(2): glibc declares it only under _GNU_SOURCE, which Swift's Glibc module
 * does not define. Falls back to accept + fcntl where accept4 does not exist (Darwin). */
int strata_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/* CMSG_FIRSTHDR / CMSG_NXTHDR / CMSG_DATA / CMSG_SPACE / CMSG_LEN: function-like macros. */
struct cmsghdr *strata_cmsg_firsthdr(const struct msghdr *msg);
struct cmsghdr *strata_cmsg_nxthdr(const struct msghdr *msg, const struct cmsghdr *cmsg);
unsigned char *strata_cmsg_data(const struct cmsghdr *cmsg);
size_t strata_cmsg_space(size_t length);
size_t strata_cmsg_len(size_t length);

/* MSG_NOSIGNAL on Linux, 0 where SO_NOSIGPIPE is used instead (Darwin): one name for Swift. */
int strata_msg_nosignal(void);

#if defined(__linux__)
/* io_uring_setup(2) / io_uring_register(2): no libc wrapper, and syscall(2) is variadic,
 * which Swift cannot call. Return -1 and set errno on failure, like libc wrappers. */
int strata_io_uring_setup(unsigned entries, struct io_uring_params *params);
int strata_io_uring_register(int fd, unsigned opcode, void *arg, unsigned nr_args);

/* IOSQE_* flags are macros over an enumerator shift (1U << IOSQE_*_BIT) that the
 * Swift importer does not evaluate. */
extern const uint8_t strata_IOSQE_FIXED_FILE;
extern const uint8_t strata_IOSQE_IO_LINK;
extern const uint8_t strata_IOSQE_ASYNC;
extern const uint8_t strata_IOSQE_BUFFER_SELECT;
extern const uint8_t strata_IOSQE_CQE_SKIP_SUCCESS;
#endif

/* --- Threads --- */
/* Each returns 0 or an errno value (never sets errno), like the pthread functions it wraps. */
#if defined(__linux__) || defined(__FreeBSD__)
/* pthread_setname_np is declared only under _GNU_SOURCE (glibc, musl) or in <pthread_np.h>
 * (FreeBSD), neither of which Swift's libc module imports. Names the calling thread. */
int strata_thread_set_name(const char *name);
/* pthread_getname_np: same reason. Copies the calling thread's name, NUL-terminated, into buf. */
int strata_thread_get_name(char *buf, size_t length);
/* gettid(2) is declared only under _GNU_SOURCE and syscall(2) is variadic, which Swift cannot
 * call; FreeBSD's pthread_getthreadid_np is in <pthread_np.h>. The calling thread's kernel id. */
uint64_t strata_thread_id(void);
#endif
#if defined(__linux__)
/* pthread_setaffinity_np is _GNU_SOURCE-only and CPU_ZERO/CPU_SET are macros. Pins the calling
 * thread to cpus[0 ..< count]; EINVAL for an index outside 0 ..< strata_cpu_setsize(). */
int strata_thread_set_affinity(const int *cpus, size_t count);
/* pthread_getaffinity_np and CPU_ISSET: same reason. Writes the calling thread's allowed CPUs,
 * ascending, into cpus (at most capacity of them) and their total number into *count. */
int strata_thread_get_affinity(int *cpus, size_t capacity, size_t *count);
/* CPU_SETSIZE is _GNU_SOURCE-only: the number of CPU indices a cpu_set_t can hold. */
int strata_cpu_setsize(void);
#endif
/* --- end Threads --- */

/* --- io_uring (Events) --- */
/* liburing 2.3 (linked by Package.swift). liburing.h is included only by shim.c: it defines
 * _GNU_SOURCE/_XOPEN_SOURCE for every includer and most of its API is static inline over
 * C11 atomics, so Swift sees only the functions below. Submission queue entries never leave C:
 * each strata_uring_queue_* takes an SQE, fills it and returns 0, or -EBUSY when the submission
 * queue is full (nothing was queued). Every pointer argument of a queued operation must stay
 * valid until the operation's final completion (the kernel reads or writes it asynchronously),
 * except `msg` of strata_uring_queue_sendmsg, which the kernel copies at submission
 * (IORING_FEAT_SUBMIT_STABLE). Functions that fail return -errno; none sets errno. */
#if defined(__linux__)
/* liburing's ring state, opaque to Swift; Swift owns the storage (strata_uring_size bytes). */
struct io_uring;

/* One completion copied out of the CQ ring: the kernel's io_uring_cqe ends in a flexible array
 * member (big CQEs) that Swift does not import. */
struct strata_uring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

/* sizeof / _Alignof(struct io_uring): its definition is in liburing.h, which Swift does not see. */
size_t strata_uring_size(void);
size_t strata_uring_alignment(void);
/* io_uring_queue_init_params (liburing.h, hidden from Swift). 0 or -errno; on failure the ring is untouched. */
int strata_uring_queue_init(unsigned entries, struct io_uring *ring, struct io_uring_params *params);
/* io_uring_queue_exit: unmaps the rings and closes the ring descriptor. */
void strata_uring_queue_exit(struct io_uring *ring);
/* The ring descriptor and the features the kernel reported (struct io_uring fields). */
int strata_uring_ring_fd(const struct io_uring *ring);
unsigned strata_uring_features(const struct io_uring *ring);
/* IORING_REGISTER_ENABLE_RINGS for an IORING_SETUP_R_DISABLED ring (liburing 2.3 declares
 * io_uring_enable_rings but does not export it). 0 or -errno. */
int strata_uring_enable_rings(struct io_uring *ring);
/* io_uring_register_ring_fd: registers the ring descriptor in the calling thread's table, so later
 * enters skip the fd lookup. 1 (registered) or -errno. */
int strata_uring_register_ring_fd(struct io_uring *ring);
/* io_uring_get_probe_ring + io_uring_opcode_supported (static inline): sets supported[op] to 1
 * for each opcode below `count` the kernel supports, else 0. Returns the kernel's last opcode + 1,
 * or -errno when the probe fails. */
int strata_uring_probe(struct io_uring *ring, uint8_t *supported, unsigned count);
/* io_uring_register_buf_ring / io_uring_unregister_buf_ring (struct io_uring_buf_reg). 0 or -errno. */
int strata_uring_register_buf_ring(struct io_uring *ring, void *ring_memory, unsigned entries, uint16_t group);
int strata_uring_unregister_buf_ring(struct io_uring *ring, uint16_t group);
/* io_uring_buf_ring_init / _add / _advance (static inline; advance is a release store of the tail
 * the kernel reads). add writes entry (tail + offset) & mask; advance publishes `count` entries. */
void strata_uring_buf_ring_init(void *ring_memory);
void strata_uring_buf_ring_add(void *ring_memory, void *address, unsigned length, uint16_t id,
                               unsigned mask, unsigned offset);
void strata_uring_buf_ring_advance(void *ring_memory, unsigned count);

/* io_uring_submit: flushes queued SQEs to the kernel without waiting. Count submitted or -errno. */
int strata_uring_submit(struct io_uring *ring);
/* One enter per loop iteration: submits queued SQEs and waits for at least one completion.
 * timeout_ns < 0: no limit; 0: submit and flush deferred completions (GETEVENTS) without waiting;
 * > 0: io_uring_submit_and_wait_timeout with that timeout (IORING_ENTER_EXT_ARG).
 * Returns >= 0, or -errno (-ETIME and -EINTR mean the wait ended without completions). */
int strata_uring_submit_and_wait(struct io_uring *ring, int64_t timeout_ns);
/* io_uring_get_events: flushes overflowed and deferred completions into the CQ ring. */
int strata_uring_get_events(struct io_uring *ring);
/* The SQ ring's kernel flags (IORING_SQ_CQ_OVERFLOW, IORING_SQ_TASKRUN): a shared-memory read. */
unsigned strata_uring_sq_flags(const struct io_uring *ring);
/* io_uring_cq_ready (static inline, acquire load of the CQ tail). */
unsigned strata_uring_cq_ready(const struct io_uring *ring);
/* io_uring_for_each_cqe + io_uring_cq_advance (a macro and a static inline): copies up to `max`
 * completions into `out`, then releases their slots to the kernel. Returns how many were copied. */
unsigned strata_uring_reap(struct io_uring *ring, struct strata_uring_cqe *out, unsigned max);
/* Drops SQEs queued but not yet consumed by the kernel (teardown only: their buffers may be gone).
 * Returns how many had a user_data other than `uncounted`. */
unsigned strata_uring_discard_unsubmitted(struct io_uring *ring, uint64_t uncounted);

/* SQE preparation: io_uring_get_sqe + io_uring_prep_* + user_data (static inline in liburing).
 * Each returns 0, or -EBUSY when the submission queue is full. */
/* IORING_OP_ACCEPT with SOCK_NONBLOCK|SOCK_CLOEXEC; multishot sets IORING_ACCEPT_MULTISHOT. */
int strata_uring_queue_accept(struct io_uring *ring, uint64_t user_data, int fd, int multishot);
/* IORING_OP_RECV into buf, or (group >= 0) into a buffer picked from provided buffer ring `group`
 * (IOSQE_BUFFER_SELECT); multishot (IORING_RECV_MULTISHOT) requires a group and passes length 0. */
int strata_uring_queue_recv(struct io_uring *ring, uint64_t user_data, int fd, void *buf, size_t length,
                            int group, int multishot);
/* IORING_OP_SEND with MSG_NOSIGNAL, or IORING_OP_SEND_ZC (zc_flags: IORING_SEND_ZC_REPORT_USAGE…). */
int strata_uring_queue_send(struct io_uring *ring, uint64_t user_data, int fd, const void *buf, size_t length,
                            int zerocopy, unsigned zc_flags);
/* IORING_OP_SENDMSG with MSG_NOSIGNAL: a gathering write that cannot raise SIGPIPE (WRITEV can). */
int strata_uring_queue_sendmsg(struct io_uring *ring, uint64_t user_data, int fd, const struct msghdr *msg);
/* IORING_OP_WRITEV at the current file position (offset -1), for descriptors that are not sockets. */
int strata_uring_queue_writev(struct io_uring *ring, uint64_t user_data, int fd, const struct iovec *iov,
                              unsigned count);
/* IORING_OP_CONNECT. */
int strata_uring_queue_connect(struct io_uring *ring, uint64_t user_data, int fd, const struct sockaddr *address,
                               socklen_t length);
/* IORING_OP_CLOSE. */
int strata_uring_queue_close(struct io_uring *ring, uint64_t user_data, int fd);
/* IORING_OP_READ at the current position (offset -1): the wakeup eventfd. */
int strata_uring_queue_read(struct io_uring *ring, uint64_t user_data, int fd, void *buf, unsigned length);
/* IORING_OP_POLL_ADD, single shot, for `events` (POLLOUT…); the result is the revents mask. */
int strata_uring_queue_poll(struct io_uring *ring, uint64_t user_data, int fd, unsigned events);
/* IORING_OP_ASYNC_CANCEL of the request with user_data `target`. */
int strata_uring_queue_cancel(struct io_uring *ring, uint64_t user_data, uint64_t target, int skip_success);
/* IORING_OP_ASYNC_CANCEL of every request on `fd` (IORING_ASYNC_CANCEL_FD | _ALL). */
int strata_uring_queue_cancel_fd(struct io_uring *ring, uint64_t user_data, int fd, int skip_success);
/* IORING_OP_ASYNC_CANCEL of every request of the ring (IORING_ASYNC_CANCEL_ANY), for teardown. */
int strata_uring_queue_cancel_any(struct io_uring *ring, uint64_t user_data);
#endif
/* --- end io_uring --- */

#ifdef __cplusplus
}
#endif

#endif /* CSTRATASYS_H */
