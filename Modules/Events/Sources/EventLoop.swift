#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets

/// A completion-based event loop: submit operations, then run iterations that reap their
/// completions (DESIGN §4).
///
/// One iteration (``runOnce(timeout:_:)``) submits what was queued, waits until the next
/// timer or the given timeout for at least one completion or a wakeup, reaps every completion
/// the kernel has, fires expired timers, and then calls the handler for each completion in
/// order. Handlers may submit more operations; those are reaped by a later iteration, so
/// handlers never recurse.
///
/// ```swift
/// let loop = try EventLoop(configuration: .init(backend: .automatic))
/// let listener = try Socket(family: .ipv4, kind: .stream)
/// try listener.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
/// try listener.listen(backlog: 128)
/// loop.accept(listener.descriptor, multishot: true, token: 1)
/// try loop.runOnce(timeout: .seconds(1)) { completion in
///     print(completion)          // accept op#0.0 token 1: 7 (more)
/// }
/// ```
///
/// Ownership: an ``IOBuffer`` submitted to an operation belongs to the loop until the
/// operation's final completion; a ``BufferPool`` buffer belongs to the caller from the
/// completion that names it until ``BufferPool/release(_:)``. Closing a descriptor through
/// ``close(_:token:)`` first cancels everything in flight on it, and its completion is the
/// last one for that descriptor, so the descriptor number is never reused under a pending
/// operation. Close every descriptor you used with a loop through ``close(_:token:)``, not
/// with `close(2)` (or a `Socket`'s `deinit`): the readiness backends keep per-descriptor
/// state that a close behind the loop's back would leave stale for the next socket that
/// gets the same number.
///
/// - Warning: Not thread-safe. Create, submit to and run a loop on one thread; other threads
///   may only call ``waker``'s ``Waker/wake()``.
public final class EventLoop {
    /// How to build a loop.
    public struct Configuration: Sendable {
        /// Which backend; default: `STRATA_BACKEND`, else automatic.
        public var backend: BackendChoice
        /// io_uring submission queue entries (the completion queue gets twice as many).
        /// Rounded up to a power of two; 1...32768.
        public var ringEntries: Int
        /// Completions reaped per wait at most; more wait for the next iteration.
        public var completionBatch: Int
        /// Where the loop reports choices it made (the backend `auto` picked, fallbacks).
        public var log: (@Sendable (String) -> Void)?

        /// Creates a configuration.
        public init(backend: BackendChoice = .automatic, ringEntries: Int = 4096, completionBatch: Int = 1024,
                    log: (@Sendable (String) -> Void)? = nil) {
            self.backend = backend
            self.ringEntries = ringEntries
            self.completionBatch = completionBatch
            self.log = log
        }

        /// The default configuration with the backend named by `STRATA_BACKEND` (auto if unset).
        public static func fromEnvironment(log: (@Sendable (String) -> Void)? = nil) throws(EventsError) -> Configuration {
            Configuration(backend: try BackendChoice.fromEnvironment(), log: log)
        }

        func validated() throws(EventsError) -> Configuration {
            guard (1...32768).contains(ringEntries) else {
                throw EventsError(.invalidConfiguration,
                                  "ringEntries = \(ringEntries) is out of range: use 1...32768 (4096 is the default)")
            }
            guard completionBatch >= 1 else {
                throw EventsError(.invalidConfiguration, "completionBatch = \(completionBatch) must be at least 1")
            }
            return self
        }
    }

    struct Record {
        /// Starts at 1 and skips 0 on wrap-around, so `OperationID.none` (raw value 0) never matches.
        var generation: UInt32 = 1
        var active = false
        var kind: OperationKind = .timeout
        var token: UInt64 = 0
        var fd: CInt = -1
        var multishot = false
        /// sendfile's file descriptor, tracked like `fd` so closing it waits for the sendfile.
        var fileFD: CInt = -1
        var cancelled = false
        var parked = false
        var buffer: IOBuffer?
        var buffers: [IOBuffer]?
        var pool: BufferPool?
        var storage: UnsafeMutableRawPointer?
        var timer: TimerID?
        var submission: Submission?
        /// The pool's release count when a pooled receive was (re)submitted.
        var releaseMark: UInt64 = 0
        /// Links of the per-descriptor list (``fdHead``) of cancellable operations: slots,
        /// -1 for none. `onList` says whether the record is on its descriptor's list.
        var previousOnFD: Int32 = -1
        var nextOnFD: Int32 = -1
        var onList = false
    }

    let backend: any EventBackend
    let configuration: Configuration
    // `@exclusivity(unchecked)`: the loop is confined to one thread and no method holds an
    // inout access to these arrays across a call that touches them again, so the dynamic
    // exclusivity checks Swift inserts for class properties (swift_beginAccess, about 3.5 %
    // of an echo server's CPU in a profile) buy nothing here.
    @exclusivity(unchecked) var records: [Record] = []
    @exclusivity(unchecked) var freeSlots: [UInt32] = []
    /// Operations in flight per descriptor (index = fd), for close ordering.
    @exclusivity(unchecked) var inflight: [UInt32] = []
    /// The first record (slot) of each descriptor's list of cancellable operations (every
    /// kind but close and timeout), -1 for none: `cancelAll(on:)` walks it instead of the
    /// whole table, so closing n connections costs O(n), not O(n²).
    @exclusivity(unchecked) var fdHead: [Int32] = []
    /// Close operations waiting for their descriptor's operations to finish: fd → userData.
    var pendingCloses: [CInt: UInt64] = [:]
    /// Descriptors from `close(_:token:)` until the close's completion is reaped: operations
    /// submitted on them meanwhile fail with `-ECANCELED` and never reach the kernel, even
    /// after `close(2)` ran and the number may already belong to someone else.
    var closing: Set<CInt> = []
    /// Close operations released but not yet delivered: operation → descriptor. The descriptor
    /// leaves `closing` when its close completion reaches the handler, not before: handlers of
    /// the same batch that run earlier must still see it as closing.
    var closesAwaitingDelivery: [UInt64: CInt] = [:]
    /// Pooled receives paused for lack of buffers, per pool group.
    var parked: [UInt16: [UInt64]] = [:]
    var pools: [UInt16: BufferPool] = [:]
    var nextGroupID: UInt16 = 0
    var timers = TimerQueue()
    @exclusivity(unchecked) var raw: [RawCompletion] = []
    @exclusivity(unchecked) var ready: [Completion] = []
    var delivering: [Completion] = []

    /// The backend this loop runs on.
    public var backendKind: BackendKind { backend.kind }
    /// What the backend set up (flags, features), for logs.
    public var backendSummary: String { backend.summary }
    /// Wakes this loop from another thread.
    public var waker: Waker { backend.waker }
    /// Sendfiles in flight: `close` looks for one reading from the closed file only when
    /// there is any, instead of scanning the operation table on every close.
    var sendfilesInFlight = 0
    /// The number of operations submitted and not yet finally completed (timeouts included).
    public private(set) var operationsInFlight = 0

    /// Opens a loop on the configured backend.
    ///
    /// - Throws: ``EventsError`` with ``EventsError/Code/backendUnavailable`` when a backend
    ///   asked for by name cannot run here (the message says why: for example
    ///   `io_uring_disabled = 2`); `auto` falls back and logs instead.
    public init(configuration: Configuration = Configuration()) throws(EventsError) {
        let config = try configuration.validated()
        self.configuration = config
        backend = try openBackend(config.backend, configuration: config)
        raw.reserveCapacity(config.completionBatch)
        ready.reserveCapacity(config.completionBatch)
        delivering.reserveCapacity(config.completionBatch)
        if case .automatic = config.backend {
            config.log?("strata.events: backend auto → \(backend.kind): \(backend.summary)")
        }
    }

    /// Cancels and reaps every operation still in the kernel, for good: the loop is unusable
    /// afterwards. `deinit` does the same, but with io_uring's SINGLE_ISSUER only the thread
    /// that runs the loop may submit the cancellations, so a loop whose last reference may be
    /// dropped on another thread is torn down here, on its own thread, first. Returns false
    /// if the kernel still holds requests (their memory is then leaked on purpose at deinit).
    @discardableResult
    public func tearDown() -> Bool {
        backend.shutdown()
    }

    deinit {
        // First make sure the kernel no longer reads or writes what the records own.
        guard backend.shutdown() else {
            // The kernel may still complete a request into this memory (io_uring's teardown
            // could not cancel and reap everything within its bound): leak the buffers, pools
            // and operation storage rather than let it write into freed pages.
            configuration.log?("strata.events: the \(backend.kind) backend still had requests in the kernel at "
                + "teardown; leaking \(operationsInFlight) operation(s)' buffers and \(pools.count) pool(s) on purpose")
            for pool in pools.values { _ = Unmanaged.passRetained(pool) }
            for i in records.indices where records[i].active {
                if let b = records[i].buffer { _ = Unmanaged.passRetained(b) }
                if let bs = records[i].buffers { for b in bs { _ = Unmanaged.passRetained(b) } }
            }
            return
        }
        // A pool may outlive its loop: releasing a buffer then just marks it free.
        for pool in pools.values { pool.onRelease = nil }
        for i in records.indices where records[i].active {
            records[i].storage?.deallocate()
            records[i].buffer?.isLent = false
            if let bs = records[i].buffers { for b in bs { b.isLent = false } }
        }
    }

    // MARK: - Operation table

    /// Takes a slot and fills it with one write (each field written separately would cost a
    /// bounds and exclusivity check per field on the hot path).
    func allocate(kind: OperationKind, fd: CInt, token: UInt64, multishot: Bool = false,
                  buffer: IOBuffer? = nil, pool: BufferPool? = nil) -> OperationID {
        let slot: UInt32
        if let s = freeSlots.popLast() {
            slot = s
        } else {
            precondition(records.count < Int(UInt32.max), "EventLoop: too many operations in flight")
            slot = UInt32(records.count)
            records.append(Record())
        }
        let generation = records[Int(slot)].generation
        records[Int(slot)] = Record(generation: generation, active: true, kind: kind, token: token, fd: fd,
                                    multishot: multishot, buffer: buffer, pool: pool)
        if fd >= 0 && kind != .close && kind != .timeout { link(Int32(slot), to: fd) }
        operationsInFlight += 1
        return OperationID(slot: slot, generation: generation)
    }

    /// Puts record `slot` at the front of `fd`'s list.
    @inline(__always) func link(_ slot: Int32, to fd: CInt) {
        let i = Int(fd)
        if i >= fdHead.count { fdHead.append(contentsOf: repeatElement(-1, count: i + 1 - fdHead.count + 64)) }
        let head = fdHead[i]
        records[Int(slot)].nextOnFD = head
        records[Int(slot)].previousOnFD = -1
        records[Int(slot)].onList = true
        if head >= 0 { records[Int(head)].previousOnFD = slot }
        fdHead[i] = slot
    }

    /// Takes record `slot` off its descriptor's list.
    @inline(__always) func unlink(_ slot: Int) {
        guard records[slot].onList else { return }
        let previous = records[slot].previousOnFD, next = records[slot].nextOnFD
        if previous >= 0 { records[Int(previous)].nextOnFD = next } else { fdHead[Int(records[slot].fd)] = next }
        if next >= 0 { records[Int(next)].previousOnFD = previous }
        records[slot].onList = false
    }

    func trackDescriptor(_ fd: CInt) {
        guard fd >= 0 else { return }  // the backend reports EBADF for it
        let i = Int(fd)
        if i >= inflight.count { inflight.append(contentsOf: repeatElement(0, count: i + 1 - inflight.count + 64)) }
        inflight[i] += 1
    }

    func release(_ id: OperationID) {
        let slot = Int(id.slot)
        let fd = records[slot].fd, kind = records[slot].kind, fileFD = records[slot].fileFD
        records[slot].buffer?.isLent = false
        if let bs = records[slot].buffers { for b in bs { b.isLent = false } }
        records[slot].storage?.deallocate()
        unlink(slot)
        let next = records[slot].generation &+ 1
        records[slot] = Record(generation: next == 0 ? 1 : next)
        freeSlots.append(id.slot)
        operationsInFlight -= 1
        if kind == .close {
            closesAwaitingDelivery[id.rawValue] = fd
        } else if kind != .timeout {
            if kind == .sendfile { sendfilesInFlight -= 1 }
            untrack(fd)
            untrack(fileFD)
        }
    }

    /// One operation on `fd` finished; the last one lets a pending close proceed.
    @inline(__always) func untrack(_ fd: CInt) {
        guard fd >= 0 else { return }
        inflight[Int(fd)] -= 1
        if inflight[Int(fd)] == 0, !pendingCloses.isEmpty, let closeID = pendingCloses.removeValue(forKey: fd) {
            backend.close(fd: fd, userData: closeID, completions: &raw)
        }
    }

    /// Whether `id` names a live operation (slot in range, active, same generation).
    @inline(__always) func isLive(_ id: OperationID) -> Bool {
        let slot = Int(id.slot)
        return slot < records.count && records[slot].active && records[slot].generation == id.generation
    }

    func record(_ id: OperationID) -> Record? {
        let slot = Int(id.slot)
        guard slot < records.count, records[slot].active, records[slot].generation == id.generation else { return nil }
        return records[slot]
    }

    func submit(_ s: Submission) {
        if !closing.isEmpty && (closing.contains(s.fd) || (s.fileFD >= 0 && closing.contains(s.fileFD))) {
            // The descriptor is closing: the operation never reaches the kernel.
            raw.append(RawCompletion(userData: s.userData, result: -ECANCELED, more: false, bufferID: nil))
            return
        }
        backend.submit(s, completions: &raw)
    }

    // MARK: - Operations

    /// Accepts connections on a listening socket.
    ///
    /// Each completion's result is a new descriptor (nonblocking, close-on-exec) that the
    /// caller owns — wrap it in `Socket(adoptingDescriptor:)` — or a negated errno.
    /// - Parameters:
    ///   - fd: The listening socket.
    ///   - multishot: Keep accepting (completions carry ``Completion/Flags/more``) until cancelled or an error.
    ///   - token: Returned in every completion.
    @discardableResult
    public func accept(_ fd: CInt, multishot: Bool, token: UInt64) -> OperationID {
        let id = allocate(kind: .accept, fd: fd, token: token, multishot: multishot)
        trackDescriptor(fd)
        submit(Submission(userData: id.rawValue, kind: .accept, fd: fd, multishot: multishot))
        return id
    }

    /// Receives into `buffer`, which the loop owns until the completion; the completion
    /// sets ``IOBuffer/count`` to the bytes received (0 at end of stream).
    @discardableResult
    public func receive(_ fd: CInt, into buffer: IOBuffer, token: UInt64) -> OperationID {
        precondition(!buffer.isLent, "IOBuffer is already owned by an operation in flight")
        let id = allocate(kind: .receive, fd: fd, token: token, buffer: buffer)
        buffer.isLent = true
        trackDescriptor(fd)
        submit(Submission(userData: id.rawValue, kind: .receive, fd: fd, pointer: buffer.base, length: buffer.capacity))
        return id
    }

    /// Receives into buffers taken from `pool`; each completion names the buffer
    /// (``Completion/bufferID``), which the caller returns with ``BufferPool/release(_:)``.
    /// When the pool is empty the receive pauses and resumes when a buffer comes back.
    @discardableResult
    public func receive(_ fd: CInt, from pool: BufferPool, multishot: Bool, token: UInt64) -> OperationID {
        precondition(pools[pool.groupID] === pool, "BufferPool belongs to another loop")
        let id = allocate(kind: .receivePooled, fd: fd, token: token, multishot: multishot, pool: pool)
        trackDescriptor(fd)
        let s = Submission(userData: id.rawValue, kind: .receivePooled, fd: fd, multishot: multishot,
                           length: pool.bufferSize, pool: pool)
        records[Int(id.slot)].submission = s
        records[Int(id.slot)].releaseMark = pool.releases
        submit(s)
        return id
    }

    /// Sends `buffer`'s bytes from `offset` to its ``IOBuffer/count``. The completion's result
    /// is the number of bytes sent, which may be fewer (a partial send): submit the rest.
    @discardableResult
    public func send(_ fd: CInt, _ buffer: IOBuffer, offset: Int = 0, token: UInt64) -> OperationID {
        precondition(!buffer.isLent, "IOBuffer is already owned by an operation in flight")
        precondition(offset >= 0 && offset <= buffer.count, "send offset \(offset) outside 0...\(buffer.count)")
        let id = allocate(kind: .send, fd: fd, token: token, buffer: buffer)
        buffer.isLent = true
        trackDescriptor(fd)
        submit(Submission(userData: id.rawValue, kind: .send, fd: fd, pointer: buffer.base + offset,
                          length: buffer.count - offset))
        return id
    }

    /// Writes `buffers` in order with one vectored write. The result may be fewer bytes than
    /// their total (a partial write).
    @discardableResult
    public func writev(_ fd: CInt, _ buffers: [IOBuffer], token: UInt64) -> OperationID {
        precondition(!buffers.isEmpty && buffers.count <= 1024, "writev takes 1...1024 buffers (IOV_MAX)")
        let id = allocate(kind: .writev, fd: fd, token: token)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: buffers.count)
        for (i, b) in buffers.enumerated() {
            precondition(!b.isLent, "IOBuffer is already owned by an operation in flight")
            b.isLent = true
            iov[i] = iovec(iov_base: b.base, iov_len: b.count)
        }
        records[Int(id.slot)].buffers = buffers
        records[Int(id.slot)].storage = UnsafeMutableRawPointer(iov)
        trackDescriptor(fd)
        submit(Submission(userData: id.rawValue, kind: .writev, fd: fd, pointer: UnsafeMutableRawPointer(iov),
                          length: buffers.count))
        return id
    }

    /// Sends up to `count` bytes of `file` from `offset` to `socket` without copying them
    /// through user space. The result may be fewer bytes (partial).
    @discardableResult
    public func sendfile(to socket: CInt, from file: CInt, offset: Int64, count: Int, token: UInt64) -> OperationID {
        let id = allocate(kind: .sendfile, fd: socket, token: token)
        records[Int(id.slot)].fileFD = file
        sendfilesInFlight += 1
        trackDescriptor(socket)
        trackDescriptor(file)
        submit(Submission(userData: id.rawValue, kind: .sendfile, fd: socket, length: count, fileFD: file, offset: offset))
        return id
    }

    /// Connects a nonblocking socket. The completion's result is 0 or a negated errno
    /// (`-ECONNREFUSED`, `-ETIMEDOUT`, …).
    @discardableResult
    public func connect(_ fd: CInt, to address: SocketAddress, token: UInt64) -> OperationID {
        let id = allocate(kind: .connect, fd: fd, token: token)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<sockaddr_storage>.size,
                                                       alignment: MemoryLayout<sockaddr_storage>.alignment)
        let length = address.withUnsafeSockAddr { p, len in
            storage.copyMemory(from: UnsafeRawPointer(p), byteCount: Int(len))
            return Int(len)
        }
        records[Int(id.slot)].storage = storage
        trackDescriptor(fd)
        submit(Submission(userData: id.rawValue, kind: .connect, fd: fd, pointer: storage, length: length))
        return id
    }

    /// Closes `fd` after cancelling every operation in flight on it. Those complete first
    /// (with `-ECANCELED` or their own result); this close's completion is the last one for
    /// `fd`. Do not close the descriptor any other way while operations are in flight.
    @discardableResult
    public func close(_ fd: CInt, token: UInt64) -> OperationID {
        precondition(!closing.contains(fd), "descriptor \(fd) is already being closed")
        let id = allocate(kind: .close, fd: fd, token: token)
        closing.insert(fd)
        let busy = fd >= 0 && Int(fd) < inflight.count && inflight[Int(fd)] > 0
        if !busy {
            backend.close(fd: fd, userData: id.rawValue, completions: &raw)
            return id
        }
        pendingCloses[fd] = id.rawValue
        cancelParked { $0.fd == fd || $0.fileFD == fd }
        // cancelParked may have finished the last operation and issued the close already.
        if pendingCloses[fd] != nil { backend.cancelAll(fd: fd, completions: &raw) }
        // A sendfile reading from `fd` is registered under its socket: cancel it by operation.
        for i in records.indices where sendfilesInFlight > 0 && records[i].active && records[i].kind == .sendfile
            && records[i].fileFD == fd {
            cancel(OperationID(slot: UInt32(i), generation: records[i].generation))
        }
        return id
    }

    /// Completes with `-ETIME` after `duration` (or `-ECANCELED` if cancelled first).
    @discardableResult
    public func timeout(after duration: Duration, token: UInt64) -> OperationID {
        timeout(at: MonotonicInstant.now.advanced(by: duration), token: token)
    }

    /// Completes with `-ETIME` at `deadline` (or `-ECANCELED` if cancelled first).
    @discardableResult
    public func timeout(at deadline: MonotonicInstant, token: UInt64) -> OperationID {
        let id = allocate(kind: .timeout, fd: -1, token: token)
        records[Int(id.slot)].timer = timers.schedule(at: deadline, token: id.rawValue)
        return id
    }

    /// Cancels an operation. It completes with `-ECANCELED` unless it finished first; a
    /// multishot operation stops. Returns false when the operation already finished.
    @discardableResult
    public func cancel(_ id: OperationID) -> Bool {
        guard let r = record(id) else { return false }
        if r.cancelled { return true }
        records[Int(id.slot)].cancelled = true
        if r.kind == .timeout, let timer = r.timer {
            timers.cancel(timer)
            finish(id, result: -ECANCELED)
            return true
        }
        if r.parked {
            unpark(id, pool: r.pool!)
            finish(id, result: -ECANCELED)
            return true
        }
        if r.kind == .close { return true }  // a close is not cancellable; it completes
        backend.cancel(userData: id.rawValue, completions: &raw)
        return true
    }

    /// Cancels every operation in flight on `fd` (a multishot accept or receive stops). Each
    /// completes with `-ECANCELED` unless it finished first; the descriptor stays open.
    /// Returns the number of operations asked to stop.
    @discardableResult
    public func cancelAll(on fd: CInt) -> Int {
        var count = 0
        guard fd >= 0, Int(fd) < fdHead.count else { return 0 }
        // Walk the descriptor's list; `finish` below may release (unlink) the current record,
        // so the next link is read first.
        var cursor = fdHead[Int(fd)]
        while cursor >= 0 {
            let i = Int(cursor)
            cursor = records[i].nextOnFD
            guard records[i].active, !records[i].cancelled else { continue }
            let id = OperationID(slot: UInt32(i), generation: records[i].generation)
            if records[i].parked {
                records[i].cancelled = true
                unpark(id, pool: records[i].pool!)
                finish(id, result: -ECANCELED)
            } else {
                records[i].cancelled = true
            }
            count += 1
        }
        if count > 0 { backend.cancelAll(fd: fd, completions: &raw) }
        return count
    }

    /// Creates a pool of `count` receive buffers of `size` bytes, registered with the backend.
    /// - Parameters:
    ///   - count: A power of two, 1...32768.
    ///   - size: Bytes per buffer, 1...1 MiB.
    public func makeBufferPool(count: Int, size: Int) throws(EventsError) -> BufferPool {
        guard count > 0, count <= 32768, count & (count - 1) == 0 else {
            throw EventsError(.invalidConfiguration, "buffer pool count = \(count): use a power of two in 1...32768")
        }
        guard size > 0, size <= 1 << 20 else {
            throw EventsError(.invalidConfiguration, "buffer pool size = \(size): use 1...1048576 bytes")
        }
        guard pools.count < Int(UInt16.max) else {
            throw EventsError(.resourceExhausted, "this loop already has \(pools.count) buffer pools")
        }
        while pools[nextGroupID] != nil { nextGroupID &+= 1 }
        let pool = BufferPool(count: count, bufferSize: size, groupID: nextGroupID)
        nextGroupID &+= 1
        try backend.register(pool)
        pools[pool.groupID] = pool
        let group = pool.groupID
        pool.onRelease = { [unowned self, unowned pool] id in
            self.backend.recycle(pool, id)
            self.resumeParked(group: group)
        }
        return pool
    }

    // MARK: - Running

    /// Runs one iteration: submit, wait (at most `timeout`, or until the next timer; nil =
    /// no limit besides timers), reap, fire timers, then call `handler` for each completion.
    ///
    /// - Returns: the number of completions delivered.
    /// - Throws: ``EventsError`` if the backend fails irrecoverably.
    @discardableResult
    public func runOnce(timeout: Duration? = nil, _ handler: (Completion) -> Void) throws(EventsError) -> Int {
        var waitNanos: Int64? = timeout.map { max(0, $0.nanosecondsSaturating) }
        if let next = timers.nextDeadline {
            let now = MonotonicInstant.now
            let untilTimer = next > now ? Int64(clamping: next.nanoseconds - now.nanoseconds) : 0
            waitNanos = min(waitNanos ?? .max, untilTimer)
        }
        if !raw.isEmpty || !ready.isEmpty { waitNanos = 0 }
        try backend.wait(timeoutNanoseconds: waitNanos, completions: &raw)
        reap()
        fireTimers()
        guard !ready.isEmpty else { return 0 }
        swap(&ready, &delivering)
        defer { delivering.removeAll(keepingCapacity: true) }
        for c in delivering {
            if c.kind == .close, let fd = closesAwaitingDelivery.removeValue(forKey: c.operation.rawValue) {
                closing.remove(fd)
            }
            handler(c)
        }
        return delivering.count
    }

    /// Runs iterations until `shouldStop` returns true (checked after each iteration).
    public func run(until shouldStop: () -> Bool, _ handler: (Completion) -> Void) throws(EventsError) {
        while !shouldStop() {
            try runOnce(handler)
        }
    }

    func reap() {
        // Completions appended while processing (closes released by the last operation on a
        // descriptor) are processed in the same pass. Fields are read in place: copying a
        // `Record` out would retain and release every reference it holds.
        var i = 0
        while i < raw.count {
            let rc = raw[i]
            i += 1
            let id = OperationID(rawValue: rc.userData)
            guard isLive(id) else {
                preconditionFailure("completion for unknown operation \(id): backend bookkeeping is broken")
            }
            let slot = Int(id.slot)
            let kind = records[slot].kind
            var flags: Completion.Flags = rc.more ? .more : []
            var bufferID: UInt16 = 0
            if let b = rc.bufferID, let pool = records[slot].pool {
                pool.handOut(b)
                flags.insert(.buffer)
                bufferID = b
            }
            if kind == .receivePooled && rc.result == -ENOBUFS && !rc.more && !records[slot].cancelled
                && (closing.isEmpty || !closing.contains(records[slot].fd)) {
                park(id, pool: records[slot].pool!)
                continue
            }
            if !rc.more, kind == .receive, rc.result >= 0 { records[slot].buffer?.count = Int(rc.result) }
            ready.append(Completion(token: records[slot].token, operation: id, kind: kind, result: rc.result,
                                    flags: flags, bufferID: bufferID))
            if !rc.more { release(id) }
        }
        raw.removeAll(keepingCapacity: true)
    }

    func finish(_ id: OperationID, result: Int32) {
        guard let r = record(id) else { return }
        ready.append(Completion(token: r.token, operation: id, kind: r.kind, result: result, flags: []))
        release(id)
    }

    func fireTimers() {
        guard !timers.isEmpty else { return }
        let now = MonotonicInstant.now
        while let (_, token) = timers.popExpired(now: now) {
            finish(OperationID(rawValue: token), result: -ETIME)
        }
    }

    // MARK: - Paused pooled receives

    /// Pauses a pooled receive that found no buffer. If a buffer came back after it was
    /// submitted (the release count moved), it is resubmitted at once: no lost wakeup, and no
    /// spinning, since every resubmission needs a release in between.
    func park(_ id: OperationID, pool: BufferPool) {
        records[Int(id.slot)].parked = true
        parked[pool.groupID, default: []].append(id.rawValue)
        if records[Int(id.slot)].releaseMark != pool.releases { resumeParked(group: pool.groupID) }
    }

    func unpark(_ id: OperationID, pool: BufferPool) {
        records[Int(id.slot)].parked = false
        parked[pool.groupID]?.removeAll { $0 == id.rawValue }
    }

    func resumeParked(group: UInt16) {
        guard let waiting = parked.removeValue(forKey: group), !waiting.isEmpty else { return }
        for raw in waiting {
            let id = OperationID(rawValue: raw)
            guard let r = record(id), r.parked, let s = r.submission else { continue }
            records[Int(id.slot)].parked = false
            records[Int(id.slot)].releaseMark = pools[group]?.releases ?? 0
            submit(s)
        }
    }

    func cancelParked(where predicate: (Record) -> Bool) {
        for (group, ids) in parked {
            for raw in ids {
                let id = OperationID(rawValue: raw)
                guard let r = record(id), r.parked, predicate(r) else { continue }
                unpark(id, pool: pools[group]!)
                finish(id, result: -ECANCELED)
            }
        }
    }
}
