import StrataThreads
import Synchronization
import Testing

/// Every wait in these tests is bounded by this, so a broken primitive fails a test instead of
/// hanging the run.
let testDeadline: Duration = .seconds(30)

/// A one-shot latch built from the module's own Mutex and ConditionVariable, with timed waits.
final class Gate: @unchecked Sendable {
    // @unchecked Sendable: `isOpen` is only touched with `mutex` held.
    private let mutex = Mutex()
    private let changed = ConditionVariable()
    private var isOpen = false

    func open() {
        mutex.withLock { isOpen = true }
        changed.broadcast()
    }

    /// Waits until the gate opens; false if `timeout` passed first.
    @discardableResult
    func wait(timeout: Duration = testDeadline) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        mutex.lock()
        defer { mutex.unlock() }
        while !isOpen {
            let left = clock.now.duration(to: deadline)
            if left <= .zero { return false }
            changed.wait(on: mutex, timeout: left)
        }
        return true
    }
}

/// Runs `body(index)` on `count` new threads at once and joins them all.
///
/// The threads wait at a start gate so that they really contend; the handles are `~Copyable`,
/// so they live on the recursion's stack frames rather than in an array.
func runOnThreads(
    _ count: Int, name: String, _ body: @escaping @Sendable (Int) -> Void
) throws {
    let start = Gate()
    func spawn(from index: Int) throws {
        guard index < count else {
            start.open()
            return
        }
        let thread = try Thread.spawn(name: "\(name)-\(index)") {
            #expect(start.wait(), "start gate never opened")
            body(index)
        }
        try spawn(from: index + 1)
        try thread.join()
    }
    try spawn(from: 0)
}

/// Polls `condition` every millisecond until it holds; false if `timeout` passes first.
func eventually(timeout: Duration = testDeadline, _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

/// A non-atomic box that tests share between threads under their own locking.
final class Unprotected<Value>: @unchecked Sendable {
    // @unchecked Sendable: each test guards `value` with the primitive under test; a broken
    // primitive shows up as a wrong final value (and as a ThreadSanitizer report).
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// An error a test's closure throws and expects back.
struct ExpectedError: Error, Equatable {
    let tag: Int
}

/// A shared atomic counter that closures can capture (a local `Atomic` is not copyable).
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)

    func increment() {
        storage.add(1, ordering: .relaxed)
    }

    var value: Int { storage.load(ordering: .relaxed) }
}
