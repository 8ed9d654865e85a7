// The completion engine shared by the readiness backends (epoll on Linux, kqueue on Darwin and
// FreeBSD): it turns edge-triggered readiness into io_uring-shaped completions. The backends
// only supply a `ReadinessWatcher` (how to start and stop watching a descriptor) and feed the
// engine the readiness their wait call reports; everything else — trying calls first, per-fd
// FIFOs, multishot emulation, the drain bound, cancellation, the EMFILE policy — lives here, is
// compiled on every platform, and is tested on Linux through the epoll backend.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The side of a descriptor an operation waits for.
enum ReadinessDirection: Sendable {
    /// Readable: accept, receive, pooled receive.
    case read
    /// Writable: send, writev, sendfile, connect.
    case write
}

extension OperationKind {
    /// The side of the descriptor this kind of operation waits for.
    var readinessDirection: ReadinessDirection {
        switch self {
        case .accept, .receive, .receivePooled: .read
        case .send, .writev, .sendfile, .connect: .write
        case .close, .timeout: preconditionFailure("\(self) is not a descriptor operation a readiness backend parks")
        }
    }
}

/// How a readiness backend starts and stops watching descriptors.
///
/// Contract: after `watch(fd)` succeeds, the backend reports every edge of both directions of
/// `fd` to ``ReadinessEngine/ready(_:readable:writable:completions:)``, including readiness that
/// already exists when the watch starts (epoll's `EPOLL_CTL_ADD` and kqueue's `EV_ADD` both
/// report it), so the engine can try a call first and watch only when it would block.
protocol ReadinessWatcher {
    /// Starts edge-triggered reports for both directions of `fd`. Returns 0 or -errno.
    mutating func watch(_ fd: CInt) -> Int32
    /// Stops watching `fd`, which is about to be closed.
    mutating func unwatch(_ fd: CInt)
}

/// An operation parked until its descriptor is ready.
struct PendingOperation {
    /// The operation as the loop submitted it; its pointers stay valid until its final completion.
    var submission: Submission
    /// connect only: `connect(2)` returned EINPROGRESS; the result comes from `SO_ERROR`.
    var connectInProgress = false
}

/// A FIFO of parked operations: the head is the only one that may run, so a later send never
/// overtakes an earlier one. Keeps its storage when it empties, so a descriptor number that
/// is reused for a new connection parks without allocating.
struct OperationFIFO {
    private var items: [PendingOperation] = []
    private var head = 0

    /// Whether nothing is parked.
    var isEmpty: Bool { head == items.count }
    /// The number of parked operations.
    var count: Int { items.count - head }
    /// The operation that runs next.
    var first: PendingOperation? { isEmpty ? nil : items[head] }

    /// Replaces the head (after an attempt changed its state).
    mutating func replaceFirst(_ operation: PendingOperation) {
        precondition(!isEmpty, "OperationFIFO.replaceFirst on an empty queue")
        items[head] = operation
    }

    /// Adds an operation at the tail.
    mutating func append(_ operation: PendingOperation) {
        items.append(operation)
    }

    /// Removes the head. - Complexity: amortized O(1).
    @discardableResult
    mutating func removeFirst() -> PendingOperation {
        precondition(!isEmpty, "OperationFIFO.removeFirst on an empty queue")
        let operation = items[head]
        head += 1
        compact()
        return operation
    }

    /// Removes the operation `userData`; `wasFirst` tells whether it was the head.
    /// - Complexity: O(n) in the number of parked operations on this side of this descriptor.
    mutating func remove(userData: UInt64) -> (operation: PendingOperation, wasFirst: Bool)? {
        guard let index = items[head...].firstIndex(where: { $0.submission.userData == userData }) else { return nil }
        let wasFirst = index == head
        let operation = items.remove(at: index)
        compact()
        return (operation, wasFirst)
    }

    /// Removes every operation, in FIFO order.
    mutating func removeAll() -> ArraySlice<PendingOperation> {
        let all = items[head...]
        items.removeAll(keepingCapacity: true)
        head = 0
        return all
    }

    private mutating func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}

/// What the engine knows about one descriptor number.
struct DescriptorState {
    /// The backend watches this descriptor (registered once, on the first operation that would block).
    var watched = false
    /// Parked accepts and receives, in submission order.
    var reads = OperationFIFO()
    /// Parked sends, writevs, sendfiles and connects, in submission order.
    var writes = OperationFIFO()
    /// The read side stopped at the drain bound, not at EAGAIN: drive it again on the next wait.
    var deferredRead = false
    /// The write side stopped at the drain bound: drive it again on the next wait.
    var deferredWrite = false
    /// A listener whose accept met EMFILE/ENFILE with no reserve descriptor to shed connections
    /// with: it waits for the loop to close a descriptor (see ``ReadinessEngine``).
    var acceptPaused = false
    /// The backend reported a hang-up or error for this descriptor (EPOLLRDHUP/HUP/ERR): reads
    /// drain to EAGAIN or end of stream from now on. Sticky until the descriptor is recycled.
    var hangupSeen = false
    /// Whether the descriptor is a stream socket: nil until a pooled receive asks.
    var isStream: Bool?

    /// Whether any operation is parked on either side.
    var isIdle: Bool { reads.isEmpty && writes.isEmpty }
}

#if DEBUG
/// Faults a test can inject (debug builds only), for conditions a test process cannot create
/// safely: running out of descriptors would break every test that runs in parallel with it.
struct ReadinessFaults {
    /// The errno the next accepts report instead of calling accept4 (0: none).
    var acceptErrno: Int32 = 0
    /// How many accepts fail with ``acceptErrno``; -1 means all of them.
    var acceptFailures = 0
}
#endif

/// Turns edge-triggered readiness into completions, identically for epoll and kqueue.
///
/// **Try first.** `submit` performs the call at once (accept4, recv, send with MSG_NOSIGNAL,
/// sendmsg for writev, sendfile, connect) when nothing is parked ahead of it on that side of the
/// descriptor. Only EAGAIN (EINPROGRESS for connect) parks the operation at the tail of the
/// descriptor's read or write FIFO, and only then is the descriptor watched — once, for both
/// directions, edge-triggered; it stays watched until ``close(fd:userData:completions:)``.
///
/// **Edges.** An edge for a side runs that side's FIFO from its head: each operation does one
/// call (multishot ones loop), a finished one is removed and the next runs, and the side stops
/// at the first EAGAIN — the point at which the kernel will report a new edge. Because edges do
/// not repeat, every other reason to stop early is made up for: the drain bound defers the side
/// to the next wait (below); a multishot pooled receive that finds the pool empty ends with a
/// final `-ENOBUFS` and the loop resubmits it when a buffer returns, which tries the call at once.
///
/// **Fairness.** One side of one descriptor does at most ``drainLimit`` calls per wait. A side
/// that reaches the bound before EAGAIN goes on a deferred list; the backend then waits with a
/// zero timeout and drives the deferred sides after the new events, so a flood on one socket
/// neither starves the others nor loses its own edge. Each side runs at most once per wait.
///
/// **Results** are those of io_uring: a non-negative value (new descriptor, bytes, 0 at end of
/// stream, 0 for connect) or a negated errno. A send, writev or sendfile makes one call after
/// readiness and reports what it wrote (partial writes are the caller's to continue).
///
/// **EMFILE/ENFILE policy (accept).** The engine keeps one reserve descriptor (`/dev/null`,
/// opened at start-up). When accept reports EMFILE or ENFILE, it closes the reserve, accepts the
/// pending connections (up to the drain bound) and closes each with `SO_LINGER 0` — the peer
/// gets a reset at once instead of hanging in the backlog — then reopens the reserve and
/// reports the errno once per episode: with `more` for a multishot accept, which stays armed,
/// as the final result of a single accept. The listener is drained to EAGAIN, so its edge
/// fires again only when a new connection arrives: the loop cannot spin on it. If the reserve
/// cannot be had (another thread took the freed slot), the accept pauses instead — still
/// reporting the errno once — and resumes when the loop closes a descriptor, or when a new
/// connection arrives.
///
/// - Warning: Close every descriptor the loop has used through the loop
///   (`EventLoop.close(_:token:)`). A descriptor closed behind the loop's back leaves a stale
///   "watched" entry; if its number is reused by a socket the caller creates, operations on it
///   park without being watched. (Numbers reused by the loop's own accepts are detected and reset.)
final class ReadinessEngine<Watcher: ReadinessWatcher> {
    /// The platform half: epoll_ctl, or kqueue's changelist.
    var watcher: Watcher
    /// Calls per side of a descriptor per wait before the side is deferred to the next wait.
    let drainLimit: Int
    /// What is known per descriptor number (index = fd); grows to the highest descriptor used.
    /// `@exclusivity(unchecked)`: one thread, and no inout access to it spans a call that
    /// touches it again (`drive` re-reads it after every `attempt`), so the dynamic checks
    /// Swift adds for class properties are pure cost on the hot path.
    @exclusivity(unchecked) private(set) var descriptors: [DescriptorState] = []
    /// Where each parked operation is: userData → descriptor, for cancellation.
    private var parkedOn: [UInt64: CInt] = [:]
    /// Descriptors with a deferred side, for the next wait.
    private var deferred: [CInt] = []
    /// Spare list swapped with ``deferred`` so that draining allocates nothing.
    private var draining: [CInt] = []
    /// Listeners paused by EMFILE without a reserve descriptor.
    private var pausedListeners: [CInt] = []
    /// The EMFILE policy's reserve descriptor (`/dev/null`), or -1 while it is spent.
    private(set) var reserveDescriptor: CInt
    /// A multishot pooled receive on a stream socket stops draining after a short read (fewer
    /// bytes than the buffer holds) instead of paying one more call for EAGAIN. Sound only for
    /// backends that report hang-ups through ``ready(_:readable:writable:hangup:completions:)``
    /// for every event: a short read proves the receive queue was empty at that instant, new
    /// data or a FIN after it raises a new edge, and a FIN already queued was reported as a
    /// hang-up, which makes the descriptor drain fully. Epoll enables it; kqueue does not.
    let shortReadEndsDrain: Bool
    #if DEBUG
    /// Injected faults (tests only).
    var faults = ReadinessFaults()
    #endif

    /// Creates the engine and opens the reserve descriptor.
    /// - Parameters:
    ///   - watcher: The backend's watcher.
    ///   - drainLimit: Calls per side of a descriptor per wait, at least 1.
    init(watcher: Watcher, drainLimit: Int, shortReadEndsDrain: Bool = false) {
        precondition(drainLimit >= 1, "drainLimit must be at least 1")
        self.watcher = watcher
        self.drainLimit = drainLimit
        self.shortReadEndsDrain = shortReadEndsDrain
        let reserve = sysOpenReserveDescriptor()
        reserveDescriptor = reserve >= 0 ? reserve : -1
    }

    deinit {
        if reserveDescriptor >= 0 { sysClose(reserveDescriptor) }
    }

    /// Whether some side was deferred by the drain bound: the backend must not block in its wait.
    var hasDeferredWork: Bool { !deferred.isEmpty }

    /// The number of operations parked, over all descriptors.
    var parkedCount: Int { parkedOn.count }

    // MARK: - Submitting and cancelling

    /// Performs `submission` at once, or parks it until its descriptor is ready.
    func submit(_ submission: Submission, completions: inout [RawCompletion]) {
        let fd = submission.fd
        guard fd >= 0 else {
            completions.append(RawCompletion(userData: submission.userData, result: -EBADF, more: false, bufferID: nil))
            return
        }
        let direction = submission.kind.readinessDirection
        var operation = PendingOperation(submission: submission)
        let index = Int(fd)
        // The table grows only when something parks (the descriptor then proved valid), so a bogus
        // number costs an EBADF, not a table of its size.
        let queueEmpty = index >= descriptors.count
            || (direction == .read ? descriptors[index].reads.isEmpty : descriptors[index].writes.isEmpty)
        guard queueEmpty else {
            // Something is parked ahead of it on this side: keep FIFO order.
            enqueue(operation, on: fd, direction)
            return
        }
        var budget = drainLimit
        let outcome = attempt(&operation, on: fd, budget: &budget, completions: &completions)
        if outcome == .finished { return }
        reserveSlot(fd)
        if !descriptors[index].watched {
            let rc = watcher.watch(fd)
            if rc < 0 {
                emit(operation, rc, into: &completions)
                return
            }
            descriptors[index].watched = true
        }
        enqueue(operation, on: fd, direction)
        if outcome == .budgetSpent { postpone(fd, direction) }
    }

    /// Cancels the parked operation `userData`: it completes with `-ECANCELED`. An operation that
    /// already completed (or was never parked) is not affected.
    func cancel(userData: UInt64, completions: inout [RawCompletion]) {
        guard let fd = parkedOn.removeValue(forKey: userData) else { return }
        let index = Int(fd)
        if let removed = descriptors[index].reads.remove(userData: userData) {
            emit(removed.operation, -ECANCELED, into: &completions)
            // The next operation has not been tried since the edge the removed one consumed.
            if removed.wasFirst && !descriptors[index].reads.isEmpty { postpone(fd, .read) }
            if descriptors[index].reads.isEmpty { descriptors[index].acceptPaused = false }
        } else if let removed = descriptors[index].writes.remove(userData: userData) {
            emit(removed.operation, -ECANCELED, into: &completions)
            if removed.wasFirst && !descriptors[index].writes.isEmpty { postpone(fd, .write) }
        } else {
            preconditionFailure(
                "operation \(OperationID(rawValue: userData)) is recorded as parked on fd \(fd) "
                    + "but is in neither queue")
        }
    }

    /// Cancels every operation parked on `fd`, reads first, each side in FIFO order.
    func cancelAll(fd: CInt, completions: inout [RawCompletion]) {
        guard fd >= 0, Int(fd) < descriptors.count else { return }
        let index = Int(fd)
        for operation in descriptors[index].reads.removeAll() {
            parkedOn[operation.submission.userData] = nil
            emit(operation, -ECANCELED, into: &completions)
        }
        for operation in descriptors[index].writes.removeAll() {
            parkedOn[operation.submission.userData] = nil
            emit(operation, -ECANCELED, into: &completions)
        }
        descriptors[index].deferredRead = false
        descriptors[index].deferredWrite = false
        descriptors[index].acceptPaused = false
    }

    /// Stops watching `fd`, forgets it and closes it; completes `userData` with 0 or -errno.
    /// Then, since a descriptor slot was freed, resumes listeners paused by EMFILE.
    /// - Precondition: nothing is parked on `fd` (the loop closes only idle descriptors).
    func close(fd: CInt, userData: UInt64, completions: inout [RawCompletion]) {
        if fd >= 0 && Int(fd) < descriptors.count {
            precondition(descriptors[Int(fd)].isIdle,
                         "close(fd: \(fd)) with operations parked on it: the loop must cancel them first")
            if descriptors[Int(fd)].watched { watcher.unwatch(fd) }
            descriptors[Int(fd)] = recycledState(descriptors[Int(fd)])
        }
        completions.append(RawCompletion(userData: userData, result: sysClose(fd), more: false, bufferID: nil))
        resumePausedListeners()
    }

    // MARK: - Readiness

    /// Drives the sides of `fd` the backend reported ready. Call once per event.
    func ready(_ fd: CInt, readable: Bool, writable: Bool, hangup: Bool = false, completions: inout [RawCompletion]) {
        guard fd >= 0, Int(fd) < descriptors.count else { return }
        if hangup { descriptors[Int(fd)].hangupSeen = true }
        // A side already on the deferred list runs from there in this same wait (once per wait).
        if readable && !descriptors[Int(fd)].deferredRead { drive(fd, .read, completions: &completions) }
        if writable && !descriptors[Int(fd)].deferredWrite { drive(fd, .write, completions: &completions) }
    }

    /// The kernel refused to watch `fd` for `direction` (nil: both) — kqueue reports a failed
    /// change as an event. The operations parked on that side complete with `result`, and the
    /// next operation to park watches the descriptor again.
    func watchFailed(_ fd: CInt, direction: ReadinessDirection?, result: Int32, completions: inout [RawCompletion]) {
        guard fd >= 0, Int(fd) < descriptors.count else { return }
        let index = Int(fd)
        descriptors[index].watched = false
        if direction != .write {
            for operation in descriptors[index].reads.removeAll() {
                parkedOn[operation.submission.userData] = nil
                emit(operation, result, into: &completions)
            }
            descriptors[index].deferredRead = false
            descriptors[index].acceptPaused = false
        }
        if direction != .read {
            for operation in descriptors[index].writes.removeAll() {
                parkedOn[operation.submission.userData] = nil
                emit(operation, result, into: &completions)
            }
            descriptors[index].deferredWrite = false
        }
    }

    /// Starts a wait: the sides deferred so far are the ones ``finishWait(completions:)`` drives.
    /// Call before handling the wait's events.
    func beginWait() {
        swap(&deferred, &draining)
    }

    /// Ends a wait: drives the sides deferred by the previous one (after this wait's events, so a
    /// side runs once per wait). Sides that reach the bound again go on the next wait's list.
    func finishWait(completions: inout [RawCompletion]) {
        for position in draining.indices {
            let fd = draining[position]
            guard Int(fd) < descriptors.count else { continue }
            let index = Int(fd)
            let read = descriptors[index].deferredRead, write = descriptors[index].deferredWrite
            descriptors[index].deferredRead = false
            descriptors[index].deferredWrite = false
            if read { drive(fd, .read, completions: &completions) }
            if write { drive(fd, .write, completions: &completions) }
        }
        draining.removeAll(keepingCapacity: true)
    }

    // MARK: - Pools

    /// Gives a pool buffer back to the pool's free list (the caller released it).
    func recycle(_ pool: BufferPool, _ id: UInt16) {
        pool.free.append(id)
    }

    #if DEBUG
    /// Spends the reserve descriptor, as if another thread had taken the slot it would free
    /// (tests of the pause half of the EMFILE policy).
    func dropReserveForTesting() {
        if reserveDescriptor >= 0 { sysClose(reserveDescriptor) }
        reserveDescriptor = -1
    }
    #endif

    // MARK: - Internals

    /// What one attempt left behind, which tells ``drive(_:_:completions:)`` whether to go on.
    enum Outcome: Equatable {
        /// The operation's final completion was emitted: remove it.
        case finished
        /// The call would block: keep the operation at the head and wait for the next edge.
        case wouldBlock
        /// The drain bound was reached before EAGAIN: keep it and run again on the next wait.
        case budgetSpent
    }

    private func reserveSlot(_ fd: CInt) {
        let needed = Int(fd) + 1
        if needed > descriptors.count {
            let grown = max(needed, descriptors.count * 2, 64)
            descriptors.append(contentsOf: repeatElement(DescriptorState(), count: grown - descriptors.count))
        }
    }

    /// A fresh state that keeps the old queues' storage.
    private func recycledState(_ old: DescriptorState) -> DescriptorState {
        var state = old
        state.hangupSeen = false
        state.isStream = nil
        state.watched = false
        state.deferredRead = false
        state.deferredWrite = false
        state.acceptPaused = false
        return state
    }

    private func enqueue(_ operation: PendingOperation, on fd: CInt, _ direction: ReadinessDirection) {
        parkedOn[operation.submission.userData] = fd
        switch direction {
        case .read: descriptors[Int(fd)].reads.append(operation)
        case .write: descriptors[Int(fd)].writes.append(operation)
        }
    }

    private func postpone(_ fd: CInt, _ direction: ReadinessDirection) {
        let index = Int(fd)
        let wasListed = descriptors[index].deferredRead || descriptors[index].deferredWrite
        switch direction {
        case .read: descriptors[index].deferredRead = true
        case .write: descriptors[index].deferredWrite = true
        }
        if !wasListed { deferred.append(fd) }
    }

    /// Runs one side of `fd` from the head of its FIFO until EAGAIN, an empty FIFO or the bound.
    private func drive(_ fd: CInt, _ direction: ReadinessDirection, completions: inout [RawCompletion]) {
        let index = Int(fd)
        var budget = drainLimit
        while true {
            let head = direction == .read ? descriptors[index].reads.first : descriptors[index].writes.first
            guard var operation = head else { return }
            if budget == 0 {
                postpone(fd, direction)
                return
            }
            // `attempt` may grow `descriptors` (a new connection's number), so no reference into
            // it is held across the call.
            let outcome = attempt(&operation, on: fd, budget: &budget, completions: &completions)
            switch outcome {
            case .finished:
                parkedOn[operation.submission.userData] = nil
                switch direction {
                case .read: descriptors[index].reads.removeFirst()
                case .write: descriptors[index].writes.removeFirst()
                }
            case .wouldBlock, .budgetSpent:
                switch direction {
                case .read: descriptors[index].reads.replaceFirst(operation)
                case .write: descriptors[index].writes.replaceFirst(operation)
                }
                if outcome == .budgetSpent { postpone(fd, direction) }
                return
            }
        }
    }

    @inline(__always)
    private func emit(_ operation: PendingOperation, _ result: Int32, more: Bool = false, bufferID: UInt16? = nil,
                      into completions: inout [RawCompletion]) {
        completions.append(RawCompletion(userData: operation.submission.userData, result: result, more: more,
                                         bufferID: bufferID))
    }

    /// Makes the calls of one operation. Called with `budget >= 1`; each call spends one.
    private func attempt(_ operation: inout PendingOperation, on fd: CInt, budget: inout Int,
                         completions: inout [RawCompletion]) -> Outcome {
        let s = operation.submission
        switch s.kind {
        case .accept:
            return attemptAccept(operation, on: fd, budget: &budget, completions: &completions)
        case .receivePooled:
            return attemptPooledReceive(operation, on: fd, budget: &budget, completions: &completions)
        case .receive:
            budget -= 1
            let rc = sysReceiveNonblocking(fd, s.pointer!, s.length)
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            emit(operation, rc, into: &completions)
            return .finished
        case .send:
            budget -= 1
            let rc = s.length == 0 ? 0 : sysSendNonblocking(fd, s.pointer!, s.length)
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            emit(operation, rc, into: &completions)
            return .finished
        case .writev:
            budget -= 1
            let vectors = s.pointer!.assumingMemoryBound(to: iovec.self)
            let rc = sysSendMessageNonblocking(fd, vectors, s.length)
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            emit(operation, rc, into: &completions)
            return .finished
        case .sendfile:
            budget -= 1
            let rc = s.length == 0 ? 0 : sysSendFileNonblocking(fd, s.fileFD, s.offset, s.length)
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            emit(operation, rc, into: &completions)
            return .finished
        case .connect:
            budget -= 1
            return attemptConnect(&operation, on: fd, completions: &completions)
        case .close, .timeout:
            preconditionFailure("a readiness backend never parks a \(s.kind)")
        }
    }

    private func attemptConnect(_ operation: inout PendingOperation, on fd: CInt,
                                completions: inout [RawCompletion]) -> Outcome {
        if !operation.connectInProgress {
            let rc = sysConnectStart(fd, UnsafeRawPointer(operation.submission.pointer!), operation.submission.length)
            switch -rc {
            case 0:
                emit(operation, 0, into: &completions)
                return .finished
            case EINPROGRESS, EINTR, EALREADY:
                // The handshake runs in the background; writability reports its end.
                operation.connectInProgress = true
                return .wouldBlock
            default:
                // Includes -EAGAIN from a Unix-domain listener with a full backlog: unlike TCP's
                // EINPROGRESS nothing is in progress, so the caller retries later.
                emit(operation, rc, into: &completions)
                return .finished
            }
        }
        let pending = sysTakeSocketError(fd)
        if pending != 0 {
            emit(operation, pending > 0 ? -pending : pending, into: &completions)
            return .finished
        }
        // No error: connected, or still in progress if this edge was not the handshake's end.
        let connected = sysPeerConnected(fd)
        if connected == -ENOTCONN { return .wouldBlock }
        emit(operation, connected, into: &completions)
        return .finished
    }

    private func attemptPooledReceive(_ operation: PendingOperation, on fd: CInt, budget: inout Int,
                                      completions: inout [RawCompletion]) -> Outcome {
        let s = operation.submission
        guard let pool = s.pool else { preconditionFailure("pooled receive without a pool") }
        let size = min(s.length > 0 ? s.length : pool.bufferSize, pool.bufferSize)
        while true {
            if budget == 0 { return .budgetSpent }
            guard let id = pool.free.popLast() else {
                // Pool exhausted: end with -ENOBUFS; the loop resubmits when a buffer returns and the
                // resubmission reads at once, so neither the bytes (still in the socket) nor the edge
                // (not needed by a call tried first) is lost.
                emit(operation, -ENOBUFS, into: &completions)
                return .finished
            }
            budget -= 1
            let rc = sysReceiveNonblocking(fd, pool.address(of: id), size)
            if rc > 0 {
                emit(operation, rc, more: s.multishot, bufferID: id, into: &completions)
                if !s.multishot { return .finished }
                if shortReadEndsDrain && Int(rc) < size && isStreamWithoutHangup(fd) { return .wouldBlock }
                continue
            }
            // Not handed out: back to the pool.
            pool.free.append(id)
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            emit(operation, rc, into: &completions)  // 0: end of stream; else -errno
            return .finished
        }
    }

    /// Whether `fd` is a stream socket whose peer has not been seen hanging up (the short-read
    /// rule's precondition). The socket type is asked once per descriptor.
    private func isStreamWithoutHangup(_ fd: CInt) -> Bool {
        let index = Int(fd)
        guard index < descriptors.count else { return false }
        if descriptors[index].hangupSeen { return false }
        if let known = descriptors[index].isStream { return known }
        let stream = sysIsStreamSocket(fd)
        descriptors[index].isStream = stream
        return stream
    }

    private func attemptAccept(_ operation: PendingOperation, on listener: CInt, budget: inout Int,
                               completions: inout [RawCompletion]) -> Outcome {
        let multishot = operation.submission.multishot
        while true {
            if budget == 0 { return .budgetSpent }
            budget -= 1
            let rc = acceptOnce(listener)
            if rc >= 0 {
                if Int(listener) < descriptors.count && descriptors[Int(listener)].acceptPaused {
                    descriptors[Int(listener)].acceptPaused = false
                }
                adopt(rc, completions: &completions)
                emit(operation, rc, more: multishot, into: &completions)
                if !multishot { return .finished }
                continue
            }
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }
            if Self.isTransientAcceptError(-rc) { continue }  // that connection died; try the next
            if rc == -EMFILE || rc == -ENFILE {
                let outcome = shedConnections(listener, budget: &budget)
                emit(operation, rc, more: multishot, into: &completions)
                return multishot ? outcome : .finished
            }
            emit(operation, rc, into: &completions)
            return .finished
        }
    }

    /// Errors accept reports for one connection that died in the backlog (on Linux, pending
    /// network errors of the new socket, per accept(2)): the listener is fine, try the next one.
    private static func isTransientAcceptError(_ code: Int32) -> Bool {
        switch code {
        case ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
            return true
        default:
            #if os(Linux)
            return code == ENONET
            #else
            return false
            #endif
        }
    }

    private func acceptOnce(_ listener: CInt) -> Int32 {
        #if DEBUG
        if faults.acceptFailures != 0 {
            if faults.acceptFailures > 0 { faults.acceptFailures -= 1 }
            return -faults.acceptErrno
        }
        #endif
        return sysAcceptNonblocking(listener)
    }

    /// A new connection's descriptor number may have been used before by a descriptor that was
    /// closed behind the loop's back; its old state is stale. Parked operations there belonged to
    /// a closed descriptor: they complete with -EBADF.
    private func adopt(_ fd: CInt, completions: inout [RawCompletion]) {
        guard Int(fd) < descriptors.count else { return }
        let index = Int(fd)
        let state = descriptors[index]
        guard state.watched || !state.isIdle else { return }
        if !state.isIdle { watchFailed(fd, direction: nil, result: -EBADF, completions: &completions) }
        descriptors[index] = recycledState(descriptors[index])
    }

    /// The EMFILE/ENFILE policy (see the type's documentation): refuse pending connections with a
    /// reset, using the reserve descriptor's slot, or pause the listener when there is none.
    private func shedConnections(_ listener: CInt, budget: inout Int) -> Outcome {
        guard reserveDescriptor >= 0 else {
            pause(listener)
            return .wouldBlock
        }
        sysClose(reserveDescriptor)
        reserveDescriptor = -1
        defer {
            let reserve = sysOpenReserveDescriptor()
            reserveDescriptor = reserve >= 0 ? reserve : -1
        }
        while budget > 0 {
            budget -= 1
            let rc = sysAcceptNonblocking(listener)
            if rc >= 0 {
                sysCloseWithReset(rc)
                continue
            }
            if rc == -EAGAIN || rc == -EWOULDBLOCK { return .wouldBlock }  // backlog empty
            if Self.isTransientAcceptError(-rc) { continue }
            if rc == -EMFILE || rc == -ENFILE {
                // The freed slot went to another thread: wait for the loop to free one.
                pause(listener)
                return .wouldBlock
            }
            // Anything else (ENOBUFS, ENOMEM): the next accept reports it; wait for a new edge
            // rather than retrying at once.
            return .wouldBlock
        }
        return .budgetSpent
    }

    private func pause(_ listener: CInt) {
        reserveSlot(listener)
        descriptors[Int(listener)].acceptPaused = true
        if !pausedListeners.contains(listener) { pausedListeners.append(listener) }
    }

    /// A descriptor slot was freed: refill the reserve first (so the policy keeps working), then
    /// let paused listeners try again on the next wait.
    private func resumePausedListeners() {
        if reserveDescriptor < 0 {
            let reserve = sysOpenReserveDescriptor()
            reserveDescriptor = reserve >= 0 ? reserve : -1
        }
        guard !pausedListeners.isEmpty else { return }
        for listener in pausedListeners
        where Int(listener) < descriptors.count && descriptors[Int(listener)].acceptPaused {
            descriptors[Int(listener)].acceptPaused = false
            if !descriptors[Int(listener)].reads.isEmpty { postpone(listener, .read) }
        }
        pausedListeners.removeAll(keepingCapacity: true)
    }
}
