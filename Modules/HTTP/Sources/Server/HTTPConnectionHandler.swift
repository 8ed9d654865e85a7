#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import StrataEvents
import StrataSched
import StrataSockets
import StrataThreads
import Synchronization

/// Why a connection ends (after the response, if any, is flushed).
enum ConnectionEnd: Error {
    /// The peer closed, or a silent close (idle timeout, shutdown while idle).
    case quiet
    /// An error response was queued: flush it, then close lingering.
    case afterError
    /// The transport failed (a reset, a broken TLS stream, any error of its own): the peer
    /// is gone or unreachable, so close at once — nothing more is sent or read.
    case broken
}

/// One connection's request/response loop, run by its task on the connection's loop.
///
/// The receive buffer holds the stream from the first byte the parser still needs; every
/// read appends to it (from the loop's shared pool, so an idle connection holds no receive
/// buffer), heads and bodies are ranges into it, and it is compacted after each request.
/// Responses go to `out`, which is flushed when the parser needs more bytes (so pipelined
/// requests that arrived together are answered with one write), when it is large, or after
/// `maxPipelineDepth` responses.
///
/// Generic over the transport so that the plain-TCP server (`HTTPConnectionHandler<TCPConnection>`)
/// is specialized: no existential or witness-table call on its hot path. A wrapped transport
/// (TLS) is opened once per connection and runs the same code.
final class HTTPConnectionHandler<Transport: HTTPTransport> {
    let server: HTTPServer
    let connection: Transport
    let entry: ConnectionEntry
    let config: HTTPServerConfiguration
    let loop: Loop
    let dates: DateCache
    // `@exclusivity(unchecked)`: the handler belongs to one connection task, which never
    // holds an inout access to these across a call that touches them again; the dynamic
    // checks (swift_beginAccess, about 5 % of a keep-alive server's CPU) buy nothing here.
    @exclusivity(unchecked) var parser: HTTPRequestParser
    @exclusivity(unchecked) var receive: [UInt8] = []
    @exclusivity(unchecked) var out: [UInt8] = []
    var requests = 0
    var unflushed = 0
    let born = MonotonicInstant.now
    /// The peer closed its sending side.
    var peerClosed = false

    init(server: HTTPServer, connection: Transport, entry: ConnectionEntry, dates: DateCache) {
        self.server = server
        self.connection = connection
        self.entry = entry
        self.config = server.configuration
        self.loop = connection.loop
        self.dates = dates
        self.parser = HTTPRequestParser(limits: server.configuration.parserLimits)
        out.reserveCapacity(1024)
    }

    // MARK: Reading

    /// Appends the next bytes to `receive`; false at end of stream. Throws `CancellationError`,
    /// a timed-out ``SchedError``, or ``ConnectionEnd/broken`` for any other transport error.
    func readMore(until deadline: MonotonicInstant) async throws -> Bool {
        let n: Int?
        do {
            n = try await withDeadline(deadline) {
                try await connection.readPooled { [self] bytes in
                    receive.append(contentsOf: bytes)
                    return bytes.count
                }
            }
        } catch {
            throw transportFailure(error)
        }
        guard let n else {
            peerClosed = true
            return false
        }
        server.metrics.received(n)
        return true
    }

    /// The next parser event, reading as needed. Head deadline: absolute from the first byte
    /// of the request; between requests: the keep-alive (or first-byte) timeout.
    func nextEvent(body: Bool) async throws -> HTTPParseEvent {
        var headDeadline: MonotonicInstant?
        while true {
            let event = try receive.withUnsafeBytes { try parser.parse($0) }
            if case .needMore = event {} else { return event }
            try await flush()
            if peerClosed {
                try parser.finish()  // throws incompleteHead/incompleteBody when cut short
                throw ConnectionEnd.quiet
            }
            if !body && parser.isAtMessageBoundary && parser.consumed == receive.count {
                // Nothing of a request yet (only ignorable empty lines): still idle.
                try await waitForNextRequest()
                headDeadline = .now.advanced(by: config.headerTimeout)
                continue
            }
            let deadline: MonotonicInstant
            if body {
                deadline = .now.advanced(by: config.bodyReadTimeout)
            } else {
                if headDeadline == nil { headDeadline = .now.advanced(by: config.headerTimeout) }
                deadline = headDeadline!
            }
            do {
                if !(try await readMore(until: deadline)) { continue }
            } catch let error as SchedError where error.code == .timedOut {
                if body {
                    server.metrics.timeout("body")
                    throw ConnectionEnd.quiet
                }
                server.metrics.timeout("header")
                try queueError(.requestTimeout)
                throw ConnectionEnd.afterError
            } catch is CancellationError {
                // Shutdown at its deadline: a request in progress is cut.
                throw ConnectionEnd.quiet
            }
        }
    }

    /// Flushes what is queued, then waits for the first bytes of the next request, within
    /// the first-byte (new connection) or keep-alive timeout; a timeout, the peer's close or
    /// a graceful shutdown ends the connection quietly.
    func waitForNextRequest() async throws {
        try await flush()
        if peerClosed { throw ConnectionEnd.quiet }
        entry.idle.store(true, ordering: .sequentiallyConsistent)
        if server.draining.load(ordering: .sequentiallyConsistent) { throw ConnectionEnd.quiet }
        releaseIdleMemory()
        let deadline = MonotonicInstant.now.advanced(by: requests == 0 ? config.firstByteTimeout : config.keepAliveTimeout)
        do {
            guard try await readMore(until: deadline) else { throw ConnectionEnd.quiet }
        } catch let error as SchedError where error.code == .timedOut {
            server.metrics.timeout(requests == 0 ? "first_byte" : "keep_alive")
            throw ConnectionEnd.quiet
        } catch is CancellationError {
            throw ConnectionEnd.quiet
        }
        try entry.becomeBusy()
    }

    /// An idle connection keeps no large buffers (memory per idle keep-alive connection).
    func releaseIdleMemory() {
        if receive.isEmpty && receive.capacity > 4096 { receive = [] }
        if out.isEmpty && out.capacity > 64 * 1024 { out = []; out.reserveCapacity(1024) }
    }

    /// Drops the bytes the parser no longer needs.
    func compact() {
        let n = parser.consumed
        guard n > 0 else { return }
        if n == receive.count {
            receive.removeAll(keepingCapacity: true)
        } else {
            receive.removeFirst(n)
        }
        parser.discard(n)
    }

    /// What a transport's error means: cancellation and a Sched deadline keep their meaning
    /// (the callers handle them); anything else — TCP's errno errors or a transport's own
    /// error types — is the peer gone: ``ConnectionEnd/broken``, logged at debug.
    func transportFailure(_ error: any Error) -> any Error {
        if error is CancellationError || error is ConnectionEnd { return error }
        if let e = error as? SchedError, e.code == .timedOut { return error }
        server.logger?.debug("connection: transport failed: \(error)")
        return ConnectionEnd.broken
    }

    // MARK: Writing

    /// Writes `bytes` through the transport (errors as ``transportFailure(_:)``).
    func send(_ bytes: [UInt8]) async throws {
        do { try await connection.write(bytes) } catch { throw transportFailure(error) }
    }

    func flush() async throws {
        guard !out.isEmpty else { return }
        let n = out.count
        try await send(out)
        server.metrics.sent(n)
        out.removeAll(keepingCapacity: true)
        unflushed = 0
    }

    /// Queues a complete error response with `Connection: close` (nothing else follows).
    func queueError(_ status: HTTPStatus, extra: HTTPFields = HTTPFields()) throws {
        let text = "\(status.code) \(status.reason)\n"
        var fields = extra
        fields.append("Content-Type", "text/plain; charset=utf-8")
        ResponseSerializer.writeHead(status: status, fields: fields, framing: .contentLength(text.utf8.count),
                                     keepAlive: false, requestVersion: .http1_1, date: dates,
                                     server: config.serverName, into: &out)
        out.append(contentsOf: text.utf8)
        server.metrics.request(status: status.code, nanoseconds: 0)
    }

    // MARK: The loop

    func run() async {
        do {
            while true {
                if parser.isAtMessageBoundary && parser.consumed == receive.count {
                    // Idle between requests: wait here, in a small frame, so an idle
                    // connection's task does not keep serveOne's large async frame alive.
                    try await waitForNextRequest()
                }
                try await serveOne()
            }
        } catch ConnectionEnd.afterError {
            await lingeringClose()
        } catch ConnectionEnd.quiet {
            if peerClosed {
                try? await flush()
            } else {
                // The server ends the connection (shutdown, keep-alive limit, timeouts) while
                // the peer may be sending its next request: closing with unread bytes makes
                // the kernel reset the connection (the peer sees ECONNRESET, not an end of
                // stream, and may lose the last response). Close lingering instead, in a task
                // of its own: this one may be cancelled (shutdown), which would end the
                // lingering reads at once.
                nonisolated(unsafe) let handler = self
                await Task(executorPreference: loop) { await handler.lingeringClose() }.value
            }
        } catch let error as HTTPParseError {
            server.metrics.parseError(error.kind.name)
            if error.status == 414 || error.status == 431 || error.status == 413 {
                server.metrics.limitHit(error.kind.name)
            }
            if !(peerClosed && parser.isAtMessageBoundary) {
                try? queueError(HTTPStatus.standard(error.status))
            }
            await lingeringClose()
        } catch ConnectionEnd.broken {
            // The transport failed (logged at debug where it did): close at once.
        } catch {
            // Cancellation at the shutdown deadline (cut mid-request), or a transport error
            // that reached here unclassified: the peer is gone either way.
            if !(error is CancellationError) { server.logger?.debug("connection: \(error)") }
        }
    }

    /// After an error response: flush it, stop sending, read and discard for a short while
    /// so the peer reads the response instead of a reset, then close.
    func lingeringClose() async {
        do { try await flush() } catch { return }
        do { try await connection.shutdownWrite() } catch { return }
        let deadline = MonotonicInstant.now.advanced(by: config.lingerTimeout)
        var discarded = 0
        while discarded < 256 * 1024 {
            // Stop when the peer has been quiet for 250 ms (it read the response and has
            // nothing more in flight), or at the linger deadline.
            let quiet = min(deadline, MonotonicInstant.now.advanced(by: .milliseconds(250)))
            let n: Int?? = try? await withDeadline(quiet) { try await connection.readPooled { $0.count } }
            guard let n, let count = n, count > 0 else { return }
            discarded += count
        }
    }

    /// Serves one request (or throws to end the connection).
    func serveOne() async throws {
        guard case .head(let head) = try await nextEvent(body: false) else {
            preconditionFailure("the parser reports a head first")
        }
        entry.idle.store(false, ordering: .sequentiallyConsistent)
        let started = MonotonicInstant.now
        requests += 1
        if server.accessLog {
            // Taken now: a streamed body compacts the buffer the head's ranges point into.
            accessLine = receive.withUnsafeBytes { bytes in
                String(decoding: HTTPRequestHeadView.bytes(head.method, in: bytes), as: UTF8.self) + " "
                    + String(decoding: HTTPRequestHeadView.bytes(head.target, in: bytes), as: UTF8.self)
            }
        }
        // Methods and expectations the server does not implement.
        switch head.knownMethod {
        case .other, .connect, .trace:
            server.metrics.parseError("method_not_implemented")
            try queueError(.notImplemented)
            throw ConnectionEnd.afterError
        default: break
        }
        if head.hasUnsupportedExpectation {
            try queueError(.expectationFailed)
            throw ConnectionEnd.afterError
        }
        var keepAlive = head.keepAlive && requests < config.maxRequestsPerConnection
            && born.duration(to: .now) < config.maxConnectionAge && !server.draining.load(ordering: .relaxed)

        // Dot segments and NUL in the path are refused before routing (400), whatever route
        // might match: no handler sees "/static/../secret". `OPTIONS *` (asterisk-form, the
        // parser admits it for OPTIONS only) has no path to check: it is routed as "*".
        let safe = head.targetForm == .asterisk
            || receive.withUnsafeBytes { Router<HTTPHandler>.isSafePath(HTTPRequestHeadView.bytes(head.path, in: $0)) }
        guard safe else {
            server.metrics.parseError("unsafe_path")
            try queueError(.badRequest)
            throw ConnectionEnd.afterError
        }
        let route = receive.withUnsafeBytes { bytes -> RouteResult<HTTPHandler> in
            server.routes.router.match(method: head.knownMethod, path: HTTPRequestHeadView.bytes(head.path, in: bytes))
        }
        let handler: HTTPHandler
        let parameters: RouteParameters
        switch route {
        case .found(let h, let p):
            handler = h
            parameters = p
        case .methodNotAllowed(let allowed):
            var fields = HTTPFields()
            fields.append("Allow", Router<HTTPHandler>.allowHeaderValue(allowed))
            try await discardBodyAndRespond(head, status: .methodNotAllowed, fields: fields, keepAlive: &keepAlive)
            return
        case .notFound:
            try await discardBodyAndRespond(head, status: .notFound, fields: HTTPFields(), keepAlive: &keepAlive)
            return
        }

        let response: HTTPResponse
        var body: [UInt8] = []
        if case .streaming(let streaming) = handler {
            response = try await runStreaming(streaming, head: head, parameters: parameters)
        } else {
            if head.hasBody {
                if case .contentLength(let n) = head.framing, n > config.maxBufferedBody {
                    server.metrics.limitHit("body")
                    try queueError(.payloadTooLarge)
                    throw ConnectionEnd.afterError
                }
                if head.expectsContinue { try await sendContinue(head) }
                body = try await readWholeBody(limit: config.maxBufferedBody)
            } else {
                _ = try await nextEvent(body: true)  // .end of an empty body
            }
            response = try await runHandler(handler, head: head, body: body, parameters: parameters)
        }
        try await respond(head, response, keepAlive: &keepAlive, started: started)
        if server.draining.load(ordering: .relaxed) { keepAlive = false }
        compact()
        if !keepAlive {
            try await flush()
            // Body bytes left unread: close lingering, or the kernel may answer them with a
            // reset that destroys the response before the client reads it.
            throw bodyLeftUnread ? ConnectionEnd.afterError : ConnectionEnd.quiet
        }
        unflushed += 1
        if unflushed >= config.maxPipelineDepth || out.count >= 64 * 1024 { try await flush() }
    }

    func sendContinue(_ head: HTTPRequestHeadView) async throws {
        guard head.version.hasHTTP11Semantics else { return }  // no interim responses for HTTP/1.0
        out.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
        try await flush()
    }

    /// Reads the body to its end into an array (≤ `limit` bytes, else 413).
    func readWholeBody(limit: Int) async throws -> [UInt8] {
        var body: [UInt8] = []
        let start = MonotonicInstant.now
        while true {
            switch try await nextEvent(body: true) {
            case .body(let range):
                if body.count + range.count > limit {
                    server.metrics.limitHit("body")
                    try queueError(.payloadTooLarge)
                    throw ConnectionEnd.afterError
                }
                body.append(contentsOf: receive[range])
                // No compaction here: the head's ranges (for an inline handler) point into
                // `receive` until the request is answered; the body is bounded by `limit`.
                try checkRate(start: start, bytes: body.count)
            case .end:
                return body
            case .head, .needMore:
                preconditionFailure("unexpected parser event inside a body")
            }
        }
    }

    /// Closes connections that upload slower than the configured minimum rate.
    func checkRate(start: MonotonicInstant, bytes: Int) throws {
        guard config.minimumBodyRate > 0 else { return }
        let elapsed = start.duration(to: .now)
        guard elapsed > .seconds(5) else { return }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if Double(bytes) / seconds < Double(config.minimumBodyRate) {
            server.metrics.timeout("body_rate")
            throw ConnectionEnd.quiet
        }
    }

    /// Answers `status` to a request whose handler does not run; its body is drained (up to
    /// the drain limit, else the connection closes after the response).
    func discardBodyAndRespond(_ head: HTTPRequestHeadView, status: HTTPStatus, fields: HTTPFields, keepAlive: inout Bool) async throws {
        if head.hasBody && !head.expectsContinue {
            if case .contentLength(let n) = head.framing, n > config.maxDrainBytes { keepAlive = false }
        }
        if head.hasBody && head.expectsContinue {
            keepAlive = false  // never asked for the body: do not read it
        }
        let text = "\(status.code) \(status.reason)\n"
        var f = fields
        f.append("Content-Type", "text/plain; charset=utf-8")
        let response = HTTPResponse(status: status, fields: f, body: .bytes(Array(text.utf8)))
        if keepAlive {
            if !(try await drainBody()) { keepAlive = false }
        }
        let unread = head.hasBody && !keepAlive && !parser.isAtMessageBoundary
        try await respond(head, response, keepAlive: &keepAlive, started: .now)
        compact()
        if !keepAlive {
            try await flush()
            throw unread || (head.hasBody && !parser.isAtMessageBoundary) ? ConnectionEnd.afterError : ConnectionEnd.quiet
        }
    }

    /// Reads and drops the rest of the request body; false if more than the drain limit.
    func drainBody() async throws -> Bool {
        var drained = 0
        while true {
            switch try await nextEvent(body: true) {
            case .body(let range):
                drained += range.count
                compact()
                if drained > config.maxDrainBytes { return false }
            case .end:
                return true
            default:
                preconditionFailure("unexpected parser event inside a body")
            }
        }
    }

    // MARK: Handlers

    func runHandler(_ handler: HTTPHandler, head: HTTPRequestHeadView, body: [UInt8], parameters: RouteParameters) async throws -> HTTPResponse {
        switch handler {
        case .inline(let inline):
            return receive.withUnsafeBytes { bytes in
                body.withUnsafeBytes { b in
                    inline(HTTPInlineRequest(head: head, bytes: bytes, body: b, parameters: parameters))
                }
            }
        case .async(let async):
            let request = makeRequest(head, body: body, parameters: parameters)
            return try await bounded { try await async(request) }
        case .blocking(let blocking):
            let request = makeRequest(head, body: body, parameters: parameters)
            let pool = server.pool
            return try await bounded {
                do { return try await pool.run { try blocking(request) } } catch let error as ThreadsError {
                    // The pool's queue is full (or it is shutting down): overloaded, not broken.
                    _ = error
                    var fields = HTTPFields()
                    fields.append("Retry-After", "1")
                    return HTTPResponse(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", fields: fields,
                                        body: .staticText("503 Service Unavailable: the blocking-handler pool is full, retry later\n"))
                }
            }
        case .streaming:
            preconditionFailure("streaming handlers run through runStreaming")
        }
    }

    func makeRequest(_ head: HTTPRequestHeadView, body: [UInt8], parameters: RouteParameters) -> HTTPRequest {
        receive.withUnsafeBytes { bytes in
            let owned = head.owned(in: bytes)
            var params: [String: String] = [:]
            let path = HTTPRequestHeadView.bytes(head.path, in: bytes)
            for i in 0..<parameters.count {
                let name = parameters[index: i].name
                params[name] = parameters.string(name, in: path)
            }
            return HTTPRequest(head: owned, body: body, parameters: params)
        }
    }

    /// Runs an async or blocking handler under the overload policy and the handler timeout:
    /// 503 (with Retry-After) when too many run, or when it takes too long.
    func bounded(_ body: @escaping @Sendable () async throws -> HTTPResponse) async throws -> HTTPResponse {
        let running = server.runningHandlers.add(1, ordering: .relaxed).newValue
        defer { server.runningHandlers.subtract(1, ordering: .relaxed) }
        if running > config.maxConcurrentHandlers {
            server.metrics.limitHit("concurrent_handlers")
            var fields = HTTPFields()
            fields.append("Retry-After", "1")
            return HTTPResponse(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", fields: fields,
                                body: .staticText("503 Service Unavailable: overloaded, retry later\n"))
        }
        guard let timeout = config.handlerTimeout else {
            return try await handlerErrorsAs500 { try await body() }
        }
        let race = HandlerRace()
        let loop = self.loop
        let result: Result<HTTPResponse, any Error>? = await withUnsafeContinuation { continuation in
            race.arm(continuation)
            let work = Task(executorPreference: loop) {
                let r: Result<HTTPResponse, any Error>
                do { r = .success(try await body()) } catch { r = .failure(error) }
                race.finish(r)
            }
            let timer = Task(executorPreference: loop) {
                if (try? await loop.sleep(for: timeout)) != nil { race.finish(nil) }
            }
            race.tasks(work: work, timer: timer)
        }
        guard let result else {
            server.metrics.timeout("handler")
            return HTTPResponse(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8",
                                body: .staticText("503 Service Unavailable: the handler did not finish in time\n"))
        }
        return try await handlerErrorsAs500 { try result.get() }
    }

    func handlerErrorsAs500(_ body: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        do { return try await body() } catch let end as ConnectionEnd { throw end } catch is CancellationError {
            throw CancellationError()
        } catch {
            server.logger?.error("handler failed: \(error)")
            return HTTPResponse(status: .internalServerError, contentType: "text/plain; charset=utf-8",
                                body: .staticText("500 Internal Server Error\n"))
        }
    }

    /// A streaming handler: the body is pulled by the handler (100 Continue on the first
    /// pull), and whatever it does not read is drained afterwards.
    func runStreaming(_ handler: @Sendable (HTTPRequest, HTTPRequestBody) async throws -> HTTPResponse,
                      head: HTTPRequestHeadView, parameters: RouteParameters) async throws -> HTTPResponse {
        let request = makeRequest(head, body: [], parameters: parameters)
        let state = StreamState(continueNeeded: head.expectsContinue && head.hasBody, limit: config.maxStreamedBody)
        if !head.hasBody {
            _ = try await nextEvent(body: true)
            state.ended = true
        }
        currentStream = state
        let start = MonotonicInstant.now
        let body = HTTPRequestBody { [self] in
            guard !state.ended else { return nil }
            if state.continueNeeded {
                state.continueNeeded = false
                try await sendContinue(head)
            }
            switch try await nextEvent(body: true) {
            case .body(let range):
                let chunk = Array(receive[range])
                compact()
                state.read += chunk.count
                if let limit = state.limit, state.read > limit {
                    server.metrics.limitHit("streamed_body")
                    try queueError(.payloadTooLarge)
                    throw ConnectionEnd.afterError
                }
                try checkRate(start: start, bytes: state.read)
                return chunk
            case .end:
                state.ended = true
                return nil
            default:
                preconditionFailure("unexpected parser event inside a body")
            }
        }
        return try await handlerErrorsAs500 { try await handler(request, body) }
    }

    var currentStream: StreamState?
    /// "METHOD target" of the request being answered, when the access log is on.
    var accessLine: String?
    /// The last response left request-body bytes unread (close lingering).
    var bodyLeftUnread = false

    // MARK: Responses

    func respond(_ head: HTTPRequestHeadView, _ response: HTTPResponse, keepAlive: inout Bool, started: MonotonicInstant) async throws {
        // Draining (graceful shutdown): this is the connection's last response.
        if server.draining.load(ordering: .relaxed) { keepAlive = false }
        let isHead = head.knownMethod == .head
        let noBodyStatus = response.status.code < 200 || response.status.code == 204 || response.status.code == 304
        let version = head.version
        // The common case (static text, a static Content-Type, no other fields): one
        // serializer call, no field list copied, no String made — nothing allocated.
        if case .staticText(let text) = response.body, let type = response.contentType, response.fields.isEmpty,
           !isHead, !noBodyStatus, currentStream == nil {
            ResponseSerializer.writeSimpleResponse(
                status: response.status, contentType: type,
                body: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount),
                keepAlive: keepAlive, requestVersion: version, date: dates, server: config.serverName, into: &out)
            finishResponse(response.status.code, started: started)
            return
        }
        var fields = response.fields
        if let type = response.contentType { fields.append("Content-Type", type.description) }
        switch response.body {
        case .empty:
            write(response.status, fields, noBodyStatus ? .noBody : .contentLength(0), keepAlive, version)
        case .staticText(let text):
            write(response.status, fields, noBodyStatus ? .noBody : .contentLength(text.utf8CodeUnitCount), keepAlive, version)
            if !isHead && !noBodyStatus {
                out.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
            }
        case .bytes(let bytes):
            write(response.status, fields, noBodyStatus ? .noBody : .contentLength(bytes.count), keepAlive, version)
            if !isHead && !noBodyStatus {
                if bytes.count > 64 * 1024 {
                    try await flush()
                    try await send(bytes)
                    server.metrics.sent(bytes.count)
                } else {
                    out.append(contentsOf: bytes)
                }
            }
        case .file(let path, let offset, let length):
            write(response.status, fields, .contentLength(Int(length)), keepAlive, version)
            try await flush()
            if !isHead && length > 0 { try await sendFile(path, offset: offset, length: length) }
        case .stream(let length, let produce):
            // HTTP/1.0 has no chunked coding: without a length the body ends at the close.
            let chunked = length == nil && version.hasHTTP11Semantics
            if length == nil && !chunked { keepAlive = false }
            let framing: ResponseFraming = isHead || noBodyStatus ? .noBody
                : length.map { .contentLength($0) } ?? (chunked ? .chunked : .noBody)
            // The producer may pull the request body, whose first pull sends 100 Continue:
            // an interim response must precede the final head, never land inside its body.
            if !isHead && !noBodyStatus, let stream = currentStream, stream.continueNeeded, !stream.ended {
                stream.continueNeeded = false
                try await sendContinue(head)
            }
            write(response.status, fields, framing, keepAlive, version)
            try await flush()
            if !isHead && !noBodyStatus {
                var written = 0
                let writer = HTTPBodyWriter { [self] bytes in
                    written += bytes.count
                    if chunked {
                        bytes.withUnsafeBytes { ResponseSerializer.writeChunk($0, into: &out) }
                    } else {
                        out.append(contentsOf: bytes)
                    }
                    try await flush()
                }
                do { try await produce(writer) } catch ConnectionEnd.broken {
                    throw ConnectionEnd.broken  // the transport failed under the writer or the body
                } catch {
                    // Part of the body is out: the only honest end is a close.
                    server.logger?.error("streamed response failed: \(error)")
                    throw ConnectionEnd.quiet
                }
                if let length, written != length {
                    server.logger?.error("streamed response wrote \(written) of its declared \(length) bytes; closing")
                    throw ConnectionEnd.quiet
                }
                if chunked { ResponseSerializer.writeLastChunk(trailers: nil, into: &out) }
            }
        }
        // A streaming handler that did not read its whole body: drain it, or close.
        bodyLeftUnread = false
        if let stream = currentStream {
            currentStream = nil
            if !stream.ended {
                if stream.continueNeeded {
                    keepAlive = false  // the client waits for 100 Continue: never read the body
                } else if keepAlive, !(try await drainBody()) {
                    keepAlive = false
                    bodyLeftUnread = true
                } else if !keepAlive {
                    bodyLeftUnread = true
                }
            }
        }
        finishResponse(response.status.code, started: started)
    }

    /// Metrics and the access log line of an answered request.
    func finishResponse(_ status: Int, started: MonotonicInstant) {
        server.metrics.request(status: status, nanoseconds: MonotonicInstant.now.nanoseconds &- started.nanoseconds)
        if let line = accessLine, let logger = server.logger {
            accessLine = nil
            logger.info("\(line) \(status)")
        }
    }

    func write(_ status: HTTPStatus, _ fields: HTTPFields, _ framing: ResponseFraming, _ keepAlive: Bool, _ version: HTTPVersion) {
        ResponseSerializer.writeHead(status: status, fields: fields, framing: framing, keepAlive: keepAlive,
                                     requestVersion: version, date: dates, server: config.serverName, into: &out)
    }

    func sendFile(_ path: String, offset: Int64, length: Int64) async throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            server.logger?.error("static file \(path): open failed: \(Errno(rawValue: errno))")
            throw ConnectionEnd.quiet  // the head promised a body: close
        }
        defer { close(fd) }
        var sent: Int64 = 0
        while sent < length {
            let n: Int
            do { n = try await connection.sendFile(fd, offset: offset + sent, count: Int(min(length - sent, 1 << 30))) } catch {
                throw transportFailure(error)
            }
            if n == 0 { throw ConnectionEnd.quiet }
            sent += Int64(n)
        }
        server.metrics.sent(Int(sent))
    }
}

/// The state of a streaming handler's request body.
final class StreamState {
    var continueNeeded: Bool
    let limit: Int?
    var read = 0
    var ended = false
    init(continueNeeded: Bool, limit: Int?) {
        self.continueNeeded = continueNeeded
        self.limit = limit
    }
}

/// The first of a handler's result and its timeout resumes the connection.
final class HandlerRace: Sendable {
    private let state = LockedValue<State>(State())
    struct State {
        var continuation: UnsafeContinuation<Result<HTTPResponse, any Error>?, Never>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var done = false
    }

    func arm(_ c: UnsafeContinuation<Result<HTTPResponse, any Error>?, Never>) {
        state.withLock { $0.continuation = c }
    }

    func tasks(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let cancelNow = state.withLock { s -> Bool in
            if !s.done {
                s.work = work
                s.timer = timer
            }
            return s.done
        }
        if cancelNow { timer.cancel() }
    }

    func finish(_ result: Result<HTTPResponse, any Error>?) {
        let (c, work, timer) = state.withLock { s -> (UnsafeContinuation<Result<HTTPResponse, any Error>?, Never>?, Task<Void, Never>?, Task<Void, Never>?) in
            guard !s.done else { return (nil, nil, nil) }
            s.done = true
            let c = s.continuation
            s.continuation = nil
            // The tasks' closures capture this race: drop the handles (no reference cycle).
            let handles = (s.work, s.timer)
            s.work = nil
            s.timer = nil
            return (c, handles.0, handles.1)
        }
        guard let c else { return }
        if result == nil { work?.cancel() } else { timer?.cancel() }
        c.resume(returning: result)
    }
}
