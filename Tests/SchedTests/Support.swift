#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataSched
import StrataSockets
import Synchronization
import Testing

/// The backends CI requires here; each test runs on all of them.
let schedBackends: [BackendKind] = {
    #if os(Linux)
    return [.ioUring, .epoll]
    #else
    return [.kqueue]
    #endif
}()

func startLoop(_ kind: BackendKind, name: String = "test-loop") throws -> Loop {
    try Loop.start(name: name, configuration: .init(backend: .exactly(kind)))
}

/// Counts resumptions that happened off the loop thread (each check records where it ran).
final class ThreadChecks: Sendable {
    let onLoop = Atomic<Int>(0)
    let offLoop = Atomic<Int>(0)
    func check(_ loop: Loop) {
        if loop.isCurrent { onLoop.add(1, ordering: .relaxed) } else { offLoop.add(1, ordering: .relaxed) }
    }
}

/// A blocking client socket connected to `port` on 127.0.0.1.
func blockingClient(port: UInt16) throws -> Socket {
    let s = try Socket(family: .ipv4, kind: .stream, blocking: true)
    try s.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port), timeout: .seconds(5))
    return s
}

/// Runs `body` on the loop (as a task preferring it) and returns its result.
func onLoop<R: Sendable>(_ loop: Loop, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await Task(executorPreference: loop) { try await body() }.value
}

/// A blocking client connected to `port`, as a raw descriptor (arrays cannot hold `Socket`).
func clientDescriptor(port: UInt16) throws -> CInt {
    try blockingClient(port: port).takeDescriptor()
}

/// Sends `bytes` on a blocking descriptor.
func sendAll(_ fd: CInt, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return }
        offset += n
    }
}

/// Receives up to `max` bytes, waiting at most `timeout` ms: nil on timeout, [] at end of stream
/// (or an error such as a reset).
func receive(_ fd: CInt, max: Int = 4096, timeout: Int32 = 5000) -> [UInt8]? {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, timeout) == 1 else { return nil }
    var buffer = [UInt8](repeating: 0, count: max)
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
    return n <= 0 ? [] : Array(buffer[..<n])
}
