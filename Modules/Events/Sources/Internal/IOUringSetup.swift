// Start-up of the io_uring backend: ring creation with a fallback chain of setup flags, the
// feature and opcode checks, and the error messages that say why io_uring cannot run here.
// Everything a failed start-up needs is in this file, so IOUring.swift deals with a working ring.
#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CStrataSys
import StrataSockets

/// A ring that started and passed every check, with what was chosen.
///
/// Owns `storage`, the memory of liburing's `struct io_uring` (whose layout only the C shim
/// knows): the backend that receives it calls `strata_uring_queue_exit(ring)` and then
/// deallocates `storage`, exactly once, in its `deinit`.
struct IOUringSetup {
    /// The setup flags tried, best first. Each later tier drops what an older kernel rejects
    /// with EINVAL.
    enum Tier: CaseIterable, CustomStringConvertible {
        /// Linux 6.1+: completions run only when the loop enters the kernel (DEFER_TASKRUN, which
        /// needs SINGLE_ISSUER); R_DISABLED lets the thread that first runs the loop, rather than
        /// the one that created it, become the ring's single issuer.
        case deferTaskrun
        /// Linux 5.19+: task work runs without interrupting the loop thread (COOP_TASKRUN), and the
        /// kernel flags pending work (TASKRUN_FLAG) so the reap enters to run it.
        case coopTaskrun
        /// Any io_uring kernel: default behaviour (the CQ is still twice the SQ).
        case plain

        /// The IORING_SETUP_* bits of this tier.
        var flags: UInt32 {
            switch self {
            case .deferTaskrun:
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL
                    | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED
            case .coopTaskrun:
                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE
            case .plain:
                0
            }
        }

        /// `SINGLE_ISSUER|DEFER_TASKRUN|…` or `no setup flags`.
        var description: String {
            switch self {
            case .deferTaskrun: "SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL|CQSIZE|R_DISABLED"
            case .coopTaskrun: "COOP_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL|CQSIZE"
            case .plain: "no setup flags"
            }
        }
    }

    /// liburing's `struct io_uring *`.
    let ring: OpaquePointer
    /// The memory `ring` points to (see the type's ownership note).
    let storage: UnsafeMutableRawPointer
    /// The flags the kernel accepted.
    let tier: Tier
    /// Entries of the submission and completion queues, as the kernel rounded them.
    let submissionEntries: UInt32
    let completionEntries: UInt32
    /// IORING_FEAT_* bits.
    let features: UInt32
    /// IORING_OP_SEND_ZC is available (it always is on the kernels that pass the checks; kept
    /// separate so the send path states its own requirement).
    let supportsZeroCopySend: Bool

    /// Whether cancel SQEs may carry IOSQE_CQE_SKIP_SUCCESS (IORING_FEAT_CQE_SKIP, Linux 5.17).
    var skipsSuccessfulCancels: Bool { features & IORING_FEAT_CQE_SKIP != 0 }

    /// The ring must be enabled (IORING_REGISTER_ENABLE_RINGS) before its first submission.
    var startsDisabled: Bool { tier.flags & IORING_SETUP_R_DISABLED != 0 }

    /// The features the backend relies on, with why and since when.
    static let requiredFeatures: [(bit: UInt32, name: String, use: String, since: String)] = [
        (IORING_FEAT_NODROP, "IORING_FEAT_NODROP", "no completion is lost when the CQ ring is full", "5.5"),
        (IORING_FEAT_SUBMIT_STABLE, "IORING_FEAT_SUBMIT_STABLE", "sendmsg headers are copied at submission", "5.5"),
        (IORING_FEAT_FAST_POLL, "IORING_FEAT_FAST_POLL", "socket operations wait by internal poll, not by threads", "5.7"),
        (IORING_FEAT_EXT_ARG, "IORING_FEAT_EXT_ARG", "the wait timeout without a timeout SQE", "5.11"),
    ]

    /// The opcodes the backend uses, with what for and since when.
    static let requiredOpcodes: [(opcode: UInt32, name: String, use: String, since: String)] = [
        (IORING_OP_ACCEPT.rawValue, "IORING_OP_ACCEPT", "accept", "5.5"),
        (IORING_OP_RECV.rawValue, "IORING_OP_RECV", "receive", "5.6"),
        (IORING_OP_SEND.rawValue, "IORING_OP_SEND", "send", "5.6"),
        (IORING_OP_SENDMSG.rawValue, "IORING_OP_SENDMSG", "writev to sockets without SIGPIPE", "5.3"),
        (IORING_OP_WRITEV.rawValue, "IORING_OP_WRITEV", "writev to descriptors that are not sockets", "5.1"),
        (IORING_OP_CONNECT.rawValue, "IORING_OP_CONNECT", "connect", "5.5"),
        (IORING_OP_CLOSE.rawValue, "IORING_OP_CLOSE", "close", "5.6"),
        (IORING_OP_ASYNC_CANCEL.rawValue, "IORING_OP_ASYNC_CANCEL", "cancel", "5.5"),
        (IORING_OP_READ.rawValue, "IORING_OP_READ", "the wakeup eventfd", "5.6"),
        (IORING_OP_POLL_ADD.rawValue, "IORING_OP_POLL_ADD", "sendfile, which waits for POLLOUT", "5.1"),
        // Multishot receive and provided buffer rings have no probe bit; SEND_ZC arrived in the
        // same release (6.0), so it stands for them.
        (IORING_OP_SEND_ZC.rawValue, "IORING_OP_SEND_ZC", "multishot receive (Linux 6.0, no probe bit of its own)", "6.0"),
    ]

    /// Creates the ring for `entries` submission entries (the CQ gets twice as many), trying each
    /// ``Tier`` in turn, then checks features and opcodes.
    ///
    /// - Throws: ``EventsError/Code/backendUnavailable`` naming the cause and the fix.
    static func start(entries: Int, faults: IOUringFaults) throws(EventsError) -> IOUringSetup {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: strata_uring_size(), alignment: strata_uring_alignment())
        let ring = OpaquePointer(storage)
        var failure: CInt = 0
        var tried: [Tier] = []
        for tier in Tier.allCases {
            tried.append(tier)
            var params = io_uring_params()
            params.flags = tier.flags
            if tier.flags & IORING_SETUP_CQSIZE != 0 { params.cq_entries = UInt32(2 * entries) }
            let rc: CInt
            if let forced = faults.setupErrno {
                rc = -forced
            } else if tier.flags & faults.rejectedSetupFlags != 0 {
                rc = -EINVAL
            } else {
                rc = strata_uring_queue_init(UInt32(entries), ring, &params)
            }
            if rc == 0 {
                do throws(EventsError) {
                    return try check(ring: ring, storage: storage, tier: tier, params: params, faults: faults)
                } catch {
                    strata_uring_queue_exit(ring)
                    storage.deallocate()
                    throw error
                }
            }
            failure = -rc
            // Only EINVAL means "these flags are unknown here"; anything else fails every tier.
            if failure != EINVAL { break }
        }
        storage.deallocate()
        throw setupError(errno: failure, entries: entries, tried: tried, faults: faults)
    }

    private static func check(ring: OpaquePointer, storage: UnsafeMutableRawPointer, tier: Tier,
                              params: io_uring_params, faults: IOUringFaults) throws(EventsError) -> IOUringSetup {
        let features = strata_uring_features(ring)
        let missingFeatures = requiredFeatures.filter { features & $0.bit == 0 }
        if !missingFeatures.isEmpty {
            let list = missingFeatures.map { "\($0.name) (\($0.use); Linux \($0.since))" }.joined(separator: ", ")
            throw EventsError(.backendUnavailable,
                              "io_uring on this kernel (Linux \(kernelRelease())) lacks \(list); use --backend epoll or a newer kernel")
        }
        var supported = [UInt8](repeating: 0, count: 256)
        let probed = supported.withUnsafeMutableBufferPointer { strata_uring_probe(ring, $0.baseAddress, 256) }
        if probed < 0 {
            let errno = Errno(rawValue: -probed)
            throw EventsError(.backendUnavailable,
                              "io_uring_register(IORING_REGISTER_PROBE): \(errno.name) — cannot tell which operations this kernel (Linux \(kernelRelease())) supports (probing needs Linux 5.6); use --backend epoll",
                              cause: SystemCallError(systemCall: "io_uring_register", errno: errno))
        }
        for opcode in faults.missingOpcodes where Int(opcode) < supported.count { supported[Int(opcode)] = 0 }
        let missing = requiredOpcodes.filter { supported[Int($0.opcode)] == 0 }
        if !missing.isEmpty {
            let list = missing.map { "\($0.name) (\($0.use); Linux \($0.since))" }.joined(separator: ", ")
            throw EventsError(.backendUnavailable,
                              "io_uring on this kernel (Linux \(kernelRelease())) lacks \(list); use --backend epoll or Linux 6.0 or later")
        }
        return IOUringSetup(ring: ring, storage: storage, tier: tier, submissionEntries: params.sq_entries,
                            completionEntries: params.cq_entries, features: features,
                            supportsZeroCopySend: supported[Int(IORING_OP_SEND_ZC.rawValue)] != 0)
    }

    /// The error for a setup that failed with `errno` after trying `tried`.
    static func setupError(errno code: CInt, entries: Int, tried: [Tier], faults: IOUringFaults) -> EventsError {
        let errno = Errno(rawValue: code)
        let why: String
        switch code {
        case EPERM:
            let disabled = faults.ioUringDisabledSysctl ?? readSysctl("/proc/sys/kernel/io_uring_disabled")
            switch disabled {
            case "2":
                why = "io_uring is disabled (kernel.io_uring_disabled = 2); use --backend epoll or enable it with sysctl kernel.io_uring_disabled=0"
            case "1":
                let group = faults.ioUringGroupSysctl ?? readSysctl("/proc/sys/kernel/io_uring_group") ?? "?"
                why = "io_uring is limited to CAP_SYS_ADMIN and group \(group) (kernel.io_uring_disabled = 1, kernel.io_uring_group = \(group)); use --backend epoll, run as a member of that group, or enable it for all with sysctl kernel.io_uring_disabled=0"
            default:
                let state = disabled.map { "kernel.io_uring_disabled = \($0)" } ?? "no kernel.io_uring_disabled sysctl"
                why = "io_uring_setup was refused although the kernel allows it (\(state)): a seccomp filter (container runtimes' default profiles block io_uring) or an LSM policy denies it; use --backend epoll or allow io_uring_setup, io_uring_enter and io_uring_register in that policy"
            }
        case ENOSYS:
            why = "this kernel has no io_uring (built without CONFIG_IO_URING, older than Linux 5.1, or hidden by a seccomp filter); use --backend epoll"
        case ENOMEM:
            why = "the kernel could not allocate a ring of \(entries) submission and \(2 * entries) completion entries (memory cgroup limit, or RLIMIT_MEMLOCK before Linux 5.12); lower ringEntries, raise the limit, or use --backend epoll"
        case EMFILE, ENFILE:
            why = "no descriptor is left for the ring (the process or system descriptor limit); close descriptors or raise the limit (ulimit -n)"
        case EINVAL:
            let list = tried.map(\.description).joined(separator: "; then ")
            why = "the kernel rejected every setup tried (\(list)) for \(entries) entries; this kernel (Linux \(kernelRelease())) is too old for Strata's io_uring backend (Linux 6.0+); use --backend epoll"
        default:
            why = "\(errno.message); use --backend epoll"
        }
        return EventsError(.backendUnavailable, "io_uring_setup: \(errno.name) — \(why)",
                           cause: SystemCallError(systemCall: "io_uring_setup", errno: errno))
    }

    /// The first line of a /proc/sys file, or nil when it does not exist (the sysctl is newer
    /// than the kernel) or cannot be read.
    static func readSysctl(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = sysClose(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let line = bytes[0..<count].prefix { $0 != UInt8(ascii: "\n") }
        return String(decoding: line, as: UTF8.self)
    }

    /// `uname -r`.
    static func kernelRelease() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Failures injected into start-up, so tests can prove that an io_uring that cannot start is an
/// error naming the reason. Debug builds only: release builds always start for real.
///
/// Tests set ``IOUringFaults/injected`` (a task-local, so parallel tests do not see each other's
/// faults); a debug build also honours `STRATA_IOURING_FORCE_SETUP_ERRNO=EPERM` (a name or a
/// number) for trying the fallback by hand.
struct IOUringFaults: Sendable {
    /// io_uring_setup fails with this errno on every tier.
    var setupErrno: CInt?
    /// Tiers whose flags intersect these bits fail with EINVAL (to exercise the fallback chain).
    var rejectedSetupFlags: UInt32 = 0
    /// Replaces /proc/sys/kernel/io_uring_disabled in the EPERM message.
    var ioUringDisabledSysctl: String?
    /// Replaces /proc/sys/kernel/io_uring_group in the EPERM message.
    var ioUringGroupSysctl: String?
    /// Opcodes the probe reports as unsupported.
    var missingOpcodes: [UInt8] = []
    /// io_uring_register_ring_fd fails with this errno.
    var registerRingFDErrno: CInt?

    #if DEBUG
    /// The faults the current task injects.
    @TaskLocal static var injected: IOUringFaults?
    #endif

    /// The faults in force: none in release builds.
    static var current: IOUringFaults {
        #if DEBUG
        if let faults = injected { return faults }
        if let raw = getenv("STRATA_IOURING_FORCE_SETUP_ERRNO") {
            let text = String(decoding: UnsafeRawBufferPointer(start: raw, count: strlen(raw)), as: UTF8.self)
            if let code = parseErrno(text) { return IOUringFaults(setupErrno: code) }
        }
        #endif
        return IOUringFaults()
    }

    /// `EPERM` or `1` → 1; nil for anything else.
    static func parseErrno(_ text: String) -> CInt? {
        if let number = CInt(text), number > 0 { return number }
        return Errno(named: text)?.rawValue
    }
}
#endif
