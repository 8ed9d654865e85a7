/// The outcome of ``Router/match(method:path:)``.
public enum RouteResult<Handler> {
    /// A route matched: its handler and the captured parameters.
    case found(Handler, RouteParameters)
    /// The path matches a route, but not for this method: answer 405 with
    /// an `Allow` field (``Router/allowHeaderValue(_:)``). The methods are
    /// in ``HTTPMethod`` order, HEAD included when GET is routed.
    case methodNotAllowed(allowed: [HTTPMethod])
    /// No route has this path.
    case notFound
}

extension RouteResult: Sendable where Handler: Sendable {}

/// Parameters captured by a match: names and byte ranges into the matched path.
///
/// Up to four parameters are stored inline (no heap allocation); more go
/// to an array.
public struct RouteParameters: Sendable {
    /// The number of parameters.
    public private(set) var count = 0
    private var n0 = "", n1 = "", n2 = "", n3 = ""
    private var r0 = 0..<0, r1 = 0..<0, r2 = 0..<0, r3 = 0..<0
    private var overflow: [(String, Range<Int>)] = []

    /// No parameters.
    public init() {}

    /// The `i`th parameter (in pattern order).
    public subscript(index i: Int) -> (name: String, range: Range<Int>) {
        precondition(i >= 0 && i < count, "RouteParameters: index \(i) out of range 0..<\(count)")
        switch i {
        case 0: return (n0, r0)
        case 1: return (n1, r1)
        case 2: return (n2, r2)
        case 3: return (n3, r3)
        default: return overflow[i - 4]
        }
    }

    /// The range of the parameter `name` in the matched path, or nil.
    public subscript(name: String) -> Range<Int>? {
        for i in 0..<count {
            let p = self[index: i]
            if p.name == name { return p.range }
        }
        return nil
    }

    /// The parameter `name`, percent-decoded as UTF-8 (`+` stays `+`; invalid
    /// UTF-8 becomes U+FFFD), from `path` — the buffer given to
    /// ``Router/match(method:path:)``. Nil when there is no such parameter or
    /// its percent-encoding is invalid (`%zz`, a truncated `%4`).
    public func string(_ name: String, in path: UnsafeRawBufferPointer) -> String? {
        guard let r = self[name] else { return nil }
        return try? URLEncoded.decodeComponent(UnsafeRawBufferPointer(rebasing: path[r]), plusAsSpace: false)
    }

    /// ``string(_:in:)`` for a path held as a String (ranges are UTF-8 offsets).
    public func string(_ name: String, in path: String) -> String? {
        var p = path
        return p.withUTF8 { string(name, in: UnsafeRawBufferPointer($0)) }
    }

    mutating func push(_ name: String, _ range: Range<Int>) {
        switch count {
        case 0: n0 = name; r0 = range
        case 1: n1 = name; r1 = range
        case 2: n2 = name; r2 = range
        case 3: n3 = name; r3 = range
        default: overflow.append((name, range))
        }
        count += 1
    }

    mutating func pop() {
        count -= 1
        if count >= 4 { overflow.removeLast() }
    }
}

/// A method + path router: static segments, `:name` parameters and a final
/// `*name` wildcard.
///
/// * Patterns start with `/`; segments are split on `/` only. `"/"` is the
///   root; a trailing slash is significant (`/a/` ≠ `/a`, no redirect).
/// * Precedence at each segment: static, then parameter, then wildcard, with
///   backtracking (`/users/new` beats `/users/:id`; `/users/new/edit` still
///   reaches `/users/:id/edit`).
/// * A parameter matches one non-empty segment; a wildcard matches the rest
///   of the path after its `/`, possibly empty (`/static/*p` matches
///   `/static/` and `/static/a/b`, not `/static`).
/// * Paths are matched raw: no percent-decoding (`%2F` does not split a
///   segment), no normalisation of `//` (an empty segment, which no
///   parameter matches) or dot segments. A server should reject unsafe
///   paths first (``isSafePath(_:)``, 400).
/// * HEAD requests match GET routes when no HEAD route is registered.
/// * Matching a static route allocates nothing.
public struct Router<Handler> {
    fileprivate struct Node {
        var statics: [(segment: [UInt8], child: Int)] = []
        var paramChild = -1
        var paramName = ""
        var paramPattern = ""
        var wildcardChild = -1
        var wildcardName = ""
        var wildcardPattern = ""
        var handlers: [Handler?] = []
        var patterns: [String?] = []
        var allowed: [HTTPMethod] = []
    }

    private var nodes: [Node] = [Node()]

    /// An empty router.
    public init() {}

    /// Adds a route. Traps on a malformed pattern (not starting with `/`, an
    /// empty `:`/`*` name, a wildcard that is not last, a parameter name used
    /// twice), on `.other`, on a duplicate route (naming both patterns), and
    /// when two patterns give different names to the same parameter position.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Handler) {
        precondition(method != .other, "Router.add: cannot route HTTPMethod.other (\(pattern))")
        let bytes = Array(pattern.utf8)
        precondition(bytes.first == 0x2F, "Router.add: pattern \(String(reflecting: pattern)) must start with \"/\"")
        let segments = bytes[1...].split(separator: 0x2F, omittingEmptySubsequences: false)
        var node = 0
        var names: [String] = []
        for (i, seg) in segments.enumerated() {
            if seg.first == 0x3A || seg.first == 0x2A {   // ":" or "*"
                let name = String(decoding: seg.dropFirst(), as: UTF8.self)
                precondition(!name.isEmpty, "Router.add: empty parameter name in \(String(reflecting: pattern))")
                precondition(!names.contains(name), "Router.add: parameter \(name) appears twice in \(String(reflecting: pattern))")
                names.append(name)
                if seg.first == 0x2A {
                    precondition(i == segments.count - 1, "Router.add: wildcard *\(name) must be the last segment of \(String(reflecting: pattern))")
                    if nodes[node].wildcardChild < 0 {
                        nodes.append(Node())
                        nodes[node].wildcardChild = nodes.count - 1
                        nodes[node].wildcardName = name
                        nodes[node].wildcardPattern = pattern
                    }
                    precondition(nodes[node].wildcardName == name,
                                 "Router.add: \(String(reflecting: pattern)) names the wildcard *\(name), \(String(reflecting: nodes[node].wildcardPattern)) names it *\(nodes[node].wildcardName)")
                    node = nodes[node].wildcardChild
                } else {
                    if nodes[node].paramChild < 0 {
                        nodes.append(Node())
                        nodes[node].paramChild = nodes.count - 1
                        nodes[node].paramName = name
                        nodes[node].paramPattern = pattern
                    }
                    precondition(nodes[node].paramName == name,
                                 "Router.add: \(String(reflecting: pattern)) names a parameter :\(name) where \(String(reflecting: nodes[node].paramPattern)) has :\(nodes[node].paramName)")
                    node = nodes[node].paramChild
                }
            } else {
                let s = Array(seg)
                if let c = nodes[node].statics.first(where: { $0.segment == s })?.child {
                    node = c
                } else {
                    nodes.append(Node())
                    nodes[node].statics.append((s, nodes.count - 1))
                    node = nodes.count - 1
                }
            }
        }
        let slot = Int(method.rawValue)
        if nodes[node].handlers.isEmpty {
            nodes[node].handlers = Array(repeating: nil, count: HTTPMethod.allCases.count)
            nodes[node].patterns = Array(repeating: nil, count: HTTPMethod.allCases.count)
        }
        if let existing = nodes[node].patterns[slot] {
            preconditionFailure("Router.add: duplicate route \(Self.methodName(method)) \(String(reflecting: pattern)): already routed as \(String(reflecting: existing))")
        }
        nodes[node].handlers[slot] = handler
        nodes[node].patterns[slot] = pattern
        var allowed = HTTPMethod.allCases.filter { nodes[node].handlers[Int($0.rawValue)] != nil }
        if allowed.contains(.get) && !allowed.contains(.head) {
            allowed.append(.head)
            allowed.sort { $0.rawValue < $1.rawValue }
        }
        nodes[node].allowed = allowed
    }

    /// Matches a raw request path (from `/` up to but excluding `?`).
    public func match(method: HTTPMethod, path: UnsafeRawBufferPointer) -> RouteResult<Handler> {
        guard path.count > 0, path[0] == 0x2F else { return .notFound }
        var params = RouteParameters()
        var candidate = -1
        if let h = search(0, 1, path, method, &params, &candidate) {
            return .found(h, params)
        }
        return candidate >= 0 ? .methodNotAllowed(allowed: nodes[candidate].allowed) : .notFound
    }

    /// ``match(method:path:)`` for a path held as a String; parameter
    /// ranges are UTF-8 offsets into it.
    public func match(method: HTTPMethod, path: String) -> RouteResult<Handler> {
        var p = path
        return p.withUTF8 { match(method: method, path: UnsafeRawBufferPointer($0)) }
    }

    private func search(_ n: Int, _ start: Int, _ path: UnsafeRawBufferPointer, _ method: HTTPMethod,
                        _ params: inout RouteParameters, _ candidate: inout Int) -> Handler? {
        var end = start
        while end < path.count && path[end] != 0x2F { end += 1 }
        let isLast = end == path.count
        let node = nodes[n]
        let length = end - start
        for entry in node.statics where entry.segment.count == length {
            let equal = entry.segment.withUnsafeBytes { s in
                length == 0 || memcmpBytes(s.baseAddress!, path.baseAddress! + start, length)
            }
            guard equal else { continue }
            if let h = isLast ? terminal(entry.child, method, &candidate)
                              : search(entry.child, end + 1, path, method, &params, &candidate) {
                return h
            }
            break
        }
        if node.paramChild >= 0 && length > 0 {
            params.push(node.paramName, start..<end)
            if let h = isLast ? terminal(node.paramChild, method, &candidate)
                              : search(node.paramChild, end + 1, path, method, &params, &candidate) {
                return h
            }
            params.pop()
        }
        if node.wildcardChild >= 0 {
            params.push(node.wildcardName, start..<path.count)
            if let h = terminal(node.wildcardChild, method, &candidate) { return h }
            params.pop()
        }
        return nil
    }

    private func terminal(_ n: Int, _ method: HTTPMethod, _ candidate: inout Int) -> Handler? {
        let handlers = nodes[n].handlers
        guard !handlers.isEmpty else { return nil }
        if let h = handlers[Int(method.rawValue)] { return h }
        if method == .head, let h = handlers[Int(HTTPMethod.get.rawValue)] { return h }
        if candidate < 0 { candidate = n }
        return nil
    }

    /// Whether `path` is free of dot segments (`.`/`..`, also percent-encoded
    /// as `%2e`) and NUL (raw or `%00`), and starts with `/`. A server answers
    /// 400 to an unsafe path before routing. Empty segments (`//`) and
    /// encoded slashes are allowed here (the router never merges them).
    public static func isSafePath(_ path: UnsafeRawBufferPointer) -> Bool { HTTPPath.isSafe(path) }

    /// ``isSafePath(_:)`` for a String.
    public static func isSafePath(_ path: String) -> Bool { HTTPPath.isSafe(path) }

    /// The `Allow` field value for `methods`, e.g. `GET, HEAD, POST`.
    public static func allowHeaderValue(_ methods: [HTTPMethod]) -> String {
        methods.map(methodName).joined(separator: ", ")
    }

    static func methodName(_ m: HTTPMethod) -> String { HTTPPath.methodName(m) }
}

extension Router: Sendable where Handler: Sendable {}
extension Router.Node: Sendable where Handler: Sendable {}

/// Path checks shared by the router and static files (non-generic).
public enum HTTPPath {
    /// See ``Router/isSafePath(_:)``.
    public static func isSafe(_ path: UnsafeRawBufferPointer) -> Bool {
        guard path.count > 0, path[0] == 0x2F else { return false }
        var segStart = 1
        var i = 1
        while i <= path.count {
            if i == path.count || path[i] == 0x2F {
                if isDotSegment(UnsafeRawBufferPointer(rebasing: path[segStart..<i])) { return false }
                segStart = i + 1
            } else if path[i] == 0 {
                return false
            } else if path[i] == 0x25, i + 2 < path.count, path[i + 1] == 0x30, path[i + 2] == 0x30 {
                return false
            }
            i += 1
        }
        return true
    }

    /// ``isSafe(_:)`` for a String.
    public static func isSafe(_ path: String) -> Bool {
        var p = path
        return p.withUTF8 { isSafe(UnsafeRawBufferPointer($0)) }
    }

    /// `.` or `..`, each dot possibly written `%2e` / `%2E`.
    static func isDotSegment(_ s: UnsafeRawBufferPointer) -> Bool {
        var dots = 0
        var i = 0
        while i < s.count {
            if s[i] == 0x2E {
                i += 1
            } else if s[i] == 0x25, i + 2 < s.count, s[i + 1] == 0x32, s[i + 2] | 0x20 == 0x65 {
                i += 3
            } else {
                return false
            }
            dots += 1
            if dots > 2 { return false }
        }
        return dots == 1 || dots == 2
    }

    static func methodName(_ m: HTTPMethod) -> String {
        switch m {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .connect: "CONNECT"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .patch: "PATCH"
        case .other: "OTHER"
        }
    }
}

@inline(__always)
private func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
