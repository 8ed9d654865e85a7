import HTTPTypes
import Testing
@testable import StrataHTTP

@Suite("swift-http-types conversion")
struct HTTPTypesConversionTests {
    @Test("a parsed request converts with method, authority, path and query, and fields in order")
    func request() throws {
        var parser = HTTPRequestParser()
        let raw = Array("POST /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nX-One: 1\r\nX-Two: 2\r\nContent-Length: 0\r\n\r\n".utf8)
        let head = try raw.withUnsafeBytes { bytes -> HTTPRequestHead in
            guard case .head(let view) = try parser.parse(bytes) else { throw CancellationError() }
            return view.owned(in: bytes)
        }
        let converted = StrataHTTP.HTTPRequest(head: head, body: [], parameters: [:]).httpTypesRequest
        #expect(converted.method == .post)
        #expect(converted.authority == "example.com:8080")
        #expect(converted.path == "/a/b?x=1&y=2")
        #expect(converted.headerFields[HTTPField.Name("X-One")!] == "1")
        #expect(converted.headerFields.map(\.name.rawName) == ["Host", "X-One", "X-Two", "Content-Length"])
    }

    @Test("responses convert both ways; server-owned fields are dropped")
    func response() {
        var fields = HTTPTypes.HTTPFields()
        fields[.contentLength] = "99"
        fields[HTTPField.Name("X-Custom")!] = "yes"
        let theirs = HTTPTypes.HTTPResponse(status: .created, headerFields: fields)
        let ours = StrataHTTP.HTTPResponse(theirs, body: .staticText("made"))
        #expect(ours.status.code == 201 && ours.status.reason == "Created")
        #expect(ours.fields["X-Custom"] == "yes")
        #expect(ours.fields["Content-Length"] == nil)
        let back = ours.httpTypesResponse
        #expect(back.status.code == 201)
        #expect(back.headerFields[HTTPField.Name("X-Custom")!] == "yes")
    }
}
