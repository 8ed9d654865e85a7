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
public struct HTTPRequestHeadView: Sendable, Hashable {
    /// The whole head: request line through the empty line ending the header section.
    public var range: Range<Int>
    /// The method token.
    public var method: Range<Int>
    /// The method if it is one of the well-known ones, else `.other`.
    public var knownMethod: HTTPMethod
    /// The request target exactly as received.
    public var target: Range<Int>
    /// Which of the four target forms ``target`` has.
    public var targetForm: HTTPRequestTargetForm
    /// The path part of an origin- or absolute-form target (empty for
    /// `http://host`, and for the authority and asterisk forms).
    public var path: Range<Int>
    /// The query after `?` (without the `?`), or nil when there is no `?`.
    public var query: Range<Int>?
    /// The authority of an absolute- or authority-form target, else nil.
    public var targetAuthority: Range<Int>?
    /// The version as received.
    public var version: HTTPVersion
    /// Every header field line, in order.
    public var fields: HTTPFieldRanges
    /// The Host field value (possibly empty), or nil when there was none (HTTP/1.0 only).
    public var host: Range<Int>?
    /// How the body is delimited.
    public var framing: HTTPBodyFraming
    /// Whether the connection may carry another request after this one: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
    /// and without `close`.
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).
    public var expectsContinue: Bool
    /// An Expect value other than `100-continue` was present: answer 417.
    public var hasUnsupportedExpectation: Bool
    /// The Connection field lists `upgrade` and an Upgrade field is present.
    public var isUpgradeRequest: Bool

    /// The Content-Length declared, or nil (chunked or no body). Body size
    /// limits are the server's business; this is what it checks.
    @inlinable
    public var declaredContentLength: Int? {
        if case .contentLength(let n) = framing { return n }
        return nil
    }

    /// Whether body events follow (a non-zero Content-Length or chunked).
    @inlinable
    public var hasBody: Bool {
        switch framing {
        case .none: return false
        case .contentLength(let n): return n > 0
        case .chunked: return true
        }
    }

    /// The bytes of `range` in `buffer` (a view; no copy).
    @inlinable
    public static func bytes(_ range: Range<Int>, in buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[range])
    }

    /// The head moved `offset` bytes toward the start of the buffer (after the
    /// caller dropped `offset` bytes from its front). Allocates for the fields.
    public func shifted(by offset: Int) -> HTTPRequestHeadView {
        func s(_ r: Range<Int>) -> Range<Int> { (r.lowerBound - offset)..<(r.upperBound - offset) }
        var copy = self
        copy.range = s(range)
        copy.method = s(method)
        copy.target = s(target)
        copy.path = s(path)
        copy.query = query.map(s)
        copy.targetAuthority = targetAuthority.map(s)
        copy.host = host.map(s)
        copy.fields = fields.shifted(by: offset)
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
