import Testing
@testable import RESPKit

/// Parses `input` once and returns the outcome with copied arguments.
private enum Parsed: Equatable {
    case command([[UInt8]], consumed: Int)
    case needMore(consumed: Int)
    case error(RESPProtocolError)
}

private func parseOnce(_ input: [UInt8], parser: RESPParser = RESPParser()) -> Parsed {
    input.withUnsafeBytes { raw in
        switch parser.parse(raw) {
        case .command(let command, let consumed): return .command(command.arguments, consumed: consumed)
        case .needMore(let consumed): return .needMore(consumed: consumed)
        case .protocolError(let error): return .error(error)
        }
    }
}

private func args(_ words: String...) -> [[UInt8]] { words.map { Array($0.utf8) } }

@Suite("RESP request parser")
struct ParserTests {
    @Test("a multibulk request gives its arguments and its exact length")
    func multibulkBasics() {
        let request = Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".utf8)
        #expect(parseOnce(request) == .command(args("SET", "key", "value"), consumed: request.count))
        let pipelined = request + Array("*1\r\n$4\r\nPING\r\n".utf8)
        #expect(parseOnce(pipelined) == .command(args("SET", "key", "value"), consumed: request.count))
    }

    @Test("bulk payloads are binary-safe: CR, LF and NUL inside a bulk string")
    func binarySafe() {
        let payload: [UInt8] = [0, 13, 10, 36, 42, 255]
        let request = multibulk([Array("ECHO".utf8), payload])
        #expect(parseOnce(request) == .command([Array("ECHO".utf8), payload], consumed: request.count))
        let empty = multibulk([Array("ECHO".utf8), []])
        #expect(parseOnce(empty) == .command([Array("ECHO".utf8), []], consumed: empty.count))
    }

    @Test("empty multibulk requests and blank inline lines are skipped and counted")
    func emptyRequests() {
        #expect(parseOnce(Array("*0\r\n".utf8)) == .needMore(consumed: 4))
        #expect(parseOnce(Array("*-1\r\n".utf8)) == .needMore(consumed: 5))
        #expect(parseOnce(Array("\r\n\n   \r\n".utf8)) == .needMore(consumed: 8))
        let request = Array("*0\r\n\r\nPING\r\n".utf8)
        #expect(parseOnce(request) == .command(args("PING"), consumed: request.count))
    }

    @Test("incomplete requests ask for more and consume nothing")
    func incomplete() {
        let request = Array("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n".utf8)
        for cut in 0..<request.count {
            #expect(parseOnce(Array(request[..<cut])) == .needMore(consumed: 0), "cut at \(cut)")
        }
        #expect(parseOnce(Array("PING".utf8)) == .needMore(consumed: 0))
        #expect(parseOnce(Array("PING\r".utf8)) == .needMore(consumed: 0))
    }

    @Test("a 1 MiB bulk trickling in is resumed, not rescanned", arguments: [997, 65_536, 1 << 20])
    func resumesLargeBulk(chunk: Int) {
        let value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let request = multibulk([Array("SET".utf8), Array("big".utf8), value])
        let parser = RESPParser()
        var buffer: [UInt8] = []
        var position = 0
        var parsed: [[UInt8]]?
        let step = chunk
        while parsed == nil {
            let next = min(request.count, position + step)
            buffer += request[position..<next]
            position = next
            let outcome = parseOnce(buffer, parser: parser)
            switch outcome {
            case .needMore(let consumed):
                #expect(consumed == 0)
                #expect(position < request.count)
                #expect(parser.hasPartialRequest)
                // Once the value's length line is in, the hint is the exact request size.
                #expect(parser.bytesNeededHint == (position >= 32 ? request.count : position + 1))
            case .command(let arguments, let consumed):
                #expect(consumed == request.count)
                parsed = arguments
            case .error(let error):
                Issue.record("unexpected \(error)")
                return
            }
        }
        #expect(parsed == [Array("SET".utf8), Array("big".utf8), value])
        #expect(parser.bytesNeededHint >= 1)
        #expect(!parser.hasPartialRequest)
    }

    @Test("a request with many arguments arriving byte by byte")
    func manyArgumentsTrickle() {
        let words = (0..<300).map { Array("arg\($0)".utf8) }
        let request = multibulk(words)
        let parser = RESPParser()
        var buffer: [UInt8] = []
        for (index, byte) in request.enumerated() {
            buffer.append(byte)
            let outcome = parseOnce(buffer, parser: parser)
            if index == request.count - 1 {
                #expect(outcome == .command(words, consumed: request.count))
            } else if outcome != .needMore(consumed: 0) {
                Issue.record("byte \(index): \(outcome)")
                return
            }
        }
    }

    @Test("inline commands: words, CRLF or LF, runs of blanks")
    func inlineWords() {
        #expect(parseOnce(Array("PING\r\n".utf8)) == .command(args("PING"), consumed: 6))
        #expect(parseOnce(Array("PING\n".utf8)) == .command(args("PING"), consumed: 5))
        #expect(parseOnce(Array("  set  k\tv  \r\n".utf8)) == .command(args("set", "k", "v"), consumed: 14))
        // A lone CR inside the line separates words; \v and \f are blanks only between words.
        #expect(parseOnce(Array("a\rb\n".utf8)) == .command(args("a", "b"), consumed: 4))
        #expect(parseOnce(Array("\u{0B}a\u{0B}b\n".utf8)) == .command(args("a\u{0B}b"), consumed: 5))
        // The first NUL ends the line, as in C.
        #expect(parseOnce([UInt8]("a b".utf8) + [0] + Array("c\n".utf8)) == .command(args("a", "b"), consumed: 6))
    }

    @Test("inline double quotes: escapes, hex bytes, quotes inside words")
    func inlineDoubleQuotes() {
        #expect(parseOnce(Array("SET \"a b\" \"\"\r\n".utf8)) == .command(args("SET", "a b", ""), consumed: 14))
        #expect(parseOnce(Array(#"ECHO "x\n\r\t\b\a\"\\\q""#.utf8) + [10])
            == .command([Array("ECHO".utf8), [120, 10, 13, 9, 8, 7, 34, 92, 113]], consumed: 25))
        #expect(parseOnce(Array(#"ECHO "\x41\x7a\xff\xZZ""#.utf8) + [10])
            == .command([Array("ECHO".utf8), [0x41, 0x7A, 0xFF, 120, 90, 90]], consumed: 24))
        // A quote may open in the middle of a word (sdssplitargs).
        #expect(parseOnce(Array("foo\"bar baz\"\n".utf8)) == .command(args("foobar baz"), consumed: 13))
    }

    @Test("inline single quotes: only \\' is an escape")
    func inlineSingleQuotes() {
        #expect(parseOnce(Array(#"ECHO 'it\'s \n'"#.utf8) + [10])
            == .command(args("ECHO", #"it's \n"#), consumed: 16))
        #expect(parseOnce(Array("ECHO '' 'a\"b'\n".utf8)) == .command(args("ECHO", "", "a\"b"), consumed: 14))
    }

    @Test("unbalanced quotes close the connection")
    func unbalancedQuotes() {
        for line in ["ECHO \"abc\n", "ECHO 'abc\n", "ECHO \"abc\"def\n", "ECHO 'a'b\n", "ECHO \"a\\\"\n"] {
            #expect(parseOnce(Array(line.utf8)) == .error(.unbalancedQuotes), "\(line)")
        }
    }

    @Test("inline lines: at most 64 KiB before the LF, whatever the split")
    func inlineLimit() {
        let longest = [UInt8](repeating: UInt8(ascii: "a"), count: RESPParser.maxInlineLength)
        #expect(parseOnce(longest + [10]) == .command([longest], consumed: longest.count + 1))
        #expect(parseOnce(longest) == .needMore(consumed: 0))
        #expect(parseOnce(longest + [UInt8(ascii: "a")]) == .error(.tooBigInlineRequest))
        #expect(parseOnce(longest + [UInt8(ascii: "a"), 10]) == .error(.tooBigInlineRequest))
        // Fed in pieces: the scan resumes and the limit is the same.
        let parser = RESPParser()
        var buffer: [UInt8] = []
        for _ in 0..<64 {
            buffer += [UInt8](repeating: UInt8(ascii: "b"), count: 1024)
            #expect(parseOnce(buffer, parser: parser) == .needMore(consumed: 0))
        }
        buffer.append(UInt8(ascii: "b"))
        #expect(parseOnce(buffer, parser: parser) == .error(.tooBigInlineRequest))
    }

    @Test("limits: multibulk count and bulk length")
    func limits() {
        #expect(parseOnce(Array("*1048576\r\n".utf8)) == .needMore(consumed: 0))
        #expect(parseOnce(Array("*1048577\r\n".utf8)) == .error(.invalidMultibulkLength))
        #expect(parseOnce(Array("*1\r\n$536870912\r\n".utf8)) == .needMore(consumed: 0))
        #expect(parseOnce(Array("*1\r\n$536870913\r\n".utf8)) == .error(.invalidBulkLength))
    }

    @Test("after a protocol error every call repeats it; reset clears it")
    func stickyError() {
        let parser = RESPParser()
        #expect(parseOnce(Array("*x\r\n".utf8), parser: parser) == .error(.invalidMultibulkLength))
        #expect(parseOnce(Array("PING\r\n".utf8), parser: parser) == .error(.invalidMultibulkLength))
        parser.reset()
        #expect(parseOnce(Array("PING\r\n".utf8), parser: parser) == .command(args("PING"), consumed: 6))
    }

    @Test("error replies are Redis 7's texts, byte for byte")
    func errorTexts() {
        #expect(text(RESPProtocolError.invalidMultibulkLength.reply) == "-ERR Protocol error: invalid multibulk length\r\n")
        #expect(text(RESPProtocolError.invalidBulkLength.reply) == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(text(RESPProtocolError.expectedDollar(got: UInt8(ascii: "x")).reply) == "-ERR Protocol error: expected '$', got 'x'\r\n")
        #expect(text(RESPProtocolError.expectedDollar(got: 13).reply) == "-ERR Protocol error: expected '$', got ' '\r\n")
        #expect(text(RESPProtocolError.unbalancedQuotes.reply) == "-ERR Protocol error: unbalanced quotes in request\r\n")
        #expect(text(RESPProtocolError.tooBigInlineRequest.reply) == "-ERR Protocol error: too big inline request\r\n")
        #expect(RESPProtocolError.expectedDollar(got: UInt8(ascii: "x")).message == "Protocol error: expected '$', got 'x'")
        #expect(RESPProtocolError.invalidBulkLength.closesConnection)
    }

    @Test("parseRedisInteger follows string2ll")
    func integers() {
        func parse(_ s: String) -> Int64? { Array(s.utf8).withUnsafeBytes { parseRedisInteger($0) } }
        #expect(parse("0") == 0)
        #expect(parse("-1") == -1)
        #expect(parse("9223372036854775807") == Int64.max)
        #expect(parse("-9223372036854775808") == Int64.min)
        for bad in ["", "-", "-0", "00", "01", "+1", " 1", "1 ", "1.0", "9223372036854775808",
                    "-9223372036854775809", "123456789012345678901", "0x10", "1e3"] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }
}
