import ArgumentParser
import Foundation
import _StrataABIKit

@main
struct StrataABI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata-abi",
        abstract: "Audit, show, compare and regenerate Strata's per-target ABI tables.",
        discussion: """
            Tables live in abi-tables/<target>.json. Linux tables are generated from real headers with each \
            target's compiler (compile only: values are read back from the object file); Darwin and FreeBSD \
            tables are transcribed and marked unverified. See docs/abi.md.
            """,
        subcommands: [Audit.self, Show.self, Diff.self, Generate.self, ListTargets.self]
    )
}

struct RootOption: ParsableArguments {
    @Option(help: "Repository root (the directory holding abi-tables/). Default: found upward from the current directory.")
    var root: String?

    func resolve() throws -> URL {
        if let root { return URL(fileURLWithPath: root) }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        guard let found = Generator.findRoot(from: cwd) else {
            throw ValidationError("no abi-tables/ directory at or above \(cwd.path): run inside the Strata repository or pass --root")
        }
        return found
    }
}

func lookupTarget(_ name: String) throws -> TargetSpec {
    guard let t = Targets.named(name) else {
        throw ValidationError("unknown target '\(name)'; known targets: \(Targets.all.map(\.name).joined(separator: ", "))")
    }
    return t
}

/// Left-aligned text columns.
func columns(_ rows: [[String]], header: [String]? = nil) -> String {
    let all = (header.map { [$0] } ?? []) + rows
    guard let n = all.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: n)
    for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    var out: [String] = []
    if let header {
        out.append(line(header))
        out.append(line(widths.prefix(header.count).map { String(repeating: "-", count: $0) }))
    }
    out += rows.map(line)
    return out.joined(separator: "\n")
}

func show(_ v: Int64??) -> String {
    switch v {
    case .none: return "(not checked)"
    case .some(.none): return "undefined"
    case .some(.some(let x)): return x > 255 && x & (x - 1) == 0 ? "\(x) (0x\(String(x, radix: 16)))" : "\(x)"
    }
}

func show(_ t: ABITable.TypeLayout??) -> String {
    switch t {
    case .none: return "(not checked)"
    case .some(.none): return "undefined"
    case .some(.some(let l)): return "size \(l.size), align \(l.alignment)"
    }
}

// MARK: - audit

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this host against its table: importer view, live headers and kernel probes. Exit 1 on any mismatch.")

    @OptionGroup var root: RootOption
    @Flag(help: "Print a JSON report instead of tables.") var json = false
    @Flag(help: "Skip re-probing the headers with the C compiler.") var noHeaders = false

    struct Report: Codable {
        var target: String
        var table: String
        var verified: String
        var compileTime: String
        var importer: Section
        var headers: Section
        var kernel: [ProbeResult]
        var ok: Bool
    }

    struct Section: Codable {
        var status: String
        var checked: Int
        var mismatches: [String]
        var notes: [String]
    }

    func run() throws {
        let rootURL = try root.resolve()
        let hostName = ImporterCheck.hostTable
        let table = try ABITable.load(named: hostName, root: rootURL)
        let spec = try lookupTarget(hostName)

        let imp = ImporterCheck.compare(table)
        let importer = Section(status: imp.mismatches.isEmpty ? "ok" : "mismatch", checked: imp.checked,
                               mismatches: imp.mismatches.map(\.description),
                               notes: imp.notImported.isEmpty ? [] : ["\(imp.notImported.count) entries invisible to Swift, proven by the C assertions: \(imp.notImported.keys.sorted().joined(separator: ", "))"])

        var headers = Section(status: "skipped", checked: 0, mismatches: [], notes: [])
        if !noHeaders {
            if spec.compiler.flatMap(Shell.which) == nil {
                headers.notes.append("\(spec.compiler ?? "a C compiler") not installed: headers not re-probed (install \(spec.debianPackages.joined(separator: " ")))")
            } else {
                let work = FileManager.default.temporaryDirectory.appendingPathComponent("strata-abi-audit-\(getpid())")
                defer { try? FileManager.default.removeItem(at: work) }
                let live = try Probe.generate(spec, workDirectory: work)
                var mism: [String] = []
                var checked = 0
                for (k, v) in table.constants.sorted(by: { $0.key < $1.key }) {
                    let l = live.constants[k] ?? nil
                    if l == v { checked += 1 } else { mism.append("table \(k) = \(show(.some(v))), headers \(k) = \(show(.some(l)))") }
                }
                for (k, v) in table.types.sorted(by: { $0.key < $1.key }) {
                    let l = live.types[k] ?? nil
                    if l == v { checked += 1 } else {
                        mism.append("table \(k) = \(show(.some(v))) \(v?.fields.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" } ?? []), headers \(k) = \(show(.some(l))) \(l?.fields.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" } ?? [])")
                    }
                }
                headers = Section(status: mism.isEmpty ? "ok" : "mismatch", checked: checked, mismatches: mism,
                                  notes: ["re-probed with \(live.provenance.compiler)"])
            }
        }

        let kernel = KernelProbes.all(table: table)
        let ok = imp.mismatches.isEmpty && headers.mismatches.isEmpty && !kernel.contains { $0.status == .mismatch }
        let report = Report(
            target: hostName, table: GeneratedPaths.table(spec), verified: table.verified,
            compileTime: "ok: this binary was built, so CStrataSys compiled \(GeneratedPaths.assertionHeader(spec))'s assertions",
            importer: importer, headers: headers, kernel: kernel, ok: ok)

        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print("strata-abi audit — host target \(hostName)")
            print("table: \(report.table)\n  \(table.verified)\n")
            print(columns([
                ["compile time", "ok", "static assertions of \(GeneratedPaths.assertionHeader(spec)) held when CStrataSys was built"],
                ["importer", importer.status, "\(importer.checked) entries equal to Swift's MemoryLayout / imported constants"],
                ["headers", headers.status, headers.status == "skipped" ? (headers.notes.first ?? "--no-headers") : "\(headers.checked) entries equal to a fresh probe of the installed headers"],
            ], header: ["check", "status", "detail"]))
            for m in importer.mismatches + headers.mismatches { print("  MISMATCH \(m)") }
            for n in importer.notes { print("  note: \(n)") }
            print("\nkernel probes")
            print(columns(kernel.map { [$0.name, $0.status.rawValue, $0.detail] }, header: ["probe", "status", "detail"]))
            print("\n\(ok ? "OK: the host matches its table" : "FAIL: the host disagrees with its table (see MISMATCH lines)")")
        }
        if !ok { throw ExitCode(1) }
    }
}

// MARK: - show

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print one target's table.")

    @Argument(help: "Target name, e.g. linux-gnu-x86_64.") var target: String
    @Option(help: "Only this group (errno, fcntl, socket, inet, tcp, misc, epoll, kqueue, io_uring, pthread, scalar).")
    var group: String?
    @Flag(help: "Print the JSON table.") var json = false
    @OptionGroup var root: RootOption

    func run() throws {
        let spec = try lookupTarget(target)
        let table = try ABITable.load(named: spec.name, root: try root.resolve())
        if json {
            print(String(decoding: try table.encoded(), as: UTF8.self), terminator: "")
            return
        }
        print("\(spec.name): \(table.target.triple), \(table.target.pointerWidth)-bit \(table.target.endianness)-endian, \(table.target.libc)")
        print("provenance: \(table.provenance.command)\ncompiler: \(table.provenance.compiler)")
        print("headers: \(table.provenance.headers.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; "))")
        print("verified: \(table.verified)\n")
        let consts = Catalogue.constants.filter { group == nil || $0.group == group }
        if !consts.isEmpty {
            print(columns(consts.map { [$0.group, $0.name, show(table.constant($0.name))] }, header: ["group", "constant", "value"]))
            print()
        }
        var rows: [[String]] = []
        for t in Catalogue.types where group == nil || t.group == group {
            rows.append([t.group, t.name, show(table.types[t.name])])
            if let entry = table.types[t.name], let l = entry {
                for f in t.fields { if let p = l.fields[f.name] { rows.append(["", "  .\(f.name)", "offset \(p[0]), size \(p[1])"]) } }
            }
        }
        if !rows.isEmpty { print(columns(rows, header: ["group", "type", "layout"])) }
    }
}

// MARK: - diff

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changes between two targets (e.g. when porting linux-gnu-x86_64 code to darwin-arm64).")

    @Argument(help: "The first target.") var a: String
    @Argument(help: "The second target.") var b: String
    @Flag(help: "Also list entries that are equal.") var all = false
    @OptionGroup var root: RootOption

    /// Entries that porting code most often gets wrong: shown first when they differ.
    static let highlights: [(entry: String, why: String)] = [
        ("EAGAIN", "errno values differ: never hard-code them"),
        ("ECONNRESET", "errno values differ: never hard-code them"),
        ("EADDRINUSE", "errno values differ: never hard-code them"),
        ("O_NONBLOCK", "fcntl flag values differ"),
        ("SOCK_NONBLOCK", "without it, set O_NONBLOCK with fcntl after socket()/accept()"),
        ("MSG_NOSIGNAL", "without it, set SO_NOSIGPIPE on the socket"),
        ("SO_NOSIGPIPE", "where it exists, set it at socket creation"),
        ("struct sockaddr_in.sin_len", "BSD sockaddrs start with a length byte: set it"),
        ("pthread_mutex_t", "allocate the imported type's size, never a fixed buffer"),
        ("pthread_cond_t", "allocate the imported type's size, never a fixed buffer"),
        ("struct epoll_event", "epoll_event is packed (12 bytes) only on x86_64"),
        ("struct kevent", "kevent layouts differ between Darwin and FreeBSD"),
    ]

    func run() throws {
        let rootURL = try root.resolve()
        let sa = try lookupTarget(a), sb = try lookupTarget(b)
        let ta = try ABITable.load(named: sa.name, root: rootURL), tb = try ABITable.load(named: sb.name, root: rootURL)
        print("strata-abi diff \(sa.name) \(sb.name)")
        for (s, t) in [(sa, ta), (sb, tb)] where !t.isVerified {
            print("note: \(s.name) is transcribed from headers, not compiled on such a host (unverified)")
        }

        func describe(_ entry: String, _ t: ABITable) -> String {
            if let dot = entry.range(of: ".", options: .backwards), entry.hasPrefix("struct ") {
                let type = String(entry[..<dot.lowerBound]), field = String(entry[dot.upperBound...])
                guard let l = t.types[type] ?? nil else { return "no \(type)" }
                return l.fields[field].map { "@\($0[0]) size \($0[1])" } ?? "absent"
            }
            if t.types[entry] != nil { return show(t.types[entry]) }
            return show(t.constant(entry))
        }
        var hl: [[String]] = []
        for (entry, why) in Self.highlights {
            let da = describe(entry, ta), db = describe(entry, tb)
            if da != db { hl.append([entry, da, db, why]) }
        }
        if !hl.isEmpty {
            print("\nwhat matters when porting")
            print(columns(hl, header: ["entry", sa.name, sb.name, "why"]))
        }

        var rows: [[String]] = []
        var differ = 0, equal = 0
        for c in Catalogue.constants {
            let va = ta.constant(c.name), vb = tb.constant(c.name)
            if va == vb { equal += 1; if !all { continue } } else { differ += 1 }
            rows.append([c.group, c.name, show(va), show(vb)])
        }
        print("\nconstants")
        print(columns(rows, header: ["group", "constant", sa.name, sb.name]))
        var trows: [[String]] = []
        for t in Catalogue.types {
            let la = ta.types[t.name] ?? nil, lb = tb.types[t.name] ?? nil
            if la == lb { equal += 1; if !all { continue } } else { differ += 1 }
            trows.append([t.group, t.name, show(.some(la)), show(.some(lb))])
            // Field detail only when both targets have the type.
            guard let la, let lb else { continue }
            for f in t.fields {
                let pa = la.fields[f.name], pb = lb.fields[f.name]
                if pa == nil && pb == nil { continue }
                if pa == pb && !all { continue }
                trows.append(["", "  .\(f.name)", pa.map { "@\($0[0]) size \($0[1])" } ?? "absent",
                              pb.map { "@\($0[0]) size \($0[1])" } ?? "absent"])
            }
        }
        print("\ntypes")
        print(columns(trows, header: ["group", "type", sa.name, sb.name]))
        print("\n\(differ) entries differ, \(equal) are equal.")
    }
}

// MARK: - generate

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Regenerate tables from real headers, then the assertion headers and Swift sources derived from them.",
        discussion: """
            Without --target, probes every generated (Linux) target; each needs its compiler \
            (`make abi-tools` installs them). Transcribed tables (Darwin, FreeBSD) are only re-rendered.
            """)

    @Option(name: .customLong("target"), help: "Probe only this target (repeatable).") var targets: [String] = []
    @Flag(help: "Do not probe: only re-render derived files from the tables on disk.") var renderOnly = false
    @Flag(help: "Write nothing; exit 1 if any derived file is out of date.") var check = false
    @OptionGroup var root: RootOption

    func run() throws {
        let rootURL = try root.resolve()
        if check {
            let stale = try Generator.stale(root: rootURL)
            if stale.isEmpty { print("generated files are up to date"); return }
            print("out of date (run `make abi-generate`):\n" + stale.map { "  \($0)" }.joined(separator: "\n"))
            throw ExitCode(1)
        }
        if !renderOnly {
            let chosen = try targets.isEmpty ? Targets.all.filter(\.isGenerated) : targets.map { try lookupTarget($0) }
            if let t = chosen.first(where: { !$0.isGenerated }) {
                throw ValidationError("\(t.name) is transcribed, not generated; edit abi-tables/\(t.name).json by hand from its headers and keep it marked unverified")
            }
            try Generator.probe(chosen, root: rootURL) { print($0) }
        }
        let changed = try Generator.write(try Generator.render(root: rootURL), root: rootURL)
        print(changed.isEmpty ? "derived files unchanged" : "wrote:\n" + changed.map { "  \($0)" }.joined(separator: "\n"))
    }
}

// MARK: - targets

struct ListTargets: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "targets", abstract: "List the targets with tables.")

    func run() {
        print(columns(Targets.all.map {
            [$0.name, $0.triple, $0.isGenerated ? "generated with \($0.compiler!)" : "transcribed (unverified)"]
        }, header: ["target", "triple", "source"]))
    }
}
