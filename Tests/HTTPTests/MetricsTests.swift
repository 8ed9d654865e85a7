import CoreMetrics
import Testing
@testable import StrataHTTP

@Suite struct MetricsTests {
    @Test func exactOutputForASmallRegistry() {
        let m = PrometheusMetrics(timerBuckets: [0.001, 0.1, 1])
        let get = m.makeCounter(label: "http_requests_total", dimensions: [("method", "GET"), ("status", "200")])
        let post = m.makeCounter(label: "http_requests_total", dimensions: [("method", "POST"), ("status", "201")])
        get.increment(by: 3)
        post.increment(by: 1)
        m.makeCounter(label: "http_requests_total", dimensions: [("method", "GET"), ("status", "200")]).increment(by: 2)
        let open = m.makeMeter(label: "http_open_connections", dimensions: [])
        open.set(Int64(10)); open.increment(by: 2.5); open.decrement(by: 1)
        let last = m.makeRecorder(label: "queue.depth", dimensions: [("loop", "0")], aggregate: false)
        last.record(Int64(7)); last.record(Int64(4))
        let timer = m.makeTimer(label: "http_request_duration_seconds", dimensions: [("route", "/json")])
        timer.recordNanoseconds(500_000)        // 0.0005 s
        timer.recordNanoseconds(50_000_000)     // 0.05 s
        timer.recordNanoseconds(2_000_000_000)  // 2 s
        let bytes = m.makeFloatingPointCounter(label: "bytes_sent", dimensions: [])
        bytes.increment(by: 1.5); bytes.increment(by: 1)

        #expect(m.render() == """
        # TYPE bytes_sent counter
        bytes_sent 2.5
        # TYPE http_open_connections gauge
        http_open_connections 11.5
        # TYPE http_request_duration_seconds histogram
        http_request_duration_seconds_bucket{route="/json",le="0.001"} 1
        http_request_duration_seconds_bucket{route="/json",le="0.1"} 2
        http_request_duration_seconds_bucket{route="/json",le="1"} 2
        http_request_duration_seconds_bucket{route="/json",le="+Inf"} 3
        http_request_duration_seconds_sum{route="/json"} 2.0505
        http_request_duration_seconds_count{route="/json"} 3
        # TYPE http_requests_total counter
        http_requests_total{method="GET",status="200"} 5
        http_requests_total{method="POST",status="201"} 1
        # TYPE queue_depth gauge
        queue_depth{loop="0"} 4

        """)
        var bytesOut: [UInt8] = []
        m.render(into: &bytesOut)
        #expect(String(decoding: bytesOut, as: UTF8.self) == m.render())
    }

    @Test func sanitizingAndEscaping() {
        #expect(PrometheusMetrics.sanitizeName("http.requests-total") == "http_requests_total")
        #expect(PrometheusMetrics.sanitizeName("9lives") == "_9lives")
        #expect(PrometheusMetrics.sanitizeName("a:b") == "a:b")
        #expect(PrometheusMetrics.sanitizeName("a:b", allowColon: false) == "a_b")
        #expect(PrometheusMetrics.sanitizeName("") == "_")
        #expect(PrometheusMetrics.sanitizeName("ünï") == "__n__")   // each non-ASCII UTF-8 byte
        #expect(PrometheusMetrics.escapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd")
        let m = PrometheusMetrics()
        m.makeCounter(label: "c", dimensions: [("path:x", "/a\"b\\\n"), ("1st", "v")]).increment(by: 1)
        #expect(m.render() == "# TYPE c counter\nc{path_x=\"/a\\\"b\\\\\\n\",_1st=\"v\"} 1\n")
    }

    @Test func aggregateRecorderIsAHistogram() {
        let m = PrometheusMetrics(recorderBuckets: [10, 100])
        let r = m.makeRecorder(label: "size", dimensions: [], aggregate: true)
        r.record(Int64(5)); r.record(50.5); r.record(Int64(500))
        #expect(m.render() == """
        # TYPE size histogram
        size_bucket{le="10"} 1
        size_bucket{le="100"} 2
        size_bucket{le="+Inf"} 3
        size_sum 555.5
        size_count 3

        """)
    }

    @Test func valuesFormatting() {
        #expect(PrometheusMetrics.formatValue(3) == "3")
        #expect(PrometheusMetrics.formatValue(-2) == "-2")
        #expect(PrometheusMetrics.formatValue(0.25) == "0.25")
        #expect(PrometheusMetrics.formatValue(.infinity) == "+Inf")
        #expect(PrometheusMetrics.formatValue(-.infinity) == "-Inf")
        #expect(PrometheusMetrics.formatValue(.nan) == "NaN")
        #expect(PrometheusMetrics.formatValue(1e20) == "1e+20")
    }

    @Test func typeClashIsNotExportedAndDestroyRemoves() {
        let m = PrometheusMetrics()
        let c = m.makeCounter(label: "x", dimensions: [])
        let g = m.makeMeter(label: "x", dimensions: [])
        c.increment(by: 1)
        g.set(Int64(99))   // works, but is not exported
        #expect(m.render() == "# TYPE x counter\nx 1\n")
        m.destroyCounter(c)
        #expect(m.render() == "")
        c.reset()
    }

    @Test func resetAndReuse() {
        let m = PrometheusMetrics()
        let c = m.makeCounter(label: "c", dimensions: [])
        c.increment(by: 5)
        c.reset()
        c.increment(by: 1)
        let f = m.makeFloatingPointCounter(label: "f", dimensions: [])
        f.increment(by: 0.5); f.increment(by: -3)   // negative increments are ignored
        #expect(m.render() == "# TYPE c counter\nc 1\n# TYPE f counter\nf 0.5\n")
    }

    @Test func concurrentIncrements() async {
        let m = PrometheusMetrics()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    let c = m.makeCounter(label: "hits", dimensions: [])
                    let h = m.makeTimer(label: "lat", dimensions: [])
                    let g = m.makeMeter(label: "g", dimensions: [])
                    for _ in 0..<1000 {
                        c.increment(by: 1)
                        h.recordNanoseconds(Int64(t))
                        g.increment(by: 1)
                    }
                }
            }
        }
        let text = m.render()
        #expect(text.contains("\nhits 8000\n"))
        #expect(text.contains("\nlat_count 8000\n"))
        #expect(text.contains("\ng 8000\n"))
    }

    @Test func worksThroughTheSwiftMetricsAPI() {
        // Handlers are created through the factory directly: the global
        // MetricsSystem is bootstrapped by applications, never by the library or tests.
        let m = PrometheusMetrics()
        let counter = Counter(label: "api_calls", dimensions: [("k", "v")], factory: m)
        counter.increment()
        counter.increment(by: 2)
        let timer = CoreMetrics.Timer(label: "api_latency", factory: m)
        timer.recordMilliseconds(20)
        let text = m.render()
        #expect(text.contains("api_calls{k=\"v\"} 3\n"))
        #expect(text.contains("api_latency_bucket{le=\"0.025\"} 1\n"))
        #expect(text.contains("api_latency_sum 0.02\n"))
    }
}
