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

@Suite("Socket")
struct SocketTests {
    // MARK: Ownership

    @Test("destroying a socket closes its descriptor: the peer reads end-of-file")
    func deinitCloses() throws {
        let pair = try Socket.makePair(kind: .stream)
        let survivor = pair.second
        do {
            let doomed = pair.first
            #expect(doomed.descriptor >= 0)
        }
        try waitUntil(survivor, is: .readable)
        #expect(try survivor.receive(maximumCount: 16) == [])
    }

    @Test("close() consumes the socket and closes the descriptor")
    func closeCloses() throws {
        let pair = try Socket.makePair(kind: .stream)
        let survivor = pair.second
        try pair.first.close()
        try waitUntil(survivor, is: .readable)
        #expect(try survivor.receive(maximumCount: 16) == [])
    }

    @Test("takeDescriptor() hands the descriptor over without closing it")
    func takeDescriptorHandsOver() throws {
        let pair = try Socket.makePair(kind: .stream)
        let survivor = pair.second
        let descriptor = pair.first.takeDescriptor()
        // Still open: nothing to read, no end-of-file.
        #expect(try survivor.poll(for: .readable, timeout: .milliseconds(50)).isEmpty)
        let adopted = Socket(adoptingDescriptor: descriptor)
        #expect(try adopted.send([1, 2, 3]) == 3)
        #expect(try receiveExactly(survivor, count: 3) == [1, 2, 3])
        try adopted.close()
        try waitUntil(survivor, is: .readable)
        #expect(try survivor.receive(maximumCount: 16) == [])
    }

    @Test("new sockets are nonblocking and close-on-exec unless asked to block")
    func creationFlags() throws {
        let nonblocking = try Socket(family: .ipv4, kind: .stream)
        #expect(try nonblocking.isBlocking == false)
        #expect(try nonblocking.isCloseOnExec)
        let blocking = try Socket(family: .ipv6, kind: .datagram, blocking: true)
        #expect(try blocking.isBlocking)
        #expect(try blocking.isCloseOnExec)
        try blocking.setBlocking(false)
        #expect(try blocking.isBlocking == false)
        try blocking.setBlocking(true)
        #expect(try blocking.isBlocking)
        let pair = try Socket.makePair(kind: .datagram)
        #expect(try pair.first.isBlocking == false && pair.first.isCloseOnExec)
        let explicitTCP = try Socket(family: .ipv4, kind: .stream, protocol: .tcp)
        #expect(try explicitTCP.option(.noDelay) == false)
    }

    @Test("accepted sockets are nonblocking and close-on-exec unless asked to block")
    func acceptedFlags() throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let address = try listener.localAddress
        let firstClient = try Socket(family: .ipv4, kind: .stream)
        _ = try firstClient.connect(to: address)
        let secondClient = try Socket(family: .ipv4, kind: .stream)
        _ = try secondClient.connect(to: address)
        try waitUntil(listener, is: .readable)
        guard let first = try listener.accept() else {
            Issue.record("no connection to accept")
            return
        }
        let nonblocking = first.socket
        #expect(try nonblocking.isBlocking == false && nonblocking.isCloseOnExec)
        try waitUntil(listener, is: .readable)
        guard let second = try listener.accept(blocking: true) else {
            Issue.record("no connection to accept")
            return
        }
        let blocking = second.socket
        #expect(try blocking.isBlocking && blocking.isCloseOnExec)
    }

    // MARK: TCP

    static let loopbacks: [SocketAddress] = [
        SocketAddress(ipv4: .loopback, port: 0),
        SocketAddress(ipv6: .loopback, port: 0),
    ]

    @Test("TCP round trip over loopback", arguments: loopbacks)
    func tcpRoundTrip(listenAddress: SocketAddress) throws {
        let connection = try connectedPair(listeningOn: listenAddress)
        let request = Array("ping over \(listenAddress.family)".utf8)
        try sendAll(connection.client, request)
        #expect(try receiveExactly(connection.server, count: request.count) == request)
        let response = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(try transfer(response, from: connection.server, to: connection.client) == response)

        // Addresses: the client's peer is the server's bound address, and vice versa.
        #expect(try connection.client.remoteAddress == connection.serverAddress)
        #expect(try connection.server.localAddress == connection.serverAddress)
        #expect(try connection.server.remoteAddress == connection.client.localAddress)
        #expect(try connection.client.localAddress.family == listenAddress.family)
        #expect(try connection.client.localAddress.port != 0)
    }

    @Test("accept() on a nonblocking listener returns nil when no client waits")
    func acceptWouldBlock() throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        #expect(try listener.accept() == nil)
        // And it reports the peer once one connects.
        let client = try Socket(family: .ipv4, kind: .stream)
        _ = try client.connect(to: try listener.localAddress)
        try waitUntil(listener, is: .readable)
        guard let accepted = try listener.accept() else {
            Issue.record("the listener was readable, but accept() returned nil")
            return
        }
        #expect(accepted.peerAddress == (try client.localAddress))
        #expect(try listener.accept() == nil)
    }

    @Test("a nonblocking connect completes once the socket is writable")
    func nonblockingConnect() throws {
        for listenAddress in Self.loopbacks {
            let listener = try Socket(family: listenAddress.family, kind: .stream)
            try listener.bind(to: listenAddress)
            try listener.listen(backlog: 4)
            let client = try Socket(family: listenAddress.family, kind: .stream)
            let started = try client.connect(to: try listener.localAddress)
            #expect(started == .inProgress || started == .connected)
            try waitUntil(client, is: .writable)
            #expect(try client.finishConnect() == .connected)
            #expect(try client.remoteAddress == listener.localAddress)
            // Connecting again reports the established connection.
            #expect(try client.connect(to: try listener.localAddress) == .connected)
        }
    }

    @Test("finishConnect() reports a connection still under way as inProgress")
    func finishConnectBeforeCompletion() throws {
        let socket = try Socket(family: .ipv4, kind: .stream)
        // Not connected at all: no pending error and no peer.
        #expect(try socket.finishConnect() == .inProgress)
    }

    @Test("connect(to:timeout:) connects, and refuses with the address in the message")
    func connectWithTimeout() throws {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let client = try Socket(family: .ipv4, kind: .stream)
        try client.connect(to: try listener.localAddress, timeout: .seconds(5))
        #expect(try client.remoteAddress == listener.localAddress)

        let reserved = try Socket(family: .ipv4, kind: .stream)
        try reserved.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        let closedPort = try reserved.localAddress
        let refused = try Socket(family: .ipv4, kind: .stream)
        do {
            try refused.connect(to: closedPort, timeout: .seconds(5))
            Issue.record("connecting to a port nobody listens on succeeded")
        } catch {
            #expect(error.code == .connectionRefused)
            #expect(error.address == closedPort)
            #expect(error.message.hasPrefix("connect \(closedPort): ECONNREFUSED"))
        }
    }

    @Test("shutdown(.write) gives the peer end-of-file while the other direction still works")
    func shutdownWrite() throws {
        let connection = try connectedPair(listeningOn: SocketAddress(ipv4: .loopback, port: 0))
        try sendAll(connection.client, Array("request".utf8))
        try connection.client.shutdown(.write)
        #expect(try receiveToEnd(connection.server) == Array("request".utf8))
        // The server can still answer, and the client can still read.
        try sendAll(connection.server, Array("response".utf8))
        try connection.server.shutdown(.write)
        #expect(try receiveToEnd(connection.client) == Array("response".utf8))
        // Writing after shutdown is a broken pipe (and no SIGPIPE).
        do {
            _ = try connection.client.send(Array("late".utf8))
            Issue.record("send after shutdown(.write) succeeded")
        } catch {
            #expect(error.code == .brokenPipe)
        }
    }

    @Test("shutdown(.read) makes further reads return end-of-file; .both ends both")
    func shutdownReadAndBoth() throws {
        let pair = try Socket.makePair(kind: .stream)
        try pair.first.shutdown(.read)
        #expect(try pair.first.receive(maximumCount: 8) == [])
        try pair.second.shutdown(.both)
        try waitUntil(pair.first, is: .readable)
        #expect(try pair.first.receive(maximumCount: 8) == [])
    }

    // MARK: Unix

    @Test("Unix stream round trip over a socket file; the file stays until unlinked")
    func unixRoundTrip() throws {
        let path = temporarySocketPath("rt")
        defer { unlink(path) }
        let address = try SocketAddress(unixPath: path)
        do {
            let connection = try connectedPair(listeningOn: address)
            #expect(fileExists(path))
            #expect(connection.serverAddress == address)
            #expect(try connection.server.localAddress == address)
            #expect(try connection.client.remoteAddress == address)
            #expect(try connection.client.localAddress.unix?.isUnnamed == true)
            try sendAll(connection.client, Array("over unix".utf8))
            #expect(try receiveExactly(connection.server, count: 9) == Array("over unix".utf8))
            try sendAll(connection.server, Array("back".utf8))
            #expect(try receiveExactly(connection.client, count: 4) == Array("back".utf8))
        }
        // Closing does not remove the file, so binding the path again fails until it is unlinked.
        #expect(fileExists(path))
        let again = try Socket(family: .unix, kind: .stream)
        do {
            try again.bind(to: address)
            Issue.record("binding over a stale socket file succeeded")
        } catch {
            #expect(error.code == .addressInUse)
            #expect(error.message == "bind \(address): EADDRINUSE (\(EADDRINUSE)): address already in use, a file already exists at this socket path — remove the stale socket file if no server uses it, or pick another path")
        }
        #expect(unlink(path) == 0)
        #expect(!fileExists(path))
        try again.bind(to: address)
        #expect(fileExists(path))
    }

    #if os(Linux)
    @Test("Linux abstract namespace: no file, gone with the socket")
    func abstractNamespace() throws {
        let address = try SocketAddress(parsing: "unix:@strata-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            let connection = try connectedPair(listeningOn: address)
            #expect(try connection.server.localAddress == address)
            try sendAll(connection.client, [42])
            #expect(try receiveExactly(connection.server, count: 1) == [42])
        }
        // The listener is gone, so the name is free again.
        let rebound = try Socket(family: .unix, kind: .stream)
        try rebound.bind(to: address)
    }
    #endif

    @Test("socket pairs carry data both ways, as streams and as datagrams")
    func socketPairs() throws {
        let stream = try Socket.makePair(kind: .stream)
        #expect(try stream.first.send([1, 2]) == 2)
        #expect(try receiveExactly(stream.second, count: 2) == [1, 2])
        #expect(try stream.second.send([3]) == 1)
        #expect(try receiveExactly(stream.first, count: 1) == [3])
        let datagrams = try Socket.makePair(kind: .datagram, blocking: true)
        #expect(try datagrams.first.send([9, 9, 9]) == 3)
        #expect(try datagrams.first.send([8]) == 1)
        #expect(try datagrams.second.receive(maximumCount: 100) == [9, 9, 9])
        #expect(try datagrams.second.receive(maximumCount: 100) == [8])
        #expect(try stream.first.remoteAddress.unix?.isUnnamed == true)
    }

    // MARK: UDP

    @Test("UDP send(_:to:) and receiveFrom(into:) over loopback", arguments: loopbacks)
    func udpRoundTrip(bindAddress: SocketAddress) throws {
        let receiver = try Socket(family: bindAddress.family, kind: .datagram)
        try receiver.bind(to: bindAddress)
        let sender = try Socket(family: bindAddress.family, kind: .datagram)
        try sender.bind(to: bindAddress)
        let destination = try receiver.localAddress
        let payload = Array("datagram over \(bindAddress.family)".utf8)
        #expect(try sender.send(payload, to: destination) == payload.count)
        try waitUntil(receiver, is: .readable)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let received = try buffer.withUnsafeMutableBytes { bytes in
            try receiver.receiveFrom(into: bytes)
        }
        let (count, from) = try #require(received)
        #expect(Array(buffer[0..<count]) == payload)
        #expect(from == (try sender.localAddress))
        // Nothing more: a nonblocking receive reports would-block as nil.
        let again = try buffer.withUnsafeMutableBytes { bytes in try receiver.receiveFrom(into: bytes) }
        #expect(again == nil)
        // Reply to the address the datagram came from.
        #expect(try receiver.send(Array("reply".utf8), to: from) == 5)
        try waitUntil(sender, is: .readable)
        #expect(try sender.receive(maximumCount: 64) == Array("reply".utf8))
    }

    @Test("a connected UDP socket reports ECONNREFUSED for a closed port")
    func udpRefused() throws {
        // A UDP port that nothing listens on: bind one, note it, close it.
        let probe = try Socket(family: .ipv4, kind: .datagram)
        try probe.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        let closed = try probe.localAddress
        try probe.close()
        let client = try Socket(family: .ipv4, kind: .datagram)
        #expect(try client.connect(to: closed) == .connected)
        #expect(try client.send([1]) == 1)
        // The ICMP port-unreachable arrives asynchronously as a pending error.
        try waitUntil(client, is: [.readable, .error])
        do {
            _ = try client.receive(maximumCount: 16)
            Issue.record("receiving after a refused datagram succeeded")
        } catch {
            #expect(error.code == .connectionRefused)
            #expect(error.message.hasPrefix("recv: ECONNREFUSED"))
        }
    }
}
