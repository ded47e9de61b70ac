-- spec/journal_spec.lua: lua/cloudflare/journal.lua and runtime's journal primitive: intents
-- on disk before requests, outcomes after, restore, and the proof that nothing is lost: a
-- journal torn by a full disk, overlapping deletes of one IP (two tasks, two processes), and
-- a cfrun killed with SIGKILL at random moments of a 1,000-IP delete, then restored.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local ZONE = H.ZONE

local function read_journal(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = cjson.decode(line) end
  return out
end

local function mappings(n, prefix)
  local out = {}
  local vendors = { { "aws", "us-east-1" }, { "gcp", "us-central1" }, { "azure", "eastus" }, { "oci", "us-ashburn-1" } }
  for i = 1, n do
    local v = vendors[i % 4 + 1]
    out[i] = { string.format("%s.%d.%d", prefix or "10.7", i // 256, i % 256), v[2], v[1] }
  end
  return out
end

-- The zone as a sorted list of "ip vendor region": restore appends, so order is not compared.
local function snapshot(fake)
  local out = {}
  for i, m in ipairs(fake:zone(ZONE)) do out[i] = m["origin-ip"] .. " " .. m.vendor .. " " .. m.region end
  table.sort(out)
  return out
end

-- The zone against `before` (a snapshot): the mappings missing and those extra, with a
-- message for an assertion.
local function zone_diff(fake, before)
  local seen, missing, extra = {}, {}, {}
  for _, m in ipairs(snapshot(fake)) do seen[m] = true end
  for _, m in ipairs(before) do
    if not seen[m] then missing[#missing + 1] = m end
    seen[m] = nil
  end
  for m in pairs(seen) do extra[#extra + 1] = m end
  table.sort(extra)
  return { missing = missing, extra = extra }
end
local NO_DIFF = { missing = {}, extra = {} }

local function slurp(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A cfrun script deleting the IPs listed in $IPS (with $CFRUN_JOURNAL, $CONC batches at once),
-- which prints its error kind (or "ok") and how many it deleted.
local DELETER = [[
  local ips = {}
  for line in io.lines(os.getenv("IPS")) do ips[#ips + 1] = line end
  local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete{
    zone_id = os.getenv("ZONE"), ips = ips, concurrency = tonumber(os.getenv("CONC") or "4") }
  print((err and err.kind or "ok") .. " " .. #(res or partial).value.succeeded)
]]

-- Starts cfrun on `script` in the background, with `env` added to the environment, and returns
-- its pid. opts.shell: bash code run before (a file size limit); opts.out: where stdout and
-- stderr go.
local function start_cfrun(script, env, opts)
  opts = opts or {}
  local sets = {}
  for k, v in pairs(env) do sets[#sets + 1] = k .. "=" .. H.shell_quote(v) end
  local cmd = string.format("%sexec env %s %s %s >%s 2>&1", opts.shell or "", table.concat(sets, " "),
    H.shell_quote(H.CFRUN), H.shell_quote(script), opts.out or "/dev/null")
  local pidfile = os.tmpname()
  os.execute(string.format("bash -c %s & echo $! > %s", H.shell_quote(cmd), pidfile))
  local pid = slurp(pidfile):match("%d+")
  os.remove(pidfile)
  return pid
end

-- Waits until cond() is true (at most `limit` seconds, then fails the spec with `what`).
local function wait_until(cond, what, limit)
  local deadline = socket.gettime() + (limit or 30) * H.SLOW
  while not cond() do
    assert(socket.gettime() < deadline, "timed out waiting: " .. what)
    socket.sleep(0.005)
  end
end

-- The phases of a journal's records as "<writer>:<phase>", writers named a, b, ... in the order
-- they first appear.
local function interleaving(path)
  local names, n, out = {}, 0, {}
  for i, r in ipairs(read_journal(path)) do
    if not names[r.call] then
      n = n + 1
      names[r.call] = string.char(96 + n)
    end
    out[i] = names[r.call] .. ":" .. r.phase
  end
  return out
end

-- The fixture of the describe blocks below: one fake per block, a client without retries,
-- before each test a zone of 150 mappings (snapshotted) and a fresh journal path; `set`
-- receives fake, client, path and the snapshot. keep_file: the path exists (empty) rather
-- than not at all.
local function journal_fixture(set, keep_file)
  local fake, client
  setup(function()
    fake = H.start_fake()
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  local path
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, mappings(150))
    local before = snapshot(fake)
    fake:clear_requests()
    path = os.tmpname()
    if not keep_file then os.remove(path) end
    set(fake, client, path, before)
  end)
  after_each(function() os.remove(path) end)
end

describe("the journal", function()
  local fake, client, path
  journal_fixture(function(f, c, p) fake, client, path = f, c, p end)

  it("records each batch's intent, with vendor and region, and its outcome", function()
    local ips = {}
    for i, m in ipairs(mappings(150)) do ips[i] = m[1] end
    ips[#ips + 1] = "198.51.100.200"
    local res = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips,
      journal = path, concurrency = 1 })
    -- the listing (150 mappings: one request on v1, two pages on v2), then two batches
    assert.are.equal(H.V1 and 3 or 4, res.requests)
    local j = read_journal(path)
    assert.are.same({ "intent", "outcome", "intent", "outcome" }, H.pluck(j, "phase"))
    assert.are.equal("bulk_delete", j[1].op)
    assert.are.equal(ZONE, j[1].zone_id)
    assert.are.equal(j[1].call, j[4].call)
    assert.are.equal(100, #j[1].items)
    assert.are.same({ ip = "10.7.0.1", region = "us-central1", vendor = "gcp" }, j[1].items[1])
    assert.are.equal(100, #j[2].succeeded)
    assert.are.same({ ip = "10.7.0.1", region = "us-central1", vendor = "gcp" }, j[2].succeeded[1])
    assert.are.equal(50, #j[4].succeeded)
    assert.are.same({ { ip = "198.51.100.200", error = "mapping not found" } }, j[4].failed)
    assert.is_string(j[1].ts)
    -- the file holds origin addresses: only its owner may read it
    local p = io.popen("stat -c %a " .. path)
    assert.are.equal("600", p:read("l"))
    p:close()
  end)

  it("CFRUN_JOURNAL sets it for every call; journal = false switches it off", function()
    local out, err, code = H.run({ "-e", [[
      local o = cloudflare.cache.origin_cloud_regions
      assert(o.delete{ zone_id = os.getenv("ZONE"), ip = "10.7.0.1" })
      assert(o.edit{ zone_id = os.getenv("ZONE"), ip = "10.7.0.2", region = "us-west-2", vendor = "aws" })
      assert(o.bulk_delete{ zone_id = os.getenv("ZONE"), ips = { "10.7.0.3" }, journal = false })
      print("done")
    ]] }, { env = { ZONE = ZONE, CFRUN_JOURNAL = path, CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.are.equal("done\n", out)
    local j = read_journal(path)
    assert.are.same({ "delete", "delete", "edit", "edit" }, H.pluck(j, "op"))
    assert.are.same({ ip = "10.7.0.1", region = "us-central1", vendor = "gcp" }, j[1].items[1])
    assert.are.same({ ip = "10.7.0.1", region = "us-central1", vendor = "gcp" }, j[2].succeeded[1])
    assert.are.same({ ip = "10.7.0.2", region = "us-west-2", vendor = "aws" }, j[3].items[1])
  end)

  it("records both attempts when a response is lost and the batch is retried", function()
    local c = fake:client { max_retries = 1 }
    fake:fault { drop = "after", match = { method = "DELETE" } }
    local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
      ips = { "10.7.0.1", "10.7.0.2" }, journal = path })
    assert.are.same({ true, true }, H.pluck(res.value.failed, "already_absent"))
    local j = read_journal(path)
    assert.are.same({ "intent", "outcome", "outcome" }, H.pluck(j, "phase"))
    assert.are.equal("network", j[2].error.kind)
    assert.are.equal(1, j[2].attempt)
    assert.are.equal(2, j[3].attempt)
    assert.are.same({ true, true }, H.pluck(j[3].failed, "already_absent"))
    -- and restore knows they were deleted, with what they were
    assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = c })
    assert.are.equal(150, #fake:zone(ZONE))
    c:close()
  end)

  it("never sends a batch whose intent could not be written", function()
    local res, err, partial = client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
      ips = { "10.7.0.1" }, journal = "/nonexistent-dir/journal" }
    assert.is_nil(res)
    assert.are.equal("journal", err.kind)
    assert.matches("cannot open journal /nonexistent%-dir/journal", err.message)
    -- certainly not applied: unsent, not pending
    assert.are.same({ "10.7.0.1" }, partial.value.unsent)
    assert.are.same({}, partial.value.pending)
    for _, r in ipairs(fake:requests()) do assert.are_not.equal("DELETE", r.method) end
  end)

  it("restore re-creates what was deleted, is idempotent, and honours since", function()
    local before = snapshot(fake)
    local ips = {}
    for i, m in ipairs(mappings(120)) do ips[i] = m[1] end
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips, journal = path })
    assert.are.equal(30, #fake:zone(ZONE))
    socket.sleep(0.01) -- journal times have millisecond resolution
    local later = require("cloudflare.core").timestamp()
    local none = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, since = later, client = client })
    assert.are.equal(0, none.requests)
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.equal(120, #res.value.succeeded)
    assert.are.equal(120, res.restore.candidates)
    assert.are.equal(0, res.restore.present)
    assert.are.same(before, snapshot(fake))
    fake:clear_requests()
    res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    -- a second run finds every candidate in the zone again and sends nothing but the listing
    assert.are.equal(0, #res.value.succeeded)
    assert.are.equal(120, res.restore.present)
    for _, r in ipairs(fake:api_requests()) do assert.are.equal("GET", r.method) end
    assert.are.same(before, snapshot(fake))
    local dry = assert(cloudflare.journal.restore { path = path, zone_id = "ffff", client = client })
    assert.are.equal(0, dry.restore.candidates)
  end)

  it("restore undoes a journaled bulk_update: puts back what it replaced, deletes what it created", function()
    local before = snapshot(fake)
    local ocr = client.cache.origin_cloud_regions
    -- 10.7.0.1 is gcp/us-central1, 10.7.0.2 azure/eastus, 10.7.0.3 oci/us-ashburn-1
    assert(ocr.bulk_update { zone_id = ZONE, journal = path, items = {
      { ip = "10.7.0.1", vendor = "aws", region = "us-west-2" },
      { ip = "10.7.0.2", vendor = "azure", region = "westeurope" },
      { ip = "10.7.0.3", vendor = "oci", region = "eu-frankfurt-1" },
      { ip = "10.9.0.1", vendor = "gcp", region = "us-east1" }, -- created by the call
      { ip = "10.9.0.2", vendor = "gcp", region = "us-east1" },
    } })
    -- a second journaled write of 10.7.0.1: the undo goes back to before the first
    assert(ocr.bulk_update { zone_id = ZONE, journal = path, items = {
      { ip = "10.7.0.1", vendor = "aws", region = "eu-west-1" } } })
    local intent = read_journal(path)[1]
    assert.are.same({ region = "us-central1", vendor = "gcp" }, intent.items[1].before)
    assert.are.equal(false, intent.items[4].before)
    -- someone else changes 10.7.0.2 since, and deletes 10.9.0.2: both left as they are
    assert(ocr.bulk_update { zone_id = ZONE, journal = false, items = {
      { ip = "10.7.0.2", vendor = "azure", region = "northeurope" } } })
    assert(ocr.bulk_delete { zone_id = ZONE, journal = false, ips = { "10.9.0.2" } })
    fake:clear_requests()

    local dry = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client, dry_run = true })
    for _, r in ipairs(fake:api_requests()) do assert.are.equal("GET", r.method) end
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    local function plan(x)
      local out = {}
      for _, e in ipairs(x.value.succeeded) do
        out[#out + 1] = e.origin_ip .. " " .. e.vendor .. " " .. e.region .. (e.deleted and " deleted" or "")
      end
      return out
    end
    assert.are.same({ "10.7.0.1 gcp us-central1", "10.7.0.3 oci us-ashburn-1", "10.9.0.1 gcp us-east1 deleted" },
      plan(res))
    assert.are.same(plan(res), plan(dry)) -- the dry run said exactly what the real run did
    assert.are.same({ "10.7.0.2" }, res.restore.changed_ips)
    assert.are.same({ "10.9.0.2" }, res.restore.present_ips) -- absent, as before the journal
    assert.are.equal(1, res.restore.deleted)
    local diff = zone_diff(fake, before)
    assert.are.same({ missing = { "10.7.0.2 azure eastus" }, extra = { "10.7.0.2 azure northeurope" } }, diff)
    -- idempotent: a second run sends nothing but the listing
    fake:clear_requests()
    res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.same({}, res.value.succeeded)
    for _, r in ipairs(fake:api_requests()) do assert.are.equal("GET", r.method) end
  end)

  it("scripts/restore.lua wraps it", function()
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "10.7.0.5", "10.7.0.6" },
      journal = path })
    local out, err, code = H.run({ H.SOURCE_DIR .. "/scripts/restore.lua", "--zone", ZONE, path },
      { env = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.matches("succeeded%s+10%.7%.0%.5%s+gcp%s+us%-central1", out)
    assert.matches("2 restored, 0 failed, 0 pending, 0 unsent; 0 already present", out)
    -- run again, it finds both present and says so
    out, err, code = H.run({ H.SOURCE_DIR .. "/scripts/restore.lua", "--zone", ZONE, path },
      { env = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.matches("0 restored, 0 failed, 0 pending, 0 unsent; 2 already present", out)
    assert.are.equal(150, #fake:zone(ZONE))
  end)
end)

describe("the journal's writers and its torn lines", function()
  local fake, client, path
  journal_fixture(function(f, c, p) fake, client, path = f, c, p end, true)

  -- descriptors this process holds open on the journal
  local function open_fds()
    local pid = slurp("/proc/self/stat"):match("^%d+")
    local p = io.popen("ls -l /proc/" .. pid .. "/fd")
    local n = 0
    for line in p:lines() do
      if line:sub(-#path - 4) == " -> " .. path then n = n + 1 end
    end
    p:close()
    return n
  end

  it("a writer closes once (close, <close>, an error), shares one descriptor, and refuses writes after", function()
    local journal = cloudflare.journal
    assert.are.equal(0, open_fds())
    local w1 = assert(journal.open(path, "bulk_delete", ZONE))
    local w2 = assert(journal.open(path, "bulk_delete", ZONE))
    assert.are.equal(1, open_fds())
    assert(w1:write { phase = "intent", batch = 1, items = journal.items({ "10.7.0.1" }) })
    w1:close()
    w1:close()
    assert.has_error(function() w1:write { phase = "intent", batch = 2 } end,
      "cloudflare.journal: attempt to write to a closed writer")
    do
      local w3 <close> = assert(journal.open(path, "bulk_delete", ZONE))
      assert(w3:write { phase = "intent", batch = 1, items = journal.items({ "10.7.0.2" }) })
    end
    assert.are.equal(1, open_fds()) -- w2 still holds it
    w2:close()
    assert.are.equal(0, open_fds())
    local ok = pcall(function()
      local w <close> = assert(journal.open(path, "bulk_delete", ZONE))
      error("raised while " .. w.call .. " was held")
    end)
    assert.is_false(ok)
    assert.are.equal(0, open_fds())
    assert.are.same({ "intent", "intent" }, H.pluck(read_journal(path), "phase"))
  end)

  it("ends a torn last line before the next record, so it costs only itself", function()
    local torn = '{"v":1,"phase":"intent","op":"bulk_delete","zone_id":"' .. ZONE
      .. '","items":[{"ip":"10.7.0.9","reg'
    local f = assert(io.open(path, "w"))
    f:write(torn)
    f:close()
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "10.7.0.1" },
      journal = path })
    local lines = {}
    for line in io.lines(path) do lines[#lines + 1] = line end
    assert.are.equal(3, #lines)
    assert.are.equal(torn, lines[1])
    local records, bad = cloudflare.journal.read(path)
    assert.are.equal(1, bad)
    assert.are.same({ "intent", "outcome" }, H.pluck(records, "phase"))
    -- a whole last line gets no newline more
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "10.7.0.2" },
      journal = path })
    assert.are.equal(torn .. "\n", slurp(path):sub(1, #torn + 1))
    assert.is_nil(slurp(path):find("\n\n", 1, true))
    assert.are.equal(5, select(2, slurp(path):gsub("\n", "")))
    -- and restore finds both deletions
    local before = mappings(150)
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.same({ "10.7.0.1", "10.7.0.2" }, H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.equal(#before, #fake:zone(ZONE))
  end)
end)

describe("restore's accounting of claims", function()
  local fake, client, path, before
  journal_fixture(function(f, c, p, b) fake, client, path, before = f, c, p, b end)

  it("two overlapping deletes of one IP from two tasks: the later 'not found' keeps the other's deletion", function()
    -- the first delete to arrive is applied last, after the second one took the IP
    fake:fault { match = { method = "DELETE" }, delay = 0.5 * H.SLOW }
    local o = client.cache.origin_cloud_regions
    local a = cloudflare.spawn(function()
      return o.bulk_delete { zone_id = ZONE, ips = { "10.7.0.1", "10.7.0.2" }, journal = path }
    end)
    local b = cloudflare.spawn(function()
      cloudflare.sleep(0.2) -- once a's request waits at the server
      return o.bulk_delete { zone_id = ZONE, ips = { "10.7.0.1", "10.7.0.3" }, journal = path }
    end)
    local ra, rb = assert(a:wait()), assert(b:wait())
    assert.are.same({ "10.7.0.1", "10.7.0.3" }, H.pluck(rb.value.succeeded, "origin_ip"))
    assert.are.same({ "10.7.0.2" }, H.pluck(ra.value.succeeded, "origin_ip"))
    assert.are.same({ "10.7.0.1" }, H.pluck(ra.value.failed, "origin_ip"))
    assert.are.same({ "a:intent", "b:intent", "b:outcome", "a:outcome" }, interleaving(path))
    assert.are.equal(147, #fake:zone(ZONE))
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.equal(3, res.restore.candidates)
    assert.are.same(NO_DIFF, zone_diff(fake, before))
  end)

  it("two overlapping deletes of one IP from two processes sharing CFRUN_JOURNAL", function()
    -- a's DELETE is held long enough for b to start and send its own (longer under memcheck)
    fake:fault { match = { method = "DELETE" }, delay = 1.5 * H.SLOW }
    local script = H.tempfile(DELETER)
    local ips_a, ips_b = H.tempfile("10.7.0.1\n10.7.0.2\n"), H.tempfile("10.7.0.1\n10.7.0.3\n")
    local out_a = os.tmpname()
    finally(function()
      for _, p in ipairs { script, ips_a, ips_b, out_a } do os.remove(p) end
    end)
    local env = { ZONE = ZONE, CFRUN_JOURNAL = path, CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN }
    env.IPS = ips_a
    local pid = start_cfrun(script, env, { out = out_a })
    -- b starts once a's intent is on disk (its request then waits at the server)
    wait_until(function() return (slurp(path) or ""):find('"intent"', 1, true) end, "a's intent")
    env.IPS = ips_b
    local out, err, code = H.run({ script }, { env = env })
    assert.are.equal(0, code, err)
    assert.are.equal("ok 2\n", out)
    wait_until(function() return not H.alive(pid) end, "a to finish")
    assert.are.equal("ok 1\n", slurp(out_a))
    assert.are.same({ "a:intent", "b:intent", "b:outcome", "a:outcome" }, interleaving(path))
    assert.are.equal(147, #fake:zone(ZONE))
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.equal(3, #res.value.succeeded)
    assert.are.same(NO_DIFF, zone_diff(fake, before))
  end)

  it("a batch refused as a whole deleted nothing: another party's deletion is not undone", function()
    -- what the journal keeps of a refusal: error.unsent, from the error cfrun returned
    fake:fault { match = { method = "DELETE" }, status = 403 }
    local _, err = client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
      ips = { "10.7.0.1", "10.7.0.2" }, journal = path }
    assert.are.equal(403, err.status)
    local j = read_journal(path)
    assert.are.same({ "intent", "outcome" }, H.pluck(j, "phase"))
    assert.is_true(j[2].error.unsent, "err.unsent must reach the journal")
    assert.is_nil(j[2].error.retryable)
    -- then 10.7.0.1 is deleted outside cfrun: restore has nothing of ours to undo
    assert(client.cache.origin_cloud_regions.delete { zone_id = ZONE, ip = "10.7.0.1", journal = false })
    local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.equal(0, res.restore.candidates)
    assert.are.equal(149, #fake:zone(ZONE))
  end)

  it("the claims, record by record: who deleted, who only failed, what was re-created", function()
    -- what a dry restore of these records (as journal lines) would re-create; their IPs are
    -- not in the zone
    local function deleted(records)
      local f = assert(io.open(path, "w"))
      for _, r in ipairs(records) do
        r.v, r.zone_id, r.ts = 1, ZONE, "2026-01-01T00:00:00.000Z"
        f:write(cjson.encode(r), "\n")
      end
      f:close()
      local res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client,
        dry_run = true })
      assert.are.equal(#records, res.restore.records)
      local out = {}
      for i, e in ipairs(res.value.succeeded) do out[i] = { ip = e.origin_ip, region = e.region, vendor = e.vendor } end
      return out
    end
    local function intent(call, batch, ...)
      local items = {}
      for i, ip in ipairs { ... } do items[i] = { ip = ip, region = "r-" .. call, vendor = "aws" } end
      return { op = "bulk_delete", call = call, batch = batch, phase = "intent", items = items }
    end
    local function outcome(call, batch, attempt, t)
      local r = { op = t.op or "bulk_delete", call = call, batch = batch, phase = "outcome",
        attempt = attempt, error = t.error, succeeded = t.succeeded, failed = t.failed }
      return r
    end
    local function ips(list) return H.pluck(list, "ip") end
    local X = "192.0.2.1"
    local gone = { { ip = X, region = "r-a", vendor = "aws" } }
    local not_found = { { ip = X, error = "mapping not found" } }
    -- a's own first-attempt failure withdraws a's claim, never b's
    assert.are.same({ { ip = X, region = "r-b", vendor = "aws" } }, deleted {
      intent("a", 1, X), intent("b", 1, X),
      outcome("b", 1, 1, { succeeded = { { ip = X, region = "r-b", vendor = "aws" } }, failed = {} }),
      outcome("a", 1, 1, { succeeded = {}, failed = not_found }) })
    -- alone, it withdraws the only claim
    assert.are.same({}, deleted { intent("a", 1, X), outcome("a", 1, 1, { succeeded = {}, failed = not_found }) })
    -- after a lost response the retry's "not found" may hide our own deletion: kept
    assert.are.same(gone, deleted { intent("a", 1, X),
      outcome("a", 1, 1, { error = { kind = "network", retryable = true } }),
      outcome("a", 1, 2, { succeeded = {}, failed = { { ip = X, error = "x", already_absent = true } } }) })
    -- ... unless every earlier attempt was certainly not applied
    assert.are.same({}, deleted { intent("a", 1, X),
      outcome("a", 1, 1, { error = { kind = "network", unsent = true, retryable = true } }),
      outcome("a", 1, 2, { succeeded = {}, failed = { { ip = X, error = "x", already_absent = true } } }) })
    -- an unsent attempt that ends the call withdraws the claim; one the transport may retry
    -- does not (a SIGKILL during the next attempt leaves no record of it)
    assert.are.same({}, deleted { intent("a", 1, X),
      outcome("a", 1, 1, { error = { kind = "api", status = 403, unsent = true } }) })
    assert.are.same(gone, deleted { intent("a", 1, X),
      outcome("a", 1, 1, { error = { kind = "network", unsent = true, retryable = true } }) })
    -- an unsent attempt after one that may have been applied withdraws nothing
    assert.are.same(gone, deleted { intent("a", 1, X),
      outcome("a", 1, 1, { error = { kind = "timeout", retryable = true } }),
      outcome("a", 1, 2, { error = { kind = "api", status = 403, unsent = true } }) })
    -- a successful write re-creates it: earlier claims are void; a deletion after it counts
    local written = outcome("w", 1, 1, { op = "bulk_update",
      succeeded = { { ip = X, region = "new", vendor = "gcp" } } })
    assert.are.same({}, deleted { intent("a", 1, X), outcome("a", 1, 1, { succeeded = gone, failed = {} }), written })
    assert.are.same({ { ip = X, region = "r-b", vendor = "aws" } }, deleted { intent("a", 1, X), written,
      intent("b", 1, X) })
    -- the region restored is the one journaled last by a claiming call
    assert.are.same({ X, "192.0.2.2" }, ips(deleted { intent("a", 1, X, "192.0.2.2"), intent("b", 1, X) }))
    assert.are.equal("r-b", deleted { intent("a", 1, X), intent("b", 1, X) }[1].region)
    -- batches of one call are claims of their own
    assert.are.same({ X }, ips(deleted { intent("a", 1, X), intent("a", 2, X),
      outcome("a", 2, 1, { succeeded = {}, failed = not_found }) }))
  end)

  it("the dry run reports exactly what the real run does; neither touches a mapping re-created since", function()
    local ips = {}
    for i, m in ipairs(mappings(120)) do ips[i] = m[1] end
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips, journal = path })
    -- 10.7.0.7 (oci us-ashburn-1) is re-created outside cfrun, elsewhere: a newer state
    local now = {}
    for i, m in ipairs(fake:zone(ZONE)) do now[i] = { m["origin-ip"], m.region, m.vendor } end
    now[#now + 1] = { "10.7.0.7", "us-west-2", "aws" }
    fake:set_zone(ZONE, now)
    local expected = {}
    for i, m in ipairs(before) do
      expected[i] = m == "10.7.0.7 oci us-ashburn-1" and "10.7.0.7 aws us-west-2" or m
    end
    table.sort(expected)
    fake:clear_requests()
    local dry = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client, dry_run = true })
    for _, r in ipairs(fake:api_requests()) do assert.are.equal("GET", r.method) end
    assert.is_true(dry.dry_run)
    assert.are.equal(31, #fake:zone(ZONE))
    assert.are.equal(120, dry.restore.candidates)
    assert.are.equal(1, dry.restore.present)
    assert.are.same({ "10.7.0.7" }, dry.restore.present_ips)
    assert.are.equal(119, #dry.value.succeeded)
    local real = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    local function rows(res)
      local out = {}
      for i, e in ipairs(res.value.succeeded) do out[i] = e.origin_ip .. " " .. e.vendor .. " " .. e.region end
      return out
    end
    assert.are.same(rows(dry), rows(real))
    assert.are.same(dry.restore, real.restore)
    assert.are.same({}, real.value.failed)
    assert.are.same(expected, snapshot(fake))
  end)

  it("a restore whose listing fails sends nothing: every candidate unsent", function()
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
      ips = { "10.7.0.1", "10.7.0.2", "10.7.0.3" }, journal = path })
    fake:clear_requests()
    fake:fault { match = { method = "GET" }, status = 403 }
    local res, err, partial = cloudflare.journal.restore { path = path, zone_id = ZONE, client = client }
    assert.is_nil(res)
    assert.are.equal(403, err.status)
    assert.are.same({ "10.7.0.1", "10.7.0.2", "10.7.0.3" }, partial.value.unsent)
    assert.are.same({}, partial.value.succeeded)
    assert.are.equal(3, partial.restore.candidates)
    assert.are.same({ "GET" }, H.pluck(fake:api_requests(), "method"))
    assert.are.equal(147, #fake:zone(ZONE))
  end)
end)

describe("a journal torn by a full disk", function()
  it("costs only the torn line: disk full, space freed, SIGKILL, and restore brings every mapping back", function()
    local fake = H.start_fake()
    local client = fake:client { max_retries = 0 }
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    -- a real full disk where a tmpfs can be mounted (ENOSPC); else a file size limit (EFBIG),
    -- which tears a write the same way
    local mounted = os.execute("mount -t tmpfs -o size=64k tmpfs " .. dir .. " 2>/dev/null")
    local script = H.tempfile(DELETER)
    local all = mappings(300, "10.8")
    local first, rest = {}, {}
    for i, m in ipairs(all) do
      if i <= 200 then first[#first + 1] = m[1] end
      if i > 100 then rest[#rest + 1] = m[1] end
    end
    local ips1, ips2 = H.tempfile(table.concat(first, "\n")), H.tempfile(table.concat(rest, "\n"))
    local out1, pid = os.tmpname(), nil
    finally(function()
      if pid then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
      client:close()
      fake:stop()
      if mounted then os.execute("umount " .. dir) end
      os.execute("rm -rf " .. dir)
      for _, p in ipairs { script, ips1, ips2, out1 } do os.remove(p) end
    end)
    local journal = dir .. "/journal"
    fake:set_zone(ZONE, all)
    local before = snapshot(fake)
    local env = { ZONE = ZONE, CFRUN_JOURNAL = journal, CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN, IPS = ips1, CONC = "1" }
    -- 12 KiB left: room for the first batch's intent and about its outcome, not the next one
    local limit
    if mounted then
      assert(os.execute("dd if=/dev/zero of=" .. dir .. "/filler bs=1024 count=52 2>/dev/null"))
    else
      limit = "ulimit -f 12; trap '' XFSZ; " -- KiB; the signal ignored, write(2) fails instead
    end
    pid = start_cfrun(script, env, { shell = limit, out = out1 })
    wait_until(function() return not H.alive(pid) end, "the first run to end")
    -- it stopped at the journal: batch 1 deleted, batch 2 never sent
    assert.are.equal("journal 100\n", slurp(out1))
    assert.are.equal(200, #fake:zone(ZONE))
    local text = slurp(journal)
    assert.are_not.equal("\n", text:sub(-1), "the full disk must have torn the last line")

    -- space freed; a second run deletes the rest, two batches at once, and is killed while
    -- the server still holds both answers (it applies a request on arrival)
    if mounted then os.remove(dir .. "/filler") end
    env.IPS, env.CONC = ips2, "4"
    fake:options { latency = 0.5 }
    pid = start_cfrun(script, env, { out = "/dev/null" })
    wait_until(function() return not H.alive(pid) or #fake:zone(ZONE) == 0 end, "the second run's deletions")
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    wait_until(function() return not H.alive(pid) end, "the kill")
    pid = nil
    assert.are.equal(0, #fake:zone(ZONE), "the second run must have deleted both batches")
    socket.sleep(0.6)
    fake:options { latency = 0 }
    -- the torn line stands alone; the second run's first record follows it whole
    local records, bad = cloudflare.journal.read(journal)
    assert.are.equal(1, bad)
    local res = assert(cloudflare.journal.restore { path = journal, zone_id = ZONE, client = client })
    assert.are.equal(1, res.restore.bad_lines)
    assert.are.equal(#records, res.restore.records)
    assert.are.equal(300, #res.value.succeeded)
    assert.are.same(NO_DIFF, zone_diff(fake, before))
  end)
end)

describe("SIGKILL at random moments of a 1,000-IP delete", function()
  it("restore always brings the zone back exactly", function()
    local fake = H.start_fake()
    local client = fake:client()
    finally(function() -- a failed assertion must not leave busted waiting for the fake
      client:close()
      fake:stop()
    end)
    local all = mappings(1000, "10.9")
    local ips = {}
    for i, m in ipairs(all) do ips[i] = m[1] end
    local script = H.tempfile([[
      local ips = {}
      for line in io.lines(os.getenv("IPS")) do ips[#ips + 1] = line end
      cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = os.getenv("ZONE"), ips = ips }
    ]])
    local ipfile = H.tempfile(table.concat(ips, "\n") .. "\n")
    math.randomseed(os.time())
    local function launch(journal, pidfile)
      local env = string.format("ZONE=%s IPS=%s CFRUN_JOURNAL=%s CLOUDFLARE_BASE_URL=%s CLOUDFLARE_API_TOKEN=%s",
        ZONE, ipfile, journal, fake.base_url, H.TOKEN)
      os.execute(string.format("env %s %s %s >/dev/null 2>&1 & echo $! > %s", env, H.shell_quote(H.CFRUN),
        script, pidfile))
      local f = assert(io.open(pidfile))
      local pid = f:read("l")
      f:close()
      return pid
    end
    -- how long the whole job takes here, so the kills can land anywhere inside it
    fake:set_zone(ZONE, all)
    fake:options { latency = 0.02 }
    local t0 = socket.gettime()
    local probe_journal = os.tmpname()
    local probe_pid = launch(probe_journal, os.tmpname())
    while H.alive(probe_pid) do socket.sleep(0.005) end
    local duration = socket.gettime() - t0
    assert.are.equal(0, #fake:zone(ZONE), "the uninterrupted job must delete everything")
    os.remove(probe_journal)
    local killed_mid = 0
    for round = 1, 12 do
      fake:reset()
      fake:set_zone(ZONE, all)
      fake:options { latency = 0.02 }
      local before = snapshot(fake)
      local journal = os.tmpname()
      os.remove(journal)
      local pidfile = os.tmpname()
      local pid = launch(journal, pidfile)
      -- anywhere from before the listing to the end of the job; every other round while
      -- batches are being deleted (seen at the server, as start-up times vary too much to aim
      -- from the launch, under a sanitizer most), so that both kinds of moment are tried
      if round % 2 == 0 then
        while H.alive(pid) and #fake:zone(ZONE) == 1000 do socket.sleep(0.002) end
        socket.sleep(math.random() * 0.03)
      else
        socket.sleep(math.random() * duration)
      end
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      while H.alive(pid) do socket.sleep(0.01) end
      -- a request sent just before the kill may still be in the server's hands (its
      -- latency); restore once it is done with it (as an operator restores after the job)
      socket.sleep(0.25)
      fake:options { latency = 0 }
      local left = #fake:zone(ZONE)
      if left > 0 and left < 1000 then killed_mid = killed_mid + 1 end
      local written = io.open(journal) -- absent when the kill came before the first record
      if written then
        written:close()
        local res, err = cloudflare.journal.restore { path = journal, zone_id = ZONE, client = client }
        assert(res, tostring(err))
      end
      local after, seen, missing, extra = snapshot(fake), {}, {}, {}
      for _, m in ipairs(after) do seen[m] = true end
      for _, m in ipairs(before) do
        if not seen[m] then missing[#missing + 1] = m end
        seen[m] = nil
      end
      for m in pairs(seen) do extra[#extra + 1] = m end
      assert.are.same({ {}, {} }, { missing, extra }, string.format("round %d: %d left before restore; "
        .. "missing %d (%s ...), extra %d; journal:\n%s", round, left, #missing, tostring(missing[1]),
        #extra, io.open(journal) and io.open(journal):read("a"):sub(1, 3000) or "(none)"))
      os.remove(journal)
      os.remove(pidfile)
    end
    -- the random kills must have hit the middle of the job at least sometimes
    assert.is_true(killed_mid >= 2, "only " .. killed_mid .. " kills landed mid-job")
    os.remove(script)
    os.remove(ipfile)
  end)
end)
