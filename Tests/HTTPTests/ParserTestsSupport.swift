// Shared harness for the parser tests (ParserTests*.swift): a driver that feeds bytes in pieces,
// a normalised outcome to compare runs, the corpus loader, a seeded RNG.
import Foundation
@testable import StrataHTTP

/// A request as the parser reported it, with every range materialised.
struct ParsedRequest: Equatable, CustomStringConvertible {
    var method: [UInt8]
    var knownMethod: HTTPMethod
    var target: [UInt8]
    var targetForm: HTTPRequestTargetForm
    var path: [UInt8]
    var query: [UInt8]?
    var version: HTTPVersion
    var fields: [[[UInt8]]]
    var host: [UInt8]?
    var framing: HTTPBodyFraming
    var keepAlive: Bool
    var expectsContinue: Bool
    var hasUnsupportedExpectation: Bool
    var isUpgradeRequest: Bool
    var body: [UInt8] = []
    var trailers: [[[UInt8]]] = []

    init(_ h: HTTPRequestHeadView, _ b: UnsafeRawBufferPointer) {
        func s(_ r: Range<Int>) -> [UInt8] { Array(b[r]) }
        method = s(h.method)
        knownMethod = h.knownMethod
        target = s(h.target)
        targetForm = h.targetForm
        path = s(h.path)
        query = h.query.map(s)
        version = h.version
        fields = h.fields.map { [s($0.name), s($0.value)] }
        host = h.host.map(s)
        framing = h.framing
        keepAlive = h.keepAlive
        expectsContinue = h.expectsContinue
        hasUnsupportedExpectation = h.hasUnsupportedExpectation
        isUpgradeRequest = h.isUpgradeRequest
    }

    var description: String {
        "\(latin1(method)) \(latin1(target)) \(version) fields=\(fields.map { "\(latin1($0[0]))=\(latin1($0[1]))" }) "
            + "framing=\(framing) body=\(body.count)B trailers=\(trailers.count)"
    }
}

/// Everything a run produced: the requests completed, then the error, if any.
struct Outcome: Equatable, CustomStringConvertible {
    var requests: [ParsedRequest] = []
    var error: HTTPParseError.Kind?
    /// Set when a structural invariant broke (range outside the buffer, ...).
    var violation: String?

    var description: String {
        "requests=\(requests) error=\(error.map(\.name) ?? "none")" + (violation.map { " VIOLATION \($0)" } ?? "")
    }
}

func latin1(_ bytes: [UInt8]) -> String { String(bytes.map { Character(Unicode.Scalar($0)) }) }
func bytesLatin1(_ s: String) -> [UInt8] { s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }

/// Feeds `input` to a fresh parser in pieces ending at `splits` (then the
/// rest), appending to one growing buffer; with `discard`, drops the
/// consumed prefix after every event. Ends with `finish()`.
func drive(_ input: [UInt8], splits: [Int] = [], discard: Bool = false,
           limits: HTTPParserLimits = .default) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    var outcome = Outcome()
    var current: ParsedRequest?
    var fed = 0
    let bounds = splits.filter { $0 > 0 && $0 < input.count }.sorted() + [input.count]
    for bound in bounds where bound > fed {
        buffer.append(contentsOf: input[fed..<bound])
        fed = bound
        while true {
            let result: Result<HTTPParseEvent, HTTPParseError> = buffer.withUnsafeBytes { b in
                Result { () throws(HTTPParseError) -> HTTPParseEvent in try parser.parse(b) }
            }
            let event: HTTPParseEvent
            switch result {
            case .failure(let e):
                outcome.error = e.kind
                return outcome
            case .success(let e):
                event = e
            }
            if case .needMore = event { break }
            buffer.withUnsafeBytes { b in
                func check(_ r: Range<Int>, _ what: String) {
                    if r.lowerBound < 0 || r.upperBound > b.count { outcome.violation = "\(what) \(r) outside 0..<\(b.count)" }
                }
                switch event {
                case .needMore:
                    break
                case .head(let h):
                    check(h.range, "head")
                    check(h.method, "method")
                    check(h.target, "target")
                    for f in h.fields { check(f.name, "name"); check(f.value, "value") }
                    if outcome.violation == nil { current = ParsedRequest(h, b) }
                case .body(let r):
                    check(r, "body")
                    if r.isEmpty { outcome.violation = "empty body event" }
                    if current == nil { outcome.violation = "body without head" }
                    if outcome.violation == nil { current?.body += b[r] }
                case .end(let t):
                    for f in t { check(f.name, "trailer name"); check(f.value, "trailer value") }
                    if current == nil { outcome.violation = "end without head" }
                    if outcome.violation == nil, var c = current {
                        c.trailers = t.map { [Array(b[$0.name]), Array(b[$0.value])] }
                        outcome.requests.append(c)
                    }
                    current = nil
                }
            }
            if outcome.violation != nil { return outcome }
            if parser.consumed > buffer.count { outcome.violation = "consumed beyond buffer"; return outcome }
            if discard {
                let n = parser.consumed
                buffer.removeFirst(n)
                parser.discard(n)
            }
        }
    }
    do throws(HTTPParseError) {
        try parser.finish()
    } catch {
        outcome.error = error.kind
    }
    return outcome
}

/// SplitMix64: small, seeded, reproducible.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Corpus

/// One corpus case (see docs/http-parser.md, "Corpus format").
struct CorpusCase: Decodable, Sendable, CustomStringConvertible {
    var name: String
    var input: String
    var requests: [ExpectedRequest]?
    var error: ExpectedError?
    var limits: [String: Int]?
    var file: String = ""

    enum CodingKeys: String, CodingKey { case name, input, requests, error, limits }

    var bytes: [UInt8] { bytesLatin1(input) }
    var description: String { "\(file): \(name)" }

    var parserLimits: HTTPParserLimits {
        var l = HTTPParserLimits()
        for (k, v) in limits ?? [:] {
            switch k {
            case "maxRequestLineLength": l.maxRequestLineLength = v
            case "maxFieldLineLength": l.maxFieldLineLength = v
            case "maxHeaderSectionSize": l.maxHeaderSectionSize = v
            case "maxFieldCount": l.maxFieldCount = v
            case "maxTrailerSectionSize": l.maxTrailerSectionSize = v
            case "maxChunkExtensionsSize": l.maxChunkExtensionsSize = v
            case "maxLeadingEmptyLines": l.maxLeadingEmptyLines = v
            default: fatalError("unknown limit \(k) in \(self)")
            }
        }
        return l
    }
}

struct ExpectedError: Decodable, Sendable {
    var status: Int
    var kind: String
}

/// Expected facts about one request; absent keys are not checked.
struct ExpectedRequest: Decodable, Sendable {
    var method: String?
    var knownMethod: String?
    var target: String?
    var targetForm: String?
    var path: String?
    var query: String?
    var version: String?
    var fields: [[String]]?
    var host: String?
    /// "none", "chunked" or the decimal Content-Length.
    var framing: String?
    var body: String?
    var trailers: [[String]]?
    var keepAlive: Bool?
    var expectsContinue: Bool?
    var unsupportedExpectation: Bool?
    var upgrade: Bool?

    /// The mismatches between this expectation and `r`, empty when it matches.
    func mismatches(_ r: ParsedRequest) -> [String] {
        var out: [String] = []
        func cmp(_ key: String, _ want: String?, _ got: [UInt8]?) {
            guard let want else { return }
            if got != bytesLatin1(want) { out.append("\(key): want \(want.debugDescription) got \(got.map { latin1($0).debugDescription } ?? "nil")") }
        }
        cmp("method", method, r.method)
        cmp("target", target, r.target)
        cmp("path", path, r.path)
        if let query { cmp("query", query, r.query) }
        cmp("host", host, r.host)
        cmp("body", body, r.body)
        if let knownMethod, "\(r.knownMethod)" != knownMethod { out.append("knownMethod: want \(knownMethod) got \(r.knownMethod)") }
        if let targetForm, "\(r.targetForm)" != targetForm { out.append("targetForm: want \(targetForm) got \(r.targetForm)") }
        if let version, r.version.description != version { out.append("version: want \(version) got \(r.version)") }
        if let framing {
            let got: String
            switch r.framing {
            case .none: got = "none"
            case .chunked: got = "chunked"
            case .contentLength(let n): got = String(n)
            }
            if got != framing { out.append("framing: want \(framing) got \(got)") }
        }
        if let fields, fields.map({ $0.map(bytesLatin1) }) != r.fields { out.append("fields: want \(fields) got \(r.fields.map { $0.map(latin1) })") }
        if let trailers, trailers.map({ $0.map(bytesLatin1) }) != r.trailers { out.append("trailers: want \(trailers) got \(r.trailers.map { $0.map(latin1) })") }
        if let keepAlive, keepAlive != r.keepAlive { out.append("keepAlive: want \(keepAlive)") }
        if let expectsContinue, expectsContinue != r.expectsContinue { out.append("expectsContinue: want \(expectsContinue)") }
        if let unsupportedExpectation, unsupportedExpectation != r.hasUnsupportedExpectation { out.append("unsupportedExpectation: want \(unsupportedExpectation)") }
        if let upgrade, upgrade != r.isUpgradeRequest { out.append("upgrade: want \(upgrade)") }
        return out
    }
}

private struct CorpusFile: Decodable {
    var description: String?
    var cases: [CorpusCase]
}

/// The corpus directory, found next to this source file (no resources needed).
let corpusDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

/// Every case of every `Corpus/*.json` file, sorted by file then order.
func loadCorpus() throws -> [CorpusCase] {
    let files = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path)
        .filter { $0.hasSuffix(".json") }.sorted()
    var all: [CorpusCase] = []
    for f in files {
        let data = try Data(contentsOf: corpusDirectory.appendingPathComponent(f))
        let file = try JSONDecoder().decode(CorpusFile.self, from: data)
        for var c in file.cases {
            c.file = f
            all.append(c)
        }
    }
    return all
}

/// Checks `outcome` against the case's expectation; returns the problems.
func verify(_ c: CorpusCase, _ outcome: Outcome) -> [String] {
    var problems: [String] = []
    if let v = outcome.violation { problems.append("invariant: \(v)") }
    if let want = c.error {
        guard let got = outcome.error else {
            return problems + ["expected error \(want.kind) (\(want.status)), got success: \(outcome)"]
        }
        if got.name != want.kind || got.status != want.status {
            problems.append("expected \(want.kind) (\(want.status)), got \(got.name) (\(got.status))")
        }
    } else if let got = outcome.error {
        problems.append("unexpected error \(got.name) (\(got.status)) after \(outcome.requests.count) request(s)")
    }
    let expected = c.requests ?? []
    if expected.count != outcome.requests.count {
        problems.append("expected \(expected.count) request(s), got \(outcome.requests.count): \(outcome.requests)")
    } else {
        for (i, (e, r)) in zip(expected, outcome.requests).enumerated() {
            problems += e.mismatches(r).map { "request \(i): \($0)" }
        }
    }
    return problems
}
