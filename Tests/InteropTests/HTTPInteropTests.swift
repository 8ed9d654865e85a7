// strata-serve (Examples/strata-serve) driven as a black box by real clients: curl, and
// Python's h11 (a strict sans-I/O client that validates every response) and httpx.
// The raw conformance table is in HTTPConformanceTests.swift, load and shutdown in
// HTTPLoadTests.swift.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// What curl saw: the final response's head and body, and its -v log.
struct CurlResult {
    var exitStatus: Int32
    /// Status lines with their fields, one entry per response head (interim ones included).
    var heads: [WireResponse]
    var body: [UInt8]
    var log: String

    var final: WireResponse? { heads.last }
    var status: Int { final?.status ?? 0 }
    func header(_ name: String) -> String? { final?.header(name) }
}

/// Runs curl with `arguments` (URLs included); the head(s) come from `-D -`, the body from
/// `-o`, the log from `-v`.
func curl(_ arguments: [String]) throws -> CurlResult {
    let bodyURL = FileManager.default.temporaryDirectory.appendingPathComponent("strata-curl-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: bodyURL) }
    let r = try runCommand("curl", ["-sS", "-v", "--max-time", "20", "-D", "-", "-o", bodyURL.path] + arguments, timeout: 30)
    var heads: [WireResponse] = []
    var rest = r.stdout[...]
    while !rest.isEmpty {
        guard case .response(let head, let used) = ResponseParse.parse(rest, isHead: true, eof: true) else {
            Issue.record("curl printed a head that does not parse: \(String(decoding: rest, as: UTF8.self).debugDescription)")
            break
        }
        heads.append(head)
        rest = rest.dropFirst(used)
    }
    let body = (try? Data(contentsOf: bodyURL)).map { [UInt8]($0) } ?? []
    return CurlResult(exitStatus: r.status, heads: heads, body: body, log: r.stderr)
}

/// A temporary static root: `hello.txt` (100 bytes), `sub/page.html`, and `secret.txt`
/// beside (outside) the root.
final class StaticRoot {
    let parent: URL
    let root: URL
    let hello: [UInt8] = Array((0..<100).map { UInt8(ascii: "a") + UInt8($0 % 26) })
    let secret = "TOP-SECRET-OUTSIDE-ROOT"

    init() throws {
        parent = FileManager.default.temporaryDirectory.appendingPathComponent("strata-static-\(UUID().uuidString)")
        root = parent.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data(hello).write(to: root.appendingPathComponent("hello.txt"))
        try Data("<p>hi</p>\n".utf8).write(to: root.appendingPathComponent("sub/page.html"))
        try Data(secret.utf8).write(to: parent.appendingPathComponent("secret.txt"))
    }

    deinit { try? FileManager.default.removeItem(at: parent) }
}

@Suite("strata-serve with curl", .serialized)
struct HTTPCurlTests {
    static func start(_ backend: String, _ extra: [String] = []) throws -> (ServerProcess, String) {
        let server = try ServerProcess("strata-serve", ["--port", "0", "--backend", backend] + extra)
        return (server, "http://127.0.0.1:\(server.port)")
    }

    @Test("GET /, HTTP/1.0, HEAD, keep-alive reuse and /metrics", arguments: linuxBackends)
    func basics(backend: String) throws {
        let (server, base) = try Self.start(backend)

        let get = try curl([base + "/"])
        #expect(get.exitStatus == 0, "\(get.log)")
        #expect(get.status == 200)
        #expect(get.final?.version == "HTTP/1.1")
        #expect(String(decoding: get.body, as: UTF8.self) == "Hello, World!")
        #expect(get.header("Server") == "strata")
        #expect(get.header("Content-Length") == "13")
        #expect(get.header("Content-Type")?.hasPrefix("text/plain") == true)
        if let date = get.header("Date") {
            // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
            #expect(date.count == 29 && date.hasSuffix(" GMT"), "Date: \(date)")
        } else {
            Issue.record("no Date field")
        }

        let old = try curl(["--http1.0", base + "/json"])
        #expect(old.exitStatus == 0 && old.status == 200)
        #expect(String(decoding: old.body, as: UTF8.self) == #"{"message":"Hello, World!"}"#)
        #expect(old.header("Content-Type") == "application/json")
        #expect(old.header("Transfer-Encoding") == nil)
        #expect(old.log.contains("Closing connection"), "HTTP/1.0 without keep-alive: the connection closes")

        let head = try curl(["-I", base + "/"])
        #expect(head.exitStatus == 0 && head.status == 200)
        #expect(head.header("Content-Length") == "13", "HEAD carries GET's Content-Length")
        // (curl -I writes the head to the output file: the raw HEAD cases check "no body".)

        // curl reuses one connection for several URLs to the same host.
        let urls = ["/", "/json", "/healthz", "/nope", "/"].map { base + $0 }
        let many = try runCommand("curl", ["-sS", "-v", "--max-time", "20"] + urls.flatMap { ["-o", "/dev/null", $0] })
        #expect(many.status == 0, "\(many.stderr)")
        let reused = many.stderr.components(separatedBy: "Re-using existing connection").count - 1
        #expect(reused == urls.count - 1, "curl reused the connection \(reused) times:\n\(many.stderr)")
        #expect(many.stderr.components(separatedBy: "Connected to").count - 1 == 1, "one TCP connection")

        let metrics = try curl([base + "/metrics"])
        #expect(metrics.status == 200)
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains("http_requests_total"), "\(text.prefix(500))")
        #expect(text.contains(#"http_requests_total{status_class="2xx"}"#))
        #expect(server.stop() == 0)
    }

    @Test("POST and PUT /echo: 1 MiB file body, chunked upload, Expect: 100-continue", arguments: linuxBackends)
    func echo(backend: String) throws {
        let (server, base) = try Self.start(backend)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-echo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let payload = pattern(1 << 20, seed: 7)
        try Data(payload).write(to: file)

        for method in ["POST", "PUT"] {
            // Content-Length upload. curl adds Expect: 100-continue above 1 MiB only: disable it here.
            let plain = try curl(["-X", method, "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                                  "--data-binary", "@" + file.path, base + "/echo"])
            #expect(plain.exitStatus == 0 && plain.status == 200, "\(method): \(plain.log.suffix(600))")
            #expect(plain.header("Content-Length") == "\(payload.count)")
            #expect(plain.header("Content-Type") == "application/octet-stream")
            let plainSame = plain.body == payload
            #expect(plainSame, "\(method) Content-Length: \(plain.body.count) bytes back")

            let chunked = try curl(["-X", method, "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file.path, base + "/echo"])
            #expect(chunked.exitStatus == 0 && chunked.status == 200, "\(method) chunked: \(chunked.log.suffix(600))")
            #expect(chunked.log.contains("> Transfer-Encoding: chunked"))
            #expect(chunked.header("Transfer-Encoding") == "chunked", "a body of unknown length is echoed chunked")
            let chunkedSame = chunked.body == payload
            #expect(chunkedSame, "\(method) chunked: \(chunked.body.count) bytes back")
        }

        // curl sends Expect: 100-continue for bodies over 1 MiB, and waits (up to 1 s) for 100.
        let bigger = pattern((1 << 20) + 4096, seed: 8)
        try Data(bigger).write(to: file)
        let expect = try curl(["--data-binary", "@" + file.path, base + "/echo"])
        #expect(expect.log.contains("> Expect: 100-continue"), "curl sent Expect")
        #expect(expect.exitStatus == 0, "\(expect.log.suffix(800))")
        #expect(expect.heads.map(\.status) == [100, 200], "interim 100 then 200: \(expect.heads.map(\.status))")
        let expectSame = expect.body == bigger
        #expect(expectSame, "\(expect.body.count) bytes back, the same: \(expectSame)")
        #expect(server.stop() == 0)
    }

    @Test("static files: ETag, Last-Modified, 304, Range 206, 416, .. escapes", arguments: linuxBackends)
    func staticFiles(backend: String) throws {
        let files = try StaticRoot()
        let (server, base) = try Self.start(backend, ["--root", files.root.path])
        let url = base + "/static/hello.txt"

        let full = try curl([url])
        #expect(full.status == 200)
        #expect(full.body == files.hello)
        #expect(full.header("Content-Length") == "100")
        #expect(full.header("Content-Type")?.hasPrefix("text/plain") == true)
        #expect(full.header("Accept-Ranges") == "bytes")
        let lastModified = full.header("Last-Modified")
        #expect(lastModified?.hasSuffix(" GMT") == true)
        guard let etag = full.header("ETag") else {
            Issue.record("no ETag")
            return
        }
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""), "a strong ETag: \(etag)")

        let notModified = try curl(["-H", "If-None-Match: \(etag)", url])
        #expect(notModified.status == 304)
        #expect(notModified.body.isEmpty)
        #expect(notModified.header("ETag") == etag)
        let changed = try curl(["-H", "If-None-Match: \"other\"", url])
        #expect(changed.status == 200 && changed.body == files.hello)
        if let lastModified {
            let since = try curl(["-H", "If-Modified-Since: \(lastModified)", url])
            #expect(since.status == 304)
        }

        let range = try curl(["-r", "0-9", url])
        #expect(range.status == 206)
        #expect(range.header("Content-Range") == "bytes 0-9/100")
        #expect(range.header("Content-Length") == "10")
        #expect(range.body == Array(files.hello[0..<10]))
        let suffix = try curl(["-r", "-5", url])
        #expect(suffix.status == 206 && suffix.body == Array(files.hello[95...]))
        let unsatisfiable = try curl(["-r", "500-600", url])
        #expect(unsatisfiable.status == 416)
        #expect(unsatisfiable.header("Content-Range") == "bytes */100")

        let page = try curl([base + "/static/sub/page.html"])
        #expect(page.status == 200 && page.header("Content-Type")?.hasPrefix("text/html") == true)
        #expect(try curl([base + "/static/missing.txt"]).status == 404)

        // Escapes: never the file outside the root.
        for path in ["/static/../secret.txt", "/static/sub/../../secret.txt", "/static/%2e%2e/secret.txt",
                     "/static/..%2fsecret.txt", "/static/%2E%2E%2Fsecret.txt", "/static/sub/%2e%2e/%2e%2e/secret.txt"] {
            let escape = try curl(["--path-as-is", base + path])
            #expect([400, 403, 404].contains(escape.status), "\(path): \(escape.status)")
            #expect(!String(decoding: escape.body, as: UTF8.self).contains(files.secret), "\(path) served the secret")
        }
        #expect(server.stop() == 0)
    }
}

@Suite("strata-serve with Python h11 and httpx", .serialized)
struct HTTPPythonTests {
    static func python(_ script: String, _ arguments: [String]) throws -> CommandResult {
        try runCommand(systemPython, [pythonScripts.appendingPathComponent(script).path] + arguments, timeout: 60)
    }

    @Test("h11 (strict client): several requests on one connection, each response well-formed", arguments: linuxBackends)
    func h11(backend: String) throws {
        let server = try ServerProcess("strata-serve", ["--port", "0", "--backend", backend])
        let r = try Self.python("h11_client.py", ["\(server.port)"])
        #expect(r.status == 0, "h11_client.py failed:\n\(r.stdoutText)\n\(r.stderr)")
        #expect(r.stdoutText.contains("ok:"), "\(r.stdoutText)")
        #expect(server.stop() == 0)
    }

    @Test("httpx: GET and POST through a keep-alive pool", arguments: linuxBackends)
    func httpx(backend: String) throws {
        let server = try ServerProcess("strata-serve", ["--port", "0", "--backend", backend])
        let r = try Self.python("httpx_client.py", ["\(server.port)"])
        #expect(r.status == 0, "httpx_client.py failed:\n\(r.stdoutText)\n\(r.stderr)")
        #expect(r.stdoutText.contains("ok:"), "\(r.stdoutText)")
        #expect(server.stop() == 0)
    }
}
