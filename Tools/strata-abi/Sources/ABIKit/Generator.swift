import Foundation

/// Where every generated file lives, relative to the repository root.
public enum GeneratedPaths {
    /// The JSON table of a target.
    public static func table(_ t: TargetSpec) -> String { "abi-tables/\(t.name).json" }
    /// The assertion header of a target.
    public static func assertionHeader(_ t: TargetSpec) -> String { "Modules/CStrataSys/abi/\(t.name).h" }
    /// The host-selection header.
    public static let hostHeader = "Modules/CStrataSys/abi/host.h"
    /// The Sockets module's errno names.
    public static let errnoNames = "Modules/Sockets/Sources/Generated/ErrnoNames.swift"
    /// The importer view compiled into the ABI kit.
    public static let importerView = "Tools/strata-abi/Sources/ABIKit/Generated/ImporterView.swift"
}

/// Regenerates tables and everything rendered from them.
public enum Generator {
    /// Probes `targets` (generated ones only) and writes their tables.
    /// - Returns: the targets whose table changed.
    @discardableResult
    public static func probe(_ targets: [TargetSpec], root: URL, log: (String) -> Void) throws -> [String] {
        let work = root.appendingPathComponent("abi-tables/.work")
        var changed: [String] = []
        for t in targets {
            let table = try Probe.generate(t, workDirectory: work)
            let url = root.appendingPathComponent(GeneratedPaths.table(t))
            let data = try table.encoded()
            let old = try? Data(contentsOf: url)
            if old != data {
                try data.write(to: url)
                changed.append(t.name)
            }
            let nulls = table.constants.values.filter { $0 == nil }.count
            log("\(t.name): \(table.constants.count) constants (\(nulls) not defined), \(table.types.count) types — \(old == data ? "unchanged" : "written")")
        }
        try? FileManager.default.removeItem(at: work)
        return changed
    }

    /// Renders every derived file from the tables on disk: path → contents.
    public static func render(root: URL) throws -> [(path: String, contents: String)] {
        var loaded: [(TargetSpec, ABITable)] = []
        for t in Targets.all {
            let table = try ABITable.load(named: t.name, root: root)
            try validate(table, target: t)
            loaded.append((t, table))
        }
        var files: [(String, String)] = []
        for (t, table) in loaded {
            files.append((GeneratedPaths.table(t), String(decoding: try table.encoded(), as: UTF8.self)))
            files.append((GeneratedPaths.assertionHeader(t), Render.assertionHeader(table, target: t)))
        }
        files.append((GeneratedPaths.hostHeader, Render.hostHeader(Targets.all)))
        files.append((GeneratedPaths.errnoNames, Render.errnoNames(loaded)))
        files.append((GeneratedPaths.importerView, Render.importerView(loaded)))
        return files
    }

    /// Checks that a table describes its target and covers exactly the catalogue.
    public static func validate(_ table: ABITable, target: TargetSpec) throws {
        let file = GeneratedPaths.table(target)
        guard table.target.name == target.name else {
            throw ABIError("\(file): target.name is \(table.target.name), expected \(target.name)")
        }
        let expectedConstants = Set(Catalogue.constants.map(\.name))
        let haveConstants = Set(table.constants.keys)
        if let missing = expectedConstants.subtracting(haveConstants).sorted().first {
            throw ABIError("\(file): no entry for constant \(missing); regenerate (strata-abi generate --target \(target.name)) or, for a transcribed table, add it (null if undefined)")
        }
        if let extra = haveConstants.subtracting(expectedConstants).sorted().first {
            throw ABIError("\(file): constant \(extra) is not in the catalogue; add it to Catalogue.swift or remove it from the table")
        }
        let expectedTypes = Set(Catalogue.types.map(\.name))
        let haveTypes = Set(table.types.keys)
        if let missing = expectedTypes.subtracting(haveTypes).sorted().first {
            throw ABIError("\(file): no entry for type \(missing); regenerate or add it (null if undefined)")
        }
        if let extra = haveTypes.subtracting(expectedTypes).sorted().first {
            throw ABIError("\(file): type \(extra) is not in the catalogue")
        }
        for t in Catalogue.types {
            guard let entry = table.types[t.name], let layout = entry else { continue }
            for f in t.fields(on: target.family) where layout.fields[f.name] == nil {
                throw ABIError("\(file): \(t.name) lacks field \(f.name)")
            }
            for (name, pair) in layout.fields where pair.count != 2 {
                throw ABIError("\(file): \(t.name).\(name) must be [offset, size], found \(pair)")
            }
        }
    }

    /// Writes rendered files; returns the paths that changed.
    @discardableResult
    public static func write(_ files: [(path: String, contents: String)], root: URL) throws -> [String] {
        var changed: [String] = []
        for (path, contents) in files {
            let url = root.appendingPathComponent(path)
            let old = try? String(contentsOf: url, encoding: .utf8)
            guard old != contents else { continue }
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
            changed.append(path)
        }
        return changed
    }

    /// The rendered files that differ from what is on disk.
    public static func stale(root: URL) throws -> [String] {
        try render(root: root).compactMap { path, contents in
            (try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)) == contents ? nil : path
        }
    }

    /// Finds the repository root: the nearest directory at or above `start` with abi-tables/.
    public static func findRoot(from start: URL) -> URL? {
        var dir = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("abi-tables").path),
               FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return nil }
            dir = parent
        }
    }
}
