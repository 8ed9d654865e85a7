#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataSched
import StrataSockets
import Synchronization
import Testing

@Suite("Sched: async I/O")
struct AsyncIOTests {
    /// A listener on 127.0.0.1:0 bound to `loop`.
    static func listen(_ loop: Loop, queueLimit: Int = 256) throws -> TCPListener {
        try TCPListener.bind(SocketAddress(parsing: "127.0.0.1:0"), on: loop, queueLimit: queueLimit)
    }

    @Test("echo over accept/read/write: every resumption on the loop thread (no global-executor hop)",
          arguments: schedBackends)
    func echoNoHop(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let listener = try Self.listen(loop)
        let port = listener.localAddress.port!
        let checks = ThreadChecks()
        let server = Task(executorPreference: loop) {
            var served = 0
            for try await connection in listener.connections {
                checks.check(loop)
                loop.spawn {
                    while true {
                        guard let chunk = try? await connection.read(maximumCount: 4096) else { break }
                        checks.check(loop)
                        if chunk.isEmpty { break }
                        do { try await connection.write(chunk) } catch { break }
                        checks.check(loop)
                    }
                    await connection.close()
                }
                served += 1
                if served == 4 { break }
            }
        }
        for client in 0..<4 {
            let socket = try blockingClient(port: port)
            for round in 0..<50 {
                let message = [UInt8](repeating: UInt8(truncatingIfNeeded: client * 50 + round), count: 100 + round)
                _ = try socket.send(message)
                var got: [UInt8] = []
                while got.count < message.count { got += try socket.receive(maximumCount: 4096) ?? [] }
                #expect(got == message)
            }
            try socket.shutdown(.write)
            #expect(try socket.receive(maximumCount: 16) == [], "the server closes at end of stream")
        }
        try await server.value
        await listener.close()
        #expect(checks.offLoop.load(ordering: .relaxed) == 0, "a resumption ran off the loop thread")
        #expect(checks.onLoop.load(ordering: .relaxed) >= 4 + 4 * 50 * 2)
    }

    @Test("cancelling a pending read, accept and write: CancellationError, no completion left behind",
          arguments: schedBackends)
    func cancellationAtEverySuspension(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let listener = try Self.listen(loop)
        let port = listener.localAddress.port!
        // accept
        let accepting = Task(executorPreference: loop) { try await listener.accept() }
        try await Task.sleep(for: .milliseconds(20))
        accepting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await accepting.value }
        // A connection arriving after the cancelled accept is not lost: the next accept gets it.
        let client = try blockingClient(port: port)
        let accepted = try await onLoop(loop) { try await listener.accept() }
        let connection = try #require(accepted)
        // read
        let reading = Task(executorPreference: loop) { try await connection.read(maximumCount: 64) }
        try await Task.sleep(for: .milliseconds(20))
        reading.cancel()
        await #expect(throws: CancellationError.self) { _ = try await reading.value }
        // Bytes sent after the cancel go to the next read, not to the cancelled one.
        _ = try client.send([1, 2, 3])
        let next = try await onLoop(loop) { try await connection.read(maximumCount: 64) }
        #expect(next == [1, 2, 3])
        // write: fill the socket (the client never reads), then cancel the blocked write.
        let big = [UInt8](repeating: 7, count: 64 << 20)
        let writing = Task(executorPreference: loop) { try await connection.write(big) }
        try await Task.sleep(for: .milliseconds(50))
        writing.cancel()
        await #expect(throws: CancellationError.self) { try await writing.value }
        // The connection still closes cleanly, and the loop has nothing left in flight.
        await connection.close()
        await listener.close()
        _ = client
    }

    @Test("deadlines: a read past its deadline throws timedOut, the connection stays usable", arguments: schedBackends)
    func readDeadline(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let listener = try Self.listen(loop)
        let client = try blockingClient(port: listener.localAddress.port!)
        let connection = try #require(try await onLoop(loop) { try await listener.accept() })
        do {
            _ = try await onLoop(loop) { try await withTimeout(.milliseconds(30)) { try await connection.read(maximumCount: 16) } }
            Issue.record("no timeout")
        } catch let error as SchedError {
            #expect(error.code == .timedOut)
        }
        _ = try client.send([9])
        #expect(try await onLoop(loop) { try await connection.read(maximumCount: 16) } == [9])
        await connection.close()
        await listener.close()
    }

    @Test("connect: success, refused (named), and a timeout against a full backlog", arguments: schedBackends)
    func connecting(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let listener = try Self.listen(loop)
        let connection = try await TCPConnection.connect(to: listener.localAddress, on: loop)
        let accepted = try #require(try await listener.accept())
        try await connection.write([1, 2])
        #expect(try await accepted.read(maximumCount: 8) == [1, 2])
        await connection.close()
        #expect(try await accepted.read(maximumCount: 8) == [], "end of stream after the peer's close")
        await accepted.close()
        let closedPort = listener.localAddress
        await listener.close()
        do {
            _ = try await TCPConnection.connect(to: closedPort, on: loop)
            Issue.record("connect to a closed port succeeded")
        } catch let error as SchedError {
            #expect(error.errno == .connectionRefused && error.message.contains("nothing listens"), "\(error)")
        }
        // A listener with a full accept queue drops SYNs: the connect hangs until the timeout.
        let full = try Socket(family: .ipv4, kind: .stream)
        try full.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
        try full.listen(backlog: 0)
        let fullAddress = try full.localAddress
        var fillers: [CInt] = []
        for _ in 0..<8 {
            let s = try Socket(family: .ipv4, kind: .stream)
            _ = try? s.connect(to: fullAddress)
            fillers.append(s.takeDescriptor())
        }
        defer { for f in fillers { close(f) } }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        do {
            _ = try await TCPConnection.connect(to: fullAddress, on: loop, timeout: .milliseconds(200))
            Issue.record("connect to a full backlog succeeded")
        } catch let error as SchedError {
            #expect(error.code == .timedOut, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("reads(): a lagging consumer stops the receive (the peer's writes stall); nothing lost", arguments: schedBackends)
    func readsBackpressure(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let listener = try Self.listen(loop)
        let client = try blockingClient(port: listener.localAddress.port!)
        let connection = try #require(try await onLoop(loop) { try await listener.accept() })
        _ = try client.send([1])
        let iteratorBox = try await onLoop(loop) { () -> IteratorBox in
            var it = connection.reads(bufferedChunks: 4).makeAsyncIterator()
            let first = try await it.next()
            return IteratorBox(it, first: first ?? [])
        }
        _ = iteratorBox
        try client.setBlocking(false)
        var sent = 1
        var stalled = 0
        let chunk = [UInt8](repeating: 5, count: 65536)
        while stalled < 20 && sent < 512 << 20 {
            if let n = try client.send(chunk), n > 0 { sent += n; stalled = 0 } else { stalled += 1; usleep(10_000) }
        }
        #expect(stalled >= 20, "the receive never paused: \(sent) bytes taken without a consumer")
        // Now consume everything: every byte arrives.
        let total = sent
        let received = try await onLoop(loop) { () -> Int in
            var n = iteratorBox.first.count
            while n < total, let c = try await iteratorBox.next() { n += c.count }
            return n
        }
        #expect(received == total)
        await connection.close()
        await listener.close()
    }
}

/// Carries a read iterator between tasks on the same loop.
final class IteratorBox: @unchecked Sendable {
    var iterator: ReadSequence.Iterator
    let first: [UInt8]
    init(_ iterator: ReadSequence.Iterator, first: [UInt8]) {
        self.iterator = iterator
        self.first = first
    }
    func next() async throws -> [UInt8]? { try await iterator.next() }
}
