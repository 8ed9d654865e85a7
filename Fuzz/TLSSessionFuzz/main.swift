// libFuzzer target for StrataTLS: a server TLSSession fed ciphertext.
//
// Built by Fuzz/run-tls-session.sh with
//   swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo \
//       <the Modules/TLS/Sources files that import neither Sched nor Events> \
//       Fuzz/TLSSessionFuzz/main.swift .build-fuzz/tls-session/FuzzPKI.swift
// so the session sources and this file form one module (internals visible), linked with
// StrataThreads and StrataSockets built from their sources and the system mbedTLS.
// FuzzPKI.swift is written by the script: a root CA and a server chain for "localhost"
// (ECDSA P-256), made with the openssl CLI.
//
// Input: byte 0 selects the mode and flags, then
//   mode 0  raw: a fresh server session gets the rest as its first ciphertext (ClientHello …)
//   mode 1  second flight: the server has answered a real full-handshake ClientHello; the
//           rest replaces the client's second flight (ClientKeyExchange, CCS, Finished)
//   mode 2  resumed second flight: the server has answered a real ClientHello that offers a
//           session ticket; the rest replaces the client's CCS and Finished
//   mode 3  post-handshake: a real (resumed) handshake completes, then the rest is a list
//           of operations: records of any content type encrypted with the client's keys,
//           encrypted then tampered, raw bytes, and server steps (read, hibernate, write,
//           the client's close_notify)
// Modes 0–2 feed the rest in up to three chunks (split points from bytes 1–2).
// Mode 3 reads operations until the input ends, each selected by its first byte's low bits:
//   0  record: type, length (2 bytes, at most 16 KiB), body — encrypted with the client's keys
//   1  raw: n, then n bytes fed as they are
//   2  tampered record: as 0, then position and mask: one byte of the ciphertext flipped
//   3  step: the server reads; bit 0x04 then hibernates it (when it can), bit 0x08 makes it
//      write (bits 5–7 choose the size, up to 28 KiB), bit 0x10 sends the client's close_notify
// Flags in byte 0: 0x04 end of stream after the input; 0x08 small (7-byte) read buffers.
// STRATA_TLS_FUZZ_VERBOSE=1 prints one line per input (mode, plaintext, how it ended).
//
// For every input it checks:
//  1. no crash, no out-of-bounds access (ASan), no unbounded loop (libFuzzer -timeout);
//  2. no plaintext before the handshake completes, and in modes 0–2 no completed handshake at
//     all (the input cannot know the keys to forge a Finished);
//  3. in mode 3 the plaintext delivered is a prefix of the intact application-data records
//     sent, in order: nothing from a tampered or raw record, nothing after close_notify;
//  4. errors are sticky: after an error, handshake(), read(), write() and close() throw the
//     same error, produce no ciphertext, and the handshake state does not change;
//  5. after end of stream a read never asks for more input (it ends in an error or close).

import CStrataMbedTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@inline(never)
func fail(_ message: String) -> Never {
    fatalError("TLSSessionFuzz: \(message)")
}

func pemBytes(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

// MARK: - The world: configurations and captured flights, made once

final class World {
    let server: TLSConfiguration
    /// A client that always makes full handshakes (no tickets, no cache).
    let fullClient: TLSConfiguration
    /// A client whose cache holds a ticket from the server, so its sessions resume.
    let resumingClient: TLSConfiguration
    /// A real ClientHello without a ticket, and one offering a ticket.
    var fullHello: [UInt8] = []
    var resumingHello: [UInt8] = []

    init() {
        do {
            server = try TLSConfiguration.server(
                identity: .pem(certificateChain: pemBytes(fuzzServerChainPEM), privateKey: pemBytes(fuzzServerKeyPEM)),
                alpn: ["http/1.1"])
            var noResumption = TLSOptions()
            noResumption.sessionTickets = false
            noResumption.sessionCacheSize = 0
            fullClient = try TLSConfiguration.client(trustRoots: .pem(pemBytes(fuzzRootPEM)), alpn: ["http/1.1"], options: noResumption)
            resumingClient = try TLSConfiguration.client(trustRoots: .pem(pemBytes(fuzzRootPEM)), alpn: ["http/1.1"])
        } catch {
            fail("harness: configuration: \(error)")
        }
        // A full handshake fills resumingClient's cache with a session and its ticket.
        do {
            var client = newClient(resumingClient)
            var server = newServer()
            guard handshakePair(&client, &server) else { fail("harness: the warm-up handshake failed") }
        }
        do {
            var client = newClient(fullClient)
            fullHello = firstFlight(&client)
        }
        do {
            var client = newClient(resumingClient)
            resumingHello = firstFlight(&client)
        }
    }

    func newServer() -> TLSSession {
        do { return try TLSSession(server: server) } catch { fail("harness: TLSSession(server:): \(error)") }
    }

    func newClient(_ configuration: TLSConfiguration) -> TLSSession {
        do { return try TLSSession(client: configuration, serverName: "localhost") } catch { fail("harness: TLSSession(client:): \(error)") }
    }
}

func firstFlight(_ client: inout TLSSession) -> [UInt8] {
    do { _ = try client.handshake() } catch { fail("harness: client hello: \(error)") }
    return client.takeOutput()
}

/// Both handshakes in memory; false if either fails or stalls.
func handshakePair(_ client: inout TLSSession, _ server: inout TLSSession) -> Bool {
    var clientDone = false
    var serverDone = false
    for _ in 0..<20 {
        do { if !clientDone { clientDone = try client.handshake() } } catch { return false }
        server.feed(client.takeOutput())
        do { if !serverDone { serverDone = try server.handshake() } } catch { return false }
        client.feed(server.takeOutput())
        if clientDone && serverDone { return true }
    }
    return false
}

nonisolated(unsafe) var world: World!
/// STRATA_TLS_FUZZ_VERBOSE=1: one line per input (mode, plaintext delivered, how it ended).
nonisolated(unsafe) var verbose = false

func report(_ mode: UInt8, _ seen: Observed, resumed: Bool) {
    guard verbose else { return }
    let end = seen.error.map { "error \($0.kind) \($0.operation) \($0.code): \($0.message)" } ?? (seen.closed ? "close_notify" : "wants input")
    print("mode \(mode)\(resumed ? " (resumed)" : ""): \(seen.delivered.count) bytes delivered, \(seen.hibernations) hibernations; \(end)")
}

// MARK: - Driving the server and checking it

/// What the server's application saw.
struct Observed {
    var delivered: [UInt8] = []
    var closed = false
    var error: TLSError?
    var errorWithHandshakeComplete = false
    var endOfStream = false
    var smallReads = false
    var hibernations = 0
}

/// Reads until the server wants input, closes or fails, checking every result.
func pump(_ server: inout TLSSession, _ seen: inout Observed) {
    guard seen.error == nil else { return }
    var buffer = [UInt8](repeating: 0, count: seen.smallReads ? 7 : 16_500)
    for _ in 0..<100_000 {
        let result = buffer.withUnsafeMutableBytes { b in
            Result { () throws(TLSError) -> TLSSession.ReadResult in try server.read(into: b) }
        }
        switch result {
        case .success(.bytes(let n)):
            if n <= 0 || n > buffer.count { fail("read returned \(n) bytes into a \(buffer.count)-byte buffer") }
            if !server.isHandshakeComplete { fail("plaintext delivered before the handshake completed") }
            if seen.closed { fail("plaintext delivered after close_notify") }
            seen.delivered += buffer[0..<n]
        case .success(.wantRead):
            if seen.endOfStream { fail("read wants more input after end of stream") }
            _ = server.takeOutput()
            return
        case .success(.closed):
            seen.closed = true
            _ = server.takeOutput()
            // And it stays closed.
            let again = buffer.withUnsafeMutableBytes { b in
                Result { () throws(TLSError) -> TLSSession.ReadResult in try server.read(into: b) }
            }
            if case .success(let r) = again, r != .closed { fail("read after close_notify returned \(r)") }
            return
        case .failure(let error):
            seen.error = error
            seen.errorWithHandshakeComplete = server.isHandshakeComplete
            checkSticky(&server, error)
            return
        }
    }
    fail("the read loop did not end")
}

/// After an error, every call throws the same error and produces no ciphertext.
func checkSticky(_ server: inout TLSSession, _ first: TLSError) {
    _ = server.takeOutput()  // may hold the alert
    let complete = server.isHandshakeComplete
    do {
        let done = try server.handshake()
        fail("handshake() returned \(done) after \(first)")
    } catch {
        if error != first { fail("handshake() threw \(error) after \(first)") }
    }
    var buffer = [UInt8](repeating: 0, count: 64)
    let read = buffer.withUnsafeMutableBytes { b in
        Result { () throws(TLSError) -> TLSSession.ReadResult in try server.read(into: b) }
    }
    switch read {
    case .success(let r): fail("read returned \(r) after \(first)")
    case .failure(let e): if e != first { fail("read threw \(e) after \(first)") }
    }
    let payload: [UInt8] = Array("after the error".utf8)
    let write = payload.withUnsafeBytes { b in Result { () throws(TLSError) -> Int in try server.write(b) } }
    switch write {
    case .success(let n): fail("write accepted \(n) bytes after \(first)")
    case .failure(let e): if e != first { fail("write threw \(e) after \(first)") }
    }
    do {
        try server.close()
        fail("close() succeeded after \(first)")
    } catch {
        if error != first { fail("close() threw \(error) after \(first)") }
    }
    if server.hasOutput { fail("ciphertext produced after \(first)") }
    if server.isHandshakeComplete != complete { fail("the handshake state changed after \(first)") }
    if server.error != first { fail("error property \(String(describing: server.error)) is not \(first)") }
}

// MARK: - Input

struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func take(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, remaining))
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
}

// MARK: - Modes 0–2: ciphertext before the handshake completes

func runHandshakeMode(_ mode: UInt8, flags: UInt8, _ input: UnsafeBufferPointer<UInt8>) {
    var server = world.newServer()
    var seen = Observed()
    seen.smallReads = flags & 0x08 != 0
    if mode == 1 || mode == 2 {
        // The server answers a real ClientHello first; its flight goes nowhere.
        server.feed(mode == 1 ? world.fullHello : world.resumingHello)
        pump(&server, &seen)
        if let error = seen.error { fail("harness: the server refused a real ClientHello: \(error)") }
    }
    let split1 = input.count > 0 ? Int(input[0]) : 0
    let split2 = input.count > 1 ? Int(input[1]) : 0
    let payload = UnsafeBufferPointer(rebasing: input[min(2, input.count)...])
    let n = payload.count
    let bounds = [split1 * n / 256, split2 * n / 256].sorted() + [n]
    var fed = 0
    for bound in bounds where bound > fed {
        server.feed(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(payload)[fed..<bound]))
        fed = bound
        pump(&server, &seen)
    }
    if flags & 0x04 != 0 {
        server.feedEndOfStream()
        seen.endOfStream = true
        pump(&server, &seen)
        if seen.error == nil && !seen.closed { fail("end of stream during the handshake did not end the session") }
    }
    if server.isHandshakeComplete || seen.errorWithHandshakeComplete {
        fail("mode \(mode): the handshake completed on ciphertext that cannot know the keys")
    }
    if !seen.delivered.isEmpty { fail("mode \(mode): \(seen.delivered.count) bytes of plaintext without a handshake") }
    report(mode, seen, resumed: server.isResumed)
}

// MARK: - Mode 3: records after a real handshake

/// Encrypts one record of `type` with the client's keys (mbedTLS's record layer, so any
/// content type and length up to 16 KiB), and returns its ciphertext.
func encryptedRecord(_ client: inout TLSSession, type: UInt8, _ body: [UInt8]) -> [UInt8] {
    let ssl = client.ssl
    guard let msg = ssl.pointee.out_msg, body.count <= Int(MBEDTLS_SSL_OUT_CONTENT_LEN) else { fail("harness: no record buffer") }
    body.withUnsafeBufferPointer { b in
        if let base = b.baseAddress { msg.update(from: base, count: b.count) }
    }
    ssl.pointee.out_msgtype = Int32(type)
    ssl.pointee.out_msglen = body.count
    let rc = mbedtls_ssl_write_record(ssl, 1)
    if rc != 0 { fail("harness: mbedtls_ssl_write_record: \(TLSError.text(for: rc))") }
    return client.takeOutput()
}

func runRecordMode(flags: UInt8, _ input: UnsafeBufferPointer<UInt8>) {
    var client = world.newClient(world.resumingClient)
    var server = world.newServer()
    guard handshakePair(&client, &server) else { fail("harness: the handshake before the records failed") }
    var seen = Observed()
    seen.smallReads = flags & 0x08 != 0
    var expected: [UInt8] = []
    var reader = Reader(bytes: input)
    while let op = reader.byte() {
        switch op & 3 {
        case 0, 2:
            // A record of any content type, encrypted with the client's keys; kind 2 is then
            // tampered with (one byte anywhere, header included).
            guard let type = reader.byte(), let hi = reader.byte(), let lo = reader.byte() else { break }
            let length = min(Int(hi) << 8 | Int(lo), Int(MBEDTLS_SSL_OUT_CONTENT_LEN))
            let body = reader.take(length)
            var record = encryptedRecord(&client, type: type, body)
            if op & 3 == 2 {
                let position = Int(reader.byte() ?? 0) * record.count / 256
                record[position] ^= (reader.byte() ?? 0x40) | 1
            } else if type == 23 {
                expected += body
            }
            server.feed(record)
        case 1:
            // Raw bytes on the wire.
            let n = Int(reader.byte() ?? 0)
            server.feed(reader.take(n))
        default:
            pump(&server, &seen)
            if op & 0x04 != 0 && server.hibernate() { seen.hibernations += 1 }
            if op & 0x08 != 0 && seen.error == nil && !seen.closed {
                let reply: [UInt8] = Array(repeating: op, count: Int(op >> 5) * 4099 + 1)
                let result = reply.withUnsafeBytes { b in Result { () throws(TLSError) -> Int in try server.write(b) } }
                switch result {
                case .success(let n): if n != reply.count { fail("write took \(n) of \(reply.count) bytes with nothing queued") }
                case .failure(let error):
                    seen.error = error
                    seen.errorWithHandshakeComplete = server.isHandshakeComplete
                    checkSticky(&server, error)
                }
                _ = server.takeOutput()
            }
            if op & 0x10 != 0 {
                // The client's real close_notify.
                do { try client.close() } catch { fail("harness: client close: \(error)") }
                server.feed(client.takeOutput())
            }
        }
    }
    pump(&server, &seen)
    if flags & 0x04 != 0 && seen.error == nil {
        server.feedEndOfStream()
        seen.endOfStream = true
        pump(&server, &seen)
        if seen.error == nil && !seen.closed { fail("end of stream did not end the session") }
    }
    if !expected.starts(with: seen.delivered) {
        fail("delivered \(seen.delivered.count) bytes that are not a prefix of the \(expected.count) bytes of intact application data")
    }
    report(3, seen, resumed: server.isResumed)
}

// MARK: - Entry points

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    world = World()
    verbose = getenv("STRATA_TLS_FUZZ_VERBOSE") != nil
    if let dir = getenv("STRATA_TLS_FUZZ_WRITE_SEEDS") {
        writeSeeds(to: String(cString: dir))
        exit(0)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let mode = input[0] & 3
    let flags = input[0]
    let rest = UnsafeBufferPointer(rebasing: input[1...])
    if mode == 3 {
        runRecordMode(flags: flags, rest)
    } else {
        runHandshakeMode(mode, flags: flags, rest)
    }
    return 0
}

// MARK: - Seeds

/// Real flights captured in memory, framed for each mode.
func writeSeeds(to dir: String) {
    var seeds: [(String, [UInt8])] = []
    seeds.append(("mode0-client-hello", [0x00, 0x40, 0xC0] + world.fullHello))
    seeds.append(("mode0-client-hello-ticket-eof", [0x04, 0x10, 0x80] + world.resumingHello))
    seeds.append(("mode0-client-hello-small-reads", [0x08, 0x00, 0x00] + world.fullHello))

    // The client's real second flight of a full handshake.
    do {
        var client = world.newClient(world.fullClient)
        var server = world.newServer()
        server.feed(firstFlight(&client))
        _ = try? server.handshake()
        client.feed(server.takeOutput())
        _ = try? client.handshake()
        seeds.append(("mode1-second-flight", [0x01, 0x20, 0x90] + client.takeOutput()))
    }
    // The client's CCS and Finished of a resumed handshake.
    do {
        var client = world.newClient(world.resumingClient)
        var server = world.newServer()
        server.feed(firstFlight(&client))
        _ = try? server.handshake()
        client.feed(server.takeOutput())
        _ = try? client.handshake()
        seeds.append(("mode2-resumed-finished", [0x02, 0x06, 0x80] + client.takeOutput()))
    }
    // Records after the handshake.
    func record(_ type: UInt8, _ body: [UInt8], tamper: Bool = false) -> [UInt8] {
        [tamper ? 2 : 0, type, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body + (tamper ? [0xC0, 0x40] : [])
    }
    let step: UInt8 = 3
    let request = Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
    // The handshake message inside the full ClientHello record (a renegotiation attempt).
    let helloMessage = Array(world.fullHello.dropFirst(5))
    seeds.append(("mode3-data-close", [0x03] + record(23, request) + [step] + record(21, [1, 0]) + [step]))
    seeds.append(("mode3-data-reply-eof", [0x07] + record(23, request) + [step | 0x08 | 0x60] + [step | 0x04] + record(23, Array("more".utf8))))
    seeds.append(("mode3-fatal-alert", [0x03] + record(21, [2, 40]) + [step]))
    seeds.append(("mode3-renegotiation", [0x03] + record(22, helloMessage) + [step] + record(23, request) + [step]))
    seeds.append(("mode3-ccs-empty-unknown", [0x0B] + record(20, [1]) + record(23, []) + record(24, [1, 2, 3]) + [step]))
    seeds.append(("mode3-tampered", [0x03] + record(23, request, tamper: true) + [step]))
    seeds.append(("mode3-raw", [0x03, 1, 5, 23, 3, 3, 0, 40] + [step]))
    seeds.append(("mode3-client-close", [0x03] + record(23, request) + [step | 0x10, step]))
    seeds.append(("mode3-hibernate", [0x0B] + record(23, request) + [step | 0x04] + record(23, request) + [step | 0x04, step]))

    for (name, bytes) in seeds {
        let path = dir + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { fail("cannot write \(path)") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
    print("\(seeds.count) seed files in \(dir)")
}
