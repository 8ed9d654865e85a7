#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Errno {
    /// A portable classification of error numbers, for decisions that must not depend on the
    /// platform's values or aliases.
    ///
    /// Several C names can mean one thing to a program: `EAGAIN` and `EWOULDBLOCK` (different
    /// values on some systems), `EMFILE` and `ENFILE`, `ENETUNREACH` and `ENETDOWN`. A kind
    /// names that one thing. New kinds may be added in minor releases, so a `switch` over kinds
    /// needs a `default` clause.
    ///
    /// ```swift
    /// if error.cause.errno.kind == .connectionReset { … }
    /// ```
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case wouldBlock, interrupted, connectionReset, connectionAborted, brokenPipe
            case connectionRefused, addressInUse, addressNotAvailable, tooManyOpenFiles, timedOut
            case notConnected, alreadyConnected, inProgress, networkUnreachable, hostUnreachable
            case noBufferSpace, messageTooLong, permissionDenied, invalidArgument, unsupported
            case noSuchFile, programmerError, other
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The operation would block (`EAGAIN`, `EWOULDBLOCK`).
        public static var wouldBlock: Kind { Kind(.wouldBlock) }
        /// A signal interrupted the call (`EINTR`).
        public static var interrupted: Kind { Kind(.interrupted) }
        /// The peer reset the connection (`ECONNRESET`).
        public static var connectionReset: Kind { Kind(.connectionReset) }
        /// The connection was aborted before use, locally or by the network (`ECONNABORTED`, `ENETRESET`).
        public static var connectionAborted: Kind { Kind(.connectionAborted) }
        /// Writing to a connection that can no longer carry data (`EPIPE`, `ESHUTDOWN`).
        public static var brokenPipe: Kind { Kind(.brokenPipe) }
        /// Nothing listens at the destination (`ECONNREFUSED`).
        public static var connectionRefused: Kind { Kind(.connectionRefused) }
        /// The local address is taken (`EADDRINUSE`).
        public static var addressInUse: Kind { Kind(.addressInUse) }
        /// The local address does not exist here, or no ephemeral port is free (`EADDRNOTAVAIL`).
        public static var addressNotAvailable: Kind { Kind(.addressNotAvailable) }
        /// A descriptor limit was reached: the process's (`EMFILE`) or the system's (`ENFILE`).
        public static var tooManyOpenFiles: Kind { Kind(.tooManyOpenFiles) }
        /// The peer did not answer in time (`ETIMEDOUT`).
        public static var timedOut: Kind { Kind(.timedOut) }
        /// The socket is not connected (`ENOTCONN`, `EDESTADDRREQ`).
        public static var notConnected: Kind { Kind(.notConnected) }
        /// The socket is already connected (`EISCONN`).
        public static var alreadyConnected: Kind { Kind(.alreadyConnected) }
        /// A nonblocking connect is under way (`EINPROGRESS`, `EALREADY`).
        public static var inProgress: Kind { Kind(.inProgress) }
        /// No route to the network, or its interface is down (`ENETUNREACH`, `ENETDOWN`).
        public static var networkUnreachable: Kind { Kind(.networkUnreachable) }
        /// No route to the host, or the host is down (`EHOSTUNREACH`, `EHOSTDOWN`).
        public static var hostUnreachable: Kind { Kind(.hostUnreachable) }
        /// The kernel is out of buffer space or memory (`ENOBUFS`, `ENOMEM`).
        public static var noBufferSpace: Kind { Kind(.noBufferSpace) }
        /// A datagram is too large (`EMSGSIZE`).
        public static var messageTooLong: Kind { Kind(.messageTooLong) }
        /// A privilege, permission or policy check refused the call (`EACCES`, `EPERM`).
        public static var permissionDenied: Kind { Kind(.permissionDenied) }
        /// An argument is invalid for this socket or its state (`EINVAL`).
        public static var invalidArgument: Kind { Kind(.invalidArgument) }
        /// The family, type, protocol, option or operation is not supported (`EAFNOSUPPORT`,
        /// `EPFNOSUPPORT`, `EPROTONOSUPPORT`, `ESOCKTNOSUPPORT`, `EPROTOTYPE`, `ENOPROTOOPT`,
        /// `EOPNOTSUPP`, `ENOTSUP`, `ENOSYS`).
        public static var unsupported: Kind { Kind(.unsupported) }
        /// A Unix socket path does not exist or cannot be resolved (`ENOENT`, `ENOTDIR`, `ELOOP`,
        /// `ENAMETOOLONG`).
        public static var noSuchFile: Kind { Kind(.noSuchFile) }
        /// A bug in the calling program, such as using a closed descriptor (`EBADF`, `EFAULT`, `ENOTSOCK`).
        public static var programmerError: Kind { Kind(.programmerError) }
        /// Any error number without a more specific kind.
        public static var other: Kind { Kind(.other) }

        /// The kind's name, such as `wouldBlock`.
        public var description: String {
            switch wrapped {
            case .wouldBlock: "wouldBlock"
            case .interrupted: "interrupted"
            case .connectionReset: "connectionReset"
            case .connectionAborted: "connectionAborted"
            case .brokenPipe: "brokenPipe"
            case .connectionRefused: "connectionRefused"
            case .addressInUse: "addressInUse"
            case .addressNotAvailable: "addressNotAvailable"
            case .tooManyOpenFiles: "tooManyOpenFiles"
            case .timedOut: "timedOut"
            case .notConnected: "notConnected"
            case .alreadyConnected: "alreadyConnected"
            case .inProgress: "inProgress"
            case .networkUnreachable: "networkUnreachable"
            case .hostUnreachable: "hostUnreachable"
            case .noBufferSpace: "noBufferSpace"
            case .messageTooLong: "messageTooLong"
            case .permissionDenied: "permissionDenied"
            case .invalidArgument: "invalidArgument"
            case .unsupported: "unsupported"
            case .noSuchFile: "noSuchFile"
            case .programmerError: "programmerError"
            case .other: "other"
            }
        }
    }

    /// The portable classification of this error number.
    ///
    /// - Complexity: O(1).
    public var kind: Kind {
        // Patterns are the imported constants, compared with `~=`: platforms where two names share
        // a value (EAGAIN and EWOULDBLOCK on Linux) simply match the first case.
        switch rawValue {
        case EAGAIN, EWOULDBLOCK: .wouldBlock
        case EINTR: .interrupted
        case ECONNRESET: .connectionReset
        case ECONNABORTED, ENETRESET: .connectionAborted
        case EPIPE, ESHUTDOWN: .brokenPipe
        case ECONNREFUSED: .connectionRefused
        case EADDRINUSE: .addressInUse
        case EADDRNOTAVAIL: .addressNotAvailable
        case EMFILE, ENFILE: .tooManyOpenFiles
        case ETIMEDOUT: .timedOut
        case ENOTCONN, EDESTADDRREQ: .notConnected
        case EISCONN: .alreadyConnected
        case EINPROGRESS, EALREADY: .inProgress
        case ENETUNREACH, ENETDOWN: .networkUnreachable
        case EHOSTUNREACH, EHOSTDOWN: .hostUnreachable
        case ENOBUFS, ENOMEM: .noBufferSpace
        case EMSGSIZE: .messageTooLong
        case EACCES, EPERM: .permissionDenied
        case EINVAL: .invalidArgument
        case EAFNOSUPPORT, EPFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT, EPROTOTYPE, ENOPROTOOPT,
            EOPNOTSUPP, ENOTSUP, ENOSYS:
            .unsupported
        case ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG: .noSuchFile
        case EBADF, EFAULT, ENOTSOCK: .programmerError
        default: .other
        }
    }

    /// Whether the operation would block (`EAGAIN` or `EWOULDBLOCK`).
    public var isWouldBlock: Bool { kind == .wouldBlock }

    /// Whether a signal interrupted the call (`EINTR`).
    public var isInterrupted: Bool { kind == .interrupted }

    /// Whether the peer reset the connection (`ECONNRESET`).
    public var isConnectionReset: Bool { kind == .connectionReset }

    /// Whether the connection was aborted before use (`ECONNABORTED`, `ENETRESET`).
    public var isConnectionAborted: Bool { kind == .connectionAborted }

    /// Whether the write went to a connection that can no longer carry data (`EPIPE`, `ESHUTDOWN`).
    public var isBrokenPipe: Bool { kind == .brokenPipe }

    /// Whether nothing listens at the destination (`ECONNREFUSED`).
    public var isConnectionRefused: Bool { kind == .connectionRefused }

    /// Whether the local address is taken (`EADDRINUSE`).
    public var isAddressInUse: Bool { kind == .addressInUse }

    /// Whether the local address is not available (`EADDRNOTAVAIL`).
    public var isAddressNotAvailable: Bool { kind == .addressNotAvailable }

    /// Whether a descriptor limit was reached, per process (`EMFILE`) or system-wide (`ENFILE`).
    public var isTooManyOpenFiles: Bool { kind == .tooManyOpenFiles }

    /// Whether the peer did not answer in time (`ETIMEDOUT`).
    public var isTimedOut: Bool { kind == .timedOut }

    /// Whether the socket is not connected (`ENOTCONN`, `EDESTADDRREQ`).
    public var isNotConnected: Bool { kind == .notConnected }

    /// Whether the error means the connection is gone: reset, aborted or broken pipe.
    ///
    /// A program that sees this closes the socket; there is nothing left to read or write.
    public var isDisconnection: Bool {
        switch kind {
        case .connectionReset, .connectionAborted, .brokenPipe: true
        default: false
        }
    }

    /// Whether the error is a bug in the calling program rather than an operating condition
    /// (`EBADF`, `EFAULT`, `ENOTSOCK`).
    public var isProgrammerError: Bool { kind == .programmerError }
}
