-- spec/async_spec.lua: lua/cloudflare/async.lua (tasks, parallel, sleep) over runtime/cf_loop.c
-- (the multi handle and Transfers), and what concurrency does to bulk calls, the shared rate
-- budget and the connection pool. Concurrency is asserted on what the fake API saw (how many
-- requests it was answering at once, over which connections), never on timings.
local H = require "spec.helper"
local cjson = require "cjson"
local async = require "cloudflare.async"

local ZONE = H.ZONE

local function addresses(n, prefix) -- n distinct addresses, in order
  local out = {}
  for i = 1, n do out[i] = string.format("%s.%d.%d", prefix or "10.0", i // 256, i % 256) end
  return out
end

local function mappings(ips)
  local out = {}
  for i, a in ipairs(ips) do out[i] = { a, "us-east-1", "aws" } end
  return out
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function distinct(list, k)
  local seen, n = {}, 0
  for _, v in ipairs(list) do
    if not seen[v[k]] then seen[v[k]], n = true, n + 1 end
  end
  return n
end

describe("tasks", function()
  local fake, client

  setup(function()
    fake = H.start_fake { "--latency", "0.05" }
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, mappings(addresses(3)))
  end)

  it("spawn runs at once until the first wait; wait returns every value", function()
    local log = {}
    local t = cloudflare.spawn(function(a, b)
      log[#log + 1] = "started"
      cloudflare.sleep(0.01)
      log[#log + 1] = "woke"
      return a + b, nil, "third"
    end, 1, 2)
    assert.are.same({ "started" }, log)
    assert.are.equal("waiting", t.status)
    local x, y, z = t:wait()
    assert.are.same({ 3, nil, "third" }, { x, y, z })
    assert.are.equal("done", t.status)
    assert.are.same({ "started", "woke" }, log)
    assert.are.equal(3, (cloudflare.wait(t))) -- again: the same values
    assert.matches("^cloudflare.Task %(done%)", tostring(t))
  end)

  it("interleaves sleeping tasks: the shorter sleep finishes first", function()
    local order = {}
    local slow = cloudflare.spawn(function() cloudflare.sleep(0.2) order[#order + 1] = "slow" end)
    local quick = cloudflare.spawn(function() cloudflare.sleep(0.05) order[#order + 1] = "quick" end)
    slow:wait()
    quick:wait()
    assert.are.same({ "quick", "slow" }, order)
  end)

  it("runs API calls of several tasks at once, each on its own connection", function()
    fake:clear_requests()
    fake:clear_stats()
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = cloudflare.spawn(function() return client.cache.origin_cloud_regions.list { zone_id = ZONE } end)
    end
    for i = 1, 4 do
      local res, err = tasks[i]:wait()
      assert.is_nil(err)
      assert.are.equal(3, #res.value)
    end
    assert.are.equal(4, fake:stats().peak_in_flight)
    assert.are.equal(4, distinct(fake:api_requests(), "conn"))
  end)

  it("keeps the results of a task that raised, and raises its error with its traceback at wait", function()
    local t = cloudflare.spawn(function() cloudflare.sleep(0.01) error("boom in a task") end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.matches("boom in a task", err)
    assert.matches("stack traceback", err)
    assert.are.equal("failed", t.status)
    local ok2, obj = pcall(function()
      return cloudflare.spawn(function() error({ code = 7 }) end):wait()
    end)
    assert.is_false(ok2)
    assert.are.same({ code = 7 }, obj) -- error objects pass through untouched
  end)

  it("lets a task wait for another, and spawn tasks of its own", function()
    local outer = cloudflare.spawn(function()
      local inner = cloudflare.spawn(function()
        local res = client.cache.origin_cloud_regions.list { zone_id = ZONE }
        return #res.value
      end)
      return inner:wait() * 10
    end)
    assert.are.equal(30, outer:wait())
  end)

  it("raises on programming mistakes: not a function, waiting for itself, a deadlock", function()
    assert.has_error(function() cloudflare.spawn("nope") end,
      "cloudflare.spawn: expected a function, got string")
    local me
    me = cloudflare.spawn(function() cloudflare.sleep(0) return pcall(me.wait, me) end)
    local ok, err = me:wait()
    assert.is_false(ok)
    assert.matches("a task cannot wait for itself", err)
    local a, b
    a = cloudflare.spawn(function() cloudflare.sleep(0) return b:wait() end)
    b = cloudflare.spawn(function() return a:wait() end)
    local ok2, err2 = pcall(a.wait, a)
    assert.is_false(ok2)
    assert.matches("deadlock", err2)
    assert.has_error(function() cloudflare.sleep(-1) end)
  end)

  it("a plain coroutine.yield in a task lets the others run", function()
    local order = {}
    local t1 = cloudflare.spawn(function()
      order[#order + 1] = "a1"
      coroutine.yield()
      order[#order + 1] = "a2"
    end)
    local t2 = cloudflare.spawn(function() order[#order + 1] = "b" end)
    t1:wait()
    t2:wait()
    assert.are.same({ "a1", "b", "a2" }, order)
  end)

  it("API calls inside a coroutine of the script's own block instead of confusing it", function()
    local gen = coroutine.wrap(function()
      local res = client.cache.origin_cloud_regions.list { zone_id = ZONE }
      coroutine.yield(#res.value)
      coroutine.yield("second")
    end)
    local t = cloudflare.spawn(function() return gen(), gen() end)
    assert.are.same({ 3, "second" }, { t:wait() })
  end)
end)

describe("cloudflare.parallel", function()
  local fake, client

  setup(function()
    fake = H.start_fake { "--latency", "0.05" }
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
  end)

  it("runs at most `concurrency` functions at once and returns results and errors by index", function()
    local zones = {}
    for i = 1, 6 do
      zones[i] = string.format("%032x", i)
      fake:set_zone(zones[i], mappings(addresses(i)))
    end
    fake:clear_stats()
    local fns = {}
    for i = 1, 6 do
      fns[i] = function() return client.cache.origin_cloud_regions.list { zone_id = zones[i] } end
    end
    fns[7] = function() return client.cache.origin_cloud_regions.get { zone_id = zones[1], ip = "192.0.2.99" } end
    local results, errs = cloudflare.parallel(fns, { concurrency = 3 })
    for i = 1, 6 do
      assert.are.equal(i, #results[i].value)
      assert.is_nil(errs[i])
    end
    assert.is_nil(results[7])
    assert.are.equal(404, errs[7].status)
    assert.are.equal(3, fake:stats().peak_in_flight)
  end)

  it("never drops results: a function that raised has errs[i], the others keep theirs", function()
    fake:set_zone(ZONE, mappings(addresses(3)))
    fake:clear_requests()
    local fns = {
      function() return client.cache.origin_cloud_regions.list { zone_id = ZONE } end,
      function() cloudflare.sleep(0.02) error("second failed") end,
      function() error({ code = 7 }) end,
      function() return client.cache.origin_cloud_regions.delete { zone_id = ZONE, ip = "10.0.0.1" } end,
    }
    local results, errs = cloudflare.parallel(fns, { concurrency = 4 }) -- does not raise
    assert.are.equal(3, #results[1].value)
    assert.is_nil(errs[1])
    assert.are.equal("raised", errs[2].kind)
    assert.matches("second failed", errs[2].message)
    assert.matches("stack traceback:", errs[2].traceback)
    assert.matches("async_spec", errs[2].traceback)
    assert.are.equal("raised", errs[3].kind)
    assert.are.same({ code = 7 }, errs[3].value) -- the error object itself, untouched
    assert.are.equal("10.0.0.1", results[4].value.origin_ip)
    -- the delete went through although an earlier function had failed
    assert.are.equal(2, #fake:zone(ZONE))
    assert.are.equal(H.V1 and 2 or 3, #fake:api_requests()) -- v2's delete looks first
  end)

  it("checks its arguments", function()
    assert.has_error(function() cloudflare.parallel("x") end,
      "cloudflare.parallel: expected a list of functions, got string")
    assert.has_error(function() cloudflare.parallel({ 1 }) end,
      "cloudflare.parallel: fns[1] is a number, expected a function")
    assert.has_error(function() cloudflare.parallel({}, { concurrency = 0 }) end,
      "cloudflare.parallel: concurrency must be a whole number >= 1, got 0")
    assert.are.same({}, (cloudflare.parallel({})))
  end)
end)

describe("concurrent bulk calls", function()
  local fake, client
  local A, B = "0000000000000000000000000000000a", "0000000000000000000000000000000b"

  setup(function()
    fake = H.start_fake { "--latency", "0.02" }
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(A, {}) -- an unseeded zone answers 403, as Cloudflare's unknown zones do
    fake:set_zone(B, {})
  end)

  -- 1,050 addresses: 11 batches, with invalid, duplicate and absent entries sprinkled in.
  local function input()
    local ips = addresses(1000)
    local present = table.move(ips, 1, 1000, 1, {})
    local extra = { "not-an-ip", "10.0.0.5", "192.0.2.250", "2001:DB8::1", "2001:db8::1" }
    for i, v in ipairs(extra) do table.insert(ips, i * 150, v) end
    for i = 1, 45 do ips[#ips + 1] = string.format("10.9.0.%d", i) end -- absent
    present[#present + 1] = "2001:db8::1"
    return ips, present
  end

  local function comparable(res)
    res.modified_on = nil
    return res
  end

  it("gives the same results as one batch at a time, with `concurrency` batches in flight", function()
    local ips, present = input()
    fake:set_zone(A, mappings(present))
    fake:set_zone(B, mappings(present))
    fake:clear_stats()
    local one = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = A, ips = ips, concurrency = 1 })
    assert.are.equal(1, fake:stats().peak_in_flight)
    fake:clear_stats()
    fake:clear_requests()
    local four = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = B, ips = ips, concurrency = 4 })
    assert.are.equal(4, fake:stats().peak_in_flight)
    local reqs = fake:api_requests()
    assert.are.equal(11, #reqs)
    assert.are.equal(4, distinct(reqs, "conn")) -- kept alive and reused across batches
    assert.are.same(comparable(one), comparable(four))
    assert.are.equal(1001, #four.value.succeeded)
    assert.are.same({}, fake:zone(A))
    assert.are.same({}, fake:zone(B))
  end)

  it("defaults to 4 batches in flight, and bulk_edit does the same", function()
    local items = {}
    for i, a in ipairs(addresses(700)) do items[i] = { ip = a, region = "eu-west-1", vendor = "aws" } end
    fake:clear_stats()
    local res = assert(client.cache.origin_cloud_regions.bulk_edit { zone_id = A, items = items })
    assert.are.equal(4, fake:stats().peak_in_flight)
    assert.are.equal(700, #res.value.succeeded)
    assert.are.same(addresses(700), H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.equal(700, #fake:zone(A))
    assert.has_error(function()
      client.cache.origin_cloud_regions.bulk_delete { zone_id = A, ips = { "10.0.0.1" }, concurrency = 0 }
    end, "bulk_delete: bad argument 'concurrency': expected a whole number from 1 to 64, got \"0\"")
  end)

  it("fails mid-way like a sequential run: no batch starts after the failure, nothing is lost", function()
    local ips, present = input()
    fake:set_zone(A, mappings(present))
    fake:fault { skip = 2, status = 500, match = { method = "DELETE" } }
    fake:clear_requests()
    local res, err, partial = client.cache.origin_cloud_regions.bulk_delete { zone_id = A, ips = ips, concurrency = 4 }
    assert.is_nil(res)
    assert.are.equal(500, err.status)
    local v = partial.value
    -- every input is accounted for exactly once
    local seen, n = {}, 0
    for _, list in ipairs { v.succeeded, v.failed } do
      for _, e in ipairs(list) do
        assert.is_nil(seen[e.input])
        seen[e.input], n = true, n + 1
      end
    end
    -- less the repeated 10.0.0.5, and "2001:db8::1" given in two spellings
    assert.are.equal(#ips - 2, n + #v.pending + #v.unsent)
    for _, ip in ipairs(v.pending) do assert.is_nil(seen[ip]) end
    local left = set_of(H.pluck(fake:zone(A), "origin-ip"))
    for _, ip in ipairs(v.unsent) do -- never sent: still in the zone, and in no other list
      if set_of(present)[ip] then assert.is_true(left[ip]) end
      for _, p in ipairs(v.pending) do assert.are_not.equal(p, ip) end
    end
    -- what the server deleted is exactly what succeeded
    for _, e in ipairs(v.succeeded) do assert.is_nil(left[e.origin_ip]) end
    for _, ip in ipairs(v.pending) do
      if set_of(present)[ip] then assert.is_true(left[ip]) end
    end
    -- pending (sent, fate unknown) and unsent are in input order: pending holds the failed
    -- batch (a 500 may have been applied), unsent the batches never started
    local pos = {}
    for i, ip in ipairs(ips) do pos[ip] = pos[ip] or i end
    for i = 2, #v.pending do assert.is_true(pos[v.pending[i - 1]] < pos[v.pending[i]]) end
    for i = 2, #v.unsent do assert.is_true(pos[v.unsent[i - 1]] < pos[v.unsent[i]]) end
    local reqs = fake:api_requests()
    assert.is_true(#reqs < 11, "batches kept starting after the failure")
    assert.are.equal(100, #v.pending)
    assert.is_true(#v.unsent > 0)
    assert.are.equal(#reqs, partial.requests)
  end)

  it("journals every batch in flight, so restore brings the zone back", function()
    local ips, present = input()
    fake:set_zone(A, mappings(present))
    local path = os.tmpname()
    fake:fault { skip = 5, status = 503, match = { method = "DELETE" } }
    local _, err = client.cache.origin_cloud_regions.bulk_delete { zone_id = A, ips = ips,
      concurrency = 4, journal = path }
    assert.are.equal(503, err.status)
    local intents, outcomes = {}, {}
    for line in io.lines(path) do
      local r = cjson.decode(line)
      if r.phase == "intent" then intents[r.batch] = true else outcomes[r.batch] = true end
    end
    for b in pairs(intents) do assert.is_true(outcomes[b], "batch " .. b .. " has no outcome") end
    local restored = assert(cloudflare.journal.restore { path = path, zone_id = A, client = client })
    assert.is_true(#restored.value.succeeded > 0)
    assert.are.equal(#present, #fake:zone(A))
    os.remove(path)
  end)
end)

describe("the shared rate budget and in-flight bound", function()
  local fake

  setup(function()
    fake = H.start_fake { "--latency", "0.02", "--rate-limit", "6/1" }
  end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, {})
  end)

  -- #timing: how close to the window's edge the requests arrive depends on the machine's
  -- speed, so memcheck runs (spec/valgrind/run.sh) leave it out
  it("two clients of one token, in concurrent tasks, never exceed the API's limit #timing", function()
    local waits = 0
    local opts = { rate_limit = { requests = 6, per = 1 }, max_retries = 0,
      on_wait = function() waits = waits + 1 end }
    local c1, c2 = fake:client(opts), fake:client(opts)
    local fns = {}
    for i = 1, 16 do
      local c = i % 2 == 0 and c1 or c2
      fns[i] = function() return c.cache.origin_cloud_regions.list { zone_id = ZONE } end
    end
    local results, errs = cloudflare.parallel(fns, { concurrency = 16 })
    for i = 1, 16 do
      assert.is_nil(errs[i])
      assert.is_table(results[i])
    end
    local st = fake:stats()
    assert.are.equal(16, st.requests)
    assert.is_nil(st.by_status["429"])
    assert.is_true(waits > 0)
    c1:close()
    c2:close()
  end)

  it("max_in_flight bounds the requests in flight across every task of the client", function()
    local c = fake:client { max_in_flight = 2, rate_limit = { requests = 100, per = 1 } }
    fake:options { rate_limit = { requests = 100, per = 1 } }
    fake:clear_stats()
    local fns = {}
    for i = 1, 6 do fns[i] = function() return c.cache.origin_cloud_regions.list { zone_id = ZONE } end end
    local _, errs = cloudflare.parallel(fns, { concurrency = 6 })
    assert.are.same({}, errs)
    assert.are.equal(2, fake:stats().peak_in_flight)
    assert.has_error(function() fake:client { max_in_flight = 0 } end,
      "cloudflare.new: max_in_flight must be a whole number >= 1")
    c:close()
  end)
end)

describe("Client:start and Transfer", function()
  local fake, client

  setup(function()
    fake = H.start_fake { "--latency", "0.05" }
    client = fake:client()
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)

  it("runs raw requests at once and finishes them in any order", function()
    fake:set_zone(ZONE, mappings(addresses(2)))
    fake:clear_stats()
    local path = "/zones/" .. ZONE .. "/cache/origin_cloud_regions"
    local a = client:start("GET", path)
    local b = client:start("GET", path .. "/10.0.0.1")
    assert.matches("^cloudflare.Transfer %(running%)", tostring(a))
    local rb, ib = b:finish()
    local ra = a:finish()
    assert.are.equal(2, #ra.value)
    assert.are.equal("10.0.0.1", rb.value["origin-ip"])
    assert.are.equal(200, ib.status)
    assert.is_true(a:done())
    assert.are.equal(2, fake:stats().peak_in_flight)
    assert.has_error(function() a:finish() end, "the result of this transfer was already taken")
  end)

  it("keeps its request going after the client is closed", function()
    local c = fake:client()
    local x = c:start("GET", "/zones/" .. ZONE .. "/cache/origin_cloud_regions")
    c:close()
    local res = x:finish()
    assert.is_table(res)
    assert.has_error(function() c:start("GET", "/x") end, "attempt to use a closed cloudflare.Client")
  end)
end)

describe("cfrun and tasks", function()
  local fake

  setup(function() fake = H.start_fake { "--latency", "0.05" } end)
  teardown(function() fake:stop() end)

  local function run(code)
    return H.run({ "-e", code }, { env = { CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN, Z = ZONE } })
  end

  it("waits for every task before it exits", function()
    fake:set_zone(ZONE, mappings(addresses(2)))
    fake:clear_requests()
    local out, err, code = run([[
      cloudflare.spawn(function()
        local r = cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = os.getenv("Z"), ips = { "10.0.0.1" } }
        print("deleted", #r.value.succeeded)
      end)
      print("main done")]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\ndeleted\t1\n", out)
    assert.are.equal(1, #fake:zone(ZONE))
  end)

  it("reports a task's error that nobody waited for, and exits 1", function()
    local _, err, code = run([[cloudflare.spawn(function() cloudflare.sleep(0.01) error("lost task") end)]])
    assert.are.equal(1, code)
    assert.matches("lost task", err)
  end)

  it("aborts every request in flight on SIGTERM, journaling each, and exits 143", function()
    fake:set_zone(ZONE, mappings(addresses(400)))
    fake:options { latency = 5 }
    local journal, out = os.tmpname(), os.tmpname()
    local script = H.tempfile([[
      local ips = {}
      for i = 1, 400 do ips[i] = string.format("10.0.%d.%d", i // 256, i % 256) end
      cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = os.getenv("Z"), ips = ips, concurrency = 4 }]])
    local cmd = string.format("env CLOUDFLARE_BASE_URL=%s CLOUDFLARE_API_TOKEN=%s Z=%s CFRUN_JOURNAL=%s "
      .. "%s --job %s >%s 2>&1 & echo $!", fake.base_url, H.TOKEN, ZONE, journal, H.shell_quote(H.CFRUN),
      script, out)
    local p = io.popen(cmd)
    local pid = p:read("l")
    p:close()
    -- the listing first: 1 request on v1, 4 pages on v2 (page 1, then 3 at once)
    local deadline = require("socket").gettime() + (H.V1 and 10 or 20)
    while fake:stats().in_flight < 4 and require("socket").gettime() < deadline do
      require("socket").sleep(0.05)
    end
    assert.are.equal(4, fake:stats().in_flight) -- the listing done, four batches held
    os.execute("kill -TERM " .. pid)
    while H.alive(pid) and require("socket").gettime() < deadline do require("socket").sleep(0.02) end
    assert.is_false(H.alive(pid))
    local f = io.open(out)
    local text = f:read("a")
    f:close()
    assert.matches('"status":143', text)
    local intents, interrupted = {}, {}
    for line in io.lines(journal) do
      local r = cjson.decode(line)
      if r.phase == "intent" then intents[#intents + 1] = r.batch end
      if r.phase == "outcome" and r.error and r.error.kind == "interrupted" then
        interrupted[#interrupted + 1] = r.batch
      end
    end
    table.sort(interrupted)
    assert.are.same({ 1, 2, 3, 4 }, intents)
    assert.are.same({ 1, 2, 3, 4 }, interrupted)
    fake:options { latency = 0.05 }
    os.remove(journal)
    os.remove(out)
    os.remove(script)
  end)
end)

describe("async module", function()
  it("is what cloudflare exports", function()
    assert.are.equal(async.spawn, cloudflare.spawn)
    assert.are.equal(async.parallel, cloudflare.parallel)
    assert.are.equal(async.sleep, cloudflare.sleep)
    assert.are.equal(async.wait, cloudflare.wait)
  end)
end)
