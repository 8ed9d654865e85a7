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

/// EMFILE during accept must not spin the loop. Each scenario runs in a child process (a
/// Swift Testing exit test) because it lowers RLIMIT_NOFILE and fills the descriptor table,
/// which would break tests running in parallel in this process.
///
/// Policies, per backend (see docs/events.md):
/// - epoll/kqueue keep a reserve descriptor: on EMFILE they close it, accept and reset the
///   pending connections, reopen it, and report `-EMFILE` once per episode.
/// - io_uring pauses: the kernel ends the multishot accept with `-EMFILE`; the caller re-arms
///   after a pause (here 50 ms), and nothing is retried meanwhile.
@Suite("EMFILE during accept")
struct EmfileTests {
    /// The scenario, run in the child. Exits 0 on success, 1 with a message otherwise.
    static func scenario(_ kind: BackendKind) -> Never {
        func fail(_ message: String) -> Never {
            var text = "EMFILE scenario (\(kind)): \(message)\n"
            text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            exit(1)
        }
        do {
            // The limit is set first, as a real server has it from the start (io_uring reads it
            // when an accept is prepared).
            var rl = rlimit()
            #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
            #else
            let resource = RLIMIT_NOFILE
            #endif
            _ = getrlimit(resource, &rl)
            rl.rlim_cur = 256
            guard setrlimit(resource, &rl) == 0 else { fail("setrlimit: errno \(errno)") }
            let loop = try EventLoop(configuration: .init(backend: .exactly(kind)))
            let listener = try Socket(family: .ipv4, kind: .stream)
            try listener.bind(to: SocketAddress(parsing: "127.0.0.1:0"))
            try listener.listen(backlog: 64)
            let address = try listener.localAddress
            let acceptToken: UInt64 = 1, rearmToken: UInt64 = 2
            loop.accept(listener.descriptor, multishot: true, token: acceptToken)
            _ = try loop.runOnce(timeout: .zero) { _ in }
            // Eight clients wait in the backlog.
            var clients: [CInt] = []
            for _ in 0..<8 {
                let c = try Socket(family: .ipv4, kind: .stream)
                _ = try c.connect(to: address)
                clients.append(c.takeDescriptor())
            }
            // Fill the descriptor table.
            var filler = 0
            while open("/dev/null", O_RDONLY) >= 0 { filler += 1 }
            guard errno == EMFILE else { fail("filling the table stopped with errno \(errno)") }

            var iterations = 0, emfile = 0, accepted = 0, completions = 0
            let end = MonotonicInstant.now.advanced(by: .milliseconds(600))
            while MonotonicInstant.now < end {
                iterations += 1
                _ = try loop.runOnce(timeout: .milliseconds(50)) { c in
                    completions += 1
                    switch c.token {
                    case acceptToken:
                        if c.result == -EMFILE || c.result == -ENFILE { emfile += 1 }
                        else if c.result >= 0 { accepted += 1; close(c.result) }
                        if !c.hasMore { loop.timeout(after: .milliseconds(50), token: rearmToken) }
                    case rearmToken:
                        loop.accept(listener.descriptor, multishot: true, token: acceptToken)
                    default:
                        break
                    }
                }
            }
            guard emfile >= 1 else { fail("no -EMFILE completion (accepted \(accepted), \(completions) completions)") }
            // 600 ms of 50 ms waits is about 12 iterations; a spinning loop makes thousands.
            guard iterations <= 60 else { fail("the loop spun: \(iterations) iterations, \(emfile) EMFILE reports") }
            guard completions <= 100 else { fail("completion storm: \(completions) completions") }
            exit(0)
        } catch {
            fail("\(error)")
        }
    }

    #if os(Linux)
    @Test("io_uring: EMFILE pauses accepting instead of spinning")
    func ioUring() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            EmfileTests.scenario(.ioUring)
        }
        if let result, result.exitStatus != .exitCode(0) {
            Issue.record("\(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }

    @Test("epoll: EMFILE sheds pending connections through the reserve descriptor, without spinning")
    func epoll() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            EmfileTests.scenario(.epoll)
        }
        if let result, result.exitStatus != .exitCode(0) {
            Issue.record("\(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }
    #else
    @Test("kqueue: EMFILE sheds pending connections through the reserve descriptor, without spinning")
    func kqueue() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            EmfileTests.scenario(.kqueue)
        }
        if let result, result.exitStatus != .exitCode(0) {
            Issue.record("\(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }
    #endif
}
