@testable import RESPKit

/// Encodes a command as a RESP multibulk request.
func multibulk(_ args: [String]) -> [UInt8] {
    multibulk(args.map { Array($0.utf8) })
}

/// Encodes a command of raw byte arguments as a RESP multibulk request.
func multibulk(_ args: [[UInt8]]) -> [UInt8] {
    var out = Array("*\(args.count)\r\n".utf8)
    for arg in args {
        out += Array("$\(arg.count)\r\n".utf8)
        out += arg
        out += Array("\r\n".utf8)
    }
    return out
}

/// The text of reply bytes (replies in these tests are ASCII/UTF-8).
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A store, a parser and a clock: feeds bytes, collects replies.
final class Session {
    let store: RESPStore
    let parser = RESPParser()
    var now: UInt64 = 1_000_000
    var buffer: [UInt8] = []
    var closed = false

    init(store: RESPStore = RESPStore(seed: 0x1234_5678)) { self.store = store }

    /// Appends `input` to the connection buffer, processes what is complete,
    /// and returns the replies produced.
    @discardableResult
    func feed(_ input: [UInt8]) -> [UInt8] {
        precondition(!closed, "fed a closed session")
        buffer += input
        var out: [UInt8] = []
        let result = buffer.withUnsafeBytes { store.process($0, parser: parser, now: now, into: &out) }
        buffer.removeFirst(result.consumed)
        if result.closeConnection { closed = true }
        return out
    }

    /// Sends one command (as multibulk) and returns the reply text.
    func send(_ args: String...) -> String { text(feed(multibulk(args))) }

    /// Sends one command given as raw byte arguments and returns the reply bytes.
    func sendRaw(_ args: [[UInt8]]) -> [UInt8] { feed(multibulk(args)) }

    /// Sends raw request text and returns the reply text.
    func raw(_ request: String) -> String { text(feed(Array(request.utf8))) }
}

/// A small deterministic generator (SplitMix64) for property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
