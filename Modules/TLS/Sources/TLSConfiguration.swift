import CStrataMbedTLS
import StrataThreads

/// An immutable, validated TLS configuration, shared by every connection that uses it.
///
/// Creating one loads and checks everything (files, keys, lists) and builds the mbedTLS
/// contexts behind it, each allocated once on the heap and never moved: the
/// `mbedtls_ssl_config`, certificates, keys, trust roots, the random generator (CTR-DRBG
/// over the system entropy), the session-ticket keys and cache, and the storage of every
/// list mbedTLS keeps by pointer (ALPN names, cipher suites, curves, signature hashes, the
/// X.509 profile). Sessions retain their configuration, so it outlives them.
///
/// What every configuration enforces, with no API to weaken it:
/// - TLS 1.2 only (SSLv3, TLS 1.0 and 1.1 are refused; mbedTLS 2.28's default minimum is 1.0);
/// - ECDHE with AES-GCM or ChaCha20-Poly1305 only (mbedTLS's default list has CBC,
///   static-RSA, static-ECDH and PSK suites);
/// - curves X25519, P-256, P-384 (the default list has 192-bit curves);
/// - SHA-256/384/512 signatures, RSA of at least 2048 bits;
/// - renegotiation disabled;
/// - clients verify the server with `MBEDTLS_SSL_VERIFY_REQUIRED` against the name given to
///   the session, by Strata's own RFC 6125 check (see ``TLSSession``).
///
/// Thread safety: mbedTLS is built with `MBEDTLS_THREADING_C`, so the shared DRBG, ticket
/// keys and session cache take their own locks; the rest is read-only after creation.
public final class TLSConfiguration: @unchecked Sendable {
    /// Which side of the handshake sessions from this configuration take.
    public enum Role: Sendable { case server, client }

    /// Server or client.
    public let role: Role
    /// The handshake deadline, from ``TLSOptions/handshakeTimeout``.
    public let handshakeTimeout: Duration
    /// The ALPN protocol names offered (client) or accepted (server), in preference order.
    public let alpn: [String]
    /// The cipher suites in effect (the requested ones this mbedTLS build has).
    public let cipherSuites: [TLSCipherSuite]
    /// Servers: whether clients must present a certificate.
    public let requiresClientCertificate: Bool

    let conf: UnsafeMutablePointer<mbedtls_ssl_config>
    private let entropy: UnsafeMutablePointer<mbedtls_entropy_context>
    let drbg: UnsafeMutablePointer<mbedtls_ctr_drbg_context>
    private var ticket: UnsafeMutablePointer<mbedtls_ssl_ticket_context>?
    private var cache: UnsafeMutablePointer<mbedtls_ssl_cache_context>?
    private let profile: UnsafeMutablePointer<mbedtls_x509_crt_profile>
    private let suiteList: UnsafeMutablePointer<Int32>
    private let curveList: UnsafeMutablePointer<mbedtls_ecp_group_id>
    private let hashList: UnsafeMutablePointer<Int32>
    private var alpnList: UnsafeMutablePointer<UnsafePointer<CChar>?>?
    private var alpnStrings: [UnsafeMutablePointer<CChar>] = []
    let identities: [LoadedIdentity]
    private var trust: CertificateChain?
    let clientSessions: ClientSessionCache?

    /// A server configuration.
    ///
    /// - Parameters:
    ///   - identity: The default certificate chain and key.
    ///   - sniIdentities: More chains, chosen by the client's SNI name against each leaf's
    ///     subjectAltName (exact names first, then wildcards); a client without SNI, or with
    ///     a name none of them covers, gets `identity`.
    ///   - clientAuthentication: `.required(trustRoots:)` for mutual TLS.
    ///   - alpn: Protocols accepted, in the server's preference order (e.g. `["http/1.1"]`).
    ///     A client offering ALPN with none in common is refused (no_application_protocol).
    ///   - options: Timeouts, suites, curves, tickets and caches.
    /// - Throws: ``TLSError`` of kind `.configuration`, naming the file or field and the fix.
    public static func server(identity: TLSIdentity, sniIdentities: [TLSIdentity] = [],
                              clientAuthentication: TLSClientAuthentication = .none,
                              alpn: [String] = [], options: TLSOptions = TLSOptions()) throws(TLSError) -> TLSConfiguration {
        var loaded = [try LoadedIdentity(identity)]
        for extra in sniIdentities { loaded.append(try LoadedIdentity(extra)) }
        var trust: CertificateChain?
        if case .required(let roots) = clientAuthentication { trust = try loadTrustRoots(roots) }
        return try TLSConfiguration(role: .server, identities: loaded, trust: trust, alpn: alpn, options: options)
    }

    /// A server whose own certificate is not checked against the policy (tests only: a
    /// server with an expired or weak certificate, to show that clients refuse it).
    static func serverSkippingOwnCertificatePolicy(identity: TLSIdentity, options: TLSOptions = TLSOptions()) throws(TLSError) -> TLSConfiguration {
        try TLSConfiguration(role: .server, identities: [try LoadedIdentity(identity, enforcePolicy: false)], trust: nil,
                             alpn: [], options: options)
    }

    /// A client configuration. Clients always verify the server: its chain must lead to
    /// `trustRoots`, be within its validity dates, pass the key-usage, signature and key-size
    /// policy, and name the host given to ``TLSSession/init(client:serverName:)``.
    ///
    /// - Parameters:
    ///   - trustRoots: The CAs to trust; the system bundle by default.
    ///   - identity: A client certificate for servers that require one.
    ///   - alpn: Protocols offered, in preference order.
    ///   - options: Timeouts, suites, curves, tickets and the session cache.
    /// - Throws: ``TLSError`` of kind `.configuration`, naming the file or field and the fix.
    public static func client(trustRoots: TLSTrustRoots = .systemDefault, identity: TLSIdentity? = nil,
                              alpn: [String] = [], options: TLSOptions = TLSOptions()) throws(TLSError) -> TLSConfiguration {
        let trust = try loadTrustRoots(trustRoots)
        var loaded: [LoadedIdentity] = []
        if let identity { loaded.append(try LoadedIdentity(identity)) }
        return try TLSConfiguration(role: .client, identities: loaded, trust: trust, alpn: alpn, options: options)
    }

    private init(role: Role, identities: [LoadedIdentity], trust: CertificateChain?, alpn: [String],
                 options: TLSOptions) throws(TLSError) {
        self.role = role
        self.identities = identities
        self.trust = trust
        self.alpn = alpn
        self.handshakeTimeout = options.handshakeTimeout
        self.requiresClientCertificate = role == .server && trust != nil
        self.clientSessions = role == .client && options.sessionCacheSize > 0 ? ClientSessionCache(capacity: options.sessionCacheSize) : nil

        // Validate the plain fields before touching mbedTLS.
        guard options.handshakeTimeout > .zero else {
            throw TLSError(.configuration, message: "TLSOptions.handshakeTimeout must be positive (default 10 s)")
        }
        let suites = options.cipherSuites.filter { $0.mbedID != 0 }
        guard !suites.isEmpty else {
            throw TLSError(.configuration, message: "TLSOptions.cipherSuites: none of \(options.cipherSuites) is available in this mbedTLS build — use TLSCipherSuite.defaults")
        }
        self.cipherSuites = suites
        guard !options.curves.isEmpty else {
            throw TLSError(.configuration, message: "TLSOptions.curves is empty — use [.x25519, .p256, .p384]")
        }
        for name in alpn where name.utf8.isEmpty || name.utf8.count > 255 {
            throw TLSError(.configuration, message: "ALPN protocol name \"\(name)\" must be 1 to 255 bytes")
        }
        let lifetimeSeconds = options.ticketKeyLifetime.components.seconds
        guard !options.sessionTickets || (lifetimeSeconds >= 60 && lifetimeSeconds <= 7 * 86400) else {
            throw TLSError(.configuration, message: "TLSOptions.ticketKeyLifetime must be between 1 minute and 7 days (default 12 h)")
        }

        // Heap-pinned contexts and lists (mbedTLS keeps pointers to all of them).
        conf = .allocate(capacity: 1)
        mbedtls_ssl_config_init(conf)
        entropy = .allocate(capacity: 1)
        mbedtls_entropy_init(entropy)
        drbg = .allocate(capacity: 1)
        mbedtls_ctr_drbg_init(drbg)
        profile = .allocate(capacity: 1)
        profile.initialize(to: strataCertificateProfile())
        suiteList = .allocate(capacity: suites.count + 1)
        for (i, s) in suites.enumerated() { suiteList[i] = s.mbedID }
        suiteList[suites.count] = 0
        var curves: [TLSCurve] = []
        for c in options.curves where !curves.contains(c) { curves.append(c) }
        curveList = .allocate(capacity: curves.count + 1)
        for (i, c) in curves.enumerated() { curveList[i] = c.groupID }
        curveList[curves.count] = MBEDTLS_ECP_DP_NONE
        let hashes = [MBEDTLS_MD_SHA512, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA256].map { Int32($0.rawValue) }
        hashList = .allocate(capacity: hashes.count + 1)
        for (i, h) in hashes.enumerated() { hashList[i] = h }
        hashList[hashes.count] = Int32(MBEDTLS_MD_NONE.rawValue)

        let personalization = Array("strata-tls".utf8)
        try check(personalization.withUnsafeBufferPointer { p in
            mbed("mbedtls_ctr_drbg_seed") { mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, entropy, p.baseAddress, p.count) }
        }, "mbedtls_ctr_drbg_seed", "cannot seed the random generator from the system's entropy")
        try check(mbed("mbedtls_ssl_config_defaults") {
            mbedtls_ssl_config_defaults(conf, role == .server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)
        }, "mbedtls_ssl_config_defaults", "cannot initialise the TLS configuration")
        mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, drbg)
        mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3)
        mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3)
        mbedtls_ssl_conf_ciphersuites(conf, suiteList)
        mbedtls_ssl_conf_curves(conf, curveList)
        mbedtls_ssl_conf_sig_hashes(conf, hashList)
        mbedtls_ssl_conf_cert_profile(conf, profile)
        mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED)
        mbedtls_ssl_conf_extended_master_secret(conf, CChar(MBEDTLS_SSL_EXTENDED_MS_ENABLED))
        mbedtls_ssl_conf_dhm_min_bitlen(conf, 2048)
        mbedtls_ssl_conf_session_tickets(conf, options.sessionTickets ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED : MBEDTLS_SSL_SESSION_TICKETS_DISABLED)

        for identity in identities.prefix(role == .server ? 1 : identities.count) {
            try check(mbed("mbedtls_ssl_conf_own_cert") { mbedtls_ssl_conf_own_cert(conf, identity.chain.crt, identity.key) },
                      "mbedtls_ssl_conf_own_cert", "cannot use the certificate \(identity.label)")
        }
        if let trust {
            mbedtls_ssl_conf_ca_chain(conf, trust.crt, nil)
        }
        switch role {
        case .client:
            mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED)
        case .server:
            mbedtls_ssl_conf_authmode(conf, trust == nil ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED)
            mbedtls_ssl_conf_sni(conf, sniCallback, Unmanaged.passUnretained(self).toOpaque())
            if options.sessionTickets {
                let t = UnsafeMutablePointer<mbedtls_ssl_ticket_context>.allocate(capacity: 1)
                mbedtls_ssl_ticket_init(t)
                ticket = t
                try check(mbed("mbedtls_ssl_ticket_setup") {
                    mbedtls_ssl_ticket_setup(t, mbedtls_ctr_drbg_random, drbg, MBEDTLS_CIPHER_AES_256_GCM, UInt32(lifetimeSeconds))
                }, "mbedtls_ssl_ticket_setup", "cannot set up session-ticket keys")
                mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, t)
            }
            if options.sessionCacheSize > 0 {
                let c = UnsafeMutablePointer<mbedtls_ssl_cache_context>.allocate(capacity: 1)
                mbedtls_ssl_cache_init(c)
                mbedtls_ssl_cache_set_max_entries(c, Int32(clamping: options.sessionCacheSize))
                mbedtls_ssl_cache_set_timeout(c, Int32(clamping: options.sessionCacheTimeout.components.seconds))
                cache = c
                mbedtls_ssl_conf_session_cache(conf, c, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set)
            }
        }
        if !alpn.isEmpty {
            let list = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: alpn.count + 1)
            for (i, name) in alpn.enumerated() {
                let s = strdupSwift(name)
                alpnStrings.append(s)
                list[i] = UnsafePointer(s)
            }
            list[alpn.count] = nil
            alpnList = list
            try check(mbed("mbedtls_ssl_conf_alpn_protocols") { mbedtls_ssl_conf_alpn_protocols(conf, list) },
                      "mbedtls_ssl_conf_alpn_protocols", "cannot set the ALPN list \(alpn)")
        }
    }

    deinit {
        mbedtls_ssl_config_free(conf)
        conf.deallocate()
        if let ticket {
            mbedtls_ssl_ticket_free(ticket)
            ticket.deallocate()
        }
        if let cache {
            mbedtls_ssl_cache_free(cache)
            cache.deallocate()
        }
        mbedtls_ctr_drbg_free(drbg)
        drbg.deallocate()
        mbedtls_entropy_free(entropy)
        entropy.deallocate()
        profile.deallocate()
        suiteList.deallocate()
        curveList.deallocate()
        hashList.deallocate()
        alpnList?.deallocate()
        for s in alpnStrings { s.deallocate() }
    }

    /// The identities whose leaf covers `name` (exact names before wildcards).
    func identities(for name: String) -> [LoadedIdentity] {
        let lower = name.lowercased()
        let exact = identities.filter { $0.names.dns.contains(lower) }
        if !exact.isEmpty { return exact }
        return identities.filter { HostnameMatch.matches($0.names, host: lower) }
    }
}

/// Throws for a failed configuration call.
private func check(_ rc: Int32, _ operation: String, _ message: String) throws(TLSError) {
    if rc != 0 { throw TLSError(rc == MBEDTLS_ERR_SSL_ALLOC_FAILED ? .library : .configuration, code: rc, operation: operation, message: message) }
}

/// A NUL-terminated copy of `s` that the caller frees with `deallocate()`.
func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar> {
    let utf8 = Array(s.utf8)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
    for (i, b) in utf8.enumerated() { p[i] = CChar(bitPattern: b) }
    p[utf8.count] = 0
    return p
}

/// mbedTLS's SNI callback: `name` is `len` bytes, not NUL-terminated.
private let sniCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<mbedtls_ssl_context>?,
                                         UnsafePointer<UInt8>?, Int) -> Int32 = { context, ssl, name, len in
    guard let context, let ssl, let name, len > 0, len <= 255 else { return 0 }
    let config = Unmanaged<TLSConfiguration>.fromOpaque(context).takeUnretainedValue()
    let host = String(decoding: UnsafeBufferPointer(start: name, count: len), as: UTF8.self)
    if let io = ssl.pointee.p_bio {
        Unmanaged<SessionIO>.fromOpaque(io).takeUnretainedValue().requestedServerName = host
    }
    for identity in config.identities(for: host) {
        let rc = mbed("mbedtls_ssl_set_hs_own_cert") { mbedtls_ssl_set_hs_own_cert(ssl, identity.chain.crt, identity.key) }
        if rc != 0 { return rc }
    }
    return 0  // no match: the default identity
}

/// Client sessions kept for resumption, one per host key, bounded.
final class ClientSessionCache: @unchecked Sendable {
    final class Entry: @unchecked Sendable {
        let session: UnsafeMutablePointer<mbedtls_ssl_session>
        init() {
            session = .allocate(capacity: 1)
            mbedtls_ssl_session_init(session)
        }
        deinit {
            mbedtls_ssl_session_free(session)
            session.deallocate()
        }
    }
    private let capacity: Int
    private let state = LockedValue<(entries: [String: Entry], order: [String])>(([:], []))

    init(capacity: Int) { self.capacity = capacity }

    func store(_ entry: Entry, for key: String) {
        state.withLock { s in
            if s.entries.updateValue(entry, forKey: key) == nil { s.order.append(key) }
            while s.order.count > capacity { s.entries.removeValue(forKey: s.order.removeFirst()) }
        }
    }

    func entry(for key: String) -> Entry? { state.withLock { $0.entries[key] } }

    func remove(_ key: String) { state.withLock { _ = $0.entries.removeValue(forKey: key) } }
}
