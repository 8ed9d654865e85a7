/// An error from parsing or building a ``SocketAddress``, ``IPv4Address`` or ``IPv6Address``.
///
/// Its ``message`` quotes the input and says what is wrong with it:
///
/// ```
/// invalid IPv4 address "01.2.3.4": octet "01" has a leading zero (write 1)
/// ```
public struct SocketAddressError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong, in portable terms.
    ///
    /// A struct rather than an enum, so that codes can be added without breaking `switch` statements.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalidSyntax, portOutOfRange, unixPathTooLong, invalidUnixPath, unknownInterface
            case unsupportedFamily, truncated
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The text is not an address in any accepted form.
        public static var invalidSyntax: Code { Code(.invalidSyntax) }
        /// The port is larger than 65535.
        public static var portOutOfRange: Code { Code(.portOutOfRange) }
        /// The Unix socket path does not fit in `sockaddr_un.sun_path` on this platform.
        public static var unixPathTooLong: Code { Code(.unixPathTooLong) }
        /// The Unix socket path contains a NUL byte.
        public static var invalidUnixPath: Code { Code(.invalidUnixPath) }
        /// The IPv6 scope names a network interface that does not exist.
        public static var unknownInterface: Code { Code(.unknownInterface) }
        /// A C socket address has a family other than IPv4, IPv6 and Unix.
        public static var unsupportedFamily: Code { Code(.unsupportedFamily) }
        /// A C socket address is shorter than its family's structure.
        public static var truncated: Code { Code(.truncated) }

        /// The code's name, such as `invalidSyntax`.
        public var description: String {
            switch wrapped {
            case .invalidSyntax: "invalidSyntax"
            case .portOutOfRange: "portOutOfRange"
            case .unixPathTooLong: "unixPathTooLong"
            case .invalidUnixPath: "invalidUnixPath"
            case .unknownInterface: "unknownInterface"
            case .unsupportedFamily: "unsupportedFamily"
            case .truncated: "truncated"
            }
        }
    }

    /// What is wrong, in portable terms.
    public var code: Code

    /// A sentence for a person that quotes the input and says what is wrong with it.
    public var message: String

    /// Creates an address error.
    ///
    /// - Parameters:
    ///   - code: What is wrong.
    ///   - message: The sentence for a person.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The ``message``.
    public var description: String {
        message
    }
}
