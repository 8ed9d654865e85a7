/// One header or trailer field as owned Strings.
public struct HTTPField: Sendable, Hashable, CustomStringConvertible {
    /// The name, case as received.
    public var name: String
    /// The value without surrounding whitespace. Bytes that are not UTF-8
    /// (obs-text) are replaced with U+FFFD.
    public var value: String

    /// Creates a field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// `"Name: value"`.
    public var description: String { "\(name): \(value)" }
}

/// An owned copy of a request head (Strings), for code that outlives the
/// receive buffer, such as async handlers. Made by ``HTTPRequestHeadView/owned(in:)``.
public struct HTTPRequestHead: Sendable, Hashable {
    /// The method as received (case-sensitive, RFC 9110 §9.1).
    public var method: String
    /// The method if well known, else `.other`.
    public var knownMethod: HTTPMethod
    /// The request target as received.
    public var target: String
    /// The target's form.
    public var targetForm: HTTPRequestTargetForm
    /// The path of an origin- or absolute-form target.
    public var path: String
    /// The query (without `?`), or nil.
    public var query: String?
    /// The version as received.
    public var version: HTTPVersion
    /// The header fields, in order.
    public var fields: [HTTPField]
    /// The Host value, or nil.
    public var host: String?
    /// How the body is delimited.
    public var framing: HTTPBodyFraming
    /// Whether the connection persists after this request.
    public var keepAlive: Bool
    /// `Expect: 100-continue` (HTTP/1.1).
    public var expectsContinue: Bool
    /// An Expect other than 100-continue was present (answer 417).
    public var hasUnsupportedExpectation: Bool
    /// Connection: upgrade with an Upgrade field.
    public var isUpgradeRequest: Bool

    /// Copies `view`'s bytes out of `buffer` (the buffer the view refers to).
    public init(_ view: HTTPRequestHeadView, in buffer: UnsafeRawBufferPointer) {
        method = string(buffer, view.method)
        knownMethod = view.knownMethod
        target = string(buffer, view.target)
        targetForm = view.targetForm
        path = string(buffer, view.path)
        query = view.query.map { string(buffer, $0) }
        version = view.version
        fields = view.fields.owned(in: buffer)
        host = view.host.map { string(buffer, $0) }
        framing = view.framing
        keepAlive = view.keepAlive
        expectsContinue = view.expectsContinue
        hasUnsupportedExpectation = view.hasUnsupportedExpectation
        isUpgradeRequest = view.isUpgradeRequest
    }

    /// The value of the first field named `name` (ASCII case-insensitive), or nil.
    public func value(forField name: String) -> String? {
        fields.first { asciiCaseInsensitiveEqual($0.name, name) }?.value
    }

    /// The values of every field named `name`, in order.
    public func values(forField name: String) -> [String] {
        fields.filter { asciiCaseInsensitiveEqual($0.name, name) }.map(\.value)
    }
}

private func asciiCaseInsensitiveEqual(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { asciiLower($0) == asciiLower($1) }
}
