// SocketAddress ⇄ C socket address structures, with each platform's layout:
// - Linux: no length field; sa_family_t is 16 bits.
// - Darwin, FreeBSD: a leading `sin_len`/`sin6_len`/`sun_len` byte that must hold the structure's
//   length, and an 8-bit sa_family_t. Leaving it 0 is the classic porting bug.
// Ports and the flow label are in network byte order in the C structures; the scope id is not.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketAddress {
    /// Calls `body` with a pointer to this address as a C `sockaddr` and its length.
    ///
    /// The structure is built on the stack for the duration of the call, as `sockaddr_in`,
    /// `sockaddr_in6` or `sockaddr_un` with the platform's layout. Use it to pass addresses to
    /// C APIs that Strata does not wrap.
    ///
    /// - Parameter body: A closure that receives the address and its length in bytes.
    ///   The pointer is valid only during the call and must not escape it.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withUnsafeSockAddr<Result, Failure: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        switch storage {
        case .ipv4(let value):
            var address = sockaddr_in()
            #if canImport(Darwin) || os(FreeBSD) || os(OpenBSD) || os(NetBSD)
            address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
            #endif
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = value.port.bigEndian
            address.sin_addr.s_addr = value.address.rawValue.bigEndian
            return try withUnsafeBytes(of: &address) { bytes throws(Failure) in
                try body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen(of: sockaddr_in.self))
            }
        case .ipv6(let value):
            var address = sockaddr_in6()
            #if canImport(Darwin) || os(FreeBSD) || os(OpenBSD) || os(NetBSD)
            address.sin6_len = UInt8(MemoryLayout<sockaddr_in6>.size)
            #endif
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = value.port.bigEndian
            address.sin6_flowinfo = value.flowInfo.bigEndian
            address.sin6_scope_id = value.scopeID
            withUnsafeMutableBytes(of: &address.sin6_addr) { bytes in
                bytes.storeBytes(of: value.address.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: value.address.low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            return try withUnsafeBytes(of: &address) { bytes throws(Failure) in
                try body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen(of: sockaddr_in6.self))
            }
        case .unix(let value):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let length: Int
            switch value.kind {
            case .path:
                // The path and its terminating NUL (sockaddr_un() is zeroed).
                length = pathOffset + value.pathBytes.count + 1
            case .abstract:
                // A leading NUL, then the name; the length ends the name (no terminator).
                length = pathOffset + 1 + value.pathBytes.count
            case .unnamed:
                length = pathOffset
            }
            withUnsafeMutableBytes(of: &address.sun_path) { path in
                let start = value.kind == .abstract ? 1 : 0
                path.baseAddress!.advanced(by: start).copyMemory(from: value.pathBytes, byteCount: value.pathBytes.count)
            }
            #if canImport(Darwin) || os(FreeBSD) || os(OpenBSD) || os(NetBSD)
            address.sun_len = UInt8(truncatingIfNeeded: length)
            #endif
            return try withUnsafeBytes(of: &address) { bytes throws(Failure) in
                try body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length))
            }
        }
    }

    /// Creates a socket address from a C `sockaddr` of a given length.
    ///
    /// The structure is read according to its `sa_family` (`AF_INET`, `AF_INET6` or `AF_UNIX`)
    /// and the platform's layout; it is copied, so the pointer need only be valid during the call.
    ///
    /// - Parameters:
    ///   - address: The C address, such as one filled by `accept` or `recvfrom`.
    ///   - length: The address length the C call reported.
    /// - Throws: ``SocketAddressError`` when the family is not IPv4, IPv6 or Unix
    ///   (``SocketAddressError/Code/unsupportedFamily``), or when `length` is too short for the
    ///   family's structure (``SocketAddressError/Code/truncated``).
    public init(unsafeSockAddr address: UnsafePointer<sockaddr>, length: socklen_t) throws(SocketAddressError) {
        let raw = UnsafeRawPointer(address)
        let familyOffset = MemoryLayout<sockaddr>.offset(of: \sockaddr.sa_family)!
        guard Int(length) >= familyOffset + MemoryLayout<sa_family_t>.size else {
            throw SocketAddressError(
                code: .truncated,
                message: "invalid C socket address: \(length) bytes is too short to hold an address family")
        }
        let family = CInt(raw.loadUnaligned(fromByteOffset: familyOffset, as: sa_family_t.self))
        switch family {
        case cInt(AF_INET):
            guard Int(length) >= MemoryLayout<sockaddr_in>.size else {
                throw Self.truncated("sockaddr_in", length, MemoryLayout<sockaddr_in>.size)
            }
            let value = raw.loadUnaligned(as: sockaddr_in.self)
            self.init(ipv4: IPv4Address(rawValue: UInt32(bigEndian: value.sin_addr.s_addr)), port: UInt16(bigEndian: value.sin_port))
        case cInt(AF_INET6):
            guard Int(length) >= MemoryLayout<sockaddr_in6>.size else {
                throw Self.truncated("sockaddr_in6", length, MemoryLayout<sockaddr_in6>.size)
            }
            var value = raw.loadUnaligned(as: sockaddr_in6.self)
            let (high, low) = withUnsafeBytes(of: &value.sin6_addr) { bytes in
                (UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self.init(
                ipv6: IPv6Address(high: high, low: low),
                port: UInt16(bigEndian: value.sin6_port),
                scopeID: value.sin6_scope_id,
                flowInfo: UInt32(bigEndian: value.sin6_flowinfo))
        case cInt(AF_UNIX):
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let pathCapacity = MemoryLayout<sockaddr_un>.size - pathOffset
            let pathLength = min(max(Int(length) - pathOffset, 0), pathCapacity)
            let path = UnsafeRawBufferPointer(start: raw.advanced(by: pathOffset), count: pathLength)
            if pathLength == 0 {
                self.init(Unix.unnamed)
            } else if path[0] == 0 {
                #if os(Linux)
                // Linux abstract namespace: a leading NUL, and the length ends the name.
                self.init(Unix(kind: .abstract, pathBytes: Array(path[1...])))
                #else
                self.init(Unix.unnamed)
                #endif
            } else {
                // A path ends at its NUL, or at the length when the kernel reports no terminator.
                let end = path.firstIndex(of: 0) ?? pathLength
                self.init(Unix(kind: .path, pathBytes: Array(path[0..<end])))
            }
        default:
            throw SocketAddressError(
                code: .unsupportedFamily,
                message: "invalid C socket address: family \(family) is not IPv4, IPv6 or Unix")
        }
    }

    private static func truncated(_ structure: String, _ length: socklen_t, _ needed: Int) -> SocketAddressError {
        SocketAddressError(
            code: .truncated,
            message: "invalid C socket address: \(length) bytes is too short for \(structure) (\(needed) bytes)")
    }

    /// Reads an address that a C call writes into a `sockaddr_storage`.
    ///
    /// - Parameter call: Receives the storage and its length (in: capacity, out: actual length);
    ///   returns the call's result.
    /// - Returns: The call's result, and the address it wrote (`nil` when it wrote a length of 0).
    static func receiving<Value>(
        _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Value
    ) -> (Value, received: Result<SocketAddress, SocketAddressError>?) {
        var storage = sockaddr_storage()
        var length = socklen(of: sockaddr_storage.self)
        let value = withUnsafeMutableBytes(of: &storage) { bytes in
            call(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        if length == 0 {
            return (value, nil)
        }
        let received = withUnsafeBytes(of: &storage) { bytes in
            Result { () throws(SocketAddressError) in
                try SocketAddress(
                    unsafeSockAddr: bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                    length: min(length, socklen(of: sockaddr_storage.self)))
            }
        }
        return (value, received)
    }
}
