-- spec/journal_spec.lua: lua/cloudflare/journal.lua and runtime's journal primitive: intents
-- on disk before requests, outcomes after, restore, and the proof that nothing is lost: a
-- cfrun killed with SIGKILL at random moments of a 1,000-IP delete, then restored.
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

describe("the journal", function()
  local fake, client, path
  setup(function()
    fake = H.start_fake()
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, mappings(150))
    fake:clear_requests()
    path = os.tmpname()
    os.remove(path)
  end)
  after_each(function() os.remove(path) end)

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
    assert.are.same({ "10.7.0.1" }, partial.value.pending)
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
    assert.are.same(before, snapshot(fake))
    res = assert(cloudflare.journal.restore { path = path, zone_id = ZONE, client = client })
    assert.are.equal(120, #res.value.succeeded) -- upserts again: the same state
    assert.are.same(before, snapshot(fake))
    local dry = assert(cloudflare.journal.restore { path = path, zone_id = "ffff", client = client })
    assert.are.equal(0, dry.restore.candidates)
  end)

  it("scripts/restore.lua wraps it", function()
    assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "10.7.0.5", "10.7.0.6" },
      journal = path })
    local out, err, code = H.run({ H.SOURCE_DIR .. "/scripts/restore.lua", "--zone", ZONE, path },
      { env = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.matches("succeeded%s+10%.7%.0%.5%s+gcp%s+us%-central1", out)
    assert.matches("2 restored, 0 failed", out)
    assert.are.equal(150, #fake:zone(ZONE))
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
