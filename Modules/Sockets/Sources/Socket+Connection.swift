#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// Assigns a local address to the socket.
    ///
    /// Bind a server socket before ``listen(backlog:)``; a client socket rarely needs it. Port 0
    /// lets the system pick a free port: read it back with ``localAddress``.
    ///
    /// - Parameter address: The local address; its family must match the socket's.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/addressInUse`` when another socket
    ///   holds the port (set ``Option/reuseAddress`` to rebind while old connections linger in
    ///   TIME_WAIT), or ``SocketError/Code/permissionDenied`` for a privileged port.
    ///
    /// The corresponding C function is `bind`.
    public func bind(to address: SocketAddress) throws(SocketError) {
        let result = address.withUnsafeSockAddr { pointer, length in sysBind(descriptor, pointer, length) }
        if case .failure(let errno) = result {
            throw SocketError("bind", errno: errno, descriptor: descriptor, address: address)
        }
    }

    /// Marks the socket as accepting connections.
    ///
    /// - Parameter backlog: How many connections the kernel queues before ``accept(blocking:)``
    ///   takes them. The kernel caps it (`net.core.somaxconn` on Linux, `kern.ipc.somaxconn` on
    ///   Darwin and FreeBSD).
    /// - Throws: ``SocketError``, for example ``SocketError/Code/unsupported`` on a datagram socket.
    ///
    /// The corresponding C function is `listen`.
    public func listen(backlog: Int) throws(SocketError) {
        let clamped = CInt(clamping: backlog)
        if case .failure(let errno) = sysListen(descriptor, clamped) {
            throw SocketError("listen", errno: errno, descriptor: descriptor, address: try? localAddress)
        }
    }

    /// Takes a pending connection from a listening socket.
    ///
    /// The new socket is close-on-exec, and nonblocking unless `blocking` is true (`accept4` with
    /// `SOCK_CLOEXEC | SOCK_NONBLOCK`; `accept` and `fcntl` where `accept4` does not exist). On
    /// Darwin it also gets `SO_NOSIGPIPE`.
    ///
    /// A connection that the client reset while it waited in the backlog (`ECONNABORTED`) is
    /// skipped, and the next one is taken.
    ///
    /// - Parameter blocking: Whether the *new* socket is blocking. Whether this call waits
    ///   depends on the listening socket's own mode.
    /// - Returns: The connection and the peer's address, or `nil` when the listening socket is
    ///   nonblocking and no connection is pending.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/tooManyOpenFiles`` at the
    ///   descriptor limit: the connection stays queued, so close something before accepting again.
    ///
    /// The corresponding C function is `accept4`.
    public func accept(blocking: Bool = false) throws(SocketError) -> Accepted? {
        #if canImport(Darwin)
        // CStrataSys's accept4 fallback applies these with fcntl.
        let flags = FD_CLOEXEC | (blocking ? 0 : O_NONBLOCK)
        #else
        let flags = cInt(SOCK_CLOEXEC) | (blocking ? 0 : cInt(SOCK_NONBLOCK))
        #endif
        // Each ECONNABORTED consumed a dead entry of the backlog, so the loop is bounded by it;
        // the cap keeps it bounded even against a flood of resets.
        let maximumAbortedConnections = 1024
        var abortedConnections = 0
        while true {
            let (result, peer) = SocketAddress.receiving { pointer, length in
                sysAccept(descriptor, pointer, length, flags)
            }
            switch result {
            case .success(let newDescriptor):
                let socket = Socket(adoptingDescriptor: newDescriptor)
                #if canImport(Darwin)
                try socket.setOption(.noSignalPipe, to: true)
                #endif
                let peerAddress: SocketAddress
                switch peer {
                case .none:
                    peerAddress = SocketAddress(.unnamed)
                case .success(let address):
                    peerAddress = address
                case .failure(let error):
                    throw SocketError(unsupportedAddress: error, call: "accept")
                }
                return Accepted(socket: socket, peerAddress: peerAddress)
            case .failure(let errno) where errno.isWouldBlock:
                return nil
            case .failure(let errno) where errno == .connectionAborted && abortedConnections < maximumAbortedConnections:
                abortedConnections += 1
            case .failure(let errno):
                throw SocketError("accept", errno: errno, descriptor: descriptor)
            }
        }
    }

    /// Starts connecting to a remote address.
    ///
    /// On a blocking socket the call returns when the connection is established. On a
    /// nonblocking socket it usually returns ``ConnectResult/inProgress``: wait until the socket
    /// is writable (``poll(for:timeout:)`` or an event loop), then call ``finishConnect()``.
    /// Loopback and Unix connections may complete at once (``ConnectResult/connected``).
    ///
    /// A signal that interrupts the call does not restart it: the connection continues in the
    /// background. On a blocking socket this call then waits for it; on a nonblocking socket it
    /// reports ``ConnectResult/inProgress``.
    ///
    /// - Parameter address: The remote address; its family must match the socket's.
    /// - Returns: Whether the connection is established or under way.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/connectionRefused`` when nothing
    ///   listens there.
    ///
    /// The corresponding C function is `connect`.
    public func connect(to address: SocketAddress) throws(SocketError) -> ConnectResult {
        let result = address.withUnsafeSockAddr { pointer, length in sysConnect(descriptor, pointer, length) }
        guard case .failure(let errno) = result else {
            return .connected
        }
        switch errno.kind {
        case .inProgress:
            return .inProgress
        case .alreadyConnected:
            return .connected
        case .interrupted:
            guard try isBlocking else {
                return .inProgress
            }
            _ = try poll(for: .writable, timeout: nil)
            if let failure = try soError() {
                throw SocketError("connect", errno: failure, descriptor: descriptor, address: address)
            }
            return .connected
        default:
            throw SocketError("connect", errno: errno, descriptor: descriptor, address: address)
        }
    }

    /// Completes a nonblocking connection once the socket has become writable.
    ///
    /// Reads and clears the socket's pending error (`SO_ERROR`): a failed connection throws it;
    /// otherwise the socket is checked for a peer.
    ///
    /// - Returns: ``ConnectResult/connected``, or ``ConnectResult/inProgress`` when called before
    ///   the connection finished (wait for writability and call again).
    /// - Throws: ``SocketError`` with the connection's error, for example
    ///   ``SocketError/Code/connectionRefused`` or ``SocketError/Code/timedOut``.
    ///
    /// The corresponding C functions are `getsockopt` (`SO_ERROR`) and `getpeername`.
    public func finishConnect() throws(SocketError) -> ConnectResult {
        if let failure = try soError() {
            throw SocketError("connect", errno: failure, descriptor: descriptor)
        }
        let (result, _) = SocketAddress.receiving { pointer, length in sysGetpeername(descriptor, pointer, length) }
        switch result {
        case .success:
            return .connected
        case .failure(let errno) where errno == .notConnected:
            return .inProgress
        case .failure(let errno):
            throw SocketError("getpeername", errno: errno, descriptor: descriptor)
        }
    }

    /// Connects and waits at most `timeout` for the connection to be established.
    ///
    /// Meant for nonblocking sockets: the connection is started, the socket polled for
    /// writability until the deadline, and the result checked. On a blocking socket `connect`
    /// itself waits, for as long as the kernel's own timeout allows.
    ///
    /// - Parameters:
    ///   - address: The remote address.
    ///   - timeout: How long to wait.
    /// - Throws: ``SocketError``: ``SocketError/Code/timedOut`` when the deadline passes (the
    ///   attempt is abandoned; close the socket), or the connection's own error.
    ///
    /// The corresponding C functions are `connect`, `poll` and `getsockopt` (`SO_ERROR`).
    public func connect(to address: SocketAddress, timeout: Duration) throws(SocketError) {
        if try connect(to: address) == .connected {
            return
        }
        let events = try poll(for: .writable, timeout: timeout)
        if events.isEmpty {
            throw SocketError(
                code: .timedOut,
                message: "connect \(address): \(Errno.timedOut.name) (\(Errno.timedOut.rawValue)): connection timed out, no answer within \(timeout) — check that the host is up and that no firewall drops the packets, or allow more time",
                cause: SystemCallError(systemCall: "connect", errno: .timedOut),
                address: address)
        }
        if let failure = try soError() {
            throw SocketError("connect", errno: failure, descriptor: descriptor, address: address)
        }
    }

    /// Ends one or both directions of a connection, without closing the socket.
    ///
    /// After `shutdown(.write)` the peer reads end-of-file once it has read what was sent, while
    /// this side can still receive: the usual way to say "request complete".
    ///
    /// - Parameter direction: ``ShutdownDirection/read``, ``ShutdownDirection/write`` or ``ShutdownDirection/both``.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/notConnected`` when the connection
    ///   is not established or already gone.
    ///
    /// The corresponding C function is `shutdown`.
    public func shutdown(_ direction: ShutdownDirection) throws(SocketError) {
        if case .failure(let errno) = sysShutdown(descriptor, direction.rawValue) {
            throw SocketError("shutdown", errno: errno, descriptor: descriptor)
        }
    }

    /// The address the socket is bound to.
    ///
    /// After binding to port 0, this is where to read the port the system picked. An unbound
    /// Unix socket reports ``SocketAddress/Unix/unnamed``.
    ///
    /// The corresponding C function is `getsockname`.
    public var localAddress: SocketAddress {
        get throws(SocketError) {
            try address("getsockname") { pointer, length in sysGetsockname(descriptor, pointer, length) }
        }
    }

    /// The address of the connected peer.
    ///
    /// Throws ``SocketError/Code/notConnected`` when there is no peer.
    ///
    /// The corresponding C function is `getpeername`.
    public var remoteAddress: SocketAddress {
        get throws(SocketError) {
            try address("getpeername") { pointer, length in sysGetpeername(descriptor, pointer, length) }
        }
    }

    private func address(
        _ call: String,
        _ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Result<Void, Errno>
    ) throws(SocketError) -> SocketAddress {
        let (result, address) = SocketAddress.receiving(body)
        if case .failure(let errno) = result {
            throw SocketError(call, errno: errno, descriptor: descriptor)
        }
        switch address {
        case .none: return SocketAddress(.unnamed)
        case .success(let address): return address
        case .failure(let error): throw SocketError(unsupportedAddress: error, call: call)
        }
    }

    /// Waits until the socket is ready for any of `events`, or until the timeout passes.
    ///
    /// A small tool for blocking-style programs and tests; event loops (StrataEvents) are the way
    /// to wait for many sockets. Signals do not cut the wait short: it resumes with the time left.
    ///
    /// - Parameters:
    ///   - events: The conditions to wait for, such as `.readable` or `.writable`.
    ///   - timeout: The longest wait, or `nil` to wait without limit.
    /// - Returns: The conditions that hold, which may include ``PollEvents/error`` and
    ///   ``PollEvents/hangUp``; empty when the timeout passed.
    /// - Throws: ``SocketError`` (such as ``SocketError/Code/resourceExhausted``).
    ///
    /// The corresponding C function is `poll`.
    public func poll(for events: PollEvents, timeout: Duration?) throws(SocketError) -> PollEvents {
        switch sysPoll(descriptor, events.rawValue, timeout) {
        case .success(let returned):
            if returned & Int16(POLLNVAL) != 0 {
                trapOnProgrammerError("poll", errno: .badFileDescriptor, descriptor: descriptor)
            }
            return PollEvents(rawValue: returned)
        case .failure(let errno):
            throw SocketError("poll", errno: errno, descriptor: descriptor)
        }
    }
}

extension SocketError {
    /// The error for a kernel address that ``SocketAddress`` cannot represent.
    init(unsupportedAddress error: SocketAddressError, call: String) {
        self.init(
            code: .unsupported,
            message: "\(call): \(Errno.addressFamilyNotSupported.name) (\(Errno.addressFamilyNotSupported.rawValue)): \(error.message) — use IPv4, IPv6 or Unix sockets with StrataSockets",
            cause: SystemCallError(systemCall: call, errno: .addressFamilyNotSupported))
    }
}
