// The HTTP server over a transport of the test's own (HTTPTransport): every byte XORed with
// a per-connection key in both directions, after a one-byte handshake run by the server's
// transport factory. A byte the server sent or read without the transport (a plain write,
// a sendfile on the socket) would reach the client un-XORed and garble what it decodes.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import StrataEvents
import StrataSched
import StrataSockets
import Synchronization
import Testing
@testable import StrataHTTP

/// Errors of the test transport's own types (the server knows nothing of them).
enum XORTransportError: Error {
    case handshakeRefused
    case handshakeEOF
    case badRecord
    case brokenWrite
}

/// How a test transport was used (shared by all the connections of a server).
final class TransportCounters: Sendable {
    let reads = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let bytesWritten = Atomic<Int>(0)
    let shutdowns = Atomic<Int>(0)
    let closes = Atomic<Int>(0)
    let handshakes = Atomic<Int>(0)
}

/// XORs every byte with `key` in both directions over a `TCPConnection`. Its own errors:
/// a received byte that decodes to 0xFF is a "bad record" (read throws), and a write whose
/// bytes contain "X-Break" fails. `sendFile` is the protocol's default (pread + write).
final class XORTransport: HTTPTransport {
    let tcp: TCPConnection
    let key: UInt8
    let counters: TransportCounters
    var loop: Loop { tcp.loop }

    init(_ tcp: TCPConnection, key: UInt8, counters: TransportCounters) {
        self.tcp = tcp
        self.key = key
        self.counters = counters
    }

    func readPooled<R>(_ body: (UnsafeRawBufferPointer) -> R) async throws -> R? {
        counters.reads.add(1, ordering: .relaxed)
        let key = self.key
        let result: Result<R, XORTransportError>? = try await tcp.readPooled { bytes in
            let decoded = bytes.map { $0 ^ key }
            if decoded.contains(0xFF) { return .failure(.badRecord) }
            return .success(decoded.withUnsafeBytes { body($0) })
        }
        return try result?.get()
    }

    func write(_ bytes: [UInt8]) async throws {
        if bytes.count >= 7 && bytes.withUnsafeBytes({ b in
            (0...b.count - 7).contains { i in b[i..<i + 7].elementsEqual("X-Break".utf8) }
        }) {
            throw XORTransportError.brokenWrite
        }
        counters.writes.add(1, ordering: .relaxed)
        counters.bytesWritten.add(bytes.count, ordering: .relaxed)
        try await tcp.write(bytes.map { $0 ^ key })
    }

    func shutdownWrite() async throws {
        counters.shutdowns.add(1, ordering: .relaxed)
        try tcp.shutdownWrite()
    }

    func close() async {
        counters.closes.add(1, ordering: .relaxed)
        await tcp.close()
    }

    /// The handshake: the client sends its key (one byte), the server echoes it, then every
    /// byte is XORed. Key 0 is refused (the factory throws); key 0xEE stalls in a sleep; a
    /// client that sends nothing stalls the factory in its read.
    static func factory(_ counters: TransportCounters) -> HTTPTransportFactory {
        { tcp in
            guard let first = try await tcp.readPooled({ $0.first }), let key = first else {
                throw XORTransportError.handshakeEOF
            }
            switch key {
            case 0:
                throw XORTransportError.handshakeRefused
            case 0xEE:
                try await Task.sleep(for: .seconds(3600))
                throw XORTransportError.handshakeRefused
            default:
                try await tcp.write([key])
                counters.handshakes.add(1, ordering: .relaxed)
                return XORTransport(tcp, key: key, counters: counters)
            }
        }
    }
}

/// Log lines kept by level (to check what the server logs, and at which level).
final class LogCapture: Sendable {
    let lines = Mutex<[(level: Logger.Level, text: String)]>([])
    var logger: Logger {
        var logger = Logger(label: "transport-test") { _ in CaptureHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }
    func lines(atLeast level: Logger.Level) -> [String] {
        lines.withLock { $0.filter { $0.level >= level }.map(\.text) }
    }

    struct CaptureHandler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let line = (event.level, event.message.description)
            capture.lines.withLock { $0.append(line) }
        }
    }
}

/// A server whose listener wraps every connection in an `XORTransport`.
final class XORTestServer: @unchecked Sendable {
    let group: LoopGroup
    let server: HTTPServer
    let port: UInt16
    let counters = TransportCounters()
    let logs = LogCapture()
    let root: String
    /// The static file (200,000 pseudo-random bytes: four 64 KiB pieces of the fallback).
    let file: [UInt8]

    init(_ backend: BackendKind = .epoll, configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        root = NSTemporaryDirectory() + "strata-transport-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        file = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try Data(file).write(to: URL(fileURLWithPath: root + "/blob.bin"))
        let files = try StaticFiles(root: root)

        var config = HTTPServerConfiguration()
        configure(&config)
        var routes = HTTPRoutes()
        routes.get("/") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!")) }
        routes.get("/users/:id") { r in .text("user \(r.parameter("id") ?? "?")") }
        routes.add(.post, "/upload", .async { r in .text("got \(r.body.count) bytes: \(String(decoding: r.body.prefix(16), as: UTF8.self))") })
        routes.add(.post, "/echo", .streaming { request, body in
            let length: Int? = if case .contentLength(let n) = request.head.framing { n } else { nil }
            return HTTPResponse(body: .stream(length: length) { writer in
                for try await chunk in body { try await writer.write(chunk) }
            })
        })
        routes.add(.get, "/parts", .async { _ in
            HTTPResponse(contentType: "text/plain", body: .stream(length: nil) { writer in
                for i in 0..<5 { try await writer.write(Array("part \(i);".utf8)) }
            })
        })
        routes.add(.get, "/big", .async { _ in HTTPResponse(body: .bytes(Array(repeating: UInt8(ascii: "b"), count: 100_000))) })
        routes.add(.get, "/break", .async { _ in
            var fields = HTTPFields()
            fields.append("X-Break", "1")
            return HTTPResponse(contentType: "text/plain", fields: fields, body: .staticText("never seen"))
        })
        routes.add(.get, "/static/*path", .inline { request in files.response(for: request) })
        group = try LoopGroup(loops: 1, name: "http-transport-test", configuration: .init(backend: .exactly(backend)))
        server = try HTTPServer(routes: routes, configuration: config, group: group, logger: logs.logger)
        port = try server.listen(on: SocketAddress(parsing: "127.0.0.1:0"),
                                 transport: XORTransport.factory(counters)).port!
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func stop() async {
        _ = await server.shutdownGracefully(timeout: .seconds(1))
        group.stop()
    }

    /// A client that has completed the handshake with `key`.
    func client(key: UInt8 = 0x5A) throws -> XORClient {
        let c = try XORClient(port: port, key: key)
        try #require(c.handshake(), "the handshake with key \(key) must be answered")
        return c
    }

    /// Waits until the server counts `n` open connections (at most 3 s).
    func waitForConnections(_ n: Int) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        while server.connectionCount != n && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.connectionCount == n)
    }
}

/// A blocking client speaking the XOR transport (it XORs what it sends and what it reads).
final class XORClient: @unchecked Sendable {
    // @unchecked: a test writes from one thread while it reads on another (full duplex).
    let fd: CInt
    let key: UInt8
    init(port: UInt16, key: UInt8) throws {
        let s = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try s.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port), timeout: .seconds(5))
        fd = s.takeDescriptor()
        self.key = key
    }
    deinit { close(fd) }

    /// Sends the key, reads its echo (plain bytes: the transport starts after it).
    func handshake() -> Bool {
        sendRaw([key])
        var byte: UInt8 = 0
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 3000) == 1 else { return false }
        return recv(fd, &byte, 1, 0) == 1 && byte == key
    }

    func sendRaw(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }
    func send(_ bytes: [UInt8]) { sendRaw(bytes.map { $0 ^ key }) }
    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads and decodes until `done(bytes)`, the peer closes, or `timeout` ms pass.
    func readBytes(timeout: Int32 = 3000, until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], closed: Bool) {
        var got: [UInt8] = []
        let deadline = Date().addingTimeInterval(Double(timeout) / 1000)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) == 1 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (got, true) }
            got += buffer[..<n].map { $0 ^ key }
            if done(got) { break }
        }
        return (got, false)
    }

    func read(timeout: Int32 = 3000, until done: (String) -> Bool = { _ in false }) -> (text: String, closed: Bool) {
        let r = readBytes(timeout: timeout) { done(String(decoding: $0, as: UTF8.self)) }
        return (String(decoding: r.bytes, as: UTF8.self), r.closed)
    }

    func responses(_ count: Int, timeout: Int32 = 3000) -> [String] {
        let r = read(timeout: timeout) { RawClient.split($0).count >= count }
        return RawClient.split(r.text)
    }

    /// One response with a Content-Length body, as its head (text) and body (bytes).
    func binaryResponse(timeout: Int32 = 5000) -> (head: String, body: [UInt8])? {
        func split(_ b: [UInt8]) -> (head: String, body: [UInt8])? {
            guard b.count >= 4, let end = (0...b.count - 4).first(where: { b[$0..<$0 + 4].elementsEqual("\r\n\r\n".utf8) }) else { return nil }
            let head = String(decoding: b[..<(end + 4)], as: UTF8.self)
            guard let cl = head.range(of: "Content-Length: "),
                  let length = Int(head[cl.upperBound...].prefix(while: { $0.isNumber })),
                  b.count >= end + 4 + length else { return nil }
            return (head, Array(b[(end + 4)..<(end + 4 + length)]))
        }
        return split(readBytes(timeout: timeout) { split($0) != nil }.bytes)
    }
}

@Suite("HTTP server over a transport (HTTPTransport)", .serialized)
struct HTTPTransportTests {
    @Test("TCPConnection is the plain transport")
    func tcpConformance() {
        let type: any HTTPTransport.Type = TCPConnection.self
        #expect(ObjectIdentifier(type) == ObjectIdentifier(TCPConnection.self))
    }

    @Test("a factory returning the TCPConnection itself: the wrapped path (an opened existential), sendfile included")
    func identityFactory() async throws {
        let root = NSTemporaryDirectory() + "strata-identity-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "static body\n".write(toFile: root + "/a.txt", atomically: false, encoding: .utf8)
        let files = try StaticFiles(root: root)
        var routes = HTTPRoutes()
        routes.get("/") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!")) }
        routes.add(.get, "/static/*path", .inline { request in files.response(for: request) })
        let group = try LoopGroup(loops: 1, name: "http-identity-test")
        let server = try HTTPServer(routes: routes, group: group)
        let calls = Atomic<Int>(0)
        let port = try server.listen(on: SocketAddress(parsing: "127.0.0.1:0")) { tcp in
            calls.add(1, ordering: .relaxed)
            return tcp
        }.port!
        let c = try RawClient(port: port)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = c.responses(2)
        #expect(r.count == 2 && r[0].hasSuffix("Hello, World!") && r[1].hasSuffix("\r\n\r\nstatic body\n"), "\(r)")
        #expect(calls.load(ordering: .relaxed) == 1)
        _ = await server.shutdownGracefully(timeout: .seconds(1))
        group.stop()
    }

    @Test("XOR transport: request/response, keep-alive, 20 pipelined requests in order", arguments: httpBackends)
    func requestsKeepAliveAndPipelining(backend: BackendKind) async throws {
        let s = try XORTestServer(backend)
        let c = try s.client()
        for _ in 0..<3 {
            c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = c.responses(1)
            try #require(r.count == 1)
            #expect(r[0].hasPrefix("HTTP/1.1 200 OK\r\n") && r[0].contains("\r\nServer: strata\r\n"))
            #expect(r[0].contains("\r\nContent-Length: 13\r\n") && r[0].contains("\r\nContent-Type: text/plain\r\n"), "\(r[0])")
            #expect(r[0].hasSuffix("\r\n\r\nHello, World!") && !r[0].contains("close"), "\(r[0])")
        }
        c.send((0..<20).map { "GET /users/\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let r = c.responses(20)
        #expect(r.count == 20)
        for (i, response) in r.enumerated() { #expect(response.hasSuffix("user \(i)"), "\(i): \(response)") }
        // Two clients with their own keys at once: each transport is its connection's.
        let other = try s.client(key: 0x33)
        other.send("GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send("GET /users/8 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(other.responses(1).first?.hasSuffix("user 7") == true)
        #expect(c.responses(1).first?.hasSuffix("user 8") == true)
        #expect(s.counters.handshakes.load(ordering: .relaxed) == 2)
        #expect(s.counters.reads.load(ordering: .relaxed) >= 6)
        await s.stop()
        #expect(s.counters.closes.load(ordering: .relaxed) == 2, "the server closes the transports it served")
        #expect(s.server.statistics.transportSetupFailures == 0)
    }

    @Test("XOR transport: bodies in (length, chunked, 100-continue, streamed echo) and out (chunked stream, large bytes)",
          arguments: httpBackends)
    func bodies(backend: BackendKind) async throws {
        let s = try XORTestServer(backend)
        let c = try s.client()
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(c.responses(1).first?.hasSuffix("got 11 bytes: hello world") == true)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(c.responses(1).first?.hasSuffix("got 11 bytes: hello world") == true)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(c.read(timeout: 2000) { $0.contains("\r\n\r\n") }.text == "HTTP/1.1 100 Continue\r\n\r\n")
        c.send("abc")
        #expect(c.responses(1).first?.hasSuffix("got 3 bytes: abc") == true)
        // A streamed echo of 200 KB, uploaded from another thread while the echo comes back.
        let big = String(repeating: "0123456789", count: 20_000)
        let upload = Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(big.utf8.count)\r\n\r\n\(big)".utf8)
        let writer = Thread { c.send(upload) }
        writer.start()
        let echoed = c.responses(1, timeout: 10_000)
        #expect(echoed.first?.hasSuffix(big) == true)
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        #expect(c.responses(1).first?.hasSuffix("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") == true)
        c.send("GET /parts HTTP/1.1\r\nHost: x\r\n\r\n")
        let parts = c.responses(1).first ?? ""
        #expect(parts.contains("Transfer-Encoding: chunked") && parts.hasSuffix("7\r\npart 4;\r\n0\r\n\r\n"), "\(parts)")
        c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  // > 64 KiB: written on its own
        let large = c.responses(1).first ?? ""
        #expect(large.hasSuffix(String(repeating: "b", count: 100_000)))
        await s.stop()
    }

    @Test("XOR transport: a static file through the sendFile fallback (pread + write), a range, HEAD", arguments: httpBackends)
    func staticFile(backend: BackendKind) async throws {
        let s = try XORTestServer(backend)
        let c = try s.client()
        c.send("GET /static/blob.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        let whole = try #require(c.binaryResponse())
        #expect(whole.head.hasPrefix("HTTP/1.1 200 OK\r\n") && whole.head.contains("Content-Length: 200000\r\n"))
        #expect(whole.body == s.file, "the file's bytes, XORed by the transport (a sendfile on the socket would not be)")
        c.send("GET /static/blob.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=70000-70099\r\n\r\n")
        let part = try #require(c.binaryResponse())
        #expect(part.head.hasPrefix("HTTP/1.1 206 ") && part.body == Array(s.file[70_000..<70_100]))
        c.send("HEAD /static/blob.bin HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let after = c.read { $0.hasSuffix("Hello, World!") }
        #expect(after.text.hasPrefix("HTTP/1.1 200 OK\r\n") && after.text.contains("Content-Length: 200000\r\n") && !after.closed)
        #expect(after.text.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "HEAD without a body, then the next response")
        #expect(s.counters.bytesWritten.load(ordering: .relaxed) > 200_100)
        await s.stop()
    }

    @Test("XOR transport: an error response closes lingering through the transport's shutdownWrite")
    func lingeringCloseThroughTheTransport() async throws {
        let s = try XORTestServer()
        let c = try s.client()
        c.send("BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = c.read()
        #expect(r.text.hasPrefix("HTTP/1.1 501") && r.text.contains("Connection: close") && r.closed, "\(r)")
        #expect(s.counters.shutdowns.load(ordering: .relaxed) == 1)
        let timeout = try s.client()
        timeout.send("GET / HTTP/1.1\r\nHost: x\r\n")  // an unfinished head, then an error: 400 at the end
        timeout.send("Bad Header\r\n\r\n")
        let b = timeout.read()
        #expect(b.text.hasPrefix("HTTP/1.1 400") && b.closed, "\(b)")
        await s.stop()
    }

    @Test("a factory that throws: that connection is closed, counted and logged at debug; others are served")
    func factoryThrows() async throws {
        let s = try XORTestServer()
        let good = try s.client()
        let refused = try XORClient(port: s.port, key: 0)
        refused.sendRaw([0])
        let r = refused.readBytes()
        #expect(r.closed && r.bytes.isEmpty, "closed without a byte: \(r)")
        good.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(good.responses(1).first?.hasSuffix("Hello, World!") == true)
        let later = try s.client(key: 0x42)
        later.send("GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(later.responses(1).first?.hasSuffix("user 1") == true)
        // A client that closes mid-handshake is a failure too.
        let quitter = try XORClient(port: s.port, key: 1)
        shutdown(quitter.fd, CInt(SHUT_WR))
        #expect(quitter.readBytes().closed)
        #expect(s.server.statistics.transportSetupFailures == 2)
        try await s.waitForConnections(2)
        #expect(s.logs.lines(atLeast: .info).isEmpty, "\(s.logs.lines(atLeast: .info))")
        #expect(s.logs.lines(atLeast: .debug).filter { $0.contains("transport setup failed") && $0.contains("handshakeRefused") }.count == 1)
        await s.stop()
    }

    @Test("a factory that stalls (in a read, in a sleep) counts as idle: a graceful shutdown cancels it at once")
    func stalledFactoryCancelledByShutdown() async throws {
        let s = try XORTestServer()
        let idle = try s.client()
        idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(idle.responses(1).count == 1)
        let silent = try XORClient(port: s.port, key: 1)  // never sends its key
        let sleeper = try XORClient(port: s.port, key: 0xEE)
        sleeper.sendRaw([0xEE])
        try await s.waitForConnections(3)
        let started = ContinuousClock.now
        let report = await s.server.shutdownGracefully(timeout: .seconds(5))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(2), "idle and stalled connections close at once, not at the deadline: \(took)")
        #expect(report.connectionsAtStart == 3 && report.idleClosed == 3 && report.forceClosed == 0, "\(report)")
        #expect(silent.readBytes().closed && sleeper.readBytes().closed && idle.readBytes().closed)
        #expect(s.server.connectionCount == 0)
        #expect(s.server.statistics.transportSetupFailures == 0, "a shutdown's cancellation is not a failure")
        s.group.stop()
    }

    @Test("a factory still running at transportSetupTimeout is cancelled; the connection closes and is counted")
    func setupTimeout() async throws {
        let s = try XORTestServer { $0.transportSetupTimeout = .milliseconds(200) }
        let silent = try XORClient(port: s.port, key: 1)
        let sleeper = try XORClient(port: s.port, key: 0xEE)
        sleeper.sendRaw([0xEE])
        let started = ContinuousClock.now
        #expect(silent.readBytes().closed && sleeper.readBytes().closed)
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(s.server.statistics.transportSetupFailures == 2)
        let c = try s.client()  // set up in time: served, and not cut by the setup timer later
        try await Task.sleep(for: .milliseconds(300))
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.responses(1).first?.hasSuffix("Hello, World!") == true)
        await s.stop()
    }

    @Test("the transport's own errors (bad record on read, failed write) close the connection quietly: no 500, no error log")
    func transportErrorsCloseQuietly() async throws {
        let s = try XORTestServer()
        // A bad record between requests.
        let a = try s.client()
        a.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(a.responses(1).count == 1)
        a.send([0xFF])
        let ra = a.readBytes()
        #expect(ra.closed && ra.bytes.isEmpty, "\(ra)")
        // A bad record inside a request head, and inside a streamed body.
        let b = try s.client()
        b.send("GET / HTTP/1.1\r\nHo")
        try await Task.sleep(for: .milliseconds(50))
        b.send([0xFF])
        let rb = b.read()
        #expect(rb.closed && rb.text.isEmpty, "no 400/408 over a broken stream: \(rb)")
        let c = try s.client()
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        try await Task.sleep(for: .milliseconds(50))
        c.send([0xFF])
        let rc = c.read()
        #expect(rc.closed && !rc.text.contains("500"), "\(rc)")
        // A write that fails.
        let d = try s.client()
        d.send("GET /break HTTP/1.1\r\nHost: x\r\n\r\n")
        let rd = d.read()
        #expect(rd.closed && rd.text.isEmpty, "\(rd)")
        // The server goes on.
        let e = try s.client()
        e.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(e.responses(1).first?.hasSuffix("Hello, World!") == true)
        #expect(s.logs.lines(atLeast: .info).isEmpty, "transport failures are the peer's: \(s.logs.lines(atLeast: .info))")
        let debug = s.logs.lines(atLeast: .debug)
        #expect(debug.contains { $0.contains("badRecord") } && debug.contains { $0.contains("brokenWrite") }, "\(debug)")
        await s.stop()
    }
}
