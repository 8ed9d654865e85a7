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

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rate=%.1f p50_us=%d p99_us=%d max_us=%d mean_us=%.1f bytes_per_resp=%.1f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, s, summary.requests / s, latency:percentile(50), latency:percentile(99), latency.max,
    latency.mean, summary.requests > 0 and summary.bytes / summary.requests or 0,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
