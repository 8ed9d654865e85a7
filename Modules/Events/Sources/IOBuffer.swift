/// A fixed-capacity byte buffer with a stable address, for operations the kernel reads or
/// writes after the call that submits them returns.
///
/// Ownership is explicit: from submission until the operation's final completion the loop
/// holds the buffer (``isLent`` is true) and the kernel may read or write its memory at any
/// moment, so mutating it then traps. Read it again after the completion.
///
/// - Warning: Not thread-safe. Use a buffer on one loop's thread.
public final class IOBuffer {
    /// The number of bytes the buffer can hold.
    public let capacity: Int
    /// The number of valid bytes, from the start. Receives set it; set it before a send.
    public var count: Int {
        didSet { precondition(count >= 0 && count <= capacity, "IOBuffer.count \(count) outside 0...\(capacity)") }
    }
    /// Whether an operation in flight owns the memory (from submission to final completion).
    public internal(set) var isLent = false

    @usableFromInline let base: UnsafeMutableRawPointer

    /// Creates an empty buffer of `capacity` bytes.
    public init(capacity: Int) {
        precondition(capacity >= 0, "IOBuffer capacity must not be negative")
        self.capacity = capacity
        self.count = 0
        base = .allocate(byteCount: max(capacity, 1), alignment: 16)
    }

    /// Creates a buffer holding `bytes`.
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(capacity: bytes.count)
        let raw = UnsafeMutableRawBufferPointer(start: base, count: capacity)
        _ = raw.initializeMemory(as: UInt8.self, from: bytes)
        count = bytes.count
    }

    deinit { base.deallocate() }

    /// Reads the valid bytes.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Writes anywhere in the capacity; set ``count`` afterwards.
    /// - Precondition: no operation in flight owns the buffer.
    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(!isLent, "IOBuffer mutated while an operation in flight owns it: wait for its final completion")
        return try body(UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }

    /// The valid bytes as an array (a copy).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
