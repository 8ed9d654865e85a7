import Metrics
import StrataThreads
import Synchronization

/// The server's counters, exported through swift-metrics (whatever backend the process
/// bootstrapped: `PrometheusMetrics` in strata-serve) and readable directly.
///
/// Names: `http_requests_total{status_class}`, `http_connections_active`,
/// `http_connections_total`, `http_bytes_received_total`, `http_bytes_sent_total`,
/// `http_limit_hits_total{limit}`, `http_timeouts_total{kind}`,
/// `http_parse_errors_total{kind}`, `http_transport_setup_failures_total`,
/// `http_request_duration_seconds` (timer).
public final class HTTPServerMetrics: Sendable {
    private let requestsByClass: [Counter]
    private let connectionsTotal = Counter(label: "http_connections_total")
    private let connectionsActive = Gauge(label: "http_connections_active")
    private let bytesIn = Counter(label: "http_bytes_received_total")
    private let bytesOut = Counter(label: "http_bytes_sent_total")
    private let duration = Metrics.Timer(label: "http_request_duration_seconds")
    private let active = Atomic<Int>(0)
    private let labelled = LockedValue<[String: Counter]>([:])
    private let requests = Atomic<Int>(0)
    private let setupFailures = Counter(label: "http_transport_setup_failures_total")
    private let setupFailureCount = Atomic<Int>(0)

    init() {
        requestsByClass = (1...5).map { Counter(label: "http_requests_total", dimensions: [("status_class", "\($0)xx")]) }
    }

    /// Requests answered so far.
    public var requestCount: Int { requests.load(ordering: .relaxed) }

    /// Connections closed because their transport factory threw (or timed out).
    public var transportSetupFailures: Int { setupFailureCount.load(ordering: .relaxed) }

    func transportSetupFailed() {
        setupFailureCount.add(1, ordering: .relaxed)
        setupFailures.increment()
    }

    func request(status: Int, nanoseconds: UInt64) {
        requests.add(1, ordering: .relaxed)
        let index = min(max(status / 100, 1), 5) - 1
        requestsByClass[index].increment()
        duration.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func connectionOpened() {
        connectionsTotal.increment()
        connectionsActive.record(active.add(1, ordering: .relaxed).newValue)
    }

    func connectionClosed() {
        connectionsActive.record(active.subtract(1, ordering: .relaxed).newValue)
    }

    func received(_ n: Int) { if n > 0 { bytesIn.increment(by: n) } }
    func sent(_ n: Int) { if n > 0 { bytesOut.increment(by: n) } }

    func limitHit(_ limit: String) { counter("http_limit_hits_total", "limit", limit).increment() }
    func timeout(_ kind: String) { counter("http_timeouts_total", "kind", kind).increment() }
    func parseError(_ kind: String) { counter("http_parse_errors_total", "kind", kind).increment() }

    private func counter(_ label: String, _ dimension: String, _ value: String) -> Counter {
        let key = label + "|" + value
        return labelled.withLock { cache in
            if let c = cache[key] { return c }
            let c = Counter(label: label, dimensions: [(dimension, value)])
            cache[key] = c
            return c
        }
    }
}
