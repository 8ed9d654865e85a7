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

/// N loops on N threads, and servers spread across them.
///
/// ```swift
/// let group = try LoopGroup(loops: 2)
/// try group.serve(on: SocketAddress(parsing: "0.0.0.0:7000")) { connection in
///     while let chunk = try? await connection.read(maximumCount: 4096), !chunk.isEmpty {
///         do { try await connection.write(chunk) } catch { return }
///     }
/// }
/// // later, on SIGTERM:
/// let report = await group.shutdownGracefully(timeout: .seconds(10))
/// ```
public final class LoopGroup: Sendable {
    /// How a server spreads connections over the loops.
    public enum Distribution: Sendable, Hashable {
        /// One SO_REUSEPORT listener per loop; the kernel picks a loop per connection (by a
        /// hash of the 4-tuple). No cross-thread hand-off; the default.
        case reusePort
        /// One listener on the first loop; accepted connections go round-robin to the loops.
        /// Evens out load when few clients open many connections from one address; costs a
        /// cross-thread hand-off per connection.
        case singleAcceptor
    }

    /// What a graceful shutdown did.
    public struct ShutdownReport: Sendable, CustomStringConvertible {
        /// Listeners closed (accepting stopped).
        public var listenersClosed: Int
        /// Tracked tasks (connection handlers) running when the shutdown began.
        public var tasksAtStart: Int
        /// Of those, the ones still running at the deadline, which were cancelled.
        public var tasksCancelled: Int
        /// Whether every cancelled task ended within the grace second after its cancellation.
        public var allEnded: Bool
        /// One line.
        public var description: String {
            "closed \(listenersClosed) listener(s); \(tasksAtStart) task(s) running, \(tasksAtStart - tasksCancelled) finished in time, "
                + "\(tasksCancelled) cancelled at the deadline" + (allEnded ? "" : "; some did not end after cancellation")
        }
    }

    /// The loops, one thread each.
    public let loops: [Loop]
    private let nextIndex = Atomic<Int>(0)
    private let listeners = LockedValue<[TCPListener]>([])

    /// Starts `count` loops, named `name-0`, `name-1`, …
    ///
    /// - Parameters:
    ///   - pinning: Pin loop `i` to CPU `i mod CPUs` (Linux).
    ///   - configuration: Each loop's EventLoop configuration; default from `STRATA_BACKEND`.
    /// - Throws: ``SchedError``: `count` outside 1...1024 names the field; a loop that could
    ///   not start stops the ones already started.
    public init(loops count: Int, name: String = "strata", configuration: EventLoop.Configuration? = nil,
                pinning: Bool = false) throws(SchedError) {
        guard (1...1024).contains(count) else {
            throw SchedError(.invalidConfiguration, "LoopGroup loops \(count): use 1...1024 (one per core is usual)")
        }
        let cpus = max(1, Int(sysconf(CInt(_SC_NPROCESSORS_ONLN))))
        var started: [Loop] = []
        for i in 0..<count {
            do {
                started.append(try Loop.start(name: "\(name)-\(i)", configuration: configuration,
                                              affinity: pinning ? [i % cpus] : nil))
            } catch {
                for loop in started { loop.stop() }
                throw error
            }
        }
        loops = started
    }

    /// The next loop, round-robin (for client connections and hand-offs).
    public func next() -> Loop {
        loops[nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Listens on `address` and runs `handler` as a tracked task on a loop for every
    /// connection; the connection is closed when the handler returns.
    ///
    /// - Returns: the bound address (with the kernel's port for port 0).
    /// - Throws: ``SchedError`` for the bind (`EADDRINUSE` names the address and the fix).
    @discardableResult
    public func serve(on address: SocketAddress, distribution: Distribution = .reusePort, backlog: Int = 4096,
                      handler: @escaping @Sendable (TCPConnection) async -> Void) throws(SchedError) -> SocketAddress {
        switch distribution {
        case .reusePort:
            // Bind the first to learn the port (port 0), then the others to that port.
            let first = try TCPListener.bind(address, on: loops[0], reusePort: true, backlog: backlog)
            var all = [first]
            for loop in loops.dropFirst() {
                do {
                    all.append(try TCPListener.bind(first.localAddress, on: loop, reusePort: true, backlog: backlog))
                } catch {
                    for l in all { Task { await l.close() } }
                    throw error
                }
            }
            listeners.withLock { $0 += all }
            for listener in all {
                let loop = listener.loop
                loop.spawn {
                    await Self.acceptLoop(listener) { connection in
                        loop.spawn {
                            await handler(connection)
                            await connection.close()
                        }
                    }
                }
            }
            return first.localAddress
        case .singleAcceptor:
            let listener = try TCPListener.bind(address, on: loops[0], backlog: backlog)
            listeners.withLock { $0.append(listener) }
            loops[0].spawn { [self] in
                await Self.acceptLoop(listener) { connection in
                    let target = next()
                    let handedOff = TCPConnection(adopting: connection.releaseDescriptor(), on: target)
                    target.spawn {
                        await handler(handedOff)
                        await handedOff.close()
                    }
                }
            }
            return listener.localAddress
        }
    }

    private static func acceptLoop(_ listener: TCPListener, _ each: (TCPConnection) -> Void) async {
        while true {
            do {
                guard let connection = try await listener.accept() else { return }
                each(connection)
            } catch is CancellationError {
                return
            } catch {
                listener.loop.log?("strata.sched: accept on \(listener.localAddress): \(error)")
                return
            }
        }
    }

    /// Shuts the group down gracefully: stops accepting (closes every listener), waits up to
    /// `timeout` for the connection handlers to finish, cancels those still running (their
    /// pending operations throw `CancellationError`), gives them a second to end, then stops
    /// the loops. Returns what it did.
    public func shutdownGracefully(timeout: Duration) async -> ShutdownReport {
        let toClose = listeners.withLock { all -> [TCPListener] in
            let taken = all
            all = []
            return taken
        }
        for listener in toClose { await listener.close() }
        // Acceptor tasks end right after their listener closed.
        try? await Task.sleep(for: .milliseconds(1))
        let start = loops.reduce(0) { $0 + $1.trackedTaskCount }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while loops.contains(where: { $0.trackedTaskCount > 0 }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let cancelled = loops.reduce(0) { $0 + $1.cancelTrackedTasks() }
        let grace = ContinuousClock.now.advanced(by: .seconds(1))
        while loops.contains(where: { $0.trackedTaskCount > 0 }) && ContinuousClock.now < grace {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let allEnded = !loops.contains(where: { $0.trackedTaskCount > 0 })
        for loop in loops { loop.stop() }
        return ShutdownReport(listenersClosed: toClose.count, tasksAtStart: start, tasksCancelled: cancelled, allEnded: allEnded)
    }

    /// Stops every loop now (see ``Loop/stop()``).
    public func stop() {
        for loop in loops { loop.stop() }
    }
}
