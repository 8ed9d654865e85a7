#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSched
import StrataSockets

/// A connected byte stream the HTTP server can serve: TCP or a Unix stream socket (Sched's
/// ``TCPConnection`` conforms), or anything layered on one — TLS — by a module StrataHTTP
/// does not import.
///
/// The server makes every call from the connection's task, on ``loop``, one at a time (it
/// never reads while it writes): a transport needs no locks for its own state. A transport
/// built on a `TCPConnection` gets the server's timeouts and shutdown for free — Sched
/// operations honour the caller's ``withDeadline(_:_:)`` and task cancellation. One that
/// waits on anything else must do the same: throw `CancellationError` when the task is
/// cancelled (graceful shutdown at its deadline) and ``SchedError`` with code
/// ``SchedError/Code/timedOut`` when the task's Sched deadline passes (the header,
/// keep-alive, body and linger timeouts are such deadlines).
///
/// Any other error a call throws (a reset, a TLS alert, a bad record, the transport's own
/// error types) means the peer is gone or the stream is broken: the server closes the
/// connection quietly — no response, no lingering close — and logs it at `debug`.
///
/// ```swift
/// let address = try server.listen(on: SocketAddress(parsing: "0.0.0.0:8443")) { tcp in
///     try await MyTLSStream(handshakingOver: tcp, context: tlsContext)  // conforms to HTTPTransport
/// }
/// ```
public protocol HTTPTransport: AnyObject, Sendable {
    /// The loop every call is made on: the loop of the connection the transport wraps.
    var loop: Loop { get }

    /// Waits for bytes and hands the next chunk (at least one byte) to `body`, whose result it
    /// returns; nil at a clean end of stream (the peer closed its sending side). The bytes
    /// are valid only inside `body`.
    func readPooled<R>(_ body: (UnsafeRawBufferPointer) -> R) async throws -> R?

    /// Sends all of `bytes` (returns when the transport has taken them; partial sends are
    /// the transport's business).
    func write(_ bytes: [UInt8]) async throws

    /// Sends up to `count` bytes of the open file `file` starting at `offset`, and returns the
    /// number sent (0 only when the file has no more bytes there); the server calls again for
    /// the rest and keeps `file` open until it returns. TCP uses sendfile; the default
    /// implementation, for transports that must see the bytes (TLS), reads with `pread` and
    /// calls ``write(_:)``.
    func sendFile(_ file: CInt, offset: Int64, count: Int) async throws -> Int

    /// Ends our sending direction, so the peer reads an end of stream while reading still
    /// works (TCP: `shutdown(SHUT_WR)`; TLS: close_notify, then the same). The server calls
    /// it for a lingering close, then reads and discards until the peer is quiet.
    func shutdownWrite() async throws

    /// Closes the stream and what it wraps; idempotent, and not cancellable (the server
    /// calls it from a task that may have been cancelled). The server also closes the
    /// accepted `TCPConnection` afterwards.
    func close() async
}

/// Sched's TCP (and Unix stream) connection is the plain transport: reads from the loop's
/// buffer pool, writes tried inline first, files by sendfile.
extension TCPConnection: HTTPTransport {}

extension HTTPTransport {
    /// Reads up to 64 KiB of `file` at `offset` with `pread` and sends them with ``write(_:)``:
    /// the `sendFile` of a transport that cannot hand a descriptor to the kernel.
    public func sendFile(_ file: CInt, offset: Int64, count: Int) async throws -> Int {
        let chunk = min(count, 64 * 1024)
        guard chunk > 0 else { return 0 }
        var bytes = [UInt8](repeating: 0, count: chunk)
        var n: Int
        repeat {
            n = bytes.withUnsafeMutableBytes { pread(file, $0.baseAddress, chunk, off_t(offset)) }
        } while n < 0 && errno == EINTR
        if n < 0 {
            let e = Errno(rawValue: errno)
            throw SchedError(.systemCall, "sendFile: pread(\(file), offset \(offset)): \(e)", errno: e)
        }
        if n == 0 { return 0 }
        if n < chunk { bytes.removeSubrange(n...) }
        try await write(bytes)
        return n
    }
}

/// Wraps each accepted connection in the transport the server serves (a TLS handshake,
/// say). Runs in the connection's own task on its loop, so a slow setup never blocks
/// accepting; see ``HTTPServer/listen(on:backlog:transport:)``.
public typealias HTTPTransportFactory = @Sendable (TCPConnection) async throws -> any HTTPTransport
