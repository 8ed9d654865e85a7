// The text forms of addresses: a strict parser and a canonical printer, without Foundation and
// without allocating on success (the printer allocates only the resulting String).
//
// Accepted forms (and nothing else):
//   IPv4      d.d.d.d          four decimal octets 0...255, no leading zeros ("01" is rejected,
//                              because some parsers read it as octal)
//   IPv6      RFC 4291 §2.2    1...4 hex digits per group, 8 groups or one "::" standing for one or
//                              more zero groups, an optional dotted IPv4 tail in the last 32 bits
//   port      0...65535        decimal, no leading zeros
//   scope     %N or %ifname    numeric index, or an interface name resolved with if_nametoindex
// Printed forms are canonical: IPv6 per RFC 5952 §4 (lower case, no leading zeros, the longest
// run of two or more zero groups compressed, the leftmost on ties, IPv4-mapped as ::ffff:d.d.d.d).

/// Why a piece of text is not an address: the code and a reason without the quoted input.
struct AddressParseFailure: Error {
    var code: SocketAddressError.Code
    var reason: String

    init(_ reason: String, code: SocketAddressError.Code = .invalidSyntax) {
        self.code = code
        self.reason = reason
    }

    /// The public error, quoting the input.
    func error(parsing what: String, _ input: some StringProtocol) -> SocketAddressError {
        SocketAddressError(code: code, message: "invalid \(what) \"\(input)\": \(reason)")
    }
}

enum AddressText {
    private static let colon = UInt8(ascii: ":")
    private static let dot = UInt8(ascii: ".")
    private static let percent = UInt8(ascii: "%")
    private static let zero = UInt8(ascii: "0")

    /// Runs `body` over the UTF-8 bytes of `text`, contiguously, without copying native strings.
    ///
    /// Concrete `String` and `Substring` overloads rather than one generic over `StringProtocol`:
    /// an unspecialized generic parse spends most of its time looking up type metadata.
    @inline(__always)
    static func withBytes<R>(
        of text: String,
        _ body: (UnsafeBufferPointer<UInt8>) throws(AddressParseFailure) -> R
    ) throws(AddressParseFailure) -> R {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(AddressParseFailure) -> R in try body(bytes) }
        }.get()
    }

    /// Runs `body` over the UTF-8 bytes of `text`; see the `String` overload.
    @inline(__always)
    static func withBytes<R>(
        of text: Substring,
        _ body: (UnsafeBufferPointer<UInt8>) throws(AddressParseFailure) -> R
    ) throws(AddressParseFailure) -> R {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(AddressParseFailure) -> R in try body(bytes) }
        }.get()
    }

    /// The text of `bytes[start..<end]`, for error messages.
    static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7f {
            return "\"\(Character(Unicode.Scalar(byte)))\""
        }
        return "byte 0x\(String(byte, radix: 16))"
    }

    @inline(__always)
    private static func decimalDigit(_ byte: UInt8) -> UInt32? {
        byte >= zero && byte <= UInt8(ascii: "9") ? UInt32(byte &- zero) : nil
    }

    @inline(__always)
    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte &- UInt8(ascii: "A") &+ 10)
        default: nil
        }
    }

    // MARK: Parsing

    /// Parses `bytes[start..<end]` as a dotted-quad IPv4 address, as a number (1.2.3.4 is 0x01020304).
    static func parseIPv4(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws(AddressParseFailure) -> UInt32 {
        if start == end {
            throw AddressParseFailure("the address is empty")
        }
        var value: UInt32 = 0
        var octets = 0
        var index = start
        while true {
            let octetStart = index
            var octet: UInt32 = 0
            while index < end, let digit = decimalDigit(bytes[index]) {
                if index - octetStart == 3 {
                    throw AddressParseFailure("octet \"\(text(bytes, octetStart, index + 1))…\" has more than 3 digits")
                }
                octet = octet * 10 + digit
                index += 1
            }
            if index == octetStart {
                if index == end || bytes[index] == dot {
                    throw AddressParseFailure("octet \(octets + 1) is empty")
                }
                throw AddressParseFailure("unexpected \(describe(bytes[index])) in octet \(octets + 1)")
            }
            if bytes[octetStart] == zero && index - octetStart > 1 {
                throw AddressParseFailure(
                    "octet \"\(text(bytes, octetStart, index))\" has a leading zero (write \(octet))")
            }
            if octet > 255 {
                throw AddressParseFailure("octet \(octet) is larger than 255")
            }
            value = value << 8 | octet
            octets += 1
            if octets == 4 {
                if index != end {
                    throw AddressParseFailure(
                        bytes[index] == dot ? "more than 4 octets" : "unexpected \(describe(bytes[index])) after the fourth octet")
                }
                return value
            }
            if index == end {
                throw AddressParseFailure("\(octets) octet\(octets == 1 ? "" : "s"); an IPv4 address has 4")
            }
            if bytes[index] != dot {
                throw AddressParseFailure("unexpected \(describe(bytes[index])) after octet \(octets)")
            }
            index += 1
        }
    }

    /// Parses `bytes[start..<end]` as an IPv6 address (no brackets, no scope), as two 64-bit halves.
    static func parseIPv6(
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ start: Int,
        _ end: Int
    ) throws(AddressParseFailure) -> (high: UInt64, low: UInt64) {
        if start == end {
            throw AddressParseFailure("the address is empty")
        }
        var words = SIMD8<UInt16>()
        var count = 0
        var gap = -1
        var index = start
        if bytes[index] == colon {
            guard index + 1 < end, bytes[index + 1] == colon else {
                throw AddressParseFailure("it starts with a single \":\" (write \"::\" or a group)")
            }
            gap = 0
            index += 2
        }
        while index < end {
            let groupStart = index
            var value: UInt32 = 0
            while index < end, let digit = hexDigit(bytes[index]) {
                if index - groupStart == 4 {
                    throw AddressParseFailure("group \"\(text(bytes, groupStart, index + 1))…\" has more than 4 hex digits")
                }
                value = value << 4 | digit
                index += 1
            }
            if index < end && bytes[index] == dot {
                // A dotted IPv4 tail: the last 32 bits, so at most 6 groups before it.
                if count > 6 {
                    throw AddressParseFailure("an embedded IPv4 address must be the last 32 bits, after at most 6 groups")
                }
                let ipv4: UInt32
                do {
                    ipv4 = try parseIPv4(bytes, groupStart, end)
                } catch {
                    throw AddressParseFailure("embedded IPv4 address: \(error.reason)")
                }
                words[count] = UInt16(truncatingIfNeeded: ipv4 >> 16)
                words[count + 1] = UInt16(truncatingIfNeeded: ipv4)
                count += 2
                index = end
                break
            }
            if index == groupStart {
                throw AddressParseFailure(
                    index == end ? "it ends with a single \":\"" : "unexpected \(describe(bytes[index])) where a group should be")
            }
            if count == 8 {
                throw AddressParseFailure("more than 8 groups")
            }
            words[count] = UInt16(truncatingIfNeeded: value)
            count += 1
            if index == end {
                break
            }
            guard bytes[index] == colon else {
                throw AddressParseFailure("unexpected \(describe(bytes[index])) after group \(count)")
            }
            index += 1
            if index == end {
                throw AddressParseFailure("it ends with a single \":\"")
            }
            if bytes[index] == colon {
                if gap >= 0 {
                    throw AddressParseFailure("more than one \"::\"")
                }
                gap = count
                index += 1
            }
        }
        if gap < 0 {
            if count != 8 {
                throw AddressParseFailure("\(count) group\(count == 1 ? "" : "s"); an IPv6 address has 8 (or \"::\" for a run of zeros)")
            }
        } else {
            if count == 8 {
                throw AddressParseFailure("\"::\" stands for at least one zero group, but 8 groups are given")
            }
            // Move the groups after the gap to the end; the ones in between are zero.
            let tail = count - gap
            var expanded = SIMD8<UInt16>()
            for k in 0..<gap {
                expanded[k] = words[k]
            }
            for k in 0..<tail {
                expanded[8 - tail + k] = words[gap + k]
            }
            words = expanded
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for k in 0..<4 {
            high = high << 16 | UInt64(words[k])
            low = low << 16 | UInt64(words[k + 4])
        }
        return (high, low)
    }

    /// Parses `bytes[start..<end]` as a decimal port.
    static func parsePort(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws(AddressParseFailure) -> UInt16 {
        if start == end {
            throw AddressParseFailure("the port is missing after \":\"")
        }
        var value: UInt32 = 0
        for index in start..<end {
            guard let digit = decimalDigit(bytes[index]) else {
                throw AddressParseFailure("unexpected \(describe(bytes[index])) in the port")
            }
            value = value * 10 + digit
            if value > 65535 {
                throw AddressParseFailure("the port \(text(bytes, start, end)) is larger than 65535", code: .portOutOfRange)
            }
        }
        if bytes[start] == zero && end - start > 1 {
            throw AddressParseFailure("the port \"\(text(bytes, start, end))\" has a leading zero (write \(value))")
        }
        return UInt16(value)
    }

    /// Parses `bytes[start..<end]` (the text after "%") as an IPv6 scope: an index or an interface name.
    static func parseScope(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws(AddressParseFailure) -> UInt32 {
        if start == end {
            throw AddressParseFailure("the scope after \"%\" is empty")
        }
        if decimalDigit(bytes[start]) != nil {
            var value: UInt64 = 0
            for index in start..<end {
                guard let digit = decimalDigit(bytes[index]) else {
                    throw AddressParseFailure("unexpected \(describe(bytes[index])) in the numeric scope")
                }
                value = value * 10 + UInt64(digit)
                if value > UInt64(UInt32.max) {
                    throw AddressParseFailure("the scope \(text(bytes, start, end)) is larger than \(UInt32.max)")
                }
            }
            if bytes[start] == zero && end - start > 1 {
                throw AddressParseFailure("the scope \"\(text(bytes, start, end))\" has a leading zero")
            }
            return UInt32(value)
        }
        let name = text(bytes, start, end)
        let index = sysInterfaceIndex(name)
        if index == 0 {
            throw AddressParseFailure("no network interface is named \"\(name)\"", code: .unknownInterface)
        }
        return index
    }

    /// Parses an IPv6 address with an optional "%scope" in `bytes[start..<end]`.
    static func parseIPv6WithScope(
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ start: Int,
        _ end: Int
    ) throws(AddressParseFailure) -> (address: IPv6Address, scopeID: UInt32) {
        var addressEnd = end
        var scopeID: UInt32 = 0
        if let percentIndex = firstIndex(of: percent, in: bytes, start, end) {
            addressEnd = percentIndex
            scopeID = try parseScope(bytes, percentIndex + 1, end)
        }
        let (high, low) = try parseIPv6(bytes, start, addressEnd)
        return (IPv6Address(high: high, low: low), scopeID)
    }

    static func firstIndex(of byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var index = start
        while index < end {
            if bytes[index] == byte {
                return index
            }
            index += 1
        }
        return nil
    }

    /// Parses a full socket address: `d.d.d.d:port`, `[v6]:port`, `[v6%scope]:port` or `unix:path`.
    static func parseSocketAddress(_ bytes: UnsafeBufferPointer<UInt8>) throws(AddressParseFailure) -> SocketAddress {
        let end = bytes.count
        if end == 0 {
            throw AddressParseFailure("the address is empty")
        }
        if end >= 5 && bytes[0] == UInt8(ascii: "u") && bytes[1] == UInt8(ascii: "n") && bytes[2] == UInt8(ascii: "i")
            && bytes[3] == UInt8(ascii: "x") && bytes[4] == colon
        {
            return SocketAddress(try SocketAddress.Unix.parse(UnsafeBufferPointer(rebasing: bytes[5...])))
        }
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = firstIndex(of: UInt8(ascii: "]"), in: bytes, 1, end) else {
                throw AddressParseFailure("\"[\" without a closing \"]\"")
            }
            let (address, scopeID) = try parseIPv6WithScope(bytes, 1, close)
            guard close + 1 < end else {
                throw AddressParseFailure("the port is missing (write [\(address)]:port)")
            }
            guard bytes[close + 1] == colon else {
                throw AddressParseFailure("unexpected \(describe(bytes[close + 1])) after \"]\" (write [address]:port)")
            }
            let port = try parsePort(bytes, close + 2, end)
            return SocketAddress(ipv6: address, port: port, scopeID: scopeID)
        }
        guard let colonIndex = firstIndex(of: colon, in: bytes, 0, end) else {
            throw AddressParseFailure("the port is missing (write address:port, such as 127.0.0.1:8080)")
        }
        if firstIndex(of: colon, in: bytes, colonIndex + 1, end) != nil {
            throw AddressParseFailure("IPv6 addresses need brackets (write [address]:port, such as [::1]:8080)")
        }
        let host = try parseIPv4(bytes, 0, colonIndex)
        let port = try parsePort(bytes, colonIndex + 1, end)
        return SocketAddress(ipv4: IPv4Address(rawValue: host), port: port)
    }

    // MARK: Printing

    /// Room for the longest printed IP socket address: "[" 39 "%" 10 "]:" 5.
    static let maximumSocketAddressLength = 64

    /// Writes `value` in decimal at `index`; returns the index after it.
    @inline(__always)
    static func writeDecimal(_ value: UInt32, into out: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
        var digits: UInt32 = 1
        var scale: UInt32 = 1
        while digits < 10 && value / scale >= 10 {
            scale *= 10
            digits += 1
        }
        var index = index
        var rest = value
        while scale > 0 {
            out[index] = zero &+ UInt8(truncatingIfNeeded: rest / scale)
            rest %= scale
            scale /= 10
            index += 1
        }
        return index
    }

    /// Writes a dotted-quad IPv4 address at `index`; returns the index after it.
    static func writeIPv4(_ value: UInt32, into out: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
        var index = writeDecimal(value >> 24, into: out, at: index)
        out[index] = dot
        index = writeDecimal(value >> 16 & 0xff, into: out, at: index + 1)
        out[index] = dot
        index = writeDecimal(value >> 8 & 0xff, into: out, at: index + 1)
        out[index] = dot
        return writeDecimal(value & 0xff, into: out, at: index + 1)
    }

    /// Writes an IPv6 address in RFC 5952 form at `index`; returns the index after it.
    static func writeIPv6(_ high: UInt64, _ low: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
        var index = index
        if high == 0 && low >> 32 == 0xffff {
            for byte in "::ffff:".utf8 {
                out[index] = byte
                index += 1
            }
            return writeIPv4(UInt32(truncatingIfNeeded: low), into: out, at: index)
        }
        var words = SIMD8<UInt16>()
        for k in 0..<4 {
            words[k] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(k)))
            words[k + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(k)))
        }
        // The longest run of two or more zero groups; the first one wins a tie.
        var bestStart = -1
        var bestLength = 1
        var k = 0
        while k < 8 {
            if words[k] == 0 {
                var length = 1
                while k + length < 8 && words[k + length] == 0 {
                    length += 1
                }
                if length > bestLength {
                    bestStart = k
                    bestLength = length
                }
                k += length
            } else {
                k += 1
            }
        }
        k = 0
        while k < 8 {
            if k == bestStart {
                out[index] = colon
                out[index + 1] = colon
                index += 2
                k += bestLength
                continue
            }
            if k > 0 && k != bestStart + bestLength {
                out[index] = colon
                index += 1
            }
            index = writeHex(words[k], into: out, at: index)
            k += 1
        }
        return index
    }

    /// Writes a group in lower-case hex without leading zeros.
    @inline(__always)
    private static func writeHex(_ value: UInt16, into out: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
        var index = index
        var started = false
        for shift in stride(from: 12, through: 0, by: -4) {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt16(shift)) & 0xf
            if nibble != 0 || started || shift == 0 {
                out[index] = nibble < 10 ? zero &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
                index += 1
                started = true
            }
        }
        return index
    }

    /// A String from ASCII bytes written by `body` into a stack buffer of `capacity` bytes.
    ///
    /// Writing on the stack first and then copying the exact length lets results of up to 15
    /// bytes (every IPv4 address) become small strings that need no allocation at all.
    static func makeString(capacity: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            let count = body(buffer)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        }
    }
}
