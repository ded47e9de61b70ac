-- spec/ratelimit_spec.lua: lua/cloudflare/ratelimit.lua and runtime/cf_ratestate.c: one rate
-- budget per Cloudflare user, shared by cfrun processes on one machine (a state file) and on
-- many (Redis). Functional, not timed: each spec counts the 429s the fake answered and the
-- requests that went through, with processes started at once against the fake's time-scaled
-- limit; a control run without sharing shows that the same load does draw 429s: the fake
-- answers 0.3 s late, so each process has its first burst in flight before any Ratelimit
-- header could warn it, and without one budget the bursts together pass the limit.
local H = require "spec.helper"
local socket = require "socket"

local ratelimit = require "cloudflare.ratelimit"
local q = H.shell_quote

-- A private directory for the state of one spec ("a machine's" $XDG_RUNTIME_DIR).
local function private_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -m 700 " .. q(d)))
  return d
end

-- The script each process runs: N list calls (LIST_TASKS tasks at once), then "ok bad".
local WORKER = H.tempfile([[
local n, tasks = tonumber(os.getenv("N")), tonumber(os.getenv("TASKS") or "1")
local rl = { requests = tonumber(os.getenv("REQ")), per = tonumber(os.getenv("PER")) }
if os.getenv("SHARED") == "0" then rl.shared = false end
local c = cloudflare.new { base_url = os.getenv("BASE"), api_token = os.getenv("TOKEN"),
  max_retries = tonumber(os.getenv("RETRIES") or "2"), rate_limit = rl,
  max_in_flight = tonumber(os.getenv("TASKS") or "1") }
local ok, bad = 0, 0
local fns = {}
for t = 1, tasks do
  fns[t] = function()
    for _ = t, n, tasks do
      local r = c.cache.origin_cloud_regions.list { zone_id = "023e105f4ecef8ad9ca31a8372d0c353" }
      if r then ok = ok + 1 else bad = bad + 1 end
    end
  end
end
cloudflare.parallel(fns, { concurrency = tasks })
print(ok, bad)
]])

-- Starts `count` cfrun processes of WORKER at once; env: a table of variables (or a function
-- of the process's index giving one). Returns a function that waits for them all and gives
-- their stdout and stderr texts, and the pids.
local function start(count, env)
  local outs, pids = {}, {}
  for i = 1, count do
    local e = type(env) == "function" and env(i) or env
    local parts, sets = { "env" }, {}
    for k, v in pairs(e) do
      if v == false then parts[#parts + 1] = "-u " .. k else sets[#sets + 1] = k .. "=" .. q(v) end
    end
    table.move(sets, 1, #sets, #parts + 1, parts) -- env takes its options before the assignments
    local out, err, pidf = os.tmpname(), os.tmpname(), os.tmpname()
    parts[#parts + 1] = q(H.CFRUN) .. " " .. q(WORKER)
    os.execute(table.concat(parts, " ") .. " >" .. out .. " 2>" .. err .. " </dev/null & echo $! >" .. pidf)
    local f = io.open(pidf)
    pids[i] = tonumber(f:read("l"))
    f:close()
    os.remove(pidf)
    outs[i] = { out, err }
  end
  return function()
    local deadline = socket.gettime() + 120 * H.SLOW
    for _, pid in ipairs(pids) do
      while H.alive(pid) and socket.gettime() < deadline do socket.sleep(0.05) end
    end
    local texts = {}
    for i, o in ipairs(outs) do
      local fo, fe = io.open(o[1]), io.open(o[2])
      texts[i] = { out = fo:read("a"), err = fe:read("a") }
      fo:close()
      fe:close()
      os.remove(o[1])
      os.remove(o[2])
    end
    return texts
  end, pids
end

local function total(texts)
  local ok, bad = 0, 0
  for _, t in ipairs(texts) do
    local o, b = t.out:match("^(%d+)%s+(%d+)")
    ok, bad = ok + (tonumber(o) or 0), bad + (tonumber(b) or 0)
  end
  return ok, bad
end

local function count_429(fake) return (fake:stats().by_status or {})["429"] or 0 end

describe("the rate budget's algorithm", function()
  local function budget(requests, per)
    return ratelimit.budget { requests = requests, per = per } -- no name: this process's own
  end

  it("grants `requests` in any `per` seconds, then says how long to wait and why", function()
    local b = budget(3, 10)
    local ids = {}
    for i = 1, 3 do
      local wait, id = b:acquire()
      assert.are.equal(0, wait)
      ids[i] = id
    end
    local wait, why = b:acquire()
    assert.are.equal("budget", why)
    assert.is_true(wait > 9.9 and wait <= 10.2, tostring(wait)) -- counted at its slice's end: <= 1 % late
    for _, id in ipairs(ids) do b:done(id) end
    assert.are.equal("budget", select(2, b:acquire())) -- a request ended still counts in the window
  end)

  it("a Ratelimit header narrows it, counting the requests still in flight", function()
    local b = budget(100, 10)
    local _, first = b:acquire()
    local _, second = b:acquire()
    local _, third = b:acquire()
    -- the first's answer says 2 remain: second and third may already be counted, so none is left
    b:done(first, { remaining = 2, reset = 5 })
    local wait, why = b:acquire()
    assert.are.equal("header", why)
    assert.is_true(wait > 4.9 and wait <= 5, tostring(wait))
    b:done(second, { remaining = 3, reset = 5 }) -- third in flight: 2 may start
    assert.are.equal(0, (b:acquire()))
    assert.are.equal(0, (b:acquire()))
    assert.are.equal("header", select(2, b:acquire()))
    b:done(third)
  end)

  it("a 429's Retry-After blocks the budget", function()
    local b = budget(100, 10)
    local _, id = b:acquire()
    b:done(id, nil, 7)
    local wait, why = b:acquire()
    assert.are.equal("blocked", why)
    assert.is_true(wait > 6.9 and wait <= 7, tostring(wait))
  end)

  it("takes any numbers a server sends without failing, and bounds them", function()
    local b = budget(100, 10)
    b:done(nil, { remaining = 0, reset = 1e12, quota = 0, window = 0 }) -- news with no grant
    local wait, why = b:acquire()
    assert.are.equal("header", why)
    assert.is_true(wait <= 604800, tostring(wait)) -- a week at most
    b = budget(100, 10)
    b:done(nil, { remaining = 0 / 0, reset = 0 / 0 }, 1e300)
    wait, why = b:acquire()
    assert.are.equal("blocked", why)
    assert.is_true(wait <= 604800, tostring(wait))
  end)

  it("a fallback counts its share of what Redis last showed; after an outage, Redis keeps to a share a window",
    function()
    local RL = assert(load(ratelimit.ALGORITHM))()
    local p = { requests = 10, per = 10, lease = 120, margin = 0.05, share = 0.25, id = "a" }
    -- Redis last showed 8 requests 1 s ago: this machine's share of them is 2 of its 2
    local s = { log = {}, inflight = {} }
    RL.seed(s, 100, { requests = 2, per = 10, share = 0.25, log = { 1, 8 } })
    RL.seed(s, 100, { requests = 2, per = 10, share = 0.25, log = { 1, 8 } }) -- a second process: max, not sum
    local wait, why = RL.acquire(s, 100, { requests = 2, per = 10, lease = 120, margin = 0.05, share = 0.25, id = "x" })
    assert.are.equal("budget", why)
    assert.is_true(wait > 8.9 and wait <= 9.2, tostring(wait)) -- until those 8 leave the window
    assert.are.equal(0, (RL.acquire(s, 109.2, { requests = 2, per = 10, lease = 120, margin = 0.05,
      share = 0.25, id = "y" })))
    -- a process back from the outage merges its own requests: for a window Redis grants 2 (the
    -- share), since others may still be sending on their own budgets
    local r = { log = {}, inflight = {} }
    RL.merge(r, 200, { requests = 10, per = 10, share = 0.25, ages = { 5 } })
    assert.are.equal(0, (RL.acquire(r, 200, p)))
    p.id = "b"
    assert.are.equal("budget", select(2, RL.acquire(r, 200, p)))
    p.id = "c"
    assert.are.equal(0, (RL.acquire(r, 210.1, p))) -- the window passed: the whole limit again
  end)

  it("runs the same in Redis: the script is the algorithm and a call of it", function()
    assert.truthy(ratelimit.REDIS_SCRIPT:find(ratelimit.ALGORITHM, 1, true))
    assert.truthy(ratelimit.REDIS_SCRIPT:find("redis.call('TIME')", 1, true))
    -- Lua 5.1 (Redis's) has no integer division, goto or bitwise operators
    for _, s in ipairs { "//", "goto ", "::", " & ", " | ", "<<", ">>" } do
      assert.is_nil(ratelimit.ALGORITHM:find(s, 1, true), s)
    end
  end)

  it("parses redis:// URLs, never showing a password, and refuses rediss:// with the reason", function()
    local r = assert(ratelimit.parse_redis("redis://:s3cret-pass@10.0.0.5:6380/2"))
    assert.are.same({ host = "10.0.0.5", port = 6380, db = 2, password = "s3cret-pass",
      shown = "redis://<redacted>@10.0.0.5:6380/2" }, r)
    assert.are.same({ host = "redis.internal", port = 6379, db = 0, shown = "redis://redis.internal" },
      assert(ratelimit.parse_redis("redis://redis.internal")))
    local none, err = ratelimit.parse_redis("rediss://redis.internal:6380")
    assert.is_nil(none)
    assert.matches("rediss:// %(TLS%) is not supported: Debian 12's hiredis %(0%.14%) has no TLS", err)
    assert.is_nil((ratelimit.parse_redis("http://x")))
  end)
end)

describe("one rate budget per user on a machine", function()
  local fake, xdg
  local REQ, PER = 30, 2 -- Cloudflare's 1,200 per 300 s, time-scaled
  before_each(function()
    xdg = private_dir()
  end)
  after_each(function()
    if fake then fake:stop() end
    fake = nil
    os.execute("rm -rf " .. q(xdg))
  end)

  local function env(extra)
    local e = { BASE = fake.base_url, TOKEN = H.TOKEN, REQ = REQ, PER = PER, N = 30,
      XDG_RUNTIME_DIR = xdg }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("3 processes on one credential get no 429; each of its own budget does", function()
    fake = H.start_fake { "--any-zone", "--latency", "0.3", "--rate-limit", REQ .. "/" .. PER }
    local texts = start(3, env { TASKS = 16 })()
    assert.are.same({ 90, 0 }, { total(texts) })
    assert.are.equal(0, count_429(fake))
    assert.are.equal(90, fake:stats().requests)
    -- a state file of the user's, 0600, named by a digest (never the token)
    local p = io.popen("LC_ALL=C ls -A " .. q(xdg .. "/cfrun") .. "; stat -c %a " .. q(xdg) .. "/cfrun/rate-*")
    local listing = p:read("a")
    p:close()
    -- and the stamp of the last prune of stale budgets (core.rate_prune's `every`)
    assert.matches("^%.prune%-rate%-\nrate%-%x+%-30%-2%.json\n600\n$", listing)
    assert.is_nil(listing:find(H.TOKEN, 1, true))

    -- the same load, each process on a budget of its own (the per-process pacing of old)
    fake:reset()
    socket.sleep(PER)
    texts = start(3, env { TASKS = 16, SHARED = "0", RETRIES = "0" })()
    local _, bad = total(texts)
    assert.is_true(count_429(fake) > 0, "a budget per process should overrun the user's limit")
    assert.is_true(bad > 0)
  end)

  it("2 credentials of one user sharing a key (CFRUN_RATE_KEY) get no 429; without it they do", function()
    local other = "spec-token-second-user-9d1"
    fake = H.start_fake { "--any-zone", "--one-user", "--token", other, "--latency", "0.3",
      "--rate-limit", REQ .. "/" .. PER }
    local tokens = { H.TOKEN, other }
    local function as(i, extra)
      local e = env { TOKEN = tokens[i], N = 40, TASKS = 20 }
      for k, v in pairs(extra) do e[k] = v end
      return e
    end
    local texts = start(2, function(i) return as(i, { CFRUN_RATE_KEY = "team-a" }) end)()
    assert.are.same({ 80, 0 }, { total(texts) })
    assert.are.equal(0, count_429(fake))
    fake:reset()
    socket.sleep(PER)
    start(2, function(i) return as(i, { RETRIES = "0" }) end)()
    assert.is_true(count_429(fake) > 0, "two credentials without a shared key are two budgets")
  end)

  it("a Ratelimit header one process read holds back the others", function()
    fake = H.start_fake { "--any-zone", "--rate-limit", REQ .. "/" .. PER }
    -- the API says (to the first request only) that the user's budget is spent for 1 s:
    -- someone else (the dashboard, another tool) spent it
    fake:fault { headers = { Ratelimit = '"default";r=0;t=1', ["Ratelimit-Policy"] = '"burst";q=30;w=2' } }
    local script = H.tempfile([[
      local reasons = {}
      local c = cloudflare.new { base_url = os.getenv("BASE"), api_token = os.getenv("TOKEN"),
        rate_limit = { requests = 30, per = 2 }, on_wait = function(_, why) reasons[#reasons + 1] = why end }
      assert(c.cache.origin_cloud_regions.list { zone_id = "023e105f4ecef8ad9ca31a8372d0c353" })
      print(#reasons > 0 and reasons[1] or "no wait")
    ]])
    local e = { BASE = fake.base_url, TOKEN = H.TOKEN, XDG_RUNTIME_DIR = xdg }
    local first = H.run({ script }, { env = e })
    assert.are.equal("no wait\n", first) -- it read the header; the next process must heed it
    local second = H.run({ script }, { env = e })
    assert.are.equal("the API's rate limit (Ratelimit header)\n", second)
    os.remove(script)
    assert.are.equal(0, count_429(fake))
  end)

  it("a process SIGKILLed while holding reservations does not starve the others", function()
    -- answers take 1 s, so the first process holds 8 requests in flight when it is killed
    fake = H.start_fake { "--any-zone", "--latency", "1", "--rate-limit", REQ .. "/" .. PER }
    local _, pids = start(1, env { N = 200, TASKS = 8 })
    local deadline = socket.gettime() + 10 * H.SLOW
    repeat socket.sleep(0.05) until (fake:stats().in_flight or 0) >= 8 or socket.gettime() > deadline
    assert(os.execute("kill -KILL " .. pids[1]))
    while H.alive(pids[1]) do socket.sleep(0.02) end
    local texts = start(2, env { N = 20, TASKS = 4 })()
    assert.are.same({ 40, 0 }, { total(texts) })
    assert.are.equal(0, count_429(fake))
    -- the state keeps no reservation of the dead process
    local f = assert(io.open((io.popen("ls " .. q(xdg) .. "/cfrun/rate-*"):read("l"))))
    local state = require("cjson").decode(f:read("a"))
    f:close()
    for id in pairs(state.inflight or {}) do
      assert.is_nil(id:find(":" .. pids[1] .. ":", 1, true), "a reservation of the killed process: " .. id)
    end
  end)

  it("a corrupt state file is rebuilt, with a warning", function()
    fake = H.start_fake { "--any-zone", "--rate-limit", REQ .. "/" .. PER }
    local texts = start(1, env { N = 2 })()
    assert.are.same({ 2, 0 }, { total(texts) })
    local path = io.popen("ls " .. q(xdg) .. "/cfrun/rate-*"):read("l")
    local f = assert(io.open(path, "w"))
    f:write('{"log":[1,2,')
    f:close()
    texts = start(1, env { N = 2 })()
    assert.are.same({ 2, 0 }, { total(texts) })
    assert.matches("cfrun: warning: the rate budget file .* was corrupt %(a process killed while"
      .. " writing it%?%); rebuilt empty", texts[1].err)
  end)
end)

describe("one rate budget per user across machines, in Redis", function()
  local fake, port, server_pid
  local REQ, PER = 40, 2
  local machines = {}

  local function free_port()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, p = s:getsockname()
    s:close()
    return tonumber(p)
  end

  local function redis_start()
    local pidf = os.tmpname()
    assert(os.execute(string.format("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no"
      .. " --daemonize no >/dev/null 2>&1 & echo $! >%s", port, pidf)))
    local f = io.open(pidf)
    server_pid = tonumber(f:read("l"))
    f:close()
    os.remove(pidf)
    local deadline = socket.gettime() + 10
    repeat
      local c = socket.connect("127.0.0.1", port)
      if c then c:close(); return end
      socket.sleep(0.05)
    until socket.gettime() > deadline
    error("redis-server did not start on port " .. port)
  end

  local function redis_kill()
    os.execute("kill -KILL " .. server_pid)
    while H.alive(server_pid) do socket.sleep(0.02) end
  end

  setup(function()
    port = free_port()
    redis_start()
    for i = 1, 3 do machines[i] = private_dir() end
  end)
  teardown(function()
    redis_kill()
    for _, d in ipairs(machines) do os.execute("rm -rf " .. q(d)) end
  end)
  after_each(function()
    if fake then fake:stop() end
    fake = nil
  end)

  -- process i runs on "machine" i: a state directory of its own, only Redis in common
  local function env(extra)
    return function(i)
      local e = { BASE = fake.base_url, TOKEN = H.TOKEN, REQ = REQ, PER = PER, N = 40, TASKS = 4,
        XDG_RUNTIME_DIR = machines[i], CFRUN_RATE_REDIS = "redis://127.0.0.1:" .. port .. "/3" }
      for k, v in pairs(extra or {}) do e[k] = v end
      return e
    end
  end

  it("3 machines sharing only Redis get no 429; with their own budgets they do", function()
    fake = H.start_fake { "--any-zone", "--latency", "0.3", "--rate-limit", REQ .. "/" .. PER }
    local texts = start(3, env { TASKS = 16 })()
    assert.are.same({ 120, 0 }, { total(texts) })
    assert.are.equal(0, count_429(fake))
    for _, t in ipairs(texts) do assert.are.equal("", t.err) end
    -- the key names a digest of the credential, never the credential
    local c = assert(socket.connect("127.0.0.1", port))
    c:send("SELECT 3\r\nKEYS *\r\n")
    c:settimeout(2)
    local reply = {}
    for _ = 1, 4 do reply[#reply + 1] = c:receive("*l") end
    c:close()
    assert.matches("^cfrun:rate:%x+:40:2$", reply[4])
    fake:reset()
    socket.sleep(PER)
    start(3, env { TASKS = 16, CFRUN_RATE_REDIS = false, RETRIES = "0" })()
    assert.are.equal(120, fake:stats().requests)
    assert.is_true(count_429(fake) > 0, "three machines on their own budgets should overrun the limit")
  end)

  it("Redis killed mid-run, then restarted: no 429, a warning, recovery", function()
    fake = H.start_fake { "--any-zone", "--rate-limit", REQ .. "/" .. PER }
    local wait = start(3, env { N = 100 })
    -- once the first window's requests went, Redis dies; a second later it is back, empty
    local deadline = socket.gettime() + 10 * H.SLOW
    repeat socket.sleep(0.02) until fake:stats().requests >= REQ or socket.gettime() > deadline
    redis_kill()
    socket.sleep(1)
    redis_start()
    local texts = wait()
    assert.are.same({ 300, 0 }, { total(texts) })
    assert.are.equal(0, count_429(fake))
    local shown = "redis://127.0.0.1:" .. port .. "/3"
    local warned = 0
    for _, t in ipairs(texts) do
      if t.err:find("cfrun: warning: Redis at " .. shown .. " is unreachable (", 1, true) then
        warned = warned + 1
        assert.truthy(t.err:find("keeping to this machine's budget of 25% of the limit until it is back",
          1, true), t.err)
        assert.truthy(t.err:find("cfrun: warning: Redis at " .. shown .. " is reachable again", 1, true), t.err)
        local _, n = t.err:gsub("is unreachable", "")
        assert.are.equal(1, n, "said once: " .. t.err)
      end
    end
    assert.is_true(warned >= 1, "no process noticed Redis going away")
  end)

  it("Redis credentials never appear in what cfrun prints", function()
    fake = H.start_fake { "--any-zone", "--rate-limit", REQ .. "/" .. PER }
    local dead = free_port() -- nothing listens there: every process falls back
    local texts = start(1, env { N = 3, CFRUN_RATE_REDIS = "redis://:hunter2-secret-pw@127.0.0.1:" .. dead .. "/0" })()
    assert.are.same({ 3, 0 }, { total(texts) })
    assert.truthy(texts[1].err:find("Redis at redis://<redacted>@127.0.0.1:" .. dead .. "/0 is unreachable", 1, true),
      texts[1].err)
    assert.is_nil(texts[1].err:find("hunter2", 1, true))
  end)
end)

describe("jobs and the rate limit", function()
  it("a --job waits out a Retry-After of up to 300 s; the wait is in its log line", function()
    local fake = H.start_fake { "--any-zone" }
    fake:fault { status = 429, errors = { { code = 971, message = "Please wait" } },
      headers = { ["Retry-After"] = "1" } }
    local script = H.tempfile([[
      local c = cloudflare.new { base_url = os.getenv("BASE"), api_token = os.getenv("TOKEN") }
      assert(c.cache.origin_cloud_regions.list { zone_id = "023e105f4ecef8ad9ca31a8372d0c353" })
      print(require("cloudflare.transport").default_max_retry_wait)
    ]])
    local out, err, code = H.run({ "--job", script }, { env = { BASE = fake.base_url, TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.are.equal("300\n", out)
    local record = require("cjson").decode(err:match("({\"event\":\"run\".-})\n?$"))
    assert.are.equal(2, record.requests)
    assert.are.equal(1, record.rate_limit_waits)
    assert.is_true(record.rate_limit_waited_s >= 1, tostring(record.rate_limit_waited_s))
    -- a plain run keeps 60 s
    out = H.run({ script }, { env = { BASE = fake.base_url, TOKEN = H.TOKEN } })
    assert.are.equal("60\n", out)
    os.remove(script)
    fake:stop()
  end)
end)

describe("core.rate_prune (runtime/cf_ratestate.c)", function()
  local core = require "cloudflare.core"
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local function touch(name, age)
    assert(io.open(dir .. "/" .. name, "w")):close()
    assert(os.execute(string.format("touch -d '@%d' %s/%s", os.time() - age, dir, name)))
  end
  local function exists(name)
    local f = io.open(dir .. "/" .. name)
    if f then f:close() end
    return f ~= nil
  end

  it("removes the budgets nobody wrote for max_age seconds, and only files of the prefix", function()
    touch("rate-old.json", 7200)
    touch("rate-new.json", 10)
    touch("other-old.json", 7200)
    assert.are.equal(1, core.rate_prune(dir, "rate-", 3600))
    assert.is_false(exists("rate-old.json"))
    assert.is_true(exists("rate-new.json"))
    assert.is_true(exists("other-old.json"))
    assert.is_false(exists(".prune-rate-")) -- no `every`: no stamp, a prune at every call
  end)

  it("with `every`, looks at most once per `every` seconds, as its stamp file says", function()
    touch("rate-a.json", 7200)
    assert.are.equal(1, core.rate_prune(dir, "rate-", 3600, 600))
    assert.is_true(exists(".prune-rate-"))
    touch("rate-b.json", 7200)
    assert.are.equal(0, core.rate_prune(dir, "rate-", 3600, 600)) -- pruned moments ago
    assert.is_true(exists("rate-b.json"))
    touch(".prune-rate-", 601) -- the last prune is older than `every`
    assert.are.equal(1, core.rate_prune(dir, "rate-", 3600, 600))
    assert.is_false(exists("rate-b.json"))
    touch(".prune-rate-", -3600) -- a stamp in the future (a clock set back) does not stop it
    touch("rate-c.json", 7200)
    assert.are.equal(1, core.rate_prune(dir, "rate-", 3600, 600))
  end)
end)
