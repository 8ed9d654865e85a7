import Testing
@testable import StrataEvents

@Suite("TimerQueue")
struct TimerQueueTests {
    /// A fixed-seed generator so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("timers fire in deadline order, and equal deadlines in scheduling order")
    func ordering() {
        var q = TimerQueue()
        let base = MonotonicInstant(nanoseconds: 1_000)
        _ = q.schedule(at: base.advanced(by: .nanoseconds(30)), token: 3)
        _ = q.schedule(at: base.advanced(by: .nanoseconds(10)), token: 1)
        _ = q.schedule(at: base.advanced(by: .nanoseconds(20)), token: 20)
        _ = q.schedule(at: base.advanced(by: .nanoseconds(20)), token: 21)
        _ = q.schedule(at: base.advanced(by: .nanoseconds(20)), token: 22)
        #expect(q.nextDeadline == base.advanced(by: .nanoseconds(10)))
        var fired: [UInt64] = []
        #expect(q.popExpired(now: base) == nil)
        while let (_, token) = q.popExpired(now: base.advanced(by: .nanoseconds(25))) { fired.append(token) }
        #expect(fired == [1, 20, 21, 22])
        #expect(q.count == 1)
        #expect(q.popExpired(now: base.advanced(by: .nanoseconds(30)))?.token == 3)
        #expect(q.isEmpty && q.nextDeadline == nil)
    }

    @Test("cancel removes exactly that timer; stale ids are harmless after slot reuse")
    func cancellation() {
        var q = TimerQueue()
        let t = MonotonicInstant(nanoseconds: 100)
        let a = q.schedule(at: t, token: 1)
        let b = q.schedule(at: t, token: 2)
        let first = q.cancel(a)
        #expect(first)
        let second = q.cancel(a)
        #expect(!second, "cancelling twice must report false")
        let c = q.schedule(at: t, token: 3)  // reuses a's slot with a new generation
        let stale = q.cancel(a)
        #expect(!stale, "a stale id must not cancel the slot's new timer")
        var fired: [UInt64] = []
        while let (_, token) = q.popExpired(now: t) { fired.append(token) }
        #expect(fired == [2, 3])
        let late = q.cancel(b) || q.cancel(c)
        #expect(!late, "fired timers cannot be cancelled")
    }

    @Test("100,000 random timers with random cancellations fire exactly once, in order")
    func hundredThousand() {
        var rng = SplitMix(state: 42)
        var q = TimerQueue(capacity: 100_000)
        var ids: [TimerID] = []
        var deadline: [UInt64: UInt64] = [:]
        for token in 0..<UInt64(100_000) {
            let d = UInt64.random(in: 0..<1_000_000, using: &rng)
            deadline[token] = d
            ids.append(q.schedule(at: MonotonicInstant(nanoseconds: d), token: token))
        }
        var cancelled = Set<UInt64>()
        for _ in 0..<30_000 {
            let token = UInt64.random(in: 0..<100_000, using: &rng)
            let wasNew = cancelled.insert(token).inserted
            let didCancel = q.cancel(ids[Int(token)])
            #expect(didCancel == wasNew)
        }
        #expect(q.count == 100_000 - cancelled.count)
        var last: UInt64 = 0
        var seen = 0
        while let (_, token) = q.popExpired(now: MonotonicInstant(nanoseconds: .max)) {
            let d = deadline[token]!
            #expect(d >= last, "timer \(token) fired out of order")
            #expect(!cancelled.contains(token), "cancelled timer \(token) fired")
            last = d
            seen += 1
        }
        #expect(seen == 100_000 - cancelled.count)
        #expect(q.isEmpty)
    }

    @Test("MonotonicInstant arithmetic saturates and round-trips durations")
    func instantArithmetic() {
        let t = MonotonicInstant(nanoseconds: 5_000_000_000)
        #expect(t.advanced(by: .seconds(1)).nanoseconds == 6_000_000_000)
        #expect(t.advanced(by: .seconds(-10)).nanoseconds == 0)
        #expect(MonotonicInstant(nanoseconds: .max - 1).advanced(by: .seconds(1)).nanoseconds == .max)
        #expect(t.duration(to: t.advanced(by: .milliseconds(250))) == .milliseconds(250))
        #expect(t.advanced(by: .milliseconds(250)).duration(to: t) == .milliseconds(-250))
        #expect(MonotonicInstant(nanoseconds: 1_000_000_007).description == "1.000000007s")
        let a = MonotonicInstant.now, b = MonotonicInstant.now
        #expect(a <= b, "the monotonic clock went backwards")
    }
}
