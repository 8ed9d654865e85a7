import StrataEvents
import StrataSched
import StrataThreads

/// What the server needs to know; every limit has the default the issue and RFC practice
/// suggest, and ``validated()`` names any field that is out of range and how to fix it.
public struct HTTPServerConfiguration: Sendable {
    /// Parser limits: request line (414), field line and header section (431), field count
    /// (431), trailers (431), chunk extensions (413).
    public var parserLimits = HTTPParserLimits()
    /// The largest request body buffered for a handler (413 beyond).
    public var maxBufferedBody = 1 << 20
    /// The largest request body a streaming handler may read (413 beyond; nil = no limit).
    public var maxStreamedBody: Int? = nil
    /// From the first byte of a request until its head is complete (408, then close).
    public var headerTimeout: Duration = .seconds(10)
    /// A new connection that sends nothing for this long is closed silently.
    public var firstByteTimeout: Duration = .seconds(10)
    /// Between two reads of a request body (close when it passes).
    public var bodyReadTimeout: Duration = .seconds(30)
    /// The slowest body upload tolerated, in bytes per second, measured after the first 5 s
    /// of a body (close when slower); 0 disables.
    public var minimumBodyRate = 1024
    /// An idle keep-alive connection is closed after this long.
    public var keepAliveTimeout: Duration = .seconds(65)
    /// Requests served per connection; the last response carries `Connection: close`.
    public var maxRequestsPerConnection = 1000
    /// Age after which a connection gets `Connection: close` on its next response.
    public var maxConnectionAge: Duration = .seconds(3600)
    /// How long an async or blocking handler may run before the request is answered 503
    /// (handlers return whole responses, so nothing was sent yet). A timed-out handler is
    /// cancelled; a blocking one keeps its pool thread until it returns. Inline handlers run
    /// synchronously on the loop and are not bounded.
    public var handlerTimeout: Duration? = .seconds(30)
    /// Unread request body left by a handler is drained up to this many bytes, else the
    /// connection is closed.
    public var maxDrainBytes = 256 * 1024
    /// Open connections at most: at the cap the server stops accepting (the kernel's
    /// backlog holds new connections) instead of accepting and closing.
    public var maxConnections = 16_384
    /// Async and blocking handlers running at once at most; beyond it requests get 503 with
    /// `Retry-After: 1` (the overload policy).
    public var maxConcurrentHandlers = 10_000
    /// Pipelined requests answered before the responses are flushed at most.
    public var maxPipelineDepth = 64
    /// After an error response, how long the server keeps reading (and discarding) before it
    /// closes, so the client sees the response rather than a reset (lingering close).
    public var lingerTimeout: Duration = .seconds(2)
    /// The `Server` field of every response (nil: none).
    public var serverName: StaticString? = "strata"
    /// Threads of the pool that runs blocking handlers.
    public var blockingThreads = 4
    /// How long a transport factory (``HTTPServer/listen(on:backlog:transport:)``: a TLS
    /// handshake, say) may take before its connection's task is cancelled and the
    /// connection closed (`timeouts{kind="transport_setup"}`). Not used for plain TCP.
    public var transportSetupTimeout: Duration = .seconds(10)

    /// The defaults.
    public init() {}

    /// Checks every field; the error names the field, its value and the fix.
    public func validated() throws(HTTPServerError) -> HTTPServerConfiguration {
        func bad(_ field: String, _ value: Any, _ fix: String) -> HTTPServerError {
            HTTPServerError.invalidConfiguration("\(field) = \(value): \(fix)")
        }
        guard maxBufferedBody >= 0 else { throw bad("maxBufferedBody", maxBufferedBody, "use 0 or more bytes") }
        guard headerTimeout > .zero else { throw bad("headerTimeout", headerTimeout, "use a positive duration") }
        guard firstByteTimeout > .zero else { throw bad("firstByteTimeout", firstByteTimeout, "use a positive duration") }
        guard bodyReadTimeout > .zero else { throw bad("bodyReadTimeout", bodyReadTimeout, "use a positive duration") }
        guard keepAliveTimeout > .zero else { throw bad("keepAliveTimeout", keepAliveTimeout, "use a positive duration") }
        guard maxRequestsPerConnection >= 1 else { throw bad("maxRequestsPerConnection", maxRequestsPerConnection, "use at least 1") }
        guard maxConnections >= 1 else { throw bad("maxConnections", maxConnections, "use at least 1") }
        guard maxConcurrentHandlers >= 1 else { throw bad("maxConcurrentHandlers", maxConcurrentHandlers, "use at least 1") }
        guard maxPipelineDepth >= 1 else { throw bad("maxPipelineDepth", maxPipelineDepth, "use at least 1") }
        guard minimumBodyRate >= 0 else { throw bad("minimumBodyRate", minimumBodyRate, "use 0 (off) or more bytes/s") }
        guard (1...1024).contains(blockingThreads) else { throw bad("blockingThreads", blockingThreads, "use 1...1024") }
        guard transportSetupTimeout > .zero else { throw bad("transportSetupTimeout", transportSetupTimeout, "use a positive duration") }
        if let t = handlerTimeout, t <= .zero { throw bad("handlerTimeout", t, "use a positive duration or nil") }
        return self
    }
}

/// An error starting or configuring the server.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    /// What happened, the cause and the fix.
    public let message: String
    /// A textual description.
    public var description: String { message }
    static func invalidConfiguration(_ text: String) -> HTTPServerError { HTTPServerError(message: "HTTPServerConfiguration.\(text)") }
}

/// A request as async and blocking handlers see it: an owned copy of the head, the
/// buffered body, and the route's parameters.
public struct HTTPRequest: Sendable {
    /// Method, target, version and fields.
    public var head: HTTPRequestHead
    /// The whole body (empty when there is none).
    public var body: [UInt8]
    /// The route's `:name` and `*rest` parameters, percent-decoded.
    public var parameters: [String: String]

    /// The first value of a field, case-insensitively.
    public func header(_ name: String) -> String? { head.value(forField: name) }
    /// The query's `name=value` pairs (application/x-www-form-urlencoded); empty if malformed.
    public var queryItems: [(name: String, value: String)] {
        guard let q = head.query else { return [] }
        return (try? Array(q.utf8).withUnsafeBytes { try URLEncoded.parse($0) }) ?? []
    }
}

/// A request as inline handlers see it: views into the connection's receive buffer, valid
/// only during the call (no copy, no allocation). Like an `UnsafeRawBufferPointer`, do not
/// keep it or its buffers after the handler returns; copy what you need.
public struct HTTPInlineRequest {
    /// The head: ranges into ``bytes``.
    public let head: HTTPRequestHeadView
    /// The receive buffer the ranges point into.
    public let bytes: UnsafeRawBufferPointer
    /// The buffered body.
    public let body: UnsafeRawBufferPointer
    /// The route's parameters (ranges into the path).
    public let parameters: RouteParameters

    init(head: HTTPRequestHeadView, bytes: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, parameters: RouteParameters) {
        self.head = head
        self.bytes = bytes
        self.body = body
        self.parameters = parameters
    }

    /// The path bytes.
    public var path: UnsafeRawBufferPointer { HTTPRequestHeadView.bytes(head.path, in: bytes) }
    /// The value of a route parameter, percent-decoded (allocates a String).
    public func parameter(_ name: String) -> String? { parameters.string(name, in: path) }
    /// The first value of a field, case-insensitively (allocates a String).
    public func header(_ name: String) -> String? {
        guard let r = head.fields.firstValue(named: name, in: bytes) else { return nil }
        return String(decoding: HTTPRequestHeadView.bytes(r, in: bytes), as: UTF8.self)
    }
}

/// A response: status, fields and body.
public struct HTTPResponse: Sendable {
    /// What the body is and where it comes from.
    public enum Body: Sendable {
        /// No body (Content-Length: 0, or none for 204/304/HEAD).
        case empty
        /// Bytes in the binary (no copy, no allocation).
        case staticText(StaticString)
        /// Bytes.
        case bytes([UInt8])
        /// A file range sent with sendfile; the server opens and closes the file.
        case file(path: String, offset: Int64, length: Int64)
        /// Bytes produced while the response is sent (chunked, or Content-Length when
        /// `length` is given).
        case stream(length: Int?, @Sendable (HTTPBodyWriter) async throws -> Void)
    }

    /// The status.
    public var status: HTTPStatus
    /// `Content-Type`, without allocating (the common case); nil leaves it to ``fields``.
    public var contentType: StaticString?
    /// Other fields. `Content-Length`, `Transfer-Encoding`, `Connection` and `Date` are the
    /// server's.
    public var fields: HTTPFields
    /// The body.
    public var body: Body

    /// Creates a response.
    public init(status: HTTPStatus = .ok, contentType: StaticString? = nil, fields: HTTPFields = HTTPFields(), body: Body = .empty) {
        self.status = status
        self.contentType = contentType
        self.fields = fields
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: .bytes(Array(text.utf8)))
    }
}

/// Writes a streamed response body (see ``HTTPResponse/Body/stream(length:_:)``).
public final class HTTPBodyWriter: @unchecked Sendable {
    // @unchecked: used only by the connection's task, during the stream closure.
    let sink: ([UInt8]) async throws -> Void
    init(_ sink: @escaping ([UInt8]) async throws -> Void) { self.sink = sink }

    /// Sends `bytes` (as one chunk when chunked); suspends until the connection takes them
    /// (backpressure).
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try await sink(bytes)
    }
}

/// The request body, read as the handler consumes it (streaming handlers): an
/// `AsyncSequence` of chunks. `100 Continue` is sent on the first read when the client
/// asked for it.
public final class HTTPRequestBody: AsyncSequence, @unchecked Sendable {
    // @unchecked: used only by the connection's task.
    /// A chunk of the body.
    public typealias Element = [UInt8]
    let pull: () async throws -> [UInt8]?
    init(_ pull: @escaping () async throws -> [UInt8]?) { self.pull = pull }

    /// Iterates the chunks.
    public func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    /// The body's chunks in order; nil at its end.
    public struct Iterator: AsyncIteratorProtocol {
        let body: HTTPRequestBody
        /// The next chunk.
        public mutating func next() async throws -> [UInt8]? { try await body.pull() }
    }

    /// Reads the whole rest of the body (bounded by the server's streamed-body limit).
    public func collect() async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await pull() { all += chunk }
        return all
    }
}

/// How a route's handler runs.
public enum HTTPHandler: Sendable {
    /// On the loop thread, synchronously, with views into the receive buffer: the fast path.
    /// Must not block.
    case inline(@Sendable (HTTPInlineRequest) -> HTTPResponse)
    /// On the loop's executor (no thread hop), with an owned request; bounded by
    /// ``HTTPServerConfiguration/handlerTimeout``.
    case async(@Sendable (HTTPRequest) async throws -> HTTPResponse)
    /// On the server's thread pool, for blocking work; bounded by the handler timeout.
    case blocking(@Sendable (HTTPRequest) throws -> HTTPResponse)
    /// On the loop's executor with the body not yet read: the handler pulls it (with
    /// backpressure) and may stream the response while it does. `request.body` is empty.
    case streaming(@Sendable (HTTPRequest, HTTPRequestBody) async throws -> HTTPResponse)
}

/// Routes requests to handlers: methods and paths with `:name` and `*rest` parameters.
///
/// ```swift
/// var routes = HTTPRoutes()
/// routes.get("/") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!")) }
/// routes.add(.get, "/users/:id", .async { request in .text("user \(request.parameters["id"]!)") })
/// ```
public struct HTTPRoutes: Sendable {
    var router = Router<HTTPHandler>()

    /// An empty route table.
    public init() {}

    /// Adds a route.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: HTTPHandler) {
        router.add(method, pattern, handler)
    }

    /// Adds an inline GET route (HEAD is answered by it too).
    public mutating func get(_ pattern: String, _ handler: @escaping @Sendable (HTTPInlineRequest) -> HTTPResponse) {
        add(.get, pattern, .inline(handler))
    }
}
