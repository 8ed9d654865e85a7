/// Why a field could not be added to ``HTTPFields``.
public enum HTTPFieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The name is empty or has a byte that is not a tchar (RFC 9110 §5.1, §5.6.2).
    case invalidName(String)
    /// The value has a control byte other than HTAB (CR, LF, NUL, DEL, …) at this UTF-8 offset (RFC 9110 §5.5).
    case invalidValue(name: String, offset: Int)

    /// A message naming the field.
    public var description: String {
        switch self {
        case .invalidName(let n):
            "invalid HTTP field name \(String(reflecting: n)): a name is 1 or more token characters (RFC 9110 §5.1)"
        case .invalidValue(let n, let o):
            "invalid value for HTTP field \(n): control byte at offset \(o) (CR, LF, NUL and other controls but HTAB are not allowed; RFC 9110 §5.5)"
        }
    }
}

/// An owned, ordered list of response header or trailer fields.
///
/// Names and values are validated when added (``append(_:_:)`` traps,
/// ``tryAppend(_:_:)`` throws), so the serializer can write them verbatim:
/// header injection is impossible. Leading and trailing SP/HTAB of a value
/// are not removed (they are legal bytes; avoid them).
public struct HTTPFields: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The element type: a name and its value.
    public typealias Element = HTTPField

    @usableFromInline internal var storage: [HTTPField]
    /// Bits of ``Special`` for names the serializer writes itself.
    @usableFromInline internal var special: UInt8 = 0

    @usableFromInline internal enum Special {
        static let server: UInt8 = 1
        static let date: UInt8 = 2
        static let contentLength: UInt8 = 4
        static let transferEncoding: UInt8 = 8
    }

    /// An empty list.
    public init() { storage = [] }

    /// An empty list with room for `capacity` fields.
    public init(minimumCapacity capacity: Int) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// A list from literal pairs, in order. Traps on an invalid name or value.
    public init(dictionaryLiteral elements: (String, String)...) {
        storage = []
        for (n, v) in elements { append(n, v) }
    }

    /// The number of fields.
    @inlinable public var count: Int { storage.count }

    /// Whether the list is empty.
    @inlinable public var isEmpty: Bool { storage.isEmpty }

    /// Iterates the fields in order.
    public func makeIterator() -> IndexingIterator<[HTTPField]> { storage.makeIterator() }

    /// Appends a field. Traps with a message naming the field if the name is
    /// not a token or the value has a control byte other than HTAB.
    public mutating func append(_ name: String, _ value: String) {
        do {
            try tryAppend(name, value)
        } catch {
            preconditionFailure("HTTPFields.append: \(error)")
        }
    }

    /// Appends a field, or throws if the name is not a token or the value
    /// has a control byte other than HTAB (CR, LF, NUL, DEL, …).
    public mutating func tryAppend(_ name: String, _ value: String) throws(HTTPFieldError) {
        try Self.validate(name: name, value: value)
        special |= Self.specialBit(name)
        storage.append(HTTPField(name: name, value: value))
    }

    /// Validates a name and a value without adding them.
    public static func validate(name: String, value: String) throws(HTTPFieldError) {
        var nameOK = !name.utf8.isEmpty
        for b in name.utf8 where !isTokenChar(b) { nameOK = false; break }
        guard nameOK else { throw .invalidName(name) }
        var offset = 0
        for b in value.utf8 {
            if !isFieldValueChar(b) { throw .invalidValue(name: name, offset: offset) }
            offset += 1
        }
    }

    /// The first value of the field named `name` (ASCII case-insensitive), or nil.
    public subscript(name: String) -> String? {
        for f in storage where Self.equalsIgnoringCase(f.name, name) { return f.value }
        return nil
    }

    /// All values of the fields named `name`, in order.
    public func values(_ name: String) -> [String] {
        storage.filter { Self.equalsIgnoringCase($0.name, name) }.map(\.value)
    }

    /// Whether a field named `name` (ASCII case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        storage.contains { Self.equalsIgnoringCase($0.name, name) }
    }

    /// Removes every field named `name` (ASCII case-insensitive).
    public mutating func remove(_ name: String) {
        storage.removeAll { Self.equalsIgnoringCase($0.name, name) }
        special = 0
        for f in storage { special |= Self.specialBit(f.name) }
    }

    /// Replaces every field named `name` by one field with `value` (appended
    /// at the end). Traps on an invalid name or value.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        append(name, value)
    }

    /// `Name: value` lines separated by newlines.
    public var description: String { storage.map(\.description).joined(separator: "\n") }

    /// ASCII case-insensitive comparison of two field names.
    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        var ia = a.utf8.makeIterator()
        var ib = b.utf8.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return true
            case let (x?, y?): if x | (isAlpha(x) ? 0x20 : 0) != y | (isAlpha(y) ? 0x20 : 0) { return false }
            default: return false
            }
        }
    }

    private static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 }

    private static func specialBit(_ name: String) -> UInt8 {
        switch name.utf8.count {
        case 4: equalsIgnoringCase(name, "Date") ? Special.date : 0
        case 6: equalsIgnoringCase(name, "Server") ? Special.server : 0
        case 14: equalsIgnoringCase(name, "Content-Length") ? Special.contentLength : 0
        case 17: equalsIgnoringCase(name, "Transfer-Encoding") ? Special.transferEncoding : 0
        default: 0
        }
    }

    /// Whether the field is one the serializer owns (Content-Length, Transfer-Encoding).
    static func isFramingField(_ name: String) -> Bool {
        let bit = specialBit(name)
        return bit == Special.contentLength || bit == Special.transferEncoding
    }
}

/// A response head: the status and the fields a handler chose.
///
/// Framing (`Content-Length` / `Transfer-Encoding`) and `Connection` are
/// added by ``ResponseSerializer`` from the framing and keep-alive decision.
public struct ResponseHead: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// The fields, in order.
    public var fields: HTTPFields

    /// A head with `status` and `fields` (empty by default).
    public init(status: HTTPStatus, fields: HTTPFields = HTTPFields()) {
        self.status = status
        self.fields = fields
    }
}
