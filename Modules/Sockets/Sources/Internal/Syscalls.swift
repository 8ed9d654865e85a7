// The only file in StrataSockets that calls the C library.
//
// Rules, each for a reason:
// - One `@inline(never)` function per call. errno is read right after the call inside the
//   wrapper, before the caller can run code (ARC traffic, allocation) that might overwrite it.
// - The EINTR loop exists once, in `valueOrErrno`. Each wrapper says whether its call is retried.
//   `close` is never retried: Linux frees the descriptor even when close reports EINTR, and a
//   retry could close a descriptor another thread has just been given (see the LWN article
//   "Returning EINTR from close()"). `connect` is never retried either: an interrupted connect
//   continues in the background, and calling it again reports EALREADY.
// - Results are values: `Result<T, Errno>`. Would-block is an errno the Socket layer turns into
//   `nil`; nothing here throws or traps.
// - Pointers never leave this file except as arguments the caller scoped with `withUnsafe…`.
//
// In debug builds every call first asks `SyscallMock` (task-local, off unless a test enables it)
// whether to fail with a forced errno, and records its name in a trace, so that tests can prove
// the retry policy of each wrapper. Release builds contain none of it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSys

// MARK: - errno and the retry loop

/// The calling thread's errno.
@inline(__always)
func sysErrno() -> CInt {
    errno
}

/// Sets the calling thread's errno.
@inline(__always)
func sysSetErrno(_ value: CInt) {
    errno = value
}

/// Runs `call` (a C function returning -1 and setting errno on failure) and reads errno right away.
///
/// - Parameters:
///   - name: The call's C name, for the debug-build mock and trace.
///   - retryOnInterrupt: Whether EINTR repeats the call. A signal cannot arrive forever, so the
///     loop ends; every other errno ends it at once.
///   - call: The C call.
@inline(__always)
private func valueOrErrno<R: FixedWidthInteger & SignedInteger>(
    _ name: StaticString,
    retryOnInterrupt: Bool,
    _ call: () -> R
) -> Result<R, Errno> {
    while true {
        #if DEBUG
        let result: R
        if let forced = SyscallMock.intercept(name) {
            sysSetErrno(forced.rawValue)
            result = -1
        } else {
            result = call()
        }
        #else
        let result = call()
        #endif
        if result != -1 {
            return .success(result)
        }
        let error = Errno(rawValue: sysErrno())
        if retryOnInterrupt && error == .interrupted {
            continue
        }
        return .failure(error)
    }
}

// MARK: - Descriptors

/// `socket(2)`.
@inline(never)
func sysSocket(_ family: CInt, _ type: CInt, _ proto: CInt) -> Result<CInt, Errno> {
    valueOrErrno("socket", retryOnInterrupt: true) { socket(family, type, proto) }
}

/// `socketpair(2)`; fills `fds` with the two descriptors.
@inline(never)
func sysSocketpair(_ family: CInt, _ type: CInt, _ proto: CInt, _ fds: inout (CInt, CInt)) -> Result<Void, Errno> {
    var pair: [CInt] = [-1, -1]
    let result = pair.withUnsafeMutableBufferPointer { buffer in
        valueOrErrno("socketpair", retryOnInterrupt: true) { socketpair(family, type, proto, buffer.baseAddress!) }
    }
    fds = (pair[0], pair[1])
    return result.map { _ in () }
}

/// `close(2)`, never retried: EINTR counts as success, because the descriptor is gone either way.
@inline(never)
func sysClose(_ fd: CInt) -> Result<Void, Errno> {
    switch valueOrErrno("close", retryOnInterrupt: false, { close(fd) }) {
    case .success: return .success(())
    case .failure(let error) where error == .interrupted: return .success(())
    case .failure(let error): return .failure(error)
    }
}

/// `fcntl(fd, F_GETFL)`.
@inline(never)
func sysGetStatusFlags(_ fd: CInt) -> Result<CInt, Errno> {
    valueOrErrno("fcntl", retryOnInterrupt: true) { fcntl(fd, F_GETFL) }
}

/// `fcntl(fd, F_SETFL, flags)`.
@inline(never)
func sysSetStatusFlags(_ fd: CInt, _ flags: CInt) -> Result<Void, Errno> {
    valueOrErrno("fcntl", retryOnInterrupt: true) { fcntl(fd, F_SETFL, flags) }.map { _ in () }
}

/// `fcntl(fd, F_GETFD)`.
@inline(never)
func sysGetDescriptorFlags(_ fd: CInt) -> Result<CInt, Errno> {
    valueOrErrno("fcntl", retryOnInterrupt: true) { fcntl(fd, F_GETFD) }
}

/// `fcntl(fd, F_SETFD, flags)`.
@inline(never)
func sysSetDescriptorFlags(_ fd: CInt, _ flags: CInt) -> Result<Void, Errno> {
    valueOrErrno("fcntl", retryOnInterrupt: true) { fcntl(fd, F_SETFD, flags) }.map { _ in () }
}

// MARK: - Addresses and connections

/// `bind(2)`.
@inline(never)
func sysBind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Result<Void, Errno> {
    valueOrErrno("bind", retryOnInterrupt: true) { bind(fd, address, length) }.map { _ in () }
}

/// `listen(2)`.
@inline(never)
func sysListen(_ fd: CInt, _ backlog: CInt) -> Result<Void, Errno> {
    valueOrErrno("listen", retryOnInterrupt: true) { listen(fd, backlog) }.map { _ in () }
}

/// `accept4(2)` (accept + fcntl where the platform lacks it, in CStrataSys).
@inline(never)
func sysAccept(
    _ fd: CInt,
    _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>,
    _ flags: CInt
) -> Result<CInt, Errno> {
    valueOrErrno("accept", retryOnInterrupt: true) { strata_accept4(fd, address, length, flags) }
}

/// `connect(2)`, never retried: after EINTR the connection continues in the background.
@inline(never)
func sysConnect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Result<Void, Errno> {
    valueOrErrno("connect", retryOnInterrupt: false) { connect(fd, address, length) }.map { _ in () }
}

/// `getsockname(2)`.
@inline(never)
func sysGetsockname(
    _ fd: CInt,
    _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Result<Void, Errno> {
    valueOrErrno("getsockname", retryOnInterrupt: true) { getsockname(fd, address, length) }.map { _ in () }
}

/// `getpeername(2)`.
@inline(never)
func sysGetpeername(
    _ fd: CInt,
    _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Result<Void, Errno> {
    valueOrErrno("getpeername", retryOnInterrupt: true) { getpeername(fd, address, length) }.map { _ in () }
}

/// `shutdown(2)`.
@inline(never)
func sysShutdown(_ fd: CInt, _ how: CInt) -> Result<Void, Errno> {
    valueOrErrno("shutdown", retryOnInterrupt: true) { shutdown(fd, how) }.map { _ in () }
}

// MARK: - Options

/// `setsockopt(2)`.
@inline(never)
func sysSetsockopt(
    _ fd: CInt,
    _ level: CInt,
    _ name: CInt,
    _ value: UnsafeRawPointer,
    _ length: socklen_t
) -> Result<Void, Errno> {
    valueOrErrno("setsockopt", retryOnInterrupt: true) { setsockopt(fd, level, name, value, length) }.map { _ in () }
}

/// `getsockopt(2)`.
@inline(never)
func sysGetsockopt(
    _ fd: CInt,
    _ level: CInt,
    _ name: CInt,
    _ value: UnsafeMutableRawPointer,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Result<Void, Errno> {
    valueOrErrno("getsockopt", retryOnInterrupt: true) { getsockopt(fd, level, name, value, length) }.map { _ in () }
}

// MARK: - Data

/// The flag every send adds so that writing to a closed connection reports EPIPE instead of
/// raising SIGPIPE: MSG_NOSIGNAL on Linux and FreeBSD, 0 on Darwin (which uses SO_NOSIGPIPE,
/// set when the socket is created).
let sendNoSignalFlag: CInt = strata_msg_nosignal()

/// `send(2)` with ``sendNoSignalFlag``.
@inline(never)
func sysSend(_ fd: CInt, _ buffer: UnsafeRawBufferPointer, _ flags: CInt) -> Result<Int, Errno> {
    valueOrErrno("send", retryOnInterrupt: true) {
        send(fd, buffer.baseAddress, buffer.count, flags | sendNoSignalFlag)
    }
}

/// `sendto(2)` with ``sendNoSignalFlag``.
@inline(never)
func sysSendto(
    _ fd: CInt,
    _ buffer: UnsafeRawBufferPointer,
    _ flags: CInt,
    _ address: UnsafePointer<sockaddr>,
    _ length: socklen_t
) -> Result<Int, Errno> {
    valueOrErrno("sendto", retryOnInterrupt: true) {
        sendto(fd, buffer.baseAddress, buffer.count, flags | sendNoSignalFlag, address, length)
    }
}

/// `recv(2)`.
@inline(never)
func sysRecv(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ flags: CInt) -> Result<Int, Errno> {
    valueOrErrno("recv", retryOnInterrupt: true) { recv(fd, buffer.baseAddress, buffer.count, flags) }
}

/// `recvfrom(2)`.
@inline(never)
func sysRecvfrom(
    _ fd: CInt,
    _ buffer: UnsafeMutableRawBufferPointer,
    _ flags: CInt,
    _ address: UnsafeMutablePointer<sockaddr>,
    _ length: UnsafeMutablePointer<socklen_t>
) -> Result<Int, Errno> {
    valueOrErrno("recvfrom", retryOnInterrupt: true) {
        recvfrom(fd, buffer.baseAddress, buffer.count, flags, address, length)
    }
}

/// `sendmsg(2)` with ``sendNoSignalFlag``.
@inline(never)
func sysSendmsg(_ fd: CInt, _ message: UnsafePointer<msghdr>, _ flags: CInt) -> Result<Int, Errno> {
    valueOrErrno("sendmsg", retryOnInterrupt: true) { sendmsg(fd, message, flags | sendNoSignalFlag) }
}

/// `recvmsg(2)`.
@inline(never)
func sysRecvmsg(_ fd: CInt, _ message: UnsafeMutablePointer<msghdr>, _ flags: CInt) -> Result<Int, Errno> {
    valueOrErrno("recvmsg", retryOnInterrupt: true) { recvmsg(fd, message, flags) }
}

/// `readv(2)`.
@inline(never)
func sysReadv(_ fd: CInt, _ vectors: UnsafePointer<iovec>, _ count: CInt) -> Result<Int, Errno> {
    valueOrErrno("readv", retryOnInterrupt: true) { readv(fd, vectors, count) }
}

/// The most buffers one `readv`/`sendmsg` takes on this system (`IOV_MAX`), read once.
let systemIOVectorLimit: Int = {
    let value = sysconf(cInt(_SC_IOV_MAX))
    // POSIX guarantees at least _XOPEN_IOV_MAX (16) where sysconf cannot say.
    return value > 0 ? value : 16
}()

#if os(Linux)
/// `sendfile(2)` (Linux: socket first, offset by pointer).
///
/// sendfile takes no flags, so MSG_NOSIGNAL cannot be passed, and on Linux an EPIPE raises SIGPIPE
/// for the calling thread. The wrapper blocks SIGPIPE on this thread around the call and consumes
/// the signal the call raised, so the process's disposition (often "terminate") never sees it.
@inline(never)
func sysSendfile(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Result<Int, Errno> {
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    var previousMask = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
    defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
    var pending = sigset_t()
    sigpending(&pending)
    let wasPending = sigismember(&pending, SIGPIPE) == 1

    var position = off_t(offset)
    let result = valueOrErrno("sendfile", retryOnInterrupt: true) { sendfile(socket, file, &position, count) }
    if case .failure(let error) = result, error == .brokenPipe, !wasPending {
        // The SIGPIPE this call raised is pending on this thread while blocked: take it.
        var noWait = timespec(tv_sec: 0, tv_nsec: 0)
        _ = sigtimedwait(&pipeSignal, nil, &noWait)
    }
    return result
}
#elseif canImport(Darwin)
/// `sendfile(2)` (Darwin: file first, length in/out; SO_NOSIGPIPE covers SIGPIPE).
///
/// On a nonblocking socket Darwin may send part of the range and then report EAGAIN; the part sent
/// is returned as a success.
@inline(never)
func sysSendfile(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Result<Int, Errno> {
    while true {
        var length = off_t(count)
        #if DEBUG
        if let forced = SyscallMock.intercept("sendfile") {
            if forced == .interrupted { continue }
            return .failure(forced)
        }
        #endif
        let result = sendfile(file, socket, off_t(offset), &length, nil, 0)
        if result == 0 {
            return .success(Int(length))
        }
        let error = Errno(rawValue: sysErrno())
        if length > 0 && (error == .wouldBlock || error == .interrupted) {
            return .success(Int(length))
        }
        if error == .interrupted {
            continue
        }
        return .failure(error)
    }
}
#elseif os(FreeBSD)
/// `sendfile(2)` (FreeBSD: file first, bytes sent reported through `sbytes`).
@inline(never)
func sysSendfile(_ socket: CInt, _ file: CInt, _ offset: Int64, _ count: Int) -> Result<Int, Errno> {
    while true {
        var sent = off_t(0)
        #if DEBUG
        if let forced = SyscallMock.intercept("sendfile") {
            if forced == .interrupted { continue }
            return .failure(forced)
        }
        #endif
        let result = sendfile(file, socket, off_t(offset), count, nil, &sent, 0)
        if result == 0 {
            return .success(Int(sent))
        }
        let error = Errno(rawValue: sysErrno())
        if sent > 0 && (error == .wouldBlock || error == .interrupted || error == Errno(rawValue: EBUSY)) {
            return .success(Int(sent))
        }
        if error == .interrupted {
            continue
        }
        return .failure(error)
    }
}
#else
#error("StrataSockets: add this platform's sendfile(2) to Syscalls.swift")
#endif

// MARK: - Waiting

/// `poll(2)` on one descriptor; returns the returned events (0 when the timeout passed).
///
/// EINTR is retried with the time left until the deadline, so signals neither cut the wait short
/// nor extend it. A nil timeout waits without limit.
@inline(never)
func sysPoll(_ fd: CInt, _ events: Int16, _ timeout: Duration?) -> Result<Int16, Errno> {
    let clock = ContinuousClock()
    let deadline = timeout.map { clock.now.advanced(by: $0) }
    while true {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let milliseconds: CInt
        if let deadline {
            milliseconds = pollMilliseconds(clock.now.duration(to: deadline))
        } else {
            milliseconds = -1
        }
        switch valueOrErrno("poll", retryOnInterrupt: false, { poll(&entry, 1, milliseconds) }) {
        case .success:
            return .success(entry.revents)
        case .failure(let error) where error == .interrupted:
            continue
        case .failure(let error):
            return .failure(error)
        }
    }
}

/// A poll(2) timeout in whole milliseconds, rounded up so that a short wait does not spin at 0.
private func pollMilliseconds(_ remaining: Duration) -> CInt {
    if remaining <= .zero {
        return 0
    }
    let (seconds, attoseconds) = remaining.components
    let millisecondsInSecond: Int64 = 1_000
    let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
    let whole = seconds.multipliedReportingOverflow(by: millisecondsInSecond)
    if whole.overflow || whole.partialValue >= Int64(CInt.max) {
        return CInt.max
    }
    let total = whole.partialValue + (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
    return CInt(min(total, Int64(CInt.max)))
}

// MARK: - Process and interface facts

/// The soft `RLIMIT_NOFILE`: nil when getrlimit fails, `.some(nil)` when unlimited.
@inline(never)
func sysDescriptorLimit() -> UInt64?? {
    var limit = rlimit()
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limit) == 0 else {
        return nil
    }
    // RLIM_INFINITY is all ones on Linux and 2^63 - 1 on Darwin and FreeBSD.
    let soft = UInt64(truncatingIfNeeded: limit.rlim_cur)
    return soft >= UInt64(Int64.max) ? .some(nil) : .some(soft)
}

/// `if_nametoindex(3)`: the index of a network interface, or 0 when there is none of that name.
@inline(never)
func sysInterfaceIndex(_ name: String) -> UInt32 {
    UInt32(if_nametoindex(name))
}

/// `strerror_r(3)`: the C library's message for an error number.
@inline(never)
func sysStrerror(_ code: CInt) -> String {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
        buffer.initialize(repeating: 0)
        // glibc has two strerror_r: XSI (returns int, fills the buffer) and GNU (returns a pointer
        // that may not be the buffer). Which one the importer sees depends on feature macros, so
        // overload resolution on the result type picks the matching interpretation.
        let result = strerror_r(code, buffer.baseAddress!, buffer.count - 1)
        return strerrorText(result, buffer, code)
    }
}

/// XSI `strerror_r`: 0 on success, the message is in the buffer.
private func strerrorText(_ result: CInt, _ buffer: UnsafeMutableBufferPointer<CChar>, _ code: CInt) -> String {
    if result == 0 || buffer[0] != 0 {
        return String(cString: buffer.baseAddress!)
    }
    return "Unknown error \(code)"
}

/// GNU `strerror_r`: the message is at the returned pointer (a static string or the buffer).
private func strerrorText(
    _ result: UnsafeMutablePointer<CChar>?,
    _ buffer: UnsafeMutableBufferPointer<CChar>,
    _ code: CInt
) -> String {
    guard let result else {
        return "Unknown error \(code)"
    }
    return String(cString: result)
}
