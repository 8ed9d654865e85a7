import Foundation
import _StrataABIKit

/// The repository root, found from this file's path.
let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // Support.swift, ABITests, Tests
    return url
}()

/// The host's table, as committed.
func hostTable() throws -> ABITable {
    try ABITable.load(named: ImporterCheck.hostTable, root: repositoryRoot)
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("strata-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The C compiler used to build CStrataSys-like translation units in tests.
let testCCompiler = Shell.which("cc") ?? Shell.which("gcc") ?? Shell.which("clang") ?? "cc"
