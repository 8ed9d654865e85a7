#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that is only reachable while a pthread mutex is held.
///
///     let hits = LockedValue([String: Int]())
///     hits.withLock { $0["/index.html", default: 0] += 1 }
///     let total = hits.withLock { $0.values.reduce(0, +) }
///
/// The `pthread_mutex_t` and the value share one heap block, the mutex first (sized and
/// aligned by the imported type, as in ``Mutex``) and the value right after it, so that a
/// critical section touches one allocation and, for small values, one cache line. The block
/// never moves. The class is `Sendable` when `Value` is: the lock is what makes sharing a
/// mutable value between threads safe. `Value` may be `~Copyable`.
///
/// - Warning: The closure runs with the lock held: keep it short, never block or `await` in
///   it, and never call `withLock` on the same instance from inside it (a debug build stops
///   with `EDEADLK`; a release build deadlocks).
public final class LockedValue<Value: ~Copyable> {
    @usableFromInline
    let _cell: _MutexCell

    // Guarded by `_cell`; only dereferenced between lock and unlock in `withLock`.
    @usableFromInline
    let _value: UnsafeMutablePointer<Value>

    /// Where the value sits in the block, the block's size and its alignment.
    private static var layout: (valueOffset: Int, byteCount: Int, alignment: Int) {
        let mutex = MemoryLayout<pthread_mutex_t>.self
        let value = MemoryLayout<Value>.self
        let valueOffset = (mutex.size + value.alignment - 1) / value.alignment * value.alignment
        return (valueOffset, valueOffset + max(value.size, 1), max(mutex.alignment, value.alignment))
    }

    /// Creates a locked value.
    ///
    /// - Parameter initialValue: The value to protect.
    public init(_ initialValue: consuming Value) {
        let layout = Self.layout
        let block = UnsafeMutableRawPointer.allocate(byteCount: layout.byteCount, alignment: layout.alignment)
        _cell = _MutexCell(initializing: block.bindMemory(to: pthread_mutex_t.self, capacity: 1))
        _value = (block + layout.valueOffset).bindMemory(to: Value.self, capacity: 1)
        _value.initialize(to: initialValue)
    }

    deinit {
        _value.deinitialize(count: 1)
        _cell.destroy()
        UnsafeMutableRawPointer(_cell.pointer).deallocate()
    }

    /// Runs `body` with the lock held and exclusive access to the value.
    ///
    /// - Parameter body: Reads or changes the value.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws; the lock is released either way.
    @inlinable
    public func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        _cell.lock()
        defer { _cell.unlock() }
        return try body(&_value.pointee)
    }

    /// Runs `body` with the lock held if no other thread holds it, without blocking.
    ///
    /// - Parameter body: Reads or changes the value.
    /// - Returns: What `body` returns, or nil if the lock was busy and `body` did not run.
    /// - Throws: What `body` throws; the lock is released either way.
    @inlinable
    public func withLockIfAvailable<Result: ~Copyable, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard _cell.tryLock() else { return nil }
        defer { _cell.unlock() }
        return try body(&_value.pointee)
    }
}

// Sendable when the value is: every access to the value happens inside `withLock` or
// `withLockIfAvailable`, with the pthread mutex held.
extension LockedValue: @unchecked Sendable where Value: ~Copyable & Sendable {}
