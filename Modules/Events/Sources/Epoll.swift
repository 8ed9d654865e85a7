#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CStrataSys
import StrataSockets

/// Watches descriptors with one epoll instance: each descriptor is added once, edge-triggered,
/// for both directions (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`), with its number as the
/// event's data, and deleted before it is closed.
struct EpollWatcher: ReadinessWatcher {
    /// The epoll instance (owned by ``EpollBackend``).
    let epollFD: CInt

    /// The interest of every watched descriptor.
    static let interest: UInt32 = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue

    mutating func watch(_ fd: CInt) -> Int32 {
        var event = epoll_event()
        event.events = Self.interest
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        let rc = sysEpollControl(epollFD, readinessCInt(EPOLL_CTL_ADD), fd, &event)
        // EEXIST: still registered under the same (file, number) pair — a duplicate of a closed
        // descriptor keeps the registration alive. Take it over.
        if rc == -EEXIST { return sysEpollControl(epollFD, readinessCInt(EPOLL_CTL_MOD), fd, &event) }
        return rc
    }

    mutating func unwatch(_ fd: CInt) {
        // ENOENT or EBADF would mean the descriptor was closed behind the loop's back; it is being
        // closed now either way, and close(2) reports what matters.
        _ = sysEpollControl(epollFD, readinessCInt(EPOLL_CTL_DEL), fd, nil)
    }
}

/// The Linux epoll backend: readiness turned into completions (DESIGN §4).
///
/// The completion semantics — try each call first, per-descriptor FIFOs, multishot accept and
/// pooled receive emulated by draining until EAGAIN, the per-side drain bound, cancellation and
/// the EMFILE policy — are those of ``ReadinessEngine``, shared with kqueue; this class adds the
/// epoll instance, the eventfd wakeup and the wait.
///
/// - **Wakeup:** an eventfd (`EFD_NONBLOCK | EFD_CLOEXEC`) watched edge-triggered under a data
///   value no descriptor can have; ``Waker`` owns it. Its event drains the counter and calls
///   ``Waker/consumed()``, and never surfaces as a completion.
/// - **Timeouts:** `epoll_pwait2` with the exact nanoseconds when the kernel offers it (Linux 5.11;
///   probed once at start-up), else `epoll_wait` with milliseconds rounded **up**, so a timer
///   0.3 ms away waits 1 ms instead of returning at once and spinning until it is due.
///   nil waits without limit; 0 polls. A wait never blocks while a side is deferred by the
///   drain bound. EINTR returns (the loop re-enters and recomputes its timeout).
/// - **Batch:** one wait reports at most `completionBatch` events (the event array is allocated
///   once); more stay in the kernel's ready list for the next wait.
///
/// - Warning: Not thread-safe. Only ``waker`` may be used from other threads.
final class EpollBackend: EventBackend {
    /// Calls per side of one descriptor per wait (see ``ReadinessEngine``): enough to amortise a
    /// wait over a burst of accepts or receives, small enough that one busy socket cannot hold
    /// up the others for long. The same bound as libxev's and NIO's read loops, in spirit.
    static let drainLimit = 64

    /// The event data that marks the wakeup eventfd (descriptor numbers are below 2^31).
    static let wakeData = UInt64.max

    let kind = BackendKind.epoll
    let summary: String
    let waker: Waker

    /// The epoll instance, closed in `deinit`.
    private let epollFD: CInt
    private let engine: ReadinessEngine<EpollWatcher>
    /// The event array, `capacity` entries, allocated once (freed in `deinit`).
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity: CInt
    /// Whether waits use `epoll_pwait2` (nanosecond timeouts): probed at start-up, turned off for
    /// good if the kernel later says ENOSYS. Tests turn it off to exercise the millisecond path.
    var preciseWait: Bool

    /// Opens an epoll instance and its wakeup eventfd.
    ///
    /// - Throws: ``EventsError`` (`.systemCall`) when `epoll_create1` or `eventfd` fails, with
    ///   the errno and what to do (usually: the process is out of descriptors).
    init(configuration: EventLoop.Configuration) throws(EventsError) {
        let epollFD = sysEpollCreate()
        guard epollFD >= 0 else {
            throw Self.setupError("epoll_create1(EPOLL_CLOEXEC)", epollFD)
        }
        let eventFD = sysEventfd()
        guard eventFD >= 0 else {
            sysClose(epollFD)
            throw Self.setupError("eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)", eventFD)
        }
        var wakeEvent = epoll_event()
        wakeEvent.events = EPOLLIN.rawValue | EPOLLET.rawValue
        wakeEvent.data.u64 = Self.wakeData
        let rc = sysEpollControl(epollFD, readinessCInt(EPOLL_CTL_ADD), eventFD, &wakeEvent)
        guard rc == 0 else {
            sysClose(eventFD)
            sysClose(epollFD)
            throw Self.setupError("epoll_ctl(EPOLL_CTL_ADD, eventfd)", rc)
        }
        self.epollFD = epollFD
        waker = Waker(descriptor: eventFD, mechanism: .eventfd)
        engine = ReadinessEngine(watcher: EpollWatcher(epollFD: epollFD), drainLimit: Self.drainLimit,
                                 shortReadEndsDrain: true)
        capacity = CInt(clamping: configuration.completionBatch)
        events = .allocate(capacity: Int(capacity))
        events.initialize(repeating: epoll_event(), count: Int(capacity))
        #if canImport(Glibc)
        // Probe once with a zero timeout: ENOSYS (kernel < 5.11) or a seccomp refusal means
        // millisecond timeouts from now on.
        let probe = sysEpollWaitPrecise(epollFD, events, capacity, 0)
        preciseWait = probe >= 0 || probe == -EINTR
        #else
        preciseWait = false
        #endif
        let reserve = engine.reserveDescriptor >= 0 ? "reserve fd for EMFILE" : "no reserve fd (EMFILE pauses accepts)"
        let timeouts = preciseWait ? "epoll_pwait2 (ns timeouts)" : "epoll_wait (ms timeouts, rounded up)"
        summary = "epoll: edge-triggered, eventfd wakeup, \(timeouts), "
            + "drain limit \(Self.drainLimit), \(capacity) events per wait, \(reserve)"
    }

    deinit {
        events.deinitialize(count: Int(capacity))
        events.deallocate()
        sysClose(epollFD)
    }

    private static func setupError(_ call: String, _ result: Int32) -> EventsError {
        let errno = Errno(rawValue: -result)
        return EventsError(.systemCall,
                           "epoll backend: \(call) failed: \(errno) — the process may be out of descriptors "
                               + "(raise RLIMIT_NOFILE or close some) or out of memory",
                           cause: SystemCallError(systemCall: String(call.prefix { $0 != "(" }), errno: errno))
    }

    // MARK: - EventBackend

    func submit(_ submission: Submission, completions: inout [RawCompletion]) {
        engine.submit(submission, completions: &completions)
    }

    func cancel(userData: UInt64, completions: inout [RawCompletion]) {
        engine.cancel(userData: userData, completions: &completions)
    }

    func cancelAll(fd: CInt, completions: inout [RawCompletion]) {
        engine.cancelAll(fd: fd, completions: &completions)
    }

    func close(fd: CInt, userData: UInt64, completions: inout [RawCompletion]) {
        engine.close(fd: fd, userData: userData, completions: &completions)
    }

    func register(_ pool: BufferPool) throws(EventsError) {
        // The engine picks buffers from `pool.free` itself; nothing to tell the kernel.
    }

    func recycle(_ pool: BufferPool, _ id: UInt16) {
        engine.recycle(pool, id)
    }

    func wait(timeoutNanoseconds: Int64?, completions: inout [RawCompletion]) throws(EventsError) {
        let timeout: Int64? = engine.hasDeferredWork ? 0 : timeoutNanoseconds.map { max(0, $0) }
        engine.beginWait()
        let count = waitForEvents(timeout)
        if count < 0 && count != -EINTR {
            let errno = Errno(rawValue: -count)
            let call = preciseWait ? "epoll_pwait2" : "epoll_wait"
            throw EventsError(.systemCall,
                              "epoll backend: \(call) failed: \(errno) — the epoll descriptor \(epollFD) "
                                  + "is unusable; create a new loop",
                              cause: SystemCallError(systemCall: call, errno: errno))
        }
        for i in 0..<Int(max(count, 0)) {
            let event = events[i]
            if event.data.u64 == Self.wakeData {
                sysEventfdDrain(waker.descriptor)
                waker.consumed()
                continue
            }
            let fd = CInt(truncatingIfNeeded: event.data.u64)
            let flags = event.events
            let readable = flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            let writable = flags & (EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            let hangup = flags & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            engine.ready(fd, readable: readable, writable: writable, hangup: hangup, completions: &completions)
        }
        engine.finishWait(completions: &completions)
    }

    /// One epoll wait: the number of events, or -errno.
    private func waitForEvents(_ timeoutNanoseconds: Int64?) -> Int32 {
        #if canImport(Glibc)
        if preciseWait {
            let rc = sysEpollWaitPrecise(epollFD, events, capacity, timeoutNanoseconds)
            if rc != -ENOSYS { return rc }
            preciseWait = false  // a seccomp filter changed its mind: fall back for good
        }
        #endif
        return sysEpollWait(epollFD, events, capacity, Self.milliseconds(roundingUp: timeoutNanoseconds))
    }

    /// The `epoll_wait` timeout for `nanoseconds`: -1 for nil, 0 for 0, else whole milliseconds
    /// rounded up (so a sub-millisecond wait still sleeps) and capped at `Int32.max`.
    static func milliseconds(roundingUp nanoseconds: Int64?) -> CInt {
        guard let ns = nanoseconds else { return -1 }
        if ns <= 0 { return 0 }
        let ms = ns / 1_000_000 + (ns % 1_000_000 == 0 ? 0 : 1)
        return CInt(clamping: ms)
    }

    // MARK: - Introspection (tests)

    /// The engine, for tests that inspect parked operations or inject faults.
    var readinessEngine: ReadinessEngine<EpollWatcher> { engine }
}
#endif
