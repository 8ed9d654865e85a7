-- wrk-report.lua: plain wrk requests (one request per round trip, keep-alive), with a
-- machine-readable summary line for bench-http.sh. Usage: wrk -s wrk-report.lua URL
-- The RESULT line: requests, seconds, rate (req/s), latency p50/p99/max (µs), bytes read
-- per response, and wrk's error counts (connect, read, write, status = non-2xx/3xx, timeout).
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rate=%.1f p50_us=%d p99_us=%d max_us=%d mean_us=%.1f bytes_per_resp=%.1f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, s, summary.requests / s, latency:percentile(50), latency:percentile(99), latency.max,
    latency.mean, summary.requests > 0 and summary.bytes / summary.requests or 0,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
