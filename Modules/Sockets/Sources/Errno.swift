#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error number reported by a system call.
///
/// `Errno` wraps the C `errno` value of the platform Strata was built for. Its static members
/// take their values from the imported C constants, so `Errno.wouldBlock` is 11 on Linux and 35
/// on Darwin, and `Errno(rawValue: 11).name` is `"EAGAIN"` on Linux. Use ``kind`` (or the `is…`
/// properties) for portable decisions: it folds aliases and near-synonyms, such as `EAGAIN` and
/// `EWOULDBLOCK`, or `EMFILE` and `ENFILE`, into one classification.
///
/// Match an error against an errno in a `catch` clause with the `~=` operator; it also looks
/// inside ``SystemCallError`` and ``SocketError``:
///
/// ```swift
/// do {
///     _ = try socket.receive(into: buffer)
/// } catch Errno.connectionReset {
///     // the peer sent a reset
/// }
/// ```
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    /// The raw C error number.
    public let rawValue: CInt

    /// Creates an error number from a raw C error number.
    ///
    /// - Parameter rawValue: The value of `errno` on the platform Strata was built for.
    public init(rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// Creates an error number from a raw C error number.
    ///
    /// - Parameter rawValue: The value of `errno` on the platform Strata was built for.
    public init(_ rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// Creates an error number from its portable C name, such as `"EAGAIN"`.
    ///
    /// The name is looked up in the errno table generated from Strata's ABI table for the build
    /// target, so `Errno(named: "EAGAIN")` is 11 on Linux and 35 on Darwin. Aliases resolve to
    /// their value: `"EWOULDBLOCK"` gives the same errno as `"EAGAIN"` where the two are equal.
    ///
    /// - Parameter name: The C name, spelled exactly as in `<errno.h>` (upper case).
    /// - Returns: `nil` when the name is not an errno the table defines for this target.
    public init?(named name: String) {
        for entry in errnoNameTable {
            let matches = entry.name.withUTF8Buffer { candidate in
                candidate.elementsEqual(name.utf8)
            }
            if matches {
                self.rawValue = entry.code
                return
            }
        }
        return nil
    }

    /// The error number of the calling thread, as left by the last failed C call.
    ///
    /// Read it immediately after the call that failed: any other C call, and in Swift any
    /// allocation or reference-count operation, may overwrite it. Strata's own system call
    /// wrappers read it before doing anything else.
    ///
    /// The corresponding C variable is `errno`.
    public static var current: Errno {
        get { Errno(rawValue: sysErrno()) }
        set { sysSetErrno(newValue.rawValue) }
    }

    /// The C name of this error number on the build target, such as `"EAGAIN"`.
    ///
    /// Where two names share a value (`EAGAIN` and `EWOULDBLOCK` on Linux), this is the first
    /// one in Strata's errno catalogue. A value the ABI table does not name prints as
    /// `"errno 4242"`.
    public var name: String {
        if let name = errnoName(rawValue) {
            return name.description
        }
        return "errno \(rawValue)"
    }

    /// The C library's message for this error number, such as `"Resource temporarily unavailable"`.
    ///
    /// The corresponding C function is `strerror_r`.
    public var message: String {
        sysStrerror(rawValue)
    }

    /// The name, the value and the C library's message: `EAGAIN (11): Resource temporarily unavailable`.
    public var description: String {
        "\(name) (\(rawValue)): \(message)"
    }

    /// Matches an error against this error number in `catch` clauses and `switch` statements.
    ///
    /// The error matches when it is this `Errno`, or a ``SystemCallError`` or ``SocketError``
    /// whose underlying error number is this one. Only the exact value matches: to match a
    /// family of values (`EAGAIN` or `EWOULDBLOCK`), compare ``kind`` instead.
    ///
    /// - Parameters:
    ///   - lhs: The error number to look for.
    ///   - rhs: The error that was thrown.
    /// - Returns: Whether `rhs` carries `lhs`.
    public static func ~= (lhs: Errno, rhs: any Error) -> Bool {
        if let errno = rhs as? Errno {
            return errno == lhs
        }
        if let error = rhs as? SystemCallError {
            return error.errno == lhs
        }
        if let error = rhs as? SocketError {
            return error.cause.errno == lhs
        }
        return false
    }

    /// Matches a ``SocketError`` whose underlying error number is this one.
    ///
    /// This overload serves typed `throws(SocketError)` calls, where the caught error is
    /// statically a `SocketError`.
    ///
    /// - Parameters:
    ///   - lhs: The error number to look for.
    ///   - rhs: The error that was thrown.
    /// - Returns: Whether `rhs.cause.errno` is `lhs`.
    public static func ~= (lhs: Errno, rhs: SocketError) -> Bool {
        rhs.cause.errno == lhs
    }
}

// MARK: - Error numbers networking code meets

extension Errno {
    /// Resource temporarily unavailable: the operation would block.
    ///
    /// A nonblocking socket has no data to read, no room to write, or no connection to accept.
    /// Strata's socket calls return this case as a value (`nil`), never as a thrown error. Some
    /// platforms also define `EWOULDBLOCK` with a different value; ``kind`` folds both into
    /// ``Kind/wouldBlock``.
    ///
    /// The corresponding C error is `EAGAIN`.
    public static var wouldBlock: Errno { Errno(rawValue: EAGAIN) }

    /// Interrupted function call: a signal arrived during a blocking call.
    ///
    /// Strata retries interrupted calls itself, except `close` (never retried) and `connect`
    /// (which continues in the background and is finished by waiting for writability).
    ///
    /// The corresponding C error is `EINTR`.
    public static var interrupted: Errno { Errno(rawValue: EINTR) }

    /// Bad file descriptor: the descriptor is not open.
    ///
    /// On a socket this is a programmer error (the descriptor was closed twice, or used after it
    /// was handed over); Strata traps on it rather than throwing.
    ///
    /// The corresponding C error is `EBADF`.
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }

    /// Bad address: a pointer argument points outside the process's address space.
    ///
    /// Always a programmer error; Strata traps on it.
    ///
    /// The corresponding C error is `EFAULT`.
    public static var badAddress: Errno { Errno(rawValue: EFAULT) }

    /// Socket operation on a descriptor that is not a socket.
    ///
    /// A programmer error (a file descriptor was adopted as a socket); Strata traps on it.
    ///
    /// The corresponding C error is `ENOTSOCK`.
    public static var notSocket: Errno { Errno(rawValue: ENOTSOCK) }

    /// Connection reset by peer: the peer sent a TCP reset (RST).
    ///
    /// The peer closed abruptly, for example with `SO_LINGER` set to zero, or it closed while
    /// unread data was still in its receive buffer.
    ///
    /// The corresponding C error is `ECONNRESET`.
    public static var connectionReset: Errno { Errno(rawValue: ECONNRESET) }

    /// Broken pipe: writing to a connection whose peer has gone or that was shut down for writing.
    ///
    /// Strata sends with `MSG_NOSIGNAL` on Linux and sets `SO_NOSIGPIPE` on Darwin, so this
    /// arrives as an error and never as a `SIGPIPE` that kills the process.
    ///
    /// The corresponding C error is `EPIPE`.
    public static var brokenPipe: Errno { Errno(rawValue: EPIPE) }

    /// Address already in use: another socket is bound to this address and port.
    ///
    /// The corresponding C error is `EADDRINUSE`.
    public static var addressInUse: Errno { Errno(rawValue: EADDRINUSE) }

    /// Address not available: no local interface has this address, or no ephemeral port is free.
    ///
    /// The corresponding C error is `EADDRNOTAVAIL`.
    public static var addressNotAvailable: Errno { Errno(rawValue: EADDRNOTAVAIL) }

    /// Connection refused: nothing listens at the destination address and port.
    ///
    /// The corresponding C error is `ECONNREFUSED`.
    public static var connectionRefused: Errno { Errno(rawValue: ECONNREFUSED) }

    /// Connection aborted: the connection was aborted before it could be used.
    ///
    /// On `accept`, the client reset the connection while it waited in the backlog.
    ///
    /// The corresponding C error is `ECONNABORTED`.
    public static var connectionAborted: Errno { Errno(rawValue: ECONNABORTED) }

    /// Too many open files: the process reached its descriptor limit (`RLIMIT_NOFILE`).
    ///
    /// The corresponding C error is `EMFILE`.
    public static var tooManyOpenFiles: Errno { Errno(rawValue: EMFILE) }

    /// Too many open files in the system: the kernel's file table is full.
    ///
    /// The corresponding C error is `ENFILE`.
    public static var fileTableOverflow: Errno { Errno(rawValue: ENFILE) }

    /// Connection timed out: the peer did not answer a connection attempt, retransmissions or
    /// keep-alive probes in time.
    ///
    /// The corresponding C error is `ETIMEDOUT`.
    public static var timedOut: Errno { Errno(rawValue: ETIMEDOUT) }

    /// Socket is not connected.
    ///
    /// The corresponding C error is `ENOTCONN`.
    public static var notConnected: Errno { Errno(rawValue: ENOTCONN) }

    /// Operation now in progress: a nonblocking `connect` has started and continues in the background.
    ///
    /// The corresponding C error is `EINPROGRESS`.
    public static var inProgress: Errno { Errno(rawValue: EINPROGRESS) }

    /// Operation already in progress: a previous nonblocking `connect` has not completed yet.
    ///
    /// The corresponding C error is `EALREADY`.
    public static var alreadyInProgress: Errno { Errno(rawValue: EALREADY) }

    /// Socket is already connected.
    ///
    /// The corresponding C error is `EISCONN`.
    public static var isConnected: Errno { Errno(rawValue: EISCONN) }

    /// Network is unreachable: no route to the destination network.
    ///
    /// The corresponding C error is `ENETUNREACH`.
    public static var networkUnreachable: Errno { Errno(rawValue: ENETUNREACH) }

    /// Network is down: the interface the route uses is down.
    ///
    /// The corresponding C error is `ENETDOWN`.
    public static var networkDown: Errno { Errno(rawValue: ENETDOWN) }

    /// Network dropped connection on reset.
    ///
    /// The corresponding C error is `ENETRESET`.
    public static var networkReset: Errno { Errno(rawValue: ENETRESET) }

    /// No route to host: the destination host is unreachable.
    ///
    /// The corresponding C error is `EHOSTUNREACH`.
    public static var hostUnreachable: Errno { Errno(rawValue: EHOSTUNREACH) }

    /// Host is down.
    ///
    /// The corresponding C error is `EHOSTDOWN`.
    public static var hostDown: Errno { Errno(rawValue: EHOSTDOWN) }

    /// No buffer space available: the kernel ran out of socket buffer memory.
    ///
    /// The corresponding C error is `ENOBUFS`.
    public static var noBufferSpace: Errno { Errno(rawValue: ENOBUFS) }

    /// Not enough memory.
    ///
    /// The corresponding C error is `ENOMEM`.
    public static var noMemory: Errno { Errno(rawValue: ENOMEM) }

    /// Message too long: a datagram is larger than the socket can send in one piece.
    ///
    /// The corresponding C error is `EMSGSIZE`.
    public static var messageTooLong: Errno { Errno(rawValue: EMSGSIZE) }

    /// Invalid argument.
    ///
    /// The corresponding C error is `EINVAL`.
    public static var invalidArgument: Errno { Errno(rawValue: EINVAL) }

    /// Permission denied: the process lacks the privilege or file permission the call needs.
    ///
    /// Binding a port below 1024 without privileges, or a Unix socket path in a directory the
    /// process cannot write, reports this error.
    ///
    /// The corresponding C error is `EACCES`.
    public static var permissionDenied: Errno { Errno(rawValue: EACCES) }

    /// Operation not permitted: a privilege check or a security policy (such as a firewall rule) refused it.
    ///
    /// The corresponding C error is `EPERM`.
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }

    /// Address family not supported by protocol: the address does not match the socket's family.
    ///
    /// The corresponding C error is `EAFNOSUPPORT`.
    public static var addressFamilyNotSupported: Errno { Errno(rawValue: EAFNOSUPPORT) }

    /// Protocol family not supported.
    ///
    /// The corresponding C error is `EPFNOSUPPORT`.
    public static var protocolFamilyNotSupported: Errno { Errno(rawValue: EPFNOSUPPORT) }

    /// Protocol not supported: the socket type does not support the requested protocol.
    ///
    /// The corresponding C error is `EPROTONOSUPPORT`.
    public static var protocolNotSupported: Errno { Errno(rawValue: EPROTONOSUPPORT) }

    /// Socket type not supported.
    ///
    /// The corresponding C error is `ESOCKTNOSUPPORT`.
    public static var socketTypeNotSupported: Errno { Errno(rawValue: ESOCKTNOSUPPORT) }

    /// Protocol wrong type for socket.
    ///
    /// The corresponding C error is `EPROTOTYPE`.
    public static var wrongProtocolType: Errno { Errno(rawValue: EPROTOTYPE) }

    /// Protocol not available: the socket option is unknown at the given level.
    ///
    /// The corresponding C error is `ENOPROTOOPT`.
    public static var protocolNotAvailable: Errno { Errno(rawValue: ENOPROTOOPT) }

    /// Operation not supported on socket, such as `listen` on a datagram socket.
    ///
    /// Linux gives `EOPNOTSUPP` and `ENOTSUP` the same value; Darwin and FreeBSD do not.
    ///
    /// The corresponding C error is `EOPNOTSUPP`.
    public static var operationNotSupported: Errno { Errno(rawValue: EOPNOTSUPP) }

    /// Not supported.
    ///
    /// The corresponding C error is `ENOTSUP`.
    public static var notSupported: Errno { Errno(rawValue: ENOTSUP) }

    /// Destination address required: a datagram was sent on an unconnected socket without an address.
    ///
    /// The corresponding C error is `EDESTADDRREQ`.
    public static var destinationAddressRequired: Errno { Errno(rawValue: EDESTADDRREQ) }

    /// Cannot send after socket shutdown.
    ///
    /// The corresponding C error is `ESHUTDOWN`.
    public static var socketShutdown: Errno { Errno(rawValue: ESHUTDOWN) }

    /// Protocol error.
    ///
    /// The corresponding C error is `EPROTO`.
    public static var protocolError: Errno { Errno(rawValue: EPROTO) }

    /// Too many references: too many descriptors are in flight in `SCM_RIGHTS` messages.
    ///
    /// The corresponding C error is `ETOOMANYREFS`.
    public static var tooManyReferences: Errno { Errno(rawValue: ETOOMANYREFS) }

    /// No such file or directory: the Unix socket path does not exist.
    ///
    /// The corresponding C error is `ENOENT`.
    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }

    /// Not a directory: a component of the Unix socket path is not a directory.
    ///
    /// The corresponding C error is `ENOTDIR`.
    public static var notDirectory: Errno { Errno(rawValue: ENOTDIR) }

    /// File name too long.
    ///
    /// The corresponding C error is `ENAMETOOLONG`.
    public static var fileNameTooLong: Errno { Errno(rawValue: ENAMETOOLONG) }

    /// Too many levels of symbolic links in the Unix socket path.
    ///
    /// The corresponding C error is `ELOOP`.
    public static var tooManySymbolicLinkLevels: Errno { Errno(rawValue: ELOOP) }

    /// Read-only file system: a Unix socket cannot be created there.
    ///
    /// The corresponding C error is `EROFS`.
    public static var readOnlyFileSystem: Errno { Errno(rawValue: EROFS) }

    /// File exists.
    ///
    /// The corresponding C error is `EEXIST`.
    public static var fileExists: Errno { Errno(rawValue: EEXIST) }

    /// Input/output error.
    ///
    /// The corresponding C error is `EIO`.
    public static var ioError: Errno { Errno(rawValue: EIO) }

    /// Illegal seek: `sendfile` was given a file that cannot be read at an offset.
    ///
    /// The corresponding C error is `ESPIPE`.
    public static var illegalSeek: Errno { Errno(rawValue: ESPIPE) }

    /// Value too large for the data type, such as a `sendfile` offset past what the file allows.
    ///
    /// The corresponding C error is `EOVERFLOW`.
    public static var overflow: Errno { Errno(rawValue: EOVERFLOW) }

    /// Function not implemented by this kernel.
    ///
    /// The corresponding C error is `ENOSYS`.
    public static var notImplemented: Errno { Errno(rawValue: ENOSYS) }
}
