// The retry policy of every system call wrapper, proven with the debug-build syscall mock: an
// interruptible call retried through three EINTRs succeeds; close and connect are never retried;
// other errors are not retried; would-block is a value.

#if DEBUG
import Foundation
@testable import StrataSockets
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Syscalls")
struct SyscallsTests {
    /// Runs `operation` with `call` failing with EINTR three times, and checks that it was
    /// called four times and succeeded.
    static func expectRetried(
        _ call: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ operation: () throws -> Void
    ) throws {
        let mock = SyscallMock()
        mock.force(.interrupted, on: call, .counted(3))
        try SyscallMock.$current.withValue(mock) {
            try operation()
        }
        let calls = mock.trace.filter { $0 == call }.count
        #expect(calls == 4, "\(call) ran \(calls) times; trace \(mock.trace)", sourceLocation: sourceLocation)
    }

    static func mocked<R>(_ mock: SyscallMock, _ operation: () throws -> R) rethrows -> R {
        try SyscallMock.$current.withValue(mock) { try operation() }
    }

    @Test("creating, binding, listening and accepting retry EINTR")
    func lifecycleCallsRetry() throws {
        try Self.expectRetried("socket") { _ = try Socket(family: .ipv4, kind: .stream) }
        try Self.expectRetried("socketpair") { _ = try Socket.makePair(kind: .stream) }
        let listener = try Socket(family: .ipv4, kind: .stream)
        try Self.expectRetried("bind") { try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0)) }
        try Self.expectRetried("listen") { try listener.listen(backlog: 4) }
        try Self.expectRetried("getsockname") { _ = try listener.localAddress }
        let client = try Socket(family: .ipv4, kind: .stream)
        _ = try client.connect(to: try listener.localAddress)
        try waitUntil(listener, is: .readable)
        try Self.expectRetried("accept") {
            let accepted = try listener.accept() != nil
            #expect(accepted)
        }
        try waitUntil(client, is: .writable)
        try Self.expectRetried("getpeername") { _ = try client.remoteAddress }
        try Self.expectRetried("setsockopt") { try client.setOption(.noDelay, to: true) }
        try Self.expectRetried("getsockopt") { _ = try client.option(.noDelay) }
        try Self.expectRetried("fcntl") { _ = try client.isBlocking }
        try Self.expectRetried("shutdown") { try client.shutdown(.read) }
    }

    @Test("data transfer calls retry EINTR")
    func dataCallsRetry() throws {
        let pair = try Socket.makePair(kind: .stream)
        let one: [UInt8] = [1]
        try Self.expectRetried("send") {
            let sent = try pair.first.send(one)
            #expect(sent == 1)
        }
        try Self.expectRetried("recv") {
            let received = try pair.second.receive(maximumCount: 4)
            #expect(received == [1])
        }
        try Self.expectRetried("sendmsg") {
            let sent = try one.withUnsafeBytes { try pair.first.write(gathering: [$0]) }
            #expect(sent == 1)
        }
        var buffer = [UInt8](repeating: 0, count: 4)
        try Self.expectRetried("readv") {
            let count = try buffer.withUnsafeMutableBytes { try pair.second.read(scatteringInto: [$0]) }
            #expect(count == 1)
        }
        _ = try one.withUnsafeBytes { try pair.first.sendMessage([$0]) }
        try Self.expectRetried("recvmsg") {
            let message = try buffer.withUnsafeMutableBytes { try pair.second.receiveMessage(into: [$0]) }
            #expect(message?.count == 1)
        }
        try Self.expectRetried("poll") {
            let ready = try pair.second.poll(for: .writable, timeout: .seconds(1))
            #expect(ready == .writable)
        }

        let receiver = try Socket(family: .ipv4, kind: .datagram)
        try receiver.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        let sender = try Socket(family: .ipv4, kind: .datagram)
        let destination = try receiver.localAddress
        try Self.expectRetried("sendto") {
            let sent = try sender.send(one, to: destination)
            #expect(sent == 1)
        }
        try waitUntil(receiver, is: .readable)
        try Self.expectRetried("recvfrom") {
            let received = try buffer.withUnsafeMutableBytes { try receiver.receiveFrom(into: $0) }
            #expect(received?.count == 1)
        }
    }

    @Test("sendfile retries EINTR")
    func sendfileRetries() throws {
        let path = "/tmp/strata-syscalls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        defer { unlink(path) }
        let file = open(path, O_RDONLY)
        try #require(file >= 0)
        defer { close(file) }
        let connection = try connectedPair(listeningOn: SocketAddress(ipv4: .loopback, port: 0))
        try Self.expectRetried("sendfile") {
            let sent = try connection.client.sendFile(from: file, offset: 0, count: 3)
            #expect(sent == 3)
        }
        #expect(try receiveExactly(connection.server, count: 3) == [1, 2, 3])
    }

    @Test("close is never retried, and EINTR from close counts as success")
    func closeIsNotRetried() throws {
        let pair = try Socket.makePair(kind: .stream)
        var socket: Socket? = pair.first
        let descriptor = socket?.descriptor ?? -1
        let mock = SyscallMock()
        mock.force(.interrupted, on: "close", .always)
        try Self.mocked(mock) { try socket.take()?.close() }
        #expect(mock.trace.filter { $0 == "close" }.count == 1)
        // The mock stood in for the kernel, so the descriptor is still open: close it for real.
        #expect(close(descriptor) == 0)
    }

    @Test("connect is never retried: EINTR on a nonblocking socket means in progress")
    func connectIsNotRetried() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        let mock = SyscallMock()
        mock.force(.interrupted, on: "connect", .always)
        let result = try Self.mocked(mock) { try socket.connect(to: SocketAddress(ipv4: .loopback, port: 9)) }
        #expect(result == .inProgress)
        #expect(mock.trace.filter { $0 == "connect" }.count == 1)
    }

    @Test("other errors are not retried and become SocketErrors")
    func errorsAreNotRetried() throws {
        let pair = try Socket.makePair(kind: .stream)
        let mock = SyscallMock()
        mock.force(.connectionReset, on: "recv", .always)
        do {
            _ = try Self.mocked(mock) { try pair.second.receive(maximumCount: 4) }
            Issue.record("a forced ECONNRESET did not throw")
        } catch let error as SocketError {
            #expect(error.code == .connectionReset)
        }
        #expect(mock.trace.filter { $0 == "recv" }.count == 1)

        let limit = SyscallMock()
        limit.force(.tooManyOpenFiles, on: "socket", .counted(1))
        do {
            try Self.mocked(limit) { _ = try Socket(family: .ipv6, kind: .stream) }
            Issue.record("a forced EMFILE did not throw")
        } catch let error as SocketError {
            #expect(error.code == .tooManyOpenFiles)
            #expect(error.message.hasPrefix("socket: EMFILE (\(EMFILE)): too many open files, this process reached its descriptor limit (RLIMIT_NOFILE soft limit "))
        }
    }

    @Test("would-block is a value: nil from accept, send and receive")
    func wouldBlockIsAValue() throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let pair = try Socket.makePair(kind: .stream)
        let mock = SyscallMock()
        for call in ["accept", "send", "recv", "sendmsg", "recvmsg", "readv", "sendfile"] {
            mock.force(.wouldBlock, on: call, .always)
        }
        var buffer = [UInt8](repeating: 0, count: 4)
        try Self.mocked(mock) {
            let acceptedNothing = try listener.accept() == nil
            #expect(acceptedNothing)
            let sent = try pair.first.send([1])
            #expect(sent == nil)
            let received = try pair.second.receive(maximumCount: 4)
            #expect(received == nil)
            let gathered = try buffer.withUnsafeBytes { try pair.first.write(gathering: [$0]) }
            #expect(gathered == nil)
            let scattered = try buffer.withUnsafeMutableBytes { try pair.second.read(scatteringInto: [$0]) }
            #expect(scattered == nil)
            let message = try buffer.withUnsafeMutableBytes { try pair.second.receiveMessage(into: [$0]) }
            #expect(message == nil)
            let sentFile = try pair.first.sendFile(from: 0, offset: 0, count: 1)
            #expect(sentFile == nil)
        }
    }

    @Test("accept skips connections aborted in the backlog")
    func acceptSkipsAborted() throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let client = try Socket(family: .ipv4, kind: .stream)
        _ = try client.connect(to: try listener.localAddress)
        try waitUntil(listener, is: .readable)
        let mock = SyscallMock()
        mock.force(.connectionAborted, on: "accept", .counted(2))
        let accepted = try Self.mocked(mock) { try listener.accept() != nil }
        #expect(accepted)
        #expect(mock.trace.filter { $0 == "accept" }.count == 3)
    }
}
#endif
