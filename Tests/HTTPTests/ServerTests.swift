// The HTTP server in process, driven by raw bytes over loopback on every Linux backend.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataSched
import StrataSockets
import Testing
@testable import StrataHTTP

/// A server on 127.0.0.1:0 with a test route table; `stop()` shuts it down.
final class TestServer: @unchecked Sendable {
    let group: LoopGroup
    let server: HTTPServer
    let port: UInt16

    init(_ backend: BackendKind = .epoll, configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        var config = HTTPServerConfiguration()
        configure(&config)
        var routes = HTTPRoutes()
        routes.get("/") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!")) }
        routes.get("/users/:id") { r in .text("user \(r.parameter("id") ?? "?")") }
        routes.add(.post, "/upload", .async { r in .text("got \(r.body.count) bytes: \(String(decoding: r.body.prefix(16), as: UTF8.self))") })
        routes.add(.get, "/slow", .async { _ in
            try await Task.sleep(for: .milliseconds(300))
            return .text("slow done")
        })
        routes.add(.get, "/blocking", .blocking { _ in
            usleep(20_000)
            return .text("blocked on \(Thread.isMainThread ? "main" : "a pool thread")")
        })
        routes.add(.get, "/hang", .async { _ in
            try await Task.sleep(for: .seconds(30))
            return .text("never")
        })
        routes.add(.post, "/echo", .streaming { request, body in
            let length: Int? = if case .contentLength(let n) = request.head.framing { n } else { nil }
            return HTTPResponse(body: .stream(length: length) { writer in
                for try await chunk in body { try await writer.write(chunk) }
            })
        })
        routes.add(.post, "/ignore", .streaming { _, _ in .text("ignored the body") })
        group = try LoopGroup(loops: 1, name: "http-test", configuration: .init(backend: .exactly(backend)))
        server = try HTTPServer(routes: routes, configuration: config, group: group)
        port = try server.listen(on: SocketAddress(parsing: "127.0.0.1:0")).port!
    }

    func stop() async {
        _ = await server.shutdownGracefully(timeout: .seconds(1))
        group.stop()
    }

    /// Connects a raw client.
    func client() throws -> RawClient { try RawClient(port: port) }
}

/// A blocking raw TCP client.
final class RawClient: @unchecked Sendable {
    // @unchecked: a test writes from one thread while it reads on another (full duplex).
    let fd: CInt
    init(port: UInt16) throws {
        let s = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try s.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port), timeout: .seconds(5))
        fd = s.takeDescriptor()
    }
    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until `done(text)` is true, the peer closes, or `timeout` ms pass.
    func read(timeout: Int32 = 3000, until done: (String) -> Bool = { _ in false }) -> (text: String, closed: Bool) {
        var got: [UInt8] = []
        let deadline = Date().addingTimeInterval(Double(timeout) / 1000)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) == 1 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (String(decoding: got, as: UTF8.self), true) }
            got += buffer[..<n]
            if done(String(decoding: got, as: UTF8.self)) { break }
        }
        return (String(decoding: got, as: UTF8.self), false)
    }

    /// Reads `count` complete responses (Content-Length framed or chunked).
    func responses(_ count: Int, timeout: Int32 = 3000) -> [String] {
        let r = read(timeout: timeout) { Self.split($0).count >= count }
        return Self.split(r.text)
    }

    /// Splits a byte stream into responses (heads with Content-Length bodies, or chunked).
    static func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var out: [String] = []
        var start = 0
        func find(_ needle: String, from: Int) -> Int? {
            let n = Array(needle.utf8)
            guard bytes.count >= n.count else { return nil }
            var i = from
            while i + n.count <= bytes.count {
                if bytes[i..<i + n.count].elementsEqual(n) { return i }
                i += 1
            }
            return nil
        }
        while let headEnd = find("\r\n\r\n", from: start) {
            let bodyStart = headEnd + 4
            let head = String(decoding: bytes[start..<bodyStart], as: UTF8.self)
            var end = bodyStart
            if head.hasPrefix("HTTP/1.1 1") {
                end = bodyStart
            } else if let cl = head.range(of: "Content-Length: ") {
                end = bodyStart + (Int(head[cl.upperBound...].prefix(while: { $0.isNumber })) ?? 0)
            } else if head.contains("Transfer-Encoding: chunked") {
                guard let last = find("0\r\n\r\n", from: bodyStart) else { return out }
                end = last + 5
            }
            guard end <= bytes.count else { return out }
            out.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        }
        return out
    }
}

let httpBackends: [BackendKind] = [.ioUring, .epoll]

@Suite("HTTP server", .serialized)
struct HTTPServerTests {
    @Test("GET /: exact status line, Server, Date, Content-Length, body; keep-alive", arguments: httpBackends)
    func hello(backend: BackendKind) async throws {
        let s = try TestServer(backend)
        let c = try s.client()
        for _ in 0..<3 {
            c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = c.responses(1)
            try #require(r.count == 1)
            #expect(r[0].hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(r[0].contains("\r\nServer: strata\r\n"))
            #expect(r[0].range(of: #"\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"#, options: .regularExpression) != nil)
            #expect(r[0].contains("\r\nContent-Length: 13\r\n"))
            #expect(r[0].contains("\r\nContent-Type: text/plain\r\n"))
            #expect(r[0].hasSuffix("\r\n\r\nHello, World!"))
            #expect(!r[0].contains("Connection: close"))
        }
        await s.stop()
    }

    @Test("pipelining: 20 requests in one write, 20 responses in order", arguments: httpBackends)
    func pipelining(backend: BackendKind) async throws {
        let s = try TestServer(backend)
        let c = try s.client()
        c.send((0..<20).map { "GET /users/\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let r = c.responses(20)
        #expect(r.count == 20)
        for (i, response) in r.enumerated() { #expect(response.hasSuffix("user \(i)"), "\(i): \(response)") }
        await s.stop()
    }

    @Test("HTTP/1.0 closes after the response; keep-alive when asked; HEAD has no body")
    func versionsAndHead() async throws {
        let s = try TestServer()
        let c = try s.client()
        c.send("GET / HTTP/1.0\r\n\r\n")
        let r = c.read()
        #expect(r.closed && r.text.hasPrefix("HTTP/1.1 200 OK") && r.text.contains("Connection: close") && r.text.hasSuffix("Hello, World!"))
        let k = try s.client()
        k.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let rk = k.read(timeout: 1000) { $0.components(separatedBy: "HTTP/1.1 200").count == 3 }
        #expect(!rk.closed && rk.text.contains("Connection: keep-alive"))
        #expect(rk.text.hasSuffix("Content-Length: 13\r\nConnection: keep-alive\r\n\r\n"), "HEAD: the length of GET's body, no body: \(rk.text)")
        await s.stop()
    }

    @Test("404, 405 with Allow, 501 for unknown methods, 505, 417, 400 for a bad request")
    func statuses() async throws {
        let s = try TestServer()
        func one(_ request: String) throws -> (String, Bool) {
            let c = try s.client()
            c.send(request)
            let r = c.read(timeout: 3000)
            return (r.text, r.closed)
        }
        let c = try s.client()
        c.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\nDELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = c.responses(2)
        #expect(r.count == 2 && r[0].hasPrefix("HTTP/1.1 404 Not Found"))
        #expect(r.count == 2 && r[1].hasPrefix("HTTP/1.1 405 Method Not Allowed") && r[1].contains("Allow: GET, HEAD"))
        let (m, mc) = try one("BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(m.hasPrefix("HTTP/1.1 501") && mc)
        let (v, vc) = try one("GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        #expect(v.hasPrefix("HTTP/1.1 505") && vc)
        let (e, ec) = try one("POST /upload HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx")
        #expect(e.hasPrefix("HTTP/1.1 417") && ec)
        let (b, bc) = try one("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(b.hasPrefix("HTTP/1.1 400") && bc)
        let (h, hc) = try one("GET / HTTP/1.1\r\n\r\n")
        #expect(h.hasPrefix("HTTP/1.1 400") && hc, "missing Host")
        let (t, tc) = try one("GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(t.hasPrefix("HTTP/1.1 404") || t.hasPrefix("HTTP/1.1 400"), "\(t) \(tc)")
        await s.stop()
    }

    @Test("limits: 414, 431 (line, section, count), 413 (declared and chunked)")
    func limits() async throws {
        let s = try TestServer { $0.maxBufferedBody = 1000 }
        func one(_ request: String) throws -> String {
            let c = try s.client()
            c.send(request)
            let r = c.read(timeout: 3000)
            #expect(r.closed, "the connection must close after \(r.text.prefix(20))")
            return r.text
        }
        #expect(try one("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 414"))
        #expect(try one("GET / HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "b", count: 9000))\r\n\r\n").hasPrefix("HTTP/1.1 431"))
        let many = (0..<101).map { "X-\($0): 1\r\n" }.joined()
        #expect(try one("GET / HTTP/1.1\r\nHost: x\r\n\(many)\r\n").hasPrefix("HTTP/1.1 431"))
        #expect(try one("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n").hasPrefix("HTTP/1.1 413"))
        let chunk = String(repeating: "c", count: 600)
        #expect(try one("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n").hasPrefix("HTTP/1.1 413"))
        await s.stop()
    }

    @Test("bodies: Content-Length and chunked to an async handler; 100-continue; streamed echo", arguments: httpBackends)
    func bodies(backend: BackendKind) async throws {
        let s = try TestServer(backend)
        let c = try s.client()
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(c.responses(1).first?.hasSuffix("got 11 bytes: hello world") == true)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(c.responses(1).first?.hasSuffix("got 11 bytes: hello world") == true)
        // 100-continue: the interim response comes before the client sends the body.
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        let interim = c.read(timeout: 2000) { $0.contains("\r\n\r\n") }
        #expect(interim.text == "HTTP/1.1 100 Continue\r\n\r\n")
        c.send("abc")
        #expect(c.responses(1).first?.hasSuffix("got 3 bytes: abc") == true)
        // Streamed echo: Content-Length in, Content-Length out; chunked in, chunked out.
        let big = String(repeating: "0123456789", count: 20_000)
        // Sent from another thread: the echo streams back while the upload is in progress,
        // so a client that only writes would fill both directions' buffers.
        let upload = Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(big.utf8.count)\r\n\r\n\(big)".utf8)
        let writer = Thread { c.send(upload) }
        writer.start()
        let echoed = c.responses(1, timeout: 10_000)
        #expect(echoed.first?.hasSuffix(big) == true)
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        let chunked = c.responses(1)
        #expect(chunked.first?.contains("Transfer-Encoding: chunked") == true)
        #expect(chunked.first?.hasSuffix("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") == true, "\(chunked)")
        // A streaming handler that ignores its body: drained, the connection stays usable.
        c.send("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let two = c.responses(2)
        #expect(two.count == 2 && two[1].hasSuffix("Hello, World!"))
        await s.stop()
    }

    @Test("timeouts: 408 for a slow head, silent close when idle, 503 for a slow handler")
    func timeouts() async throws {
        let s = try TestServer {
            $0.headerTimeout = .milliseconds(200)
            $0.keepAliveTimeout = .milliseconds(200)
            $0.firstByteTimeout = .milliseconds(200)
            $0.handlerTimeout = .milliseconds(100)
        }
        let slow = try s.client()
        slow.send("GET / HTTP/1.1\r\nHo")
        let r = slow.read(timeout: 3000)
        #expect(r.text.hasPrefix("HTTP/1.1 408") && r.closed, "\(r)")
        let idle = try s.client()
        let i = idle.read(timeout: 3000)
        #expect(i.text.isEmpty && i.closed, "an idle connection closes without a response: \(i)")
        let hang = try s.client()
        hang.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(hang.responses(1).first?.hasPrefix("HTTP/1.1 503") == true)
        await s.stop()
    }

    @Test("blocking handlers run on the pool; per-connection request cap sends Connection: close")
    func blockingAndCap() async throws {
        let s = try TestServer { $0.maxRequestsPerConnection = 2 }
        let c = try s.client()
        c.send("GET /blocking HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = c.read(timeout: 3000)
        let responses = RawClient.split(r.text)
        #expect(responses.count == 2)
        #expect(responses.first?.hasSuffix("blocked on a pool thread") == true)
        #expect(responses.last?.contains("Connection: close") == true && r.closed)
        await s.stop()
    }

    @Test("graceful shutdown: an in-flight request completes (Connection: close), idle connections close, new ones are refused")
    func gracefulShutdown() async throws {
        let s = try TestServer()
        let idle = try s.client()
        idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(idle.responses(1).count == 1)
        let busy = try s.client()
        busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        try await Task.sleep(for: .milliseconds(50))
        let report = await s.server.shutdownGracefully(timeout: .seconds(5))
        let b = busy.read(timeout: 3000)
        #expect(b.text.hasPrefix("HTTP/1.1 200") && b.text.contains("Connection: close") && b.text.hasSuffix("slow done") && b.closed, "\(b)")
        let i = idle.read(timeout: 3000)
        #expect(i.closed && i.text.isEmpty)
        #expect(report.forceClosed == 0, "\(report)")
        #expect(throws: (any Error).self) { _ = try s.client() }
        s.group.stop()
    }
}
