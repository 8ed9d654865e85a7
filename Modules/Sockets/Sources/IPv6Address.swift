/// An IPv6 address, without a port or a scope.
///
/// The value is held as two 64-bit halves, most significant bits first: `2001:db8::1` has
/// `high == 0x2001_0db8_0000_0000` and `low == 1`. Text is parsed per RFC 4291 §2.2 (with a
/// dotted IPv4 tail allowed in the last 32 bits) and printed canonically per RFC 5952: lower-case
/// hex, no leading zeros, the longest run of two or more zero groups compressed to `::` (the
/// leftmost on a tie), and IPv4-mapped addresses as `::ffff:192.0.2.1`.
///
/// The scope (`%eth0`) belongs to a socket address, not to the IPv6 address: see
/// ``SocketAddress/IPv6/scopeID``.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    /// The first 64 bits of the address.
    public var high: UInt64

    /// The last 64 bits of the address.
    public var low: UInt64

    /// Creates an address from its two 64-bit halves.
    ///
    /// - Parameters:
    ///   - high: The first 64 bits, most significant first.
    ///   - low: The last 64 bits, most significant first.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Creates an address from its 16 octets in network order.
    ///
    /// - Parameter bytes: Exactly sixteen octets.
    /// - Returns: `nil` when `bytes` does not hold exactly sixteen octets.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else {
            return nil
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 {
                high = high << 8 | UInt64(byte)
            } else {
                low = low << 8 | UInt64(byte)
            }
        }
        self.init(high: high, low: low)
    }

    /// Creates the IPv4-mapped IPv6 address of an IPv4 address (`::ffff:a.b.c.d`).
    ///
    /// - Parameter ipv4: The IPv4 address.
    public init(ipv4Mapped ipv4: IPv4Address) {
        self.init(high: 0, low: 0xffff_0000_0000 | UInt64(ipv4.rawValue))
    }

    /// Parses IPv6 text such as `"2001:db8::1"` or `"::ffff:192.0.2.1"`.
    ///
    /// The parser is strict: one to four hex digits per group, eight groups or one `::`, an
    /// optional dotted IPv4 tail in the last 32 bits, no brackets, no scope, no whitespace.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: String) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            let (high, low) = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseIPv6(bytes, 0, bytes.count)
            }
            self.init(high: high, low: low)
        } catch {
            throw error.error(parsing: "IPv6 address", text)
        }
    }

    /// Parses IPv6 text in a substring; see ``init(parsing:)-(String)``.
    ///
    /// - Parameter text: The address text.
    /// - Throws: ``SocketAddressError`` with a message that quotes the text and names the problem.
    public init(parsing text: Substring) throws(SocketAddressError) {
        do throws(AddressParseFailure) {
            let (high, low) = try AddressText.withBytes(of: text) { bytes throws(AddressParseFailure) in
                try AddressText.parseIPv6(bytes, 0, bytes.count)
            }
            self.init(high: high, low: low)
        } catch {
            throw error.error(parsing: "IPv6 address", text)
        }
    }

    /// Parses IPv6 text, or returns `nil`; see ``init(parsing:)``.
    ///
    /// - Parameter description: The address text.
    public init?(_ description: String) {
        try? self.init(parsing: description)
    }

    /// The sixteen octets in network order.
    public var bytes: [UInt8] {
        (0..<16).map { index in
            let half = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> (56 - 8 * UInt64(index % 8)))
        }
    }

    /// The canonical RFC 5952 text, such as `2001:db8::1`.
    public var description: String {
        AddressText.makeString(capacity: 45) { out in
            AddressText.writeIPv6(high, low, into: out, at: 0)
        }
    }

    /// Orders addresses numerically.
    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// `::`: every local address, when binding (`in6addr_any`).
    public static var any: IPv6Address { IPv6Address(high: 0, low: 0) }

    /// `::1`: the loopback address (`in6addr_loopback`).
    public static var loopback: IPv6Address { IPv6Address(high: 0, low: 1) }

    /// Whether this is `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }

    /// Whether this is `::1`.
    public var isLoopback: Bool { high == 0 && low == 1 }

    /// Whether this address is in `fe80::/10`; such addresses need a scope to be used.
    public var isLinkLocal: Bool { high >> 54 == 0x3fa }

    /// Whether this address is in `ff00::/8`.
    public var isMulticast: Bool { high >> 56 == 0xff }

    /// The IPv4 address inside an IPv4-mapped address (`::ffff:a.b.c.d`), or `nil`.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0 && low >> 32 == 0xffff else {
            return nil
        }
        return IPv4Address(rawValue: UInt32(truncatingIfNeeded: low))
    }
}
