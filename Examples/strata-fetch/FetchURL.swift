// URL parsing: http:// and https:// only, the parts an HTTP/1.1 request needs.
import StrataSockets

/// An http or https URL taken apart: where to connect, what to name in Host and SNI, and the
/// request target.
struct FetchURL: Sendable, Equatable {
    enum Scheme: String, Sendable { case http, https }

    /// The kind of host in the URL.
    enum HostKind: Sendable, Equatable {
        /// A DNS name (lowercased, without a trailing dot).
        case name
        /// An IPv4 literal.
        case ipv4
        /// An IPv6 literal (written in brackets in the URL); `zone` is its scope (`%25eth0`).
        case ipv6(zone: String?)
    }

    var scheme: Scheme
    /// The host without brackets or zone: `example.org`, `127.0.0.1`, `::1`.
    var host: String
    var hostKind: HostKind
    var port: UInt16
    /// Path and query ("/" when the URL has none); the fragment is not sent.
    var target: String

    var defaultPort: UInt16 { scheme == .https ? 443 : 80 }

    /// The Host header: the host (IPv6 in brackets) and the port unless it is the default.
    var hostHeader: String {
        let h = if case .ipv6 = hostKind { "[\(host)]" } else { host }
        return port == defaultPort ? h : "\(h):\(port)"
    }

    /// The name the server's certificate must carry (and the SNI): the URL's host.
    var serverName: String { host }

    var isIPLiteral: Bool { hostKind != .name }

    /// Parses `text`.
    ///
    /// - Throws: ``FetchFailure`` with ``Exit/unsupportedProtocol`` for another scheme,
    ///   ``Exit/malformedURL`` for anything else that is wrong, each naming the problem.
    init(parsing text: String) throws(FetchFailure) {
        func malformed(_ why: String) -> FetchFailure { FetchFailure(Exit.malformedURL, "malformed URL: \(why)") }

        guard !text.isEmpty else { throw malformed("the URL is empty") }
        for b in text.utf8 where b <= 0x20 || b == 0x7F {
            throw malformed(b == 0x20 ? "it contains a space (write it as %20)" : "it contains a control character")
        }
        guard let sep = text.firstRange(of: "://") else {
            throw malformed("no scheme — write http://\(text) or https://\(text)")
        }
        let schemeText = text[..<sep.lowerBound]
        guard let first = schemeText.first, first.isASCII, first.isLetter,
              schemeText.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) else {
            throw malformed("\"\(schemeText)\" is not a URL scheme — use http:// or https://")
        }
        guard let scheme = Scheme(rawValue: schemeText.lowercased()) else {
            throw FetchFailure(Exit.unsupportedProtocol, "unsupported protocol \"\(schemeText)\": only http:// and https:// are supported")
        }
        self.scheme = scheme

        let afterScheme = text[sep.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var rest = afterScheme[authorityEnd...]

        if authority.contains("@") {
            throw malformed("user information (user:password@) in the URL is not supported")
        }
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw malformed("\"[\" without \"]\" in the host") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw malformed("unexpected \"\(after)\" after the IPv6 address") }
                portPart = after.dropFirst()
            }
            // An IPv6 zone: RFC 6874 writes it as %25 in a URL.
            var zone: String?
            if let pct = hostPart.firstIndex(of: "%") {
                var z = hostPart[hostPart.index(after: pct)...]
                if z.hasPrefix("25") && z.count > 2 { z = z.dropFirst(2) }
                guard !z.isEmpty else { throw malformed("empty IPv6 zone in \"[\(hostPart)]\"") }
                zone = String(z)
                hostPart = hostPart[..<pct]
            }
            guard let v6 = IPv6Address(String(hostPart)) else {
                throw malformed("\"[\(hostPart)]\" is not an IPv6 address")
            }
            host = v6.description
            hostKind = .ipv6(zone: zone)
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
                if portPart!.contains(":") {
                    throw malformed("\"\(authority)\": an IPv6 address must be written in brackets, e.g. https://[::1]:8443/")
                }
            } else {
                hostPart = authority
            }
            guard !hostPart.isEmpty else { throw malformed("no host") }
            (host, hostKind) = try FetchURL.parseHost(hostPart)
        }

        if let portPart, !portPart.isEmpty {
            guard portPart.utf8.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let p = Int(portPart), (1...65535).contains(p) else {
                throw malformed("port \"\(portPart)\" is not a number in 1...65535")
            }
            port = UInt16(p)
        } else {
            port = scheme == .https ? 443 : 80
        }

        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var target = rest.hasPrefix("/") ? String(rest) : "/" + rest
        // Bytes outside ASCII are sent percent-encoded (as curl does).
        if target.utf8.contains(where: { $0 >= 0x80 }) {
            var encoded = ""
            for b in target.utf8 {
                if b >= 0x80 {
                    let hex = Array("0123456789ABCDEF")
                    encoded += "%\(hex[Int(b >> 4)])\(hex[Int(b & 15)])"
                } else {
                    encoded.unicodeScalars.append(UnicodeScalar(b))
                }
            }
            target = encoded
        }
        self.target = target
    }

    /// A host that is not in brackets: an IPv4 literal or a DNS name.
    private static func parseHost(_ text: Substring) throws(FetchFailure) -> (String, HostKind) {
        func malformed(_ why: String) -> FetchFailure { FetchFailure(Exit.malformedURL, "malformed URL: \(why)") }
        if text.utf8.contains(where: { $0 >= 0x80 }) {
            throw malformed("\"\(text)\": internationalized host names are not supported — give the ASCII (xn--) form")
        }
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        // A name whose last label is numeric is an IPv4 address (WHATWG URL), and only the
        // dotted-quad form is accepted (no 127.1, no 0x7f.0.0.1).
        if let last = labels.last, !last.isEmpty, last.allSatisfy({ $0.isNumber }) || last.hasPrefix("0x") {
            guard let v4 = IPv4Address(name), v4.description == name else {
                throw malformed("\"\(text)\" is not an IPv4 address (write four decimal parts, e.g. 127.0.0.1)")
            }
            return (name, .ipv4)
        }
        guard !name.isEmpty, name.utf8.count <= 253 else { throw malformed("\"\(text)\" is not a host name") }
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63 else {
                throw malformed("\"\(text)\" is not a host name (empty or over-long label)")
            }
            for b in label.utf8 {
                let ok = (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F
                if !ok {
                    throw malformed("\"\(text)\" is not a host name (character \"\(String(UnicodeScalar(b)))\")")
                }
            }
        }
        return (name, .name)
    }
}
