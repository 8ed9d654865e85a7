/// An error from a socket operation: what happened, how to fix it, and the system call behind it.
///
/// Every error a ``Socket`` throws is a `SocketError`. Its ``message`` is written for a person:
/// it names the operation and the address, the C error, what the error means in this situation,
/// and what to do about it:
///
/// ```
/// bind 127.0.0.1:8080: EADDRINUSE (98): address already in use — stop the other server or pick another port
/// ```
///
/// Programs decide with ``code`` (portable, extensible) or with ``cause`` (the exact call and
/// ``Errno``). Conditions that are not errors do not throw: a nonblocking call that would block
/// returns `nil`, and an interrupted call is retried. Errors that can only come from a bug in the
/// calling program (`EBADF`, `EFAULT`, `ENOTSOCK`) trap instead of throwing, with a message that
/// names the descriptor and the operation.
public struct SocketError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, in portable terms.
    ///
    /// `Code` is a struct rather than an enum so that new codes can be added without breaking
    /// exhaustive `switch` statements: compare with `==`, or switch with a `default` clause.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case addressInUse, addressNotAvailable, permissionDenied, connectionRefused
            case connectionReset, connectionAborted, brokenPipe, timedOut, networkUnreachable
            case hostUnreachable, tooManyOpenFiles, resourceExhausted, messageTooLong, notConnected
            case alreadyConnected, unsupported, invalidArgument, noSuchFile, wouldBlock, interrupted
            case unknown
        }

        private let wrapped: Wrapped

        private init(wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The local address is taken by another socket (`EADDRINUSE`).
        public static var addressInUse: Code { Code(wrapped: .addressInUse) }
        /// The local address does not exist on this host, or no ephemeral port is free (`EADDRNOTAVAIL`).
        public static var addressNotAvailable: Code { Code(wrapped: .addressNotAvailable) }
        /// A privilege, file permission or security policy refused the operation (`EACCES`, `EPERM`).
        public static var permissionDenied: Code { Code(wrapped: .permissionDenied) }
        /// Nothing listens at the destination (`ECONNREFUSED`).
        public static var connectionRefused: Code { Code(wrapped: .connectionRefused) }
        /// The peer reset the connection (`ECONNRESET`).
        public static var connectionReset: Code { Code(wrapped: .connectionReset) }
        /// The connection was aborted before it could be used (`ECONNABORTED`, `ENETRESET`).
        public static var connectionAborted: Code { Code(wrapped: .connectionAborted) }
        /// The connection can no longer carry data in this direction (`EPIPE`, `ESHUTDOWN`).
        public static var brokenPipe: Code { Code(wrapped: .brokenPipe) }
        /// The peer did not answer in time (`ETIMEDOUT`), or a Strata deadline passed.
        public static var timedOut: Code { Code(wrapped: .timedOut) }
        /// There is no route to the destination network, or its interface is down (`ENETUNREACH`, `ENETDOWN`).
        public static var networkUnreachable: Code { Code(wrapped: .networkUnreachable) }
        /// There is no route to the destination host, or it is down (`EHOSTUNREACH`, `EHOSTDOWN`).
        public static var hostUnreachable: Code { Code(wrapped: .hostUnreachable) }
        /// A descriptor limit was reached, per process (`EMFILE`) or system-wide (`ENFILE`).
        public static var tooManyOpenFiles: Code { Code(wrapped: .tooManyOpenFiles) }
        /// The kernel ran short of buffer space or memory (`ENOBUFS`, `ENOMEM`).
        public static var resourceExhausted: Code { Code(wrapped: .resourceExhausted) }
        /// A datagram is too large to send in one piece (`EMSGSIZE`).
        public static var messageTooLong: Code { Code(wrapped: .messageTooLong) }
        /// The socket is not connected (`ENOTCONN`, `EDESTADDRREQ`).
        public static var notConnected: Code { Code(wrapped: .notConnected) }
        /// The socket is already connected (`EISCONN`).
        public static var alreadyConnected: Code { Code(wrapped: .alreadyConnected) }
        /// The family, type, protocol, option or operation is not supported here.
        public static var unsupported: Code { Code(wrapped: .unsupported) }
        /// An argument does not suit this socket or its state (`EINVAL`).
        public static var invalidArgument: Code { Code(wrapped: .invalidArgument) }
        /// A Unix socket path does not exist or cannot be resolved (`ENOENT`, `ENOTDIR`, `ELOOP`, `ENAMETOOLONG`).
        public static var noSuchFile: Code { Code(wrapped: .noSuchFile) }
        /// The operation would block where blocking is not expected, such as a full listen backlog
        /// on a Unix socket `connect` (`EAGAIN`).
        public static var wouldBlock: Code { Code(wrapped: .wouldBlock) }
        /// A signal interrupted a call that Strata does not retry (`EINTR`).
        public static var interrupted: Code { Code(wrapped: .interrupted) }
        /// Any other error; ``SocketError/cause`` has the details.
        public static var unknown: Code { Code(wrapped: .unknown) }

        /// The code's name, such as `addressInUse`.
        public var description: String {
            switch wrapped {
            case .addressInUse: "addressInUse"
            case .addressNotAvailable: "addressNotAvailable"
            case .permissionDenied: "permissionDenied"
            case .connectionRefused: "connectionRefused"
            case .connectionReset: "connectionReset"
            case .connectionAborted: "connectionAborted"
            case .brokenPipe: "brokenPipe"
            case .timedOut: "timedOut"
            case .networkUnreachable: "networkUnreachable"
            case .hostUnreachable: "hostUnreachable"
            case .tooManyOpenFiles: "tooManyOpenFiles"
            case .resourceExhausted: "resourceExhausted"
            case .messageTooLong: "messageTooLong"
            case .notConnected: "notConnected"
            case .alreadyConnected: "alreadyConnected"
            case .unsupported: "unsupported"
            case .invalidArgument: "invalidArgument"
            case .noSuchFile: "noSuchFile"
            case .wouldBlock: "wouldBlock"
            case .interrupted: "interrupted"
            case .unknown: "unknown"
            }
        }

        /// The code for an error number.
        ///
        /// - Parameter errno: The error number a system call reported.
        public init(_ errno: Errno) {
            switch errno.kind {
            case .addressInUse: self = .addressInUse
            case .addressNotAvailable: self = .addressNotAvailable
            case .permissionDenied: self = .permissionDenied
            case .connectionRefused: self = .connectionRefused
            case .connectionReset: self = .connectionReset
            case .connectionAborted: self = .connectionAborted
            case .brokenPipe: self = .brokenPipe
            case .timedOut: self = .timedOut
            case .networkUnreachable: self = .networkUnreachable
            case .hostUnreachable: self = .hostUnreachable
            case .tooManyOpenFiles: self = .tooManyOpenFiles
            case .noBufferSpace: self = .resourceExhausted
            case .messageTooLong: self = .messageTooLong
            case .notConnected: self = .notConnected
            case .alreadyConnected: self = .alreadyConnected
            case .unsupported: self = .unsupported
            case .invalidArgument: self = .invalidArgument
            case .noSuchFile: self = .noSuchFile
            case .wouldBlock: self = .wouldBlock
            case .interrupted: self = .interrupted
            default: self = .unknown
            }
        }
    }

    /// What went wrong, in portable terms.
    public var code: Code

    /// A sentence for a person: the operation, the address, the C error, what it means and how to fix it.
    public var message: String

    /// The system call that failed and the error number it reported.
    public var cause: SystemCallError

    /// The address the operation used, when there was one (the address bound to or connected to).
    public var address: SocketAddress?

    /// Creates a socket error.
    ///
    /// Strata builds its errors itself; this initializer serves tests and adapters that need to
    /// produce the same shape.
    ///
    /// - Parameters:
    ///   - code: What went wrong, in portable terms.
    ///   - message: The sentence for a person, naming the cause and the fix.
    ///   - cause: The system call that failed and its error number.
    ///   - address: The address the operation used, if any.
    public init(code: Code, message: String, cause: SystemCallError, address: SocketAddress? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.address = address
    }

    /// The ``message``.
    public var description: String {
        message
    }
}
