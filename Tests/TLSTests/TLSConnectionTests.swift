#if canImport(Glibc)
import Glibc
#endif
import CStrataMbedTLS
import StrataEvents
import StrataSched
import StrataSockets
import StrataTLS
import Synchronization
import Testing

/// TLSConnection over Sched, in process: a StrataTLS server and StrataTLS clients on
/// separate loops, over loopback TCP. Every test is bounded (Sched deadlines, polling with
/// a limit) and stops its loops in `defer`.
@Suite("TLSConnection over Sched", .serialized)
struct TLSConnectionTests {
    // MARK: Helpers

    /// A handshaken pair over loopback: the server side accepted on `serverLoop`, the client
    /// connected from `clientLoop` (both loops on `kind`).
    struct Pair {
        let serverLoop: Loop
        let clientLoop: Loop
        let server: TLSConnection
        let client: TLSConnection

        func stop() {
            clientLoop.stop()
            serverLoop.stop()
        }
    }

    static func pair(_ kind: BackendKind? = nil, serverOptions: TLSOptions = TLSOptions()) async throws -> Pair {
        let serverLoop = try startTestLoop(kind, name: "tls-pair-server")
        let clientLoop: Loop
        do { clientLoop = try startTestLoop(kind, name: "tls-pair-client") } catch {
            serverLoop.stop()
            throw error
        }
        do {
            let serverConfig = try PKIConfig.server(options: serverOptions)
            let clientConfig = try PKIConfig.client()
            let listener = try TCPListener.bind(SocketAddress(parsing: "127.0.0.1:0"), on: serverLoop)
            let address = listener.localAddress
            let accepting = Task(executorPreference: serverLoop) { () throws -> TLSConnection in
                try await withTimeout(.seconds(10)) {
                    guard let tcp = try await listener.accept() else { throw PeerError("listener closed") }
                    await listener.close()
                    return try await TLSConnection.accept(tcp, configuration: serverConfig)
                }
            }
            let client = try await runOn(clientLoop) {
                try await withTimeout(.seconds(10)) {
                    try await TLSConnection.connect(to: address, serverName: "localhost", configuration: clientConfig, on: clientLoop)
                }
            }
            let server = try await accepting.value
            return Pair(serverLoop: serverLoop, clientLoop: clientLoop, server: server, client: client)
        } catch {
            clientLoop.stop()
            serverLoop.stop()
            throw error
        }
    }

    /// Reads from `tls` until `count` bytes arrived (or the stream ended).
    static func readExactly(_ tls: TLSConnection, _ count: Int) async throws -> [UInt8] {
        var got: [UInt8] = []
        while got.count < count, let chunk = try await tls.read() { got += chunk }
        return got
    }

    /// A TCP connection's bytes until end of stream (or a reset, or `limit` bytes), and
    /// whether it ended (rather than failing otherwise).
    static func readToEnd(_ tcp: TCPConnection, limit: Int = 1 << 20) async -> (bytes: [UInt8], ended: Bool, error: (any Error)?) {
        var bytes: [UInt8] = []
        do {
            while bytes.count < limit {
                let chunk = try await tcp.read(maximumCount: 16 * 1024)
                if chunk.isEmpty { return (bytes, true, nil) }
                bytes += chunk
            }
            return (bytes, false, nil)
        } catch let error as SchedError where error.errno == .connectionReset {
            return (bytes, true, error)  // the server closed with bytes unread: a reset is a close too
        } catch {
            return (bytes, false, error)
        }
    }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ seed &* 7 &+ ($0 >> 9)) }
    }

    // MARK: Echo

    @Test("echo over TLSConnection: small and 1 MiB messages both ways, then close_notify both ways", arguments: tlsTestBackends)
    func echo(kind: BackendKind) async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(alpn: ["http/1.1"]), mode: .echo, backend: kind)
        defer { server.stop() }
        let clientLoop = try startTestLoop(kind, name: "tls-echo-client")
        defer { clientLoop.stop() }
        let config = try PKIConfig.client(alpn: ["http/1.1"])
        let address = try SocketAddress(parsing: "127.0.0.1:\(server.port)")

        let tls = try await runOn(clientLoop) {
            try await withTimeout(.seconds(10)) {
                try await TLSConnection.connect(to: address, serverName: "localhost", configuration: config, on: clientLoop)
            }
        }
        #expect(tls.negotiatedALPN == "http/1.1")
        #expect(tls.cipherSuite == "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
        #expect(tls.peerCertificateSubject?.contains("localhost") == true, "\(String(describing: tls.peerCertificateSubject))")

        let messages = [Self.pattern(1, seed: 1), Self.pattern(100, seed: 2), Self.pattern(16 * 1024, seed: 3),
                        Self.pattern(16 * 1024 + 1, seed: 4), Self.pattern(1 << 20, seed: 5)]
        let sent = messages.reduce([], +)
        // One task writes while another reads: the echo of 1 MiB does not fit in the socket
        // buffers, so writing it all before reading would stall both sides.
        let echoed = try await withTimeout(.seconds(20)) {
            try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask(executorPreference: clientLoop) {
                    for m in messages { try await tls.write(m) }
                    return nil
                }
                group.addTask(executorPreference: clientLoop) { try await Self.readExactly(tls, sent.count) }
                var result: [UInt8] = []
                for try await r in group { if let r { result = r } }
                return result
            }
        }
        #expect(echoed.count == sent.count)
        #expect(echoed == sent, "the echo differs from what was sent")

        // Our close_notify: the server reads a clean end and answers with its own, which we
        // read as nil (a clean end, not truncation).
        try await tls.shutdownWrite()
        let end = try await withTimeout(.seconds(5)) { try await tls.read() }
        #expect(end == nil, "the server's close_notify reads as nil")
        await tls.close()

        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        #expect(outcomes[0].established, "\(outcomes[0])")
        #expect(outcomes[0].cleanEnd, "\(outcomes[0])")
        #expect(outcomes[0].received == sent)
        #expect(outcomes[0].serverName == "localhost")
        #expect(outcomes[0].alpn == "http/1.1")
    }

    // MARK: Many handshakes

    /// 1,000 handshakes wait on one server loop at the same time (every one accepted and
    /// suspended in its first read before any ClientHello is sent), then all proceed at once;
    /// every one completes and carries data.
    @Test("1,000 concurrent handshakes in flight on one loop all complete")
    func thousandConcurrentHandshakes() async throws {
        let count = 1000
        var options = TLSOptions()
        options.handshakeTimeout = .seconds(60)  // the last ones wait for 999 others' CPU
        options.sessionTickets = false  // every handshake a full one
        options.sessionCacheSize = 0
        let serverConfig = try PKIConfig.server(options: options)
        let clientConfig = try PKIConfig.client(options: options)

        let serverLoop = try startTestLoop(name: "tls-1000-server")
        defer { serverLoop.stop() }
        let clientLoop = try startTestLoop(name: "tls-1000-client")
        defer { clientLoop.stop() }
        let listener = try TCPListener.bind(SocketAddress(parsing: "127.0.0.1:0"), on: serverLoop, backlog: 4096, queueLimit: 1024)
        let address = listener.localAddress

        let counters = HandshakeCounters()
        let acceptTask = Task(executorPreference: serverLoop) {
            while let tcp = try? await listener.accept() {
                let now = counters.inFlight.add(1, ordering: .relaxed).newValue
                _ = counters.maxInFlight.max(now, ordering: .relaxed)
                serverLoop.spawn {
                    do {
                        let tls = try await TLSConnection.accept(tcp, configuration: serverConfig)
                        counters.inFlight.subtract(1, ordering: .relaxed)
                        counters.established.add(1, ordering: .relaxed)
                        if let byte = try await tls.read(maximumCount: 1) { try await tls.write(byte) }
                        await tls.close()
                    } catch {
                        counters.inFlight.subtract(1, ordering: .relaxed)
                        counters.failures.withLock { $0.append("server: \(error)") }
                    }
                }
            }
        }
        defer { acceptTask.cancel() }

        let started = ContinuousClock.now
        // Phase 1: every TCP connection, each with a server task waiting for its ClientHello.
        let connections = try await runOn(clientLoop) { () -> [TCPConnection] in
            try await withTimeout(.seconds(30)) {
                var all: [TCPConnection] = []
                for _ in 0..<count { all.append(try await TCPConnection.connect(to: address, on: clientLoop)) }
                return all
            }
        }
        let allWaiting = await eventually(timeout: .seconds(30)) { counters.inFlight.load(ordering: .relaxed) == count }
        #expect(allWaiting, "only \(counters.inFlight.load(ordering: .relaxed)) of \(count) handshakes in flight on the server loop")
        let connected = ContinuousClock.now

        // Phase 2: all handshakes at once.
        let completed = try await runOn(clientLoop) { () -> Int in
            try await withTimeout(.seconds(50)) {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for (i, tcp) in connections.enumerated() {
                        group.addTask(executorPreference: clientLoop) {
                            do {
                                let tls = try await TLSConnection.connect(over: tcp, serverName: "localhost", configuration: clientConfig)
                                let byte = [UInt8(truncatingIfNeeded: i)]
                                try await tls.write(byte)
                                let back = try await tls.read(maximumCount: 1)
                                await tls.close()
                                return back == byte
                            } catch {
                                counters.failures.withLock { $0.append("client \(i): \(error)") }
                                return false
                            }
                        }
                    }
                    var ok = 0
                    for try await success in group where success { ok += 1 }
                    return ok
                }
            }
        }
        let finished = ContinuousClock.now
        let failed = counters.failures.withLock { $0 }
        #expect(completed == count, "\(count - completed) failed; first: \(failed.prefix(5))")
        #expect(counters.maxInFlight.load(ordering: .relaxed) == count, "at most \(counters.maxInFlight.load(ordering: .relaxed)) handshakes were in flight at once")
        _ = await eventually(timeout: .seconds(10)) { counters.established.load(ordering: .relaxed) == count }
        #expect(counters.established.load(ordering: .relaxed) == count)
        print("[TLSConnectionTests] \(count) concurrent handshakes on one loop: connect \(connected - started), handshakes \(finished - connected)")
        try await runOn(serverLoop) { await listener.close() }
    }

    // MARK: Stalled and hostile peers

    /// A peer that connects and sends nothing, and one that sends half a ClientHello, are
    /// closed at the handshake timeout (4 s here: long enough for five handshakes under a
    /// sanitizer); handshakes started meanwhile on the same loop complete while they wait.
    @Test("stalled peers are closed at the handshake timeout while other handshakes complete", arguments: tlsTestBackends)
    func stalledPeersTimeOut(kind: BackendKind) async throws {
        var options = TLSOptions()
        let timeout = Duration.seconds(4)
        options.handshakeTimeout = timeout
        let server = try TLSTestServer.start(try PKIConfig.server(options: options), mode: .echo, backend: kind)
        defer { server.stop() }
        let clientLoop = try startTestLoop(kind, name: "tls-stall-client")
        defer { clientLoop.stop() }
        let clientConfig = try PKIConfig.client()
        let address = try SocketAddress(parsing: "127.0.0.1:\(server.port)")

        // Half of a real ClientHello.
        var hello = try TLSSession(client: clientConfig, serverName: "localhost")
        _ = try hello.handshake()
        let clientHello = hello.takeOutput()
        try #require(clientHello.count > 40 && clientHello[0] == 0x16)
        let half = Array(clientHello.prefix(clientHello.count / 2))

        let started = ContinuousClock.now
        let silent = try await TCPConnection.connect(to: address, on: clientLoop)
        let partial = try await TCPConnection.connect(to: address, on: clientLoop)
        try await partial.write(half)
        // Both stalled peers wait for the server's close, meanwhile five full handshakes run.
        async let silentEnd = runOn(clientLoop) { () -> (Bool, Duration) in
            let r = try await withTimeout(.seconds(10)) { await Self.readToEnd(silent) }
            return (r.ended && r.bytes.isEmpty, ContinuousClock.now - started)
        }
        async let partialEnd = runOn(clientLoop) { () -> (Bool, Duration) in
            let r = try await withTimeout(.seconds(10)) { await Self.readToEnd(partial) }
            // The server may send an alert before closing; it never sends a ServerHello.
            return (r.ended && (r.bytes.isEmpty || r.bytes[0] == 0x15), ContinuousClock.now - started)
        }
        var goodDone: [Duration] = []
        for i in 0..<5 {
            let tls = try await runOn(clientLoop) {
                try await withTimeout(.seconds(10)) {
                    try await TLSConnection.connect(to: address, serverName: "localhost", configuration: clientConfig, on: clientLoop)
                }
            }
            try await tls.write([UInt8(i)])
            let back = try await withTimeout(.seconds(10)) { try await tls.read() }
            #expect(back == [UInt8(i)])
            goodDone.append(ContinuousClock.now - started)
            await tls.close()
        }
        let (silentClosed, silentAt) = try await silentEnd
        let (partialClosed, partialAt) = try await partialEnd
        #expect(silentClosed, "the silent peer was not closed")
        #expect(partialClosed, "the half-ClientHello peer was not closed")
        for at in [silentAt, partialAt] {
            #expect(at >= timeout - .milliseconds(10), "closed before the handshake timeout: \(at)")
            #expect(at < timeout + .seconds(6), "closed long after the handshake timeout: \(at)")
        }
        #expect(goodDone[0] < min(silentAt, partialAt), "the first good handshake (\(goodDone[0])) did not finish while the stalled peers waited")

        let outcomes = await server.waitForOutcomes(7)
        let timedOut = outcomes.filter { $0.tlsError?.kind == .handshakeTimeout }
        #expect(timedOut.count == 2, "\(outcomes)")
        for o in timedOut {
            let took = (o.endedAt ?? o.acceptedAt) - o.acceptedAt
            #expect(took >= timeout - .milliseconds(10) && took < timeout + .seconds(6), "timed out after \(took)")
        }
        #expect(outcomes.filter(\.established).count == 5, "\(outcomes)")
        await silent.close()
        await partial.close()
    }

    /// Bytes that are not TLS are refused at once, not at the handshake timeout (10 s here).
    @Test("garbage and plaintext HTTP are refused promptly", arguments: ["garbage", "http"])
    func nonTLSIsRefusedPromptly(input: String) async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let clientLoop = try startTestLoop(name: "tls-garbage-client")
        defer { clientLoop.stop() }
        let address = try SocketAddress(parsing: "127.0.0.1:\(server.port)")
        let bytes: [UInt8] = input == "http"
            ? Array("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: strata-test\r\n\r\n".utf8)
            : (0..<64).map { UInt8(truncatingIfNeeded: 0xA7 &+ $0 &* 37) }

        let started = ContinuousClock.now
        let (ended, received, elapsed) = try await runOn(clientLoop) { () -> (Bool, [UInt8], Duration) in
            let tcp = try await TCPConnection.connect(to: address, on: clientLoop)
            try await tcp.write(bytes)
            let r = try await withTimeout(.seconds(8)) { await Self.readToEnd(tcp) }
            await tcp.close()
            return (r.ended, r.bytes, ContinuousClock.now - started)
        }
        #expect(ended, "the server did not close the connection")
        #expect(elapsed < .seconds(5), "closed after \(elapsed), not promptly (the handshake timeout is 10 s)")
        // Whatever the server sent before closing is a TLS alert, never a handshake message.
        #expect(received.isEmpty || received[0] == 0x15, "\(received.prefix(16))")
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        let error = try #require(outcomes[0].tlsError, "\(outcomes[0])")
        #expect(error.kind == .handshake, "\(error)")
        let took = (outcomes[0].endedAt ?? outcomes[0].acceptedAt) - outcomes[0].acceptedAt
        #expect(took < .seconds(5), "the server took \(took) to refuse")
    }

    // MARK: Deadlines, cancellation, closing

    @Test("a read deadline (withDeadline) ends a TLS read with timedOut; the connection stays usable", arguments: tlsTestBackends)
    func readDeadline(kind: BackendKind) async throws {
        let pair = try await Self.pair(kind)
        defer { pair.stop() }
        let started = ContinuousClock.now
        do {
            _ = try await withDeadline(MonotonicInstant.now.advanced(by: .milliseconds(100))) { try await pair.client.read() }
            Issue.record("the read returned before its deadline with nothing sent")
        } catch let error as SchedError {
            #expect(error.code == .timedOut, "\(error)")
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(90) && elapsed < .seconds(6), "the deadline fired after \(elapsed)")
        // Nothing was lost or corrupted: later data arrives, both ways.
        try await pair.server.write(Array("after the deadline".utf8))
        let got = try await withTimeout(.seconds(5)) { try await Self.readExactly(pair.client, 18) }
        #expect(got == Array("after the deadline".utf8))
        try await pair.client.write([42])
        #expect(try await withTimeout(.seconds(5)) { try await pair.server.read() } == [42])
        await pair.client.close()
        await pair.server.close()
    }

    @Test("cancelling a pending TLS read ends it with CancellationError; the connection stays usable", arguments: tlsTestBackends)
    func cancelledRead(kind: BackendKind) async throws {
        let pair = try await Self.pair(kind)
        defer { pair.stop() }
        let client = pair.client
        let reading = Task { try await client.read() }
        try await Task.sleep(for: .milliseconds(50))
        let cancelledAt = ContinuousClock.now
        reading.cancel()
        let result = await reading.result
        let took = ContinuousClock.now - cancelledAt
        switch result {
        case .success(let bytes): Issue.record("the cancelled read returned \(String(describing: bytes))")
        case .failure(let error): #expect(error is CancellationError, "\(error)")
        }
        #expect(took < .seconds(5), "the cancelled read ended \(took) after the cancel")
        try await pair.server.write([7, 8, 9])
        #expect(try await withTimeout(.seconds(5)) { try await Self.readExactly(client, 3) } == [7, 8, 9])
        await pair.client.close()
        await pair.server.close()
    }

    @Test("close() sends close_notify: the peer reads a clean end (nil)", arguments: tlsTestBackends)
    func closeSendsCloseNotify(kind: BackendKind) async throws {
        let pair = try await Self.pair(kind)
        defer { pair.stop() }
        try await pair.server.write(Array("last words".utf8))
        await pair.server.close()
        let got = try await withTimeout(.seconds(5)) { try await Self.readExactly(pair.client, 10) }
        #expect(got == Array("last words".utf8))
        let end = try await withTimeout(.seconds(5)) { try await pair.client.read() }
        #expect(end == nil, "close() did not end the stream with close_notify")
        await pair.client.close()
    }

    @Test("a TCP close without close_notify makes the peer's read throw .truncated", arguments: tlsTestBackends)
    func tcpCloseIsTruncation(kind: BackendKind) async throws {
        let pair = try await Self.pair(kind)
        defer { pair.stop() }
        try await pair.server.write(Array("partial".utf8))
        await pair.server.transport.close()  // FIN, no close_notify
        let got = try await withTimeout(.seconds(5)) { try await Self.readExactly(pair.client, 7) }
        #expect(got == Array("partial".utf8))
        do {
            let more = try await withTimeout(.seconds(5)) { try await pair.client.read() }
            Issue.record("the read after a bare TCP close returned \(String(describing: more)) instead of throwing .truncated")
        } catch let error as TLSError {
            #expect(error.kind == .truncated, "\(error)")
        }
        // Sticky: the next read fails the same way.
        await #expect(throws: TLSError.self) { _ = try await pair.client.read() }
        await pair.client.close()
    }
}

/// Shared counters of the 1,000-handshake test.
final class HandshakeCounters: Sendable {
    let inFlight = Atomic<Int>(0)
    let maxInFlight = Atomic<Int>(0)
    let established = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}
