/// The Clang importer's view of one C type: what Swift's `MemoryLayout` says.
public struct ImportedLayout: Sendable {
    /// `MemoryLayout<T>.size`.
    public let size: Int
    /// `MemoryLayout<T>.alignment`.
    public let alignment: Int
    /// Field name → (offset, size); offset is nil when Swift cannot compute it.
    public let fields: [String: ImportedField]
}

/// One field as the importer sees it.
public struct ImportedField: Sendable {
    /// `MemoryLayout<T>.offset(of:)`; nil for fields Swift does not store directly.
    public let offset: Int?
    /// `MemoryLayout<Field>.size`.
    public let size: Int
}

/// A constant as Int64, whatever integer type the importer gave it.
@inlinable public func abiValue<T: BinaryInteger>(_ value: T) -> Int64 { Int64(truncatingIfNeeded: value) }

/// A constant imported as a C enum (glibc's `SOCK_STREAM`, `EPOLL_EVENTS`) as Int64.
@inlinable public func abiValue<T: RawRepresentable>(_ value: T) -> Int64 where T.RawValue: BinaryInteger {
    Int64(truncatingIfNeeded: value.rawValue)
}

func layout<T>(_: T.Type, fields: [String: ImportedField]) -> ImportedLayout {
    ImportedLayout(size: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment, fields: fields)
}

func field<T, V>(_ keyPath: KeyPath<T, V>) -> ImportedField {
    ImportedField(offset: MemoryLayout<T>.offset(of: keyPath), size: MemoryLayout<V>.size)
}

/// One disagreement between a table and what this build sees.
public struct Mismatch: Sendable, CustomStringConvertible {
    /// The entry (`EAGAIN`, `sizeof(struct sockaddr_in)`, `offsetof(struct msghdr, msg_iov)`).
    public let entry: String
    /// The table's value.
    public let table: String
    /// What the other side says.
    public let other: String
    /// Which side: `headers` (the Swift importer or a fresh C probe) or `kernel`.
    public let side: String
    /// `table X = a, headers X = b`.
    public var description: String { "table \(entry) = \(table), \(side) \(entry) = \(other)" }
}

/// Compares a table with the Swift importer's view of this build's host.
public enum ImporterCheck {
    /// The name of the table this build's importer view belongs to.
    public static var hostTable: String { hostTableName }

    /// Summary of one comparison.
    public struct Report: Sendable {
        /// Entries compared and equal.
        public var checked = 0
        /// Disagreements.
        public var mismatches: [Mismatch] = []
        /// Entries the importer cannot see, with the reason (proven by the C assertions).
        public var notImported: [String: String] = [:]
    }

    /// Compares every entry of `table` with what the importer says.
    public static func compare(_ table: ABITable) -> Report {
        var r = Report()
        for (name, value) in table.constants.sorted(by: { $0.key < $1.key }) {
            guard let v = value else { continue }
            if let reason = notImportedConstants[name] {
                r.notImported[name] = reason
                continue
            }
            guard let imported = importedConstants[name] else {
                r.mismatches.append(Mismatch(entry: name, table: "\(v)", other: "not visible to the importer", side: "headers"))
                continue
            }
            if imported == v { r.checked += 1 } else {
                r.mismatches.append(Mismatch(entry: name, table: "\(v)", other: "\(imported)", side: "headers"))
            }
        }
        for (name, entry) in table.types.sorted(by: { $0.key < $1.key }) {
            guard let layout = entry else { continue }
            guard let imported = importedTypes[name] else {
                r.mismatches.append(Mismatch(entry: name, table: "size \(layout.size)", other: "not visible to the importer", side: "headers"))
                continue
            }
            func cmp(_ what: String, _ a: Int, _ b: Int?) {
                if let b, a == b { r.checked += 1 } else {
                    r.mismatches.append(Mismatch(entry: what, table: "\(a)", other: b.map { "\($0)" } ?? "unknown", side: "headers"))
                }
            }
            cmp("sizeof(\(name))", layout.size, imported.size)
            cmp("alignof(\(name))", layout.alignment, imported.alignment)
            for (fname, pair) in layout.fields.sorted(by: { $0.key < $1.key }) {
                if unionMemberFields.contains("\(name).\(fname)") {
                    r.notImported["\(name).\(fname)"] = "member of an anonymous union: imported as a computed property"
                    continue
                }
                guard let f = imported.fields[fname] else {
                    r.mismatches.append(Mismatch(entry: "\(name).\(fname)", table: "\(pair)", other: "not visible to the importer", side: "headers"))
                    continue
                }
                cmp("offsetof(\(name), \(fname))", pair[0], f.offset)
                cmp("sizeof(\(name).\(fname))", pair[1], f.size)
            }
        }
        return r
    }
}
