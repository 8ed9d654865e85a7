// Byte classes as 128-bit masks in two literal words: no tables, no globals
// (a Swift global would cost a once-check per access).

@usableFromInline internal let CR: UInt8 = 0x0D
@usableFromInline internal let LF: UInt8 = 0x0A
@usableFromInline internal let SP: UInt8 = 0x20
@usableFromInline internal let HTAB: UInt8 = 0x09

@inline(__always)
internal func inMask(_ b: UInt8, _ lo: UInt64, _ hi: UInt64) -> Bool {
    if b < 64 { return (lo >> UInt64(b)) & 1 != 0 }
    if b < 128 { return (hi >> UInt64(b &- 64)) & 1 != 0 }
    return false
}

/// tchar (RFC 9110 §5.6.2): ALPHA DIGIT and !#$%&'*+-.^_`|~
@inline(__always)
internal func isTokenChar(_ b: UInt8) -> Bool {
    inMask(b, 0x03ff_6cfa_0000_0000, 0x57ff_ffff_c7ff_fffe)
}

/// Bytes allowed raw in a request target: visible ASCII except `#` (a
/// fragment is never sent, RFC 9112 §3.2). Lenient about `"<>\^`{|}` like
/// mainstream servers; strict about controls, space, DEL and non-ASCII.
@inline(__always)
internal func isTargetChar(_ b: UInt8) -> Bool {
    inMask(b, 0xffff_fff6_0000_0000, 0x7fff_ffff_ffff_ffff)
}

/// reg-name bytes (RFC 3986): unreserved, sub-delims and `%`.
@inline(__always)
internal func isRegNameChar(_ b: UInt8) -> Bool {
    inMask(b, 0x2bff_7ff2_0000_0000, 0x47ff_fffe_87ff_fffe)
}

/// qdtext (RFC 9110 §5.6.4): HTAB SP 0x21 0x23-0x5B 0x5D-0x7E obs-text.
@inline(__always)
internal func isQuotedTextChar(_ b: UInt8) -> Bool {
    b >= 0x80 || inMask(b, 0xffff_fffb_0000_0200, 0x7fff_ffff_efff_ffff)
}

/// field-vchar / SP / HTAB / obs-text: everything but controls other than HTAB, and DEL.
@inline(__always)
internal func isFieldValueChar(_ b: UInt8) -> Bool {
    b >= 0x20 ? b != 0x7F : b == HTAB
}

@inline(__always)
internal func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

@inline(__always)
internal func hexValue(_ b: UInt8) -> Int? {
    if b &- 0x30 < 10 { return Int(b &- 0x30) }
    let l = b | 0x20
    if l &- 0x61 < 6 { return Int(l &- 0x61 &+ 10) }
    return nil
}

@inline(__always)
internal func isOWS(_ b: UInt8) -> Bool { b == SP || b == HTAB }

/// A read-only cursor over the caller's bytes: the one place raw memory is read.
@usableFromInline
internal struct Bytes {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let count: Int

    @inline(__always)
    init(_ buffer: UnsafeRawBufferPointer) {
        // An empty buffer may have no base address; no byte is then ever read.
        base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        count = buffer.count
    }

    @inline(__always)
    subscript(i: Int) -> UInt8 {
        assert(i >= 0 && i < count)
        return base.load(fromByteOffset: i, as: UInt8.self)
    }

    /// The index of the first LF in `from..<to` (`to <= count`), or nil.
    @inline(__always)
    func firstLF(from: Int, to: Int) -> Int? {
        var i = from
        // Eight bytes at a time: a byte equals LF iff (w ^ 0x0A..) has a zero byte.
        while i &+ 8 <= to {
            // Little-endian view: the first byte is the least significant, and
            // the lowest flagged byte is always a true match (borrows only
            // propagate upward).
            let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                ^ 0x0A0A_0A0A_0A0A_0A0A
            let z = (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080
            if z != 0 {
                return i &+ (z.trailingZeroBitCount >> 3)
            }
            i &+= 8
        }
        while i < to {
            if self[i] == LF { return i }
            i &+= 1
        }
        return nil
    }

    @inline(__always)
    func word(_ i: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
    }

    /// The index of the first control byte (< 0x20) or DEL in `from..<to`, or `to`.
    /// Eight bytes at a time; a flagged word falls back to the byte loop.
    @inline(__always)
    func firstControlOrDEL(from: Int, to: Int) -> Int {
        var i = from
        while i &+ 8 <= to {
            let w = word(i)
            let below20 = (w &- 0x2020_2020_2020_2020) & ~w
            let x = w ^ 0x7F7F_7F7F_7F7F_7F7F
            let del = (x &- 0x0101_0101_0101_0101) & ~x
            if (below20 | del) & 0x8080_8080_8080_8080 != 0 { break }
            i &+= 8
        }
        while i < to {
            let b = self[i]
            if b < 0x20 || b == 0x7F { return i }
            i &+= 1
        }
        return to
    }

    /// The index of the first byte in `from..<to` that is not a request-target
    /// byte (see `isTargetChar`), or `to`.
    @inline(__always)
    func firstNonTargetChar(from: Int, to: Int) -> Int {
        var i = from
        while i &+ 8 <= to {
            let w = word(i)
            let below21 = (w &- 0x2121_2121_2121_2121) & ~w
            let x = w ^ 0x7F7F_7F7F_7F7F_7F7F
            let del = (x &- 0x0101_0101_0101_0101) & ~x
            let y = w ^ 0x2323_2323_2323_2323
            let hash = (y &- 0x0101_0101_0101_0101) & ~y
            if (below21 | del | hash | w) & 0x8080_8080_8080_8080 != 0 { break }
            i &+= 8
        }
        while i < to {
            if !isTargetChar(self[i]) { return i }
            i &+= 1
        }
        return to
    }

    /// Whether `range` equals the lowercase ASCII literal `lower`, ignoring ASCII case.
    @inline(__always)
    func equalsLowercase(_ range: Range<Int>, _ lower: StaticString) -> Bool {
        guard range.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        var j = 0
        var i = range.lowerBound
        while i < range.upperBound {
            if asciiLower(self[i]) != l[j] { return false }
            i &+= 1
            j &+= 1
        }
        return true
    }

    /// Whether `range` holds exactly the bytes of `literal`.
    @inline(__always)
    func equals(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        var j = 0
        var i = range.lowerBound
        while i < range.upperBound {
            if self[i] != l[j] { return false }
            i &+= 1
            j &+= 1
        }
        return true
    }
}
