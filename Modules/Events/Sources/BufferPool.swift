/// A pool of equal-sized receive buffers that the loop hands to the kernel (io_uring's
/// provided buffer ring) or picks from itself (epoll, kqueue), for receives that do not tie
/// a buffer to every idle connection.
///
/// Ownership: every buffer belongs to the runtime until a completion names it
/// (``Completion/Flags/buffer``); it then belongs to the caller, who reads it with
/// ``withBuffer(_:count:_:)`` and gives it back with ``release(_:)``. When the pool runs dry a
/// multishot receive pauses (no spinning) and resumes by itself once buffers come back.
///
/// Create pools with ``EventLoop/makeBufferPool(count:size:)``.
///
/// - Warning: Not thread-safe: use a pool only on its loop's thread.
public final class BufferPool {
    /// The size of each buffer in bytes.
    public let bufferSize: Int
    /// The number of buffers.
    public let count: Int
    /// The buffer group the kernel knows the pool by (io_uring), unique per loop.
    public let groupID: UInt16

    let memory: UnsafeMutableRawPointer
    /// Ownership of each buffer: true while the caller holds it.
    var held: [Bool]
    /// Buffers the runtime may use, for backends that pick buffers themselves (epoll, kqueue).
    var free: [UInt16]
    /// Called when the caller returns a buffer: the backend gives it back to the kernel
    /// (io_uring) and the loop resumes receives paused for lack of buffers.
    var onRelease: ((UInt16) -> Void)?
    /// Set by the backend that registered the pool (io_uring's ring bookkeeping).
    var backendState: AnyObject?
    /// How many buffers the caller has returned so far (the loop resumes paused receives by it).
    var releases: UInt64 = 0

    init(count: Int, bufferSize: Int, groupID: UInt16) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0,
                     "BufferPool count must be a power of two in 1...32768, got \(count)")
        precondition(bufferSize > 0 && bufferSize <= 1 << 20, "BufferPool buffer size must be in 1...1 MiB")
        self.count = count
        self.bufferSize = bufferSize
        self.groupID = groupID
        memory = .allocate(byteCount: count * bufferSize, alignment: 4096)
        held = [Bool](repeating: false, count: count)
        free = (0..<count).reversed().map { UInt16($0) }
    }

    deinit { memory.deallocate() }

    /// The number of buffers the caller holds.
    public var heldCount: Int { held.lazy.filter { $0 }.count }

    /// The address of buffer `id` (backends only).
    @inline(__always) func address(of id: UInt16) -> UnsafeMutableRawPointer {
        memory + Int(id) * bufferSize
    }

    /// Marks buffer `id` as handed to the caller (the loop, when a completion names it).
    func handOut(_ id: UInt16) {
        precondition(Int(id) < count, "buffer id \(id) outside the pool of \(count)")
        precondition(!held[Int(id)], "buffer \(id) of group \(groupID) handed out twice: backend bookkeeping is broken")
        held[Int(id)] = true
    }

    /// Reads the first `count` bytes of buffer `id`, which a completion handed to the caller.
    /// - Precondition: the caller holds the buffer and `count` fits in it.
    public func withBuffer<R, E: Error>(_ id: UInt16, count: Int,
                                        _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(Int(id) < self.count && held[Int(id)], "buffer \(id) is not held by the caller")
        precondition(count >= 0 && count <= bufferSize, "count \(count) outside 0...\(bufferSize)")
        return try body(UnsafeRawBufferPointer(start: address(of: id), count: count))
    }

    /// Gives buffer `id` back to the runtime. After this the caller must not read it.
    /// - Precondition: the caller holds the buffer.
    public func release(_ id: UInt16) {
        precondition(Int(id) < count && held[Int(id)], "release of buffer \(id), which the caller does not hold")
        held[Int(id)] = false
        releases &+= 1
        onRelease?(id)
    }
}
