// StrataHTTP micro benchmarks (issues 6 and 7): the request parser on the two requests the
// HTTP benchmark cares about, in ns per request and allocations per request.
//
// Each iteration parses one request from a buffer that already holds it (as the server does
// after a read), to `.end`, then resets for the next: the server's inline path minus the
// socket. The parser must not allocate in steady state (issue 7's target: zero allocations
// per request on the inline path), so `mallocCountTotal` should read 0 per iteration.
//
// Run: cd Benchmarks && swift package --scratch-path ../.build-bench benchmark --target HTTPBenchmarks

import Benchmark
import StrataHTTP

/// The request wrk sends (40 bytes with this Host).
let wrkRequest = Array("GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".utf8)

/// A typical browser navigation request (about 300 bytes of fields).
let browserRequest = Array((
    "GET /docs/index.html?lang=en HTTP/1.1\r\n"
    + "Host: www.example.com\r\n"
    + "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    + "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    + "Accept-Language: en-US,en;q=0.5\r\n"
    + "Accept-Encoding: gzip, deflate, br\r\n"
    + "Connection: keep-alive\r\n"
    + "Upgrade-Insecure-Requests: 1\r\n"
    + "\r\n").utf8)

/// Parses `request` (head, then its empty body's end) and discards it: one server request.
@inline(__always)
func parseOne(_ parser: inout HTTPRequestParser, _ bytes: UnsafeRawBufferPointer) -> Int {
    var fields = 0
    while true {
        let event: HTTPParseEvent
        do { event = try parser.parse(bytes) } catch { fatalError("benchmark request rejected: \(error)") }
        switch event {
        case .head(let head): fields = head.fields.count
        case .end:
            let consumed = parser.consumed
            parser.discard(consumed)
            return fields
        case .body: continue
        case .needMore: fatalError("benchmark request incomplete")
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )

    for (name, request) in [("wrk request (40 B)", wrkRequest), ("browser request (\(browserRequest.count) B)", browserRequest)] {
        Benchmark("HTTPRequestParser: \(name)") { benchmark in
            var parser = HTTPRequestParser()
            request.withUnsafeBytes { bytes in
                _ = parseOne(&parser, bytes)  // warm-up: field storage reaches its size
                parser.reset()
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(parseOne(&parser, bytes))
                    parser.reset()
                }
            }
        }
    }
}
