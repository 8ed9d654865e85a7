#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets
import StrataThreads
import Testing
@testable import StrataEvents

/// Every backend this platform must run. CI requires all of them: a backend that cannot
/// start is a test failure, not a skip.
let conformanceBackends: [BackendKind] = {
    #if os(Linux)
    return [.ioUring, .epoll]
    #else
    return [.kqueue]
    #endif
}()

struct TestTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

func makeLoop(_ kind: BackendKind, ringEntries: Int = 4096) throws -> EventLoop {
    try EventLoop(configuration: .init(backend: .exactly(kind), ringEntries: ringEntries))
}

/// Runs iterations until `done()` or the deadline; throws on timeout so a broken backend
/// fails the test instead of hanging it.
func drive(_ loop: EventLoop, _ what: String, timeout: Duration = .seconds(10), until done: () -> Bool,
           _ handler: (Completion) -> Void) throws {
    let deadline = MonotonicInstant.now.advanced(by: timeout)
    while !done() {
        guard MonotonicInstant.now < deadline else { throw TestTimeout(what: what) }
        try loop.runOnce(timeout: .milliseconds(50), handler)
    }
}

/// A nonblocking TCP listener on 127.0.0.1 with an ephemeral port (a class: a tuple cannot
/// hold the noncopyable `Socket`).
final class Listener {
    let socket: Socket
    let address: SocketAddress
    var descriptor: CInt { socket.descriptor }

    init(backlog: Int = 1024) throws {
        let s = try Socket(family: .ipv4, kind: .stream)
        try s.setOption(.reuseAddress, to: true)
        try s.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
        try s.listen(backlog: backlog)
        address = try s.localAddress
        socket = s
    }
}

/// Accepts one connection on `listener` through `loop` (a single-shot accept, token 1) and
/// returns its descriptor, or throws when none arrives in time.
func acceptOne(_ loop: EventLoop, _ listener: Listener) throws -> CInt {
    var conn: CInt = -1
    loop.accept(listener.descriptor, multishot: false, token: 1)
    try drive(loop, "accept", until: { conn >= 0 }) { c in
        #expect(c.kind == .accept && c.result >= 0, "\(c)")
        conn = c.result
    }
    return conn
}

/// A blocking client connected to `address`.
func connectClient(_ address: SocketAddress) throws -> Socket {
    let s = try Socket(family: .ipv4, kind: .stream, blocking: true)
    _ = try s.connect(to: address)
    return s
}

/// Deterministic test bytes: position-dependent with a per-stream seed.
func pattern(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}

/// Runs `body` on its own thread; `join()` waits for it and rethrows nothing (record issues inside).
final class Background: @unchecked Sendable {
    private var thread: StrataThreads.Thread?

    init(_ name: String, _ body: @escaping @Sendable () -> Void) throws {
        thread = try StrataThreads.Thread.spawn(name: name, body)
    }

    func join() throws {
        if let t = thread.take() { try t.join() }
    }
}

/// Reads exactly `count` bytes from a blocking socket, or fewer at end of stream.
func readAll(_ socket: borrowing Socket, count: Int) throws -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count)
    while out.count < count {
        guard let chunk = try socket.receive(maximumCount: min(65536, count - out.count)), !chunk.isEmpty else { break }
        out += chunk
    }
    return out
}

/// Writes all of `bytes` to a blocking socket.
func writeAll(_ socket: borrowing Socket, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = try bytes[offset...].withUnsafeBytes { try socket.send($0) } ?? 0
        offset += n
    }
}
