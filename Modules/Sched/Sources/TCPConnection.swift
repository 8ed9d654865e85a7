#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataEvents
import StrataSockets
import Synchronization

/// A TCP (or Unix stream) connection whose reads and writes suspend the calling task while
/// the loop performs them.
///
/// ```swift
/// let connection = try await TCPConnection.connect(to: SocketAddress(parsing: "127.0.0.1:6379"), on: loop)
/// try await connection.write(Array("PING\r\n".utf8))
/// let reply = try await connection.read(maximumCount: 512)   // [] at end of stream
/// await connection.close()
/// ```
///
/// The connection owns its descriptor: ``close()`` closes it through the loop (after any
/// operation still in flight), and so does `deinit` when it was not closed. It is a class,
/// not a noncopyable value, because it is handed to child tasks and yielded by
/// ``TCPListener/connections``; every reference shares the one descriptor.
///
/// One reader and one writer at a time: a second concurrent ``read(into:)`` or ``write(_:)``
/// throws instead of interleaving bytes. Task cancellation cancels the operation in flight
/// (it throws `CancellationError`, and no completion of it arrives later); a deadline from
/// ``withDeadline(_:_:)`` does the same with ``SchedError/Code/timedOut``.
public final class TCPConnection: @unchecked Sendable {
    // @unchecked: `descriptor` is immutable; `inputBuffer`/`outputBuffer` are used only by the
    // one reader / one writer the atomics admit; the rest is touched on the loop thread only.

    /// The loop that performs this connection's I/O.
    public let loop: Loop
    /// The socket's descriptor (owned; do not close it yourself).
    public let descriptor: CInt
    private let reading = Atomic<Bool>(false)
    private let writing = Atomic<Bool>(false)
    private let isClosed = Atomic<Bool>(false)
    private var inputBuffer: IOBuffer?
    private var outputBuffer: IOBuffer?

    /// Wraps an accepted or connected nonblocking socket, which the connection now owns.
    public init(adopting descriptor: CInt, on loop: Loop) {
        self.descriptor = descriptor
        self.loop = loop
    }

    deinit {
        guard !isClosed.load(ordering: .acquiring) else { return }
        let fd = descriptor
        // A stopped loop runs nothing (and its EventLoop no longer touches the descriptor).
        if loop.hasStopped { closeDescriptor(fd); return }
        loop.onLoop { [loop] in loop.fireAndForget { token in loop.events.close(fd, token: token) } }
    }

    /// Connects to `address` (IPv4, IPv6 or Unix) through `loop`.
    ///
    /// - Parameter timeout: Give up after this long (``SchedError/Code/timedOut``); nil
    ///   leaves it to the kernel (about two minutes for an unanswered TCP SYN).
    /// - Throws: ``SchedError`` naming the address and the cause (`ECONNREFUSED`: nothing
    ///   listens there), or `CancellationError`.
    public static func connect(to address: SocketAddress, on loop: Loop, timeout: Duration? = nil,
                               noDelay: Bool = true) async throws -> TCPConnection {
        func makeSocket() throws(SchedError) -> CInt {
            do {
                let socket = try Socket(family: address.family, kind: .stream)
                if noDelay && address.family != .unix { try socket.setOption(.noDelay, to: true) }
                return socket.takeDescriptor()
            } catch {
                throw SchedError(.systemCall, "connect \(address): \(error)")
            }
        }
        let connection = TCPConnection(adopting: try makeSocket(), on: loop)
        let fd = connection.descriptor
        let attempt = { () async -> Completion in
            await loop.suspend { token in loop.events.connect(fd, to: address, token: token) }
        }
        let c = if let timeout { try await withTimeout(timeout) { await attempt() } } else { await attempt() }
        if c.result < 0 {
            await connection.close()
            if c.result == -ETIMEDOUT { throw SchedError.deadlineExceeded("connect \(address)") }
            throw SchedError.failed("connect", c.result, address: address)
        }
        return connection
    }

    // MARK: Reading

    /// Receives into `buffer` (from its start, up to its capacity) and returns the byte count;
    /// 0 means end of stream. The loop owns `buffer` until this returns.
    public func read(into buffer: IOBuffer) async throws -> Int {
        try beginRead()
        defer { reading.store(false, ordering: .releasing) }
        let fd = descriptor
        let c = await loop.suspend { [loop] token in loop.events.receive(fd, into: buffer, token: token) }
        guard c.result >= 0 else { throw SchedError.failed("read", c.result) }
        return Int(c.result)
    }

    /// Receives up to `maximumCount` bytes; an empty array means end of stream.
    public func read(maximumCount: Int = 16 * 1024) async throws -> [UInt8] {
        let buffer: IOBuffer
        if let b = inputBuffer, b.capacity >= maximumCount { buffer = b } else {
            buffer = IOBuffer(capacity: maximumCount)
            inputBuffer = buffer
        }
        let n = try await read(into: buffer)
        return buffer.withUnsafeBytes { Array($0.prefix(n)) }
    }

    /// Receives into a buffer of the loop's shared pool (taken by the kernel only when bytes
    /// arrive, so an idle connection holds no receive buffer) and passes the bytes to `body`;
    /// nil at end of stream. `body` runs on the loop thread, and the bytes are valid only
    /// inside it.
    public func readPooled<R>(_ body: (UnsafeRawBufferPointer) -> R) async throws -> R? {
        try beginRead()
        defer { reading.store(false, ordering: .releasing) }
        let fd = descriptor
        let loop = self.loop
        let pool = try await withPool()
        let c = await loop.suspend { token in loop.events.receive(fd, from: pool, multishot: false, token: token) }
        guard c.result > 0 else {
            if c.flags.contains(.buffer) { await releasePooled(pool, c.bufferID) }
            if c.result == 0 { return nil }
            throw SchedError.failed("read", c.result)
        }
        if loop.isCurrent {
            defer { pool.release(c.bufferID) }
            return pool.withBuffer(c.bufferID, count: Int(c.result)) { body($0) }
        }
        // Off the loop: copy on the loop thread (the pool is the loop's), then run `body` here.
        let box = UncheckedBox<[UInt8]>()
        _ = await loop.suspend { token in
            box.value = pool.withBuffer(c.bufferID, count: Int(c.result)) { Array($0) }
            pool.release(c.bufferID)
            loop.wakeParked(token, result: 0)
            return nil
        }
        return box.value!.withUnsafeBytes { body($0) }
    }

    private func withPool() async throws -> BufferPool {
        if loop.isCurrent { return try loop.receivePool() }
        let box = UncheckedBox<Result<BufferPool, SchedError>>()
        _ = await loop.suspend { [loop] token in
            do { box.value = .success(try loop.receivePool()) } catch let error as SchedError { box.value = .failure(error) } catch { preconditionFailure("\(error)") }
            loop.wakeParked(token, result: 0)
            return nil
        }
        return try box.value!.get()
    }

    private func releasePooled(_ pool: BufferPool, _ id: UInt16) async {
        if loop.isCurrent { pool.release(id); return }
        loop.onLoop { pool.release(id) }
    }

    private func beginRead() throws {
        if isClosed.load(ordering: .relaxed) { throw SchedError(.closed, "read: the connection is closed") }
        guard !reading.exchange(true, ordering: .acquiring) else {
            throw SchedError(.invalidConfiguration, "read: another read is in flight on this connection — use one reader at a time (or reads())")
        }
    }

    /// Received bytes as an `AsyncSequence` of chunks, over a multishot receive on the
    /// loop's buffer pool. When the consumer lags by `bufferedChunks` chunks, the receive is
    /// stopped (the kernel's socket buffer, then TCP flow control, hold the peer back) and
    /// re-armed when the consumer catches up. The sequence ends at end of stream and throws
    /// on an error.
    public func reads(bufferedChunks: Int = 16) -> ReadSequence {
        ReadSequence(connection: self, limit: max(1, bufferedChunks))
    }

    // MARK: Writing

    /// Sends all of `bytes` (partial sends are continued until everything is written).
    ///
    /// The syscall is tried first: when the socket has room (the usual case for a response)
    /// the bytes go out at once, with no copy and no suspension. What the kernel does not
    /// take is copied into the connection's output buffer (256 KiB at a time) and sent by
    /// the loop while the task waits.
    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try await writeCopying(count: bytes.count) { body in body(bytes) }
    }

    /// Sends all of `bytes` (see ``write(_:)-(UnsafeRawBufferPointer)``).
    public func write(_ bytes: [UInt8]) async throws {
        try await writeCopying(count: bytes.count) { body in bytes.withUnsafeBytes { body($0) } }
    }

    private func writeCopying(count: Int, _ withBytes: ((UnsafeRawBufferPointer) -> Int) -> Int) async throws {
        guard count > 0 else { return }
        try beginWrite()
        defer { writing.store(false, ordering: .releasing) }
        let fd = descriptor
        let direct = withBytes { Self.sendNow(fd, $0) }
        if direct < 0 { throw SchedError.failed("write", Int32(direct)) }
        var offset = direct
        while offset < count {
            let chunk = min(count - offset, 256 * 1024)
            let buffer: IOBuffer
            if let b = outputBuffer, b.capacity >= chunk { buffer = b } else {
                buffer = IOBuffer(capacity: max(chunk, 4096))
                outputBuffer = buffer
            }
            let start = offset
            _ = withBytes { bytes in
                buffer.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[start..<start + chunk])) }
                return 0
            }
            buffer.count = chunk
            try await sendAll(buffer)
            offset += chunk
        }
    }

    /// One nonblocking send: bytes sent, 0 when the socket is full (or not a socket: the
    /// loop's path handles those), or -errno.
    private static func sendNow(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Int {
        #if os(Linux)
        let flags = CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)
        #else
        let flags = CInt(MSG_DONTWAIT)  // SO_NOSIGPIPE is set on Darwin/BSD sockets
        #endif
        while true {
            let n = send(fd, bytes.baseAddress, bytes.count, flags)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ENOTSOCK: return 0
            case let e: return -Int(e)
            }
        }
    }

    /// Sends the valid bytes of `buffer` (zero-copy: the loop owns it until this returns).
    public func write(_ buffer: IOBuffer) async throws {
        guard buffer.count > 0 else { return }
        try beginWrite()
        defer { writing.store(false, ordering: .releasing) }
        try await sendAll(buffer)
    }

    private func sendAll(_ buffer: IOBuffer) async throws {
        let fd = descriptor
        var sent = 0
        while sent < buffer.count {
            let offset = sent
            let c = await loop.suspend { [loop] token in loop.events.send(fd, buffer, offset: offset, token: token) }
            guard c.result >= 0 else { throw SchedError.failed("write", c.result) }
            sent += Int(c.result)
        }
    }

    /// Sends up to `count` bytes of the file `file` from `offset` with sendfile (zero-copy);
    /// returns the bytes sent (possibly fewer: call again for the rest). The caller keeps
    /// `file` open until this returns.
    public func sendFile(_ file: CInt, offset: Int64, count: Int) async throws -> Int {
        try beginWrite()
        defer { writing.store(false, ordering: .releasing) }
        let fd = descriptor
        let c = await loop.suspend { [loop] token in loop.events.sendfile(to: fd, from: file, offset: offset, count: count, token: token) }
        guard c.result >= 0 else { throw SchedError.failed("sendfile", c.result) }
        return Int(c.result)
    }

    private func beginWrite() throws {
        if isClosed.load(ordering: .relaxed) { throw SchedError(.closed, "write: the connection is closed") }
        guard !writing.exchange(true, ordering: .acquiring) else {
            throw SchedError(.invalidConfiguration, "write: another write is in flight on this connection — await it before writing again")
        }
    }

    // MARK: Closing

    /// Ends the sending direction (the peer reads end of stream); reading still works.
    public func shutdownWrite() throws {
        if shutdown(descriptor, CInt(SHUT_WR)) != 0 {
            let e = Errno(rawValue: errno)
            throw SchedError(.systemCall, "shutdown(SHUT_WR): \(e)", errno: e)
        }
    }

    /// Closes the connection: operations in flight complete first (cancelled ones with
    /// `CancellationError`), then the descriptor is closed. Idempotent.
    public func close() async {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let fd = descriptor
        // Not cancellable: a cancelled task (a handler cancelled at shutdown) must still close.
        _ = await loop.suspend(cancellable: false) { [loop] token in
            _ = loop.events.cancelAll(on: fd)
            return loop.events.close(fd, token: token)
        }
    }

    /// Gives up ownership of the descriptor without closing it (for handing the connection to
    /// another loop: wrap the result in a new `TCPConnection`). No operation may be in flight.
    public func releaseDescriptor() -> CInt {
        isClosed.store(true, ordering: .releasing)
        return descriptor
    }

    /// Whether ``close()`` was called.
    public var isClosedByUs: Bool { isClosed.load(ordering: .relaxed) }
}

/// close(2) outside the types whose own `close()` methods shadow it.
func closeDescriptor(_ fd: CInt) {
    _ = close(fd)
}

/// The chunks a connection receives (see ``TCPConnection/reads(bufferedChunks:)``).
public struct ReadSequence: AsyncSequence, Sendable {
    /// A chunk of received bytes.
    public typealias Element = [UInt8]
    let connection: TCPConnection
    let limit: Int

    /// Starts receiving.
    public func makeAsyncIterator() -> Iterator {
        Iterator(state: ReadStreamState(connection: connection, limit: limit))
    }

    /// Iterates the chunks; ends at end of stream.
    public struct Iterator: AsyncIteratorProtocol {
        let state: ReadStreamState

        /// The next chunk, nil at end of stream.
        public mutating func next() async throws -> [UInt8]? {
            try await state.next()
        }

        /// The next chunk (the form that keeps the caller's isolation).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> [UInt8]? {
            try await state.next()
        }
    }
}

/// A multishot receive feeding a bounded queue (loop thread only).
final class ReadStreamState: @unchecked Sendable {
    // @unchecked: every member is touched only on the loop thread.
    let connection: TCPConnection
    let limit: Int
    var chunks: [[UInt8]] = []
    var head = 0
    var streamToken: UInt64?
    var waiter: UInt64?
    /// End of stream (0) or a negated errno once the receive ended for good.
    var ended: Int32?
    var paused = false
    /// The receive was cancelled for backpressure and its final completion has not arrived.
    var stopping = false

    init(connection: TCPConnection, limit: Int) {
        self.connection = connection
        self.limit = limit
    }

    deinit {
        // The iterator is gone: stop receiving. The handler holds the state weakly, so a
        // completion after this is dropped.
        if let token = streamToken {
            let loop = connection.loop
            loop.onLoop { loop.cancelNow(token) }
        }
    }

    func next() async throws -> [UInt8]? {
        let loop = connection.loop
        if loop.isCurrent && (head < chunks.count || ended != nil) { return try takeNow() }  // no suspension
        let c = await loop.suspend { [self] token in
            if head < chunks.count || ended != nil {
                loop.wakeParked(token, result: 0)
                return nil
            }
            waiter = token
            loop.setOnCancel(token) { [self] in waiter = nil }
            arm()
            return nil
        }
        if c.result < 0 { throw SchedError.failed("read", c.result) }
        // Back on the caller's executor; the state is the loop's, so take the chunk there.
        return try await take()
    }

    private func take() async throws -> [UInt8]? {
        let loop = connection.loop
        if loop.isCurrent { return try takeNow() }
        let result = UncheckedResult()
        _ = await loop.suspend { [self] token in
            do { result.value = .success(try takeNow()) } catch { result.value = .failure(error) }
            loop.wakeParked(token, result: 0)
            return nil
        }
        return try result.value!.get()
    }

    private func takeNow() throws -> [UInt8]? {
        if head < chunks.count {
            let chunk = chunks[head]
            chunks[head] = []
            head += 1
            if head == chunks.count { chunks.removeAll(keepingCapacity: true); head = 0 }
            if paused && chunks.count - head <= limit / 2 { paused = false; arm() }
            return chunk
        }
        switch ended {
        case 0?, nil: return nil
        case let e?: throw SchedError.failed("read", e)
        }
    }

    private func arm() {
        guard streamToken == nil, ended == nil, !paused else { return }
        let loop = connection.loop
        let pool: BufferPool
        do { pool = try loop.receivePool() } catch {
            ended = -ENOBUFS
            return
        }
        let fd = connection.descriptor
        streamToken = loop.startStream({ [weak self] c in self?.received(c, pool) }) { token in
            loop.events.receive(fd, from: pool, multishot: true, token: token)
        }
    }

    private func received(_ c: Completion, _ pool: BufferPool) {
        let loop = connection.loop
        if c.result > 0 {
            chunks.append(pool.withBuffer(c.bufferID, count: Int(c.result)) { Array($0) })
            pool.release(c.bufferID)
            if chunks.count - head >= limit && !paused, let token = streamToken {
                paused = true
                stopping = true
                loop.cancelNow(token)
            }
        } else if c.flags.contains(.buffer) {
            pool.release(c.bufferID)
        }
        if !c.hasMore {
            streamToken = nil
            let stoppedByUs = stopping
            stopping = false
            if c.result == 0 {
                ended = 0
            } else if c.result < 0 && !(c.result == -ECANCELED && stoppedByUs) {
                ended = c.result
            } else if !paused {
                arm()  // ended without an error, or stopped and already drained: re-arm
            }
        }
        if let w = waiter, head < chunks.count || ended != nil {
            waiter = nil
            loop.wakeParked(w, result: 0)
        }
    }
}

/// A result handed from the loop thread to the task that waited for it (see ``UncheckedBox``).
typealias UncheckedResult = UncheckedBox<Result<[UInt8]?, any Error>>
