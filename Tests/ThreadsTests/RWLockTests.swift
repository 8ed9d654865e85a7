import StrataThreads
import Synchronization
import Testing

@Suite("RWLock", .timeLimit(.minutes(2)))
struct RWLockTests {
    @Test("readers share the lock; a writer excludes readers and writers")
    func sharing() throws {
        let lock = RWLock()
        let held = Gate()
        let release = Gate()
        let reader = try Thread.spawn(name: "reader") {
            lock.readLock()
            held.open()
            #expect(release.wait())
            lock.unlock()
        }
        #expect(held.wait())
        #expect(lock.tryReadLock(), "a second reader must get in")
        lock.unlock()
        #expect(lock.tryWriteLock() == false, "a writer must not get in while a reader holds the lock")
        release.open()
        try reader.join()

        #expect(lock.tryWriteLock())
        let readerGotIn = Unprotected(true)
        let writerGotIn = Unprotected(true)
        let probe = try Thread.spawn(name: "probe") {
            readerGotIn.value = lock.tryReadLock()
            if readerGotIn.value { lock.unlock() }
            writerGotIn.value = lock.tryWriteLock()
            if writerGotIn.value { lock.unlock() }
        }
        try probe.join()
        lock.unlock()
        #expect(readerGotIn.value == false)
        #expect(writerGotIn.value == false)
    }

    @Test("under contention writers are alone and readers always see a consistent pair")
    func contention() throws {
        let lock = RWLock()
        let pair = Unprotected((a: 0, b: 0))
        let readersInside = Atomic<Int>(0)
        let writersInside = Atomic<Int>(0)
        let violations = Atomic<Int>(0)
        let writes = Unprotected(0)
        let writers = 2
        let perWriter = 5_000
        try runOnThreads(6, name: "rw") { index in
            if index < writers {
                for step in 0..<perWriter {
                    lock.withWriteLock {
                        let others = writersInside.add(1, ordering: .sequentiallyConsistent).newValue - 1
                        if others != 0 || readersInside.load(ordering: .sequentiallyConsistent) != 0 {
                            violations.add(1, ordering: .relaxed)
                        }
                        pair.value.a += step + 1
                        pair.value.b -= step + 1
                        writes.value += 1
                        writersInside.subtract(1, ordering: .sequentiallyConsistent)
                    }
                }
            } else {
                for _ in 0..<5_000 {
                    lock.withReadLock {
                        readersInside.add(1, ordering: .sequentiallyConsistent)
                        if writersInside.load(ordering: .sequentiallyConsistent) != 0 || pair.value.a + pair.value.b != 0 {
                            violations.add(1, ordering: .relaxed)
                        }
                        readersInside.subtract(1, ordering: .sequentiallyConsistent)
                    }
                }
            }
        }
        #expect(violations.load(ordering: .relaxed) == 0)
        #expect(writes.value == writers * perWriter)
        #expect(pair.value.a + pair.value.b == 0)
    }

    @Test("withReadLock and withWriteLock return values and release on throw")
    func scoped() {
        let lock = RWLock()
        #expect(lock.withReadLock { 1 } == 1)
        #expect(lock.withWriteLock { 2 } == 2)
        #expect(throws: ExpectedError(tag: 3)) {
            try lock.withWriteLock { () throws(ExpectedError) in throw ExpectedError(tag: 3) }
        }
        #expect(lock.tryWriteLock(), "the write lock stayed held after the body threw")
        lock.unlock()
    }
}
