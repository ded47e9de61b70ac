-- spec/run_spec.lua: lua/cloudflare/run.lua and the signal handling of runtime/cf_interrupt.c:
-- signals stop the script (not just the call) in plain runs, tasks and jobs; the exit status
-- and the job log line follow what happened (a call that raised, os.exit, a log that cannot be
-- written). Every case runs the real cfrun binary against the fake API and checks what the
-- server received and kept.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local q = H.shell_quote
local ZONE = H.ZONE

local fake, dir
setup(function()
  fake = H.start_fake()
  dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. q(dir))
end)
teardown(function()
  fake:stop()
  os.execute("rm -rf " .. q(dir))
end)
before_each(function() fake:reset() end)

local function env(extra)
  local e = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN, ZONE = ZONE,
    XDG_RUNTIME_DIR = dir, CFRUN_JOURNAL = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

local function zone_name(i) return string.format("%032x", i) end

-- n mappings 10.9.x.y in us-east-1
local function mappings(n, prefix)
  local list = {}
  for i = 1, n do
    list[i] = { string.format("%s.%d.%d", prefix or "10.9", i // 250, i % 250), "us-east-1", "aws" }
  end
  return list
end

-- Starts cfrun in the background; returns a handle whose :wait() gives stdout, stderr and the
-- exit status (a shell waits for cfrun and records its status).
local function start(args, extra)
  local out, pidfile, statusfile = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(statusfile)
  local parts = { "env" }
  for k, v in pairs(env(extra)) do
    if v == false then table.insert(parts, 2, "-u " .. k) else parts[#parts + 1] = k .. "=" .. q(v) end
  end
  parts[#parts + 1] = q(H.CFRUN)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local inner = string.format("%s </dev/null >%s 2>%s.err & echo $! >%s; wait $!; echo $? >%s.tmp; mv %s.tmp %s",
    table.concat(parts, " "), out, out, pidfile, statusfile, statusfile, statusfile)
  os.execute(string.format("sh -c %s >/dev/null 2>&1 &", q(inner)))
  local pid
  local t0 = socket.gettime()
  repeat
    pid = tonumber((slurp(pidfile) or ""):match("%d+"))
    if pid then break end
    socket.sleep(0.01)
  until socket.gettime() - t0 > 10
  assert(pid, "cfrun did not start")
  local p = { pid = pid }
  function p.kill(sig) os.execute("kill -" .. sig .. " " .. pid) end
  function p.wait(secs)
    local t1 = socket.gettime()
    local status
    repeat
      status = slurp(statusfile)
      if status and status ~= "" then break end
      socket.sleep(0.02)
    until socket.gettime() - t1 > (secs or 30)
    local o, e = slurp(out), slurp(out .. ".err")
    for _, f in ipairs { out, out .. ".err", pidfile, statusfile } do os.remove(f) end
    return o, e, tonumber(status)
  end
  return p
end

-- Waits until cond() holds (the server's view), for at most secs.
local function wait_for(cond, secs, what)
  local t0 = socket.gettime()
  while not cond() do
    assert(socket.gettime() - t0 < (secs or 20), "timed out waiting for " .. (what or "the server"))
    socket.sleep(0.01)
  end
end

local function deletes()
  local n = 0
  for _, r in ipairs(fake:api_requests()) do
    if r.method == "DELETE" then n = n + 1 end
  end
  return n
end

local function log_lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then out[#out + 1] = cjson.decode(line) end
  end
  return out
end

-- A loop over 50 zones, one bulk_delete each, printing each call's outcome.
local ZONES = H.tempfile([[
  for z = 1, 50 do
    local zone = string.format("%032x", z)
    local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = zone,
      ips = { "10.9.0.1", "10.9.0.2" } }
    print(z, res and "ok" or err.kind, partial and #partial.value.pending or 0,
      partial and #partial.value.unsent or 0)
    io.stdout:flush()
  end
  print("the loop ended")
]])

describe("a signal stops the script, not just the call", function()
  before_each(function()
    for z = 1, 50 do fake:set_zone(zone_name(z), mappings(2)) end
    fake:clear_requests()
  end)

  for _, case in ipairs { { "INT", 130, "SIGINT" }, { "TERM", 143, "SIGTERM" } } do
    it("SIG" .. case[1] .. " during a loop over 50 zones: the call in flight returns interrupted, "
      .. "no later call is sent, exit " .. case[2], function()
      fake:fault { delay = 30, match = { method = "DELETE" } }
      local p = start { ZONES }
      wait_for(function() return deletes() >= 1 end, 20, "the first DELETE")
      p.kill(case[1])
      local out, err, status = p.wait()
      assert.are.equal(case[2], status, err)
      -- the call in flight reported itself (sent, fate unknown: both IPs pending) ...
      assert.matches("^1\tinterrupted\t2\t0\n", out)
      -- ... and the script went no further: one request, never a second zone
      assert.is_nil(out:find("the loop ended", 1, true))
      assert.is_nil(out:find("\n2\t", 1, true))
      assert.are.equal(1, deletes())
      for z = 2, 50 do assert.are.equal(2, #fake:zone(zone_name(z))) end
      assert.matches("bulk_delete: not sent: cfrun is stopping after " .. case[3], err)
      assert.is_nil(err:find("stack traceback", 1, true), err)
    end)
  end

  it("stops every task of cloudflare.parallel, which returns every result", function()
    fake:fault { delay = 30, match = { method = "DELETE" }, times = 1000 }
    local s = H.tempfile([[
      local fns = {}
      for z = 1, 50 do
        fns[z] = function()
          local zone = string.format("%032x", z)
          for k = 1, 2 do
            local res, err = cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = zone,
              ips = { "10.9.0." .. k } }
            if not res then return nil, err end
          end
          return "done"
        end
      end
      local results, errs = cloudflare.parallel(fns, { concurrency = 50 })
      local kinds = {}
      for i = 1, 50 do
        local k = errs[i] and errs[i].kind or tostring(results[i])
        kinds[k] = (kinds[k] or 0) + 1
      end
      print(kinds.interrupted, kinds.done)
    ]])
    local p = start { s }
    -- 16 in flight (max_in_flight), 34 tasks queued for a slot
    wait_for(function() return deletes() >= 16 end, 20, "16 DELETEs in flight")
    socket.sleep(0.1)
    local sent = deletes()
    p.kill("TERM")
    local out, err, status = p.wait()
    assert.are.equal(143, status, err)
    assert.are.equal("50\tnil\n", out) -- every task ended with its call's interrupted error
    socket.sleep(0.2)
    assert.are.equal(sent, deletes()) -- none sent another request
    for z = 1, 50 do assert.are.equal(2, #fake:zone(zone_name(z))) end
    os.remove(s)
  end)

  it("a second SIGINT ends the process at once, even when the script ignores the first", function()
    local s = H.tempfile([[
      while true do pcall(function() while true do end end) end
    ]])
    local p = start { s }
    socket.sleep(0.3)
    p.kill("INT")
    socket.sleep(0.3)
    assert.is_true(H.alive(p.pid), "the first SIGINT should only raise in the script")
    p.kill("INT")
    local _, _, status = p.wait(10)
    assert.are.equal(130, status)
    os.remove(s)
  end)

  it("in a job: exit 130, outcome interrupted, and the interrupted call is counted", function()
    fake:fault { delay = 30, match = { method = "DELETE" } }
    local p = start { "--job", ZONES }
    wait_for(function() return deletes() >= 1 end, 20, "the first DELETE")
    p.kill("INT")
    local _, err, status = p.wait()
    assert.are.equal(130, status, err)
    local l = log_lines(err)[1]
    assert.are.equal(130, l.status)
    assert.are.equal("interrupted", l.outcome)
    assert.are.equal(2, l.pending) -- the two IPs of the call in flight
    assert.are.equal(0, l.unsent)
    assert.are.equal(1, l.requests)
  end)
end)

describe("the job log is the truth", function()
  it("counts a call that raised: what it deleted, and what it never sent", function()
    fake:set_zone(ZONE, mappings(250))
    -- the client's own budget of 2 requests makes the third batch wait, and the hook raises
    local s = H.tempfile([[
      local c = cloudflare.new { rate_limit = { requests = 2, per = 30 },
        on_wait = function() error("the hook failed") end }
      local ips = {}
      for i = 1, 250 do ips[i] = string.format("10.9.%d.%d", i // 250, i % 250) end
      c.cache.origin_cloud_regions.bulk_delete { zone_id = os.getenv("ZONE"), ips = ips,
        concurrency = 1 }
    ]])
    local p = start { "--job", s }
    local _, err, status = p.wait()
    assert.are.equal(1, status)
    local l = log_lines(err)[1]
    assert.are.equal("script_error", l.outcome)
    assert.matches("the hook failed", l.error)
    local left = #fake:zone(ZONE)
    assert.are.equal(50, left)             -- two batches of 100 went
    assert.are.equal(250 - left, l.succeeded) -- and the log says so
    assert.are.equal(0, l.pending)
    assert.are.equal(left, l.unsent)       -- the third never left
    assert.are.equal(2, l.requests)
    os.remove(s)
  end)

  for _, case in ipairs { { 3, "failed_ips" }, { 4, "incomplete" }, { 0, "success" }, { 2, "usage_error" } } do
    it("os.exit(" .. case[1] .. ") in a job is logged as " .. case[2], function()
      local s = H.tempfile("os.exit(" .. case[1] .. ")")
      local _, err, status = start({ "--job", s }).wait()
      assert.are.equal(case[1], status)
      local l = log_lines(err)[1]
      assert.are.equal(case[1], l.status)
      assert.are.equal(case[2], l.outcome)
      os.remove(s)
    end)
  end

  it("a log line that cannot be written is reported and fails the run", function()
    local s = H.tempfile("print('ran')")
    local out, err, status = start({ "--job", "--log-file", "/dev/full", s }).wait()
    assert.are.equal("ran\n", out)
    assert.are_not.equal(0, status)
    assert.matches("cannot write the run's log line to /dev/full", err)
    os.remove(s)
  end)

  it("--every below one second is a usage error", function()
    local s = H.tempfile("print('ran')")
    for _, d in ipairs { "1e-300s", "500ms", "0.5s" } do
      local out, err, status = start({ "--every", d, s }).wait()
      assert.are.equal(2, status, d)
      assert.are.equal("", out)
      assert.matches("less than the minimum of 1s", err)
    end
    os.remove(s)
  end)
end)

describe("the REPL keeps its Ctrl-C", function()
  it("a Ctrl-C in a retry backoff aborts the call, gives its slot back, and the next call works", function()
    fake:set_zone(ZONE, mappings(3))
    fake:fault { status = 500, match = { method = "GET" }, times = 1 }
    local lines = table.concat({
      -- one request in flight at most: a slot kept by the aborted call would hang the next
      "c = cloudflare.new { max_in_flight = 1, max_retries = 5 }",
      "t = cloudflare.spawn(function() return c.cache.origin_cloud_regions.list { zone_id = os.getenv('ZONE') } end)",
      "print('first', pcall(t.wait, t))",
      "t2 = cloudflare.spawn(function() return c.cache.origin_cloud_regions.list { zone_id = os.getenv('ZONE') } end)",
      "r = t2:wait() print('second', #r.value)",
    }, "\n") .. "\n"
    local input = H.tempfile(lines)
    -- the REPL reads stdin; the first list gets a 500 and sleeps in its backoff
    local out, pidfile = os.tmpname(), os.tmpname()
    local parts = {}
    for k, v in pairs(env()) do if v then parts[#parts + 1] = k .. "=" .. q(v) end end
    os.execute(string.format("env %s %s -i <%s >%s 2>&1 & echo $! >%s", table.concat(parts, " "),
      q(H.CFRUN), input, out, pidfile))
    local pid = tonumber(slurp(pidfile):match("%d+"))
    wait_for(function() return #fake:api_requests() >= 1 end, 20, "the first GET")
    socket.sleep(0.1) -- in the backoff now (0.375 s at least)
    os.execute("kill -INT " .. pid)
    wait_for(function() return not H.alive(pid) end, 20, "the REPL to finish its input")
    local text = slurp(out)
    assert.matches("first\tfalse\t[^\n]*interrupted", text)
    assert.matches("second\t3", text)
    for _, f in ipairs { out, pidfile, input } do os.remove(f) end
  end)
end)

describe("the progress line", function()
  it("gives the transport its wait hook back when the call raises", function()
    fake:set_zone(ZONE, mappings(250))
    local s = H.tempfile([[
      local hook = function() error("the hook failed") end
      local c = cloudflare.new { rate_limit = { requests = 2, per = 30 }, on_wait = hook }
      local ips = {}
      for i = 1, 250 do ips[i] = string.format("10.9.%d.%d", i // 250, i % 250) end
      local ok = pcall(c.cache.origin_cloud_regions.bulk_delete, { zone_id = os.getenv("ZONE"),
        ips = ips, concurrency = 1 })
      print(ok, c.transport.on_wait == hook and "hook restored" or "hook still swapped")
    ]])
    local parts = {}
    for k, v in pairs(env()) do if v then parts[#parts + 1] = k .. "=" .. q(v) end end
    local cmd = string.format("env %s %s %s", table.concat(parts, " "), q(H.CFRUN), s)
    local p = io.popen("script -qec " .. q(cmd) .. " /dev/null") -- a terminal: the line shows
    local text = p:read("a")
    p:close()
    assert.matches("bulk_delete %d+/250 IPs", text)
    assert.matches("false\thook restored", text)
    os.remove(s)
  end)
end)
