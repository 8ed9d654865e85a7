// strata-serve: the HTTP/1.1 demo server on StrataHTTP (README's `make run` starts it).
//
//   strata-serve [--host 127.0.0.1] [--port 8080] [--backend auto|io_uring|epoll|kqueue] [--loops 1]
//                [--root DIR] [--handlers inline|async] [--access-log] [--pin]
//                [--tls-cert CHAIN.pem --tls-key KEY.pem [--tls-client-ca CA.pem]]
//                [--tls-handshake loop|pool]
//
// With --tls-cert and --tls-key the same routes are served over TLS 1.2 (StrataTLS, ALPN
// http/1.1) through HTTP's transport protocol: StrataHTTP never imports StrataTLS; this
// file composes them. --tls-client-ca requires client certificates (mutual TLS).
//
// Routes: GET / (Hello, World!), POST|PUT /echo (the body, streamed back), GET /json,
// GET /static/... (files under --root, with ETag, Last-Modified, Range and 304),
// GET /healthz, GET /metrics (Prometheus text); anything else 404.
// SIGINT/SIGTERM: graceful shutdown (10 s for requests in progress).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Metrics
import StrataEvents
import StrataHTTP
import StrataSched
import StrataSockets
import StrataThreads
import StrataTLS

/// TLS under HTTP: StrataTLS's async connection is an HTTP byte-stream transport.
extension TLSConnection: HTTPTransport {}

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 8080
    var backend: BackendChoice = .automatic
    var loops = 1
    var root: String?
    var asyncHandlers = false
    var accessLog = false
    var pin = false
    var tlsCert: String?
    var tlsKey: String?
    var tlsClientCA: String?
    var handshakeOnPool = true
}

func warn(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func usage(_ message: String) -> Never {
    warn("strata-serve: \(message)")
    warn("usage: strata-serve [--host ADDR] [--port N] [--backend auto|io_uring|epoll|kqueue] [--loops N] [--root DIR] [--handlers inline|async] [--access-log] [--pin] [--tls-cert CHAIN.pem --tls-key KEY.pem [--tls-client-ca CA.pem]] [--tls-handshake loop|pool]")
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    do { o.backend = try BackendChoice.fromEnvironment() } catch { usage("STRATA_BACKEND: \(error)") }
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else { usage("\(flag) needs a value") }
        return v
    }
    while let arg = args.popFirst() {
        switch arg {
        case "--host": o.host = value(arg)
        case "--port":
            let v = value(arg)
            guard let p = UInt16(v) else { usage("--port \(v): use a number in 0...65535") }
            o.port = p
        case "--backend":
            let v = value(arg)
            do { o.backend = try BackendChoice(parsing: v) } catch { usage("--backend \(v): \(error)") }
        case "--loops":
            let v = value(arg)
            guard let n = Int(v), (1...256).contains(n) else { usage("--loops \(v): use a number in 1...256") }
            o.loops = n
        case "--root": o.root = value(arg)
        case "--handlers":
            switch value(arg) {
            case "inline": o.asyncHandlers = false
            case "async": o.asyncHandlers = true
            case let v: usage("--handlers \(v): use inline or async")
            }
        case "--access-log": o.accessLog = true
        case "--pin": o.pin = true
        case "--tls-cert": o.tlsCert = value(arg)
        case "--tls-key": o.tlsKey = value(arg)
        case "--tls-client-ca": o.tlsClientCA = value(arg)
        case "--tls-handshake":
            switch value(arg) {
            case "loop": o.handshakeOnPool = false
            case "pool": o.handshakeOnPool = true
            case let v: usage("--tls-handshake \(v): use loop or pool")
            }
        case "-h", "--help": usage("the Strata HTTP/1.1 demo server")
        default: usage("unknown argument \(arg)")
        }
    }
    if (o.tlsCert == nil) != (o.tlsKey == nil) {
        usage("--tls-cert and --tls-key go together: give the certificate chain (PEM, leaf first) and its private key")
    }
    if o.tlsClientCA != nil && o.tlsCert == nil {
        usage("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is a TLS server option)")
    }
    return o
}

TerminationSignals.block()
let options = parseOptions()
let metrics = PrometheusMetrics()
MetricsSystem.bootstrap(metrics)
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "strata-serve")

let staticFiles: StaticFiles?
if let root = options.root {
    do { staticFiles = try StaticFiles(root: root) } catch {
        usage("--root \(root): \(error)")
    }
} else {
    staticFiles = nil
}

var routes = HTTPRoutes()
let hello: HTTPResponse = HTTPResponse(contentType: "text/plain", body: .staticText("Hello, World!"))
let json: HTTPResponse = HTTPResponse(contentType: "application/json", body: .staticText(#"{"message":"Hello, World!"}"#))
if options.asyncHandlers {
    routes.add(.get, "/", .async { _ in hello })
    routes.add(.get, "/json", .async { _ in json })
} else {
    routes.get("/") { _ in hello }
    routes.get("/json") { _ in json }
}
routes.get("/healthz") { _ in HTTPResponse(contentType: "text/plain", body: .staticText("ok\n")) }
routes.get("/metrics") { _ in
    HTTPResponse(contentType: "text/plain; version=0.0.4", body: .bytes(Array(metrics.render().utf8)))
}
let echo = HTTPHandler.streaming { request, body in
    let length: Int? = if case .contentLength(let n) = request.head.framing { n } else { nil }
    var fields = HTTPFields()
    if let type = request.header("Content-Type") { fields.append("Content-Type", type) }
    return HTTPResponse(fields: fields, body: .stream(length: length) { writer in
        for try await chunk in body { try await writer.write(chunk) }
    })
}
routes.add(.post, "/echo", echo)
routes.add(.put, "/echo", echo)
routes.add(.get, "/static/*path", .inline { request in
    guard let files = staticFiles else {
        return HTTPResponse(status: .notFound, contentType: "text/plain", body: .staticText("no --root given\n"))
    }
    return files.response(for: request)
})

var tls: TLSConfiguration?
if let cert = options.tlsCert, let key = options.tlsKey {
    do {
        tls = try TLSConfiguration.server(
            identity: .pemFiles(certificateChain: cert, privateKey: key),
            clientAuthentication: options.tlsClientCA.map { .required(trustRoots: .file($0)) } ?? .none,
            alpn: ["http/1.1"])
    } catch {
        warn("strata-serve: TLS: \(error)")
        exit(1)
    }
}
// Handshake CPU (about 2.5 ms per full handshake in mbedTLS 2.28, which cannot yield
// mid-step) runs on its own threads by default, at a lower scheduling weight than the
// loops, so a loop that wakes for a request preempts a handshake in progress: measured
// with 200 full handshakes/s behind 64 keep-alive connections, p99 latency grew 5.0× with
// handshakes on the loop and 2.2× on a pool (docs/benchmarks.md, TLS).
let handshakePool: ThreadPool?
if tls != nil && options.handshakeOnPool {
    do {
        let pool = try ThreadPool(workers: options.loops, queueCapacity: 65536, whenFull: .reject, name: "strata-tls-handshake")
        lowerPriority(of: pool, workers: options.loops)
        handshakePool = pool
    } catch {
        warn("strata-serve: --tls-handshake pool: \(error)")
        exit(1)
    }
} else {
    handshakePool = nil
}

/// Gives each of the pool's workers nice 10 (one job per worker: each waits until all have
/// started, so no worker takes two).
func lowerPriority(of pool: ThreadPool, workers: Int) {
    let started = LockedValue(0)
    let done = LockedValue(0)
    for _ in 0..<workers {
        Task {
            _ = try? await pool.run {
                #if os(Linux)
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(Thread.currentID.rawValue), 10)
                #endif
                started.withLock { $0 += 1 }
                while started.withLock({ $0 }) < workers { usleep(100) }
                done.withLock { $0 += 1 }
            }
        }
    }
    while done.withLock({ $0 }) < workers { usleep(100) }
}

let group: LoopGroup
do {
    group = try LoopGroup(loops: options.loops, name: "http", configuration: .init(backend: options.backend, log: { warn($0) }),
                          pinning: options.pin)
} catch {
    warn("strata-serve: \(error)")
    exit(1)
}
let server: HTTPServer
let bound: SocketAddress
do {
    server = try HTTPServer(routes: routes, group: group, logger: logger, accessLog: options.accessLog)
    let address = try SocketAddress(ipAddress: options.host, port: options.port)
    if let tls {
        bound = try server.listen(on: address) { tcp in
            try await TLSConnection.accept(tcp, configuration: tls, handshakeOn: handshakePool)
        }
    } else {
        bound = try server.listen(on: address)
    }
} catch {
    warn("strata-serve: \(error)")
    exit(1)
}
let first = group.loops[0]
print("strata-serve listening on \(tls == nil ? "http" : "https")://\(bound) — \(tls == nil ? "" : options.tlsClientCA == nil ? "TLS 1.2, " : "TLS 1.2 with client certificates, ")backend \(first.backendKind), \(options.loops) loop(s), \(options.asyncHandlers ? "async" : "inline") handlers")
fflush(nil)
let signal = TerminationSignals.wait()
warn("strata-serve: \(TerminationSignals.name(signal)): shutting down (10 s for requests in progress)")
let report = await server.shutdownGracefully(timeout: .seconds(10))
warn("strata-serve: \(report)")
group.stop()
exit(0)
