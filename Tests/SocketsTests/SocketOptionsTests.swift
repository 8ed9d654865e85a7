import StrataSockets
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Socket.Option")
struct SocketOptionsTests {
    @Test("boolean options round-trip on the sockets they apply to")
    func booleans() throws {
        let tcp = try Socket(family: .ipv4, kind: .stream)
        let udp = try Socket(family: .ipv4, kind: .datagram)
        let tcp6 = try Socket(family: .ipv6, kind: .stream)
        for value in [true, false, true] {
            try tcp.setOption(.reuseAddress, to: value)
            #expect(try tcp.option(.reuseAddress) == value)
            try tcp.setOption(.reusePort, to: value)
            #expect(try tcp.option(.reusePort) == value)
            try tcp.setOption(.keepAlive, to: value)
            #expect(try tcp.option(.keepAlive) == value)
            try tcp.setOption(.noDelay, to: value)
            #expect(try tcp.option(.noDelay) == value)
            try udp.setOption(.broadcast, to: value)
            #expect(try udp.option(.broadcast) == value)
            try tcp6.setOption(.v6Only, to: value)
            #expect(try tcp6.option(.v6Only) == value)
        }
    }

    @Test("buffer sizes: the kernel keeps at least what was asked (Linux doubles it)")
    func bufferSizes() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        for size in [16_384, 65_536] {
            try socket.setOption(.receiveBufferSize, to: size)
            let receive = try socket.option(.receiveBufferSize)
            try socket.setOption(.sendBufferSize, to: size)
            let send = try socket.option(.sendBufferSize)
            #if os(Linux)
            #expect(receive == 2 * size)
            #expect(send == 2 * size)
            #else
            #expect(receive >= size && send >= size)
            #endif
        }
    }

    @Test("linger: off, a duration in whole seconds, and zero")
    func linger() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        #expect(try socket.option(.linger) == nil)
        try socket.setOption(.linger, to: .seconds(5))
        #expect(try socket.option(.linger) == .seconds(5))
        try socket.setOption(.linger, to: .milliseconds(1500))
        #expect(try socket.option(.linger) == .seconds(2), "fractions round up")
        try socket.setOption(.linger, to: .zero)
        #expect(try socket.option(.linger) == .zero)
        try socket.setOption(.linger, to: nil)
        #expect(try socket.option(.linger) == nil)
    }

    @Test("keep-alive tuning: idle, interval and count")
    func keepAliveTuning() throws {
        let socket = try Socket(family: .ipv6, kind: .stream)
        try socket.setOption(.keepAlive, to: true)
        try socket.setOption(.keepAliveIdle, to: .seconds(30))
        #expect(try socket.option(.keepAliveIdle) == .seconds(30))
        try socket.setOption(.keepAliveInterval, to: .seconds(7))
        #expect(try socket.option(.keepAliveInterval) == .seconds(7))
        try socket.setOption(.keepAliveCount, to: 4)
        #expect(try socket.option(.keepAliveCount) == 4)
    }

    @Test("receive and send timeouts")
    func timeouts() throws {
        let socket = try Socket(family: .ipv4, kind: .datagram, blocking: true)
        #expect(try socket.option(.receiveTimeout) == nil)
        try socket.setOption(.receiveTimeout, to: .milliseconds(2500))
        #expect(try socket.option(.receiveTimeout) == .milliseconds(2500))
        try socket.setOption(.sendTimeout, to: .seconds(3))
        #expect(try socket.option(.sendTimeout) == .seconds(3))
        try socket.setOption(.sendTimeout, to: nil)
        #expect(try socket.option(.sendTimeout) == nil)

        // A blocking receive that times out reports it like would-block: nil.
        try socket.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try socket.setOption(.receiveTimeout, to: .milliseconds(50))
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try socket.receive(maximumCount: 16) == nil)
        #expect(clock.now - start >= .milliseconds(40))
    }

    @Test("options Strata does not name, and their errors")
    func customOptions() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        let timeToLive = Socket.Option<Int>.integer(level: cInt(IPPROTO_IP), name: IP_TTL, description: "IP_TTL")
        try socket.setOption(timeToLive, to: 42)
        #expect(try socket.option(timeToLive) == 42)
        #expect(timeToLive.description == "IP_TTL")

        // v6Only does not apply to an IPv4 socket: an operating error with the option's name.
        do {
            try socket.setOption(.v6Only, to: true)
            Issue.record("IPV6_V6ONLY on an IPv4 socket succeeded")
        } catch {
            #expect(error.cause.systemCall == "setsockopt")
            #expect(error.message.hasPrefix("setsockopt IPV6_V6ONLY: "))
            #expect(error.code == .unsupported || error.code == .invalidArgument)
        }
    }

    @Test("soError() is empty on a healthy socket")
    func soError() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        #expect(try socket.soError() == nil)
    }
}

/// An imported constant as a C int, for custom options in tests.
private func cInt<T: BinaryInteger>(_ value: T) -> CInt {
    CInt(value)
}
