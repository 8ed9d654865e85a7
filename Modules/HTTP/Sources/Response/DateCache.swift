#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The current time as an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`, reformatted at most once per second.
///
/// **Not thread-safe**: use one cache per event-loop thread (it is
/// `@unchecked Sendable` only so that it can be handed to the thread that
/// owns it). Reading the clock is one `clock_gettime(CLOCK_REALTIME)` call
/// (a vDSO call on Linux); formatting writes 29 bytes into storage allocated
/// once, so ``withCurrent(_:)`` never allocates.
public final class DateCache: @unchecked Sendable {
    /// The length of an IMF-fixdate.
    public static let length = 29

    private let storage: UnsafeMutableRawBufferPointer
    private var cachedSecond: Int = Int.min
    private let clock: () -> Int

    /// A cache reading `CLOCK_REALTIME`.
    public convenience init() {
        self.init(clock: DateCache.realtimeSeconds)
    }

    /// A cache reading seconds since the epoch from `clock` (for tests).
    public init(clock: @escaping () -> Int) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: DateCache.length, alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0x20)
        self.clock = clock
    }

    deinit { storage.deallocate() }

    /// Seconds since the epoch from `CLOCK_REALTIME`.
    public static func realtimeSeconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int(ts.tv_sec)
    }

    /// Calls `body` with the 29 bytes of the current date (no CRLF). The
    /// buffer is valid only during the call.
    @inline(__always)
    public func withCurrent<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let now = clock()
        if now != cachedSecond {
            cachedSecond = now
            DateCache.write(epochSeconds: now, into: storage.baseAddress!)
        }
        return body(UnsafeRawBufferPointer(storage))
    }

    /// The current date as a String (allocates; for logs and tests).
    public var current: String { withCurrent { String(decoding: $0, as: UTF8.self) } }

    /// The IMF-fixdate of `epochSeconds` (seconds since 1970-01-01T00:00:00Z;
    /// negative values are dates before 1970, years 0...9999 are supported).
    public static func format(epochSeconds: Int) -> String {
        withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { buf in
            write(epochSeconds: epochSeconds, into: buf.baseAddress!)
            return String(decoding: UnsafeRawBufferPointer(buf), as: UTF8.self)
        }
    }

    // "SunMonTueWedThuFriSat" and "JanFeb…Dec" as packed 3-byte names.
    private static let dayNames: StaticString = "SunMonTueWedThuFriSat"
    private static let monthNames: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
    private static let fullDayNames: [String] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Writes the 29-byte IMF-fixdate of `epochSeconds` at `p`.
    static func write(epochSeconds: Int, into p: UnsafeMutableRawPointer) {
        let (days, secs) = floorDivMod(epochSeconds, 86_400)
        let (y, m, d) = civil(fromDays: days)
        let weekday = floorDivMod(days + 4, 7).1   // 1970-01-01 was a Thursday
        func put(_ i: Int, _ b: UInt8) { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        func two(_ i: Int, _ v: Int) { put(i, UInt8(0x30 + v / 10)); put(i + 1, UInt8(0x30 + v % 10)) }
        dayNames.withUTF8Buffer { n in for k in 0..<3 { put(k, n[weekday * 3 + k]) } }
        put(3, 0x2C); put(4, 0x20)
        two(5, d)
        put(7, 0x20)
        monthNames.withUTF8Buffer { n in for k in 0..<3 { put(8 + k, n[(m - 1) * 3 + k]) } }
        put(11, 0x20)
        let year = min(max(y, 0), 9999)
        two(12, year / 100); two(14, year % 100)
        put(16, 0x20)
        two(17, secs / 3600); put(19, 0x3A); two(20, secs / 60 % 60); put(22, 0x3A); two(23, secs % 60)
        put(25, 0x20); put(26, 0x47); put(27, 0x4D); put(28, 0x54)   // " GMT"
    }

    private static func floorDivMod(_ a: Int, _ b: Int) -> (Int, Int) {
        var q = a / b, r = a % b
        if r < 0 { q -= 1; r += b }
        return (q, r)
    }

    /// Proleptic Gregorian (year, month 1-12, day 1-31) of days since 1970-01-01
    /// (H. Hinnant's `civil_from_days`).
    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (`days_from_civil`).
    static func days(fromCivil y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Parses an HTTP-date (RFC 9110 §5.6.7) into seconds since the epoch:
    /// the IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` and the two obsolete
    /// forms recipients must accept, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`
    /// and asctime `Sun Nov  6 08:49:37 1994`. Names are case-sensitive; the
    /// day name must be valid but need not agree with the date. A two-digit
    /// year more than 50 years in the future is taken in the past century
    /// (§5.6.7). Returns nil for anything else (a server then ignores the field).
    public static func parse(_ text: some StringProtocol) -> Int? {
        var s = Array(text.utf8)
        // Tolerate surrounding OWS (field values are already trimmed by the parser).
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        var c = Cursor(bytes: s)
        if s.count == 29, s[3] == 0x2C {
            // IMF-fixdate: day-name "," SP date1 SP time-of-day SP GMT
            guard let _ = c.shortDay(), c.lit(", "), let d = c.digits(2), c.lit(" "), let m = c.month(),
                  c.lit(" "), let y = c.digits(4), c.lit(" "), let t = c.time(), c.lit(" GMT"), c.atEnd
            else { return nil }
            return make(y, m, d, t)
        }
        if s.count == 24, s[3] == 0x20 {
            // asctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT )) SP time-of-day SP year
            guard let _ = c.shortDay(), c.lit(" "), let m = c.month(), c.lit(" ") else { return nil }
            let d: Int
            if c.lit(" ") { guard let v = c.digits(1) else { return nil }; d = v } else {
                guard let v = c.digits(2) else { return nil }; d = v
            }
            guard c.lit(" "), let t = c.time(), c.lit(" "), let y = c.digits(4), c.atEnd else { return nil }
            return make(y, m, d, t)
        }
        // rfc850-date: day-name-l "," SP date2 SP time-of-day SP GMT; date2 = day "-" month "-" 2DIGIT
        guard let comma = s.firstIndex(of: 0x2C) else { return nil }
        let dayName = String(decoding: s[..<comma], as: UTF8.self)
        guard fullDayNames.contains(dayName) else { return nil }
        c.i = comma
        guard c.lit(", "), let d = c.digits(2), c.lit("-"), let m = c.month(), c.lit("-"), let yy = c.digits(2),
              c.lit(" "), let t = c.time(), c.lit(" GMT"), c.atEnd else { return nil }
        let currentYear = civil(fromDays: floorDivMod(realtimeSeconds(), 86_400).0).0
        var y = currentYear - currentYear % 100 + yy
        if y > currentYear + 50 { y -= 100 }
        return make(y, m, d, t)
    }

    private static func make(_ y: Int, _ m: Int, _ d: Int, _ t: (Int, Int, Int)) -> Int? {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard d >= 1, d <= monthDays[m - 1], t.0 <= 23, t.1 <= 59, t.2 <= 60 else { return nil }
        return days(fromCivil: y, m, d) * 86_400 + t.0 * 3600 + t.1 * 60 + t.2
    }

    private struct Cursor {
        var bytes: [UInt8]
        var i = 0
        var atEnd: Bool { i == bytes.count }

        mutating func lit(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard i + n <= bytes.count else { return false }
            let ok = s.withUTF8Buffer { b in (0..<n).allSatisfy { bytes[i + $0] == b[$0] } }
            if ok { i += n }
            return ok
        }

        mutating func digits(_ n: Int) -> Int? {
            guard i + n <= bytes.count else { return nil }
            var v = 0
            for k in 0..<n {
                let b = bytes[i + k]
                guard b &- 0x30 < 10 else { return nil }
                v = v * 10 + Int(b - 0x30)
            }
            i += n
            return v
        }

        mutating func three(in names: StaticString) -> Int? {
            guard i + 3 <= bytes.count else { return nil }
            let found: Int? = names.withUTF8Buffer { b in
                for k in 0..<(b.count / 3) where b[k * 3] == bytes[i] && b[k * 3 + 1] == bytes[i + 1] && b[k * 3 + 2] == bytes[i + 2] {
                    return k
                }
                return nil
            }
            if found != nil { i += 3 }
            return found
        }

        mutating func shortDay() -> Int? { three(in: DateCache.dayNames) }
        mutating func month() -> Int? { three(in: DateCache.monthNames).map { $0 + 1 } }

        mutating func time() -> (Int, Int, Int)? {
            guard let h = digits(2), lit(":"), let m = digits(2), lit(":"), let s = digits(2) else { return nil }
            return (h, m, s)
        }
    }
}
