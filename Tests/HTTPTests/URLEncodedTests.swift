import Testing
@testable import StrataHTTP

@Suite struct URLEncodedTests {
    func parse(_ s: String, maxPairs: Int = URLEncoded.defaultMaxPairs) throws(URLEncodedError) -> [String] {
        try URLEncoded.parse(s, maxPairs: maxPairs).map { "\($0.name)=\($0.value)" }
    }

    @Test(arguments: [
        ("", [String]()),
        ("a=1", ["a=1"]),
        ("a=1&b=2", ["a=1", "b=2"]),
        ("a=1&a=2", ["a=1", "a=2"]),                       // duplicates kept, in order
        ("&&a=1&&", ["a=1"]),                              // empty pieces skipped
        ("a", ["a="]),                                      // no "=": empty value
        ("=v", ["=v"]),                                     // empty name
        ("a==b", ["a==b"]),                                 // split at the first "="
        ("a+b=c+d", ["a b=c d"]),                           // "+" is a space
        ("q=%2B1", ["q=+1"]),
        ("k%3Dx=v%26w", ["k=x=v&w"]),
        ("name=caf%C3%A9", ["name=café"]),
        ("x=%e2%82%ac", ["x=€"]),                           // lowercase hex
        ("x=%FF", ["x=\u{FFFD}"]),                          // invalid UTF-8 → U+FFFD (WHATWG)
        ("x=%C3", ["x=\u{FFFD}"]),
        ("x=a%20b%20", ["x=a b "]),
        ("emoji=%F0%9F%98%80", ["emoji=😀"]),
        ("sp=%20+%20", ["sp=   "]),
        ("semi=a;b", ["semi=a;b"]),                         // ";" is not a separator
    ])
    func corpus(input: String, expected: [String]) throws {
        #expect(try parse(input) == expected)
    }

    @Test(arguments: [
        ("a=%zz", 2), ("a=%", 2), ("a=%4", 2), ("%g0=1", 0), ("ok=1&b=x%2", 8), ("a=%%41", 2), ("a=% 4", 2),
    ])
    func malformed(input: String, offset: Int) {
        #expect(throws: URLEncodedError.invalidPercentEncoding(offset: offset)) { try parse(input) }
    }

    @Test func pairLimit() throws {
        let many = (0..<1000).map { "k\($0)=v" }.joined(separator: "&")
        #expect(try parse(many).count == 1000)
        #expect(throws: URLEncodedError.tooManyPairs(limit: 1000)) { try parse(many + "&x=1") }
        #expect(throws: URLEncodedError.tooManyPairs(limit: 2)) { try parse("a&b&c", maxPairs: 2) }
        #expect(try parse("a&&&b", maxPairs: 2) == ["a=", "b="])   // empty pieces do not count
    }

    @Test func decodeComponent() throws {
        #expect(try URLEncoded.decodeComponent("a+b%2Fc") == "a b/c")
        #expect(try URLEncoded.decodeComponent("a+b%2Fc", plusAsSpace: false) == "a+b/c")
        #expect(try URLEncoded.decodeComponent("plain") == "plain")
        #expect(throws: URLEncodedError.invalidPercentEncoding(offset: 1)) { try URLEncoded.decodeComponent("x%") }
        let bytes: [UInt8] = Array("%41%42".utf8)
        #expect(try bytes.withUnsafeBytes { try URLEncoded.decodeComponent($0) } == "AB")
        #expect(URLEncodedError.invalidPercentEncoding(offset: 7).description.contains("offset 7"))
    }
}
