// The request: body from --data*, method, header fields, serialized for HTTP/1.1.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A serialized request and its parts (for -v).
struct Request {
    var method: String
    /// Request line and header fields, without the empty line.
    var headLines: [String]
    var body: [UInt8]?

    /// The bytes on the wire.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        for line in headLines { out += Array(line.utf8); out += [0x0D, 0x0A] }
        out += [0x0D, 0x0A]
        if let body { out += body }
        return out
    }
}

/// The body from the --data options: nil without any, else the parts joined with "&".
///
/// - Throws: ``FetchFailure`` with ``Exit/readError`` when a file cannot be read.
func requestBody(_ specs: [DataSpec]) throws(FetchFailure) -> [UInt8]? {
    guard !specs.isEmpty else { return nil }
    var body: [UInt8] = []
    for (i, spec) in specs.enumerated() {
        if i > 0 { body.append(UInt8(ascii: "&")) }
        switch spec {
        case .literal(let s):
            body += Array(s.utf8)
        case .file(let path, let strip):
            var bytes = try readFile(path)
            if strip { bytes.removeAll { $0 == 0x0D || $0 == 0x0A } }
            body += bytes
        }
    }
    return body
}

/// Reads all of `path` ("-" is stdin).
private func readFile(_ path: String) throws(FetchFailure) -> [UInt8] {
    let shown = path == "-" ? "stdin" : path
    let fd: CInt = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        let e = errno
        throw FetchFailure(Exit.readError, "cannot read the request body from \(shown): \(String(cString: strerror(e)))")
    }
    defer { if fd != 0 { close(fd) } }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            let e = errno
            if e == EINTR { continue }
            throw FetchFailure(Exit.readError, "cannot read the request body from \(shown): \(String(cString: strerror(e)))")
        }
        if n == 0 { break }
        result += chunk[0..<n]
    }
    return result
}

/// Builds the request: `METHOD target HTTP/1.1`, Host, User-Agent, Accept, the body's
/// Content-Length and Content-Type, Connection: close, then the -H fields.
///
/// A -H field named like a default one replaces it; `Name:` with no value removes it;
/// `Name;` sends an empty value (curl's rules). Content-Length and Transfer-Encoding are
/// computed here and cannot be given.
func buildRequest(url: FetchURL, options o: Options, body: [UInt8]?) throws(FetchFailure) -> Request {
    func usage(_ message: String) -> FetchFailure { FetchFailure(Exit.usage, message) }
    let method = o.method ?? (o.head ? "HEAD" : body != nil ? "POST" : "GET")
    var fields: [(name: String, value: String)] = [
        ("Host", url.hostHeader),
        ("User-Agent", o.userAgent ?? "strata-fetch/0.1"),
        ("Accept", "*/*"),
    ]
    if let body {
        fields.append(("Content-Length", String(body.count)))
        fields.append(("Content-Type", "application/x-www-form-urlencoded"))
    }
    fields.append(("Connection", "close"))
    let defaults = Set(fields.map { $0.name.lowercased() })

    for header in o.headers {
        guard let sep = header.firstIndex(where: { $0 == ":" || $0 == ";" }) else {
            throw usage("-H \"\(header)\": write \"Name: value\"")
        }
        let name = String(header[..<sep])
        var value = Substring(header[header.index(after: sep)...]).trimmingASCIISpaces
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
            throw usage("-H \"\(header)\": \"\(name)\" is not a header name")
        }
        guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
            throw usage("-H \"\(name)\": the value contains CR, LF or NUL")
        }
        let lower = name.lowercased()
        if lower == "content-length" || lower == "transfer-encoding" {
            throw usage("-H \"\(name)\": strata-fetch sets Content-Length from the data, and does not send Transfer-Encoding")
        }
        let isSemicolon = header[sep] == ";"
        if isSemicolon {
            guard value.isEmpty else { throw usage("-H \"\(header)\": write \"Name: value\" (or \"Name;\" for an empty value)") }
            value = ""
        } else if value.isEmpty {
            // "Name:" removes a default field (and sends nothing otherwise).
            fields.removeAll { $0.name.lowercased() == lower && defaults.contains(lower) }
            continue
        }
        if defaults.contains(lower), let i = fields.firstIndex(where: { $0.name.lowercased() == lower }) {
            fields[i] = (name, String(value))
        } else {
            fields.append((name, String(value)))
        }
    }
    if method == "HEAD" && body != nil {
        throw usage("a HEAD request cannot carry data (-I/-X HEAD with --data)")
    }
    var lines = ["\(method) \(url.target) HTTP/1.1"]
    for f in fields { lines.append(f.value.isEmpty ? "\(f.name):" : "\(f.name): \(f.value)") }
    return Request(method: method, headLines: lines, body: body)
}
