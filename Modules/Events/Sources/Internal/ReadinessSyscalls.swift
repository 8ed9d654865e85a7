// The system calls of the readiness backends (epoll, kqueue): the nonblocking socket calls the
// shared engine tries first, and each backend's own wait primitive. One function per call;
// results are a non-negative value or a negated errno, the way io_uring reports them, so the
// engine can hand them to the loop unchanged. errno is read immediately after the call, before
// anything else can overwrite it. EINTR is retried here, except for connect (it continues in
// the background) and close (never retried).
//
// Every descriptor the engine uses is nonblocking (StrataSockets' default, and accept4 below
// asks for it); MSG_DONTWAIT is passed anyway where it exists, so a blocking socket handed to
// the loop by mistake still cannot stall it on a receive or a send.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("StrataEvents' readiness backends support Linux (glibc, musl), Darwin and FreeBSD: add this platform")
#endif
import CStrataSys

/// The largest byte count one call is asked to move: results are reported as `Int32` (as in
/// io_uring's CQE), so a larger request is sent or received in part and says so.
let readinessMaximumTransfer = Int(Int32.max)

/// Runs `body` until it returns something other than -1 with EINTR; returns its value or -errno.
@inline(__always)
private func retryingOnInterrupt<R: FixedWidthInteger>(_ body: () -> R) -> R {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { return R(-code) }
    }
}

/// A C constant of any imported integer type as a C `int`; traps if it does not fit, which
/// would mean the headers and the ABI table disagree.
@inline(__always)
func readinessCInt<T: BinaryInteger>(_ value: T) -> CInt { CInt(value) }

#if canImport(Glibc)
/// glibc's `SOCK_*` flags (an enum) as a C `int`.
@inline(__always)
func readinessCInt(_ value: __socket_type) -> CInt { CInt(bitPattern: value.rawValue) }
#endif

/// `MSG_NOSIGNAL | MSG_DONTWAIT` where they exist (Darwin has no MSG_NOSIGNAL; its sockets carry
/// `SO_NOSIGPIPE` instead, set by StrataSockets at creation and by ``sysAcceptNonblocking(_:)``).
let readinessSendFlags: CInt = strata_msg_nosignal() | readinessCInt(MSG_DONTWAIT)

/// `MSG_DONTWAIT`.
let readinessReceiveFlags: CInt = readinessCInt(MSG_DONTWAIT)

// MARK: - Sockets

/// `accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)` (accept + fcntl on Darwin, in
/// CStrataSys): the new descriptor or -errno. On Darwin and FreeBSD the connection also gets
/// `SO_NOSIGPIPE` (Darwin has no MSG_NOSIGNAL, and neither has a flag for sendfile); if that
/// fails the connection is closed and the error returned, since a socket that can raise SIGPIPE
/// must not reach the caller.
@inline(never)
func sysAcceptNonblocking(_ listener: CInt) -> Int32 {
    #if canImport(Darwin)
    let flags = FD_CLOEXEC | O_NONBLOCK
    #else
    let flags = readinessCInt(SOCK_CLOEXEC) | readinessCInt(SOCK_NONBLOCK)
    #endif
    let fd = retryingOnInterrupt { strata_accept4(listener, nil, nil, flags) }
    #if canImport(Darwin) || os(FreeBSD)
    if fd >= 0 {
        var on: CInt = 1
        if setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            let code = errno
            _ = close(fd)
            return -code
        }
    }
    #endif
    return fd
}

/// `recv(fd, buffer, count, MSG_DONTWAIT)`: bytes received (0 at end of stream) or -errno.
/// - Precondition: `buffer` points at `count` writable bytes that stay valid during the call.
@inline(never)
func sysReceiveNonblocking(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int32 {
    let n = retryingOnInterrupt { recv(fd, buffer, min(count, readinessMaximumTransfer), readinessReceiveFlags) }
    return Int32(n)
}

/// `send(fd, buffer, count, MSG_NOSIGNAL | MSG_DONTWAIT)`: bytes sent (possibly fewer) or -errno.
@inline(never)
func sysSendNonblocking(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Int32 {
    let n = retryingOnInterrupt { send(fd, buffer, min(count, readinessMaximumTransfer), readinessSendFlags) }
    return Int32(n)
}

/// `sendmsg(fd, {iov, count}, MSG_NOSIGNAL | MSG_DONTWAIT)`: a gathering write that cannot raise
/// SIGPIPE (writev(2) takes no flags). Bytes written (possibly fewer) or -errno.
@inline(never)
func sysSendMessageNonblocking(_ fd: CInt, _ vectors: UnsafeMutablePointer<iovec>, _ count: Int) -> Int32 {
    var message = msghdr()
    message.msg_iov = vectors
    message.msg_iovlen = numericCast(count)
    var n = retryingOnInterrupt { sendmsg(fd, &message, readinessSendFlags) }
    if n == -Int(ENOTSOCK) {
        // A pipe or file (as on io_uring, which falls back to IORING_OP_WRITEV): writev(2), with
        // a broken pipe's SIGPIPE blocked and consumed, so it is -EPIPE like on a socket.
        n = withPipeSignalConsumed { retryingOnInterrupt { writev(fd, vectors, CInt(count)) } }
    }
    // Linux caps one call at MAX_RW_COUNT (2 GiB - 4 KiB), so the count fits; clamp regardless.
    return Int32(clamping: n)
}

/// Runs `call` (a system call returning a count or -errno) with SIGPIPE blocked on this thread,
/// and consumes the SIGPIPE it raised (an -EPIPE result), so the process's disposition (often
/// "terminate") never sees it. A SIGPIPE already pending before the call is left alone.
func withPipeSignalConsumed(_ call: () -> Int) -> Int {
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    var previousMask = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
    defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
    var pending = sigset_t()
    sigpending(&pending)
    let wasPending = sigismember(&pending, SIGPIPE) == 1
    let n = call()
    if n == -Int(EPIPE) && !wasPending {
        // sigwait returns at once for a pending signal (and is on Darwin, unlike sigtimedwait).
        sigpending(&pending)
        var consumed: CInt = 0
        if sigismember(&pending, SIGPIPE) == 1 { _ = sigwait(&pipeSignal, &consumed) }
    }
    return n
}

#if os(Linux)
/// `sendfile(2)` (Linux: socket first, offset by pointer): bytes sent (possibly fewer) or -errno.
///
/// sendfile takes no flags, so MSG_NOSIGNAL cannot be passed, and an EPIPE raises SIGPIPE on the
/// calling thread. SIGPIPE is blocked on this thread around the call and a SIGPIPE the call
/// raised is consumed, so the process's disposition (often "terminate") never sees it.
@inline(never)
func sysSendFileNonblocking(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Int32 {
    var position = off_t(offset)
    let n = withPipeSignalConsumed {
        retryingOnInterrupt { sendfile(socket, file, &position, min(count, readinessMaximumTransfer)) }
    }
    return Int32(clamping: n)
}
#elseif canImport(Darwin)
/// `sendfile(2)` (Darwin: file first, length in/out; `SO_NOSIGPIPE` covers SIGPIPE). A part sent
/// before EAGAIN or EINTR counts as success. Bytes sent or -errno.
@inline(never)
func sysSendFileNonblocking(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Int32 {
    while true {
        var length = off_t(min(count, readinessMaximumTransfer))
        if sendfile(file, socket, off_t(offset), &length, nil, 0) == 0 { return Int32(clamping: length) }
        let code = errno
        if length > 0 && (code == EAGAIN || code == EINTR) { return Int32(clamping: length) }
        if code != EINTR { return -code }
    }
}
#elseif os(FreeBSD)
/// `sendfile(2)` (FreeBSD: file first, bytes sent through `sbytes`). A part sent before EAGAIN,
/// EBUSY or EINTR counts as success. Bytes sent or -errno.
@inline(never)
func sysSendFileNonblocking(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Int32 {
    while true {
        var sent = off_t(0)
        if sendfile(file, socket, off_t(offset), min(count, readinessMaximumTransfer), nil, &sent, 0) == 0 {
            return Int32(clamping: sent)
        }
        let code = errno
        if sent > 0 && (code == EAGAIN || code == EINTR || code == EBUSY) { return Int32(clamping: sent) }
        if code != EINTR { return -code }
    }
}
#endif

/// `connect(2)`, never retried: 0, or -errno (`-EINPROGRESS` while a TCP handshake runs; after
/// `-EINTR` the connection also continues in the background).
@inline(never)
func sysConnectStart(_ fd: CInt, _ address: UnsafeRawPointer, _ length: Int) -> Int32 {
    let rc = connect(fd, address.assumingMemoryBound(to: sockaddr.self), socklen_t(length))
    return rc == 0 ? 0 : -errno
}

/// `getsockopt(SO_ERROR)`, which reads and clears the socket's pending error: 0 when there is
/// none, the positive errno value when there is, or -errno if the call itself failed.
@inline(never)
func sysTakeSocketError(_ fd: CInt) -> Int32 {
    var value: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0 { return -errno }
    return value
}

/// `getpeername(2)` as a question: 0 when the socket is connected, else -errno (`-ENOTCONN`
/// while a nonblocking connect is still in progress).
@inline(never)
func sysPeerConnected(_ fd: CInt) -> Int32 {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
    }
    return rc == 0 ? 0 : -errno
}

/// Sets `SO_LINGER {on, 0}` and closes `fd`, so the peer gets a reset (RST) at once instead of
/// an orderly end of stream; used to refuse connections when the process is out of descriptors.
@inline(never)
func sysCloseWithReset(_ fd: CInt) {
    var option = linger()
    option.l_onoff = 1
    option.l_linger = 0
    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    _ = close(fd)
}

/// `open("/dev/null", O_RDONLY | O_CLOEXEC)`: the reserve descriptor of the EMFILE policy, or -errno.
@inline(never)
func sysOpenReserveDescriptor() -> Int32 {
    let fd = retryingOnInterrupt { open("/dev/null", O_RDONLY | O_CLOEXEC) }
    return fd
}

// MARK: - epoll

#if os(Linux)
/// `epoll_create1(EPOLL_CLOEXEC)`: the epoll descriptor or -errno.
@inline(never)
func sysEpollCreate() -> Int32 {
    let fd = epoll_create1(readinessCInt(EPOLL_CLOEXEC))
    return fd >= 0 ? fd : -errno
}

/// `epoll_ctl(2)`: 0 or -errno. `event` may be nil only for `EPOLL_CTL_DEL`.
@inline(never)
func sysEpollControl(_ epollFD: CInt, _ operation: CInt, _ fd: CInt,
                     _ event: UnsafeMutablePointer<epoll_event>?) -> Int32 {
    epoll_ctl(epollFD, operation, fd, event) == 0 ? 0 : -errno
}

/// `epoll_wait(2)` with a timeout in milliseconds (-1: no limit): the number of events or -errno.
/// EINTR is returned, not retried: the loop re-enters and recomputes its timeout.
@inline(never)
func sysEpollWait(_ epollFD: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt,
                  _ timeoutMilliseconds: CInt) -> Int32 {
    let n = epoll_wait(epollFD, events, capacity, timeoutMilliseconds)
    return n >= 0 ? n : -errno
}

#if canImport(Glibc)
/// `epoll_pwait2(2)` (Linux 5.11, glibc 2.35) with a nanosecond timeout (nil: no limit) and the
/// thread's signal mask unchanged: the number of events or -errno (`-ENOSYS` on older kernels or
/// under a seccomp filter that does not know it). EINTR is returned, not retried.
@inline(never)
func sysEpollWaitPrecise(_ epollFD: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt,
                         _ timeoutNanoseconds: Int64?) -> Int32 {
    let n: CInt
    if let ns = timeoutNanoseconds {
        var timeout = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        n = epoll_pwait2(epollFD, events, capacity, &timeout, nil)
    } else {
        n = epoll_pwait2(epollFD, events, capacity, nil, nil)
    }
    return n >= 0 ? n : -errno
}
#endif
#endif

/// Whether `fd` is a `SOCK_STREAM` socket (`getsockopt(SO_TYPE)`); false on any error.
func sysIsStreamSocket(_ fd: CInt) -> Bool {
    var type: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return false }
    #if canImport(Glibc)
    return type == CInt(SOCK_STREAM.rawValue)
    #else
    return type == SOCK_STREAM
    #endif
}
