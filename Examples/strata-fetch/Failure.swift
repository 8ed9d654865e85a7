// Why a fetch failed: curl's exit code for the class of failure, and one line of text.

/// The exit statuses, curl's where the two overlap (`man curl`, "EXIT CODES").
enum Exit {
    /// The session was verified (https) and the response arrived complete.
    static let ok: Int32 = 0
    /// Unsupported protocol (a scheme other than http or https).
    static let unsupportedProtocol: Int32 = 1
    /// Failed to initialize (curl's 2): bad usage (an unknown option, a missing or malformed
    /// value, --insecure), or the event loop could not start.
    static let usage: Int32 = 2
    /// Malformed URL.
    static let malformedURL: Int32 = 3
    /// The host name could not be resolved.
    static let couldNotResolve: Int32 = 6
    /// No address of the host accepted the connection.
    static let couldNotConnect: Int32 = 7
    /// The server's reply is not a valid HTTP/1.x response head.
    static let weirdServerReply: Int32 = 8
    /// The transfer ended before the response was complete.
    static let partialFile: Int32 = 18
    /// --fail and an HTTP status of 400 or more.
    static let httpError: Int32 = 22
    /// Writing the body (stdout or -o FILE) failed.
    static let writeError: Int32 = 23
    /// Reading the --data-binary @FILE (or -d @FILE) failed.
    static let readError: Int32 = 26
    /// --connect-timeout or --max-time expired.
    static let timedOut: Int32 = 28
    /// The TLS handshake failed (including its timeout).
    static let tlsHandshake: Int32 = 35
    /// The connection ended before any byte of a response.
    static let emptyReply: Int32 = 52
    /// Sending the request failed.
    static let sendError: Int32 = 55
    /// Receiving the response failed (reset, invalid TLS record, bad chunked encoding).
    static let receiveError: Int32 = 56
    /// The client certificate or key (--cert, --key) could not be used.
    static let clientCertificate: Int32 = 58
    /// The server's certificate failed verification.
    static let peerVerification: Int32 = 60
    /// The response uses a transfer coding other than chunked.
    static let badContentEncoding: Int32 = 61
    /// The CA certificates (--cacert, --capath, the system bundle) could not be read.
    static let caCertificate: Int32 = 77
}

/// A failure: the exit status and the reason (one line, printed after "strata-fetch: URL: ").
struct FetchFailure: Error, Sendable {
    var code: Int32
    var reason: String

    init(_ code: Int32, _ reason: String) {
        self.code = code
        self.reason = reason
    }
}
