#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import StrataThreads
import Synchronization
import Testing

@Suite("LockedValue", .timeLimit(.minutes(2)))
struct LockedValueTests {
    @Test("transfers between accounts under contention keep the total")
    func transfers() throws {
        let accounts = 10
        let initial = 1_000
        let balances = LockedValue([Int](repeating: initial, count: accounts))
        let negative = Atomic<Int>(0)
        try runOnThreads(8, name: "bank") { index in
            var seed = UInt64(index + 1)
            for _ in 0..<10_000 {
                // xorshift: deterministic per thread, no shared random state.
                seed ^= seed << 13
                seed ^= seed >> 7
                seed ^= seed << 17
                let from = Int(seed % UInt64(accounts))
                let to = Int((seed >> 8) % UInt64(accounts))
                let amount = Int((seed >> 16) % 50)
                balances.withLock { balances in
                    guard balances[from] >= amount else { return }
                    balances[from] -= amount
                    balances[to] += amount
                    if balances[from] < 0 { negative.add(1, ordering: .relaxed) }
                }
            }
        }
        let total = balances.withLock { $0.reduce(0, +) }
        #expect(total == accounts * initial)
        #expect(negative.load(ordering: .relaxed) == 0)
    }

    @Test("withLockIfAvailable does not run the body while another thread holds the lock")
    func ifAvailable() throws {
        let value = LockedValue(0)
        let held = Gate()
        let release = Gate()
        let holder = try Thread.spawn(name: "holder") {
            value.withLock { _ in
                held.open()
                #expect(release.wait())
            }
        }
        #expect(held.wait())
        let busy: Int? = value.withLockIfAvailable { value in
            value += 1
            return value
        }
        #expect(busy == nil)
        release.open()
        try holder.join()
        #expect(value.withLockIfAvailable { value in value += 1; return value } == 1)
    }

    @Test("withLock returns the body's value and rethrows its error with the lock released")
    func resultAndError() {
        let value = LockedValue("a")
        #expect(value.withLock { $0 += "b"; return $0.count } == 2)
        #expect(throws: ExpectedError(tag: 1)) {
            try value.withLock { (_: inout String) throws(ExpectedError) in throw ExpectedError(tag: 1) }
        }
        #expect(value.withLockIfAvailable { $0 } == "ab")
    }

    @Test("holds a non-copyable value")
    func nonCopyable() {
        struct Token: ~Copyable {
            var uses = 0
        }
        let token = LockedValue(Token())
        token.withLock { $0.uses += 1 }
        #expect(token.withLock { $0.uses } == 1)
    }

    @Test("the value sits after the whole pthread_mutex_t, aligned for its type, in the same block")
    func blockLayout() {
        func check<Value>(_ value: Value) {
            let locked = LockedValue(value)
            let mutex = UInt(bitPattern: locked._cell.pointer)
            let stored = UInt(bitPattern: locked._value)
            #expect(mutex % UInt(MemoryLayout<pthread_mutex_t>.alignment) == 0, "\(Value.self)")
            #expect(stored % UInt(MemoryLayout<Value>.alignment) == 0, "\(Value.self)")
            #expect(stored >= mutex + UInt(MemoryLayout<pthread_mutex_t>.size), "\(Value.self) overlaps the mutex")
            #expect(stored - mutex < UInt(MemoryLayout<pthread_mutex_t>.size + MemoryLayout<Value>.alignment))
        }
        check(UInt8(1))
        check(Int64(2))
        check(SIMD16<UInt8>(repeating: 3))
        check(SIMD8<Float>(repeating: 4))
        check(())
        check("a string")
        let empty = LockedValue(())
        empty.withLock { _ in }
    }
}
