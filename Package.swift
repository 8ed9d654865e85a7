// swift-tools-version: 6.0
//
// Strata: a low-level networking runtime toolkit. One package, one library
// product per module; modules compose bottom-up (see docs/ARCHITECTURE.md and
// the layering test in Tests/LayeringTests).
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StrataSockets", targets: ["StrataSockets"]),
        .library(name: "StrataThreads", targets: ["StrataThreads"]),
        .library(name: "StrataEvents", targets: ["StrataEvents"]),
        .library(name: "StrataSched", targets: ["StrataSched"]),
        .library(name: "StrataHTTP", targets: ["StrataHTTP"]),
        .library(name: "StrataTLS", targets: ["StrataTLS"]),
        .executable(name: "strata-echo", targets: ["strata-echo"]),
        .executable(name: "strata-resp", targets: ["strata-resp"]),
        .executable(name: "strata-serve", targets: ["strata-serve"]),
        .executable(name: "strata-fetch", targets: ["strata-fetch"]),
        .executable(name: "strata-abi", targets: ["strata-abi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
    ],
    targets: [
        // C shim: only what Swift cannot import, plus the generated
        // compile-time ABI assertions for the host target.
        .target(
            name: "CStrataSys",
            path: "Modules/CStrataSys",
            exclude: ["README.md", "VERSION", "CHANGELOG.md", "abi"],
            sources: ["shim.c"],
            linkerSettings: [.linkedLibrary("uring", .when(platforms: [.linux]))]
        ),
        .target(
            name: "StrataSockets",
            dependencies: ["CStrataSys"],
            path: "Modules/Sockets/Sources"
        ),
        .target(
            name: "StrataThreads",
            dependencies: ["CStrataSys"],
            path: "Modules/Threads/Sources"
        ),
        .target(
            name: "StrataEvents",
            dependencies: ["CStrataSys", "StrataSockets"],
            path: "Modules/Events/Sources"
        ),

        .target(
            name: "StrataSched",
            dependencies: ["CStrataSys", "StrataSockets", "StrataThreads", "StrataEvents"],
            path: "Modules/Sched/Sources"
        ),
        .target(
            name: "StrataHTTP",
            dependencies: [
                "CStrataSys", "StrataSockets", "StrataThreads", "StrataEvents", "StrataSched",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Modules/HTTP/Sources"
        ),
        // The system mbedTLS (Debian's libmbedtls-dev 2.28) with compile-time checks of its
        // version and of every config option StrataTLS relies on.
        .systemLibrary(
            name: "CStrataMbedTLS",
            path: "Modules/TLS/CStrataMbedTLS",
            providers: [.apt(["libmbedtls-dev"])]
        ),
        .target(
            name: "StrataTLS",
            dependencies: [
                "CStrataMbedTLS", "StrataSockets", "StrataThreads", "StrataEvents", "StrataSched",
            ],
            path: "Modules/TLS/Sources"
        ),

        // Examples: small executables, each with a README.
        .executableTarget(
            name: "strata-echo",
            dependencies: ["StrataEvents", "StrataSockets", "StrataThreads"],
            path: "Examples/strata-echo",
            exclude: ["README.md"]
        ),

        // strata-resp's protocol core (RESP2 codec and in-memory store), sans-I/O.
        .target(
            name: "RESPKit",
            path: "Examples/strata-resp/RESPKit"
        ),

        .executableTarget(
            name: "strata-serve",
            dependencies: [
                "StrataHTTP", "StrataTLS", "StrataSched", "StrataEvents", "StrataSockets", "StrataThreads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Examples/strata-serve",
            exclude: ["README.md"]
        ),
        // strata-fetch: an HTTP/1.1 client (curl's flags) over StrataTLS; always verifies.
        .executableTarget(
            name: "strata-fetch",
            dependencies: ["StrataTLS", "StrataSched", "StrataEvents", "StrataSockets"],
            path: "Examples/strata-fetch",
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "strata-resp",
            dependencies: ["RESPKit", "StrataSched", "StrataEvents", "StrataSockets", "StrataThreads"],
            path: "Examples/strata-resp/Server"
        ),

        // The ABI catalogue, table model, ELF reader and renderers shared by
        // the `strata-abi` CLI and the ABI tests. Internal: no API promise.
        .target(
            name: "_StrataABIKit",
            dependencies: ["CStrataSys"],
            path: "Tools/strata-abi/Sources/ABIKit"
        ),
        .executableTarget(
            name: "strata-abi",
            dependencies: [
                "_StrataABIKit",
                "CStrataSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/strata-abi/Sources/CLI"
        ),

        .testTarget(
            name: "StrataABITests",
            dependencies: ["_StrataABIKit", "CStrataSys", "StrataSockets"],
            path: "Tests/ABITests"
        ),
        .testTarget(
            name: "StrataSocketsTests",
            dependencies: ["StrataSockets", "CStrataSys", "strata-test-peer"],
            path: "Tests/SocketsTests"
        ),
        // A child process for tests that must change process-wide state (RLIMIT_NOFILE
        // for EMFILE) without disturbing tests running in parallel in the test process.
        .executableTarget(
            name: "strata-test-peer",
            dependencies: ["StrataSockets"],
            path: "Tests/TestPeer"
        ),
        .testTarget(
            name: "StrataThreadsTests",
            dependencies: ["StrataThreads"],
            path: "Tests/ThreadsTests"
        ),
        .testTarget(
            name: "StrataEventsTests",
            dependencies: ["StrataEvents", "StrataSockets", "StrataThreads", "CStrataSys"],
            path: "Tests/EventsTests"
        ),
        .testTarget(
            name: "StrataSchedTests",
            dependencies: ["StrataSched", "StrataEvents", "StrataSockets", "StrataThreads"],
            path: "Tests/SchedTests"
        ),
        .testTarget(
            name: "StrataHTTPTests",
            dependencies: [
                "StrataHTTP", "StrataSched", "StrataEvents", "StrataSockets",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Tests/HTTPTests",
            exclude: ["Corpus"]
        ),
        .testTarget(
            name: "StrataRESPTests",
            dependencies: ["RESPKit"],
            path: "Tests/RESPTests"
        ),
        // Interop: the example servers as child processes, driven by real clients.
        .testTarget(
            name: "StrataInteropTests",
            dependencies: ["StrataSockets", "StrataThreads", "strata-echo", "strata-resp", "strata-serve", "strata-fetch"],
            path: "Tests/InteropTests",
            exclude: ["python"]
        ),
        .testTarget(
            name: "StrataTLSTests",
            dependencies: ["StrataTLS", "CStrataMbedTLS", "StrataSched", "StrataEvents", "StrataSockets", "StrataThreads"],
            path: "Tests/TLSTests",
            exclude: ["pki"]
        ),
        .testTarget(
            name: "StrataLayeringTests",
            path: "Tests/LayeringTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
