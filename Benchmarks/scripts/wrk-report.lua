-- wrk-report.lua: plain wrk requests (one request per round trip, keep-alive), with a
-- machine-readable summary line for bench-http.sh. Usage: wrk -s wrk-report.lua URL
-- The RESULT line: requests, seconds, rate (req/s), latency p50/p99/max (µs), bytes read
-- per response, and wrk's error counts (connect, read, write, status = non-2xx/3xx, timeout).
-- Percentiles from wrk's latency histogram: latency(i) is the i-th distinct recorded value
-- (µs, ascending) and its count, #latency the number of distinct values. wrk's own
-- latency:percentile() returns 0 when its coordinated-omission correction has added samples
-- that its walk does not reach (seen with pipelining); this walk counts what it can see.
local function percentiles(latency, ps)
  local n, total = #latency, 0
  for i = 1, n do local _, c = latency(i); total = total + c end
  local out, k, seen = {}, 1, 0
  for i = 1, n do
    local v, c = latency(i)
    seen = seen + c
    while k <= #ps and seen >= ps[k] / 100 * total do
      out[k] = v
      k = k + 1
    end
    if k > #ps then break end
  end
  for j = k, #ps do out[j] = latency.max end
  return out[1], out[2]
end

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local p50, p99 = percentiles(latency, {50, 99})
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rate=%.1f p50_us=%d p99_us=%d max_us=%d mean_us=%.1f bytes_per_resp=%.1f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, s, summary.requests / s, p50, p99, latency.max,
    latency.mean, summary.requests > 0 and summary.bytes / summary.requests or 0,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
