#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error of StrataThreads: what happened, how to fix it, and the failing call with its errno.
///
/// Every pthread or system call that can fail for reasons outside the program's control
/// (`pthread_create` under `RLIMIT_NPROC`, `pthread_setaffinity_np` with an offline CPU)
/// surfaces here with the call's name and the errno's symbolic name:
///
///     Thread.spawn(name: "io-0"): cannot create the thread; pthread_create: EAGAIN (11): Resource temporarily unavailable
///
/// Calls that fail only when the program breaks a locking rule (unlocking a mutex it does not
/// hold) do not throw: they stop the process with the same description (see ``Mutex``).
public struct ThreadsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. A struct, not an enum, so that new codes are not a breaking change.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case systemCallFailed
            case invalidArgument
            case unsupported
            case queueFull
            case shutDown
        }

        let kind: Kind

        /// A pthread or system call failed; ``ThreadsError/call`` and ``ThreadsError/errnoCode`` say which and why.
        public static var systemCallFailed: Code { Code(kind: .systemCallFailed) }
        /// An argument was out of range (a zero worker count, a thread name containing NUL).
        public static var invalidArgument: Code { Code(kind: .invalidArgument) }
        /// The operation does not exist on this platform (CPU affinity outside Linux).
        public static var unsupported: Code { Code(kind: .unsupported) }
        /// A ``ThreadPool`` with the ``ThreadPool/FullQueuePolicy/reject`` policy had no room for more work.
        public static var queueFull: Code { Code(kind: .queueFull) }
        /// The ``ThreadPool`` is shutting down or has shut down and accepts no more work.
        public static var shutDown: Code { Code(kind: .shutDown) }

        /// The code's name (`queueFull`).
        public var description: String {
            switch kind {
            case .systemCallFailed: return "systemCallFailed"
            case .invalidArgument: return "invalidArgument"
            case .unsupported: return "unsupported"
            case .queueFull: return "queueFull"
            case .shutDown: return "shutDown"
            }
        }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened and how it may be remedied, naming the operation that failed.
    public let message: String
    /// The C function that failed (`pthread_create`), or nil when no call was involved.
    public let call: String?
    /// The errno value the call reported, or nil when no call was involved.
    public let errnoCode: CInt?

    /// Creates an error. Library code uses the factory functions; this is public for tests and adapters.
    ///
    /// - Parameters:
    ///   - code: What kind of failure this is.
    ///   - message: What happened and how it may be remedied.
    ///   - call: The C function that failed, if any.
    ///   - errnoCode: The errno value it reported, if any.
    public init(code: Code, message: String, call: String? = nil, errnoCode: CInt? = nil) {
        self.code = code
        self.message = message
        self.call = call
        self.errnoCode = errnoCode
    }

    /// The symbolic name of ``errnoCode`` on this platform (`EAGAIN`), or nil.
    public var errnoName: String? {
        guard let errnoCode else { return nil }
        return StrataThreads.errnoName(errnoCode)
    }

    /// The message, then the failing call and its errno: `…; pthread_create: EAGAIN (11): Resource temporarily unavailable`.
    public var description: String {
        guard let call, let errnoCode else { return message }
        return "\(message); \(call): \(describeErrno(errnoCode))"
    }

    /// The symbolic name of an errno value on this platform (`EAGAIN` for 11 on Linux, 35 on Darwin), or nil.
    ///
    /// Where two names share a value on the platform (`EWOULDBLOCK` and `EAGAIN`), the
    /// POSIX-preferred one is returned.
    ///
    /// - Parameter code: An errno value.
    /// - Returns: The name, or nil for a value this platform does not define.
    public static func name(ofErrno code: CInt) -> String? {
        StrataThreads.errnoName(code)
    }

    /// An error for a pthread call that returned an error number.
    static func systemCall(_ call: String, _ code: CInt, _ message: String) -> ThreadsError {
        ThreadsError(code: .systemCallFailed, message: message, call: call, errnoCode: code)
    }
}
