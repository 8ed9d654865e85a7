import Testing
@testable import StrataHTTP

@Suite struct ResponseTests {
    static let fixedDate = DateCache(clock: { 784_111_777 })   // Sun, 06 Nov 1994 08:49:37 GMT
    static let dateLine = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

    func head(_ status: HTTPStatus, _ fields: HTTPFields = HTTPFields(), _ framing: ResponseFraming,
              keepAlive: Bool = true, version: HTTPVersion = .http1_1, server: StaticString? = nil) -> String {
        var out: [UInt8] = []
        ResponseSerializer.writeHead(status: status, fields: fields, framing: framing, keepAlive: keepAlive,
                                     requestVersion: version, date: Self.fixedDate, server: server, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func okWithContentLength() {
        #expect(head(.ok, ["Content-Type": "text/plain"], .contentLength(13), server: "strata")
                == "HTTP/1.1 200 OK\r\nServer: strata\r\n" + Self.dateLine
                + "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n")
    }

    @Test func chunkedAndClose() {
        #expect(head(.ok, [:], .chunked, keepAlive: false)
                == "HTTP/1.1 200 OK\r\n" + Self.dateLine + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    }

    @Test func http10KeepAlive() {
        #expect(head(.ok, [:], .contentLength(0), keepAlive: true, version: .http1_0)
                == "HTTP/1.1 200 OK\r\n" + Self.dateLine + "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n")
        #expect(head(.ok, [:], .contentLength(5), keepAlive: false, version: .http1_0)
                == "HTTP/1.1 200 OK\r\n" + Self.dateLine + "Content-Length: 5\r\nConnection: close\r\n\r\n")
    }

    @Test func noBodyFraming() {
        // Keep-alive: an empty body must be delimited.
        #expect(head(.ok, [:], .noBody) == "HTTP/1.1 200 OK\r\n" + Self.dateLine + "Content-Length: 0\r\n\r\n")
        // Close: close-delimited (HTTP/1.0 streaming).
        #expect(head(.ok, [:], .noBody, keepAlive: false, version: .http1_0)
                == "HTTP/1.1 200 OK\r\n" + Self.dateLine + "Connection: close\r\n\r\n")
    }

    @Test func noFramingFor1xx204304() {
        #expect(head(.continue, [:], .noBody) == "HTTP/1.1 100 Continue\r\n" + Self.dateLine + "\r\n")
        #expect(head(.noContent, [:], .contentLength(10)) == "HTTP/1.1 204 No Content\r\n" + Self.dateLine + "\r\n")
        #expect(head(.notModified, ["ETag": "\"x\""], .chunked)
                == "HTTP/1.1 304 Not Modified\r\n" + Self.dateLine + "ETag: \"x\"\r\n\r\n")
    }

    @Test func userFramingFieldsAreSkippedAndServerDateNotDuplicated() {
        let fields: HTTPFields = ["server": "mine", "DATE": "Mon, 07 Nov 1994 00:00:00 GMT",
                                  "content-length": "99", "Transfer-Encoding": "gzip", "X-A": "1"]
        #expect(head(.ok, fields, .contentLength(3), server: "strata")
                == "HTTP/1.1 200 OK\r\nserver: mine\r\nDATE: Mon, 07 Nov 1994 00:00:00 GMT\r\nX-A: 1\r\nContent-Length: 3\r\n\r\n")
    }

    @Test func nonStandardStatusLines() {
        #expect(head(HTTPStatus(code: 299, reason: "Custom Thing"), [:], .contentLength(0))
                == "HTTP/1.1 299 Custom Thing\r\n" + Self.dateLine + "Content-Length: 0\r\n\r\n")
        // A standard code with another reason is written as given.
        #expect(head(HTTPStatus(code: 200, reason: "Fine"), [:], .contentLength(0)).hasPrefix("HTTP/1.1 200 Fine\r\n"))
        #expect(head(HTTPStatus(code: 599, reason: ""), [:], .contentLength(0)).hasPrefix("HTTP/1.1 599 \r\n"))
    }

    @Test(arguments: [100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408,
                      411, 412, 413, 414, 416, 417, 429, 431, 500, 501, 502, 503, 504, 505])
    func precomputedLinesMatchStandard(code: Int) {
        var a: [UInt8] = []
        ResponseSerializer.writeStatusLine(.standard(code), into: &a)
        #expect(String(decoding: a, as: UTF8.self) == "HTTP/1.1 \(code) \(HTTPStatus.standardReason(code)!)\r\n")
    }

    @Test func namedStatuses() {
        #expect(HTTPStatus.payloadTooLarge.description == "413 Content Too Large")
        #expect(HTTPStatus.uriTooLong == .standard(414))
        #expect(HTTPStatus.requestHeaderFieldsTooLarge == .standard(431))
        #expect(HTTPStatus.httpVersionNotSupported == .standard(505))
        #expect(HTTPStatus.standard(418).reason == "")
        #expect(HTTPStatus.partialContent.code == 206 && HTTPStatus.rangeNotSatisfiable.code == 416)
    }

    @Test func simpleResponse() {
        var out: [UInt8] = []
        let body: StaticString = "Hello, World!"
        body.withUTF8Buffer { b in
            ResponseSerializer.writeSimpleResponse(status: .ok, contentType: "text/plain", body: UnsafeRawBufferPointer(b),
                                                   keepAlive: true, requestVersion: .http1_1, date: Self.fixedDate,
                                                   server: "strata", into: &out)
        }
        #expect(String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 200 OK\r\nServer: strata\r\n" + Self.dateLine
                + "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
    }

    @Test func chunks() {
        var out: [UInt8] = []
        let data = [UInt8](repeating: 0x61, count: 26)
        data.withUnsafeBytes { ResponseSerializer.writeChunk($0, into: &out) }
        [UInt8]().withUnsafeBytes { ResponseSerializer.writeChunk($0, into: &out) }   // nothing
        ResponseSerializer.writeLastChunk(trailers: nil, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "1a\r\n" + String(repeating: "a", count: 26) + "\r\n0\r\n\r\n")

        out = []
        var trailers = HTTPFields()
        trailers.append("Checksum", "abc")
        trailers.append("Content-Length", "5")   // never a trailer
        ResponseSerializer.writeLastChunk(trailers: trailers, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "0\r\nChecksum: abc\r\n\r\n")

        out = []
        ResponseSerializer.writeChunkHeader(size: 0x10000, into: &out)
        ResponseSerializer.writeChunkEnd(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "10000\r\n\r\n")
    }

    @Test func integerFormatting() {
        for v in [0, 7, 10, 99, 100, 12345, Int.max] {
            var out: [UInt8] = []
            ResponseSerializer.appendDecimal(v, &out)
            #expect(String(decoding: out, as: UTF8.self) == String(v))
        }
        for v in [1, 15, 16, 255, 4096, Int.max] {
            var out: [UInt8] = []
            ResponseSerializer.appendHex(v, &out)
            #expect(String(decoding: out, as: UTF8.self) == String(v, radix: 16))
        }
    }

    @Test func serializerKeepsCapacity() {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        let base = out.withUnsafeBufferPointer { $0.baseAddress }
        var fields = HTTPFields()
        fields.append("Content-Type", "application/json")
        for _ in 0..<3 {
            out.removeAll(keepingCapacity: true)
            ResponseSerializer.writeHead(status: .ok, fields: fields, framing: .contentLength(27), keepAlive: true,
                                         requestVersion: .http1_1, date: Self.fixedDate, server: "strata", into: &out)
        }
        #expect(out.withUnsafeBufferPointer { $0.baseAddress } == base)
    }

    // MARK: Fields

    @Test func fieldsLookupAndRemove() {
        var f = HTTPFields()
        f.append("Set-Cookie", "a=1")
        f.append("X-Thing", "v\tw")
        f.append("set-cookie", "b=2")
        #expect(f["SET-COOKIE"] == "a=1")
        #expect(f.values("Set-Cookie") == ["a=1", "b=2"])
        #expect(f.contains("x-thing") && !f.contains("x-thin"))
        f.remove("SET-cookie")
        #expect(f.count == 1 && f["set-cookie"] == nil)
        f.set("x-thing", "z")
        #expect(f["X-Thing"] == "z" && f.count == 1)
        #expect(f.map(\.name) == ["x-thing"])
    }

    @Test(arguments: ["X-A\r\nX-Injected", "", "Bad Name", "X:Y", "Ü", "a\0b", "(x)"])
    func invalidNamesRejected(name: String) {
        var f = HTTPFields()
        #expect(throws: HTTPFieldError.invalidName(name)) { try f.tryAppend(name, "v") }
        #expect(f.isEmpty)
    }

    @Test(arguments: [("ok\r\nSet-Cookie: evil", 2), ("a\nb", 1), ("a\rb", 1), ("nul\0", 3), ("\u{7F}", 0), ("\u{1B}[31m", 0)])
    func invalidValuesRejected(value: String, offset: Int) {
        var f = HTTPFields()
        #expect(throws: HTTPFieldError.invalidValue(name: "X", offset: offset)) { try f.tryAppend("X", value) }
        #expect(f.isEmpty)
    }

    @Test func validValuesAccepted() throws {
        var f = HTTPFields()
        try f.tryAppend("X", "")
        try f.tryAppend("X", "tab\there, obs-text é, !#$%&'*+-.^_`|~")
        try f.tryAppend("!#$%&'*+-.^_`|~09azAZ", "v")
        #expect(f.count == 3)
    }

    @Test func errorMessagesAreClear() {
        #expect(HTTPFieldError.invalidValue(name: "X", offset: 2).description.contains("offset 2"))
        #expect(HTTPFieldError.invalidName("a b").description.contains("\"a b\""))
    }

    // MARK: Dates

    @Test(arguments: [(0, "Thu, 01 Jan 1970 00:00:00 GMT"),
                      (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
                      (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
                      (1_709_164_799, "Wed, 28 Feb 2024 23:59:59 GMT"),
                      (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
                      (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
                      (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT")])
    func formatKnownEpochs(epoch: Int, text: String) {
        #expect(DateCache.format(epochSeconds: epoch) == text)
        #expect(DateCache.parse(text) == epoch)
    }

    @Test func parseObsoleteFormats() {
        #expect(DateCache.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(DateCache.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(DateCache.parse("Sun Nov 16 08:49:37 1994") == 784_111_777 + 10 * 86_400)
        // Two-digit years: more than 50 years in the future → the previous century (RFC 9110 §5.6.7).
        #expect(DateCache.parse("Friday, 31-Dec-99 23:59:59 GMT") == 946_684_799)
        #expect(DateCache.parse("Saturday, 01-Jan-00 00:00:00 GMT") == 946_684_800)
        #expect(DateCache.parse(" Sun, 06 Nov 1994 08:49:37 GMT ") == 784_111_777)
    }

    @Test(arguments: ["", "Sun, 06 Nov 1994 08:49:37 UTC", "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
                      "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                      "Sun, 29 Feb 1900 00:00:00 GMT", "Sun,  06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
                      "Sundae, 06-Nov-94 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "1994-11-06T08:49:37Z"])
    func parseRejects(text: String) {
        #expect(DateCache.parse(text) == nil)
    }

    @Test func cacheRecomputesOncePerSecond() {
        final class Clock: @unchecked Sendable { var now = 0 }
        let clock = Clock()
        let cache = DateCache(clock: { clock.now })
        #expect(cache.current == "Thu, 01 Jan 1970 00:00:00 GMT")
        clock.now = 61
        #expect(cache.current == "Thu, 01 Jan 1970 00:01:01 GMT")
        #expect(cache.withCurrent { $0.count } == 29)
        let real = DateCache()
        #expect(DateCache.parse(real.current) != nil)
    }
}
