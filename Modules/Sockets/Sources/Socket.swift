#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A socket that owns its file descriptor.
///
/// `Socket` is noncopyable: exactly one value owns the descriptor, so closing it twice, or
/// using it after closing, does not compile. The descriptor is closed when the value is
/// destroyed, when ``close()`` consumes it, or handed over to other code with
/// ``takeDescriptor()``, after which Strata no longer closes it.
///
/// New sockets are nonblocking and close-on-exec (`SOCK_NONBLOCK | SOCK_CLOEXEC` where the
/// platform has them, `fcntl` elsewhere); pass `blocking: true` for blocking mode. Operations on
/// a nonblocking socket that would block return `nil` instead of throwing. Writing to a closed
/// connection never raises `SIGPIPE`: sends carry `MSG_NOSIGNAL` on Linux, and Darwin sockets
/// get `SO_NOSIGPIPE` at creation.
///
/// ```swift
/// let listener = try Socket(family: .ipv4, kind: .stream, blocking: true)
/// try listener.setOption(.reuseAddress, to: true)
/// try listener.bind(to: SocketAddress(ipv4: .loopback, port: 8080))
/// try listener.listen(backlog: 128)
/// if let connection = try listener.accept(blocking: true) {
///     let socket = connection.socket
///     …
/// }
/// ```
///
/// A `Socket` is `Sendable`: it can be moved to another task or thread. Being noncopyable, it has
/// one owner at a time, so two threads never use it at once unless one lends it to the other.
public struct Socket: ~Copyable, Sendable {
    /// The file descriptor, for calls Strata does not wrap (such as registering with an event loop).
    ///
    /// The socket still owns it: do not close it, and do not use it after the socket is gone.
    public let descriptor: CInt

    /// Takes ownership of an open socket descriptor.
    ///
    /// The descriptor's flags are left as they are; the socket closes it when destroyed. A
    /// descriptor that is not a socket makes later operations trap.
    ///
    /// - Parameter descriptor: An open socket descriptor that nothing else will close.
    public init(adoptingDescriptor descriptor: CInt) {
        precondition(descriptor >= 0, "StrataSockets: Socket(adoptingDescriptor: \(descriptor)): not a descriptor")
        self.descriptor = descriptor
    }

    /// Creates a socket.
    ///
    /// The socket is close-on-exec, and nonblocking unless `blocking` is true. On Darwin it also
    /// gets `SO_NOSIGPIPE`.
    ///
    /// - Parameters:
    ///   - family: The address family: ``SocketAddress/Family/ipv4``, ``SocketAddress/Family/ipv6``
    ///     or ``SocketAddress/Family/unix``. Use `address.family` to match an address.
    ///   - kind: ``Kind/stream`` (TCP, Unix stream) or ``Kind/datagram`` (UDP, Unix datagram).
    ///   - protocol: The protocol, or `nil` for the family's default for `kind`.
    ///   - blocking: Whether calls wait until they can complete. Defaults to `false`.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/tooManyOpenFiles`` at the
    ///   descriptor limit, or ``SocketError/Code/unsupported`` for a family the system lacks.
    ///
    /// The corresponding C function is `socket`.
    public init(
        family: SocketAddress.Family,
        kind: Kind,
        protocol proto: IPProtocol? = nil,
        blocking: Bool = false
    ) throws(SocketError) {
        let protocolNumber = proto?.rawValue ?? 0
        #if canImport(Darwin)
        let created = sysSocket(family.rawValue, kind.rawValue, protocolNumber)
        #else
        let flags = cInt(SOCK_CLOEXEC) | (blocking ? 0 : cInt(SOCK_NONBLOCK))
        let created = sysSocket(family.rawValue, kind.rawValue | flags, protocolNumber)
        #endif
        switch created {
        case .success(let descriptor):
            self.init(adoptingDescriptor: descriptor)
        case .failure(let errno):
            throw SocketError("socket", errno: errno, descriptor: -1)
        }
        #if canImport(Darwin)
        try configureAfterCreation(blocking: blocking)
        #endif
    }

    /// Creates a pair of connected Unix domain sockets.
    ///
    /// Both sockets are close-on-exec, and nonblocking unless `blocking` is true. A pair is the
    /// usual way to talk to a child process or another thread, and the only way to pass
    /// descriptors without a file system path.
    ///
    /// - Parameters:
    ///   - kind: ``Kind/stream`` or ``Kind/datagram`` (or ``Kind/sequencedPacket``).
    ///   - blocking: Whether calls wait until they can complete. Defaults to `false`.
    /// - Returns: The two ends.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `socketpair`.
    public static func makePair(kind: Kind, blocking: Bool = false) throws(SocketError) -> Pair {
        var descriptors: (CInt, CInt) = (-1, -1)
        #if canImport(Darwin)
        let result = sysSocketpair(SocketAddress.Family.unix.rawValue, kind.rawValue, 0, &descriptors)
        #else
        let flags = cInt(SOCK_CLOEXEC) | (blocking ? 0 : cInt(SOCK_NONBLOCK))
        let result = sysSocketpair(SocketAddress.Family.unix.rawValue, kind.rawValue | flags, 0, &descriptors)
        #endif
        if case .failure(let errno) = result {
            throw SocketError("socketpair", errno: errno, descriptor: -1)
        }
        let pair = Pair(first: Socket(adoptingDescriptor: descriptors.0), second: Socket(adoptingDescriptor: descriptors.1))
        #if canImport(Darwin)
        try pair.first.configureAfterCreation(blocking: blocking)
        try pair.second.configureAfterCreation(blocking: blocking)
        #endif
        return pair
    }

    #if canImport(Darwin)
    /// Darwin has no SOCK_CLOEXEC, SOCK_NONBLOCK or MSG_NOSIGNAL: set their equivalents.
    func configureAfterCreation(blocking: Bool) throws(SocketError) {
        if case .failure(let errno) = sysSetDescriptorFlags(descriptor, FD_CLOEXEC) {
            throw SocketError("fcntl", errno: errno, descriptor: descriptor)
        }
        if !blocking {
            try setBlocking(false)
        }
        try setOption(.noSignalPipe, to: true)
    }
    #endif

    deinit {
        // Errors other than EBADF (such as EIO from a network file system) cannot be reported
        // here; the descriptor is released either way. EBADF means it was closed behind the
        // socket's back, which is a bug that could close someone else's descriptor: trap.
        if case .failure(let errno) = sysClose(descriptor), errno == .badFileDescriptor {
            trapOnProgrammerError("close", errno: errno, descriptor: descriptor)
        }
    }

    /// Closes the socket and reports errors.
    ///
    /// The descriptor is released even when an error is thrown; an interrupted close (EINTR) is
    /// not retried and counts as success, because retrying could close a descriptor that another
    /// thread has just been given. Destroying the socket closes it too, silently.
    ///
    /// - Throws: ``SocketError`` when the kernel reports an error (such as EIO).
    ///
    /// The corresponding C function is `close`.
    public consuming func close() throws(SocketError) {
        let descriptor = self.descriptor
        discard self
        if case .failure(let errno) = sysClose(descriptor) {
            throw SocketError("close", errno: errno, descriptor: descriptor)
        }
    }

    /// Gives up ownership of the descriptor and returns it, without closing it.
    ///
    /// Use it to hand the descriptor to code that will close it, such as an event loop or a
    /// child process. The caller is now responsible for closing it exactly once.
    ///
    /// - Returns: The descriptor.
    public consuming func takeDescriptor() -> CInt {
        let descriptor = self.descriptor
        discard self
        return descriptor
    }
}

extension Socket {
    /// Whether calls on this socket wait until they can complete.
    ///
    /// The corresponding C function is `fcntl` (`F_GETFL`, `O_NONBLOCK`).
    public var isBlocking: Bool {
        get throws(SocketError) {
            switch sysGetStatusFlags(descriptor) {
            case .success(let flags): return flags & O_NONBLOCK == 0
            case .failure(let errno): throw SocketError("fcntl", errno: errno, descriptor: descriptor)
            }
        }
    }

    /// Switches the socket between blocking and nonblocking mode.
    ///
    /// - Parameter blocking: `true` to make calls wait, `false` to make them return `nil` when
    ///   they would block.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `fcntl` (`F_SETFL`, `O_NONBLOCK`).
    public func setBlocking(_ blocking: Bool) throws(SocketError) {
        let flags: CInt
        switch sysGetStatusFlags(descriptor) {
        case .success(let value): flags = value
        case .failure(let errno): throw SocketError("fcntl", errno: errno, descriptor: descriptor)
        }
        let updated = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK
        if updated != flags, case .failure(let errno) = sysSetStatusFlags(descriptor, updated) {
            throw SocketError("fcntl", errno: errno, descriptor: descriptor)
        }
    }

    /// Whether the descriptor is closed when the process executes another program.
    ///
    /// Strata's sockets are created close-on-exec; adopted descriptors keep their flag.
    ///
    /// The corresponding C function is `fcntl` (`F_GETFD`, `FD_CLOEXEC`).
    public var isCloseOnExec: Bool {
        get throws(SocketError) {
            switch sysGetDescriptorFlags(descriptor) {
            case .success(let flags): return flags & FD_CLOEXEC != 0
            case .failure(let errno): throw SocketError("fcntl", errno: errno, descriptor: descriptor)
            }
        }
    }
}
