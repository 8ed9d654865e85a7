import Foundation
import Testing
@testable import StrataHTTP

@Suite struct StaticFilesTests {
    /// A temporary tree:
    /// ```
    /// base/outside/secret.txt
    /// base/www/{hello.txt, big.bin (10000 bytes), empty.txt, sp ace.txt, .env, page.HTML}
    /// base/www/sub/index.html, base/www/emptydir/, base/www/fifo
    /// base/www/link-in -> hello.txt, link-out -> ../outside/secret.txt, dirlink-out -> ../outside
    /// ```
    final class Tree {
        let base: String
        var www: String { base + "/www" }
        init() throws {
            let fm = FileManager.default
            base = NSTemporaryDirectory() + "strata-static-\(UInt64.random(in: 0...UInt64.max))"
            try fm.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: base + "/www/sub", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: base + "/www/emptydir", withIntermediateDirectories: true)
            try "secret".write(toFile: base + "/outside/secret.txt", atomically: false, encoding: .utf8)
            try "hello\n".write(toFile: base + "/www/hello.txt", atomically: false, encoding: .utf8)
            try Data(count: 10_000).write(to: URL(fileURLWithPath: base + "/www/big.bin"))
            try Data().write(to: URL(fileURLWithPath: base + "/www/empty.txt"))
            try "x".write(toFile: base + "/www/sp ace.txt", atomically: false, encoding: .utf8)
            try "KEY=1".write(toFile: base + "/www/.env", atomically: false, encoding: .utf8)
            try "<p>".write(toFile: base + "/www/page.HTML", atomically: false, encoding: .utf8)
            try "<h1>".write(toFile: base + "/www/sub/index.html", atomically: false, encoding: .utf8)
            try fm.createSymbolicLink(atPath: base + "/www/link-in", withDestinationPath: "hello.txt")
            try fm.createSymbolicLink(atPath: base + "/www/link-out", withDestinationPath: "../outside/secret.txt")
            try fm.createSymbolicLink(atPath: base + "/www/dirlink-out", withDestinationPath: "../outside")
            #expect(mkfifo(base + "/www/fifo", 0o644) == 0)
        }
        deinit { try? FileManager.default.removeItem(atPath: base) }
    }

    func kind(_ r: StaticFileResolution) -> String {
        switch r {
        case .file(let path, _, _, _, _): "file:" + (path as NSString).lastPathComponent
        case .notFound: "notFound"
        case .forbidden: "forbidden"
        case .directory: "directory"
        }
    }

    @Test func resolution() throws {
        let tree = try Tree()
        let files = try StaticFiles(root: tree.www)
        let cases: [(String, String)] = [
            ("/hello.txt", "file:hello.txt"),
            ("/hello.txt?download=1", "file:hello.txt"),
            ("//hello.txt", "file:hello.txt"),                 // empty segments skipped
            ("/sp%20ace.txt", "file:sp ace.txt"),
            ("/link-in", "file:hello.txt"),                    // symlink inside the root
            ("/sub/", "file:index.html"),
            ("/sub", "file:index.html"),
            ("/emptydir/", "directory"),
            ("/", "directory"),
            ("/missing.txt", "notFound"),
            ("/hello.txt/x", "notFound"),
            ("relative.txt", "notFound"),
            ("/../outside/secret.txt", "forbidden"),
            ("/sub/../hello.txt", "forbidden"),                 // dot segments are refused, not resolved
            ("/./hello.txt", "forbidden"),
            ("/%2e%2e/outside/secret.txt", "forbidden"),
            ("/..%2Foutside%2Fsecret.txt", "forbidden"),       // encoded "/"
            ("/hello.txt%00.png", "forbidden"),
            ("/bad%zz", "forbidden"),
            ("/.env", "forbidden"),                             // hidden
            ("/link-out", "forbidden"),                         // symlink escape
            ("/dirlink-out/secret.txt", "forbidden"),
            ("/fifo", "forbidden"),                             // not a regular file
        ]
        for (path, expected) in cases {
            #expect(kind(files.resolve(path)) == expected, "\(path)")
        }
        let hidden = try StaticFiles(root: tree.www, allowHiddenFiles: true)
        #expect(kind(hidden.resolve("/.env")) == "file:.env")
        // A root given through a symlink or with "..": resolved once, containment still holds.
        let viaDots = try StaticFiles(root: tree.www + "/../www/")
        #expect(viaDots.root == files.root)
        #expect(kind(viaDots.resolve("/link-out")) == "forbidden")
    }

    @Test func fileDetails() throws {
        let tree = try Tree()
        let files = try StaticFiles(root: tree.www)
        guard let info = files.resolve("/big.bin").fileInfo else { Issue.record("big.bin"); return }
        #expect(info.size == 10_000)
        #expect(info.path == files.root + "/big.bin")
        #expect(info.contentType == "application/octet-stream")
        #expect(info.etag.hasPrefix("\"") && info.etag.hasSuffix("-2710\""))
        let attributes = try FileManager.default.attributesOfItem(atPath: tree.www + "/big.bin")
        let mtime = (attributes[.modificationDate] as! Date).timeIntervalSince1970
        #expect(info.modifiedEpochSeconds == Int(mtime.rounded(.down)))
        #expect(files.resolve("/page.HTML").fileInfo?.contentType == "text/html; charset=utf-8")
        #expect(files.resolve("/hello.txt").fileInfo?.contentType == "text/plain; charset=utf-8")

        // 304 through the resolved file's own validators.
        #expect(StaticFiles.evaluate(method: .get, ifNoneMatch: info.etag, ifModifiedSince: nil, range: nil, ifRange: nil,
                                     file: info) == .notModified)
        #expect(StaticFiles.evaluate(method: .get, ifNoneMatch: nil,
                                     ifModifiedSince: DateCache.format(epochSeconds: info.modifiedEpochSeconds),
                                     range: nil, ifRange: nil, resolution: files.resolve("/big.bin")) == .notModified)
    }

    @Test func rootErrors() throws {
        let tree = try Tree()
        #expect(throws: StaticFilesError.rootNotFound(path: tree.base + "/nope", errno: ENOENT)) {
            try StaticFiles(root: tree.base + "/nope")
        }
        #expect(throws: StaticFilesError.rootNotADirectory(path: tree.www + "/hello.txt")) {
            try StaticFiles(root: tree.www + "/hello.txt")
        }
        #expect(StaticFilesError.rootNotADirectory(path: "/x").description.contains("\"/x\""))
    }

    static let info = StaticFileInfo(path: "/srv/x", size: 10_000, modifiedEpochSeconds: 784_111_777,
                                     etag: "\"abc\"", contentType: "application/octet-stream")

    func decide(_ method: HTTPMethod = .get, inm: String? = nil, ims: String? = nil, range: String? = nil,
                ifRange: String? = nil, size: Int64 = 10_000) -> StaticFileDecision {
        var f = Self.info
        f.size = size
        return StaticFiles.evaluate(method: method, ifNoneMatch: inm, ifModifiedSince: ims, range: range, ifRange: ifRange, file: f)
    }

    /// RFC 9110 §14.1.2, a 10000-byte representation.
    @Test func rfc9110RangeExamples() {
        #expect(decide(range: "bytes=0-499") == .partial(offset: 0, length: 500))      // the first 500 bytes
        #expect(decide(range: "bytes=500-999") == .partial(offset: 500, length: 500))  // the second 500 bytes
        #expect(decide(range: "bytes=-500") == .partial(offset: 9500, length: 500))    // the final 500 bytes
        #expect(decide(range: "bytes=9500-") == .partial(offset: 9500, length: 500))
        #expect(decide(range: "bytes=0-0,-1") == .full)                                 // first and last: multiple → 200
        #expect(decide(range: "bytes= 0-999, 4500-5499, -1000") == .full)
        #expect(decide(range: "bytes=500-600,601-999") == .full)                        // non-canonical second 500
        #expect(decide(range: "bytes=500-700,601-999") == .full)
    }

    @Test func moreRanges() {
        #expect(decide(range: "bytes=0-99999") == .partial(offset: 0, length: 10_000))    // last clamped
        #expect(decide(range: "bytes=9999-") == .partial(offset: 9999, length: 1))
        #expect(decide(range: "bytes=-20000") == .partial(offset: 0, length: 10_000))    // suffix longer than the file
        #expect(decide(range: "bytes=10000-") == .rangeNotSatisfiable(10_000))
        #expect(decide(range: "bytes=10000-20000") == .rangeNotSatisfiable(10_000))
        #expect(decide(range: "bytes=-0") == .rangeNotSatisfiable(10_000))
        #expect(decide(range: "bytes=99999999999999999999999-") == .rangeNotSatisfiable(10_000))
        #expect(decide(range: "BYTES=0-0") == .partial(offset: 0, length: 1))
        #expect(decide(range: "bytes=0-0,") == .partial(offset: 0, length: 1))            // empty list elements
        #expect(decide(range: "bytes=5-1") == .full)                                       // invalid: ignored
        #expect(decide(range: "bytes=a-b") == .full)
        #expect(decide(range: "bytes=-") == .full)
        #expect(decide(range: "bytes=0x1-2") == .full)
        #expect(decide(range: "items=0-1") == .full)
        #expect(decide(range: "0-1") == .full)
        #expect(decide(range: "bytes=") == .full)
        #expect(decide(.head, range: "bytes=0-1") == .full)                               // only GET has ranges
        #expect(decide(.post, range: "bytes=0-1") == .full)
        #expect(decide(range: "bytes=0-", size: 0) == .rangeNotSatisfiable(0))
        #expect(decide(range: "bytes=-5", size: 0) == .full)
        #expect(StaticFiles.contentRange(offset: 500, length: 500, size: 10_000) == "bytes 500-999/10000")
        #expect(StaticFiles.unsatisfiedContentRange(size: 10_000) == "bytes */10000")
    }

    @Test func ifRange() {
        #expect(decide(range: "bytes=0-1", ifRange: "\"abc\"") == .partial(offset: 0, length: 2))
        #expect(decide(range: "bytes=0-1", ifRange: "\"old\"") == .full)
        #expect(decide(range: "bytes=0-1", ifRange: "W/\"abc\"") == .full)                 // weak never matches
        #expect(decide(range: "bytes=0-1", ifRange: "Sun, 06 Nov 1994 08:49:37 GMT") == .partial(offset: 0, length: 2))
        #expect(decide(range: "bytes=0-1", ifRange: "Sun, 06 Nov 1994 08:49:38 GMT") == .full)
        #expect(decide(range: "bytes=0-1", ifRange: "garbage") == .full)
    }

    @Test func conditionals() {
        #expect(decide(inm: "\"abc\"") == .notModified)
        #expect(decide(.head, inm: "\"abc\"") == .notModified)
        #expect(decide(inm: "W/\"abc\"") == .notModified)                                  // weak comparison
        #expect(decide(inm: "\"x\", \"abc\"") == .notModified)
        #expect(decide(inm: "*") == .notModified)
        #expect(decide(inm: "\"x\"") == .full)
        #expect(decide(inm: "\"x\"", ims: "Sun, 06 Nov 1994 08:49:37 GMT") == .full)       // IMS ignored with INM
        #expect(decide(inm: "\"abc\"", range: "bytes=0-1") == .notModified)
        #expect(decide(.post, inm: "\"abc\"") == .full)
        #expect(decide(ims: "Sun, 06 Nov 1994 08:49:37 GMT") == .notModified)             // equal
        #expect(decide(ims: "Sun, 06 Nov 1994 08:49:38 GMT") == .notModified)             // later
        #expect(decide(ims: "Sun, 06 Nov 1994 08:49:36 GMT") == .full)                    // modified since
        #expect(decide(ims: "Sunday, 06-Nov-94 08:49:37 GMT") == .notModified)            // RFC 850
        #expect(decide(ims: "Sun Nov  6 08:49:37 1994") == .notModified)                  // asctime
        #expect(decide(ims: "yesterday") == .full)
        #expect(decide(ims: "Sun, 06 Nov 1994 08:49:36 GMT", range: "bytes=-1") == .partial(offset: 9999, length: 1))
    }

    @Test(arguments: [
        ("a.html", "text/html; charset=utf-8"), ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"), ("a.json", "application/json"),
        ("a.txt", "text/plain; charset=utf-8"), ("a.PNG", "image/png"), ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"), ("a.svg", "image/svg+xml"), ("a.wasm", "application/wasm"),
        ("a.woff2", "font/woff2"), ("a.unknown", "application/octet-stream"), ("Makefile", "application/octet-stream"),
        ("/dir.d/file", "application/octet-stream"), ("/x/.html", "text/html; charset=utf-8"),
    ])
    func contentTypes(path: String, type: String) {
        #expect(StaticFiles.contentType(forPath: path) == type)
    }
}
