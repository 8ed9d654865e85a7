/// A minimal reader for relocatable ELF objects: enough to read back the
/// initial value of named data symbols (the compile-only extraction trick of
/// golang.org/x/sys: the target's compiler evaluates every constant, `sizeof`
/// and `offsetof` into an object file, and the host reads the numbers back
/// without running target code). Handles ELF32/ELF64, little and big endian.
public struct ELFObject {
    let bytes: [UInt8]
    let is64: Bool
    let bigEndian: Bool
    /// Symbol name → (section index, value, size).
    private(set) var symbols: [String: (section: Int, value: UInt64, size: UInt64)] = [:]
    private var sections: [(type: UInt32, offset: UInt64, size: UInt64)] = []

    /// Parses an object file image.
    public init(bytes: [UInt8]) throws {
        self.bytes = bytes
        guard bytes.count >= 52, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw ABIError("not an ELF object (bad magic); the probe compiler must emit ELF")
        }
        switch bytes[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw ABIError("ELF object has an unknown class \(bytes[4])")
        }
        switch bytes[5] {
        case 1: bigEndian = false
        case 2: bigEndian = true
        default: throw ABIError("ELF object has an unknown data encoding \(bytes[5])")
        }
        let shoff = is64 ? try u64(0x28) : UInt64(try u32(0x20))
        let shentsize = Int(try u16(is64 ? 0x3A : 0x2E))
        let shnum = Int(try u16(is64 ? 0x3C : 0x30))
        for i in 0..<shnum {
            let base = Int(shoff) + i * shentsize
            let type = try u32(base + 4)
            let offset = is64 ? try u64(base + 0x18) : UInt64(try u32(base + 0x10))
            let size = is64 ? try u64(base + 0x20) : UInt64(try u32(base + 0x14))
            sections.append((type, offset, size))
        }
        // Every SHT_SYMTAB (2) section, with its linked string table.
        for i in 0..<shnum {
            let base = Int(shoff) + i * shentsize
            guard try u32(base + 4) == 2 else { continue }
            let link = Int(try u32(base + (is64 ? 0x28 : 0x18)))
            let entsize = Int(is64 ? try u64(base + 0x38) : UInt64(try u32(base + 0x24)))
            let (_, symOffset, symSize) = sections[i]
            guard link < sections.count, entsize > 0 else { throw ABIError("ELF symbol table is malformed") }
            let strOffset = Int(sections[link].offset)
            for s in 0..<(Int(symSize) / entsize) {
                let sym = Int(symOffset) + s * entsize
                let nameOffset = Int(try u32(sym))
                let value: UInt64, size: UInt64, shndx: Int
                if is64 {
                    shndx = Int(try u16(sym + 6))
                    value = try u64(sym + 8)
                    size = try u64(sym + 16)
                } else {
                    value = UInt64(try u32(sym + 4))
                    size = UInt64(try u32(sym + 8))
                    shndx = Int(try u16(sym + 14))
                }
                let name = try cString(at: strOffset + nameOffset)
                if !name.isEmpty { symbols[name] = (shndx, value, size) }
            }
        }
    }

    /// The 8-byte signed integer stored at symbol `name`, or nil if there is no such symbol.
    public func int64(symbol name: String) throws -> Int64? {
        guard let sym = symbols[name] else { return nil }
        guard sym.size == 8 else { throw ABIError("ELF symbol \(name) has size \(sym.size), expected 8") }
        guard sym.section > 0, sym.section < sections.count else {
            throw ABIError("ELF symbol \(name) is not in a data section (index \(sym.section)); compile with -fno-common")
        }
        let section = sections[sym.section]
        if section.type == 8 { return 0 }  // SHT_NOBITS: a zero placed in .bss
        return Int64(bitPattern: try u64(Int(section.offset + sym.value)))
    }

    private func check(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, offset + count <= bytes.count else {
            throw ABIError("ELF object is truncated (read of \(count) bytes at \(offset))")
        }
    }

    private func u16(_ o: Int) throws -> UInt16 {
        try check(o, 2)
        let a = UInt16(bytes[o]), b = UInt16(bytes[o + 1])
        return bigEndian ? a << 8 | b : b << 8 | a
    }

    private func u32(_ o: Int) throws -> UInt32 {
        try check(o, 4)
        var v: UInt32 = 0
        for i in 0..<4 {
            let byte = UInt32(bytes[o + (bigEndian ? i : 3 - i)])
            v = v << 8 | byte
        }
        return v
    }

    private func u64(_ o: Int) throws -> UInt64 {
        try check(o, 8)
        var v: UInt64 = 0
        for i in 0..<8 {
            let byte = UInt64(bytes[o + (bigEndian ? i : 7 - i)])
            v = v << 8 | byte
        }
        return v
    }

    private func cString(at o: Int) throws -> String {
        var end = o
        while end < bytes.count, bytes[end] != 0 { end += 1 }
        try check(o, end - o)
        return String(decoding: bytes[o..<end], as: UTF8.self)
    }
}
