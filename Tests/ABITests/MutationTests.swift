import Foundation
import Testing
import _StrataABIKit

/// The compile-time assertions can fail: a wrong table stops the build of CStrataSys.
/// `make abi-mutation` does the same with a full `swift build` of a scratch copy.
@Suite("Compile-time proof can fail")
struct MutationTests {
    /// Copies CStrataSys's shim, headers and assertion headers to a scratch directory.
    func scratchShim() throws -> URL {
        let dir = try makeTemporaryDirectory("mutation")
        let fm = FileManager.default
        let shim = repositoryRoot.appendingPathComponent("Modules/CStrataSys")
        for item in ["shim.c", "include", "abi"] {
            try fm.copyItem(at: shim.appendingPathComponent(item), to: dir.appendingPathComponent(item))
        }
        return dir
    }

    /// Compiles shim.c the way the package build does (C only, syntax and static assertions).
    func compile(_ dir: URL) -> Shell.Result {
        Shell.run([testCCompiler, "-std=gnu11", "-fsyntax-only", "-I", dir.appendingPathComponent("include").path,
                   dir.appendingPathComponent("shim.c").path])
    }

    @Test("the unmodified scratch copy compiles (control)")
    func controlCompiles() throws {
        let dir = try scratchShim()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = compile(dir)
        #expect(r.status == 0, "\(r.output)")
    }

    @Test("one wrong constant and one wrong struct size in the host table fail the build, naming both")
    func wrongTableFailsTheBuild() throws {
        let dir = try scratchShim()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = try #require(Targets.named(ImporterCheck.hostTable))
        var table = try hostTable()
        let nonblock = try #require(table.constants["O_NONBLOCK"] ?? nil)
        table.constants["O_NONBLOCK"] = 4  // Darwin's value: the seed bug
        var mutex = try #require(table.types["pthread_mutex_t"] ?? nil)
        mutex.size = 64  // Darwin's size: the 24-byte heap overflow
        table.types["pthread_mutex_t"] = mutex
        #expect(nonblock != 4)
        let header = Render.assertionHeader(table, target: target)
        try header.write(to: dir.appendingPathComponent("abi/\(target.name).h"), atomically: true, encoding: .utf8)
        let r = compile(dir)
        #expect(r.status != 0, "the build succeeded with a wrong table")
        #expect(r.output.contains("O_NONBLOCK = 4 disagrees with the headers"), "\(r.output)")
        #expect(r.output.contains("sizeof(pthread_mutex_t) = 64 disagrees with the headers"), "\(r.output)")
    }

    @Test("a constant the table calls undefined but the headers define fails the build")
    func undefinedButDefinedFails() throws {
        let dir = try scratchShim()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = try #require(Targets.named(ImporterCheck.hostTable))
        var table = try hostTable()
        table.constants["EAGAIN"] = .some(nil)
        try Render.assertionHeader(table, target: target)
            .write(to: dir.appendingPathComponent("abi/\(target.name).h"), atomically: true, encoding: .utf8)
        let r = compile(dir)
        #expect(r.status != 0)
        #expect(r.output.contains("EAGAIN is null (not defined on this target), but the headers define it"), "\(r.output)")
    }

    @Test("an OS/arch/libc without a table stops the build with #error")
    func unknownTargetStops() throws {
        let dir = try scratchShim()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Pretend not to be Linux: no branch of abi/host.h matches.
        let r = Shell.run([testCCompiler, "-std=gnu11", "-fsyntax-only", "-U__linux__", "-U__linux", "-Ulinux",
                           dir.appendingPathComponent("abi/host.h").path])
        #expect(r.status != 0)
        #expect(r.output.contains("Strata has no ABI table for this OS/arch/libc"), "\(r.output)")
    }
}
