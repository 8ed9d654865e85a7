// Helpers shared by the StrataSockets tests. Every wait has a deadline and every loop a bound, so
// a broken socket makes a test fail instead of hanging.

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

/// How long any single wait in the tests may take.
let testTimeout: Duration = .seconds(10)

/// Waits until `socket` is ready for `events`; fails the test when the deadline passes.
func waitUntil(
    _ socket: borrowing Socket,
    is events: Socket.PollEvents,
    timeout: Duration = testTimeout,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let ready = try socket.poll(for: events, timeout: timeout)
    try #require(!ready.isEmpty, "socket \(socket.descriptor) not ready for \(events) within \(timeout)", sourceLocation: sourceLocation)
}

/// Sends all of `bytes`, waiting for writability when the socket is full.
func sendAll(_ socket: borrowing Socket, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
    var offset = 0
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: testTimeout)
    while offset < bytes.count {
        try #require(clock.now < deadline, "sendAll: timed out after \(offset) of \(bytes.count) bytes", sourceLocation: sourceLocation)
        if let sent = try socket.send(bytes[offset...]) {
            offset += sent
        } else {
            try waitUntil(socket, is: .writable, sourceLocation: sourceLocation)
        }
    }
}

/// Receives exactly `count` bytes, waiting for readability; fails on end-of-file or timeout.
func receiveExactly(_ socket: borrowing Socket, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
    var received: [UInt8] = []
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: testTimeout)
    while received.count < count {
        try #require(clock.now < deadline, "receiveExactly: timed out after \(received.count) of \(count) bytes", sourceLocation: sourceLocation)
        if let chunk = try socket.receive(maximumCount: count - received.count) {
            try #require(!chunk.isEmpty, "receiveExactly: end-of-file after \(received.count) of \(count) bytes", sourceLocation: sourceLocation)
            received += chunk
        } else {
            try waitUntil(socket, is: .readable, sourceLocation: sourceLocation)
        }
    }
    return received
}

/// Sends `bytes` from `sender` while receiving them on `receiver`, alternating, so that neither
/// side waits on a full buffer that only the other (same-thread) side could drain.
func transfer(_ bytes: [UInt8], from sender: borrowing Socket, to receiver: borrowing Socket, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
    var offset = 0
    var received: [UInt8] = []
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: testTimeout)
    while received.count < bytes.count {
        try #require(clock.now < deadline, "transfer: timed out at \(offset) sent, \(received.count) received", sourceLocation: sourceLocation)
        if offset < bytes.count, let sent = try sender.send(bytes[offset...]) {
            offset += sent
        }
        if let chunk = try receiver.receive(maximumCount: 65_536) {
            try #require(!chunk.isEmpty, "transfer: end-of-file after \(received.count) bytes", sourceLocation: sourceLocation)
            received += chunk
        } else {
            _ = try receiver.poll(for: .readable, timeout: .milliseconds(20))
        }
    }
    return received
}

/// Receives until end-of-file; fails on timeout or when more than `limit` bytes arrive.
func receiveToEnd(_ socket: borrowing Socket, limit: Int = 1 << 20, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
    var received: [UInt8] = []
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: testTimeout)
    while true {
        try #require(clock.now < deadline, "receiveToEnd: timed out after \(received.count) bytes", sourceLocation: sourceLocation)
        try #require(received.count <= limit, "receiveToEnd: more than \(limit) bytes", sourceLocation: sourceLocation)
        if let chunk = try socket.receive(maximumCount: 64 * 1024) {
            if chunk.isEmpty {
                return received
            }
            received += chunk
        } else {
            try waitUntil(socket, is: .readable, sourceLocation: sourceLocation)
        }
    }
}

/// A connected pair of stream sockets made through a real listener.
struct Connection: ~Copyable {
    var client: Socket
    var server: Socket
    var serverAddress: SocketAddress
}

/// Connects a nonblocking client to a nonblocking listener bound to `address` and accepts it.
func connectedPair(listeningOn address: SocketAddress) throws -> Connection {
    let listener = try Socket(family: address.family, kind: .stream)
    if address.family != .unix {
        try listener.setOption(.reuseAddress, to: true)
    }
    try listener.bind(to: address)
    try listener.listen(backlog: 8)
    let bound = try listener.localAddress
    let client = try Socket(family: address.family, kind: .stream)
    if try client.connect(to: bound) == .inProgress {
        try waitUntil(client, is: .writable)
        #expect(try client.finishConnect() == .connected)
    }
    try waitUntil(listener, is: .readable)
    guard let accepted = try listener.accept() else {
        Issue.record("the listener was readable, but accept() found no connection")
        throw CancellationError()
    }
    return Connection(client: client, server: accepted.socket, serverAddress: bound)
}

/// A short, unique path for a Unix socket under the temporary directory (sun_path is small).
func temporarySocketPath(_ label: String = "t") -> String {
    "/tmp/strata-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// Whether a file exists at `path`.
func fileExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// The result of running a child process.
struct ProcessOutput {
    var status: Int32
    var reason: Process.TerminationReason
    var standardOutput: String
    var standardError: String
}

/// The `strata-test-peer` executable, built next to the test bundle.
///
/// SwiftPM puts executables in the products directory, which contains the test bundle: on Linux
/// the test binary (`…/debug/StrataPackageTests.xctest`) sits in it; on Darwin the binary is
/// inside the bundle (`…/debug/StrataPackageTests.xctest/Contents/MacOS/…`). Walk up from the
/// running executable until a directory holds the peer.
func testPeerURL() throws -> URL {
    #if os(Linux)
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    #else
    let executable = try #require(Bundle.main.executableURL).resolvingSymlinksInPath()
    #endif
    var directory = executable.deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = directory.appendingPathComponent("strata-test-peer")
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        directory = directory.deletingLastPathComponent()
    }
    Issue.record("strata-test-peer not found above \(executable.path); the test target depends on it, so SwiftPM should have built it")
    throw CancellationError()
}

/// Runs the test peer with `arguments`, killing it if it runs longer than the deadline.
func runTestPeer(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = try testPeerURL()
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    // Drain the pipes on other threads while the process runs, so that a chatty child cannot
    // block on a full pipe and a hung child cannot hang the test past the deadline.
    let outputReader = PipeReader(output)
    let errorReader = PipeReader(errors)
    let seconds = Double(timeout.components.seconds)
    if finished.wait(timeout: .now() + seconds) == .timedOut {
        process.terminate()
        _ = finished.wait(timeout: .now() + 5)
        Issue.record("strata-test-peer \(arguments) did not finish within \(timeout)")
    }
    let outputData = outputReader.result()
    let errorData = errorReader.result()
    return ProcessOutput(
        status: process.terminationStatus,
        reason: process.terminationReason,
        standardOutput: String(decoding: outputData, as: UTF8.self),
        standardError: String(decoding: errorData, as: UTF8.self))
}

/// Reads a pipe to its end on a background thread.
private final class PipeReader: @unchecked Sendable {
    // @unchecked: `data` is written once by the reading thread before `done` is signalled, and
    // read only after waiting for `done`.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        DispatchQueue.global().async {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func result() -> Data {
        guard done.wait(timeout: .now() + 10) == .success else {
            return Data()
        }
        return data
    }
}
