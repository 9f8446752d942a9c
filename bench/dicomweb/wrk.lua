-- wrk script for bench/dicomweb/run.sh.
--   WRK_PATHS   file with one request path per line, relative to the URL's path (cycled
--               through; default: the URL itself)
--   WRK_AUTH    value of the Authorization header (optional)
--   WRK_ACCEPT  value of the Accept header (optional)
-- done() prints one line: RESULT requests= bytes= secs= errors= status_errors= (HTTP >= 400) p50_ms= p99_ms=
local paths = {}
local n = 0
local prefix = ""

function init(args)
  local f = os.getenv("WRK_PATHS")
  if f and f ~= "" then
    for line in io.lines(f) do
      if line ~= "" then paths[#paths + 1] = line end
    end
  end
  local auth = os.getenv("WRK_AUTH")
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
  local accept = os.getenv("WRK_ACCEPT")
  if accept and accept ~= "" then wrk.headers["Accept"] = accept end
  prefix = (wrk.path or ""):gsub("/+$", "")
  -- each thread starts at a different place in the list
  n = math.random(0, math.max(#paths - 1, 0))
end

function request()
  if #paths == 0 then return wrk.format(nil) end
  n = n % #paths + 1
  return wrk.format(nil, prefix .. paths[n])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d bytes=%d secs=%.3f errors=%d status_errors=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.bytes, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
