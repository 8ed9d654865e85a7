import StrataSockets

/// Identifies one submitted operation of one loop, for cancellation.
///
/// The loop chooses it (a slot and a generation), so a stale identifier never matches a
/// later operation. The submitter's own `token` travels separately in the ``Completion``.
public struct OperationID: Hashable, Sendable, CustomStringConvertible {
    /// Slot index in the loop's operation table (low 32 bits) and generation (high 32 bits).
    public let rawValue: UInt64

    @inlinable init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable init(slot: UInt32, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(slot)
    }
    @inlinable var slot: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    @inlinable var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }

    /// An identifier no loop ever hands out (slot 0 starts at generation 1): for completions
    /// a layer above synthesizes itself, such as a wait that ends without an operation.
    public static let none = OperationID(rawValue: 0)

    /// `op#slot.generation`.
    public var description: String { "op#\(slot).\(generation)" }
}

/// What an operation was, as reported in its completions.
public enum OperationKind: UInt8, Sendable, CustomStringConvertible {
    /// An accept (single or multishot). Result: the new connection's descriptor.
    case accept
    /// A receive into a caller's ``IOBuffer``. Result: bytes received, 0 at end of stream.
    case receive
    /// A receive from a ``BufferPool`` (single or multishot). Result: bytes received; the
    /// completion names the buffer.
    case receivePooled
    /// A send of one ``IOBuffer``. Result: bytes sent, possibly fewer than asked.
    case send
    /// A vectored write of several ``IOBuffer``s. Result: bytes written, possibly fewer.
    case writev
    /// A sendfile. Result: bytes sent, possibly fewer than asked.
    case sendfile
    /// A connect. Result: 0.
    case connect
    /// A close, completed after every other operation on the descriptor. Result: 0.
    case close
    /// A timeout. Result: `-ETIME` when it fired, `-ECANCELED` when cancelled.
    case timeout

    /// The kind's name.
    public var description: String {
        switch self {
        case .accept: "accept"
        case .receive: "receive"
        case .receivePooled: "receivePooled"
        case .send: "send"
        case .writev: "writev"
        case .sendfile: "sendfile"
        case .connect: "connect"
        case .close: "close"
        case .timeout: "timeout"
        }
    }
}

/// The outcome of an operation, or one of the outcomes of a multishot operation.
public struct Completion: Sendable, CustomStringConvertible {
    /// Flags of a completion.
    public struct Flags: OptionSet, Sendable, Hashable {
        /// The raw bits.
        public let rawValue: UInt8
        /// Creates flags from raw bits.
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// More completions will follow for this operation (multishot); without it this is the last.
        public static let more = Flags(rawValue: 1 << 0)
        /// ``Completion/bufferID`` names a pool buffer that now belongs to the caller.
        public static let buffer = Flags(rawValue: 1 << 1)
    }

    /// The token the submitter passed.
    public let token: UInt64
    /// The operation this completes.
    public let operation: OperationID
    /// What the operation was.
    public let kind: OperationKind
    /// The result: a non-negative value (bytes, a descriptor) or a negated errno.
    public let result: Int32
    /// Flags.
    public let flags: Flags
    /// The pool buffer holding received bytes, when ``flags`` contains ``Flags/buffer``.
    /// The caller reads it and returns it with ``BufferPool/release(_:)``.
    public let bufferID: UInt16

    /// Creates a completion (backends and test doubles).
    @inlinable public init(token: UInt64, operation: OperationID, kind: OperationKind, result: Int32,
                           flags: Flags, bufferID: UInt16 = 0) {
        self.token = token
        self.operation = operation
        self.kind = kind
        self.result = result
        self.flags = flags
        self.bufferID = bufferID
    }

    /// Whether more completions follow for the same operation.
    @inlinable public var hasMore: Bool { flags.contains(.more) }

    /// The error, when ``result`` is negative.
    @inlinable public var error: Errno? { result < 0 ? Errno(rawValue: -result) : nil }

    /// `accept op#3.0 token 7: 12` or `receive op#4.1 token 9: ECONNRESET (104): …`.
    public var description: String {
        let outcome = result < 0 ? Errno(rawValue: -result).description : "\(result)"
        var s = "\(kind) \(operation) token \(token): \(outcome)"
        if flags.contains(.buffer) { s += " buffer \(bufferID)" }
        if flags.contains(.more) { s += " (more)" }
        return s
    }
}
