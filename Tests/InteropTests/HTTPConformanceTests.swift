// strata-serve's request handling over raw sockets: a table of conformance and
// request-smuggling cases, each request bytes → the responses expected (statuses, in order)
// and whether the server must close the connection afterwards. Expectations follow the
// decisions in docs/http-parser.md ("Strictness decisions" and "Limits").
//
// Every case runs on a fresh connection. After the expected responses:
// * `close`: the stream must end (a clean end of stream, no more bytes, no reset);
// * keep-alive: a follow-up `GET /` must be answered next with "Hello, World!" — so bytes
//   left over in the stream (a smuggled request, an undrained body) show up as a wrong or
//   extra response.
// `[]` means "closed without any response".
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

struct HTTPConformanceCase: Sendable, CustomStringConvertible {
    var name: String
    /// The bytes sent (Latin-1: `\u{0}`…`\u{ff}` are bytes).
    var request: String
    /// Final statuses expected, in order.
    var expect: [Int]
    /// The server must close after them.
    var close: Bool
    /// Half-close (shutdown SHUT_WR) after sending.
    var halfClose = false
    /// The body the (single) response must carry, when given.
    var body: String? = nil
    /// For a single response: any of these statuses passes (the connection is then expected
    /// open unless the response says `Connection: close`).
    var anyOf: Set<Int>? = nil

    var description: String { name }

    init(_ name: String, _ request: String, _ expect: [Int], close: Bool, halfClose: Bool = false, body: String? = nil,
         anyOf: Set<Int>? = nil) {
        self.anyOf = anyOf
        self.name = name
        self.request = request
        self.expect = expect
        self.close = close
        self.halfClose = halfClose
        self.body = body
    }
}

private let H = "Host: t\r\n"
private let ok = [200]
private let bad = [400]

/// `POST path` with the given field lines and body.
private func post(_ path: String = "/echo", _ fields: String, _ body: String = "") -> String {
    "POST \(path) HTTP/1.1\r\n\(H)\(fields)\r\n\(body)"
}

private let smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"

/// The table. Add a case: one line.
let httpConformanceCases: [HTTPConformanceCase] = [
    // Valid requests and keep-alive.
    .init("plain GET", get("/"), ok, close: false, body: "Hello, World!"),
    .init("GET /json", get("/json"), ok, close: false, body: #"{"message":"Hello, World!"}"#),
    .init("HEAD /", "HEAD / HTTP/1.1\r\n\(H)\r\n", ok, close: false),
    .init("unknown path 404", get("/nope"), [404], close: false),
    .init("DELETE on a GET route 405", "DELETE / HTTP/1.1\r\n\(H)\r\n", [405], close: false),
    .init("PATCH on a GET route 405", "PATCH / HTTP/1.1\r\n\(H)Content-Length: 2\r\n\r\nhi", [405], close: false),
    .init("HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", ok, close: true),
    .init("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ok, close: false),
    .init("Connection: close", get("/", "Connection: close\r\n"), ok, close: true),
    .init("Connection: keep-alive, close", get("/", "Connection: keep-alive, close\r\n"), ok, close: true),
    .init("Connection: empty list elements", get("/", "Connection: , keep-alive ,\r\n"), ok, close: false),
    .init("Connection not a token list", get("/", "Connection: a b\r\n"), bad, close: true),
    .init("one leading empty line", "\r\n" + get("/"), ok, close: false),
    .init("four leading empty lines", "\r\n\r\n\r\n\r\n" + get("/"), ok, close: false),
    .init("five leading empty lines", "\r\n\r\n\r\n\r\n\r\n" + get("/"), bad, close: true),
    .init("three pipelined GETs", get("/") + get("/json") + get("/healthz"), [200, 200, 200], close: false),
    .init("upgrade request is served as HTTP/1.1", get("/", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), ok, close: false),

    // Request line.
    .init("absolute-form accepted", "GET http://t/ HTTP/1.1\r\n\(H)\r\n", ok, close: false, body: "Hello, World!"),
    .init("absolute-form with another Host", "GET http://other:8080/json HTTP/1.1\r\n\(H)\r\n", ok, close: false),
    .init("absolute-form with userinfo", "GET http://u@t/ HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("absolute-form without authority", "GET http:/// HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("OPTIONS * is a valid request (not 400)", "OPTIONS * HTTP/1.1\r\n\(H)\r\n", [404], close: false,
          anyOf: [200, 204, 404, 405, 501]),
    .init("GET * rejected", "GET * HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("authority-form with GET", "GET t:80 HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("CONNECT not implemented", "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n", [501], close: true),
    .init("TRACE not implemented", "TRACE / HTTP/1.1\r\n\(H)\r\n", [501], close: true),
    .init("unknown method 501", "FOO / HTTP/1.1\r\n\(H)\r\n", [501], close: true),
    .init("lowercase method 501", "get / HTTP/1.1\r\n\(H)\r\n", [501], close: true),
    .init("method with a non-tchar", "GE(T / HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("double space in request line", "GET  / HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("tab as separator", "GET\t/ HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("HTTP/0.9 style request line", "GET /\r\n\r\n", bad, close: true),
    .init("space inside the target", "GET /a b HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("fragment in the target", "GET /#x HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("non-ASCII byte in the target", "GET /\u{ff} HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("DEL in the target", "GET /\u{7f} HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("NUL in the target", "GET /\u{0} HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("origin-form without leading slash", "GET a HTTP/1.1\r\n\(H)\r\n", bad, close: true),
    .init("request line of 9 KiB 414", "GET /" + String(repeating: "a", count: 9 * 1024) + " HTTP/1.1\r\n\(H)\r\n", [414], close: true),
    .init("request line of 8000 bytes accepted", "GET /" + String(repeating: "a", count: 7_980) + " HTTP/1.1\r\n\(H)\r\n", [404], close: false),

    // Versions.
    .init("HTTP/1.2 accepted as 1.1", "GET / HTTP/1.2\r\n\(H)\r\n", ok, close: false),
    .init("HTTP/1.9 accepted as 1.1", "GET / HTTP/1.9\r\n\(H)\r\n", ok, close: false),
    .init("HTTP/1.2 without Host", "GET / HTTP/1.2\r\n\r\n", bad, close: true),
    .init("HTTP/2.0 505", "GET / HTTP/2.0\r\n\(H)\r\n", [505], close: true),
    .init("HTTP/0.9 505", "GET / HTTP/0.9\r\n\(H)\r\n", [505], close: true),
    .init("HTTP/3.0 505", "GET / HTTP/3.0\r\n\(H)\r\n", [505], close: true),
    .init("h2 prior-knowledge preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [505], close: true),
    .init("lowercase http/1.1", "GET / http/1.1\r\n\(H)\r\n", bad, close: true),
    .init("HTTP/1.10", "GET / HTTP/1.10\r\n\(H)\r\n", bad, close: true),
    .init("HTTP/01.1", "GET / HTTP/01.1\r\n\(H)\r\n", bad, close: true),
    .init("HTTP/1", "GET / HTTP/1\r\n\(H)\r\n", bad, close: true),
    .init("HTTP/1.1x", "GET / HTTP/1.1x\r\n\(H)\r\n", bad, close: true),
    .init("space after the version", "GET / HTTP/1.1 \r\n\(H)\r\n", bad, close: true),

    // Line endings, folding, bytes in fields.
    .init("bare LF everywhere", "GET / HTTP/1.1\nHost: t\n\n", bad, close: true),
    .init("bare LF after a field", "GET / HTTP/1.1\r\nHost: t\n\r\n", bad, close: true),
    .init("bare LF as the empty line", "GET / HTTP/1.1\r\nHost: t\r\n\n", bad, close: true),
    .init("bare CR in the request line", "GET / HTTP/1.1\rHost: t\r\n\r\n", bad, close: true),
    .init("bare CR in a field value", get("/", "X: a\rb\r\n"), bad, close: true),
    .init("obs-fold", get("/", "X: a\r\n b\r\n"), bad, close: true),
    .init("obs-fold with HTAB", get("/", "X: a\r\n\tb\r\n"), bad, close: true),
    .init("whitespace before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", bad, close: true),
    .init("space before colon (Host : t)", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", bad, close: true),
    .init("NUL in a field value", get("/", "X: a\u{0}b\r\n"), bad, close: true),
    .init("0x01 in a field value", get("/", "X: a\u{1}b\r\n"), bad, close: true),
    .init("ESC in a field value", get("/", "X: a\u{1b}b\r\n"), bad, close: true),
    .init("DEL in a field value", get("/", "X: a\u{7f}b\r\n"), bad, close: true),
    .init("HTAB in a field value accepted", get("/", "X: a\tb\r\n"), ok, close: false),
    .init("obs-text in a field value accepted", get("/", "X: caf\u{e9}\u{ff}\r\n"), ok, close: false),
    .init("non-tchar in a field name", get("/", "X(y): a\r\n"), bad, close: true),
    .init("empty field name", get("/", ": a\r\n"), bad, close: true),
    .init("field line without colon", get("/", "X-No-Colon\r\n"), bad, close: true),

    // Host.
    .init("missing Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", bad, close: true),
    .init("duplicate Host", get("/", "Host: t\r\n"), bad, close: true),
    .init("duplicate Host on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", bad, close: true),
    .init("empty Host accepted", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ok, close: false),
    .init("IPv6 literal Host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", ok, close: false),
    .init("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", bad, close: true),
    .init("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@t\r\n\r\n", bad, close: true),
    .init("Host with a 6-digit port", "GET / HTTP/1.1\r\nHost: t:123456\r\n\r\n", bad, close: true),

    // Content-Length.
    .init("POST with Content-Length", post("/echo", "Content-Length: 5\r\n", "hello"), ok, close: false, body: "hello"),
    .init("Content-Length: 0", post("/echo", "Content-Length: 0\r\n"), ok, close: false, body: ""),
    .init("CL with trailing OWS accepted", post("/echo", "Content-Length: 5 \r\n", "hello"), ok, close: false, body: "hello"),
    .init("duplicate identical CL", post("/echo", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), bad, close: true),
    .init("duplicate different CL", post("/echo", "Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), bad, close: true),
    .init("CL list 5, 5", post("/echo", "Content-Length: 5, 5\r\n", "hello"), bad, close: true),
    .init("CL with plus sign", post("/echo", "Content-Length: +5\r\n", "hello"), bad, close: true),
    .init("CL negative", post("/echo", "Content-Length: -5\r\n", "hello"), bad, close: true),
    .init("CL with inner space", post("/echo", "Content-Length: 5 0\r\n", "hello"), bad, close: true),
    .init("CL hex", post("/echo", "Content-Length: 0x5\r\n", "hello"), bad, close: true),
    .init("CL empty", post("/echo", "Content-Length:\r\n", "hello"), bad, close: true),
    .init("CL 2^63", post("/echo", "Content-Length: 9223372036854775808\r\n"), bad, close: true),
    .init("CL 20 digits", post("/echo", "Content-Length: 99999999999999999999\r\n"), bad, close: true),

    // Transfer-Encoding.
    .init("chunked POST", post("/echo", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), ok, close: false, body: "hello world"),
    .init("chunked, uppercase hex size", post("/echo", "Transfer-Encoding: chunked\r\n", "A\r\n0123456789\r\n0\r\n\r\n"), ok, close: false, body: "0123456789"),
    .init("Transfer-Encoding: Chunked (case-insensitive)", post("/echo", "Transfer-Encoding: Chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), ok, close: false, body: "hello"),
    .init("CL + TE (CL.TE)", post("/echo", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX"), bad, close: true),
    .init("TE + CL (TE.CL)", post("/echo", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "8\r\nSMUGGLED\r\n0\r\n\r\n"), bad, close: true),
    .init("TE: chunked,identity", post("/echo", "Transfer-Encoding: chunked,identity\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE: identity", post("/echo", "Transfer-Encoding: identity\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE: xchunked", post("/echo", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE: chunked, chunked", post("/echo", "Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"), bad, close: true),
    .init("two TE: chunked lines", post("/echo", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), bad, close: true),
    .init("Transfer-Encoding : chunked", post("/echo", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE with a parameter on chunked", post("/echo", "Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE with an empty element", post("/echo", "Transfer-Encoding: , chunked\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE empty", post("/echo", "Transfer-Encoding:\r\n", "0\r\n\r\n"), bad, close: true),
    .init("TE: gzip, chunked 501", post("/echo", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), [501], close: true),
    .init("TE in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad, close: true),
    .init("TE obfuscated by vertical tab", post("/echo", "Transfer-Encoding:\u{b}chunked\r\n", "0\r\n\r\n"), bad, close: true),

    // Chunked bodies.
    .init("chunk size 0x5", post("/nope", "Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size with trailing space", post("/nope", "Transfer-Encoding: chunked\r\n", "5 \r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size with leading space", post("/nope", "Transfer-Encoding: chunked\r\n", " 5\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size -5", post("/nope", "Transfer-Encoding: chunked\r\n", "-5\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size +5", post("/nope", "Transfer-Encoding: chunked\r\n", "+5\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size empty", post("/nope", "Transfer-Encoding: chunked\r\n", "\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size 17 digits", post("/nope", "Transfer-Encoding: chunked\r\n", "00000000000000005\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size above 2^63-1", post("/nope", "Transfer-Encoding: chunked\r\n", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk size bare LF", post("/nope", "Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk data without CRLF", post("/nope", "Transfer-Encoding: chunked\r\n", "5\r\nhelloX\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk data longer than its size", post("/nope", "Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("valid chunk extensions", post("/echo", "Transfer-Encoding: chunked\r\n", "5;a=b;c=\"d e\"\r\nhello\r\n0;z\r\n\r\n"), ok, close: false, body: "hello"),
    .init("chunk extension with BWS", post("/echo", "Transfer-Encoding: chunked\r\n", "5 ;a=b\r\nhello\r\n0\r\n\r\n"), ok, close: false, body: "hello"),
    .init("empty chunk extension", post("/nope", "Transfer-Encoding: chunked\r\n", "5;\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk extension without value", post("/nope", "Transfer-Encoding: chunked\r\n", "5;a=\r\nhello\r\n0\r\n\r\n"), bad, close: true),
    .init("chunk extension of 17 KiB 413", post("/nope", "Transfer-Encoding: chunked\r\n", "5;a=" + String(repeating: "b", count: 17 * 1024) + "\r\nhello\r\n0\r\n\r\n"), [413], close: true),
    .init("chunk extensions over 16 KiB in total 413", post("/nope", "Transfer-Encoding: chunked\r\n", String(repeating: "1;a=" + String(repeating: "b", count: 1000) + "\r\nx\r\n", count: 20) + "0\r\n\r\n"), [413], close: true),
    .init("valid trailer", post("/echo", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"), ok, close: false, body: "hello"),
    .init("Content-Length in trailers", post("/nope", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), bad, close: true),
    .init("Host in trailers", post("/nope", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nHost: evil\r\n\r\n"), bad, close: true),

    // Expectations.
    .init("Expect: foo 417", post("/echo", "Expect: foo\r\nContent-Length: 5\r\n", "hello"), [417], close: true),
    .init("Expect: 100-continue with the body sent at once", post("/echo", "Expect: 100-continue\r\nContent-Length: 5\r\n", "hello"), ok, close: false, body: "hello"),
    .init("Expect: 100-continue on a 404 route, body never read", post("/nope", "Expect: 100-continue\r\nContent-Length: 5\r\n"), [404], close: true),

    // Limits.
    .init("100 fields accepted", "GET / HTTP/1.1\r\n\(H)" + (1...99).map { "X-\($0): v\r\n" }.joined() + "\r\n", ok, close: false),
    .init("101 fields 431", "GET / HTTP/1.1\r\n\(H)" + (1...100).map { "X-\($0): v\r\n" }.joined() + "\r\n", [431], close: true),
    .init("field line of 9 KiB 431", get("/", "X: " + String(repeating: "v", count: 9 * 1024) + "\r\n"), [431], close: true),
    .init("header section over 32 KiB 431", get("/", (1...5).map { "X-\($0): " + String(repeating: "v", count: 7 * 1024) + "\r\n" }.joined()), [431], close: true),

    // Pipelining and smuggling.
    .init("valid then malformed pipelined", get("/") + post("/echo", "Content-Length: -1\r\n"), [200, 400], close: true),
    .init("valid then bare LF pipelined", get("/") + "GET / HTTP/1.1\nHost: t\n\n", [200, 400], close: true),
    .init("request inside a CL body is not executed", post("/echo", "Content-Length: \(smuggled.utf8.count)\r\n", smuggled), ok, close: false, body: smuggled),
    .init("request inside a chunked body is not executed", post("/echo", "Transfer-Encoding: chunked\r\n", String(smuggled.utf8.count, radix: 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n"), ok, close: false, body: smuggled),
    .init("request inside a 404's body is drained", post("/nope", "Content-Length: \(smuggled.utf8.count)\r\n", smuggled), [404], close: false),
    .init("request inside a GET body is drained", get("/", "Content-Length: \(smuggled.utf8.count)\r\n") + smuggled, ok, close: false),
    .init("CL.TE smuggle prefix rejected", post("/echo", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "1\r\nZ\r\n0\r\n\r\n" + smuggled), bad, close: true),
    .init("TE.TE obfuscation (TE + X TE)", post("/echo", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", "0\r\n\r\n" + smuggled), bad, close: true),

    // The peer half-closes.
    .init("half-close before any byte", "", [], close: true, halfClose: true),
    .init("complete request then half-close", get("/"), ok, close: true, halfClose: true),
    .init("half-close inside a head", "GET / HTTP/1.1\r\nHost: t\r\n", bad, close: true, halfClose: true),
    .init("half-close inside a drained body", post("/nope", "Content-Length: 10\r\n", "hello"), bad, close: true, halfClose: true),
]

@Suite("strata-serve conformance (raw sockets)", .serialized)
struct HTTPConformanceTests {
    @Test("the table has enough distinct cases")
    func tableSize() {
        #expect(httpConformanceCases.count >= 80)
        #expect(Set(httpConformanceCases.map(\.name)).count == httpConformanceCases.count, "case names must be unique")
    }

    /// Runs one case on a fresh connection; returns a description of what went wrong (nil: passed).
    static func run(_ c: HTTPConformanceCase, port: UInt16) -> String? {
        let client: RawHTTPClient
        do { client = try RawHTTPClient(port: port) } catch { return "connect: \(error)" }
        if !c.request.isEmpty && !client.send(c.request) { return "the server refused the request bytes" }
        if c.halfClose { client.shutdownWrite() }
        var c = c
        var statuses: [Int] = []
        if let anyOf = c.anyOf {
            // Whichever acceptable status came decides whether the connection stays open.
            let outcome = client.readResponse()
            guard let r = outcome.response, anyOf.contains(r.status) else { return "expected one of \(anyOf.sorted()), got \(outcome)" }
            statuses = [r.status]
            c.close = r.connectionClose
        } else {
            for (index, expected) in c.expect.enumerated() {
                let outcome = client.readResponse(isHead: index == 0 && c.request.hasPrefix("HEAD "))
                guard let response = outcome.response else {
                    return "response \(index + 1): expected \(expected), got \(outcome) (statuses so far \(statuses))"
                }
                statuses.append(response.status)
                guard response.status == expected else { return "expected \(c.expect), got \(statuses)" }
                if let body = c.body, response.bodyText != body {
                    return "body \(response.bodyText.debugDescription), expected \(body.debugDescription)"
                }
                // (After a half-close the server may have answered before it saw the end of stream.)
                if c.close && !c.halfClose && index == c.expect.count - 1 && !response.connectionClose {
                    return "the last response before the close lacks Connection: close"
                }
                if !c.close && response.connectionClose { return "Connection: close on a connection that should stay open" }
            }
        }
        if c.close {
            let (end, extra) = client.readToEnd()
            if !extra.isEmpty {
                return "after \(statuses): \(extra.count) more bytes: \(String(decoding: extra.prefix(80), as: UTF8.self).debugDescription)"
            }
            if end != .eof { return "after \(statuses): \(end) instead of a clean end of stream" }
        } else {
            guard client.send(get("/")) else { return "the follow-up request could not be sent" }
            let follow = client.readResponse()
            guard let r = follow.response, r.status == 200, r.bodyText == "Hello, World!" else {
                return "after \(statuses): the follow-up GET / got \(follow) \(follow.response?.bodyText.debugDescription ?? "")"
            }
        }
        if !client.interim.isEmpty && !c.request.contains("Expect: 100-continue") {
            return "unexpected interim responses \(client.interim)"
        }
        return nil
    }

    @Test("every case of the table", arguments: linuxBackends)
    func table(backend: String) throws {
        let server = try ServerProcess("strata-serve", ["--port", "0", "--backend", backend])
        var failed = 0
        for c in httpConformanceCases {
            if let problem = Self.run(c, port: server.port) {
                failed += 1
                Issue.record("[\(backend)] \(c.name): \(problem)")
            }
        }
        #expect(failed == 0, "\(failed) of \(httpConformanceCases.count) cases failed on \(backend)")
        #expect(server.stop() == 0)
    }
}
