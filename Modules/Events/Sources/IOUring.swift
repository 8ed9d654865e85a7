// The io_uring backend (DESIGN §4): the kernel performs each operation and posts its completion.
//
// Shape of an iteration: the loop's submit/cancel/close calls fill submission queue entries
// (through the C shim; an SQE pointer never reaches Swift); `wait` submits them and waits for
// completions in one io_uring_enter, then copies completions out of the CQ ring in batches and
// translates them, without calling back into the loop. Work that finds the SQ full after one
// submit waits in a FIFO drained before the next enter, so nothing is dropped and nothing blocks.
//
// What the kernel sees and what the loop sees differ in four places, all handled here:
// - the wakeup: one IORING_OP_READ of the eventfd stays armed with a reserved user_data; its
//   completion re-arms it and never reaches the loop;
// - cancels: their SQEs carry a reserved user_data and IOSQE_CQE_SKIP_SUCCESS, and the CQEs of
//   cancels that found nothing are dropped;
// - send_zc: the kernel posts a result (with IORING_CQE_F_MORE) and later a notification
//   (IORING_CQE_F_NOTIF) when it no longer reads the buffer; the loop gets one completion, with the
//   result, at the notification;
// - writev and sendfile: writev goes out as IORING_OP_SENDMSG with MSG_NOSIGNAL (IORING_OP_WRITEV
//   on a socket whose peer has gone raises SIGPIPE, which kills a process that does not ignore
//   it) and falls back to WRITEV for descriptors that are not sockets; sendfile waits for POLLOUT
//   through the ring and then calls sendfile(2) once (see `TrackedOperation`).
//
// Those three kinds of operation carry a backend-chosen user_data (a slot in `tracked`); all other
// operations carry the loop's. The loop's user_data is an OperationID whose slot (low 32 bits) is
// below UInt32.max (EventLoop.allocate's precondition), so every user_data whose low 32 bits are
// all ones is free for the backend: `ReservedUserData`.
#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CStrataSys
import StrataSockets

/// The io_uring backend: a completion queue driven by liburing 2.3 (DESIGN §4).
///
/// Set-up (see `IOUringSetup`): `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL | CQSIZE`
/// (CQ = 2 × SQ) plus `R_DISABLED`, falling back on EINVAL to `COOP_TASKRUN | TASKRUN_FLAG`, then
/// to no flags; NODROP, SUBMIT_STABLE, FAST_POLL and EXT_ARG are required, and a probe checks
/// every opcode used. A ring that cannot start throws ``EventsError/Code/backendUnavailable``
/// naming the reason (for example `kernel.io_uring_disabled = 2`).
///
/// Thread binding: the first thread that enters the kernel through this backend (the first
/// `wait`, or a submit that found the SQ full) enables the ring, becomes its single issuer and
/// registers the ring descriptor in its own table; the loop must stay on that thread, which is
/// checked. Creating the loop on another thread is fine.
///
/// - Warning: Not thread-safe, like ``EventLoop``: only ``waker`` may be used from other threads.
final class IOUringBackend: EventBackend {
    // MARK: Types

    /// user_data values the loop never uses (their low 32 bits are all ones).
    enum ReservedUserData {
        /// Low half shared by every reserved value.
        static let marker: UInt64 = 0xFFFF_FFFF
        /// The IORING_OP_READ armed on the wakeup eventfd.
        static let wake: UInt64 = 0 << 32 | marker
        /// Every cancel SQE (per operation, per descriptor, and the teardown cancel-all).
        static let cancel: UInt64 = 1 << 32 | marker
        /// Tracked operation slot `i` is `(i + trackedBase) << 32 | marker`.
        static let trackedBase: UInt64 = 16
    }

    /// An operation whose kernel requests differ from what the loop sees; it carries the
    /// backend's user_data (`trackedUserData(slot)`) and finishes in `handleTracked`.
    struct TrackedOperation {
        /// Which translation the operation needs.
        enum Kind {
            /// IORING_OP_SEND_ZC: report the result at the notification CQE.
            case zeroCopySend
            /// IORING_OP_SENDMSG (MSG_NOSIGNAL) over the loop's iovecs; on -ENOTSOCK, IORING_OP_WRITEV.
            case writev
            /// IORING_OP_POLL_ADD(POLLOUT) on the socket, then one nonblocking sendfile(2) of up to
            /// `length` bytes when it is writable; re-armed if that finds the socket full again.
            ///
            /// io_uring has no sendfile opcode. The alternative, two linked IORING_OP_SPLICE
            /// (file → pipe → socket), runs every splice in an io-wq worker thread, needs a pipe
            /// per transfer, and leaves bytes stranded in the pipe whenever the socket half is
            /// short or fails (a full nonblocking socket, a reset), which must then be drained or
            /// the pipe discarded. Poll-then-sendfile keeps the kernel's zero-copy path (page
            /// cache → socket), gives exact partial counts, and never blocks on the socket. Its
            /// cost: a file page that is not cached is read from disk on the loop thread, as in
            /// nginx without thread pools. SIGPIPE is blocked around the call (StrataSockets).
            case sendfile
        }
        var kind: Kind = .writev
        var active = false
        /// The loop's operation.
        var submission = Submission(userData: 0, kind: .send, fd: -1)
        /// send_zc: the result CQE's value, kept until the notification.
        var zeroCopyResult: Int32?
        /// writev: the descriptor is not a socket; use IORING_OP_WRITEV.
        var usesWritev = false
        /// The loop cancelled the operation. A cancel SQE can miss a tracked operation between two
        /// of its kernel requests (the poll completed, the re-armed poll is not in the kernel yet,
        /// and the cancel finds nothing): so a cancelled operation is never re-issued, it finishes
        /// with -ECANCELED at its next completion instead.
        var cancelRequested = false
    }

    /// Work for the SQ, parked in order when the SQ stays full (and the FIFO's element).
    enum Deferred {
        /// A loop operation the kernel has not seen yet.
        case submission(Submission)
        /// The first or a repeated kernel request of a tracked operation (writev fallback,
        /// sendfile poll re-armed).
        case tracked(UInt32)
        /// IORING_OP_ASYNC_CANCEL of the request with this user_data.
        case cancel(target: UInt64)
        /// IORING_OP_ASYNC_CANCEL of every request on this descriptor.
        case cancelDescriptor(CInt)
        /// IORING_OP_CLOSE for the loop's close operation `userData`.
        case close(fd: CInt, userData: UInt64)
        /// The wakeup eventfd read.
        case wakeRead
    }

    /// What the backend did, for tests and diagnostics.
    struct Counters {
        /// io_uring_enter calls (waits, submits of a full SQ, overflow flushes).
        var enters = 0
        /// Completions copied out of the CQ ring.
        var completionsReaped = 0
        /// Times a submission found the SQ full and submitted what was queued.
        var submissionQueueFull = 0
        /// Work parked in the FIFO because the SQ stayed full.
        var deferred = 0
        /// Times completions were found waiting in the kernel's overflow list (IORING_SQ_CQ_OVERFLOW:
        /// the CQ ring was full) and moved into the ring by an enter with GETEVENTS.
        var overflowFlushes = 0
        /// -ENOBUFS completions of pooled receives (each one parks the receive).
        var noBuffers = 0
        /// Cancel completions that found nothing to cancel (dropped).
        var cancelMisses = 0
        /// IORING_OP_SEND_ZC requests, and notifications saying the kernel copied after all.
        var zeroCopySends = 0
        var zeroCopyCopied = 0
        /// sendfile polls re-armed because sendfile(2) found the socket full.
        var sendfileRetries = 0
    }

    /// Sends of at least this many bytes use IORING_OP_SEND_ZC by default; `Int.max` = never.
    ///
    /// Measured here (2 shared vCPUs, Linux 6.18, TCP over loopback, one send in flight per
    /// socket as Strata sends, release build, best of 3 runs; the "send vs send_zc" measurement in
    /// IOUringBackendTests.swift, `STRATA_BENCH_SEND_ZC=1`). CPU is the sending thread's, per KiB:
    ///
    ///     size     send MB/s  CPU ns/KiB   send_zc MB/s  CPU ns/KiB   notifications "copied"
    ///     4 KiB      1286        796            77         6403         16384 of 16384
    ///     16 KiB     2524        405           305         1655          4096 of 4096
    ///     64 KiB     3086        331          1077          544          1024 of 1024
    ///     256 KiB    3618        217          2764          330           256 of 256
    ///     1 MiB      5559        184          3246          296           256 of 256
    ///
    /// Loopback never sends zero-copy (every notification carries IORING_NOTIF_USAGE_ZC_COPIED:
    /// the pages are copied when the receiving socket takes them), so send_zc pays a second
    /// completion and, above all, holds the buffer until the notification — one round trip to
    /// the peer per send — and loses at every size. It is therefore off by default. On a NIC
    /// with scatter-gather zero copy can win for large sends (≥ 64 KiB is the usual break-even);
    /// set ``zeroCopyThreshold`` after measuring there. Note the cost beyond throughput: a buffer
    /// stays lent until the peer acknowledges its bytes, so closing a connection to a peer that
    /// stopped reading waits for the kernel to drop them.
    static let defaultZeroCopyThreshold = Int.max

    // MARK: State

    let kind: BackendKind = .ioUring
    let waker: Waker

    private let setup: IOUringSetup
    /// liburing's `struct io_uring *` (storage owned through `setup`).
    private let ring: OpaquePointer
    private let completionBatch: Int
    /// Scratch for completions copied out of the CQ ring (`cqeCapacity` entries).
    private let cqes: UnsafeMutablePointer<strata_uring_cqe>
    private let cqeCapacity: Int
    /// The 8 bytes the armed eventfd read writes into. Kept until the kernel is done with the
    /// read (see `deinit`).
    private let wakeBuffer: UnsafeMutablePointer<UInt64>

    /// The thread that enabled the ring and registered its descriptor (nil: not yet run).
    private var issuer: pthread_t?
    private var ringFDNote = "ring fd registered by the first thread that runs the loop"

    private var deferred: [Deferred] = []
    private var deferredHead = 0

    private var tracked: [TrackedOperation] = []
    /// `msghdr` of tracked slot i (writev); valid until the SQE is submitted (SUBMIT_STABLE).
    private var messages: [UnsafeMutablePointer<msghdr>] = []
    private var freeTracked: [UInt32] = []
    /// The loop's user_data → tracked slot, for cancellation.
    private var trackedByUserData: [UInt64: UInt32] = [:]

    private var bufferRings: [IOUringBufferRing] = []
    /// Kernel requests submitted or queued whose final completion has not been reaped (wakeup
    /// read included, cancels excluded).
    private(set) var kernelRequests = 0
    private(set) var counters = Counters()
    /// An error found where it could not be thrown (a submit, the reap); `wait` throws it.
    private var pendingError: EventsError?
    private var tearingDown = false

    /// Sends of at least this many bytes use IORING_OP_SEND_ZC (when the kernel has it).
    var zeroCopyThreshold = IOUringBackend.defaultZeroCopyThreshold
    /// Ask send_zc notifications whether the kernel copied (IORING_SEND_ZC_REPORT_USAGE, 6.2+),
    /// counted in ``Counters/zeroCopyCopied``.
    var zeroCopyReportUsage = false
    /// Injected (debug builds): io_uring_register_ring_fd fails with this errno when the loop first runs.
    private var injectedRegisterFailure: CInt?
    #if DEBUG
    /// Tests: the next this-many submits of a full SQ do nothing, as if the kernel said -EBUSY,
    /// so work goes to the FIFO.
    var failNextSubmits = 0
    #endif

    // MARK: Life cycle

    /// Sets up the ring, the wakeup eventfd and its armed read.
    ///
    /// - Throws: ``EventsError/Code/backendUnavailable`` when io_uring cannot run here, with the
    ///   reason and the fix; ``EventsError/Code/systemCall`` when the eventfd cannot be made.
    init(configuration: EventLoop.Configuration) throws(EventsError) {
        let faults = IOUringFaults.current
        let eventfd = sysEventfd()
        guard eventfd >= 0 else {
            let errno = Errno(rawValue: -eventfd)
            throw EventsError(.systemCall, "eventfd for the io_uring wakeup: \(errno.name) — \(errno.message)",
                              cause: SystemCallError(systemCall: "eventfd", errno: errno))
        }
        let waker = Waker(descriptor: eventfd, mechanism: .eventfd)  // closes the eventfd from here on
        let setup = try IOUringSetup.start(entries: configuration.ringEntries, faults: faults)
        self.waker = waker
        self.setup = setup
        ring = setup.ring
        completionBatch = configuration.completionBatch
        cqeCapacity = min(configuration.completionBatch, 4096)
        cqes = .allocate(capacity: cqeCapacity)
        wakeBuffer = .allocate(capacity: 1)
        wakeBuffer.initialize(to: 0)
        injectedRegisterFailure = faults.registerRingFDErrno
        enqueue(.wakeRead)
    }

    deinit {
        let quiesced = quiesce()
        for bufferRing in bufferRings where bufferRing.isRegistered {
            if canIssue { _ = strata_uring_unregister_buf_ring(ring, bufferRing.group) }
            bufferRing.isRegistered = false
        }
        strata_uring_queue_exit(ring)
        setup.storage.deallocate()
        cqes.deallocate()
        for message in messages { message.deallocate() }
        // A read the kernel may still complete must not write into freed memory: when the
        // teardown could not wait for it, the 8 bytes are left allocated on purpose.
        if quiesced { wakeBuffer.deallocate() }
    }

    /// Called by the loop's `deinit` before it frees the memory operations point into.
    func shutdown() -> Bool { quiesce() }

    /// Teardown: drops SQEs the kernel has not seen (their buffers may already be freed), cancels
    /// every request and reaps until none is left (at most one second). Returns whether the
    /// kernel has no request left.
    private func quiesce() -> Bool {
        tearingDown = true
        deferred.removeAll()
        deferredHead = 0
        kernelRequests -= Int(strata_uring_discard_unsubmitted(ring, ReservedUserData.cancel))
        guard kernelRequests > 0 else { return true }
        guard canIssue, issuer != nil else { return false }
        guard strata_uring_queue_cancel_any(ring, ReservedUserData.cancel) == 0 else { return false }
        var ignored: [RawCompletion] = []
        let deadline = sysMonotonicNanoseconds() + 1_000_000_000
        while kernelRequests > 0 && sysMonotonicNanoseconds() < deadline {
            let rc = strata_uring_submit_and_wait(ring, 50_000_000)
            if rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN { return false }
            reap(&ignored)
            ignored.removeAll(keepingCapacity: true)
        }
        return kernelRequests == 0
    }

    // MARK: EventBackend

    /// `io_uring: SINGLE_ISSUER|DEFER_TASKRUN|…, 4096 SQ / 8192 CQ entries; features …`.
    var summary: String {
        var features: [String] = []
        let names: [(UInt32, String)] = [
            (IORING_FEAT_NODROP, "NODROP"), (IORING_FEAT_FAST_POLL, "FAST_POLL"), (IORING_FEAT_EXT_ARG, "EXT_ARG"),
            (IORING_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"), (IORING_FEAT_CQE_SKIP, "CQE_SKIP"),
            (IORING_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"), (IORING_FEAT_LINKED_FILE, "LINKED_FILE"),
        ]
        for (bit, name) in names where setup.features & bit != 0 { features.append(name) }
        let zeroCopy = !setup.supportsZeroCopySend ? "send_zc unsupported"
            : zeroCopyThreshold == .max ? "send_zc off" : "send_zc from \(zeroCopyThreshold) bytes"
        return "io_uring: \(setup.tier), \(setup.submissionEntries) SQ / \(setup.completionEntries) CQ entries; "
            + "features \(features.joined(separator: " ")); multishot accept and receive, provided buffer rings; "
            + "\(ringFDNote); \(zeroCopy); sendfile = POLLOUT then sendfile(2)"
    }

    func submit(_ submission: Submission, completions: inout [RawCompletion]) {
        assert(submission.userData & ReservedUserData.marker != ReservedUserData.marker,
               "the loop's user_data collides with the io_uring backend's reserved values")
        enqueue(.submission(submission))
    }

    func cancel(userData: UInt64, completions: inout [RawCompletion]) {
        // Still in the FIFO: the kernel never saw it, so it completes here.
        if purgeDeferred(where: { $0.userData == userData }, &completions) { return }
        if let slot = trackedByUserData[userData] {
            tracked[Int(slot)].cancelRequested = true
            enqueue(.cancel(target: trackedUserData(slot)))
        } else {
            enqueue(.cancel(target: userData))
        }
    }

    func cancelAll(fd: CInt, completions: inout [RawCompletion]) {
        _ = purgeDeferred(where: { $0.fd == fd }, &completions)
        for slot in trackedByUserData.values where tracked[Int(slot)].submission.fd == fd {
            tracked[Int(slot)].cancelRequested = true
        }
        enqueue(.cancelDescriptor(fd))
    }

    func close(fd: CInt, userData: UInt64, completions: inout [RawCompletion]) {
        enqueue(.close(fd: fd, userData: userData))
    }

    func wait(timeoutNanoseconds: Int64?, completions: inout [RawCompletion]) throws(EventsError) {
        bindToCurrentThread()
        if let error = pendingError.take() { throw error }
        drainDeferred()
        var timeout = timeoutNanoseconds ?? -1
        if !completions.isEmpty { timeout = 0 }
        // Work still waiting for SQ space must not sleep behind an unbounded wait.
        if deferredHead < deferred.count { timeout = timeout < 0 ? 1_000_000 : min(timeout, 1_000_000) }
        // Overflowed completions make the enter below a GETEVENTS that flushes them (see the shim).
        if strata_uring_sq_flags(ring) & IORING_SQ_CQ_OVERFLOW != 0 { counters.overflowFlushes += 1 }
        counters.enters += 1
        let rc = strata_uring_submit_and_wait(ring, timeout)
        if rc < 0 { noteEnterFailure(rc, call: "io_uring_enter (submit and wait)") }
        reap(&completions)
        if let error = pendingError.take() { throw error }
    }

    func register(_ pool: BufferPool) throws(EventsError) {
        let bufferRing = try IOUringBufferRing(pool: pool, ring: ring)
        pool.backendState = bufferRing
        bufferRings.append(bufferRing)
    }

    func recycle(_ pool: BufferPool, _ id: UInt16) {
        guard let state = pool.backendState else {
            preconditionFailure("BufferPool \(pool.groupID) was not registered with this io_uring backend")
        }
        unsafeDowncast(state, to: IOUringBufferRing.self).give(id, of: pool)
    }

    // MARK: Thread binding and entering the kernel

    /// Whether this thread may enter the ring (it is the issuer, or there is none yet).
    private var canIssue: Bool {
        guard let issuer else { return true }
        return pthread_equal(issuer, pthread_self()) != 0
    }

    /// Makes the calling thread the ring's issuer on first use; traps if another thread already is.
    private func bindToCurrentThread() {
        if let issuer {
            precondition(pthread_equal(issuer, pthread_self()) != 0,
                         "EventLoop (io_uring) used from a thread other than the one that first ran it: a loop and its ring belong to one thread (IORING_SETUP_SINGLE_ISSUER, registered ring fd)")
            return
        }
        issuer = pthread_self()
        if setup.startsDisabled {
            let rc = strata_uring_enable_rings(ring)
            if rc < 0 {
                let errno = Errno(rawValue: -rc)
                pendingError = EventsError(.systemCall,
                                           "io_uring_register(IORING_REGISTER_ENABLE_RINGS): \(errno.name) — the ring cannot start; \(errno.message)",
                                           cause: SystemCallError(systemCall: "io_uring_register", errno: errno))
            }
        }
        let rc = injectedRegisterFailure.map { -$0 } ?? strata_uring_register_ring_fd(ring)
        if rc >= 0 {
            ringFDNote = "ring fd registered"
        } else {
            ringFDNote = "ring fd not registered (io_uring_register_ring_fd: \(Errno(rawValue: -rc).name)), entering by descriptor"
        }
    }

    /// Submits what the SQ holds, without waiting: the SQ was full.
    private func submitQueued() {
        bindToCurrentThread()
        counters.enters += 1
        #if DEBUG
        if failNextSubmits > 0 {
            failNextSubmits -= 1
            return
        }
        #endif
        let rc = strata_uring_submit(ring)
        if rc < 0 { noteEnterFailure(rc, call: "io_uring_enter (submit)") }
    }

    /// Records a failed enter unless it is transient (interrupted, timed out, kernel busy: the
    /// next iteration retries).
    private func noteEnterFailure(_ rc: CInt, call: String) {
        switch -rc {
        case ETIME, EINTR, EBUSY, EAGAIN:
            return
        case EEXIST:
            pendingError = EventsError(.invalidState,
                                       "\(call): EEXIST — the ring was entered from a thread other than its single issuer; run a loop on one thread",
                                       cause: SystemCallError(systemCall: "io_uring_enter", errno: Errno(rawValue: EEXIST)))
        default:
            let errno = Errno(rawValue: -rc)
            pendingError = EventsError(.systemCall, "\(call): \(errno.name) — \(errno.message); the loop cannot continue",
                                       cause: SystemCallError(systemCall: "io_uring_enter", errno: errno))
        }
    }

    // MARK: Queueing

    /// Queues `work` behind the FIFO, or at once when the FIFO is empty and an SQE is free.
    private func enqueue(_ work: Deferred) {
        if deferredHead < deferred.count || !issue(work) {
            deferred.append(work)
            counters.deferred += 1
        }
    }

    /// Moves FIFO work into the SQ while there is room.
    private func drainDeferred() {
        while deferredHead < deferred.count {
            guard issue(deferred[deferredHead]) else { return }
            deferredHead += 1
        }
        deferred.removeAll(keepingCapacity: true)
        deferredHead = 0
    }

    /// Completes and removes FIFO operations matching `predicate` with -ECANCELED.
    private func purgeDeferred(where predicate: (Submission) -> Bool, _ completions: inout [RawCompletion]) -> Bool {
        guard deferredHead < deferred.count else { return false }
        var kept: [Deferred] = []
        var purged = false
        for work in deferred[deferredHead...] {
            let submission: Submission?
            switch work {
            case .submission(let s): submission = s
            case .tracked(let slot): submission = tracked[Int(slot)].submission
            default: submission = nil
            }
            guard let submission, predicate(submission) else {
                kept.append(work)
                continue
            }
            if case .tracked(let slot) = work { releaseTracked(slot) }
            completions.append(RawCompletion(userData: submission.userData, result: -ECANCELED, more: false, bufferID: nil))
            purged = true
        }
        deferred = kept
        deferredHead = 0
        return purged
    }

    /// Fills one SQE with `prepare` (a strata_uring_queue_* call returning 0 or -EBUSY); when the
    /// SQ is full, submits what it holds and tries once more. False: still full.
    private func withSQE(_ prepare: () -> CInt) -> Bool {
        if prepare() == 0 { return true }
        counters.submissionQueueFull += 1
        submitQueued()
        return prepare() == 0
    }

    /// Puts `work` into the SQ; false when the SQ has no room.
    private func issue(_ work: Deferred) -> Bool {
        let ring = self.ring
        switch work {
        case .submission(let s):
            return issue(s)
        case .tracked(let slot):
            return issueTracked(slot)
        case .cancel(let target):
            let skip: CInt = setup.skipsSuccessfulCancels ? 1 : 0
            return withSQE { strata_uring_queue_cancel(ring, ReservedUserData.cancel, target, skip) }
        case .cancelDescriptor(let fd):
            let skip: CInt = setup.skipsSuccessfulCancels ? 1 : 0
            return withSQE { strata_uring_queue_cancel_fd(ring, ReservedUserData.cancel, fd, skip) }
        case .close(let fd, let userData):
            return counted(withSQE { strata_uring_queue_close(ring, userData, fd) })
        case .wakeRead:
            let buffer = wakeBuffer
            let fd = waker.descriptor
            return counted(withSQE { strata_uring_queue_read(ring, ReservedUserData.wake, fd, buffer, 8) })
        }
    }

    private func counted(_ queued: Bool) -> Bool {
        if queued { kernelRequests += 1 }
        return queued
    }

    /// The most bytes one receive or send asks for: Linux's MAX_RW_COUNT (INT_MAX rounded down
    /// to a page), so every result fits the completion's Int32; fewer bytes are a partial result.
    static let maximumTransfer = 0x7FFF_F000

    private func issue(_ s: Submission) -> Bool {
        let ring = self.ring
        var s = s
        if s.kind == .receive || s.kind == .send { s.length = min(s.length, Self.maximumTransfer) }
        switch s.kind {
        case .accept:
            return counted(withSQE { strata_uring_queue_accept(ring, s.userData, s.fd, s.multishot ? 1 : 0) })
        case .receive:
            return counted(withSQE { strata_uring_queue_recv(ring, s.userData, s.fd, s.pointer, s.length, -1, 0) })
        case .receivePooled:
            guard let pool = s.pool else { preconditionFailure("pooled receive without a pool") }
            let group = CInt(pool.groupID)
            return counted(withSQE {
                strata_uring_queue_recv(ring, s.userData, s.fd, nil, s.length, group, s.multishot ? 1 : 0)
            })
        case .send:
            if s.length >= zeroCopyThreshold && setup.supportsZeroCopySend {
                return issueNewTracked(.zeroCopySend, s)
            }
            return counted(withSQE { strata_uring_queue_send(ring, s.userData, s.fd, s.pointer, s.length, 0, 0) })
        case .writev:
            return issueNewTracked(.writev, s)
        case .sendfile:
            return issueNewTracked(.sendfile, s)
        case .connect:
            let address = s.pointer.map { UnsafePointer<sockaddr>(OpaquePointer($0)) }
            let length = socklen_t(s.length)
            return counted(withSQE { strata_uring_queue_connect(ring, s.userData, s.fd, address, length) })
        case .close, .timeout:
            preconditionFailure("\(s.kind) is not submitted to a backend: the loop handles it")
        }
    }

    // MARK: Tracked operations

    /// The user_data of tracked slot `slot` (see ``ReservedUserData``).
    private func trackedUserData(_ slot: UInt32) -> UInt64 {
        (UInt64(slot) + ReservedUserData.trackedBase) << 32 | ReservedUserData.marker
    }

    private func issueNewTracked(_ kind: TrackedOperation.Kind, _ s: Submission) -> Bool {
        let slot: UInt32
        if let free = freeTracked.popLast() {
            slot = free
        } else {
            precondition(tracked.count < Int(UInt32.max) - Int(ReservedUserData.trackedBase), "too many tracked io_uring operations")
            slot = UInt32(tracked.count)
            tracked.append(TrackedOperation())
            let message = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
            message.initialize(to: msghdr())
            messages.append(message)
        }
        tracked[Int(slot)] = TrackedOperation(kind: kind, active: true, submission: s)
        trackedByUserData[s.userData] = slot
        if issueTracked(slot) { return true }
        releaseTracked(slot)
        return false
    }

    private func releaseTracked(_ slot: UInt32) {
        trackedByUserData[tracked[Int(slot)].submission.userData] = nil
        tracked[Int(slot)] = TrackedOperation()
        freeTracked.append(slot)
    }

    /// Issues (or re-issues) the kernel request of tracked slot `slot`.
    private func issueTracked(_ slot: UInt32) -> Bool {
        let ring = self.ring
        let t = tracked[Int(slot)]
        let s = t.submission
        let userData = trackedUserData(slot)
        switch t.kind {
        case .zeroCopySend:
            let flags: UInt32 = zeroCopyReportUsage ? UInt32(IORING_SEND_ZC_REPORT_USAGE) : 0
            guard counted(withSQE { strata_uring_queue_send(ring, userData, s.fd, s.pointer, s.length, 1, flags) }) else {
                return false
            }
            counters.zeroCopySends += 1
            return true
        case .writev:
            guard let iov = s.pointer?.assumingMemoryBound(to: iovec.self) else {
                preconditionFailure("writev without an iovec array")
            }
            let count = s.length
            if t.usesWritev {
                return counted(withSQE { strata_uring_queue_writev(ring, userData, s.fd, iov, UInt32(count)) })
            }
            // The kernel copies the header when it consumes the SQE (IORING_FEAT_SUBMIT_STABLE);
            // the iovecs stay valid until the final completion (the loop owns them).
            let message = messages[Int(slot)]
            message.pointee = msghdr()
            message.pointee.msg_iov = iov
            message.pointee.msg_iovlen = count
            return counted(withSQE { strata_uring_queue_sendmsg(ring, userData, s.fd, message) })
        case .sendfile:
            return counted(withSQE { strata_uring_queue_poll(ring, userData, s.fd, UInt32(POLLOUT)) })
        }
    }

    /// A completion of tracked slot `slot`.
    private func handleTracked(_ slot: UInt32, _ cqe: strata_uring_cqe, _ completions: inout [RawCompletion]) {
        guard Int(slot) < tracked.count, tracked[Int(slot)].active else {
            preconditionFailure("io_uring completion for unknown tracked slot \(slot): backend bookkeeping is broken")
        }
        let t = tracked[Int(slot)]
        switch t.kind {
        case .zeroCopySend:
            if cqe.flags & IORING_CQE_F_NOTIF != 0 {
                // The kernel no longer reads the buffer: now the loop may have it back.
                kernelRequests -= 1
                if UInt32(bitPattern: cqe.res) & IORING_NOTIF_USAGE_ZC_COPIED != 0 { counters.zeroCopyCopied += 1 }
                finishTracked(slot, result: t.zeroCopyResult ?? 0, &completions)
            } else if cqe.flags & IORING_CQE_F_MORE != 0 {
                tracked[Int(slot)].zeroCopyResult = cqe.res  // a notification follows
            } else {
                kernelRequests -= 1  // failed before any buffer was used: no notification
                finishTracked(slot, result: cqe.res, &completions)
            }
        case .writev:
            kernelRequests -= 1
            if cqe.res == -ENOTSOCK && !t.usesWritev && t.cancelRequested {
                finishTracked(slot, result: -ECANCELED, &completions)
            } else if cqe.res == -ENOTSOCK && !t.usesWritev && !tearingDown {
                tracked[Int(slot)].usesWritev = true
                enqueue(.tracked(slot))
            } else {
                finishTracked(slot, result: cqe.res, &completions)
            }
        case .sendfile:
            kernelRequests -= 1
            guard cqe.res >= 0, !tearingDown else {
                finishTracked(slot, result: cqe.res, &completions)
                return
            }
            let s = t.submission
            // Writable (or in error, which sendfile reports): one nonblocking call, never blocking
            // on the socket; a partial count is a valid result.
            if let result = sendfileOnce(socket: s.fd, file: s.fileFD, offset: s.offset, count: s.length) {
                finishTracked(slot, result: result, &completions)
            } else if t.cancelRequested {
                finishTracked(slot, result: -ECANCELED, &completions)
            } else {
                counters.sendfileRetries += 1
                enqueue(.tracked(slot))
            }
        }
    }

    private func finishTracked(_ slot: UInt32, result: Int32, _ completions: inout [RawCompletion]) {
        let userData = tracked[Int(slot)].submission.userData
        releaseTracked(slot)
        if !tearingDown {
            completions.append(RawCompletion(userData: userData, result: result, more: false, bufferID: nil))
        }
    }

    /// One sendfile(2) on a nonblocking socket: bytes sent, -errno, or nil when the socket buffer
    /// is full (EAGAIN). StrataSockets' `sendFile` blocks SIGPIPE around the call and discards the
    /// one it raised, so a closed peer is -EPIPE, never a signal. The socket is borrowed: the
    /// temporary `Socket` hands its descriptor back without closing it.
    private func sendfileOnce(socket fd: CInt, file: CInt, offset: Int64, count: Int) -> Int32? {
        let socket = Socket(adoptingDescriptor: fd)
        let outcome: Result<Int?, SocketError>
        do {
            outcome = .success(try socket.sendFile(from: file, offset: offset, count: count))
        } catch {
            outcome = .failure(error)
        }
        _ = socket.takeDescriptor()
        switch outcome {
        case .success(let sent?): return Int32(clamping: sent)
        case .success(nil): return nil
        case .failure(let error): return -error.cause.errno.rawValue
        }
    }

    // MARK: Reaping

    /// Copies up to `completionBatch` completions out of the CQ ring and translates them. When the
    /// ring is empty but the kernel holds overflowed completions (IORING_SQ_CQ_OVERFLOW) or
    /// pending task work (IORING_SQ_TASKRUN), enters with GETEVENTS to move them in and goes on.
    private func reap(_ completions: inout [RawCompletion]) {
        var budget = completionBatch
        while budget > 0 {
            let n = Int(strata_uring_reap(ring, cqes, UInt32(min(budget, cqeCapacity))))
            if n == 0 {
                let flags = strata_uring_sq_flags(ring)
                guard flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN) != 0, canIssue else { return }
                counters.overflowFlushes += 1
                counters.enters += 1
                let rc = strata_uring_get_events(ring)
                if rc < 0 { noteEnterFailure(rc, call: "io_uring_enter (flush overflowed completions)") }
                if strata_uring_cq_ready(ring) == 0 { return }
                continue
            }
            budget -= n
            counters.completionsReaped += n
            for i in 0..<n { handle(cqes[i], &completions) }
        }
    }

    /// Translates one completion; appends to `completions` when the loop should see it.
    private func handle(_ cqe: strata_uring_cqe, _ completions: inout [RawCompletion]) {
        let userData = cqe.user_data
        if userData & ReservedUserData.marker != ReservedUserData.marker {
            let more = cqe.flags & IORING_CQE_F_MORE != 0
            if !more { kernelRequests -= 1 }
            if tearingDown { return }
            if cqe.res == -ENOBUFS { counters.noBuffers += 1 }
            let buffer: UInt16? = cqe.flags & IORING_CQE_F_BUFFER != 0
                ? UInt16(truncatingIfNeeded: cqe.flags >> UInt32(IORING_CQE_BUFFER_SHIFT)) : nil
            completions.append(RawCompletion(userData: userData, result: cqe.res, more: more, bufferID: buffer))
            return
        }
        switch userData >> 32 {
        case ReservedUserData.wake >> 32:
            handleWake(cqe)
        case ReservedUserData.cancel >> 32:
            // Successful cancels are skipped (IOSQE_CQE_SKIP_SUCCESS); these found nothing left to
            // cancel (-ENOENT) or an operation already finishing (-EALREADY), which completes itself.
            counters.cancelMisses += 1
        default:
            handleTracked(UInt32(truncatingIfNeeded: (userData >> 32) - ReservedUserData.trackedBase), cqe, &completions)
        }
    }

    private func handleWake(_ cqe: strata_uring_cqe) {
        if cqe.flags & IORING_CQE_F_MORE == 0 { kernelRequests -= 1 }
        if tearingDown { return }
        switch cqe.res {
        case 0...:
            // The read reset the counter: later wakes must write again. Re-arming after that
            // cannot lose a wake: one written in between leaves the eventfd readable.
            waker.consumed()
            enqueue(.wakeRead)
        case -EAGAIN, -EINTR, -ECANCELED:
            enqueue(.wakeRead)
        default:
            let errno = Errno(rawValue: -cqe.res)
            pendingError = EventsError(.systemCall,
                                       "io_uring read of the wakeup eventfd \(waker.descriptor): \(errno.name) — \(errno.message); other threads can no longer wake this loop",
                                       cause: SystemCallError(systemCall: "read", errno: errno))
        }
    }
}

#endif
