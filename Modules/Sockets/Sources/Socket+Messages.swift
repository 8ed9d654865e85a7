#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSys
import Synchronization

// sendmsg/recvmsg: gather/scatter buffers, an optional address, and descriptor passing over Unix
// sockets (SCM_RIGHTS). The msghdr, iovec array and control buffer live on the stack for the call.

extension Socket {
    /// Sends a message: several buffers, an optional destination, and descriptors to pass.
    ///
    /// Descriptors are passed over Unix domain sockets with `SCM_RIGHTS`: the receiver gets new
    /// descriptors for the same open files. The descriptors given here are only borrowed: they
    /// stay open and owned by the caller. At most `IOV_MAX` buffers go out per call.
    ///
    /// - Parameters:
    ///   - buffers: The data, borrowed for the duration of the call. A message that passes
    ///     descriptors should carry at least one byte, which is what the receiver waits for.
    ///   - address: The destination, for unconnected datagram sockets; `nil` otherwise.
    ///   - descriptors: Descriptors to pass (Unix domain sockets only); borrowed.
    ///   - flags: Send flags; `MSG_NOSIGNAL` is always added on Linux and FreeBSD.
    /// - Returns: The number of bytes sent (the descriptors go with the first byte), or `nil`
    ///   when a nonblocking socket would block.
    /// - Throws: ``SocketError``; ``SocketError/Code/invalidArgument`` when too many descriptors
    ///   are passed at once (253 on Linux).
    ///
    /// The corresponding C function is `sendmsg`.
    public func sendMessage(
        _ buffers: [UnsafeRawBufferPointer],
        to address: SocketAddress? = nil,
        passing descriptors: [CInt] = [],
        flags: MessageFlags = []
    ) throws(SocketError) -> Int? {
        let vectorCount = min(buffers.count, systemIOVectorLimit)
        let payloadBytes = descriptors.count * MemoryLayout<CInt>.stride
        let controlBytes = descriptors.isEmpty ? 0 : strata_cmsg_space(payloadBytes)
        let result = withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(vectorCount, 1)) { vectors in
            for index in 0..<vectorCount {
                // The kernel only reads from these buffers; iovec has one pointer type for both directions.
                vectors[index] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: buffers[index].baseAddress),
                    iov_len: buffers[index].count)
            }
            return withUnsafeTemporaryAllocation(
                byteCount: max(controlBytes, 1),
                alignment: MemoryLayout<cmsghdr>.alignment
            ) { control in
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = numericCast(vectorCount)
                if !descriptors.isEmpty {
                    control.initializeMemory(as: UInt8.self, repeating: 0)
                    message.msg_control = control.baseAddress
                    message.msg_controllen = numericCast(controlBytes)
                    let header = strata_cmsg_firsthdr(&message)!
                    header.pointee.cmsg_level = SOL_SOCKET
                    header.pointee.cmsg_type = cInt(SCM_RIGHTS)
                    header.pointee.cmsg_len = numericCast(strata_cmsg_len(payloadBytes))
                    let data = UnsafeMutableRawPointer(strata_cmsg_data(header)!)
                    for (index, descriptor) in descriptors.enumerated() {
                        data.storeBytes(of: descriptor, toByteOffset: index * MemoryLayout<CInt>.stride, as: CInt.self)
                    }
                }
                guard let address else {
                    return sysSendmsg(descriptor, &message, flags.rawValue)
                }
                return address.withUnsafeSockAddr { pointer, length in
                    message.msg_name = UnsafeMutableRawPointer(mutating: pointer)
                    message.msg_namelen = length
                    return sysSendmsg(descriptor, &message, flags.rawValue)
                }
            }
        }
        switch result {
        case .success(let count): return count
        case .failure(let errno) where errno.isWouldBlock: return nil
        case .failure(let errno):
            let total = buffers.reduce(0) { $0 + $1.count }
            throw SocketError("sendmsg", errno: errno, descriptor: descriptor, address: address, byteCount: total)
        }
    }

    /// Receives a message: data into several buffers, the sender's address, and passed descriptors.
    ///
    /// Received descriptors are new descriptors in this process, close-on-exec, owned by the
    /// returned ``ReceivedMessage`` until taken with ``ReceivedMessage/takeDescriptors()``; the
    /// message closes any that were not taken. Descriptors beyond `maximumDescriptors` are closed
    /// by the kernel, and the result's flags include ``MessageFlags/controlTruncated``.
    ///
    /// - Parameters:
    ///   - buffers: Where to put the data, borrowed for the duration of the call.
    ///   - maximumDescriptors: How many passed descriptors to accept; 0 refuses them all.
    ///   - flags: Receive flags, such as ``MessageFlags/peek``.
    /// - Returns: The message, or `nil` when a nonblocking socket has nothing to receive yet.
    ///   A byte count of 0 on a stream socket means end-of-file.
    /// - Throws: ``SocketError``.
    ///
    /// The corresponding C function is `recvmsg`.
    public func receiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer],
        maximumDescriptors: Int = 0,
        flags: MessageFlags = []
    ) throws(SocketError) -> ReceivedMessage? {
        precondition(maximumDescriptors >= 0, "StrataSockets: receiveMessage(maximumDescriptors:): negative count")
        let vectorCount = min(buffers.count, systemIOVectorLimit)
        let controlBytes = maximumDescriptors == 0 ? 0 : strata_cmsg_space(maximumDescriptors * MemoryLayout<CInt>.stride)
        #if os(Linux) || os(FreeBSD)
        let receiveFlags = flags.rawValue | cInt(MSG_CMSG_CLOEXEC)
        #else
        let receiveFlags = flags.rawValue
        #endif
        var received: [CInt] = []
        var returnedFlags: CInt = 0
        let (result, sender) = SocketAddress.receiving { name, nameLength in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(vectorCount, 1)) { vectors in
                for index in 0..<vectorCount {
                    vectors[index] = iovec(iov_base: buffers[index].baseAddress, iov_len: buffers[index].count)
                }
                return withUnsafeTemporaryAllocation(
                    byteCount: max(controlBytes, 1),
                    alignment: MemoryLayout<cmsghdr>.alignment
                ) { control in
                    control.initializeMemory(as: UInt8.self, repeating: 0)
                    var message = msghdr()
                    message.msg_name = UnsafeMutableRawPointer(name)
                    message.msg_namelen = nameLength.pointee
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = numericCast(vectorCount)
                    if controlBytes > 0 {
                        message.msg_control = control.baseAddress
                        message.msg_controllen = numericCast(controlBytes)
                    }
                    let result = sysRecvmsg(descriptor, &message, receiveFlags)
                    guard case .success = result else {
                        nameLength.pointee = 0
                        return result
                    }
                    nameLength.pointee = message.msg_namelen
                    returnedFlags = message.msg_flags
                    received = Self.passedDescriptors(in: &message)
                    return result
                }
            }
        }
        switch result {
        case .success(let count):
            #if !(os(Linux) || os(FreeBSD))
            // No MSG_CMSG_CLOEXEC here: mark them now (a fork+exec in between would leak them).
            for passed in received {
                _ = sysSetDescriptorFlags(passed, FD_CLOEXEC)
            }
            #endif
            let address: SocketAddress?
            switch sender {
            case .none: address = nil
            case .success(let value): address = value
            case .failure: address = nil
            }
            return ReceivedMessage(
                count: count,
                address: address,
                flags: MessageFlags(rawValue: returnedFlags),
                descriptors: received)
        case .failure(let errno) where errno.isWouldBlock:
            return nil
        case .failure(let errno):
            throw SocketError("recvmsg", errno: errno, descriptor: descriptor)
        }
    }

    /// The descriptors of every `SCM_RIGHTS` control message in `message`.
    private static func passedDescriptors(in message: inout msghdr) -> [CInt] {
        var descriptors: [CInt] = []
        var header = strata_cmsg_firsthdr(&message)
        while let current = header {
            if current.pointee.cmsg_level == SOL_SOCKET && current.pointee.cmsg_type == cInt(SCM_RIGHTS) {
                let payload = Int(current.pointee.cmsg_len) - strata_cmsg_len(0)
                let data = UnsafeRawPointer(strata_cmsg_data(current)!)
                for index in 0..<max(payload, 0) / MemoryLayout<CInt>.stride {
                    descriptors.append(data.loadUnaligned(fromByteOffset: index * MemoryLayout<CInt>.stride, as: CInt.self))
                }
            }
            header = strata_cmsg_nxthdr(&message, current)
        }
        return descriptors
    }

    /// A message received with ``Socket/receiveMessage(into:maximumDescriptors:flags:)``.
    ///
    /// It owns the descriptors that came with it: take them with ``takeDescriptors()``. Those not
    /// taken are closed when the last copy of the message is gone, so none can leak. Copies share
    /// the descriptors: the first ``takeDescriptors()`` gets them, later calls get none.
    public struct ReceivedMessage: Sendable {
        /// The number of bytes received into the buffers.
        public let count: Int

        /// The sender's address, when the kernel reported one (datagram sockets).
        public let address: SocketAddress?

        /// Flags the kernel reported, such as ``MessageFlags/truncated`` or ``MessageFlags/controlTruncated``.
        public let flags: MessageFlags

        /// The passed descriptors; nil when none came, so plain messages allocate nothing for them.
        private let passed: PassedDescriptors?

        init(count: Int, address: SocketAddress?, flags: MessageFlags, descriptors: [CInt]) {
            self.count = count
            self.address = address
            self.flags = flags
            self.passed = descriptors.isEmpty ? nil : PassedDescriptors(descriptors)
        }

        /// How many passed descriptors the message still owns.
        public var descriptorCount: Int {
            passed?.count ?? 0
        }

        /// Takes ownership of the passed descriptors; the caller must close them.
        ///
        /// Wrap a socket descriptor with ``Socket/init(adoptingDescriptor:)`` to have it closed
        /// automatically.
        ///
        /// - Returns: The descriptors, in the order they were sent; empty once taken.
        public func takeDescriptors() -> [CInt] {
            passed?.take() ?? []
        }
    }
}

/// Descriptors received with a message, closed on deinit unless taken first.
final class PassedDescriptors: Sendable {
    private let descriptors: Mutex<[CInt]>

    init(_ descriptors: [CInt]) {
        self.descriptors = Mutex(descriptors)
    }

    var count: Int {
        descriptors.withLock { $0.count }
    }

    func take() -> [CInt] {
        descriptors.withLock { descriptors in
            let taken = descriptors
            descriptors = []
            return taken
        }
    }

    deinit {
        for descriptor in descriptors.withLock({ $0 }) {
            _ = sysClose(descriptor)
        }
    }
}
