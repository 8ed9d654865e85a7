// swift-tools-version: 6.1
//
// Strata's benchmarks: their own package, so SwiftNIO, Hummingbird and
// ordo-one/benchmark never reach the main package (DESIGN §1, §8).
// Run: `make bench-micro` (or `cd Benchmarks && swift package benchmark`).
import PackageDescription

let package = Package(
    name: "StrataBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
    ],
    targets: [
        .executableTarget(
            name: "SocketsBenchmarks",
            dependencies: [
                .product(name: "StrataSockets", package: "Strata"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SocketsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ThreadsBenchmarks",
            dependencies: [
                .product(name: "StrataThreads", package: "Strata"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Benchmarks/ThreadsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "EventsBenchmarks",
            dependencies: [
                .product(name: "StrataEvents", package: "Strata"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/EventsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // HTTP parser micro benchmarks (issues 6 and 7): ns and allocations per request.
        .executableTarget(
            name: "HTTPBenchmarks",
            dependencies: [
                .product(name: "StrataHTTP", package: "Strata"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HTTPBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The SwiftNIO echo server the echo benchmark compares against
        // (Benchmarks/scripts/bench-echo.sh; docs/benchmarks.md "Echo (Events)").
        .executableTarget(
            name: "nio-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Servers/NIOEchoServer"
        ),
        // The HTTP comparison servers (Benchmarks/scripts/bench-http.sh; docs/benchmarks.md "HTTP").
        .executableTarget(
            name: "nio-http-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Servers/NIOHTTPServer"
        ),
        .executableTarget(
            name: "hummingbird-server",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Servers/HummingbirdServer"
        ),
        // The HTTPS comparison server (Benchmarks/scripts/bench-tls.sh; docs/benchmarks.md "TLS").
        .executableTarget(
            name: "nio-ssl-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Servers/NIOSSLServer"
        ),
    ],
    swiftLanguageModes: [.v6]
)
