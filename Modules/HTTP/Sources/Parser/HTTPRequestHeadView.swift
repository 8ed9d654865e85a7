/// The methods the parser recognises by name; any other valid token is `.other`.
///
/// The parser accepts every token as a method; a server answers 501 to the
/// methods it does not implement.
public enum HTTPMethod: UInt8, Sendable, Hashable, CaseIterable {
    /// `GET`
    case get
    /// `HEAD`
    case head
    /// `POST`
    case post
    /// `PUT`
    case put
    /// `DELETE`
    case delete
    /// `CONNECT`
    case connect
    /// `OPTIONS`
    case options
    /// `TRACE`
    case trace
    /// `PATCH`
    case patch
    /// Any other token: read the bytes from ``HTTPRequestHeadView/method``.
    case other
}

/// An HTTP version as received: only major version 1 is ever produced.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// Major version (always 1 for a parsed request).
    public var major: UInt8
    /// Minor version as received (0–9). Minor versions above 1 get HTTP/1.1
    /// semantics (RFC 9110 §2.5).
    public var minor: UInt8

    /// Creates a version.
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// `true` for HTTP/1.1 and above: persistent by default, Host required.
    public var hasHTTP11Semantics: Bool { major > 1 || (major == 1 && minor >= 1) }

    /// `"HTTP/1.1"`.
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// How the request body is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Hashable {
    /// Neither Content-Length nor Transfer-Encoding: no body.
    case none
    /// `Content-Length: n` (possibly 0).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`; the length is unknown in advance.
    case chunked
}

/// The four request-target forms of RFC 9112 §3.2.
public enum HTTPRequestTargetForm: UInt8, Sendable, Hashable {
    /// `/path?query` — every method but CONNECT.
    case origin
    /// `http://authority/path?query` — any scheme, non-empty authority, no userinfo.
    case absolute
    /// `host:port` — CONNECT only.
    case authority
    /// `*` — OPTIONS only.
    case asterisk
}

/// The byte ranges of one field line: name and value (value without surrounding OWS).
public struct HTTPFieldRange: Sendable, Hashable {
    /// The field name, case as received.
    public var name: Range<Int>
    /// The field value with leading and trailing SP/HTAB removed (may be empty).
    public var value: Range<Int>

    /// Creates a field range.
    @inlinable
    public init(name: Range<Int>, value: Range<Int>) {
        self.name = name
        self.value = value
    }
}

/// The field lines of a header or trailer section, in order, as ranges into
/// the receive buffer.
///
/// It shares storage with the parser: keep it only while you use it (drop it
/// before parsing the next request) so the parser can reuse its storage
/// without allocating.
public struct HTTPFieldRanges: RandomAccessCollection, Sendable, Hashable {
    @usableFromInline
    internal var storage: [HTTPFieldRange]

    @inlinable
    internal init(storage: [HTTPFieldRange]) {
        self.storage = storage
    }

    /// An empty list.
    public init() {
        self.storage = []
    }

    /// The first index (0).
    @inlinable public var startIndex: Int { 0 }
    /// One past the last field.
    @inlinable public var endIndex: Int { storage.count }
    /// The field at `index`.
    @inlinable public subscript(index: Int) -> HTTPFieldRange { storage[index] }

    /// The index of the first field whose name equals `name` (ASCII
    /// case-insensitively), or nil. No allocation.
    public func firstIndex(named name: String, in buffer: UnsafeRawBufferPointer) -> Int? {
        var name = name
        return name.withUTF8 { wanted -> Int? in
            for i in 0..<storage.count where asciiCaseInsensitiveEqual(buffer, storage[i].name, wanted) {
                return i
            }
            return nil
        }
    }

    /// The value range of the first field named `name` (case-insensitive), or nil.
    public func firstValue(named name: String, in buffer: UnsafeRawBufferPointer) -> Range<Int>? {
        firstIndex(named: name, in: buffer).map { storage[$0].value }
    }

    /// Every field moved `offset` bytes toward the start (after the caller
    /// dropped `offset` bytes from the front of its buffer).
    public func shifted(by offset: Int) -> HTTPFieldRanges {
        HTTPFieldRanges(storage: storage.map {
            HTTPFieldRange(name: ($0.name.lowerBound - offset)..<($0.name.upperBound - offset),
                           value: ($0.value.lowerBound - offset)..<($0.value.upperBound - offset))
        })
    }

    /// Owned copies of every field (allocates).
    public func owned(in buffer: UnsafeRawBufferPointer) -> [HTTPField] {
        storage.map { HTTPField(name: string(buffer, $0.name), value: string(buffer, $0.value)) }
    }
}

/// A parsed request head as ranges into the caller's receive buffer, plus the
/// framing facts the server needs. Zero-copy: no byte is copied.
///
/// All ranges are offsets into the buffer passed to the
/// ``HTTPRequestParser/parse(_:)`` call that returned the head; if you drop
/// bytes from the front of your buffer afterwards, use ``shifted(by:)``.
///
/// Stored compactly (offsets relative to the head's start) so that events
/// stay small and cheap to return.
public struct HTTPRequestHeadView: Sendable, Hashable {
    /// A range relative to `base`; `start == .max` means absent.
    @usableFromInline
    internal struct Span: Sendable, Hashable {
        @usableFromInline var start: UInt32
        @usableFromInline var end: UInt32

        @inlinable
        init(start: UInt32, end: UInt32) {
            self.start = start
            self.end = end
        }

        @usableFromInline static let absent = Span(start: .max, end: .max)

        @inlinable
        init(_ r: Range<Int>, base: Int) {
            start = UInt32(truncatingIfNeeded: r.lowerBound &- base)
            end = UInt32(truncatingIfNeeded: r.upperBound &- base)
        }

        @inlinable
        init(_ r: Range<Int>?, base: Int) {
            if let r { self.init(r, base: base) } else { self = .absent }
        }

        @inlinable
        func range(_ base: Int) -> Range<Int> { (base &+ Int(start))..<(base &+ Int(end)) }

        @inlinable
        func optionalRange(_ base: Int) -> Range<Int>? { start == .max ? nil : range(base) }
    }

    @usableFromInline internal var base: Int
    @usableFromInline internal var storedFields: HTTPFieldRanges
    /// Content-Length, or -1 for none, -2 for chunked.
    @usableFromInline internal var lengthOrFraming: Int
    @usableFromInline internal var headLength: UInt32
    @usableFromInline internal var methodLength: UInt32
    @usableFromInline internal var targetSpan: Span
    @usableFromInline internal var querySpan: Span
    @usableFromInline internal var authoritySpan: Span
    @usableFromInline internal var hostSpan: Span
    @usableFromInline internal var storedVersion: HTTPVersion
    @usableFromInline internal var storedMethod: HTTPMethod
    @usableFromInline internal var storedTargetForm: HTTPRequestTargetForm
    @usableFromInline internal var flags: UInt8

    @usableFromInline static var keepAliveFlag: UInt8 { 1 }
    @usableFromInline static var expectsContinueFlag: UInt8 { 2 }
    @usableFromInline static var unsupportedExpectationFlag: UInt8 { 4 }
    @usableFromInline static var upgradeFlag: UInt8 { 8 }

    internal init(
        range: Range<Int>, method: Range<Int>, knownMethod: HTTPMethod, target: Range<Int>,
        targetForm: HTTPRequestTargetForm, query: Range<Int>?, targetAuthority: Range<Int>?,
        version: HTTPVersion, fields: HTTPFieldRanges, host: Range<Int>?, framing: HTTPBodyFraming,
        keepAlive: Bool, expectsContinue: Bool, hasUnsupportedExpectation: Bool, isUpgradeRequest: Bool
    ) {
        let base = range.lowerBound
        self.base = base
        storedFields = fields
        switch framing {
        case .none: lengthOrFraming = -1
        case .chunked: lengthOrFraming = -2
        case .contentLength(let n): lengthOrFraming = n
        }
        headLength = UInt32(truncatingIfNeeded: range.count)
        methodLength = UInt32(truncatingIfNeeded: method.count)
        targetSpan = Span(target, base: base)
        querySpan = Span(query, base: base)
        authoritySpan = Span(targetAuthority, base: base)
        hostSpan = Span(host, base: base)
        storedVersion = version
        storedMethod = knownMethod
        storedTargetForm = targetForm
        flags = (keepAlive ? Self.keepAliveFlag : 0) | (expectsContinue ? Self.expectsContinueFlag : 0)
            | (hasUnsupportedExpectation ? Self.unsupportedExpectationFlag : 0) | (isUpgradeRequest ? Self.upgradeFlag : 0)
    }

    /// The whole head: request line through the empty line ending the header section.
    @inlinable public var range: Range<Int> { base..<(base &+ Int(headLength)) }
    /// The method token.
    @inlinable public var method: Range<Int> { base..<(base &+ Int(methodLength)) }
    /// The method if it is one of the well-known ones, else `.other`.
    @inlinable public var knownMethod: HTTPMethod { storedMethod }
    /// The request target exactly as received.
    @inlinable public var target: Range<Int> { targetSpan.range(base) }
    /// Which of the four target forms ``target`` has.
    @inlinable public var targetForm: HTTPRequestTargetForm { storedTargetForm }
    /// The path part of an origin- or absolute-form target (empty for
    /// `http://host`, and for the authority and asterisk forms).
    @inlinable public var path: Range<Int> {
        let t = target
        let start: Int
        switch storedTargetForm {
        case .origin: start = t.lowerBound
        case .absolute: start = authoritySpan.range(base).upperBound
        case .authority, .asterisk: return t.upperBound..<t.upperBound
        }
        let end = querySpan.start == .max ? t.upperBound : base &+ Int(querySpan.start) &- 1
        return start..<end
    }
    /// The query after `?` (without the `?`), or nil when there is no `?`.
    @inlinable public var query: Range<Int>? { querySpan.optionalRange(base) }
    /// The authority of an absolute- or authority-form target, else nil.
    @inlinable public var targetAuthority: Range<Int>? { authoritySpan.optionalRange(base) }
    /// The version as received.
    @inlinable public var version: HTTPVersion { storedVersion }
    /// Every header field line, in order.
    @inlinable public var fields: HTTPFieldRanges { storedFields }
    /// The Host field value (possibly empty), or nil when there was none (HTTP/1.0 only).
    @inlinable public var host: Range<Int>? { hostSpan.optionalRange(base) }
    /// How the body is delimited.
    @inlinable public var framing: HTTPBodyFraming {
        lengthOrFraming >= 0 ? .contentLength(lengthOrFraming) : (lengthOrFraming == -2 ? .chunked : .none)
    }
    /// Whether the connection may carry another request after this one: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
    /// and without `close`.
    @inlinable public var keepAlive: Bool { flags & Self.keepAliveFlag != 0 }
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).
    @inlinable public var expectsContinue: Bool { flags & Self.expectsContinueFlag != 0 }
    /// An Expect value other than `100-continue` was present: answer 417.
    @inlinable public var hasUnsupportedExpectation: Bool { flags & Self.unsupportedExpectationFlag != 0 }
    /// The Connection field lists `upgrade` and an Upgrade field is present.
    @inlinable public var isUpgradeRequest: Bool { flags & Self.upgradeFlag != 0 }

    /// The Content-Length declared, or nil (chunked or no body). Body size
    /// limits are the server's business; this is what it checks.
    @inlinable
    public var declaredContentLength: Int? { lengthOrFraming >= 0 ? lengthOrFraming : nil }

    /// Whether body events follow (a non-zero Content-Length or chunked).
    @inlinable
    public var hasBody: Bool { lengthOrFraming > 0 || lengthOrFraming == -2 }

    /// The bytes of `range` in `buffer` (a view; no copy).
    @inlinable
    public static func bytes(_ range: Range<Int>, in buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[range])
    }

    /// The head moved `offset` bytes toward the start of the buffer (after the
    /// caller dropped `offset` bytes from its front). Allocates for the fields.
    public func shifted(by offset: Int) -> HTTPRequestHeadView {
        var copy = self
        copy.base -= offset
        copy.storedFields = storedFields.shifted(by: offset)
        return copy
    }

    /// An owned copy with Strings, for async handlers (allocates).
    public func owned(in buffer: UnsafeRawBufferPointer) -> HTTPRequestHead {
        HTTPRequestHead(self, in: buffer)
    }
}

/// What one call to ``HTTPRequestParser/parse(_:)`` produced.
public enum HTTPParseEvent: Sendable, Hashable {
    /// Every byte shown so far has been processed: append more and call again.
    case needMore
    /// A complete request head. Body events (if ``HTTPRequestHeadView/hasBody``)
    /// and then ``end(trailers:)`` follow.
    case head(HTTPRequestHeadView)
    /// Body bytes (identity or de-chunked), as a range into the buffer. Ranges
    /// are contiguous pieces; their split depends on how bytes arrived.
    case body(Range<Int>)
    /// The request is complete; the trailer fields (empty unless chunked with
    /// trailers). The next call starts the next pipelined request.
    case end(trailers: HTTPFieldRanges)
}

// MARK: - Small helpers shared by the view types.

@inline(__always)
internal func string(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: buffer[range]), as: UTF8.self)
}

@usableFromInline
internal func asciiCaseInsensitiveEqual(
    _ buffer: UnsafeRawBufferPointer, _ range: Range<Int>, _ wanted: UnsafeBufferPointer<UInt8>
) -> Bool {
    guard range.count == wanted.count else { return false }
    var j = 0
    for i in range {
        if asciiLower(buffer[i]) != asciiLower(wanted[j]) { return false }
        j &+= 1
    }
    return true
}

@inline(__always) @usableFromInline
internal func asciiLower(_ b: UInt8) -> UInt8 {
    (b &- 0x41) < 26 ? b | 0x20 : b
}
