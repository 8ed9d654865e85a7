// Helpers for the TLS tests that talk to real peers: child processes (openssl, curl,
// gnutls, Python's ssl) with their output captured and a bounded lifetime, and an
// in-process StrataTLS server on a Sched loop that records what every connection did.
//
// Nothing here blocks a thread of the cooperative pool for long (it has one thread per
// core, two on CI): waits poll with `Task.sleep`, and sockets are Sched connections.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StrataEvents
import StrataSched
import StrataSockets
import StrataTLS
import Synchronization
import Testing

// MARK: - Peer programs

/// The peer programs, at Debian's paths (never a pyenv or Homebrew one found on PATH).
enum PeerTool: String, Sendable {
    case openssl = "/usr/bin/openssl"
    case curl = "/usr/bin/curl"
    case gnutlsCLI = "/usr/bin/gnutls-cli"
    case python = "/usr/bin/python3"

    /// The Debian package that installs the program.
    var package: String {
        switch self {
        case .openssl: return "openssl"
        case .curl: return "curl"
        case .gnutlsCLI: return "gnutls-bin"
        case .python: return "python3"
        }
    }

    /// The program's path, or an error that says how to get it: a missing peer fails the
    /// test (it is never skipped).
    func path() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: rawValue) else {
            throw PeerError("\(rawValue) is missing: run `make test` (it installs the test dependencies, see .ci/deps.sh) or `apt-get install \(package)`")
        }
        return rawValue
    }
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What a finished (or killed) child process did.
struct PeerResult: Sendable, CustomStringConvertible {
    var command: String
    /// The exit status, or the signal number when `signalled`.
    var status: Int32
    var signalled: Bool
    /// The process was still running at its deadline and was killed.
    var timedOut: Bool
    var stdout: String
    var stderr: String
    var elapsed: Duration
    /// stdout then stderr.
    var output: String { stdout + "\n" + stderr }
    var succeeded: Bool { !signalled && !timedOut && status == 0 }

    var description: String {
        let how = timedOut ? "killed at its deadline" : signalled ? "killed by signal \(status)" : "exit \(status)"
        return "`\(command)` (\(how), \(elapsed)):\n--- stdout ---\n\(stdout.suffix(3000))\n--- stderr ---\n\(stderr.suffix(3000))"
    }
}

/// A child process whose stdout and stderr go to temporary files (so a chatty peer never
/// blocks on a full pipe), with optional stdin through a pipe. ``kill()`` (which tests call
/// in `defer`) ends it with SIGKILL if it still runs.
final class PeerProcess: @unchecked Sendable {
    // @unchecked: used by the one test that owns it; `Process` is thread-safe for the calls made.
    let process = Process()
    let command: String
    private let stdoutURL: URL
    private let stderrURL: URL
    private let input: Pipe?
    private let started = ContinuousClock.now
    private var killed = false

    /// Starts `tool` with `arguments`. `stdin: true` gives the process a pipe to write to
    /// (``send(_:)``); otherwise its stdin is /dev/null.
    init(_ tool: PeerTool, _ arguments: [String], stdin: Bool = false, environment extra: [String: String] = [:]) throws {
        Self.ignoreSIGPIPE
        let path = try tool.path()
        command = ([path] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("strata-peer-\(getpid())-\(UUID().uuidString)")
        stdoutURL = base.appendingPathExtension("out")
        stderrURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: stdoutURL)
        let err = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? out.close()
            try? err.close()
        }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // Debian's python3 with Debian's packages only; no user OpenSSL configuration.
        for name in ["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "OPENSSL_CONF", "SSLKEYLOGFILE"] {
            environment[name] = nil
        }
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        for (k, v) in extra { environment[k] = v }
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        if stdin {
            let pipe = Pipe()
            process.standardInput = pipe
            input = pipe
        } else {
            process.standardInput = FileHandle.nullDevice
            input = nil
        }
        try process.run()
    }

    /// Writing to the stdin of a child that has exited must be an error, not the end of the
    /// test process: SIGPIPE is ignored process-wide (Strata's own sockets never raise it).
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Writes to the child's stdin (errors, e.g. a child that has exited, are ignored).
    func send(_ text: String) {
        guard let input else { return }
        try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Closes the child's stdin (it reads end of file).
    func closeInput() {
        try? input?.fileHandleForWriting.close()
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    /// Waits until stdout or stderr contains `text`; false when the process exits or the
    /// timeout passes first.
    func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdout.contains(text) || stderr.contains(text) { return true }
            if !process.isRunning { return stdout.contains(text) || stderr.contains(text) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // One last look: under a full parallel test run this task can be starved past the
        // deadline while the peer printed long ago.
        return stdout.contains(text) || stderr.contains(text)
    }

    /// Waits for the process to exit, killing it at `timeout`, and returns what it did.
    func finish(timeout: Duration = .seconds(15)) async -> PeerResult {
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                timedOut = true
                kill()
                break
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return result(timedOut: timedOut)
    }

    /// Ends the process with SIGKILL if it still runs and reaps it. Idempotent.
    func kill() {
        closeInput()
        if !killed {
            killed = true
            if process.isRunning { signalProcess(process.processIdentifier, SIGKILL) }
        }
        // Foundation reaps the child on its own thread; wait (briefly) until it has.
        let limit = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < limit { usleep(1000) }
    }

    private func result(timedOut: Bool) -> PeerResult {
        let running = process.isRunning
        let signalled = !running && process.terminationReason == .uncaughtSignal
        return PeerResult(command: command, status: running ? -1 : process.terminationStatus, signalled: signalled,
                          timedOut: timedOut, stdout: stdout, stderr: stderr, elapsed: ContinuousClock.now - started)
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
    }

    /// Runs `tool` to completion (killed at `timeout`) and returns what it did.
    static func run(_ tool: PeerTool, _ arguments: [String], input: String? = nil,
                    timeout: Duration = .seconds(15)) async throws -> PeerResult {
        let p = try PeerProcess(tool, arguments, stdin: input != nil)
        defer { p.kill() }
        if let input {
            p.send(input)
            p.closeInput()
        }
        return await p.finish(timeout: timeout)
    }
}

/// kill(2), outside the types whose `kill()` methods shadow it.
func signalProcess(_ pid: pid_t, _ signal: CInt) { _ = kill(pid, signal) }

/// Splits a PEM chain file into its first certificate and the rest (for peers whose
/// `-cert` option reads only the leaf). Returns the two files' paths in `directory`.
func splitChain(_ chainPath: String, into directory: URL) throws -> (leaf: String, rest: String?) {
    let text = try String(contentsOfFile: chainPath, encoding: .utf8)
    let end = "-----END CERTIFICATE-----"
    var blocks: [String] = []
    var rest = Substring(text)
    while let r = rest.range(of: end) {
        blocks.append(String(rest[..<r.upperBound]).trimmingCharacters(in: .whitespacesAndNewlines) + "\n")
        rest = rest[r.upperBound...]
    }
    guard let first = blocks.first else { throw PeerError("\(chainPath) holds no certificate") }
    let stem = URL(fileURLWithPath: chainPath).deletingPathExtension().lastPathComponent
    let leaf = directory.appendingPathComponent("\(stem)-leaf.pem")
    try first.write(to: leaf, atomically: true, encoding: .utf8)
    guard blocks.count > 1 else { return (leaf.path, nil) }
    let chain = directory.appendingPathComponent("\(stem)-chain.pem")
    try blocks.dropFirst().joined().write(to: chain, atomically: true, encoding: .utf8)
    return (leaf.path, chain.path)
}

/// A fresh temporary directory, removed by the caller.
func peerScratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("strata-tls-peers-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

// MARK: - Configurations from the test PKI

enum PKIConfig {
    static func identity(_ stem: String) throws -> TLSIdentity {
        let pki = try TestPKI.shared
        return .pemFiles(certificateChain: try pki.path("\(stem).pem"), privateKey: try pki.path("\(stem).key"))
    }

    static func server(_ stem: String = "server", alpn: [String] = [], mutualTLS: Bool = false,
                       options: TLSOptions = TLSOptions()) throws -> TLSConfiguration {
        try TLSConfiguration.server(
            identity: try identity(stem),
            clientAuthentication: mutualTLS ? .required(trustRoots: .file(try TestPKI.shared.path("client-ca.pem"))) : .none,
            alpn: alpn, options: options)
    }

    static func client(identity stem: String? = nil, alpn: [String] = [], options: TLSOptions = TLSOptions()) throws -> TLSConfiguration {
        try TLSConfiguration.client(trustRoots: .file(try TestPKI.shared.path("root.pem")),
                                    identity: try stem.map { try identity($0) }, alpn: alpn, options: options)
    }
}

// MARK: - Loops

/// The Events backends every loop-level TLS test runs on (as in StrataSchedTests).
let tlsTestBackends: [BackendKind] = {
    #if os(Linux)
    return [.ioUring, .epoll]
    #else
    return [.kqueue]
    #endif
}()

func startTestLoop(_ kind: BackendKind? = nil, name: String) throws -> Loop {
    if let kind { return try Loop.start(name: name, configuration: .init(backend: .exactly(kind))) }
    return try Loop.start(name: name)
}

/// Runs `body` as a task preferring `loop` and returns its result.
func runOn<R: Sendable>(_ loop: Loop, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await Task(executorPreference: loop) { try await body() }.value
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}

// MARK: - An in-process StrataTLS server

/// What the server saw on one accepted connection.
struct ServerOutcome: Sendable, CustomStringConvertible {
    /// When the TCP connection was accepted and when its handling ended.
    var acceptedAt: ContinuousClock.Instant
    var endedAt: ContinuousClock.Instant?
    /// The handshake's error (nil: it completed).
    var handshakeError: (any Error)?
    var resumed = false
    var alpn: String?
    var cipherSuite: String?
    var serverName: String?
    var peerSubject: String?
    /// Plaintext received after the handshake.
    var received: [UInt8] = []
    /// The stream after the handshake ended with the peer's close_notify.
    var cleanEnd = false
    /// The error that ended reading after the handshake, if any.
    var readError: (any Error)?

    var established: Bool { handshakeError == nil }
    var tlsError: TLSError? { handshakeError as? TLSError }
    var readTLSError: TLSError? { readError as? TLSError }

    var description: String {
        if let handshakeError { return "handshake failed: \(handshakeError)" }
        return "established (suite \(cipherSuite ?? "-"), resumed \(resumed), alpn \(alpn ?? "-"), sni \(serverName ?? "-"), peer \(peerSubject ?? "-")); "
            + "received \(received.count) bytes; " + (cleanEnd ? "close_notify" : "ended by \(readError.map { "\($0)" } ?? "us")")
    }
}

/// A StrataTLS server on its own loop: accepts on 127.0.0.1:0, runs every handshake as its
/// own task, and then echoes (`.echo`) or answers one HTTP request (`.http`), recording a
/// ``ServerOutcome`` per connection.
final class TLSTestServer: @unchecked Sendable {
    enum Mode: Sendable {
        /// Echo every chunk until the peer ends the stream.
        case echo
        /// Read one request head, answer 200 with `body` and `Connection: close`, then
        /// close (close_notify) and wait for the peer's end.
        case http(body: String)
    }

    let loop: Loop
    let listener: TCPListener
    let configuration: TLSConfiguration
    let mode: Mode
    private let outcomesStore = Mutex<[ServerOutcome]>([])
    private var acceptTask: Task<Void, Never>?

    var port: UInt16 { listener.localAddress.port! }
    var outcomes: [ServerOutcome] { outcomesStore.withLock { $0 } }

    private init(loop: Loop, listener: TCPListener, configuration: TLSConfiguration, mode: Mode) {
        self.loop = loop
        self.listener = listener
        self.configuration = configuration
        self.mode = mode
    }

    static func start(_ configuration: TLSConfiguration, mode: Mode = .echo, backend: BackendKind? = nil,
                      name: String = "tls-server") throws -> TLSTestServer {
        let loop = try startTestLoop(backend, name: name)
        do {
            let listener = try TCPListener.bind(SocketAddress(parsing: "127.0.0.1:0"), on: loop)
            let server = TLSTestServer(loop: loop, listener: listener, configuration: configuration, mode: mode)
            server.acceptTask = Task(executorPreference: loop) { [server] in
                while let tcp = try? await listener.accept() {
                    loop.spawn { await server.serve(tcp) }
                }
            }
            return server
        } catch {
            loop.stop()
            throw error
        }
    }

    private func serve(_ tcp: TCPConnection) async {
        var outcome = ServerOutcome(acceptedAt: .now)
        defer {
            outcome.endedAt = .now
            let finished = outcome
            outcomesStore.withLock { $0.append(finished) }
        }
        let tls: TLSConnection
        do {
            tls = try await TLSConnection.accept(tcp, configuration: configuration)
        } catch {
            outcome.handshakeError = error
            return
        }
        outcome.resumed = tls.isResumed
        outcome.alpn = tls.negotiatedALPN
        outcome.cipherSuite = tls.cipherSuite
        outcome.serverName = tls.requestedServerName
        outcome.peerSubject = tls.peerCertificateSubject
        do {
            switch mode {
            case .echo:
                while let chunk = try await tls.read() {
                    outcome.received += chunk
                    try await tls.write(chunk)
                }
                outcome.cleanEnd = true
            case .http(let body):
                while !outcome.received.containsSubsequence(Array("\r\n\r\n".utf8)) {
                    guard let chunk = try await tls.read() else {
                        outcome.cleanEnd = true
                        await tls.close()
                        return
                    }
                    outcome.received += chunk
                }
                let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                try await tls.write(Array(response.utf8))
                try await tls.shutdownWrite()  // close_notify, then FIN
                while let chunk = try await tls.read() { outcome.received += chunk }
                outcome.cleanEnd = true
            }
        } catch {
            outcome.readError = error
        }
        await tls.close()
    }

    /// Waits until at least `count` connections have ended; returns them all.
    func waitForOutcomes(_ count: Int, timeout: Duration = .seconds(10)) async -> [ServerOutcome] {
        _ = await eventually(timeout: timeout) { outcomes.count >= count }
        return outcomes
    }

    /// Closes the listener, cancels the connections' tasks and stops the loop.
    func stop() {
        acceptTask?.cancel()
        loop.cancelTrackedTasks()
        loop.stop()
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, count >= needle.count else { return needle.isEmpty }
        for i in 0...(count - needle.count) where self[i] == needle[0] && Array(self[i..<(i + needle.count)]) == needle {
            return true
        }
        return false
    }
}

extension String {
    /// How many times `needle` occurs.
    func occurrences(of needle: String) -> Int { components(separatedBy: needle).count - 1 }
}
