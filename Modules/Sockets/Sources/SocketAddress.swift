#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The address of a socket: IPv4 or IPv6 with a port, or a Unix domain socket path.
///
/// `SocketAddress` is a value: it holds the address in Swift types and builds the C
/// `sockaddr_in`, `sockaddr_in6` or `sockaddr_un` only when a system call needs it, with the
/// platform's layout (`sin_len` and friends on Darwin and FreeBSD, none on Linux).
///
/// Its text form is strict and canonical, and round-trips through ``init(parsing:)``:
///
/// | form | example |
/// |------|---------|
/// | IPv4 | `192.0.2.1:80` |
/// | IPv6 | `[2001:db8::1]:443` |
/// | IPv6 with a scope | `[fe80::1%2]:80` (an interface name such as `%eth0` is accepted and printed as its index) |
/// | Unix path | `unix:/run/app.sock` |
/// | Linux abstract name | `unix:@app` |
/// | unnamed Unix socket | `unix:` |
///
/// The IPv6 flow label (``IPv6/flowInfo``) has no text form and is not printed.
///
/// ```swift
/// let address = try SocketAddress(parsing: "127.0.0.1:8080")
/// let same = SocketAddress(ipv4: .loopback, port: 8080)
/// assert(address == same && address.description == "127.0.0.1:8080")
/// ```
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    enum Storage: Hashable, Sendable {
        case ipv4(IPv4)
        case ipv6(IPv6)
        case unix(Unix)
    }

    var storage: Storage

    /// Creates a socket address from an IPv4 address and port.
    ///
    /// - Parameter ipv4: The IPv4 address and port.
    public init(_ ipv4: IPv4) {
        self.storage = .ipv4(ipv4)
    }

    /// Creates a socket address from an IPv6 address, port, scope and flow label.
    ///
    /// - Parameter ipv6: The IPv6 address and its companions.
    public init(_ ipv6: IPv6) {
        self.storage = .ipv6(ipv6)
    }

    /// Creates a socket address from a Unix domain socket address.
    ///
    /// - Parameter unix: The path, abstract name or unnamed address.
    public init(_ unix: Unix) {
        self.storage = .unix(unix)
    }

    /// Creates an IPv4 socket address.
    ///
    /// - Parameters:
    ///   - address: The IPv4 address; ``IPv4Address/any`` binds every local address.
    ///   - port: The port; 0 lets the system pick one when binding.
    public init(ipv4 address: IPv4Address, port: UInt16) {
        self.storage = .ipv4(IPv4(address: address, port: port))
    }

    /// Creates an IPv6 socket address.
    ///
    /// - Parameters:
    ///   - address: The IPv6 address; ``IPv6Address/any`` binds every local address.
    ///   - port: The port; 0 lets the system pick one when binding.
    ///   - scopeID: The interface index for link-local addresses, 0 for none.
    ///   - flowInfo: The flow label and traffic class, in host order; usually 0.
    public init(ipv6 address: IPv6Address, port: UInt16, scopeID: UInt32 = 0, flowInfo: UInt32 = 0) {
        self.storage = .ipv6(IPv6(address: address, port: port, scopeID: scopeID, flowInfo: flowInfo))
    }

    /// Creates a Unix domain socket address for a file system path.
    ///
    /// - Parameter path: The socket file's path, absolute or relative.
    /// - Throws: ``SocketAddressError`` when the path does not fit in `sun_path` on this
    ///   platform (``Unix/maximumPathLength`` bytes) or contains a NUL byte.
    public init(unixPath path: String) throws(SocketAddressError) {
        self.storage = .unix(try Unix(path: path))
    }

    /// Creates a socket address for an IP address given as text, and a port.
    ///
    /// The text is a bare IP address: `192.0.2.1`, `2001:db8::1`, or `fe80::1%2` (an IPv6 address
    /// with a scope, numeric or an interface name). No brackets and no port: the port is the
    /// separate argument.
    ///
    /// - Parameters:
    ///   - ipAddress: The IP address text.
    ///   - port: The port.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(ipAddress: String, port: UInt16) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            self = try AddressText.withBytes(of: ipAddress) { bytes throws(AddressParseFailure) -> SocketAddress in
                if AddressText.firstIndex(of: UInt8(ascii: ":"), in: bytes, 0, bytes.count) != nil {
                    let (address, scopeID) = try AddressText.parseIPv6WithScope(bytes, 0, bytes.count)
                    return SocketAddress(ipv6: address, port: port, scopeID: scopeID)
                }
                return SocketAddress(ipv4: IPv4Address(rawValue: try AddressText.parseIPv4(bytes, 0, bytes.count)), port: port)
            }
        } catch {
            throw error.error(parsing: "IP address", ipAddress)
        }
    }

    /// Parses the text form of a socket address.
    ///
    /// Accepted forms: `192.0.2.1:80`, `[2001:db8::1]:80`, `[fe80::1%2]:80` or
    /// `[fe80::1%eth0]:80`, `unix:/path/to.sock`, `unix:@name` (Linux abstract namespace) and
    /// `unix:` (unnamed). Parsing is strict: no leading zeros in IPv4 octets or ports, ports up to
    /// 65535, no empty parts, at most eight IPv6 groups and one `::`, no whitespace. A Unix path
    /// is taken verbatim after `unix:`; write `unix:./@name` for a relative path that starts with `@`.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: String) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            self = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseSocketAddress(bytes)
            }
        } catch {
            throw error.error(parsing: "socket address", text)
        }
    }

    /// Parses the text form of a socket address in a substring; see ``init(parsing:)-(String)``.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: Substring) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            self = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseSocketAddress(bytes)
            }
        } catch {
            throw error.error(parsing: "socket address", text)
        }
    }

    /// Parses the text form of a socket address, or returns `nil`; see ``init(parsing:)``.
    ///
    /// - Parameter description: The address text.
    public init?(_ description: String) {
        try? self.init(parsing: description)
    }

    /// The address family: IPv4, IPv6 or Unix.
    public var family: Family {
        switch storage {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        case .unix: .unix
        }
    }

    /// The IPv4 address and port, when this is an IPv4 socket address.
    public var ipv4: IPv4? {
        if case .ipv4(let value) = storage { value } else { nil }
    }

    /// The IPv6 address, port, scope and flow label, when this is an IPv6 socket address.
    public var ipv6: IPv6? {
        if case .ipv6(let value) = storage { value } else { nil }
    }

    /// The Unix domain address, when this is a Unix socket address.
    public var unix: Unix? {
        if case .unix(let value) = storage { value } else { nil }
    }

    /// The port of an IP socket address; `nil` for Unix socket addresses.
    public var port: UInt16? {
        switch storage {
        case .ipv4(let value): value.port
        case .ipv6(let value): value.port
        case .unix: nil
        }
    }

    /// The canonical text form, such as `127.0.0.1:8080`, `[::1]:8080` or `unix:/run/app.sock`.
    public var description: String {
        switch storage {
        case .ipv4(let value): value.description
        case .ipv6(let value): value.description
        case .unix(let value): value.description
        }
    }
}

// MARK: - Family

extension SocketAddress {
    /// An address family: the `AF_*` constant of a socket or address.
    public struct Family: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The C `AF_*` value.
        public let rawValue: CInt

        /// Creates a family from its C value.
        ///
        /// - Parameter rawValue: An `AF_*` constant.
        public init(rawValue: CInt) {
            self.rawValue = rawValue
        }

        /// IPv4.
        ///
        /// The corresponding C constant is `AF_INET`.
        public static var ipv4: Family { Family(rawValue: cInt(AF_INET)) }

        /// IPv6.
        ///
        /// The corresponding C constant is `AF_INET6`.
        public static var ipv6: Family { Family(rawValue: cInt(AF_INET6)) }

        /// Unix domain sockets (local inter-process communication).
        ///
        /// The corresponding C constant is `AF_UNIX`.
        public static var unix: Family { Family(rawValue: cInt(AF_UNIX)) }

        /// The family's name: `ipv4`, `ipv6`, `unix`, or `family N`.
        public var description: String {
            switch self {
            case .ipv4: "ipv4"
            case .ipv6: "ipv6"
            case .unix: "unix"
            default: "family \(rawValue)"
            }
        }
    }
}

// MARK: - IPv4

extension SocketAddress {
    /// An IPv4 socket address: an address and a port.
    ///
    /// The C structure is `sockaddr_in`.
    public struct IPv4: Hashable, Sendable, CustomStringConvertible {
        /// The IPv4 address.
        public var address: IPv4Address

        /// The port.
        public var port: UInt16

        /// Creates an IPv4 socket address.
        ///
        /// - Parameters:
        ///   - address: The IPv4 address.
        ///   - port: The port.
        public init(address: IPv4Address, port: UInt16) {
            self.address = address
            self.port = port
        }

        /// The text form, such as `192.0.2.1:80`.
        public var description: String {
            AddressText.makeString(capacity: 21) { out in
                var index = AddressText.writeIPv4(address.rawValue, into: out, at: 0)
                out[index] = UInt8(ascii: ":")
                index = AddressText.writeDecimal(UInt32(port), into: out, at: index + 1)
                return index
            }
        }
    }
}

// MARK: - IPv6

extension SocketAddress {
    /// An IPv6 socket address: an address, a port, a scope and a flow label.
    ///
    /// The C structure is `sockaddr_in6`.
    public struct IPv6: Hashable, Sendable, CustomStringConvertible {
        /// The IPv6 address.
        public var address: IPv6Address

        /// The port.
        public var port: UInt16

        /// The interface index that scopes a link-local address, 0 for none (`sin6_scope_id`).
        public var scopeID: UInt32

        /// The flow label and traffic class, in host order (`sin6_flowinfo`, which the C
        /// structure holds in network order). It has no text form.
        public var flowInfo: UInt32

        /// Creates an IPv6 socket address.
        ///
        /// - Parameters:
        ///   - address: The IPv6 address.
        ///   - port: The port.
        ///   - scopeID: The interface index for link-local addresses, 0 for none.
        ///   - flowInfo: The flow label and traffic class, in host order; usually 0.
        public init(address: IPv6Address, port: UInt16, scopeID: UInt32 = 0, flowInfo: UInt32 = 0) {
            self.address = address
            self.port = port
            self.scopeID = scopeID
            self.flowInfo = flowInfo
        }

        /// The text form, such as `[2001:db8::1]:443` or `[fe80::1%2]:80`.
        public var description: String {
            AddressText.makeString(capacity: AddressText.maximumSocketAddressLength) { out in
                out[0] = UInt8(ascii: "[")
                var index = AddressText.writeIPv6(address.high, address.low, into: out, at: 1)
                if scopeID != 0 {
                    out[index] = UInt8(ascii: "%")
                    index = AddressText.writeDecimal(scopeID, into: out, at: index + 1)
                }
                out[index] = UInt8(ascii: "]")
                out[index + 1] = UInt8(ascii: ":")
                return AddressText.writeDecimal(UInt32(port), into: out, at: index + 2)
            }
        }
    }
}

// MARK: - Unix

extension SocketAddress {
    /// A Unix domain socket address: a file system path, a Linux abstract name, or unnamed.
    ///
    /// The C structure is `sockaddr_un`. A path must fit in its `sun_path` with the terminating
    /// NUL: at most ``maximumPathLength`` bytes (107 on Linux, 103 on Darwin and FreeBSD).
    public struct Unix: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case path, abstract, unnamed
        }

        let kind: Kind

        /// The path's bytes, or the abstract name's bytes without the leading NUL; empty when unnamed.
        public let pathBytes: [UInt8]

        /// The most bytes a path may have on this platform: the size of `sun_path` minus the NUL.
        public static var maximumPathLength: Int {
            MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        }

        init(kind: Kind, pathBytes: [UInt8]) {
            self.kind = kind
            self.pathBytes = pathBytes
        }

        /// Creates the address of a socket file.
        ///
        /// - Parameter path: The path, absolute or relative, in UTF-8.
        /// - Throws: ``SocketAddressError`` (``SocketAddressError/Code/unixPathTooLong``) when the
        ///   path has more than ``maximumPathLength`` bytes, or
        ///   (``SocketAddressError/Code/invalidUnixPath``) when it is empty or contains a NUL byte.
        public init(path: String) throws(SocketAddressError) {
            do throws(AddressParseFailure) {
                self = try Unix.validatedPath(Array(path.utf8))
            } catch {
                throw error.error(parsing: "Unix socket path", path)
            }
        }

        #if os(Linux)
        /// Creates an address in Linux's abstract namespace: a name that is not a file, and
        /// disappears when the last socket bound to it closes.
        ///
        /// - Parameter name: The name, without the leading NUL byte that marks it as abstract.
        /// - Throws: ``SocketAddressError`` when the name has more than ``maximumPathLength`` bytes.
        public init(abstractName name: String) throws(SocketAddressError) {
            let bytes = Array(name.utf8)
            guard bytes.count <= Unix.maximumPathLength else {
                throw AddressParseFailure(
                    "the name is \(bytes.count) bytes; an abstract name holds at most \(Unix.maximumPathLength)",
                    code: .unixPathTooLong
                ).error(parsing: "abstract Unix socket name", name)
            }
            self.init(kind: .abstract, pathBytes: bytes)
        }
        #endif

        /// The address of an unbound Unix socket, such as either end of a socket pair.
        public static var unnamed: Unix { Unix(kind: .unnamed, pathBytes: []) }

        /// The file system path, or `nil` for abstract and unnamed addresses.
        public var path: String? {
            kind == .path ? String(decoding: pathBytes, as: UTF8.self) : nil
        }

        /// The Linux abstract name without its leading NUL byte, or `nil` for paths and unnamed addresses.
        public var abstractName: String? {
            kind == .abstract ? String(decoding: pathBytes, as: UTF8.self) : nil
        }

        /// Whether this is a Linux abstract-namespace address.
        public var isAbstract: Bool { kind == .abstract }

        /// Whether this is the address of an unbound socket.
        public var isUnnamed: Bool { kind == .unnamed }

        /// The text form: `unix:/path`, `unix:@name` (abstract) or `unix:` (unnamed).
        public var description: String {
            switch kind {
            case .path: "unix:" + String(decoding: pathBytes, as: UTF8.self)
            case .abstract: "unix:@" + String(decoding: pathBytes, as: UTF8.self)
            case .unnamed: "unix:"
            }
        }

        static func validatedPath(_ bytes: [UInt8]) throws(AddressParseFailure) -> Unix {
            if bytes.isEmpty {
                throw AddressParseFailure("the path is empty", code: .invalidUnixPath)
            }
            if bytes.contains(0) {
                throw AddressParseFailure("the path contains a NUL byte", code: .invalidUnixPath)
            }
            if bytes.count > maximumPathLength {
                throw AddressParseFailure(
                    "the path is \(bytes.count) bytes; sun_path holds at most \(maximumPathLength) bytes and a NUL on this system (use a shorter path, such as one relative to the working directory)",
                    code: .unixPathTooLong)
            }
            return Unix(kind: .path, pathBytes: bytes)
        }

        /// Parses the text after `unix:`.
        static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(AddressParseFailure) -> Unix {
            if bytes.isEmpty {
                return .unnamed
            }
            if bytes[0] == UInt8(ascii: "@") {
                #if os(Linux)
                let name = Array(bytes[1...])
                guard name.count <= maximumPathLength else {
                    throw AddressParseFailure(
                        "the abstract name is \(name.count) bytes; it holds at most \(maximumPathLength)",
                        code: .unixPathTooLong)
                }
                return Unix(kind: .abstract, pathBytes: name)
                #else
                throw AddressParseFailure(
                    "abstract Unix socket names (\"@name\") exist only on Linux (write unix:./@name for a relative path)")
                #endif
            }
            return try validatedPath(Array(bytes))
        }
    }
}
