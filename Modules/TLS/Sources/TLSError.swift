import CStrataMbedTLS

/// A TLS failure: what went wrong, mbedTLS's code and text, and for certificate
/// verification the decoded reasons.
///
/// Every mbedTLS call the module makes returns through one check: a code other than
/// success (or the two "want more I/O" codes where the call allows them) becomes a
/// `TLSError`; nothing returns success for a non-success code. Errors raised by a
/// ``TLSSession`` are sticky: after the first one, every call on the session throws it
/// again.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of failure, for code that branches on it. A struct rather than an enum, so
    /// that a later release can add kinds without breaking callers' `switch` statements
    /// (match with `case .verification:` and keep a `default:`).
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// The kind's name.
        public let description: String
        private init(_ name: String) { description = name }

        /// The configuration is wrong (a file, a key, a list): fix it and create it again.
        public static let configuration = Kind("configuration")
        /// The peer's certificate (chain) failed verification; ``TLSError/reasons`` says why.
        public static let verification = Kind("verification")
        /// The handshake failed (no common version, suite or curve; an alert from the peer;
        /// a malformed handshake message; the peer closed during the handshake).
        public static let handshake = Kind("handshake")
        /// The peer sent something that is not valid TLS after the handshake (a corrupted or
        /// forged record, an unexpected message).
        public static let protocolViolation = Kind("protocolViolation")
        /// The peer ended the stream without close_notify: the data may have been cut short
        /// by an attacker, so it must not be treated as a complete message.
        public static let truncated = Kind("truncated")
        /// The session is closed (by us, or by the peer's close_notify), or not yet open
        /// (a write before the handshake completed), and cannot carry data.
        public static let closed = Kind("closed")
        /// The handshake did not finish within the configured timeout.
        public static let handshakeTimeout = Kind("handshakeTimeout")
        /// mbedTLS failed in a way that is not the peer's fault (out of memory, a random
        /// generator failure, an internal error).
        public static let library = Kind("library")
    }

    /// The class of failure.
    public var kind: Kind
    /// mbedTLS's return code (negative), or 0 when the failure did not come from mbedTLS.
    public var code: Int32
    /// The mbedTLS function that returned `code` (empty when none did).
    public var operation: String
    /// mbedTLS's own text for `code` (`mbedtls_strerror`), empty for code 0.
    public var libraryText: String
    /// For ``Kind/verification``: one entry per reason, e.g. "certificate expired",
    /// "hostname mismatch: wanted api.example.com, certificate names *.example.org".
    public var reasons: [String]
    /// What happened and what to do, in one line.
    public var message: String

    /// Creates an error. Most errors come from the module; this is public for transports
    /// and tests that need to report TLS failures of their own.
    public init(_ kind: Kind, code: Int32 = 0, operation: String = "", reasons: [String] = [], message: String) {
        self.kind = kind
        self.code = code
        self.operation = operation
        self.libraryText = code == 0 ? "" : TLSError.text(for: code)
        self.reasons = reasons
        self.message = message
    }

    /// One line: the message, then mbedTLS's code and text.
    public var description: String {
        var s = message
        if !reasons.isEmpty && !message.contains(reasons[0]) { s += ": " + reasons.joined(separator: "; ") }
        if code != 0 {
            s += " [\(operation.isEmpty ? "mbedTLS" : operation) -0x\(String(-Int(code), radix: 16, uppercase: true)): \(libraryText)]"
        }
        return s
    }

    /// mbedTLS's text for a return code.
    public static func text(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        buffer.withUnsafeMutableBufferPointer { mbedtls_strerror(code, $0.baseAddress, $0.count) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension TLSError {
    /// Classifies a failed mbedTLS call made during or after a handshake.
    static func from(code: Int32, operation: String, handshakeDone: Bool) -> TLSError {
        let kind: Kind
        let message: String
        switch code {
        case MBEDTLS_ERR_SSL_ALLOC_FAILED, MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED, MBEDTLS_ERR_SSL_INTERNAL_ERROR,
             MBEDTLS_ERR_SSL_BAD_INPUT_DATA, MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE, MBEDTLS_ERR_SSL_HW_ACCEL_FAILED:
            kind = .library
            message = "TLS library failure in \(operation)"
        case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
            kind = .closed
            message = "the peer closed the TLS session (close_notify)"
        case MBEDTLS_ERR_SSL_CONN_EOF:
            kind = .truncated
            message = "the peer closed the connection without close_notify: the data may be truncated"
        case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
            kind = handshakeDone ? .protocolViolation : .handshake
            message = "the peer sent a fatal alert"
        case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN:
            kind = .handshake
            message = "no cipher suite in common with the peer (Strata offers only ECDHE with AES-GCM or ChaCha20-Poly1305)"
        case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
            kind = .handshake
            message = "the peer does not speak TLS 1.2 (SSLv3, TLS 1.0 and TLS 1.1 are refused)"
        case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
            kind = .handshake
            message = "no usable cipher suite for this certificate and the peer's offer"
        case MBEDTLS_ERR_SSL_INVALID_MAC:
            kind = handshakeDone ? .protocolViolation : .handshake
            message = "a TLS record failed authentication (corrupted or forged)"
        case MBEDTLS_ERR_SSL_INVALID_RECORD, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
             MBEDTLS_ERR_SSL_UNEXPECTED_RECORD, MBEDTLS_ERR_SSL_COUNTER_WRAPPING:
            kind = handshakeDone ? .protocolViolation : .handshake
            message = "the peer sent invalid TLS"
        case MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
            kind = .verification
            message = "certificate verification failed"
        case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE, MBEDTLS_ERR_SSL_CERTIFICATE_REQUIRED:
            kind = .verification
            message = "the peer sent no certificate, and one is required"
        default:
            kind = handshakeDone ? .protocolViolation : .handshake
            message = handshakeDone ? "TLS failure" : "TLS handshake failed"
        }
        return TLSError(kind, code: code, operation: operation, message: message)
    }
}

