// strata-resp: a Redis-protocol (RESP2) server built only on Strata's Sockets + Events + Sched.
//
//   strata-resp [--host 127.0.0.1] [--port 6380] [--backend auto|io_uring|epoll|kqueue] [--loops 1] [--pin]
//               [--distribution reuseport|acceptor]
//
// Every connection is one task on a loop: read into an IOBuffer, parse and execute every
// complete command (RESPKit), write the replies in one send, repeat. The store is shared
// by all loops (one keyspace, as in Redis) behind a lock, uncontended with one loop.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import RESPKit
import StrataEvents
import StrataSched
import StrataSockets
import StrataThreads

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 6380
    var backend: BackendChoice = .automatic
    var loops = 1
    var pin = false
    var distribution: LoopGroup.Distribution = .reusePort
}

func warn(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func usage(_ message: String) -> Never {
    warn("strata-resp: \(message)")
    warn("usage: strata-resp [--host ADDR] [--port N] [--backend auto|io_uring|epoll|kqueue] [--loops N] [--pin] [--distribution reuseport|acceptor]")
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    do { o.backend = try BackendChoice.fromEnvironment() } catch { usage("STRATA_BACKEND: \(error)") }
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else { usage("\(flag) needs a value") }
        return v
    }
    while let arg = args.popFirst() {
        switch arg {
        case "--host": o.host = value(arg)
        case "--port":
            let v = value(arg)
            guard let p = UInt16(v) else { usage("--port \(v): use a number in 0...65535") }
            o.port = p
        case "--backend":
            let v = value(arg)
            do { o.backend = try BackendChoice(parsing: v) } catch { usage("--backend \(v): \(error)") }
        case "--loops":
            let v = value(arg)
            guard let n = Int(v), (1...256).contains(n) else { usage("--loops \(v): use a number in 1...256") }
            o.loops = n
        case "--pin": o.pin = true
        case "--distribution":
            switch value(arg) {
            case "reuseport": o.distribution = .reusePort
            case "acceptor": o.distribution = .singleAcceptor
            case let v: usage("--distribution \(v): use reuseport (a listener per loop) or acceptor (one, handing off)")
            }
        case "-h", "--help": usage("a Redis-protocol (RESP2) server on Strata")
        default: usage("unknown argument \(arg)")
        }
    }
    return o
}

/// The keyspace, shared by every loop.
final class SharedStore: @unchecked Sendable {
    // @unchecked: `store` is used only while `lock` is held.
    private let lock = StrataThreads.Mutex()
    private let store = RESPStore()

    func process(_ input: UnsafeRawBufferPointer, _ parser: RESPParser, into out: inout [UInt8]) -> RESPProcessResult {
        lock.lock()
        defer { lock.unlock() }
        return store.process(input, parser: parser, now: Self.now, into: &out)
    }

    func expireSweep() {
        lock.lock()
        defer { lock.unlock() }
        _ = store.expireSweep(now: Self.now, budget: 200)
    }

    /// Monotonic milliseconds, the store's clock.
    static var now: UInt64 { MonotonicInstant.now.nanoseconds / 1_000_000 }
}

/// Serves one connection until it ends.
func serve(_ connection: TCPConnection, _ shared: SharedStore) async {
    let parser = RESPParser()
    let buffer = IOBuffer(capacity: 16 * 1024)
    var pending: [UInt8] = []   // unconsumed bytes of an incomplete request
    var out: [UInt8] = []
    out.reserveCapacity(16 * 1024)
    while true {
        let n: Int
        do { n = try await connection.read(into: buffer) } catch { return }
        if n == 0 { return }
        var result = RESPProcessResult(consumed: 0, commands: 0, closeConnection: false)
        if pending.isEmpty {
            // The usual case: whole requests in one read, parsed in place.
            buffer.withUnsafeBytes { input in
                result = shared.process(input, parser, into: &out)
                if result.consumed < input.count { pending.append(contentsOf: input[result.consumed...]) }
            }
        } else {
            buffer.withUnsafeBytes { pending.append(contentsOf: $0) }
            pending.withUnsafeBytes { input in
                result = shared.process(input, parser, into: &out)
            }
            pending.removeFirst(result.consumed)
        }
        if !out.isEmpty {
            do { try await connection.write(out) } catch { return }
            out.removeAll(keepingCapacity: out.capacity <= 1 << 20)
        }
        if result.closeConnection { return }
    }
}

TerminationSignals.block()
let options = parseOptions()
let address: SocketAddress
do { address = try SocketAddress(ipAddress: options.host, port: options.port) } catch {
    usage("--host \(options.host): \(error)")
}
let shared = SharedStore()
let group: LoopGroup
do {
    group = try LoopGroup(loops: options.loops, name: "resp", configuration: .init(backend: options.backend, log: { warn($0) }),
                          pinning: options.pin)
} catch {
    warn("strata-resp: \(error)")
    exit(1)
}
let bound: SocketAddress
do {
    bound = try group.serve(on: address, distribution: options.distribution) { connection in await serve(connection, shared) }
} catch {
    warn("strata-resp: \(error)")
    exit(1)
}
// Expired keys are also removed in the background (bounded work every 100 ms), not only
// when touched.
for loop in group.loops {
    Task(executorPreference: loop) {
        while (try? await loop.sleep(for: .milliseconds(100))) != nil {
            shared.expireSweep()
        }
    }
}
let first = group.loops[0]
print("strata-resp listening on \(bound) — backend \(first.backendKind) (\(first.backendSummary)), \(options.loops) loop(s)")
fflush(nil)
let signal = TerminationSignals.wait()
warn("strata-resp: \(TerminationSignals.name(signal)): shutting down (up to 5 s for open connections)")
let report = await group.shutdownGracefully(timeout: .seconds(5))
warn("strata-resp: \(report)")
exit(0)
