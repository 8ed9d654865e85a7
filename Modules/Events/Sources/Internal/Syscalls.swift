// The system calls of the Events module that are not io_uring's: eventfd, epoll, kqueue
// and the few descriptor calls the readiness backends make. One function per call; errno is
// read at once; EINTR is retried here (never for close).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSys

/// The calling thread's errno as a negative result, the way io_uring reports errors.
@inline(__always) func negErrno() -> Int32 { -errno }

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
func sysMonotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    let rc = clock_gettime(CLOCK_MONOTONIC, &ts)
    precondition(rc == 0, "clock_gettime(CLOCK_MONOTONIC) failed: errno \(errno)")
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// `close(2)`, never retried (Linux frees the descriptor even when it reports EINTR).
@discardableResult
func sysClose(_ fd: CInt) -> Int32 {
    close(fd) == 0 ? 0 : negErrno()
}

#if os(Linux)
/// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
func sysEventfd() -> Int32 {
    let fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
    return fd >= 0 ? fd : negErrno()
}

/// Adds 1 to an eventfd. EAGAIN (counter saturated) still leaves it readable, so it is ignored.
func sysEventfdWrite(_ fd: CInt) {
    var one: UInt64 = 1
    while true {
        let n = write(fd, &one, 8)
        if n == 8 || (n < 0 && errno != EINTR) { return }
    }
}

/// Reads (and so resets) an eventfd; false if it was not readable.
@discardableResult
func sysEventfdDrain(_ fd: CInt) -> Bool {
    var value: UInt64 = 0
    while true {
        let n = read(fd, &value, 8)
        if n == 8 { return true }
        if n < 0 && errno == EINTR { continue }
        return false
    }
}

func sysKqueueTrigger(_ fd: CInt, ident: UInt) {
    preconditionFailure("kqueue wakeups do not exist on Linux")
}
#else
func sysEventfdWrite(_ fd: CInt) {
    preconditionFailure("eventfd wakeups exist only on Linux")
}
#endif
