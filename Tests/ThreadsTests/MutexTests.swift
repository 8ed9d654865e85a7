#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@testable import StrataThreads
import Testing

@Suite("Mutex", .timeLimit(.minutes(2)))
struct MutexTests {
    @Test("mutual exclusion under contention: no lost updates, never two threads inside")
    func contention() throws {
        let threads = 8
        let iterations = 50_000
        let mutex = Mutex()
        let counter = Unprotected(0)
        let inside = Unprotected(false)
        let overlaps = Unprotected(0)
        try runOnThreads(threads, name: "mutex") { _ in
            for _ in 0..<iterations {
                mutex.lock()
                if inside.value { overlaps.value += 1 }
                inside.value = true
                counter.value += 1
                inside.value = false
                mutex.unlock()
            }
        }
        #expect(counter.value == threads * iterations)
        #expect(overlaps.value == 0)
    }

    @Test("withLock under contention keeps a two-field invariant")
    func withLockContention() throws {
        let mutex = Mutex()
        let pair = Unprotected((up: 0, down: 0))
        let broken = Unprotected(0)
        try runOnThreads(6, name: "withlock") { index in
            for step in 0..<20_000 {
                mutex.withLock {
                    if pair.value.up + pair.value.down != 0 { broken.value += 1 }
                    let amount = (index + step) % 7 + 1
                    pair.value.up += amount
                    pair.value.down -= amount
                }
            }
        }
        #expect(broken.value == 0)
        #expect(pair.value.up + pair.value.down == 0)
        #expect(pair.value.up > 0)
    }

    @Test("tryLock fails while another thread holds the mutex and succeeds after")
    func tryLock() throws {
        let mutex = Mutex()
        let held = Gate()
        let release = Gate()
        let holder = try Thread.spawn(name: "holder") {
            mutex.lock()
            held.open()
            #expect(release.wait())
            mutex.unlock()
        }
        #expect(held.wait())
        #expect(mutex.tryLock() == false)
        release.open()
        try holder.join()
        #expect(mutex.tryLock() == true)
        mutex.unlock()
    }

    @Test("withLock returns the body's value and releases the lock when the body throws")
    func withLockResultAndError() {
        let mutex = Mutex()
        #expect(mutex.withLock { 42 } == 42)
        #expect(throws: ExpectedError(tag: 7)) {
            try mutex.withLock { () throws(ExpectedError) -> Int in throw ExpectedError(tag: 7) }
        }
        #expect(mutex.tryLock(), "the lock stayed held after the body threw")
        mutex.unlock()
    }

    @Test("the pthread mutex lives in its own allocation, aligned as the imported type requires")
    func heapCell() {
        let first = Mutex()
        let second = Mutex()
        let a = UInt(bitPattern: first._cell.pointer)
        let b = UInt(bitPattern: second._cell.pointer)
        #expect(a % UInt(MemoryLayout<pthread_mutex_t>.alignment) == 0)
        #expect(b % UInt(MemoryLayout<pthread_mutex_t>.alignment) == 0)
        #expect(a != b)
        // The class stores one pointer, never the pthread_mutex_t itself.
        #expect(MemoryLayout<_MutexCell>.size == MemoryLayout<UnsafeRawPointer>.size)
        #expect(MemoryLayout<pthread_mutex_t>.size > MemoryLayout<UnsafeRawPointer>.size)
    }

    #if DEBUG
    @Test("debug builds use an error-checking mutex: relock and foreign unlock are reported")
    func errorChecking() throws {
        let mutex = Mutex()
        mutex.lock()
        // Through the C API, so that the error comes back instead of stopping the process.
        #expect(pthread_mutex_lock(mutex._cell.pointer) == EDEADLK)
        let foreignUnlock = Unprotected<CInt>(0)
        let other = try Thread.spawn(name: "foreign") {
            foreignUnlock.value = pthread_mutex_unlock(mutex._cell.pointer)
        }
        try other.join()
        #expect(foreignUnlock.value == EPERM)
        mutex.unlock()
    }
    #endif
}
