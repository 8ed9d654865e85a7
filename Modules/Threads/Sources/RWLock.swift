#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A readers-writer lock over a heap-allocated `pthread_rwlock_t`.
///
/// Any number of threads can hold the lock for reading at once; a writer holds it alone.
/// It pays off only when reads are long or frequent and writes rare (a routing table, a
/// configuration snapshot); for short critical sections a ``Mutex`` is cheaper.
///
///     let routes = RWLock()
///     var table: [String: Int] = [:]     // guarded by routes
///     let port = routes.withReadLock { table["api"] }
///     routes.withWriteLock { table["api"] = 8080 }
///
/// - Warning: Fairness is the platform's: glibc's default prefers readers, so a continuous
///   stream of overlapping readers can delay a writer indefinitely. A thread that holds the
///   lock for reading must not ask for it for writing (that deadlocks, or stops the process
///   where the platform reports `EDEADLK`).
public final class RWLock: @unchecked Sendable {
    // @unchecked Sendable: the only stored property points to the pthread rwlock, which is
    // itself a synchronization primitive usable from any thread.
    @usableFromInline
    let _lock: UnsafeMutablePointer<pthread_rwlock_t>

    /// Creates an unlocked readers-writer lock.
    ///
    /// Stops the process if `pthread_rwlock_init` fails, which the supported C libraries
    /// never do for a process-private lock.
    public init() {
        _lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        _lock.initialize(to: pthread_rwlock_t())
        let rc = pthread_rwlock_init(_lock, nil)
        if rc != 0 { pthreadFailure("pthread_rwlock_init", rc) }
    }

    deinit {
        let rc = pthread_rwlock_destroy(_lock)
        if rc != 0 { pthreadFailure("pthread_rwlock_destroy", rc) }
        _lock.deinitialize(count: 1)
        _lock.deallocate()
    }

    /// Acquires the lock for reading, blocking while a writer holds it.
    ///
    /// The corresponding C function is `pthread_rwlock_rdlock`.
    @inlinable
    public func readLock() {
        let rc = pthread_rwlock_rdlock(_lock)
        if _slowPath(rc != 0) { pthreadFailure("pthread_rwlock_rdlock", rc) }
    }

    /// Acquires the lock for writing, blocking while any reader or writer holds it.
    ///
    /// The corresponding C function is `pthread_rwlock_wrlock`.
    @inlinable
    public func writeLock() {
        let rc = pthread_rwlock_wrlock(_lock)
        if _slowPath(rc != 0) { pthreadFailure("pthread_rwlock_wrlock", rc) }
    }

    /// Acquires the lock for reading if no writer holds it, without blocking.
    ///
    /// - Returns: `true` if the calling thread now holds the lock for reading.
    ///
    /// The corresponding C function is `pthread_rwlock_tryrdlock`.
    @inlinable
    public func tryReadLock() -> Bool {
        let rc = pthread_rwlock_tryrdlock(_lock)
        if rc == 0 { return true }
        if rc == EBUSY { return false }
        pthreadFailure("pthread_rwlock_tryrdlock", rc)
    }

    /// Acquires the lock for writing if nobody holds it, without blocking.
    ///
    /// - Returns: `true` if the calling thread now holds the lock for writing.
    ///
    /// The corresponding C function is `pthread_rwlock_trywrlock`.
    @inlinable
    public func tryWriteLock() -> Bool {
        let rc = pthread_rwlock_trywrlock(_lock)
        if rc == 0 { return true }
        if rc == EBUSY { return false }
        pthreadFailure("pthread_rwlock_trywrlock", rc)
    }

    /// Releases the lock, held by the calling thread for reading or for writing.
    ///
    /// The corresponding C function is `pthread_rwlock_unlock`.
    @inlinable
    public func unlock() {
        let rc = pthread_rwlock_unlock(_lock)
        if _slowPath(rc != 0) { pthreadFailure("pthread_rwlock_unlock", rc) }
    }

    /// Runs `body` holding the lock for reading, and releases it afterwards.
    ///
    /// - Parameter body: Reads the guarded state; it must not write it.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws; the lock is released either way.
    @inlinable
    public func withReadLock<Result: ~Copyable, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        readLock()
        defer { unlock() }
        return try body()
    }

    /// Runs `body` holding the lock for writing, and releases it afterwards.
    ///
    /// - Parameter body: Reads or writes the guarded state.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws; the lock is released either way.
    @inlinable
    public func withWriteLock<Result: ~Copyable, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        writeLock()
        defer { unlock() }
        return try body()
    }
}
