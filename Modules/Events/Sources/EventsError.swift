import StrataSockets

/// An error of the Events module: what failed, why, and how to fix it.
public struct EventsError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: Hashable, Sendable {
            case backendUnavailable, invalidConfiguration, systemCall, resourceExhausted, invalidState
        }
        let value: Value
        /// A requested backend cannot run here (kernel, sysctl, seccomp, platform).
        public static let backendUnavailable = Code(value: .backendUnavailable)
        /// A configuration value is out of range or unknown.
        public static let invalidConfiguration = Code(value: .invalidConfiguration)
        /// A system call failed in a way the loop cannot recover from.
        public static let systemCall = Code(value: .systemCall)
        /// A fixed-size resource (ring entries, buffer groups, operation slots) ran out.
        public static let resourceExhausted = Code(value: .resourceExhausted)
        /// The call is not allowed now (for example on a closed loop).
        public static let invalidState = Code(value: .invalidState)
        /// The code's name.
        public var description: String { "\(value)" }
    }

    /// The kind of failure.
    public let code: Code
    /// The whole message: cause and fix.
    public let message: String
    /// The failing system call and its errno, when there is one.
    public let cause: SystemCallError?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: SystemCallError? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The message.
    public var description: String { message }
}
