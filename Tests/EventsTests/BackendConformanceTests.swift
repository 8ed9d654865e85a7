#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets
import StrataThreads
import Synchronization
import Testing
@testable import StrataEvents

/// One suite, run against every backend this platform has (DESIGN §4). The same
/// scenarios must give the same completions on io_uring, epoll and kqueue.
@Suite("Backend conformance")
struct BackendConformanceTests {
    @Test("an explicitly requested backend starts; auto picks the best one", arguments: conformanceBackends)
    func backendStarts(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        #expect(loop.backendKind == kind)
        #expect(!loop.backendSummary.isEmpty)
        let auto = try EventLoop(configuration: .init(backend: .automatic))
        #expect(auto.backendKind == conformanceBackends[0])
    }

    @Test("a backend this platform lacks, asked for by name, is an error naming why; never a fallback")
    func unavailableBackendIsAnError() throws {
        #if os(Linux)
        let missing = BackendKind.kqueue
        #else
        let missing = BackendKind.epoll
        #endif
        do {
            _ = try EventLoop(configuration: .init(backend: .exactly(missing)))
            Issue.record("EventLoop started on \(missing), which this platform does not have")
        } catch {
            #expect(error.code == .backendUnavailable)
            #expect(error.message.contains("\(missing) exists only on"), "\(error.message)")
        }
        #expect(throws: EventsError.self) { _ = try BackendChoice(parsing: "uring") }
        do {
            _ = try BackendChoice(parsing: "uring")
        } catch {
            #expect(error.message.contains("use auto, io_uring, epoll or kqueue"), "\(error.message)")
        }
        #expect(try BackendChoice(parsing: "auto") == .automatic)
        #expect(try BackendChoice(parsing: "io_uring") == .exactly(.ioUring))
    }

    @Test("echo round trips of many sizes", arguments: conformanceBackends)
    func echoRoundTrips(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let sizes = [1, 2, 63, 64, 1000, 4096, 65536, 200_000]
        let client = try Background("echo-client") {
            do {
                let s = try connectClient(address)
                for (i, size) in sizes.enumerated() {
                    let message = pattern(size, seed: UInt8(i))
                    try writeAll(s, message)
                    let echoed = try readAll(s, count: size)
                    #expect(echoed == message, "round trip \(i) of \(size) bytes differs")
                }
            } catch { Issue.record("client: \(error)") }
        }
        defer { try? client.join() }

        let total = sizes.reduce(0, +)
        var echoed = 0
        var conn: CInt = -1
        let buffer = IOBuffer(capacity: 65536)
        var pendingSend: IOBuffer?
        var sentOfPending = 0
        loop.accept(listener.descriptor, multishot: false, token: 1)
        try drive(loop, "echo of \(total) bytes", until: { echoed == total }) { c in
            switch (c.token, c.kind) {
            case (1, .accept):
                #expect(c.result >= 0, "\(c)")
                conn = c.result
                loop.receive(conn, into: buffer, token: 2)
            case (2, .receive):
                #expect(c.result > 0, "\(c)")
                guard c.result > 0 else { return }
                let out = IOBuffer(buffer.bytes)
                pendingSend = out
                sentOfPending = 0
                loop.send(conn, out, token: 3)
            case (3, .send):
                #expect(c.result > 0, "\(c)")
                guard c.result > 0, let out = pendingSend else { return }
                sentOfPending += Int(c.result)
                echoed += Int(c.result)
                if sentOfPending < out.count {
                    loop.send(conn, out, offset: sentOfPending, token: 3)  // partial: send the rest
                } else {
                    loop.receive(conn, into: buffer, token: 2)
                }
            default:
                Issue.record("unexpected \(c)")
            }
        }
        try client.join()
        loop.close(conn, token: 9)
        var closed = false
        try drive(loop, "close", until: { closed }) { c in
            if c.token == 9 { closed = true; #expect(c.result == 0, "\(c)") }
        }
    }

    @Test("1,000 connections accepted in a burst by one multishot accept", arguments: conformanceBackends)
    func thousandConnections(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener(backlog: 2048)
        let address = listener.address
        var clients: [CInt] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<1000 {
            let s = try Socket(family: .ipv4, kind: .stream)
            _ = try s.connect(to: address)
            clients.append(s.takeDescriptor())
        }
        var accepted: [CInt] = []
        defer { for fd in accepted { close(fd) } }
        let op = loop.accept(listener.descriptor, multishot: true, token: 7)
        try drive(loop, "1,000 accepts", until: { accepted.count == 1000 }) { c in
            #expect(c.token == 7 && c.kind == .accept)
            #expect(c.result >= 0, "\(c)")
            #expect(c.hasMore, "a multishot accept must stay armed: \(c)")
            if c.result >= 0 { accepted.append(c.result) }
        }
        #expect(Set(accepted).count == 1000)
        // Accepted descriptors are nonblocking and close-on-exec.
        #expect(fcntl(accepted[0], F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(accepted[0], F_GETFD) & FD_CLOEXEC != 0)
        #expect(loop.cancel(op))
        var finished = false
        try drive(loop, "multishot accept cancellation", until: { finished }) { c in
            if c.operation == op && !c.hasMore {
                finished = true
                #expect(c.result == -ECANCELED, "\(c)")
            }
        }
    }

    @Test("a peer reset during a pending receive completes it with ECONNRESET", arguments: conformanceBackends)
    func peerResetMidReceive(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let client = try connectClient(address)
        let conn = try acceptOne(loop, listener)
        defer { close(conn) }
        let buffer = IOBuffer(capacity: 1024)
        loop.receive(conn, into: buffer, token: 2)
        _ = try loop.runOnce(timeout: .milliseconds(20)) { c in Issue.record("receive completed early: \(c)") }
        try client.setOption(.linger, to: .zero)  // close sends RST
        try client.close()
        var result: Int32?
        try drive(loop, "reset", until: { result != nil }) { c in result = c.result }
        #expect(result == -ECONNRESET)
        #expect(Errno(rawValue: -(result ?? 0)).kind == .connectionReset)
    }

    @Test("half-close: the reader sees a zero-length read at EOF, the other direction still works",
          arguments: conformanceBackends)
    func halfClose(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let client = try connectClient(address)
        let conn = try acceptOne(loop, listener)
        try writeAll(client, [1, 2, 3])
        try client.shutdown(.write)
        let buffer = IOBuffer(capacity: 64)
        var reads: [Int32] = []
        loop.receive(conn, into: buffer, token: 2)
        try drive(loop, "data then EOF", until: { reads.last == 0 }) { c in
            reads.append(c.result)
            if c.result > 0 {
                #expect(buffer.bytes == [1, 2, 3])
                loop.receive(conn, into: buffer, token: 2)
            }
        }
        #expect(reads == [3, 0])
        #expect(buffer.count == 0, "a zero-length read sets count to 0")
        var sent = false
        loop.send(conn, IOBuffer([9, 8, 7]), token: 3)
        try drive(loop, "send after peer's half-close", until: { sent }) { c in
            #expect(c.result == 3, "\(c)")
            sent = true
        }
        #expect(try readAll(client, count: 3) == [9, 8, 7])
        loop.close(conn, token: 4)
        try drive(loop, "close", until: { loop.operationsInFlight == 0 }) { _ in }
    }

    @Test("a large send completes partially; resubmitting the rest delivers every byte in order",
          arguments: conformanceBackends)
    func largeWritesPartial(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let client = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try client.setOption(.receiveBufferSize, to: 4096)
        _ = try client.connect(to: address)
        let conn = try acceptOne(loop, listener)
        defer { close(conn) }
        let size = 8 << 20
        let data = IOBuffer(pattern(size, seed: 5))
        var sent = 0
        var completions = 0
        var sawPartial = false
        loop.send(conn, data, token: 2)
        let clientFD = client.descriptor
        let received = Mutex<[UInt8]>([])
        let reader = try Background("slow-reader") {
            // Start reading only after the sender must have hit a full socket buffer.
            usleep(100_000)
            let s = Socket(adoptingDescriptor: dup(clientFD))
            do {
                let bytes = try readAll(s, count: size)
                received.withLock { $0 = bytes }
            } catch { Issue.record("reader: \(error)") }
        }
        try drive(loop, "8 MiB send", timeout: .seconds(30), until: { sent == size }) { c in
            completions += 1
            #expect(c.result > 0, "\(c)")
            guard c.result > 0 else { return }
            sent += Int(c.result)
            if sent < size {
                sawPartial = true
                loop.send(conn, data, offset: sent, token: 2)
            }
        }
        try reader.join()
        #expect(sawPartial, "an 8 MiB send into a 4 KiB receive buffer was never partial")
        #expect(received.withLock { $0 == data.bytes }, "bytes arrived corrupted or out of order")
    }

    @Test("close with operations in flight: they complete first, close is last, the fd can be reused",
          arguments: conformanceBackends)
    func closeWithOperationsInFlight(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let client = try connectClient(address)
        let conn = try acceptOne(loop, listener)
        let buffer = IOBuffer(capacity: 128)
        let pool = try loop.makeBufferPool(count: 4, size: 256)
        let receive = loop.receive(conn, into: buffer, token: 10)
        let pooled = loop.receive(conn, from: pool, multishot: true, token: 11)
        _ = try loop.runOnce(timeout: .milliseconds(20)) { c in Issue.record("completed early: \(c)") }
        let closeOp = loop.close(conn, token: 12)
        var order: [OperationID] = []
        var results: [OperationID: Int32] = [:]
        try drive(loop, "close", until: { order.contains(closeOp) }) { c in
            order.append(c.operation)
            results[c.operation] = c.result
        }
        #expect(order.last == closeOp, "close must be the last completion for the descriptor: \(order)")
        #expect(Set(order) == [receive, pooled, closeOp])
        #expect(results[receive] == -ECANCELED)
        #expect(results[pooled] == -ECANCELED)
        #expect(results[closeOp] == 0)
        #expect(!buffer.isLent, "the buffer must be returned at the final completion")
        // Nothing more arrives for the closed descriptor.
        _ = try loop.runOnce(timeout: .milliseconds(30)) { c in Issue.record("completion after close: \(c)") }
        // The number is free again: a new socket likely gets it, and its operations are its own.
        let listener2 = try Listener()
        let address2 = listener2.address
        let client2 = try connectClient(address2)
        var conn2: CInt = -1
        loop.accept(listener2.descriptor, multishot: false, token: 20)
        try drive(loop, "accept 2", until: { conn2 >= 0 }) { c in
            #expect(c.token == 20)
            conn2 = c.result
        }
        defer { close(conn2) }
        try writeAll(client2, [42])
        let b2 = IOBuffer(capacity: 8)
        var got: Completion?
        loop.receive(conn2, into: b2, token: 21)
        try drive(loop, "receive on the new descriptor", until: { got != nil }) { c in got = c }
        #expect(got?.token == 21 && got?.result == 1 && b2.bytes == [42])
        _ = client
    }

    @Test("cancelAll(on:) stops every operation on a descriptor and leaves it usable",
          arguments: conformanceBackends)
    func cancelAllOnDescriptor(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let client = try connectClient(listener.address)
        let conn = try acceptOne(loop, listener)
        defer { close(conn) }
        let pool = try loop.makeBufferPool(count: 4, size: 256)
        let a = loop.receive(conn, from: pool, multishot: true, token: 2)
        let timer = loop.timeout(after: .seconds(30), token: 3)
        _ = try loop.runOnce(timeout: .milliseconds(10)) { c in Issue.record("early: \(c)") }
        #expect(loop.cancelAll(on: conn) == 1, "only the receive is on the descriptor; the timer is not")
        var finals: [OperationID: Int32] = [:]
        try drive(loop, "cancellation", until: { finals[a] != nil }) { c in if !c.hasMore { finals[c.operation] = c.result } }
        #expect(finals[a] == -ECANCELED)
        #expect(loop.cancel(timer))
        // The descriptor still works.
        try writeAll(client, [7])
        let b = IOBuffer(capacity: 8)
        var got: Int32?
        loop.receive(conn, into: b, token: 4)
        try drive(loop, "receive after cancelAll", until: { got != nil }) { c in if c.token == 4 { got = c.result } }
        #expect(got == 1 && b.bytes == [7])
    }

    @Test("writev to a pipe works; cancelled at once, it either writes nothing or completes whole",
          arguments: conformanceBackends)
    func cancelledWritevWritesNothing(kind: BackendKind) throws {
        // On io_uring a writev first goes out as IORING_OP_SENDMSG; on a pipe that fails with
        // -ENOTSOCK and the backend re-issues it as IORING_OP_WRITEV. A cancel sent in the same
        // batch finds nothing (the sendmsg already failed) — the re-issue must not happen then.
        let loop = try makeLoop(kind)
        for round in 0..<50 {
            var fds: [CInt] = [-1, -1]
            try #require(pipe(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
            defer { close(fds[0]); close(fds[1]) }
            let op = loop.writev(fds[1], [IOBuffer([1, 2, 3]), IOBuffer([4])], token: 1)
            let cancelled = loop.cancel(op)
            var result: Int32?
            try drive(loop, "writev \(round)", until: { result != nil }) { c in result = c.result }
            var probe = [UInt8](repeating: 0, count: 8)
            let inPipe = read(fds[0], &probe, 8)
            if kind == .ioUring {
                // The SENDMSG fails with -ENOTSOCK in the same submit as the cancel, which then
                // finds nothing: the backend must not re-issue the cancelled writev as WRITEV.
                #expect(cancelled && result == -ECANCELED, "round \(round): a cancel lost between two kernel requests")
            }
            if cancelled && result == -ECANCELED {
                #expect(inPipe <= 0, "round \(round): cancelled, yet \(inPipe) bytes reached the pipe")
            } else {
                #expect(result == 4 && inPipe == 4, "round \(round): cancel \(cancelled), result \(String(describing: result)), \(inPipe) bytes")
            }
        }
    }

    @Test("pool exhaustion pauses a multishot receive without spinning; releases resume it, in order",
          arguments: conformanceBackends)
    func bufferPoolExhaustion(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let listener = try Listener()
        let address = listener.address
        let client = try connectClient(address)
        let conn = try acceptOne(loop, listener)
        defer { close(conn) }
        let total = 64 * 1024
        let message = pattern(total, seed: 9)
        let writer = try Background("writer") {
            do { try writeAll(client, message) } catch { Issue.record("writer: \(error)") }
        }
        defer { try? writer.join() }
        let pool = try loop.makeBufferPool(count: 4, size: 1024)
        var received: [UInt8] = []
        var held: [UInt16] = []
        var sawEnd = false
        loop.receive(conn, from: pool, multishot: true, token: 5)
        // Phase 1: hold every buffer. The receive must pause, not spin.
        try drive(loop, "pool exhaustion", until: { held.count == 4 }) { c in
            #expect(c.result > 0 && c.flags.contains(.buffer), "\(c)")
            guard c.result > 0 else { sawEnd = true; return }
            pool.withBuffer(c.bufferID, count: Int(c.result)) { received += $0 }
            held.append(c.bufferID)
        }
        var idle = 0
        let window = MonotonicInstant.now.advanced(by: .milliseconds(300))
        while MonotonicInstant.now < window {
            idle += 1
            _ = try loop.runOnce(timeout: .milliseconds(100)) { c in Issue.record("completion without buffers: \(c)") }
        }
        #expect(idle <= 5, "the loop spun \(idle) times in 300 ms while the pool was empty")
        // Phase 2: give buffers back as soon as we read them.
        for id in held { pool.release(id) }
        held.removeAll()
        try drive(loop, "the rest of the stream", until: { received.count == total || sawEnd }) { c in
            guard c.result > 0 else { sawEnd = true; return }
            pool.withBuffer(c.bufferID, count: Int(c.result)) { received += $0 }
            pool.release(c.bufferID)
        }
        #expect(received == message, "pooled receives lost or reordered bytes")
        #expect(pool.heldCount == 0)
    }

    @Test("timers fire in order, cancelled ones report ECANCELED, 100k timers are cheap",
          arguments: conformanceBackends)
    func timers(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let start = MonotonicInstant.now
        var fired: [UInt64] = []
        loop.timeout(after: .milliseconds(30), token: 3)
        loop.timeout(after: .milliseconds(10), token: 1)
        let cancelled = loop.timeout(after: .milliseconds(20), token: 2)
        loop.timeout(after: .milliseconds(20), token: 22)
        #expect(loop.cancel(cancelled))
        var cancelledResult: Int32?
        try drive(loop, "timers", until: { fired.count == 3 }) { c in
            if c.token == 2 { cancelledResult = c.result; return }
            #expect(c.result == -ETIME, "\(c)")
            fired.append(c.token)
        }
        #expect(fired == [1, 22, 3])
        #expect(cancelledResult == -ECANCELED)
        #expect(start.duration(to: .now) >= .milliseconds(30), "a timer fired early")

        // 100,000 timers, half cancelled, all due within 50 ms.
        var ids: [OperationID] = []
        ids.reserveCapacity(100_000)
        let due = MonotonicInstant.now.advanced(by: .milliseconds(50))
        for i in 0..<100_000 {
            ids.append(loop.timeout(at: due.advanced(by: .nanoseconds(Int64(i % 1000))), token: UInt64(100 + i)))
        }
        for i in stride(from: 0, to: 100_000, by: 2) { loop.cancel(ids[i]) }
        var expired = 0, cancelledCount = 0
        try drive(loop, "100k timers", until: { expired + cancelledCount == 100_000 }) { c in
            if c.result == -ETIME { expired += 1 } else if c.result == -ECANCELED { cancelledCount += 1 }
        }
        #expect(expired == 50_000 && cancelledCount == 50_000)
        #expect(loop.operationsInFlight == 0)
    }

    @Test("wakeup storms from 8 threads end waits and coalesce", arguments: conformanceBackends)
    func wakeupStorm(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let waker = loop.waker
        // A lone wake ends an unbounded wait.
        let one = try Background("waker-1") { usleep(20_000); waker.wake() }
        let t0 = MonotonicInstant.now
        _ = try loop.runOnce(timeout: .seconds(5)) { c in Issue.record("\(c)") }
        #expect(t0.duration(to: .now) < .seconds(4), "a wake did not end the wait")
        try one.join()
        // A storm: 8 threads × 10,000 wakes while the loop keeps waiting.
        let done = Atomic<Int>(0)
        var threads: [Background] = []
        for i in 0..<8 {
            threads.append(try Background("storm-\(i)") {
                for _ in 0..<10_000 { waker.wake() }
                done.add(1, ordering: .relaxed)
            })
        }
        var iterations = 0
        let deadline = MonotonicInstant.now.advanced(by: .seconds(20))
        while done.load(ordering: .relaxed) < 8 && MonotonicInstant.now < deadline {
            iterations += 1
            _ = try loop.runOnce(timeout: .milliseconds(100)) { c in Issue.record("\(c)") }
        }
        for t in threads { try t.join() }
        #expect(done.load(ordering: .relaxed) == 8)
        #expect(iterations < 80_000, "wakes did not coalesce: \(iterations) iterations for 80,000 wakes")
        // After the storm, the wakeup still works (no wake lost in the pending flag).
        let last = try Background("waker-last") { usleep(20_000); waker.wake() }
        let t1 = MonotonicInstant.now
        _ = try loop.runOnce(timeout: .milliseconds(10)) { _ in }  // consume any leftover
        _ = try loop.runOnce(timeout: .seconds(5)) { c in Issue.record("\(c)") }
        #expect(t1.duration(to: .now) < .seconds(4), "the wake after a storm was lost")
        try last.join()
    }
}
