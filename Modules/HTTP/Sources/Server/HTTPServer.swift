#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import StrataEvents
import StrataSched
import StrataSockets
import StrataThreads
import Synchronization

/// A hardened HTTP/1.1 server over Sched: one task per connection on a ``LoopGroup`` loop.
///
/// ```swift
/// var routes = HTTPRoutes()
/// routes.get("/") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!")) }
/// let group = try LoopGroup(loops: 1)
/// let server = try HTTPServer(routes: routes, group: group)
/// let address = try server.listen(on: SocketAddress(parsing: "127.0.0.1:8080"))
/// // … on SIGTERM:
/// let report = await server.shutdownGracefully(timeout: .seconds(10))
/// ```
///
/// Keep-alive, pipelining (responses in order, flushed together up to
/// ``HTTPServerConfiguration/maxPipelineDepth``), request and response streaming, chunked
/// both ways, HEAD, HTTP/1.0, limits and timeouts with the status each deserves, lingering
/// close after errors, a connection cap that stops accepting, and a graceful shutdown that
/// answers or cleanly closes every request it accepted. Plain TCP by default; a listener's
/// ``HTTPTransportFactory`` can serve any other byte stream (``HTTPTransport``: TLS).
public final class HTTPServer: Sendable {
    let configuration: HTTPServerConfiguration
    let routes: HTTPRoutes
    let group: LoopGroup
    let logger: Logger?
    let accessLog: Bool
    let metrics: HTTPServerMetrics
    let pool: ThreadPool
    let state = LockedValue(ServerState())
    let activeConnections = Atomic<Int>(0)
    let runningHandlers = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    /// One date cache per loop (a loop's connections share it; never used across threads).
    let dates: [ObjectIdentifier: DateCache]

    struct ServerState {
        var listeners: [TCPListener] = []
        var connections: [UInt64: ConnectionEntry] = [:]
        var nextID: UInt64 = 0
    }

    /// Creates a server; nothing listens until ``listen(on:)``.
    ///
    /// - Parameters:
    ///   - logger: Where errors (and, with `accessLog`, one line per request) go; nil: silent.
    /// - Throws: ``HTTPServerError`` naming a configuration field out of range.
    public init(routes: HTTPRoutes, configuration: HTTPServerConfiguration = HTTPServerConfiguration(), group: LoopGroup,
                logger: Logger? = nil, accessLog: Bool = false) throws(HTTPServerError) {
        self.configuration = try configuration.validated()
        self.routes = routes
        self.group = group
        self.logger = logger
        self.accessLog = accessLog
        self.metrics = HTTPServerMetrics()
        do {
            pool = try ThreadPool(workers: configuration.blockingThreads, queueCapacity: 4096, whenFull: .reject,
                                  name: "strata-http-blocking")
        } catch {
            throw HTTPServerError(message: "HTTPServer: cannot start the blocking-handler pool: \(error)")
        }
        var dates: [ObjectIdentifier: DateCache] = [:]
        for loop in group.loops { dates[ObjectIdentifier(loop)] = DateCache() }
        self.dates = dates
    }

    /// Listens on `address` with one SO_REUSEPORT listener per loop; returns the bound
    /// address (the kernel's port for port 0).
    ///
    /// - Parameters:
    ///   - backlog: The kernel's queue of connections not yet accepted.
    ///   - transport: Wraps each accepted connection in the ``HTTPTransport`` the server
    ///     serves (a TLS handshake, say); nil serves the TCP connection itself. It runs in
    ///     the connection's own task on its loop — a slow setup never holds up accepting —
    ///     and knows nothing of HTTP. While it runs the connection counts toward
    ///     ``HTTPServerConfiguration/maxConnections`` and, for a graceful shutdown, as idle
    ///     (it is cancelled at once). It must finish within
    ///     ``HTTPServerConfiguration/transportSetupTimeout`` (else its task is cancelled). If it
    ///     throws, the connection is closed, the failure is counted
    ///     (`http_transport_setup_failures_total`) and logged at debug, and the server goes on.
    /// - Throws: ``SchedError`` for the bind, naming the address and the fix.
    @discardableResult
    public func listen(on address: SocketAddress, backlog: Int = 4096,
                       transport: HTTPTransportFactory? = nil) throws(SchedError) -> SocketAddress {
        let first = try TCPListener.bind(address, on: group.loops[0], reusePort: true, backlog: backlog)
        var all = [first]
        for loop in group.loops.dropFirst() {
            do { all.append(try TCPListener.bind(first.localAddress, on: loop, reusePort: true, backlog: backlog)) } catch {
                for l in all { Task { await l.close() } }
                throw error
            }
        }
        state.withLock { $0.listeners += all }
        for listener in all {
            listener.loop.spawn { [self] in await acceptLoop(listener, transport: transport) }
        }
        return first.localAddress
    }

    private func acceptLoop(_ listener: TCPListener, transport factory: HTTPTransportFactory?) async {
        let loop = listener.loop
        while !draining.load(ordering: .relaxed) {
            // At the cap, stop accepting: the kernel's backlog holds new connections.
            while activeConnections.load(ordering: .relaxed) >= configuration.maxConnections && !draining.load(ordering: .relaxed) {
                metrics.limitHit("max_connections")
                do { try await loop.sleep(for: .milliseconds(5)) } catch { return }
            }
            let connection: TCPConnection
            do {
                guard let c = try await listener.accept() else { return }
                connection = c
            } catch {
                if !(error is CancellationError) { logger?.error("accept on \(listener.localAddress): \(error)") }
                return
            }
            activeConnections.add(1, ordering: .relaxed)
            metrics.connectionOpened()
            let entry = ConnectionEntry()
            let id = state.withLock { s -> UInt64 in
                s.nextID += 1
                s.connections[s.nextID] = entry
                return s.nextID
            }
            let task = Task(executorPreference: loop) { [self] in
                if let factory {
                    if let transport = await setUpTransport(connection, factory, entry: entry) {
                        await serve(transport, entry: entry)  // the existential, opened once
                        await transport.close()
                    }
                } else {
                    await serve(connection, entry: entry)  // specialized for TCPConnection
                }
                await connection.close()
                activeConnections.subtract(1, ordering: .relaxed)
                metrics.connectionClosed()
                _ = state.withLock { $0.connections.removeValue(forKey: id) }
                entry.finished()
            }
            entry.adopt(task)
        }
    }

    /// Serves one connection's requests until it ends (the transport is not closed here).
    private func serve<Transport: HTTPTransport>(_ transport: Transport, entry: ConnectionEntry) async {
        let handler = HTTPConnectionHandler(server: self, connection: transport, entry: entry,
                                            dates: dates[ObjectIdentifier(transport.loop)]!)
        await handler.run()
    }

    /// Runs `factory` on an accepted connection, bounded by the setup timeout; nil when it
    /// failed (counted and logged; the caller closes the connection).
    private func setUpTransport(_ connection: TCPConnection, _ factory: HTTPTransportFactory,
                                entry: ConnectionEntry) async -> (any HTTPTransport)? {
        let loop = connection.loop
        // 0: running, 1: done, 2: timed out. The timer cancels the connection's task (the
        // factory's waits throw), unless the factory finished first.
        let setup = SetupState()
        let timeout = configuration.transportSetupTimeout
        let timer = Task(executorPreference: loop) {
            guard (try? await loop.sleep(for: timeout)) != nil else { return }
            if setup.state.compareExchange(expected: 0, desired: 2, ordering: .sequentiallyConsistent).exchanged {
                entry.cancel()
            }
        }
        defer { timer.cancel() }
        let transport: any HTTPTransport
        do {
            transport = try await factory(connection)
        } catch {
            transportSetupFailed(error, timedOut: setup.state.load(ordering: .sequentiallyConsistent) == 2)
            return nil
        }
        guard setup.state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged else {
            await transport.close()
            transportSetupFailed(CancellationError(), timedOut: true)
            return nil
        }
        guard transport.loop === loop else {
            logger?.error("the transport factory returned a transport on another loop than its connection's; closing it")
            await transport.close()
            metrics.transportSetupFailed()
            return nil
        }
        return transport
    }

    private func transportSetupFailed(_ error: any Error, timedOut: Bool) {
        if !timedOut && error is CancellationError && draining.load(ordering: .relaxed) {
            // A graceful shutdown cancelled it (the connection was idle): not a failure.
            logger?.debug("transport setup cancelled by the shutdown")
            return
        }
        if timedOut { metrics.timeout("transport_setup") }
        metrics.transportSetupFailed()
        logger?.debug("transport setup failed\(timedOut ? " (timed out)" : ""): \(error)")
    }

    /// The number of open connections.
    public var connectionCount: Int { activeConnections.load(ordering: .relaxed) }

    /// What a graceful shutdown did.
    public struct ShutdownReport: Sendable, CustomStringConvertible {
        /// Connections open when the shutdown began.
        public var connectionsAtStart: Int
        /// Idle keep-alive connections closed at once.
        public var idleClosed: Int
        /// Connections still open at the deadline, closed by force.
        public var forceClosed: Int
        /// One line.
        public var description: String {
            "\(connectionsAtStart) connection(s) open: \(idleClosed) idle closed at once, "
                + "\(connectionsAtStart - idleClosed - forceClosed) finished their requests, \(forceClosed) force-closed at the deadline"
        }
    }

    /// Stops accepting, lets requests in progress finish (their responses carry
    /// `Connection: close`), closes idle connections at once, and at `timeout` closes the
    /// rest by force. Then stops the loops' tasks of this server (not the loops).
    public func shutdownGracefully(timeout: Duration) async -> ShutdownReport {
        draining.store(true, ordering: .sequentiallyConsistent)
        let listeners = state.withLock { s -> [TCPListener] in
            let l = s.listeners
            s.listeners = []
            return l
        }
        for l in listeners { await l.close() }
        let entries = state.withLock { Array($0.connections.values) }
        var claimed = Set<ObjectIdentifier>()
        for entry in entries where entry.claimIdle() {
            claimed.insert(ObjectIdentifier(entry))
            entry.cancel()
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while activeConnections.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            // Connections that become idle after their last response close themselves.
            try? await Task.sleep(for: .milliseconds(5))
        }
        let rest = state.withLock { Array($0.connections.values) }
        for entry in rest { entry.cancel() }
        // Idle connections claimed above that are still closing are not "force-closed".
        let forced = rest.filter { !claimed.contains(ObjectIdentifier($0)) }.count
        let grace = ContinuousClock.now.advanced(by: .seconds(2))
        while activeConnections.load(ordering: .relaxed) > 0 && ContinuousClock.now < grace {
            try? await Task.sleep(for: .milliseconds(5))
        }
        await pool.shutdown()
        return ShutdownReport(connectionsAtStart: entries.count, idleClosed: claimed.count, forceClosed: forced)
    }

    /// The server's metrics (also exported through swift-metrics).
    public var statistics: HTTPServerMetrics { metrics }
}

/// Whether a connection's transport setup finished or timed out first.
final class SetupState: Sendable {
    let state = Atomic<Int>(0)
}

/// One connection's registry entry: its task (to cancel) and whether it waits between requests.
final class ConnectionEntry: Sendable {
    /// The connection's task until it finishes (then nil: the task's closure captures this
    /// entry, so keeping the handle after the end would be a reference cycle).
    let task = LockedValue<(handle: Task<Void, Never>?, done: Bool)>((nil, false))
    /// Waiting for the first byte of a request (no request in progress).
    let idle = Atomic<Bool>(true)

    /// Shutdown: takes an idle connection for closing (true), unless it has just become busy.
    /// Atomic with ``becomeBusy()``: a connection that started a request is never cancelled
    /// before the deadline (a cancelled task would cut the response it is sending).
    func claimIdle() -> Bool {
        idle.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
    }

    /// The connection read the first bytes of a request; throws (end quietly: the close
    /// lingers, the peer sees an end of stream) if a shutdown claimed it while it was idle.
    func becomeBusy() throws(ConnectionEnd) {
        guard idle.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged else {
            throw .quiet
        }
    }

    func cancel() {
        task.withLock { $0.handle?.cancel() }
    }

    /// Records the task's handle, unless it already finished.
    func adopt(_ handle: Task<Void, Never>) {
        task.withLock { if !$0.done { $0.handle = handle } }
    }

    /// The task ended: drop its handle.
    func finished() {
        task.withLock { $0 = (nil, true) }
    }
}
