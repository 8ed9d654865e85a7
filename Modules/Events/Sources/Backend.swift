#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets

/// The kernel interfaces an ``EventLoop`` can run on.
public enum BackendKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Linux io_uring: the kernel performs the I/O and posts completions.
    case ioUring = "io_uring"
    /// Linux epoll: readiness, turned into completions by trying each call until EAGAIN.
    case epoll
    /// Darwin/BSD kqueue: readiness with EV_CLEAR, turned into completions like epoll.
    case kqueue

    /// The name used by `STRATA_BACKEND` and `--backend`.
    public var description: String { rawValue }
}

/// Which backend to use: one by name, or the best this machine offers.
public enum BackendChoice: Sendable, Hashable, CustomStringConvertible {
    /// io_uring where it works, else epoll (Linux); kqueue on Darwin/BSD. The loop logs its choice.
    case automatic
    /// Exactly this backend; if it cannot run here, creating the loop fails and says why.
    case exactly(BackendKind)

    /// Parses `auto`, `io_uring`, `epoll` or `kqueue` (the values of `STRATA_BACKEND`).
    public init(parsing text: String) throws(EventsError) {
        if text == "auto" {
            self = .automatic
        } else if let kind = BackendKind(rawValue: text) {
            self = .exactly(kind)
        } else {
            throw EventsError(.invalidConfiguration,
                              "backend '\(text)' is unknown: use auto, io_uring, epoll or kqueue (STRATA_BACKEND or --backend)")
        }
    }

    /// The choice in `STRATA_BACKEND`, or `.automatic` when it is unset or empty.
    public static func fromEnvironment() throws(EventsError) -> BackendChoice {
        guard let raw = getenv("STRATA_BACKEND") else { return .automatic }
        let text = String(decoding: UnsafeRawBufferPointer(start: raw, count: strlen(raw)), as: UTF8.self)
        if text.isEmpty { return .automatic }
        return try BackendChoice(parsing: text)
    }

    /// `auto` or the backend's name.
    public var description: String {
        switch self {
        case .automatic: "auto"
        case .exactly(let k): k.rawValue
        }
    }
}

/// One operation as the loop hands it to a backend. Pointers stay valid until the
/// operation's final completion: the loop keeps their owners (``IOBuffer``s, the iovec
/// array, the socket address) in its operation table until then.
struct Submission {
    /// The loop's identifier, returned in every raw completion (`user_data` in io_uring).
    var userData: UInt64
    var kind: OperationKind
    var fd: CInt
    var multishot: Bool = false
    /// receive: destination; send: source; writev: `iovec` array; connect: `sockaddr`.
    var pointer: UnsafeMutableRawPointer? = nil
    /// receive/send: bytes; writev: iovec count; connect: address length.
    var length: Int = 0
    /// sendfile: the file descriptor and the offset in it.
    var fileFD: CInt = -1
    var offset: Int64 = 0
    /// receivePooled: the pool the backend takes buffers from.
    var pool: BufferPool? = nil
}

/// A completion as a backend reports it, before the loop attaches the submitter's token.
struct RawCompletion {
    var userData: UInt64
    /// Non-negative value or negated errno.
    var result: Int32
    /// More completions follow for this operation.
    var more: Bool
    /// The pool buffer that holds the data, or nil.
    var bufferID: UInt16?
}

/// What every backend implements (DESIGN §4). One backend per file: `IOUring.swift`,
/// `Epoll.swift`, `Kqueue.swift`.
///
/// Rules every backend keeps, which `Tests/EventsTests/BackendConformanceTests.swift` checks:
/// - `submit` never blocks. A backend may finish the operation at once (epoll and kqueue try
///   the system call first) and append its completion to `completions`.
/// - Every submitted operation gets exactly one final completion (`more == false`), including
///   after `cancel` (`-ECANCELED`) — unless the loop closes the backend.
/// - A multishot operation reports `more == true` while it stays armed; when it stops (error,
///   end of stream, `-ENOBUFS`, cancellation) its last completion has `more == false`.
/// - `-ENOBUFS` from a pooled receive is a final completion; the loop re-submits the receive
///   when a buffer comes back.
/// - `close` is only called when no other operation on the descriptor is in flight.
/// - Wakeups never surface as completions.
///
/// Backends are classes owned by exactly one ``EventLoop`` and never handed out, so the
/// descriptors they own (ring, epoll instance, eventfd) have a single owner, closed in `deinit`.
protocol EventBackend: AnyObject {
    /// Which backend this is.
    var kind: BackendKind { get }
    /// One line on what was set up (flags, features), for logs.
    var summary: String { get }

    /// Queues (or performs) an operation.
    func submit(_ submission: Submission, completions: inout [RawCompletion])
    /// Requests cancellation of the operation `userData`; it completes with `-ECANCELED`
    /// (or with its own result, if it finished first).
    func cancel(userData: UInt64, completions: inout [RawCompletion])
    /// Requests cancellation of every operation on `fd`.
    func cancelAll(fd: CInt, completions: inout [RawCompletion])
    /// Closes `fd`, on which nothing is in flight; completes `userData` with 0 or `-errno`.
    func close(fd: CInt, userData: UInt64, completions: inout [RawCompletion])
    /// Submits queued work and waits up to `timeoutNanoseconds` (nil: until something
    /// happens; 0: do not wait) for completions or a wakeup.
    func wait(timeoutNanoseconds: Int64?, completions: inout [RawCompletion]) throws(EventsError)
    /// Makes `pool` usable by pooled receives.
    func register(_ pool: BufferPool) throws(EventsError)
    /// Gives buffer `id` of `pool` back to the kernel or the backend's free list.
    func recycle(_ pool: BufferPool, _ id: UInt16)
    /// The wakeup other threads use.
    var waker: Waker { get }
    /// Cancels and reaps everything in flight, so the kernel touches no loop-owned memory
    /// (buffers, iovecs, addresses) afterwards. ``EventLoop`` calls it first in its `deinit`,
    /// before it frees that memory. Idempotent. Returns false when the kernel may still hold
    /// requests (the teardown could not cancel or reap them all): the loop then leaks that
    /// memory on purpose instead of letting the kernel write into freed pages.
    func shutdown() -> Bool
}

extension EventBackend {
    /// Readiness backends perform every call synchronously: nothing to wait for.
    func shutdown() -> Bool { true }
}

/// Opens a backend for `choice`.
func openBackend(_ choice: BackendChoice, configuration: EventLoop.Configuration) throws(EventsError) -> any EventBackend {
    switch choice {
    case .exactly(let kind):
        return try openBackend(kind, configuration: configuration)
    case .automatic:
        #if os(Linux)
        do {
            return try openBackend(.ioUring, configuration: configuration)
        } catch let error where error.code == .backendUnavailable {
            let backend = try openBackend(.epoll, configuration: configuration)
            configuration.log?("strata.events: io_uring unavailable (\(error.message)); using epoll")
            return backend
        }
        #else
        return try openBackend(.kqueue, configuration: configuration)
        #endif
    }
}

func openBackend(_ kind: BackendKind, configuration: EventLoop.Configuration) throws(EventsError) -> any EventBackend {
    switch kind {
    case .ioUring:
        #if os(Linux)
        return try IOUringBackend(configuration: configuration)
        #else
        throw EventsError(.backendUnavailable, "io_uring exists only on Linux: use kqueue (or auto) on this system")
        #endif
    case .epoll:
        #if os(Linux)
        return try EpollBackend(configuration: configuration)
        #else
        throw EventsError(.backendUnavailable, "epoll exists only on Linux: use kqueue (or auto) on this system")
        #endif
    case .kqueue:
        #if canImport(Darwin) || os(FreeBSD)
        return try KqueueBackend(configuration: configuration)
        #else
        throw EventsError(.backendUnavailable,
                          "kqueue exists only on Darwin and the BSDs: use io_uring, epoll or auto on Linux")
        #endif
    }
}
