/// An IPv4 address, without a port.
///
/// The value is the address as a 32-bit number, most significant octet first: `1.2.3.4` is
/// `0x01020304`. Text is parsed strictly (four decimal octets, no leading zeros) and printed in
/// dotted-quad form.
///
/// ```swift
/// let loopback = try IPv4Address(parsing: "127.0.0.1")
/// let address = SocketAddress(ipv4: loopback, port: 8080)
/// ```
public struct IPv4Address: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible,
    LosslessStringConvertible
{
    /// The address as a number, most significant octet first (`1.2.3.4` is `0x01020304`).
    public var rawValue: UInt32

    /// Creates an address from its numeric value.
    ///
    /// - Parameter rawValue: The address, most significant octet first.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Creates an address from its four octets, in text order.
    ///
    /// - Parameters:
    ///   - a: The first octet, `1` in `1.2.3.4`.
    ///   - b: The second octet.
    ///   - c: The third octet.
    ///   - d: The fourth octet.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Creates an address from its four octets in network order.
    ///
    /// - Parameter bytes: Exactly four octets.
    /// - Returns: `nil` when `bytes` does not hold exactly four octets.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else {
            return nil
        }
        self.rawValue = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Parses dotted-quad text such as `"192.0.2.1"`.
    ///
    /// The parser is strict: exactly four decimal octets of at most 255, no leading zeros (`"01"`
    /// could mean octal to other parsers), no whitespace and no port.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: String) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            self.rawValue = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseIPv4(bytes, 0, bytes.count)
            }
        } catch {
            throw error.error(parsing: "IPv4 address", text)
        }
    }

    /// Parses dotted-quad text in a substring; see ``init(parsing:)-(String)``.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: Substring) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            self.rawValue = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseIPv4(bytes, 0, bytes.count)
            }
        } catch {
            throw error.error(parsing: "IPv4 address", text)
        }
    }

    /// Parses dotted-quad text, or returns `nil`; see ``init(parsing:)``.
    ///
    /// - Parameter description: The address text.
    public init?(_ description: String) {
        try? self.init(parsing: description)
    }

    /// The four octets in network order.
    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)]
    }

    /// The dotted-quad text, such as `192.0.2.1`.
    public var description: String {
        AddressText.makeString(capacity: 15) { out in
            AddressText.writeIPv4(rawValue, into: out, at: 0)
        }
    }

    /// Orders addresses numerically.
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// `0.0.0.0`: every local address, when binding (`INADDR_ANY`).
    public static var any: IPv4Address { IPv4Address(rawValue: 0) }

    /// `127.0.0.1`: the loopback address (`INADDR_LOOPBACK`).
    public static var loopback: IPv4Address { IPv4Address(127, 0, 0, 1) }

    /// `255.255.255.255`: the limited broadcast address (`INADDR_BROADCAST`).
    public static var broadcast: IPv4Address { IPv4Address(rawValue: .max) }

    /// Whether this is `0.0.0.0`.
    public var isUnspecified: Bool { rawValue == 0 }

    /// Whether this address is in `127.0.0.0/8`.
    public var isLoopback: Bool { rawValue >> 24 == 127 }

    /// Whether this address is in `169.254.0.0/16`.
    public var isLinkLocal: Bool { rawValue >> 16 == 0xa9fe }

    /// Whether this address is in `224.0.0.0/4`.
    public var isMulticast: Bool { rawValue >> 28 == 0xe }
}
