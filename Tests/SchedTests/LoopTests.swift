#if canImport(Glibc)
import Glibc
#endif
import StrataEvents
import StrataSched
import StrataSockets
import StrataThreads
import Synchronization
import Testing

/// An actor whose jobs run on a loop.
actor LoopBound {
    let loop: Loop
    var count = 0
    init(loop: Loop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    func increment() -> Bool {
        count += 1
        return loop.isCurrent
    }
}

@Suite("Sched: the loop as an executor")
struct LoopExecutorTests {
    @Test("tasks preferring the loop and actors pinned to it run on the loop thread (checked)", arguments: schedBackends)
    func runsOnLoopThread(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let onThread = try await onLoop(loop) { loop.isCurrent }
        #expect(onThread)
        #expect(!loop.isCurrent, "the test itself does not run on the loop")
        let actor = LoopBound(loop: loop)
        for _ in 0..<100 { #expect(await actor.increment()) }
        // assumeIsolated is honest: it works on the loop thread (it would trap elsewhere).
        @Sendable func peek() -> Int { actor.assumeIsolated { $0.count } }  // synchronous, as it must be
        let count = try await onLoop(loop) { peek() }
        #expect(count == 100)
        // A nested child task inherits the executor preference.
        let child = try await onLoop(loop) { await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<10 { group.addTask { loop.isCurrent } }
            var all = true
            for await x in group { all = all && x }
            return all
        } }
        #expect(child)
    }

    @Test("enqueue from many threads: every job runs on the loop, none lost", arguments: schedBackends)
    func crossThreadEnqueue(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let checks = ThreadChecks()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<500 {
                        await Task(executorPreference: loop) { checks.check(loop) }.value
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(checks.onLoop.load(ordering: .relaxed) == 4000)
        #expect(checks.offLoop.load(ordering: .relaxed) == 0)
    }

    @Test("10,000 concurrent tasks on one loop, each sleeping on the loop's timers", arguments: schedBackends)
    func tenThousandTasks(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let checks = ThreadChecks()
        try await onLoop(loop) {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<10_000 {
                    group.addTask {
                        try? await loop.sleep(for: .milliseconds(i % 50))
                        checks.check(loop)
                    }
                }
            }
        }
        #expect(checks.onLoop.load(ordering: .relaxed) == 10_000)
        #expect(checks.offLoop.load(ordering: .relaxed) == 0)
    }

    @Test("sleep: ordered wakeups; cancellation ends it with CancellationError; a deadline with timedOut", arguments: schedBackends)
    func sleeping(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let order = try await onLoop(loop) {
            await withTaskGroup(of: Int.self) { group in
                for ms in [30, 10, 20] { group.addTask { try? await loop.sleep(for: .milliseconds(ms)); return ms } }
                var order: [Int] = []
                for await x in group { order.append(x) }
                return order
            }
        }
        #expect(order == [10, 20, 30])
        let sleeper = Task(executorPreference: loop) { try await loop.sleep(for: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(20))
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        // Cancelled before it starts: ends at once.
        let early = Task(executorPreference: loop) {
            withUnsafeCurrentTask { $0?.cancel() }
            try await loop.sleep(for: .seconds(30))
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        let started = ContinuousClock.now
        do {
            try await onLoop(loop) { try await withTimeout(.milliseconds(30)) { try await loop.sleep(for: .seconds(30)) } }
            Issue.record("the deadline did not end the sleep")
        } catch let error as SchedError {
            #expect(error.code == .timedOut)
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        // From a task not on the loop, the same calls work (submitted through the loop).
        try await loop.sleep(for: .milliseconds(5))
    }

    @Test("a loop whose backend cannot start is an error naming the backend")
    func badBackend() {
        #if os(Linux)
        #expect(throws: SchedError.self) { _ = try Loop.start(configuration: .init(backend: .exactly(.kqueue))) }
        #endif
    }
}

@Suite("Sched: callback-level Events on a loop")
struct CallbackLevelTests {
    @Test("submit delivers a callback-level operation's completions on the loop thread; cancel(token:) ends it",
          arguments: schedBackends)
    func submitAndCancel(kind: BackendKind) async throws {
        let loop = try startLoop(kind)
        defer { loop.stop() }
        let results = LockedResults()
        let token = try await onLoop(loop) {
            loop.submit({ events, token in events.timeout(after: .milliseconds(5), token: token) }) { c in
                results.append(c.result, onLoop: loop.isCurrent)
            }
            return loop.submit({ events, token in events.timeout(after: .seconds(3600), token: token) }) { c in
                results.append(c.result, onLoop: loop.isCurrent)
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        loop.cancel(token: token)
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while results.count < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(results.values == [-ETIME, -ECANCELED])
        #expect(results.allOnLoop)
    }
}

/// Completion results collected from the loop thread.
final class LockedResults: Sendable {
    private let state = LockedValue<(values: [Int32], allOnLoop: Bool)>(([], true))
    func append(_ r: Int32, onLoop here: Bool) {
        state.withLock { $0.values.append(r); $0.allOnLoop = $0.allOnLoop && here }
    }
    var values: [Int32] { state.withLock { $0.values } }
    var count: Int { state.withLock { $0.values.count } }
    var allOnLoop: Bool { state.withLock { $0.allOnLoop } }
}
