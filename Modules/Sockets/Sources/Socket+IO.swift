#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Data transfer. Every call returns `nil` when a nonblocking socket would block, retries EINTR,
// and never raises SIGPIPE. Buffers are borrowed for the duration of the call only.

extension Socket {
    /// Sends bytes on a connected socket.
    ///
    /// A stream socket may send fewer bytes than given; send the rest later.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to send, borrowed for the duration of the call.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The number of bytes sent, or `nil` when the socket is nonblocking and its send
    ///   buffer is full (wait for ``PollEvents/writable``).
    /// - Throws: ``SocketError``, for example ``SocketError/Code/brokenPipe`` or
    ///   ``SocketError/Code/connectionReset`` when the peer is gone.
    ///
    /// The corresponding C function is `send`.
    public func send(_ bytes: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int? {
        switch sysSend(descriptor, bytes, flags.rawValue) {
        case .success(let count): return count
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno): throw SocketError("send", errno: errno, descriptor: descriptor, byteCount: bytes.count)
        }
    }

    /// Sends the bytes of a collection on a connected socket.
    ///
    /// Contiguous collections such as `[UInt8]` are sent in place; others are copied first.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to send.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The number of bytes sent, or `nil` when a nonblocking socket would block.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `send`.
    public func send(_ bytes: some Collection<UInt8>, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(SocketError) in try send(UnsafeRawBufferPointer(buffer), flags: flags) }
        }
        if let result {
            return try result.get()
        }
        return try Array(bytes).withUnsafeBytes { buffer in
            Result { () throws(SocketError) in try send(buffer, flags: flags) }
        }.get()
    }

    /// Sends a datagram to an address (or bytes on a connection-mode socket, ignoring `address`
    /// where the platform does).
    ///
    /// - Parameters:
    ///   - bytes: The datagram, borrowed for the duration of the call.
    ///   - address: The destination.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The number of bytes sent, or `nil` when a nonblocking socket would block.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/messageTooLong`` for a datagram
    ///   that is too large, or ``SocketError/Code/permissionDenied`` for a broadcast address
    ///   without ``Option/broadcast``.
    ///
    /// The corresponding C function is `sendto`.
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let result = address.withUnsafeSockAddr { pointer, length in
            sysSendto(descriptor, bytes, flags.rawValue, pointer, length)
        }
        switch result {
        case .success(let count): return count
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno):
            throw SocketError("sendto", errno: errno, descriptor: descriptor, address: address, byteCount: bytes.count)
        }
    }

    /// Sends the bytes of a collection as a datagram to an address.
    ///
    /// - Parameters:
    ///   - bytes: The datagram.
    ///   - address: The destination.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The number of bytes sent, or `nil` when a nonblocking socket would block.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `sendto`.
    public func send(_ bytes: some Collection<UInt8>, to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(SocketError) in try send(UnsafeRawBufferPointer(buffer), to: address, flags: flags) }
        }
        if let result {
            return try result.get()
        }
        return try Array(bytes).withUnsafeBytes { buffer in
            Result { () throws(SocketError) in try send(buffer, to: address, flags: flags) }
        }.get()
    }

    /// Receives bytes from a connected socket into a buffer.
    ///
    /// - Parameters:
    ///   - buffer: Where to put the bytes, borrowed for the duration of the call.
    ///   - flags: Receive flags, such as ``MessageFlags/peek``.
    /// - Returns: The number of bytes received; 0 means end-of-file on a stream socket (the peer
    ///   shut down writing or closed) when `buffer` is not empty; `nil` when a nonblocking socket
    ///   has no data yet (wait for ``PollEvents/readable``).
    /// - Throws: ``SocketError``, for example ``SocketError/Code/connectionReset``.
    ///
    /// The corresponding C function is `recv`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int? {
        switch sysRecv(descriptor, buffer, flags.rawValue) {
        case .success(let count): return count
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno): throw SocketError("recv", errno: errno, descriptor: descriptor)
        }
    }

    /// Receives up to `maximumCount` bytes from a connected socket into a new array.
    ///
    /// - Parameters:
    ///   - maximumCount: The most bytes to receive.
    ///   - flags: Receive flags, such as ``MessageFlags/peek``.
    /// - Returns: The bytes; empty means end-of-file on a stream socket; `nil` when a
    ///   nonblocking socket has no data yet.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `recv`.
    public func receive(maximumCount: Int, flags: MessageFlags = []) throws(SocketError) -> [UInt8]? {
        precondition(maximumCount >= 0, "StrataSockets: receive(maximumCount: \(maximumCount)): negative count")
        var result: Result<Int, Errno> = .success(0)
        let bytes = [UInt8](unsafeUninitializedCapacity: maximumCount) { buffer, initialized in
            result = sysRecv(descriptor, UnsafeMutableRawBufferPointer(buffer), flags.rawValue)
            if case .success(let count) = result {
                initialized = count
            } else {
                initialized = 0
            }
        }
        switch result {
        case .success: return bytes
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno): throw SocketError("recv", errno: errno, descriptor: descriptor)
        }
    }

    /// Receives a datagram and the address it came from.
    ///
    /// A datagram larger than `buffer` is cut to fit, and the rest is discarded.
    ///
    /// - Parameters:
    ///   - buffer: Where to put the datagram, borrowed for the duration of the call.
    ///   - flags: Receive flags, such as ``MessageFlags/peek``.
    /// - Returns: The number of bytes received and the sender's address, or `nil` when a
    ///   nonblocking socket has no datagram yet. On a connected stream socket, where the kernel
    ///   reports no address, the address is the peer's; a Unix datagram from an unbound socket
    ///   comes from ``SocketAddress/Unix/unnamed``.
    /// - Throws: ``SocketError``, for example ``SocketError/Code/connectionRefused`` when an
    ///   earlier datagram met a closed port.
    ///
    /// The corresponding C function is `recvfrom`.
    public func receiveFrom(
        into buffer: UnsafeMutableRawBufferPointer,
        flags: MessageFlags = []
    ) throws(SocketError) -> (count: Int, from: SocketAddress)? {
        let (result, sender) = SocketAddress.receiving { pointer, length in
            sysRecvfrom(descriptor, buffer, flags.rawValue, pointer, length)
        }
        switch result {
        case .success(let count):
            switch sender {
            case .success(let address): return (count, address)
            case .failure(let error): throw SocketError(unsupportedAddress: error, call: "recvfrom")
            case .none:
                // No address: a connected stream socket (the peer's address applies), or a Unix
                // datagram from an unbound sender (unnamed).
                return (count, (try? remoteAddress) ?? SocketAddress(.unnamed))
            }
        case .failure(let errno) where errno.isWouldBlock:
            return nil
        case .failure(let errno):
            throw SocketError("recvfrom", errno: errno, descriptor: descriptor)
        }
    }

    /// Sends the contents of several buffers in one call, in order (gather).
    ///
    /// Useful to send a header and a body without copying them together. At most `IOV_MAX`
    /// buffers (1024 on Linux) go out per call; the count returned tells how far it got.
    ///
    /// The call uses `sendmsg` rather than `writev`, because `writev` cannot carry
    /// `MSG_NOSIGNAL` and would raise SIGPIPE on Linux when the peer is gone.
    ///
    /// - Parameters:
    ///   - buffers: The buffers, borrowed for the duration of the call. Empty buffers are allowed.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The total number of bytes sent, possibly less than the buffers hold, or `nil`
    ///   when a nonblocking socket would block.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `sendmsg` (the `writev` of sockets).
    public func write(gathering buffers: [UnsafeRawBufferPointer], flags: MessageFlags = []) throws(SocketError) -> Int? {
        try sendMessage(buffers, to: nil, passing: [], flags: flags)
    }

    /// Receives bytes into several buffers in one call, filling each before the next (scatter).
    ///
    /// At most `IOV_MAX` buffers (1024 on Linux) are filled per call.
    ///
    /// - Parameter buffers: The buffers, borrowed for the duration of the call.
    /// - Returns: The total number of bytes received; 0 means end-of-file on a stream socket;
    ///   `nil` when a nonblocking socket has no data yet.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `readv`.
    public func read(scatteringInto buffers: [UnsafeMutableRawBufferPointer]) throws(SocketError) -> Int? {
        let count = min(buffers.count, systemIOVectorLimit)
        let result = withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(count, 1)) { vectors in
            for index in 0..<count {
                vectors[index] = iovec(iov_base: buffers[index].baseAddress, iov_len: buffers[index].count)
            }
            return sysReadv(descriptor, vectors.baseAddress!, CInt(count))
        }
        switch result {
        case .success(let count): return count
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno): throw SocketError("readv", errno: errno, descriptor: descriptor)
        }
    }

    /// Sends part of a file without copying it through user space.
    ///
    /// The file's own offset is not changed. On Linux, `sendfile` cannot carry `MSG_NOSIGNAL`:
    /// Strata blocks SIGPIPE on the calling thread for the duration of the call and discards the
    /// signal the call raised, so a closed peer gives ``SocketError/Code/brokenPipe`` and never
    /// kills the process. On Darwin, `SO_NOSIGPIPE` covers it.
    ///
    /// - Parameters:
    ///   - file: A descriptor of a regular file open for reading; borrowed, not closed.
    ///   - offset: Where in the file to start.
    ///   - count: How many bytes to send at most.
    /// - Returns: The number of bytes sent (0 when `offset` is at or past the end of the file),
    ///   or `nil` when a nonblocking socket would block before sending anything.
    /// - Throws: ``SocketError``; ``SocketError/Code/invalidArgument`` or
    ///   ``SocketError/Code/unsupported`` when the file cannot be sent this way (fall back to
    ///   read and send).
    ///
    /// The corresponding C function is `sendfile`.
    public func sendFile(from file: CInt, offset: Int64, count: Int) throws(SocketError) -> Int? {
        precondition(offset >= 0 && count >= 0, "StrataSockets: sendFile(offset: \(offset), count: \(count)): negative value")
        switch sysSendfile(descriptor, file, offset, count) {
        case .success(let sent): return sent
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno):
            throw SocketError("sendfile", errno: errno, descriptor: descriptor, byteCount: count, otherDescriptor: file)
        }
    }
}
