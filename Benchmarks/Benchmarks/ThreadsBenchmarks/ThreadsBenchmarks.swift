// StrataThreads micro benchmarks (issue #3): lock/unlock of Strata's pthread Mutex against the
// standard library's Synchronization.Mutex and NIOConcurrencyHelpers.NIOLock, uncontended and
// with two threads, and the ThreadPool submit/complete round trip. Results: docs/benchmarks.md.
//
// Run: cd Benchmarks && swift package --scratch-path ../.build-bench benchmark --target ThreadsBenchmarks

import Benchmark
import NIOConcurrencyHelpers
import StrataThreads
import Synchronization

/// The standard library's mutex in a class, so that two threads can share one instance.
final class StandardMutexBox: Sendable {
    let mutex = Synchronization.Mutex<Int>(0)
}

/// The flag that releases the contending thread once the measurement has started.
final class StartFlag: Sendable {
    let go = Atomic<Bool>(false)
}

/// Runs `benchmark.scaledIterations.count` critical sections on the calling thread and as many
/// on a second thread at the same time; only that part is measured.
///
/// The per-iteration figure is therefore the cost of one critical section on each of two
/// contending cores (2 × iterations sections in total).
func contend(_ benchmark: Benchmark, _ criticalSection: @escaping @Sendable () -> Void) throws {
    let iterations = benchmark.scaledIterations.count
    let start = StartFlag()
    // `spawn` returns once the thread runs, so the spin below lasts only until `go` is set
    // two statements later.
    let helper = try StrataThreads.Thread.spawn(name: "bench-contender") {
        while !start.go.load(ordering: .acquiring) {}
        for _ in 0..<iterations { criticalSection() }
    }
    benchmark.startMeasurement()
    start.go.store(true, ordering: .releasing)
    for _ in 0..<iterations { criticalSection() }
    try helper.join()
    benchmark.stopMeasurement()
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 20
    )

    // MARK: Uncontended: one thread, withLock around an integer increment.

    Benchmark("Uncontended withLock: Strata LockedValue") { benchmark in
        let value = LockedValue(0)
        for _ in benchmark.scaledIterations {
            value.withLock { $0 &+= 1 }
        }
        blackHole(value.withLock { $0 })
    }

    Benchmark("Uncontended withLock: Synchronization.Mutex") { benchmark in
        let mutex = Synchronization.Mutex<Int>(0)
        for _ in benchmark.scaledIterations {
            mutex.withLock { $0 &+= 1 }
        }
        blackHole(mutex.withLock { $0 })
    }

    Benchmark("Uncontended withLock: NIOLockedValueBox") { benchmark in
        let box = NIOLockedValueBox(0)
        for _ in benchmark.scaledIterations {
            box.withLockedValue { $0 &+= 1 }
        }
        blackHole(box.withLockedValue { $0 })
    }

    // MARK: Uncontended: one thread, plain lock() / unlock().

    Benchmark("Uncontended lock/unlock: Strata Mutex") { benchmark in
        let mutex = StrataThreads.Mutex()
        for _ in benchmark.scaledIterations {
            mutex.lock()
            mutex.unlock()
        }
    }

    Benchmark("Uncontended lock/unlock: NIOLock") { benchmark in
        let lock = NIOLock()
        for _ in benchmark.scaledIterations {
            lock.lock()
            lock.unlock()
        }
    }

    // MARK: Contended: two threads on one lock, withLock around an integer increment.

    // A million sections per thread and sample: long enough that scheduling noise on a shared
    // 2-core machine averages out within each sample.
    let contended = Benchmark.Configuration(scalingFactor: .mega, maxDuration: .seconds(5), maxIterations: 10)

    Benchmark(
        "Contended (2 threads) withLock: Strata LockedValue",
        configuration: contended
    ) { benchmark in
        let value = LockedValue(0)
        try contend(benchmark) { value.withLock { $0 &+= 1 } }
        blackHole(value.withLock { $0 })
    }

    Benchmark(
        "Contended (2 threads) withLock: Synchronization.Mutex",
        configuration: contended
    ) { benchmark in
        let box = StandardMutexBox()
        try contend(benchmark) { box.mutex.withLock { $0 &+= 1 } }
        blackHole(box.mutex.withLock { $0 })
    }

    Benchmark(
        "Contended (2 threads) withLock: NIOLockedValueBox",
        configuration: contended
    ) { benchmark in
        let box = NIOLockedValueBox(0)
        try contend(benchmark) { box.withLockedValue { $0 &+= 1 } }
        blackHole(box.withLockedValue { $0 })
    }

    Benchmark("Contended (2 threads) lock/unlock: Strata Mutex", configuration: contended) { benchmark in
        let mutex = StrataThreads.Mutex()
        try contend(benchmark) {
            mutex.lock()
            mutex.unlock()
        }
    }

    Benchmark("Contended (2 threads) lock/unlock: NIOLock", configuration: contended) { benchmark in
        let lock = NIOLock()
        try contend(benchmark) {
            lock.lock()
            lock.unlock()
        }
    }

    // MARK: ThreadPool: submit from a task, run on a worker, resume the task.

    Benchmark(
        "ThreadPool run round trip (1 worker)",
        configuration: .init(scalingFactor: .kilo)
    ) { benchmark in
        let pool = try ThreadPool(workers: 1, queueCapacity: 64, whenFull: .wait, name: "bench-pool")
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try await pool.run { index })
        }
        benchmark.stopMeasurement()
        await pool.shutdown()
    }

    Benchmark(
        "ThreadPool run, 64 in flight (2 workers)",
        configuration: .init(scalingFactor: .kilo)
    ) { benchmark in
        let pool = try ThreadPool(workers: 2, queueCapacity: 64, whenFull: .wait, name: "bench-pool")
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Int.self) { group in
            let inFlight = 64
            var submitted = 0
            let total = benchmark.scaledIterations.count
            while submitted < min(inFlight, total) {
                let index = submitted
                group.addTask { try await pool.run { index } }
                submitted += 1
            }
            while let result = try await group.next() {
                blackHole(result)
                if submitted < total {
                    let index = submitted
                    group.addTask { try await pool.run { index } }
                    submitted += 1
                }
            }
        }
        benchmark.stopMeasurement()
        await pool.shutdown()
    }
}
