// strata-echo: a TCP echo server on Strata's Events layer (Sockets + Events + Threads).
//
//   strata-echo [--host 127.0.0.1] [--port 7007] [--backend auto|io_uring|epoll|kqueue] [--loops 1] [--pin]
//
// Each loop runs on its own thread with its own SO_REUSEPORT listener (the kernel spreads
// connections), a multishot accept, and per connection a multishot receive from a buffer pool;
// received bytes are sent back in order with one send in flight per connection.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataEvents
import StrataSockets
import StrataThreads

#if canImport(Glibc)
let systemWrite = Glibc.write
#elseif canImport(Musl)
let systemWrite = Musl.write
#elseif canImport(Darwin)
let systemWrite = Darwin.write
#endif

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 7007
    var backend: BackendChoice = .automatic
    var loops = 1
    var pin = false
}

func usage(_ message: String) -> Never {
    var err = StandardError()
    print("strata-echo: \(message)", to: &err)
    print("usage: strata-echo [--host ADDR] [--port N] [--backend auto|io_uring|epoll|kqueue] [--loops N] [--pin]", to: &err)
    exit(2)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var s = string
        s.withUTF8 { bytes in _ = systemWrite(2, bytes.baseAddress, bytes.count) }
    }
}

/// Writes a line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func warn(_ message: String) {
    var err = StandardError()
    print(message, to: &err)
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
            do { o.backend = try BackendChoice(parsing: v) } catch { usage("\(error)") }
        case "--loops":
            let v = value(arg)
            guard let n = Int(v), (1...256).contains(n) else { usage("--loops \(v): use a number in 1...256") }
            o.loops = n
        case "--pin": o.pin = true
        case "-h", "--help": usage("a TCP echo server")
        default: usage("unknown argument \(arg)")
        }
    }
    return o
}

/// One connection's echo state: bytes waiting to go back, and the one send in flight.
final class Connection {
    let fd: CInt
    let out = IOBuffer(capacity: 64 * 1024)
    var sent = 0
    var sending = false
    /// Received bytes not yet copied into `out`; `backlog[backlogStart...]` is pending.
    var backlog: [UInt8] = []
    var backlogStart = 0
    /// The multishot receive in flight (nil while paused or ended).
    var receive: OperationID?
    /// Receiving is paused because the backlog reached `Connection.backlogLimit` (the peer
    /// sends faster than it reads): resumed when the backlog is drained.
    var paused = false
    var closing = false
    /// The peer finished sending (end of stream): close once everything is echoed.
    var peerDone = false
    init(fd: CInt) { self.fd = fd }

    /// At most this many received bytes wait per connection; beyond it receiving pauses, so a
    /// peer that never reads cannot make the server buffer without bound.
    static let backlogLimit = 1 << 20
    var pending: Int { backlog.count - backlogStart }

    /// Moves up to `out.capacity` backlog bytes into `out` (amortised O(1) per byte: the
    /// consumed prefix is dropped only once it is at least half of the array).
    func refill() {
        let n = min(pending, out.capacity)
        backlog.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[backlogStart..<backlogStart + n])) }
        }
        backlogStart += n
        if backlogStart == backlog.count {
            backlog.removeAll(keepingCapacity: backlog.capacity <= 64 * 1024)
            backlogStart = 0
        } else if backlogStart >= backlog.count / 2 {
            backlog.removeFirst(backlogStart)
            backlogStart = 0
        }
        out.count = n
        sent = 0
    }
}

enum Tag: UInt64 { case accept = 1, receive = 2, send = 3, close = 4, rearmAccept = 5 }

@inline(__always) func token(_ tag: Tag, _ fd: CInt) -> UInt64 { UInt64(UInt32(bitPattern: fd)) << 8 | tag.rawValue }

/// Runs one echo loop until the process ends.
func serve(options: Options, index: Int) throws {
    let loop = try EventLoop(configuration: .init(backend: options.backend))
    let listener = try Socket(family: .ipv4, kind: .stream)
    try listener.setOption(.reuseAddress, to: true)
    try listener.setOption(.reusePort, to: true)
    try listener.bind(to: SocketAddress(ipAddress: options.host, port: options.port))
    try listener.listen(backlog: 4096)
    if index == 0 {
        print("strata-echo listening on \(try listener.localAddress) — backend \(loop.backendKind) (\(loop.backendSummary)), \(options.loops) loop(s)")
        fflush(nil)
    }
    let pool = try loop.makeBufferPool(count: 4096, size: 16 * 1024)
    var connections: [Connection?] = []

    func startSend(_ c: Connection) {
        guard !c.closing else { return }
        c.sending = true
        loop.send(c.fd, c.out, offset: c.sent, token: token(.send, c.fd))
    }
    /// Resumes a paused connection once its backlog is half drained and the cancelled receive
    /// has delivered its final completion.
    func resumeIfDrained(_ c: Connection) {
        guard c.paused, c.receive == nil, !c.closing, !c.peerDone, c.pending < Connection.backlogLimit / 2 else { return }
        c.paused = false
        c.receive = loop.receive(c.fd, from: pool, multishot: true, token: token(.receive, c.fd))
    }
    func close(_ c: Connection) {
        guard !c.closing else { return }
        c.closing = true
        loop.close(c.fd, token: token(.close, c.fd))
    }

    loop.accept(listener.descriptor, multishot: true, token: token(.accept, listener.descriptor))
    while true {
        try loop.runOnce { completion in
            let fd = CInt(truncatingIfNeeded: Int64(completion.token >> 8))
            switch Tag(rawValue: completion.token & 0xFF) {
            case .accept:
                if completion.result >= 0 {
                    let conn = completion.result
                    var one: CInt = 1
                    _ = setsockopt(conn, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
                    if Int(conn) >= connections.count {
                        connections.append(contentsOf: repeatElement(nil, count: Int(conn) + 1 - connections.count + 1024))
                    }
                    let c = Connection(fd: conn)
                    connections[Int(conn)] = c
                    c.receive = loop.receive(conn, from: pool, multishot: true, token: token(.receive, conn))
                }
                if !completion.hasMore {
                    if completion.result < 0 {
                        // EMFILE and friends end the multishot accept. Pause accepting for 10 ms
                        // (connections close meanwhile) instead of spinning on a full table.
                        warn("strata-echo: accept: \(Errno(rawValue: -completion.result)); pausing 10 ms")
                        loop.timeout(after: .milliseconds(10), token: token(.rearmAccept, listener.descriptor))
                    } else {
                        loop.accept(listener.descriptor, multishot: true, token: token(.accept, listener.descriptor))
                    }
                }
            case .receive:
                guard let c = connections[Int(fd)] else { return }
                if completion.result > 0 {
                    let n = Int(completion.result)
                    if !c.sending && c.pending == 0 && n <= c.out.capacity {
                        pool.withBuffer(completion.bufferID, count: n) { bytes in
                            c.out.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                        }
                        c.out.count = n
                        c.sent = 0
                        pool.release(completion.bufferID)
                        startSend(c)
                    } else {
                        pool.withBuffer(completion.bufferID, count: n) { c.backlog.append(contentsOf: $0) }
                        pool.release(completion.bufferID)
                        if c.pending >= Connection.backlogLimit && !c.paused, let op = c.receive {
                            c.paused = true  // backpressure: stop reading until the peer reads
                            _ = loop.cancel(op)
                        }
                    }
                    if !completion.hasMore {
                        c.receive = nil
                        if !c.closing && !c.paused {
                            c.receive = loop.receive(fd, from: pool, multishot: true, token: token(.receive, fd))
                        } else {
                            resumeIfDrained(c)
                        }
                    }
                } else {
                    if completion.flags.contains(.buffer) { pool.release(completion.bufferID) }
                    guard !completion.hasMore else { return }
                    c.receive = nil
                    if completion.result == 0 {
                        // End of stream (perhaps a half-close): echo what is queued, then close.
                        c.peerDone = true
                        if !c.sending && c.pending == 0 { close(c) }
                    } else if completion.result == -ECANCELED && c.paused {
                        resumeIfDrained(c)  // paused by backpressure; else the send path resumes
                    } else {
                        close(c)  // reset, error, or cancelled
                    }
                }
            case .send:
                guard let c = connections[Int(fd)] else { return }
                c.sending = false
                guard completion.result >= 0 else { close(c); return }
                c.sent += Int(completion.result)
                if c.sent < c.out.count {
                    startSend(c)
                } else if c.pending > 0 {
                    c.refill()
                    startSend(c)
                    resumeIfDrained(c)
                } else if c.peerDone {
                    close(c)
                }
            case .close:
                connections[Int(fd)] = nil
            case .rearmAccept:
                loop.accept(listener.descriptor, multishot: true, token: token(.accept, listener.descriptor))
            case nil:
                break
            }
        }
    }
}

/// SIGINT and SIGTERM end the server. A parent may have started us with them blocked or
/// ignored (both are inherited across exec: test runners, some supervisors), so say so.
func restoreTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigprocmask(SIG_UNBLOCK, &set, nil)
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}

restoreTerminationSignals()
let options = parseOptions()
do {
    for i in 1..<options.loops {
        // The handle is dropped: the thread runs detached for the life of the process.
        _ = try StrataThreads.Thread.spawn(name: "strata-echo-\(i)", affinity: options.pin ? [i] : nil) {
            do { try serve(options: options, index: i) } catch {
                warn("strata-echo: loop \(i): \(error)")
                exit(1)
            }
        }
    }
    try serve(options: options, index: 0)
} catch {
    warn("strata-echo: \(error)")
    exit(1)
}
