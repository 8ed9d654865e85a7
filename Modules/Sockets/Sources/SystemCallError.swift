/// A failed system call: its name and the error number it reported.
///
/// It is the ``SocketError/cause`` of every ``SocketError``, and keeps the raw facts apart from
/// the explanation, so that a program can log or match the exact call and errno.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The C name of the call that failed, such as `"bind"` or `"accept"`.
    public var systemCall: String

    /// The error number the call reported.
    public var errno: Errno

    /// Creates a system call error.
    ///
    /// - Parameters:
    ///   - systemCall: The C name of the call that failed.
    ///   - errno: The error number it reported.
    public init(systemCall: String, errno: Errno) {
        self.systemCall = systemCall
        self.errno = errno
    }

    /// The call and the error number: `bind: EADDRINUSE (98): Address already in use`.
    public var description: String {
        "\(systemCall): \(errno)"
    }
}
