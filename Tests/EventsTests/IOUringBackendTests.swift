// Tests that only the io_uring backend can take: its start-up and error naming, the SQ/CQ edge
// cases (a full SQ, an overflowing CQ), provided buffer rings running dry, send_zc, and the
// wakeup read. Behaviour every backend shares is in BackendConformanceTests.swift.
#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CStrataSys
import StrataSockets
import StrataThreads
import Synchronization
import Testing
@testable import StrataEvents

// MARK: - Helpers

/// A loop on io_uring, nothing else.
private func uringLoop(ringEntries: Int = 256, completionBatch: Int = 1024) throws(EventsError) -> EventLoop {
    try EventLoop(configuration: .init(backend: .exactly(.ioUring), ringEntries: ringEntries,
                                       completionBatch: completionBatch))
}

/// The loop's backend, for its counters and knobs.
private func uringBackend(of loop: EventLoop) -> IOUringBackend {
    guard let backend = loop.backend as? IOUringBackend else { fatalError("not an io_uring loop") }
    return backend
}

/// A flag other threads read.
private final class UringFlag: Sendable {
    let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A raw descriptor the test owns; closed on deinit unless handed to the loop (`release()`).
private final class UringDescriptor: @unchecked Sendable {
    let fd: CInt
    private var owned = true
    init(_ fd: CInt) { self.fd = fd }
    /// The loop closes it from now on.
    func release() -> CInt {
        owned = false
        return fd
    }
    deinit { if owned { _ = Glibc.close(fd) } }
}

/// Test timeouts: a broken backend fails the test instead of hanging it.
private struct UringTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs iterations until `done()` or the deadline.
private func uringDrive(_ loop: EventLoop, _ what: String, timeout: Duration = .seconds(10), until done: () -> Bool,
                        _ handler: (Completion) -> Void) throws {
    let deadline = MonotonicInstant.now.advanced(by: timeout)
    while !done() {
        guard MonotonicInstant.now < deadline else { throw UringTimeout(what: what) }
        try loop.runOnce(timeout: .milliseconds(50), handler)
    }
}

/// A nonblocking TCP listener on 127.0.0.1 with an ephemeral port.
private struct UringListener {
    let socket: UringDescriptor
    let address: SocketAddress
    var fd: CInt { socket.fd }

    init(backlog: Int = 128) throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.setOption(.reuseAddress, to: true)
        try listener.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
        try listener.listen(backlog: backlog)
        address = try listener.localAddress
        socket = UringDescriptor(listener.takeDescriptor())
    }

    /// Accepts one connection (nonblocking), waiting up to 5 s for it.
    func accept() throws -> UringDescriptor {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 5_000) == 1 else { throw UringTimeout(what: "a connection to accept") }
        let accepted = strata_accept4(fd, nil, nil, CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
        guard accepted >= 0 else { throw UringTimeout(what: "accept4: errno \(errno)") }
        return UringDescriptor(accepted)
    }
}

/// A blocking client connected to `address`.
private func uringConnect(_ address: SocketAddress) throws -> UringDescriptor {
    let socket = try Socket(family: .ipv4, kind: .stream, blocking: true)
    _ = try socket.connect(to: address)
    return UringDescriptor(socket.takeDescriptor())
}

/// Deterministic test bytes: position-dependent with a per-stream seed.
private func uringPattern(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}

/// Runs `body` on its own thread; `join()` waits for it.
private final class UringThread: @unchecked Sendable {
    private var thread: StrataThreads.Thread?
    init(_ name: String, _ body: @escaping @Sendable () -> Void) throws {
        thread = try StrataThreads.Thread.spawn(name: name, body)
    }
    func join() throws {
        if let t = thread.take() { try t.join() }
    }
}

/// A connected TCP pair over loopback: a nonblocking server end and a blocking client end.
private func uringTCPPair() throws -> (server: UringDescriptor, client: UringDescriptor) {
    let listener = try UringListener(backlog: 8)
    let client = try uringConnect(listener.address)
    return (try listener.accept(), client)
}

/// Shrinks SO_SNDBUF of `send` and SO_RCVBUF of `receive`, so transfers go in many steps.
private func uringSetBufferSizes(send: CInt, receive: CInt, bytes: CInt) {
    var size = bytes
    _ = setsockopt(send, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
    _ = setsockopt(receive, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
}

/// A connected pair of nonblocking Unix stream sockets.
private func uringUnixPair() throws -> (UringDescriptor, UringDescriptor) {
    let pair = try Socket.makePair(kind: .stream)
    return (UringDescriptor(pair.first.takeDescriptor()), UringDescriptor(pair.second.takeDescriptor()))
}

/// Writes all of `bytes` to a blocking descriptor.
private func uringWriteAll(_ fd: CInt, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        offset += n
    }
}

/// Reads `count` bytes (fewer at end of stream or on error) from a blocking descriptor.
private func uringReadAll(_ fd: CInt, count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        got += n
    }
    return Array(out[0..<got])
}

/// The elapsed time of `body` in milliseconds.
private func uringMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = MonotonicInstant.now
    try body()
    return Double(MonotonicInstant.now.nanoseconds - start.nanoseconds) / 1e6
}

/// Expects `body` to throw an EventsError and returns it.
private func uringExpectFailure(_ body: () throws(EventsError) -> Void) -> EventsError? {
    do throws(EventsError) {
        try body()
        Issue.record("expected an EventsError")
        return nil
    } catch {
        return error
    }
}

// MARK: - Tests

@Suite("io_uring backend")
struct IOUringBackendTests {
    // MARK: Start-up

    @Test("starts with SINGLE_ISSUER|DEFER_TASKRUN here, names its features and registers the ring fd")
    func startUp() throws {
        let loop = try uringLoop(ringEntries: 100)
        #expect(loop.backendKind == .ioUring)
        let summary = loop.backendSummary
        #expect(summary.contains("SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL|CQSIZE"), "\(summary)")
        #expect(summary.contains("128 SQ / 256 CQ entries"), "\(summary)")  // rounded up, CQ = 2 × SQ
        for feature in ["NODROP", "FAST_POLL", "EXT_ARG", "SUBMIT_STABLE"] {
            #expect(summary.contains(feature), "\(summary)")
        }
        try loop.runOnce(timeout: .zero) { _ in }
        #expect(loop.backendSummary.contains("ring fd registered"), "\(loop.backendSummary)")
    }

    #if DEBUG  // failure injection exists in debug builds only
    @Test("falls back to COOP_TASKRUN, then to no flags, when the kernel rejects flags with EINVAL",
          arguments: [(IORING_SETUP_DEFER_TASKRUN, "COOP_TASKRUN|TASKRUN_FLAG"),
                      (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN, "no setup flags")])
    func fallbackTiers(rejected: UInt32, expected: String) throws {
        try IOUringFaults.$injected.withValue(IOUringFaults(rejectedSetupFlags: rejected)) {
            let loop = try uringLoop()
            #expect(loop.backendSummary.contains(expected), "\(loop.backendSummary)")
            try roundTrip(on: loop)
        }
    }

    @Test("keeps going without a registered ring fd, and says so")
    func unregisteredRingFD() throws {
        try IOUringFaults.$injected.withValue(IOUringFaults(registerRingFDErrno: EINVAL)) {
            let loop = try uringLoop()
            try roundTrip(on: loop)
            #expect(loop.backendSummary.contains("ring fd not registered (io_uring_register_ring_fd: EINVAL)"),
                    "\(loop.backendSummary)")
        }
    }
    #endif

    /// One receive and one send through `loop`.
    private func roundTrip(on loop: EventLoop) throws {
        let (server, client) = try uringTCPPair()
        let buffer = IOBuffer(capacity: 16)
        var got: Completion?
        loop.receive(server.fd, into: buffer, token: 1)
        uringWriteAll(client.fd, Array("ping".utf8))
        try uringDrive(loop, "round trip", until: { got != nil }) { got = $0 }
        #expect(got?.result == 4 && buffer.bytes == Array("ping".utf8))
    }

    #if DEBUG  // failure injection exists in debug builds only
    @Test("an explicitly requested io_uring that cannot start is an error naming the reason and the fix")
    func disabledIsNamed() {
        let error = IOUringFaults.$injected.withValue(IOUringFaults(setupErrno: EPERM, ioUringDisabledSysctl: "2")) {
            uringExpectFailure { () throws(EventsError) in _ = try uringLoop() }
        }
        #expect(error?.code == .backendUnavailable)
        #expect(error?.message == "io_uring_setup: EPERM — io_uring is disabled (kernel.io_uring_disabled = 2); use --backend epoll or enable it with sysctl kernel.io_uring_disabled=0")
        #expect(error?.cause == SystemCallError(systemCall: "io_uring_setup", errno: Errno(rawValue: EPERM)))
    }

    @Test("each start-up failure names its cause",
          arguments: [
            (IOUringFaults(setupErrno: EPERM, ioUringDisabledSysctl: "1", ioUringGroupSysctl: "995"),
             "kernel.io_uring_disabled = 1, kernel.io_uring_group = 995"),
            (IOUringFaults(setupErrno: EPERM, ioUringDisabledSysctl: "0"), "seccomp"),
            (IOUringFaults(setupErrno: ENOSYS), "CONFIG_IO_URING"),
            (IOUringFaults(setupErrno: ENOMEM), "lower ringEntries"),
            (IOUringFaults(setupErrno: EINVAL), "rejected every setup tried (SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL|CQSIZE|R_DISABLED; then COOP_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL|CQSIZE; then no setup flags)"),
            (IOUringFaults(missingOpcodes: [UInt8(IORING_OP_SEND_ZC.rawValue)]), "lacks IORING_OP_SEND_ZC (multishot receive"),
          ])
    func failuresAreNamed(faults: IOUringFaults, expected: String) {
        let error = IOUringFaults.$injected.withValue(faults) { uringExpectFailure { () throws(EventsError) in _ = try uringLoop() } }
        #expect(error?.code == .backendUnavailable)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("epoll") == true, "every message names the way out")
    }

    @Test("automatic selection does not pick an io_uring that cannot start")
    func automaticFallsBack() {
        final class Log: Sendable { let lines = Mutex<[String]>([]) }
        let log = Log()
        IOUringFaults.$injected.withValue(IOUringFaults(setupErrno: EPERM, ioUringDisabledSysctl: "2")) {
            do throws(EventsError) {
                let loop = try EventLoop(configuration: .init(backend: .automatic, log: { line in
                    log.lines.withLock { $0.append(line) }
                }))
                #expect(loop.backendKind == .epoll)
                #expect(log.lines.withLock { $0.contains { $0.contains("io_uring unavailable") && $0.contains("EPERM") } })
            } catch {
                // Only when epoll cannot start either (a build without the epoll backend).
                #expect(error.code == .backendUnavailable && !error.message.contains("io_uring"))
            }
        }
    }
    #endif

    @Test("STRATA_IOURING_FORCE_SETUP_ERRNO takes a name or a number")
    func forcedErrnoParsing() {
        #expect(IOUringFaults.parseErrno("EPERM") == EPERM)
        #expect(IOUringFaults.parseErrno("38") == 38)
        #expect(IOUringFaults.parseErrno("nonsense") == nil)
        #expect(IOUringFaults.parseErrno("0") == nil)
    }

    @Test("a loop made on one thread runs on another (the ring binds to the first thread that runs it)")
    func createdElsewhere() throws {
        final class Box: @unchecked Sendable { var loop: EventLoop? }
        let box = Box()
        let maker = try UringThread("maker") { box.loop = try? uringLoop() }
        try maker.join()
        let loop = try #require(box.loop)
        try roundTrip(on: loop)
    }

    // MARK: Multishot accept

    @Test("multishot accept takes 200 connections")
    func multishotAccept() throws {
        let loop = try uringLoop(ringEntries: 64)
        let listener = try UringListener(backlog: 256)
        let address = listener.address
        let total = 200
        let release = UringFlag()
        let clients = try UringThread("clients") {
            var fds: [CInt] = []
            for _ in 0..<total {
                guard let client = try? uringConnect(address) else { break }
                fds.append(client.release())
            }
            let deadline = MonotonicInstant.now.advanced(by: .seconds(20))
            while !release.isSet && MonotonicInstant.now < deadline { usleep(1000) }
            for fd in fds { _ = Glibc.close(fd) }
        }
        defer {
            release.set()
            try? clients.join()
        }
        var accepted: [CInt] = []
        var rearms = 0
        var id = loop.accept(listener.fd, multishot: true, token: 1)
        try uringDrive(loop, "200 accepts", timeout: .seconds(20), until: { accepted.count == total }) { c in
            #expect(c.result >= 0, "\(c)")
            if c.result >= 0 { accepted.append(c.result) }
            if !c.hasMore && accepted.count < total {
                rearms += 1
                id = loop.accept(listener.fd, multishot: true, token: 1)
            }
        }
        #expect(Set(accepted).count == total)
        // 200 queued connections can outrun a 128-entry CQ: the kernel then ends the multishot
        // (its last completion still carries a connection) and the caller re-arms.
        #expect(rearms < 10, "\(rearms) re-arms")
        for fd in accepted { _ = Glibc.close(fd) }
        var final: Completion?
        loop.cancel(id)
        try uringDrive(loop, "accept cancelled", until: { final != nil }) { if !$0.hasMore { final = $0 } }
        #expect(final?.result == -ECANCELED)
    }

    // MARK: Provided buffers

    @Test("multishot pooled receive with 4 buffers: -ENOBUFS parks it without spinning, every byte in order")
    func pooledReceiveRunsDry() throws {
        let loop = try uringLoop(ringEntries: 32)
        let io = uringBackend(of: loop)
        let pool = try loop.makeBufferPool(count: 4, size: 4096)
        let (server, client) = try uringTCPPair()
        let data = uringPattern(1 << 20, seed: 3)
        let writer = try UringThread("writer") {
            uringWriteAll(client.fd, data)
            shutdown(client.fd, CInt(SHUT_WR))
        }
        defer { try? writer.join() }

        var received: [UInt8] = []
        received.reserveCapacity(data.count)
        var held: [UInt16] = []
        var ended = false
        var iterations = 0
        var releaseBatches = 0
        var checkedParking = false
        let id = loop.receive(server.fd, from: pool, multishot: true, token: 9)
        let handler: (Completion) -> Void = { c in
            #expect(c.operation == id)
            if c.flags.contains(.buffer) {
                if c.result > 0 {
                    pool.withBuffer(c.bufferID, count: Int(c.result)) { received.append(contentsOf: $0) }
                }
                held.append(c.bufferID)
            }
            #expect(c.result >= 0, "\(c)")
            if !c.hasMore { ended = true }
        }
        let deadline = MonotonicInstant.now.advanced(by: .seconds(30))
        while !ended {
            guard MonotonicInstant.now < deadline else { throw UringTimeout(what: "1 MiB through 4 buffers") }
            try loop.runOnce(timeout: .milliseconds(100), handler)
            iterations += 1
            if held.count == pool.count && !checkedParking && io.counters.noBuffers > 0 {
                // Every buffer is with the caller and the receive is parked: iterations now sleep
                // their whole timeout, and the kernel reports nothing (no -ENOBUFS storm).
                checkedParking = true
                let before = io.counters
                for _ in 0..<3 {
                    var delivered = 0
                    let ms = try uringMilliseconds { delivered = try loop.runOnce(timeout: .milliseconds(20), handler) }
                    #expect(delivered == 0)
                    #expect(ms >= 15, "a parked receive must not end the wait early (\(ms) ms)")
                }
                #expect(io.counters.completionsReaped == before.completionsReaped)
                #expect(io.counters.noBuffers == before.noBuffers)
            }
            if !held.isEmpty {
                for b in held { pool.release(b) }
                held.removeAll()
                releaseBatches += 1
            }
        }
        for b in held { pool.release(b) }
        #expect(received.count == data.count)
        #expect(received == data, "bytes arrive complete and in order")
        #expect(checkedParking, "the pool ran dry at least once")
        #expect(io.counters.noBuffers >= 1)
        #expect(io.counters.noBuffers <= releaseBatches + 1, "each -ENOBUFS needs a release before the receive resumes")
        #expect(iterations <= 4 * (data.count / 4096) + 100, "\(iterations) iterations")
        #expect(pool.heldCount == 0)
    }

    @Test("single-shot pooled receive completes with a buffer, and -ENOBUFS resumes after a release")
    func pooledSingleShot() throws {
        let loop = try uringLoop(ringEntries: 16)
        let pool = try loop.makeBufferPool(count: 1, size: 64)
        let (server, client) = try uringTCPPair()
        uringWriteAll(client.fd, Array("first".utf8))
        var completions: [Completion] = []
        loop.receive(server.fd, from: pool, multishot: false, token: 1)
        try uringDrive(loop, "first receive", until: { completions.count == 1 }) { completions.append($0) }
        let first = completions[0]
        #expect(first.result == 5 && first.flags.contains(.buffer) && !first.hasMore)
        // The only buffer is with the caller: the next receive parks until it comes back.
        loop.receive(server.fd, from: pool, multishot: false, token: 2)
        uringWriteAll(client.fd, Array("second".utf8))
        for _ in 0..<3 { try loop.runOnce(timeout: .milliseconds(20)) { completions.append($0) } }
        #expect(completions.count == 1)
        #expect(uringBackend(of: loop).counters.noBuffers >= 1)
        pool.withBuffer(first.bufferID, count: 5) { #expect(Array($0) == Array("first".utf8)) }
        pool.release(first.bufferID)
        try uringDrive(loop, "second receive", until: { completions.count == 2 }) { completions.append($0) }
        #expect(completions[1].token == 2 && completions[1].result == 6)
        pool.withBuffer(completions[1].bufferID, count: 6) { #expect(Array($0) == Array("second".utf8)) }
        pool.release(completions[1].bufferID)
    }

    // MARK: Queue limits

    @Test("a full SQ (8 entries) takes 100 submissions in one go")
    func submissionQueueFull() throws {
        let loop = try uringLoop(ringEntries: 8)
        let io = uringBackend(of: loop)
        var pairs: [(UringDescriptor, UringDescriptor)] = []
        var buffers: [IOBuffer] = []
        for _ in 0..<100 {
            pairs.append(try uringUnixPair())
        }
        var ids: [OperationID: Int] = [:]
        for (i, pair) in pairs.enumerated() {
            let buffer = IOBuffer(capacity: 8)
            buffers.append(buffer)
            ids[loop.receive(pair.0.fd, into: buffer, token: UInt64(i))] = i
            uringWriteAll(pair.1.fd, [UInt8(i)])
        }
        #expect(io.counters.submissionQueueFull > 0)
        var results: [Int: Int32] = [:]
        try uringDrive(loop, "100 receives", until: { results.count == 100 }) { c in
            #expect(results[Int(c.token)] == nil, "one completion per receive")
            results[Int(c.token)] = c.result
        }
        for i in 0..<100 {
            #expect(results[i] == 1 && buffers[i].bytes == [UInt8(i)])
        }
    }

    #if DEBUG  // failure injection exists in debug builds only
    @Test("work that finds the SQ full even after a submit waits in order in a FIFO, and can be cancelled there")
    func deferredFIFO() throws {
        let loop = try uringLoop(ringEntries: 8)
        let io = uringBackend(of: loop)
        io.failNextSubmits = 1_000  // every submit of a full SQ "fails" until reset
        var pairs: [(UringDescriptor, UringDescriptor)] = []
        for _ in 0..<40 {
            pairs.append(try uringUnixPair())
        }
        var ids: [OperationID] = []
        for (i, pair) in pairs.enumerated() {
            ids.append(loop.receive(pair.0.fd, into: IOBuffer(capacity: 8), token: UInt64(i)))
            uringWriteAll(pair.1.fd, [UInt8(i)])
        }
        #expect(io.counters.deferred > 0, "receives beyond the SQ waited in the FIFO")
        var results: [UInt64: Int32] = [:]
        let handler: (Completion) -> Void = { c in
            #expect(results[c.token] == nil)
            results[c.token] = c.result
        }
        // The last receive never reached the kernel: cancelling it completes it here.
        loop.cancel(ids[39])
        try loop.runOnce(timeout: .zero, handler)
        #expect(results[39] == -ECANCELED)
        io.failNextSubmits = 0
        try uringDrive(loop, "FIFO drained", until: { results.count == 40 }, handler)
        for i in 0..<39 { #expect(results[UInt64(i)] == 1) }
    }
    #endif

    @Test("an overflowing CQ (4 entries) loses nothing: single-shot and multishot completions all arrive")
    func completionQueueOverflow() throws {
        let loop = try uringLoop(ringEntries: 2, completionBatch: 3)
        let io = uringBackend(of: loop)
        // 64 receives whose data is already there: each completes while being submitted, far
        // more completions than the CQ ring holds.
        var pairs: [(UringDescriptor, UringDescriptor)] = []
        for i in 0..<64 {
            pairs.append(try uringUnixPair())
            uringWriteAll(pairs[i].1.fd, [UInt8(i), 1, 2])
        }
        var results: [UInt64: Int32] = [:]
        for (i, pair) in pairs.enumerated() { loop.receive(pair.0.fd, into: IOBuffer(capacity: 8), token: UInt64(i)) }
        try uringDrive(loop, "64 receives", until: { results.count == 64 }) { c in
            #expect(results[c.token] == nil, "exactly one completion per receive")
            results[c.token] = c.result
        }
        #expect(results.values.allSatisfy { $0 == 3 })
        #expect(io.counters.overflowFlushes > 0, "the CQ overflowed and was flushed")

        // Multishot accept into a 4-entry CQ: the kernel may end the multishot when it cannot
        // post (reported without `more`); re-arming gets every connection.
        let listener = try UringListener(backlog: 64)
        var clients: [UringDescriptor] = []
        for _ in 0..<32 { clients.append(try uringConnect(listener.address)) }
        var accepted: [CInt] = []
        var rearms = 0
        var id = loop.accept(listener.fd, multishot: true, token: 100)
        try uringDrive(loop, "32 accepts", until: { accepted.count == 32 }) { c in
            if c.result >= 0 { accepted.append(c.result) } else { Issue.record("accept failed: \(c)") }
            if !c.hasMore && accepted.count < 32 {
                rearms += 1
                id = loop.accept(listener.fd, multishot: true, token: 100)
            }
        }
        #expect(Set(accepted).count == 32)
        for fd in accepted { _ = Glibc.close(fd) }
        loop.cancel(id)
        var final = false
        try uringDrive(loop, "accept cancelled", until: { final }) { if !$0.hasMore { final = true } }
    }

    // MARK: Cancel and close

    @Test("cancel of a pending receive completes it with -ECANCELED, before and after submission")
    func cancelPendingReceive() throws {
        let loop = try uringLoop()
        let (server, client) = try uringTCPPair()
        _ = client
        for submitted in [false, true] {
            let buffer = IOBuffer(capacity: 64)
            let id = loop.receive(server.fd, into: buffer, token: 5)
            var seen: [Completion] = []
            if submitted {
                try loop.runOnce(timeout: .milliseconds(10)) { seen.append($0) }
                #expect(seen.isEmpty)
            }
            #expect(loop.cancel(id))
            try uringDrive(loop, "cancelled receive", until: { !seen.isEmpty }) { seen.append($0) }
            for _ in 0..<3 { try loop.runOnce(timeout: .milliseconds(10)) { seen.append($0) } }
            #expect(seen.count == 1)
            #expect(seen.first?.result == -ECANCELED)
            #expect(!buffer.isLent)
        }
        #expect(uringBackend(of: loop).kernelRequests == 1, "only the wakeup read is left in the kernel")
    }

    @Test("close with operations in flight: they finish first, the close completion is last, nothing follows")
    func closeWithOperationsInFlight() throws {
        let loop = try uringLoop()
        let pool = try loop.makeBufferPool(count: 4, size: 1024)
        let (server, client) = try uringTCPPair()
        // Fill the socket buffers so a send stays pending in the kernel.
        uringSetBufferSizes(send: server.fd, receive: client.fd, bytes: 4096)
        let filler = [UInt8](repeating: 7, count: 65536)
        var wrote = 1
        while wrote > 0 {
            wrote = 0
            while true {
                let n = filler.withUnsafeBytes { send(server.fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n <= 0 { break }
                wrote += n
            }
            usleep(20_000)
        }
        let fd = server.release()
        var order: [Completion] = []
        let receive = loop.receive(fd, into: IOBuffer(capacity: 64), token: 1)
        let pooled = loop.receive(fd, from: pool, multishot: true, token: 2)
        let big = IOBuffer(uringPattern(1 << 20))
        let sending = loop.send(fd, big, token: 3)
        try loop.runOnce(timeout: .milliseconds(20)) { order.append($0) }
        #expect(order.isEmpty, "all three are pending: \(order)")
        let close = loop.close(fd, token: 4)
        try uringDrive(loop, "close", until: { order.contains { $0.operation == close } }) { order.append($0) }
        #expect(order.last?.operation == close)
        #expect(order.last?.result == 0)
        let finals = order.filter { !$0.hasMore }.map(\.operation)
        #expect(Set(finals) == Set([receive, pooled, sending, close]))
        #expect(order.first { $0.operation == receive }?.result == -ECANCELED)
        #expect(order.first { $0.operation == pooled && !$0.hasMore }?.result == -ECANCELED)
        let sendResult = order.first { $0.operation == sending }?.result ?? 0
        #expect(sendResult == -ECANCELED || sendResult > 0, "a send finishes with what it sent or is cancelled")
        #expect(!big.isLent)
        let count = order.count
        for _ in 0..<5 { try loop.runOnce(timeout: .milliseconds(20)) { order.append($0) } }
        #expect(order.count == count, "no completion after the close: \(order[count...])")
        #expect(uringBackend(of: loop).kernelRequests == 1)
        // The peer sees the connection end: it reads what was sent, then end of stream.
        let rest = uringReadAll(client.fd, count: 1 << 26)
        #expect(rest.count < 1 << 26)
    }

    // MARK: Wakeup and time

    @Test("a wake from another thread ends a wait with no timeout")
    func wakeEndsUnboundedWait() throws {
        let loop = try uringLoop()
        let waker = loop.waker
        let listener = try UringListener()
        let address = listener.address
        let rescue = UringFlag()
        // If the wake were lost, a connection to an armed accept ends the wait after 3 s so the
        // test fails instead of hanging.
        loop.accept(listener.fd, multishot: false, token: 99)
        let thread = try UringThread("waker") {
            usleep(100_000)
            waker.wake()
            let deadline = MonotonicInstant.now.advanced(by: .seconds(3))
            while !rescue.isSet {
                if MonotonicInstant.now > deadline {
                    _ = try? uringConnect(address)
                    return
                }
                usleep(1000)
            }
        }
        var delivered: [Completion] = []
        let ms = try uringMilliseconds { try loop.runOnce(timeout: nil) { delivered.append($0) } }
        rescue.set()
        try thread.join()
        #expect(delivered.isEmpty, "the wakeup never surfaces as a completion")
        #expect(ms >= 80 && ms < 2_000, "\(ms) ms")
        // Wakes coalesce and re-arm: a second one works too.
        waker.wake()
        waker.wake()
        let again = try uringMilliseconds { try loop.runOnce(timeout: .seconds(5)) { delivered.append($0) } }
        #expect(again < 1_000)
    }

    @Test("wait timeouts and loop timers are honoured")
    func timeouts() throws {
        let loop = try uringLoop()
        var delivered = -1
        let waited = try uringMilliseconds { delivered = try loop.runOnce(timeout: .milliseconds(30)) { _ in } }
        #expect(delivered == 0)
        #expect(waited >= 25 && waited < 1_000, "runOnce(30 ms) took \(waited) ms")
        let polled = try uringMilliseconds { try loop.runOnce(timeout: .zero) { _ in } }
        #expect(polled < 20, "runOnce(0) took \(polled) ms")
        var fired: Completion?
        loop.timeout(after: .milliseconds(40), token: 1)
        let timed = try uringMilliseconds {
            try uringDrive(loop, "timer", until: { fired != nil }) { fired = $0 }
        }
        #expect(fired?.result == -ETIME)
        #expect(timed >= 35 && timed < 1_000, "a 40 ms timer fired after \(timed) ms")
        // An unbounded wait still ends at the next timer.
        fired = nil
        loop.timeout(after: .milliseconds(30), token: 2)
        let unbounded = try uringMilliseconds { while fired == nil { try loop.runOnce(timeout: nil) { fired = $0 } } }
        #expect(unbounded >= 25 && unbounded < 1_000, "\(unbounded) ms")
    }

    // MARK: Operations

    @Test("send_zc above the threshold: one completion with the byte count, after the notification")
    func zeroCopySend() throws {
        let loop = try uringLoop()
        let io = uringBackend(of: loop)
        io.zeroCopyThreshold = 64 * 1024
        io.zeroCopyReportUsage = true
        let (server, client) = try uringTCPPair()
        let data = uringPattern(1 << 20, seed: 11)
        final class Sink: @unchecked Sendable { var bytes: [UInt8] = [] }
        let sink = Sink()
        let reader = try UringThread("reader") { sink.bytes = uringReadAll(client.fd, count: data.count) }
        let buffer = IOBuffer(data)
        var offset = 0
        var completions = 0
        while offset < data.count {
            var result: Int32?
            loop.send(server.fd, buffer, offset: offset, token: 1)
            #expect(buffer.isLent)
            try uringDrive(loop, "send", until: { result != nil }) { c in
                #expect(!c.hasMore)
                completions += 1
                result = c.result
            }
            #expect(!buffer.isLent)
            let sent = try #require(result)
            #expect(sent > 0, "send failed: \(sent)")
            offset += Int(sent)
        }
        try reader.join()
        #expect(sink.bytes == data)
        #expect(io.counters.zeroCopySends == completions)
        // A small send stays an ordinary send.
        let small = IOBuffer(Array("tiny".utf8))
        var smallResult: Int32?
        loop.send(server.fd, small, token: 2)
        try uringDrive(loop, "small send", until: { smallResult != nil }) { smallResult = $0.result }
        #expect(smallResult == 4)
        #expect(io.counters.zeroCopySends == completions)
    }

    @Test("writev gathers buffers in order, to sockets (sendmsg) and to pipes (writev fallback)")
    func gatheringWrites() throws {
        let loop = try uringLoop()
        let parts = [IOBuffer(Array("alpha-".utf8)), IOBuffer(Array("beta-".utf8)), IOBuffer(Array("gamma".utf8))]
        let expected = Array("alpha-beta-gamma".utf8)
        // Socket.
        let (server, client) = try uringTCPPair()
        var result: Int32?
        loop.writev(server.fd, parts, token: 1)
        try uringDrive(loop, "writev to a socket", until: { result != nil }) { result = $0.result }
        #expect(result == Int32(expected.count))
        #expect(uringReadAll(client.fd, count: expected.count) == expected)
        // Pipe: IORING_OP_SENDMSG says ENOTSOCK; the backend retries with IORING_OP_WRITEV.
        var ends: [CInt] = [0, 0]
        #expect(pipe(&ends) == 0)
        let readEnd = UringDescriptor(ends[0]), writeEnd = UringDescriptor(ends[1])
        result = nil
        loop.writev(writeEnd.fd, parts, token: 2)
        try uringDrive(loop, "writev to a pipe", until: { result != nil }) { result = $0.result }
        #expect(result == Int32(expected.count))
        var got = [UInt8](repeating: 0, count: 64)
        let n = got.withUnsafeMutableBytes { read(readEnd.fd, $0.baseAddress, $0.count) }
        #expect(Array(got[0..<max(n, 0)]) == expected)
    }

    @Test("writev and send to a reset connection report an error, never SIGPIPE")
    func noSigpipe() throws {
        let loop = try uringLoop()
        let (server, client) = try uringTCPPair()
        try Socket(adoptingDescriptor: client.release()).setOption(.linger, to: .zero)  // close sends RST
        usleep(20_000)
        var results: [Int32] = []
        for attempt in 0..<2 {
            loop.writev(server.fd, [IOBuffer(uringPattern(1000))], token: UInt64(attempt))
            try uringDrive(loop, "writev after reset", until: { results.count == attempt + 1 }) { results.append($0.result) }
        }
        #expect(results.last.map { $0 == -EPIPE || $0 == -ECONNRESET } == true, "\(results)")
    }

    @Test("sendfile moves a file in partial steps, and a reset peer is an error, not SIGPIPE")
    func sendfileFromFile() throws {
        let loop = try uringLoop()
        let data = uringPattern(3 << 20, seed: 5)
        var template = Array("/tmp/strata-uring-sendfile-XXXXXX".utf8CString)
        let file = UringDescriptor(template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) })
        #expect(file.fd >= 0)
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        #expect(data.withUnsafeBytes { write(file.fd, $0.baseAddress, $0.count) } == data.count)

        let (server, client) = try uringTCPPair()
        uringSetBufferSizes(send: server.fd, receive: client.fd, bytes: 16384)  // so sendfile returns partial counts
        final class Sink: @unchecked Sendable { var bytes: [UInt8] = [] }
        let sink = Sink()
        let reader = try UringThread("reader") {
            usleep(50_000)
            sink.bytes = uringReadAll(client.fd, count: data.count)
        }
        var offset = 0
        var steps = 0
        while offset < data.count {
            var result: Int32?
            loop.sendfile(to: server.fd, from: file.fd, offset: Int64(offset), count: data.count - offset, token: 1)
            try uringDrive(loop, "sendfile", until: { result != nil }) { result = $0.result }
            let sent = try #require(result)
            #expect(sent > 0, "sendfile failed: \(sent)")
            guard sent > 0 else { break }
            offset += Int(sent)
            steps += 1
        }
        try reader.join()
        #expect(sink.bytes == data)
        #expect(steps > 1, "a 3 MiB file goes out in several partial sendfiles")
        #expect(lseek(file.fd, 0, SEEK_CUR) == off_t(data.count), "the file offset is the write's, untouched by sendfile")

        // Reset peer.
        let (server2, client2) = try uringTCPPair()
        try Socket(adoptingDescriptor: client2.release()).setOption(.linger, to: .zero)
        usleep(20_000)
        var results: [Int32] = []
        for attempt in 0..<2 {
            loop.sendfile(to: server2.fd, from: file.fd, offset: 0, count: 1 << 20, token: UInt64(10 + attempt))
            try uringDrive(loop, "sendfile after reset", until: { results.count == attempt + 1 }) { results.append($0.result) }
        }
        #expect(results.last.map { $0 == -EPIPE || $0 == -ECONNRESET } == true, "\(results)")
    }

    @Test("connect succeeds to a listener and reports ECONNREFUSED where nothing listens")
    func connects() throws {
        let loop = try uringLoop()
        let listener = try UringListener()
        let address = listener.address
        let socket = UringDescriptor(try Socket(family: .ipv4, kind: .stream).takeDescriptor())
        var result: Int32?
        loop.connect(socket.fd, to: address, token: 1)
        try uringDrive(loop, "connect", until: { result != nil }) { result = $0.result }
        #expect(result == 0)

        let closedPort = try UringListener().address  // closed again at once
        let refused = UringDescriptor(try Socket(family: .ipv4, kind: .stream).takeDescriptor())
        result = nil
        loop.connect(refused.fd, to: closedPort, token: 2)
        try uringDrive(loop, "refused connect", until: { result != nil }) { result = $0.result }
        #expect(result == -ECONNREFUSED)
    }

    @Test("dropping a loop with operations in flight cancels them in the kernel first")
    func teardownQuiesces() throws {
        let (server, client) = try uringTCPPair()
        _ = client
        let buffer = IOBuffer(capacity: 64)
        do {
            let loop = try uringLoop()
            let pool = try loop.makeBufferPool(count: 4, size: 256)
            loop.receive(server.fd, into: buffer, token: 1)
            loop.receive(server.fd, from: pool, multishot: true, token: 2)
            try loop.runOnce(timeout: .milliseconds(10)) { _ in }
            #expect(uringBackend(of: loop).kernelRequests == 3)
        }
        // The loop is gone and its receives were cancelled: data sent now stays in the socket.
        uringWriteAll(client.fd, uringPattern(100))
        usleep(20_000)
        var scratch = [UInt8](repeating: 0, count: 200)
        let n = scratch.withUnsafeMutableBytes { recv(server.fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
        #expect(n == 100)
    }
}

// MARK: - Measurement

/// send vs send_zc over loopback TCP, one send in flight (how Strata sends), best of 3 runs of
/// ~0.3 s per size. A measurement, never a timed test: run it with STRATA_BENCH_SEND_ZC=1
/// (`swift test -c release --filter sendZeroCopyBenchmark`) and read the table it prints.
@Suite("io_uring send_zc measurement")
struct IOUringSendZeroCopyMeasurement {
    @Test("send vs send_zc throughput and CPU", .enabled(if: getenv("STRATA_BENCH_SEND_ZC") != nil))
    func sendZeroCopyBenchmark() throws {
        print("size      send MB/s  send CPU ns/KiB   send_zc MB/s  send_zc CPU ns/KiB  zc copied")
        for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
            var best: [Bool: (mbps: Double, cpu: Double, copied: String)] = [:]
            for _ in 0..<3 {
                for zeroCopy in [false, true] {
                    let r = try measure(size: size, zeroCopy: zeroCopy)
                    if r.mbps > best[zeroCopy]?.mbps ?? 0 { best[zeroCopy] = r }
                }
            }
            let copy = best[false]!, zc = best[true]!
            print("\(pad(size / 1024, "KiB", 8))  \(pad(copy.mbps, 9))  \(pad(copy.cpu, 15))   \(pad(zc.mbps, 12))  \(pad(zc.cpu, 18))  \(zc.copied)")
        }
    }

    private func pad(_ value: Double, _ width: Int) -> String {
        let text = String(Int(value.rounded()))
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    private func pad(_ value: Int, _ unit: String, _ width: Int) -> String {
        let text = "\(value) \(unit)"
        return text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// Thread CPU time (user + system) of the calling thread, in nanoseconds.
    private func threadCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
    }

    private func measure(size: Int, zeroCopy: Bool) throws -> (mbps: Double, cpu: Double, copied: String) {
        let loop = try uringLoop()
        let io = uringBackend(of: loop)
        io.zeroCopyThreshold = zeroCopy ? 0 : .max
        io.zeroCopyReportUsage = zeroCopy
        let (server, client) = try uringTCPPair()
        let total = max(64 << 20, size * 256)
        let reader = try UringThread("reader") {
            var scratch = [UInt8](repeating: 0, count: 1 << 20)
            var got = 0
            while got < total {
                let n = scratch.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                got += n
            }
        }
        let buffer = IOBuffer(uringPattern(size))
        var sent = 0
        let start = MonotonicInstant.now
        let cpu0 = threadCPU()
        while sent < total {
            var result: Int32 = 0
            var done = false
            loop.send(server.fd, buffer, token: 0)
            while !done { try loop.runOnce(timeout: .seconds(5)) { c in result = c.result; done = true } }
            guard result > 0 else { throw UringTimeout(what: "send failed \(result)") }
            sent += Int(result)
        }
        let cpu = threadCPU() - cpu0
        let seconds = Double(MonotonicInstant.now.nanoseconds - start.nanoseconds) / 1e9
        try reader.join()
        let copied = zeroCopy ? "\(io.counters.zeroCopyCopied)/\(io.counters.zeroCopySends)" : "-"
        return (Double(sent) / seconds / 1e6, cpu / Double(sent / 1024), copied)
    }
}
#endif
