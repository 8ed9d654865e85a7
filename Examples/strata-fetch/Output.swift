// Where the body goes (stdout, or -o FILE opened when the first byte arrives), and stderr.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes all of `bytes` to `fd` (retrying EINTR, waiting out EAGAIN); the errno on failure.
func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> CInt? {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, -1)
                continue
            }
            return e
        }
        offset += n
    }
    return nil
}

/// One line on stderr (diagnostics and -v).
func printError(_ line: String) {
    var text = line
    text += "\n"
    text.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
}

/// Opens /dev/null on any of descriptors 0, 1 and 2 that is closed, so that no file or socket
/// opened later (the event loop's, the connection's) takes its number and receives the body
/// or the diagnostics. Returns whether stdout was closed.
func reserveStandardDescriptors() -> Bool {
    var stdoutClosed = false
    for fd: CInt in 0...2 where fcntl(fd, F_GETFD) < 0 && errno == EBADF {
        if fd == 1 { stdoutClosed = true }
        let null = systemOpen("/dev/null", O_RDWR, 0)
        if null >= 0 && null != fd {
            _ = dup2(null, fd)
            _ = systemClose(null)
        }
    }
    return stdoutClosed
}

/// Text on stdout (--help, --version).
func printOut(_ text: String) {
    var text = text
    text.withUTF8 { _ = writeAll(1, UnsafeRawBufferPointer($0)) }
}

/// The body's destination. A file given with -o is created (or truncated) when the first
/// byte is written, or at the end of a complete empty response, so a failed transfer before
/// the response leaves no empty file behind (as curl does).
final class Output {
    private let path: String?
    private var fd: CInt = -1
    private(set) var written: UInt64 = 0

    private let stdoutClosed: Bool

    /// `path` nil or "-" is stdout; `stdoutClosed`: it was closed when the program started.
    init(path: String?, stdoutClosed: Bool) {
        self.path = path == "-" ? nil : path
        self.stdoutClosed = stdoutClosed
        if self.path == nil { fd = 1 }
    }

    var name: String { path ?? "stdout" }

    func write(_ bytes: ArraySlice<UInt8>) throws(FetchFailure) {
        guard !bytes.isEmpty else { return }
        if path == nil && stdoutClosed {
            throw FetchFailure(Exit.writeError, "cannot write to stdout: it is closed (give -o FILE)")
        }
        try open()
        let e = bytes.withUnsafeBytes { writeAll(fd, $0) }
        if let e {
            throw FetchFailure(Exit.writeError, "cannot write to \(name): \(String(cString: strerror(e)))")
        }
        written += UInt64(bytes.count)
    }

    /// Creates the file now if it was not (an empty body), and closes it.
    func finish() throws(FetchFailure) {
        try open()
        try close()
    }

    /// Closes the file (after a failure, keeping what was written, as curl does).
    func close() throws(FetchFailure) {
        guard path != nil, fd >= 0 else { return }
        let rc = systemClose(fd)
        fd = -1
        if rc != 0 {
            let e = errno
            throw FetchFailure(Exit.writeError, "cannot write to \(name): \(String(cString: strerror(e)))")
        }
    }

    private func open() throws(FetchFailure) {
        guard fd < 0, let path else { return }
        let f = systemOpen(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        if f < 0 {
            let e = errno
            throw FetchFailure(Exit.writeError, "cannot create \(path): \(String(cString: strerror(e)))")
        }
        fd = f
    }
}

#if canImport(Glibc)
private func systemClose(_ fd: CInt) -> CInt { Glibc.close(fd) }
private func systemOpen(_ path: String, _ flags: CInt, _ mode: mode_t) -> CInt { Glibc.open(path, flags, mode) }
#elseif canImport(Musl)
private func systemClose(_ fd: CInt) -> CInt { Musl.close(fd) }
private func systemOpen(_ path: String, _ flags: CInt, _ mode: mode_t) -> CInt { Musl.open(path, flags, mode) }
#elseif canImport(Darwin)
private func systemClose(_ fd: CInt) -> CInt { Darwin.close(fd) }
private func systemOpen(_ path: String, _ flags: CInt, _ mode: mode_t) -> CInt { Darwin.open(path, flags, mode) }
#endif
