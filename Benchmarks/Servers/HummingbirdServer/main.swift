// hummingbird-server: the Hummingbird 2 comparison server for the HTTP benchmark
// (Benchmarks/scripts/bench-http.sh, docs/benchmarks.md "HTTP").
//
// Written the way Hummingbird's own PerformanceTest target and its TechEmpower
// entry (FrameworkBenchmarks, frameworks/Swift/hummingbird2) write it: a
// `Router` with one GET route returning a prebuilt "Hello, World!" response
// (`Content-Type: text/plain`; Hummingbird adds Content-Length, Date and
// Server), an `Application` on a shared MultiThreadedEventLoopGroup, run with
// `runService()`. The route is `/` (wrk asks for /); the loop thread count is a
// flag (default 1). Handlers are async, so they run on Swift concurrency's
// global executor: pinned to one CPU with taskset, all its threads share it.
//
//   hummingbird-server [--host ADDR] [--port N] [--threads N]
//
// Build: cd Benchmarks && swift build -c release --scratch-path ../.build-bench --product hummingbird-server

import Hummingbird
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func fail(_ message: String) -> Never {
    FileHandleWriter.error(message)
    exit(2)
}

enum FileHandleWriter {
    static func error(_ message: String) {
        let bytes = Array((message + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
    }
}

let usage = """
    usage: hummingbird-server [--host ADDR] [--port N] [--threads N]
      --host ADDR   address to bind (default 127.0.0.1)
      --port N      TCP port to listen on, 1-65535 (default 8080)
      --threads N   event loop threads, 1-1024 (default 1)
    """

var host = "127.0.0.1"
var port = 8080
var threads = 1
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--host":
        guard let v = arguments.popFirst() else { fail(usage) }
        host = v
    case "--port":
        guard let v = arguments.popFirst(), let p = Int(v), (1...65535).contains(p) else { fail(usage) }
        port = p
    case "--threads":
        guard let v = arguments.popFirst(), let t = Int(v), (1...1024).contains(t) else { fail(usage) }
        threads = t
    default:
        fail(usage)
    }
}

let elg = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let router = Router()
let helloWorld = ByteBuffer(string: "Hello, World!")
router.get("/") { _, _ in
    Response(
        status: .ok,
        headers: [.contentType: "text/plain"],
        body: .init(byteBuffer: helloWorld)
    )
}

var logger = Logger(label: "hummingbird-server")
logger.logLevel = .warning
let app = Application(
    router: router,
    configuration: .init(address: .hostname(host, port: port), serverName: "Hummingbird"),
    eventLoopGroupProvider: .shared(elg),
    logger: logger
)
try await app.runService()
