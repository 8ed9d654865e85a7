#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataMbedTLS

/// Reads a whole file (PEM is small); errors name the file and the cause.
func readWholeFile(_ path: String, what: String) throws(TLSError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        let e = errno
        throw TLSError(.configuration, message: "cannot read \(what) \(path): \(String(cString: strerror(e))) — check the path and its permissions")
    }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            let e = errno
            throw TLSError(.configuration, message: "cannot read \(what) \(path): \(String(cString: strerror(e)))")
        }
        if n == 0 { break }
        result += chunk[0..<n]
        if result.count > 16 << 20 {
            throw TLSError(.configuration, message: "\(what) \(path) is larger than 16 MiB — is it the right file?")
        }
    }
    return result
}

/// An owned, heap-pinned `mbedtls_x509_crt` chain (mbedTLS keeps pointers into it).
final class CertificateChain: @unchecked Sendable {
    let crt: UnsafeMutablePointer<mbedtls_x509_crt>

    init() {
        crt = .allocate(capacity: 1)
        mbedtls_x509_crt_init(crt)
    }

    deinit {
        mbedtls_x509_crt_free(crt)
        crt.deallocate()
    }

    /// Parses PEM (or DER) bytes; returns mbedTLS's code (0, a count of certificates that
    /// failed, or a negative error).
    func parse(_ bytes: [UInt8]) -> Int32 {
        var terminated = bytes
        if terminated.last != 0 { terminated.append(0) }  // PEM input must include the NUL
        return terminated.withUnsafeBufferPointer { b in
            mbed("mbedtls_x509_crt_parse") { mbedtls_x509_crt_parse(crt, b.baseAddress, b.count) }
        }
    }

    /// True when at least one certificate was parsed.
    var isEmpty: Bool { crt.pointee.version == 0 }

    /// The number of certificates in the chain.
    var count: Int {
        var n = 0
        var p: UnsafeMutablePointer<mbedtls_x509_crt>? = isEmpty ? nil : crt
        while let c = p { n += 1; p = c.pointee.next }
        return n
    }
}

/// The names a certificate is valid for (subjectAltName only; the subject CN is never used
/// for hostname verification, per RFC 6125 §6.4.4 as browsers apply it).
struct CertificateNames: Sendable, Equatable {
    var dns: [String] = []
    var ips: [[UInt8]] = []

    init() {}

    init(_ crt: UnsafePointer<mbedtls_x509_crt>) {
        guard crt.pointee.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME != 0 else { return }
        // The list head is stored inline in the certificate; later entries are heap nodes.
        var seq: UnsafePointer<mbedtls_x509_sequence>? = crt.pointer(to: \.subject_alt_names)
        while let s = seq {
            let tag = s.pointee.buf.tag
            if let p = s.pointee.buf.p, s.pointee.buf.len > 0 {
                let bytes = Array(UnsafeBufferPointer(start: p, count: s.pointee.buf.len))
                if tag == Int32(MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) {  // dNSName
                    dns.append(String(decoding: bytes, as: UTF8.self).lowercased())
                } else if tag == Int32(MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) {  // iPAddress
                    ips.append(bytes)
                }
            }
            seq = UnsafePointer(s.pointee.next)
        }
    }

    /// "localhost, strata.test, 127.0.0.1" (or "no subjectAltName").
    var summary: String {
        let all = dns + ips.map(HostnameMatch.formatIP)
        return all.isEmpty ? "no subjectAltName (a CN alone is not accepted)" : all.joined(separator: ", ")
    }
}

/// The subject of a certificate as text ("CN=localhost, O=Strata").
func subjectText(_ crt: UnsafePointer<mbedtls_x509_crt>) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    let n = buffer.withUnsafeMutableBufferPointer { b in
        withUnsafePointer(to: crt.pointee.subject) { mbedtls_x509_dn_gets(b.baseAddress, b.count, $0) }
    }
    if n < 0 { return "?" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func formatX509Time(_ t: mbedtls_x509_time) -> String {
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(t.year)-\(two(t.mon))-\(two(t.day)) \(two(t.hour)):\(two(t.min)):\(two(t.sec)) UTC"
}

/// An owned, heap-pinned `mbedtls_pk_context`.
final class PrivateKey: @unchecked Sendable {
    let pk: UnsafeMutablePointer<mbedtls_pk_context>

    init() {
        pk = .allocate(capacity: 1)
        mbedtls_pk_init(pk)
    }

    deinit {
        mbedtls_pk_free(pk)
        pk.deallocate()
    }
}

/// A loaded, checked certificate chain and private key.
final class LoadedIdentity: @unchecked Sendable {
    let chain: CertificateChain
    private let privateKey: PrivateKey
    let names: CertificateNames
    let label: String
    var key: UnsafeMutablePointer<mbedtls_pk_context> { privateKey.pk }

    /// - Parameter enforcePolicy: false only for tests that need a server with a bad
    ///   certificate (expired, weak) to show that clients refuse it.
    init(_ identity: TLSIdentity, enforcePolicy: Bool = true) throws(TLSError) {
        let chain = CertificateChain()
        let privateKey = PrivateKey()
        let key = privateKey.pk
        self.chain = chain
        self.privateKey = privateKey
        label = identity.chainLabel
        let chainBytes: [UInt8]
        let keyBytes: [UInt8]
        switch identity.source {
        case .files(let c, let k):
            chainBytes = try readWholeFile(c, what: "certificate chain")
            keyBytes = try readWholeFile(k, what: "private key")
        case .pem(let c, let k):
            chainBytes = c
            keyBytes = k
        }
        let rc = chain.parse(chainBytes)
        if rc != 0 || chain.isEmpty {
            throw TLSError(.configuration, code: rc < 0 ? rc : 0, operation: "mbedtls_x509_crt_parse",
                           message: "cannot parse the certificate chain \(identity.chainLabel)\(rc > 0 ? " (\(rc) certificate(s) in it are invalid)" : "") — give PEM certificates, leaf first (-----BEGIN CERTIFICATE-----)")
        }
        var terminatedKey = keyBytes
        if terminatedKey.last != 0 { terminatedKey.append(0) }
        let krc = terminatedKey.withUnsafeBufferPointer { b in
            mbed("mbedtls_pk_parse_key") { mbedtls_pk_parse_key(key, b.baseAddress, b.count, nil, 0) }
        }
        if krc != 0 {
            throw TLSError(.configuration, code: krc, operation: "mbedtls_pk_parse_key",
                           message: "cannot parse the private key \(identity.keyLabel) — give an unencrypted PEM key (PKCS#8, SEC1 or PKCS#1; decrypt one with `openssl pkey -in KEY -out PLAIN`)")
        }
        let leaf = chain.crt
        let pk = leaf.pointer(to: \.pk)!
        let prc = mbed("mbedtls_pk_check_pair") { mbedtls_pk_check_pair(pk, key) }
        if prc != 0 {
            throw TLSError(.configuration, code: prc, operation: "mbedtls_pk_check_pair",
                           message: "the private key \(identity.keyLabel) does not match the certificate in \(identity.chainLabel) (\(subjectText(leaf))) — pair each certificate with its own key")
        }
        names = CertificateNames(leaf)
        guard enforcePolicy else { return }
        if mbedtls_x509_time_is_past(leaf.pointer(to: \.valid_to)!) != 0 {
            throw TLSError(.configuration, message: "the certificate in \(identity.chainLabel) (\(subjectText(leaf))) expired on \(formatX509Time(leaf.pointee.valid_to)) — renew it")
        }
        if mbedtls_x509_time_is_future(leaf.pointer(to: \.valid_from)!) != 0 {
            throw TLSError(.configuration, message: "the certificate in \(identity.chainLabel) (\(subjectText(leaf))) is not valid before \(formatX509Time(leaf.pointee.valid_from)) — check the clock or the certificate")
        }
        if mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(pk) < 2048 {
            throw TLSError(.configuration, message: "the certificate in \(identity.chainLabel) has a \(mbedtls_pk_get_bitlen(pk))-bit RSA key; peers refuse RSA under 2048 bits — issue a new one (RSA 2048+ or ECDSA P-256)")
        }
        if mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY) != 0 {
            let curve = mbedtls_pk_ec(pk.pointee).pointee.grp.id
            if curve != MBEDTLS_ECP_DP_SECP256R1 && curve != MBEDTLS_ECP_DP_SECP384R1 {
                throw TLSError(.configuration, message: "the certificate in \(identity.chainLabel) has an ECDSA key on a curve Strata does not offer for ECDHE (only P-256 and P-384 leaf keys can be used) — issue it with P-256")
            }
        }
        if leaf.pointee.sig_md == MBEDTLS_MD_SHA1 || leaf.pointee.sig_md == MBEDTLS_MD_MD5 {
            throw TLSError(.configuration, message: "the certificate in \(identity.chainLabel) is signed with SHA-1 or MD5, which peers refuse — have it reissued with SHA-256")
        }
    }
}

/// Loads trust roots; errors name the file and the fix.
func loadTrustRoots(_ roots: TLSTrustRoots) throws(TLSError) -> CertificateChain {
    let chain = CertificateChain()
    switch roots {
    case .systemDefault:
        guard let path = TLSTrustRoots.systemBundlePaths.first(where: { access($0, R_OK) == 0 }) else {
            throw TLSError(.configuration, message: "no system CA bundle found (looked in \(TLSTrustRoots.systemBundlePaths.joined(separator: ", "))) — install ca-certificates or give trust roots explicitly")
        }
        // A system bundle may hold a certificate this mbedTLS cannot parse: keep the rest.
        let rc = chain.parse(try readWholeFile(path, what: "system CA bundle"))
        if rc < 0 || chain.isEmpty {
            throw TLSError(.configuration, code: rc < 0 ? rc : 0, operation: "mbedtls_x509_crt_parse",
                           message: "cannot parse the system CA bundle \(path)")
        }
    case .file(let path):
        let rc = chain.parse(try readWholeFile(path, what: "CA file"))
        if rc != 0 || chain.isEmpty {
            throw TLSError(.configuration, code: rc < 0 ? rc : 0, operation: "mbedtls_x509_crt_parse",
                           message: "cannot parse the CA file \(path)\(rc > 0 ? " (\(rc) certificate(s) in it are invalid)" : "") — give PEM CA certificates")
        }
    case .directory(let path):
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw TLSError(.configuration, message: "the CA directory \(path) does not exist or is not a directory")
        }
        let rc = path.withCString { p in mbed("mbedtls_x509_crt_parse_path") { mbedtls_x509_crt_parse_path(chain.crt, p) } }
        if rc < 0 || chain.isEmpty {
            throw TLSError(.configuration, code: rc < 0 ? rc : 0, operation: "mbedtls_x509_crt_parse_path",
                           message: "no CA certificate could be read from the directory \(path)")
        }
    case .pem(let bytes):
        let rc = chain.parse(bytes)
        if rc != 0 || chain.isEmpty {
            throw TLSError(.configuration, code: rc < 0 ? rc : 0, operation: "mbedtls_x509_crt_parse",
                           message: "cannot parse the CA certificates (PEM bytes)")
        }
    }
    return chain
}
