import Foundation
import Testing
@testable import StrataHTTP

@Suite("HTTP/1.1 request parser: corpus")
struct ParserCorpusTests {
    @Test("the corpus is large and well-formed")
    func corpusSize() throws {
        let cases = try loadCorpus()
        #expect(cases.count >= 300, "corpus has \(cases.count) cases")
        let names = Dictionary(grouping: cases, by: { "\($0.file)/\($0.name)" }).filter { $0.value.count > 1 }
        #expect(names.isEmpty, "duplicate case names: \(names.keys.sorted())")
        let kinds = Set(HTTPParseError.Kind.allCases.map(\.name))
        for c in cases {
            if let e = c.error {
                #expect(kinds.contains(e.kind), "\(c): unknown kind \(e.kind)")
            } else {
                #expect(c.requests != nil, "\(c): neither requests nor error")
            }
        }
    }

    @Test("every case, fed whole")
    func whole() throws {
        for c in try loadCorpus() {
            let problems = verify(c, drive(c.bytes, limits: c.parserLimits))
            #expect(problems.isEmpty, "\(c): \(problems)")
        }
    }

    @Test("every case, fed byte by byte, with and without discarding")
    func byteByByte() throws {
        for c in try loadCorpus() {
            let bytes = c.bytes
            let whole = drive(bytes, limits: c.parserLimits)
            let splits = Array(0..<bytes.count)
            #expect(drive(bytes, splits: splits, limits: c.parserLimits) == whole, "\(c)")
            #expect(drive(bytes, splits: splits, discard: true, limits: c.parserLimits) == whole, "\(c) (discarding)")
        }
    }

    @Test("every case, fed at random split points (seeded)")
    func randomSplits() throws {
        var rng = SeededRNG(seed: 0x5EED_0001)
        for c in try loadCorpus() {
            let bytes = c.bytes
            let whole = drive(bytes, limits: c.parserLimits)
            for _ in 0..<12 {
                let n = Int.random(in: 1...4, using: &rng)
                let splits = (0..<n).map { _ in Int.random(in: 0...max(bytes.count, 1), using: &rng) }
                let discard = Bool.random(using: &rng)
                let split = drive(bytes, splits: splits, discard: discard, limits: c.parserLimits)
                #expect(split == whole, "\(c) splits=\(splits.sorted()) discard=\(discard)")
            }
        }
    }
}

@Suite("HTTP/1.1 request parser: properties")
struct ParserPropertyTests {
    /// A random valid request and the facts it must parse back to.
    struct Generated {
        var bytes: [UInt8]
        var expected: ParsedRequest?
        var method: String
        var target: String
        var fields: [(String, String)]
        var body: [UInt8]
        var trailers: [(String, String)]
        var chunked: Bool
    }

    static let tokenChars = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let pathChars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%")

    static func token(_ rng: inout SeededRNG, _ range: ClosedRange<Int>) -> String {
        String((0..<Int.random(in: range, using: &rng)).map { _ in tokenChars.randomElement(using: &rng)! })
    }

    static func value(_ rng: inout SeededRNG) -> String {
        let n = Int.random(in: 0...40, using: &rng)
        var s = (0..<n).map { _ -> UInt8 in
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: return [0x20, 0x09].randomElement(using: &rng)!
            case 1: return UInt8.random(in: 0x80...0xFF, using: &rng)
            default: return UInt8.random(in: 0x21...0x7E, using: &rng)
            }
        }
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return latin1(s)
    }

    static func generate(_ rng: inout SeededRNG) -> Generated {
        let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "M-SEARCH", token(&rng, 1...12)]
        let method = methods.randomElement(using: &rng)!
        var target = "/" + String((0..<Int.random(in: 0...60, using: &rng)).map { _ in pathChars.randomElement(using: &rng)! })
            .replacingOccurrences(of: "%", with: "%25")
        if Bool.random(using: &rng) { target += "?" + "q=\(Int.random(in: 0...999, using: &rng))&x=%20" }
        var fields: [(String, String)] = [("Host", "example.com:\(Int.random(in: 1...65535, using: &rng))")]
        let reserved: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"]
        for _ in 0..<Int.random(in: 0...20, using: &rng) {
            var name = token(&rng, 1...20)
            while reserved.contains(name.lowercased()) { name += "x" }
            fields.append((name, value(&rng)))
        }
        let bodyLength = Bool.random(using: &rng) ? 0 : Int.random(in: 0...3000, using: &rng)
        let body = (0..<bodyLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let chunked = Bool.random(using: &rng)
        var trailers: [(String, String)] = []
        var wire = Array("\(method) \(target) HTTP/1.1\r\n".utf8)
        if chunked {
            fields.insert(("Transfer-Encoding", ["chunked", "Chunked", "CHUNKED"].randomElement(using: &rng)!),
                          at: Int.random(in: 0...fields.count, using: &rng))
        } else if bodyLength > 0 || Bool.random(using: &rng) {
            fields.insert(("Content-Length", String(bodyLength)), at: Int.random(in: 0...fields.count, using: &rng))
        }
        for (n, v) in fields {
            let pad1 = ["", " ", "\t", "  "].randomElement(using: &rng)!
            let pad2 = ["", " ", "\t "].randomElement(using: &rng)!
            wire += Array(n.utf8) + [0x3A] + Array(pad1.utf8) + bytesLatin1(v) + Array(pad2.utf8) + [13, 10]
        }
        wire += [13, 10]
        if chunked {
            var i = 0
            while i < body.count {
                let n = min(body.count - i, Int.random(in: 1...700, using: &rng))
                var line = String(n, radix: 16, uppercase: Bool.random(using: &rng))
                if Int.random(in: 0..<4, using: &rng) == 0 { line = "00" + line }
                if Int.random(in: 0..<4, using: &rng) == 0 { line += ";ext=\(Int.random(in: 0...9, using: &rng));flag;q=\"a b\\\"c\"" }
                wire += Array(line.utf8) + [13, 10] + body[i..<(i + n)] + [13, 10]
                i += n
            }
            wire += Array("0\r\n".utf8)
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                var name = token(&rng, 1...10)
                while reserved.contains(name.lowercased()) { name += "x" }
                let v = value(&rng)
                trailers.append((name, v))
                wire += Array(name.utf8) + Array(": ".utf8) + bytesLatin1(v) + [13, 10]
            }
            wire += [13, 10]
        } else {
            wire += body
        }
        return Generated(bytes: wire, method: method, target: target, fields: fields, body: body,
                         trailers: trailers, chunked: chunked)
    }

    static func check(_ g: Generated, _ r: ParsedRequest) -> Bool {
        r.method == Array(g.method.utf8) && r.target == Array(g.target.utf8)
            && r.fields == g.fields.map { [Array($0.0.utf8), bytesLatin1($0.1)] }
            && r.body == g.body
            && r.trailers == g.trailers.map { [Array($0.0.utf8), bytesLatin1($0.1)] }
            && r.framing == (g.chunked ? .chunked : (g.fields.contains { $0.0 == "Content-Length" } ? .contentLength(g.body.count) : HTTPBodyFraming.none))
            && r.keepAlive && r.version == .http1_1
    }

    @Test("round trip: random valid requests parse back to what was serialised (any split)")
    func roundTrip() {
        var rng = SeededRNG(seed: 0xB0D1_E5)
        for iteration in 0..<400 {
            let g = Self.generate(&rng)
            let whole = drive(g.bytes)
            #expect(whole.error == nil && whole.violation == nil, "iteration \(iteration): \(whole)")
            #expect(whole.requests.count == 1 && Self.check(g, whole.requests[0]), "iteration \(iteration): \(whole)")
            let splits = (0..<Int.random(in: 1...8, using: &rng)).map { _ in Int.random(in: 0...g.bytes.count, using: &rng) }
            #expect(drive(g.bytes, splits: splits, discard: Bool.random(using: &rng)) == whole, "iteration \(iteration)")
        }
    }

    @Test("pipelined random requests in one buffer, then split anywhere")
    func pipelined() {
        var rng = SeededRNG(seed: 0x919E)
        for iteration in 0..<60 {
            let gs = (0..<Int.random(in: 2...6, using: &rng)).map { _ in Self.generate(&rng) }
            let wire = gs.flatMap(\.bytes)
            let whole = drive(wire)
            #expect(whole.error == nil && whole.requests.count == gs.count, "iteration \(iteration): \(whole)")
            for (g, r) in zip(gs, whole.requests) { #expect(Self.check(g, r), "iteration \(iteration)") }
            let splits = (0..<Int.random(in: 1...10, using: &rng)).map { _ in Int.random(in: 0...wire.count, using: &rng) }
            #expect(drive(wire, splits: splits, discard: true) == whole, "iteration \(iteration)")
            #expect(drive(wire, splits: Array(0..<wire.count), discard: iteration % 2 == 0) == whole, "iteration \(iteration)")
        }
    }

    @Test("mutated valid requests: whole and split runs agree, ranges stay in bounds")
    func mutations() {
        var rng = SeededRNG(seed: 0xF022)
        for iteration in 0..<1500 {
            var bytes = Self.generate(&rng).bytes
            for _ in 0..<Int.random(in: 1...3, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: i)
                case 2: bytes.insert([13, 10, 32, 9, 0, 0x3A, 0x3B, 0x2C].randomElement(using: &rng)!, at: i)
                default: bytes.removeSubrange(i..<min(bytes.count, i + Int.random(in: 1...20, using: &rng)))
                }
            }
            let whole = drive(bytes)
            #expect(whole.violation == nil, "iteration \(iteration): \(whole)")
            let splits = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }
            #expect(drive(bytes, splits: splits, discard: Bool.random(using: &rng)) == whole, "iteration \(iteration)")
        }
    }
}

@Suite("HTTP/1.1 request parser: word-at-a-time scanning")
struct ParserScanningTests {
    @Test("a forbidden byte is found at every position of a long field value")
    func valueBytes() {
        let bad: [(UInt8, HTTPParseError.Kind)] = [(0x00, .invalidFieldValue), (0x01, .invalidFieldValue), (0x0B, .invalidFieldValue),
                                                    (0x1F, .invalidFieldValue), (0x7F, .invalidFieldValue), (0x0D, .bareCR), (0x0A, .bareLF)]
        for length in [1, 7, 8, 9, 15, 16, 17, 40] {
            for position in 0..<length {
                for (byte, kind) in bad {
                    var value = [UInt8](repeating: 0x61, count: length)
                    value[position] = byte
                    let wire = Array("GET / HTTP/1.1\r\nHost: h\r\nX: ".utf8) + value + Array("\r\n\r\n".utf8)
                    #expect(drive(wire).error == kind, "length \(length) position \(position) byte \(byte)")
                }
                var ok = [UInt8](repeating: 0x61, count: length)
                ok[position] = [0x09, 0x20, 0x80, 0xFF, 0x7E][position % 5]
                let wire = Array("GET / HTTP/1.1\r\nHost: h\r\nX: ".utf8) + ok + Array("\r\n\r\n".utf8)
                let outcome = drive(wire)
                #expect(outcome.error == nil, "length \(length) position \(position)")
                if let v = outcome.requests.first?.fields.last?[1] {
                    var trimmed = ok[...]
                    while let l = trimmed.last, l == 0x20 || l == 0x09 { trimmed.removeLast() }
                    while let f = trimmed.first, f == 0x20 || f == 0x09 { trimmed.removeFirst() }
                    #expect(v == Array(trimmed))
                }
            }
        }
    }

    @Test("a forbidden byte is found at every position of a long target")
    func targetBytes() {
        let bad: [(UInt8, HTTPParseError.Kind)] = [(0x00, .invalidRequestTarget), (0x09, .invalidRequestTarget), (0x23, .invalidRequestTarget),
                                                    (0x7F, .invalidRequestTarget), (0x80, .invalidRequestTarget), (0xFF, .invalidRequestTarget),
                                                    (0x0D, .bareCR), (0x20, .invalidVersion)]
        for length in [1, 7, 8, 9, 16, 17, 33] {
            for position in 1..<(length + 1) {
                for (byte, kind) in bad {
                    var target = [0x2F] + [UInt8](repeating: 0x7E, count: length)
                    target[position] = byte
                    let wire = Array("GET ".utf8) + target + Array(" HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
                    #expect(drive(wire).error == kind, "length \(length) position \(position) byte \(byte)")
                }
            }
        }
    }
}

@Suite("HTTP/1.1 request parser: limits")
struct ParserLimitTests {
    func request(target: String = "/", fields: [(String, String)] = [("Host", "h")], tail: String = "") -> [UInt8] {
        var s = "GET \(target) HTTP/1.1\r\n"
        for (n, v) in fields { s += "\(n): \(v)\r\n" }
        return Array((s + "\r\n" + tail).utf8)
    }

    @Test("request line: exactly the limit is accepted, one more is 414")
    func requestLine() {
        let fixed = "GET  HTTP/1.1".utf8.count
        let atLimit = "/" + String(repeating: "a", count: 8192 - fixed - 1)
        #expect(drive(request(target: atLimit)).requests.count == 1)
        let over = drive(request(target: atLimit + "a"))
        #expect(over.error == .requestLineTooLong && over.error?.status == 414)
    }

    @Test("request line: rejected while arriving, as soon as limit + 2 bytes hold no LF")
    func requestLineStreaming() throws {
        var parser = HTTPRequestParser()
        var buffer = Array("GET /".utf8) + [UInt8](repeating: 0x61, count: 8192 - 5 + 1)
        #expect(try buffer.withUnsafeBytes { try parser.parse($0) } == .needMore) // 8193 bytes: could still be content + CR
        buffer.append(0x61) // 8194 bytes, no LF: the content is over 8192 bytes
        #expect(throws: HTTPParseError(.requestLineTooLong)) { try buffer.withUnsafeBytes { try parser.parse($0) } }
        // The failure is sticky.
        #expect(throws: HTTPParseError(.requestLineTooLong)) { try parser.finish() }
    }

    @Test("field line: exactly 8 KiB is accepted, one more is 431")
    func fieldLine() {
        let v = String(repeating: "v", count: 8192 - "X-Long: ".utf8.count)
        #expect(drive(request(fields: [("Host", "h"), ("X-Long", v)])).requests.count == 1)
        let over = drive(request(fields: [("Host", "h"), ("X-Long", v + "v")]))
        #expect(over.error == .fieldLineTooLong && over.error?.status == 431)
        // Streaming: no LF within 8194 bytes of a field line.
        let partial = Array("GET / HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 0x76, count: 8192)
        #expect(drive(partial).error == .fieldLineTooLong)
    }

    @Test("header section: exactly 32 KiB is accepted, one more is 431")
    func headerSection() {
        // Host line (9) + 4 lines of 8000 + final CRLF (2) + filler line.
        var fields = [("Host", "h")]
        for i in 0..<4 { fields.append(("X-\(i)", String(repeating: "a", count: 8000 - 5))) }
        let used = 9 + 4 * 8002 + 2
        let fillerValue = String(repeating: "b", count: 32768 - used - "X-f: \r\n".utf8.count)
        fields.append(("X-f", fillerValue))
        #expect(drive(request(fields: fields)).requests.count == 1)
        fields[fields.count - 1].1 += "b"
        let over = drive(request(fields: fields))
        #expect(over.error == .headerSectionTooLarge && over.error?.status == 431)
    }

    @Test("100 fields are accepted, 101 are 431")
    func fieldCount() {
        let hundred = [("Host", "h")] + (1..<100).map { ("X-\($0)", "v") }
        #expect(drive(request(fields: hundred)).requests.first?.fields.count == 100)
        let over = drive(request(fields: hundred + [("X-100", "v")]))
        #expect(over.error == .tooManyFields && over.error?.status == 431)
    }

    @Test("trailer section: exactly 8 KiB is accepted, one more is 431")
    func trailerSection() {
        func wire(_ n: Int) -> [UInt8] {
            // Two trailer lines + final CRLF: "T1: <a>\r\n" "T2: <b>\r\n" "\r\n"
            let first = String(repeating: "a", count: 4000)
            let second = String(repeating: "b", count: n - (4 + 4000 + 2) - (4 + 2) - 2)
            return Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT1: \(first)\r\nT2: \(second)\r\n\r\n".utf8)
        }
        let ok = drive(wire(8192))
        #expect(ok.error == nil && ok.requests.first?.trailers.count == 2)
        let over = drive(wire(8193))
        #expect(over.error == .trailerSectionTooLarge && over.error?.status == 431)
    }

    @Test("chunk extensions: 16 KiB per request is accepted, one more byte is 413")
    func chunkExtensions() {
        func wire(_ total: Int) -> [UInt8] {
            // Extension part of each line: ";e=" + value; lines of 4096 bytes.
            var s = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            var left = total
            while left > 0 {
                let n = left >= 8192 ? 4096 : left
                s += "1;e=" + String(repeating: "x", count: n - 3) + "\r\nz\r\n"
                left -= n
            }
            return Array((s + "0\r\n\r\n").utf8)
        }
        let ok = drive(wire(16384))
        #expect(ok.error == nil && ok.requests.first?.body == Array("zzzz".utf8))
        let over = drive(wire(16385))
        #expect(over.error == .chunkExtensionsTooLarge && over.error?.status == 413)
        let streaming = Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=".utf8)
            + [UInt8](repeating: 0x78, count: 16400)
        #expect(drive(streaming).error == .chunkExtensionsTooLarge)
    }

    @Test("leading empty lines: up to the limit ignored, one more is 400")
    func leadingEmptyLines() {
        let four = Array(("\r\n\r\n\r\n\r\n" + "GET / HTTP/1.1\r\nHost: h\r\n\r\n").utf8)
        #expect(drive(four).requests.count == 1)
        #expect(drive(Array("\r\n".utf8) + four).error == .tooManyLeadingEmptyLines)
    }

    @Test("custom limits apply")
    func customLimits() {
        let limits = HTTPParserLimits(maxRequestLineLength: 20, maxFieldCount: 1)
        #expect(drive(Array("GET /abcdefg HTTP/1.1\r\nHost: h\r\n\r\n".utf8), limits: limits).error == .requestLineTooLong)
        #expect(drive(Array("GET /abcdef HTTP/1.1\r\nHost: h\r\n\r\n".utf8), limits: limits).requests.count == 1)
        #expect(drive(Array("GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n".utf8), limits: limits).error == .tooManyFields)
    }
}

@Suite("HTTP/1.1 request parser: API")
struct ParserAPITests {
    @Test("the 40-byte wrk request: head, end, views, owned copy")
    func wrkRequest() throws {
        let wire = Array("GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".utf8)
        #expect(wire.count == 40)
        var parser = HTTPRequestParser()
        try wire.withUnsafeBytes { b in
            guard case .head(let head) = try parser.parse(b) else { Issue.record("no head"); return }
            #expect(head.range == 0..<40)
            #expect(head.knownMethod == .get && head.targetForm == .origin && head.version == .http1_1)
            #expect(head.keepAlive && !head.hasBody && head.declaredContentLength == nil)
            #expect(head.fields.count == 1)
            #expect(head.fields.firstValue(named: "HOST", in: b) == head.host)
            #expect(Array(HTTPRequestHeadView.bytes(head.host!, in: b)) == Array("localhost:8080".utf8))
            let owned = head.owned(in: b)
            #expect(owned.method == "GET" && owned.target == "/" && owned.path == "/" && owned.query == nil)
            #expect(owned.host == "localhost:8080" && owned.value(forField: "host") == "localhost:8080")
            #expect(owned.fields == [HTTPField(name: "Host", value: "localhost:8080")])
            guard case .end(let trailers) = try parser.parse(b) else { Issue.record("no end"); return }
            #expect(trailers.isEmpty)
            #expect(try parser.parse(b) == .needMore)
            #expect(parser.consumed == 40 && parser.isAtMessageBoundary)
        }
        try parser.finish()
    }

    @Test("field storage is reused across requests: no reallocation after warm-up")
    func storageReuse() throws {
        let one = Array("GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n".utf8)
        let wire = Array([[UInt8]](repeating: one, count: 50).joined())
        var parser = HTTPRequestParser()
        var addresses = Set<UInt>()
        try wire.withUnsafeBytes { b in
            var requests = 0
            while true {
                let event = try parser.parse(b)
                if case .needMore = event { break }
                if case .head(let head) = event {
                    let address = head.fields.storage.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
                    addresses.insert(address)
                    requests += 1
                }
            }
            #expect(requests == 50)
        }
        #expect(addresses.count == 1, "field storage moved: \(addresses.count) buffers")
    }

    @Test("consumed and discard: a caller compacting after every event")
    func discardFlow() throws {
        var buffer = Array("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel".utf8)
        var parser = HTTPRequestParser()
        var body: [UInt8] = []
        func pump() throws -> [String] {
            var events: [String] = []
            while true {
                let event = try buffer.withUnsafeBytes { try parser.parse($0) }
                switch event {
                case .needMore: return events
                case .head(let h): events.append("head"); #expect(h.declaredContentLength == 5)
                case .body(let r): events.append("body"); body += buffer[r]
                case .end: events.append("end")
                }
                let n = parser.consumed
                buffer.removeFirst(n)
                parser.discard(n)
            }
        }
        #expect(try pump() == ["head", "body"])
        #expect(parser.isReadingBody && buffer.isEmpty)
        #expect(throws: HTTPParseError(.incompleteBody)) { var copy = parser; try copy.finish() }
        buffer += Array("lo".utf8)
        #expect(try pump() == ["body", "end"])
        #expect(body == Array("hello".utf8))
        try parser.finish()
    }

    @Test("errors carry status, kind name and the close rule; the parser stays failed")
    func errorShape() {
        let e = HTTPParseError(.unsupportedTransferEncoding)
        #expect(e.status == 501 && e.kind.name == "unsupportedTransferEncoding" && e.closesConnection)
        #expect("\(e)" == "HTTP parse error unsupportedTransferEncoding (501)")
        #expect(Set(HTTPParseError.Kind.allCases.map(\.name)).count == HTTPParseError.Kind.allCases.count)
        var parser = HTTPRequestParser()
        let bad = Array("GET / HTTP/1.1\nHost: h\n\n".utf8)
        bad.withUnsafeBytes { b in
            #expect(throws: HTTPParseError(.bareLF)) { try parser.parse(b) }
            #expect(throws: HTTPParseError(.bareLF)) { try parser.parse(b) }
        }
        parser.reset()
        let good = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        good.withUnsafeBytes { b in
            if case .head = try? parser.parse(b) {} else { Issue.record("reset did not clear the failure") }
        }
    }

    @Test("head views shift with the buffer")
    func shifting() throws {
        let wire = Array("\r\nGET /p?q HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n".utf8)
        var parser = HTTPRequestParser()
        try wire.withUnsafeBytes { b in
            guard case .head(let head) = try parser.parse(b) else { Issue.record("no head"); return }
            #expect(head.keepAlive && head.version == .http1_0)
            let moved = head.shifted(by: 2)
            let tail = UnsafeRawBufferPointer(rebasing: b[2...])
            #expect(moved.owned(in: tail) == head.owned(in: b))
        }
    }
}
