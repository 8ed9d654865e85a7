import Foundation

/// One ABI table: the JSON file `abi-tables/<target>.json`.
///
/// `constants` maps a C name to its integer value, or to `null` when the target
/// does not define it. A name that is absent was not checked. `types` maps a C
/// type spelling to its layout, or to `null` when the target has no such type.
public struct ABITable: Codable, Equatable, Sendable {
    /// What the table describes.
    public struct Target: Codable, Equatable, Sendable {
        /// The table name (`linux-gnu-x86_64`).
        public var name: String
        /// The GNU-style triple.
        public var triple: String
        /// `linux`, `darwin` or `freebsd`.
        public var os: String
        /// The C library.
        public var libc: String
        /// The architecture.
        public var arch: String
        /// Pointer width in bits.
        public var pointerWidth: Int
        /// `little` or `big`.
        public var endianness: String
    }

    /// Where the numbers came from.
    public struct Provenance: Codable, Equatable, Sendable {
        /// The exact command that produced the table.
        public var command: String
        /// The compiler's own version line, or what the transcription used.
        public var compiler: String
        /// Header sources and their versions (Debian package → version, or header → release).
        public var headers: [String: String]
    }

    /// The layout of one C type.
    public struct TypeLayout: Codable, Equatable, Sendable {
        /// `sizeof`.
        public var size: Int
        /// `_Alignof`.
        public var alignment: Int
        /// Field name → `[offset, size]`. Fields absent here do not exist on the target.
        public var fields: [String: [Int]]

        /// Creates a layout.
        public init(size: Int, alignment: Int, fields: [String: [Int]] = [:]) {
            self.size = size
            self.alignment = alignment
            self.fields = fields
        }
    }

    /// The target.
    public var target: Target
    /// The provenance.
    public var provenance: Provenance
    /// How the table was verified: `compiled: …`, or `unverified: transcribed from …`.
    public var verified: String
    /// Constants: name → value, or nil for "not defined on this target".
    public var constants: [String: Int64?]
    /// Types: spelling → layout, or nil for "not defined on this target".
    public var types: [String: TypeLayout?]

    /// Whether the table was checked against real headers.
    public var isVerified: Bool { !verified.hasPrefix("unverified") }

    /// Decodes a table from JSON.
    public static func decode(_ data: Data) throws -> ABITable {
        try JSONDecoder().decode(ABITable.self, from: data)
    }

    /// Loads `abi-tables/<name>.json` under `root`.
    public static func load(named name: String, root: URL) throws -> ABITable {
        let url = root.appendingPathComponent("abi-tables/\(name).json")
        do {
            return try decode(try Data(contentsOf: url))
        } catch let error as DecodingError {
            throw ABIError("\(url.path): not a valid ABI table (\(error)); regenerate it with `strata-abi generate --target \(name)`")
        } catch {
            throw ABIError("\(url.path): cannot read (\(error.localizedDescription)); run from the repository root or pass --root")
        }
    }

    /// Encodes the table as sorted, pretty-printed JSON with a trailing newline.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// The constant's value: `.some(nil)` when recorded as not defined, nil when not checked.
    public func constant(_ name: String) -> Int64?? { constants[name] }
}

/// An error of the ABI tooling: a message that names the cause and the fix.
public struct ABIError: Error, CustomStringConvertible, Sendable {
    /// The message.
    public let description: String
    /// Creates an error with a message.
    public init(_ description: String) { self.description = description }
}
