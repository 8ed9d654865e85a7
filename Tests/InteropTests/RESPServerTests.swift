// strata-resp (Examples/strata-resp) driven by raw RESP2 bytes and by redis-cli.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import StrataSockets
import Testing

@Suite("strata-resp", .serialized)
struct RESPServerTests {
    /// Sends `request` and reads until `expected.count` bytes arrived (or 2 s passed).
    static func exchange(_ fd: CInt, _ request: String, expecting expected: String) -> String {
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var got: [UInt8] = []
        let want = expected.utf8.count
        let deadline = Date().addingTimeInterval(2)
        while got.count < want && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) == 1 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            got += buffer[..<n]
        }
        return String(decoding: got, as: UTF8.self)
    }

    static func connect(_ server: ServerProcess) throws -> CInt {
        let s = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try s.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: server.port), timeout: .seconds(5))
        return s.takeDescriptor()
    }

    /// Whether the peer closed the connection (end of stream within 2 s).
    static func closedByPeer(_ fd: CInt) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 2000) == 1 else { return false }
        var b = [UInt8](repeating: 0, count: 64)
        return recv(fd, &b, 64, 0) <= 0
    }

    /// Request → exact reply bytes, per the RESP2 specification and Redis 7's texts.
    static let cases: [(String, String)] = [
        ("*1\r\n$4\r\nPING\r\n", "+PONG\r\n"),
        ("PING\r\n", "+PONG\r\n"),                                    // inline (redis-benchmark PING_INLINE)
        ("*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n", "$5\r\nhello\r\n"),
        ("*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n"), // binary-safe bulk
        ("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n"),
        ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$1\r\nv\r\n"),
        ("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", "$-1\r\n"),
        ("*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$2\r\n41\r\n", "+OK\r\n"),
        ("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":42\r\n"),
        ("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n", "-ERR value is not an integer or out of range\r\n"),
        ("*5\r\n$3\r\nSET\r\n$1\r\ne\r\n$1\r\nx\r\n$2\r\nEX\r\n$3\r\n100\r\n", "+OK\r\n"),
        ("*2\r\n$3\r\nTTL\r\n$1\r\ne\r\n", ":100\r\n"),
        ("*2\r\n$3\r\nTTL\r\n$1\r\nk\r\n", ":-1\r\n"),
        ("*2\r\n$3\r\nTTL\r\n$4\r\nnone\r\n", ":-2\r\n"),
        ("*5\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\nx\r\n$2\r\nPX\r\n$1\r\n0\r\n", "-ERR invalid expire time in 'set' command\r\n"),
        ("*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n50\r\n", ":1\r\n"),
        ("*3\r\n$6\r\nEXPIRE\r\n$4\r\nnone\r\n$2\r\n50\r\n", ":0\r\n"),
        ("*4\r\n$4\r\nMGET\r\n$1\r\nk\r\n$4\r\nnone\r\n$1\r\nn\r\n", "*3\r\n$1\r\nv\r\n$-1\r\n$2\r\n42\r\n"),
        ("*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", "+OK\r\n"),
        ("*4\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n", "-ERR wrong number of arguments for 'mset' command\r\n"),
        ("*4\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n$4\r\nnone\r\n", ":2\r\n"),
        ("*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'get' command\r\n"),
        ("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n"),
        ("set \"quoted key\" 'single quoted'\r\nget \"quoted key\"\r\n", "+OK\r\n$13\r\nsingle quoted\r\n"),
    ]

    @Test("every command's reply, byte for byte; pipelined and split requests", arguments: linuxBackends)
    func repliesByteForByte(backend: String) throws {
        let server = try ServerProcess("strata-resp", ["--port", "0", "--backend", backend])
        let fd = try Self.connect(server)
        defer { close(fd) }
        for (request, reply) in Self.cases {
            #expect(Self.exchange(fd, request, expecting: reply) == reply, "\(request.debugDescription)")
        }
        // Pipelined: all replies, in order, in one exchange.
        let pipeline = Self.cases.prefix(9).map(\.0).joined()
        let expected = "+PONG\r\n+PONG\r\n$5\r\nhello\r\n$4\r\na\r\nb\r\n+OK\r\n$1\r\nv\r\n$-1\r\n+OK\r\n:42\r\n"
        #expect(Self.exchange(fd, pipeline, expecting: expected) == expected)
        // A request split byte by byte still parses as one.
        let request = "*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$3\r\nyes\r\n"
        for (i, byte) in request.utf8.enumerated() {
            _ = [byte].withUnsafeBytes { send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
            if i % 7 == 0 { usleep(1000) }
        }
        #expect(Self.exchange(fd, "*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n", expecting: "+OK\r\n$3\r\nyes\r\n") == "+OK\r\n$3\r\nyes\r\n")
    }

    @Test("malformed RESP gets an error reply and a close; the server keeps serving others", arguments: linuxBackends)
    func malformed(backend: String) throws {
        let server = try ServerProcess("strata-resp", ["--port", "0", "--backend", backend])
        let bad: [(String, String)] = [
            ("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
            ("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"),
            ("*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
            ("set \"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"),
            ("*1\r\n$999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        ]
        for (request, reply) in bad {
            let fd = try Self.connect(server)
            #expect(Self.exchange(fd, request + "*1\r\n$4\r\nPING\r\n", expecting: reply) == reply, "\(request.debugDescription)")
            #expect(Self.closedByPeer(fd), "no close after \(request.debugDescription)")
            close(fd)
        }
        let fd = try Self.connect(server)
        defer { close(fd) }
        #expect(Self.exchange(fd, "PING\r\n", expecting: "+PONG\r\n") == "+PONG\r\n")
    }

    @Test("redis-cli talks to it (interop with the reference client)")
    func redisCLI() throws {
        let cli = "/usr/bin/redis-cli"
        try #require(FileManager.default.isExecutableFile(atPath: cli), "redis-cli missing: make test installs redis-tools")
        let server = try ServerProcess("strata-resp", ["--port", "0"])
        func run(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cli)
            p.arguments = ["-p", String(server.port)] + args
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(try run(["PING"]) == "PONG\n")
        #expect(try run(["SET", "greeting", "hello world"]) == "OK\n")
        #expect(try run(["GET", "greeting"]) == "hello world\n")
        #expect(try run(["INCR", "counter"]) == "1\n")
        #expect(try run(["MGET", "greeting", "nothing", "counter"]) == "hello world\n\n1\n")
        #expect(try run(["DEL", "greeting", "counter"]) == "2\n")
    }
}
