-- spec/transport_spec.lua: lua/cloudflare/transport.lua: retries, backoff, Retry-After and
-- x-should-retry, already_absent after a lost response, rate-limit pacing, the debug log.
-- Waits are observed through the on_wait hook (what cfrun decided), not by timing.
local H = require "spec.helper"

local ZONE = H.ZONE
local INTERNAL = { { code = 1141, message = "Internal error." } }

local function api_requests(fake) return fake:api_requests() end

-- These specs are about the transport, not about zones: the fake serves any zone id (an
-- unseeded zone would answer 403, as Cloudflare's unknown zones do).
local ANY_ZONE = { "--any-zone" }

describe("retries", function()
  local fake, waits, client
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "192.0.2.2", "us-east-1", "aws" } })
    fake:clear_requests()
    waits = {}
    client = fake:client { on_wait = function(secs, reason) waits[#waits + 1] = { secs, reason } end }
  end)
  after_each(function() client:close() end)

  local function delete(c, extra)
    local args = { zone_id = ZONE, ips = { "192.0.2.1", "192.0.2.2" } }
    for k, v in pairs(extra or {}) do args[k] = v end
    return (c or client).cache.origin_cloud_regions.bulk_delete(args)
  end

  it("retries a 5xx with exponential backoff and jitter, then succeeds", function()
    fake:fault { status = 503, errors = INTERNAL, times = 2 }
    local res = assert(delete())
    assert.are.equal(3, res.requests)
    assert.are.equal(3, #api_requests(fake))
    assert.are.equal(2, #res.value.succeeded)
    assert.are.equal(2, #waits)
    assert.is_true(waits[1][1] >= 0.375 and waits[1][1] <= 0.5, tostring(waits[1][1]))
    assert.is_true(waits[2][1] >= 0.75 and waits[2][1] <= 1.0, tostring(waits[2][1]))
    assert.matches("retry backoff after HTTP 503", waits[1][2])
  end)

  it("gives up after max_retries, per client and per call", function()
    fake:fault { status = 500, errors = INTERNAL, times = 10 }
    local _, err, partial = delete(nil, { max_retries = 1 })
    assert.are.equal(500, err.status)
    assert.are.equal(2, partial.requests)
    local c = fake:client { max_retries = 0 }
    fake:clear_requests()
    _, err = delete(c)
    assert.are.equal(500, err.status)
    assert.are.equal(1, #api_requests(fake))
    c:close()
  end)

  it("retries 408, 409 and 429 but never other 4xx", function()
    for _, status in ipairs { 408, 409, 429 } do
      fake:reset()
      fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
      fake:fault { status = status, errors = INTERNAL }
      local res = assert(delete(nil, { max_retry_wait = 60 }))
      assert.are.equal(2, res.requests, status)
    end
    for _, status in ipairs { 400, 403, 404, 422 } do
      fake:reset()
      fake:fault { status = status, errors = INTERNAL }
      local _, err, partial = delete()
      assert.are.equal(status, err.status)
      assert.are.equal(1, partial.requests, status)
    end
  end)

  it("lets x-should-retry override the status rule", function()
    fake:fault { status = 503, errors = INTERNAL, headers = { ["x-should-retry"] = "false" } }
    local _, err, partial = delete()
    assert.is_false(err.should_retry)
    assert.are.equal(1, partial.requests)
    fake:reset()
    fake:fault { status = 400, errors = INTERNAL, headers = { ["x-should-retry"] = "true" } }
    local res = assert(delete())
    assert.are.equal(2, res.requests)
  end)

  it("honours Retry-After and prefers retry-after-ms", function()
    fake:fault { status = 503, errors = INTERNAL, headers = { ["Retry-After"] = "1" } }
    assert(delete())
    assert.are.equal(1, waits[1][1])
    waits = {}
    fake:fault { status = 503, errors = INTERNAL,
      headers = { ["Retry-After"] = "30", ["retry-after-ms"] = "150" } }
    assert(delete())
    assert.are.equal(0.15, waits[1][1])
  end)

  it("does not retry when Retry-After asks for more than max_retry_wait", function()
    fake:fault { status = 429, errors = INTERNAL, headers = { ["Retry-After"] = "120" }, times = 5 }
    -- a budget of its own: a 429 blocks every client that shares the budget for 120 s
    local c = fake:client { on_wait = function(secs, reason) waits[#waits + 1] = { secs, reason } end,
      rate_limit = { shared = false } }
    local _, err, partial = delete(c)
    c:close()
    assert.are.equal(429, err.status)
    assert.are.equal(120, err.retry_after)
    assert.are.equal(1, partial.requests)
    assert.are.equal(0, #waits)
  end)

  it("retries network errors and timeouts", function()
    fake:fault { drop = "before" }
    assert.are.equal(2, assert(delete()).requests)
    fake:fault { delay = 2 }
    local c = fake:client { timeout = 0.3 }
    assert.are.equal(2, assert(delete(c)).requests)
    c:close()
  end)

  it("marks IPs that a lost attempt deleted as already_absent on the retry", function()
    fake:fault { drop = "after" }
    local res = assert(delete(nil, { ips = { "192.0.2.1", "192.0.2.2", "198.51.100.9" } }))
    assert.are.equal(2, res.requests)
    assert.are.equal(0, #res.value.succeeded)
    assert.are.same({ "192.0.2.1", "192.0.2.2", "198.51.100.9" }, H.pluck(res.value.failed, "origin_ip"))
    -- without a journal there is no listing: every "not found" after a retry may be ours
    assert.are.same({ true, true, true }, H.pluck(res.value.failed, "already_absent"))
  end)

  it("with a journal, only IPs that existed before are marked already_absent", function()
    local path = os.tmpname()
    fake:fault { drop = "after", match = { method = "DELETE" } }
    local res = assert(delete(nil, { ips = { "192.0.2.1", "198.51.100.9" }, journal = path }))
    assert.are.same({ true }, { res.value.failed[1].already_absent })
    assert.is_nil(res.value.failed[2].already_absent)
    os.remove(path)
  end)
end)

describe("rate-limit pacing", function()
  local fake
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:clear_requests()
  end)

  local function statuses()
    local out = {}
    for _, r in ipairs(api_requests(fake)) do out[r.status] = (out[r.status] or 0) + 1 end
    return out
  end

  it("keeps to the client-side budget", function()
    local waits = {}
    local c = fake:client { rate_limit = { requests = 4, per = 0.5 },
      on_wait = function(_, reason) waits[#waits + 1] = reason end }
    local t0 = require("cloudflare.core").now()
    for _ = 1, 10 do assert(c.cache.origin_cloud_regions.list { zone_id = ZONE }) end
    -- 10 requests at 4 per 0.5 s need two full windows: a lower bound, whatever the load
    assert.is_true(require("cloudflare.core").now() - t0 >= 1.0)
    assert.is_true(#waits >= 2)
    for _, reason in ipairs(waits) do
      assert.matches("client rate budget of 4 requests per 0.5 s", reason)
    end
    c:close()
  end)

  it("reads the Ratelimit headers and waits instead of being answered 429", function()
    fake:options { rate_limit = { requests = 3, per = 1 } }
    local waits = {}
    local c = fake:client { on_wait = function(secs, reason) waits[#waits + 1] = { secs, reason } end }
    for _ = 1, 7 do assert(c.cache.origin_cloud_regions.list { zone_id = ZONE }) end
    assert.are.same({ [200] = 7 }, statuses())
    assert.is_true(#waits >= 2)
    c:close()
  end)

  it("a job twice the window's budget finishes without a single 429", function()
    fake:options { rate_limit = { requests = 20, per = 1 } }
    local c = fake:client { rate_limit = { requests = 20, per = 1 } }
    for _ = 1, 45 do assert(c.cache.origin_cloud_regions.list { zone_id = ZONE }) end
    assert.are.same({ [200] = 45 }, statuses())
    c:close()
  end)
end)

describe("the debug log", function()
  local fake
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)

  it("prints one line per request and per decision, never a secret", function()
    fake:reset()
    fake:fault { status = 503, errors = INTERNAL, headers = { ["Retry-After"] = "0" } }
    local out, err, code = H.run({ "-e", [[
      local res = assert(cloudflare.cache.origin_cloud_regions.list{ zone_id = os.getenv("ZONE") })
      print(#res.value)
    ]] }, { env = { ZONE = ZONE, CFRUN_LOG = "debug", CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN } })
    assert.are.equal(0, code, err)
    assert.are.equal("0\n", out)
    assert.matches("cfrun: GET " .. H.path(ZONE, nil, false):gsub("%p", "%%%0") .. "[^ ]* %-> 503 "
      .. "%(%d+ bytes, [%d.]+ ms, cf%-ray %x+%-FAKE, attempt 1%)", err)
    assert.matches("cfrun: retrying GET /zones/[^ ]+ in 0%.00 s after HTTP 503", err)
    assert.matches("%-> 200 %(", err)
    assert.is_nil(err:find(H.TOKEN, 1, true))
  end)

  it("never shows the token in any output of a failing run", function()
    local chunk = [[
      local c = cloudflare.new{ log = "debug", max_retries = 1, timeout = 0.5 }
      print(c)
      for _, ips in ipairs{ {"192.0.2.1"}, {"not-an-ip"} } do
        local res, err, partial = c.cache.origin_cloud_regions.bulk_delete{
          zone_id = os.getenv("ZONE"), ips = ips }
        print(res and cloudflare.json.encode(res), err, err and cloudflare.json.encode(err),
          partial and cloudflare.json.encode(partial))
      end
      error(tostring(c))
    ]]
    for _, f in ipairs { { status = 500, errors = INTERNAL, times = 5 }, { drop = "before", times = 5 },
      { malformed = true, times = 5 }, { delay = 2, times = 5 },
      { status = 502, body = "<html>bad</html>", times = 5 } } do
      fake:reset()
      fake:fault(f)
      local out, err = H.run({ "-e", chunk }, { env = { ZONE = ZONE, CLOUDFLARE_BASE_URL = fake.base_url,
        CLOUDFLARE_API_TOKEN = H.TOKEN } })
      assert.is_nil(out:find(H.TOKEN, 1, true), out)
      assert.is_nil(err:find(H.TOKEN, 1, true), err)
      assert.matches("cloudflare.Client %(api token", out)
    end
    local wrong = H.run({ "-e", chunk }, { env = { ZONE = ZONE, CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = "wrong-secret-0123456789" } })
    assert.is_nil(wrong:find("wrong-secret-0123456789", 1, true))
  end)
end)

describe("credentials from a file", function()
  it("reads CLOUDFLARE_API_TOKEN_FILE and warns when others can read it", function()
    local fake = H.start_fake(ANY_ZONE)
    local path = H.tempfile(H.TOKEN .. "\n")
    os.execute("chmod 600 " .. path)
    local chunk = [[assert(cloudflare.cache.origin_cloud_regions.list{ zone_id = os.getenv("ZONE") }) print("ok")]]
    local env = { ZONE = ZONE, CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = false,
      CLOUDFLARE_API_TOKEN_FILE = path }
    local out, err, code = H.run({ "-e", chunk }, { env = env })
    assert.are.equal(0, code, err)
    assert.are.equal("ok\n", out)
    assert.are.equal("", err)
    os.execute("chmod 644 " .. path)
    out, err, code = H.run({ "-e", chunk }, { env = env })
    assert.are.equal(0, code, err)
    assert.are.equal("ok\n", out)
    assert.matches("warning: the API token file .* is readable by every user", err)
    assert.is_nil(err:find(H.TOKEN, 1, true))
    os.remove(path)
    fake:stop()
  end)
end)

describe("waits are bounded by max_retry_wait", function()
  local fake
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)

  local function zone_of(n)
    local list = {}
    for i = 1, n do list[i] = { string.format("10.8.%d.%d", i // 250, i % 250), "us-east-1", "aws" } end
    return list
  end

  -- A Ratelimit header that says the budget is spent for `t` seconds, on the first DELETE's
  -- answer (which is processed: its batch is deleted).
  for _, t in ipairs { 100000, 3000 } do
    it("a Ratelimit reset of " .. t .. " s after batch 1 ends the call with nil, err, partial; no sleep", function()
      fake:reset()
      local list = zone_of(250)
      fake:set_zone(ZONE, list)
      fake:fault { match = { method = "DELETE" }, headers = {
        Ratelimit = string.format('"default";r=0;t=%d', t), ["Ratelimit-Policy"] = '"default";q=1200;w=300' } }
      local waits = {}
      -- a budget of its own (the key includes the limits): the API's word outlives a client
      local c = fake:client { on_wait = function(secs) waits[#waits + 1] = secs end,
        rate_limit = { requests = 1200 + t % 7, per = 300 } }
      local ips = H.pluck(list, 1)
      local t0 = require("socket").gettime()
      local res, err, partial = c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips,
        concurrency = 1 }
      assert.is_true(require("socket").gettime() - t0 < 10, "the call slept")
      assert.is_nil(res)
      assert.are.equal("rate_limited", err.kind)
      assert.is_true(err.retry_after > 60 and err.retry_after <= t, tostring(err.retry_after))
      assert.is_true(err.unsent)
      assert.matches("max_retry_wait", err.message)
      assert.are.same({}, waits)
      -- batch 1 is on record as deleted; the rest was never sent, and is still there
      assert.are.equal(100, #partial.value.succeeded)
      assert.are.equal(150, #partial.value.unsent)
      assert.are.equal(0, #partial.value.pending)
      assert.are.equal(150, #fake:zone(ZONE))
      c:close()
    end)
  end
end)

describe("slots and hooks are given back on every path", function()
  local fake
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)

  it("an on_wait hook that raises, in a task, leaves max_in_flight = 1 usable", function()
    fake:reset()
    fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
    local raise = true
    local c = fake:client { max_in_flight = 1, rate_limit = { requests = 1, per = 0.3 },
      on_wait = function() if raise then error("hook failed") end end }
    local list = function() return c.cache.origin_cloud_regions.list { zone_id = ZONE } end
    assert(list()) -- spends the budget: the next request waits, and the hook raises
    local t = cloudflare.spawn(list)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.matches("hook failed", err)
    raise = false
    -- a slot kept by the task that raised would make these wait for ever: give them 20 s
    local t1, t2 = cloudflare.spawn(list), cloudflare.spawn(list)
    local deadline = require("socket").gettime() + 20
    while (t1.status ~= "done" or t2.status ~= "done") and require("socket").gettime() < deadline do
      cloudflare.sleep(0.05)
    end
    assert.are.equal("done", t1.status)
    assert.are.equal("done", t2.status)
    assert.are.equal(1, #t1:wait().value)
    assert.are.equal(1, #t2:wait().value)
    assert.are.equal(3, #fake:api_requests())
    c:close()
  end)
end)

describe("timeouts and waits must be sane", function()
  local fake
  setup(function() fake = H.start_fake(ANY_ZONE) end)
  teardown(function() fake:stop() end)

  for _, v in ipairs { 0, 0 / 0, 86400, -1, 1 / 0 } do
    it("timeout = " .. tostring(v) .. " raises up front, per call and per client", function()
      fake:reset()
      local c = fake:client()
      assert.has_error(function()
        c.cache.origin_cloud_regions.list { zone_id = ZONE, timeout = v }
      end)
      local ok, err = pcall(c.cache.origin_cloud_regions.list, { zone_id = ZONE, timeout = v })
      assert.is_false(ok)
      assert.matches("bad argument 'timeout': expected more than 0 and at most 3600 seconds", err)
      ok, err = pcall(fake.client, fake, { timeout = v })
      assert.is_false(ok)
      assert.matches("option 'timeout'", err)
      ok, err = pcall(fake.client, fake, { connect_timeout = v })
      assert.is_false(ok)
      assert.matches("option 'connect_timeout'", err)
      assert.are.equal(0, #fake:api_requests()) -- nothing was sent
      c:close()
    end)
  end

  it("max_retry_wait must be finite and at most a day", function()
    local c = fake:client()
    for _, v in ipairs { 1 / 0, 0 / 0, 86401, -1 } do
      local ok, err = pcall(c.cache.origin_cloud_regions.list, { zone_id = ZONE, max_retry_wait = v })
      assert.is_false(ok)
      assert.matches("bad argument 'max_retry_wait'", err)
    end
    c:close()
  end)
end)
