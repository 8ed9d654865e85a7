/// A strict, incremental, zero-copy, sans-I/O HTTP/1.1 request parser
/// (RFC 9112 framing, RFC 9110 semantics).
///
/// The caller owns one contiguous receive buffer. It appends received bytes
/// to it and calls ``parse(_:)`` with the whole buffer; each call returns one
/// event: ``HTTPParseEvent/needMore``, a ``HTTPParseEvent/head(_:)`` whose
/// fields are ranges into the buffer, ``HTTPParseEvent/body(_:)`` ranges, and
/// ``HTTPParseEvent/end(trailers:)``. The parser remembers how far it has
/// scanned, so re-feeding a growing buffer costs only the new bytes. After
/// `end`, the next call parses the next pipelined request from the same buffer.
///
/// Bytes the parser no longer needs are counted by ``consumed``; drop any
/// number of them from the front of the buffer and tell the parser with
/// ``discard(_:)``. Ranges returned earlier then refer to the old positions
/// (see ``HTTPRequestHeadView/shifted(by:)``).
///
/// ```swift
/// var parser = HTTPRequestParser()
/// loop: while true {
///     let event = try receive.withUnsafeBytes { try parser.parse($0) }
///     switch event {
///     case .needMore: break loop              // read more, then parse again
///     case .head(let head): start(head)       // ranges into `receive`
///     case .body(let range): deliver(range)
///     case .end(let trailers): finishRequest(trailers)
///     }
/// }
/// receive.removeFirst(parser.consumed); parser.discard(parser.consumed)
/// ```
///
/// Errors are ``HTTPParseError`` values carrying the status to answer; after
/// one the connection must be closed. At end of input call ``finish()``: a
/// request cut short is an error.
///
/// Allocation: field ranges go into arrays owned by the parser and reused
/// with `removeAll(keepingCapacity: true)`; after warm-up a request allocates
/// nothing, provided the caller drops the previous head's ``HTTPFieldRanges``
/// before the next head is parsed (otherwise copy-on-write copies them).
public struct HTTPRequestParser: Sendable {
    /// The limits in force.
    public let limits: HTTPParserLimits

    @usableFromInline
    internal enum State: UInt8, Sendable {
        case idle, requestLine, fields, identityBody, chunkLine, chunkData, chunkDataEnd, trailers, endPending, failed
    }

    internal var state: State = .idle
    internal var failure: HTTPParseError?
    /// Every byte before `pos` has been processed.
    internal var pos = 0
    /// Where the LF search of the current line resumes.
    internal var scan = 0
    /// How many bytes the caller has shown (buffer count of the last call).
    internal var seen = 0
    internal var messageStart = 0
    internal var sectionStart = 0
    internal var emptyLines = 0
    internal var remaining = 0
    internal var extensionBytes = 0
    internal var fieldStorage: [HTTPFieldRange] = []
    internal var trailerStorage: [HTTPFieldRange] = []
    internal var head = HeadFacts()

    /// Facts gathered while reading the head.
    internal struct HeadFacts: Sendable {
        var method = 0..<0
        var knownMethod = HTTPMethod.other
        var target = 0..<0
        var targetForm = HTTPRequestTargetForm.origin
        var path = 0..<0
        var query: Range<Int>? = nil
        var targetAuthority: Range<Int>? = nil
        var version = HTTPVersion.http1_1
        var host: Range<Int>? = nil
        var contentLength: Int? = nil
        var transferEncodingSeen = false
        var transferEncodingMalformed = false
        var chunkedCount = 0
        var lastCodingIsChunked = false
        var unknownCodings = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var upgradeField = false
        var expectContinue = false
        var expectOther = false

        mutating func shift(_ n: Int) {
            func s(_ r: Range<Int>) -> Range<Int> { (r.lowerBound - n)..<(r.upperBound - n) }
            method = s(method)
            target = s(target)
            path = s(path)
            query = query.map(s)
            targetAuthority = targetAuthority.map(s)
            host = host.map(s)
        }
    }

    /// Creates a parser with `limits`. Field storage for 16 fields is reserved up
    /// front (512 bytes: a server keeps one parser per connection, idle ones too);
    /// a request with more fields grows it once, and it keeps that capacity, so
    /// steady state never allocates.
    public init(limits: HTTPParserLimits = .default) {
        self.limits = limits
        fieldStorage.reserveCapacity(min(limits.maxFieldCount, 16))
        trailerStorage.reserveCapacity(8)
    }

    /// How many bytes at the front of the buffer the parser no longer needs:
    /// the caller may drop up to this many and report it with ``discard(_:)``.
    /// While a head or trailer section is being read, its bytes are still needed.
    public var consumed: Int {
        switch state {
        case .requestLine, .fields: return messageStart
        case .trailers: return sectionStart
        default: return pos
        }
    }

    /// Whether the parser is between requests (nothing of a next request seen
    /// yet, except possibly ignored empty lines). A server may close an idle
    /// connection without answering only in this state.
    public var isAtMessageBoundary: Bool {
        state == .idle && pos == seen
    }

    /// Whether the current request's head has been returned and its `end` not
    /// yet (the request body, if any, is being read).
    public var isReadingBody: Bool {
        switch state {
        case .identityBody, .chunkLine, .chunkData, .chunkDataEnd, .trailers, .endPending: return true
        default: return false
        }
    }

    /// The caller removed `count` bytes from the front of its buffer
    /// (`0 <= count <= consumed`); positions move down by `count`.
    public mutating func discard(_ count: Int) {
        precondition(count >= 0 && count <= consumed, "HTTPRequestParser.discard: count beyond consumed")
        guard count > 0 else { return }
        pos -= count
        scan -= count
        seen -= count
        messageStart -= count
        sectionStart -= count
        if state == .fields {
            head.shift(count)
            shiftRanges(&fieldStorage, count)
        } else if state == .trailers {
            shiftRanges(&trailerStorage, count)
        }
    }

    private func shiftRanges(_ ranges: inout [HTTPFieldRange], _ n: Int) {
        for i in ranges.indices {
            let f = ranges[i]
            ranges[i] = HTTPFieldRange(name: (f.name.lowerBound - n)..<(f.name.upperBound - n),
                                       value: (f.value.lowerBound - n)..<(f.value.upperBound - n))
        }
    }

    /// Forgets everything, including a failure, as if newly created (keeps storage).
    /// The next buffer starts a new byte stream at offset 0.
    public mutating func reset() {
        state = .idle
        failure = nil
        pos = 0
        scan = 0
        seen = 0
        messageStart = 0
        sectionStart = 0
        emptyLines = 0
        fieldStorage.removeAll(keepingCapacity: true)
        trailerStorage.removeAll(keepingCapacity: true)
    }

    /// Parses as far as the next event.
    ///
    /// `buffer` holds the stream from the position the parser is at (offset 0
    /// is the first byte not yet discarded): earlier bytes unchanged, new bytes
    /// appended. It must not be shorter than in the previous call.
    /// - Returns: one event; ranges refer to `buffer`.
    /// - Throws: ``HTTPParseError``; the parser then stays failed.
    public mutating func parse(_ buffer: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPParseEvent {
        if let failure { throw failure }
        precondition(buffer.count >= seen, "HTTPRequestParser.parse: the buffer shrank without discard(_:)")
        seen = buffer.count
        do {
            return try step(Bytes(buffer))
        } catch {
            state = .failed
            failure = error
            throw error
        }
    }

    /// Declares the end of input (the peer closed). Returns if the stream ended
    /// between requests; throws ``HTTPParseError/Kind/incompleteHead`` or
    /// ``HTTPParseError/Kind/incompleteBody`` if a request was cut short (for
    /// instance an unterminated chunked body). Call after ``parse(_:)`` returned
    /// ``HTTPParseEvent/needMore``.
    public mutating func finish() throws(HTTPParseError) {
        if let failure { throw failure }
        let error: HTTPParseError
        switch state {
        case .idle:
            if pos == seen { return }
            error = HTTPParseError(.incompleteHead)
        case .endPending:
            return
        case .requestLine, .fields:
            error = HTTPParseError(.incompleteHead)
        case .identityBody, .chunkLine, .chunkData, .chunkDataEnd, .trailers:
            error = HTTPParseError(.incompleteBody)
        case .failed:
            return
        }
        state = .failed
        failure = error
        throw error
    }

    // MARK: - The state machine

    private mutating func step(_ p: Bytes) throws(HTTPParseError) -> HTTPParseEvent {
        let end = p.count
        while true {
            switch state {
            case .idle:
                if pos >= end { return .needMore }
                let b = p[pos]
                if b == CR {
                    if pos + 1 >= end { return .needMore }
                    guard p[pos + 1] == LF else { throw HTTPParseError(.bareCR) }
                    emptyLines += 1
                    if emptyLines > limits.maxLeadingEmptyLines { throw HTTPParseError(.tooManyLeadingEmptyLines) }
                    pos += 2
                    continue
                }
                if b == LF { throw HTTPParseError(.bareLF) }
                beginMessage()

            case .requestLine:
                let windowEnd = pos + limits.maxRequestLineLength + 2
                guard let lf = p.firstLF(from: scan, to: min(end, windowEnd)) else {
                    if end >= windowEnd { throw HTTPParseError(.requestLineTooLong) }
                    scan = end
                    return .needMore
                }
                let e = try contentEnd(p, lf)
                try parseRequestLine(p, pos, e)
                pos = lf + 1
                scan = pos
                sectionStart = pos
                state = .fields

            case .fields:
                let lineWindow = pos + limits.maxFieldLineLength + 2
                let sectionEnd = sectionStart + limits.maxHeaderSectionSize
                let windowEnd = min(lineWindow, sectionEnd)
                guard let lf = p.firstLF(from: scan, to: min(end, windowEnd)) else {
                    if end >= windowEnd {
                        throw HTTPParseError(lineWindow <= sectionEnd ? .fieldLineTooLong : .headerSectionTooLarge)
                    }
                    scan = end
                    return .needMore
                }
                let e = try contentEnd(p, lf)
                if e == pos {
                    pos = lf + 1
                    scan = pos
                    return .head(try completeHead(p))
                }
                try parseFieldLine(p, pos, e, trailer: false)
                pos = lf + 1
                scan = pos

            case .identityBody:
                let available = end - pos
                if available <= 0 { return .needMore }
                let n = min(available, remaining)
                let range = pos..<(pos + n)
                pos += n
                remaining -= n
                if remaining == 0 { state = .endPending }
                return .body(range)

            case .chunkLine:
                let budget = limits.maxChunkExtensionsSize - extensionBytes
                let windowEnd = pos + 16 + budget + 2
                // Seventeen size digits are wrong whatever follows: this check
                // comes first, so the verdict does not depend on where the
                // input was split.
                let lf = p.firstLF(from: scan, to: min(end, windowEnd))
                var digits = 0
                let digitsEnd = lf ?? end
                while digits <= 16, pos + digits < digitsEnd, hexValue(p[pos + digits]) != nil { digits += 1 }
                if digits > 16 { throw HTTPParseError(.invalidChunkSize) }
                guard let lf else {
                    if end >= windowEnd { throw HTTPParseError(.chunkExtensionsTooLarge) }
                    scan = end
                    return .needMore
                }
                let e = try contentEnd(p, lf)
                let size = try parseChunkLine(p, pos, e)
                pos = lf + 1
                scan = pos
                if size == 0 {
                    sectionStart = pos
                    state = .trailers
                } else {
                    remaining = size
                    state = .chunkData
                }

            case .chunkData:
                let available = end - pos
                if available <= 0 { return .needMore }
                let n = min(available, remaining)
                let range = pos..<(pos + n)
                pos += n
                remaining -= n
                if remaining == 0 { state = .chunkDataEnd }
                return .body(range)

            case .chunkDataEnd:
                if pos >= end { return .needMore }
                guard p[pos] == CR else { throw HTTPParseError(.invalidChunkData) }
                if pos + 1 >= end { return .needMore }
                guard p[pos + 1] == LF else { throw HTTPParseError(.invalidChunkData) }
                pos += 2
                scan = pos
                state = .chunkLine

            case .trailers:
                let lineWindow = pos + limits.maxFieldLineLength + 2
                let sectionEnd = sectionStart + limits.maxTrailerSectionSize
                let windowEnd = min(lineWindow, sectionEnd)
                guard let lf = p.firstLF(from: scan, to: min(end, windowEnd)) else {
                    if end >= windowEnd {
                        throw HTTPParseError(lineWindow <= sectionEnd ? .fieldLineTooLong : .trailerSectionTooLarge)
                    }
                    scan = end
                    return .needMore
                }
                let e = try contentEnd(p, lf)
                if e == pos {
                    pos = lf + 1
                    scan = pos
                    state = .endPending
                    continue
                }
                try parseFieldLine(p, pos, e, trailer: true)
                pos = lf + 1
                scan = pos

            case .endPending:
                state = .idle
                emptyLines = 0
                scan = pos
                return .end(trailers: HTTPFieldRanges(storage: trailerStorage))

            case .failed:
                throw failure ?? HTTPParseError(.invalidRequestLine)
            }
        }
    }

    private mutating func beginMessage() {
        state = .requestLine
        messageStart = pos
        scan = pos
        head = HeadFacts()
        fieldStorage.removeAll(keepingCapacity: true)
        trailerStorage.removeAll(keepingCapacity: true)
        extensionBytes = 0
    }

    /// The end of a line's content given the index of its LF: requires CR before LF.
    @inline(__always)
    private func contentEnd(_ p: Bytes, _ lf: Int) throws(HTTPParseError) -> Int {
        guard lf > pos, p[lf - 1] == CR else { throw HTTPParseError(.bareLF) }
        return lf - 1
    }

    // MARK: - Request line

    private mutating func parseRequestLine(_ p: Bytes, _ s: Int, _ e: Int) throws(HTTPParseError) {
        // method SP
        var i = s
        while i < e, isTokenChar(p[i]) { i += 1 }
        if i == e { throw HTTPParseError(i == s ? .invalidMethod : .invalidRequestLine) }
        var b = p[i]
        if b != SP { throw HTTPParseError(b == CR ? .bareCR : .invalidMethod) }
        if i == s { throw HTTPParseError(.invalidMethod) }
        head.method = s..<i
        i += 1
        // request-target SP
        let ts = i
        i = p.firstNonTargetChar(from: i, to: e)
        if i == e { throw HTTPParseError(.invalidRequestLine) }
        b = p[i]
        if b != SP { throw HTTPParseError(b == CR ? .bareCR : .invalidRequestTarget) }
        if i == ts { throw HTTPParseError(.invalidRequestLine) }
        head.target = ts..<i
        i += 1
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        var j = i
        while j < e {
            if p[j] == CR { throw HTTPParseError(.bareCR) }
            j += 1
        }
        guard e - i == 8, p.equals(i..<(i + 5), "HTTP/"), isDigit(p[i + 5]), p[i + 6] == 0x2E, isDigit(p[i + 7]) else {
            throw HTTPParseError(.invalidVersion)
        }
        let major = p[i + 5] - 0x30
        let minor = p[i + 7] - 0x30
        guard major == 1 else { throw HTTPParseError(.unsupportedVersion) }
        head.version = HTTPVersion(major: major, minor: minor)
        head.knownMethod = knownMethod(p, head.method)
        try classifyTarget(p, head.target)
    }

    private func knownMethod(_ p: Bytes, _ m: Range<Int>) -> HTTPMethod {
        switch m.count {
        case 3:
            if p.equals(m, "GET") { return .get }
            if p.equals(m, "PUT") { return .put }
        case 4:
            if p.equals(m, "POST") { return .post }
            if p.equals(m, "HEAD") { return .head }
        case 5:
            if p.equals(m, "PATCH") { return .patch }
            if p.equals(m, "TRACE") { return .trace }
        case 6:
            if p.equals(m, "DELETE") { return .delete }
        case 7:
            if p.equals(m, "OPTIONS") { return .options }
            if p.equals(m, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }

    private mutating func classifyTarget(_ p: Bytes, _ t: Range<Int>) throws(HTTPParseError) {
        let first = p[t.lowerBound]
        if head.knownMethod == .connect {
            // authority-form = uri-host ":" port (RFC 9112 §3.2.3)
            guard validAuthority(p, t, requirePort: true, allowEmpty: false) else {
                throw HTTPParseError(.invalidRequestTarget)
            }
            head.targetForm = .authority
            head.targetAuthority = t
            head.path = t.upperBound..<t.upperBound
            return
        }
        if first == 0x2F { // "/"
            head.targetForm = .origin
            splitPathQuery(p, t)
            return
        }
        if t.count == 1 && first == 0x2A { // "*"
            guard head.knownMethod == .options else { throw HTTPParseError(.invalidRequestTarget) }
            head.targetForm = .asterisk
            head.path = t.upperBound..<t.upperBound
            return
        }
        // absolute-form: scheme "://" authority path-abempty [ "?" query ]
        var i = t.lowerBound
        guard (first | 0x20) &- 0x61 < 26 else { throw HTTPParseError(.invalidRequestTarget) }
        i += 1
        while i < t.upperBound {
            let c = p[i]
            if (c | 0x20) &- 0x61 < 26 || isDigit(c) || c == 0x2B || c == 0x2D || c == 0x2E {
                i += 1
            } else {
                break
            }
        }
        guard i + 3 <= t.upperBound, p.equals(i..<(i + 3), "://") else { throw HTTPParseError(.invalidRequestTarget) }
        let authorityStart = i + 3
        var k = authorityStart
        while k < t.upperBound, p[k] != 0x2F, p[k] != 0x3F { k += 1 }
        let authority = authorityStart..<k
        guard validAuthority(p, authority, requirePort: false, allowEmpty: false) else {
            throw HTTPParseError(.invalidRequestTarget)
        }
        head.targetForm = .absolute
        head.targetAuthority = authority
        splitPathQuery(p, k..<t.upperBound)
    }

    private mutating func splitPathQuery(_ p: Bytes, _ r: Range<Int>) {
        var i = r.lowerBound
        while i < r.upperBound, p[i] != 0x3F { i += 1 }
        head.path = r.lowerBound..<i
        head.query = i < r.upperBound ? (i + 1)..<r.upperBound : nil
    }

    /// `uri-host [ ":" port ]` (RFC 9112 §3.2): IP-literal in brackets or
    /// reg-name (unreserved / pct-encoded / sub-delims), port digits. No userinfo.
    private func validAuthority(_ p: Bytes, _ r: Range<Int>, requirePort: Bool, allowEmpty: Bool) -> Bool {
        if r.isEmpty { return allowEmpty }
        var i = r.lowerBound
        let e = r.upperBound
        if p[i] == 0x5B { // "["
            i += 1
            let hs = i
            while i < e, p[i] != 0x5D {
                let c = p[i]
                guard isRegNameChar(c) || c == 0x3A, c != 0x25 else { return false }
                i += 1
            }
            if i == e || i == hs { return false }
            i += 1
        } else {
            let hs = i
            while i < e, p[i] != 0x3A {
                let c = p[i]
                guard isRegNameChar(c) else { return false }
                if c == 0x25 {
                    guard i + 2 < e, hexValue(p[i + 1]) != nil, hexValue(p[i + 2]) != nil else { return false }
                    i += 2
                }
                i += 1
            }
            if i == hs { return false }
        }
        if i == e { return !requirePort }
        guard p[i] == 0x3A else { return false }
        i += 1
        if i == e { return !requirePort }
        if e - i > 5 { return false }
        while i < e {
            guard isDigit(p[i]) else { return false }
            i += 1
        }
        return true
    }

    // MARK: - Field lines

    private mutating func parseFieldLine(_ p: Bytes, _ s: Int, _ e: Int, trailer: Bool) throws(HTTPParseError) {
        let first = p[s]
        if isOWS(first) {
            throw HTTPParseError(!trailer && fieldStorage.isEmpty ? .whitespaceBeforeFirstField : .obsoleteLineFolding)
        }
        var i = s
        while i < e, isTokenChar(p[i]) { i += 1 }
        if i == e { throw HTTPParseError(.invalidFieldLine) }
        let b = p[i]
        if b != 0x3A {
            if isOWS(b) { throw HTTPParseError(.whitespaceBeforeColon) }
            throw HTTPParseError(b == CR ? .bareCR : .invalidFieldName)
        }
        if i == s { throw HTTPParseError(.invalidFieldName) }
        let name = s..<i
        i += 1
        while i < e, isOWS(p[i]) { i += 1 }
        let vs = i
        while true {
            i = p.firstControlOrDEL(from: i, to: e)
            if i == e { break }
            let c = p[i]
            if c != HTAB { throw HTTPParseError(c == CR ? .bareCR : .invalidFieldValue) }
            i += 1
        }
        var last = e
        while last > vs, isOWS(p[last - 1]) { last -= 1 }
        let value = vs..<last
        if trailer {
            if trailerStorage.count >= limits.maxFieldCount { throw HTTPParseError(.tooManyFields) }
            switch name.count {
            case 4 where p.equalsLowercase(name, "host"),
                 14 where p.equalsLowercase(name, "content-length"),
                 17 where p.equalsLowercase(name, "transfer-encoding"):
                throw HTTPParseError(.forbiddenTrailerField)
            default:
                break
            }
            trailerStorage.append(HTTPFieldRange(name: name, value: value))
            return
        }
        if fieldStorage.count >= limits.maxFieldCount { throw HTTPParseError(.tooManyFields) }
        fieldStorage.append(HTTPFieldRange(name: name, value: value))
        switch name.count {
        case 4 where p.equalsLowercase(name, "host"):
            if head.host != nil { throw HTTPParseError(.duplicateHost) }
            guard validAuthority(p, value, requirePort: false, allowEmpty: true) else {
                throw HTTPParseError(.invalidHost)
            }
            head.host = value
        case 6 where p.equalsLowercase(name, "expect"):
            if p.equalsLowercase(value, "100-continue") {
                head.expectContinue = true
            } else if !value.isEmpty {
                head.expectOther = true
            }
        case 7 where p.equalsLowercase(name, "upgrade"):
            head.upgradeField = true
        case 10 where p.equalsLowercase(name, "connection"):
            try parseConnection(p, value)
        case 14 where p.equalsLowercase(name, "content-length"):
            if head.contentLength != nil { throw HTTPParseError(.duplicateContentLength) }
            head.contentLength = try parseContentLength(p, value)
        case 17 where p.equalsLowercase(name, "transfer-encoding"):
            parseTransferEncoding(p, value)
        default:
            break
        }
    }

    /// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), one value, at most 2^63-1.
    /// Lists (`5, 5`) are rejected, not collapsed.
    private func parseContentLength(_ p: Bytes, _ v: Range<Int>) throws(HTTPParseError) -> Int {
        if v.isEmpty { throw HTTPParseError(.invalidContentLength) }
        var n = 0
        for i in v {
            let c = p[i]
            guard isDigit(c) else { throw HTTPParseError(.invalidContentLength) }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(c - 0x30))
            if o1 || o2 { throw HTTPParseError(.invalidContentLength) }
            n = a
        }
        return n
    }

    /// `Transfer-Encoding = #transfer-coding`; the verdict waits for the whole head.
    private mutating func parseTransferEncoding(_ p: Bytes, _ v: Range<Int>) {
        head.transferEncodingSeen = true
        var i = v.lowerBound
        let e = v.upperBound
        if v.isEmpty { head.transferEncodingMalformed = true; return }
        while true {
            while i < e, isOWS(p[i]) { i += 1 }
            let ts = i
            while i < e, isTokenChar(p[i]) { i += 1 }
            let token = ts..<i
            if token.isEmpty { head.transferEncodingMalformed = true; return }
            while i < e, isOWS(p[i]) { i += 1 }
            var hasParameters = false
            if i < e, p[i] == 0x3B { // ";" transfer-parameter: token=token/quoted-string
                hasParameters = true
                while i < e, p[i] != 0x2C {
                    let c = p[i]
                    guard isTokenChar(c) || isOWS(c) || c == 0x3B || c == 0x3D || c == 0x22 || c == 0x5C else {
                        head.transferEncodingMalformed = true
                        return
                    }
                    i += 1
                }
            }
            if p.equalsLowercase(token, "chunked") {
                if hasParameters { head.transferEncodingMalformed = true }
                head.chunkedCount += 1
                head.lastCodingIsChunked = true
            } else {
                head.unknownCodings += 1
                head.lastCodingIsChunked = false
            }
            if i == e { return }
            guard p[i] == 0x2C else { head.transferEncodingMalformed = true; return }
            i += 1
            if i == e { head.transferEncodingMalformed = true; return } // trailing empty element
        }
    }

    /// `Connection = #connection-option`; empty elements are ignored (RFC 9110 §5.6.1).
    private mutating func parseConnection(_ p: Bytes, _ v: Range<Int>) throws(HTTPParseError) {
        var i = v.lowerBound
        let e = v.upperBound
        while i < e {
            while i < e, isOWS(p[i]) || p[i] == 0x2C { i += 1 }
            let ts = i
            while i < e, isTokenChar(p[i]) { i += 1 }
            let token = ts..<i
            while i < e, isOWS(p[i]) { i += 1 }
            if i < e, p[i] != 0x2C { throw HTTPParseError(.invalidConnection) }
            switch token.count {
            case 5 where p.equalsLowercase(token, "close"): head.connectionClose = true
            case 7 where p.equalsLowercase(token, "upgrade"): head.connectionUpgrade = true
            case 10 where p.equalsLowercase(token, "keep-alive"): head.connectionKeepAlive = true
            default: break
            }
        }
    }

    private mutating func completeHead(_ p: Bytes) throws(HTTPParseError) -> HTTPRequestHeadView {
        let http11 = head.version.hasHTTP11Semantics
        if http11 && head.host == nil { throw HTTPParseError(.missingHost) }
        let framing: HTTPBodyFraming
        if head.transferEncodingSeen {
            if head.contentLength != nil { throw HTTPParseError(.contentLengthWithTransferEncoding) }
            if !http11 { throw HTTPParseError(.transferEncodingInHTTP10) }
            if head.transferEncodingMalformed || head.chunkedCount != 1 || !head.lastCodingIsChunked {
                throw HTTPParseError(.invalidTransferEncoding)
            }
            if head.unknownCodings > 0 { throw HTTPParseError(.unsupportedTransferEncoding) }
            framing = .chunked
            extensionBytes = 0
            state = .chunkLine
        } else if let n = head.contentLength {
            framing = .contentLength(n)
            remaining = n
            state = n > 0 ? .identityBody : .endPending
        } else {
            framing = .none
            state = .endPending
        }
        let keepAlive = http11 ? !head.connectionClose : (head.connectionKeepAlive && !head.connectionClose)
        return HTTPRequestHeadView(
            range: messageStart..<pos,
            method: head.method,
            knownMethod: head.knownMethod,
            target: head.target,
            targetForm: head.targetForm,
            query: head.query,
            targetAuthority: head.targetAuthority,
            version: head.version,
            fields: HTTPFieldRanges(storage: fieldStorage),
            host: head.host,
            framing: framing,
            keepAlive: keepAlive,
            expectsContinue: http11 && head.expectContinue,
            hasUnsupportedExpectation: head.expectOther,
            isUpgradeRequest: head.connectionUpgrade && head.upgradeField
        )
    }

    // MARK: - Chunked

    /// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): 1–16 hex digits, value at
    /// most 2^63-1, then `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`.
    private mutating func parseChunkLine(_ p: Bytes, _ s: Int, _ e: Int) throws(HTTPParseError) -> Int {
        var i = s
        var size = 0
        while i < e, let d = hexValue(p[i]) {
            if i - s == 16 { throw HTTPParseError(.invalidChunkSize) }
            if size > (Int.max >> 4) { throw HTTPParseError(.invalidChunkSize) }
            size = size << 4 | d
            i += 1
        }
        if i == s { throw HTTPParseError(i < e && p[i] == CR ? .bareCR : .invalidChunkSize) }
        if i == e { return size }
        extensionBytes += e - i
        if extensionBytes > limits.maxChunkExtensionsSize { throw HTTPParseError(.chunkExtensionsTooLarge) }
        var first = true
        while i < e {
            while i < e, isOWS(p[i]) { i += 1 }
            if i == e || p[i] != 0x3B {
                if i < e, p[i] == CR { throw HTTPParseError(.bareCR) }
                throw HTTPParseError(first ? .invalidChunkSize : .invalidChunkExtension)
            }
            first = false
            i += 1
            while i < e, isOWS(p[i]) { i += 1 }
            let ns = i
            while i < e, isTokenChar(p[i]) { i += 1 }
            if i == ns { throw HTTPParseError(i < e && p[i] == CR ? .bareCR : .invalidChunkExtension) }
            var k = i
            while k < e, isOWS(p[k]) { k += 1 }
            if k < e, p[k] == 0x3D { // "="
                i = k + 1
                while i < e, isOWS(p[i]) { i += 1 }
                if i < e, p[i] == 0x22 {
                    i += 1
                    var closed = false
                    while i < e {
                        let c = p[i]
                        if c == 0x22 { closed = true; i += 1; break }
                        if c == 0x5C {
                            guard i + 1 < e, isFieldValueChar(p[i + 1]) else { throw HTTPParseError(.invalidChunkExtension) }
                            i += 2
                            continue
                        }
                        guard isQuotedTextChar(c) else { throw HTTPParseError(c == CR ? .bareCR : .invalidChunkExtension) }
                        i += 1
                    }
                    if !closed { throw HTTPParseError(.invalidChunkExtension) }
                } else {
                    let vs = i
                    while i < e, isTokenChar(p[i]) { i += 1 }
                    if i == vs { throw HTTPParseError(i < e && p[i] == CR ? .bareCR : .invalidChunkExtension) }
                }
            }
        }
        return size
    }
}
