#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataTLS
import Testing

/// The callback adapter for Events users: a server and a client stream over a socket pair
/// on one EventLoop, driven by the test's own completion loop, on every Linux backend.
@Suite struct TLSEventsStreamTests {
    static let backends: [BackendKind] = {
        #if os(Linux)
        return [.ioUring, .epoll]
        #else
        return [.kqueue]
        #endif
    }()

    static func socketPair() throws -> (CInt, CInt) {
        var fds: [CInt] = [-1, -1]
        #if os(Linux)
        let kind = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        #else
        let kind = SOCK_STREAM
        #endif
        try #require(socketpair(AF_UNIX, kind, 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    @Test(arguments: backends)
    func echoHandshakeAndCloseNotify(kind: BackendKind) throws {
        let loop = try EventLoop(configuration: .init(backend: .exactly(kind)))
        let (a, b) = try Self.socketPair()
        defer { close(a); close(b) }
        var serverEvents: [String] = []
        var clientReceived: [UInt8] = []
        var clientEvents: [String] = []
        let message = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }

        var server: TLSEventsStream!
        server = TLSEventsStream(session: try TLSSession(server: try TLSSessionTests.server()), descriptor: a, loop: loop,
                                 tokens: .init(receive: 1, send: 2, timer: 3)) { event in
            switch event {
            case .handshakeComplete: serverEvents.append("handshake")
            case .plaintext(let bytes): server.write(Array(bytes))  // echo
            case .closed: serverEvents.append("closed")
            case .failed(let e): serverEvents.append("failed: \(e)")
            }
        }
        var client: TLSEventsStream!
        client = TLSEventsStream(session: try TLSSession(client: try TLSSessionTests.client(), serverName: "localhost"),
                                 descriptor: b, loop: loop, tokens: .init(receive: 11, send: 12, timer: 13)) { event in
            switch event {
            case .handshakeComplete:
                clientEvents.append("handshake")
                client.write(message)
            case .plaintext(let bytes):
                clientReceived += bytes
                if clientReceived.count == message.count { client.close() }
            case .closed: clientEvents.append("closed")
            case .failed(let e): clientEvents.append("failed: \(e)")
            }
        }
        // Each stream's callback refers to the stream: break the cycle at the end.
        defer {
            server = nil
            client = nil
        }
        server.start()
        client.start()
        let deadline = MonotonicInstant.now.advanced(by: .seconds(10))
        while !(serverEvents.contains("closed") && clientEvents.contains("closed")) && MonotonicInstant.now < deadline
            && !serverEvents.contains(where: { $0.hasPrefix("failed") }) && !clientEvents.contains(where: { $0.hasPrefix("failed") }) {
            _ = try loop.runOnce(timeout: .milliseconds(100)) { c in
                if !server.handle(c) && !client.handle(c) { Issue.record("stray completion \(c)") }
            }
        }
        #expect(clientReceived == message)
        #expect(serverEvents == ["handshake", "closed"], "\(serverEvents)")
        #expect(clientEvents == ["handshake", "closed"], "\(clientEvents)")
    }

    @Test(arguments: backends)
    func stalledPeerFailsAtTheHandshakeTimeout(kind: BackendKind) throws {
        let loop = try EventLoop(configuration: .init(backend: .exactly(kind)))
        let (a, b) = try Self.socketPair()
        defer { close(a); close(b) }
        var options = TLSOptions()
        options.handshakeTimeout = .milliseconds(200)
        let pki = try TestPKI.shared
        let config = try TLSConfiguration.server(
            identity: .pemFiles(certificateChain: try pki.path("server.pem"), privateKey: try pki.path("server.key")), options: options)
        var failure: (any Error)?
        let server = TLSEventsStream(session: try TLSSession(server: config), descriptor: a, loop: loop,
                                     tokens: .init(receive: 1, send: 2, timer: 3)) { event in
            if case .failed(let e) = event { failure = e }
        }
        let started = MonotonicInstant.now
        server.start()
        while failure == nil && started.duration(to: .now) < .seconds(5) {
            _ = try loop.runOnce(timeout: .milliseconds(50)) { c in _ = server.handle(c) }
        }
        let error = try #require(failure as? TLSError)
        #expect(error.kind == .handshakeTimeout)
        #expect(started.duration(to: .now) < .seconds(2))
        _ = b
    }
}
