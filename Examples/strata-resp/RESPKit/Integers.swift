// Redis-compatible integer parsing (`string2ll`) and allocation-free decimal
// formatting into a reply buffer.

/// Parses `bytes` exactly like Redis' `string2ll`: an optional `-`, then
/// digits with no leading zero (except the single digit `0`), at most 20
/// bytes, no spaces or `+`, and no overflow. Returns nil when Redis would fail.
func parseRedisInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    let count = bytes.count
    // Redis: `slen == 0 || slen >= LONG_STR_SIZE (21)` fails.
    if count == 0 || count >= 21 { return nil }
    if count == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
    var index = 0
    var negative = false
    if bytes[0] == UInt8(ascii: "-") {
        negative = true
        index = 1
        if count == 1 { return nil }
    }
    let first = bytes[index]
    guard first >= UInt8(ascii: "1") && first <= UInt8(ascii: "9") else { return nil }
    var magnitude = UInt64(first &- UInt8(ascii: "0"))
    index += 1
    while index < count {
        let byte = bytes[index]
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
        let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
        if overflow1 { return nil }
        let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
        if overflow2 { return nil }
        magnitude = sum
        index += 1
    }
    if negative {
        // -(LLONG_MIN) is one more than LLONG_MAX.
        if magnitude > UInt64(Int64.max) + 1 { return nil }
        return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
    }
    if magnitude > UInt64(Int64.max) { return nil }
    return Int64(magnitude)
}

/// Calls `body` with the decimal text of `value`, formatted on the stack.
@inline(__always)
func withDecimal<Result>(_ value: Int64, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
    // 19 digits plus a sign fit in 24 bytes.
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    return withUnsafeMutableBytes(of: &digits) { raw in
        var magnitude = value.magnitude
        var position = raw.count
        repeat {
            position -= 1
            raw[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
        } while magnitude != 0
        if value < 0 {
            position -= 1
            raw[position] = UInt8(ascii: "-")
        }
        return body(UnsafeRawBufferPointer(rebasing: raw[position...]))
    }
}

extension Array where Element == UInt8 {
    /// Appends the bytes of a static ASCII string.
    @inline(__always)
    mutating func appendStatic(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Appends raw bytes.
    @inline(__always)
    mutating func appendRaw(_ bytes: UnsafeRawBufferPointer) {
        if bytes.isEmpty { return }
        append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Appends `value` in decimal, without allocating.
    mutating func appendDecimal(_ value: Int64) {
        if value >= 0 && value < 10 {
            append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        withDecimal(value) { appendRaw($0) }
    }

    /// Appends a RESP integer reply `:<value>\r\n`.
    mutating func appendIntegerReply(_ value: Int64) {
        switch value {
        case 0: appendStatic(":0\r\n")
        case 1: appendStatic(":1\r\n")
        default:
            append(UInt8(ascii: ":"))
            appendDecimal(value)
            appendStatic("\r\n")
        }
    }

    /// Appends a RESP bulk string header and payload `$<n>\r\n<bytes>\r\n`.
    mutating func appendBulkReply(_ bytes: UnsafeRawBufferPointer) {
        append(UInt8(ascii: "$"))
        appendDecimal(Int64(bytes.count))
        appendStatic("\r\n")
        appendRaw(bytes)
        appendStatic("\r\n")
    }

    /// Appends a RESP array header `*<n>\r\n`.
    mutating func appendArrayHeader(_ count: Int) {
        append(UInt8(ascii: "*"))
        appendDecimal(Int64(count))
        appendStatic("\r\n")
    }
}
