// StrataEvents micro benchmarks (issue 6): the loop's timer queue and its receive buffer pool.
//
// Every benchmark builds its state first and measures from startMeasurement() on: the
// closure runs once per sample, so setup inside the measured part would be counted
// (a 10,000-timer fill per 1,000 iterations, or an io_uring ring per sample).
//
// TimerQueue (public API: schedule(at:token:), cancel(_:), popExpired(now:)): an indexed
// binary min-heap over a slab; nothing should allocate once it has grown to the peak number
// of live timers, so every benchmark grows the queue to size first (the `capacity:` reserve).
//
// BufferPool: handing a buffer out (the "get") is internal to the loop (a completion names the
// buffer: `BufferPool.handOut` is not public API); the public side is
// `EventLoop.makeBufferPool(count:size:)`, `receive(_:from:multishot:token:)`,
// `BufferPool.withBuffer(_:count:_:)` and `release(_:)`. So the pool is measured through
// that public path: one 64-byte message written into a loopback TCP connection, the loop's multishot
// receive completing into a pool buffer, read, and released (a whole receive round trip on
// the loop, per backend; the pool's own bookkeeping is a small part of it).
//
// HTTP parser micro benchmarks will live in their own target (Benchmarks/Benchmarks/
// HTTPBenchmarks) once Modules/HTTP/Sources/Parser lands; see docs/benchmarks.md.
//
// Run: cd Benchmarks && swift package --scratch-path ../.build-bench benchmark --target EventsBenchmarks

import Benchmark
import StrataEvents

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A connected TCP pair over loopback, with plain blocking syscalls (what servers receive on).
func tcpPair() -> [CInt] {
    #if canImport(Glibc)
    let stream = Int32(SOCK_STREAM.rawValue)
    #else
    let stream = SOCK_STREAM
    #endif
    let listener = socket(AF_INET, stream, 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(listener, sa, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, sa, &length) == 0
        }
    }
    precondition(ok, "loopback listener: errno \(errno)")
    let client = socket(AF_INET, stream, 0)
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
    }
    precondition(connected, "loopback connect: errno \(errno)")
    let server = accept(listener, nil, nil)
    precondition(server >= 0, "loopback accept: errno \(errno)")
    close(listener)
    var one: CInt = 1
    for fd in [client, server] {
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
    }
    return [server, client]
}

/// Deadlines in a pseudo-random order (a fixed LCG), so heap operations are not all at one end.
func deadlines(_ n: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [MonotonicInstant] {
    var x = seed
    return (0..<n).map { _ in
        x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return MonotonicInstant(nanoseconds: 1_000_000_000 + (x >> 24) % 10_000_000_000)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100
    )

    // Schedule 1,000 timers (scaled: one iteration = one schedule) into a queue that already
    // holds 10,000, then cancel them again, so the queue size stays put between samples.
    Benchmark("TimerQueue schedule+cancel, 10k live") { benchmark in
        let live = deadlines(10_000)
        let extra = deadlines(1_000, seed: 7)
        var queue = TimerQueue(capacity: 11_000)
        for (i, d) in live.enumerated() { _ = queue.schedule(at: d, token: UInt64(i)) }
        var ids = [TimerID]()
        ids.reserveCapacity(extra.count)
        benchmark.startMeasurement()
        var i = 0
        for _ in benchmark.scaledIterations {
            ids.append(queue.schedule(at: extra[i], token: UInt64(i)))
            i += 1
            if i == extra.count {
                for id in ids { blackHole(queue.cancel(id)) }
                ids.removeAll(keepingCapacity: true)
                i = 0
            }
        }
        benchmark.stopMeasurement()
        blackHole(queue.count)
    }

    // Cancel only: every iteration cancels one of the 10,000 live timers (re-filled, unmeasured,
    // when all are gone). The cancelled slot is in the middle of the heap: O(log n) sift.
    Benchmark("TimerQueue cancel, 10k live") { benchmark in
        let live = deadlines(10_000)
        var queue = TimerQueue(capacity: live.count)
        var ids = [TimerID]()
        ids.reserveCapacity(live.count)
        func refill() {
            ids.removeAll(keepingCapacity: true)
            for (i, d) in live.enumerated() { ids.append(queue.schedule(at: d, token: UInt64(i))) }
        }
        refill()
        var next = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if next == ids.count {
                benchmark.stopMeasurement()
                refill()
                next = 0
                benchmark.startMeasurement()
            }
            // Every 7th id: spread over the heap, each id once per pass (7 and 10,000 are coprime).
            blackHole(queue.cancel(ids[(next &* 7) % ids.count]))
            next += 1
        }
        benchmark.stopMeasurement()
    }

    // Expire: pop every timer of a 10,000-timer queue in deadline order (one iteration = one pop),
    // refilled (unmeasured) when empty.
    Benchmark("TimerQueue popExpired, 10k live") { benchmark in
        let live = deadlines(10_000)
        var queue = TimerQueue(capacity: live.count)
        let end = MonotonicInstant(nanoseconds: .max)
        func refill() { for (i, d) in live.enumerated() { _ = queue.schedule(at: d, token: UInt64(i)) } }
        refill()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if queue.isEmpty {
                benchmark.stopMeasurement()
                refill()
                benchmark.startMeasurement()
            }
            blackHole(queue.popExpired(now: end))
        }
        benchmark.stopMeasurement()
    }

    // The loop's typical pattern: a connection's idle timer re-armed on every read (cancel the
    // old one, schedule a later one), with 10,000 connections' timers live.
    Benchmark("TimerQueue re-arm (cancel+schedule), 10k live") { benchmark in
        let live = deadlines(10_000)
        var queue = TimerQueue(capacity: live.count + 1)
        var ids = live.enumerated().map { queue.schedule(at: $0.element, token: UInt64($0.offset)) }
        var clock: UInt64 = 20_000_000_000
        var k = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            _ = queue.cancel(ids[k])
            clock &+= 1_000
            ids[k] = queue.schedule(at: MonotonicInstant(nanoseconds: clock), token: UInt64(k))
            k = k + 1 == ids.count ? 0 : k + 1
        }
        benchmark.stopMeasurement()
        blackHole(queue.count)
    }

    for kind in [BackendKind.epoll, .ioUring] {
        // Receive into a pool buffer and give it back, through the loop (see the header).
        Benchmark("BufferPool receive+release round trip, 64 B (\(kind))",
                  configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .nanoseconds,
                                       warmupIterations: 3, scalingFactor: .kilo, maxDuration: .seconds(3),
                                       maxIterations: 100)) { benchmark in
            let loop: EventLoop
            do {
                loop = try EventLoop(configuration: .init(backend: .exactly(kind)))
            } catch {
                print("skipped: \(kind) unavailable: \(error)")
                return
            }
            let fds = tcpPair()
            defer { close(fds[0]); close(fds[1]) }
            let pool = try loop.makeBufferPool(count: 64, size: 2048)
            _ = loop.receive(fds[0], from: pool, multishot: true, token: 1)
            let message = [UInt8](repeating: 0x5A, count: 64)
            var sum = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                _ = message.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
                var received = 0
                while received < message.count {
                    _ = try loop.runOnce(timeout: .seconds(1)) { c in
                        guard c.token == 1, c.result > 0, c.flags.contains(.buffer) else { return }
                        sum &+= pool.withBuffer(c.bufferID, count: Int(c.result)) { Int($0[0]) }
                        pool.release(c.bufferID)
                        received += Int(c.result)
                    }
                }
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        }
    }
}
