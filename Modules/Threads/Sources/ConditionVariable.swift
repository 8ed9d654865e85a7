#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A condition variable over a heap-allocated `pthread_cond_t`, used with a ``Mutex``.
///
/// A thread waits for a condition on state that a mutex guards; another thread changes
/// the state under the same mutex and signals:
///
///     let mutex = Mutex()
///     let changed = ConditionVariable()
///     var ready = false        // guarded by mutex
///
///     // Waiter: re-check the condition after every wake-up (they can be spurious).
///     mutex.lock()
///     while !ready {
///         if changed.wait(on: mutex, timeout: .seconds(5)) { break }   // timed out
///     }
///     mutex.unlock()
///
///     // Signaller:
///     mutex.withLock { ready = true }
///     changed.signal()
///
/// Timed waits measure time on a clock that never jumps: on Linux and FreeBSD the condition
/// is created with `pthread_condattr_setclock(CLOCK_MONOTONIC)`, so setting the wall clock
/// neither shortens nor stretches a timeout; on Darwin, which has no such attribute, they use
/// `pthread_cond_timedwait_relative_np`.
public final class ConditionVariable: @unchecked Sendable {
    // @unchecked Sendable: the only stored property points to the pthread condition
    // variable, which is itself a synchronization primitive usable from any thread.
    let _condition: UnsafeMutablePointer<pthread_cond_t>

    /// Creates a condition variable.
    ///
    /// Stops the process if `pthread_cond_init` fails, which the supported C libraries never
    /// do for a process-private condition variable.
    public init() {
        _condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        _condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        var rc = pthread_condattr_init(&attributes)
        if rc != 0 { pthreadFailure("pthread_condattr_init", rc) }
        defer {
            let destroyed = pthread_condattr_destroy(&attributes)
            if destroyed != 0 { pthreadFailure("pthread_condattr_destroy", destroyed) }
        }
        #if !canImport(Darwin)
        rc = pthread_condattr_setclock(&attributes, Self.clock)
        if rc != 0 { pthreadFailure("pthread_condattr_setclock", rc) }
        #endif
        rc = pthread_cond_init(_condition, &attributes)
        if rc != 0 { pthreadFailure("pthread_cond_init", rc) }
    }

    deinit {
        let rc = pthread_cond_destroy(_condition)
        if rc != 0 { pthreadFailure("pthread_cond_destroy", rc) }
        _condition.deinitialize(count: 1)
        _condition.deallocate()
    }

    #if !canImport(Darwin)
    /// The clock that timed waits measure: `CLOCK_MONOTONIC`.
    static var clock: clockid_t { clockid_t(CLOCK_MONOTONIC) }
    #endif

    /// Releases `mutex`, waits for a signal, and reacquires `mutex` before returning.
    ///
    /// The calling thread must hold `mutex`. Wake-ups can be spurious: wait in a loop that
    /// re-checks the condition.
    ///
    /// - Parameter mutex: The mutex that guards the condition, held by the calling thread.
    ///
    /// The corresponding C function is `pthread_cond_wait`.
    public func wait(on mutex: Mutex) {
        let rc = pthread_cond_wait(_condition, mutex._cell.pointer)
        if rc != 0 { pthreadFailure("pthread_cond_wait", rc) }
    }

    /// Releases `mutex`, waits for a signal or for `timeout` to pass, and reacquires `mutex`.
    ///
    /// The calling thread must hold `mutex`. Wake-ups can be spurious: wait in a loop that
    /// re-checks the condition and the time left. A zero or negative timeout returns `true`
    /// at once without releasing the mutex. Timeouts too large to represent wait until the
    /// largest representable time.
    ///
    /// - Parameters:
    ///   - mutex: The mutex that guards the condition, held by the calling thread.
    ///   - timeout: How long to wait at most, measured on `CLOCK_MONOTONIC` (Linux, FreeBSD)
    ///     or by the kernel's relative timer (Darwin).
    /// - Returns: `true` if the timeout passed, `false` if the thread was woken before it
    ///   (by ``signal()``, ``broadcast()`` or spuriously).
    ///
    /// The corresponding C function is `pthread_cond_timedwait`
    /// (`pthread_cond_timedwait_relative_np` on Darwin).
    @discardableResult
    public func wait(on mutex: Mutex, timeout: Duration) -> Bool {
        guard timeout > .zero else { return true }
        #if canImport(Darwin)
        var relative = Self.relativeTime(timeout)
        let rc = pthread_cond_timedwait_relative_np(_condition, mutex._cell.pointer, &relative)
        #else
        var now = timespec()
        let clockRC = clock_gettime(Self.clock, &now)
        if clockRC != 0 { pthreadFailure("clock_gettime", errno) }
        var deadline = Self.adding(timeout, to: now)
        let rc = pthread_cond_timedwait(_condition, mutex._cell.pointer, &deadline)
        #endif
        if rc == 0 { return false }
        if rc == ETIMEDOUT { return true }
        pthreadFailure("pthread_cond_timedwait", rc)
    }

    /// Wakes at least one thread waiting on this condition, if any.
    ///
    /// The corresponding C function is `pthread_cond_signal`.
    public func signal() {
        let rc = pthread_cond_signal(_condition)
        if rc != 0 { pthreadFailure("pthread_cond_signal", rc) }
    }

    /// Wakes every thread waiting on this condition.
    ///
    /// The corresponding C function is `pthread_cond_broadcast`.
    public func broadcast() {
        let rc = pthread_cond_broadcast(_condition)
        if rc != 0 { pthreadFailure("pthread_cond_broadcast", rc) }
    }

    /// Largest `tv_sec` this platform's `time_t` holds.
    static let maximumSeconds = Int64(time_t.max)

    /// `duration` as a `timespec`, saturating at the largest representable time.
    static func relativeTime(_ duration: Duration) -> timespec {
        let (seconds, attoseconds) = duration.components
        if seconds >= maximumSeconds { return makeTimespec(seconds: maximumSeconds, nanoseconds: 999_999_999) }
        return makeTimespec(seconds: seconds, nanoseconds: attoseconds / 1_000_000_000)
    }

    /// `start + duration` for a positive `duration`, saturating at the largest representable time.
    static func adding(_ duration: Duration, to start: timespec) -> timespec {
        let (seconds, attoseconds) = duration.components
        var nanoseconds = Int64(start.tv_nsec) + attoseconds / 1_000_000_000
        var carry: Int64 = 0
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            carry = 1
        }
        let (partial, overflow1) = Int64(start.tv_sec).addingReportingOverflow(seconds)
        let (total, overflow2) = partial.addingReportingOverflow(carry)
        if overflow1 || overflow2 || total >= maximumSeconds {
            return makeTimespec(seconds: maximumSeconds, nanoseconds: 999_999_999)
        }
        return makeTimespec(seconds: total, nanoseconds: nanoseconds)
    }

    private static func makeTimespec(seconds: Int64, nanoseconds: Int64) -> timespec {
        var value = timespec()
        value.tv_sec = time_t(seconds)
        value.tv_nsec = .init(nanoseconds)
        return value
    }
}
