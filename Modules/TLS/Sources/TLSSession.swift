#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataMbedTLS

/// The buffers between mbedTLS and whoever moves the ciphertext, reached from the BIO
/// callbacks (`p_bio`) and the per-session verify and SNI callbacks.
final class SessionIO {
    /// Ciphertext received and not yet consumed by mbedTLS: `input[inputOffset...]`.
    var input: [UInt8] = []
    var inputOffset = 0
    /// The transport delivered end of stream.
    var inputEOF = false
    /// Ciphertext produced by mbedTLS, to be sent.
    var output: [UInt8] = []
    /// Servers: the SNI name the client asked for.
    var requestedServerName: String?
    /// What the verify callback saw.
    var verification = VerificationRecord()
    /// Clients: the verify callback checked the leaf against the expected name.
    var leafChecked = false

    var availableInput: Int { input.count - inputOffset }
}

/// BIO send: every record goes to `output` (memory never blocks, so mbedTLS never sees
/// WANT_WRITE and never holds a partially written record that must be retried with the
/// same arguments).
private let bioSend: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int32 = { context, buffer, length in
    guard let context, let buffer else { return MBEDTLS_ERR_SSL_INTERNAL_ERROR }
    let io = Unmanaged<SessionIO>.fromOpaque(context).takeUnretainedValue()
    io.output.append(contentsOf: UnsafeBufferPointer(start: buffer, count: length))
    return Int32(clamping: length)
}

/// BIO receive: from `input`; WANT_READ when it is empty; 0 (end of stream) only after the
/// transport's EOF.
private let bioReceive: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int) -> Int32 = { context, buffer, length in
    guard let context, let buffer else { return MBEDTLS_ERR_SSL_INTERNAL_ERROR }
    let io = Unmanaged<SessionIO>.fromOpaque(context).takeUnretainedValue()
    let available = io.availableInput
    if available == 0 { return io.inputEOF ? 0 : MBEDTLS_ERR_SSL_WANT_READ }
    let n = min(available, length)
    io.input.withUnsafeBufferPointer { src in
        buffer.update(from: src.baseAddress! + io.inputOffset, count: n)
    }
    io.inputOffset += n
    if io.inputOffset == io.input.count {
        io.inputOffset = 0
        io.input.removeAll(keepingCapacity: io.input.capacity <= 64 * 1024)
    }
    return Int32(n)
}

/// The per-session verify callback: records every certificate's flags for the error text,
/// and on clients replaces mbedTLS's hostname verdict with Strata's RFC 6125 check
/// (``HostnameMatch``): subjectAltName only, strict wildcards, iPAddress names for IP literals.
private let verifyCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<mbedtls_x509_crt>?, Int32,
                                            UnsafeMutablePointer<UInt32>?) -> Int32 = { context, crt, depth, flags in
    guard let context, let crt, let flags else { return MBEDTLS_ERR_X509_FATAL_ERROR }
    let io = Unmanaged<SessionIO>.fromOpaque(context).takeUnretainedValue()
    if depth == 0 {
        io.verification.leafNames = CertificateNames(crt)
        if let host = io.verification.expectedHost {
            let mismatch = UInt32(bitPattern: MBEDTLS_X509_BADCERT_CN_MISMATCH)
            flags.pointee &= ~mismatch
            if !HostnameMatch.matches(io.verification.leafNames, host: host) { flags.pointee |= mismatch }
            io.leafChecked = true
        }
    }
    io.verification.entries.append((depth, subjectText(crt), flags.pointee))
    return 0
}

/// A TLS 1.2 session as a sans-I/O state machine: ciphertext in, plaintext out; plaintext
/// in, ciphertext out. It never touches a socket, so it runs the same over Sched, over
/// Events callbacks, in a test or in a fuzzer.
///
/// Drive it like this: ``feed(_:)`` what the transport received (``feedEndOfStream()`` at
/// EOF), call ``handshake()`` until it returns true, then ``read(into:)`` and
/// ``write(_:)``; after every call, send ``takeOutput()`` to the peer. ``close()`` queues
/// close_notify.
///
/// Failing closed:
/// - a client session needs the name it verifies, and always sets it (mbedTLS 2.28 skips
///   the hostname check when none is set, CVE-2025-27809); verification is REQUIRED;
/// - after the handshake the session checks the verification result itself (and that the
///   hostname check ran), so a resumed or odd handshake cannot skip it;
/// - every mbedTLS code other than success becomes a ``TLSError``, and the first error is
///   sticky: every later call throws it again;
/// - end of stream without close_notify is ``TLSError/Kind/truncated``, never a clean end.
///
/// The session owns a heap-pinned `mbedtls_ssl_context` (about 35 KB with its record
/// buffers) and frees it when it is dropped. It is used by one thread at a time.
public struct TLSSession: ~Copyable {
    /// What ``read(into:)`` produced.
    public enum ReadResult: Equatable, Sendable {
        /// This many plaintext bytes were written to the buffer.
        case bytes(Int)
        /// More ciphertext is needed (send ``takeOutput()`` first, then feed).
        case wantRead
        /// The peer sent close_notify: a clean end of the stream.
        case closed
    }

    /// The configuration, retained for the session's lifetime.
    public let configuration: TLSConfiguration
    /// Clients: the name verified against the server's certificate (and sent as SNI).
    public let serverName: String?
    let ssl: UnsafeMutablePointer<mbedtls_ssl_context>
    let io: SessionIO
    private var failure: TLSError?
    private var established = false
    private var closeSent = false
    private var peerClosed = false
    /// True when the handshake resumed an earlier session.
    public private(set) var isResumed = false
    /// The record sequence counters saved while the record buffers are released.
    private var savedCounters: (in: UInt64, out: UInt64)?
    /// Plaintext writes stop adding records once this much ciphertext waits to be sent.
    static let outputHighWater = 64 * 1024

    /// A server session.
    ///
    /// - Throws: ``TLSError`` when `configuration` is a client configuration or mbedTLS fails.
    public init(server configuration: TLSConfiguration) throws(TLSError) {
        guard configuration.role == .server else {
            throw TLSError(.configuration, message: "TLSSession(server:) needs a server configuration (TLSConfiguration.server)")
        }
        let io = SessionIO()
        self.ssl = try TLSSession.makeContext(configuration, io: io, serverName: nil)
        self.configuration = configuration
        self.serverName = nil
        self.io = io
    }

    /// A client session that verifies the server's certificate against `serverName` (a DNS
    /// name or an IP literal) and sends it as SNI. There is no client session without a
    /// name to verify.
    ///
    /// - Throws: ``TLSError`` for an empty or invalid name, a server configuration, or a
    ///   failure in mbedTLS.
    public init(client configuration: TLSConfiguration, serverName: String) throws(TLSError) {
        guard configuration.role == .client else {
            throw TLSError(.configuration, message: "TLSSession(client:) needs a client configuration (TLSConfiguration.client)")
        }
        var name = serverName
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty, name.utf8.count <= 253, !name.utf8.contains(0),
              !name.contains(where: { $0 == " " || $0 == "/" || $0 == "\\" }) else {
            throw TLSError(.configuration, message: "TLS client: \"\(serverName)\" is not a host name to verify — give the server's DNS name or IP address")
        }
        let io = SessionIO()
        io.verification.expectedHost = name
        self.ssl = try TLSSession.makeContext(configuration, io: io, serverName: name)
        self.configuration = configuration
        self.serverName = name
        self.io = io
    }

    /// A set-up `mbedtls_ssl_context` on the heap, or an error (and nothing leaked).
    private static func makeContext(_ configuration: TLSConfiguration, io: SessionIO,
                                    serverName: String?) throws(TLSError) -> UnsafeMutablePointer<mbedtls_ssl_context> {
        let ssl = UnsafeMutablePointer<mbedtls_ssl_context>.allocate(capacity: 1)
        mbedtls_ssl_init(ssl)
        func fail(_ rc: Int32, _ operation: String) -> TLSError {
            mbedtls_ssl_free(ssl)
            ssl.deallocate()
            return TLSError.from(code: rc, operation: operation, handshakeDone: false)
        }
        let rc = mbed("mbedtls_ssl_setup") { mbedtls_ssl_setup(ssl, configuration.conf) }
        if rc != 0 { throw fail(rc, "mbedtls_ssl_setup") }
        guard RecordBuffers.replace(in: ssl) else { throw fail(MBEDTLS_ERR_SSL_ALLOC_FAILED, "posix_memalign") }
        let context = Unmanaged.passUnretained(io).toOpaque()
        mbedtls_ssl_set_bio(ssl, context, bioSend, bioReceive, nil)
        mbedtls_ssl_set_verify(ssl, verifyCallback, context)
        if let serverName {
            // Always set: without it mbedTLS 2.28 skips the hostname check (CVE-2025-27809).
            // An IP literal is set too (mbedTLS then sends it as SNI; our check compares it
            // with the certificate's iPAddress names).
            let hrc = serverName.withCString { p in mbed("mbedtls_ssl_set_hostname") { mbedtls_ssl_set_hostname(ssl, p) } }
            if hrc != 0 { throw fail(hrc, "mbedtls_ssl_set_hostname") }
            if let cache = configuration.clientSessions, let entry = cache.entry(for: serverName.lowercased()) {
                let rc = mbed("mbedtls_ssl_set_session") { mbedtls_ssl_set_session(ssl, entry.session) }
                if rc != 0 { throw fail(rc, "mbedtls_ssl_set_session") }
            }
        }
        return ssl
    }

    deinit {
        // mbedtls_ssl_free would zeroize both 16.7 KB buffers with memset, faulting in every
        // page the connection never touched; dropping the pages wipes them just as well.
        RecordBuffers.discard(ssl)
        mbedtls_ssl_free(ssl)
        ssl.deallocate()
    }

    // MARK: Idle memory

    /// Whether the record buffers are released (see ``hibernate()``).
    public var isHibernating: Bool { savedCounters != nil }

    /// Releases the memory of an idle session's record buffers (about 33 KB of address
    /// space, of which the pages touched so far are resident) back to the kernel, keeping
    /// only the two 8-byte record sequence counters that live inside them. The next call that
    /// needs mbedTLS restores the counters first, and the pages come back zero-filled as
    /// they are touched.
    ///
    /// Safe only between records: the session must be established, with no ciphertext
    /// buffered on either side and no record partly read or partly written inside mbedTLS;
    /// otherwise this does nothing and returns false.
    @discardableResult
    public mutating func hibernate() -> Bool {
        guard hibernationBlocker == nil, let inCounter = ssl.pointee.in_ctr, let outCounter = ssl.pointee.out_ctr else { return false }
        savedCounters = (UnsafeRawPointer(inCounter).loadUnaligned(as: UInt64.self),
                         UnsafeRawPointer(outCounter).loadUnaligned(as: UInt64.self))
        RecordBuffers.release(ssl)
        io.input = []
        io.inputOffset = 0
        io.output = []
        return true
    }

    /// Why ``hibernate()`` would do nothing now (nil when it can release the buffers).
    var hibernationBlocker: String? {
        if !established { return "handshake not complete" }
        if failure != nil { return "failed" }
        if savedCounters != nil { return "already hibernating" }
        if io.availableInput != 0 { return "ciphertext buffered" }
        if !io.output.isEmpty { return "output not taken" }
        if ssl.pointee.handshake != nil { return "handshake state present" }
        if ssl.pointee.in_left != 0 { return "in_left \(ssl.pointee.in_left)" }
        if ssl.pointee.in_msglen != 0 { return "in_msglen \(ssl.pointee.in_msglen)" }
        if ssl.pointee.in_offt != nil { return "unread plaintext" }
        if ssl.pointee.out_left != 0 { return "out_left \(ssl.pointee.out_left)" }
        return nil
    }

    /// Restores the counters after ``hibernate()``; every mbedTLS-calling method does this first.
    private mutating func wake() {
        guard let counters = savedCounters else { return }
        UnsafeMutableRawPointer(ssl.pointee.in_ctr!).storeBytes(of: counters.in, as: UInt64.self)
        UnsafeMutableRawPointer(ssl.pointee.out_ctr!).storeBytes(of: counters.out, as: UInt64.self)
        savedCounters = nil
    }

    // MARK: Ciphertext in and out

    /// Adds ciphertext received from the peer.
    public mutating func feed(_ ciphertext: UnsafeRawBufferPointer) {
        io.input.append(contentsOf: ciphertext)
    }

    /// Adds ciphertext received from the peer.
    public mutating func feed(_ ciphertext: [UInt8]) {
        io.input.append(contentsOf: ciphertext)
    }

    /// The transport reached end of stream: no more ciphertext will come.
    public mutating func feedEndOfStream() {
        io.inputEOF = true
    }

    /// Whether ciphertext waits to be sent.
    public var hasOutput: Bool { !io.output.isEmpty }

    /// The ciphertext to send to the peer, and the session's buffer emptied.
    public mutating func takeOutput() -> [UInt8] {
        if io.output.isEmpty { return [] }
        var out: [UInt8] = []
        swap(&out, &io.output)
        return out
    }

    /// Ciphertext received but not yet consumed (bytes after the records processed so far).
    public var bufferedInputCount: Int { io.availableInput }

    /// Servers, before the handshake's first step: whether the buffered ClientHello presents
    /// a session ticket (a non-empty SessionTicket extension), i.e. asks for a resumption,
    /// which costs tens of microseconds instead of milliseconds. False when it does not, or
    /// when the buffered bytes are not (yet) a whole, well-formed ClientHello record.
    public var clientHelloPresentsTicket: Bool {
        guard serverName == nil, !established, ssl.pointee.state == MBEDTLS_SSL_HELLO_REQUEST.rawValue
                || ssl.pointee.state == MBEDTLS_SSL_CLIENT_HELLO.rawValue else { return false }
        return io.input.withUnsafeBufferPointer { all in
            ClientHelloPeek.presentsTicket(UnsafeBufferPointer(rebasing: all[io.inputOffset...]))
        }
    }

    // MARK: Handshake

    /// True once the handshake has completed and passed every check.
    public var isHandshakeComplete: Bool { established }

    /// Advances the handshake with the ciphertext fed so far.
    ///
    /// - Returns: true when the handshake is complete (and verified), false when more
    ///   ciphertext is needed. Either way, send ``takeOutput()`` first.
    /// - Throws: ``TLSError`` (sticky); send ``takeOutput()`` anyway: it may hold the alert
    ///   that tells the peer why.
    public mutating func handshake() throws(TLSError) -> Bool {
        if let failure { throw failure }
        wake()
        if established { return true }
        while ssl.pointee.state != MBEDTLS_SSL_HANDSHAKE_OVER.rawValue {
            let rc = mbed("mbedtls_ssl_handshake_step") { mbedtls_ssl_handshake_step(ssl) }
            if let hs = ssl.pointee.handshake, hs.pointee.resume != 0 { isResumed = true }
            if rc == MBEDTLS_ERR_SSL_WANT_READ {
                if io.inputEOF {
                    throw fail(TLSError(.handshake, message: "the peer closed the connection during the handshake"))
                }
                return false
            }
            if rc == MBEDTLS_ERR_SSL_CONN_EOF {
                // The BIO returns 0 at the transport's end of stream; during the handshake
                // that is a failed handshake, not truncated application data.
                throw fail(TLSError(.handshake, code: rc, operation: "mbedtls_ssl_handshake_step",
                                    message: "the peer closed the connection during the handshake"))
            }
            if rc != 0 { throw fail(rc, "mbedtls_ssl_handshake_step") }
        }
        try verifyEstablished()
        if let serverName, let cache = configuration.clientSessions {
            let entry = ClientSessionCache.Entry()
            let rc = mbed("mbedtls_ssl_get_session") { mbedtls_ssl_get_session(ssl, entry.session) }
            if rc != 0 { throw fail(rc, "mbedtls_ssl_get_session") }
            cache.store(entry, for: serverName.lowercased())
        }
        // Only now: a handshake that threw is never reported complete.
        established = true
        return true
    }

    /// The checks after mbedTLS says the handshake is over: the session does not take its
    /// word for it.
    private mutating func verifyEstablished() throws(TLSError) {
        guard ssl.pointee.major_ver == MBEDTLS_SSL_MAJOR_VERSION_3, ssl.pointee.minor_ver == MBEDTLS_SSL_MINOR_VERSION_3 else {
            throw fail(TLSError(.handshake, message: "the handshake ended on a protocol other than TLS 1.2"))
        }
        let needsPeer = serverName != nil || configuration.requiresClientCertificate
        guard needsPeer else { return }
        let result = mbedtls_ssl_get_verify_result(ssl)
        if result != 0 {
            throw fail(TLSError(.verification, reasons: io.verification.reasons(finalFlags: result),
                                message: "certificate verification failed"))
        }
        if mbedtls_ssl_get_peer_cert(ssl) == nil {
            throw fail(TLSError(.verification, reasons: ["no certificate was presented"], message: "certificate verification failed"))
        }
        if serverName != nil && !isResumed && !io.leafChecked {
            throw fail(TLSError(.verification, reasons: ["the hostname check did not run"], message: "certificate verification failed"))
        }
    }

    // MARK: Data

    /// Decrypts the next plaintext into `buffer`, completing the handshake first if needed.
    ///
    /// - Throws: ``TLSError``; `.truncated` when the stream ended without close_notify.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> ReadResult {
        if let failure { throw failure }
        wake()
        if peerClosed { return .closed }
        if !established {
            guard try handshake() else { return .wantRead }
        }
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .wantRead }
        let rc = mbed("mbedtls_ssl_read") { mbedtls_ssl_read(ssl, base.assumingMemoryBound(to: UInt8.self), buffer.count) }
        if rc > 0 { return .bytes(Int(rc)) }
        switch rc {
        case MBEDTLS_ERR_SSL_WANT_READ:
            return .wantRead
        case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
            peerClosed = true
            return .closed
        case 0, MBEDTLS_ERR_SSL_CONN_EOF:
            // mbedTLS returns 0 when the transport ended without close_notify.
            throw fail(TLSError(.truncated, code: rc == 0 ? 0 : rc, operation: "mbedtls_ssl_read",
                                message: "the peer closed the connection without close_notify: the data may be truncated"))
        default:
            throw fail(rc, "mbedtls_ssl_read")
        }
    }

    /// Encrypts plaintext into records (in ``takeOutput()``).
    ///
    /// - Returns: the bytes consumed: all of them, unless `outputHighWater` (64 KiB) of
    ///   ciphertext is already waiting, in which case send it and call again with the rest.
    /// - Throws: ``TLSError``; `.closed` after ``close()`` or the peer's close_notify.
    public mutating func write(_ plaintext: UnsafeRawBufferPointer) throws(TLSError) -> Int {
        if let failure { throw failure }
        wake()
        guard established else {
            throw TLSError(.closed, message: "TLSSession.write before the handshake completed — call handshake() until it returns true")
        }
        if closeSent || peerClosed { throw TLSError(.closed, message: "the TLS session is closed") }
        guard let base = plaintext.baseAddress else { return 0 }
        var written = 0
        while written < plaintext.count && io.output.count < TLSSession.outputHighWater {
            let rc = mbed("mbedtls_ssl_write") {
                mbedtls_ssl_write(ssl, (base + written).assumingMemoryBound(to: UInt8.self), plaintext.count - written)
            }
            if rc <= 0 {
                // WANT_WRITE cannot happen with the memory BIO; like every other code it is
                // an error rather than a silent retry with different arguments.
                throw fail(rc == 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : rc, "mbedtls_ssl_write")
            }
            written += Int(rc)
        }
        return written
    }

    /// Queues close_notify (once); reading may continue until the peer's close_notify.
    public mutating func close() throws(TLSError) {
        if let failure { throw failure }
        wake()
        guard established, !closeSent else { closeSent = true; return }
        closeSent = true
        let rc = mbed("mbedtls_ssl_close_notify") { mbedtls_ssl_close_notify(ssl) }
        if rc != 0 { throw fail(rc, "mbedtls_ssl_close_notify") }
    }

    /// The first fatal error, if any (every call throws it).
    public var error: TLSError? { failure }

    // MARK: Negotiated parameters

    /// The ALPN protocol agreed on, if any.
    public var negotiatedALPN: String? {
        guard let p = mbedtls_ssl_get_alpn_protocol(ssl) else { return nil }
        return String(cString: p)
    }

    /// The cipher suite's name, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256" (after the handshake).
    public var cipherSuite: String? {
        guard established, let p = mbedtls_ssl_get_ciphersuite(ssl) else { return nil }
        return String(cString: p)
    }

    /// The protocol version, "TLSv1.2".
    public var protocolVersion: String { String(cString: mbedtls_ssl_get_version(ssl)) }

    /// Servers: the SNI name the client sent.
    public var requestedServerName: String? { io.requestedServerName }

    /// The subject of the peer's certificate, if it sent one ("CN=localhost").
    public var peerCertificateSubject: String? {
        guard let crt = mbedtls_ssl_get_peer_cert(ssl) else { return nil }
        return subjectText(crt)
    }

    // MARK: Failure

    private mutating func fail(_ code: Int32, _ operation: String) -> TLSError {
        var error = TLSError.from(code: code, operation: operation, handshakeDone: established)
        let flags = mbedtls_ssl_get_verify_result(ssl)
        if code == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE && flags != 0 && flags != UInt32.max {
            // mbedTLS refuses a certificate whose key usage, extended key usage or key does
            // not fit with this code after setting the verify flags: a verification failure.
            error.kind = .verification
            error.message = "certificate verification failed"
        }
        if error.kind == .verification {
            error.reasons = io.verification.reasons(finalFlags: flags == UInt32.max ? 0 : flags)
            if error.reasons.isEmpty && code == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE { error.reasons = ["no certificate was presented"] }
        }
        if (code == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE || code == MBEDTLS_ERR_SSL_CERTIFICATE_REQUIRED) && io.output.isEmpty {
            // mbedTLS 2.28 refuses a missing client certificate without telling the client:
            // send handshake_failure (RFC 5246 §7.4.6) so it learns why. Best effort: the
            // session has failed either way, so the alert's own result changes nothing.
            _ = mbedtls_ssl_send_alert_message(ssl, UInt8(MBEDTLS_SSL_ALERT_LEVEL_FATAL), UInt8(MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE))
        }
        return fail(error)
    }

    private mutating func fail(_ error: TLSError) -> TLSError {
        if failure == nil { failure = error }
        return failure!
    }
}

/// The session's record buffers: page-aligned and page-rounded replacements for the two
/// that mbedtls_ssl_setup callocs (16.7 KB each), so that their pages belong to the session
/// alone and can be returned to the kernel while it is idle (``TLSSession/hibernate()``).
/// They are `free()`-able, as mbedtls_ssl_free expects.
enum RecordBuffers {
    static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
    static let inLength = roundUp(strata_ssl_in_buffer_len())
    static let outLength = roundUp(strata_ssl_out_buffer_len())

    static func roundUp(_ n: Int) -> Int { (n + pageSize - 1) / pageSize * pageSize }

    /// Allocates zeroed, page-aligned buffers without touching their pages, and swaps them
    /// in for mbedTLS's own (right after mbedtls_ssl_setup, before any record).
    static func replace(in ssl: UnsafeMutablePointer<mbedtls_ssl_context>) -> Bool {
        guard let newIn = allocate(inLength) else { return false }
        guard let newOut = allocate(outLength) else {
            free(newIn)
            return false
        }
        free(ssl.pointee.in_buf)
        free(ssl.pointee.out_buf)
        ssl.pointee.in_buf = newIn.assumingMemoryBound(to: UInt8.self)
        ssl.pointee.out_buf = newOut.assumingMemoryBound(to: UInt8.self)
        mbedtls_ssl_reset_in_out_pointers(ssl)
        return true
    }

    private static func allocate(_ length: Int) -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, pageSize, length) == 0, let p else { return nil }
        zero(p, length)
        return p
    }

    /// Zeroes whole pages: on Linux by dropping them (private anonymous memory reads back as
    /// zeros and costs nothing until touched), elsewhere by writing zeros.
    private static func zero(_ p: UnsafeMutableRawPointer, _ length: Int) {
        #if os(Linux)
        if madvise(p, length, MADV_DONTNEED) == 0 { return }
        #endif
        memset(p, 0, length)
    }

    /// Wipes (by dropping their pages) and frees both buffers before mbedtls_ssl_free, which
    /// then skips them.
    static func discard(_ ssl: UnsafeMutablePointer<mbedtls_ssl_context>) {
        if let p = ssl.pointee.in_buf {
            zero(UnsafeMutableRawPointer(p), inLength)
            free(p)
            ssl.pointee.in_buf = nil
        }
        if let p = ssl.pointee.out_buf {
            zero(UnsafeMutableRawPointer(p), outLength)
            free(p)
            ssl.pointee.out_buf = nil
        }
    }

    /// Returns both buffers' pages to the kernel (contents become zeros).
    static func release(_ ssl: UnsafeMutablePointer<mbedtls_ssl_context>) {
        zero(UnsafeMutableRawPointer(ssl.pointee.in_buf), inLength)
        zero(UnsafeMutableRawPointer(ssl.pointee.out_buf), outLength)
    }
}

/// A bounds-checked look into a buffered TLS 1.2 ClientHello (never trusted for anything but
/// a scheduling hint: mbedTLS parses the real thing).
enum ClientHelloPeek {
    static func presentsTicket(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        func u8() -> Int? { guard i < b.count else { return nil }; defer { i += 1 }; return Int(b[i]) }
        func u16() -> Int? { guard let h = u8(), let l = u8() else { return nil }; return h << 8 | l }
        func skip(_ n: Int) -> Bool { guard n >= 0, i + n <= b.count else { return false }; i += n; return true }
        // Record header: handshake (22), version, length; then the handshake header.
        guard u8() == 22, skip(2), let recordLength = u16(), b.count >= 5 + recordLength,
              u8() == 1, skip(3),  // client_hello, 24-bit length
              skip(2 + 32),  // client_version, random
              let sessionIDLength = u8(), skip(sessionIDLength),
              let suitesLength = u16(), skip(suitesLength),
              let compressionLength = u8(), skip(compressionLength),
              let extensionsLength = u16() else { return false }
        let end = min(i + extensionsLength, 5 + recordLength)
        while i + 4 <= end {
            guard let type = u16(), let length = u16() else { return false }
            if type == 35 { return length > 0 }  // session_ticket
            guard skip(length) else { return false }
        }
        return false
    }
}
