import Testing
@testable import RESPKit

/// One malformed request: the bytes, the replies expected (any valid commands
/// before the fault are answered first, then the protocol error).
struct MalformedCase: CustomTestStringConvertible, Sendable {
    let input: [UInt8]
    let replies: String
    var testDescription: String {
        let shown = String(decoding: input.prefix(40), as: UTF8.self)
        return shown.replacingCRLF() + (input.count > 40 ? "… (\(input.count) bytes)" : "")
    }

    init(_ input: String, _ error: String, before: String = "") {
        self.init(Array(input.utf8), error, before: before)
    }

    init(_ input: [UInt8], _ error: String, before: String = "") {
        self.input = input
        self.replies = before + "-ERR Protocol error: " + error + "\r\n"
    }
}

extension String {
    func replacingCRLF() -> String {
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

let badMultibulk = "invalid multibulk length"
let badBulk = "invalid bulk length"
let badQuotes = "unbalanced quotes in request"
func expectedDollar(_ got: String) -> String { "expected '$', got '\(got)'" }

let malformedCorpus: [MalformedCase] = [
    // The multibulk count.
    MalformedCase("*x\r\n", badMultibulk),
    MalformedCase("*-\r\n", badMultibulk),
    MalformedCase("*--1\r\n", badMultibulk),
    MalformedCase("*01\r\n", badMultibulk),
    MalformedCase("*+1\r\n", badMultibulk),
    MalformedCase("*1 \r\n", badMultibulk),
    MalformedCase("*1a\r\n", badMultibulk),
    MalformedCase("*\r\n", badMultibulk),
    MalformedCase("*1048577\r\n", badMultibulk),
    MalformedCase("*2147483648\r\n", badMultibulk),
    MalformedCase("*99999999999999999999\r\n", badMultibulk),
    MalformedCase("*1\n$4\r\nPING\r\n", badMultibulk),
    MalformedCase("*1.0\r\n", badMultibulk),
    // The element type.
    MalformedCase("*1\r\nPING\r\n", expectedDollar("P")),
    MalformedCase("*1\r\n:4\r\n", expectedDollar(":")),
    MalformedCase("*1\r\n#4\r\n", expectedDollar("#")),
    MalformedCase("*1\r\n-4\r\n", expectedDollar("-")),
    MalformedCase("*1\r\n\r\n", expectedDollar(" ")),
    MalformedCase("*1\r\n\n", expectedDollar(" ")),
    MalformedCase("*2\r\n$3\r\nGET\r\n*1\r\n", expectedDollar("*")),
    MalformedCase("*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n*1\r\nX", expectedDollar("X"), before: "$1\r\nx\r\n"),
    // The bulk length.
    MalformedCase("*1\r\n$x\r\n", badBulk),
    MalformedCase("*1\r\n$-1\r\n", badBulk),
    MalformedCase("*1\r\n$\r\n", badBulk),
    MalformedCase("*1\r\n$04\r\nPING\r\n", badBulk),
    MalformedCase("*1\r\n$+4\r\nPING\r\n", badBulk),
    MalformedCase("*1\r\n$4 \r\nPING\r\n", badBulk),
    MalformedCase("*1\r\n$4a\r\n", badBulk),
    MalformedCase("*1\r\n$4\nPING\r\n", badBulk),
    MalformedCase("*1\r\n$1.5\r\n", badBulk),
    MalformedCase("*1\r\n$536870913\r\n", badBulk),
    MalformedCase("*1\r\n$99999999999999999999999\r\n", badBulk),
    MalformedCase("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-5\r\n", badBulk),
    MalformedCase([UInt8]("*1\r\n$".utf8) + [0x7F, 13, 10], badBulk),
    // Inline quoting.
    MalformedCase("ECHO \"abc\r\n", badQuotes),
    MalformedCase("ECHO 'abc\r\n", badQuotes),
    MalformedCase("ECHO \"a\"b\r\n", badQuotes),
    MalformedCase("ECHO 'a'b\r\n", badQuotes),
    MalformedCase("\"\r\n", badQuotes),
    MalformedCase("'\n", badQuotes),
    MalformedCase("SET \"k v\r\n", badQuotes),
    MalformedCase("ECHO \"\\x4\"x\r\n", badQuotes),
    MalformedCase("ECHO \"a\\\"\n", badQuotes),
    // Inline length.
    MalformedCase([UInt8](repeating: UInt8(ascii: "a"), count: 65_537), "too big inline request"),
    MalformedCase([UInt8](repeating: UInt8(ascii: "a"), count: 70_000) + [10], "too big inline request"),
    // Valid commands before the fault are answered.
    MalformedCase("PING\r\n*x\r\n", badMultibulk, before: "+PONG\r\n"),
    MalformedCase("*1\r\n$4\r\nPING\r\nECHO 'x\r\n", badQuotes, before: "+PONG\r\n"),
]

@Suite("Robustness")
struct RobustnessTests {
    @Test("the corpus has at least 40 cases")
    func corpusSize() { #expect(malformedCorpus.count >= 40) }

    @Test("malformed requests: Redis' error, then close; nothing after is run", arguments: malformedCorpus)
    func malformed(_ testCase: MalformedCase) {
        // Whole, followed by a command that must not run.
        let whole = Session()
        let replies = whole.feed(testCase.input + Array("\r\nSET after x\r\n".utf8))
        #expect(text(replies) == testCase.replies)
        #expect(whole.closed)
        #expect(whole.store.count == 0)
        // Byte by byte: the same replies, the same close.
        let trickle = Session()
        var collected: [UInt8] = []
        for byte in testCase.input where !trickle.closed {
            collected += trickle.feed([byte])
        }
        #expect(text(collected) == testCase.replies)
        #expect(trickle.closed)
    }

    @Test("any split of a pipeline of random valid commands gives the same commands and replies",
          arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func splitIndependence(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let pipeline = randomPipeline(count: 200, using: &rng)
        let reference = runInChunks(pipeline, chunkSizes: [pipeline.count])
        #expect(reference.commands.count == 200)
        for round in 0..<12 {
            var sizes: [Int] = []
            var total = 0
            while total < pipeline.count {
                let size: Int
                switch round % 3 {
                case 0: size = Int.random(in: 1...3, using: &rng)
                case 1: size = Int.random(in: 1...64, using: &rng)
                default: size = Int.random(in: 1...2048, using: &rng)
                }
                sizes.append(size)
                total += size
            }
            let split = runInChunks(pipeline, chunkSizes: sizes)
            #expect(split.commands == reference.commands, "round \(round)")
            #expect(split.replies == reference.replies, "round \(round)")
        }
    }

    @Test("table: random operations agree with a Dictionary model, across growth and deletion")
    func tableModel() {
        var rng = SplitMix64(seed: 99)
        var table = ByteTable(seed: 5, capacity: 16)
        var model: [[UInt8]: [UInt8]] = [:]
        for step in 0..<20_000 {
            let key = Array("k\(Int.random(in: 0..<700, using: &rng))".utf8)
            let value = Array("v\(step)".utf8)
            key.withUnsafeBytes { k in
                let hash = table.hash(k)
                let found = table.find(k, hash: hash)
                #expect((found != nil) == (model[key] != nil))
                if Bool.random(using: &rng) || step < 2000 {
                    value.withUnsafeBytes { v in
                        if let found { table[found.entry].setValue(v) } else {
                            table.insert(key: k, hash: hash, value: v, expireAt: -1)
                        }
                    }
                    model[key] = value
                } else if let found {
                    table.remove(slot: found.slot, entry: found.entry)
                    model[key] = nil
                }
            }
        }
        #expect(table.count == model.count)
        for (key, value) in model {
            let stored: [UInt8]? = key.withUnsafeBytes { k in
                table.find(k, hash: table.hash(k)).map { found in
                    let entry = table[found.entry]
                    return Array(entry.bytes[entry.valueStart..<(entry.valueStart + entry.valueCount)])
                }
            }
            #expect(stored == value)
        }
    }

    @Test("expireSweep removes expired keys with bounded work")
    func sweep() {
        let s = Session()
        for i in 0..<100 {
            #expect(s.send("SET", "t\(i)", "v", "PX", "\(10 + i % 2 * 1000)") == "+OK\r\n")
            #expect(s.send("SET", "p\(i)", "v") == "+OK\r\n")
        }
        #expect(s.store.count == 200)
        s.now += 11
        var removed = 0
        var calls = 0
        while removed < 50 && calls < 100 {
            let n = s.store.expireSweep(now: s.now, budget: 10)
            #expect(n <= 10)
            removed += n
            calls += 1
        }
        #expect(removed == 50)
        #expect(s.store.count == 150)
        #expect(s.store.expireSweep(now: s.now, budget: 1000) == 0)
        s.now += 1000
        #expect(s.store.expireSweep(now: s.now, budget: 1000) == 50)
        #expect(s.store.count == 100)
        #expect(s.send("GET", "p7") == "$1\r\nv\r\n")
        #expect(s.store.expireSweep(now: s.now, budget: 0) == 0)
    }
}

/// Feeds `pipeline` in chunks of the given sizes, recording each command
/// parsed and all replies.
private func runInChunks(_ pipeline: [UInt8], chunkSizes: [Int]) -> (commands: [[[UInt8]]], replies: [UInt8]) {
    let store = RESPStore(seed: 77)
    let parser = RESPParser()
    var buffer: [UInt8] = []
    var commands: [[[UInt8]]] = []
    var replies: [UInt8] = []
    var offset = 0
    for size in chunkSizes {
        let end = min(pipeline.count, offset + size)
        buffer += pipeline[offset..<end]
        offset = end
        let consumed: Int = buffer.withUnsafeBytes { raw in
            var position = 0
            while true {
                switch parser.parse(UnsafeRawBufferPointer(rebasing: raw[position...])) {
                case .command(let command, let consumed):
                    commands.append(command.arguments)
                    _ = store.execute(command, now: 5000, into: &replies)
                    position += consumed
                case .needMore(let consumed):
                    return position + consumed
                case .protocolError(let error):
                    Issue.record("unexpected \(error)")
                    return raw.count
                }
            }
        }
        buffer.removeFirst(consumed)
    }
    #expect(buffer.isEmpty)
    return (commands, replies)
}

/// A pipeline of random valid requests, multibulk and inline.
private func randomPipeline(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    func word(_ rng: inout SplitMix64) -> [UInt8] {
        (0..<Int.random(in: 1...12, using: &rng)).map { _ in UInt8.random(in: UInt8(ascii: "a")...UInt8(ascii: "z"), using: &rng) }
    }
    func binary(_ rng: inout SplitMix64) -> [UInt8] {
        let length = Int.random(in: 0...3, using: &rng) == 0 ? Int.random(in: 0...5000, using: &rng) : Int.random(in: 0...20, using: &rng)
        return (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    var out: [UInt8] = []
    for _ in 0..<count {
        let key = Array("key\(Int.random(in: 0..<8, using: &rng))".utf8)
        let args: [[UInt8]]
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: args = [Array("PING".utf8)]
        case 1: args = [Array("ECHO".utf8), binary(&rng)]
        case 2: args = [Array("SET".utf8), key, binary(&rng)]
        case 3: args = [Array("get".utf8), key]
        case 4: args = [Array("INCR".utf8), key]
        case 5: args = [Array("DEL".utf8), key, word(&rng)]
        case 6: args = [Array("MSET".utf8), key, word(&rng), word(&rng), binary(&rng)]
        case 7: args = [Array("MGET".utf8), key, word(&rng)]
        case 8: args = [Array("SET".utf8), key, word(&rng), Array("PX".utf8), Array("\(Int.random(in: 1...9999, using: &rng))".utf8)]
        default: args = [Array("TTL".utf8), key]
        }
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:
            // Inline, words only when safe; quoted otherwise.
            var line: [UInt8] = []
            for (index, arg) in args.enumerated() {
                if index > 0 { line += [32] }
                line += [UInt8(ascii: "\"")]
                for byte in arg {
                    line += Array(String(format2Hex: byte).utf8)
                }
                line += [UInt8(ascii: "\"")]
            }
            out += line + (Bool.random(using: &rng) ? [13, 10] : [10])
        case 1:
            out += Array("*0\r\n".utf8) + multibulk(args)
        default:
            out += multibulk(args)
        }
    }
    return out
}

extension String {
    /// `\xHH` for a byte.
    init(format2Hex byte: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        self = "\\x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
    }
}
