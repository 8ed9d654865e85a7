// The provided buffer ring behind a BufferPool on io_uring, set up by hand: liburing 2.3 has
// io_uring_register_buf_ring but not io_uring_setup_buf_ring.
#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CStrataSys
import StrataSockets

/// A provided buffer ring (IORING_REGISTER_PBUF_RING) for one ``BufferPool``: `pool.count`
/// `io_uring_buf` entries (16 bytes each) in page-aligned anonymous memory that the kernel reads
/// and the backend writes. Stored in ``BufferPool/backendState``.
///
/// Memory: the ring entries live in `memory` (mmap, `mappedBytes` long), unmapped in `deinit`.
/// The kernel pins those pages while the ring is registered, so unmapping them is memory-safe
/// even if unregistration failed; the buffers themselves belong to the pool, which the loop keeps
/// alive at least as long as the backend. The backend unregisters the ring (`isRegistered`) in
/// its own `deinit`, after the kernel has finished with every request.
final class IOUringBufferRing {
    /// The buffer group id (``BufferPool/groupID``) the kernel knows the ring by.
    let group: UInt16
    /// The ring entries; see the type's memory note.
    let memory: UnsafeMutableRawPointer
    let mappedBytes: Int
    /// `entries - 1` (entries is a power of two).
    let mask: UInt32
    /// Still registered with the ring.
    var isRegistered = true
    /// Buffers given back to the kernel so far, including the initial fill.
    var returned: UInt64 = 0

    /// Maps and registers a ring for `pool` and hands every buffer to the kernel.
    ///
    /// - Throws: ``EventsError`` when mapping or registration fails, naming the cause and fix.
    init(pool: BufferPool, ring: OpaquePointer) throws(EventsError) {
        let entries = pool.count
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = (entries * MemoryLayout<io_uring_buf>.stride + page - 1) / page * page
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            let failure = Errno.current
            throw EventsError(.resourceExhausted,
                              "mmap of \(bytes) bytes for the io_uring buffer ring of pool \(pool.groupID): \(failure.name) — lower the pool's count or free memory",
                              cause: SystemCallError(systemCall: "mmap", errno: failure))
        }
        strata_uring_buf_ring_init(mapped)
        let rc = strata_uring_register_buf_ring(ring, mapped, UInt32(entries), pool.groupID)
        if rc < 0 {
            munmap(mapped, bytes)
            let errno = Errno(rawValue: -rc)
            let fix: String
            switch -rc {
            case EINVAL: fix = "provided buffer rings need Linux 5.19 or later; use --backend epoll"
            case EEXIST: fix = "buffer group \(pool.groupID) is already registered, or the pool was made on a thread other than the one running the loop (IORING_SETUP_SINGLE_ISSUER); make pools on the loop's thread"
            case ENOMEM: fix = "the kernel could not pin the ring's memory; lower the pool's count or raise RLIMIT_MEMLOCK"
            default: fix = errno.message
            }
            throw EventsError(.systemCall,
                              "io_uring_register_buf_ring (group \(pool.groupID), \(entries) entries): \(errno.name) — \(fix)",
                              cause: SystemCallError(systemCall: "io_uring_register", errno: errno))
        }
        group = pool.groupID
        memory = mapped
        mappedBytes = bytes
        mask = UInt32(entries - 1)
        for id in 0..<entries {
            strata_uring_buf_ring_add(mapped, pool.address(of: UInt16(id)), UInt32(pool.bufferSize), UInt16(id), mask,
                                      UInt32(id))
        }
        strata_uring_buf_ring_advance(mapped, UInt32(entries))
        returned = UInt64(entries)
    }

    deinit { munmap(memory, mappedBytes) }

    /// Gives buffer `id` back to the kernel: writes its entry at the tail, then publishes the
    /// tail with a release store, so the kernel sees it from the next submission on.
    func give(_ id: UInt16, of pool: BufferPool) {
        strata_uring_buf_ring_add(memory, pool.address(of: id), UInt32(pool.bufferSize), id, mask, 0)
        strata_uring_buf_ring_advance(memory, 1)
        returned &+= 1
    }
}
#endif
