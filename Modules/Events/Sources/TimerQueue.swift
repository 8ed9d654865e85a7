/// A point on the monotonic clock the event loop's timers use (`CLOCK_MONOTONIC`), in nanoseconds.
///
/// Not `ContinuousClock.Instant`: io_uring and epoll timeouts are relative to
/// `CLOCK_MONOTONIC`, and the loop compares deadlines once per iteration, so a plain
/// integer is both exact and cheap.
public struct MonotonicInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an unspecified start (boot, on Linux).
    public var nanoseconds: UInt64

    /// Creates an instant from nanoseconds on `CLOCK_MONOTONIC`.
    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current time. The corresponding C function is `clock_gettime(CLOCK_MONOTONIC)`.
    public static var now: MonotonicInstant { MonotonicInstant(nanoseconds: sysMonotonicNanoseconds()) }

    /// This instant moved by `duration` (saturating at the ends of the range).
    @inlinable public func advanced(by duration: Duration) -> MonotonicInstant {
        let ns = duration.nanosecondsSaturating
        if ns >= 0 {
            let (sum, overflow) = nanoseconds.addingReportingOverflow(UInt64(ns))
            return MonotonicInstant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = UInt64(ns.magnitude)
        return MonotonicInstant(nanoseconds: nanoseconds > magnitude ? nanoseconds - magnitude : 0)
    }

    /// The duration from this instant to `other` (negative when `other` is earlier).
    @inlinable public func duration(to other: MonotonicInstant) -> Duration {
        other.nanoseconds >= nanoseconds
            ? .nanoseconds(Int64(clamping: other.nanoseconds - nanoseconds))
            : .nanoseconds(-Int64(clamping: nanoseconds - other.nanoseconds))
    }

    @inlinable public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// `1234.567890123s`.
    public var description: String {
        let frac = String(nanoseconds % 1_000_000_000)
        return "\(nanoseconds / 1_000_000_000).\(String(repeating: "0", count: 9 - frac.count))\(frac)s"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64`'s range.
    @inlinable var nanosecondsSaturating: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflow2) = ns.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return total
    }
}

/// Identifies a scheduled timer, for cancellation. Stale identifiers are harmless: the
/// generation makes a cancelled or fired timer's slot unmatchable after reuse.
public struct TimerID: Hashable, Sendable {
    @usableFromInline let index: UInt32
    @usableFromInline let generation: UInt32
}

/// The event loop's timers: an indexed binary min-heap over a slab of timer slots.
///
/// Scheduling and cancelling are O(log n); the next deadline is O(1); firing pops in
/// deadline order, and timers with equal deadlines fire in the order they were scheduled.
/// Nothing allocates once the slab and heap have grown to the peak number of live timers,
/// so 100,000 timers cost two arrays and no per-timer objects.
///
/// - Warning: Not thread-safe: the loop owns it and uses it on its own thread.
public struct TimerQueue: Sendable {
    @usableFromInline struct Slot: Sendable {
        var deadline: UInt64
        var sequence: UInt64
        var token: UInt64
        /// Position in `heap`, or -1 when the slot is free.
        var heapIndex: Int32
        var generation: UInt32
    }

    @usableFromInline var slots: [Slot] = []
    @usableFromInline var heap: [UInt32] = []
    @usableFromInline var free: [UInt32] = []
    @usableFromInline var nextSequence: UInt64 = 0

    /// Creates an empty queue, reserving room for `capacity` timers.
    public init(capacity: Int = 0) {
        slots.reserveCapacity(capacity)
        heap.reserveCapacity(capacity)
    }

    /// The number of scheduled timers.
    public var count: Int { heap.count }

    /// Whether no timer is scheduled.
    public var isEmpty: Bool { heap.isEmpty }

    /// The earliest deadline, if any. - Complexity: O(1)
    public var nextDeadline: MonotonicInstant? {
        heap.first.map { MonotonicInstant(nanoseconds: slots[Int($0)].deadline) }
    }

    /// Schedules a timer that fires at `deadline`, carrying `token`. - Complexity: O(log n)
    public mutating func schedule(at deadline: MonotonicInstant, token: UInt64) -> TimerID {
        let index: UInt32
        if let reused = free.popLast() {
            index = reused
        } else {
            precondition(slots.count < Int(UInt32.max), "TimerQueue: more than 4 billion live timers")
            index = UInt32(slots.count)
            slots.append(Slot(deadline: 0, sequence: 0, token: 0, heapIndex: -1, generation: 0))
        }
        let seq = nextSequence
        nextSequence &+= 1
        slots[Int(index)].deadline = deadline.nanoseconds
        slots[Int(index)].sequence = seq
        slots[Int(index)].token = token
        heap.append(index)
        slots[Int(index)].heapIndex = Int32(heap.count - 1)
        siftUp(heap.count - 1)
        return TimerID(index: index, generation: slots[Int(index)].generation)
    }

    /// Cancels a timer. Returns false when it already fired or was cancelled. - Complexity: O(log n)
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        guard Int(id.index) < slots.count else { return false }
        let slot = slots[Int(id.index)]
        guard slot.generation == id.generation, slot.heapIndex >= 0 else { return false }
        removeAt(Int(slot.heapIndex))
        return true
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    /// - Complexity: O(log n)
    public mutating func popExpired(now: MonotonicInstant) -> (id: TimerID, token: UInt64)? {
        guard let top = heap.first, slots[Int(top)].deadline <= now.nanoseconds else { return nil }
        let id = TimerID(index: top, generation: slots[Int(top)].generation)
        let token = slots[Int(top)].token
        removeAt(0)
        return (id, token)
    }

    // MARK: heap internals

    @inline(__always) func less(_ a: UInt32, _ b: UInt32) -> Bool {
        let sa = slots[Int(a)], sb = slots[Int(b)]
        return sa.deadline != sb.deadline ? sa.deadline < sb.deadline : sa.sequence < sb.sequence
    }

    mutating func removeAt(_ position: Int) {
        let removed = heap[position]
        let last = heap.removeLast()
        if position < heap.count {
            heap[position] = last
            slots[Int(last)].heapIndex = Int32(position)
            siftDown(position)
            siftUp(Int(slots[Int(last)].heapIndex))
        }
        slots[Int(removed)].heapIndex = -1
        slots[Int(removed)].generation &+= 1
        free.append(removed)
    }

    mutating func siftUp(_ start: Int) {
        var i = start
        let item = heap[i]
        while i > 0 {
            let parent = (i - 1) / 2
            let p = heap[parent]
            guard less(item, p) else { break }
            heap[i] = p
            slots[Int(p)].heapIndex = Int32(i)
            i = parent
        }
        heap[i] = item
        slots[Int(item)].heapIndex = Int32(i)
    }

    mutating func siftDown(_ start: Int) {
        var i = start
        let item = heap[i]
        let n = heap.count
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && less(heap[child + 1], heap[child]) { child += 1 }
            guard less(heap[child], item) else { break }
            heap[i] = heap[child]
            slots[Int(heap[i])].heapIndex = Int32(i)
            i = child
        }
        heap[i] = item
        slots[Int(item)].heapIndex = Int32(i)
    }
}
