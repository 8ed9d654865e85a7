#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets

/// An error from the Sched runtime: what failed, why, and what to do about it.
public struct SchedError: Error, Sendable, CustomStringConvertible {
    /// A category of failure, stable for matching.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String
        /// The requested backend cannot run here (the message says why).
        public static let backendUnavailable = Code(name: "backendUnavailable")
        /// A configuration value is invalid (the message names it and the fix).
        public static let invalidConfiguration = Code(name: "invalidConfiguration")
        /// A loop thread could not be created or pinned.
        public static let threadFailed = Code(name: "threadFailed")
        /// A system call failed (see ``SchedError/errno``).
        public static let systemCall = Code(name: "systemCall")
        /// A deadline set with ``withDeadline(_:_:)`` (or an operation's timeout) passed.
        public static let timedOut = Code(name: "timedOut")
        /// Out of descriptors, memory or buffers.
        public static let resourceExhausted = Code(name: "resourceExhausted")
        /// The connection or listener is closed (by this side).
        public static let closed = Code(name: "closed")
        /// The loop stopped.
        public static let loopStopped = Code(name: "loopStopped")
        /// A textual description.
        public var description: String { name }
    }

    /// The category.
    public let code: Code
    /// What happened, with the cause and the fix.
    public let message: String
    /// The system error behind it, if any.
    public let errno: Errno?

    /// Creates an error.
    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// A textual description (the message).
    public var description: String { message }

    static func deadlineExceeded(_ what: String) -> SchedError {
        SchedError(.timedOut, "\(what): the deadline passed before it completed", errno: .timedOut)
    }

    /// The error for a failed operation's negative result `-errno`.
    static func failed(_ what: String, _ result: Int32, address: SocketAddress? = nil) -> any Error {
        let errno = Errno(rawValue: -result)
        if result == -ECANCELED { return CancellationError() }
        if result == -ETIMEDOUT { return deadlineExceeded(what) }
        let at = address.map { " \($0)" } ?? ""
        return SchedError(.systemCall, "\(what)\(at): \(errno)\(hint(errno))", errno: errno)
    }

    private static func hint(_ errno: Errno) -> String {
        switch errno.rawValue {
        case ECONNREFUSED: " — nothing listens there; start the server or check the port"
        case ECONNRESET, EPIPE: " — the peer closed the connection"
        case EMFILE, ENFILE: " — out of file descriptors; raise `ulimit -n` or close idle connections"
        case ENOBUFS, ENOMEM: " — out of kernel memory or buffers"
        default: ""
        }
    }
}
