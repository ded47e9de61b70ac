-- bench/shared_budget.lua: several cfrun processes of one credential spending one shared rate
-- budget against the fake API enforcing Cloudflare's limit of 1,200 requests per 300 s,
-- time-scaled by 1/SCALE (default 50: 1,200 per 6 s). The processes together make TOTAL
-- (3,000: 2.5 windows' worth) list requests, split evenly, all started at the same moment.
--
-- Rows: 1, 2, 4 and 8 processes on this machine, sharing one XDG_RUNTIME_DIR (cfrun's default
-- sharing: a state file under $XDG_RUNTIME_DIR/cfrun/); and "3 machines": 3 processes with an
-- XDG_RUNTIME_DIR each (nothing shared locally) and CFRUN_RATE_REDIS naming one Redis, a
-- redis-server this script starts on a free loopback port and stops at the end (the row is
-- skipped when there is no redis-server).
--
-- Per row (medians of RUNS runs, rows taking turns run by run):
--   429s      responses 429 counted by the fake (target: 0 in every run);
--   elapsed   from the common start to the end of the last process;
--   ideal     the least time the limit allows for TOTAL requests at the pace the processes
--             reach while the limit does not bind: with k = ceil(TOTAL / 1200) - 1 windows to
--             wait out and pace = (time the 1,200th response came) / 1,200, measured in the
--             same run's first window, ideal = max(TOTAL * pace, k * per + (TOTAL - 1200 k) *
--             pace) (request 1200 k + j may start once request j left k windows ago);
--   ratio     ideal / elapsed: 1 is as fast as the limit allows (target: at least 0.95).
--   accepted/s  200 responses / elapsed, and that ÷ the limit's average rate (1200 / per), for
--             reference: a sliding window lets the first 1,200 go at once, so a perfect run
--             is above 1 here.
-- Every run starts from a reset fake (POST /__fake/reset: windows, blocks and statistics
-- cleared), fresh 0700 state directories and an empty Redis, so no run waits for another's
-- window. Not a test: timings depend on the machine.
--
-- Usage: build/cfrun bench/shared_budget.lua [SCALE] [RUNS]
local socket = require "socket"
local cjson = require "cjson"

local zone = "023e105f4ecef8ad9ca31a8372d0c353"
local LIMIT, TOTAL = 1200, 3000

-- The child: `cfrun bench/shared_budget.lua --child ORIGIN PER COUNT START_AT OUT`: makes COUNT
-- requests from START_AT (socket.gettime() time) and writes its times as JSON to OUT.
if arg[1] == "--child" then
  local origin, per, count, start_at, out = arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), arg[6]
  local c = cloudflare.new { base_url = origin .. "/client/v4", api_token = "bench-token",
    rate_limit = { requests = LIMIT, per = per } }
  local wait = start_at - socket.gettime()
  if wait > 0 then socket.sleep(wait) end
  local started = socket.gettime()
  local times, errors, first_error = {}, 0, nil
  for i = 1, count do
    local ok, err = c.cache.origin_cloud_regions.list { zone_id = zone }
    if not ok then
      errors = errors + 1
      first_error = first_error or tostring(err and err.message or err)
    end
    times[i] = socket.gettime() - start_at
  end
  local finished = socket.gettime()
  c:close()
  local f = assert(io.open(out, "w"))
  f:write(cjson.encode { started = started - start_at, finished = finished - start_at, times = times,
    errors = errors, first_error = first_error })
  f:close()
  os.exit(errors == 0 and 0 or 1)
end

local scale, runs = tonumber(arg[1]) or 50, tonumber(arg[2]) or 3
local per = 300 / scale
local cfrun = "cfrun" -- the binary running this script: arg's lowest index
for i = -1, -math.huge, -1 do
  if arg[i] == nil then break end
  cfrun = arg[i]
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd) -- the command's output, less the last newline
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end

local function readfile(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function tempdir(tag)
  local dir = sh("mktemp -d ${TMPDIR:-/tmp}/cfrun-bench-" .. tag .. ".XXXXXX")
  assert(dir ~= "" and sh("stat -c %a " .. q(dir)) == "700", "mktemp -d gave no private directory")
  return dir
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

---------------------------------------------------------------------------------------------
-- Redis: our own server, spoken to in RESP over LuaSocket

local redis -- { port =, url =, dir =, pid = }

local function redis_cmd(port, ...)
  local c = socket.tcp()
  c:settimeout(1)
  if not c:connect("127.0.0.1", port) then c:close(); return nil end
  local args = { ... }
  local parts = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n" end
  c:send(table.concat(parts))
  local line = c:receive("*l")
  local len = line and tonumber(line:match("^%$(%d+)$"))
  if len then line = c:receive(len + 2) end -- a bulk string: its text
  c:close()
  return line
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function start_redis()
  if sh("command -v redis-server") == "" then return nil end
  local dir = tempdir("redis")
  for _ = 1, 5 do -- the port may be taken between free_port and the server's bind
    local port = free_port()
    os.execute(string.format("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no"
      .. " --daemonize yes --pidfile %s --logfile %s --dir %s", port, q(dir .. "/redis.pid"),
      q(dir .. "/redis.log"), q(dir)))
    for _ = 1, 50 do
      local pid = tonumber(readfile(dir .. "/redis.pid") or "")
      -- ours, not another server that took the port first (FLUSHALL is sent to it)
      if pid and (redis_cmd(port, "INFO", "server") or ""):find("process_id:" .. pid .. "\r\n", 1, true) then
        return { port = port, url = "redis://127.0.0.1:" .. port .. "/0", dir = dir, pid = pid }
      end
      socket.sleep(0.1)
    end
  end
  os.execute("rm -rf " .. q(dir))
  return nil
end

local function stop_redis()
  if not redis then return end
  redis_cmd(redis.port, "SHUTDOWN", "NOSAVE")
  for _ = 1, 20 do
    if not redis.pid or not os.execute("kill -0 " .. redis.pid .. " 2>/dev/null") then break end
    socket.sleep(0.1)
  end
  if redis.pid and os.execute("kill -0 " .. redis.pid .. " 2>/dev/null") then
    os.execute("kill " .. redis.pid)
  end
  os.execute("rm -rf " .. q(redis.dir))
  redis = nil
end

---------------------------------------------------------------------------------------------
-- the fake

-- the fake, started and controlled as bench/bench.lua's are (bench/harness.lua); the zone is
-- never seeded (--any-zone)
package.path = "bench/?.lua;" .. package.path
local fake = require("harness").start_fake(cfrun, "bench-token", 0,
  { "--any-zone", "--rate-limit", string.format("%d/%g", LIMIT, per) })
local origin = fake.origin
local function control(method, path) return fake:control(method, path) end

---------------------------------------------------------------------------------------------
-- one run of a row

-- row: { name =, procs =, machines = (true: a state dir each and Redis) }
local function run_row(row)
  control("POST", "/__fake/reset")
  assert(control("GET", "/__fake/stats").requests == 0, "the fake's reset left requests in its statistics")
  if row.machines then assert(redis_cmd(redis.port, "FLUSHALL") == "+OK", "Redis did not flush") end
  local work = tempdir("sb")
  local dirs = {}
  for i = 1, row.machines and row.procs or 1 do dirs[i] = tempdir("xdg") end
  local count = TOTAL // row.procs
  assert(count * row.procs == TOTAL, "TOTAL does not split evenly")
  -- every process waits for one moment, after the spawning of all of them (cold start ~10 ms)
  local start_at = socket.gettime() + 0.4 + 0.05 * row.procs
  local lines = { "set +e" }
  for i = 1, row.procs do
    local env = "env -u CFRUN_RATE_REDIS -u CFRUN_RATE_KEY XDG_RUNTIME_DIR=" .. q(dirs[row.machines and i or 1])
    if row.machines then env = env .. " CFRUN_RATE_REDIS=" .. q(redis.url) end
    lines[#lines + 1] = string.format("%s %s --quiet %s --child %s %g %d %.6f %s 2>%s &", env, q(cfrun),
      q(arg[0]), q(origin), per, count, start_at, q(work .. "/out." .. i), q(work .. "/err." .. i))
  end
  lines[#lines + 1] = "wait"
  os.execute(table.concat(lines, "\n"))
  local stats = control("GET", "/__fake/stats")
  local times, finished, late, errors, notes = {}, 0, 0, 0, {}
  for i = 1, row.procs do
    local r = cjson.decode(readfile(work .. "/out." .. i) or "null")
    assert(type(r) == "table", "process " .. i .. " wrote no result: " .. (readfile(work .. "/err." .. i) or ""))
    for _, t in ipairs(r.times) do times[#times + 1] = t end
    if r.finished > finished then finished = r.finished end
    if r.started > late then late = r.started end
    errors = errors + r.errors
    if r.first_error then notes[#notes + 1] = "process " .. i .. ": " .. r.first_error end
    local err = readfile(work .. "/err." .. i) or ""
    if err ~= "" then notes[#notes + 1] = "process " .. i .. " said: " .. err:gsub("\n$", "") end
  end
  -- where the budget was kept: the state file in the shared dir, or Redis and no local file
  for i, d in ipairs(dirs) do
    local files = sh("ls -A " .. q(d .. "/cfrun") .. " 2>/dev/null")
    if row.machines then
      if files:find("rate%-") then notes[#notes + 1] = "machine " .. i .. " kept a local budget file: " .. files end
    elseif not files:find("rate%-") then
      notes[#notes + 1] = "no rate budget file in the shared XDG_RUNTIME_DIR"
    end
  end
  if row.machines and not (redis_cmd(redis.port, "DBSIZE") or ""):find("^:[1-9]") then
    notes[#notes + 1] = "Redis holds no budget key"
  end
  os.execute("rm -rf " .. q(work))
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end

  table.sort(times)
  local n = #times
  local first = math.min(LIMIT, n)
  local pace = times[first] / first
  local k = math.max(0, math.ceil(n / LIMIT) - 1)
  local ideal = math.max(n * pace, k * per + (n - LIMIT * k) * pace)
  local ok200 = stats.by_status["200"] or 0
  return { n429 = stats.by_status["429"] or 0, requests = stats.requests, ok = ok200, elapsed = finished,
    ideal = ideal, ratio = ideal / finished, rate = ok200 / finished, late = late, errors = errors,
    notes = notes }
end

---------------------------------------------------------------------------------------------

local rows = {
  { name = "1 process", procs = 1 },
  { name = "2 processes", procs = 2 },
  { name = "4 processes", procs = 4 },
  { name = "8 processes", procs = 8 },
  { name = "3 machines (Redis)", procs = 3, machines = true },
}

local function main()
  redis = start_redis()
  if not redis then print("no redis-server (or it did not start): the \"3 machines\" row is skipped") end
  for _, row in ipairs(rows) do row.results = {} end
  for run = 1, runs do
    for _, row in ipairs(rows) do
      if not row.machines or redis then
        local r = run_row(row)
        row.results[run] = r
        print(string.format("run %d, %s: %d requests (%d x 200, %d x 429), %d errors, elapsed %.3f s,"
          .. " ideal %.3f s, ratio %.3f, %.1f accepted/s, last start %+.3f s", run, row.name, r.requests, r.ok,
          r.n429, r.errors, r.elapsed, r.ideal, r.ratio, r.rate, r.late))
        for _, note in ipairs(r.notes) do print("  " .. note) end
      end
    end
  end

  print()
  print(string.format("%d requests in all per row, split evenly; limit %d per %g s (fake and client);"
    .. " medians of %d runs", TOTAL, LIMIT, per, runs))
  print()
  print("| row | 429s (each run) | elapsed (s) | ideal (s) | ideal ÷ elapsed | accepted/s | ÷ limit rate"
    .. " | targets (0 × 429, ≥ 0.95) |")
  print("|---|---|---|---|---|---|---|---|")
  for _, row in ipairs(rows) do
    local rs = row.results
    if #rs > 0 then
      local col = function(f) local t = {} for i, r in ipairs(rs) do t[i] = r[f] end return t end
      local n429s, worst429, worst = {}, 0, math.huge
      for i, r in ipairs(rs) do
        n429s[i] = string.format("%d", r.n429)
        worst429 = math.max(worst429, r.n429 + r.errors)
        worst = math.min(worst, r.ratio)
      end
      local ratio = median(col("ratio"))
      local met = worst429 == 0 and ratio >= 0.95
      print(string.format("| %s | %s | %.2f | %.2f | %.3f | %.1f | %.3f | %s |", row.name, table.concat(n429s, ", "),
        median(col("elapsed")), median(col("ideal")), ratio, median(col("rate")), median(col("rate")) / (LIMIT / per),
        met and "met" or "**not met**"))
    else
      print(string.format("| %s | skipped: no redis-server | | | | | | |", row.name))
    end
  end
end

local ok, err = xpcall(main, debug.traceback)
stop_redis()
fake:stop()
if not ok then error(err, 0) end
