// Where to connect: --resolve entries (curl's HOST:PORT:ADDR), IP literals, getaddrinfo.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets

/// One `--resolve HOST:PORT:ADDR[,ADDR...]`: connections to HOST:PORT go to ADDR; the Host
/// header, SNI and certificate check still use HOST.
struct ResolveEntry: Sendable {
    /// Lowercased, without brackets or a trailing dot; "*" matches every host.
    var host: String
    var port: UInt16
    /// IP address text, without brackets.
    var addresses: [String]

    /// Parses curl's syntax: `HOST:PORT:ADDR[,ADDR]...`, HOST may be `[IPv6]` or `*`, each
    /// ADDR IPv4, `[IPv6]` or bare IPv6. A leading `+` (curl's "add with timeout") is
    /// accepted and ignored.
    init(parsing text: String) throws(FetchFailure) {
        func bad(_ why: String) -> FetchFailure {
            FetchFailure(Exit.usage, "--resolve \(text): \(why) — use HOST:PORT:ADDRESS, e.g. --resolve example.org:443:127.0.0.1")
        }
        var rest = Substring(text)
        if rest.hasPrefix("+") { rest = rest.dropFirst() }
        if rest.hasPrefix("-") { throw bad("removing an entry (-HOST:PORT) is not supported") }
        let hostText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("\"[\" without \"]\"") }
            hostText = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("no port after the host") }
            rest = rest.dropFirst()
        } else {
            guard let colon = rest.firstIndex(of: ":") else { throw bad("no port") }
            hostText = rest[..<colon]
            rest = rest[rest.index(after: colon)...]
        }
        guard !hostText.isEmpty else { throw bad("empty host") }
        guard let colon = rest.firstIndex(of: ":") else { throw bad("no address") }
        let portText = rest[..<colon]
        guard portText.utf8.count <= 5, !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = Int(portText), (1...65535).contains(p) else {
            throw bad("port \"\(portText)\" is not a number in 1...65535")
        }
        var h = hostText.lowercased()
        if h.hasSuffix(".") && h != "." { h.removeLast() }
        if h.contains(":"), let v6 = IPv6Address(h) { h = v6.description }
        host = h
        port = UInt16(p)
        addresses = []
        for part in rest[rest.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false) {
            var a = part.trimmingASCIISpaces
            if a.hasPrefix("[") && a.hasSuffix("]") { a = a.dropFirst().dropLast() }
            guard !a.isEmpty, (try? SocketAddress(ipAddress: String(a), port: UInt16(p))) != nil else {
                throw bad("\"\(part)\" is not an IP address (IPv4, [IPv6] or IPv6)")
            }
            addresses.append(String(a))
        }
    }

    /// Whether this entry applies to `url`.
    func matches(_ url: FetchURL) -> Bool {
        port == url.port && (host == "*" || host == url.host)
    }
}

extension Substring {
    var trimmingASCIISpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// The addresses to try for `url`, in order, and how they were found (for -v).
func addresses(for url: FetchURL, resolve: [ResolveEntry]) throws(FetchFailure) -> (addresses: [SocketAddress], source: String) {
    if let entry = resolve.last(where: { $0.matches(url) }) {
        var list: [SocketAddress] = []
        for text in entry.addresses {
            if let a = try? SocketAddress(ipAddress: text, port: url.port), !list.contains(a) { list.append(a) }
        }
        return (list, "--resolve")
    }
    switch url.hostKind {
    case .ipv4:
        guard let a = try? SocketAddress(ipAddress: url.host, port: url.port) else {
            throw FetchFailure(Exit.malformedURL, "malformed URL: \"\(url.host)\" is not an IPv4 address")
        }
        return ([a], "literal")
    case .ipv6(let zone):
        let text = zone.map { "\(url.host)%\($0)" } ?? url.host
        do {
            return ([try SocketAddress(ipAddress: text, port: url.port)], "literal")
        } catch {
            throw FetchFailure(Exit.couldNotResolve, "cannot use the IPv6 address \(text): \(error)")
        }
    case .name:
        return (try getAddresses(url.host, port: url.port), "getaddrinfo")
    }
}

/// getaddrinfo(3) for TCP, IPv4 and IPv6, in the resolver's order (RFC 6724), duplicates removed.
func getAddresses(_ host: String, port: UInt16) throws(FetchFailure) -> [SocketAddress] {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    #if canImport(Glibc)
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
    hints.ai_socktype = SOCK_STREAM
    #endif
    hints.ai_protocol = Int32(IPPROTO_TCP)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, nil, &hints, &list)
    if rc != 0 {
        let e = errno
        let why = rc == EAI_SYSTEM ? String(cString: strerror(e)) : String(cString: gai_strerror(rc))
        throw FetchFailure(Exit.couldNotResolve, "could not resolve host \(host): \(why)")
    }
    defer { freeaddrinfo(list) }
    var out: [SocketAddress] = []
    var p = list
    while let ai = p {
        p = ai.pointee.ai_next
        guard let sa = ai.pointee.ai_addr,
              let parsed = try? SocketAddress(unsafeSockAddr: sa, length: ai.pointee.ai_addrlen) else { continue }
        let withPort: SocketAddress
        if let v4 = parsed.ipv4 {
            withPort = SocketAddress(ipv4: v4.address, port: port)
        } else if let v6 = parsed.ipv6 {
            withPort = SocketAddress(ipv6: v6.address, port: port, scopeID: v6.scopeID)
        } else {
            continue
        }
        if !out.contains(withPort) { out.append(withPort) }
    }
    if out.isEmpty { throw FetchFailure(Exit.couldNotResolve, "could not resolve host \(host): no IPv4 or IPv6 address") }
    return out
}
