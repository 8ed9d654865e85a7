#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataEvents
import StrataSched
import StrataSockets
import StrataThreads

/// TLS over a Sched ``TCPConnection``: an async handshake, read, write and close, on the
/// connection's loop.
///
/// The ``TLSSession`` under it is sans-I/O, so a handshake never blocks the loop: while it
/// waits for the peer, the task is suspended in a loop read like any other, and thousands of
/// handshakes can be in flight on one loop. The handshake has a deadline
/// (``TLSConfiguration/handshakeTimeout``, 10 s by default): a peer that stalls costs only its
/// memory until then, and is closed. Sched's deadlines (`withDeadline`) and task
/// cancellation apply to every call, as on the TCP connection; transport errors
/// (``SchedError``, `CancellationError`) pass through unchanged, TLS failures throw
/// ``TLSError``.
///
/// All calls run on the connection's loop (calls from elsewhere hop there), so reads and
/// writes never touch the mbedTLS context from two threads. Like ``TCPConnection``, one
/// reader and one writer at a time.
public final class TLSConnection: @unchecked Sendable {
    /// The TCP connection carrying the ciphertext.
    public let transport: TCPConnection
    /// The loop every call runs on.
    public var loop: Loop { transport.loop }
    // `@exclusivity(unchecked)`: touched only on the loop thread, one call at a time.
    @exclusivity(unchecked) private var session: TLSSession
    private var writeInFlight = false
    private var closed = false
    /// The sweep that releases this connection's record buffers when it idles.
    private let sweeper: IdleSweeper
    /// The sweep count when the current wait for ciphertext began.
    fileprivate var idleSince: UInt64 = 0

    private init(transport: TCPConnection, session: consuming TLSSession) {
        self.transport = transport
        self.session = session
        self.sweeper = IdleSweeper.on(transport.loop)
    }

    /// Releases the record buffers if the session is between records (called by the sweep,
    /// on the loop, while this connection's task waits for ciphertext).
    fileprivate func hibernateIfIdle() {
        session.hibernate()
    }

    /// Runs the server side of a handshake on an accepted connection.
    ///
    /// On failure the alert (if any) is sent, the TCP connection is closed, and the error
    /// thrown: ``TLSError`` (kind `.handshakeTimeout` at the deadline), or the transport's.
    ///
    /// - Parameter pool: where the handshake's CPU-heavy steps run (ECDHE, signatures:
    ///   about 2.5 ms per full handshake with P-256 in mbedTLS 2.28, which has no
    ///   restartable ECC). nil runs them on the loop, between other connections' work;
    ///   a pool keeps them off the loop, at the cost of two thread hand-offs per step.
    ///   docs/tls.md has the measurement behind the default.
    public static func accept(_ connection: TCPConnection, configuration: TLSConfiguration,
                              handshakeOn pool: ThreadPool? = nil) async throws -> TLSConnection {
        let session: TLSSession
        do {
            session = try TLSSession(server: configuration)
        } catch {
            await connection.close()
            throw error
        }
        let tls = TLSConnection(transport: connection, session: session)
        try await tls.runHandshake(pool: pool)
        return tls
    }

    /// Runs the client side of a handshake over `connection`, verifying the server against
    /// `serverName`.
    public static func connect(over connection: TCPConnection, serverName: String,
                               configuration: TLSConfiguration) async throws -> TLSConnection {
        let session: TLSSession
        do {
            session = try TLSSession(client: configuration, serverName: serverName)
        } catch {
            await connection.close()
            throw error
        }
        let tls = TLSConnection(transport: connection, session: session)
        try await tls.runHandshake()
        return tls
    }

    /// Connects to `address` over TCP and runs a client handshake that verifies the server
    /// against `serverName`.
    ///
    /// - Parameter timeout: bounds the TCP connect; the handshake has its own deadline.
    public static func connect(to address: SocketAddress, serverName: String, configuration: TLSConfiguration,
                               on loop: Loop, timeout: Duration? = nil) async throws -> TLSConnection {
        let tcp = try await TCPConnection.connect(to: address, on: loop, timeout: timeout)
        return try await connect(over: tcp, serverName: serverName, configuration: configuration)
    }

    private func onLoop<R>(_ body: () async throws -> R) async throws -> R {
        if loop.isCurrent { return try await body() }
        return try await withTaskExecutorPreference(loop) { try await body() }
    }

    private func runHandshake(pool: ThreadPool? = nil) async throws {
        let deadline = MonotonicInstant.now.advanced(by: session.configuration.handshakeTimeout)
        do {
            try await onLoop {
                try await withDeadline(deadline) {
                    while true {
                        let done: Bool
                        do {
                            // Offload only the steps that cost milliseconds: those of a full
                            // handshake. A resumption (a ticket in the ClientHello, then the
                            // client's Finished) costs tens of microseconds, less than the
                            // two thread hand-offs.
                            if let pool, session.bufferedInputCount > 0, !session.isResumed,
                               !session.clientHelloPresentsTicket {
                                // The session is this task's alone while it waits here.
                                done = try await pool.run { [self] in try self.session.handshake() }
                            } else {
                                done = try session.handshake()
                            }
                        } catch {
                            try? await flush()  // the alert that tells the peer why
                            throw error
                        }
                        try await flush()
                        if done { return }
                        try await receiveCiphertext()
                    }
                }
            }
        } catch let error as SchedError where error.code == .timedOut && MonotonicInstant.now >= deadline {
            await transport.close()
            throw TLSError(.handshakeTimeout, message: "the TLS handshake did not finish within \(session.configuration.handshakeTimeout)")
        } catch {
            await transport.close()
            throw error
        }
    }

    /// Reads ciphertext from the transport into the session (EOF is fed as end of stream).
    private func receiveCiphertext() async throws {
        let n = try await transport.readPooled { [self] bytes in
            session.feed(bytes)
            return bytes.count
        }
        if n == nil { session.feedEndOfStream() }
    }

    /// Sends the ciphertext the session produced.
    private func flush() async throws {
        guard session.hasOutput else { return }
        let out = session.takeOutput()
        try await transport.write(out)
    }

    // MARK: Reading

    /// Decrypts the next chunk of plaintext and passes it to `body` (valid only inside it);
    /// nil after the peer's close_notify.
    ///
    /// - Throws: ``TLSError`` (`.truncated` when the peer closed without close_notify,
    ///   `.protocolViolation` for a corrupted record), or the transport's error.
    public func readPooled<R>(_ body: (UnsafeRawBufferPointer) -> R) async throws -> R? {
        try await onLoop {
            while true {
                // Decrypt into the loop's scratch buffer (this runs on the loop thread, with no
                // suspension until `body` has returned). Not a temporary allocation: in an async
                // function that comes from the task's allocator, whose slabs the connection's
                // task would keep for its lifetime — 16 KiB per idle connection.
                let buffer = sweeper.scratch
                let step: ReadStep<R>
                switch try session.read(into: buffer) {
                case .bytes(let n): step = .value(body(UnsafeRawBufferPointer(rebasing: buffer[..<n])))
                case .closed: step = .closed
                case .wantRead: step = .needInput
                }
                switch step {
                case .value(let r): return r
                case .closed: return nil
                case .needInput:
                    try await flush()  // e.g. a no_renegotiation alert
                    // Waiting for the peer: after a whole sweep interval of this, the sweep
                    // returns the record buffers' pages (TLSSession.hibernate()).
                    sweeper.enter(self)
                    defer { sweeper.leave(self) }
                    try await receiveCiphertext()
                }
            }
        }
    }

    /// Reads up to `maximumCount` plaintext bytes; nil after the peer's close_notify.
    public func read(maximumCount: Int = 16 * 1024) async throws -> [UInt8]? {
        try await readPooled { Array($0.prefix(maximumCount)) }
    }

    // MARK: Writing

    /// Encrypts and sends all of `bytes` (which must stay valid until this returns).
    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await writeAll(count: bytes.count) { offset in try session.write(UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
    }

    /// Encrypts and sends all of `bytes`.
    public func write(_ bytes: [UInt8]) async throws {
        try await writeAll(count: bytes.count) { offset in
            try bytes.withUnsafeBytes { b in try session.write(UnsafeRawBufferPointer(rebasing: b[offset...])) }
        }
    }

    /// Encrypts from `offset` (as much as the session takes), sends, repeats.
    private func writeAll(count: Int, _ encrypt: (Int) throws -> Int) async throws {
        try await onLoop {
            guard !writeInFlight else {
                throw SchedError(.invalidConfiguration, "TLSConnection.write: another write is in flight — await it before writing again")
            }
            writeInFlight = true
            defer { writeInFlight = false }
            var offset = 0
            while offset < count {
                offset += try encrypt(offset)
                try await flush()
            }
        }
    }

    /// Sends up to `count` bytes of `file` from `offset` through TLS (read, encrypt, send;
    /// sendfile cannot encrypt) and returns the bytes sent.
    public func sendFile(_ file: CInt, offset: Int64, count: Int) async throws -> Int {
        let chunk = min(count, 64 * 1024)
        guard chunk > 0 else { return 0 }
        var buffer = [UInt8](repeating: 0, count: chunk)
        let n = buffer.withUnsafeMutableBytes { pread(file, $0.baseAddress, chunk, off_t(offset)) }
        if n < 0 {
            let e = Errno(rawValue: errno)
            throw SchedError(.systemCall, "sendFile: pread: \(e)", errno: e)
        }
        if n == 0 { return 0 }
        if n < chunk { buffer.removeLast(chunk - n) }
        try await write(buffer)
        return n
    }

    // MARK: Closing

    /// Sends close_notify and ends the sending direction (the peer reads a clean end of
    /// stream); reading still works.
    public func shutdownWrite() async throws {
        try await onLoop {
            try session.close()
            try await flush()
            try transport.shutdownWrite()
        }
    }

    /// Sends close_notify (best effort, bounded by one second) and closes the connection.
    /// Idempotent.
    public func close() async {
        if closed { return }
        closed = true
        _ = try? await onLoop {
            if session.isHandshakeComplete && session.error == nil {
                try session.close()
                try await withTimeout(.seconds(1)) { try await flush() }
            }
        }
        await transport.close()
    }

    // MARK: Negotiated parameters

    /// The ALPN protocol agreed on, if any.
    public var negotiatedALPN: String? { session.negotiatedALPN }
    /// The cipher suite's name.
    public var cipherSuite: String? { session.cipherSuite }
    /// The protocol version ("TLSv1.2").
    public var protocolVersion: String { session.protocolVersion }
    /// True when the handshake resumed an earlier session.
    public var isResumed: Bool { session.isResumed }
    /// Servers: the SNI name the client sent.
    public var requestedServerName: String? { session.requestedServerName }
    /// The subject of the peer's certificate, if it sent one.
    public var peerCertificateSubject: String? { session.peerCertificateSubject }
}

/// Per loop: the TLS connections waiting for ciphertext in `readPooled`, and a sweep every
/// ``interval`` that hibernates the sessions of those that have waited through a whole
/// interval. Idle keep-alive connections then hold no record-buffer pages (about 8 KiB of
/// touched pages each otherwise), while busy connections, whose waits are short, never pay
/// for the page faults of waking. Touched only on the loop thread, except the registry.
final class IdleSweeper: @unchecked Sendable {
    /// How often the sweep runs.
    static let interval: Duration = .seconds(1)
    /// The running sweepers by loop. An entry leaves when its loop stops, so a later loop
    /// at the same address gets a new one. (No weak references: LeakSanitizer cannot see
    /// the side tables they hang off an object's header, and reports them as leaks.)
    private static let registry = LockedValue<[ObjectIdentifier: IdleSweeper]>([:])

    private var waiting: [ObjectIdentifier: Unmanaged<TLSConnection>] = [:]
    private var sweeps: UInt64 = 1
    /// The loop's plaintext scratch buffer (one TLS record), used by every connection's
    /// `readPooled` on the loop thread, one at a time; freed with the sweeper, which every
    /// connection of the loop retains.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)

    private init() {}

    deinit { scratch.deallocate() }

    /// The sweeper of `loop`, started on first use.
    static func on(_ loop: Loop) -> IdleSweeper {
        registry.withLock { all in
            let id = ObjectIdentifier(loop)
            if let existing = all[id] { return existing }
            let sweeper = IdleSweeper()
            all[id] = sweeper
            // Untracked: it must not hold up a loop group's graceful shutdown; a stopped loop
            // ends its sleep with an error, and the task with it.
            Task(executorPreference: loop) {
                while true {
                    do { try await loop.sleep(for: IdleSweeper.interval) } catch { break }
                    sweeper.sweep()
                }
                registry.withLock { all in
                    if all[id] === sweeper { all[id] = nil }
                }
            }
            return sweeper
        }
    }

    func enter(_ connection: TLSConnection) {
        connection.idleSince = sweeps
        waiting[ObjectIdentifier(connection)] = Unmanaged.passUnretained(connection)
    }

    func leave(_ connection: TLSConnection) {
        waiting.removeValue(forKey: ObjectIdentifier(connection))
    }

    private func sweep() {
        for connection in waiting.values {
            let c = connection.takeUnretainedValue()
            if c.idleSince < sweeps { c.hibernateIfIdle() }
        }
        sweeps += 1
    }
}

/// One pass of ``TLSConnection/readPooled(_:)``.
private enum ReadStep<R> {
    case value(R)
    case closed
    case needInput
}
