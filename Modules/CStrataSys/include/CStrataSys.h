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

#ifdef __cplusplus
}
#endif

#endif /* CSTRATASYS_H */
