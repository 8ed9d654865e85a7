#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import StrataThreads
import Testing

@Suite("ThreadPool", .timeLimit(.minutes(3)))
struct ThreadPoolTests {
    /// Occupies every worker of `pool` with an item that waits for `release`; returns the
    /// tasks awaiting those items once all of them run.
    static func occupyWorkers(
        _ pool: ThreadPool, release: Gate, count: Int, holdFor: Duration = testDeadline
    ) async throws -> [Task<Bool, any Error>] {
        var tasks: [Task<Bool, any Error>] = []
        for _ in 0..<count {
            tasks.append(Task { try await pool.run { release.wait(timeout: holdFor) } })
        }
        #expect(await eventually { pool.statistics.running == count }, "the blockers never started")
        return tasks
    }

    @Test("run returns the closure's value, and rethrows its error")
    func resultAndError() async throws {
        let pool = try ThreadPool(workers: 2, queueCapacity: 4, whenFull: .wait, name: "result")
        #expect(try await pool.run { 6 * 7 } == 42)
        await #expect(throws: ExpectedError(tag: 9)) {
            try await pool.run { () throws -> Int in throw ExpectedError(tag: 9) }
        }
        let id = try await pool.run { Thread.currentID }
        #expect(id != Thread.currentID)
        await pool.shutdown()
        #expect(pool.statistics.completed == 3)
    }

    @Test("invalid configurations are refused")
    func invalidConfiguration() {
        for (workers, capacity, name) in [(0, 1, "p"), (1, 0, "p"), (-1, 4, "p"), (1, 1, "a\u{0}b")] {
            do throws(ThreadsError) {
                _ = try ThreadPool(workers: workers, queueCapacity: capacity, whenFull: .reject, name: name)
                Issue.record("accepted workers \(workers), capacity \(capacity)")
            } catch {
                #expect(error.code == .invalidArgument)
            }
        }
    }

    @Test("workers are named <prefix>-<index>, the prefix shortened so the index survives")
    func workerNames() async throws {
        #expect(ThreadPool.workerName(prefix: "io", index: 3) == "io-3")
        #if os(Linux)
        #expect(ThreadPool.workerName(prefix: "blocking-io-pool", index: 0) == "blocking-io-p-0")
        #expect(ThreadPool.workerName(prefix: "blocking-io-pool", index: 12) == "blocking-io-12")
        #endif
        let pool = try ThreadPool(workers: 1, queueCapacity: 1, whenFull: .wait, name: "blocking-io-pool")
        let name = try await pool.run { try Thread.currentName() }
        #expect(name == ThreadPool.workerName(prefix: "blocking-io-pool", index: 0))
        await pool.shutdown()
    }

    @Test("one worker runs items in submission order")
    func fifo() async throws {
        let count = 50
        let pool = try ThreadPool(workers: 1, queueCapacity: count, whenFull: .reject, name: "fifo")
        let release = Gate()
        // The blocker must outlast all 50 submissions, which take minutes when a sanitizer
        // build of the whole suite keeps the cooperative threads busy.
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1, holdFor: .seconds(600))
        let order = LockedValue([Int]())
        var tasks: [Task<Int, any Error>] = []
        for index in 0..<count {
            tasks.append(Task { try await pool.run { order.withLock { $0.append(index) }; return index } })
            // Submit the next one only once this one is queued, so the submission order is known.
            #expect(await eventually { pool.statistics.queued == index + 1 })
        }
        release.open()
        for (index, task) in tasks.enumerated() { #expect(try await task.value == index) }
        for blocker in blockers { #expect(try await blocker.value) }
        #expect(order.withLock { $0 } == Array(0..<count))
        await pool.shutdown()
    }

    @Test("a full queue under .reject refuses at once with queueFull")
    func rejectWhenFull() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 2, whenFull: .reject, name: "reject")
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1)
        let queued = [Task { try await pool.run { 1 } }, Task { try await pool.run { 2 } }]
        #expect(await eventually { pool.statistics.queued == 2 })
        let ran = Counter()
        do {
            _ = try await pool.run { ran.increment() }
            Issue.record("a full queue accepted work")
        } catch let error as ThreadsError {
            #expect(error.code == .queueFull)
            #expect(error.description.contains("queue is full"))
        }
        #expect(pool.statistics.rejected == 1)
        release.open()
        #expect(try await queued[0].value == 1)
        #expect(try await queued[1].value == 2)
        for blocker in blockers { #expect(try await blocker.value) }
        await pool.shutdown()
        #expect(ran.value == 0)
        #expect(pool.statistics.completed == 3)
    }

    @Test("a full queue under .wait suspends submitters, then admits them in order")
    func waitWhenFull() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 2, whenFull: .wait, name: "wait")
        let release = Gate()
        // The blocker must outlast all 50 submissions, which take minutes when a sanitizer
        // build of the whole suite keeps the cooperative threads busy.
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1, holdFor: .seconds(600))
        let order = LockedValue([Int]())
        var tasks: [Task<Int, any Error>] = []
        for index in 0..<5 {
            tasks.append(Task { try await pool.run { order.withLock { $0.append(index) }; return index } })
            #expect(await eventually {
                let stats = pool.statistics
                return stats.queued + stats.waitingForSpace == index + 1
            })
        }
        let stats = pool.statistics
        #expect(stats.queued == 2)
        #expect(stats.waitingForSpace == 3)
        #expect(order.withLock { $0.isEmpty })
        release.open()
        for (index, task) in tasks.enumerated() { #expect(try await task.value == index) }
        for blocker in blockers { #expect(try await blocker.value) }
        #expect(order.withLock { $0 } == [0, 1, 2, 3, 4])
        await pool.shutdown()
        #expect(pool.statistics.completed == 6)
    }

    @Test("cancelling a queued item removes it: CancellationError, the closure never runs")
    func cancelQueued() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 4, whenFull: .reject, name: "cancel")
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1)
        let ran = Counter()
        let victim = Task { try await pool.run { ran.increment() } }
        #expect(await eventually { pool.statistics.queued == 1 })
        victim.cancel()
        await #expect(throws: CancellationError.self) { try await victim.value }
        #expect(pool.statistics.queued == 0)
        #expect(pool.statistics.cancelled == 1)
        release.open()
        for blocker in blockers { #expect(try await blocker.value) }
        #expect(try await pool.run { 5 } == 5)
        await pool.shutdown()
        #expect(ran.value == 0)
    }

    @Test("cancelling a submitter waiting for space removes it; the queue's items still run")
    func cancelWaitingForSpace() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 1, whenFull: .wait, name: "cancel-w")
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1)
        let queued = Task { try await pool.run { 1 } }
        #expect(await eventually { pool.statistics.queued == 1 })
        let ran = Counter()
        let victim = Task { try await pool.run { ran.increment() } }
        #expect(await eventually { pool.statistics.waitingForSpace == 1 })
        victim.cancel()
        await #expect(throws: CancellationError.self) { try await victim.value }
        #expect(pool.statistics.waitingForSpace == 0)
        release.open()
        #expect(try await queued.value == 1)
        for blocker in blockers { #expect(try await blocker.value) }
        await pool.shutdown()
        #expect(ran.value == 0)
        #expect(pool.statistics.cancelled == 1)
    }

    @Test("a task cancelled before it submits never reaches the pool")
    func cancelledBeforeSubmission() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 1, whenFull: .reject, name: "precancel")
        let ran = Counter()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await pool.run { ran.increment() }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        await pool.shutdown()
        #expect(ran.value == 0)
        #expect(pool.statistics.cancelled == 1)
        #expect(pool.statistics.completed == 0)
    }

    @Test("cancelling after the closure started lets it finish and returns its result")
    func cancelAfterStart() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 1, whenFull: .reject, name: "started")
        let started = Gate()
        let release = Gate()
        let task = Task {
            try await pool.run { () -> Int in
                started.open()
                return release.wait() ? 11 : -1
            }
        }
        #expect(started.wait())
        task.cancel()
        release.open()
        #expect(try await task.value == 11)
        await pool.shutdown()
        #expect(pool.statistics.completed == 1)
        #expect(pool.statistics.cancelled == 0)
    }

    @Test("shutdown finishes queued work, refuses new work, and joins the workers")
    func shutdownDrains() async throws {
        let pool = try ThreadPool(workers: 2, queueCapacity: 64, whenFull: .reject, name: "drain")
        let workerIDs = LockedValue(Set<ThreadID>())
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 2)
        var tasks: [Task<Int, any Error>] = []
        for index in 0..<20 {
            tasks.append(Task {
                try await pool.run {
                    _ = workerIDs.withLock { $0.insert(Thread.currentID) }
                    return index * index
                }
            })
        }
        #expect(await eventually { pool.statistics.queued == 20 })
        let shutdown = Task { await pool.shutdown() }
        #expect(await eventually { !pool.statistics.acceptingWork })
        do {
            _ = try await pool.run { 0 }
            Issue.record("a shutting-down pool accepted work")
        } catch let error as ThreadsError {
            #expect(error.code == .shutDown)
        }
        release.open()
        for (index, task) in tasks.enumerated() { #expect(try await task.value == index * index) }
        for blocker in blockers { #expect(try await blocker.value) }
        await shutdown.value
        let stats = pool.statistics
        #expect(stats.completed == 22)
        #expect(stats.queued == 0 && stats.running == 0)
        #expect(stats.rejected == 1)
        #if os(Linux)
        // Joined: the workers' kernel tasks are gone the moment shutdown returns.
        for id in workerIDs.withLock({ $0 }) {
            #expect(access("/proc/self/task/\(id.rawValue)", F_OK) != 0, "worker \(id) still exists")
        }
        #endif
        await #expect(throws: ThreadsError.self) { try await pool.run { 0 } }
    }

    @Test("shutdown(deadline:) cancels work still queued at the deadline and reports how many")
    func shutdownDeadline() async throws {
        let pool = try ThreadPool(workers: 1, queueCapacity: 8, whenFull: .reject, name: "deadline")
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 1)
        let ran = Counter()
        var queued: [Task<Void, any Error>] = []
        for _ in 0..<5 {
            queued.append(Task { try await pool.run { ran.increment() } })
        }
        #expect(await eventually { pool.statistics.queued == 5 })
        let clock = ContinuousClock()
        let start = clock.now
        let shutdown = Task { await pool.shutdown(deadline: start.advanced(by: .milliseconds(100))) }
        for task in queued {
            await #expect(throws: CancellationError.self) { try await task.value }
        }
        #expect(start.duration(to: clock.now) >= .milliseconds(100), "cancelled before the deadline")
        release.open()
        for blocker in blockers { #expect(try await blocker.value, "a running item must not be interrupted") }
        #expect(await shutdown.value == 5)
        #expect(ran.value == 0)
        let stats = pool.statistics
        #expect(stats.cancelled == 5)
        #expect(stats.completed == 1)
    }

    @Test("shutdown(deadline:) returns as soon as the work is done, not at the deadline")
    func shutdownDeadlineEarly() async throws {
        let pool = try ThreadPool(workers: 2, queueCapacity: 8, whenFull: .reject, name: "early")
        #expect(try await pool.run { 1 } == 1)
        let clock = ContinuousClock()
        let start = clock.now
        let cancelled = await pool.shutdown(deadline: start.advanced(by: .seconds(600)))
        #expect(cancelled == 0)
        #expect(start.duration(to: clock.now) < .seconds(60))
    }

    @Test("concurrent and repeated shutdowns all return after the drain")
    func concurrentShutdown() async throws {
        let pool = try ThreadPool(workers: 3, queueCapacity: 16, whenFull: .wait, name: "multi")
        let release = Gate()
        let blockers = try await Self.occupyWorkers(pool, release: release, count: 3)
        let first = Task { await pool.shutdown() }
        let second = Task { await pool.shutdown(deadline: .now.advanced(by: .seconds(600))) }
        #expect(await eventually { !pool.statistics.acceptingWork })
        release.open()
        await first.value
        #expect(await second.value == 0)
        for blocker in blockers { #expect(try await blocker.value) }
        await pool.shutdown()
        #expect(pool.statistics.completed == 3)
    }

    @Test("no lost items: thousands of submissions from many tasks all run exactly once")
    func stress() async throws {
        let submitters = 40
        let perSubmitter = 50
        let pool = try ThreadPool(workers: 4, queueCapacity: 8, whenFull: .wait, name: "stress")
        let executions = Counter()
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for submitter in 0..<submitters {
                group.addTask {
                    var total = 0
                    for item in 0..<perSubmitter {
                        let value = submitter * perSubmitter + item
                        total += try await pool.run {
                            executions.increment()
                            return value
                        }
                    }
                    return total
                }
            }
            return try await group.reduce(0, +)
        }
        await pool.shutdown()
        let n = submitters * perSubmitter
        #expect(sum == n * (n - 1) / 2)
        #expect(executions.value == n)
        #expect(pool.statistics.completed == n)
        #expect(pool.statistics.cancelled == 0)
    }

    @Test("no lost items under random cancellation: each item either ran or threw CancellationError")
    func stressWithCancellation() async throws {
        let count = 600
        let pool = try ThreadPool(workers: 2, queueCapacity: 4, whenFull: .wait, name: "churn")
        let executions = Counter()
        var tasks: [Task<Int, any Error>] = []
        for index in 0..<count {
            tasks.append(Task {
                try await pool.run { () -> Int in
                    executions.increment()
                    return index
                }
            })
            if index % 3 == 0 { tasks[index / 2].cancel() }
        }
        var succeeded = 0
        var cancelled = 0
        for (index, task) in tasks.enumerated() {
            do {
                #expect(try await task.value == index)
                succeeded += 1
            } catch is CancellationError {
                cancelled += 1
            }
        }
        await pool.shutdown()
        let stats = pool.statistics
        #expect(succeeded + cancelled == count)
        #expect(executions.value == succeeded)
        #expect(stats.completed == succeeded)
        #expect(stats.cancelled == cancelled)
    }

    #if os(Linux)
    @Test("a pool dropped without shutdown drains and its detached workers end")
    func dropWithoutShutdown() async throws {
        var pool: ThreadPool? = try ThreadPool(workers: 2, queueCapacity: 2, whenFull: .wait, name: "dropped")
        let id = try await pool!.run { Thread.currentID }
        #expect(access("/proc/self/task/\(id.rawValue)", F_OK) == 0)
        pool = nil
        #expect(await eventually { access("/proc/self/task/\(id.rawValue)", F_OK) != 0 }, "the worker never ended")
    }
    #endif
}
