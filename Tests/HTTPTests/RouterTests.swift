import Testing
@testable import StrataHTTP

@Suite struct RouterTests {
    static func router() -> Router<String> {
        var r = Router<String>()
        r.add(.get, "/", "root")
        r.add(.get, "/json", "json")
        r.add(.post, "/json", "json-post")
        r.add(.get, "/users/new", "users-new")
        r.add(.get, "/users/:id", "user")
        r.add(.put, "/users/:id", "user-put")
        r.add(.get, "/users/:id/edit", "user-edit")
        r.add(.get, "/users/:id/posts/:post", "user-post")
        r.add(.get, "/static/*path", "static")
        r.add(.get, "/a/", "a-slash")
        r.add(.head, "/head-only", "head-only")
        return r
    }

    /// (handler, [(name, value)]) or "405:GET,HEAD" or "404".
    func run(_ r: Router<String>, _ method: HTTPMethod, _ path: String) -> String {
        var p = path
        return p.withUTF8 { buf in
            let raw = UnsafeRawBufferPointer(buf)
            switch r.match(method: method, path: raw) {
            case .found(let h, let params):
                var s = h
                for i in 0..<params.count {
                    let (name, range) = params[index: i]
                    s += " \(name)=\(String(decoding: raw[range], as: UTF8.self))"
                }
                return s
            case .methodNotAllowed(let allowed):
                return "405:" + Router<String>.allowHeaderValue(allowed)
            case .notFound:
                return "404"
            }
        }
    }

    @Test(arguments: [
        (HTTPMethod.get, "/", "root"),
        (.get, "/json", "json"),
        (.post, "/json", "json-post"),
        (.get, "/jsonx", "404"),
        (.get, "/json/", "404"),
        (.get, "/users/new", "users-new"),               // static beats parameter
        (.get, "/users/42", "user id=42"),
        (.put, "/users/42", "user-put id=42"),
        (.get, "/users/new/edit", "user-edit id=new"),   // backtracks from the static segment
        (.get, "/users/7/posts/x%2Fy", "user-post id=7 post=x%2Fy"),   // %2F does not split
        (.get, "/users/", "404"),                        // a parameter never matches an empty segment
        (.get, "/users//edit", "404"),
        (.get, "/static/", "static path="),
        (.get, "/static/css/site.css", "static path=css/site.css"),
        (.get, "/static", "404"),
        (.get, "/a/", "a-slash"),
        (.get, "/a", "404"),
        (.get, "", "404"),
        (.get, "*", "404"),
        (.get, "//", "404"),
    ])
    func matches(method: HTTPMethod, path: String, expected: String) {
        #expect(run(Self.router(), method, path) == expected)
    }

    @Test func headMatchesGet() {
        let r = Self.router()
        #expect(run(r, .head, "/json") == "json")
        #expect(run(r, .head, "/users/9") == "user id=9")
        #expect(run(r, .head, "/head-only") == "head-only")
        #expect(run(r, .get, "/head-only") == "405:HEAD")
    }

    @Test func methodNotAllowed() {
        let r = Self.router()
        #expect(run(r, .delete, "/json") == "405:GET, HEAD, POST")
        #expect(run(r, .post, "/users/1") == "405:GET, HEAD, PUT")
        #expect(run(r, .other, "/") == "405:GET, HEAD")
        #expect(run(r, .delete, "/nowhere") == "404")
    }

    @Test func methodNotAllowedPrefersTheHighestPrecedenceRoute() {
        var r = Router<Int>()
        r.add(.post, "/x/:id", 1)
        r.add(.delete, "/x/*rest", 2)
        r.add(.get, "/x/*rest", 3)
        guard case .found(3, _) = r.match(method: .get, path: "/x/1") else { Issue.record("wildcard fallback"); return }
        guard case .methodNotAllowed(let allowed) = r.match(method: .put, path: "/x/1") else { Issue.record("405"); return }
        #expect(allowed == [.post])
    }

    @Test func parameterAccessAndDecoding() {
        var r = Router<Int>()
        r.add(.get, "/files/:dir/:name/:a/:b/:c/*rest", 1)
        let path = "/files/my%20dir/caf%C3%A9/1/2/3/x+y/%zz"
        guard case .found(1, let params) = r.match(method: .get, path: path) else { Issue.record("no match"); return }
        #expect(params.count == 6)   // more than four: overflow storage
        #expect(params.string("dir", in: path) == "my dir")
        #expect(params.string("name", in: path) == "café")
        #expect(params.string("c", in: path) == "3")
        #expect(params["rest"] != nil)
        #expect(params.string("rest", in: path) == nil)   // invalid %zz
        #expect(params.string("missing", in: path) == nil)
        var r2 = Router<Int>()
        r2.add(.get, "/q/:v", 1)
        guard case .found(_, let p2) = r2.match(method: .get, path: "/q/a+b") else { Issue.record("no match"); return }
        #expect(p2.string("v", in: "/q/a+b") == "a+b")   // "+" is not a space in a path
    }

    @Test func sendableRouterOfSendableHandlers() {
        typealias Handler = @Sendable (Int) -> Int
        var r = Router<Handler>()
        r.add(.get, "/double/:n", { $0 * 2 })
        let shared: Router<Handler> = r
        let check: @Sendable () -> Bool = {
            if case .found(let h, _) = shared.match(method: .get, path: "/double/4") { return h(4) == 8 }
            return false
        }
        #expect(check())
    }

    @Test(arguments: [
        ("/", true), ("/a/b.c", true), ("/a//b", true), ("/..a/b..", true), ("/a%2Fb", true), ("/...", true),
        ("/..", false), ("/a/../b", false), ("/.", false), ("/a/./b", false), ("/a/.", false),
        ("/%2e%2e/x", false), ("/%2E./x", false), (".%2e", false), ("/a/.%2E", false),
        ("/a\0b", false), ("/a%00b", false), ("", false), ("a/b", false),
    ])
    func safePaths(path: String, safe: Bool) {
        #expect(Router<Int>.isSafePath(path) == safe)
        #expect(HTTPPath.isSafe(path) == safe)
    }

    @Test func manyStaticRoutes() {
        var r = Router<Int>()
        for i in 0..<200 { r.add(.get, "/r\(i)/leaf", i) }
        for i in stride(from: 0, to: 200, by: 37) {
            guard case .found(let h, let params) = r.match(method: .get, path: "/r\(i)/leaf") else {
                Issue.record("no match for \(i)"); continue
            }
            #expect(h == i && params.count == 0)
        }
    }
}
