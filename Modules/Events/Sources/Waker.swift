#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Wakes an ``EventLoop`` from any thread.
///
/// ``wake()`` guarantees that the loop's ``EventLoop/runOnce(timeout:_:)`` returns at least
/// once after the call begins: if the loop is waiting, the wait ends; if it is running, the
/// current iteration counts. Wakes coalesce: while one is pending, more cost one atomic
/// exchange and no system call, so a storm of wakes from many threads costs one write.
///
/// The waker owns its descriptor (an eventfd on Linux, a duplicate of the kqueue descriptor
/// on Darwin/BSD) and closes it when the last reference goes, so a waker that outlives its
/// loop writes to nothing that could have been reused.
public final class Waker: Sendable {
    enum Mechanism: Sendable {
        /// Linux: write 1 to an eventfd the backend watches.
        case eventfd
        /// Darwin/BSD: trigger an EVFILT_USER event with this identifier.
        case kqueueUser(ident: UInt)
    }

    let descriptor: CInt
    let mechanism: Mechanism
    let pending = Atomic<Bool>(false)

    init(descriptor: CInt, mechanism: Mechanism) {
        self.descriptor = descriptor
        self.mechanism = mechanism
    }

    deinit { _ = sysClose(descriptor) }

    /// Wakes the loop. Safe from any thread, any number of times.
    public func wake() {
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        switch mechanism {
        case .eventfd:
            sysEventfdWrite(descriptor)
        case .kqueueUser(let ident):
            sysKqueueTrigger(descriptor, ident: ident)
        }
    }

    /// Called by the backend after it consumed the wakeup (read the eventfd, reaped the
    /// user event): wakes after this point write again.
    func consumed() {
        pending.store(false, ordering: .releasing)
    }
}
