// Loop: one thread, one StrataEvents.EventLoop, and a Swift Concurrency executor over both.
//
// Many tasks run on one loop thread (M:1). A task started with `Task(executorPreference: loop)`
// or isolated to an actor whose `unownedExecutor` is the loop runs its jobs here, and resumes
// here after every operation: the continuation of an operation is resumed by the loop thread,
// which enqueues the task's next job on its own local queue — no global-executor hop.
//
// An iteration: run the jobs that are queued (bounded), move cross-thread work in, then one
// EventLoop iteration (submit, wait — zero if jobs are waiting —, reap, fire timers) whose
// completions resume the suspended tasks.
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

/// An event loop thread that is also a Swift Concurrency executor.
///
/// ```swift
/// let loop = try Loop.start(name: "io")
/// let task = Task(executorPreference: loop) {
///     try await loop.sleep(for: .milliseconds(10))   // runs on the loop thread
/// }
/// try await task.value
/// loop.stop()
/// ```
///
/// Tasks that prefer the loop, and actors whose `unownedExecutor` is
/// ``asUnownedSerialExecutor()``, run on the loop's thread. The loop's I/O (``TCPListener``,
/// ``TCPConnection``, ``sleep(for:)``) may be awaited from any task: the operation is
/// submitted on the loop thread either way, and a task running elsewhere is resumed on its
/// own executor.
///
/// Thread safety: every public member may be used from any thread.
public final class Loop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // @unchecked: the members below the "loop thread only" mark are touched only by the loop's
    // thread (checked with `precondition(isCurrent)` where it is cheap enough); everything
    // shared is a `Mutex` or an `Atomic`.

    /// The loop's name (also its thread's name).
    public let name: String
    /// The backend the loop's EventLoop runs on.
    public let backendKind: BackendKind
    /// The backend's own description (flags, features), for logs.
    public let backendSummary: String

    let waker: Waker
    let log: (@Sendable (String) -> Void)?
    private let threadID: pthread_t
    private let remote = LockedValue<RemoteQueue>(RemoteQueue())
    private let sleeping = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    /// The loop thread has ended: work handed to it now is dropped (nothing would run it,
    /// and a queued closure that captures the loop would keep it alive forever).
    private let ended = Atomic<Bool>(false)
    private let finishedCondition = ConditionVariable()
    private let finishedLock = StrataThreads.Mutex()
    /// Guarded by `finishedLock`.
    private var finished = false
    private let tracked = LockedValue<TaskRegistry>(TaskRegistry())

    // MARK: loop thread only
    // `@exclusivity(unchecked)`: touched only on the loop thread, and no access to them is
    // held across a call that touches them again (the dynamic checks cost ~5 % of a server).
    @exclusivity(unchecked) var events: EventLoop
    @exclusivity(unchecked) private var local = JobQueue()
    @exclusivity(unchecked) var waiters = WaiterTable()
    /// A buffer pool for multishot receives (``TCPConnection/reads(bufferedChunks:)``), made lazily.
    var readPool: BufferPool?
    /// Jobs run per iteration before the loop looks at I/O again (fairness between ready tasks
    /// and completions).
    static let jobBudget = 512

    /// Work another thread hands to the loop.
    struct RemoteQueue {
        var jobs: [UnownedJob] = []
        var commands: [@Sendable () -> Void] = []
        var isEmpty: Bool { jobs.isEmpty && commands.isEmpty }
    }

    private init(name: String, events: EventLoop, threadID: pthread_t, log: (@Sendable (String) -> Void)?) {
        self.name = name
        self.events = events
        self.backendKind = events.backendKind
        self.backendSummary = events.backendSummary
        self.waker = events.waker
        self.threadID = threadID
        self.log = log
    }

    /// Starts a loop on a new thread and returns once it runs.
    ///
    /// - Parameters:
    ///   - name: The thread's name (`top -H` shows it).
    ///   - configuration: The EventLoop's configuration (backend choice, ring size); by
    ///     default the backend named by `STRATA_BACKEND`, else automatic.
    ///   - affinity: CPUs the thread may run on (Linux), or nil.
    /// - Throws: ``SchedError`` naming the cause: the backend could not start (for example
    ///   io_uring asked for by name on a kernel with `io_uring_disabled = 2`), or the thread
    ///   could not be created or pinned.
    public static func start(name: String = "strata-loop", configuration: EventLoop.Configuration? = nil,
                             affinity: Set<Int>? = nil) throws(SchedError) -> Loop {
        let config: EventLoop.Configuration
        do { config = try configuration ?? EventLoop.Configuration.fromEnvironment() } catch {
            throw SchedError(.invalidConfiguration, "STRATA_BACKEND: \(error)")
        }
        let handoff = Handoff()
        func spawnThread() throws(SchedError) -> StrataThreads.Thread {
            do {
                return try StrataThreads.Thread.spawn(name: name, affinity: affinity) {
                    // The EventLoop is created on its own thread: io_uring with SINGLE_ISSUER
                    // accepts submissions only from the thread that created the ring.
                    let events: EventLoop
                    do { events = try EventLoop(configuration: config) } catch {
                        handoff.fail(SchedError(.backendUnavailable, "loop \(name): \(error)"))
                        return
                    }
                    let loop = Loop(name: name, events: events, threadID: pthread_self(), log: config.log)
                    handoff.succeed(loop)
                    loop.runUntilStopped()
                }
            } catch {
                throw SchedError(.threadFailed, "loop \(name): \(error)")
            }
        }
        let box = ThreadBox(try spawnThread())
        switch handoff.wait() {
        case .success(let loop):
            loop.joinHandle.withLock { $0 = box }
            return loop
        case .failure(let error):
            box.join()
            throw error
        }
    }

    private let joinHandle = LockedValue<ThreadBox?>(nil)

    /// Whether the loop's thread has ended (after ``stop()``).
    public var hasStopped: Bool { ended.load(ordering: .sequentiallyConsistent) }

    /// Whether the caller runs on this loop's thread.
    @inline(__always)
    public var isCurrent: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    // MARK: - Executor

    /// Runs `job` on the loop thread. From the loop thread it is a push onto a local queue;
    /// from another thread it goes through a locked queue, and the loop is woken only if it
    /// is waiting in the kernel.
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        if isCurrent {
            local.push(unowned)
        } else {
            remote.withLock { $0.jobs.append(unowned) }
            wakeIfSleeping()
        }
    }

    /// This loop as a serial executor.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// This loop as a task executor (for `Task(executorPreference:)`).
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Traps unless the caller runs on the loop thread: makes `assumeIsolated` and
    /// `preconditionIsolated` on actors pinned to this loop honest.
    public func checkIsolated() {
        precondition(isCurrent, "expected to run on loop '\(name)', but running on another thread")
    }

    /// Whether the current thread is this loop's (used by the runtime for isolation checks).
    public func isIsolatingCurrentContext() -> Bool? { isCurrent }

    /// Runs `body` on the loop thread: now if the caller is on it, else as soon as the loop
    /// gets to it (in order with other cross-thread work).
    ///
    /// After the loop has stopped, `body` is dropped (``hasStopped``).
    public func execute(_ body: @escaping @Sendable () -> Void) {
        if isCurrent {
            body()
        } else if ended.load(ordering: .sequentiallyConsistent) {
            return
        } else {
            remote.withLock { $0.commands.append(body) }
            wakeIfSleeping()
        }
    }

    /// `execute` for closures that are only ever run on the loop thread (not Sendable).
    func onLoop(_ body: @escaping () -> Void) {
        if isCurrent {
            body()
        } else if ended.load(ordering: .sequentiallyConsistent) {
            return
        } else {
            let box = UncheckedSendable(body)
            remote.withLock { $0.commands.append { box.value() } }
            wakeIfSleeping()
        }
    }

    @inline(__always)
    private func wakeIfSleeping() {
        if sleeping.load(ordering: .sequentiallyConsistent) { waker.wake() }
    }

    // MARK: - Running

    private var stopPasses = 0

    private func runUntilStopped() {
        defer {
            // Tasks the registry still holds (abandoned at the stop) keep closures that
            // reference this loop: drop them, and the wait table, so the loop can be freed.
            tracked.withLock { $0 = TaskRegistry() }
            waiters = WaiterTable()
            // Cancel and reap what is still in the kernel now, on the issuing thread (io_uring
            // SINGLE_ISSUER): the EventLoop itself may be freed on another thread.
            if !events.tearDown() {
                log?("strata.sched: loop \(name): operations still in the kernel at stop; their buffers stay allocated")
            }
            ended.store(true, ordering: .sequentiallyConsistent)
            remote.withLock { $0 = RemoteQueue() }
            finishedLock.withLock {
                finished = true
                finishedCondition.broadcast()
            }
        }
        while true {
            runLocalJobs()
            let hasRemote = moveRemoteWork()
            if stopRequested.load(ordering: .acquiring) && local.isEmpty && !hasRemote {
                // Stopping: every wait still pending ends with CancellationError, and the tasks
                // that resume run; a few passes let them finish (one that keeps starting new
                // operations is abandoned after the last).
                if waiters.live == 0 || stopPasses >= 64 { break }
                stopPasses += 1
                failAllWaiters()
                continue
            }
            var timeout: Duration? = nil
            if !local.isEmpty || hasRemote {
                timeout = .zero
            } else {
                sleeping.store(true, ordering: .sequentiallyConsistent)
                atomicMemoryFence(ordering: .sequentiallyConsistent)
                if !remote.withLock({ $0.isEmpty }) || stopRequested.load(ordering: .acquiring) {
                    timeout = .zero
                }
            }
            do {
                try events.runOnce(timeout: timeout) { completion in self.dispatch(completion) }
            } catch {
                log?("strata.sched: loop \(name): the event loop failed: \(error); stopping")
                sleeping.store(false, ordering: .relaxed)
                failAllWaiters()
                break
            }
            sleeping.store(false, ordering: .relaxed)
        }
    }

    private func runLocalJobs() {
        var budget = Self.jobBudget
        let serial = asUnownedSerialExecutor()
        let taskExecutor = asUnownedTaskExecutor()
        while budget > 0, let job = local.pop() {
            budget -= 1
            job.runSynchronously(isolatedTo: serial, taskExecutor: taskExecutor)
        }
    }

    /// Moves jobs from other threads to the local queue and runs their commands. Returns
    /// whether anything was moved.
    private func moveRemoteWork() -> Bool {
        var work = remote.withLock { queue -> RemoteQueue in
            if queue.isEmpty { return RemoteQueue() }
            let taken = queue
            queue = RemoteQueue()
            return taken
        }
        if work.isEmpty { return false }
        for job in work.jobs { local.push(job) }
        for command in work.commands { command() }
        work.jobs.removeAll()
        return true
    }

    /// Stops the loop and waits for its thread to end (unless called from the loop thread).
    ///
    /// Jobs already queued run; then every wait still pending (reads, accepts, sleeps) ends
    /// with `CancellationError` and the tasks that resume run to their next suspension; then
    /// the thread ends. This is the hard stop: to let tasks finish first, use
    /// ``LoopGroup/shutdownGracefully(timeout:)``.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        waker.wake()
        guard !isCurrent else { return }
        finishedLock.withLock {
            while !finished { finishedCondition.wait(on: finishedLock) }
        }
        if let box = joinHandle.withLock({ $0.take() }) { box.join() }
    }

    // MARK: - Tracked tasks

    /// Starts `body` as a task on this loop and tracks it, so a graceful shutdown can wait
    /// for it and cancel it at its deadline.
    @discardableResult
    public func spawn(_ body: sending @escaping @isolated(any) () async -> Void) -> Task<Void, Never> {
        let id = tracked.withLock { registry -> UInt64 in
            registry.next += 1
            return registry.next
        }
        let task = Task(executorPreference: self) { [self] in
            await body()
            tracked.withLock { registry in
                if registry.tasks.removeValue(forKey: id) == nil { registry.finishedEarly.insert(id) }
            }
        }
        tracked.withLock { registry in
            // The task may have finished already (a body that never suspends).
            if registry.finishedEarly.remove(id) == nil { registry.tasks[id] = task }
        }
        return task
    }

    /// The number of tracked tasks still running.
    public var trackedTaskCount: Int { tracked.withLock { $0.tasks.count } }

    /// Cancels every tracked task; returns how many were cancelled.
    @discardableResult
    public func cancelTrackedTasks() -> Int {
        let tasks = tracked.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
        return tasks.count
    }

    struct TaskRegistry {
        var next: UInt64 = 0
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var finishedEarly: Set<UInt64> = []
    }

    // MARK: - Operations and waits (loop thread)

    /// Delivers one completion to the waiter its token names.
    private func dispatch(_ completion: Completion) {
        let token = completion.token
        if token & WaiterTable.deadlineBit != 0 {
            deadlineFired(token & ~WaiterTable.deadlineBit, completion)
            return
        }
        guard let slot = waiters.slot(for: token) else { return }  // stale: its waiter is gone
        if let handler = waiters.entries[slot].handler {
            if !completion.hasMore { waiters.release(slot) }
            handler(completion)
            return
        }
        if completion.hasMore { return }
        finish(slot, with: completion)
    }

    /// Resumes the waiter in `slot` with `completion` and frees the slot.
    private func finish(_ slot: Int, with completion: Completion) {
        var result = completion
        if waiters.entries[slot].timedOut && completion.result == -ECANCELED {
            result = Completion(token: completion.token, operation: completion.operation, kind: completion.kind,
                                result: -ETIMEDOUT, flags: completion.flags, bufferID: completion.bufferID)
        }
        if let timer = waiters.entries[slot].deadlineTimer { _ = events.cancel(timer) }
        let continuation = waiters.entries[slot].continuation
        waiters.release(slot)
        continuation?.resume(returning: result)
    }

    private func deadlineFired(_ token: UInt64, _ completion: Completion) {
        guard completion.result == -ETIME, let slot = waiters.slot(for: token) else { return }
        waiters.entries[slot].deadlineTimer = nil
        waiters.entries[slot].timedOut = true
        cancelNow(token)
    }

    /// Cancels the wait or operation behind `token` (loop thread).
    func cancelNow(_ token: UInt64) {
        guard let slot = waiters.slot(for: token) else { return }
        if waiters.entries[slot].continuation == nil && waiters.entries[slot].handler == nil {
            waiters.entries[slot].cancelled = true  // not suspended yet: the start sees it
            return
        }
        if let op = waiters.entries[slot].operation {
            _ = events.cancel(op)  // its final completion (-ECANCELED, or its result) follows
        } else if waiters.entries[slot].continuation != nil {
            // A parked wait (no I/O behind it): ends now.
            waiters.entries[slot].onCancel?()
            finish(slot, with: Self.synthetic(token, -ECANCELED))
        }
    }

    /// Cancels `token` from any thread.
    func requestCancel(_ token: UInt64) {
        if isCurrent { cancelNow(token) } else { onLoop { [self] in cancelNow(token) } }
    }

    static func synthetic(_ token: UInt64, _ result: Int32) -> Completion {
        Completion(token: token, operation: .none, kind: .timeout, result: result, flags: [], bufferID: 0)
    }

    /// Sets what runs (on the loop thread) when the parked wait `token` is cancelled.
    func setOnCancel(_ token: UInt64, _ body: @escaping () -> Void) {
        if let slot = waiters.slot(for: token) { waiters.entries[slot].onCancel = body }
    }

    /// Resumes a parked wait (see ``suspend(_:)``) with `result`, if it is still waiting.
    func wakeParked(_ token: UInt64, result: Int32) {
        guard let slot = waiters.slot(for: token), waiters.entries[slot].continuation != nil else { return }
        finish(slot, with: Self.synthetic(token, result))
    }

    /// Suspends the calling task until the loop finishes the wait that `start` begins on the
    /// loop thread with the wait's token. `start` returns the EventLoop operation it
    /// submitted (cancelled when the task is), or nil for a parked wait that something else
    /// ends with ``wakeParked(_:result:)`` (ended with -ECANCELED when the task is cancelled;
    /// `onCancel` of the entry runs first). A deadline set with ``withDeadline(_:_:)`` arms a
    /// timer: when it fires the wait ends with -ETIMEDOUT.
    ///
    /// With `cancellable: false` (closing) neither task cancellation nor deadlines end it.
    func suspend(cancellable: Bool = true, _ start: @escaping (UInt64) -> OperationID?) async -> Completion {
        if !isCurrent {
            // A task running elsewhere: hop onto the loop for the operation (the task prefers
            // this executor while it lasts), so the wait begins and ends on the loop thread
            // and the task returns to its own executor afterwards. A caller isolated to an
            // actor stays on that actor; the cross-thread path below handles it.
            let sendable = UncheckedSendable(start)
            let hopped: Completion? = await withTaskExecutorPreference(self) {
                guard self.isCurrent else { return nil }
                return await self.suspend(cancellable: cancellable, sendable.value)
            }
            if let hopped { return hopped }
        }
        if !cancellable {
            if isCurrent {
                let token = waiters.allocate()
                return await withUnsafeContinuation { begin(token, $0, nil, start) }
            }
            return await withUnsafeContinuation { (continuation: UnsafeContinuation<Completion, Never>) in
                let sendable = UncheckedSendable((continuation, start))
                execute { [self] in begin(waiters.allocate(), sendable.value.0, nil, sendable.value.1) }
            }
        }
        let deadline = Deadline.current
        if isCurrent {
            let token = waiters.allocate()
            return await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Completion, Never>) in
                    begin(token, continuation, deadline, start)
                }
            } onCancel: {
                self.requestCancel(token)
            }
        }
        let box = CrossThreadToken()
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Completion, Never>) in
                let sendable = UncheckedSendable((continuation, start))
                execute { [self] in
                    let token = waiters.allocate()
                    if !box.publish(token) { waiters.entries[waiters.slot(for: token)!].cancelled = true }
                    begin(token, sendable.value.0, deadline, sendable.value.1)
                }
            }
        } onCancel: {
            if let token = box.cancel() { self.requestCancel(token) }
        }
    }

    private func begin(_ token: UInt64, _ continuation: UnsafeContinuation<Completion, Never>,
                       _ deadline: MonotonicInstant?, _ start: (UInt64) -> OperationID?) {
        guard let slot = waiters.slot(for: token) else { preconditionFailure("waiter vanished before it began") }
        waiters.entries[slot].continuation = continuation
        if waiters.entries[slot].cancelled {
            finish(slot, with: Self.synthetic(token, -ECANCELED))
            return
        }
        if let deadline, deadline <= .now {
            finish(slot, with: Self.synthetic(token, -ETIMEDOUT))
            return
        }
        let op = start(token)
        // `start` may have finished the wait already (a parked wait satisfied at once).
        guard let again = waiters.slot(for: token), again == slot else { return }
        waiters.entries[slot].operation = op
        if let deadline {
            waiters.entries[slot].deadlineTimer = events.timeout(at: deadline, token: token | WaiterTable.deadlineBit)
        }
    }

    /// Starts a multishot operation whose completions go to `handler` until the final one.
    /// Returns the token (cancel it with ``cancelNow(_:)``).
    @discardableResult
    func startStream(_ handler: @escaping (Completion) -> Void, _ start: (UInt64) -> OperationID) -> UInt64 {
        let token = waiters.allocate()
        let slot = waiters.slot(for: token)!
        waiters.entries[slot].handler = handler
        waiters.entries[slot].operation = start(token)
        return token
    }

    /// Starts a one-shot operation nobody waits for (closing a descriptor from a deinit).
    func fireAndForget(_ start: (UInt64) -> OperationID) {
        let token = waiters.allocate()
        let slot = waiters.slot(for: token)!
        waiters.entries[slot].handler = { _ in }
        waiters.entries[slot].operation = start(token)
    }

    private func failAllWaiters() {
        for slot in waiters.entries.indices where waiters.entries[slot].isLive {
            let token = waiters.token(slot)
            if let handler = waiters.entries[slot].handler {
                waiters.release(slot)
                handler(Self.synthetic(token, -ECANCELED))
            } else if waiters.entries[slot].continuation != nil {
                finish(slot, with: Self.synthetic(token, -ECANCELED))
            }
        }
    }

    /// The loop's shared receive pool (1024 buffers of 16 KiB, shared by every connection of
    /// the loop: a buffer is taken only while received bytes wait to be consumed), created on
    /// first use.
    func receivePool() throws(SchedError) -> BufferPool {
        if let readPool { return readPool }
        do {
            let pool = try events.makeBufferPool(count: 1024, size: 16 * 1024)
            readPool = pool
            return pool
        } catch {
            throw SchedError(.resourceExhausted, "loop \(name): cannot create its receive buffer pool: \(error)")
        }
    }

    /// Submits a callback-level operation on the loop's `EventLoop`, for code that cannot
    /// afford a suspension per operation (DESIGN §5): `start` submits it with the token it is
    /// given, and `onCompletion` receives each of its completions (several for a multishot
    /// operation; the last has no ``Completion/hasMore``), on the loop thread.
    ///
    /// ```swift
    /// loop.execute {
    ///     loop.submit({ events, token in events.accept(fd, multishot: true, token: token) }) { completion in
    ///         // a new connection's descriptor, or -errno
    ///     }
    /// }
    /// ```
    ///
    /// - Returns: the token, which ``cancel(token:)`` accepts.
    /// - Precondition: called on the loop thread.
    @discardableResult
    public func submit(_ start: (EventLoop, UInt64) -> OperationID, onCompletion: @escaping (Completion) -> Void) -> UInt64 {
        precondition(isCurrent, "Loop.submit called off loop '\(name)': call it from a task on the loop or from execute(_:)")
        return startStream(onCompletion) { token in start(events, token) }
    }

    /// Cancels an operation submitted with ``submit(_:onCompletion:)`` (its final completion
    /// follows, usually with -ECANCELED). Any thread.
    public func cancel(token: UInt64) {
        requestCancel(token)
    }

    // MARK: - Timers

    /// Suspends the calling task for `duration`, on the loop's timers (`Task.sleep` does not
    /// use a custom executor's clock).
    ///
    /// - Throws: `CancellationError` when the task is cancelled first; ``SchedError`` with
    ///   ``SchedError/Code/timedOut`` when an enclosing ``withDeadline(_:_:)`` ends first.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: MonotonicInstant.now.advanced(by: duration))
    }

    /// Suspends the calling task until `deadline` (monotonic clock).
    public func sleep(until deadline: MonotonicInstant) async throws {
        let c = await suspend { [events] token in events.timeout(at: deadline, token: token) }
        switch c.result {
        case -ETIME, 0: return
        case -ECANCELED: throw CancellationError()
        case -ETIMEDOUT: throw SchedError.deadlineExceeded("sleep")
        default: throw SchedError(.systemCall, "sleep: timer failed: \(Errno(rawValue: -c.result))")
        }
    }
}

// MARK: - Support types

/// A FIFO of jobs for the loop thread (a ring buffer that grows; no allocation once warm).
struct JobQueue {
    private var storage: [UnownedJob?] = Array(repeating: nil, count: 256)
    private var head = 0
    private var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func push(_ job: UnownedJob) {
        if count == storage.count {
            var grown: [UnownedJob?] = Array(repeating: nil, count: storage.count * 2)
            for i in 0..<count { grown[i] = storage[(head + i) & (storage.count - 1)] }
            storage = grown
            head = 0
        }
        storage[(head + count) & (storage.count - 1)] = job
        count += 1
    }

    mutating func pop() -> UnownedJob? {
        guard count > 0 else { return nil }
        let job = storage[head]
        storage[head] = nil
        head = (head + 1) & (storage.count - 1)
        count -= 1
        return job
    }
}

/// The loop's suspended waits, by token (`generation << 32 | slot`).
struct WaiterTable {
    struct Entry {
        var generation: UInt32 = 0
        var isLive = false
        var continuation: UnsafeContinuation<Completion, Never>?
        var handler: ((Completion) -> Void)?
        var operation: OperationID?
        var cancelled = false
        var timedOut = false
        var deadlineTimer: OperationID?
        var onCancel: (() -> Void)?
    }

    /// Marks a token as the deadline timer of the waiter it names.
    static let deadlineBit: UInt64 = 1 << 63
    var entries: [Entry] = []
    private var free: [Int] = []
    private(set) var live = 0

    mutating func allocate() -> UInt64 {
        let slot: Int
        if let f = free.popLast() {
            slot = f
        } else {
            slot = entries.count
            entries.append(Entry())
        }
        entries[slot].isLive = true
        live += 1
        return token(slot)
    }

    func token(_ slot: Int) -> UInt64 { UInt64(entries[slot].generation) << 32 | UInt64(slot) }

    /// The slot of a live waiter with this token, or nil (finished, or the slot was reused).
    @inline(__always)
    func slot(for token: UInt64) -> Int? {
        let slot = Int(token & 0xFFFF_FFFF)
        guard slot < entries.count, entries[slot].isLive,
              entries[slot].generation == UInt32(truncatingIfNeeded: (token >> 32) & 0x7FFF_FFFF) else { return nil }
        return slot
    }

    mutating func release(_ slot: Int) {
        let next = (entries[slot].generation &+ 1) & 0x7FFF_FFFF
        entries[slot] = Entry()
        entries[slot].generation = next
        free.append(slot)
        live -= 1
    }
}

/// The token of a wait begun on the loop thread for a task running elsewhere, and whether
/// the task was cancelled before the token existed.
final class CrossThreadToken: Sendable {
    private let state = LockedValue<(token: UInt64?, cancelled: Bool)>((nil, false))

    /// Records the token; false if the task was cancelled already (the wait must end at once).
    func publish(_ token: UInt64) -> Bool {
        state.withLock { s in
            s.token = token
            return !s.cancelled
        }
    }

    /// Marks the task cancelled; returns the token if the wait has begun.
    func cancel() -> UInt64? {
        state.withLock { s in
            s.cancelled = true
            return s.token
        }
    }
}

/// Hands the started loop (or the reason it could not start) to `Loop.start`'s caller.
private final class Handoff: @unchecked Sendable {
    // @unchecked: `result` is written once under `lock` before `condition` is signalled.
    private let lock = StrataThreads.Mutex()
    private let condition = ConditionVariable()
    private var result: Result<Loop, SchedError>?

    func succeed(_ loop: Loop) { set(.success(loop)) }
    func fail(_ error: SchedError) { set(.failure(error)) }

    private func set(_ value: Result<Loop, SchedError>) {
        lock.withLock {
            result = value
            condition.broadcast()
        }
    }

    func wait() -> Result<Loop, SchedError> {
        lock.withLock {
            while result == nil { condition.wait(on: lock) }
            return result!
        }
    }
}

/// Holds the loop thread's join handle (a noncopyable value) in a copyable box.
final class ThreadBox: @unchecked Sendable {
    // @unchecked: taken and joined once, by `Loop.stop()`.
    private var thread: StrataThreads.Thread?
    init(_ thread: consuming StrataThreads.Thread) { self.thread = consume thread }
    func join() { if let t = thread.take() { try? t.join() } }
}

/// Carries a value the compiler cannot prove Sendable to the loop thread, where alone it is used.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
