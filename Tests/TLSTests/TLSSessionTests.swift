#if canImport(Glibc)
import Glibc
#endif
import CStrataMbedTLS
import Testing

@testable import StrataTLS

/// The sans-I/O session, driven in memory: handshake, data both ways, close_notify,
/// truncation, sticky errors, resumption, ALPN, SNI and mutual TLS.
@Suite struct TLSSessionTests {
    static func server(_ name: String = "server", alpn: [String] = [], sni: [String] = [],
                       clientAuth: Bool = false, options: TLSOptions = TLSOptions()) throws -> TLSConfiguration {
        let pki = try TestPKI.shared
        return try TLSConfiguration.server(
            identity: .pemFiles(certificateChain: try pki.path("\(name).pem"), privateKey: try pki.path("\(name).key")),
            sniIdentities: try sni.map { .pemFiles(certificateChain: try pki.path("\($0).pem"), privateKey: try pki.path("\($0).key")) },
            clientAuthentication: clientAuth ? .required(trustRoots: .file(try pki.path("client-ca.pem"))) : .none,
            alpn: alpn, options: options)
    }

    static func client(alpn: [String] = [], identity: String? = nil, roots: String = "root.pem") throws -> TLSConfiguration {
        let pki = try TestPKI.shared
        return try TLSConfiguration.client(
            trustRoots: .file(try pki.path(roots)),
            identity: try identity.map { .pemFiles(certificateChain: try pki.path("\($0).pem"), privateKey: try pki.path("\($0).key")) },
            alpn: alpn)
    }

    @Test func handshakeDataBothWaysAndCloseNotify() throws {
        let serverConfig = try Self.server(alpn: ["h2", "http/1.1"])
        let clientConfig = try Self.client(alpn: ["http/1.1"])
        var server = try TLSSession(server: serverConfig)
        var client = try TLSSession(client: clientConfig, serverName: "localhost")
        let outcome = runHandshake(client: &client, server: &server)
        #expect(outcome.completed, "\(String(describing: outcome.client)) / \(String(describing: outcome.server))")
        let complete = client.isHandshakeComplete && server.isHandshakeComplete
        let (calpn, salpn) = (client.negotiatedALPN, server.negotiatedALPN)
        let (version, suite, sni, peer) = (client.protocolVersion, client.cipherSuite, server.requestedServerName, client.peerCertificateSubject)
        #expect(complete)
        #expect(calpn == "http/1.1")
        #expect(salpn == "http/1.1")
        #expect(version == "TLSv1.2")
        #expect(suite == "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
        #expect(sni == "localhost")
        #expect(peer != nil)

        let request = Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        #expect(try send(request, from: &client, to: &server) == request)
        // 1 MiB in 64 KiB-bounded slices: every byte exactly once, in order.
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try send(big, from: &server, to: &client) == big)

        try client.close()
        server.feed(client.takeOutput())
        #expect(try drain(&server).closed)
        #expect(throws: TLSError.self) { try server.write(UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    @Test func endOfStreamWithoutCloseNotifyIsTruncation() throws {
        var server = try TLSSession(server: try Self.server())
        var client = try TLSSession(client: try Self.client(), serverName: "localhost")
        #expect(runHandshake(client: &client, server: &server).completed)
        _ = try send(Array("partial".utf8), from: &server, to: &client)
        client.feedEndOfStream()
        let error = #expect(throws: TLSError.self) { _ = try drain(&client) }
        #expect(error?.kind == .truncated)
        // Sticky: every later call fails the same way.
        let again = #expect(throws: TLSError.self) { _ = try drain(&client) }
        #expect(again == error)
        #expect(throws: TLSError.self) { _ = try client.write(UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    @Test func corruptedRecordIsFatalAndSticky() throws {
        var server = try TLSSession(server: try Self.server())
        var client = try TLSSession(client: try Self.client(), serverName: "localhost")
        #expect(runHandshake(client: &client, server: &server).completed)
        let n = try Array("hello".utf8).withUnsafeBytes { try client.write($0) }
        #expect(n == 5)
        var record = client.takeOutput()
        record[record.count - 3] ^= 0x40  // inside the GCM tag
        server.feed(record)
        let error = #expect(throws: TLSError.self) { _ = try drain(&server) }
        #expect(error?.kind == .protocolViolation)
        #expect(error?.code == MBEDTLS_ERR_SSL_INVALID_MAC)
        let alertQueued = server.hasOutput
        #expect(alertQueued, "a fatal alert is queued for the peer")
        #expect(throws: TLSError.self) { _ = try server.handshake() }
    }

    @Test func sessionResumptionWithTickets() throws {
        let serverConfig = try Self.server()
        let clientConfig = try Self.client()
        do {
            var server = try TLSSession(server: serverConfig)
            var client = try TLSSession(client: clientConfig, serverName: "localhost")
            #expect(runHandshake(client: &client, server: &server).completed)
            let resumed = client.isResumed || server.isResumed
            #expect(!resumed)
        }
        var server = try TLSSession(server: serverConfig)
        var client = try TLSSession(client: clientConfig, serverName: "localhost")
        #expect(runHandshake(client: &client, server: &server).completed)
        let (cr, sr) = (client.isResumed, server.isResumed)
        #expect(cr)
        #expect(sr)
        #expect(try send(Array("after resumption".utf8), from: &client, to: &server) == Array("after resumption".utf8))
    }

    /// The scheduling hint TLSConnection uses to keep cheap resumptions off the pool.
    @Test func clientHelloTicketPeek() throws {
        let serverConfig = try Self.server()
        let clientConfig = try Self.client()
        for expectTicket in [false, true] {
            var server = try TLSSession(server: serverConfig)
            var client = try TLSSession(client: clientConfig, serverName: "localhost")
            _ = try client.handshake()
            let hello = client.takeOutput()
            server.feed(Array(hello.prefix(hello.count - 1)))
            let partial = server.clientHelloPresentsTicket
            #expect(!partial, "half a ClientHello is no evidence")
            server.feed(Array(hello.suffix(1)))
            let whole = server.clientHelloPresentsTicket
            #expect(whole == expectTicket, "round with a cached session: \(expectTicket)")
            client.feed(server.takeOutput())
            #expect(runHandshake(client: &client, server: &server).completed)
            let resumed = server.isResumed
            #expect(resumed == expectTicket)
            let after = server.clientHelloPresentsTicket
            #expect(!after)
        }
        #expect(!ClientHelloPeek.presentsTicket(UnsafeBufferPointer(start: nil, count: 0)))
        let garbage: [UInt8] = [22, 3, 3, 0, 200, 1, 0, 0, 196] + [UInt8](repeating: 0xFF, count: 40)
        #expect(!garbage.withUnsafeBufferPointer { ClientHelloPeek.presentsTicket($0) })
    }

    @Test func sniSelectsTheCertificate() throws {
        let serverConfig = try Self.server(sni: ["server2"])
        let clientConfig = try Self.client()
        var server = try TLSSession(server: serverConfig)
        var client = try TLSSession(client: clientConfig, serverName: "other.strata.test")
        #expect(runHandshake(client: &client, server: &server).completed)
        let sni = server.requestedServerName
        #expect(sni == "other.strata.test")
        // The default identity for a name no SNI certificate covers.
        var server2 = try TLSSession(server: serverConfig)
        var client2 = try TLSSession(client: clientConfig, serverName: "strata.test")
        #expect(runHandshake(client: &client2, server: &server2).completed)
    }

    @Test func mutualTLS() throws {
        let serverConfig = try Self.server(clientAuth: true)
        do {
            var server = try TLSSession(server: serverConfig)
            var client = try TLSSession(client: try Self.client(identity: "client"), serverName: "localhost")
            #expect(runHandshake(client: &client, server: &server).completed)
            let subject = server.peerCertificateSubject
            #expect(subject != nil)
        }
        do {  // no certificate
            var server = try TLSSession(server: serverConfig)
            var client = try TLSSession(client: try Self.client(), serverName: "localhost")
            let outcome = runHandshake(client: &client, server: &server)
            #expect(outcome.server?.kind == .verification, "\(String(describing: outcome.server))")
            // The client is told why (handshake_failure), not just disconnected.
            #expect(outcome.client?.code == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, "\(String(describing: outcome.client))")
        }
        do {  // a certificate from a CA the server does not trust
            var server = try TLSSession(server: serverConfig)
            var client = try TLSSession(client: try Self.client(identity: "client-untrusted"), serverName: "localhost")
            let outcome = runHandshake(client: &client, server: &server)
            #expect(outcome.server?.kind == .verification)
            #expect(outcome.server?.reasons.contains { $0.contains("not trusted") } == true, "\(String(describing: outcome.server))")
        }
    }

    /// Pages of `length` bytes at `p` that are resident (mincore).
    static func residentPages(_ p: UnsafeMutableRawPointer, _ length: Int) -> Int {
        let pages = (length + RecordBuffers.pageSize - 1) / RecordBuffers.pageSize
        var vec = [UInt8](repeating: 0, count: pages)
        guard mincore(p, length, &vec) == 0 else { return -1 }
        return vec.filter { $0 & 1 != 0 }.count
    }

    @Test func hibernationReleasesRecordBuffersAndKeepsTheCounters() throws {
        var server = try TLSSession(server: try Self.server())
        var client = try TLSSession(client: try Self.client(), serverName: "localhost")
        #expect(runHandshake(client: &client, server: &server).completed)
        let inBuffer = UnsafeMutableRawPointer(client.ssl.pointee.in_buf!)
        let outBuffer = UnsafeMutableRawPointer(client.ssl.pointee.out_buf!)
        #expect(Int(bitPattern: inBuffer) % RecordBuffers.pageSize == 0)
        #expect(Self.residentPages(inBuffer, RecordBuffers.inLength) >= 1, "the handshake touched the receive buffer")
        // Between records: each side has read until it needed more input.
        _ = try drain(&client)
        _ = try drain(&server)
        for round in 0..<20 {
            let c = client.hibernate(), s = server.hibernate()
            #expect(c && s, "round \(round): \(String(describing: client.hibernationBlocker)) / \(String(describing: server.hibernationBlocker))")
            #expect(Self.residentPages(inBuffer, RecordBuffers.inLength) == 0)
            #expect(Self.residentPages(outBuffer, RecordBuffers.outLength) == 0)
            // Records after waking use the restored sequence numbers: a lost counter would
            // fail the peer's AEAD check (or replay protection) at once.
            let up = Array("request \(round)".utf8), down = [UInt8](repeating: UInt8(round), count: 20_000)
            #expect(try send(up, from: &client, to: &server) == up)
            #expect(try send(down, from: &server, to: &client) == down)
        }
        // Not between records: half a record buffered inside mbedTLS.
        let n = try Array("half".utf8).withUnsafeBytes { try client.write($0) }
        #expect(n == 4)
        let record = client.takeOutput()
        server.feed(Array(record.prefix(record.count / 2)))
        #expect(try drain(&server).bytes.isEmpty)
        let refused = server.hibernate()
        #expect(!refused, "a partly received record lives in the buffer")
        server.feed(Array(record.dropFirst(record.count / 2)))
        #expect(try drain(&server).bytes == Array("half".utf8))
    }

    @Test func clientNeedsANameToVerify() throws {
        let config = try Self.client()
        for bad in ["", " ", "a/b", "[]"] {
            #expect(throws: TLSError.self) { _ = try TLSSession(client: config, serverName: bad) }
        }
        #expect(throws: TLSError.self) { _ = try TLSSession(server: config) }
        #expect(throws: TLSError.self) { _ = try TLSSession(client: try Self.server(), serverName: "localhost") }
    }
}
