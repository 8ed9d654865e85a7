#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of threads that run blocking work (file I/O, DNS lookups, compression, a
/// blocking C library) off the event loops and off Swift's cooperative thread pool.
///
///     let pool = try ThreadPool(workers: 4, queueCapacity: 256, whenFull: .wait, name: "blocking")
///     let bytes = try await pool.run { try readWholeFile("/etc/hosts") }
///     await pool.shutdown()
///
/// - Work waits in one FIFO queue of at most `queueCapacity` items; with one worker, items
///   run in submission order. When the queue is full, ``FullQueuePolicy/wait`` suspends the
///   submitting task (not its thread) until a slot frees, in arrival order;
///   ``FullQueuePolicy/reject`` throws ``ThreadsError/Code-swift.struct/queueFull`` at once.
/// - Cancelling the task that called ``run(_:)`` before its work starts removes the work
///   from the queue and throws `CancellationError`; once started, the work runs to the end
///   and its result is returned.
/// - ``shutdown()`` stops new work and returns when everything accepted before it has run;
///   ``shutdown(deadline:)`` cancels what is still waiting at the deadline. Every accepted
///   item ends in exactly one way: it runs, or its `run` throws `CancellationError`.
/// - Dropping the last reference without shutting down starts a graceful shutdown: accepted
///   work still runs, then the workers end (detached).
///
/// - Warning: The closure runs on a pool thread: task-local values and the task's priority
///   and executor do not carry over. Work that blocks forever holds its worker forever;
///   ``shutdown()`` waits for it.
public final class ThreadPool: Sendable {
    /// What ``ThreadPool/run(_:)`` does when the queue is full.
    public struct FullQueuePolicy: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case wait
            case reject
        }

        let kind: Kind

        /// Suspend the submitting task until a slot frees; waiting submissions enter the queue
        /// in arrival order. Cancelling the task while it waits throws `CancellationError`.
        public static var wait: FullQueuePolicy { FullQueuePolicy(kind: .wait) }

        /// Throw ``ThreadsError/Code-swift.struct/queueFull`` at once; the caller sheds load.
        public static var reject: FullQueuePolicy { FullQueuePolicy(kind: .reject) }

        /// `wait` or `reject`.
        public var description: String {
            switch kind {
            case .wait: return "wait"
            case .reject: return "reject"
            }
        }
    }

    /// A snapshot of the pool's counters, consistent at one instant.
    public struct Statistics: Hashable, Sendable {
        /// Whether ``ThreadPool/run(_:)`` accepts work: false once a shutdown has begun.
        public var acceptingWork: Bool
        /// The number of worker threads.
        public var workers: Int
        /// Items accepted and waiting for a worker (at most the queue capacity).
        public var queued: Int
        /// Submissions suspended because the queue was full (``FullQueuePolicy/wait``).
        public var waitingForSpace: Int
        /// Items taken by a worker and not yet accounted as completed.
        public var running: Int
        /// Items whose closure has run to the end, returning or throwing. A worker accounts for
        /// an item just after handing its result to the submitter, so a submitter can see its
        /// result a moment before `completed` includes it; after ``ThreadPool/shutdown()``
        /// returns, the count is final.
        public var completed: Int
        /// Items that never started: cancelled by their task or by a shutdown deadline.
        public var cancelled: Int
        /// Submissions refused: queue full under ``FullQueuePolicy/reject``, or the pool shutting down.
        public var rejected: Int
    }

    let _state: _PoolState

    /// Starts a pool of `workers` threads named `"<name>-<index>"`.
    ///
    /// - Parameters:
    ///   - workers: The number of threads, at least 1.
    ///   - queueCapacity: How many items may wait for a worker, at least 1. Running items do
    ///     not count.
    ///   - whenFull: What ``run(_:)`` does when `queueCapacity` items are waiting.
    ///   - name: The prefix of the worker threads' names (default `strata-pool`). It is
    ///     shortened, if needed, so that the index always fits in ``Thread/maximumNameBytes``:
    ///     on Linux, worker 12 of `"blocking-io-pool"` is named `"blocking-io-12"`, not a
    ///     truncated `"blocking-io-po"`.
    ///   - stackSize: The workers' stack size in bytes; nil uses the platform default.
    /// - Throws: ``ThreadsError``: `invalidArgument` for a count below 1 or a name with NUL;
    ///   the error of ``Thread/spawn(name:stackSize:affinity:_:)`` if a worker cannot start
    ///   (the workers already started are stopped and joined first).
    public init(
        workers: Int,
        queueCapacity: Int,
        whenFull: FullQueuePolicy,
        name: String = "strata-pool",
        stackSize: Int? = nil
    ) throws(ThreadsError) {
        guard workers >= 1 else {
            throw ThreadsError(code: .invalidArgument, message: "ThreadPool: workers must be at least 1, not \(workers)")
        }
        guard queueCapacity >= 1 else {
            throw ThreadsError(
                code: .invalidArgument, message: "ThreadPool: queueCapacity must be at least 1, not \(queueCapacity)")
        }
        guard !name.utf8.contains(0) else {
            throw ThreadsError(code: .invalidArgument, message: "ThreadPool: the name cannot contain NUL")
        }
        let state = _PoolState(workers: workers, capacity: queueCapacity, policy: whenFull)
        var threads: [pthread_t] = []
        threads.reserveCapacity(workers)
        for index in 0..<workers {
            do {
                let started = try _startThread(
                    name: Self.workerName(prefix: name, index: index), stackSize: stackSize, affinity: nil
                ) { [state] in
                    state.workerLoop()
                }
                threads.append(started.handle)
            } catch {
                state.stopWorkersAfterFailedStart(started: index)
                for thread in threads {
                    let rc = joinThread(thread)
                    if rc != 0 { pthreadFailure("pthread_join", rc) }
                }
                throw error
            }
        }
        state.setThreads(threads)
        _state = state
    }

    deinit {
        _state.detachWorkers()
    }

    /// `"<prefix>-<index>"`, with `prefix` shortened (and stripped of trailing separators
    /// after shortening) so that the whole fits in a thread name.
    static func workerName(prefix: String, index: Int) -> String {
        let suffix = "-\(index)"
        let room = Thread.maximumNameBytes - suffix.utf8.count
        var shortened = Thread.truncate(prefix, toBytes: room)
        if shortened.utf8.count < prefix.utf8.count {
            while let last = shortened.last, "-_. ".contains(last) { shortened.removeLast() }
        }
        return shortened + suffix
    }

    /// Runs `body` on a worker thread and returns its result.
    ///
    /// - Parameter body: Blocking work. It runs exactly once, or not at all if it is
    ///   cancelled before it starts.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws; `CancellationError` if the task was cancelled before
    ///   `body` started (while queued, or while waiting for a slot); ``ThreadsError`` with code
    ///   `queueFull` (policy ``FullQueuePolicy/reject``) or `shutDown` (after ``shutdown()``
    ///   began).
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let item = _TypedPoolItem(body)
        let state = _state
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                item.continuation = continuation
                state.submit(item)
            }
        } onCancel: {
            state.cancel(item)
        }
    }

    /// Stops accepting work and returns once every item accepted before the call has run and
    /// the worker threads have ended.
    ///
    /// Later calls of ``run(_:)`` throw ``ThreadsError/Code-swift.struct/shutDown``. Calling
    /// it again, or concurrently, waits for the same shutdown. Cancelling the calling task
    /// does not shorten the wait; use ``shutdown(deadline:)`` for a bound.
    public func shutdown() async {
        _state.beginShutdown()
        await _state.waitUntilStopped()
    }

    /// Stops accepting work, lets queued work run until `deadline`, then cancels what has not
    /// started and returns once the running items have finished and the workers have ended.
    ///
    /// Cancelled items make their ``run(_:)`` throw `CancellationError`. Items already running
    /// at the deadline are not interrupted: the call waits for them. Cancelling the calling
    /// task acts as if the deadline had passed.
    ///
    /// - Parameter deadline: When to stop waiting for queued work.
    /// - Returns: How many items shutdown deadlines cancelled, in total for this pool.
    @discardableResult
    public func shutdown(deadline: ContinuousClock.Instant) async -> Int {
        let state = _state
        state.beginShutdown()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Ends early when the group is cancelled below (nothing left to cancel then)
                // or when the caller's task is cancelled (cancel now).
                try? await Task.sleep(until: deadline, clock: .continuous)
                state.cancelWaitingWork()
            }
            await state.waitUntilStopped()
            group.cancelAll()
        }
        return state.cancelledByDeadline
    }

    /// The pool's counters now.
    public var statistics: Statistics {
        _state.statistics
    }
}

/// One submission, linked into the queue or the list of submissions waiting for a slot.
///
/// Every field is guarded by the pool's mutex, except that the worker that moved the item
/// to `.running` owns it exclusively from then on.
class _PoolItem: @unchecked Sendable {
    enum State {
        /// Created; not yet seen by the pool.
        case pending
        /// Its task was cancelled before it reached the pool.
        case cancelledBeforeSubmission
        /// Suspended until the queue has room (policy `.wait`).
        case waitingForSpace
        /// In the queue.
        case queued
        /// Taken by a worker.
        case running
        /// Resumed: ran, was cancelled, or was refused.
        case finished
    }

    var state = State.pending
    var next: _PoolItem?
    // The list holds each item through its predecessor's `next`; `previous` does not own.
    unowned(unsafe) var previous: _PoolItem?

    // The two methods below are overridden by `_TypedPoolItem<T>`, the only class ever
    // instantiated: the base class exists so that items of any result type share one list
    // without an existential or an extra closure allocation per submission.

    /// Runs the work and resumes the submitter with its result. Called once, by a worker.
    func execute() {
        preconditionFailure("_PoolItem is abstract; only _TypedPoolItem is instantiated")
    }

    /// Resumes the submitter with `error`; the work never runs. Called once, without the lock.
    func resume(throwing error: any Error) {
        preconditionFailure("_PoolItem is abstract; only _TypedPoolItem is instantiated")
    }
}

final class _TypedPoolItem<T: Sendable>: _PoolItem, @unchecked Sendable {
    let body: @Sendable () throws -> T
    // Set by `run` before the item reaches the pool; resumed exactly once (see `_PoolState`).
    // A checked continuation: it costs one small allocation per item, next to a thread
    // wake-up, and its resume runs inside the concurrency runtime, where ThreadSanitizer sees
    // the hand-over (an inlined UnsafeContinuation.resume is reported as a race).
    var continuation: CheckedContinuation<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        self.body = body
    }

    override func execute() {
        let result = Result { try body() }
        continuation!.resume(with: result)
        continuation = nil
    }

    override func resume(throwing error: any Error) {
        continuation!.resume(throwing: error)
        continuation = nil
    }
}

/// A FIFO of items linked through their `next` and `previous` fields: O(1) append, removal
/// of the first item, and removal of any item (for cancellation). No allocation.
struct _ItemList {
    private(set) var first: _PoolItem?
    private unowned(unsafe) var last: _PoolItem?
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ item: _PoolItem) {
        assert(item.next == nil && item.previous == nil)
        item.previous = last
        if let last { last.next = item } else { first = item }
        last = item
        count += 1
    }

    mutating func removeFirst() -> _PoolItem? {
        guard let item = first else { return nil }
        remove(item)
        return item
    }

    mutating func remove(_ item: _PoolItem) {
        if let previous = item.previous { previous.next = item.next } else { first = item.next }
        if let next = item.next { next.previous = item.previous } else { last = item.previous }
        item.next = nil
        item.previous = nil
        count -= 1
    }

    mutating func removeAll() -> [_PoolItem] {
        var items: [_PoolItem] = []
        items.reserveCapacity(count)
        while let item = removeFirst() { items.append(item) }
        return items
    }
}

/// The pool's shared state: the queue, the lifecycle, and the counters, guarded by `mutex`.
final class _PoolState: @unchecked Sendable {
    // @unchecked Sendable: every `var` is read and written only with `mutex` held.
    enum Lifecycle {
        /// Accepting work.
        case running
        /// Refusing new work; workers finish what was accepted, then end.
        case draining
        /// Every worker has left its loop; the first stop waiter joins the threads.
        case joining
        /// The threads are joined (or detached).
        case stopped
    }

    let mutex = Mutex()
    /// Signalled when an item enters the queue or the lifecycle leaves `.running`.
    let workAvailable = ConditionVariable()

    let workerCount: Int
    let capacity: Int
    let policy: ThreadPool.FullQueuePolicy

    var queue = _ItemList()
    var waitingForSpace = _ItemList()
    var lifecycle = Lifecycle.running
    var threads: [pthread_t] = []
    var idleWorkers = 0
    var exitedWorkers = 0
    var runningItems = 0
    var completed = 0
    var cancelled = 0
    var cancelledByDeadlineCount = 0
    var rejected = 0
    /// Callers of `waitUntilStopped`, resumed with whether they must join the threads.
    var stopWaiters: [CheckedContinuation<Bool, Never>] = []
    var joinerAssigned = false

    init(workers: Int, capacity: Int, policy: ThreadPool.FullQueuePolicy) {
        self.workerCount = workers
        self.capacity = capacity
        self.policy = policy
    }

    func setThreads(_ threads: [pthread_t]) {
        mutex.withLock { self.threads = threads }
    }

    var statistics: ThreadPool.Statistics {
        mutex.withLock {
            ThreadPool.Statistics(
                acceptingWork: lifecycle == .running, workers: workerCount, queued: queue.count, waitingForSpace: waitingForSpace.count,
                running: runningItems, completed: completed, cancelled: cancelled, rejected: rejected)
        }
    }

    var cancelledByDeadline: Int {
        mutex.withLock { cancelledByDeadlineCount }
    }

    // MARK: Submission

    /// Accepts, parks or refuses `item`, whose continuation is set.
    func submit(_ item: _PoolItem) {
        let refusal: (any Error)? = mutex.withLock { () -> (any Error)? in
            guard case .pending = item.state else {
                // Cancelled before it got here: it never entered the pool.
                assert(item.state == .cancelledBeforeSubmission)
                item.state = .finished
                cancelled += 1
                return CancellationError()
            }
            guard lifecycle == .running else {
                item.state = .finished
                rejected += 1
                return ThreadsError(
                    code: .shutDown,
                    message: "ThreadPool.run: the pool is shutting down and accepts no more work; submit before shutdown()")
            }
            if queue.count < capacity && waitingForSpace.isEmpty {
                enqueue(item)
                return nil
            }
            switch policy.kind {
            case .reject:
                item.state = .finished
                rejected += 1
                return ThreadsError(
                    code: .queueFull,
                    message: "ThreadPool.run: the queue is full (\(capacity) items waiting); retry later, shed load, "
                        + "or use the .wait policy")
            case .wait:
                item.state = .waitingForSpace
                waitingForSpace.append(item)
                return nil
            }
        }
        if let refusal { item.resume(throwing: refusal) }
    }

    /// Cancels `item` if it has not started; called from its task's cancellation handler.
    func cancel(_ item: _PoolItem) {
        let removed: Bool = mutex.withLock {
            switch item.state {
            case .pending:
                item.state = .cancelledBeforeSubmission
                return false
            case .queued:
                queue.remove(item)
                item.state = .finished
                cancelled += 1
                admitWaitingSubmissions()
                return true
            case .waitingForSpace:
                waitingForSpace.remove(item)
                item.state = .finished
                cancelled += 1
                return true
            case .cancelledBeforeSubmission, .running, .finished:
                return false
            }
        }
        if removed { item.resume(throwing: CancellationError()) }
    }

    /// Puts `item` at the end of the queue and wakes a worker. Requires `mutex`.
    private func enqueue(_ item: _PoolItem) {
        item.state = .queued
        queue.append(item)
        if idleWorkers > 0 { workAvailable.signal() }
    }

    /// Moves waiting submissions into free queue slots, oldest first. Requires `mutex`.
    private func admitWaitingSubmissions() {
        while queue.count < capacity, let item = waitingForSpace.removeFirst() {
            enqueue(item)
        }
    }

    // MARK: Workers

    /// The body of every worker thread: run queued items until the pool drains.
    func workerLoop() {
        var finishedOne = false
        while let item = nextItem(afterFinishing: finishedOne) {
            // The worker owns the item now: `cancel` leaves `.running` items alone.
            item.execute()
            finishedOne = true
        }
    }

    /// Accounts for the item the worker just ran, then takes the next item to run, or
    /// returns nil when the pool is draining and nothing is left.
    private func nextItem(afterFinishing finishedOne: Bool) -> _PoolItem? {
        let (item, joiner) = mutex.withLock { () -> (_PoolItem?, CheckedContinuation<Bool, Never>?) in
            if finishedOne {
                runningItems -= 1
                completed += 1
            }
            while true {
                if let item = queue.removeFirst() {
                    item.state = .running
                    runningItems += 1
                    admitWaitingSubmissions()
                    return (item, nil)
                }
                // The queue is empty, so nobody waits for space (they would have been admitted).
                assert(waitingForSpace.isEmpty)
                if lifecycle != .running {
                    exitedWorkers += 1
                    guard exitedWorkers == workerCount else { return (nil, nil) }
                    // The last worker out hands the joining to the first stop waiter, if any;
                    // otherwise the next `waitUntilStopped` call takes it.
                    lifecycle = .joining
                    guard !stopWaiters.isEmpty else { return (nil, nil) }
                    joinerAssigned = true
                    return (nil, stopWaiters.removeFirst())
                }
                idleWorkers += 1
                workAvailable.wait(on: mutex)
                idleWorkers -= 1
            }
        }
        joiner?.resume(returning: true)
        return item
    }

    /// Stops the workers started so far after a later one failed to start.
    func stopWorkersAfterFailedStart(started: Int) {
        mutex.withLock {
            lifecycle = .draining
            // Count the workers that never started as gone, so the last real one ends the drain.
            exitedWorkers = workerCount - started
            workAvailable.broadcast()
        }
    }

    // MARK: Shutdown

    /// Refuses new work from now on and wakes idle workers so that they drain and end.
    func beginShutdown() {
        mutex.withLock {
            guard lifecycle == .running else { return }
            lifecycle = .draining
            workAvailable.broadcast()
        }
    }

    /// Cancels every item that has not started (queued or waiting for space). Called after
    /// `beginShutdown()`, so no new item can arrive and idle workers are already awake.
    func cancelWaitingWork() {
        let items: [_PoolItem] = mutex.withLock {
            var items = queue.removeAll()
            items += waitingForSpace.removeAll()
            for item in items { item.state = .finished }
            cancelled += items.count
            cancelledByDeadlineCount += items.count
            return items
        }
        for item in items { item.resume(throwing: CancellationError()) }
    }

    /// Returns once every worker has ended and been joined. Requires `beginShutdown()` first.
    ///
    /// Exactly one caller, the joiner, is resumed with `true` once the last worker has left
    /// its loop; it joins the threads (each has only its thread exit left to run, so
    /// `pthread_join` returns promptly), then resumes every other caller.
    func waitUntilStopped() async {
        let isJoiner = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let resumeNow: Bool? = mutex.withLock {
                switch lifecycle {
                case .running:
                    preconditionFailure("_PoolState.waitUntilStopped() called before beginShutdown()")
                case .draining:
                    stopWaiters.append(continuation)
                    return nil
                case .joining:
                    if joinerAssigned {
                        stopWaiters.append(continuation)
                        return nil
                    }
                    joinerAssigned = true
                    return true
                case .stopped:
                    return false
                }
            }
            if let resumeNow { continuation.resume(returning: resumeNow) }
        }
        guard isJoiner else { return }

        let threads: [pthread_t] = mutex.withLock {
            let threads = self.threads
            self.threads = []
            return threads
        }
        for thread in threads {
            let rc = joinThread(thread)
            if rc != 0 { pthreadFailure("pthread_join", rc) }
        }
        let waiters: [CheckedContinuation<Bool, Never>] = mutex.withLock {
            lifecycle = .stopped
            let waiters = stopWaiters
            stopWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Called when the pool is dropped: nobody can be waiting for a stop any more (waiters
    /// hold the pool), so drain in the background and detach the threads nobody will join.
    func detachWorkers() {
        let toDetach: [pthread_t] = mutex.withLock {
            if lifecycle == .running {
                lifecycle = .draining
                workAvailable.broadcast()
            }
            let threads = self.threads
            self.threads = []
            return threads
        }
        for thread in toDetach {
            let rc = pthread_detach(thread)
            if rc != 0 { pthreadFailure("pthread_detach", rc) }
        }
    }
}
