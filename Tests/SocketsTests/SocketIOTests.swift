import Foundation
import StrataSockets
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Socket I/O")
struct SocketIOTests {
    @Test("gathering write and scattering read split bytes across buffers in order")
    func gatherScatter() throws {
        let pair = try Socket.makePair(kind: .stream)
        let header = Array("HEAD".utf8)
        let empty: [UInt8] = []
        let body = Array("body-bytes".utf8)
        let sent = try header.withUnsafeBytes { h in
            try empty.withUnsafeBytes { e in
                try body.withUnsafeBytes { b in
                    try pair.first.write(gathering: [h, e, b])
                }
            }
        }
        #expect(sent == header.count + body.count)
        try waitUntil(pair.second, is: .readable)
        var first = [UInt8](repeating: 0, count: 3)
        var second = [UInt8](repeating: 0, count: 5)
        var third = [UInt8](repeating: 0, count: 100)
        let received = try first.withUnsafeMutableBytes { a in
            try second.withUnsafeMutableBytes { b in
                try third.withUnsafeMutableBytes { c in
                    try pair.second.read(scatteringInto: [a, b, c])
                }
            }
        }
        #expect(received == 14)
        #expect(first == Array("HEA".utf8))
        #expect(second == Array("Dbody".utf8))
        #expect(Array(third[0..<6]) == Array("-bytes".utf8))
        // Nothing left: nonblocking reads report would-block as nil.
        let again = try third.withUnsafeMutableBytes { c in try pair.second.read(scatteringInto: [c]) }
        #expect(again == nil)
    }

    @Test("a scattering read reports end-of-file as 0")
    func scatterEndOfFile() throws {
        let pair = try Socket.makePair(kind: .stream)
        try pair.first.shutdown(.write)
        try waitUntil(pair.second, is: .readable)
        var buffer = [UInt8](repeating: 0, count: 8)
        let count = try buffer.withUnsafeMutableBytes { try pair.second.read(scatteringInto: [$0]) }
        #expect(count == 0)
    }

    @Test("sendmsg/recvmsg pass a descriptor with SCM_RIGHTS, and the received one works")
    func passDescriptor() throws {
        let channel = try Socket.makePair(kind: .stream)
        let passed = try Socket.makePair(kind: .stream)
        let keptEnd = passed.first
        let passedEnd = passed.second
        let message = Array("fd".utf8)
        let sent = try message.withUnsafeBytes { bytes in
            try channel.first.sendMessage([bytes], passing: [passedEnd.descriptor])
        }
        #expect(sent == 2)
        // The sender still owns its descriptor; close it so only the received copy remains.
        try passedEnd.close()

        try waitUntil(channel.second, is: .readable)
        var buffer = [UInt8](repeating: 0, count: 16)
        let received = try buffer.withUnsafeMutableBytes { bytes in
            try channel.second.receiveMessage(into: [bytes], maximumDescriptors: 4)
        }
        guard let received else {
            Issue.record("receiveMessage returned nil after the socket was readable")
            return
        }
        #expect(received.count == 2)
        #expect(Array(buffer[0..<2]) == message)
        #expect(!received.flags.contains(.controlTruncated))
        #expect(received.descriptorCount == 1)
        let descriptors = received.takeDescriptors()
        #expect(descriptors.count == 1)
        #expect(received.descriptorCount == 0)
        let adopted = Socket(adoptingDescriptor: try #require(descriptors.first))
        #expect(try adopted.isCloseOnExec, "received descriptors are close-on-exec")

        // Use it: bytes written through the received descriptor reach the other end of its pair.
        #expect(try adopted.send(Array("via passed fd".utf8)) == 13)
        #expect(try receiveExactly(keptEnd, count: 13) == Array("via passed fd".utf8))
        try adopted.close()
        try waitUntil(keptEnd, is: .readable)
        #expect(try keptEnd.receive(maximumCount: 4) == [], "closing the received descriptor closed the last reference")
    }

    @Test("descriptors that are not taken are closed with the message; refused ones are closed by the kernel")
    func untakenDescriptorsClose() throws {
        let channel = try Socket.makePair(kind: .stream)
        let passed = try Socket.makePair(kind: .stream)
        let keptEnd = passed.first
        let passedEnd = passed.second
        _ = try [UInt8(1)].withUnsafeBytes { try channel.first.sendMessage([$0], passing: [passedEnd.descriptor]) }
        _ = try [UInt8(2)].withUnsafeBytes { try channel.first.sendMessage([$0], passing: [passedEnd.descriptor]) }
        try passedEnd.close()

        var buffer = [UInt8](repeating: 0, count: 1)
        try waitUntil(channel.second, is: .readable)
        do {
            // Taken by nobody: the message's deinit closes it.
            let message = try buffer.withUnsafeMutableBytes { try channel.second.receiveMessage(into: [$0], maximumDescriptors: 1) }
            #expect(message?.descriptorCount == 1)
        }
        // Refused (no room for descriptors): the kernel closes it and says so.
        let refused = try buffer.withUnsafeMutableBytes { try channel.second.receiveMessage(into: [$0], maximumDescriptors: 0) }
        #expect(refused?.flags.contains(.controlTruncated) == true)
        #expect(refused?.descriptorCount == 0)
        // With both copies gone, the kept end reads end-of-file.
        try waitUntil(keptEnd, is: .readable)
        #expect(try keptEnd.receive(maximumCount: 4) == [])
    }

    @Test("sendmsg and recvmsg carry datagram addresses")
    func messageAddresses() throws {
        let receiver = try Socket(family: .ipv6, kind: .datagram)
        try receiver.bind(to: SocketAddress(ipv6: .loopback, port: 0))
        let sender = try Socket(family: .ipv6, kind: .datagram)
        try sender.bind(to: SocketAddress(ipv6: .loopback, port: 0))
        let parts = [Array("scatter-".utf8), Array("gather".utf8)]
        let sent = try parts[0].withUnsafeBytes { a in
            try parts[1].withUnsafeBytes { b in
                try sender.sendMessage([a, b], to: try receiver.localAddress)
            }
        }
        #expect(sent == 14)
        try waitUntil(receiver, is: .readable)
        var buffer = [UInt8](repeating: 0, count: 64)
        let message = try buffer.withUnsafeMutableBytes { try receiver.receiveMessage(into: [$0]) }
        #expect(message?.count == 14)
        #expect(message?.address == (try sender.localAddress))
        #expect(Array(buffer[0..<14]) == Array("scatter-gather".utf8))
    }

    @Test("sendFile sends a file's bytes over TCP, from any offset")
    func sendFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-sendfile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        var contents = [UInt8](repeating: 0, count: 300_000)
        var state: UInt32 = 12345
        for index in contents.indices {
            state = state &* 1_664_525 &+ 1_013_904_223
            contents[index] = UInt8(truncatingIfNeeded: state >> 24)
        }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(contents)))
        defer { unlink(path) }
        let file = open(path, O_RDONLY)
        try #require(file >= 0)
        defer { close(file) }

        let connection = try connectedPair(listeningOn: SocketAddress(ipv4: .loopback, port: 0))
        // The whole file, interleaving sends and receives so neither buffer stays full.
        var offset = 0
        var received: [UInt8] = []
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: testTimeout)
        while received.count < contents.count {
            try #require(clock.now < deadline, "sendFile: timed out at \(offset) sent, \(received.count) received")
            if offset < contents.count, let sent = try connection.client.sendFile(from: file, offset: Int64(offset), count: contents.count - offset) {
                #expect(sent > 0)
                offset += sent
            }
            if let chunk = try connection.server.receive(maximumCount: 65_536) {
                try #require(!chunk.isEmpty, "unexpected end-of-file")
                received += chunk
            } else {
                _ = try connection.server.poll(for: .readable, timeout: .milliseconds(20))
            }
        }
        #expect(received == contents)

        // A range from the middle; the file's own offset is untouched.
        #expect(try connection.client.sendFile(from: file, offset: 1000, count: 5000) == 5000)
        #expect(try receiveExactly(connection.server, count: 5000) == Array(contents[1000..<6000]))
        #expect(lseek(file, 0, SEEK_CUR) == 0)
        // At the end of the file there is nothing to send.
        #expect(try connection.client.sendFile(from: file, offset: Int64(contents.count), count: 10) == 0)
    }

    @Test("peek leaves data queued; receive(maximumCount:) returns what arrived")
    func peekAndReceive() throws {
        let pair = try Socket.makePair(kind: .stream)
        #expect(try pair.second.receive(maximumCount: 8) == nil, "nothing yet: would block")
        #expect(try pair.first.send(Array("abcdef".utf8)) == 6)
        try waitUntil(pair.second, is: .readable)
        #expect(try pair.second.receive(maximumCount: 3, flags: .peek) == Array("abc".utf8))
        #expect(try pair.second.receive(maximumCount: 100) == Array("abcdef".utf8))
        var buffer = [UInt8](repeating: 0, count: 4)
        #expect(try pair.first.send(Array("xyz".utf8)) == 3)
        try waitUntil(pair.second, is: .readable)
        let count = try buffer.withUnsafeMutableBytes { try pair.second.receive(into: $0) }
        #expect(count == 3 && Array(buffer[0..<3]) == Array("xyz".utf8))
        let empty: [UInt8] = []
        #expect(try pair.first.send(empty) == 0)
    }

    @Test("a nonblocking send into a full buffer reports would-block as nil")
    func sendWouldBlock() throws {
        let pair = try Socket.makePair(kind: .stream)
        let chunk = [UInt8](repeating: 7, count: 65_536)
        var wouldBlock = false
        for _ in 0..<10_000 {
            if try pair.first.send(chunk) == nil {
                wouldBlock = true
                break
            }
        }
        #expect(wouldBlock, "a socket buffer never filled up")
        #expect(try pair.first.poll(for: .writable, timeout: .zero).isEmpty)
    }
}
