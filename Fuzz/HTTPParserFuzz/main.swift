// libFuzzer target for the StrataHTTP request parser.
//
// Built by Fuzz/run-http-parser.sh with
//   swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo \
//       Modules/HTTP/Sources/Parser/*.swift Fuzz/HTTPParserFuzz/main.swift
// so the parser sources and this file form one module.
//
// For every input it checks:
//  1. no crash, no out-of-bounds read (ASan), no unbounded loop (libFuzzer -timeout);
//  2. whole vs split: the input fed in one piece, at two split points derived
//     from the input (discarding consumed bytes or not), and byte by byte for
//     short inputs, gives the same transcript (requests, bodies, trailers, error);
//  3. invariants: every range within the buffer and within its head, body
//     events non-empty, `consumed` never beyond the buffer;
//  4. re-serialisation: every accepted request, written back canonically and
//     parsed again, yields the same request.
// The first input byte selects default or small limits (to reach limit paths).

/// A normalised record of one run: one line-ish entry per request and the error.
struct Transcript: Equatable {
    var log: [UInt8] = []
    var requests: [Request] = []
    var error: HTTPParseError.Kind?
}

/// One accepted request, materialised.
struct Request: Equatable {
    var method: [UInt8] = []
    var target: [UInt8] = []
    var version = HTTPVersion.http1_1
    var fields: [([UInt8], [UInt8])] = []
    var framing = HTTPBodyFraming.none
    var keepAlive = false
    var expectsContinue = false
    var body: [UInt8] = []
    var trailers: [([UInt8], [UInt8])] = []

    static func == (a: Request, b: Request) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version
            && a.fields.elementsEqual(b.fields, by: { $0.0 == $1.0 && $0.1 == $1.1 })
            && a.framing == b.framing && a.keepAlive == b.keepAlive && a.expectsContinue == b.expectsContinue
            && a.body == b.body && a.trailers.elementsEqual(b.trailers, by: { $0.0 == $1.0 && $0.1 == $1.1 })
    }
}

@inline(never)
func fail(_ message: String) -> Never {
    fatalError("HTTPParserFuzz: \(message)")
}

func inBounds(_ r: Range<Int>, _ count: Int) -> Bool { r.lowerBound >= 0 && r.upperBound <= count }
func within(_ r: Range<Int>, _ outer: Range<Int>) -> Bool { r.lowerBound >= outer.lowerBound && r.upperBound <= outer.upperBound }

/// Feeds `input` ending pieces at `splits` (sorted), optionally discarding.
func run(_ input: UnsafeBufferPointer<UInt8>, splits: [Int], discard: Bool, limits: HTTPParserLimits) -> Transcript {
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    buffer.reserveCapacity(input.count)
    var t = Transcript()
    var current: Request?
    var fed = 0
    for bound in splits + [input.count] where bound > fed && bound <= input.count {
        buffer.append(contentsOf: input[fed..<bound])
        fed = bound
        while true {
            let result: Result<HTTPParseEvent, HTTPParseError> = buffer.withUnsafeBytes { b in
                Result { () throws(HTTPParseError) -> HTTPParseEvent in try parser.parse(b) }
            }
            guard case .success(let event) = result else {
                if case .failure(let e) = result { t.error = e.kind }
                return t
            }
            if case .needMore = event { break }
            buffer.withUnsafeBytes { b in
                let n = b.count
                switch event {
                case .needMore:
                    break
                case .head(let h):
                    guard current == nil else { fail("head while a request is open") }
                    guard inBounds(h.range, n) else { fail("head range \(h.range) outside \(n)") }
                    for r in [h.method, h.target, h.path] + [h.query, h.host, h.targetAuthority].compactMap({ $0 }) {
                        guard within(r, h.range) else { fail("range \(r) outside head \(h.range)") }
                    }
                    var req = Request()
                    req.method = Array(b[h.method])
                    req.target = Array(b[h.target])
                    req.version = h.version
                    for f in h.fields {
                        guard within(f.name, h.range), within(f.value, h.range), !f.name.isEmpty else { fail("field \(f) outside head") }
                        req.fields.append((Array(b[f.name]), Array(b[f.value])))
                    }
                    guard h.method.count > 0, h.target.count > 0 else { fail("empty method or target") }
                    req.framing = h.framing
                    req.keepAlive = h.keepAlive
                    req.expectsContinue = h.expectsContinue
                    current = req
                case .body(let r):
                    guard current != nil else { fail("body without head") }
                    guard inBounds(r, n), !r.isEmpty else { fail("body range \(r) of \(n)") }
                    current!.body += b[r]
                case .end(let trailers):
                    guard var req = current else { fail("end without head") }
                    for f in trailers {
                        guard inBounds(f.name, n), inBounds(f.value, n) else { fail("trailer outside buffer") }
                        req.trailers.append((Array(b[f.name]), Array(b[f.value])))
                    }
                    if case .contentLength(let len) = req.framing, len != req.body.count { fail("body \(req.body.count) != CL \(len)") }
                    t.requests.append(req)
                    current = nil
                }
            }
            guard parser.consumed <= buffer.count else { fail("consumed beyond buffer") }
            if discard {
                let c = parser.consumed
                buffer.removeFirst(c)
                parser.discard(c)
            }
        }
    }
    do throws(HTTPParseError) {
        try parser.finish()
    } catch {
        t.error = error.kind
    }
    return t
}

/// The canonical wire form of an accepted request.
func serialise(_ r: Request) -> [UInt8] {
    var out = r.method + [0x20] + r.target + Array(" HTTP/\(r.version.major).\(r.version.minor)\r\n".utf8)
    for (n, v) in r.fields { out += n + Array(": ".utf8) + v + [13, 10] }
    out += [13, 10]
    switch r.framing {
    case .none:
        break
    case .contentLength:
        out += r.body
    case .chunked:
        if !r.body.isEmpty { out += Array(String(r.body.count, radix: 16).utf8) + [13, 10] + r.body + [13, 10] }
        out += Array("0\r\n".utf8)
        for (n, v) in r.trailers { out += n + Array(": ".utf8) + v + [13, 10] }
        out += [13, 10]
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeBufferPointer(start: data, count: size)
    let small = size > 0 && data[0] & 1 == 1
    let limits = small
        ? HTTPParserLimits(maxRequestLineLength: 64, maxFieldLineLength: 48, maxHeaderSectionSize: 256, maxFieldCount: 8,
                           maxTrailerSectionSize: 64, maxChunkExtensionsSize: 32, maxLeadingEmptyLines: 2)
        : HTTPParserLimits()

    let whole = run(input, splits: [], discard: false, limits: limits)

    // Two split points and the discard choice derived from the input (FNV-1a).
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in input { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    let s1 = size == 0 ? 0 : Int(h % UInt64(size + 1))
    let s2 = size == 0 ? 0 : Int((h >> 32) % UInt64(size + 1))
    let split = run(input, splits: [min(s1, s2), max(s1, s2)], discard: h & (1 << 20) != 0, limits: limits)
    guard split.requests == whole.requests, split.error == whole.error else {
        fail("split at \(s1),\(s2) differs: \(split.requests.count)/\(String(describing: split.error)) vs \(whole.requests.count)/\(String(describing: whole.error))")
    }
    if size <= 512 {
        let bytewise = run(input, splits: Array(0..<size), discard: h & 2 != 0, limits: limits)
        guard bytewise.requests == whole.requests, bytewise.error == whole.error else { fail("byte-by-byte run differs") }
    }

    // Accepted requests survive a canonical round trip.
    var roundTripLimits = HTTPParserLimits(maxRequestLineLength: 1 << 20, maxFieldLineLength: 1 << 20, maxHeaderSectionSize: 1 << 22,
                                           maxFieldCount: limits.maxFieldCount, maxTrailerSectionSize: 1 << 22)
    roundTripLimits.maxLeadingEmptyLines = 0
    for r in whole.requests {
        let wire = serialise(r)
        let again = wire.withUnsafeBufferPointer { run($0, splits: [], discard: false, limits: roundTripLimits) }
        guard again.error == nil, again.requests.count == 1, again.requests[0] == r else {
            fail("round trip failed: \(String(describing: again.error)) \(again.requests.count)")
        }
    }
    return 0
}
