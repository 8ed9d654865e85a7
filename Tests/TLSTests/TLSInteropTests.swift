#if canImport(Glibc)
import Glibc
#endif
import CStrataMbedTLS
import Foundation
import StrataEvents
import StrataSched
import StrataSockets
import StrataTLS
import Testing

/// StrataTLS against other TLS stacks, over loopback TCP.
///
/// As a server (``TLSTestServer``: TLSConnection.accept on a Sched loop, echoing or answering
/// one HTTP request) it is driven by `openssl s_client`, `curl`, `gnutls-cli` and Python's
/// `ssl`; as a client (TLSConnection.connect) it talks to `openssl s_server` (presenting every
/// bad certificate of the test PKI) and Python `ssl` servers. (`gnutls-serv` is not used: it
/// cannot be bound to loopback, it always listens on every interface.)
///
/// Every refusal is asserted on the side that must refuse: when the server must refuse, its
/// `accept` must throw the expected ``TLSError`` (so a peer that refuses on its own, e.g.
/// OpenSSL's security level, cannot make the test pass).
///
/// The peers are Debian's programs (`make test` installs them through .ci/deps.sh); a
/// missing one fails the test with that instruction. Each child process has a deadline and
/// is killed in `defer`.
@Suite("TLS interop with openssl, curl, gnutls and Python")
struct TLSInteropTests {
    static func pki(_ file: String) throws -> String { try TestPKI.shared.path(file) }

    /// `openssl s_client` to a Strata server on `port`, verifying it as `localhost`.
    static func sClient(_ port: UInt16, _ extra: [String] = []) throws -> [String] {
        ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
         "-CAfile", try pki("root.pem"), "-verify_return_error", "-verify_hostname", "localhost"] + extra
    }

    static let httpBody = "hello from strata over TLS\n"

    // MARK: - StrataTLS as the server: openssl s_client

    @Test("openssl s_client: TLS 1.2 handshake, ECDHE-ECDSA-AES128-GCM, ALPN, no compression, close_notify both ways")
    func opensslClientHandshake() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(alpn: ["http/1.1"]), mode: .echo)
        defer { server.stop() }
        let r = try await PeerProcess.run(.openssl, try Self.sClient(server.port, ["-alpn", "h2,http/1.1", "-comp"]), input: "ping\n")
        #expect(r.succeeded, "\(r)")
        #expect(r.stdout.contains("Verify return code: 0 (ok)"), "\(r)")
        #expect(r.stdout.contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "\(r)")
        #expect(r.stdout.contains("Compression: NONE"), "\(r)")
        #expect(r.stdout.contains("ALPN protocol: http/1.1"), "\(r)")
        #expect(r.stdout.contains("Secure Renegotiation IS supported"), "RFC 5746 renegotiation_info is answered: \(r)")
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        let o = outcomes[0]
        #expect(o.established, "\(o)")
        #expect(o.serverName == "localhost")
        #expect(o.alpn == "http/1.1")
        #expect(o.cipherSuite == "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
        #expect(o.received == Array("ping\n".utf8), "\(o)")
        #expect(o.cleanEnd, "s_client's close_notify was not read as a clean end: \(o)")
    }

    /// TLS 1.0 and 1.1 ClientHellos are refused by the server with protocol_version. OpenSSL 3
    /// refuses to offer them at its default security level, hence `@SECLEVEL=0`: the refusal
    /// must be Strata's (asserted on the server's error code).
    @Test("openssl s_client -tls1 / -tls1_1: refused by the server (protocol_version)", arguments: ["-tls1", "-tls1_1"])
    func oldVersionsRefused(flag: String) async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let r = try await PeerProcess.run(.openssl, try Self.sClient(server.port, [flag, "-cipher", "DEFAULT:@SECLEVEL=0"]))
        #expect(!r.succeeded, "\(r)")
        #expect(r.output.contains("alert protocol version"), "the client did not see the server's protocol_version alert: \(r)")
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        let error = try #require(outcomes[0].tlsError, "\(flag) was accepted: \(outcomes[0])")
        #expect(error.kind == .handshake, "\(error)")
        #expect(error.code == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION, "\(error)")
    }

    /// SSLv3: this openssl binary has no `-ssl3` (OpenSSL 3 builds without it: "s_client:
    /// Unknown option: -ssl3"), so the ClientHello is written by hand: version 3.0, the two
    /// SSLv3-era AES suites, no extensions.
    @Test("a hand-written SSLv3 ClientHello is refused with a protocol_version alert")
    func sslv3Refused() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let missing = try await PeerProcess.run(.openssl, ["s_client", "-ssl3", "-connect", "127.0.0.1:\(server.port)"])
        #expect(missing.output.contains("Unknown option") || missing.output.contains("ssl3"), "documented: \(missing)")

        var body: [UInt8] = [0x03, 0x00]  // client_version SSL 3.0
        body += (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }  // random
        body += [0x00]  // session_id
        body += [0x00, 0x04, 0x00, 0x2F, 0x00, 0x35]  // RSA-AES128-CBC-SHA, RSA-AES256-CBC-SHA
        body += [0x01, 0x00]  // compression: null
        let handshake: [UInt8] = [0x01, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        let record: [UInt8] = [0x16, 0x03, 0x00, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake

        let loop = try startTestLoop(name: "tls-sslv3-client")
        defer { loop.stop() }
        let address = try SocketAddress(parsing: "127.0.0.1:\(server.port)")
        let reply = try await runOn(loop) { () -> [UInt8] in
            try await withTimeout(.seconds(5)) {
                let tcp = try await TCPConnection.connect(to: address, on: loop)
                try await tcp.write(record)
                var bytes: [UInt8] = []
                while true {
                    let chunk: [UInt8]
                    do { chunk = try await tcp.read() } catch { break }
                    if chunk.isEmpty { break }
                    bytes += chunk
                }
                await tcp.close()
                return bytes
            }
        }
        // One alert record: fatal (2), protocol_version (70).
        #expect(reply.count == 7 && reply[0] == 0x15 && reply[5] == 2 && reply[6] == 70, "reply: \(reply)")
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        #expect(outcomes[0].tlsError?.code == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION, "\(outcomes[0])")
    }

    /// Compression (CRIME): Debian's OpenSSL is built without zlib, so `s_client -comp` offers
    /// nothing and its "Compression: NONE" proves little. Here a real Strata ClientHello is
    /// edited to offer DEFLATE before null, and the server's ServerHello must choose null.
    @Test("a ClientHello offering DEFLATE gets the null compression method")
    func compressionRefused() async throws {
        var session = try TLSSession(client: try PKIConfig.client(), serverName: "localhost")
        _ = try session.handshake()
        var hello = session.takeOutput()
        // record(5) handshake header(4) client_version(2) random(32) session_id cipher_suites compression_methods
        var i = 5 + 4 + 2 + 32
        i += 1 + Int(hello[i])
        i += 2 + (Int(hello[i]) << 8 | Int(hello[i + 1]))
        try #require(hello[i] == 1 && hello[i + 1] == 0, "expected the null method alone at \(i)")
        hello[i] = 2
        hello.insert(1, at: i + 1)  // DEFLATE, then null
        let recordLength = (Int(hello[3]) << 8 | Int(hello[4])) + 1
        hello[3] = UInt8(recordLength >> 8)
        hello[4] = UInt8(recordLength & 0xFF)
        let handshakeLength = (Int(hello[6]) << 16 | Int(hello[7]) << 8 | Int(hello[8])) + 1
        hello[6] = UInt8(handshakeLength >> 16)
        hello[7] = UInt8((handshakeLength >> 8) & 0xFF)
        hello[8] = UInt8(handshakeLength & 0xFF)

        let offer = hello
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let loop = try startTestLoop(name: "tls-compression-client")
        defer { loop.stop() }
        let address = try SocketAddress(parsing: "127.0.0.1:\(server.port)")
        let reply = try await runOn(loop) { () -> [UInt8] in
            try await withTimeout(.seconds(5)) {
                let tcp = try await TCPConnection.connect(to: address, on: loop)
                try await tcp.write(offer)
                var bytes: [UInt8] = []
                // Enough for the ServerHello's compression byte (record 5 + header 4 + 2 + 32 + 1 + 32 + 2 + 1).
                while bytes.count < 5 + 4 + 2 + 32 + 1 + 32 + 2 + 1 {
                    let chunk = try await tcp.read()
                    if chunk.isEmpty { break }
                    bytes += chunk
                }
                await tcp.close()
                return bytes
            }
        }
        try #require(reply.count > 44 && reply[0] == 0x16 && reply[5] == 0x02, "no ServerHello: \(reply.prefix(16))")
        var j = 5 + 4 + 2 + 32
        j += 1 + Int(reply[j])  // session_id
        try #require(j + 2 < reply.count)
        // The parse is on track: the suite is the server's first choice, ECDHE-ECDSA-AES128-GCM-SHA256 (0xC02B).
        #expect(reply[j] == 0xC0 && reply[j + 1] == 0x2B, "cipher suite bytes \(reply[j]) \(reply[j + 1])")
        j += 2
        #expect(reply[j] == 0, "the server chose compression method \(reply[j])")
    }

    /// (server identity, s_client -cipher, accepted?) — only ECDHE with an AEAD cipher is
    /// accepted; the accepted rows show that the refusals are about the suite, not the key.
    static let suiteCases: [(String, String, Bool)] = [
        ("rsa-server", "AES128-GCM-SHA256", false),  // static RSA key exchange: no forward secrecy
        ("rsa-server", "AES256-SHA256", false),  // static RSA, CBC
        ("rsa-server", "DHE-RSA-AES128-GCM-SHA256", false),  // finite-field DHE
        ("rsa-server", "ECDHE-RSA-AES128-SHA", false),  // CBC (not AEAD)
        ("server", "ECDHE-ECDSA-AES128-SHA256", false),  // CBC (not AEAD)
        ("server", "ECDHE-ECDSA-AES128-SHA", false),  // CBC with SHA-1 MAC
        ("rsa-server", "ECDHE-RSA-AES128-GCM-SHA256", true),
        ("rsa-server", "ECDHE-RSA-CHACHA20-POLY1305", true),
        ("server", "ECDHE-ECDSA-AES256-GCM-SHA384", true),
        ("server", "ECDHE-ECDSA-CHACHA20-POLY1305", true),
    ]

    @Test("cipher suites: static RSA, DHE and CBC suites are refused; ECDHE + AEAD accepted", arguments: suiteCases.indices)
    func cipherSuites(index: Int) async throws {
        let (identity, suite, accepted) = Self.suiteCases[index]
        let server = try TLSTestServer.start(try PKIConfig.server(identity), mode: .echo)
        defer { server.stop() }
        let r = try await PeerProcess.run(.openssl, try Self.sClient(server.port, ["-tls1_2", "-cipher", "\(suite):@SECLEVEL=0"]))
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1, "\(r)")
        if accepted {
            #expect(r.succeeded, "\(r)")
            #expect(r.stdout.contains("Cipher is \(suite)"), "\(r)")
            #expect(outcomes[0].established, "\(outcomes[0])")
        } else {
            #expect(!r.succeeded, "\(suite) was accepted: \(r)")
            #expect(r.output.contains("alert handshake failure"), "\(r)")
            let error = try #require(outcomes[0].tlsError, "\(suite) was accepted: \(outcomes[0])")
            #expect(error.kind == .handshake, "\(error)")
            #expect(error.code == MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN || error.code == MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE, "\(error)")
        }
    }

    /// s_client's interactive `R` asks for a renegotiation. Strata's server has it disabled:
    /// mbedTLS answers the ClientHello with a warning no_renegotiation alert and no
    /// ServerHello; OpenSSL's client treats that alert as fatal ("no renegotiation"), so the
    /// connection ends, and no second handshake ever happens.
    @Test("renegotiation (s_client `R`) is refused: no second handshake")
    func renegotiationRefused() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let client = try PeerProcess(.openssl, try Self.sClient(server.port, ["-tls1_2"]), stdin: true)
        defer { client.kill() }
        #expect(await client.waitForOutput("Verify return code: 0 (ok)"), "no handshake: \(client.stdout) \(client.stderr)")
        client.send("before\n")
        #expect(await eventually { server.outcomes.isEmpty && client.stdout.contains("before") }, "no echo before the renegotiation")
        client.send("R\n")
        let exited = await eventually(timeout: .seconds(5)) { !client.isRunning }
        if exited == false { client.send("after\n") }
        let r = await client.finish(timeout: .seconds(2))
        #expect(r.stderr.contains("RENEGOTIATING"), "s_client never tried: \(r)")
        #expect(r.output.contains("no renegotiation"), "the server did not refuse with no_renegotiation: \(r)")
        // A completed renegotiation would verify the chain (three "verify return:1" lines) again.
        #expect(r.output.occurrences(of: "verify return:1") == 3, "a second handshake ran: \(r)")
        #expect(!r.stdout.contains("after"), "data flowed after a renegotiation: \(r)")
        let outcomes = await server.waitForOutcomes(1)
        try #require(outcomes.count == 1)
        #expect(outcomes[0].established)
        #expect(outcomes[0].received == Array("before\n".utf8), "\(outcomes[0])")
        // The read ended on OpenSSL's fatal alert after the refusal, not on a clean end.
        #expect(!outcomes[0].cleanEnd && outcomes[0].readTLSError?.kind == .protocolViolation, "\(outcomes[0])")
    }

    @Test("session resumption: tickets (-sess_out/-sess_in) and session IDs (-reconnect -no_ticket)")
    func resumption() async throws {
        // Tickets only: the server keeps no session cache, so a resumption must be by ticket.
        var ticketsOnly = TLSOptions()
        ticketsOnly.sessionCacheSize = 0
        let ticketServer = try TLSTestServer.start(try PKIConfig.server(options: ticketsOnly), mode: .echo, name: "tls-tickets")
        defer { ticketServer.stop() }
        // Session IDs only: no tickets.
        var idsOnly = TLSOptions()
        idsOnly.sessionTickets = false
        let idServer = try TLSTestServer.start(try PKIConfig.server(options: idsOnly), mode: .echo, name: "tls-session-ids")
        defer { idServer.stop() }

        let scratch = try peerScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let session = scratch.appendingPathComponent("session.pem").path

        async let reconnect = PeerProcess.run(.openssl, try Self.sClient(idServer.port, ["-tls1_2", "-no_ticket", "-reconnect"]))
        let first = try await PeerProcess.run(.openssl, try Self.sClient(ticketServer.port, ["-tls1_2", "-sess_out", session]))
        #expect(first.succeeded, "\(first)")
        #expect(first.stdout.contains("New, TLSv1.2"), "\(first)")
        #expect(first.stdout.contains("TLS session ticket lifetime hint"), "no ticket issued: \(first)")
        let second = try await PeerProcess.run(.openssl, try Self.sClient(ticketServer.port, ["-tls1_2", "-sess_in", session]))
        #expect(second.succeeded, "\(second)")
        #expect(second.stdout.contains("Reused, TLSv1.2"), "the ticket was not accepted: \(second)")
        let tickets = await ticketServer.waitForOutcomes(2)
        #expect(tickets.map(\.established) == [true, true], "\(tickets)")
        #expect(tickets.map(\.resumed) == [false, true], "\(tickets)")

        let ids = try await reconnect
        #expect(ids.succeeded, "\(ids)")
        // s_client -reconnect: one full handshake, then five reconnections with the session ID.
        #expect(ids.stdout.occurrences(of: "Reused, TLSv1.2") == 5, "\(ids)")
        let idOutcomes = await idServer.waitForOutcomes(6)
        #expect(idOutcomes.count == 6 && idOutcomes.allSatisfy { $0.established }, "\(idOutcomes)")
        #expect(idOutcomes.filter(\.resumed).count == 5, "\(idOutcomes)")
    }

    @Test("mutual TLS: a client certificate from the trusted CA is accepted; none, or an untrusted one, is refused")
    func mutualTLS() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(mutualTLS: true), mode: .echo)
        defer { server.stop() }
        async let withCert = PeerProcess.run(.openssl, try Self.sClient(server.port, ["-tls1_2", "-cert", try Self.pki("client.pem"), "-key", try Self.pki("client.key")]), input: "mtls\n")
        async let without = PeerProcess.run(.openssl, try Self.sClient(server.port, ["-tls1_2"]), input: "anonymous\n")
        async let untrusted = PeerProcess.run(.openssl, try Self.sClient(server.port, ["-tls1_2", "-cert", try Self.pki("client-untrusted.pem"), "-key", try Self.pki("client-untrusted.key")]), input: "untrusted\n")
        let (a, b, c) = try await (withCert, without, untrusted)
        #expect(a.succeeded, "\(a)")
        #expect(!b.succeeded || !b.stdout.contains("anonymous"), "\(b)")
        // mbedTLS 2.28 refuses a missing client certificate without sending an alert (see
        // mbedtls_ssl_parse_certificate): the client sees the connection end.
        #expect(b.output.contains("alert") || b.output.contains("unexpected eof"), "\(b)")
        #expect(c.output.contains("alert"), "the untrusted client saw no alert: \(c)")
        let outcomes = await server.waitForOutcomes(3)
        try #require(outcomes.count == 3)
        let accepted = outcomes.filter(\.established)
        #expect(accepted.count == 1, "\(outcomes)")
        #expect(accepted.first?.peerSubject?.contains("strata-test-client") == true, "\(outcomes)")
        #expect(accepted.first?.received == Array("mtls\n".utf8), "\(outcomes)")
        let refused = outcomes.compactMap(\.tlsError)
        #expect(refused.count == 2 && refused.allSatisfy { $0.kind == .verification }, "\(refused)")
        #expect(refused.contains { $0.description.contains("no certificate") }, "\(refused)")
        #expect(refused.contains { $0.description.contains("not trusted") }, "\(refused)")
    }

    // MARK: - StrataTLS as the server: curl, gnutls-cli, Python

    @Test("curl --cacert: HTTP/1.1 over TLS 1.2 with ALPN, by name and with --resolve (SNI)")
    func curl() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(alpn: ["http/1.1"]), mode: .http(body: Self.httpBody))
        defer { server.stop() }
        let port = server.port
        let common = ["-sS", "-v", "--max-time", "10", "--cacert", try Self.pki("root.pem"), "-w", "\nstatus=%{http_code}\n"]
        async let plain = PeerProcess.run(.curl, common + ["https://localhost:\(port)/"])
        async let resolved = PeerProcess.run(.curl, common + ["--resolve", "strata.test:\(port):127.0.0.1", "https://strata.test:\(port)/"])
        let (a, b) = try await (plain, resolved)
        for r in [a, b] {
            #expect(r.succeeded, "\(r)")
            #expect(r.stdout.contains(Self.httpBody + "\nstatus=200"), "\(r)")
            #expect(r.stderr.contains("SSL connection using TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"), "\(r)")
            #expect(r.stderr.contains("ALPN: server accepted http/1.1"), "\(r)")
        }
        let outcomes = await server.waitForOutcomes(2)
        try #require(outcomes.count == 2)
        #expect(outcomes.allSatisfy { $0.established }, "\(outcomes)")
        #expect(Set(outcomes.compactMap(\.serverName)) == ["localhost", "strata.test"], "\(outcomes)")
        #expect(outcomes.allSatisfy { $0.alpn == "http/1.1" }, "\(outcomes)")
    }

    /// TLS 1.1 from GnuTLS, two ways: 1.1 alone (`-VERS-ALL:+VERS-TLS1.1`), and 1.3 + 1.1
    /// (`-VERS-TLS1.2:+VERS-TLS1.1`, whose ClientHello carries 1.1 as its legacy version and
    /// 1.3 only in supported_versions, which mbedTLS 2.28 does not read). The server refuses
    /// both with protocol_version (GnuTLS 3.7.9 prints "Received alert [70]").
    @Test("gnutls-cli: handshake; TLS 1.1 only is refused by the server")
    func gnutls() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(), mode: .echo)
        defer { server.stop() }
        let base = ["--x509cafile", try Self.pki("root.pem"), "-p", "\(server.port)", "localhost"]
        let ok = try await PeerProcess.run(.gnutlsCLI, base, input: "gnutls\n")
        #expect(ok.succeeded, "\(ok)")
        #expect(ok.output.contains("(TLS1.2-X.509)-(ECDHE-"), "\(ok)")
        #expect(ok.output.contains("Handshake was completed"), "\(ok)")
        let first = await server.waitForOutcomes(1)
        try #require(first.count == 1)
        #expect(first[0].established && first[0].serverName == "localhost", "\(first)")
        #expect(first[0].received == Array("gnutls\n".utf8), "\(first)")

        for (n, priority) in ["NORMAL:-VERS-ALL:+VERS-TLS1.1", "NORMAL:-VERS-TLS1.2:+VERS-TLS1.1"].enumerated() {
            let old = try await PeerProcess.run(.gnutlsCLI, ["--priority", priority] + base)
            #expect(!old.succeeded, "\(old)")
            #expect(old.output.contains("Received alert [70]"), "no protocol_version alert: \(old)")
            let outcomes = await server.waitForOutcomes(2 + n)
            try #require(outcomes.count == 2 + n)
            #expect(outcomes[1 + n].tlsError?.code == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION, "\(priority): \(outcomes[1 + n])")
        }
    }

    static let pythonClient = """
        import json, socket, ssl, sys
        port, cafile = int(sys.argv[1]), sys.argv[2]
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        # CPython sets OP_IGNORE_UNEXPECTED_EOF (OpenSSL 3): without clearing it, and without
        # suppress_ragged_eofs=False, an end without close_notify would read as a clean EOF.
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        out = {}
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
                out.update(version=tls.version(), cipher=tls.cipher()[0], alpn=tls.selected_alpn_protocol(),
                           compression=tls.compression())
                tls.sendall(b"GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
                data = b""
                try:
                    while True:
                        chunk = tls.recv(65536)
                        if not chunk:
                            out["end"] = "close_notify"
                            break
                        data += chunk
                except ssl.SSLError as error:
                    out["end"] = "error: %s" % error
                out["response"] = data.decode()
        print(json.dumps(out))
        """

    @Test("Python ssl: TLSv1.2, ECDHE, ALPN http/1.1, no compression, response ended by close_notify")
    func pythonClient() async throws {
        let server = try TLSTestServer.start(try PKIConfig.server(alpn: ["http/1.1"]), mode: .http(body: Self.httpBody))
        defer { server.stop() }
        let r = try await PeerProcess.run(.python, ["-c", Self.pythonClient, "\(server.port)", try Self.pki("root.pem")])
        #expect(r.succeeded, "\(r)")
        let json = try #require(try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r)")
        #expect(json["version"] as? String == "TLSv1.2", "\(json)")
        #expect((json["cipher"] as? String)?.hasPrefix("ECDHE-") == true, "\(json)")
        #expect(json["alpn"] as? String == "http/1.1", "\(json)")
        #expect(json["compression"] is NSNull, "\(json)")
        #expect(json["end"] as? String == "close_notify", "the response did not end with close_notify: \(json)")
        #expect((json["response"] as? String)?.hasSuffix("\r\n\r\n" + Self.httpBody) == true, "\(json)")
        let outcomes = await server.waitForOutcomes(1)
        #expect(outcomes.first?.established == true, "\(outcomes)")
    }

    // MARK: - StrataTLS as the client

    /// `openssl s_server` with `stem`'s chain (leaf via -cert, the rest via -cert_chain:
    /// s_server's -cert reads only the first certificate), on a port the kernel picks
    /// (`-accept 127.0.0.1:0`; s_server prints "ACCEPT 127.0.0.1:PORT"). SECLEVEL 0 lets it
    /// load the weak certificates (RSA 1024, SHA-1); `-rev` answers each line reversed.
    static func openSSLServer(_ stem: String, in scratch: URL, extra: [String] = []) async throws -> (PeerProcess, UInt16) {
        let keyStem = stem == "server-leaf-only" ? "server" : stem
        let (leaf, rest) = try splitChain(try pki("\(stem).pem"), into: scratch)
        var args = ["s_server", "-accept", "127.0.0.1:0", "-cert", leaf, "-key", try pki("\(keyStem).key"),
                    "-cipher", "DEFAULT:@SECLEVEL=0", "-rev", "-naccept", "1"]
        if let rest { args += ["-cert_chain", rest] }
        let server = try PeerProcess(.openssl, args + extra)
        guard await server.waitForOutput("ACCEPT 127.0.0.1:"),
              let line = server.stdout.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT 127.0.0.1:") }),
              let port = UInt16(line.dropFirst("ACCEPT 127.0.0.1:".count)) else {
            server.kill()
            throw PeerError("openssl s_server did not start: \(server.stdout) \(server.stderr)")
        }
        return (server, port)
    }

    /// Connects a Strata client to `port` and verifies `serverName`; returns the connection or the error.
    static func strataConnect(_ port: UInt16, serverName: String = "localhost", config: TLSConfiguration? = nil,
                              loop: Loop) async throws -> Result<TLSConnection, any Error> {
        let configuration = try config ?? PKIConfig.client()
        let address = try SocketAddress(parsing: "127.0.0.1:\(port)")
        do {
            let tls = try await runOn(loop) {
                try await withTimeout(.seconds(10)) {
                    try await TLSConnection.connect(to: address, serverName: serverName, configuration: configuration, on: loop)
                }
            }
            return .success(tls)
        } catch {
            return .failure(error)
        }
    }

    @Test("Strata client against openssl s_server: ECDSA and RSA chains, data both ways, close_notify", arguments: ["server", "rsa-server"])
    func clientAgainstOpenSSL(stem: String) async throws {
        let scratch = try peerScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (peer, port) = try await Self.openSSLServer(stem, in: scratch)
        defer { peer.kill() }
        let loop = try startTestLoop(name: "tls-client-openssl")
        defer { loop.stop() }
        let tls = try await Self.strataConnect(port, loop: loop).get()
        #expect(tls.cipherSuite?.hasPrefix(stem == "server" ? "TLS-ECDHE-ECDSA-WITH-" : "TLS-ECDHE-RSA-WITH-") == true,
                "\(String(describing: tls.cipherSuite))")
        try await tls.write(Array("hello strata\n".utf8))
        var got: [UInt8] = []
        try await withTimeout(.seconds(5)) {
            while !got.contains(UInt8(ascii: "\n")), let chunk = try await tls.read() { got += chunk }
        }
        #expect(String(decoding: got, as: UTF8.self) == "atarts olleh\n")
        await tls.close()
        let r = await peer.finish(timeout: .seconds(20))
        #expect(r.output.contains("CONNECTION ESTABLISHED"), "\(r)")
        #expect(r.output.contains("Protocol version: TLSv1.2"), "\(r)")
    }

    /// The client's fail-closed matrix against a server that presents each bad certificate as
    /// is. `eku-client-only` can only be shown here: mbedTLS's own server refuses to present a
    /// certificate without serverAuth, so the in-memory matrix (FailClosedTests) cannot.
    static let badCertificates: [(String, String)] = [
        ("eku-client-only", "extended key usage"),
        ("selfsigned", "not trusted"),
        ("untrusted", "not trusted"),
        ("server-leaf-only", "not trusted"),
        ("expired", "expired"),
        ("notyet", "not yet valid"),
        ("wrongname", "hostname mismatch: wanted localhost, certificate names api.example.org"),
        ("cn-only", "hostname mismatch"),
        ("sha1", "forbidden hash"),
        ("rsa1024", "too weak"),
        ("intermediate-not-ca", "not trusted"),
    ]

    @Test("Strata client refuses each bad certificate from openssl s_server with .verification and the reason",
          arguments: badCertificates.indices)
    func clientRefusesBadCertificates(index: Int) async throws {
        let (stem, reason) = Self.badCertificates[index]
        let scratch = try peerScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (peer, port) = try await Self.openSSLServer(stem, in: scratch)
        defer { peer.kill() }
        let loop = try startTestLoop(name: "tls-client-bad-cert")
        defer { loop.stop() }
        switch try await Self.strataConnect(port, loop: loop) {
        case .success(let tls):
            Issue.record("\(stem) was accepted (suite \(String(describing: tls.cipherSuite)))")
            await tls.close()
        case .failure(let error):
            let tlsError = try #require(error as? TLSError, "\(stem): \(error)")
            #expect(tlsError.kind == .verification, "\(stem): \(tlsError)")
            #expect(tlsError.reasons.contains { $0.contains(reason) }, "\(stem): reasons \(tlsError.reasons) lack \"\(reason)\": \(tlsError)")
        }
        // The server saw the client's alert: the handshake never completed.
        let r = await peer.finish(timeout: .seconds(20))
        #expect(!r.output.contains("CONNECTION ESTABLISHED"), "\(r)")
    }

    /// A Python `ssl` server: `http` serves one request with Python's http.server (whose
    /// connection ends by shutting the socket down without TLS's close_notify: it never
    /// unwraps); `unwrap` answers from a raw SSL socket and ends with `unwrap()`, which sends
    /// close_notify; `truncate` promises 1000 bytes, sends a few, and shuts the TCP connection
    /// down without close_notify.
    static let pythonServer = """
        import http.server, socket, ssl, sys
        mode, cert, key = sys.argv[1:4]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        body = b"hello from python\\n"
        if mode == "http":
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
            print("PORT %d" % httpd.server_address[1], flush=True)
            httpd.timeout = 120
            httpd.handle_request()
        else:
            listener = socket.create_server(("127.0.0.1", 0))
            print("PORT %d" % listener.getsockname()[1], flush=True)
            listener.settimeout(120)
            conn, _ = listener.accept()
            conn.settimeout(60)
            tls = ctx.wrap_socket(conn, server_side=True)
            request = b""
            while b"\\r\\n\\r\\n" not in request:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                request += chunk
            if mode == "unwrap":
                tls.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
                tls.unwrap().close()
            else:
                tls.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 1000\\r\\n\\r\\n" + body)
                socket.socket.shutdown(tls, socket.SHUT_RDWR)
                tls.close()
        print("DONE", flush=True)
        """

    static func pythonServer(_ mode: String, stem: String = "server") async throws -> (PeerProcess, UInt16) {
        let server = try PeerProcess(.python, ["-c", pythonServer, mode, try pki("\(stem).pem"), try pki("\(stem).key")])
        guard await server.waitForOutput("PORT "),
              let line = server.stdout.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }),
              let port = UInt16(line.dropFirst(5)) else {
            server.kill()
            throw PeerError("the Python server did not start: \(server.stdout) \(server.stderr)")
        }
        return (server, port)
    }

    /// Sends a GET and reads the response until the stream ends; returns the bytes and how it ended.
    static func get(_ tls: TLSConnection) async throws -> (response: String, end: Result<Void, any Error>) {
        try await tls.write(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        var bytes: [UInt8] = []
        do {
            try await withTimeout(.seconds(5)) {
                while let chunk = try await tls.read() { bytes += chunk }
            }
            return (String(decoding: bytes, as: UTF8.self), .success(()))
        } catch {
            return (String(decoding: bytes, as: UTF8.self), .failure(error))
        }
    }

    @Test("Strata client against Python ssl servers: clean end with unwrap(); truncation without close_notify (http.server, TCP shutdown)",
          arguments: ["unwrap", "http", "truncate"])
    func clientAgainstPython(mode: String) async throws {
        let (peer, port) = try await Self.pythonServer(mode)
        defer { peer.kill() }
        let loop = try startTestLoop(name: "tls-client-python")
        defer { loop.stop() }
        let tls = try await Self.strataConnect(port, loop: loop).get()
        let (response, end) = try await Self.get(tls)
        #expect(response.hasPrefix("HTTP/1."), "\(response)")
        #expect(response.hasSuffix("\r\n\r\nhello from python\n"), "\(response)")
        switch (mode, end) {
        case ("unwrap", .success):
            break
        case ("unwrap", .failure(let error)):
            Issue.record("unwrap() sends close_notify, yet the read ended with \(error)")
        case (_, .success):
            Issue.record("\(mode): the stream ended without close_notify, yet the read returned a clean end")
        case (_, .failure(let error)):
            #expect((error as? TLSError)?.kind == .truncated, "\(mode): \(error)")
        }
        await tls.close()
        let r = await peer.finish(timeout: .seconds(20))
        #expect(r.stdout.contains("DONE"), "\(r)")
    }

    @Test("Strata client refuses a Python ssl server's wrong-name and expired certificates", arguments: ["wrongname", "expired"])
    func clientRefusesPythonBadCertificates(stem: String) async throws {
        let (peer, port) = try await Self.pythonServer("unwrap", stem: stem)
        defer { peer.kill() }
        let loop = try startTestLoop(name: "tls-client-python-bad")
        defer { loop.stop() }
        let result = try await Self.strataConnect(port, loop: loop)
        let error = try #require(result.failureValue as? TLSError, "\(stem): \(result)")
        #expect(error.kind == .verification, "\(error)")
        #expect(error.description.contains(stem == "expired" ? "expired" : "hostname mismatch"), "\(error)")
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
