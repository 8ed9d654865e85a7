// StrataSockets micro benchmarks (issue #2): parsing and printing socket addresses, IPv4 and IPv6.
// The parsers work on the string's UTF-8 bytes in place and should not allocate; printing
// allocates at most the resulting String (none for text of 15 bytes or less, which Swift keeps
// inline). Numbers from one run on the project machine are in docs/sockets.md §4.
//
// Run: cd Benchmarks && swift package --scratch-path ../.build-bench benchmark --target SocketsBenchmarks

import Benchmark
import StrataSockets

/// Inputs the optimizer cannot see through: a handful of realistic addresses of each family.
let ipv4Texts = ["127.0.0.1:8080", "192.0.2.1:443", "10.20.30.40:65535", "255.255.255.255:1", "0.0.0.0:0"]
let ipv6Texts = ["[::1]:8080", "[2001:db8::1]:443", "[fe80::1%2]:80", "[2001:db8:85a3:8d3:1319:8a2e:370:7348]:443",
                 "[::ffff:192.0.2.1]:80"]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100
    )

    Benchmark("SocketAddress parse IPv4") { benchmark in
        let texts = ipv4Texts
        for iteration in benchmark.scaledIterations {
            blackHole(try SocketAddress(parsing: texts[iteration % texts.count]))
        }
    }

    Benchmark("SocketAddress parse IPv6") { benchmark in
        let texts = ipv6Texts
        for iteration in benchmark.scaledIterations {
            blackHole(try SocketAddress(parsing: texts[iteration % texts.count]))
        }
    }

    Benchmark("SocketAddress format IPv4") { benchmark in
        let addresses = try ipv4Texts.map { try SocketAddress(parsing: $0) }
        for iteration in benchmark.scaledIterations {
            blackHole(addresses[iteration % addresses.count].description)
        }
    }

    Benchmark("SocketAddress format IPv6") { benchmark in
        let addresses = try ipv6Texts.map { try SocketAddress(parsing: $0) }
        for iteration in benchmark.scaledIterations {
            blackHole(addresses[iteration % addresses.count].description)
        }
    }

    Benchmark("IPv4Address format (no port)") { benchmark in
        let addresses = (0..<64).map { IPv4Address(rawValue: UInt32($0) &* 0x0101_0101 &+ 0x0a00_0001) }
        for iteration in benchmark.scaledIterations {
            blackHole(addresses[iteration % addresses.count].description)
        }
    }

    Benchmark("IPv6Address parse (no brackets)") { benchmark in
        let texts = ["::1", "2001:db8::1", "fe80::1:2:3:4", "2001:db8:85a3:8d3:1319:8a2e:370:7348", "::ffff:192.0.2.1"]
        for iteration in benchmark.scaledIterations {
            blackHole(try IPv6Address(parsing: texts[iteration % texts.count]))
        }
    }
}
