// Runs one of the example servers (strata-echo, later strata-resp, strata-serve) as a child
// process for interop tests: started on port 0, its real address read from its first line.
import Foundation
import Testing

/// An example server running as a child process; `stop()` (or `deinit`) terminates it.
final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the test that owns this object.
    let process: Process
    /// The port the server printed in its "listening on 127.0.0.1:PORT" line.
    let port: UInt16
    private let errors: Pipe
    private let exited = DispatchSemaphore(value: 0)
    private var stopped = false

    /// Starts `product` (an executable built next to the test bundle) with `arguments` and
    /// waits up to `timeout` for its "listening on HOST:PORT" line on standard output.
    init(_ product: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws {
        process = Process()
        process.executableURL = try productURL(product)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        // Under `make test-sanitize` the servers are ASan builds too: their exit must not be
        // a LeakSanitizer report (a server process ends with its loops and tasks alive by
        // design), while memory errors still abort them.
        environment["ASAN_OPTIONS"] = (environment["ASAN_OPTIONS"].map { $0 + ":" } ?? "") + "detect_leaks=0"
        process.environment = environment
        let output = Pipe()
        errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
        // Read the first line on a helper thread, so a silent server cannot hang the test.
        let line = LineWaiter(output.fileHandleForReading)
        guard let first = line.wait(timeout: timeout) else {
            process.terminate()
            process.waitUntilExit()
            let stderr = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
            Issue.record("\(product) \(arguments) printed no listening line within \(timeout); stderr: \(stderr)")
            throw CancellationError()
        }
        guard let range = first.range(of: "listening on "),
              let portText = first[range.upperBound...].split(separator: " ").first?.split(separator: ":").last,
              let port = UInt16(portText) else {
            process.terminate()
            Issue.record("\(product): unexpected first line \(first)")
            throw CancellationError()
        }
        self.port = port
    }

    /// Stops the server with SIGTERM (SIGKILL after 15 s: sanitizer builds shut down slowly)
    /// and returns its exit status.
    @discardableResult
    func stop() -> Int32 {
        if !stopped {
            stopped = true
            kill(process.processIdentifier, SIGTERM)
            if exited.wait(timeout: .now() + 15) == .timedOut {
                Issue.record("the server did not exit within 15 s of SIGTERM; killing it")
                kill(process.processIdentifier, SIGKILL)
                _ = exited.wait(timeout: .now() + 5)
            }
        }
        return process.terminationStatus
    }

    /// The server's resident memory in KiB (VmRSS), for bounded-memory checks.
    var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    deinit { stop() }
}

/// Reads the first line of a pipe on a background thread.
private final class LineWaiter: @unchecked Sendable {
    // @unchecked: `line` is written once before `done` is signalled and read after waiting on it.
    private var line: String?
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            var bytes: [UInt8] = []
            while true {
                let chunk = handle.readData(ofLength: 1)
                if chunk.isEmpty || chunk.first == UInt8(ascii: "\n") { break }
                bytes.append(contentsOf: chunk)
            }
            line = bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
            done.signal()
            // Keep draining so the server never blocks on a full stdout pipe.
            while !handle.readData(ofLength: 4096).isEmpty {}
        }
    }

    func wait(timeout: Duration) -> String? {
        guard done.wait(timeout: .now() + Double(timeout.components.seconds)) == .success else { return nil }
        return line
    }
}

/// An executable product built next to the test bundle (see StrataSocketsTests' testPeerURL).
func productURL(_ name: String) throws -> URL {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = executable.deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    Issue.record("\(name) not found above \(executable.path); the test target depends on it, so SwiftPM should have built it")
    throw CancellationError()
}

/// The backends CI requires on this machine (io_uring and epoll on Linux).
let linuxBackends = ["io_uring", "epoll"]
