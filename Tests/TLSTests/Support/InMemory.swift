import StrataTLS
import Testing

/// Runs two sessions' handshake against each other in memory, moving each side's output
/// to the other, until both finish or one fails.
struct HandshakeOutcome {
    var client: TLSError?
    var server: TLSError?
    var completed: Bool { client == nil && server == nil }
}

func runHandshake(client: inout TLSSession, server: inout TLSSession, maxRounds: Int = 40) -> HandshakeOutcome {
    var outcome = HandshakeOutcome()
    var clientDone = false
    var serverDone = false
    for _ in 0..<maxRounds {
        if !clientDone && outcome.client == nil {
            do { clientDone = try client.handshake() } catch { outcome.client = error }
        }
        server.feed(client.takeOutput())
        if !serverDone && outcome.server == nil {
            do { serverDone = try server.handshake() } catch { outcome.server = error }
        }
        client.feed(server.takeOutput())
        if (clientDone || outcome.client != nil) && (serverDone || outcome.server != nil) { break }
        if outcome.client != nil || outcome.server != nil {
            // One side failed: give the other one more turn to read the alert.
            if !clientDone && outcome.client == nil { do { clientDone = try client.handshake() } catch { outcome.client = error } }
            if !serverDone && outcome.server == nil { do { serverDone = try server.handshake() } catch { outcome.server = error } }
            break
        }
    }
    if !(clientDone || outcome.client != nil) || !(serverDone || outcome.server != nil) {
        if outcome.client == nil && !clientDone { outcome.client = TLSError(.handshake, message: "test: client made no progress") }
        if outcome.server == nil && !serverDone { outcome.server = TLSError(.handshake, message: "test: server made no progress") }
    }
    return outcome
}

/// Reads everything `session` can decrypt now (after feeding it), up to `limit` bytes.
func drain(_ session: inout TLSSession, limit: Int = 8 << 20) throws -> (bytes: [UInt8], closed: Bool) {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while out.count < limit {
        let r = try buffer.withUnsafeMutableBytes { b in try session.read(into: b) }
        switch r {
        case .bytes(let n): out += buffer[0..<n]
        case .wantRead: return (out, false)
        case .closed: return (out, true)
        }
    }
    return (out, false)
}

/// Writes all of `bytes` through `from`, delivering the ciphertext to `to` as it goes.
func send(_ bytes: [UInt8], from: inout TLSSession, to: inout TLSSession) throws -> [UInt8] {
    var offset = 0
    var received: [UInt8] = []
    while offset < bytes.count {
        let n = try bytes.withUnsafeBytes { b in try from.write(UnsafeRawBufferPointer(rebasing: b[offset...])) }
        offset += n
        to.feed(from.takeOutput())
        received += try drain(&to).bytes
    }
    return received
}
