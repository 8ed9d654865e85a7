// A sans-I/O HTTP/1.1 response parser: bytes in, head and body events out, and at the end a
// verdict on whether the response arrived complete (RFC 9112 §6.3 framing).

/// A response's status line and header fields.
struct ResponseHead: Sendable {
    /// "HTTP/1.1" or "HTTP/1.0".
    var version: String
    var status: Int
    var reason: String
    var fields: [(name: String, value: String)]
    /// The head exactly as received (status line to the empty line), for --include and -v.
    var raw: [UInt8]

    /// The values of every field named `name` (case-insensitive), in order.
    func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return fields.filter { $0.name.lowercased() == n }.map(\.value)
    }

    var statusLine: String { "\(version) \(status)\(reason.isEmpty ? "" : " " + reason)" }
}

/// How the body of the final response is delimited.
enum BodyFraming: Sendable, Equatable, CustomStringConvertible {
    /// No body (HEAD, 1xx, 204, 304).
    case none
    case contentLength(UInt64)
    case chunked
    /// Until the server closes the connection.
    case untilClose

    var description: String {
        switch self {
        case .none: "no body"
        case .contentLength(let n): "Content-Length \(n)"
        case .chunked: "chunked"
        case .untilClose: "until close"
        }
    }
}

/// What ``ResponseParser/feed(_:_:)`` reports.
enum ResponseEvent {
    /// An interim (1xx) response head; another head follows.
    case interim(ResponseHead)
    /// The final response head and how its body is framed.
    case head(ResponseHead, BodyFraming)
    /// Body bytes (chunked framing removed).
    case body(ArraySlice<UInt8>)
}

/// Parses one HTTP/1.x response to a request with the given method.
///
/// Strict where framing is concerned (a bad status line, an invalid or conflicting
/// Content-Length, a transfer coding other than chunked, malformed chunk sizes are errors);
/// lenient where RFC 9112 lets a client be (bare LF line ends, obsolete line folding).
struct ResponseParser {
    enum State: Equatable {
        case head
        case lengthBody(remaining: UInt64)
        case chunkSize
        case chunkData(remaining: UInt64)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    /// The largest response head (status line and fields) accepted.
    static let maximumHeadSize = 256 * 1024
    /// The largest chunk-size line (with extensions) and trailer section accepted.
    static let maximumLineSize = 16 * 1024

    private let isHEAD: Bool
    private(set) var state: State = .head
    /// The head received so far (state .head).
    private var headBuffer: [UInt8] = []
    /// A partial line (chunk size, chunk end, trailers).
    private var line: [UInt8] = []
    private var trailerBytes = 0
    /// Bytes received in total, and body bytes (after de-chunking) delivered.
    private(set) var bytesReceived: UInt64 = 0
    private(set) var bodyBytes: UInt64 = 0
    private(set) var framing: BodyFraming?
    private(set) var finalHead: ResponseHead?

    init(requestMethod: String) {
        isHEAD = requestMethod == "HEAD"
    }

    var isComplete: Bool { state == .done }

    /// Consumes `bytes` and reports what they complete. Bytes after the end of the response
    /// are ignored.
    ///
    /// - Throws: ``FetchFailure`` for a malformed response, or what `sink` throws.
    mutating func feed(_ bytes: [UInt8], _ sink: (ResponseEvent) throws -> Void) throws {
        bytesReceived += UInt64(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            switch state {
            case .done:
                return
            case .head:
                i = try consumeHead(bytes, from: i, sink)
            case .lengthBody(let remaining):
                let n = Int(min(remaining, UInt64(bytes.endIndex - i)))
                bodyBytes += UInt64(n)
                state = remaining - UInt64(n) == 0 ? .done : .lengthBody(remaining: remaining - UInt64(n))
                try sink(.body(bytes[i..<i + n]))
                i += n
            case .untilClose:
                bodyBytes += UInt64(bytes.endIndex - i)
                try sink(.body(bytes[i...]))
                i = bytes.endIndex
            case .chunkData(let remaining):
                let n = Int(min(remaining, UInt64(bytes.endIndex - i)))
                bodyBytes += UInt64(n)
                state = remaining - UInt64(n) == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - UInt64(n))
                try sink(.body(bytes[i..<i + n]))
                i += n
            case .chunkDataEnd:
                // CRLF (or a bare LF) after the chunk's data.
                let b = bytes[i]
                i += 1
                if b == 0x0D && line.isEmpty {
                    line.append(b)
                } else if b == 0x0A {
                    line.removeAll()
                    state = .chunkSize
                } else {
                    throw FetchFailure(Exit.receiveError, "malformed chunked encoding: chunk data is not followed by CRLF")
                }
            case .chunkSize, .trailers:
                guard let lf = bytes[i...].firstIndex(of: 0x0A) else {
                    line += bytes[i...]
                    i = bytes.endIndex
                    if line.count > ResponseParser.maximumLineSize {
                        throw FetchFailure(Exit.receiveError, state == .chunkSize
                            ? "malformed chunked encoding: chunk-size line longer than \(ResponseParser.maximumLineSize) bytes"
                            : "the trailer section is larger than \(ResponseParser.maximumLineSize) bytes")
                    }
                    continue
                }
                line += bytes[i..<lf]
                i = lf + 1
                if line.last == 0x0D { line.removeLast() }
                let complete = line
                line.removeAll()
                if state == .chunkSize {
                    try chunkSizeLine(complete)
                } else {
                    trailerBytes += complete.count + 2
                    if trailerBytes > ResponseParser.maximumLineSize {
                        throw FetchFailure(Exit.receiveError, "the trailer section is larger than \(ResponseParser.maximumLineSize) bytes")
                    }
                    // Trailer fields are read and ignored; the empty line ends the message.
                    if complete.isEmpty { state = .done }
                }
            }
        }
    }

    /// The connection ended cleanly (TCP EOF over http, close_notify over https): nil when
    /// the response is complete, else what is missing.
    mutating func endOfStream() -> String? {
        switch state {
        case .done:
            return nil
        case .untilClose:
            state = .done
            return nil
        default:
            return missing
        }
    }

    /// What is missing when the stream ends in the current state.
    var missing: String {
        switch state {
        case .done:
            return "nothing"
        case .head:
            return bytesReceived == 0 ? "empty reply from server (the connection closed before any response byte)"
                : "the connection closed in the middle of the response head (\(headBuffer.count) bytes of it received)"
        case .lengthBody(let remaining):
            let total = bodyBytes + remaining
            return "got \(bodyBytes) of \(total) body bytes (Content-Length \(total))"
        case .chunkSize, .chunkData, .chunkDataEnd:
            return "the chunked body ended before its last chunk (\(bodyBytes) body bytes received)"
        case .trailers:
            return "the chunked body ended in its trailer section (\(bodyBytes) body bytes received)"
        case .untilClose:
            return "\(bodyBytes) body bytes received before the connection ended"
        }
    }

    // MARK: Head

    /// Accumulates the head; at its end, parses it and switches to the body state.
    private mutating func consumeHead(_ bytes: [UInt8], from start: Int, _ sink: (ResponseEvent) throws -> Void) throws -> Int {
        // Skip empty lines before a status line (tolerated, as for request lines).
        var i = start
        if headBuffer.isEmpty {
            while i < bytes.endIndex && (bytes[i] == 0x0D || bytes[i] == 0x0A) { i += 1 }
            if i == bytes.endIndex { return i }
        }
        let scanFrom = max(0, headBuffer.count - 3)
        let before = headBuffer.count
        // Append up to the end of this chunk, then look for the empty line.
        headBuffer += bytes[i...]
        guard let end = ResponseParser.endOfHead(headBuffer, from: scanFrom) else {
            if headBuffer.count > ResponseParser.maximumHeadSize {
                throw FetchFailure(Exit.weirdServerReply, "the response head is larger than \(ResponseParser.maximumHeadSize / 1024) KiB")
            }
            return bytes.endIndex
        }
        if end > ResponseParser.maximumHeadSize {
            throw FetchFailure(Exit.weirdServerReply, "the response head is larger than \(ResponseParser.maximumHeadSize / 1024) KiB")
        }
        let raw = Array(headBuffer[..<end])
        headBuffer.removeAll()
        let consumed = i + (end - before)  // index in `bytes` just after the head
        let head = try ResponseParser.parseHead(raw)
        if head.status >= 100 && head.status < 200 {
            if head.status == 101 {
                throw FetchFailure(Exit.weirdServerReply, "the server switched protocols (101) although no upgrade was requested")
            }
            try sink(.interim(head))
            return consumed  // the next head follows
        }
        let framing = try ResponseParser.framing(of: head, isHEAD: isHEAD)
        self.framing = framing
        finalHead = head
        switch framing {
        case .none: state = .done
        case .contentLength(let n): state = n == 0 ? .done : .lengthBody(remaining: n)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
        try sink(.head(head, framing))
        return consumed
    }

    /// The index just after the empty line that ends a head (CRLF CRLF, or bare LFs).
    static func endOfHead(_ buffer: [UInt8], from start: Int) -> Int? {
        var i = start
        while i < buffer.count {
            if buffer[i] == 0x0A {
                if i + 1 < buffer.count && buffer[i + 1] == 0x0A { return i + 2 }
                if i + 2 < buffer.count && buffer[i + 1] == 0x0D && buffer[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// Parses a complete head (status line, fields, empty line).
    static func parseHead(_ raw: [UInt8]) throws -> ResponseHead {
        func weird(_ why: String) -> FetchFailure { FetchFailure(Exit.weirdServerReply, "invalid HTTP response: \(why)") }
        var lines: [ArraySlice<UInt8>] = raw.split(separator: 0x0A, omittingEmptySubsequences: false).map { l in
            l.last == 0x0D ? l.dropLast() : l
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let statusBytes = lines.first else { throw weird("no status line") }
        let statusLine = String(decoding: statusBytes, as: UTF8.self)
        let shown = statusLine.count > 80 ? String(statusLine.prefix(80)) + "…" : statusLine
        // HTTP-version SP 3DIGIT [SP reason-phrase]
        let sl = Array(statusBytes)
        guard sl.count >= 12, Array(sl[0..<5]) == Array("HTTP/".utf8), sl[5] >= 0x30 && sl[5] <= 0x39, sl[6] == 0x2E,
              sl[7] >= 0x30 && sl[7] <= 0x39, sl[8] == 0x20 else {
            throw weird("status line \"\(shown)\" is not HTTP/1.x")
        }
        guard sl[5] == 0x31 else {
            throw weird("the server answered with HTTP/\(Character(UnicodeScalar(sl[5]))).\(Character(UnicodeScalar(sl[7]))) (only HTTP/1.x is spoken)")
        }
        let digits = sl[9..<12]
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), sl.count == 12 || sl[12] == 0x20 else {
            throw weird("status line \"\(shown)\" has no three-digit status code")
        }
        let status = Int(String(decoding: digits, as: UTF8.self))!
        guard status >= 100 else { throw weird("status code \(status) is out of range") }
        let reason = sl.count > 13 ? String(decoding: sl[13...], as: UTF8.self) : ""
        let version = String(decoding: sl[0..<8], as: UTF8.self)
        for l in lines where l.contains(0x0D) || l.contains(0) {
            throw weird("a stray CR or NUL in the head")
        }

        var fields: [(name: String, value: String)] = []
        for l in lines.dropFirst() {
            if let f = l.first, f == 0x20 || f == 0x09 {
                // Obsolete line folding: a client replaces it with a space (RFC 9112 §5.2).
                guard !fields.isEmpty else { throw weird("the first header line starts with whitespace") }
                fields[fields.count - 1].value += " " + String(decoding: trimOWS(l), as: UTF8.self)
                continue
            }
            guard let colon = l.firstIndex(of: 0x3A) else {
                throw weird("header line \"\(String(decoding: l.prefix(60), as: UTF8.self))\" has no colon")
            }
            let name = l[l.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
                throw weird("invalid header name \"\(String(decoding: name.prefix(60), as: UTF8.self))\"")
            }
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: trimOWS(l[(colon + 1)...]), as: UTF8.self)))
        }
        return ResponseHead(version: version, status: status, reason: reason, fields: fields, raw: raw)
    }

    /// RFC 9112 §6.3: how the final response's body is delimited.
    static func framing(of head: ResponseHead, isHEAD: Bool) throws -> BodyFraming {
        if isHEAD || head.status == 204 || head.status == 304 || head.status < 200 { return .none }
        let te = head.values("Transfer-Encoding")
        if !te.isEmpty {
            let codings = te.flatMap { $0.split(separator: ",") }.map { String(Substring($0).trimmingASCIISpaces).lowercased() }
                .filter { !$0.isEmpty }
            if codings == ["chunked"] { return .chunked }
            let other = codings.filter { $0 != "chunked" }
            if codings.last == "chunked" || !other.isEmpty {
                throw FetchFailure(Exit.badContentEncoding,
                                   "unsupported transfer coding \"\(te.joined(separator: ", "))\" (only chunked is understood, and none other was asked for)")
            }
            throw FetchFailure(Exit.weirdServerReply, "invalid HTTP response: Transfer-Encoding \"\(te.joined(separator: ", "))\"")
        }
        let cl = head.values("Content-Length")
        if !cl.isEmpty {
            var length: UInt64?
            for value in cl {
                for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let t = Substring(part).trimmingASCIISpaces
                    guard !t.isEmpty, t.utf8.count <= 18, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt64(t) else {
                        throw FetchFailure(Exit.weirdServerReply, "invalid HTTP response: invalid Content-Length \"\(cl.joined(separator: ", "))\"")
                    }
                    if let length, length != n {
                        throw FetchFailure(Exit.weirdServerReply, "invalid HTTP response: conflicting Content-Length values \"\(cl.joined(separator: ", "))\"")
                    }
                    length = n
                }
            }
            return .contentLength(length!)
        }
        return .untilClose
    }

    // MARK: Chunked

    /// `chunk-size [chunk-ext]`: hex digits, then nothing, whitespace or `;extensions`.
    private mutating func chunkSizeLine(_ l: [UInt8]) throws {
        func bad(_ why: String) -> FetchFailure { FetchFailure(Exit.receiveError, "malformed chunked encoding: \(why)") }
        var size: UInt64 = 0
        var digits = 0
        var i = 0
        while i < l.count, let d = hexValue(l[i]) {
            guard digits < 15 else { throw bad("chunk size has more than 15 hex digits") }
            size = size << 4 | UInt64(d)
            digits += 1
            i += 1
        }
        guard digits > 0 else {
            throw bad("\"\(String(decoding: l.prefix(40), as: UTF8.self))\" is not a chunk size")
        }
        while i < l.count && (l[i] == 0x20 || l[i] == 0x09) { i += 1 }
        guard i == l.count || l[i] == 0x3B else {
            throw bad("\"\(String(decoding: l.prefix(40), as: UTF8.self))\" is not a chunk size")
        }
        state = size == 0 ? .trailers : .chunkData(remaining: size)
    }
}

private func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: b - 0x30
    case 0x41...0x46: b - 0x41 + 10
    case 0x61...0x66: b - 0x61 + 10
    default: nil
    }
}

/// RFC 9110 tchar.
func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}

private func trimOWS(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var s = s
    while let f = s.first, f == 0x20 || f == 0x09 { s = s.dropFirst() }
    while let l = s.last, l == 0x20 || l == 0x09 { s = s.dropLast() }
    return s
}
