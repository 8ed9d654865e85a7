import StrataEvents

/// The deadline of the current task's loop operations, set by ``withDeadline(_:_:)``.
enum Deadline {
    @TaskLocal static var current: MonotonicInstant?
}

/// Runs `body` with a deadline on every Sched operation it awaits (reads, writes, accepts,
/// connects, sleeps): an operation still pending at `deadline` is cancelled and throws
/// ``SchedError`` with code ``SchedError/Code/timedOut``. Nested deadlines keep the earlier.
///
/// ```swift
/// let n = try await withDeadline(.now.advanced(by: .seconds(5))) {
///     try await connection.read(maximumCount: 4096)
/// }
/// ```
public func withDeadline<R>(_ deadline: MonotonicInstant, _ body: () async throws -> R) async throws -> R {
    let effective = Deadline.current.map { min($0, deadline) } ?? deadline
    return try await Deadline.$current.withValue(effective) { try await body() }
}

/// Runs `body` with a deadline `timeout` from now (see ``withDeadline(_:_:)``).
public func withTimeout<R>(_ timeout: Duration, _ body: () async throws -> R) async throws -> R {
    try await withDeadline(MonotonicInstant.now.advanced(by: timeout), body)
}
