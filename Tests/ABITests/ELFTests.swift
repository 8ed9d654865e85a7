import Foundation
import Testing
import _StrataABIKit

@Suite("ELF reader")
struct ELFTests {
    @Test("reads back 8-byte constants from an object the host compiler produced, including zero and negative values")
    func readsConstants() throws {
        let dir = try makeTemporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("k.c")
        try """
        const long long strata_c_A = 42;
        const long long strata_c_ZERO = 0;
        const long long strata_c_NEG = -100;
        const long long strata_c_BIG = 0x7fffffffffffffffLL;
        """.write(to: src, atomically: true, encoding: .utf8)
        let obj = dir.appendingPathComponent("k.o")
        let r = Shell.run([testCCompiler, "-O0", "-fno-common", "-c", src.path, "-o", obj.path])
        #expect(r.status == 0, "\(r.output)")
        let elf = try ELFObject(bytes: [UInt8](try Data(contentsOf: obj)))
        #expect(try elf.int64(symbol: "strata_c_A") == 42)
        #expect(try elf.int64(symbol: "strata_c_ZERO") == 0)
        #expect(try elf.int64(symbol: "strata_c_NEG") == -100)
        #expect(try elf.int64(symbol: "strata_c_BIG") == Int64.max)
        #expect(try elf.int64(symbol: "strata_c_MISSING") == nil)
    }

    @Test("rejects input that is not ELF, and truncated objects")
    func rejectsGarbage() throws {
        #expect(throws: ABIError.self) { try ELFObject(bytes: [UInt8](repeating: 0, count: 64)) }
        var truncated: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1]
        truncated += [UInt8](repeating: 0, count: 60)
        truncated[0x28] = 0xFF  // section headers far beyond the end
        truncated[0x3A] = 64  // e_shentsize
        truncated[0x3C] = 1  // e_shnum
        #expect(throws: ABIError.self) { try ELFObject(bytes: truncated) }
    }
}
