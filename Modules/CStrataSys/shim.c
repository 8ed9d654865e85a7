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
