import Foundation
import Testing

/// DESIGN §1: a module imports only modules to its left in
///
///     Sockets ─┐
///              ├─> Events ─> Sched ─> HTTP
///     Threads ─┘                 └──> TLS
///
/// plus the toolchain, CStrataSys and the few third-party packages named in §8.
/// This test reads every `import` line under Modules/ and fails on any other.
@Suite("Layering rule")
struct LayeringTests {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// Toolchain modules every runtime module may import. Foundation is absent on purpose:
    /// no Foundation in the runtime modules (DESIGN, engineering standards).
    static let toolchain: Set<String> = ["Glibc", "Musl", "Darwin", "Android", "Bionic", "Synchronization", "_Concurrency"]

    /// Folder under Modules/ → (module name, modules it may import besides the toolchain).
    static let rule: [String: (module: String, allowed: Set<String>)] = [
        "CStrataSys": ("CStrataSys", []),
        "Sockets": ("StrataSockets", ["CStrataSys"]),
        "Threads": ("StrataThreads", ["CStrataSys"]),
        "Events": ("StrataEvents", ["CStrataSys", "StrataSockets", "StrataThreads"]),
        "Sched": ("StrataSched", ["CStrataSys", "StrataSockets", "StrataThreads", "StrataEvents"]),
        "HTTP": ("StrataHTTP", ["CStrataSys", "StrataSockets", "StrataThreads", "StrataEvents", "StrataSched",
                                "Logging", "Metrics", "CoreMetrics", "HTTPTypes", "ServiceLifecycle", "DequeModule", "HeapModule"]),
        "TLS": ("StrataTLS", ["CStrataSys", "CStrataMbedTLS", "StrataSockets", "StrataThreads", "StrataEvents",
                              "StrataSched", "Logging"]),
    ]

    /// The module names of every `import` declaration in a Swift source.
    static func imports(in source: String) -> [String] {
        var result: [String] = []
        for raw in source.split(separator: "\n", omittingEmptySubsequences: false) {
            var words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            // Drop attributes and access modifiers: @testable, @preconcurrency, @_exported, public, internal, …
            while let w = words.first, w.hasPrefix("@") || ["public", "internal", "package", "private", "fileprivate"].contains(w) {
                words.removeFirst()
            }
            guard words.first == "import", words.count >= 2 else { continue }
            // `import struct Glibc.timespec` names the module after the kind keyword.
            let kinds: Set<String> = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]
            let path = kinds.contains(words[1]) && words.count >= 3 ? words[2] : words[1]
            result.append(String(path.split(separator: ".").first ?? Substring(path)))
        }
        return result
    }

    /// Every violation under Modules/: "Sockets/Sources/X.swift imports Foundation".
    static func violations(modulesRoot: URL) throws -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        for folder in try fm.contentsOfDirectory(atPath: modulesRoot.path).sorted() where !folder.hasPrefix(".") {
            guard let entry = rule[folder] else {
                found.append("Modules/\(folder) is not in the layering rule: add it to LayeringTests.rule (and DESIGN §1)")
                continue
            }
            let dir = modulesRoot.appendingPathComponent(folder)
            guard let e = fm.enumerator(atPath: dir.path) else { continue }
            for case let rel as String in e where rel.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(rel), encoding: .utf8)
                for m in imports(in: text) where !toolchain.contains(m) && !entry.allowed.contains(m) && m != entry.module {
                    found.append("Modules/\(folder)/\(rel) imports \(m), which \(entry.module) may not import")
                }
            }
        }
        return found
    }

    @Test("every module imports only what the layering rule allows")
    func modulesFollowTheRule() throws {
        let v = try Self.violations(modulesRoot: Self.root.appendingPathComponent("Modules"))
        #expect(v.isEmpty, "\(v.joined(separator: "\n"))")
    }

    @Test("the import scanner sees every form of import")
    func scannerSeesAllForms() {
        let src = """
        import Glibc
        @preconcurrency import Foundation
        @_exported public import StrataEvents
        internal import struct StrataSched.Loop
        @testable import StrataHTTP
        // import NotAnImport
        let x = "import Nope"
        """
        #expect(Self.imports(in: src) == ["Glibc", "Foundation", "StrataEvents", "StrataSched", "StrataHTTP"])
    }

    @Test("a module that imports a module to its right, or Foundation, is caught")
    func violationsAreCaught() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("strata-layering-\(getpid())")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let sockets = tmp.appendingPathComponent("Sockets/Sources")
        try FileManager.default.createDirectory(at: sockets, withIntermediateDirectories: true)
        try "import StrataEvents\nimport Foundation\nimport Glibc\n".write(
            to: sockets.appendingPathComponent("Bad.swift"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("Mystery"), withIntermediateDirectories: true)
        let v = try Self.violations(modulesRoot: tmp)
        #expect(v.contains("Modules/Sockets/Sources/Bad.swift imports StrataEvents, which StrataSockets may not import"))
        #expect(v.contains("Modules/Sockets/Sources/Bad.swift imports Foundation, which StrataSockets may not import"))
        #expect(v.contains { $0.hasPrefix("Modules/Mystery is not in the layering rule") })
        #expect(v.count == 3)
    }
}
