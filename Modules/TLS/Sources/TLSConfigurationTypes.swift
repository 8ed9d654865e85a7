import CStrataMbedTLS

/// A certificate chain and its private key, in PEM.
///
/// The chain starts with the leaf and may carry intermediates after it (never the root).
/// Loaded and checked when a ``TLSConfiguration`` is created: an unreadable file, a key that
/// does not match the certificate, an expired or not yet valid certificate, an RSA key under
/// 2048 bits or a SHA-1 signature on the leaf are errors that name the file and the fix.
public struct TLSIdentity: Sendable {
    enum Source: Sendable {
        case files(chain: String, key: String)
        case pem(chain: [UInt8], key: [UInt8])
    }
    let source: Source

    /// A chain and key read from PEM files.
    public static func pemFiles(certificateChain: String, privateKey: String) -> TLSIdentity {
        TLSIdentity(source: .files(chain: certificateChain, key: privateKey))
    }

    /// A chain and key given as PEM bytes.
    public static func pem(certificateChain: [UInt8], privateKey: [UInt8]) -> TLSIdentity {
        TLSIdentity(source: .pem(chain: certificateChain, key: privateKey))
    }

    var chainLabel: String {
        switch source {
        case .files(let chain, _): return chain
        case .pem: return "certificate chain (PEM bytes)"
        }
    }

    var keyLabel: String {
        switch source {
        case .files(_, let key): return key
        case .pem: return "private key (PEM bytes)"
        }
    }
}

/// The certificates a peer's chain must lead to.
public enum TLSTrustRoots: Sendable {
    /// The system's bundle (Debian: /etc/ssl/certs/ca-certificates.crt, from the
    /// ca-certificates package).
    case systemDefault
    /// A PEM file of one or more CA certificates.
    case file(String)
    /// A directory of PEM or DER CA certificates (every file in it is read).
    case directory(String)
    /// PEM bytes of one or more CA certificates.
    case pem([UInt8])

    /// Where `systemDefault` looks, in order (the first that exists is used).
    public static let systemBundlePaths = [
        "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Alpine
        "/etc/pki/tls/certs/ca-bundle.crt",  // Fedora, RHEL
        "/etc/ssl/cert.pem",  // macOS, FreeBSD, OpenBSD
    ]
}

/// Whether a server asks clients for a certificate.
public enum TLSClientAuthentication: Sendable {
    /// No client certificate is requested.
    case none
    /// Every client must present a certificate that chains to `trustRoots` (mutual TLS);
    /// a client without one, or with one that fails verification, is refused.
    case required(trustRoots: TLSTrustRoots)
}

/// A TLS 1.2 cipher suite Strata offers: ECDHE key exchange (forward secrecy) with an AEAD
/// cipher only. CBC, static RSA, static ECDH, DHE and PSK suites cannot be expressed.
public struct TLSCipherSuite: Sendable, Hashable, CustomStringConvertible {
    /// The IANA/mbedTLS name, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256".
    public let name: String

    private init(_ name: String) { self.name = name }

    /// ECDHE-ECDSA with AES-128-GCM (the benchmarks' suite).
    public static let ecdheECDSAWithAES128GCMSHA256 = TLSCipherSuite("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
    /// ECDHE-ECDSA with AES-256-GCM.
    public static let ecdheECDSAWithAES256GCMSHA384 = TLSCipherSuite("TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384")
    /// ECDHE-ECDSA with ChaCha20-Poly1305.
    public static let ecdheECDSAWithChaCha20Poly1305SHA256 = TLSCipherSuite("TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256")
    /// ECDHE-RSA with AES-128-GCM.
    public static let ecdheRSAWithAES128GCMSHA256 = TLSCipherSuite("TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256")
    /// ECDHE-RSA with AES-256-GCM.
    public static let ecdheRSAWithAES256GCMSHA384 = TLSCipherSuite("TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384")
    /// ECDHE-RSA with ChaCha20-Poly1305.
    public static let ecdheRSAWithChaCha20Poly1305SHA256 = TLSCipherSuite("TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256")

    /// Every suite above, in the server's order of preference. Suites the mbedTLS build
    /// lacks are dropped when a configuration is created.
    public static let defaults: [TLSCipherSuite] = [
        .ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256,
        .ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithAES256GCMSHA384, .ecdheRSAWithChaCha20Poly1305SHA256,
    ]

    /// The suite's name.
    public var description: String { name }

    /// mbedTLS's id for the suite, or 0 when the build lacks it.
    var mbedID: Int32 { mbedtls_ssl_get_ciphersuite_id(name) }
}

/// An elliptic curve for ECDHE (and for ECDSA certificates).
public enum TLSCurve: Sendable, Hashable {
    /// Curve25519 (ECDHE only).
    case x25519
    /// NIST P-256 (secp256r1).
    case p256
    /// NIST P-384 (secp384r1).
    case p384

    var groupID: mbedtls_ecp_group_id {
        switch self {
        case .x25519: return MBEDTLS_ECP_DP_CURVE25519
        case .p256: return MBEDTLS_ECP_DP_SECP256R1
        case .p384: return MBEDTLS_ECP_DP_SECP384R1
        }
    }
}

/// Settings shared by servers and clients. The defaults are the secure ones; nothing here
/// can turn verification off or admit a protocol below TLS 1.2.
public struct TLSOptions: Sendable {
    /// How long a handshake may take, from when it starts (``TLSConnection``'s accept or
    /// connect, ``TLSEventsStream/start()``), before the connection is closed.
    public var handshakeTimeout: Duration = .seconds(10)
    /// The suites offered (client) or accepted (server), in order of preference. Only
    /// ECDHE + AEAD suites exist in ``TLSCipherSuite``.
    public var cipherSuites: [TLSCipherSuite] = TLSCipherSuite.defaults
    /// The ECDHE curves, in order of preference.
    public var curves: [TLSCurve] = [.x25519, .p256, .p384]
    /// Servers: issue session tickets (RFC 5077) whose encryption keys rotate every
    /// `ticketKeyLifetime`. Clients: present tickets from earlier sessions to the same host.
    public var sessionTickets = true
    /// Servers: the lifetime of a ticket (mbedTLS refuses a ticket whose session is older)
    /// and how long each ticket key is used before the next one replaces it (the previous
    /// key still decrypts for one more period); clients: ignored.
    public var ticketKeyLifetime: Duration = .seconds(12 * 3600)
    /// Servers: sessions kept for session-ID resumption (0 disables it). Clients: sessions
    /// kept for reuse, one per host.
    public var sessionCacheSize = 10_000
    /// Servers: how long a cached session may be resumed by ID.
    public var sessionCacheTimeout: Duration = .seconds(3600)

    /// The defaults.
    public init() {}
}
