// strata-echo (Examples/strata-echo) driven over real TCP on every Linux backend.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import StrataSockets
import Testing

/// `count` bytes of a seeded pattern (cheap to build even in debug builds).
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var x = UInt32(truncatingIfNeeded: seed) | 1
        for i in 0..<count {
            x = x &* 1_664_525 &+ 1_013_904_223
            buffer[i] = UInt8(truncatingIfNeeded: x >> 24)
        }
        initialized = count
    }
}

@Suite("strata-echo", .serialized)
struct EchoServerTests {
    /// A blocking client connected to the server.
    static func connect(_ server: ServerProcess) throws -> Socket {
        let socket = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try socket.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: server.port), timeout: .seconds(5))
        return socket
    }

    /// Reads exactly `count` bytes (or fails the test at EOF).
    static func readExactly(_ socket: borrowing Socket, _ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let want = min(buffer.count, count - result.count)
            let n = try buffer.withUnsafeMutableBytes { try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want])) } ?? 0
            guard n > 0 else {
                Issue.record("end of stream after \(result.count) of \(count) bytes")
                return result
            }
            result.append(contentsOf: buffer[..<n])
        }
        return result
    }

    @Test("round trips of 1 byte to 1 MiB, then a clean end of stream", arguments: linuxBackends)
    func roundTrips(backend: String) throws {
        let server = try ServerProcess("strata-echo", ["--port", "0", "--backend", backend])
        let client = try Self.connect(server)
        for size in [1, 64, 4096, 65536, 1 << 20] {
            let message = pattern(size, seed: size)
            // Write on a second thread while this one reads: the echo cannot run far ahead of
            // a peer that does not read (that is the backpressure test below).
            let fd = client.descriptor
            let writer = Thread {
                message.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                        if n <= 0 { return }
                        offset += n
                    }
                }
            }
            writer.start()
            let echoed = try Self.readExactly(client, size)
            #expect(echoed.count == size && echoed.elementsEqual(message), "size \(size): the echo differs")
        }
        try client.shutdown(.write)
        #expect(try client.receive(maximumCount: 16) == [], "the server closes after echoing everything")
    }

    @Test("a peer that never reads pauses the server's receiving (bounded memory), and nothing is lost",
          arguments: linuxBackends)
    func backpressure(backend: String) throws {
        let server = try ServerProcess("strata-echo", ["--port", "0", "--backend", backend])
        let client = try Self.connect(server)
        try client.setOption(.receiveBufferSize, to: 64 * 1024)
        try client.setBlocking(false)
        let chunk = (0..<65536).map { UInt8(truncatingIfNeeded: $0 % 251) }
        var sent = 0
        var stalled = 0
        // Write without reading until writes stall for 300 ms: the server must stop reading.
        while sent < 256 << 20 && stalled < 30 {
            let offset = sent % chunk.count  // the stream is byte i = (i mod 65536) mod 251
            if let n = try chunk.withUnsafeBytes({ try client.send(UnsafeRawBufferPointer(rebasing: $0[offset...])) }), n > 0 {
                sent += n
                stalled = 0
            } else {
                stalled += 1
                usleep(10_000)
            }
        }
        #expect(stalled >= 30, "the server kept reading \(sent) bytes from a peer that never reads")
        #expect(sent < 64 << 20, "\(sent) bytes accepted before the server paused (limit 1 MiB + socket buffers)")
        if let rss = server.residentKiB { #expect(rss < 200 * 1024, "server RSS \(rss) KiB") }
        // Now read everything back, in order, while writing nothing more.
        try client.setBlocking(true)
        var received = 0
        var mismatch = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received < sent {
            let n = try buffer.withUnsafeMutableBytes { try client.receive(into: $0) } ?? 0
            guard n > 0 else { break }
            for i in 0..<n where buffer[i] != UInt8(truncatingIfNeeded: (received + i) % 65536 % 251) { mismatch = true }
            received += n
        }
        #expect(received == sent)
        #expect(!mismatch, "echoed bytes differ from what was sent")
    }
}
