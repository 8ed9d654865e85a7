#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets
import Testing
@testable import StrataEvents

/// Regressions from the Events review: operations must never touch a descriptor number after
/// the loop closed it (it may already belong to another socket or file).
@Suite("Descriptor reuse")
struct DescriptorReuseTests {
    @Test("a send submitted after the close reached the kernel fails with ECANCELED, reaching no one",
          arguments: conformanceBackends)
    func submitAfterCloseDispatched(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let pair = try Socket.makePair(kind: .stream)
        let fd = pair.first.takeDescriptor()
        loop.receive(fd, into: IOBuffer(capacity: 64), token: 1)
        _ = try loop.runOnce(timeout: .milliseconds(5)) { _ in }
        loop.close(fd, token: 2)
        var results: [UInt64: Int32] = [:]
        var other: Socket.Pair?
        try drive(loop, "close", until: { results[2] != nil && results[4] != nil }) { c in
            results[c.token] = c.result
            if c.token == 1 {
                other = try? Socket.makePair(kind: .stream)  // may reuse the closed number
                loop.send(fd, IOBuffer(Array("SECRET".utf8)), token: 4)
            }
        }
        #expect(results[4] == -ECANCELED)
        if let other {
            let leaked = try other.second.receive(maximumCount: 16)
            #expect(leaked == nil, "bytes reached an unrelated socket: \(String(describing: leaked))")
        }
    }

    @Test("closing the file of a pending sendfile waits for (and cancels) the sendfile",
          arguments: conformanceBackends)
    func sendfileFileIsTracked(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        let pair = try Socket.makePair(kind: .stream)
        try pair.first.setOption(.sendBufferSize, to: 4096)
        // Fill the socket so the sendfile must wait.
        while (try? pair.first.send([UInt8](repeating: 0, count: 4096))) ?? nil != nil {}
        var name = Array("/tmp/strata-sendfile-XXXXXX".utf8CString)
        let file = mkstemp(&name)
        try #require(file >= 0)
        unlink(&name)
        _ = [UInt8](repeating: 0x41, count: 4096).withUnsafeBytes { write(file, $0.baseAddress, 4096) }
        let op = loop.sendfile(to: pair.first.descriptor, from: file, offset: 0, count: 4096, token: 1)
        _ = try loop.runOnce(timeout: .milliseconds(20)) { c in Issue.record("sendfile finished early: \(c)") }
        loop.close(file, token: 2)
        var order: [UInt64] = []
        try drive(loop, "close of the file", until: { order.contains(2) }) { c in order.append(c.token) }
        #expect(order == [1, 2], "the sendfile must complete (cancelled) before its file's close: \(order)")
        _ = op
    }

    @Test("negative descriptors fail with EBADF instead of trapping", arguments: conformanceBackends)
    func negativeDescriptor(kind: BackendKind) throws {
        let loop = try makeLoop(kind)
        loop.receive(-1, into: IOBuffer(capacity: 8), token: 1)
        loop.close(-1, token: 2)
        var results: [UInt64: Int32] = [:]
        try drive(loop, "EBADF", until: { results.count == 2 }) { c in results[c.token] = c.result }
        #expect(results[1] == -EBADF)
        #expect(results[2] == -EBADF)
    }

    @Test("releasing a pool buffer after its loop is gone is harmless")
    func releaseAfterLoop() throws {
        var loop: EventLoop? = try makeLoop(conformanceBackends[0])
        let pool = try loop!.makeBufferPool(count: 2, size: 64)
        let pair = try Socket.makePair(kind: .stream)
        _ = try pair.second.send([1, 2, 3])
        var id: UInt16?
        loop!.receive(pair.first.descriptor, from: pool, multishot: false, token: 1)
        try drive(loop!, "pooled receive", until: { id != nil }) { c in id = c.bufferID }
        loop = nil
        pool.release(id!)
        #expect(pool.heldCount == 0)
    }
}
