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
import Synchronization

/// A listening TCP (or Unix stream) socket whose connections arrive as an `AsyncSequence`,
/// over one multishot accept on its loop.
///
/// ```swift
/// let listener = try TCPListener.bind(SocketAddress(parsing: "127.0.0.1:8080"), on: loop)
/// for try await connection in listener.connections {
///     loop.spawn { await serve(connection) }
/// }
/// ```
///
/// Accepted connections wait in a bounded queue (``queueLimit``); when the consumer lags,
/// the accept is stopped and the kernel's listen backlog holds new connections until the
/// queue drains (backpressure, not accept-and-close).
///
/// Out of descriptors (EMFILE/ENFILE) or kernel memory: the listener pauses accepting for
/// ``pauseOnResourceExhaustion`` and tries again, so the loop never spins on a full
/// descriptor table; pending connections wait in the kernel's backlog meanwhile (on epoll the
/// backend's reserve descriptor accepts and closes one connection per EMFILE instead, so the
/// readiness does not fire again at once: see docs/events.md). The pause
/// is reported through the loop's configuration log.
public final class TCPListener: @unchecked Sendable {
    // @unchecked: `descriptor` and `localAddress` are immutable; everything else is touched
    // on the loop thread only.

    /// The loop that accepts.
    public let loop: Loop
    /// The listening descriptor (owned).
    public let descriptor: CInt
    /// The bound address (with the port the kernel chose for port 0).
    public let localAddress: SocketAddress
    /// Connections accepted but not yet taken, at most.
    public let queueLimit: Int
    /// How long accepting pauses after EMFILE, ENFILE, ENOBUFS or ENOMEM.
    public let pauseOnResourceExhaustion: Duration
    let noDelay: Bool

    private var queue: [CInt] = []
    private var head = 0
    private var acceptToken: UInt64?
    private var waiter: UInt64?
    private var paused = false
    private var pausedForErrors = false
    private var closed = false
    private let closedFlag = Atomic<Bool>(false)

    private init(loop: Loop, descriptor: CInt, localAddress: SocketAddress, queueLimit: Int, pause: Duration, noDelay: Bool) {
        self.loop = loop
        self.descriptor = descriptor
        self.localAddress = localAddress
        self.queueLimit = queueLimit
        self.pauseOnResourceExhaustion = pause
        self.noDelay = noDelay
    }

    /// Binds and listens on `address`.
    ///
    /// - Parameters:
    ///   - reusePort: Set SO_REUSEPORT, so several loops can each have a listener on the same
    ///     address and the kernel spreads connections among them (``LoopGroup`` does this).
    ///   - backlog: The kernel's listen backlog (capped by `net.core.somaxconn`).
    ///   - noDelay: Set TCP_NODELAY on every accepted connection.
    /// - Throws: ``SchedError`` naming the address and the fix, e.g. `EADDRINUSE`.
    public static func bind(_ address: SocketAddress, on loop: Loop, reusePort: Bool = false, backlog: Int = 4096,
                            queueLimit: Int = 256, pauseOnResourceExhaustion: Duration = .milliseconds(10),
                            noDelay: Bool = true) throws(SchedError) -> TCPListener {
        guard queueLimit > 0 else {
            throw SchedError(.invalidConfiguration, "TCPListener queueLimit \(queueLimit): use at least 1")
        }
        func listen() throws(SchedError) -> (CInt, SocketAddress) {
            do {
                let socket = try Socket(family: address.family, kind: .stream)
                if address.family != .unix {
                    try socket.setOption(.reuseAddress, to: true)
                    if reusePort { try socket.setOption(.reusePort, to: true) }
                }
                try socket.bind(to: address)
                try socket.listen(backlog: backlog)
                let bound = try socket.localAddress
                return (socket.takeDescriptor(), bound)
            } catch {
                throw SchedError(.systemCall, "listen on \(address): \(error)")
            }
        }
        let (fd, bound) = try listen()
        return TCPListener(loop: loop, descriptor: fd, localAddress: bound, queueLimit: queueLimit,
                           pause: pauseOnResourceExhaustion, noDelay: noDelay && address.family != .unix)
    }

    deinit {
        guard !closedFlag.load(ordering: .acquiring) else { return }
        let fd = descriptor
        let token = acceptToken
        let queued = Array(queue[head...])
        if loop.hasStopped {
            for q in queued { closeDescriptor(q) }
            closeDescriptor(fd)
            return
        }
        loop.onLoop { [loop] in
            if let token { loop.cancelNow(token) }
            for q in queued { loop.fireAndForget { t in loop.events.close(q, token: t) } }
            loop.fireAndForget { t in loop.events.close(fd, token: t) }
        }
    }

    /// The accepted connections, in order; the sequence ends when the listener is closed.
    public var connections: Connections { Connections(listener: self) }

    /// Waits for the next connection; nil once the listener is closed.
    ///
    /// - Throws: `CancellationError` if the task is cancelled, ``SchedError/Code/timedOut``
    ///   past a ``withDeadline(_:_:)`` deadline.
    public func accept() async throws -> TCPConnection? {
        let c = await loop.suspend { [self] token in
            if head < queue.count || closed {
                loop.wakeParked(token, result: 0)
                return nil
            }
            waiter = token
            loop.setOnCancel(token) { [self] in waiter = nil }
            arm()
            return nil
        }
        if c.result < 0 { throw SchedError.failed("accept", c.result) }
        return try await takeConnection()
    }

    private func takeConnection() async throws -> TCPConnection? {
        if loop.isCurrent { return takeNow() }
        let box = UncheckedBox<TCPConnection?>()
        _ = await loop.suspend { [self] token in
            box.value = takeNow()
            loop.wakeParked(token, result: 0)
            return nil
        }
        return box.value ?? nil
    }

    private func takeNow() -> TCPConnection? {
        guard head < queue.count else { return nil }
        let fd = queue[head]
        head += 1
        if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
        if paused && !pausedForErrors && queue.count - head <= queueLimit / 2 {
            paused = false
            arm()
        }
        return TCPConnection(adopting: fd, on: loop)
    }

    private func arm() {
        guard acceptToken == nil, !paused, !closed else { return }
        let fd = descriptor
        acceptToken = loop.startStream({ [weak self] c in self?.accepted(c) }) { [loop] token in
            loop.events.accept(fd, multishot: true, token: token)
        }
    }

    private func accepted(_ c: Completion) {
        if c.result >= 0 {
            if closed {
                loop.fireAndForget { [loop] t in loop.events.close(c.result, token: t) }
            } else {
                if noDelay {
                    var one: CInt = 1
                    _ = setsockopt(c.result, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
                }
                queue.append(c.result)
                if queue.count - head >= queueLimit && !paused, let token = acceptToken {
                    paused = true
                    loop.cancelNow(token)
                }
            }
        }
        if !c.hasMore {
            acceptToken = nil
            let r = c.result
            if r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM {
                pausedForErrors = true
                paused = true
                loop.log?("strata.sched: accept on \(localAddress): \(Errno(rawValue: -r)); pausing \(pauseOnResourceExhaustion) (connections wait in the listen backlog)")
                let deadline = MonotonicInstant.now.advanced(by: pauseOnResourceExhaustion)
                loop.startStream({ [weak self] _ in
                    guard let self else { return }
                    pausedForErrors = false
                    paused = false
                    if waiter != nil || queue.count - head < queueLimit / 2 { arm() }
                }) { [loop] token in loop.events.timeout(at: deadline, token: token) }
            } else if !closed && !paused && waiter != nil {
                arm()  // ended without more (or ECANCELED/another error): re-arm while someone waits
            }
        }
        if let w = waiter, head < queue.count || closed {
            waiter = nil
            loop.wakeParked(w, result: 0)
        }
    }

    /// Stops accepting and closes the listening socket; connections already accepted but not
    /// taken are closed; a pending ``accept()`` returns nil. Idempotent.
    public func close() async {
        guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let fd = descriptor
        _ = await loop.suspend(cancellable: false) { [self] token in
            closed = true
            if let t = acceptToken { loop.cancelNow(t) }
            for q in queue[head...] { loop.fireAndForget { [loop] t in loop.events.close(q, token: t) } }
            queue.removeAll()
            head = 0
            if let w = waiter {
                waiter = nil
                loop.wakeParked(w, result: 0)
            }
            return loop.events.close(fd, token: token)
        }
    }

    /// The connections of a listener as an `AsyncSequence`.
    public struct Connections: AsyncSequence, Sendable {
        /// An accepted connection.
        public typealias Element = TCPConnection
        let listener: TCPListener

        /// Starts iterating.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Iterates the connections; ends when the listener is closed.
        public struct Iterator: AsyncIteratorProtocol {
            let listener: TCPListener
            /// The next connection, or nil once the listener is closed.
            public mutating func next() async throws -> TCPConnection? { try await listener.accept() }
        }
    }
}

/// A value handed from the loop thread to the task that waited for it.
///
/// The continuation's resume already orders the write before the read; the lock is there
/// so ThreadSanitizer can see that too (the concurrency runtime's own atomics are not
/// instrumented when a continuation is resumed before its task finished suspending).
final class UncheckedBox<Value>: @unchecked Sendable {
    // @unchecked: `stored` is only accessed under `lock`.
    private let lock = StrataThreads.Mutex()
    private var stored: Value?

    var value: Value? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
