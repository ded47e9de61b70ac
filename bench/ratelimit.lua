-- bench/ratelimit.lua: a job of 1,500 requests against the fake API enforcing Cloudflare's
-- limit of 1,200 requests per 300 s, time-scaled by 1/SCALE (default 50: 1,200 per 6 s).
-- Reports the 429s seen (target: none) and the wall time against the minimum the limit
-- allows (target: within 10 %). Not a test: timings depend on the machine.
--
-- Usage: build/cfrun bench/ratelimit.lua [SCALE] [RUNS]
local socket = require "socket"
local cjson = require "cjson"

local scale, runs = tonumber(arg[1]) or 50, tonumber(arg[2]) or 3
local per = 300 / scale
local cfrun = arg[-1] or "cfrun"
local zone = "023e105f4ecef8ad9ca31a8372d0c353"

local proc = assert(io.popen(string.format("exec %s --fake-api --port 0 --quiet --exit-with-parent "
  .. "--token bench-token --any-zone --rate-limit 1200/%g", cfrun, per))) -- zone never seeded
local host, port = proc:read("l"):match("^LISTENING (%S+) (%d+)$")
local origin = "http://" .. host .. ":" .. port

local function control(method, path)
  local http = require "socket.http"
  local chunks = {}
  http.request { url = origin .. path, method = method, sink = require("ltn12").sink.table(chunks) }
  return cjson.decode(table.concat(chunks))
end

local ratios = {}
for run = 1, runs do
  control("POST", "/__fake/reset")
  local c = cloudflare.new { base_url = origin .. "/client/v4", api_token = "bench-token",
    rate_limit = { requests = 1200, per = per } }
  local t0 = socket.gettime()
  local burst_end
  for i = 1, 1500 do
    assert(c.cache.origin_cloud_regions.list { zone_id = zone })
    if i == 1200 then burst_end = socket.gettime() end
  end
  local wall = socket.gettime() - t0
  local avg = (burst_end - t0) / 1200
  -- request 1,201 cannot be accepted before the first leaves the window; the last 299 then
  -- go at the unthrottled pace measured in the first 1,200
  local ideal = math.max(per, burst_end - t0) + 300 * avg
  local stats = control("GET", "/__fake/stats")
  local n429 = stats.by_status["429"] or 0
  ratios[run] = wall / ideal
  print(string.format("run %d: %d requests, %d x 429, wall %.3f s, minimum %.3f s, ratio %.3f",
    run, stats.requests, n429, wall, ideal, wall / ideal))
  c:close()
end
table.sort(ratios)
print(string.format("median ratio %.3f over %d runs (window %g s, 1,200 requests)", ratios[(#ratios + 1) // 2],
  #ratios, per))
control("POST", "/__fake/shutdown")
proc:close()
