-- bench/bench.lua: the benchmark driver that bench/run starts. Runs cfrun and its peers (curl,
-- the official Node SDK, plain Python) against the fake API, checks after every run that the
-- tool really deleted what it was given, and writes bench/out/results.json, bench/out/report.md
-- and docs/benchmarks-scenario3.png; prints the report. Numbers are medians of BENCH_RUNS runs.
--
-- usage (from the repository root): cfrun bench/bench.lua [SCENARIO ...]
--   SCENARIO: 1 cold start, 2 one zone of 3,500 IPs, 3 concurrency (runs 1 too: its ideal adds
--   cfrun's cold start), 4 instructions per request, 5 the fake's capacity, 6 a paginated list,
--   7 scaling to 35,000 and 350,000 IPs (runs 1 too: its memory per IP is above a cold start),
--   8 cloudflare.iplist.read against an io.lines loop (bench/iplist.lua).
--   Default: all. Every scenario runs on the current API generation (v2) and on v1; the
--   report goes to bench/out/report.md and into docs/benchmarks.md (between its markers).
-- environment (bench/run sets it): BENCH_RUNS (default 5), BENCH_WRK_SECONDS (default 5), and
--   the programs MEASURE (default bench/.build/measure), CURL, NODE, PYTHON, VALGRIND, WRK, GNUPLOT.
-- The binary running this script is the cfrun under test; it also serves the fake API.

local here = io.open("bench/bench.lua")
if not here then error("bench/bench.lua: run from the repository root", 0) end
here:close()
package.path = "bench/?.lua;" .. package.path
local H = require "harness"
local cjson = require "cjson"
local socket = require "socket"
local json = require("cloudflare").json

local function env(name, default)
  local v = os.getenv(name)
  return (v and v ~= "") and v or default
end

local CFRUN = arg[-1]
local RUNS = math.tointeger(tonumber(env("BENCH_RUNS", "5")))
local WRK_SECONDS = math.tointeger(tonumber(env("BENCH_WRK_SECONDS", "5")))
local MEASURE, CURL, NODE = env("MEASURE", "bench/.build/measure"), env("CURL", "curl"), env("NODE", "node")
local PYTHON, VALGRIND = env("PYTHON", "python3"), env("VALGRIND", "valgrind")
local WRK, GNUPLOT = env("WRK", "wrk"), env("GNUPLOT", "gnuplot")

local OUT, WORK = "bench/out", "bench/out/work"
local PLOT = "docs/benchmarks-scenario3.png"
local SCALING_PLOT = "docs/benchmarks-scaling.png"
local DOC = "docs/benchmarks.md"
local DOC_BEGIN, DOC_END = "<!-- bench/run: report begins -->", "<!-- bench/run: report ends -->"
local TOKEN = "bench-token"
local BATCH = 100                -- IPs per request, the API's limit
local LATENCY = 0.05             -- seconds the slow fake adds to each API response
local CONCURRENCY = { 1, 4, 8, 16, 32 }
local SIZES = { 3500, 35000, 350000 } -- scenario 7
-- The API generations: v2 (/origin/cloud_regions, the current one) and the deprecated v1
-- (/cache/origin_cloud_regions), which the fake serves beside it.
local PREFIX = { v2 = "/origin/cloud_regions", v1 = "/cache/origin_cloud_regions" }

assert(RUNS and RUNS >= 1, "BENCH_RUNS must be a whole number >= 1")
assert(WRK_SECONDS and WRK_SECONDS >= 1, "BENCH_WRK_SECONDS must be a whole number >= 1")
os.execute("mkdir -p " .. WORK)

local function log(fmt, ...)
  io.stderr:write(string.format(fmt, ...), "\n")
end

---------------------------------------------------------------------------------------------
-- Zones and the files every tool reads. Zone n holds `count` IPs 10.n.x.y, each mapped to aws
-- us-east-1 (past 65,536 IPs, 11.n.x.y and on).

local function zone(n, count)
  local z = { id = string.format("%032x", 0xbe0c0000 + n), ips = {}, batches = {} }
  -- the seed in parts of at most SEED_PART mappings, each well under the fake's 16 MiB body
  local SEED_PART = 100000
  local seed = {}
  z.seeds = {}
  for i = 0, count - 1 do
    local ip = string.format("%d.%d.%d.%d", 10 + i // 65536, n, i // 256 % 256, i % 256)
    z.ips[#z.ips + 1] = ip
    seed[#seed + 1] = { ["origin-ip"] = ip, region = "us-east-1", vendor = "aws" }
    if #seed == SEED_PART then z.seeds[#z.seeds + 1], seed = cjson.encode(seed), {} end
  end
  if #seed > 0 or #z.seeds == 0 then z.seeds[#z.seeds + 1] = #seed > 0 and cjson.encode(seed) or "[]" end
  z.seed = z.seeds[1]
  z.file = string.format("%s/zone-%d.txt", WORK, n)
  H.write(z.file, table.concat(z.ips, "\n") .. "\n")
  for i = 1, count, BATCH do   -- request bodies for curl, prepared beforehand
    local body = string.format("%s/zone-%d-batch-%02d.json", WORK, n, #z.batches + 1)
    H.write(body, cjson.encode(table.move(z.ips, i, math.min(i + BATCH - 1, count), 1, {})))
    z.batches[#z.batches + 1] = body
  end
  return z
end

-- curl deleting a zone's IPs: one process, its batches one after the other (--next), on
-- one connection; gen: "v2" (default) or "v1".
local function curl_words(fake, z, gen)
  local url = fake.base_url .. "/zones/" .. z.id .. PREFIX[gen or "v2"] .. "/batch"
  local words = { CURL }
  for i, body in ipairs(z.batches) do
    if i > 1 then words[#words + 1] = "--next" end
    for _, w in ipairs { "-sS", "--fail", "-o", "/dev/null", "-X", "DELETE", "-H", "Authorization: Bearer " .. TOKEN,
      "-H", "Content-Type: application/json", "--data-binary", "@" .. body, url } do
      words[#words + 1] = w
    end
  end
  return words
end

-- curl listing a zone: on v2 its `pages` pages of 100 one after the other (--next), on v1
-- the one setting object.
local function curl_list_words(fake, z, gen, pages)
  local url = fake.base_url .. "/zones/" .. z.id .. PREFIX[gen]
  local words = { CURL }
  for page = 1, gen == "v2" and pages or 1 do
    if page > 1 then words[#words + 1] = "--next" end
    for _, w in ipairs { "-sS", "--fail", "-o", "/dev/null", "-H", "Authorization: Bearer " .. TOKEN,
      gen == "v2" and string.format("%s?page=%d&per_page=%d", url, page, BATCH) or url } do
      words[#words + 1] = w
    end
  end
  return words
end

-- The environment of a timed command; gen: the API generation cfrun is to use (default v2).
local function api_env(fake, gen)
  return string.format("CLOUDFLARE_API_TOKEN=%s CLOUDFLARE_BASE_URL=%s CFRUN_API_GENERATION=%s ", H.quote(TOKEN),
    H.quote(fake.base_url), gen or "v2")
end

---------------------------------------------------------------------------------------------
-- Timed runs

-- Runs each tool ({ name =, words = }) job.runs times (default RUNS), each run on freshly seeded
-- job.zones and checked afterwards: job.requests requests, at most job.max_in_flight (optional)
-- in flight. The tools take turns, so that the machine's noise spreads over all of them, after
-- one untimed warm-up round (page cache, first connections). A tool may say its API generation
-- (gen, default v2) and its own number of requests. job.kept: the zones keep their mappings (a
-- listing). Returns, per tool name, the medians
-- { wall =, cpu =, maxrss_kb =, fake_cpu = } (the fake's CPU time during the run), the
-- connections and peak requests in flight of the last run, and the runs.
local function compare(fake, tools, job)
  local runs = {}
  for round = 0, job.runs or RUNS do
    -- the tools take turns at going first: a run just after another tool's (Node's 130 MiB
    -- above all) starts with colder caches, and that must not always be the same tool's run
    for turn = 1, #tools do
      local t = tools[(round + turn - 1) % #tools + 1]
      fake:prepare(job.zones)
      local fake_cpu = fake:cpu()
      local m = H.measure(MEASURE, api_env(fake, t.gen), t.words, WORK .. "/" .. t.name .. ".log")
      m.fake_cpu = fake:cpu() - fake_cpu
      m.connections, m.peak_in_flight = fake:verify(t.name, job.zones, t.requests or job.requests, job.max_in_flight,
        job.kept)
      if round > 0 then
        runs[t.name] = runs[t.name] or {}
        table.insert(runs[t.name], m)
        log("%s run %d %-6s wall %7.1f ms  cpu %7.1f ms  rss %5.1f MiB  fake cpu %6.1f ms  %d connection(s)",
          job.label, round, t.name, m.wall * 1e3, m.cpu * 1e3, m.maxrss_kb / 1024, m.fake_cpu * 1e3, m.connections)
      end
    end
  end
  local out = {}
  for name, list in pairs(runs) do
    local r = { runs = list, connections = list[#list].connections, peak_in_flight = list[#list].peak_in_flight }
    for _, k in ipairs { "wall", "cpu", "maxrss_kb", "fake_cpu" } do
      local xs = {}
      for i, m in ipairs(list) do xs[i] = m[k] end
      r[k] = H.median(xs)
    end
    out[name] = r
  end
  return out
end

local function has_parallel()
  return os.execute(H.command { CFRUN, "-e", 'assert(require"cloudflare".parallel)' } .. " >/dev/null 2>&1")
end

---------------------------------------------------------------------------------------------
-- The scenarios. Each returns its part of results.json.

local scenario = {}

function scenario.cold_start(fast)
  local z = zone(1, 1)
  local ip = z.ips[1]
  local chunk = string.format('assert(require"cloudflare".cache.origin_cloud_regions.bulk_delete{zone_id=%q,ips={%q}})',
    z.id, ip)
  local tools = {
    { name = "cfrun", words = { CFRUN, "-e", chunk } },
    { name = "cfrun_v1", words = { CFRUN, "-e", chunk }, gen = "v1" },
    { name = "curl", words = curl_words(fast, z) },
    { name = "curl_v1", words = curl_words(fast, z, "v1"), gen = "v1" },
    { name = "node", words = { NODE, "bench/node/one.mjs", z.id, ip } },
    { name = "python", words = { PYTHON, "bench/python/one.py", z.id, ip } },
  }
  -- Its figures are a few milliseconds, where the machine's noise weighs most, and its runs are
  -- cheap: three times as many.
  local runs = 3 * RUNS
  return { runs = runs, cfrun_chunk = chunk,
    tools = compare(fast, tools, { zones = { z }, requests = 1, label = "s1", runs = runs }) }
end

function scenario.one_zone(fast)
  local z = zone(2, 3500)
  local tools = {
    { name = "cfrun", words = { CFRUN, "bench/scenario2.lua", z.id, z.file, "1" } },
    { name = "cfrun_default", words = { CFRUN, "bench/scenario2.lua", z.id, z.file, "4" } },
    { name = "curl", words = curl_words(fast, z) },
    { name = "cfrun_v1", words = { CFRUN, "bench/scenario2.lua", z.id, z.file, "1" }, gen = "v1" },
    { name = "curl_v1", words = curl_words(fast, z, "v1"), gen = "v1" },
    { name = "node", words = { NODE, "bench/node/scenario3.mjs", "1", z.id, z.file } },
  }
  return { ips = #z.ips, requests = #z.batches,
    tools = compare(fast, tools, { zones = { z }, requests = #z.batches, label = "s2" }) }
end

function scenario.concurrency(slow, cold_start)
  local zones, args = {}, {}
  for n = 101, 120 do
    local z = zone(n, 500)
    zones[#zones + 1] = z
    args[#args + 1], args[#args + 2] = z.id, z.file
  end
  local requests = #zones * #zones[1].batches
  local cfrun_ok = has_parallel()
  if not cfrun_ok then
    log("s3: SKIPPING cfrun: %s has no cloudflare.parallel yet (the concurrency API); Node SDK only", CFRUN)
  end
  local rows = {}
  for _, c in ipairs(CONCURRENCY) do
    local tools = { { name = "node", words = { NODE, "bench/node/scenario3.mjs", c, table.unpack(args) } } }
    if cfrun_ok then
      table.insert(tools, 1, { name = "cfrun", words = { CFRUN, "bench/scenario3.lua", c, table.unpack(args) } })
      table.insert(tools, 2, { name = "cfrun_v1", words = { CFRUN, "bench/scenario3.lua", c, table.unpack(args) },
        gen = "v1" })
    end
    local ideal = requests * LATENCY / c
    rows[#rows + 1] = { concurrency = c, ideal = ideal, ideal_plus_cold_start = ideal + cold_start,
      tools = compare(slow, tools, { zones = zones, requests = requests, label = "s3 c=" .. c, max_in_flight = c }) }
  end
  return { zones = #zones, ips_per_zone = #zones[1].ips, requests = requests, latency = LATENCY,
    cfrun_cold_start = cold_start, cfrun = cfrun_ok and "measured" or "pending: no cloudflare.parallel", rows = rows }
end

-- Instructions (callgrind's Ir) of one run of `words`, checked like a timed run (measure is
-- only there to run it and check its exit status).
local function instructions(fake, name, words, z, gen)
  fake:prepare { z }
  local out = string.format("%s/callgrind.%s.%d", WORK, name, #z.batches)
  local cmd = { VALGRIND, "--tool=callgrind", "--callgrind-out-file=" .. out }
  table.move(words, 1, #words, #cmd + 1, cmd)
  H.measure(MEASURE, api_env(fake, gen), cmd, WORK .. "/" .. name .. ".valgrind.log")
  fake:verify(name, { z }, #z.batches)
  local total = tonumber(H.read(out):match("\ntotals:%s*(%d+)"))
  log("s4 %-5s %2d request(s): %d instructions", name, #z.batches, total)
  return total
end

function scenario.instructions(fast)
  local full, one = zone(3, 3500), zone(4, BATCH)
  local out = { requests = #full.batches }
  for _, t in ipairs {
    { name = "cfrun", words = function(z) return { CFRUN, "bench/scenario2.lua", z.id, z.file } end },
    { name = "curl", words = function(z) return curl_words(fast, z) end },
    { name = "cfrun_v1", words = function(z) return { CFRUN, "bench/scenario2.lua", z.id, z.file } end, gen = "v1" },
    { name = "curl_v1", words = function(z) return curl_words(fast, z, "v1") end, gen = "v1" },
  } do
    local ir_full = instructions(fast, t.name, t.words(full), full, t.gen)
    local ir_one = instructions(fast, t.name, t.words(one), one, t.gen)
    out[t.name] = { ir_total = ir_full, ir_one_request = ir_one, per_request = ir_full / #full.batches,
      marginal = (ir_full - ir_one) / (#full.batches - 1) }
  end
  return out
end

-- One wrk run of `seconds` against `path`; the fake's statistics must show only 200s.
local function wrk(fake, label, method, path, body, connections)
  socket.sleep(fake.latency + 0.2)   -- the requests in flight when the last run stopped are answered
  fake:control("DELETE", "/__fake/stats")
  local cmd = string.format("WRK_METHOD=%s WRK_TOKEN=%s %s%s -t1 -c%d -d%ds -s bench/wrk.lua %s 2>&1",
    method, H.quote(TOKEN), body and "WRK_BODY_FILE=" .. H.quote(body) .. " " or "", H.quote(WRK), connections,
    WRK_SECONDS, H.quote(fake.base_url .. path))
  local text = H.capture(cmd)
  local stats = fake:control("GET", "/__fake/stats")
  fake:control("DELETE", "/__fake/requests")   -- the log of thousands of requests
  stats.by_status["200"] = nil
  if next(stats.by_status) or text:match("Non%-2xx") then
    error(string.format("wrk %s: answers other than 200: %s\n%s", label, cjson.encode(stats.by_status), text), 0)
  end
  local r = { request = label, latency = fake.latency, connections = connections,
    requests = tonumber(text:match("(%d+) requests in")),
    requests_per_s = tonumber(text:match("Requests/sec:%s*([%d.]+)")),
    socket_errors = text:match("Socket errors: ([^\n]+)") }
  log("s5 %-28s latency %.2f s  %3d connections  %8.0f requests/s%s", label, fake.latency, connections,
    r.requests_per_s, r.socket_errors and ("  socket errors: " .. r.socket_errors) or "")
  return r
end

function scenario.capacity(fast, slow)
  -- The delete goes to an empty zone, so it can be repeated: each request still parses 100 IPs
  -- and answers 100 items (all "mapping not found"); the list is of a zone of 100 mappings.
  local full, empty = zone(5, BATCH), zone(6, BATCH)
  local delete_path = "/zones/" .. empty.id .. PREFIX.v2 .. "/batch"
  local list_path = "/zones/" .. full.id .. PREFIX.v2 .. "?per_page=100"
  local rows = {}
  for _, fake in ipairs { fast, slow } do
    fake:control("PUT", "/__fake/zones/" .. full.id, full.seed)
    fake:control("PUT", "/__fake/zones/" .. empty.id, "[]")
  end
  for _, c in ipairs { 1, 16, 64 } do
    rows[#rows + 1] = wrk(fast, "DELETE batch of 100 IPs", "DELETE", delete_path, empty.batches[1], c)
  end
  for _, c in ipairs { 1, 16, 64 } do
    rows[#rows + 1] = wrk(fast, "GET list of 100 mappings", "GET", list_path, nil, c)
  end
  for _, c in ipairs { 1, 16, 64 } do
    rows[#rows + 1] = wrk(fast, "v1: DELETE batch of 100 IPs", "DELETE", "/zones/" .. empty.id .. PREFIX.v1
      .. "/batch", empty.batches[1], c)
  end
  for _, c in ipairs { 16, 64, 256 } do
    local r = wrk(slow, "DELETE batch of 100 IPs", "DELETE", delete_path, empty.batches[1], c)
    r.ideal = c / slow.latency
    rows[#rows + 1] = r
  end
  return { seconds = WRK_SECONDS, rows = rows }
end

---------------------------------------------------------------------------------------------
function scenario.list(fast)
  local z = zone(7, 3500)
  local pages = #z.batches
  local list = { CFRUN, "bench/list.lua", z.id, tostring(#z.ips) }
  local tools = {
    { name = "cfrun", words = list, requests = pages },
    { name = "curl", words = curl_list_words(fast, z, "v2", pages), requests = pages },
    { name = "cfrun_v1", words = list, gen = "v1", requests = 1 },
    { name = "curl_v1", words = curl_list_words(fast, z, "v1"), gen = "v1", requests = 1 },
  }
  return { ips = #z.ips, pages = pages, tools = compare(fast, tools, { zones = { z }, label = "s6", kept = true }) }
end

-- Scenario 2's job at each of SIZES: cfrun and curl timed (3 runs past 35,000 IPs, whose runs
-- take seconds), cfrun's instructions counted; per IP: wall, CPU and instructions divided by
-- the IPs, and peak RSS above cfrun's cold start (one IP, scenario 1).
function scenario.scaling(fast, cold_rss_kb)
  local rows = {}
  for k, n in ipairs(SIZES) do
    local z = zone(200 + k, n)
    local tools = {
      { name = "cfrun", words = { CFRUN, "bench/scenario2.lua", z.id, z.file, "1" } },
      { name = "curl", words = curl_words(fast, z) },
    }
    local t = compare(fast, tools, { zones = { z }, requests = #z.batches, label = "s7 " .. n,
      runs = n > 35000 and 3 or RUNS })
    local ir = instructions(fast, "cfrun", tools[1].words, z)
    local cf = t.cfrun
    rows[#rows + 1] = { ips = n, requests = #z.batches, tools = t, ir = ir,
      per_ip = { wall = cf.wall / n, cpu = cf.cpu / n, ir = ir / n,
        rss_bytes = (cf.maxrss_kb - cold_rss_kb) * 1024 / n } }
    z.seed, z.seeds = nil, nil
  end
  return { cold_rss_kb = cold_rss_kb, rows = rows }
end

-- bench/iplist.lua under the cfrun measured: its two figures (CPU time of reading 350,000 IPs).
function scenario.iplist()
  local text = H.capture(H.command { CFRUN, "bench/iplist.lua", "350000", tostring(2 * RUNS - 1) } .. " 2>&1")
  local out = { ips = 350000, runs = 2 * RUNS - 1 }
  for name, ms_, ns in text:gmatch("\n%s+(%S+[^\n]-)%s%s+([%d.]+) ms%s+(%d+) ns per line") do
    out[#out + 1] = { name = name, ms = tonumber(ms_), ns_per_line = tonumber(ns) }
  end
  if #out ~= 2 then error("bench/iplist.lua: unexpected output:\n" .. text, 0) end
  log("s8 %s %.1f ms, %s %.1f ms", out[1].name, out[1].ms, out[2].name, out[2].ms)
  return out
end

---------------------------------------------------------------------------------------------
-- The machine and the versions of everything measured

-- The first line a command prints (`wrk -v` prints its version and exits 1).
local function first_line(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local line = p:read("l")
  p:close()
  return line or "unknown"
end

local function machine()
  local cpuinfo = H.read("/proc/cpuinfo")
  local sdk = cjson.decode(H.read("bench/node_modules/cloudflare/package.json")).version
  return {
    cpu = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown",
    cores = tonumber(first_line("nproc")),
    memory_gib = tonumber(H.read("/proc/meminfo"):match("MemTotal:%s*(%d+)")) / 2 ^ 20,
    kernel = first_line("uname -r"),
    debian = first_line("cat /etc/debian_version"),
    versions = {
      cfrun = first_line(H.quote(CFRUN) .. " -v"), curl = first_line(H.quote(CURL) .. " --version"):match("^%S+ %S+"),
      node = first_line(H.quote(NODE) .. " --version"), cloudflare_sdk = sdk,
      python = first_line(H.quote(PYTHON) .. " --version"), valgrind = first_line(H.quote(VALGRIND) .. " --version"),
      wrk = first_line(H.quote(WRK) .. " -v"):match("^%S+ %S+"), gnuplot = first_line(H.quote(GNUPLOT) .. " --version"),
    },
    cfrun_binary = CFRUN,
    repository_head = first_line("git rev-parse --short HEAD"),
  }
end

---------------------------------------------------------------------------------------------
-- Targets, report and plot

-- Each target: { name =, value = <measured ratio, or bytes with unit "B">, limit =, pass =,
-- unit = }; value nil when not measured. Targets are on v2, the current API; v1's rows stand
-- beside them in the tables.
local function targets(s)
  local t = {}
  local function add(name, value, limit, unit)
    t[#t + 1] = { name = name, value = value, limit = limit, pass = value and value <= limit or nil, unit = unit }
  end
  if s.cold_start then
    local c = s.cold_start.tools
    add("cold start: cfrun wall / curl wall", c.cfrun.wall / c.curl.wall, 1.25)
    add("cold start: cfrun peak RSS / curl peak RSS", c.cfrun.maxrss_kb / c.curl.maxrss_kb, 1.25)
  end
  if s.one_zone then
    local c = s.one_zone.tools
    add("scenario 2: cfrun wall / curl wall", c.cfrun.wall / c.curl.wall, 1.1)
    add("scenario 2: cfrun CPU / curl CPU", c.cfrun.cpu / c.curl.cpu, 1.2)
    add("scenario 2: cfrun peak RSS / curl peak RSS", c.cfrun.maxrss_kb / c.curl.maxrss_kb, 1.25)
    add("scenario 2: the fake's CPU / cfrun's CPU (same run)", c.cfrun.fake_cpu / c.cfrun.cpu, 1)
  end
  if s.concurrency then
    for _, row in ipairs(s.concurrency.rows) do
      local cf = row.tools.cfrun
      local limit = ({ [8] = 1.05, [32] = 1.08 })[row.concurrency]
      if limit then
        add(string.format("scenario 3, concurrency %d: cfrun wall / (ideal + cold start)", row.concurrency),
          cf and cf.wall / row.ideal_plus_cold_start, limit)
        add(string.format("scenario 3, concurrency %d: cfrun wall / Node SDK wall", row.concurrency),
          cf and cf.wall / row.tools.node.wall, 1)
      end
    end
  end
  if s.instructions then
    local c = s.instructions
    add("scenario 4: cfrun instructions per request / curl's", c.cfrun.per_request / c.curl.per_request, 2)
    add("scenario 4, v1: cfrun instructions per request / curl's", c.cfrun_v1.per_request / c.curl_v1.per_request, 2)
  end
  if s.iplist then
    add("scenario 8: iplist.read CPU / io.lines loop CPU", s.iplist[2].ms / s.iplist[1].ms, 1)
  end
  if s.scaling then
    for _, row in ipairs(s.scaling.rows) do
      if row.ips == 350000 then
        add("scenario 7, 350,000 IPs: cfrun peak RSS per IP (bytes)", row.per_ip.rss_bytes, 300, "B")
      end
    end
  end
  return t
end

local function ms(x) return string.format("%.1f", x * 1e3) end
local function mib(kb) return string.format("%.1f", kb / 1024) end
local function times(x) return string.format("%.2f×", x) end
local function millions(n) return string.format("%.2f M", n / 1e6) end

local function md_table(header, rows)
  local lines = { "| " .. table.concat(header, " | ") .. " |", "|" .. string.rep("---|", #header) }
  for _, r in ipairs(rows) do lines[#lines + 1] = "| " .. table.concat(r, " | ") .. " |" end
  return table.concat(lines, "\n")
end

local TOOL_NAMES = {
  cfrun = "cfrun", cfrun_default = "cfrun, `concurrency = 4` (default)", curl = "curl",
  node = "Node, official SDK", python = "Python 3, urllib", cfrun_v1 = "cfrun, v1", curl_v1 = "curl, v1",
}

-- The peer a tool's ratios are against: curl on the same API generation.
local function peer(tools, name)
  return name:match("_v1$") and tools.curl_v1 or tools.curl
end

local SDK_NOTE = "The SDK's `bulkDelete({ zone_id })` takes no IP list; bench/node/sdk.mjs passes it "
  .. "through its request options (`bulkDelete({ zone_id }, { body: ips })`), and %s sends it to "
  .. "`/zones/{zone_id}/origin/cloud_regions/batch`, the current API generation, as cfrun does."

-- A report section per scenario: function(results of the scenario, results) -> markdown.
local SECTIONS = {}

function SECTIONS.cold_start(c, r)
  local rows = {}
  for _, name in ipairs { "cfrun", "curl", "node", "python", "cfrun_v1", "curl_v1" } do
    local t, curl = c.tools[name], peer(c.tools, name)
    rows[#rows + 1] = { TOOL_NAMES[name], ms(t.wall), times(t.wall / curl.wall), mib(t.maxrss_kb),
      times(t.maxrss_kb / curl.maxrss_kb), ms(t.cpu), ms(t.fake_cpu) }
  end
  return table.concat({
    string.format("## Scenario 1: cold start (one process deletes one IP; medians of %d runs)\n", c.runs),
    md_table({ "tool", "wall (ms)", "wall ÷ curl", "peak RSS (MiB)", "RSS ÷ curl", "CPU (ms)", "fake's CPU (ms)" },
      rows),
    "\ncfrun: `cfrun -e '" .. c.cfrun_chunk .. "'`. curl: one DELETE, body from a file. Node: bench/node/one.mjs. "
      .. "Python: bench/python/one.py. The fake's CPU is the server's share of the wall time. The v1 rows "
      .. "(`CFRUN_API_GENERATION=v1`; curl to `/cache/origin_cloud_regions/batch`) are against curl on v1.",
    "\n" .. string.format(SDK_NOTE, r.machine.versions.cloudflare_sdk),
  }, "\n")
end

function SECTIONS.one_zone(c)
  local rows = {}
  for _, name in ipairs { "cfrun", "cfrun_default", "curl", "node", "cfrun_v1", "curl_v1" } do
    local t, curl = c.tools[name], peer(c.tools, name)
    rows[#rows + 1] = { TOOL_NAMES[name], ms(t.wall), times(t.wall / curl.wall), ms(t.cpu), times(t.cpu / curl.cpu),
      mib(t.maxrss_kb), times(t.maxrss_kb / curl.maxrss_kb), ms(t.fake_cpu), tostring(t.connections) }
  end
  return table.concat({
    string.format("## Scenario 2: one zone, %d IPs, %d requests, no added latency\n", c.ips, c.requests),
    md_table({ "tool", "wall (ms)", "÷ curl", "CPU (ms)", "÷ curl", "peak RSS (MiB)", "÷ curl", "fake's CPU (ms)",
      "connections" }, rows),
    "\ncfrun: bench/scenario2.lua, one `bulk_delete` of the 3,500 IPs with `concurrency = 1`, its batches "
      .. "one after the other on one connection, like curl's; the targets use this row. The second row is the "
      .. "same call with cfrun's default, 4 batches at once. curl: one process, the 35 requests "
      .. "joined with `--next`, bodies from files. Node (for reference): bench/node/scenario3.mjs with "
      .. "concurrency 1, 35 `bulkDelete` calls in turn; Node's fetch (undici) does not reuse a connection "
      .. "after a DELETE with a body, hence a connection per request. Much of every wall time is the fake's: "
      .. "compare the fake's CPU column. The v1 rows: the same on `/cache/origin_cloud_regions/batch`, against "
      .. "curl on v1.",
  }, "\n")
end

function SECTIONS.concurrency(c)
  local times_rows, how_rows = {}, {}
  local function both(cf, node, f) return (cf and f(cf) or "pending") .. " / " .. f(node) end
  for _, row in ipairs(c.rows) do
    local cf, node, v1 = row.tools.cfrun, row.tools.node, row.tools.cfrun_v1
    times_rows[#times_rows + 1] = { tostring(row.concurrency), ms(row.ideal), ms(row.ideal_plus_cold_start),
      cf and ms(cf.wall) or "pending", cf and times(cf.wall / row.ideal_plus_cold_start) or "pending",
      ms(node.wall), cf and times(cf.wall / node.wall) or "pending",
      v1 and ms(v1.wall) or "pending", v1 and times(v1.wall / row.ideal_plus_cold_start) or "pending" }
    how_rows[#how_rows + 1] = { tostring(row.concurrency), both(cf, node, function(t) return ms(t.cpu) end),
      both(cf, node, function(t) return ms(t.fake_cpu) end),
      both(cf, node, function(t) return tostring(t.connections) end),
      both(cf, node, function(t) return tostring(t.peak_in_flight or "?") end) }
  end
  return table.concat({
    string.format("## Scenario 3: %d zones × %d IPs (%d requests), %g ms latency per response\n",
      c.zones, c.ips_per_zone, c.requests, c.latency * 1e3),
    md_table({ "concurrency", "ideal (ms)", "ideal + cold start (ms)", "cfrun (ms)", "cfrun ÷ (ideal + cold)",
      "Node SDK (ms)", "cfrun ÷ Node", "cfrun, v1 (ms)", "v1 ÷ (ideal + cold)" }, times_rows),
    "\nHow (cfrun / Node SDK, medians; connections and peak in flight from the fake, last run):\n",
    md_table({ "concurrency", "CPU (ms)", "fake's CPU (ms)", "connections", "peak requests in flight" }, how_rows),
    string.format("\nIdeal: requests × latency ÷ concurrency; the cold start added is cfrun's from scenario 1 "
      .. "(%s ms). cfrun (%s): bench/scenario3.lua, `cloudflare.new{ max_in_flight = c }`, one "
      .. "`bulk_delete{ concurrency = c }` per zone, the 20 zones as tasks of `cloudflare.parallel`. Node: "
      .. "bench/node/scenario3.mjs, c workers taking the 100 (zone, batch of 100 IPs) requests from one queue. "
      .. "Every run was checked to have at most c requests in flight at the fake (when it counts them).",
      ms(c.cfrun_cold_start), c.cfrun),
    "\n![scenario 3: wall time against concurrency](../../" .. PLOT .. ")",
  }, "\n")
end

function SECTIONS.instructions(c)
  local rows = {}
  for _, gen in ipairs { "", "_v1" } do
    for _, name in ipairs { "cfrun" .. gen, "curl" .. gen } do
      local t = c[name]
      rows[#rows + 1] = { TOOL_NAMES[name], millions(t.ir_total), millions(t.ir_one_request),
        millions(t.per_request), millions(t.marginal) }
    end
    local cf, curl = c["cfrun" .. gen], c["curl" .. gen]
    rows[#rows + 1] = { gen == "" and "cfrun ÷ curl" or "cfrun ÷ curl, v1", times(cf.ir_total / curl.ir_total),
      times(cf.ir_one_request / curl.ir_one_request), times(cf.per_request / curl.per_request),
      times(cf.marginal / curl.marginal) }
  end
  return table.concat({
    string.format("## Scenario 4: instructions (callgrind Ir) for scenario 2's %d requests\n", c.requests),
    md_table({ "", string.format("Ir, %d requests", c.requests), "Ir, 1 request",
      string.format("per request (total ÷ %d)", c.requests),
      string.format("marginal ((%d − 1) ÷ %d)", c.requests, c.requests - 1) }, rows),
    "\nOnly the client runs under valgrind (the fake runs natively); its Ir includes process start-up. "
      .. "\"1 request\": the same tool deleting a zone of 100 IPs.",
  }, "\n")
end

function SECTIONS.capacity(c)
  local rows = {}
  for _, w in ipairs(c.rows) do
    rows[#rows + 1] = { w.request, string.format("%g", w.latency * 1e3), tostring(w.connections),
      string.format("%.0f", w.requests_per_s), w.ideal and string.format("%.0f", w.ideal) or "",
      tostring(w.requests), w.socket_errors or "none" }
  end
  return table.concat({
    string.format("## Scenario 5: the fake API's own capacity (wrk, %d s per row, one thread)\n", c.seconds),
    md_table({ "request", "latency (ms)", "connections", "requests/s", "connections ÷ latency", "requests",
      "socket errors" }, rows),
    "\nThe DELETE goes to an empty zone, so that it can be repeated: each request still parses 100 IPs and "
      .. "answers 100 items (\"mapping not found\"). Every answer was a 200 (the fake's statistics).",
  }, "\n")
end

function SECTIONS.list(c)
  local rows = {}
  for _, name in ipairs { "cfrun", "curl", "cfrun_v1", "curl_v1" } do
    local t, curl = c.tools[name], peer(c.tools, name)
    rows[#rows + 1] = { TOOL_NAMES[name], ms(t.wall), times(t.wall / curl.wall), ms(t.cpu), times(t.cpu / curl.cpu),
      mib(t.maxrss_kb), times(t.maxrss_kb / curl.maxrss_kb), ms(t.fake_cpu), tostring(t.connections) }
  end
  return table.concat({
    string.format("## Scenario 6: listing a zone of %d mappings\n", c.ips),
    md_table({ "tool", "wall (ms)", "÷ curl", "CPU (ms)", "÷ curl", "peak RSS (MiB)", "÷ curl", "fake's CPU (ms)",
      "connections" }, rows),
    string.format("\nv2 is paginated, %d pages of 100: cfrun (bench/list.lua, one `list`, checked to return every "
      .. "mapping) reads the first page, then the others with its default concurrency (hence its connections); "
      .. "curl reads `?page=N&per_page=100` for N = 1 to %d, joined with `--next`, one after the other. v1 has "
      .. "no pages: one GET of the setting object holding all of them.", c.pages, c.pages),
  }, "\n")
end

function SECTIONS.scaling(c)
  local rows, per = {}, {}
  for _, row in ipairs(c.rows) do
    local cf, curl, p = row.tools.cfrun, row.tools.curl, row.per_ip
    rows[#rows + 1] = { tostring(row.ips), tostring(row.requests), ms(cf.wall), times(cf.wall / curl.wall),
      ms(cf.cpu), times(cf.cpu / curl.cpu), millions(row.ir), mib(cf.maxrss_kb), times(cf.maxrss_kb / curl.maxrss_kb),
      ms(cf.fake_cpu) }
    per[#per + 1] = { tostring(row.ips), string.format("%.2f", p.wall * 1e6), string.format("%.2f", p.cpu * 1e6),
      string.format("%.0f", p.ir), string.format("%.0f", p.rss_bytes) }
  end
  return table.concat({
    "## Scenario 7: scaling (scenario 2's job at 3,500, 35,000 and 350,000 IPs)\n",
    md_table({ "IPs", "requests", "cfrun wall (ms)", "÷ curl", "cfrun CPU (ms)", "÷ curl", "cfrun Ir",
      "cfrun peak RSS (MiB)", "÷ curl", "fake's CPU (ms)" }, rows),
    "\nPer IP (cfrun):\n",
    md_table({ "IPs", "wall (µs)", "CPU (µs)", "instructions", "peak RSS above a cold start (bytes)" }, per),
    string.format("\ncfrun: bench/scenario2.lua with `concurrency = 1`; curl: its requests joined with `--next`, "
      .. "as in scenario 2. Medians of %d runs (3 past 35,000 IPs); instructions: one callgrind run of cfrun. "
      .. "RSS per IP: (peak RSS − %s MiB, cfrun's cold start deleting one IP) ÷ IPs.", RUNS, mib(c.cold_rss_kb)),
    "\n![scenario 7: cost per IP against the number of IPs](../../" .. SCALING_PLOT .. ")",
  }, "\n")
end

function SECTIONS.iplist(c)
  local rows = {}
  for _, t in ipairs(c) do
    rows[#rows + 1] = { "`" .. t.name .. "`", string.format("%.1f", t.ms), tostring(t.ns_per_line),
      times(t.ms / c[1].ms) }
  end
  return table.concat({
    string.format("## Scenario 8: reading %d IPs from a file (medians of %d in-process runs)\n", c.ips, c.runs),
    md_table({ "", "CPU (ms)", "ns per line", "÷ the io.lines loop" }, rows),
    "\nbench/iplist.lua: `cloudflare.iplist.read(path)` (each line checked and trimmed, a CRLF file read as an LF "
      .. "one) against `for line in io.lines(path) do ips[#ips + 1] = line end`, on one file of IPv4 addresses, "
      .. "the two taking turns.",
  }, "\n")
end

local function report(r)
  local m = r.machine
  local out = {
    "# cfrun benchmark report\n",
    string.format("Scenarios 2 and 3: medians of %d runs, after one warm-up run; ratios are against the peer "
      .. "measured in the same run. Every run was checked: the zones were empty afterwards, with the expected "
      .. "number of requests, all answered 200.\n", r.runs),
    md_table({ "machine", "" }, {
      { "CPU", string.format("%s, %d cores, %.0f GiB", m.cpu, m.cores, m.memory_gib) }, { "kernel", m.kernel },
      { "Debian", m.debian }, { "cfrun binary", m.cfrun_binary },
      { "cfrun", m.versions.cfrun }, { "curl", m.versions.curl }, { "node", m.versions.node },
      { "SDK", "cloudflare " .. m.versions.cloudflare_sdk .. " (npm)" }, { "python", m.versions.python },
      { "valgrind", m.versions.valgrind }, { "wrk", m.versions.wrk }, { "repository HEAD", m.repository_head },
    }),
  }
  for _, name in ipairs { "cold_start", "one_zone", "concurrency", "instructions", "capacity", "list", "scaling",
    "iplist" } do
    if r.scenarios[name] then out[#out + 1] = "\n" .. SECTIONS[name](r.scenarios[name], r) end
  end
  local rows = {}
  for _, t in ipairs(r.targets) do
    local function show(x) return t.unit == "B" and string.format("%.0f B", x) or string.format("%.3f×", x) end
    rows[#rows + 1] = { t.name, t.value and show(t.value) or "pending", "≤ " .. show(t.limit),
      t.value == nil and "pending" or (t.pass and "met" or string.format("**not met**: %.0f %% over",
        (t.value / t.limit - 1) * 100)) }
  end
  out[#out + 1] = "\n## Targets\n"
  out[#out + 1] = md_table({ "target", "measured", "limit", "result" }, rows)
  out[#out + 1] = "\nWhat bounds each target not met: docs/benchmarks.md, \"Reading the results\"."
  return table.concat(out, "\n") .. "\n"
end

-- The scenario 3 plot: wall time against concurrency for cfrun, the Node SDK and the ideal.
local function plot(c, sdk_version)
  local data, cfrun = { "# concurrency, ideal, cfrun, Node SDK: wall time (s)" }, c.rows[1].tools.cfrun ~= nil
  for _, row in ipairs(c.rows) do
    data[#data + 1] = string.format("%d %.4f %s %.4f", row.concurrency, row.ideal,
      cfrun and string.format("%.4f", row.tools.cfrun.wall) or "NaN", row.tools.node.wall)
  end
  local dat = OUT .. "/scenario3.dat"
  H.write(dat, table.concat(data, "\n") .. "\n")
  local series = {
    string.format("'%s' using 1:2 with lines dashtype 2 lc 'gray40' title 'ideal (requests × latency ÷ c)'", dat),
    string.format("'%s' using 1:4 with linespoints pt 5 lw 2 lc 'blue' title 'Node SDK (cloudflare %s)'", dat,
      sdk_version),
  }
  if cfrun then
    series[#series + 1] = string.format("'%s' using 1:3 with linespoints pt 7 lw 2 lc 'orange' title 'cfrun'", dat)
  end
  local script = table.concat({
    "set terminal pngcairo size 900,560 font 'sans,11'",
    "set output '" .. PLOT .. "'",
    string.format("set title '%d zones × %d IPs (%d requests), %g ms latency per response%s'", c.zones,
      c.ips_per_zone, c.requests, c.latency * 1e3, cfrun and "" or " — cfrun pending"),
    "set xlabel 'concurrency (requests in flight)'", "set ylabel 'wall time (s)'",
    "set logscale xy", "set xrange [0.8:40]", "set xtics (" .. table.concat(CONCURRENCY, ", ") .. ")",
    "set grid", "set key top right",
    "plot " .. table.concat(series, ", "),
  }, "\n")
  H.write(OUT .. "/scenario3.gp", script .. "\n")
  H.capture(H.quote(GNUPLOT) .. " " .. OUT .. "/scenario3.gp 2>&1")
end

-- The scenario 7 plot: cfrun's cost per IP (CPU, instructions, peak RSS) against the IPs.
local function plot_scaling(c)
  local data = { "# IPs, CPU (µs), thousands of instructions, peak RSS above a cold start (bytes), per IP" }
  for _, row in ipairs(c.rows) do
    local p = row.per_ip
    data[#data + 1] = string.format("%d %.4f %.4f %.1f", row.ips, p.cpu * 1e6, p.ir / 1e3, p.rss_bytes)
  end
  local dat = OUT .. "/scaling.dat"
  H.write(dat, table.concat(data, "\n") .. "\n")
  local function panel(col, title, ylabel, colour)
    return table.concat({ "set title '" .. title .. "'", "set ylabel '" .. ylabel .. "'",
      string.format("plot '%s' using 1:%d with linespoints pt 7 lw 2 lc '%s' notitle", dat, col, colour) }, "\n")
  end
  local script = table.concat({
    "set terminal pngcairo size 1200,420 font 'sans,10' noenhanced", -- bulk_delete, not bulk subscript d
    "set output '" .. SCALING_PLOT .. "'",
    "set multiplot layout 1,3 title 'cfrun, one bulk_delete (concurrency 1): cost per IP'",
    "set logscale x", "set xrange [2500:500000]", "set xtics ('3,500' 3500, '35,000' 35000, '350,000' 350000)",
    "set xlabel 'IPs'", "set yrange [0:*]", "set grid",
    panel(2, "CPU time per IP", "µs", "orange"),
    panel(3, "instructions per IP", "thousands", "blue"),
    panel(4, "peak RSS per IP (above a cold start)", "bytes", "dark-green"),
    "unset multiplot",
  }, "\n")
  H.write(OUT .. "/scaling.gp", script .. "\n")
  H.capture(H.quote(GNUPLOT) .. " " .. OUT .. "/scaling.gp 2>&1")
end

-- docs/benchmarks.md between its markers: the report, its headings one level down, the plots'
-- paths relative to docs/.
local function update_doc(text)
  local doc = H.read(DOC)
  local a, b = doc:find(DOC_BEGIN, 1, true), doc:find(DOC_END, 1, true)
  if not (a and b and a < b) then
    log("bench: %s has no %s ... %s markers; not updated", DOC, DOC_BEGIN, DOC_END)
    return
  end
  local body = text:gsub("^# [^\n]*\n+", ""):gsub("\n(#+ )", "\n#%1"):gsub("%(%.%./%.%./docs/", "(")
  H.write(DOC, doc:sub(1, a - 1) .. DOC_BEGIN .. "\n\n" .. body .. "\n" .. doc:sub(b))
  log("bench: %s updated", DOC)
end

---------------------------------------------------------------------------------------------
-- Main

local wanted, all = {}, #arg == 0
for _, a in ipairs(arg) do
  if not a:match("^[1-8]$") then error("usage: cfrun bench/bench.lua [1-8 ...]", 0) end
  wanted[tonumber(a)] = true
end
if all then wanted = { true, true, true, true, true, true, true, true } end
wanted[1] = wanted[1] or wanted[3] or wanted[7]

local fast = H.start_fake(CFRUN, TOKEN, 0)
local slow = H.start_fake(CFRUN, TOKEN, LATENCY)
local results = { runs = RUNS, machine = machine(), scenarios = {} }
local s = results.scenarios
local ok, err = pcall(function()
  if wanted[1] then s.cold_start = scenario.cold_start(fast) end
  if wanted[2] then s.one_zone = scenario.one_zone(fast) end
  if wanted[3] then s.concurrency = scenario.concurrency(slow, s.cold_start.tools.cfrun.wall) end
  if wanted[4] then s.instructions = scenario.instructions(fast) end
  if wanted[5] then s.capacity = scenario.capacity(fast, slow) end
  if wanted[6] then s.list = scenario.list(fast) end
  if wanted[7] then s.scaling = scenario.scaling(fast, s.cold_start.tools.cfrun.maxrss_kb) end
  if wanted[8] then s.iplist = scenario.iplist() end
end)
fast:stop()
slow:stop()
if not ok then error(err, 0) end

results.targets = targets(s)
H.write(OUT .. "/results.json", json.encode(results, { indent = true }) .. "\n")
local text = report(results)
H.write(OUT .. "/report.md", text)
if s.concurrency then plot(s.concurrency, results.machine.versions.cloudflare_sdk) end
if s.scaling then plot_scaling(s.scaling) end
if all then update_doc(text) end -- only a full run: a partial one would drop the other sections
io.write(text)
