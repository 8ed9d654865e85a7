import CStrataMbedTLS
import Glibc
import Testing

// Facts about Debian 12's mbedTLS 2.28 that StrataTLS is designed around (issue 9,
// DESIGN.md §7), each checked against the library itself, with no StrataTLS code in
// between: a client and a server run entirely in memory over two byte queues. Each test
// fails when its fact stops being true (an update of libmbedtls, a different build), which
// is the moment to revisit the part of StrataTLS that depends on it.

// MARK: - Facts

@Suite("mbedTLS 2.28 facts")
struct MbedTLSFactsTests {
    /// Fact 1 (CVE-2025-27809): a client with authmode REQUIRED that never calls
    /// `mbedtls_ssl_set_hostname` completes the handshake against a certificate for another
    /// name: without a hostname 2.28.3 checks the chain but no name at all, and the verify
    /// result is 0, so re-checking it after the handshake does not catch it either. With the
    /// hostname set, the same handshake fails with `MBEDTLS_ERR_X509_CERT_VERIFY_FAILED` and
    /// `MBEDTLS_X509_BADCERT_CN_MISMATCH` in the flags.
    ///
    /// Why StrataTLS cares: a client cannot be created without the name it verifies, and
    /// the session always calls `mbedtls_ssl_set_hostname` before the handshake. (2.28.10
    /// fails such handshakes instead; if Debian backports that, this test fails and the
    /// module's own guard becomes a second line of defence.)
    @Test func hostnameIsNotCheckedUnlessSet() throws {
        let withoutName = try Pair.make(server: "wrongname.pem", key: "wrongname.key", hostname: nil)
        defer { withExtendedLifetime(withoutName) {} }
        #expect(withoutName.client.conf.pointee.authmode == UInt8(MBEDTLS_SSL_VERIFY_REQUIRED), "a client's default")
        let unchecked = withoutName.handshake()
        #expect(unchecked.client == 0, "no hostname: \(describe(unchecked.client))")
        #expect(unchecked.server == 0, "no hostname: \(describe(unchecked.server))")
        #expect(mbedtls_ssl_get_verify_result(withoutName.client.ssl) == 0)

        let withName = try Pair.make(server: "wrongname.pem", key: "wrongname.key", hostname: "localhost")
        defer { withExtendedLifetime(withName) {} }
        let checked = withName.handshake()
        #expect(checked.client == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, "\(describe(checked.client))")
        let flags = mbedtls_ssl_get_verify_result(withName.client.ssl)
        #expect(flags & UInt32(MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0, "flags \(hex(flags))")
        #expect(flags & ~UInt32(MBEDTLS_X509_BADCERT_CN_MISMATCH) == 0, "only the name is wrong: flags \(hex(flags))")
    }

    /// Fact 2: with authmode OPTIONAL the handshake against an untrusted certificate
    /// completes (returns 0) and only `mbedtls_ssl_get_verify_result` says it is not trusted.
    ///
    /// Why StrataTLS cares: OPTIONAL is a bypass that looks like success. The module uses
    /// REQUIRED, has no public way to choose anything else, and re-checks the verify result
    /// after every handshake.
    @Test func optionalVerificationCompletesAgainstAnUntrustedPeer() throws {
        let pair = try Pair.make(server: "untrusted.pem", key: "untrusted.key", configureClient: { client in
            mbedtls_ssl_conf_authmode(client.conf, MBEDTLS_SSL_VERIFY_OPTIONAL)
        })
        defer { withExtendedLifetime(pair) {} }
        let result = pair.handshake()
        #expect(result.client == 0, "\(describe(result.client))")
        #expect(result.server == 0, "\(describe(result.server))")
        let flags = mbedtls_ssl_get_verify_result(pair.client.ssl)
        #expect(flags != 0)
        #expect(flags & UInt32(MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0, "flags \(hex(flags))")
    }

    /// Fact 3: `mbedtls_ssl_config_defaults(…, MBEDTLS_SSL_PRESET_DEFAULT)` allows TLS 1.0
    /// (`min_minor_ver == MBEDTLS_SSL_MINOR_VERSION_1`) up to TLS 1.2, for clients and
    /// servers alike: Debian compiles MBEDTLS_SSL_PROTO_TLS1 and TLS1_1 in.
    ///
    /// Why StrataTLS cares: TLS 1.2 is its minimum, so every configuration sets
    /// `mbedtls_ssl_conf_min_version(…, 3, MBEDTLS_SSL_MINOR_VERSION_3)` explicitly.
    @Test func defaultMinimumVersionIsTLS10() throws {
        for endpoint in [MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_IS_SERVER] {
            let config = DefaultConfig(endpoint: endpoint)
            defer { withExtendedLifetime(config) {} }
            #expect(config.status == 0)
            #expect(config.conf.pointee.min_major_ver == UInt8(MBEDTLS_SSL_MAJOR_VERSION_3))
            #expect(config.conf.pointee.min_minor_ver == UInt8(MBEDTLS_SSL_MINOR_VERSION_1))
            #expect(config.conf.pointee.max_minor_ver == UInt8(MBEDTLS_SSL_MINOR_VERSION_3))
        }
    }

    /// Fact 4: when the transport reports end of file (the receive callback returns 0)
    /// with no close_notify, `mbedtls_ssl_read` returns 0: it turns MBEDTLS_ERR_SSL_CONN_EOF
    /// into 0 ("no more data"), and does so again on every later call. (During the
    /// handshake the same EOF is MBEDTLS_ERR_SSL_CONN_EOF.) After a real close_notify it
    /// returns MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, and 0 at the EOF that follows. So 0 versus
    /// PEER_CLOSE_NOTIFY is the only thing that tells a truncated stream from a clean close.
    ///
    /// Why StrataTLS cares: EOF without close_notify is truncation (an attacker can cut a
    /// response short), so the session maps only PEER_CLOSE_NOTIFY to a clean end of stream
    /// and treats a 0 from `mbedtls_ssl_read` as an error, never as end of stream.
    @Test func endOfFileWithoutCloseNotifyReadsAsZero() throws {
        // The peer's transport closes without close_notify.
        let truncated = try Pair.make()
        defer { withExtendedLifetime(truncated) {} }
        try #require(bothSucceeded(truncated.handshake()))
        #expect(truncated.write(truncated.server, Array("partial".utf8)) == 7)
        #expect(truncated.read(truncated.client) == .data(Array("partial".utf8)))
        truncated.serverToClient.eof = true
        #expect(truncated.read(truncated.client) == .code(0))
        #expect(truncated.read(truncated.client) == .code(0), "and again")

        // The same EOF during the handshake.
        let early = try Pair.make()
        defer { withExtendedLifetime(early) {} }
        early.serverToClient.eof = true
        #expect(mbedtls_ssl_handshake(early.client.ssl) == MBEDTLS_ERR_SSL_CONN_EOF)

        // The peer sends close_notify, then its transport closes.
        let closed = try Pair.make()
        defer { withExtendedLifetime(closed) {} }
        try #require(bothSucceeded(closed.handshake()))
        #expect(mbedtls_ssl_close_notify(closed.server.ssl) == 0)
        #expect(closed.read(closed.client) == .code(MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY))
        closed.serverToClient.eof = true
        #expect(closed.read(closed.client) == .code(0))
    }

    /// Fact 5: `mbedtls_ssl_write` over a transport that takes only part of a record
    /// returns `MBEDTLS_ERR_SSL_WANT_WRITE` (short sends that make progress are retried
    /// inside mbedTLS; only a send that returns WANT_WRITE surfaces). The record stays
    /// queued in `out_buf` (`out_left` bytes), and calling `mbedtls_ssl_write` again with
    /// the same arguments finishes it and returns the full length: the peer receives the
    /// bytes exactly once. A retry with *different* arguments does not send them: mbedTLS
    /// flushes the old record and reports the new length as written. And a write larger
    /// than a record is partial at the API level: one call writes at most one record (16384
    /// bytes).
    ///
    /// Why StrataTLS cares: after WANT_WRITE the session must retry with the very same
    /// plaintext before accepting any other, and must loop over writes larger than 16 KiB.
    @Test func writeRetriesNeedTheSameArguments() throws {
        let pair = try Pair.make()
        defer { withExtendedLifetime(pair) {} }
        try #require(bothSucceeded(pair.handshake()))
        let message = Array("exactly once, please".utf8)

        // Short sends that make progress: absorbed by mbedTLS.
        pair.client.transport.maxPerSend = 7
        pair.client.transport.sendCalls = 0
        #expect(pair.write(pair.client, message) == Int32(message.count))
        #expect(pair.client.transport.sendCalls > 1)
        #expect(pair.read(pair.server) == .data(message))
        pair.client.transport.maxPerSend = nil

        // A send that stops (WANT_WRITE) after 10 bytes.
        pair.client.transport.sendBudget = 10
        #expect(pair.write(pair.client, message) == MBEDTLS_ERR_SSL_WANT_WRITE)
        #expect(pair.client.ssl.pointee.out_left > 0)
        #expect(pair.clientToServer.available == 10)
        #expect(pair.read(pair.server) == .code(MBEDTLS_ERR_SSL_WANT_READ))
        pair.client.transport.sendBudget = nil
        #expect(pair.write(pair.client, message) == Int32(message.count))
        #expect(pair.client.ssl.pointee.out_left == 0)
        #expect(pair.read(pair.server) == .data(message))
        #expect(pair.read(pair.server) == .code(MBEDTLS_ERR_SSL_WANT_READ), "received exactly once")

        // A retry with different arguments: the old record goes out, the new bytes do not.
        pair.client.transport.sendBudget = 10
        #expect(pair.write(pair.client, Array("first".utf8)) == MBEDTLS_ERR_SSL_WANT_WRITE)
        pair.client.transport.sendBudget = nil
        let other = Array("something else entirely".utf8)
        #expect(pair.write(pair.client, other) == Int32(other.count), "reports the new length as written")
        #expect(pair.read(pair.server) == .data(Array("first".utf8)))
        #expect(pair.read(pair.server) == .code(MBEDTLS_ERR_SSL_WANT_READ), "the new bytes were never sent")

        // More than one record: partial at the API level.
        let large = [UInt8](repeating: 0x61, count: 20_000)
        let maxPayload = mbedtls_ssl_get_max_out_record_payload(pair.client.ssl)
        #expect(maxPayload == 16_384)
        #expect(pair.write(pair.client, large) == maxPayload)
    }

    /// Fact 6: Debian compiles MBEDTLS_SSL_RENEGOTIATION in, and the default is disabled
    /// (`disable_renegotiation == MBEDTLS_SSL_RENEGOTIATION_DISABLED`). A server configured
    /// with it disabled refuses a client's renegotiation without failing: `mbedtls_ssl_read`
    /// on the server returns WANT_READ, the server answers the new ClientHello with exactly
    /// one record, an alert, which the client decrypts as a *warning* no_renegotiation
    /// (`mbedtls_ssl_renegotiate` on the client then returns
    /// MBEDTLS_ERR_SSL_WAITING_SERVER_HELLO_RENEGO), the server never enters a handshake
    /// (`renego_status` stays MBEDTLS_SSL_INITIAL_HANDSHAKE), and application data still
    /// flows from the server to the client.
    ///
    /// Why StrataTLS cares: renegotiation is attack surface and a CPU cost a client can
    /// impose, so the module calls `mbedtls_ssl_conf_renegotiation(…, DISABLED)` explicitly
    /// rather than trusting the default, and a refused renegotiation is not an error on
    /// the server.
    @Test func serverRefusesRenegotiationWhenDisabled() throws {
        #expect(mbedtls_version_check_feature("MBEDTLS_SSL_RENEGOTIATION") == 0, "compiled in")
        for endpoint in [MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_IS_SERVER] {
            let config = DefaultConfig(endpoint: endpoint)
            defer { withExtendedLifetime(config) {} }
            #expect(config.conf.pointee.disable_renegotiation == UInt8(MBEDTLS_SSL_RENEGOTIATION_DISABLED))
        }

        let pair = try Pair.make(
            configureClient: { mbedtls_ssl_conf_renegotiation($0.conf, MBEDTLS_SSL_RENEGOTIATION_ENABLED) },
            configureServer: { mbedtls_ssl_conf_renegotiation($0.conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED) }
        )
        defer { withExtendedLifetime(pair) {} }
        try #require(bothSucceeded(pair.handshake()))

        #expect(mbedtls_ssl_renegotiate(pair.client.ssl) == MBEDTLS_ERR_SSL_WANT_READ, "ClientHello sent")
        #expect(pair.clientToServer.peek().first == UInt8(MBEDTLS_SSL_MSG_HANDSHAKE))
        #expect(pair.read(pair.server) == .code(MBEDTLS_ERR_SSL_WANT_READ), "refusing is not an error")
        #expect(pair.server.ssl.pointee.renego_status == MBEDTLS_SSL_INITIAL_HANDSHAKE)
        let reply = pair.serverToClient.peek()
        try #require(reply.count >= 5)
        #expect(reply[0] == UInt8(MBEDTLS_SSL_MSG_ALERT))
        #expect(reply.count == 5 + (Int(reply[3]) << 8 | Int(reply[4])), "one record, no ServerHello")

        #expect(mbedtls_ssl_renegotiate(pair.client.ssl) == MBEDTLS_ERR_SSL_WAITING_SERVER_HELLO_RENEGO)
        // The alert as the client decrypted it, kept in in_msg for the ServerHello parser.
        let client = pair.client.ssl.pointee
        #expect(client.in_msgtype == MBEDTLS_SSL_MSG_ALERT)
        #expect(client.in_msglen == 2)
        if client.in_msglen == 2, let alert = client.in_msg {
            #expect(alert[0] == UInt8(MBEDTLS_SSL_ALERT_LEVEL_WARNING))
            #expect(alert[1] == UInt8(MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION))
        }

        // The connection goes on (the client may first spend a read on the kept alert).
        #expect(pair.write(pair.server, Array("still here".utf8)) == 10)
        var received: ReadResult = .code(MBEDTLS_ERR_SSL_WANT_READ)
        for _ in 0..<3 where received == .code(MBEDTLS_ERR_SSL_WANT_READ) {
            received = pair.read(pair.client)
        }
        #expect(received == .data(Array("still here".utf8)))
    }

    /// Fact 7: mbedTLS keeps the lists it is given by pointer, without copying: after
    /// `mbedtls_ssl_conf_alpn_protocols` the config's `alpn_list` is the caller's array (a
    /// later change to the array is seen by the config), after `mbedtls_ssl_conf_ciphersuites`
    /// all four `ciphersuite_list` entries are the caller's array, and after
    /// `mbedtls_ssl_conf_curves` `curve_list` is the caller's array.
    ///
    /// Why StrataTLS cares: TLSConfiguration owns the storage of every such list, at a
    /// fixed address, for as long as the mbedTLS config lives.
    @Test func listsAreKeptByPointer() throws {
        let config = DefaultConfig(endpoint: MBEDTLS_SSL_IS_SERVER)
        defer { withExtendedLifetime(config) {} }
        #expect(config.status == 0)

        let h2 = strdup("h2")!, http11 = strdup("http/1.1")!
        defer { free(h2); free(http11) }
        let alpn = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: 3)
        defer { alpn.deallocate() }
        alpn[0] = UnsafePointer(h2)
        alpn[1] = UnsafePointer(http11)
        alpn[2] = nil
        #expect(mbedtls_ssl_conf_alpn_protocols(config.conf, alpn) == 0)
        #expect(UnsafeRawPointer(config.conf.pointee.alpn_list) == UnsafeRawPointer(alpn))
        alpn[0] = UnsafePointer(http11)  // the config sees the caller's later change
        #expect(config.conf.pointee.alpn_list[0] == UnsafePointer(http11))
        alpn[0] = UnsafePointer(h2)

        let suites = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { suites.deallocate() }
        suites[0] = MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        suites[1] = 0
        mbedtls_ssl_conf_ciphersuites(config.conf, suites)
        let lists = config.conf.pointee.ciphersuite_list
        for list in [lists.0, lists.1, lists.2, lists.3] {
            #expect(list == UnsafePointer(suites))
        }

        let curves = UnsafeMutablePointer<mbedtls_ecp_group_id>.allocate(capacity: 2)
        defer { curves.deallocate() }
        curves[0] = MBEDTLS_ECP_DP_SECP256R1
        curves[1] = MBEDTLS_ECP_DP_NONE
        mbedtls_ssl_conf_curves(config.conf, curves)
        #expect(config.conf.pointee.curve_list == UnsafePointer(curves))
    }

    /// Fact 8: the SNI callback gets the name as (pointer, length), not as a C string. The
    /// pointer points into the received record inside the context's `in_buf` (a view, not a
    /// copy), so the byte after the name is whatever the ClientHello has next. With mbedTLS's
    /// own client that byte happens to be 0x00 (the high byte of the next extension's type),
    /// so a callback that used strlen would seem to work against it; a ClientHello written
    /// by hand, whose server_name list has a second entry after the host name, shows that
    /// the byte is not a terminator (0xFF here). The test reads that byte only after checking
    /// that it lies inside the received record.
    ///
    /// Why StrataTLS cares: its SNI callback builds the name from exactly `len` bytes.
    @Test func sniCallbackGetsALengthDelimitedName() throws {
        // mbedTLS's own client.
        let recorder = SNIRecorder()
        let pair = try Pair.make(hostname: "strata.test", configureServer: { server in
            mbedtls_ssl_conf_sni(server.conf, sniCallback, Unmanaged.passUnretained(recorder).toOpaque())
        })
        defer { withExtendedLifetime((pair, recorder)) {} }
        let result = pair.handshake()
        #expect(bothSucceeded(result))
        #expect(recorder.calls == 1)
        #expect(recorder.length == "strata.test".utf8.count)
        #expect(recorder.name == Array("strata.test".utf8))
        #expect(recorder.insideReceivedRecord)
        print("[fact 8] mbedTLS client: byte after the name: \(recorder.byteAfter.map { hex(UInt32($0)) } ?? "outside the record")")

        // A ClientHello by hand: server_name = [host_name "localhost", type 0xFF "x"].
        let crafted = SNIRecorder()
        let lone = try Pair.make(configureServer: { server in
            mbedtls_ssl_conf_sni(server.conf, sniCallback, Unmanaged.passUnretained(crafted).toOpaque())
        })
        defer { withExtendedLifetime((lone, crafted)) {} }
        lone.clientToServer.append(handcraftedClientHello(serverNames: [(0x00, "localhost"), (0xFF, "x")]))
        let serverResult = mbedtls_ssl_handshake(lone.server.ssl)
        print("[fact 8] hand-written ClientHello: server handshake \(describe(serverResult))")
        #expect(crafted.calls == 1)
        #expect(crafted.length == "localhost".utf8.count)
        #expect(crafted.name == Array("localhost".utf8))
        #expect(crafted.insideReceivedRecord)
        #expect(crafted.byteAfter == 0xFF, "the byte after the name is the next entry's type, not NUL")
    }

    /// Fact 9: contexts are linked by pointer and must stay at fixed addresses: the SSL
    /// context stores its config's address (`ssl->conf == &conf`), the config stores the
    /// DRBG's address (`p_rng`), the certificate chain, key and trust store addresses
    /// (`key_cert->cert`, `key_cert->key`, `ca_chain`), and the context stores the BIO
    /// context (`p_bio`). The hostname, by contrast, is copied.
    ///
    /// Why StrataTLS cares: its mbedTLS structs are heap-allocated once and never moved
    /// (never Swift values, which may be copied), and freed only after every user is gone.
    @Test func contextsPointAtEachOther() throws {
        let pair = try Pair.make()
        defer { withExtendedLifetime(pair) {} }
        let client = pair.client, server = pair.server
        #expect(client.ssl.pointee.conf == UnsafePointer(client.conf))
        #expect(server.ssl.pointee.conf == UnsafePointer(server.conf))
        #expect(client.conf.pointee.p_rng == UnsafeMutableRawPointer(pair.random.drbg))
        #expect(server.conf.pointee.p_rng == UnsafeMutableRawPointer(pair.random.drbg))
        #expect(client.conf.pointee.ca_chain == client.trusted)
        let keyCert = try #require(server.conf.pointee.key_cert)
        #expect(keyCert.pointee.cert == server.chain)
        #expect(keyCert.pointee.key == server.key)
        #expect(client.ssl.pointee.p_bio == Unmanaged.passUnretained(client.transport).toOpaque())

        let name = strdup("localhost")!
        defer { free(name) }
        #expect(mbedtls_ssl_set_hostname(client.ssl, name) == 0)
        let stored = try #require(client.ssl.pointee.hostname)
        #expect(UnsafeRawPointer(stored) != UnsafeRawPointer(name), "set_hostname copies")
        #expect(strcmp(stored, name) == 0)
        #expect(bothSucceeded(pair.handshake()))
    }

    /// Fact 10: `mbedtls_ssl_setup` allocates both record buffers at once, before any
    /// handshake: `in_buf` and `out_buf` are MBEDTLS_SSL_IN/OUT_BUFFER_LEN bytes each, 16717
    /// in this build (13 header + 320 overhead + 16384 content; the overhead is large
    /// because CBC suites are compiled in: 256 padding + 48 MAC + 16 IV), 33434 bytes per
    /// connection. For TLS the 8-byte record counter sits at the start of each buffer
    /// (`in_ctr == in_buf`, `out_ctr == out_buf`), the 5-byte header follows (`in_hdr ==
    /// in_buf + 8`) and the payload starts at +13. The handshake state is freed when the
    /// handshake ends (`handshake == NULL`).
    ///
    /// Why StrataTLS cares: ~33 KB per connection whether or not it is active is the
    /// budget docs/tls.md accounts for, and any later memory trick (releasing or sharing
    /// buffers while idle) has to respect where the counters live.
    @Test func recordBuffersAreAllocatedAtSetup() throws {
        let pair = try Pair.make()
        defer { withExtendedLifetime(pair) {} }
        let ssl = pair.client.ssl.pointee
        let inBuf = try #require(ssl.in_buf)
        let outBuf = try #require(ssl.out_buf)
        #expect(ssl.in_ctr == inBuf)
        #expect(ssl.out_ctr == outBuf)
        #expect(ssl.in_hdr == inBuf + 8)
        #expect(ssl.out_hdr == outBuf + 8)
        #expect(ssl.in_len == inBuf + 11)
        #expect(ssl.in_msg == inBuf + 13)
        #expect(ssl.out_msg == outBuf + 13)

        let overhead = Int(MBEDTLS_SSL_COMPRESSION_ADD) + Int(MBEDTLS_MAX_IV_LENGTH) + Int(MBEDTLS_SSL_MAC_ADD)
            + Int(MBEDTLS_SSL_PADDING_ADD) + Int(MBEDTLS_SSL_MAX_CID_EXPANSION)
        let inLength = Int(MBEDTLS_SSL_HEADER_LEN) + overhead + Int(MBEDTLS_SSL_IN_CONTENT_LEN)
        let outLength = Int(MBEDTLS_SSL_HEADER_LEN) + overhead + Int(MBEDTLS_SSL_OUT_CONTENT_LEN)
        #expect(inLength == bufferLength.in && outLength == bufferLength.out)
        #expect((32 * 1024...35 * 1024).contains(inLength + outLength), "\(inLength) + \(outLength)")
        // What the allocator actually holds (exact under AddressSanitizer, rounded up by glibc).
        let inAllocated = usableSize(inBuf), outAllocated = usableSize(outBuf)
        #expect((inLength..<inLength + 64).contains(inAllocated))
        #expect((outLength..<outLength + 64).contains(outAllocated))

        #expect(bothSucceeded(pair.handshake()))
        #expect(pair.client.ssl.pointee.handshake == nil)
        #expect(pair.server.ssl.pointee.handshake == nil)
        print(
            "[fact 10] in_buf \(inLength) B (allocated \(inAllocated)), out_buf \(outLength) B (allocated \(outAllocated)); "
                + "sizeof ssl_context \(MemoryLayout<mbedtls_ssl_context>.size) B, ssl_config \(MemoryLayout<mbedtls_ssl_config>.size) B"
        )
    }

    /// Fact 11: the defaults are permissive: the default ciphersuite list
    /// (`mbedtls_ssl_list_ciphersuites()`, which a default config uses) has CBC suites,
    /// static-RSA key exchange (no forward secrecy), static ECDH and PSK suites; the default
    /// curve list (`mbedtls_ecp_grp_id_list()`, likewise the default config's) includes
    /// secp192r1.
    ///
    /// Why StrataTLS cares: its configurations always set their own suite list (ECDHE with
    /// AEAD only) and curve list (X25519, P-256, P-384), owned by TLSConfiguration.
    @Test func defaultListsArePermissive() throws {
        var suites: [Int32] = []
        var entry = try #require(mbedtls_ssl_list_ciphersuites())
        while entry.pointee != 0 {
            suites.append(entry.pointee)
            entry += 1
        }
        var cbc = 0, staticRSA = 0, staticECDH = 0, psk = 0
        for id in suites {
            let info = try #require(mbedtls_ssl_ciphersuite_from_id(id))
            if let cipher = mbedtls_cipher_info_from_type(info.pointee.cipher), cipher.pointee.mode == MBEDTLS_MODE_CBC {
                cbc += 1
            }
            switch info.pointee.key_exchange {
            case MBEDTLS_KEY_EXCHANGE_RSA: staticRSA += 1
            case MBEDTLS_KEY_EXCHANGE_ECDH_RSA, MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA: staticECDH += 1
            case MBEDTLS_KEY_EXCHANGE_PSK, MBEDTLS_KEY_EXCHANGE_DHE_PSK, MBEDTLS_KEY_EXCHANGE_ECDHE_PSK, MBEDTLS_KEY_EXCHANGE_RSA_PSK: psk += 1
            default: break
            }
        }
        #expect(cbc > 0)
        #expect(staticRSA > 0)
        #expect(staticECDH > 0)
        #expect(psk > 0)
        #expect(suites.contains(MBEDTLS_TLS_RSA_WITH_AES_128_CBC_SHA))
        #expect(suites.contains(MBEDTLS_TLS_PSK_WITH_AES_128_GCM_SHA256))

        var curves: [mbedtls_ecp_group_id] = []
        var curve = try #require(mbedtls_ecp_grp_id_list())
        while curve.pointee != MBEDTLS_ECP_DP_NONE {
            curves.append(curve.pointee)
            curve += 1
        }
        #expect(curves.contains(MBEDTLS_ECP_DP_SECP192R1))

        let config = DefaultConfig(endpoint: MBEDTLS_SSL_IS_CLIENT)
        defer { withExtendedLifetime(config) {} }
        #expect(config.conf.pointee.ciphersuite_list.3 == mbedtls_ssl_list_ciphersuites())
        #expect(config.conf.pointee.curve_list == mbedtls_ecp_grp_id_list())
        print("[fact 11] default: \(suites.count) suites (\(cbc) CBC, \(staticRSA) static RSA, \(staticECDH) static ECDH, \(psk) PSK), \(curves.count) curves")
    }

    /// Fact 12: a client config accepts Diffie-Hellman groups down to 1024 bits by default
    /// (`dhm_min_bitlen == 1024`).
    ///
    /// Why StrataTLS cares: finite-field DHE is not in its suite list at all; were it ever
    /// added, the minimum would have to be raised to 2048.
    @Test func clientAcceptsDHGroupsOf1024Bits() throws {
        let config = DefaultConfig(endpoint: MBEDTLS_SSL_IS_CLIENT)
        defer { withExtendedLifetime(config) {} }
        #expect(config.status == 0)
        #expect(config.conf.pointee.dhm_min_bitlen == 1024)
    }

    /// Fact 13: MBEDTLS_ECP_RESTARTABLE is not compiled into the library (asked of the
    /// library itself, not the headers), so an ECDHE-ECDSA handshake step cannot be split
    /// into bounded chunks: one server handshake with a P-256 certificate runs its
    /// elliptic-curve work (ECDHE key generation and shared secret, ECDSA signature) in whole
    /// calls. The CPU time is measured and printed, never asserted: it is on the order of
    /// milliseconds.
    ///
    /// Why StrataTLS cares: a handshake step blocks the event loop for that long, which
    /// bounds how many handshakes a loop can do per second and how long other connections
    /// wait; docs/tls.md records the number.
    @Test func ecpIsNotRestartableAndAHandshakeCostsMilliseconds() throws {
        #expect(mbedtls_version_check_feature("MBEDTLS_ECP_RESTARTABLE") == -1)
        #expect(mbedtls_version_check_feature("MBEDTLS_ECP_C") == 0, "the feature query works")

        var server: [Double] = [], client: [Double] = []
        for _ in 0..<5 {
            let pair = try Pair.make()
            defer { withExtendedLifetime(pair) {} }
            let result = pair.handshake()
            #expect(bothSucceeded(result), "\(describe(result.client)) / \(describe(result.server))")
            #expect(suiteName(mbedtls_ssl_get_ciphersuite(pair.server.ssl)).hasPrefix("TLS-ECDHE-ECDSA"))
            server.append(pair.server.handshakeCPU)
            client.append(pair.client.handshakeCPU)
        }
        func milliseconds(_ values: [Double]) -> String {
            let sorted = values.sorted()
            return "median \(format(sorted[sorted.count / 2] * 1000)) ms, min \(format(sorted[0] * 1000)) ms"
        }
        print("[fact 13] ECDHE-ECDSA P-256 handshake CPU: server \(milliseconds(server)); client \(milliseconds(client))")
    }
}

// MARK: - In-memory harness

/// One direction of the in-memory wire.
private final class ByteQueue {
    private var bytes: [UInt8] = []
    private var head = 0
    /// Bytes ever appended and ever read: the harness's measure of progress.
    private(set) var appended = 0
    private(set) var consumed = 0
    /// After the queued bytes, the receiver sees end of file (its receive callback returns 0).
    var eof = false

    var available: Int { bytes.count - head }

    func append(_ data: some Sequence<UInt8>) {
        let before = bytes.count
        bytes.append(contentsOf: data)
        appended += bytes.count - before
    }

    func read(into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let count = min(buffer.count, available)
        for index in 0..<count {
            buffer[index] = bytes[head + index]
        }
        head += count
        consumed += count
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        }
        return count
    }

    func peek() -> [UInt8] { Array(bytes[head...]) }
}

/// The BIO context of one endpoint: what it sends goes to `outgoing`, what it receives
/// comes from `incoming`. Passed to mbedTLS unretained; the endpoint keeps it alive.
private final class Transport {
    let incoming: ByteQueue
    let outgoing: ByteQueue
    /// Bytes the sends may still take in total before returning WANT_WRITE; nil: no limit.
    var sendBudget: Int?
    /// Bytes one send takes at most (a short write); nil: no limit.
    var maxPerSend: Int?
    var sendCalls = 0

    init(incoming: ByteQueue, outgoing: ByteQueue) {
        self.incoming = incoming
        self.outgoing = outgoing
    }
}

private func transportSend(_ context: UnsafeMutableRawPointer?, _ buffer: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    let transport = Unmanaged<Transport>.fromOpaque(context!).takeUnretainedValue()
    transport.sendCalls += 1
    var count = length
    if let most = transport.maxPerSend { count = min(count, most) }
    if let budget = transport.sendBudget {
        if budget == 0 { return MBEDTLS_ERR_SSL_WANT_WRITE }
        count = min(count, budget)
        transport.sendBudget = budget - count
    }
    transport.outgoing.append(UnsafeBufferPointer(start: buffer, count: count))
    return Int32(count)
}

private func transportReceive(_ context: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int) -> Int32 {
    let transport = Unmanaged<Transport>.fromOpaque(context!).takeUnretainedValue()
    if transport.incoming.available == 0 {
        return transport.incoming.eof ? 0 : MBEDTLS_ERR_SSL_WANT_READ
    }
    return Int32(transport.incoming.read(into: UnsafeMutableBufferPointer(start: buffer, count: length)))
}

/// Entropy and a CTR-DRBG seeded from it, heap-allocated (the config keeps the address).
private final class Random {
    let entropy = UnsafeMutablePointer<mbedtls_entropy_context>.allocate(capacity: 1)
    let drbg = UnsafeMutablePointer<mbedtls_ctr_drbg_context>.allocate(capacity: 1)

    init() {
        mbedtls_entropy_init(entropy)
        mbedtls_ctr_drbg_init(drbg)
    }

    func seed() throws {
        let personalization = Array("strata mbedtls facts".utf8)
        try check(mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, entropy, personalization, personalization.count), "mbedtls_ctr_drbg_seed")
    }

    deinit {
        mbedtls_ctr_drbg_free(drbg)
        mbedtls_entropy_free(entropy)
        drbg.deallocate()
        entropy.deallocate()
    }
}

/// A config after `mbedtls_ssl_config_defaults(endpoint, STREAM, PRESET_DEFAULT)` and
/// nothing else.
private final class DefaultConfig {
    let conf = UnsafeMutablePointer<mbedtls_ssl_config>.allocate(capacity: 1)
    let status: Int32

    init(endpoint: Int32) {
        mbedtls_ssl_config_init(conf)
        status = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)
    }

    deinit {
        mbedtls_ssl_config_free(conf)
        conf.deallocate()
    }
}

/// One side of a connection: context, config, own chain and key, trust store, each at a
/// fixed heap address, freed in deinit.
private final class Endpoint {
    let ssl = UnsafeMutablePointer<mbedtls_ssl_context>.allocate(capacity: 1)
    let conf = UnsafeMutablePointer<mbedtls_ssl_config>.allocate(capacity: 1)
    let chain = UnsafeMutablePointer<mbedtls_x509_crt>.allocate(capacity: 1)
    let key = UnsafeMutablePointer<mbedtls_pk_context>.allocate(capacity: 1)
    let trusted = UnsafeMutablePointer<mbedtls_x509_crt>.allocate(capacity: 1)
    let random: Random
    let transport: Transport
    /// Thread CPU time spent inside this endpoint's `mbedtls_ssl_handshake` calls, seconds.
    private(set) var handshakeCPU = 0.0

    init(random: Random, transport: Transport) {
        self.random = random
        self.transport = transport
        mbedtls_ssl_init(ssl)
        mbedtls_ssl_config_init(conf)
        mbedtls_x509_crt_init(chain)
        mbedtls_pk_init(key)
        mbedtls_x509_crt_init(trusted)
    }

    func configure(endpoint: Int32) throws {
        try check(mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT), "mbedtls_ssl_config_defaults")
        mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, random.drbg)
    }

    func useCertificate(_ chainFile: String, key keyFile: String) throws {
        let pki = try TestPKI.shared
        let chainPEM = try pki.pem(chainFile), keyPEM = try pki.pem(keyFile)
        try check(mbedtls_x509_crt_parse(chain, chainPEM, chainPEM.count), "mbedtls_x509_crt_parse(\(chainFile))")
        try check(
            mbedtls_pk_parse_key(key, keyPEM, keyPEM.count, nil, 0),
            "mbedtls_pk_parse_key(\(keyFile))"
        )
        try check(mbedtls_ssl_conf_own_cert(conf, chain, key), "mbedtls_ssl_conf_own_cert")
    }

    func trust(_ file: String) throws {
        let pem = try TestPKI.shared.pem(file)
        try check(mbedtls_x509_crt_parse(trusted, pem, pem.count), "mbedtls_x509_crt_parse(\(file))")
        mbedtls_ssl_conf_ca_chain(conf, trusted, nil)
    }

    func setup() throws {
        try check(mbedtls_ssl_setup(ssl, conf), "mbedtls_ssl_setup")
        mbedtls_ssl_set_bio(ssl, Unmanaged.passUnretained(transport).toOpaque(), transportSend, transportReceive, nil)
    }

    func handshakeStep() -> Int32 {
        let before = threadCPUTime()
        let result = mbedtls_ssl_handshake(ssl)
        handshakeCPU += threadCPUTime() - before
        return result
    }

    deinit {
        mbedtls_ssl_free(ssl)
        mbedtls_ssl_config_free(conf)
        mbedtls_x509_crt_free(chain)
        mbedtls_pk_free(key)
        mbedtls_x509_crt_free(trusted)
        ssl.deallocate()
        conf.deallocate()
        chain.deallocate()
        key.deallocate()
        trusted.deallocate()
    }
}

/// What one `mbedtls_ssl_read` gave.
private enum ReadResult: Equatable, CustomStringConvertible {
    case data([UInt8])
    case code(Int32)

    var description: String {
        switch self {
        case .data(let bytes): "\(bytes.count) bytes"
        case .code(let code): describe(code)
        }
    }
}

/// A client and a server, connected in memory, sharing one DRBG.
private final class Pair {
    let random = Random()
    let clientToServer = ByteQueue()
    let serverToClient = ByteQueue()
    let client: Endpoint
    let server: Endpoint

    private init() {
        client = Endpoint(random: random, transport: Transport(incoming: serverToClient, outgoing: clientToServer))
        server = Endpoint(random: random, transport: Transport(incoming: clientToServer, outgoing: serverToClient))
    }

    /// A server with `server`/`key`, a client trusting `trust` with authmode REQUIRED (the
    /// client default) and `hostname` set unless nil; `configureClient`/`configureServer`
    /// run after the defaults and before `mbedtls_ssl_setup`.
    static func make(
        server chainFile: String = "server.pem",
        key keyFile: String = "server.key",
        trust: String = "root.pem",
        hostname: String? = "localhost",
        configureClient: (Endpoint) throws -> Void = { _ in },
        configureServer: (Endpoint) throws -> Void = { _ in }
    ) throws -> Pair {
        let pair = Pair()
        try pair.random.seed()
        try pair.client.configure(endpoint: MBEDTLS_SSL_IS_CLIENT)
        try pair.server.configure(endpoint: MBEDTLS_SSL_IS_SERVER)
        try pair.server.useCertificate(chainFile, key: keyFile)
        try pair.client.trust(trust)
        try configureClient(pair.client)
        try configureServer(pair.server)
        try pair.client.setup()
        try pair.server.setup()
        if let hostname {
            try check(mbedtls_ssl_set_hostname(pair.client.ssl, hostname), "mbedtls_ssl_set_hostname")
        }
        return pair
    }

    /// Drives both handshakes alternately until both are over (0 or an error) or neither
    /// can move (one failed, the other waits for bytes that will not come). Returns the
    /// last result of each side.
    func handshake() -> (client: Int32, server: Int32) {
        var clientResult = MBEDTLS_ERR_SSL_WANT_READ, serverResult = MBEDTLS_ERR_SSL_WANT_READ
        var stalledRounds = 0
        for _ in 0..<1000 {
            let before = moved
            if isPending(clientResult) { clientResult = client.handshakeStep() }
            if isPending(serverResult) { serverResult = server.handshakeStep() }
            if !isPending(clientResult) && !isPending(serverResult) { break }
            stalledRounds = moved == before ? stalledRounds + 1 : 0
            if stalledRounds >= 2 { break }
        }
        return (clientResult, serverResult)
    }

    private var moved: Int {
        clientToServer.appended + clientToServer.consumed + serverToClient.appended + serverToClient.consumed
    }

    func write(_ endpoint: Endpoint, _ bytes: [UInt8]) -> Int32 {
        mbedtls_ssl_write(endpoint.ssl, bytes, bytes.count)
    }

    func read(_ endpoint: Endpoint, max: Int = 32 * 1024) -> ReadResult {
        var buffer = [UInt8](repeating: 0, count: max)
        let result = mbedtls_ssl_read(endpoint.ssl, &buffer, buffer.count)
        return result > 0 ? .data(Array(buffer[..<Int(result)])) : .code(result)
    }
}

private func bothSucceeded(_ result: (client: Int32, server: Int32)) -> Bool {
    result.client == 0 && result.server == 0
}

private func isPending(_ result: Int32) -> Bool {
    result == MBEDTLS_ERR_SSL_WANT_READ || result == MBEDTLS_ERR_SSL_WANT_WRITE
}

/// MBEDTLS_SSL_IN_BUFFER_LEN and MBEDTLS_SSL_OUT_BUFFER_LEN of Debian's build (the macros
/// are expressions Swift does not import): 13 + (0 compression + 16 IV + 48 MAC + 256
/// padding + 0 CID) + 16384.
private let bufferLength = (in: 16_717, out: 16_717)

/// Records what the SNI callback was given.
private final class SNIRecorder {
    var calls = 0
    var length = 0
    var name: [UInt8] = []
    /// The name lies inside the record the server received (within `in_buf`).
    var insideReceivedRecord = false
    /// The byte right after the name, read only when it is inside the received record.
    var byteAfter: UInt8?
}

private func sniCallback(
    _ context: UnsafeMutableRawPointer?, _ ssl: UnsafeMutablePointer<mbedtls_ssl_context>?,
    _ name: UnsafePointer<UInt8>?, _ length: Int
) -> Int32 {
    let recorder = Unmanaged<SNIRecorder>.fromOpaque(context!).takeUnretainedValue()
    recorder.calls += 1
    recorder.length = length
    recorder.name = Array(UnsafeBufferPointer(start: name, count: length))
    guard let ssl, let name, let inMsg = ssl.pointee.in_msg, let inLen = ssl.pointee.in_len else { return 0 }
    // The record being parsed: in_msg ..< in_msg + the length in the record header.
    let recordLength = Int(inLen[0]) << 8 | Int(inLen[1])
    let recordEnd = UnsafePointer(inMsg) + recordLength
    recorder.insideReceivedRecord = name >= UnsafePointer(inMsg) && name + length <= recordEnd
    if recorder.insideReceivedRecord && name + length < recordEnd {
        recorder.byteAfter = name[length]
    }
    return 0
}

/// A TLS 1.2 ClientHello record offering ECDHE-ECDSA-AES128-GCM-SHA256 with one extension,
/// server_name, holding `serverNames` as (name type, name) entries in order.
private func handcraftedClientHello(serverNames: [(type: UInt8, name: String)]) -> [UInt8] {
    func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
    var list: [UInt8] = []
    for entry in serverNames {
        list += [entry.type] + u16(entry.name.utf8.count) + Array(entry.name.utf8)
    }
    let serverName = u16(0) + u16(list.count + 2) + u16(list.count) + list
    var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0x5A, count: 32)  // version, random
    body += [0x00]  // no session id
    body += u16(2) + [0xC0, 0x2B]  // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    body += [0x01, 0x00]  // compression: null
    body += u16(serverName.count) + serverName
    let handshake = [0x01] + u24(body.count) + body  // client_hello
    return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
}

// MARK: - Small helpers

private struct MbedTLSFailure: Error, CustomStringConvertible {
    let call: String
    let code: Int32
    var description: String { "\(call): \(describe(code))" }
}

private func check(_ code: Int32, _ call: String) throws {
    if code != 0 { throw MbedTLSFailure(call: call, code: code) }
}

/// `-0x7280 (SSL - The connection indicated an EOF)`, or `0`.
private func describe(_ code: Int32) -> String {
    if code >= 0 { return String(code) }
    var text = [CChar](repeating: 0, count: 200)
    mbedtls_strerror(code, &text, text.count)
    let message = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return "-0x\(String(-code, radix: 16, uppercase: true)) (\(message))"
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }

private func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}

/// glibc's `malloc_usable_size` (not in the Glibc module; looked up at run time, which
/// finds AddressSanitizer's interceptor when it is loaded).
private func usableSize(_ pointer: UnsafeMutablePointer<UInt8>) -> Int {
    typealias Function = @convention(c) (UnsafeMutableRawPointer?) -> Int
    guard let symbol = dlsym(nil, "malloc_usable_size") else { return -1 }
    return unsafeBitCast(symbol, to: Function.self)(pointer)
}

private func threadCPUTime() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

private func suiteName(_ name: UnsafePointer<CChar>?) -> String {
    name.map { String(cString: $0) } ?? ""
}
