import StrataThreads
import Testing

/// Modules/Threads/README.md's smallest example, verbatim apart from `print`: if it stops
/// compiling or its output changes, the README is wrong.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("the smallest example compiles and prints 1 42")
    func smallestExample() async throws {
        let hits = LockedValue(0)
        let worker = try Thread.spawn(name: "strata-example") {
            hits.withLock { $0 += 1 }
        }
        try worker.join()

        let pool = try ThreadPool(workers: 2, queueCapacity: 64, whenFull: .wait, name: "blocking")
        let answer = try await pool.run { 6 * 7 }       // runs on a pool thread
        await pool.shutdown()
        #expect(hits.withLock { $0 } == 1)
        #expect(answer == 42)
    }
}
