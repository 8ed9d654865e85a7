// An open-addressing hash table keyed by bytes. Lookups take a borrowed byte
// view (no owned key is created); each entry keeps its key and its value,
// pre-encoded as a RESP bulk string, in one byte array.

/// A seeded 64-bit hash of a byte string (folded 64×64→128-bit multiplies, in
/// the style of wyhash). Fast, well mixed; not a keyed PRF.
@inline(__always)
func hashBytes(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
    @inline(__always) func mum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }
    let p0: UInt64 = 0xa076_1d64_78bd_642f
    let p1: UInt64 = 0xe703_7ed1_a0b4_28db
    let p2: UInt64 = 0x8ebc_6af0_9c88_c6e3
    let count = bytes.count
    var h = seed ^ mum(UInt64(truncatingIfNeeded: count) ^ p0, p1)
    var index = 0
    while count - index >= 16 {
        let a = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        let b = bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
        h = mum(a ^ p1, b ^ h)
        index += 16
    }
    var a: UInt64 = 0
    var b: UInt64 = 0
    var remaining = count - index
    if remaining >= 8 {
        a = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
        remaining -= 8
        var shift: UInt64 = 0
        while remaining > 0 {
            b |= UInt64(bytes[index]) << shift
            shift += 8; index += 1; remaining -= 1
        }
    } else {
        var shift: UInt64 = 0
        while remaining > 0 {
            a |= UInt64(bytes[index]) << shift
            shift += 8; index += 1; remaining -= 1
        }
    }
    return mum(mum(a ^ p2 ^ h, b ^ p1 ^ seed), p0 ^ UInt64(truncatingIfNeeded: count))
}

/// Byte-wise equality, eight bytes at a time.
@inline(__always)
func bytesEqual(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
    let count = x.count
    if count != y.count { return false }
    var index = 0
    while count - index >= 8 {
        if x.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            != y.loadUnaligned(fromByteOffset: index, as: UInt64.self) { return false }
        index += 8
    }
    while index < count {
        if x[index] != y[index] { return false }
        index += 1
    }
    return true
}

/// One key with its value and expiry.
struct Entry {
    /// The key's full hash.
    var hash: UInt64
    /// Absolute expiry in the store's millisecond clock; -1: none.
    var expireAt: Int64
    /// Bytes of the key at the front of `bytes`.
    var keyCount: Int
    /// Where the raw value starts in `bytes` (after `$<len>\r\n`).
    var valueStart: Int
    /// `key ++ "$<len>\r\n" ++ value ++ "\r\n"`.
    var bytes: [UInt8]

    /// The value's byte count.
    @inline(__always) var valueCount: Int { bytes.count - 2 - valueStart }

    /// Replaces the value, reusing the array's capacity when it suffices.
    @inline(__always)
    mutating func setValue(_ value: UnsafeRawBufferPointer) {
        if value.count == valueCount {
            // Same length (the common overwrite): copy over the payload only.
            if let source = value.baseAddress {
                let start = valueStart
                bytes.withUnsafeMutableBytes { raw in
                    (raw.baseAddress! + start).copyMemory(from: source, byteCount: value.count)
                }
            }
            return
        }
        bytes.removeLast(bytes.count - keyCount)
        Entry.appendEncodedValue(value, to: &bytes)
        valueStart = bytes.count - 2 - value.count
    }

    /// Appends `$<len>\r\n<value>\r\n`.
    @inline(__always)
    static func appendEncodedValue(_ value: UnsafeRawBufferPointer, to bytes: inout [UInt8]) {
        bytes.appendBulkReply(value)
    }

    /// Bytes needed for `key` and `value` encoded.
    @inline(__always)
    static func encodedSize(key: Int, value: Int) -> Int {
        var digits = 1
        var rest = value / 10
        while rest != 0 { digits += 1; rest /= 10 }
        return key + 1 + digits + 2 + value + 2
    }
}

/// The key space: a linear-probing table of slots over a dense entry array.
///
/// A slot is 0 (empty) or `(hash >> 32) << 32 | (entryIndex + 1)`: the high
/// hash bits reject most mismatches without touching the entry. Deletion
/// shifts later cluster members back (no tombstones) and moves the last entry
/// into the hole so `entries` stays dense.
struct ByteTable {
    private(set) var entries: [Entry] = []
    private var slots: [UInt64]
    private var mask: Int
    let seed: UInt64

    init(seed: UInt64, capacity: Int = 64) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        self.seed = seed
        entries.reserveCapacity(capacity)
    }

    var count: Int { entries.count }

    @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt64 { hashBytes(key, seed: seed) }

    /// The slot and entry index of `key`, or nil.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> (slot: Int, entry: Int)? {
        let tag = hash & 0xFFFF_FFFF_0000_0000
        return slots.withUnsafeBufferPointer { slotBuffer in
            entries.withUnsafeBufferPointer { entryBuffer in
                var slot = Int(truncatingIfNeeded: hash) & mask
                while true {
                    let value = slotBuffer[slot]
                    if value == 0 { return nil }
                    if value & 0xFFFF_FFFF_0000_0000 == tag {
                        let index = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
                        let found = entryBuffer[index].bytes.withUnsafeBytes { stored in
                            bytesEqual(UnsafeRawBufferPointer(rebasing: stored[0..<entryBuffer[index].keyCount]), key)
                        }
                        if found { return (slot, index) }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// Reads entry `index`.
    @inline(__always)
    subscript(index: Int) -> Entry {
        get { entries[index] }
        _modify { yield &entries[index] }
    }

    /// Adds a key known to be absent; returns its entry index.
    @discardableResult
    mutating func insert(key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expireAt: Int64) -> Int {
        if (entries.count + 1) * 8 > slots.count * 5 { grow() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Entry.encodedSize(key: key.count, value: value.count))
        bytes.appendRaw(key)
        Entry.appendEncodedValue(value, to: &bytes)
        let index = entries.count
        entries.append(Entry(hash: hash, expireAt: expireAt, keyCount: key.count,
                             valueStart: bytes.count - 2 - value.count, bytes: bytes))
        place(hash: hash, entry: index)
        return index
    }

    @inline(__always)
    private mutating func place(hash: UInt64, entry: Int) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = (hash & 0xFFFF_FFFF_0000_0000) | UInt64(entry + 1)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        for index in entries.indices { place(hash: entries[index].hash, entry: index) }
    }

    /// Removes the entry found at `slot`/`entry` (from ``find(_:hash:)``).
    mutating func remove(slot: Int, entry: Int) {
        // Backward-shift deletion for linear probing.
        var hole = slot
        var next = (slot + 1) & mask
        while slots[next] != 0 {
            let home = Int(truncatingIfNeeded: entries[Int(slots[next] & 0xFFFF_FFFF) - 1].hash) & mask
            // Move `next` into the hole unless its home lies cyclically in (hole, next].
            let distanceHome = (next - home) & mask
            let distanceHole = (next - hole) & mask
            if distanceHome >= distanceHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
        // Keep `entries` dense: move the last entry into the freed index.
        let last = entries.count - 1
        if entry != last {
            let lastHash = entries[last].hash
            var probe = Int(truncatingIfNeeded: lastHash) & mask
            while Int(slots[probe] & 0xFFFF_FFFF) != last + 1 { probe = (probe + 1) & mask }
            slots[probe] = (lastHash & 0xFFFF_FFFF_0000_0000) | UInt64(entry + 1)
            entries.swapAt(entry, last)
        }
        entries.removeLast()
    }

    /// Removes every entry, keeping the allocated capacity.
    mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        for index in slots.indices { slots[index] = 0 }
    }
}
