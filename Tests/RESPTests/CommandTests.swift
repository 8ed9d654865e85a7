import Testing
@testable import RESPKit

@Suite("Commands")
struct CommandTests {
    @Test("PING, ECHO, names in any case")
    func pingEcho() {
        let s = Session()
        #expect(s.send("PING") == "+PONG\r\n")
        #expect(s.send("ping") == "+PONG\r\n")
        #expect(s.send("PiNg", "hello") == "$5\r\nhello\r\n")
        #expect(s.send("PING", "") == "$0\r\n\r\n")
        #expect(s.send("PING", "a", "b") == "-ERR wrong number of arguments for 'ping' command\r\n")
        #expect(s.send("ECHO", "hi there") == "$8\r\nhi there\r\n")
        #expect(s.send("echo") == "-ERR wrong number of arguments for 'echo' command\r\n")
        #expect(s.send("ECHO", "a", "b") == "-ERR wrong number of arguments for 'echo' command\r\n")
        #expect(s.raw("PING\r\nping\n") == "+PONG\r\n+PONG\r\n")
        #expect(!s.closed)
    }

    @Test("SET and GET, binary values, overwrite")
    func setGet() {
        let s = Session()
        #expect(s.send("GET", "k") == "$-1\r\n")
        #expect(s.send("SET", "k", "v") == "+OK\r\n")
        #expect(s.send("GET", "k") == "$1\r\nv\r\n")
        #expect(s.send("set", "k", "") == "+OK\r\n")
        #expect(s.send("get", "k") == "$0\r\n\r\n")
        let binary: [UInt8] = [0, 13, 10, 255, 36]
        #expect(s.sendRaw([Array("SET".utf8), binary, binary]) == Array("+OK\r\n".utf8))
        #expect(s.sendRaw([Array("GET".utf8), binary]) == Array("$5\r\n".utf8) + binary + [13, 10])
        #expect(s.send("SET", "k") == "-ERR wrong number of arguments for 'set' command\r\n")
        #expect(s.send("GET") == "-ERR wrong number of arguments for 'get' command\r\n")
        #expect(s.send("GET", "a", "b") == "-ERR wrong number of arguments for 'get' command\r\n")
        // Growing and shrinking a value in place.
        #expect(s.send("SET", "k", String(repeating: "x", count: 1000)) == "+OK\r\n")
        #expect(s.send("SET", "k", "yy") == "+OK\r\n")
        #expect(s.send("GET", "k") == "$2\r\nyy\r\n")
    }

    @Test("SET options: NX, XX, GET, KEEPTTL, EX, PX and their errors")
    func setOptions() {
        let s = Session()
        #expect(s.send("SET", "k", "1", "NX") == "+OK\r\n")
        #expect(s.send("SET", "k", "2", "nx") == "$-1\r\n")
        #expect(s.send("GET", "k") == "$1\r\n1\r\n")
        #expect(s.send("SET", "other", "2", "XX") == "$-1\r\n")
        #expect(s.send("GET", "other") == "$-1\r\n")
        #expect(s.send("SET", "k", "3", "xx") == "+OK\r\n")
        #expect(s.send("SET", "k", "4", "GET") == "$1\r\n3\r\n")
        #expect(s.send("SET", "new", "5", "GET") == "$-1\r\n")
        #expect(s.send("GET", "new") == "$1\r\n5\r\n")
        // NX with GET (Redis 7): the old value, and no write.
        #expect(s.send("SET", "k", "6", "NX", "GET") == "$1\r\n4\r\n")
        #expect(s.send("GET", "k") == "$1\r\n4\r\n")
        #expect(s.send("SET", "k", "5", "NX", "XX") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "EX") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "EX", "10", "PX", "100") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "KEEPTTL", "EX", "10") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "PX", "10", "KEEPTTL") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "FOO") == "-ERR syntax error\r\n")
        #expect(s.send("SET", "k", "5", "EX", "ten") == "-ERR value is not an integer or out of range\r\n")
        #expect(s.send("SET", "k", "5", "EX", "0") == "-ERR invalid expire time in 'set' command\r\n")
        #expect(s.send("SET", "k", "5", "PX", "-5") == "-ERR invalid expire time in 'set' command\r\n")
        #expect(s.send("SET", "k", "5", "EX", "9223372036854776") == "-ERR invalid expire time in 'set' command\r\n")
        #expect(s.send("SET", "k", "5", "PX", "9223372036854775807") == "-ERR invalid expire time in 'set' command\r\n")
        #expect(s.send("GET", "k") == "$1\r\n4\r\n")
        // EX twice: the last wins, as in Redis.
        #expect(s.send("SET", "k", "5", "EX", "10", "EX", "20") == "+OK\r\n")
        #expect(s.send("TTL", "k") == ":20\r\n")
        #expect(s.send("SET", "k", "6", "PX", "1500") == "+OK\r\n")
        #expect(s.send("PTTL", "k") == ":1500\r\n")
        #expect(s.send("TTL", "k") == ":2\r\n")
        #expect(s.send("SET", "k", "7", "KEEPTTL") == "+OK\r\n")
        #expect(s.send("PTTL", "k") == ":1500\r\n")
        #expect(s.send("SET", "k", "8") == "+OK\r\n")
        #expect(s.send("TTL", "k") == ":-1\r\n")
    }

    @Test("expiry: lazy on access, with a fake clock")
    func expiry() {
        let s = Session()
        #expect(s.send("SET", "k", "v", "PX", "100") == "+OK\r\n")
        s.now += 100
        #expect(s.send("GET", "k") == "$1\r\nv\r\n")  // expires when now > deadline
        #expect(s.send("PTTL", "k") == ":0\r\n")
        #expect(s.send("TTL", "k") == ":0\r\n")
        s.now += 1
        #expect(s.send("GET", "k") == "$-1\r\n")
        #expect(s.store.count == 0)
        #expect(s.send("SET", "k", "v", "EX", "10") == "+OK\r\n")
        s.now += 10_001
        #expect(s.send("TTL", "k") == ":-2\r\n")
        #expect(s.send("SET", "a", "1", "EX", "5") == "+OK\r\n")
        s.now += 6000
        #expect(s.send("SET", "a", "2", "NX") == "+OK\r\n")  // the expired key counts as absent
        #expect(s.send("TTL", "a") == ":-1\r\n")
        #expect(s.send("SET", "b", "1", "EX", "5") == "+OK\r\n")
        s.now += 6000
        #expect(s.send("DEL", "b") == ":0\r\n")
        #expect(s.send("SET", "c", "1", "EX", "5") == "+OK\r\n")
        s.now += 6000
        #expect(s.send("INCR", "c") == ":1\r\n")
    }

    @Test("TTL rounds like Redis: (ms + 500) / 1000")
    func ttlRounding() {
        let s = Session()
        #expect(s.send("SET", "k", "v", "PX", "1499") == "+OK\r\n")
        #expect(s.send("TTL", "k") == ":1\r\n")
        #expect(s.send("SET", "k", "v", "PX", "1500") == "+OK\r\n")
        #expect(s.send("TTL", "k") == ":2\r\n")
        #expect(s.send("SET", "k", "v", "PX", "499") == "+OK\r\n")
        #expect(s.send("TTL", "k") == ":0\r\n")
        #expect(s.send("TTL", "missing") == ":-2\r\n")
        #expect(s.send("PTTL", "missing") == ":-2\r\n")
        #expect(s.send("TTL") == "-ERR wrong number of arguments for 'ttl' command\r\n")
    }

    @Test("EXPIRE: :1/:0, negative deletes, options, errors")
    func expire() {
        let s = Session()
        #expect(s.send("EXPIRE", "k", "10") == ":0\r\n")
        #expect(s.send("SET", "k", "v") == "+OK\r\n")
        #expect(s.send("EXPIRE", "k", "10") == ":1\r\n")
        #expect(s.send("TTL", "k") == ":10\r\n")
        #expect(s.send("EXPIRE", "k", "20", "NX") == ":0\r\n")
        #expect(s.send("EXPIRE", "k", "20", "XX") == ":1\r\n")
        #expect(s.send("EXPIRE", "k", "5", "GT") == ":0\r\n")
        #expect(s.send("EXPIRE", "k", "30", "gt") == ":1\r\n")
        #expect(s.send("EXPIRE", "k", "40", "LT") == ":0\r\n")
        #expect(s.send("EXPIRE", "k", "3", "LT") == ":1\r\n")
        #expect(s.send("TTL", "k") == ":3\r\n")
        #expect(s.send("EXPIRE", "k", "3", "NX", "XX") == "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n")
        #expect(s.send("EXPIRE", "k", "3", "GT", "LT") == "-ERR GT and LT options at the same time are not compatible\r\n")
        #expect(s.send("EXPIRE", "k", "3", "FOO") == "-ERR Unsupported option FOO\r\n")
        #expect(s.send("EXPIRE", "k", "abc") == "-ERR value is not an integer or out of range\r\n")
        #expect(s.send("EXPIRE", "k", "9223372036854776") == "-ERR invalid expire time in 'expire' command\r\n")
        #expect(s.send("EXPIRE", "k") == "-ERR wrong number of arguments for 'expire' command\r\n")
        #expect(s.send("EXPIRE", "k", "0") == ":1\r\n")
        #expect(s.send("GET", "k") == "$-1\r\n")
        #expect(s.send("SET", "k", "v") == "+OK\r\n")
        #expect(s.send("EXPIRE", "k", "-1") == ":1\r\n")
        #expect(s.send("GET", "k") == "$-1\r\n")
        #expect(s.send("SET", "k", "v") == "+OK\r\n")
        #expect(s.send("EXPIRE", "k", "5", "LT") == ":1\r\n")  // no TTL counts as infinite
        #expect(s.send("SET", "k", "v") == "+OK\r\n")
        #expect(s.send("EXPIRE", "k", "5", "GT") == ":0\r\n")
    }

    @Test("DEL counts removed keys")
    func del() {
        let s = Session()
        #expect(s.send("MSET", "a", "1", "b", "2", "c", "3") == "+OK\r\n")
        #expect(s.send("DEL", "a", "x", "b", "a") == ":2\r\n")
        #expect(s.send("DEL", "c") == ":1\r\n")
        #expect(s.send("DEL", "c") == ":0\r\n")
        #expect(s.send("DEL") == "-ERR wrong number of arguments for 'del' command\r\n")
        #expect(s.store.count == 0)
    }

    @Test("INCR: from nothing, on integers, errors and overflow")
    func incr() {
        let s = Session()
        #expect(s.send("INCR", "n") == ":1\r\n")
        #expect(s.send("INCR", "n") == ":2\r\n")
        #expect(s.send("GET", "n") == "$1\r\n2\r\n")
        #expect(s.send("SET", "n", "-1") == "+OK\r\n")
        #expect(s.send("INCR", "n") == ":0\r\n")
        #expect(s.send("INCR", "n") == ":1\r\n")
        #expect(s.send("SET", "n", "9") == "+OK\r\n")
        #expect(s.send("INCR", "n") == ":10\r\n")
        #expect(s.send("GET", "n") == "$2\r\n10\r\n")
        for bad in ["abc", "", " 1", "1 ", "01", "+1", "1.5", "9223372036854775808", "-0"] {
            #expect(s.send("SET", "n", bad) == "+OK\r\n")
            #expect(s.send("INCR", "n") == "-ERR value is not an integer or out of range\r\n", "\(bad)")
        }
        #expect(s.send("SET", "n", "9223372036854775806") == "+OK\r\n")
        #expect(s.send("INCR", "n") == ":9223372036854775807\r\n")
        // Redis 7 words the overflow of a valid integer this way.
        #expect(s.send("INCR", "n") == "-ERR increment or decrement would overflow\r\n")
        #expect(s.send("GET", "n") == "$19\r\n9223372036854775807\r\n")
        #expect(s.send("SET", "m", "-9223372036854775808") == "+OK\r\n")
        #expect(s.send("INCR", "m") == ":-9223372036854775807\r\n")
        // INCR keeps the TTL.
        #expect(s.send("SET", "t", "1", "EX", "100") == "+OK\r\n")
        #expect(s.send("INCR", "t") == ":2\r\n")
        #expect(s.send("TTL", "t") == ":100\r\n")
        #expect(s.send("INCR") == "-ERR wrong number of arguments for 'incr' command\r\n")
    }

    @Test("MGET and MSET")
    func mgetMset() {
        let s = Session()
        #expect(s.send("MSET", "a", "1", "b", "22") == "+OK\r\n")
        #expect(s.send("MGET", "a", "missing", "b") == "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n")
        #expect(s.send("MSET", "a") == "-ERR wrong number of arguments for 'mset' command\r\n")
        #expect(s.send("MSET", "a", "1", "b") == "-ERR wrong number of arguments for 'mset' command\r\n")
        #expect(s.send("MSET") == "-ERR wrong number of arguments for 'mset' command\r\n")
        #expect(s.send("MGET") == "-ERR wrong number of arguments for 'mget' command\r\n")
        #expect(s.send("SET", "a", "x", "EX", "10") == "+OK\r\n")
        #expect(s.send("MSET", "a", "y") == "+OK\r\n")
        #expect(s.send("TTL", "a") == ":-1\r\n")  // MSET clears the TTL
        #expect(s.send("MSET", "d", "1", "d", "2") == "+OK\r\n")
        #expect(s.send("GET", "d") == "$1\r\n2\r\n")
    }

    @Test("COMMAND, CONFIG GET, SELECT, QUIT: what redis-benchmark and redis-cli send")
    func administrative() {
        let s = Session()
        #expect(s.send("COMMAND", "DOCS") == "*0\r\n")
        #expect(s.send("command") == "*0\r\n")
        #expect(s.send("COMMAND", "COUNT") == ":15\r\n")
        #expect(s.send("COMMAND", "foo") == "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n")
        #expect(s.send("CONFIG", "GET", "save") == "*2\r\n$4\r\nsave\r\n$0\r\n\r\n")
        #expect(s.send("CONFIG", "GET", "appendonly") == "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")
        #expect(s.send("config", "get", "SAVE", "appendonly") == "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")
        #expect(s.send("CONFIG", "GET", "maxmemory") == "*0\r\n")
        #expect(s.send("CONFIG", "GET") == "-ERR wrong number of arguments for 'config|get' command\r\n")
        #expect(s.send("CONFIG") == "-ERR wrong number of arguments for 'config' command\r\n")
        #expect(s.send("config", "set", "x", "y") == "-ERR unknown subcommand 'set'. Try CONFIG HELP.\r\n")
        #expect(s.send("SELECT", "0") == "+OK\r\n")
        #expect(s.send("SELECT", "1") == "-ERR DB index is out of range\r\n")
        #expect(s.send("SELECT", "x") == "-ERR value is not an integer or out of range\r\n")
        #expect(s.send("SELECT") == "-ERR wrong number of arguments for 'select' command\r\n")
        #expect(!s.closed)
        // QUIT: +OK, then close; what follows in the buffer is not executed.
        #expect(s.raw("QUIT\r\nSET a b\r\n") == "+OK\r\n")
        #expect(s.closed)
        #expect(s.store.count == 0)
    }

    @Test("unknown commands: Redis 7's message, 128-byte limits, CR/LF shown as spaces")
    func unknownCommand() {
        let s = Session()
        #expect(s.send("foo", "a", "b") == "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n")
        #expect(s.send("foo") == "-ERR unknown command 'foo', with args beginning with: \r\n")
        #expect(s.send("getx", "k") == "-ERR unknown command 'getx', with args beginning with: 'k' \r\n")
        #expect(s.send("a\r\nb") == "-ERR unknown command 'a  b', with args beginning with: \r\n")
        let long = String(repeating: "n", count: 200)
        #expect(s.send(long) == "-ERR unknown command '\(String(repeating: "n", count: 128))', with args beginning with: \r\n")
        // Arguments: "'%.*s' " with precision 128 - length so far, while length < 128.
        let a = String(repeating: "a", count: 100)
        let b = String(repeating: "b", count: 100)
        #expect(s.send("x", a, b, "c") == "-ERR unknown command 'x', with args beginning with: '\(a)' '\(String(repeating: "b", count: 25))' \r\n")
        #expect(s.send("x", "q\0r") == "-ERR unknown command 'x', with args beginning with: 'q' \r\n")
        #expect(!s.closed)
    }

    @Test("1 MiB values round-trip")
    func largeValues() {
        let s = Session()
        let value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        #expect(s.sendRaw([Array("SET".utf8), Array("big".utf8), value]) == Array("+OK\r\n".utf8))
        #expect(s.sendRaw([Array("GET".utf8), Array("big".utf8)]) == Array("$1048576\r\n".utf8) + value + [13, 10])
        // Fed in 1000-byte pieces.
        let request = multibulk([Array("SET".utf8), Array("big2".utf8), value])
        var replies: [UInt8] = []
        var offset = 0
        while offset < request.count {
            let end = min(request.count, offset + 1000)
            replies += s.feed(Array(request[offset..<end]))
            offset = end
        }
        #expect(text(replies) == "+OK\r\n")
        #expect(s.buffer.isEmpty)
        #expect(s.sendRaw([Array("ECHO".utf8), value]) == Array("$1048576\r\n".utf8) + value + [13, 10])
    }
}
