-- wrk-paced.lua: paced keep-alive requests for the TLS latency scenario of bench-tls.sh
-- (docs/benchmarks.md "TLS"). Every connection waits DELAY_MS milliseconds (wrk's delay()
-- hook; default 10) before each request, so 64 connections offer at most 64 / (DELAY_MS
-- + latency) requests per ms: well below what the servers can serve, and the latency is
-- the server's response time, not the queue of a saturated server.
-- Usage: wrk -t1 -c64 -s wrk-paced.lua URL -- DELAY_MS
-- The RESULT line is wrk-report.lua's (Benchmarks/scripts): requests, seconds, rate,
-- latency p50/p99/max (µs), bytes per response, wrk's error counts.
local delay_ms = 10

function init(args)
  if args[1] then delay_ms = tonumber(args[1]) end
end

function delay()
  return delay_ms
end

-- Percentiles from wrk's latency histogram (as wrk-report.lua: latency(i) is the i-th
-- distinct recorded value in µs, ascending, and its count).
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
