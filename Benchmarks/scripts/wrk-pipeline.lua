-- wrk-pipeline.lua: HTTP/1.1 pipelining for bench-http.sh: every write carries DEPTH
-- requests for / (default 16) and wrk waits for all DEPTH responses before the next write,
-- as in the TechEmpower plaintext test. Usage: wrk -s wrk-pipeline.lua URL -- DEPTH
-- wrk counts every response as a request; its latency samples are per batch of DEPTH.
-- The RESULT line is the one of wrk-report.lua.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, "/")
  end
  req = table.concat(r)
end

request = function()
  return req
end

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
