#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSys

/// The kernel's identifier of a thread: `gettid()` on Linux, `pthread_threadid_np` on Darwin,
/// `pthread_getthreadid_np` on FreeBSD.
///
/// Unlike a `pthread_t`, it is what `top -H`, `ps -L`, `perf`, debuggers and `/proc/<pid>/task`
/// show, and it is unique among the process's live threads. The kernel may reuse it after the
/// thread ends.
public struct ThreadID: Hashable, Sendable, CustomStringConvertible {
    /// The numeric id (`pid_t` on Linux, widened).
    public let rawValue: UInt64

    /// Wraps a numeric thread id.
    ///
    /// - Parameter rawValue: The kernel's id of a thread.
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// The decimal id, as `ps -L` prints it.
    public var description: String { String(rawValue) }
}

/// A thread started with ``spawn(name:stackSize:affinity:_:)``, which must be joined or is
/// detached when dropped.
///
///     let worker = try Thread.spawn(name: "strata-io-0", stackSize: 512 * 1024, affinity: [0]) {
///         // runs on the new thread, pinned to CPU 0
///     }
///     try worker.join()
///
/// The handle is `~Copyable`: joining twice, or joining a copy, does not compile. Dropping
/// it without ``join()`` detaches the thread, which then runs to the end of its body and
/// frees its resources itself.
///
/// Thread names: the kernel keeps at most ``maximumNameBytes`` bytes (15 on Linux, 63 on
/// Darwin, 19 on FreeBSD). A longer name is truncated to that many bytes at a Unicode scalar
/// boundary (never splitting a UTF-8 sequence); ``name`` is the name actually applied, and
/// ``appliedName(for:)`` computes it in advance.
///
/// - Note: In a file that also imports Foundation, write `StrataThreads.Thread`.
public struct Thread: ~Copyable {
    let _handle: _JoinHandle

    /// The name the thread carries, after truncation to ``maximumNameBytes``; nil if it was
    /// spawned without a name (it then keeps the name it inherited from its creator).
    public let name: String?

    /// The new thread's kernel id.
    public let id: ThreadID

    /// Starts a thread that runs `body`.
    ///
    /// Returns once the thread runs with its name and CPU affinity applied; if either could
    /// not be applied, the thread ends without running `body` and this function throws.
    /// The caller's thread blocks for that handshake (the time a thread takes to start).
    ///
    /// - Parameters:
    ///   - name: The thread's name, as `top -H`, `ps -L` and debuggers show it; longer names
    ///     are truncated as described under ``appliedName(for:)``. Nil keeps the inherited name.
    ///   - stackSize: The stack size in bytes, rounded up to a whole number of pages; nil uses
    ///     the platform default (8 MiB on Linux, `RLIMIT_STACK`).
    ///   - affinity: The CPUs (0-based indices) the thread may run on; nil leaves the inherited
    ///     affinity. Linux only: elsewhere a non-nil value throws
    ///     ``ThreadsError/Code-swift.struct/unsupported``.
    ///   - body: What the thread runs. The thread ends when it returns.
    /// - Returns: The handle to join the thread with.
    /// - Throws: ``ThreadsError``: `invalidArgument` for a name containing NUL, a non-positive
    ///   stack size or an empty or out-of-range CPU set; `systemCallFailed` with the call and
    ///   errno when `pthread_attr_setstacksize` (`EINVAL`: below the minimum), `pthread_create`
    ///   (`EAGAIN`: out of threads or memory), `pthread_setname_np` or `pthread_setaffinity_np`
    ///   (`EINVAL`: no allowed CPU in the set) fails.
    ///
    /// The corresponding C function is `pthread_create`.
    public static func spawn(
        name: String?,
        stackSize: Int? = nil,
        affinity: Set<Int>? = nil,
        _ body: sending @escaping () -> Void
    ) throws(ThreadsError) -> Thread {
        let started = try _startThread(name: name, stackSize: stackSize, affinity: affinity, body)
        return Thread(_handle: _JoinHandle(raw: started.handle), name: started.name, id: started.id)
    }

    /// Waits for the thread to end.
    ///
    /// - Throws: ``ThreadsError`` with `pthread_join`'s errno: `EDEADLK` when a thread joins
    ///   itself (the thread is then detached, so it is still reclaimed when it ends).
    ///
    /// The corresponding C function is `pthread_join`.
    public consuming func join() throws(ThreadsError) {
        try _handle.join()
    }

    /// The calling thread's kernel id.
    public static var currentID: ThreadID {
        #if canImport(Darwin)
        var id: UInt64 = 0
        let rc = pthread_threadid_np(nil, &id)
        if rc != 0 { pthreadFailure("pthread_threadid_np", rc) }
        return ThreadID(rawValue: id)
        #else
        return ThreadID(rawValue: strata_thread_id())
        #endif
    }

    /// The calling thread's name as the kernel keeps it (empty if it has none).
    ///
    /// - Throws: ``ThreadsError`` if `pthread_getname_np` fails.
    ///
    /// The corresponding C function is `pthread_getname_np`.
    public static func currentName() throws(ThreadsError) -> String {
        // 64 bytes holds the longest name of every supported platform plus its NUL.
        var buffer = [CChar](repeating: 0, count: 64)
        let rc = buffer.withUnsafeMutableBufferPointer { buffer -> CInt in
            #if canImport(Darwin)
            return pthread_getname_np(pthread_self(), buffer.baseAddress!, buffer.count)
            #else
            return strata_thread_get_name(buffer.baseAddress!, buffer.count)
            #endif
        }
        guard rc == 0 else {
            throw ThreadsError.systemCall("pthread_getname_np", rc, "Thread.currentName: cannot read the thread's name")
        }
        buffer[buffer.count - 1] = 0
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The CPUs the calling thread may run on (0-based indices).
    ///
    /// - Returns: The thread's CPU affinity set.
    /// - Throws: ``ThreadsError`` with `pthread_getaffinity_np`'s errno, or `unsupported`
    ///   outside Linux.
    ///
    /// The corresponding C function is `pthread_getaffinity_np`.
    public static func currentAffinity() throws(ThreadsError) -> Set<Int> {
        #if os(Linux)
        let capacity = Platform.cpuSetSize
        var cpus = [CInt](repeating: 0, count: capacity)
        var count = 0
        let rc = cpus.withUnsafeMutableBufferPointer { buffer in
            strata_thread_get_affinity(buffer.baseAddress!, buffer.count, &count)
        }
        guard rc == 0 else {
            throw ThreadsError.systemCall("pthread_getaffinity_np", rc, "Thread.currentAffinity: cannot read the thread's CPU set")
        }
        return Set(cpus.prefix(min(count, capacity)).map(Int.init))
        #else
        throw ThreadsError(code: .unsupported, message: "Thread.currentAffinity: CPU affinity is only supported on Linux")
        #endif
    }

    /// The longest name, in bytes of UTF-8, that a thread keeps on this platform (15 on Linux).
    public static var maximumNameBytes: Int { Platform.maximumThreadNameBytes }

    /// The name a thread spawned with `requested` carries: `requested` itself if it fits in
    /// ``maximumNameBytes`` bytes of UTF-8, otherwise its longest prefix that fits and ends
    /// at a Unicode scalar boundary.
    ///
    ///     Thread.appliedName(for: "strata-worker-12")   // "strata-worker-1" on Linux
    ///
    /// - Parameter requested: The name asked for.
    /// - Returns: The name the kernel will keep.
    public static func appliedName(for requested: String) -> String {
        truncate(requested, toBytes: maximumNameBytes)
    }

    /// The longest prefix of `string` with at most `limit` bytes of UTF-8 that ends at a
    /// Unicode scalar boundary.
    static func truncate(_ string: String, toBytes limit: Int) -> String {
        let utf8 = Array(string.utf8)
        guard utf8.count > limit else { return string }
        var end = max(limit, 0)
        // UTF-8 continuation bytes are 0b10xxxxxx: back up to the start of the scalar.
        while end > 0 && utf8[end] & 0xC0 == 0x80 {
            end -= 1
        }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }
}

/// Owns a joinable pthread: joins it once, or detaches it when dropped.
struct _JoinHandle: ~Copyable {
    let raw: pthread_t

    consuming func join() throws(ThreadsError) {
        let raw = self.raw
        discard self
        // POSIX leaves a self-join undefined unless the library happens to detect it (glibc
        // does, with EDEADLK; ThreadSanitizer's interceptor does not survive it): check first.
        if pthread_equal(raw, pthread_self()) != 0 {
            let detached = pthread_detach(raw)
            if detached != 0 { pthreadFailure("pthread_detach", detached) }
            throw ThreadsError.systemCall(
                "pthread_join", EDEADLK, "Thread.join: a thread cannot join itself; it has been detached instead")
        }
        let rc = joinThread(raw)
        guard rc == 0 else {
            throw ThreadsError.systemCall("pthread_join", rc, "Thread.join: cannot join the thread")
        }
    }

    deinit {
        let rc = pthread_detach(raw)
        if rc != 0 { pthreadFailure("pthread_detach", rc) }
    }
}

/// Joins a thread; 0 or `pthread_join`'s error number.
func joinThread(_ raw: pthread_t) -> CInt {
    pthread_join(raw, nil)
}

/// What a spawned thread needs before it runs its body, and the handshake with its creator.
final class _ThreadStart: @unchecked Sendable {
    // @unchecked Sendable: `name`, `cpus` and `context` are immutable; `body` and `outcome`
    // are only touched with `mutex` held (the creator sets `body` before pthread_create,
    // which also orders it before the new thread's first read).
    enum Outcome {
        case running(ThreadID)
        case failed(ThreadsError)
    }

    let name: String?
    let cpus: [CInt]?
    let context: String
    let mutex = Mutex()
    let reported = ConditionVariable()
    var body: (() -> Void)?
    var outcome: Outcome?

    init(name: String?, cpus: [CInt]?, context: String, body: sending @escaping () -> Void) {
        self.name = name
        self.cpus = cpus
        self.context = context
        self.body = body
    }

    /// Runs on the new thread: applies name and affinity, reports, then runs the body.
    func run() {
        let outcome = prepareCurrentThread()
        var body: (() -> Void)?
        mutex.withLock {
            self.outcome = outcome
            if case .running = outcome { body = self.body }
            self.body = nil
            reported.signal()
        }
        body?()
    }

    /// Waits, on the creating thread, for the new thread's report.
    ///
    /// Bounded: the new thread reports before doing anything else, whatever happens.
    func waitForOutcome() -> Outcome {
        mutex.withLock {
            while true {
                if let outcome { return outcome }
                reported.wait(on: mutex)
            }
        }
    }

    private func prepareCurrentThread() -> Outcome {
        if let name {
            let rc = name.withCString { name -> CInt in
                #if canImport(Darwin)
                return pthread_setname_np(name)
                #else
                return strata_thread_set_name(name)
                #endif
            }
            if rc != 0 {
                return .failed(.systemCall("pthread_setname_np", rc, "\(context): cannot name the thread"))
            }
        }
        #if os(Linux)
        if let cpus {
            let rc = cpus.withUnsafeBufferPointer { strata_thread_set_affinity($0.baseAddress!, $0.count) }
            if rc != 0 {
                return .failed(.systemCall(
                    "pthread_setaffinity_np", rc,
                    "\(context): cannot pin the thread to CPUs \(cpus.map(Int.init)); choose CPUs from Thread.currentAffinity()"))
            }
        }
        #endif
        return .running(Thread.currentID)
    }
}

/// The entry point of every spawned thread: takes over the retained `_ThreadStart`.
func _threadMain(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let raw else { return nil }
    Unmanaged<_ThreadStart>.fromOpaque(raw).takeRetainedValue().run()
    return nil
}

/// `_threadMain` for platforms whose `pthread_create` declares a non-null argument (Darwin).
func _threadMain(_ raw: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    _threadMain(Optional(raw))
}

/// Starts a thread with the given options; shared by ``Thread`` and ``ThreadPool``.
func _startThread(
    name: String?,
    stackSize: Int?,
    affinity: Set<Int>?,
    _ body: sending @escaping () -> Void
) throws(ThreadsError) -> (handle: pthread_t, name: String?, id: ThreadID) {
    let context = "Thread.spawn(name: \(name.map { "\"\($0)\"" } ?? "nil"))"

    let appliedName: String?
    if let name {
        guard !name.utf8.contains(0) else {
            throw ThreadsError(code: .invalidArgument, message: "\(context): a thread name cannot contain NUL")
        }
        appliedName = Thread.appliedName(for: name)
    } else {
        appliedName = nil
    }

    let cpus: [CInt]?
    if let affinity {
        #if os(Linux)
        let limit = Platform.cpuSetSize
        guard !affinity.isEmpty else {
            throw ThreadsError(
                code: .invalidArgument, message: "\(context): an empty CPU set leaves the thread nowhere to run")
        }
        if let bad = affinity.sorted().first(where: { $0 < 0 || $0 >= limit }) {
            throw ThreadsError(
                code: .invalidArgument, message: "\(context): CPU \(bad) is outside 0..<\(limit) (CPU_SETSIZE)")
        }
        cpus = affinity.sorted().map { CInt($0) }
        #else
        throw ThreadsError(code: .unsupported, message: "\(context): CPU affinity is only supported on Linux")
        #endif
    } else {
        cpus = nil
    }
    return try _createThread(context: context, name: appliedName, cpus: cpus, stackSize: stackSize, body)
}

private func _createThread(
    context: String,
    name: String?,
    cpus: [CInt]?,
    stackSize: Int?,
    _ body: sending @escaping () -> Void
) throws(ThreadsError) -> (handle: pthread_t, name: String?, id: ThreadID) {
    var attributes = pthread_attr_t()
    var rc = pthread_attr_init(&attributes)
    guard rc == 0 else {
        throw ThreadsError.systemCall("pthread_attr_init", rc, "\(context): cannot prepare the thread's attributes")
    }
    defer {
        let destroyed = pthread_attr_destroy(&attributes)
        if destroyed != 0 { pthreadFailure("pthread_attr_destroy", destroyed) }
    }

    if let stackSize {
        let page = Platform.pageSize
        guard stackSize > 0, stackSize <= Int.max - page else {
            throw ThreadsError(
                code: .invalidArgument, message: "\(context): stack size \(stackSize) bytes is not a positive size")
        }
        let rounded = (stackSize + page - 1) / page * page
        rc = pthread_attr_setstacksize(&attributes, rounded)
        guard rc == 0 else {
            throw ThreadsError.systemCall(
                "pthread_attr_setstacksize", rc,
                "\(context): stack size \(rounded) bytes is not accepted; it must be at least PTHREAD_STACK_MIN")
        }
    }

    let start = _ThreadStart(name: name, cpus: cpus, context: context, body: body)
    let argument = Unmanaged.passRetained(start).toOpaque()
    #if os(Linux) && canImport(Glibc)
    var handle = pthread_t()
    rc = pthread_create(&handle, &attributes, { _threadMain($0) }, argument)
    #else
    var created: pthread_t?
    rc = pthread_create(&created, &attributes, { _threadMain($0) }, argument)
    #endif
    guard rc == 0 else {
        Unmanaged<_ThreadStart>.fromOpaque(argument).release()
        throw ThreadsError.systemCall(
            "pthread_create", rc,
            "\(context): cannot create the thread; lower the number of threads, or raise RLIMIT_NPROC or the memory limit")
    }
    #if !(os(Linux) && canImport(Glibc))
    let handle = created!
    #endif

    switch start.waitForOutcome() {
    case .running(let id):
        return (handle, name, id)
    case .failed(let error):
        let joined = joinThread(handle)
        if joined != 0 { pthreadFailure("pthread_join", joined) }
        throw error
    }
}
