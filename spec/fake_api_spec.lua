-- spec/fake_api_spec.lua: lua/cloudflare/fake_api.lua, the fake Cloudflare API the other specs
-- and --sandbox rely on: envelopes, authentication, validation, and serving connections
-- concurrently. Talks to it with LuaSocket only, so a cfrun bug cannot mask a fake-server bug.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local BATCH = "/client/v4/zones/" .. H.ZONE .. "/cache/origin_cloud_regions/batch"
local AUTH = { authorization = "Bearer " .. H.TOKEN }

describe("the fake API", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "2001:db8::1", "us-central1", "gcp" } })
  end)

  local function call(body, headers, path)
    local text, status = fake:raw("DELETE", path or BATCH, body, headers or AUTH)
    return cjson.decode(text), status, text
  end

  -- A batch DELETE of one IP on its own connection, left to be read (or not) by the caller.
  local function send(ip)
    local c = assert(socket.connect(fake.host, fake.port))
    local body = '["' .. ip .. '"]'
    c:send("DELETE " .. BATCH .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. H.TOKEN
      .. "\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
    return c
  end

  it("answers batch delete with the reference envelope and [] for empty lists", function()
    local env, status, text = call('["2001:DB8:0::1"]')
    assert.are.equal(200, status)
    assert.is_true(env.success)
    assert.are.equal("origin_public_cloud_region", env.result.id)
    assert.are.same({ { ["origin-ip"] = "2001:db8::1", region = "us-central1", vendor = "gcp" } },
      env.result.value.succeeded)
    assert.matches('"failed":%[%]', text)
    assert.matches('"errors":%[%]', text)
  end)

  it("reports unknown and invalid IPs per item, the invalid one as sent", function()
    local env = call('["198.51.100.1","nope","192.0.2.1","192.0.2.1"]')
    assert.are.same({
      { ["origin-ip"] = "198.51.100.1", error = "mapping not found" },
      { ["origin-ip"] = "nope", error = "invalid IP address" },
      { ["origin-ip"] = "192.0.2.1", error = "mapping not found" }, -- second occurrence
    }, env.result.value.failed)
    assert.are.equal(1, #env.result.value.succeeded)
    assert.are.equal(cjson.null, call('["198.51.100.1"]').result.modified_on)
  end)

  it("rejects bad bodies with code 1198", function()
    local ips = {}
    for i = 1, 101 do ips[i] = "10.0.0." .. (i % 250) end
    for _, body in ipairs { "not json", "{}", "[]", '["a", 2]', cjson.encode(ips) } do
      local env, status = call(body)
      assert.are.equal(400, status, body)
      assert.is_false(env.success)
      assert.are.equal(1198, env.errors[1].code)
    end
  end)

  it("checks credentials like Cloudflare", function()
    local env, status = call('["192.0.2.1"]', {})
    assert.are.equal(400, status)
    assert.are.equal(6003, env.errors[1].code)
    env, status = call('["192.0.2.1"]', { authorization = "Bearer wrong" })
    assert.are.equal(403, status)
    assert.are.equal(10000, env.errors[1].code)
    env, status = call('["192.0.2.1"]', { ["x-auth-email"] = H.EMAIL, ["x-auth-key"] = H.KEY })
    assert.are.equal(200, status)
    assert.is_true(env.success)
    assert.are.equal(1, #fake:zone(H.ZONE)) -- one of the two deleted
  end)

  it("routes like Cloudflare: bad zone ids, unknown paths, wrong methods", function()
    local env, status = call('["192.0.2.1"]', AUTH, "/client/v4/zones/bad-zone!/cache/origin_cloud_regions/batch")
    assert.are.equal(404, status)
    assert.are.equal(7003, env.errors[1].code)
    env, status = call(nil, AUTH, "/client/v4/nowhere")
    assert.are.equal(404, status)
    assert.are.equal(7000, env.errors[1].code)
    local text
    text, status = fake:raw("PUT", BATCH, '["192.0.2.1"]', AUTH)
    assert.are.equal(405, status)
    assert.are.equal(10405, cjson.decode(text).errors[1].code)
  end)

  it("serves connections concurrently: a delayed request does not hold up another", function()
    fake:fault { delay = 3, times = 1 }
    local slow = send("203.0.113.1")
    socket.sleep(0.1) -- let the server take the slow request (and its fault) first
    local quick = send("192.0.2.1")
    quick:settimeout(10)
    local answer = quick:receive("*a")
    assert.matches('^HTTP/1.1 200.*"origin%-ip":"192.0.2.1"', answer)
    -- the slow one is still waiting on its delay: a serialising server could not have answered
    slow:settimeout(0)
    local data, why, part = slow:receive("*a")
    assert.is_nil(data)
    assert.are.equal("timeout", why)
    assert.are.equal("", part)
    slow:close()
    quick:close()
  end)

  it("applies a request on arrival and answers it `latency` later; a fault's delay comes first", function()
    local function held(ip)
      for _, m in ipairs(fake:zone()) do
        if m["origin-ip"] == ip then return true end
      end
      return false
    end
    local function unanswered(c)
      c:settimeout(0)
      local data, why, part = c:receive("*a")
      return data == nil and why == "timeout" and part == ""
    end
    fake:options { latency = 3 }
    local c = send("192.0.2.1")
    local deadline = socket.gettime() + 2
    while held("192.0.2.1") and socket.gettime() < deadline do socket.sleep(0.02) end
    assert.is_false(held("192.0.2.1"), "applied while its answer is held back")
    assert.is_true(unanswered(c), "answered before its latency")
    c:close()

    fake:options { latency = 0 }
    fake:fault { delay = 3, times = 1 }
    c = send("2001:db8::1")
    socket.sleep(0.3)
    assert.is_true(held("2001:db8::1"), "a fault's delay comes before the change")
    assert.is_true(unanswered(c))
    c:close()
  end)
end)

describe("the fake API's origin cloud region endpoints", function()
  local BASE = "/client/v4/zones/" .. H.ZONE .. "/cache/origin_cloud_regions"
  local EMPTY_ZONE = "0123456789abcdef0123456789abcdef"
  local RFC3339 = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    local _, status = fake:control("PUT", "/__fake/zones/" .. H.ZONE, cjson.encode {
      { ["origin-ip"] = "192.0.2.1", region = "us-east-1", vendor = "aws", modified_on = "2026-01-01T00:00:00Z" },
      { ["origin-ip"] = "2001:db8::1", region = "us-central1", vendor = "gcp", modified_on = "2026-01-03T00:00:00Z" },
      { ["origin-ip"] = "203.0.113.5", region = "us-ashburn-1", vendor = "oci", modified_on = "2026-01-02T00:00:00Z" },
    })
    assert.are.equal(200, status)
  end)

  -- method on BASE .. suffix with the spec token; returns the decoded envelope, status, text
  local function api(method, suffix, body)
    local text, status = fake:raw(method, BASE .. suffix, body, AUTH)
    return cjson.decode(text), status, text
  end

  local function m(ip, region, vendor, modified_on)
    return { ["origin-ip"] = ip, region = region, vendor = vendor, modified_on = modified_on }
  end

  local SEEDED = {
    m("192.0.2.1", "us-east-1", "aws", "2026-01-01T00:00:00Z"),
    m("2001:db8::1", "us-central1", "gcp", "2026-01-03T00:00:00Z"),
    m("203.0.113.5", "us-ashburn-1", "oci", "2026-01-02T00:00:00Z"),
  }

  local function setting(value, modified_on)
    return { success = true, errors = {}, messages = {}, result = {
      id = "origin_public_cloud_region", editable = true, modified_on = modified_on, value = value } }
  end

  local function failure(code, message)
    return { success = false, errors = { { code = code, message = message } }, messages = {}, result = cjson.null }
  end

  local function assert_fails(status, code, message, method, suffix, body)
    local env, got = api(method, suffix, body)
    assert.are.equal(status, got, method .. " " .. suffix .. " " .. tostring(body))
    assert.are.same(failure(code, message), env)
  end

  describe("list (GET)", function()
    it("returns every mapping in insertion order; modified_on is the latest one", function()
      local env, status = api("GET", "")
      assert.are.equal(200, status)
      assert.are.same(setting(SEEDED, "2026-01-03T00:00:00Z"), env)
    end)

    it("writes [] and a null modified_on for a zone without mappings", function()
      local expected = '{"errors":[],"messages":[],"result":{"editable":true,"id":"origin_public_cloud_region",'
        .. '"modified_on":null,"value":[]},"success":true}'
      fake:set_zone(EMPTY_ZONE, {})
      local text, status = fake:raw("GET", "/client/v4/zones/" .. EMPTY_ZONE .. "/cache/origin_cloud_regions",
        nil, AUTH)
      assert.are.equal(200, status)
      assert.are.equal(expected, text)
      text = fake:raw("GET", "/client/v4/zones/fedcba9876543210/cache/origin_cloud_regions", nil, AUTH)
      assert.are.equal(expected, text) -- a zone never seeded is empty too
    end)

    it("uses the configured wire key", function()
      fake:options { wire_key = "origin_ip" }
      local env = api("GET", "")
      assert.are.equal("192.0.2.1", env.result.value[1].origin_ip)
      assert.is_nil(env.result.value[1]["origin-ip"])
    end)
  end)

  describe("get (GET /<ip>)", function()
    it("finds a mapping by percent-encoded, raw or non-canonical IPv6", function()
      for _, ip in ipairs { "2001%3Adb8%3A%3A1", "2001%3adb8%3a%3a1", "2001:db8::1", "2001:DB8:0:0::1" } do
        local env, status = api("GET", "/" .. ip)
        assert.are.equal(200, status, ip)
        assert.are.same(setting(SEEDED[2], "2026-01-03T00:00:00Z"), env)
      end
    end)

    it("answers 404 code 1142 for an unmapped IP and 400 code 1140 for an invalid one", function()
      assert_fails(404, 1142, "origin cloud region mapping not found", "GET", "/198.51.100.1")
      assert_fails(400, 1140, "invalid IP address", "GET", "/not-an-ip")
      assert_fails(400, 1140, "invalid IP address", "GET", "/192.0.2.256")
      assert_fails(400, 1140, "invalid IP address", "GET", "/2001%3Adb8%3A%3A1%2F64")
    end)
  end)

  describe("create (POST)", function()
    it("appends the canonicalised mapping and returns it", function()
      local env, status = api("POST", "", { ip = "2001:DB8:0:0:0:0:0:A", region = "eastus", vendor = "azure" })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.matches(RFC3339, now)
      assert.are.same(setting(m("2001:db8::a", "eastus", "azure", now), now), env)
      assert.are.same(m("2001:db8::a", "eastus", "azure", now), fake:zone(H.ZONE)[4])
      assert.are.equal(4, #fake:zone(H.ZONE))
    end)

    it("refuses an IP that already has a mapping with code 1145", function()
      assert_fails(400, 1145, "mapping already exists for this IP", "POST", "",
        { ip = "2001:db8:0::1", region = "us-east-1", vendor = "aws" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("validates the body: 1198 naming the field, 1140, 1146, 1147", function()
      local function bad(body) return "Invalid request body: " .. body end
      assert_fails(400, 1198, bad("the body is not valid JSON"), "POST", "", "{nope")
      assert_fails(400, 1198, bad('expected a JSON object {"ip", "region", "vendor"}'), "POST", "", "[]")
      assert_fails(400, 1198, bad('"ip" is required'), "POST", "", { region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1198, bad('"region" must be a string'), "POST", "",
        { ip = "192.0.2.9", region = 1, vendor = "aws" })
      assert_fails(400, 1198, bad('"vendor" is required'), "POST", "",
        '{"ip":"192.0.2.9","region":"us-east-1","vendor":null}')
      assert_fails(400, 1140, "invalid IP address", "POST", "",
        { ip = "192.0.2", region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1146, "unsupported vendor: ibm", "POST", "",
        { ip = "192.0.2.9", region = "us-east-1", vendor = "ibm" })
      assert_fails(400, 1147, "unsupported region us-central1 for vendor aws", "POST", "",
        { ip = "192.0.2.9", region = "us-central1", vendor = "aws" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("refuses a new mapping at the limit with 403 code 1164; reset restores the limit", function()
      fake:options { max_mappings = 3 }
      assert_fails(403, 1164, "mapping limit reached (3)", "POST", "",
        { ip = "192.0.2.9", region = "us-east-1", vendor = "aws" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
      fake:reset()
      assert.are.equal(3500, (fake:control("GET", "/__fake/options")).max_mappings)
    end)
  end)

  describe("edit (PATCH)", function()
    it("updates an existing mapping in place and returns the whole list", function()
      local env, status = api("PATCH", "", { ip = "192.0.2.1", region = "westus2", vendor = "azure" })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.matches(RFC3339, now)
      local expected = { m("192.0.2.1", "westus2", "azure", now), SEEDED[2], SEEDED[3] }
      assert.are.same(setting(expected, now), env)
      assert.are.same(expected, fake:zone(H.ZONE))
    end)

    it("appends a new mapping", function()
      local env = api("PATCH", "", { ip = "198.51.100.7", region = "europe-west3", vendor = "gcp" })
      local now = env.result.modified_on
      local expected = { SEEDED[1], SEEDED[2], SEEDED[3], m("198.51.100.7", "europe-west3", "gcp", now) }
      assert.are.same(setting(expected, now), env)
      assert.are.same(expected, fake:zone(H.ZONE))
    end)

    it("at the limit updates existing IPs but refuses new ones with 403 code 1164", function()
      fake:options { max_mappings = 3 }
      local _, status = api("PATCH", "", { ip = "203.0.113.5", region = "ap-tokyo-1", vendor = "oci" })
      assert.are.equal(200, status)
      assert_fails(403, 1164, "mapping limit reached (3)", "PATCH", "",
        { ip = "198.51.100.7", region = "us-east-1", vendor = "aws" })
      assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.5" }, H.pluck(fake:zone(H.ZONE), "origin-ip"))
      assert.are.equal("ap-tokyo-1", fake:zone(H.ZONE)[3].region)
    end)

    it("validates like create", function()
      assert_fails(400, 1198, 'Invalid request body: "ip" must be a string', "PATCH", "",
        { ip = { "192.0.2.1" }, region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1140, "invalid IP address", "PATCH", "",
        { ip = "fe80::1%eth0", region = "eastus", vendor = "azure" })
      assert_fails(400, 1146, "unsupported vendor: AWS", "PATCH", "",
        { ip = "192.0.2.1", region = "us-east-1", vendor = "AWS" })
      assert_fails(400, 1147, "unsupported region eastus for vendor oci", "PATCH", "",
        { ip = "192.0.2.1", region = "eastus", vendor = "oci" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)
  end)

  describe("delete (DELETE /<ip>)", function()
    it("deletes by percent-encoded IPv6 and returns the mapping it had", function()
      local env, status = api("DELETE", "/2001%3Adb8%3A%3A1")
      assert.are.equal(200, status)
      assert.matches(RFC3339, env.result.modified_on)
      assert.are.same(setting(SEEDED[2], env.result.modified_on), env)
      assert.are.same({ SEEDED[1], SEEDED[3] }, fake:zone(H.ZONE))
    end)

    it("answers 404 code 1163 when there is no mapping, 400 code 1140 for an invalid IP", function()
      api("DELETE", "/192.0.2.1")
      assert_fails(404, 1163, "origin cloud region mapping not found", "DELETE", "/192.0.2.1")
      assert_fails(400, 1140, "invalid IP address", "DELETE", "/192.0.2.01")
      assert.are.same({ SEEDED[2], SEEDED[3] }, fake:zone(H.ZONE))
    end)
  end)

  describe("bulk_edit (PATCH /batch)", function()
    it("upserts item by item and reports failures in order", function()
      fake:options { max_mappings = 4 }
      local env, status = api("PATCH", "/batch", cjson.encode {
        { ip = "2001:DB8::1", region = "us-west1", vendor = "gcp" },        -- update, keeps its place
        { ip = "nope", region = "us-east-1", vendor = "aws" },
        { ip = "198.51.100.1", region = "us-east-1", vendor = "ibm" },
        { ip = "198.51.100.2", region = "us-east1", vendor = "aws" },
        { ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },    -- new: the 4th mapping
        { ip = "198.51.100.4", region = "eu-central-1", vendor = "aws" },   -- new: over the limit
        { ip = "192.0.2.1", region = "eu-central-1", vendor = "aws" },      -- update still allowed
      })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.matches(RFC3339, now)
      assert.are.same(setting({
        succeeded = {
          { ["origin-ip"] = "2001:db8::1", region = "us-west1", vendor = "gcp" },
          { ["origin-ip"] = "198.51.100.3", region = "uk-london-1", vendor = "oci" },
          { ["origin-ip"] = "192.0.2.1", region = "eu-central-1", vendor = "aws" },
        },
        failed = {
          { ["origin-ip"] = "nope", error = "invalid IP address" },
          { ["origin-ip"] = "198.51.100.1", error = "unsupported vendor" },
          { ["origin-ip"] = "198.51.100.2", error = "unsupported region" },
          { ["origin-ip"] = "198.51.100.4", error = "mapping limit reached" },
        },
      }, now), env)
      assert.are.same({
        m("192.0.2.1", "eu-central-1", "aws", now), m("2001:db8::1", "us-west1", "gcp", now), SEEDED[3],
        m("198.51.100.3", "uk-london-1", "oci", now),
      }, fake:zone(H.ZONE))
    end)

    it("has a null modified_on and [] for succeeded when nothing was applied", function()
      local env, status, text = api("PATCH", "/batch", '[{"ip":"192.0.2.1","region":"nowhere","vendor":"aws"}]')
      assert.are.equal(200, status)
      assert.are.equal(cjson.null, env.result.modified_on)
      assert.matches('"succeeded":%[%]', text)
      assert.are.same({ { ["origin-ip"] = "192.0.2.1", error = "unsupported region" } }, env.result.value.failed)
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("rejects a body that is not an array of 1 to 100 mappings with code 1198", function()
      local many = {}
      for i = 1, 101 do many[i] = { ip = "10.0.0." .. i, region = "us-east-1", vendor = "aws" } end
      local function bad(body) return "Invalid request body: " .. body end
      assert_fails(400, 1198, bad("the body is not valid JSON"), "PATCH", "/batch", "")
      assert_fails(400, 1198, bad('expected a JSON array of objects {"ip", "region", "vendor"}'), "PATCH", "/batch",
        { ip = "192.0.2.1", region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1198, bad("the array is empty; send 1 to 100 mappings"), "PATCH", "/batch", "[]")
      assert_fails(400, 1198, bad("101 items; at most 100 mappings per request"), "PATCH", "/batch", cjson.encode(many))
      assert_fails(400, 1198, bad("item 2 of the array: not a JSON object"), "PATCH", "/batch",
        '[{"ip":"192.0.2.1","region":"us-east-1","vendor":"aws"},"192.0.2.2"]')
      assert_fails(400, 1198, bad('item 1 of the array: "vendor" is required'), "PATCH", "/batch",
        '[{"ip":"192.0.2.1","region":"us-east-1"}]')
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)
  end)

  describe("supported_regions (GET /supported_regions)", function()
    it("lists vendors, regions and upper-tier colos outside the setting shape", function()
      local env, status = api("GET", "/supported_regions")
      assert.are.equal(200, status)
      assert.is_true(env.success)
      assert.are.same({ "obtained_codes", "vendors" }, (function()
        local keys = {}
        for k in pairs(env.result) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      assert.is_true(env.result.obtained_codes)
      local names = {}
      for vendor, list in pairs(env.result.vendors) do
        names[vendor] = {}
        for _, r in ipairs(list) do
          assert.are.equal("string", type(r.name))
          assert.is_true(#r.upper_tier_colos >= 1 and #r.upper_tier_colos <= 3, r.name)
          for _, colo in ipairs(r.upper_tier_colos) do assert.matches("^%u%u%u$", colo) end
          names[vendor][r.name] = true
        end
      end
      assert.are.same({ "aws", "azure", "gcp", "oci" }, (function()
        local keys = {}
        for k in pairs(names) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      for vendor, regions in pairs {
        aws = { "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1",
          "ap-northeast-1" },
        gcp = { "us-central1", "us-east1", "us-west1", "europe-west1", "europe-west3", "asia-east1" },
        azure = { "eastus", "westus2", "westeurope", "northeurope", "southeastasia" },
        oci = { "us-ashburn-1", "us-phoenix-1", "eu-frankfurt-1", "uk-london-1", "ap-tokyo-1" },
      } do
        for _, r in ipairs(regions) do assert.is_true(names[vendor][r], vendor .. " " .. r) end
      end
      assert.are.same(require("cloudflare.fake_api").SUPPORTED_REGIONS, env.result.vendors)
    end)

    it("supports every region of the sandbox seed", function()
      local fake_api = require "cloudflare.fake_api"
      fake:set_zone(H.ZONE, {})
      for _, s in ipairs(fake_api.sandbox_seed().zones[fake_api.SANDBOX_ZONE]) do
        local env, status = api("POST", "", { ip = s["origin-ip"], region = s.region, vendor = s.vendor })
        assert.are.equal(200, status, s["origin-ip"] .. " " .. s.vendor .. " " .. s.region)
        assert.is_true(env.success)
      end
    end)
  end)

  describe("routing", function()
    it("takes /batch and /supported_regions before /<ip>; other methods get 405 code 10405", function()
      for _, c in ipairs {
        { "GET", "/batch" }, { "POST", "/batch" }, { "DELETE", "/supported_regions" },
        { "PATCH", "/supported_regions" }, { "PUT", "" }, { "DELETE", "" }, { "PATCH", "/192.0.2.1" },
        { "POST", "/192.0.2.1" },
      } do
        assert_fails(405, 10405, "Method not allowed", c[1], c[2])
      end
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("answers 7000 for a path below an IP and 7003 for a bad zone id", function()
      assert_fails(404, 7000, "No route for that URI", "GET", "/192.0.2.1/more")
      local text, status = fake:raw("GET", "/client/v4/zones/bad-zone!/cache/origin_cloud_regions", nil, AUTH)
      assert.are.equal(404, status)
      assert.are.equal(7003, cjson.decode(text).errors[1].code)
    end)
  end)
end)

describe("the fake API's rate limit, statistics and response faults", function()
  local BASE = "/client/v4/zones/" .. H.ZONE .. "/cache/origin_cloud_regions"
  local OTHER_TOKEN = "spec-token-second-7e3a"
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
  end)

  -- One request over a raw socket (Connection: close); returns status, headers (lower-case
  -- names), body, and the header section as sent.
  local function request(method, path, headers, body)
    local c = assert(socket.connect(fake.host, fake.port))
    c:settimeout(30)
    body = body or ""
    local lines = { method .. " " .. path .. " HTTP/1.1", "Host: x", "Connection: close",
      "Content-Length: " .. #body }
    for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
    assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
    local all = assert(c:receive("*a"))
    c:close()
    local head, rest = all:match("^(.-)\r\n\r\n(.*)$")
    local status = tonumber(head:match("^HTTP/1%.1 (%d+)"))
    local fields = {}
    for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do fields[name:lower()] = value end
    return status, fields, rest, head .. "\r\n"
  end

  local function bearer(token) return { Authorization = "Bearer " .. (token or H.TOKEN) } end

  local function limit(requests, per)
    local o, status = fake:control("PUT", "/__fake/options", { rate_limit = { requests = requests, per = per } })
    assert.are.equal(200, status)
    return o
  end

  -- r and t of a Ratelimit header, q and w of a Ratelimit-Policy header
  local function rt(h)
    local r, t = h.ratelimit:match('^"default";r=(%d+);t=(%d+)$')
    return tonumber(r), tonumber(t)
  end
  local function qw(h) return h["ratelimit-policy"]:match('^"burst";q=(%d+);w=([%d.]+)$') end

  local function stats() return (fake:control("GET", "/__fake/stats")) end

  describe("rate limit", function()
    it("is off by default: no Ratelimit headers; the option shows null", function()
      local status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.is_nil(h.ratelimit)
      assert.is_nil(h["ratelimit-policy"])
      assert.are.equal(cjson.null, (fake:control("GET", "/__fake/options")).rate_limit)
    end)

    it("sends Ratelimit and Ratelimit-Policy on every API response, counting down", function()
      local o = limit(3, 60)
      assert.are.same({ requests = 3, per = 60 }, o.rate_limit)
      local status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.are.equal('"default";r=2;t=60', h.ratelimit) -- the only request is 60 s from leaving
      assert.are.equal('"burst";q=3;w=60', h["ratelimit-policy"])
      status, h = request("GET", BASE .. "/198.51.100.1", bearer()) -- errors count and carry them too
      assert.are.equal(404, status)
      local r, t = rt(h)
      assert.are.equal(1, r)
      assert.is_true(t >= 1 and t <= 60, h.ratelimit)
      assert.is_nil(h["retry-after"])
      -- control requests are neither limited nor counted
      local _, ch = request("GET", "/__fake/options")
      assert.is_nil(ch.ratelimit)
      status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.are.equal(0, (rt(h)))
    end)

    it("writes a fractional window with up to 3 decimals", function()
      limit(5, 1.25)
      local _, h = request("GET", BASE, bearer())
      assert.are.same({ "5", "1.25" }, { qw(h) })
      assert.are.equal('"default";r=4;t=2', h.ratelimit)
    end)

    it("neither counts nor limits requests without accepted credentials", function()
      limit(1, 60)
      for _, headers in ipairs { {}, bearer("wrong-token") } do
        local status, h = request("GET", BASE, headers)
        assert.is_true(status == 400 or status == 403)
        assert.are.equal('"default";r=1;t=0', h.ratelimit)
      end
      local status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.are.equal(0, (rt(h)))
    end)

    it("refuses the (requests+1)-th request with 429 code 971 and Retry-After, changing nothing", function()
      limit(2, 60)
      assert.are.equal(200, (request("GET", BASE, bearer())))
      assert.are.equal(200, (request("GET", BASE, bearer())))
      fake:fault { status = 500, times = 1 }
      local status, h, body = request("POST", BASE, bearer(),
        cjson.encode { ip = "198.51.100.7", region = "us-east-1", vendor = "aws" })
      assert.are.equal(429, status)
      assert.are.same({ success = false, messages = {}, result = cjson.null,
        errors = { { code = 971, message = "Please wait and consider throttling your request speed" } } },
        cjson.decode(body))
      local wait = tonumber(h["retry-after"])
      assert.is_true(wait >= 1 and wait <= 60, h["retry-after"])
      local r, t = rt(h)
      assert.are.equal(0, r)
      assert.are.equal(wait, t)
      assert.are.same({ "2", "60" }, { qw(h) })
      -- not processed: the zone is unchanged and the queued fault is still there
      assert.are.same({ "192.0.2.1" }, H.pluck(fake:zone(H.ZONE), "origin-ip"))
      assert.are.equal(1, #(fake:control("GET", "/__fake/faults")))
      -- but logged, with its status
      local log = fake:requests()
      assert.are.same({ 200, 200, 429 }, H.pluck(log, "status"))
      assert.are.equal("POST", log[3].method)
    end)

    it("blocks for a whole window after the refusal, then accepts again", function()
      -- timing is what is under test: 1 request per 2 s, margins of 0.5 s or more
      limit(1, 2)
      assert.are.equal(200, (request("GET", BASE, bearer())))  -- T
      socket.sleep(1)
      assert.are.equal(429, (request("GET", BASE, bearer())))  -- ~T+1: refused, blocked until ~T+3
      socket.sleep(1.5)
      -- ~T+2.5: the accepted request has left the window, but the block holds
      local status, h = request("GET", BASE, bearer())
      assert.are.equal(429, status)
      assert.are.equal("1", h["retry-after"])
      socket.sleep(tonumber(h["retry-after"]) + 0.1)
      status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.are.equal('"default";r=0;t=2', h.ratelimit)
    end)

    it("keeps a separate budget per token and per email/key pair", function()
      fake:options { tokens = { H.TOKEN, OTHER_TOKEN } }
      limit(1, 60)
      local legacy = { ["X-Auth-Email"] = H.EMAIL, ["X-Auth-Key"] = H.KEY }
      local statuses = {}
      for _, headers in ipairs { bearer(), bearer(), bearer(OTHER_TOKEN), legacy, bearer(OTHER_TOKEN), legacy } do
        statuses[#statuses + 1] = (request("GET", BASE, headers))
      end
      assert.are.same({ 200, 429, 200, 200, 429, 429 }, statuses)
    end)

    it("is switched off with null and restored to the start-up value by reset", function()
      limit(1, 60)
      request("GET", BASE, bearer())
      local o = fake:control("PUT", "/__fake/options", '{"rate_limit": null}')
      assert.are.equal(cjson.null, o.rate_limit)
      local status, h = request("GET", BASE, bearer())
      assert.are.equal(200, status)
      assert.is_nil(h.ratelimit)
      for _, bad in ipairs { { requests = 0, per = 1 }, { requests = 1, per = 0 }, { requests = 1 },
        { requests = 1.5, per = 1 }, { requests = 1, per = 1, burst = 2 }, 5 } do
        local _, s = fake:control("PUT", "/__fake/options", { rate_limit = bad })
        assert.are.equal(400, s, cjson.encode(bad))
      end
      limit(1, 60)
      fake:reset()
      assert.are.equal(cjson.null, (fake:control("GET", "/__fake/options")).rate_limit)
    end)

    it("takes --rate-limit REQUESTS/SECONDS at start-up", function()
      local limited = H.start_fake { "--rate-limit", "2/0.5" }
      local ok, err = pcall(function()
        assert.are.same({ requests = 2, per = 0.5 }, (limited:control("GET", "/__fake/options")).rate_limit)
        limited:control("PUT", "/__fake/options", { rate_limit = cjson.null })
        limited:reset()
        assert.are.same({ requests = 2, per = 0.5 }, (limited:control("GET", "/__fake/options")).rate_limit)
      end)
      limited:stop()
      assert(ok, err)
      local _, stderr, code = H.run { "--fake-api", "--rate-limit", "2 per second" }
      assert.are.equal(2, code)
      assert.matches("--rate-limit", stderr, 1, true)
    end)
  end)

  describe("statistics", function()
    it("counts API requests and their statuses; reset clears them", function()
      local zero = { requests = 0, by_status = {}, in_flight = 0, peak_in_flight = 0 }
      assert.are.same(zero, stats())
      limit(2, 60)
      request("GET", BASE, bearer())
      request("GET", BASE .. "/198.51.100.1", bearer())
      request("GET", BASE, bearer())
      request("GET", BASE, bearer("wrong-token"))
      fake:control("GET", "/__fake/zones") -- not an API request
      assert.are.same({ requests = 4, by_status = { ["200"] = 1, ["404"] = 1, ["429"] = 1, ["403"] = 1 },
        in_flight = 0, peak_in_flight = 1 }, stats())
      assert.are.same({ 200, 404, 429, 403 }, H.pluck(fake:requests(), "status"))
      fake:reset()
      assert.are.same(zero, stats())
    end)
  end)

  describe("oversize fault", function()
    local PREFIX = '{"success":true,"errors":[],"messages":[],"result":{"padding":"'

    it("processes the request, then sends exactly N bytes with the right Content-Length", function()
      local n = 3 * 1024 * 1024
      fake:fault { oversize = n, match = { method = "POST" } }
      local status, h, body = request("POST", BASE, bearer(),
        cjson.encode { ip = "198.51.100.7", region = "us-east-1", vendor = "aws" })
      assert.are.equal(200, status)
      assert.are.equal(tostring(n), h["content-length"])
      assert.are.equal(n, #body)
      assert.are.equal(PREFIX, body:sub(1, #PREFIX))
      assert.are.equal(n - 2, body:find("[^x]", #PREFIX + 1)) -- filler, then the closing '"}}'
      assert.are.equal(n - #PREFIX - 3, #cjson.decode(body).result.padding)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, H.pluck(fake:zone(H.ZONE), "origin-ip"))
      assert.are.same({ 200 }, H.pluck(fake:requests(), "status"))
    end)

    it("cuts the envelope's start when N is smaller; halves the bytes with truncate", function()
      fake:fault { oversize = 10 }
      local _, h, body = request("GET", BASE, bearer())
      assert.are.equal("10", h["content-length"])
      assert.are.equal(PREFIX:sub(1, 10), body)
      fake:fault { oversize = 1000, truncate = true }
      _, h, body = request("GET", BASE, bearer())
      assert.are.equal("1000", h["content-length"])
      assert.are.equal(500, #body)
      local _, s = fake:control("POST", "/__fake/faults", { oversize = 10, body_override = "{}" })
      assert.are.equal(400, s)
    end)

    it("stops quietly when the client closes early", function()
      fake:fault { oversize = 64 * 1024 * 1024 }
      local c = assert(socket.connect(fake.host, fake.port))
      c:settimeout(10)
      c:send("GET " .. BASE .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. H.TOKEN .. "\r\n\r\n")
      assert.matches("^HTTP/1.1 200", c:receive("*l"))
      assert(c:receive(65536))
      c:close()
      assert.are.equal(200, (request("GET", BASE, bearer())))
    end)
  end)

  describe("header faults", function()
    it("set Retry-After, retry-after-ms and x-should-retry on an error response", function()
      fake:fault { status = 503, errors = { { code = 1000, message = "try later" } },
        headers = { ["Retry-After"] = "1", ["retry-after-ms"] = 1500, ["x-should-retry"] = "true" } }
      local status, h, body, head = request("POST", BASE, bearer(),
        cjson.encode { ip = "198.51.100.7", region = "us-east-1", vendor = "aws" })
      assert.are.equal(503, status)
      assert.are.equal(1000, cjson.decode(body).errors[1].code)
      assert.matches("\r\nRetry%-After: 1\r\n", head)
      assert.matches("\r\nretry%-after%-ms: 1500\r\n", head)
      assert.matches("\r\nx%-should%-retry: true\r\n", head)
      assert.is_nil(h.ratelimit)
      assert.are.equal(1, #fake:zone(H.ZONE))
    end)

    it("add to the Ratelimit headers, replacing one of the same name in any case", function()
      limit(5, 60)
      fake:fault { status = 429, headers = { ["retry-after"] = "7", ratelimit = '"default";r=0;t=7' } }
      local status, h, body, head = request("GET", BASE, bearer())
      assert.are.equal(429, status)
      assert.are.equal(971, cjson.decode(body).errors[1].code)
      assert.are.equal("7", h["retry-after"])
      assert.are.equal('"default";r=0;t=7', h.ratelimit)
      assert.are.same({ "5", "60" }, { qw(h) })
      assert.is_nil(head:find("\r\nRatelimit:", 1, true)) -- only the fault's one
    end)
  end)
end)
