// A sans-I/O, incremental RESP2 request parser: multibulk arrays and Redis
// inline commands, over a caller-owned contiguous byte buffer.

/// A protocol error in a request. Like Redis, the server writes `reply` and
/// then closes the connection: nothing after a protocol error is parsed.
public enum RESPProtocolError: Error, Equatable, Sendable {
    /// `*<n>` with a count that is not an integer or exceeds
    /// ``RESPParser/maxMultibulkCount``.
    case invalidMultibulkLength
    /// A multibulk element did not start with `$`; carries the byte found.
    case expectedDollar(got: UInt8)
    /// `$<len>` with a length that is not an integer, negative, or larger
    /// than ``RESPParser/maxBulkLength``.
    case invalidBulkLength
    /// An inline command with an unterminated quote, or a closing quote
    /// followed by something other than a space.
    case unbalancedQuotes
    /// An inline command line longer than ``RESPParser/maxInlineLength`` bytes.
    case tooBigInlineRequest

    /// The error text without the `-ERR ` prefix, as Redis 7 words it.
    public var message: String {
        switch self {
        case .invalidMultibulkLength: return "Protocol error: invalid multibulk length"
        case .expectedDollar(let byte):
            // Redis maps CR and LF in error strings to spaces.
            let shown = (byte == 13 || byte == 10) ? UInt8(ascii: " ") : byte
            return "Protocol error: expected '$', got '" + String(decoding: [shown], as: UTF8.self) + "'"
        case .invalidBulkLength: return "Protocol error: invalid bulk length"
        case .unbalancedQuotes: return "Protocol error: unbalanced quotes in request"
        case .tooBigInlineRequest: return "Protocol error: too big inline request"
        }
    }

    /// Always true: Redis closes the connection after a protocol error.
    public var closesConnection: Bool { true }

    /// Appends the complete RESP error reply (`-ERR <message>\r\n`) to `out`.
    public func writeReply(into out: inout [UInt8]) {
        out.appendStatic("-ERR ")
        switch self {
        case .expectedDollar(let byte):
            out.appendStatic("Protocol error: expected '$', got '")
            out.append((byte == 13 || byte == 10) ? UInt8(ascii: " ") : byte)
            out.appendStatic("'")
        default:
            out.append(contentsOf: message.utf8)
        }
        out.appendStatic("\r\n")
    }

    /// The complete RESP error reply bytes (`-ERR <message>\r\n`).
    public var reply: [UInt8] {
        var out: [UInt8] = []
        writeReply(into: &out)
        return out
    }
}

/// Where one argument lies, relative to the command's base address.
@usableFromInline
struct ArgumentSpan {
    @usableFromInline var start: Int
    @usableFromInline var count: Int
    @inlinable init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }
}

/// One parsed request: a view of its arguments.
///
/// The arguments point into the buffer passed to ``RESPParser/parse(_:)`` (or
/// into the parser's scratch space for inline commands). A command is valid
/// only until the next call to `parse` on the same parser, and only while that
/// buffer is alive and unchanged; copy what must outlive it.
public struct RESPCommand {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let spans: UnsafePointer<ArgumentSpan>
    /// The parser that owns the span storage (not retained: a command is
    /// valid only until that parser's next `parse`).
    @usableFromInline unowned(unsafe) let owner: RESPParser
    /// The number of arguments, including the command name; at least 1.
    public let count: Int

    @inlinable
    init(base: UnsafeRawPointer, spans: UnsafePointer<ArgumentSpan>, owner: RESPParser, count: Int) {
        self.base = base
        self.spans = spans
        self.owner = owner
        self.count = count
    }

    /// The bytes of argument `index` (0 is the command name).
    @inlinable
    public subscript(index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < count, "argument index out of range")
        let span = spans[index]
        return UnsafeRawBufferPointer(start: base + span.start, count: span.count)
    }

    /// Copies the arguments into owned byte arrays (for tests and logging; allocates).
    public var arguments: [[UInt8]] {
        (0..<count).map { Array(self[$0]) }
    }
}

/// The outcome of one ``RESPParser/parse(_:)`` call.
public enum RESPParseResult {
    /// A complete command. `consumed` counts the command's bytes plus any
    /// ignored empty requests before it; drop that many bytes from the front
    /// of the buffer once the command has been handled.
    case command(RESPCommand, consumed: Int)
    /// The buffer holds no complete command. Drop `consumed` bytes (ignored
    /// empty requests, usually 0), then call again with the rest of the buffer
    /// extended by newly read bytes.
    case needMore(consumed: Int)
    /// Malformed input: write the error's reply, then close the connection.
    /// Every later call returns the same error.
    case protocolError(RESPProtocolError)
}

/// An incremental RESP2 request parser for one connection.
///
/// Call ``parse(_:)`` with the unconsumed bytes of the connection's input
/// buffer. After `.needMore`, the next call must pass a buffer that starts with
/// the same unconsumed bytes (it may have moved) followed by more input; the
/// parser remembers how far it got in a large multibulk request or a long
/// inline line, so a request trickling in costs O(new bytes) per call, not
/// O(request). Use ``reset()`` to discard that state.
///
/// Multibulk (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) and inline commands
/// (space-separated words ending in `\n` or `\r\n`, with Redis' `"..."` and
/// `'...'` quoting) are accepted, with Redis 7's limits and error texts.
public final class RESPParser {
    /// The largest accepted multibulk element count.
    public static let maxMultibulkCount = 1024 * 1024
    /// The largest accepted bulk string length (Redis' `proto-max-bulk-len`).
    public static let maxBulkLength = 512 * 1024 * 1024
    /// The longest accepted inline command line, excluding its line ending.
    public static let maxInlineLength = 64 * 1024

    @exclusivity(unchecked) private var spans: UnsafeMutablePointer<ArgumentSpan>
    @exclusivity(unchecked) private var spanCapacity: Int
    @exclusivity(unchecked) private var scratch: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var scratchCapacity: Int

    // Resume state for an incomplete request, relative to its first byte.
    @exclusivity(unchecked) private var pendingCount = 0      // elements announced by `*<n>`; 0: none
    @exclusivity(unchecked) private var pendingParsed = 0     // elements already recorded in `spans`
    @exclusivity(unchecked) private var pendingOffset = 0     // offset of the next `$<len>` line
    @exclusivity(unchecked) private var inlineScanned = 0     // bytes of an inline line known to hold no LF
    @exclusivity(unchecked) private var failure: RESPProtocolError?

    /// Creates a parser with room for 16 arguments and a 256-byte inline
    /// scratch area; both grow on demand and are reused.
    public init() {
        spanCapacity = 16
        spans = .allocate(capacity: spanCapacity)
        scratchCapacity = 256
        scratch = .allocate(byteCount: scratchCapacity, alignment: 8)
    }

    deinit {
        spans.deallocate()
        scratch.deallocate()
    }

    /// Forgets any partially parsed request and any earlier protocol error.
    public func reset() {
        pendingCount = 0
        pendingParsed = 0
        pendingOffset = 0
        inlineScanned = 0
        failure = nil
    }

    /// After `.needMore`: a lower bound on the size of the incomplete request,
    /// counted from its first byte (after the `consumed` bytes). Exact once
    /// the length of a large bulk string is known, so a server can size its
    /// input buffer for it in one step; otherwise one more than is buffered.
    public private(set) var bytesNeededHint = 1

    /// True when a request has been partly seen (the buffer must be kept).
    public var hasPartialRequest: Bool { pendingCount != 0 || inlineScanned != 0 }

    @inline(__always)
    private func setSpan(_ index: Int, start: Int, count: Int) {
        if index >= spanCapacity { growSpans(to: index + 1) }
        spans[index] = ArgumentSpan(start: start, count: count)
    }

    private func growSpans(to needed: Int) {
        var capacity = spanCapacity
        while capacity < needed { capacity *= 2 }
        let grown = UnsafeMutablePointer<ArgumentSpan>.allocate(capacity: capacity)
        grown.moveInitialize(from: spans, count: spanCapacity)
        spans.deallocate()
        spans = grown
        spanCapacity = capacity
    }

    private func ensureScratch(_ needed: Int) {
        if needed <= scratchCapacity { return }
        var capacity = scratchCapacity
        while capacity < needed { capacity *= 2 }
        scratch.deallocate()
        scratch = .allocate(byteCount: capacity, alignment: 8)
        scratchCapacity = capacity
    }

    private func fail(_ error: RESPProtocolError) -> RESPParseResult {
        failure = error
        pendingCount = 0
        inlineScanned = 0
        return .protocolError(error)
    }

    /// Parses the first complete command in `buffer`.
    ///
    /// Empty requests (`*0\r\n`, `*-1\r\n`, blank inline lines) are skipped
    /// and counted in `consumed`, as Redis ignores them.
    public func parse(_ buffer: UnsafeRawBufferPointer) -> RESPParseResult {
        if let failure { return .protocolError(failure) }
        guard let base = buffer.baseAddress else { return .needMore(consumed: 0) }
        let end = buffer.count
        var start = 0
        while start < end {
            let outcome: Step
            if pendingCount != 0 || base.load(fromByteOffset: start, as: UInt8.self) == UInt8(ascii: "*") {
                outcome = parseMultibulk(base, start: start, end: end)
            } else {
                outcome = parseInline(base, start: start, end: end)
            }
            switch outcome {
            case .command(let commandBase, let count, let next):
                let command = RESPCommand(base: commandBase, spans: spans, owner: self, count: count)
                return .command(command, consumed: next)
            case .skip(let next):
                start = next
            case .needMore(let needed):
                bytesNeededHint = needed
                return .needMore(consumed: start)
            case .failure(let error):
                return fail(error)
            }
        }
        bytesNeededHint = 1
        return .needMore(consumed: start)
    }

    private enum Step {
        case command(base: UnsafeRawPointer, count: Int, next: Int)
        case skip(next: Int)
        /// Carries a lower bound on the request's total size.
        case needMore(Int)
        case failure(RESPProtocolError)
    }

    private enum LineInteger {
        case value(Int64, next: Int)
        case needMore
        case invalid
    }

    /// Reads `<integer>\r?` starting at `from`: digits up to a CR, then one
    /// more byte (Redis does not check that it is LF). Fails early on a byte
    /// that can never be part of a valid integer or on more than 20 bytes.
    @inline(__always)
    private func lineInteger(_ base: UnsafeRawPointer, from: Int, end: Int) -> LineInteger {
        var index = from
        while true {
            if index >= end { return .needMore }
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            if byte == 13 { break }
            if (byte &- UInt8(ascii: "0") > 9 && byte != UInt8(ascii: "-")) || index - from >= 20 {
                return .invalid
            }
            index += 1
        }
        if index + 1 >= end { return .needMore }
        guard let value = parseRedisInteger(UnsafeRawBufferPointer(start: base + from, count: index - from)) else {
            return .invalid
        }
        return .value(value, next: index + 2)
    }

    private func parseMultibulk(_ base: UnsafeRawPointer, start: Int, end: Int) -> Step {
        var count = pendingCount
        var parsed = pendingParsed
        var offset: Int
        if count == 0 {
            switch lineInteger(base, from: start + 1, end: end) {
            case .needMore: return .needMore(end - start + 1)
            case .invalid: return .failure(.invalidMultibulkLength)
            case .value(let value, let next):
                if value > Int64(RESPParser.maxMultibulkCount) { return .failure(.invalidMultibulkLength) }
                if value <= 0 { return .skip(next: next) }
                count = Int(value)
                parsed = 0
                offset = next
            }
        } else {
            offset = start + pendingOffset
        }
        while parsed < count {
            if offset >= end { break }
            let marker = base.load(fromByteOffset: offset, as: UInt8.self)
            if marker != UInt8(ascii: "$") {
                pendingCount = 0
                return .failure(.expectedDollar(got: marker))
            }
            let length: Int
            let dataStart: Int
            switch lineInteger(base, from: offset + 1, end: end) {
            case .needMore:
                pendingCount = count; pendingParsed = parsed; pendingOffset = offset - start
                return .needMore(end - start + 1)
            case .invalid:
                pendingCount = 0
                return .failure(.invalidBulkLength)
            case .value(let value, let next):
                if value < 0 || value > Int64(RESPParser.maxBulkLength) {
                    pendingCount = 0
                    return .failure(.invalidBulkLength)
                }
                length = Int(value)
                dataStart = next
            }
            // Redis skips the two bytes after the payload without checking them.
            if end - dataStart < length + 2 {
                pendingCount = count; pendingParsed = parsed; pendingOffset = offset - start
                return .needMore(dataStart + length + 2 - start)
            }
            setSpan(parsed, start: dataStart - start, count: length)
            parsed += 1
            offset = dataStart + length + 2
        }
        if parsed < count {
            pendingCount = count; pendingParsed = parsed; pendingOffset = offset - start
            return .needMore(end - start + 1)
        }
        pendingCount = 0
        pendingParsed = 0
        pendingOffset = 0
        return .command(base: base + start, count: count, next: offset)
    }

    private func parseInline(_ base: UnsafeRawPointer, start: Int, end: Int) -> Step {
        // Redis: no LF within the buffer and more than 64 KiB buffered is an
        // error. Looking only at the first 64 KiB + 1 bytes makes the outcome
        // independent of how the input was split.
        let limit = min(end, start + RESPParser.maxInlineLength + 1)
        var index = start + inlineScanned
        while index < limit && base.load(fromByteOffset: index, as: UInt8.self) != 10 {
            index += 1
        }
        if index >= limit {
            if limit - start > RESPParser.maxInlineLength { return .failure(.tooBigInlineRequest) }
            inlineScanned = limit - start
            return .needMore(end - start + 1)
        }
        inlineScanned = 0
        var lineEnd = index
        if lineEnd > start && base.load(fromByteOffset: lineEnd - 1, as: UInt8.self) == 13 { lineEnd -= 1 }
        guard let count = splitInline(UnsafeRawBufferPointer(start: base + start, count: lineEnd - start)) else {
            return .failure(.unbalancedQuotes)
        }
        if count == 0 { return .skip(next: index + 1) }
        return .command(base: UnsafeRawPointer(scratch), count: count, next: index + 1)
    }

    /// Splits an inline line like Redis' `sdssplitargs`, decoding into the
    /// scratch area and recording spans relative to it. Nil: unbalanced quotes.
    private func splitInline(_ line: UnsafeRawBufferPointer) -> Int? {
        var length = line.count
        // The C implementation stops at the first NUL byte.
        if let nul = line.firstIndex(of: 0) { length = nul }
        ensureScratch(length)
        let out = scratch
        @inline(__always) func at(_ i: Int) -> UInt8 { i < length ? line[i] : 0 }
        @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 32 || (c >= 9 && c <= 13) }
        var i = 0
        var written = 0
        var argc = 0
        while true {
            while i < length && isSpace(line[i]) { i += 1 }
            if i >= length { return argc }
            let tokenStart = written
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c = at(i)
                if inDouble {
                    if c == UInt8(ascii: "\\") && at(i + 1) == UInt8(ascii: "x"),
                       let high = hexValue(at(i + 2)), let low = hexValue(at(i + 3)) {
                        out.storeBytes(of: high << 4 | low, toByteOffset: written, as: UInt8.self)
                        written += 1
                        i += 3
                    } else if c == UInt8(ascii: "\\") && at(i + 1) != 0 {
                        i += 1
                        let decoded: UInt8
                        switch at(i) {
                        case UInt8(ascii: "n"): decoded = 10
                        case UInt8(ascii: "r"): decoded = 13
                        case UInt8(ascii: "t"): decoded = 9
                        case UInt8(ascii: "b"): decoded = 8
                        case UInt8(ascii: "a"): decoded = 7
                        case let other: decoded = other
                        }
                        out.storeBytes(of: decoded, toByteOffset: written, as: UInt8.self)
                        written += 1
                    } else if c == UInt8(ascii: "\"") {
                        let after = at(i + 1)
                        if after != 0 && !isSpace(after) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        out.storeBytes(of: c, toByteOffset: written, as: UInt8.self)
                        written += 1
                    }
                } else if inSingle {
                    if c == UInt8(ascii: "\\") && at(i + 1) == UInt8(ascii: "'") {
                        i += 1
                        out.storeBytes(of: UInt8(ascii: "'"), toByteOffset: written, as: UInt8.self)
                        written += 1
                    } else if c == UInt8(ascii: "'") {
                        let after = at(i + 1)
                        if after != 0 && !isSpace(after) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        out.storeBytes(of: c, toByteOffset: written, as: UInt8.self)
                        written += 1
                    }
                } else {
                    switch c {
                    case 32, 10, 13, 9, 0: done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default:
                        out.storeBytes(of: c, toByteOffset: written, as: UInt8.self)
                        written += 1
                    }
                }
                if at(i) != 0 { i += 1 }
            }
            setSpan(argc, start: tokenStart, count: written - tokenStart)
            argc += 1
        }
    }
}

@inline(__always)
private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}
