-- wrk script: the request mix of a streaming launch, read from MIX_FILE
-- (written by scripts/load/env.sh): 80% authorised masters spread over
-- viewer tokens and tiers, 15% URL-mode media playlists, 5% backend
-- cookie signing. With CONN_DELAY_MS each connection waits that long
-- between requests (a fixed overall rate). done() prints one line of
-- key=value results.
local masters, media, signs = {}, {}, {}

function init(args)
  local file = assert(io.open(os.getenv("MIX_FILE"), "r"))
  for line in file:lines() do
    local kind, method, path, auth, body = line:match("^(%a+)\t(%a+)\t([^\t]+)\t([^\t]*)\t?(.*)$")
    if kind then
      local headers = {}
      if auth ~= "" then headers["Authorization"] = auth end
      if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
      local req = wrk.format(method, path, headers, body)
      if kind == "master" then table.insert(masters, req)
      elseif kind == "media" then table.insert(media, req)
      else table.insert(signs, req) end
    end
  end
  file:close()
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  local r = math.random()
  if r < 0.80 or (#media == 0 and #signs == 0) then
    return masters[math.random(#masters)]
  elseif r < 0.95 and #media > 0 then
    return media[math.random(#media)]
  else
    return signs[math.random(#signs)]
  end
end

local wait = tonumber(os.getenv("CONN_DELAY_MS") or "")
if wait then
  function delay() return wait end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "requests=%d seconds=%.1f rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
