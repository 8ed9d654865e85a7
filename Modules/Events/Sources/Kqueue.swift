#if canImport(Darwin) || os(FreeBSD)
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc  // FreeBSD's Swift names its libc module Glibc
#endif
import CStrataSys
import StrataSockets

// The kqueue backend (Darwin, FreeBSD): the system-call half. The translation (changelist,
// kevent → readiness) is KqueueTranslation.swift and the completion engine is
// Internal/ReadinessEngine.swift, both compiled and tested on Linux; this file only converts
// between their values and the system's `struct kevent` and makes the calls.

extension Kevent {
    /// The value of a system `kevent`.
    init(_ system: kevent) {
        self.init(ident: UInt64(system.ident), filter: system.filter, flags: system.flags, fflags: system.fflags,
                  data: Int64(system.data), udata: UInt64(UInt(bitPattern: system.udata)))
        #if os(FreeBSD)
        ext = Extension(e0: system.ext.0, e1: system.ext.1, e2: system.ext.2, e3: system.ext.3)
        #endif
    }

    /// The system `kevent` for this value.
    var system: kevent {
        var event = kevent()
        event.ident = UInt(ident)
        event.filter = filter
        event.flags = flags
        event.fflags = fflags
        event.data = numericCast(data)
        event.udata = UnsafeMutableRawPointer(bitPattern: UInt(udata))
        #if os(FreeBSD)
        event.ext = (ext.e0, ext.e1, ext.e2, ext.e3)
        #endif
        return event
    }
}

/// `kevent(2)`: applies `changeCount` changes and collects up to `eventCapacity` events, waiting
/// at most `timeoutNanoseconds` (nil: no limit). The number of events, or -errno. EINTR is
/// returned, not retried (the changes were applied; the loop re-enters).
@inline(never)
func sysKevent(_ kqueueFD: CInt, _ changes: UnsafePointer<kevent>?, _ changeCount: CInt,
               _ events: UnsafeMutablePointer<kevent>?, _ eventCapacity: CInt, _ timeoutNanoseconds: Int64?) -> Int32 {
    let n: CInt
    if let ns = timeoutNanoseconds {
        var timeout = timespec(tv_sec: numericCast(ns / 1_000_000_000), tv_nsec: numericCast(ns % 1_000_000_000))
        n = kevent(kqueueFD, changes, changeCount, events, eventCapacity, &timeout)
    } else {
        n = kevent(kqueueFD, changes, changeCount, events, eventCapacity, nil)
    }
    return n >= 0 ? n : -errno
}

/// Fires the loop's `EVFILT_USER` event with `NOTE_TRIGGER` on `fd` (the waker's duplicate of the
/// kqueue descriptor). Called by ``Waker/wake()`` from any thread; EINTR is retried. Any other
/// failure means the waker's own descriptor is broken, which is a bug: trap naming it.
func sysKqueueTrigger(_ fd: CInt, ident: UInt) {
    var change = KqueueTranslator.host.wakeTrigger(ident: ident).system
    while true {
        let rc = sysKevent(fd, &change, 1, nil, 0, 0)
        if rc >= 0 { return }
        if rc != -EINTR {
            preconditionFailure(
                "kevent(EVFILT_USER, NOTE_TRIGGER) on the waker's descriptor \(fd) failed: \(Errno(rawValue: -rc))")
        }
    }
}

/// Watches descriptors through kqueue's changelist: a watch queues `EV_ADD | EV_CLEAR` for both
/// filters, submitted with the next wait (kqueue reports readiness that already exists when
/// a filter is added, so nothing is lost by waiting); a failed change comes back as an
/// `EV_ERROR` event. Nothing is deleted: closing a descriptor removes its kevents, so unwatching
/// only drops changes not yet submitted.
struct KqueueWatcher: ReadinessWatcher {
    /// The platform's translation.
    let translator: KqueueTranslator
    /// Changes queued for the next `kevent` call.
    var changes: [Kevent] = []

    mutating func watch(_ fd: CInt) -> Int32 {
        translator.appendWatch(of: fd, to: &changes)
        return 0
    }

    mutating func unwatch(_ fd: CInt) {
        translator.dropPendingChanges(for: fd, from: &changes)
    }
}

/// The Darwin/FreeBSD kqueue backend: readiness with `EV_CLEAR`, turned into completions exactly
/// like ``EpollBackend`` (the shared ``ReadinessEngine``: try first, per-descriptor FIFOs,
/// multishot emulation, the drain bound, the EMFILE policy).
///
/// - **Wakeup:** an `EVFILT_USER` event (`EV_CLEAR`) with identifier ``wakeIdent``; the
///   ``Waker`` owns a close-on-exec duplicate of the kqueue descriptor and fires the event with
///   `NOTE_TRIGGER`, so a waker that outlives the loop never writes to a reused descriptor.
/// - **Changes** ride on the wait's `kevent` call. At most `completionBatch` changes go per call,
///   so every failed change has room for its `EV_ERROR` event; a longer changelist is submitted
///   in zero-timeout calls first.
/// - **Timeouts** are exact (`timespec`); nil waits without limit; 0 polls.
///
/// - Warning: Not thread-safe. Only ``waker`` may be used from other threads.
final class KqueueBackend: EventBackend {
    /// Calls per side of one descriptor per wait (see ``ReadinessEngine``).
    static let drainLimit = 64
    /// The `EVFILT_USER` identifier of the wakeup (identifiers are per filter, so 0 collides with
    /// no descriptor).
    static let wakeIdent: UInt = 0

    let kind = BackendKind.kqueue
    let summary: String
    let waker: Waker

    private let translator = KqueueTranslator.host
    /// The kqueue, closed in `deinit`.
    private let kqueueFD: CInt
    private let engine: ReadinessEngine<KqueueWatcher>
    /// `capacity` events, allocated once; also the most changes one call submits.
    private let events: UnsafeMutablePointer<kevent>
    /// The changes of one call, converted to the system layout; `capacity` entries.
    private let changeBuffer: UnsafeMutablePointer<kevent>
    private let capacity: CInt

    /// Opens a kqueue and registers its wakeup event.
    ///
    /// - Throws: ``EventsError``: `.backendUnavailable` when this system's `struct kevent` or
    ///   constants differ from the ABI table (regenerate the table); `.systemCall` when `kqueue`,
    ///   `fcntl` or the wakeup registration fails.
    init(configuration: EventLoop.Configuration) throws(EventsError) {
        if let mismatch = Self.abiMismatch(KqueueTranslator.host) {
            throw EventsError(.backendUnavailable,
                              "kqueue backend: \(mismatch) — the transcribed ABI table for this platform is wrong; "
                                + "run `strata-abi generate` on this host and fix abi-tables/ and "
                                + "KqueueTranslation.swift")
        }
        let kq = kqueue()
        guard kq >= 0 else { throw Self.setupError("kqueue", -errno) }
        guard fcntl(kq, F_SETFD, FD_CLOEXEC) == 0 else {
            let code = errno
            sysClose(kq)
            throw Self.setupError("fcntl(F_SETFD, FD_CLOEXEC)", -code)
        }
        let wakeFD = fcntl(kq, F_DUPFD_CLOEXEC, 0)
        guard wakeFD >= 0 else {
            let code = errno
            sysClose(kq)
            throw Self.setupError("fcntl(F_DUPFD_CLOEXEC)", -code)
        }
        var change = translator.wakeRegistration(ident: Self.wakeIdent).system
        var receipt = kevent()
        let rc = sysKevent(kq, &change, 1, &receipt, 1, 0)
        let outcome = rc == 1 ? translator.readiness(of: Kevent(receipt), wakeIdent: Self.wakeIdent) : .ignored
        guard case .changeApplied = outcome else {
            sysClose(wakeFD)
            sysClose(kq)
            let result: Int32
            if rc < 0 {
                result = rc
            } else if case .changeFailed(_, _, let r) = outcome {
                result = r
            } else {
                result = -EINVAL  // no receipt came back: the kernel did not answer the change
            }
            throw Self.setupError("kevent(EVFILT_USER, EV_ADD | EV_CLEAR)", result)
        }
        kqueueFD = kq
        waker = Waker(descriptor: wakeFD, mechanism: .kqueueUser(ident: Self.wakeIdent))
        engine = ReadinessEngine(watcher: KqueueWatcher(translator: translator), drainLimit: Self.drainLimit)
        capacity = CInt(clamping: configuration.completionBatch)
        events = .allocate(capacity: Int(capacity))
        events.initialize(repeating: kevent(), count: Int(capacity))
        changeBuffer = .allocate(capacity: Int(capacity))
        changeBuffer.initialize(repeating: kevent(), count: Int(capacity))
        let reserve = engine.reserveDescriptor >= 0 ? "reserve fd for EMFILE" : "no reserve fd (EMFILE pauses accepts)"
        summary = "kqueue: EV_CLEAR, EVFILT_USER wakeup, ns timeouts, drain limit \(Self.drainLimit), "
            + "\(capacity) events per wait, \(reserve)"
    }

    deinit {
        events.deinitialize(count: Int(capacity))
        events.deallocate()
        changeBuffer.deinitialize(count: Int(capacity))
        changeBuffer.deallocate()
        sysClose(kqueueFD)
    }

    /// Compares the headers this file is compiled with to the translator's table values; nil
    /// when they agree, else the first difference as `name: table a, headers b`.
    static func abiMismatch(_ t: KqueueTranslator) -> String? {
        func offset(_ field: PartialKeyPath<kevent>) -> Int64? {
            MemoryLayout<kevent>.offset(of: field).map(Int64.init)
        }
        let checks: [(String, Int64, Int64?)] = [
            ("sizeof(struct kevent)", Int64(t.layout.size), Int64(MemoryLayout<kevent>.size)),
            ("_Alignof(struct kevent)", Int64(t.layout.alignment), Int64(MemoryLayout<kevent>.alignment)),
            ("offsetof(kevent, ident)", Int64(t.layout.ident.offset), offset(\.ident)),
            ("offsetof(kevent, filter)", Int64(t.layout.filter.offset), offset(\.filter)),
            ("offsetof(kevent, flags)", Int64(t.layout.flags.offset), offset(\.flags)),
            ("offsetof(kevent, fflags)", Int64(t.layout.fflags.offset), offset(\.fflags)),
            ("offsetof(kevent, data)", Int64(t.layout.data.offset), offset(\.data)),
            ("offsetof(kevent, udata)", Int64(t.layout.udata.offset), offset(\.udata)),
            ("EVFILT_READ", Int64(t.constants.filterRead), Int64(EVFILT_READ)),
            ("EVFILT_WRITE", Int64(t.constants.filterWrite), Int64(EVFILT_WRITE)),
            ("EVFILT_USER", Int64(t.constants.filterUser), Int64(EVFILT_USER)),
            ("EV_ADD", Int64(t.constants.add), Int64(EV_ADD)),
            ("EV_DELETE", Int64(t.constants.delete), Int64(EV_DELETE)),
            ("EV_CLEAR", Int64(t.constants.clear), Int64(EV_CLEAR)),
            ("EV_EOF", Int64(t.constants.endOfFile), Int64(EV_EOF)),
            ("EV_ERROR", Int64(t.constants.error), Int64(EV_ERROR)),
            ("EV_RECEIPT", Int64(t.constants.receipt), Int64(EV_RECEIPT)),
            ("NOTE_TRIGGER", Int64(t.constants.noteTrigger), Int64(NOTE_TRIGGER)),
        ]
        #if os(FreeBSD)
        let platformChecks: [(String, Int64, Int64?)] = [
            ("offsetof(kevent, ext)", Int64(t.layout.ext?.offset ?? -1), offset(\.ext)),
        ]
        #else
        let platformChecks: [(String, Int64, Int64?)] = []
        #endif
        for (name, table, headers) in checks + platformChecks where headers != table {
            return "\(name): table \(table), headers \(headers.map(String.init) ?? "not a stored field")"
        }
        return nil
    }

    private static func setupError(_ call: String, _ result: Int32) -> EventsError {
        let errno = Errno(rawValue: -result)
        return EventsError(.systemCall,
                           "kqueue backend: \(call) failed: \(errno) — the process may be out of descriptors "
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
        // Submit the changelist in slices no longer than the event array, so that every failed
        // change has room for its EV_ERROR event; only the last slice waits.
        var submitted = 0
        repeat {
            let slice = min(engine.watcher.changes.count - submitted, Int(capacity))
            for i in 0..<slice { changeBuffer[i] = engine.watcher.changes[submitted + i].system }
            submitted += slice
            let last = submitted == engine.watcher.changes.count
            let count = sysKevent(kqueueFD, changeBuffer, CInt(slice), events, capacity, last ? timeout : 0)
            if count < 0 && count != -EINTR {
                engine.watcher.changes.removeAll(keepingCapacity: true)
                let errno = Errno(rawValue: -count)
                throw EventsError(.systemCall,
                                  "kqueue backend: kevent failed: \(errno) — the kqueue descriptor \(kqueueFD) is "
                                      + "unusable; create a new loop",
                                  cause: SystemCallError(systemCall: "kevent", errno: errno))
            }
            for i in 0..<Int(max(count, 0)) {
                let readiness = translator.readiness(of: Kevent(events[i]), wakeIdent: Self.wakeIdent)
                if translator.deliver(readiness, to: engine, completions: &completions) { waker.consumed() }
            }
            if last { break }
        } while true
        engine.watcher.changes.removeAll(keepingCapacity: true)
        engine.finishWait(completions: &completions)
    }
}
#endif
