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

@Suite("SocketError")
struct SocketErrorTests {
    static let loopback8080 = SocketAddress(ipv4: .loopback, port: 8080)

    /// The soft RLIMIT_NOFILE of this process, as the message prints it.
    static var descriptorLimitText: String {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        _ = getrlimit(resource, &limit)
        let soft = UInt64(truncatingIfNeeded: limit.rlim_cur)
        return soft >= UInt64(Int64.max) ? "unlimited" : "\(soft)"
    }

    // MARK: Messages

    @Test("the required messages, word for word")
    func requiredMessages() throws {
        let bind = SocketError("bind", errno: .addressInUse, descriptor: 3, address: Self.loopback8080)
        #expect(bind.message == "bind 127.0.0.1:8080: EADDRINUSE (\(EADDRINUSE)): address already in use — stop the other server or pick another port")
        #expect(bind.code == .addressInUse)
        #expect(bind.cause == SystemCallError(systemCall: "bind", errno: .addressInUse))
        #expect(bind.address == Self.loopback8080)
        #expect(bind.description == bind.message)

        let connect = SocketError("connect", errno: .connectionRefused, descriptor: 3, address: SocketAddress(ipv4: .loopback, port: 1))
        #expect(connect.message == "connect 127.0.0.1:1: ECONNREFUSED (\(ECONNREFUSED)): connection refused, nothing is listening there — start the server or check the address and port")
        #expect(connect.code == .connectionRefused)

        let accept = SocketError("accept", errno: .tooManyOpenFiles, descriptor: 3)
        #expect(accept.message == "accept: EMFILE (\(EMFILE)): too many open files, this process reached its descriptor limit (RLIMIT_NOFILE soft limit \(Self.descriptorLimitText)) — close idle connections or raise the limit (ulimit -n / setrlimit)")
        #expect(accept.code == .tooManyOpenFiles)

        #if os(Linux)
        #expect(bind.message == "bind 127.0.0.1:8080: EADDRINUSE (98): address already in use — stop the other server or pick another port")
        #expect(connect.message == "connect 127.0.0.1:1: ECONNREFUSED (111): connection refused, nothing is listening there — start the server or check the address and port")
        #endif
    }

    /// A call, an errno, an address, the code, and phrases the message must contain.
    static let messages: [(String, Errno, SocketAddress?, SocketError.Code, [String])] = [
        ("bind", .addressNotAvailable, SocketAddress(ipv4: IPv4Address(192, 0, 2, 1), port: 80), .addressNotAvailable,
         ["bind 192.0.2.1:80: EADDRNOTAVAIL", "no local interface has this address", "bind to an address this host owns"]),
        ("connect", .addressNotAvailable, loopback8080, .addressNotAvailable,
         ["no local port is free", "ephemeral port range"]),
        ("bind", .permissionDenied, SocketAddress(ipv4: .any, port: 80), .permissionDenied,
         ["bind 0.0.0.0:80: EACCES", "ports below 1024 need privileges", "use a port of 1024 or above"]),
        ("bind", .permissionDenied, try! SocketAddress(unixPath: "/root/x.sock"), .permissionDenied,
         ["bind unix:/root/x.sock: EACCES", "may not create the socket file", "pick a directory the process can write"]),
        ("sendto", .permissionDenied, SocketAddress(ipv4: .broadcast, port: 9), .permissionDenied,
         ["broadcast", "Socket.Option.broadcast"]),
        ("socket", .fileTableOverflow, nil, .tooManyOpenFiles,
         ["socket: ENFILE", "the kernel's file table is full", "raise the system limit"]),
        ("connect", .timedOut, loopback8080, .timedOut,
         ["connect 127.0.0.1:8080: ETIMEDOUT", "the host did not answer", "no firewall drops the packets"]),
        ("recv", .timedOut, nil, .timedOut,
         ["recv: ETIMEDOUT", "stopped acknowledging data", "reconnect"]),
        ("connect", .networkUnreachable, SocketAddress(ipv6: .loopback, port: 1), .networkUnreachable,
         ["connect [::1]:1: ENETUNREACH", "no route to that network", "routing table"]),
        ("connect", .hostUnreachable, loopback8080, .hostUnreachable,
         ["EHOSTUNREACH", "no route to host", "check that the host is up"]),
        ("recv", .connectionReset, nil, .connectionReset,
         ["recv: ECONNRESET", "the peer closed the connection abruptly", "treat the connection as closed"]),
        ("send", .brokenPipe, nil, .brokenPipe,
         ["send: EPIPE", "broken pipe", "stop writing and close the socket"]),
        ("accept", .connectionAborted, nil, .connectionAborted,
         ["accept: ECONNABORTED", "accept the next connection"]),
        ("connect", .connectionRefused, try! SocketAddress(unixPath: "/tmp/none.sock"), .connectionRefused,
         ["no server listens on it", "remove the stale socket file"]),
        ("connect", .noSuchFileOrDirectory, try! SocketAddress(unixPath: "/tmp/none.sock"), .noSuchFile,
         ["connect unix:/tmp/none.sock: ENOENT", "no socket file exists at this path"]),
        ("listen", .operationNotSupported, nil, .unsupported,
         ["only stream sockets listen"]),
        ("connect", .addressFamilyNotSupported, SocketAddress(ipv6: .loopback, port: 1), .unsupported,
         ["does not match the socket's", "create the socket with the address's family"]),
        ("sendto", .noBufferSpace, nil, .resourceExhausted,
         ["no buffer space available", "retry later"]),
        ("shutdown", .notConnected, nil, .notConnected,
         ["shutdown: ENOTCONN", "nothing to shut down"]),
        ("connect", .wouldBlock, try! SocketAddress(unixPath: "/tmp/busy.sock"), .wouldBlock,
         ["listen backlog is full"]),
        ("accept", .invalidArgument, nil, .invalidArgument,
         ["not listening", "call listen(backlog:) before accept()"]),
        ("sendfile", .invalidArgument, nil, .invalidArgument,
         ["cannot be sent with sendfile", "fall back to reading the file"]),
        ("recv", Errno(rawValue: EXDEV), nil, .unknown,
         ["recv: EXDEV (\(EXDEV)): ", "see the recv(2) manual page"]),
    ]

    @Test("each errno gets an explanation and a fix", arguments: messages)
    func messagesNameCauseAndFix(call: String, errno: Errno, address: SocketAddress?, code: SocketError.Code, phrases: [String]) {
        let error = SocketError(call, errno: errno, descriptor: 3, address: address)
        #expect(error.code == code, "\(error.message)")
        #expect(error.cause.systemCall == call && error.cause.errno == errno)
        let prefix = address.map { "\(call) \($0): " } ?? "\(call): "
        #expect(error.message.hasPrefix(prefix + "\(errno.name) (\(errno.rawValue)): "), "\(error.message)")
        #expect(error.message.contains(" — "), "a fix follows the dash: \(error.message)")
        for phrase in phrases {
            #expect(error.message.contains(phrase), "\"\(phrase)\" missing from: \(error.message)")
        }
    }

    @Test("messages for options and sizes name them")
    func optionsAndSizes() {
        let option = SocketError("setsockopt", errno: .protocolNotAvailable, descriptor: 3, option: "TCP_FASTOPEN")
        #expect(option.message.hasPrefix("setsockopt TCP_FASTOPEN: ENOPROTOOPT (\(ENOPROTOOPT)): option not supported, TCP_FASTOPEN is unknown"))
        let size = SocketError("sendto", errno: .messageTooLong, descriptor: 3, address: Self.loopback8080, byteCount: 70_000)
        #expect(size.message.contains("a datagram of 70000 bytes"))
        #expect(size.code == .messageTooLong)
    }

    // MARK: Live errors

    @Test("EADDRINUSE: binding a port twice names the address and the fix")
    func addressInUse() throws {
        let first = try Socket(family: .ipv4, kind: .stream)
        try first.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try first.listen(backlog: 4)
        let taken = try first.localAddress
        let second = try Socket(family: .ipv4, kind: .stream)
        do {
            try second.bind(to: taken)
            Issue.record("binding \(taken) twice succeeded")
        } catch {
            #expect(error.code == .addressInUse)
            #expect(error.cause == SystemCallError(systemCall: "bind", errno: .addressInUse))
            #expect(error.address == taken)
            #expect(error.message == "bind \(taken): EADDRINUSE (\(EADDRINUSE)): address already in use — stop the other server or pick another port")
            #expect(error.cause.errno.isAddressInUse)
        }
    }

    @Test("reusePort lets two listeners share a port")
    func reusePortShares() throws {
        let first = try Socket(family: .ipv4, kind: .stream)
        try first.setOption(.reusePort, to: true)
        try first.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try first.listen(backlog: 4)
        let second = try Socket(family: .ipv4, kind: .stream)
        try second.setOption(.reusePort, to: true)
        try second.bind(to: try first.localAddress)
        try second.listen(backlog: 4)
        #expect(try second.localAddress == first.localAddress)
    }

    @Test("ECONNREFUSED: connecting to a closed loopback port")
    func connectionRefused() throws {
        // A port bound but not listening: nobody else can listen there while this socket lives.
        let reserved = try Socket(family: .ipv4, kind: .stream)
        try reserved.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        let closed = try reserved.localAddress

        let blocking = try Socket(family: .ipv4, kind: .stream, blocking: true)
        do {
            _ = try blocking.connect(to: closed)
            Issue.record("connecting to \(closed) succeeded")
        } catch {
            #expect(error.code == .connectionRefused)
            #expect(error.message == "connect \(closed): ECONNREFUSED (\(ECONNREFUSED)): connection refused, nothing is listening there — start the server or check the address and port")
        }

        // The nonblocking path reports the same error through SO_ERROR.
        let nonblocking = try Socket(family: .ipv4, kind: .stream)
        do {
            if try nonblocking.connect(to: closed) == .inProgress {
                try waitUntil(nonblocking, is: .writable)
                _ = try nonblocking.finishConnect()
            }
            Issue.record("a nonblocking connect to \(closed) succeeded")
        } catch let error as SocketError {
            #expect(error.code == .connectionRefused)
            #expect(error.cause.systemCall == "connect")
            #expect(error.message.contains("ECONNREFUSED (\(ECONNREFUSED)): connection refused, nothing is listening there"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("ECONNRESET: a peer that closes with SO_LINGER 0 resets the connection")
    func connectionReset() throws {
        let connection = try connectedPair(listeningOn: SocketAddress(ipv4: .loopback, port: 0))
        let client = connection.client
        let server = connection.server
        try client.setOption(.linger, to: .zero)
        try client.close()
        try waitUntil(server, is: .readable)
        do {
            let bytes = try server.receive(maximumCount: 16)
            Issue.record("receiving after a reset returned \(String(describing: bytes))")
        } catch {
            #expect(error.code == .connectionReset)
            #expect(error.cause.errno.kind == .connectionReset)
            #expect(error.cause.errno.isConnectionReset)
            #expect(error.message.hasPrefix("recv: ECONNRESET (\(ECONNRESET)): connection reset by peer"))
        }
    }

    @Test("EPIPE: writing to a closed peer fails with an error, and SIGPIPE does not kill the process")
    func brokenPipe() throws {
        let connection = try connectedPair(listeningOn: SocketAddress(ipv4: .loopback, port: 0))
        let client = connection.client
        try connection.server.close()
        var errors: [SocketError.Code] = []
        for _ in 0..<200 where !errors.contains(.brokenPipe) {
            do {
                _ = try client.send(Array(repeating: 1, count: 1024))
            } catch {
                errors.append(error.code)
                #expect(error.code == .brokenPipe || error.code == .connectionReset, "\(error)")
                if error.code == .brokenPipe {
                    #expect(error.message.hasPrefix("send: EPIPE (\(EPIPE)): broken pipe"))
                    #expect(error.cause.errno.isBrokenPipe)
                }
            }
            _ = try? client.poll(for: .readable, timeout: .milliseconds(5))
        }
        #expect(errors.contains(.brokenPipe), "saw \(errors)")
    }

    @Test("EPIPE on every send path, in a child process where SIGPIPE would terminate")
    func brokenPipeInChild() throws {
        let result = try runTestPeer(["sigpipe"])
        #expect(result.reason == .exit, "the peer was killed by a signal: \(result.status)\n\(result.standardError)")
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines == [
            "send: EPIPE survived",
            "sendmsg: EPIPE survived",
            "gathering write: EPIPE survived",
            "sendto: EPIPE survived",
            "sendfile: EPIPE survived",
        ], "\(result.standardOutput)\(result.standardError)")
    }

    @Test("EMFILE: socket() and accept() at the descriptor limit, in a child process")
    func tooManyOpenFiles() throws {
        let result = try runTestPeer(["emfile", "64"])
        #expect(result.reason == .exit && result.status == 0, "\(result.standardOutput)\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        let explanation = "EMFILE (\(EMFILE)): too many open files, this process reached its descriptor limit (RLIMIT_NOFILE soft limit 64) — close idle connections or raise the limit (ulimit -n / setrlimit)"
        #expect(lines == ["socket: " + explanation, "accept: " + explanation], "\(result.standardOutput)\(result.standardError)")
    }

    // MARK: Programmer errors trap

    @Test("using a descriptor closed behind the socket's back traps, naming the descriptor and the call")
    func badDescriptorTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let pair = try Socket.makePair(kind: .stream)
            #if canImport(Glibc)
            _ = Glibc.close(pair.first.descriptor)
            #elseif canImport(Musl)
            _ = Musl.close(pair.first.descriptor)
            #else
            _ = Darwin.close(pair.first.descriptor)
            #endif
            _ = try pair.first.send([1])
        }
        let output = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(output.contains("StrataSockets: send on descriptor"), "\(output)")
        #expect(output.contains("EBADF"), "\(output)")
        #expect(output.contains("closed twice"), "\(output)")
    }

    @Test("adopting a descriptor that is not a socket traps on first use")
    func notSocketTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let descriptor = open("/dev/null", O_RDWR)
            let socket = Socket(adoptingDescriptor: descriptor)
            _ = try socket.localAddress
        }
        let output = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(output.contains("StrataSockets: getsockname on descriptor"), "\(output)")
        #expect(output.contains("ENOTSOCK"), "\(output)")
    }
}
