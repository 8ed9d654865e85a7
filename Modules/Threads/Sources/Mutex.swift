#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The heap cell of one `pthread_mutex_t`: allocated with the imported type's size and
/// alignment, initialized in place, and never moved.
///
/// A pthread mutex must stay at the address it was initialized at (glibc links waiters to
/// it; Darwin checks a signature in it), so it never lives inline in a Swift value that the
/// compiler may move or copy. Its size comes from the imported type, never from a constant:
/// a hand-sized buffer (64 bytes, Darwin's size, where glibc needs 40) is exactly the bug this
/// module exists to prevent, and the tests prove `MemoryLayout<pthread_mutex_t>` against the
/// ABI table of the host.
///
/// A struct with manual lifetime: the owner calls ``destroy()`` in its `deinit` and frees the
/// memory it provided (``Mutex`` allocates the cell alone; ``LockedValue`` places it in front
/// of the value, in one block).
@usableFromInline
struct _MutexCell {
    @usableFromInline
    let pointer: UnsafeMutablePointer<pthread_mutex_t>

    /// Allocates a cell of its own and initializes the mutex in it.
    init() {
        self.init(initializing: UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1))
    }

    /// Initializes a mutex in `pointer`'s uninitialized memory: `PTHREAD_MUTEX_ERRORCHECK` in
    /// debug builds (relocking and unlocking from the wrong thread stop the process with the
    /// errno name), the platform default in release builds.
    init(initializing pointer: UnsafeMutablePointer<pthread_mutex_t>) {
        self.pointer = pointer
        pointer.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        var rc = pthread_mutexattr_init(&attributes)
        if rc != 0 { pthreadFailure("pthread_mutexattr_init", rc) }
        defer {
            let destroyed = pthread_mutexattr_destroy(&attributes)
            if destroyed != 0 { pthreadFailure("pthread_mutexattr_destroy", destroyed) }
        }
        #if DEBUG
        rc = pthread_mutexattr_settype(&attributes, CInt(PTHREAD_MUTEX_ERRORCHECK))
        if rc != 0 { pthreadFailure("pthread_mutexattr_settype", rc) }
        #endif
        rc = pthread_mutex_init(pointer, &attributes)
        if rc != 0 { pthreadFailure("pthread_mutex_init", rc) }
    }

    /// Destroys the mutex, which must be unlocked and never used again; the memory stays.
    func destroy() {
        let rc = pthread_mutex_destroy(pointer)
        if rc != 0 { pthreadFailure("pthread_mutex_destroy", rc) }
        pointer.deinitialize(count: 1)
    }

    // `_slowPath` (a standard library hint, underscored but stable for years) keeps the
    // failure branch out of the inlined fast path of lock and unlock.
    @inlinable
    func lock() {
        let rc = pthread_mutex_lock(pointer)
        if _slowPath(rc != 0) { pthreadFailure("pthread_mutex_lock", rc) }
    }

    @inlinable
    func unlock() {
        let rc = pthread_mutex_unlock(pointer)
        if _slowPath(rc != 0) { pthreadFailure("pthread_mutex_unlock", rc) }
    }

    @inlinable
    func tryLock() -> Bool {
        let rc = pthread_mutex_trylock(pointer)
        if rc == 0 { return true }
        if rc == EBUSY { return false }
        pthreadFailure("pthread_mutex_trylock", rc)
    }
}

/// A mutual-exclusion lock over a heap-allocated `pthread_mutex_t`.
///
/// Use it to guard state that several threads touch, and with ``ConditionVariable`` to
/// wait for that state to change:
///
///     let mutex = Mutex()
///     var pending = 0          // guarded by mutex
///     mutex.withLock { pending += 1 }
///
/// The `pthread_mutex_t` lives in its own heap allocation, sized and aligned by the imported
/// type, and never moves: the class can be shared, stored and captured freely. In debug
/// builds the mutex has the `PTHREAD_MUTEX_ERRORCHECK` type, so relocking it on the owning
/// thread or unlocking it from another thread stops the process with a message naming the
/// call and the errno (`pthread_mutex_unlock failed: EPERM (1): Operation not permitted`)
/// instead of deadlocking or corrupting state. Release builds use the platform default type
/// and still check every return value.
///
/// For a value that is only ever touched inside the lock, prefer ``LockedValue``; for a
/// short critical section inside one type with no waiting, the standard library's
/// `Synchronization.Mutex` is smaller and faster (see `docs/threads.md`).
///
/// - Note: In a file that imports both `Synchronization` and `StrataThreads`, `Mutex` means
///   this type; write `Synchronization.Mutex<Value>` for the standard library's.
public final class Mutex: @unchecked Sendable {
    // @unchecked Sendable: the only stored property is the pointer to the pthread mutex,
    // which is itself the synchronization primitive and is safe to use from any thread.
    @usableFromInline
    let _cell: _MutexCell

    /// Creates an unlocked mutex.
    ///
    /// Stops the process if `pthread_mutex_init` fails, which the supported C libraries
    /// never do for a process-private mutex.
    public init() {
        _cell = _MutexCell()
    }

    deinit {
        _cell.destroy()
        _cell.pointer.deallocate()
    }

    /// Acquires the mutex, blocking the calling thread until it is available.
    ///
    /// - Warning: Blocks the thread. Never hold a mutex across an `await` or call this on an
    ///   event loop thread for a lock that is held for long.
    ///
    /// The corresponding C function is `pthread_mutex_lock`.
    @inlinable
    public func lock() {
        _cell.lock()
    }

    /// Releases the mutex, which the calling thread must hold.
    ///
    /// The corresponding C function is `pthread_mutex_unlock`.
    @inlinable
    public func unlock() {
        _cell.unlock()
    }

    /// Acquires the mutex if no other thread holds it.
    ///
    /// - Returns: `true` if the calling thread now holds the mutex, `false` if it was busy.
    ///
    /// The corresponding C function is `pthread_mutex_trylock`.
    @inlinable
    public func tryLock() -> Bool {
        _cell.tryLock()
    }

    /// Runs `body` with the mutex held and releases it afterwards, also when `body` throws.
    ///
    /// - Parameter body: The critical section. It must not lock this mutex again.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withLock<Result: ~Copyable, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        _cell.lock()
        defer { _cell.unlock() }
        return try body()
    }
}
