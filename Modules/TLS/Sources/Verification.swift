import CStrataMbedTLS
import StrataSockets

/// Hostname verification per RFC 6125 against subjectAltName only.
///
/// mbedTLS 2.28's own check falls back to the subject CN when a certificate has no
/// subjectAltName, and does not know iPAddress names; Strata's check replaces its verdict
/// (the `MBEDTLS_X509_BADCERT_CN_MISMATCH` flag) in the verify callback:
/// - a DNS name matches case-insensitively, ignoring one trailing dot;
/// - a wildcard is only a whole leftmost label (`*.example.com`), matches exactly one
///   label (not `example.com`, not `a.b.example.com`), and needs at least two labels after
///   it (`*.com` and `*.test` match nothing); `a*.example.com` matches nothing;
/// - an IP literal (`127.0.0.1`, `::1`) matches only an iPAddress name with the same bytes,
///   never a DNS name;
/// - the CN is never consulted.
enum HostnameMatch {
    /// The bytes of `name` if it is an IPv4 or IPv6 literal (brackets allowed for IPv6).
    static func ipBytes(_ name: String) -> [UInt8]? {
        var n = Substring(name)
        if n.hasPrefix("[") && n.hasSuffix("]") { n = n.dropFirst().dropLast() }
        if let v4 = IPv4Address(String(n)) { return v4.bytes }
        if n.contains(":"), let v6 = IPv6Address(String(n)) { return v6.bytes }
        return nil
    }

    static func formatIP(_ bytes: [UInt8]) -> String {
        if let v4 = IPv4Address(bytes: bytes) { return v4.description }
        if let v6 = IPv6Address(bytes: bytes) { return v6.description }
        return "IP(\(bytes.count) bytes)"
    }

    /// Whether `names` cover `host`.
    static func matches(_ names: CertificateNames, host: String) -> Bool {
        if let ip = ipBytes(host) { return names.ips.contains(ip) }
        var wanted = host.lowercased()
        if wanted.hasSuffix(".") { wanted.removeLast() }
        guard !wanted.isEmpty else { return false }
        for var pattern in names.dns {
            if pattern.hasSuffix(".") { pattern.removeLast() }
            if pattern == wanted { return true }
            if pattern.hasPrefix("*.") {
                let suffix = pattern.dropFirst(2)
                // At least two labels after the wildcard; no further wildcards.
                guard suffix.contains("."), !suffix.contains("*") else { continue }
                guard let dot = wanted.firstIndex(of: ".") else { continue }
                let first = wanted[..<dot]
                let rest = wanted[wanted.index(after: dot)...]
                if !first.isEmpty && rest == suffix { return true }
            }
        }
        return false
    }
}

/// What one certificate of a peer's chain failed, collected by the verify callback.
struct VerificationRecord {
    /// (depth, subject, flags) for every certificate mbedTLS reported, leaf first.
    var entries: [(depth: Int32, subject: String, flags: UInt32)] = []
    /// The leaf's names.
    var leafNames = CertificateNames()
    /// The name the client verified (nil on servers).
    var expectedHost: String?

    /// The decoded reasons, most specific first.
    func reasons(finalFlags: UInt32) -> [String] {
        var out: [String] = []
        var seen: UInt32 = 0
        for e in entries.sorted(by: { $0.depth < $1.depth }) {
            for r in decode(e.flags & ~seen, depth: e.depth, subject: e.subject) where !out.contains(r) { out.append(r) }
            seen |= e.flags
        }
        for r in decode(finalFlags & ~seen, depth: 0, subject: entries.first(where: { $0.depth == 0 })?.subject ?? "")
        where !out.contains(r) { out.append(r) }
        return out
    }

    private func decode(_ flags: UInt32, depth: Int32, subject: String) -> [String] {
        var out: [String] = []
        let whose = depth == 0 ? "certificate" : "certificate at depth \(depth) (\(subject))"
        func has(_ f: Int32) -> Bool { flags & UInt32(bitPattern: f) != 0 }
        if has(MBEDTLS_X509_BADCERT_CN_MISMATCH) {
            out.append("hostname mismatch: wanted \(expectedHost ?? "?"), certificate names \(leafNames.summary)")
        }
        if has(MBEDTLS_X509_BADCERT_EXPIRED) { out.append("\(whose) expired") }
        if has(MBEDTLS_X509_BADCERT_FUTURE) { out.append("\(whose) is not yet valid") }
        if has(MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
            out.append(depth == 0 && entries.count <= 1
                ? "certificate not trusted: self-signed, issued by an unknown CA, or its intermediate is missing or not a CA (no chain to a trusted root)"
                : "\(whose) is not trusted: no chain to a trusted root (unknown CA, missing intermediate, or an issuer without CA:TRUE)")
        }
        if has(MBEDTLS_X509_BADCERT_REVOKED) { out.append("\(whose) is revoked") }
        if has(MBEDTLS_X509_BADCERT_MISSING) { out.append("no certificate was presented") }
        if has(MBEDTLS_X509_BADCERT_SKIP_VERIFY) { out.append("verification was skipped") }
        if has(MBEDTLS_X509_BADCERT_KEY_USAGE) { out.append("\(whose) key usage does not allow this use") }
        if has(MBEDTLS_X509_BADCERT_EXT_KEY_USAGE) {
            out.append("\(whose) extended key usage does not allow TLS \(expectedHost == nil ? "client" : "server") authentication")
        }
        if has(MBEDTLS_X509_BADCERT_NS_CERT_TYPE) { out.append("\(whose) Netscape certificate type does not allow this use") }
        if has(MBEDTLS_X509_BADCERT_BAD_MD) { out.append("\(whose) is signed with a forbidden hash (SHA-1 or weaker)") }
        if has(MBEDTLS_X509_BADCERT_BAD_PK) { out.append("\(whose) uses a forbidden public-key algorithm") }
        if has(MBEDTLS_X509_BADCERT_BAD_KEY) { out.append("\(whose) key is too weak (RSA under 2048 bits, or a curve not allowed)") }
        if has(MBEDTLS_X509_BADCERT_OTHER) { out.append("\(whose) failed verification (other reason)") }
        if has(MBEDTLS_X509_BADCRL_NOT_TRUSTED) || has(MBEDTLS_X509_BADCRL_EXPIRED) || has(MBEDTLS_X509_BADCRL_FUTURE)
            || has(MBEDTLS_X509_BADCRL_BAD_MD) || has(MBEDTLS_X509_BADCRL_BAD_PK) || has(MBEDTLS_X509_BADCRL_BAD_KEY) {
            out.append("a CRL failed verification")
        }
        return out
    }
}

/// The X.509 profile every chain is checked against: SHA-256/384/512 signatures only (no
/// SHA-1, no MD5), RSA (PKCS#1 v1.5 or PSS) of 2048+ bits or ECDSA on P-256/P-384/P-521.
func strataCertificateProfile() -> mbedtls_x509_crt_profile {
    func flag(_ id: UInt32) -> UInt32 { 1 << (id - 1) }
    let mds = flag(MBEDTLS_MD_SHA256.rawValue) | flag(MBEDTLS_MD_SHA384.rawValue) | flag(MBEDTLS_MD_SHA512.rawValue)
    let pks = flag(MBEDTLS_PK_RSA.rawValue) | flag(MBEDTLS_PK_ECDSA.rawValue) | flag(MBEDTLS_PK_ECKEY.rawValue)
        | flag(MBEDTLS_PK_RSASSA_PSS.rawValue)
    let curves = flag(MBEDTLS_ECP_DP_SECP256R1.rawValue) | flag(MBEDTLS_ECP_DP_SECP384R1.rawValue)
        | flag(MBEDTLS_ECP_DP_SECP521R1.rawValue)
    return mbedtls_x509_crt_profile(allowed_mds: mds, allowed_pks: pks, allowed_curves: curves, rsa_min_bitlen: 2048)
}
