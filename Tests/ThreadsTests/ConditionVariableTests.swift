#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import StrataThreads
import Testing

@Suite("ConditionVariable", .timeLimit(.minutes(2)))
struct ConditionVariableTests {
    /// Generous upper bound for "returned promptly" on a loaded 2-core machine (and under TSan).
    static let slack: Duration = .seconds(5)

    @Test("a timed wait with no signal times out after the timeout, not before", arguments: [10, 50, 200])
    func timesOut(milliseconds: Int) {
        let mutex = Mutex()
        let condition = ConditionVariable()
        let timeout = Duration.milliseconds(milliseconds)
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: timeout)
        var timedOut = false
        mutex.lock()
        // Spurious wake-ups return false early: wait again for the rest, a bounded number of times.
        for _ in 0..<1_000 where !timedOut {
            let left = clock.now.duration(to: deadline)
            timedOut = condition.wait(on: mutex, timeout: left <= .zero ? .nanoseconds(1) : left)
        }
        mutex.unlock()
        let elapsed = start.duration(to: clock.now)
        #expect(timedOut)
        #expect(elapsed >= timeout)
        #expect(elapsed < timeout + Self.slack)
    }

    @Test("a zero or negative timeout returns 'timed out' at once, keeping the mutex held")
    func nonPositiveTimeout() throws {
        let mutex = Mutex()
        let condition = ConditionVariable()
        mutex.lock()
        #expect(condition.wait(on: mutex, timeout: .zero))
        #expect(condition.wait(on: mutex, timeout: .seconds(-1)))
        let stillHeld = Unprotected(false)
        let probe = try Thread.spawn(name: "probe") { stillHeld.value = !mutex.tryLock() }
        try probe.join()
        mutex.unlock()
        #expect(stillHeld.value)
    }

    @Test("a signal wakes a timed waiter long before its timeout")
    func signalWakesWaiter() throws {
        let mutex = Mutex()
        let condition = ConditionVariable()
        let ready = Unprotected(false)
        let waiting = Gate()
        let result = Unprotected((timedOut: true, sawReady: false, elapsed: Duration.zero))
        let waiter = try Thread.spawn(name: "waiter") {
            let clock = ContinuousClock()
            let start = clock.now
            mutex.lock()
            waiting.open()
            var timedOut = false
            for _ in 0..<1_000 where !ready.value && !timedOut {
                timedOut = condition.wait(on: mutex, timeout: testDeadline)
            }
            result.value = (timedOut, ready.value, start.duration(to: clock.now))
            mutex.unlock()
        }
        #expect(waiting.wait())
        mutex.withLock { ready.value = true }
        condition.signal()
        try waiter.join()
        #expect(result.value.timedOut == false)
        #expect(result.value.sawReady)
        #expect(result.value.elapsed < testDeadline)
    }

    @Test("broadcast wakes every waiter")
    func broadcastWakesAll() throws {
        let waiters = 6
        let mutex = Mutex()
        let condition = ConditionVariable()
        let registered = Unprotected(0)
        let released = Unprotected(false)
        let woke = Unprotected(0)
        let timeouts = Unprotected(0)
        let allRegistered = Gate()
        let broadcaster = try Thread.spawn(name: "broadcaster") {
            #expect(allRegistered.wait())
            mutex.withLock { released.value = true }
            condition.broadcast()
        }
        try runOnThreads(waiters, name: "bcast") { _ in
            mutex.lock()
            registered.value += 1
            if registered.value == waiters { allRegistered.open() }
            var timedOut = false
            for _ in 0..<1_000 where !released.value && !timedOut {
                timedOut = condition.wait(on: mutex, timeout: testDeadline)
            }
            if timedOut { timeouts.value += 1 } else { woke.value += 1 }
            mutex.unlock()
        }
        try broadcaster.join()
        #expect(woke.value == waiters)
        #expect(timeouts.value == 0)
    }

    @Test("a bounded buffer delivers every item exactly once (producers and consumers)")
    func producerConsumer() throws {
        let producers = 2
        let consumers = 2
        let perProducer = 10_000
        let capacity = 8
        let mutex = Mutex()
        let notFull = ConditionVariable()
        let notEmpty = ConditionVariable()
        let buffer = Unprotected([Int]())
        let produced = Unprotected(0)
        let seen = Unprotected([Int](repeating: 0, count: producers * perProducer))
        let timeouts = Unprotected(0)
        let total = producers * perProducer

        try runOnThreads(producers + consumers, name: "pc") { index in
            if index < producers {
                for item in 0..<perProducer {
                    mutex.lock()
                    while buffer.value.count == capacity {
                        if notFull.wait(on: mutex, timeout: testDeadline) { timeouts.value += 1; break }
                    }
                    buffer.value.append(index * perProducer + item)
                    produced.value += 1
                    mutex.unlock()
                    notEmpty.signal()
                }
                // Wake consumers that may be waiting for the last items.
                notEmpty.broadcast()
            } else {
                while true {
                    mutex.lock()
                    var gaveUp = false
                    while buffer.value.isEmpty && !(produced.value == total) {
                        if notEmpty.wait(on: mutex, timeout: testDeadline) { timeouts.value += 1; gaveUp = true; break }
                    }
                    if buffer.value.isEmpty || gaveUp {
                        mutex.unlock()
                        notEmpty.broadcast()
                        return
                    }
                    let item = buffer.value.removeFirst()
                    seen.value[item] += 1
                    mutex.unlock()
                    notFull.signal()
                }
            }
        }
        #expect(timeouts.value == 0)
        #expect(seen.value.allSatisfy { $0 == 1 })
        #expect(buffer.value.isEmpty)
    }

    #if !canImport(Darwin)
    @Test("deadlines are computed on CLOCK_MONOTONIC with nanosecond carry and saturation")
    func deadlineArithmetic() {
        #expect(ConditionVariable.clock == clockid_t(CLOCK_MONOTONIC))
        var start = timespec()
        start.tv_sec = 100
        start.tv_nsec = 900_000_000
        let carried = ConditionVariable.adding(.milliseconds(250), to: start)
        #expect(carried.tv_sec == 101)
        #expect(carried.tv_nsec == 150_000_000)
        let plain = ConditionVariable.adding(.seconds(2) + .nanoseconds(5), to: start)
        #expect(plain.tv_sec == 102)
        #expect(plain.tv_nsec == 900_000_005)
        let saturated = ConditionVariable.adding(.seconds(Int64.max), to: start)
        #expect(Int64(saturated.tv_sec) == ConditionVariable.maximumSeconds)
        #expect(saturated.tv_nsec == 999_999_999)
    }
    #endif

    @Test("a huge timeout saturates instead of overflowing and still wakes on a signal")
    func hugeTimeout() throws {
        let mutex = Mutex()
        let condition = ConditionVariable()
        let ready = Unprotected(false)
        let waiting = Gate()
        let timedOut = Unprotected(true)
        let waiter = try Thread.spawn(name: "huge") {
            mutex.lock()
            waiting.open()
            var result = false
            for _ in 0..<1_000 where !ready.value && !result {
                result = condition.wait(on: mutex, timeout: .seconds(Int64.max))
            }
            timedOut.value = result
            mutex.unlock()
        }
        #expect(waiting.wait())
        mutex.withLock { ready.value = true }
        condition.signal()
        try waiter.join()
        #expect(timedOut.value == false)
    }
}
