#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataEvents

/// TLS over a connected socket, driven by an Events ``EventLoop`` with callbacks: for code
/// that runs its own completion loop (as Examples/strata-echo does) instead of Sched tasks.
///
/// The stream submits its own receives, sends and handshake timer with the three tokens it
/// is given; the owner's completion handler passes every completion carrying one of them to
/// ``handle(_:)``. Everything happens on the loop's thread, and the ``TLSSession`` under it
/// never blocks, so a handshake costs the loop only the CPU of its steps.
///
/// ```swift
/// let stream = TLSEventsStream(session: try TLSSession(server: config), descriptor: fd, loop: loop,
///                              tokens: .init(receive: 1, send: 2, timer: 3)) { event in
///     switch event {
///     case .handshakeComplete: break
///     case .plaintext(let bytes): stream.write(Array(bytes))  // echo
///     case .closed, .failed: loop.close(fd, token: 4)
///     }
/// }
/// stream.start()
/// try loop.run(until: { done }) { completion in _ = stream.handle(completion) }
/// ```
public final class TLSEventsStream {
    /// What the stream reports to its owner.
    public enum Event {
        /// The handshake completed and passed every check.
        case handshakeComplete
        /// Decrypted bytes, valid only during the callback.
        case plaintext(UnsafeRawBufferPointer)
        /// The peer sent close_notify (a clean end); the stream has answered with its own.
        case closed
        /// A fatal error (``TLSError``, or an ``Errno`` from the socket): the alert, if any,
        /// has been sent; close the descriptor.
        case failed(any Error)
    }

    /// The tokens the stream's operations carry.
    public struct Tokens: Sendable {
        /// For receives.
        public var receive: UInt64
        /// For sends.
        public var send: UInt64
        /// For the handshake timer.
        public var timer: UInt64

        /// Three distinct tokens of the owner's choosing.
        public init(receive: UInt64, send: UInt64, timer: UInt64) {
            self.receive = receive
            self.send = send
            self.timer = timer
        }
    }

    /// The socket.
    public let descriptor: CInt
    private let loop: EventLoop
    private let tokens: Tokens
    private var session: TLSSession
    private let onEvent: (Event) -> Void
    private let receiveBuffer = IOBuffer(capacity: 16 * 1024)
    /// Decrypted bytes, one record at a time (allocated once, not per completion).
    private let plaintext = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    private var receiving = false
    private var sending: IOBuffer?
    private var sendOffset = 0
    private var pendingCiphertext: [UInt8] = []
    private var pendingPlaintext: [UInt8] = []
    private var timer: OperationID?
    private var finished = false
    private var announcedHandshake = false
    private var advancing = false
    private var passAgain = false

    /// A stream over `descriptor` (connected, nonblocking as Events requires), owned by
    /// `loop`'s thread from now on.
    public init(session: consuming TLSSession, descriptor: CInt, loop: EventLoop, tokens: Tokens,
                onEvent: @escaping (Event) -> Void) {
        self.session = session
        self.descriptor = descriptor
        self.loop = loop
        self.tokens = tokens
        self.onEvent = onEvent
    }

    deinit { plaintext.deallocate() }

    /// Starts the handshake (a client sends its hello now) and its timer.
    public func start() {
        timer = loop.timeout(after: session.configuration.handshakeTimeout, token: tokens.timer)
        advance()
    }

    /// Encrypts and sends `bytes` (queued until the handshake completes).
    public func write(_ bytes: [UInt8]) {
        guard !finished else { return }
        pendingPlaintext += bytes
        advance()
    }

    /// Sends close_notify; the stream reports ``Event/closed`` when the peer answers.
    public func close() {
        guard !finished else { return }
        do {
            try session.close()
        } catch {
            fail(error)
            return
        }
        flush()
    }

    /// Takes a completion if it is one of this stream's; returns false otherwise.
    public func handle(_ completion: Completion) -> Bool {
        switch completion.token {
        case tokens.receive:
            receiving = false
            guard !finished else { return true }
            if completion.result < 0 {
                fail(completion.error!)
                return true
            }
            if completion.result == 0 {
                session.feedEndOfStream()
            } else {
                receiveBuffer.withUnsafeBytes { session.feed(UnsafeRawBufferPointer(rebasing: $0[..<Int(completion.result)])) }
            }
            advance()
        case tokens.send:
            guard let buffer = sending else { return true }
            if completion.result < 0 {
                sending = nil
                if !finished { fail(completion.error!) }
                return true
            }
            sendOffset += Int(completion.result)
            if sendOffset < buffer.count {
                _ = loop.send(descriptor, buffer, offset: sendOffset, token: tokens.send)
            } else {
                sending = nil
                if pendingPlaintext.isEmpty || finished { flush() } else { advance() }
            }
        case tokens.timer:
            timer = nil
            if completion.result == -ETIME && !session.isHandshakeComplete && !finished {
                fail(TLSError(.handshakeTimeout, message: "the TLS handshake did not finish within \(session.configuration.handshakeTimeout)"))
            }
        default:
            return false
        }
        return true
    }

    /// Runs the session as far as the input allows, then sends its output and re-arms the
    /// receive.
    private func advance() {
        // A callback may call write(), which advances again: the plaintext buffer is still
        // being delivered then, so the inner call only asks for one more pass.
        if advancing {
            passAgain = true
            return
        }
        advancing = true
        defer { advancing = false }
        repeat {
            passAgain = false
            advanceOnce()
        } while passAgain && !finished
    }

    private func advanceOnce() {
        guard !finished else { return }
        do {
            if !session.isHandshakeComplete {
                guard try session.handshake() else {
                    flush()
                    armReceive()
                    return
                }
            }
            if !announcedHandshake {
                announcedHandshake = true
                if let t = timer { _ = loop.cancel(t); timer = nil }
                onEvent(.handshakeComplete)
                if finished { return }
            }
            if !pendingPlaintext.isEmpty {
                let n = try pendingPlaintext.withUnsafeBytes { try session.write($0) }
                pendingPlaintext.removeFirst(n)
            }
            readLoop: while !finished {
                switch try session.read(into: plaintext) {
                case .bytes(let n): onEvent(.plaintext(UnsafeRawBufferPointer(rebasing: plaintext[..<n])))
                case .wantRead: break readLoop
                case .closed:
                    try? session.close()
                    flush()
                    finished = true
                    onEvent(.closed)
                    return
                }
            }
            flush()
            armReceive()
        } catch {
            fail(error)
        }
    }

    private func armReceive() {
        guard !receiving, !finished else { return }
        receiving = true
        _ = loop.receive(descriptor, into: receiveBuffer, token: tokens.receive)
    }

    private func flush() {
        pendingCiphertext += session.takeOutput()
        guard sending == nil, !pendingCiphertext.isEmpty else { return }
        let buffer = IOBuffer(pendingCiphertext)
        pendingCiphertext.removeAll(keepingCapacity: true)
        sending = buffer
        sendOffset = 0
        _ = loop.send(descriptor, buffer, offset: 0, token: tokens.send)
    }

    private func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        if let t = timer { _ = loop.cancel(t); timer = nil }
        flush()  // the alert that tells the peer why
        onEvent(.failed(error))
    }
}

