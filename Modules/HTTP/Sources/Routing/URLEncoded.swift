/// Why URL-encoded input could not be decoded.
public enum URLEncodedError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A `%` not followed by two hex digits, at this byte offset of the input.
    case invalidPercentEncoding(offset: Int)
    /// More than `limit` name/value pairs.
    case tooManyPairs(limit: Int)

    /// A message naming the offset or the limit.
    public var description: String {
        switch self {
        case .invalidPercentEncoding(let o): "invalid percent-encoding at byte offset \(o): \"%\" must be followed by two hex digits"
        case .tooManyPairs(let l): "more than \(l) name/value pairs in URL-encoded data"
        }
    }
}

/// `application/x-www-form-urlencoded` parsing (WHATWG URL §5.1), for query
/// strings and form bodies.
///
/// Differences from the WHATWG parser, both deliberate: an invalid
/// percent-escape (`%zz`, a `%` near the end) is an error naming its offset
/// instead of being kept literally; the number of pairs is limited. As in
/// WHATWG, decoded bytes that are not valid UTF-8 become U+FFFD (never an
/// error), `+` is a space, empty pieces between `&`s are skipped, and a
/// piece without `=` has an empty value.
public enum URLEncoded {
    /// The default limit on the number of pairs.
    public static let defaultMaxPairs = 1000

    /// Parses `name=value&…` into decoded pairs, in order (duplicates kept).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(URLEncodedError) -> [(name: String, value: String)] {
        try parse(bytes, maxPairs: defaultMaxPairs)
    }

    /// Parses with at most `maxPairs` pairs (more throws ``URLEncodedError/tooManyPairs(limit:)``).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxPairs: Int) throws(URLEncodedError) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x26 { end += 1 }   // "&"
            if end > start {
                guard result.count < maxPairs else { throw .tooManyPairs(limit: maxPairs) }
                var eq = start
                while eq < end && bytes[eq] != 0x3D { eq += 1 }           // "="
                let name = try decode(bytes, start..<eq, plusAsSpace: true)
                let value = eq < end ? try decode(bytes, (eq + 1)..<end, plusAsSpace: true) : ""
                result.append((name, value))
            }
            start = end + 1
        }
        return result
    }

    /// Parses a String (e.g. a query without its `?`).
    public static func parse(_ text: String, maxPairs: Int = defaultMaxPairs) throws(URLEncodedError) -> [(name: String, value: String)] {
        var t = text
        let r = t.withUTF8 { p in Result { () throws(URLEncodedError) in try parse(UnsafeRawBufferPointer(p), maxPairs: maxPairs) } }
        return try r.get()
    }

    /// Decodes one component: `+` → space (unless `plusAsSpace` is false, as
    /// for path segments), `%XX` → the byte, then UTF-8 (invalid → U+FFFD).
    public static func decodeComponent(_ bytes: UnsafeRawBufferPointer, plusAsSpace: Bool = true) throws(URLEncodedError) -> String {
        try decode(bytes, 0..<bytes.count, plusAsSpace: plusAsSpace)
    }

    /// ``decodeComponent(_:plusAsSpace:)`` for a String.
    public static func decodeComponent(_ text: some StringProtocol, plusAsSpace: Bool = true) throws(URLEncodedError) -> String {
        var t = String(text)
        let r = t.withUTF8 { p in
            Result { () throws(URLEncodedError) in try decode(UnsafeRawBufferPointer(p), 0..<p.count, plusAsSpace: plusAsSpace) }
        }
        return try r.get()
    }

    private static func decode(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, plusAsSpace: Bool) throws(URLEncodedError) -> String {
        // Fast path: nothing to decode.
        var plain = true
        for i in r where b[i] == 0x25 || (plusAsSpace && b[i] == 0x2B) { plain = false; break }
        if plain { return String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(r.count)
        var i = r.lowerBound
        while i < r.upperBound {
            let c = b[i]
            if c == 0x25 {
                guard i + 2 < r.upperBound, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) else {
                    throw .invalidPercentEncoding(offset: i)
                }
                out.append(UInt8(h << 4 | l))
                i += 3
            } else {
                out.append(plusAsSpace && c == 0x2B ? 0x20 : c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
