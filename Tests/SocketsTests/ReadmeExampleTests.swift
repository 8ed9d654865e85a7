// The smallest example of Modules/Sockets/README.md, compiled and run. Keep the two in step:
// the body of `echoOnce()` is the README's, with `print` replaced by returning the reply, and
// receive timeouts added so that a bug fails the test instead of blocking it forever. (The
// accept cannot block: the blocking connect has returned, so the connection is in the backlog.)

import StrataSockets
import Testing

@Suite("README example")
struct ReadmeExampleTests {
    func echoOnce() throws -> String {
        // A blocking listener on a loopback port the system picks.
        let listener = try Socket(family: .ipv4, kind: .stream, blocking: true)
        try listener.setOption(.reuseAddress, to: true)
        try listener.bind(to: SocketAddress(ipv4: .loopback, port: 0))
        try listener.listen(backlog: 16)
        let address = try listener.localAddress

        // The client connects; the connection waits in the listener's backlog until accepted.
        let client = try Socket(family: .ipv4, kind: .stream, blocking: true)
        _ = try client.connect(to: address)
        guard let connection = try listener.accept(blocking: true) else {
            fatalError("a blocking accept waits for a connection")
        }
        #expect(connection.peerAddress == (try client.localAddress))
        let server = connection.socket
        try server.setOption(.receiveTimeout, to: testTimeout)
        try client.setOption(.receiveTimeout, to: testTimeout)

        // Echo one message. (A stream may carry less than asked per call: loop in real code.)
        _ = try client.send(Array("hello, strata".utf8))
        if let request = try server.receive(maximumCount: 1024) {
            _ = try server.send(request)
        }
        let reply = try client.receive(maximumCount: 1024) ?? []

        // Sockets close when they go out of scope; close() consumes one and reports errors.
        try client.close()
        return String(decoding: reply, as: UTF8.self)
    }

    @Test("the blocking TCP echo of the README works")
    func echo() throws {
        #expect(try echoOnce() == "hello, strata")
    }
}
