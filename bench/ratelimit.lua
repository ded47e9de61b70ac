-- bench/ratelimit.lua: a job of 1,500 requests against the fake API enforcing Cloudflare's
-- limit of 1,200 requests per 300 s, time-scaled by 1/SCALE (default 50: 1,200 per 6 s).
-- Reports the 429s seen (target: none) and the wall time against the minimum the limit
-- allows (target: a ratio of at least 1 and at most 1.10). Not a test: timings depend on the
-- machine.
--
-- Each run is its own cfrun process (this script again, with --child), with its own
-- XDG_RUNTIME_DIR (a fresh 0700 directory, removed afterwards), so that no run inherits the
-- shared rate budget of the one before (cfrun keeps it in $XDG_RUNTIME_DIR/cfrun/), and the
-- fake is reset before each run (POST /__fake/reset empties its windows). With both clean,
-- a run need not wait out the previous one's window; the script checks that they are.
--
-- Usage: build/cfrun bench/ratelimit.lua [SCALE] [RUNS]
local socket = require "socket"
local cjson = require "cjson"

local zone = "023e105f4ecef8ad9ca31a8372d0c353"
local TOTAL, LIMIT = 1500, 1200

-- The child: `cfrun bench/ratelimit.lua --child ORIGIN PER`; one run, one JSON line on stdout.
if arg[1] == "--child" then
  local origin, per = arg[2], tonumber(arg[3])
  local c = cloudflare.new { base_url = origin .. "/client/v4", api_token = "bench-token",
    rate_limit = { requests = LIMIT, per = per } }
  local t0 = socket.gettime()
  local burst_end
  for i = 1, TOTAL do
    assert(c.cache.origin_cloud_regions.list { zone_id = zone })
    if i == LIMIT then burst_end = socket.gettime() end
  end
  local t1 = socket.gettime()
  c:close()
  io.write(cjson.encode { t0 = t0, burst_end = burst_end, t1 = t1 }, "\n")
  os.exit(0)
end

local scale, runs = tonumber(arg[1]) or 50, tonumber(arg[2]) or 3
local per = 300 / scale
local cfrun = "cfrun" -- the binary running this script: arg's lowest index
for i = -1, -math.huge, -1 do
  if arg[i] == nil then break end
  cfrun = arg[i]
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd) -- the first line of a command's output
  local p = assert(io.popen(cmd))
  local line = p:read("l")
  p:close()
  return line
end

-- the fake, started and controlled as bench/bench.lua's are (bench/harness.lua); the zone is
-- never seeded (--any-zone)
package.path = "bench/?.lua;" .. package.path
local fake = require("harness").start_fake(cfrun, "bench-token", 0,
  { "--any-zone", "--rate-limit", string.format("%d/%g", LIMIT, per) })
local origin = fake.origin
local function control(method, path) return fake:control(method, path) end

local ratios = {}
for run = 1, runs do
  control("POST", "/__fake/reset")
  local before = control("GET", "/__fake/stats")
  assert(before.requests == 0, "the fake's reset left requests in its statistics")
  local dir = assert(sh("mktemp -d ${TMPDIR:-/tmp}/cfrun-bench-rl.XXXXXX"), "mktemp failed")
  assert(sh("stat -c %a " .. q(dir)) == "700", "the state directory is not 0700")
  assert(sh("ls -A " .. q(dir)) == nil, "the state directory is not empty")
  -- the child's budget must be the machine-local file one, not a Redis named in our environment
  local cmd = string.format("env -u CFRUN_RATE_REDIS -u CFRUN_RATE_KEY XDG_RUNTIME_DIR=%s %s --quiet %s --child %s %g",
    q(dir), q(cfrun), q(arg[0]), q(origin), per)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, how, code = p:close()
  assert(ok, string.format("run %d: the child failed (%s %s): %s", run, tostring(how), tostring(code), out))
  local r = cjson.decode(out)
  local state = sh("ls -A " .. q(dir .. "/cfrun"))
  assert(state and state:find("^rate%-"), "the child kept no rate budget file in its XDG_RUNTIME_DIR")
  os.execute("rm -rf " .. q(dir))
  local wall, burst = r.t1 - r.t0, r.burst_end - r.t0
  local avg = burst / LIMIT
  -- request 1,201 cannot be accepted before the first leaves the window; the last 299 then
  -- go at the unthrottled pace measured in the first 1,200
  local ideal = math.max(per, burst) + (TOTAL - LIMIT) * avg
  local stats = control("GET", "/__fake/stats")
  local n429 = stats.by_status["429"] or 0
  ratios[run] = wall / ideal
  print(string.format("run %d: %d requests, %d x 429, wall %.3f s, minimum %.3f s, ratio %.3f",
    run, stats.requests, n429, wall, ideal, wall / ideal))
end
table.sort(ratios)
print(string.format("median ratio %.3f over %d runs (window %g s, 1,200 requests, a process each)",
  ratios[(#ratios + 1) // 2], #ratios, per))
fake:stop()
