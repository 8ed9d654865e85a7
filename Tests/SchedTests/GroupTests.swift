#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataSched
import StrataSockets
import Synchronization
import Testing

@Suite("Sched: LoopGroup")
struct LoopGroupTests {
    static func echo(_ connection: TCPConnection) async {
        while let chunk = try? await connection.read(maximumCount: 4096), !chunk.isEmpty {
            do { try await connection.write(chunk) } catch { return }
        }
    }

    @Test("serve on 2 loops (both distributions); graceful shutdown cancels handlers of idle connections at the deadline",
          arguments: [LoopGroup.Distribution.reusePort, .singleAcceptor])
    func shutdownWithLiveConnections(distribution: LoopGroup.Distribution) async throws {
        let group = try LoopGroup(loops: 2, name: "grp")
        let address = try group.serve(on: SocketAddress(parsing: "127.0.0.1:0"), distribution: distribution) { c in
            await Self.echo(c)
        }
        var clients: [CInt] = []
        defer { for c in clients { close(c) } }
        for i in 0..<20 {
            let s = try clientDescriptor(port: address.port!)
            sendAll(s, [UInt8(i)])
            #expect(receive(s) == [UInt8(i)])
            clients.append(s)
        }
        let served = group.loops.map(\.trackedTaskCount)
        #expect(served.reduce(0, +) >= 20, "handlers running: \(served)")
        let report = await group.shutdownGracefully(timeout: .milliseconds(100))
        #expect(report.tasksCancelled == 20, "\(report)")
        #expect(report.allEnded, "\(report)")
        // Every client sees its connection closed (end of stream), none hangs.
        for s in clients { #expect(receive(s) == [], "the connection must end, not hang") }
        // The listeners are closed: new connections are refused.
        let late = try Socket(family: .ipv4, kind: .stream, blocking: true)
        #expect(throws: SocketError.self) { _ = try late.connect(to: address) }
    }

    @Test("graceful shutdown lets handlers that finish before the deadline finish")
    func shutdownWaitsForHandlers() async throws {
        let group = try LoopGroup(loops: 1, name: "grp1")
        let finished = ThreadChecks()
        let address = try group.serve(on: SocketAddress(parsing: "127.0.0.1:0")) { c in
            // Work that outlives the accept: finishes 50 ms after the first byte.
            _ = try? await c.read(maximumCount: 8)
            try? await c.loop.sleep(for: .milliseconds(50))
            try? await c.write([42])
            finished.check(c.loop)
        }
        var clients: [CInt] = []
        defer { for c in clients { close(c) } }
        for _ in 0..<5 {
            let s = try clientDescriptor(port: address.port!)
            sendAll(s, [1])
            clients.append(s)
        }
        try await Task.sleep(for: .milliseconds(10))
        let report = await group.shutdownGracefully(timeout: .seconds(5))
        #expect(report.tasksCancelled == 0, "\(report)")
        #expect(finished.onLoop.load(ordering: .relaxed) == 5)
        for s in clients { #expect(receive(s) == [42]) }
    }

    @Test("a bad loop count names the field")
    func badCount() {
        #expect { _ = try LoopGroup(loops: 0) } throws: { error in
            (error as? SchedError)?.message.contains("loops 0") == true
        }
    }
}
