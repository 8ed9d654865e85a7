// strata-test-peer: a child process for StrataSocketsTests, for scenarios that must change
// process-wide state (the descriptor limit, the SIGPIPE disposition) without disturbing tests
// that run in parallel inside the test process.
//
// Usage:
//   strata-test-peer emfile LIMIT   lower the soft RLIMIT_NOFILE to LIMIT, open sockets until
//                                   socket() and then accept() fail with EMFILE, print each
//                                   SocketError's description on its own line, exit 0
//   strata-test-peer sigpipe        with SIGPIPE at its default action (terminate), write to
//                                   connections that can no longer carry data through every send
//                                   path (send, sendto, sendmsg, gathering write, sendfile); print
//                                   one line per path, exit 0 (a SIGPIPE would kill the process)
//
// Exit status: 0 when the scenario ran as described, 1 (with a message on stderr) otherwise.
// Every loop is bounded, and every wait has a deadline.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import StrataSockets

func fail(_ message: String) -> Never {
    var text = "strata-test-peer: \(message)\n"
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    exit(1)
}

func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

// MARK: - emfile

func runDescriptorLimit(limit: UInt64) {
    var current = rlimit()
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &current) == 0 else { fail("getrlimit failed") }
    current.rlim_cur = rlim_t(limit)
    guard setrlimit(resource, &current) == 0 else { fail("setrlimit(\(limit)) failed: errno \(errno)") }

    let listener: Socket
    let listenAddress: SocketAddress
    do {
        listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 16)
        listenAddress = try listener.localAddress
    } catch {
        fail("cannot set up the listener: \(error)")
    }

    // Fill the descriptor table with sockets until socket() reports EMFILE.
    var held: [CInt] = []
    func fillTable(_ label: String) -> SocketError? {
        for _ in 0..<Int(limit) + 16 {
            do {
                let socket = try Socket(family: .ipv4, kind: .datagram)
                held.append(socket.takeDescriptor())
            } catch {
                return error
            }
        }
        fail("\(label): socket() never failed within \(limit + 16) sockets")
    }
    guard let socketError = fillTable("first fill"), socketError.code == .tooManyOpenFiles else {
        fail("socket() failed, but not with EMFILE")
    }
    say(socketError.description)

    // Free one slot, use it for a client that connects, and fill the table again, so that the
    // listener has a pending connection and accept() has no descriptor to give it.
    guard let freed = held.popLast() else { fail("no socket to free") }
    _ = close(freed)
    let client: Socket
    do {
        client = try Socket(family: .ipv4, kind: .stream)
        _ = try client.connect(to: listenAddress)
    } catch {
        fail("cannot connect the client: \(error)")
    }
    _ = fillTable("second fill")
    do {
        guard try !listener.poll(for: .readable, timeout: .seconds(10)).isEmpty else {
            fail("the connection never reached the listener")
        }
        if let accepted = try listener.accept() {
            _ = accepted
            fail("accept() succeeded with a full descriptor table")
        }
        fail("accept() reported no pending connection")
    } catch {
        guard error.code == .tooManyOpenFiles else { fail("accept() failed, but not with EMFILE: \(error)") }
        say(error.description)
    }
    _ = client
    for descriptor in held {
        _ = close(descriptor)
    }
    exit(0)
}

// MARK: - sigpipe

func runBrokenPipe() {
    // The default action of SIGPIPE terminates the process: make sure that is what applies.
    _ = signal(SIGPIPE, SIG_DFL)
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    _ = pthread_sigmask(SIG_UNBLOCK, &pipeSignal, nil)

    func expectBrokenPipe(_ path: String, _ body: (borrowing Socket) throws(SocketError) -> Int?) {
        do {
            // A socket shut down for writing gives EPIPE on every send path, deterministically.
            let pair = try Socket.makePair(kind: .stream)
            let writer = pair.first
            try writer.shutdown(.write)
            let result = try body(writer)
            fail("\(path): sending after shutdown(.write) returned \(String(describing: result))")
        } catch {
            guard error.code == .brokenPipe else { fail("\(path): expected EPIPE, got \(error)") }
            say("\(path): \(error.cause.errno.name) survived")
        }
    }
    let bytes: [UInt8] = Array(repeating: 0x2a, count: 64)
    expectBrokenPipe("send") { socket throws(SocketError) in try socket.send(bytes) }
    expectBrokenPipe("sendmsg") { socket throws(SocketError) in
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(SocketError) in try socket.sendMessage([buffer]) }
        }.get()
    }
    expectBrokenPipe("gathering write") { socket throws(SocketError) in
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(SocketError) in try socket.write(gathering: [buffer, buffer]) }
        }.get()
    }

    // TCP to a peer that closed: the first sends may succeed (the peer answers with a reset),
    // later ones fail with ECONNRESET and then EPIPE.
    do {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let client = try Socket(family: .ipv4, kind: .stream, blocking: true)
        _ = try client.connect(to: try listener.localAddress)
        guard try !listener.poll(for: .readable, timeout: .seconds(10)).isEmpty,
              let accepted = try listener.accept() else { fail("tcp: no connection to accept") }
        try accepted.socket.close()
        var sawBrokenPipe = false
        for _ in 0..<200 where !sawBrokenPipe {
            do {
                _ = try client.send(bytes, to: try listener.localAddress)
            } catch {
                if error.code == .brokenPipe {
                    sawBrokenPipe = true
                } else if error.code != .connectionReset {
                    fail("tcp: expected ECONNRESET or EPIPE, got \(error)")
                }
            }
            _ = try? client.poll(for: .readable, timeout: .milliseconds(5))
        }
        guard sawBrokenPipe else { fail("tcp: sending to a closed peer never reported EPIPE") }
        say("sendto: EPIPE survived")
    } catch {
        fail("tcp: \(error)")
    }

    // sendfile: a temporary file, sent on a TCP socket shut down for writing.
    var template = Array("/tmp/strata-peer-XXXXXX".utf8CString)
    let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard file >= 0 else { fail("mkstemp failed: errno \(errno)") }
    let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    defer {
        _ = close(file)
        _ = unlink(path)
    }
    guard bytes.withUnsafeBytes({ write(file, $0.baseAddress, $0.count) }) == bytes.count else {
        fail("cannot write the temporary file")
    }
    do {
        let listener = try Socket(family: .ipv4, kind: .stream)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 4)
        let client = try Socket(family: .ipv4, kind: .stream, blocking: true)
        _ = try client.connect(to: try listener.localAddress)
        try client.shutdown(.write)
        _ = try client.sendFile(from: file, offset: 0, count: bytes.count)
        fail("sendfile: sending after shutdown(.write) succeeded")
    } catch {
        guard error.code == .brokenPipe else { fail("sendfile: expected EPIPE, got \(error)") }
        say("sendfile: \(error.cause.errno.name) survived")
    }
    exit(0)
}

// MARK: - main

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "emfile":
    guard arguments.count == 2, let limit = UInt64(arguments.last!), limit >= 16 else {
        fail("usage: strata-test-peer emfile LIMIT (LIMIT >= 16)")
    }
    runDescriptorLimit(limit: limit)
case "sigpipe":
    runBrokenPipe()
default:
    fail("usage: strata-test-peer emfile LIMIT | sigpipe")
}
