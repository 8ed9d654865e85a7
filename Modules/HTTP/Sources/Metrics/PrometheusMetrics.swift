import CoreMetrics
import StrataThreads
import Synchronization

/// A minimal in-process Prometheus backend for swift-metrics: keeps every
/// metric in memory and renders the text exposition format 0.0.4.
///
/// | swift-metrics | Prometheus type |
/// |---|---|
/// | `Counter`, `FloatingPointCounter` | `counter` |
/// | `Recorder(aggregate: false)`, `Gauge`, `Meter` | `gauge` |
/// | `Recorder(aggregate: true)`, `Timer` (in seconds) | `histogram` (fixed buckets, `_sum`, `_count`) |
///
/// * Names are sanitized to `[a-zA-Z_:][a-zA-Z0-9_:]*` (other characters
///   become `_`; a leading digit gets a `_` prefix); dimension names to
///   `[a-zA-Z_][a-zA-Z0-9_]*`. Label values are escaped (`\\`, `\"`, `\n`).
/// * A label and dimensions seen twice share one series (swift-metrics may
///   create a handler per use). A name registered with a second, different
///   Prometheus type gets a working handler that is not exported.
/// * Counters, gauges and meters are lock-free atomics; histograms take a
///   `Mutex` per series. Registration and rendering take the registry lock.
/// * The library never bootstraps `MetricsSystem`; an application does:
///   `MetricsSystem.bootstrap(metrics)`.
public final class PrometheusMetrics: MetricsFactory, Sendable {
    /// The `Content-Type` of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Prometheus' default histogram buckets (seconds for timers).
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    enum Kind: String, Sendable { case counter, gauge, histogram }

    struct Series: Sendable {
        let labels: String
        let handler: any PrometheusSeries
    }

    struct Family: Sendable {
        let kind: Kind
        var series: [Series]
    }

    private let families = LockedValue<[String: Family]>([:])
    private let timerBuckets: [Double]
    private let recorderBuckets: [Double]

    /// A backend with the given histogram bucket upper bounds (sorted; `+Inf` is implicit).
    public init(timerBuckets: [Double] = PrometheusMetrics.defaultBuckets,
                recorderBuckets: [Double] = PrometheusMetrics.defaultBuckets) {
        self.timerBuckets = timerBuckets.sorted()
        self.recorderBuckets = recorderBuckets.sorted()
    }

    private func register<H: PrometheusSeries>(_ label: String, _ dimensions: [(String, String)], _ kind: Kind,
                                                 make: () -> H) -> H {
        let name = Self.sanitizeName(label)
        let labels = Self.renderLabels(dimensions)
        return families.withLock { families -> H in
            if var family = families[name] {
                guard family.kind == kind else { return make() }   // type clash: not exported
                if let existing = family.series.first(where: { $0.labels == labels }) {
                    if let h = existing.handler as? H { return h }
                    return make()
                }
                let h = make()
                family.series.append(Series(labels: labels, handler: h))
                families[name] = family
                return h
            }
            let h = make()
            families[name] = Family(kind: kind, series: [Series(labels: labels, handler: h)])
            return h
        }
    }

    private func unregister(_ handler: AnyObject) {
        families.withLock { families in
            for (name, var family) in families {
                let before = family.series.count
                family.series.removeAll { $0.handler === handler }
                if family.series.count != before {
                    families[name] = family.series.isEmpty ? nil : family
                    return
                }
            }
        }
    }

    /// A `counter` series.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        register(label, dimensions, .counter) { PrometheusCounter() }
    }

    /// A `counter` series with a floating-point value.
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        register(label, dimensions, .counter) { PrometheusFloatingPointCounter() }
    }

    /// A `gauge` series (set, increment, decrement).
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        register(label, dimensions, .gauge) { PrometheusGauge() }
    }

    /// A `gauge` (aggregate == false: the last value) or a `histogram` (aggregate == true).
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            let buckets = recorderBuckets
            return register(label, dimensions, .histogram) { PrometheusHistogram(buckets: buckets, scale: 1) }
        }
        return register(label, dimensions, .gauge) { PrometheusGauge() }
    }

    /// A `histogram` of durations in seconds.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = timerBuckets
        return register(label, dimensions, .histogram) { PrometheusHistogram(buckets: buckets, scale: 1e-9) }
    }

    /// Stops exporting the counter.
    public func destroyCounter(_ handler: any CounterHandler) { unregister(handler) }
    /// Stops exporting the counter.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { unregister(handler) }
    /// Stops exporting the gauge.
    public func destroyMeter(_ handler: any MeterHandler) { unregister(handler) }
    /// Stops exporting the gauge or histogram.
    public func destroyRecorder(_ handler: any RecorderHandler) { unregister(handler) }
    /// Stops exporting the histogram.
    public func destroyTimer(_ handler: any TimerHandler) { unregister(handler) }

    /// Appends every metric in text exposition format 0.0.4: families
    /// sorted by name, each with its `# TYPE` line, series in registration order.
    public func render(into out: inout [UInt8]) {
        let snapshot = families.withLock { $0 }
        for name in snapshot.keys.sorted() {
            let family = snapshot[name]!
            out.append(contentsOf: "# TYPE \(name) \(family.kind.rawValue)\n".utf8)
            for series in family.series {
                series.handler.render(name: name, labels: series.labels, into: &out)
            }
        }
    }

    /// The text exposition (see ``render(into:)``).
    public func render() -> String {
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Names and labels

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`: other bytes become `_`, a leading digit gets a `_` prefix.
    public static func sanitizeName(_ name: String, allowColon: Bool = true) -> String {
        var out: [UInt8] = []
        for b in name.utf8 {
            let ok = (b | 0x20) &- 0x61 < 26 || b == 0x5F || (allowColon && b == 0x3A) || b &- 0x30 < 10
            out.append(ok ? b : 0x5F)
        }
        if out.isEmpty || out[0] &- 0x30 < 10 { out.insert(0x5F, at: 0) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `\` → `\\`, `"` → `\"`, newline → `\n`.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        for ch in value.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `name="value",…` (without braces) from dimensions, in order.
    static func renderLabels(_ dimensions: [(String, String)]) -> String {
        dimensions.map { "\(sanitizeName($0.0, allowColon: false))=\"\(escapeLabelValue($0.1))\"" }
            .joined(separator: ",")
    }

    /// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
    static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return v.description
    }
}

/// A series that can render its sample lines.
protocol PrometheusSeries: AnyObject, Sendable {
    func render(name: String, labels: String, into out: inout [UInt8])
}

private func sampleLine(_ name: String, _ labels: String, _ value: String, _ out: inout [UInt8]) {
    out.append(contentsOf: name.utf8)
    if !labels.isEmpty {
        out.append(0x7B); out.append(contentsOf: labels.utf8); out.append(0x7D)
    }
    out.append(0x20)
    out.append(contentsOf: value.utf8)
    out.append(0x0A)
}

final class PrometheusCounter: CounterHandler, PrometheusSeries {
    let value = Atomic<Int64>(0)
    func increment(by amount: Int64) { value.wrappingAdd(amount, ordering: .relaxed) }
    func reset() { value.store(0, ordering: .relaxed) }
    func render(name: String, labels: String, into out: inout [UInt8]) {
        sampleLine(name, labels, String(value.load(ordering: .relaxed)), &out)
    }
}

/// A Double in an atomic bit pattern, updated with compare-and-exchange.
final class AtomicDouble: Sendable {
    let bits = Atomic<UInt64>(0)
    var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
    func store(_ v: Double) { bits.store(v.bitPattern, ordering: .relaxed) }
    func add(_ delta: Double) {
        var old = bits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + delta).bitPattern
            let (exchanged, current) = bits.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { return }
            old = current
        }
    }
}

final class PrometheusFloatingPointCounter: FloatingPointCounterHandler, PrometheusSeries {
    let value = AtomicDouble()
    func increment(by amount: Double) { if amount > 0 { value.add(amount) } }
    func reset() { value.store(0) }
    func render(name: String, labels: String, into out: inout [UInt8]) {
        sampleLine(name, labels, PrometheusMetrics.formatValue(value.value), &out)
    }
}

final class PrometheusGauge: MeterHandler, RecorderHandler, PrometheusSeries {
    let value = AtomicDouble()
    func set(_ value: Int64) { self.value.store(Double(value)) }
    func set(_ value: Double) { self.value.store(value) }
    func increment(by amount: Double) { value.add(amount) }
    func decrement(by amount: Double) { value.add(-amount) }
    func record(_ value: Int64) { self.value.store(Double(value)) }
    func record(_ value: Double) { self.value.store(value) }
    func render(name: String, labels: String, into out: inout [UInt8]) {
        sampleLine(name, labels, PrometheusMetrics.formatValue(value.value), &out)
    }
}

final class PrometheusHistogram: RecorderHandler, TimerHandler, PrometheusSeries {
    struct State {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    let bounds: [Double]
    let scale: Double
    let state: LockedValue<State>

    init(buckets: [Double], scale: Double) {
        bounds = buckets
        self.scale = scale
        state = LockedValue(State(counts: Array(repeating: 0, count: buckets.count)))
    }

    func observe(_ v: Double) {
        let i = bounds.firstIndex { v <= $0 } ?? bounds.count
        state.withLock { s in
            if i < s.counts.count { s.counts[i] += 1 }
            s.sum += v
            s.count += 1
        }
    }

    func record(_ value: Int64) { observe(Double(value) * scale) }
    func record(_ value: Double) { observe(value * scale) }
    func recordNanoseconds(_ duration: Int64) { observe(Double(max(0, duration)) * scale) }

    func render(name: String, labels: String, into out: inout [UInt8]) {
        let s = state.withLock { $0 }
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative: UInt64 = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += s.counts[i]
            sampleLine(name + "_bucket", prefix + "le=\"\(PrometheusMetrics.formatValue(bound))\"", String(cumulative), &out)
        }
        sampleLine(name + "_bucket", prefix + "le=\"+Inf\"", String(s.count), &out)
        sampleLine(name + "_sum", labels, PrometheusMetrics.formatValue(s.sum), &out)
        sampleLine(name + "_count", labels, String(s.count), &out)
    }
}
