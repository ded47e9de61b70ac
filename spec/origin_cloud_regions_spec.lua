-- spec/origin_cloud_regions_spec.lua: lua/cloudflare/origin_cloud_regions.lua, every operation
-- end to end against the fake API over real HTTP, asserting on what the server received and
-- what the script got back.
local H = require "spec.helper"
local cjson = require "cjson"

local ZONE = H.ZONE

local function ten(n) -- n distinct addresses 10.0.x.y, in order
  local out = {}
  for i = 1, n do out[i] = string.format("10.0.%d.%d", i // 256, i % 256) end
  return out
end

local function mappings(ips, vendor, region)
  local out = {}
  for i, a in ipairs(ips) do out[i] = { a, region or "us-east-1", vendor or "aws" } end
  return out
end

local function api_requests(fake) return fake:api_requests() end

describe("cloudflare.cache.origin_cloud_regions.bulk_delete", function()
  local fake, client

  setup(function()
    fake = H.start_fake()
    -- no retries here: these specs are about what one failed request leaves behind
    client = fake:client { max_retries = 0 }
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, {
      { "192.0.2.1", "us-east-1", "aws" },
      { "2001:db8::1", "us-central1", "gcp" },
      { "198.51.100.7", "eastus", "azure" },
      { "::ffff:192.0.2.9", "us-ashburn-1", "oci" },
    })
    fake:clear_requests()
  end)

  it("sends one DELETE with a JSON array and reports succeeded and failed per IP", function()
    local res, err = client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "192.0.2.1", "2001:db8::1", "203.0.113.50" },
    }
    assert.is_nil(err)
    local reqs = api_requests(fake)
    assert.are.equal(1, #reqs)
    local r = reqs[1]
    assert.are.equal("DELETE", r.method)
    assert.are.equal("/client/v4/zones/" .. ZONE .. "/cache/origin_cloud_regions/batch", r.path)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal("Bearer " .. H.TOKEN, r.headers["authorization"])
    assert.matches("^cfrun/%d+%.%d+%.%d+", r.headers["user-agent"])
    assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.50" }, cjson.decode(r.body))

    assert.are.equal("origin_public_cloud_region", res.id)
    assert.is_true(res.editable)
    assert.is_string(res.modified_on)
    assert.are.equal(1, res.requests)
    assert.are.same({
      { origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws", input = "192.0.2.1" },
      { origin_ip = "2001:db8::1", region = "us-central1", vendor = "gcp", input = "2001:db8::1" },
    }, res.value.succeeded)
    assert.are.same({
      { origin_ip = "203.0.113.50", error = "mapping not found", input = "203.0.113.50" },
    }, res.value.failed)
    assert.are.same({}, res.value.pending)
    -- and the server's state really changed
    local left = H.pluck(fake:zone(ZONE), "origin-ip")
    assert.are.same({ "198.51.100.7", "::ffff:192.0.2.9" }, left)
  end)

  it("turns JSON null modified_on into nil when nothing was deleted", function()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "203.0.113.50" } })
    assert.is_nil(res.modified_on)
    assert.are.equal(1, #res.value.failed)
    assert.are.equal(0, #res.value.succeeded)
  end)

  it("reads the IP from the origin_ip wire key as well as origin-ip", function()
    fake:options { wire_key = "origin_ip" }
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "192.0.2.1", "203.0.113.50" } })
    -- the server really used the underscore key on the wire
    local raw = fake:raw("DELETE", "/client/v4/zones/" .. ZONE .. "/cache/origin_cloud_regions/batch",
      '["198.51.100.7"]', { authorization = "Bearer " .. H.TOKEN })
    assert.matches('"origin_ip"', raw)
    assert.is_nil(raw:find('"origin-ip"', 1, true))
    assert.are.same({ origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws",
      input = "192.0.2.1" }, res.value.succeeded[1])
    assert.are.equal("203.0.113.50", res.value.failed[1].origin_ip)
  end)

  it("canonicalises, sends each address once and keeps the caller's first spelling", function()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE,
      ips = { "2001:DB8:0:0:0:0:0:1", "2001:db8::1", "::FFFF:C000:0209", "192.0.2.1",
        "192.0.2.1", "2001:0db8:0000:0000:0000:0000:0000:0001" },
    })
    local reqs = api_requests(fake)
    assert.are.same({ "2001:db8::1", "::ffff:192.0.2.9", "192.0.2.1" }, cjson.decode(reqs[1].body))
    assert.are.same({ "2001:db8::1", "::ffff:192.0.2.9", "192.0.2.1" },
      H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.same({ "2001:DB8:0:0:0:0:0:1", "::FFFF:C000:0209", "192.0.2.1" },
      H.pluck(res.value.succeeded, "input"))
    assert.are.equal(0, #res.value.failed)
  end)

  it("reports strings that are not addresses as failed without sending them", function()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "192.0.2.1", "db01.example.com", "300.1.1.1", "db01.example.com" } })
    local reqs = api_requests(fake)
    assert.are.same({ "192.0.2.1" }, cjson.decode(reqs[1].body))
    assert.are.same({
      { origin_ip = "db01.example.com", error = "invalid IP address", input = "db01.example.com" },
      { origin_ip = "300.1.1.1", error = "invalid IP address", input = "300.1.1.1" },
    }, res.value.failed)
  end)

  it("lists failed items in the order of the caller's inputs", function()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "bad-1", "203.0.113.50", "192.0.2.1", "bad-2", "203.0.113.51" } })
    assert.are.same({ "bad-1", "203.0.113.50", "bad-2", "203.0.113.51" },
      H.pluck(res.value.failed, "input"))
    assert.are.same({ "invalid IP address", "mapping not found", "invalid IP address",
      "mapping not found" }, H.pluck(res.value.failed, "error"))
  end)

  it("makes no request for an empty list (or one with no valid address)", function()
    for _, ips in ipairs { {}, { "nope" } } do
      local res = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips })
      assert.are.equal(0, res.requests)
      assert.are.equal("origin_public_cloud_region", res.id)
      assert.are.equal(0, #res.value.succeeded)
      assert.are.equal(#ips, #res.value.failed)
    end
    assert.are.equal(0, #api_requests(fake))
  end)

  it("splits 250 addresses into batches of 100, 100 and 50 and merges them in order", function()
    local ips = ten(250)
    fake:set_zone(ZONE, mappings(ips))
    fake:clear_requests()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips,
      concurrency = 1 })
    local reqs = api_requests(fake)
    assert.are.equal(3, #reqs)
    assert.are.same(table.move(ips, 1, 100, 1, {}), cjson.decode(reqs[1].body))
    assert.are.same(table.move(ips, 101, 200, 1, {}), cjson.decode(reqs[2].body))
    assert.are.same(table.move(ips, 201, 250, 1, {}), cjson.decode(reqs[3].body))
    assert.are.equal(3, res.requests)
    assert.are.same(ips, H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.same({}, fake:zone(ZONE))
    -- one at a time, every batch went over the same kept-alive connection
    assert.are.equal(reqs[1].conn, reqs[2].conn)
    assert.are.equal(reqs[2].conn, reqs[3].conn)
  end)

  it("stops at a failed second batch and returns nil, err, partial with pending", function()
    local ips = ten(250)
    fake:set_zone(ZONE, mappings(ips))
    fake:clear_requests()
    fake:fault { skip = 1, status = 500, errors = { { code = 1141,
      message = "Unable to delete origin_public_cloud_region setting. Internal error." } } }
    local input = { "bogus" }
    table.move(ips, 1, #ips, 2, input)
    local res, err, partial = client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
      ips = input, concurrency = 1 }
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(500, err.status)
    assert.are.equal(1141, err.errors[1].code)
    assert.are.equal("integer", math.type(err.errors[1].code))
    assert.are.equal("HTTP 500: [1141] Unable to delete origin_public_cloud_region setting. Internal error.",
      err.message)
    assert.are.equal(err.message, tostring(err))
    assert.matches("%-FAKE$", err.request_id)
    assert.are.equal(2, #api_requests(fake)) -- the third batch was never sent
    assert.are.equal(2, partial.requests)
    assert.are.same(table.move(ips, 1, 100, 1, {}), H.pluck(partial.value.succeeded, "origin_ip"))
    assert.are.same({ "bogus" }, H.pluck(partial.value.failed, "input"))
    assert.are.same(table.move(ips, 101, 250, 1, {}), partial.value.pending)
    -- every input is accounted for exactly once
    assert.are.equal(#input, #partial.value.succeeded + #partial.value.failed + #partial.value.pending)
    assert.are.equal(150, #fake:zone(ZONE))
  end)

  describe("returns each kind of wire failure", function()
    local function call(c)
      return (c or client).cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
        ips = { "192.0.2.1", "198.51.100.7" } }
    end

    it("http: an error status without a Cloudflare envelope", function()
      fake:fault { status = 502, body = "<html><body>502 Bad Gateway</body></html>",
        content_type = "text/html" }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.status)
      assert.are.same({}, err.errors)
      assert.matches("^HTTP 502: .*Bad Gateway", err.message)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
    end)

    it("network: the connection dropped before a response", function()
      fake:fault { drop = "before" }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.are.equal("network", err.kind)
      assert.is_nil(err.status)
      assert.matches("^network error: ", err.message)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      assert.are.equal(4, #fake:zone(ZONE))
    end)

    it("network: a lost response leaves the batch pending although the server acted", function()
      fake:fault { drop = "after" }
      local _, err, partial = call()
      assert.are.equal("network", err.kind)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      assert.are.equal(2, #fake:zone(ZONE))
    end)

    it("network: nothing listening", function()
      local c = cloudflare.new { base_url = "http://127.0.0.1:1/client/v4", api_token = H.TOKEN,
        max_retries = 0 }
      local _, err, partial = call(c)
      assert.are.equal("network", err.kind)
      assert.are.equal(1, partial.requests)
      c:close()
    end)

    it("timeout: the response came later than the client's timeout", function()
      fake:fault { delay = 2 }
      local c = fake:client { timeout = 0.3, max_retries = 0 }
      local _, err, partial = call(c)
      assert.are.equal("timeout", err.kind)
      assert.matches("^timeout: ", err.message)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      c:close()
    end)

    it("decode: a body that is not JSON", function()
      fake:fault { malformed = true }
      local _, err, partial = call()
      assert.are.equal("decode", err.kind)
      assert.are.equal(200, err.status)
      assert.matches("invalid JSON", err.message)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
    end)

    it("network: a body cut short", function()
      fake:fault { truncate = true }
      local _, err, partial = call()
      assert.are.equal("network", err.kind)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
    end)

    it("decode: JSON of the wrong shape never counts as succeeded", function()
      for _, body in ipairs {
        '{"success":true,"errors":[],"messages":[],"result":"oops"}',
        '{"success":true,"errors":[],"messages":[],"result":null}',
        '{"success":true,"errors":[],"messages":[],"result":{"value":{}}}',
        '[1,2,3]',
      } do
        fake:fault { body_override = body }
        local res, err, partial = call()
        assert.is_nil(res, body)
        assert.are.equal("decode", err.kind, body)
        assert.are.equal(0, #partial.value.succeeded, body)
        assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending, body)
      end
    end)

    it("decode: an oversized body, refused unread, leaves every IP pending", function()
      fake:fault { oversize = 40 * 1024 * 1024 }
      local _, err, partial = call()
      assert.are.equal("decode", err.kind)
      assert.matches("larger than", err.message)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
    end)

    it("decode: absurd nesting, numbers for strings, items without an IP", function()
      for _, body in ipairs {
        string.rep("[", 5000) .. string.rep("]", 5000),
        '{"success":true,"errors":[],"messages":[],"result":{"value":{"succeeded":[{"origin-ip":7}],"failed":[]}}}',
        '{"success":true,"errors":[],"messages":[],"result":{"value":{"succeeded":[{"region":"x"}],"failed":[]}}}',
        '{"success":true,"errors":[],"messages":[],"result":{"value":{"succeeded":"all","failed":[]}}}',
      } do
        fake:fault { body_override = body }
        local res, err, partial = call()
        assert.is_nil(res)
        assert.are.equal("decode", err.kind)
        assert.are.equal(0, #partial.value.succeeded)
        assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      end
    end)

    it("api: 429 with Retry-After leaves every IP pending and says when to come back", function()
      fake:fault { status = 429, errors = { { code = 971, message = "Please wait" } },
        headers = { ["Retry-After"] = "42" } }
      local _, err, partial = call()
      assert.are.equal("api", err.kind)
      assert.are.equal(429, err.status)
      assert.are.equal(42, err.retry_after)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      assert.are.equal(4, #fake:zone(ZONE))
    end)

    it("decode: an IP reported twice, or one never sent, makes the call suspect (found by fuzzing)", function()
      local function body(succeeded)
        return cjson.encode { success = true, errors = {}, messages = {}, result = {
          id = "origin_public_cloud_region", editable = true, modified_on = cjson.null,
          value = { succeeded = succeeded, failed = { { ["origin-ip"] = "198.51.100.7", error = "x" } } } } }
      end
      fake:fault { body_override = body { { ["origin-ip"] = "192.0.2.1" }, { ["origin-ip"] = "192.0.2.1" } } }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.matches("reports 192.0.2.1 twice", err.message)
      assert.are.equal(1, #partial.value.succeeded)
      fake:fault { body_override = body { { ["origin-ip"] = "192.0.2.1" }, { ["origin-ip"] = "198.18.0.1" } } }
      res, err, partial = call()
      assert.is_nil(res)
      assert.matches("names 198.18.0.1, which was not sent", err.message)
      assert.are.same({ "192.0.2.1", "198.18.0.1" }, H.pluck(partial.value.succeeded, "origin_ip"))
      assert.are.equal("192.0.2.1", partial.value.succeeded[1].input)
      assert.is_nil(partial.value.succeeded[2].input) -- not the caller's: no input to name
      fake:fault { body_override = '{"success":true,"errors":[],"messages":[],"result":{"value":{"a":1}}}' }
      local listed
      listed, err = client.cache.origin_cloud_regions.list { zone_id = ZONE }
      assert.is_nil(listed)
      assert.matches("result.value is not a list", err.message)
    end)

    it("decode: a response that leaves out an IP sent keeps it pending", function()
      fake:fault { body_override = cjson.encode { success = true, errors = {}, messages = {},
        result = { id = "origin_public_cloud_region", editable = true, modified_on = cjson.null,
          value = { succeeded = { { ["origin-ip"] = "192.0.2.1", region = "r", vendor = "aws" } },
            failed = {} } } } }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.are.equal("decode", err.kind)
      assert.matches("accounts for 1 of the 2", err.message)
      assert.are.same({ "192.0.2.1" }, H.pluck(partial.value.succeeded, "origin_ip"))
      assert.are.same({ "198.51.100.7" }, partial.value.pending)
    end)

    it("api: wrong credentials get Cloudflare's envelope, never echoing the secret", function()
      local c = fake:client { api_token = "wrong-secret-token-123" }
      local _, err = call(c)
      assert.are.equal("api", err.kind)
      assert.are.equal(403, err.status)
      assert.are.equal(10000, err.errors[1].code)
      assert.is_nil(err.message:find("wrong-secret-token-123", 1, true))
      assert.is_nil(tostring(c):find("wrong-secret-token-123", 1, true))
      c:close()
    end)
  end)

  it("authenticates with X-Auth-Email and X-Auth-Key", function()
    local c = fake:client { api_token = false, api_email = H.EMAIL, api_key = H.KEY }
    local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "192.0.2.1" } })
    assert.are.equal(1, #res.value.succeeded)
    local r = api_requests(fake)[1]
    assert.are.equal(H.EMAIL, r.headers["x-auth-email"])
    assert.are.equal(H.KEY, r.headers["x-auth-key"])
    assert.is_nil(r.headers["authorization"])
    c:close()
  end)

  describe("raises for programming mistakes, naming the argument", function()
    local bd
    before_each(function() bd = client.cache.origin_cloud_regions.bulk_delete end)

    it("zone_id missing, too long, or not letters and digits", function()
      assert.has_error(function() bd { ips = {} } end,
        "bulk_delete: bad argument 'zone_id': missing (the zone identifier, 32 hex digits)")
      assert.error_matches(function() bd { zone_id = string.rep("a", 33), ips = {} } end,
        "bad argument 'zone_id': expected 1 to 32 letters and digits")
      assert.error_matches(function() bd { zone_id = "abc/../../user", ips = {} } end,
        "bad argument 'zone_id'")
      assert.error_matches(function() bd { zone_id = 42, ips = {} } end,
        "bad argument 'zone_id': expected a string, got number")
    end)

    it("ips not a list of strings", function()
      assert.error_matches(function() bd { zone_id = ZONE } end, "bad argument 'ips'")
      assert.error_matches(function() bd { zone_id = ZONE, ips = "192.0.2.1" } end,
        "bad argument 'ips': expected a list of IP address strings, got string")
      assert.error_matches(function() bd { zone_id = ZONE, ips = { "192.0.2.1", 7 } } end,
        "bad argument 'ips': element 2 is a number, expected a string")
      assert.error_matches(function() bd { zone_id = ZONE, ips = { a = "192.0.2.1" } } end,
        "bad argument 'ips': expected a list")
    end)

    it("a misspelt argument or a call without a table", function()
      assert.error_matches(function() bd { zone_id = ZONE, ip = { "192.0.2.1" } } end,
        'unknown argument "ip"')
      assert.error_matches(function() bd(ZONE) end, "expected a table of arguments")
    end)

    it("nothing was sent for any of them", function()
      pcall(bd, { zone_id = "x/y", ips = { "192.0.2.1" } })
      assert.are.equal(0, #api_requests(fake))
    end)
  end)
end)

describe("the rest of cache.origin_cloud_regions", function()
  local fake, client, ocr
  local BASE = "/client/v4/zones/" .. ZONE .. "/cache/origin_cloud_regions"

  setup(function()
    fake = H.start_fake()
    client = fake:client { max_retries = 0 }
    ocr = client.cache.origin_cloud_regions
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, {
      { "192.0.2.1", "us-east-1", "aws" },
      { "2001:db8::1", "us-central1", "gcp" },
    })
    fake:clear_requests()
  end)

  it("list returns the mappings in the server's order", function()
    local res = assert(ocr.list { zone_id = ZONE })
    local r = api_requests(fake)[1]
    assert.are.equal("GET", r.method)
    assert.are.equal(BASE, r.path)
    assert.are.equal("origin_public_cloud_region", res.id)
    assert.are.equal(2, #res.value)
    assert.are.same({ "192.0.2.1", "2001:db8::1" }, H.pluck(res.value, "origin_ip"))
    assert.are.same({ "aws", "gcp" }, H.pluck(res.value, "vendor"))
    assert.is_string(res.value[1].modified_on)
  end)

  it("list of an empty zone is an empty table that encodes back as []", function()
    fake:set_zone(ZONE, {})
    local res = assert(ocr.list { zone_id = ZONE })
    assert.are.same({}, res.value)
    assert.is_nil(res.modified_on)
    assert.are.equal('{"editable":true,"id":"origin_public_cloud_region","requests":1,"value":[]}',
      cloudflare.json.encode(res))
  end)

  it("get percent-encodes an IPv6 address in the path", function()
    local res = assert(ocr.get { zone_id = ZONE, ip = "2001:DB8:0::1" })
    assert.are.equal(BASE .. "/2001%3Adb8%3A%3A1", api_requests(fake)[1].path)
    assert.are.same({ origin_ip = "2001:db8::1", region = "us-central1", vendor = "gcp",
      modified_on = res.value.modified_on }, res.value)
  end)

  it("get of an absent mapping returns the API's 404 with code 1142", function()
    local res, err = ocr.get { zone_id = ZONE, ip = "198.51.100.1" }
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal(1142, err.errors[1].code)
  end)

  it("create sends {ip, region, vendor} and returns the new mapping; twice is 1145", function()
    local res = assert(ocr.create { zone_id = ZONE, ip = "::FFFF:198.51.100.1", region = "eu-west-1", vendor = "aws" })
    local r = api_requests(fake)[1]
    assert.are.equal("POST", r.method)
    assert.are.equal(BASE, r.path)
    assert.are.same({ ip = "::ffff:198.51.100.1", region = "eu-west-1", vendor = "aws" }, cjson.decode(r.body))
    assert.are.equal("::ffff:198.51.100.1", res.value.origin_ip)
    local again, err = ocr.create { zone_id = ZONE, ip = "::ffff:198.51.100.1", region = "eu-west-1", vendor = "aws" }
    assert.is_nil(again)
    assert.are.equal(1145, err.errors[1].code)
    assert.are.equal(400, err.status)
  end)

  it("create at the zone limit is refused with 1164", function()
    fake:options { max_mappings = 2 }
    local _, err = ocr.create { zone_id = ZONE, ip = "198.51.100.1", region = "eu-west-1", vendor = "aws" }
    assert.are.equal(403, err.status)
    assert.are.equal(1164, err.errors[1].code)
  end)

  it("edit upserts one mapping with PATCH and returns the whole list", function()
    local res = assert(ocr.edit { zone_id = ZONE, ip = "192.0.2.1", region = "us-west-2", vendor = "aws" })
    local r = api_requests(fake)[1]
    assert.are.equal("PATCH", r.method)
    assert.are.equal(BASE, r.path)
    assert.are.equal(2, #res.value)
    assert.are.equal("us-west-2", res.value[1].region)
    res = assert(ocr.edit { zone_id = ZONE, ip = "203.0.113.9", region = "eastus", vendor = "azure" })
    assert.are.equal(3, #res.value)
  end)

  it("delete returns the mapping it removed; absent is 1163", function()
    local res = assert(ocr.delete { zone_id = ZONE, ip = "2001:db8::1" })
    local r = api_requests(fake)[1]
    assert.are.equal("DELETE", r.method)
    assert.are.equal(BASE .. "/2001%3Adb8%3A%3A1", r.path)
    assert.are.equal("gcp", res.value.vendor)
    assert.are.equal("us-central1", res.value.region)
    local _, err = ocr.delete { zone_id = ZONE, ip = "2001:db8::1" }
    assert.are.equal(404, err.status)
    assert.are.equal(1163, err.errors[1].code)
    assert.are.same({ "192.0.2.1" }, H.pluck(fake:zone(ZONE), "origin-ip"))
  end)

  it("bulk_edit batches, canonicalises, keeps the last duplicate and rejects bad items locally", function()
    local items = {
      { ip = "192.0.2.1", region = "us-west-2", vendor = "aws" },
      { ip = "not-an-ip", region = "us-east-1", vendor = "aws" },
      { ip = "198.51.100.1", region = "us-east-1", vendor = "amazon" },
      { ip = "198.51.100.2", region = "", vendor = "aws" },
      { ip = "192.0.2.1", region = "eu-west-1", vendor = "aws" },
      { ip = "2001:DB8::5", region = "westeurope", vendor = "azure" },
    }
    local res = assert(ocr.bulk_edit { zone_id = ZONE, items = items })
    local reqs = api_requests(fake)
    assert.are.equal(1, #reqs)
    assert.are.equal("PATCH", reqs[1].method)
    assert.are.equal(BASE .. "/batch", reqs[1].path)
    assert.are.same({
      { ip = "192.0.2.1", region = "eu-west-1", vendor = "aws" },
      { ip = "2001:db8::5", region = "westeurope", vendor = "azure" },
    }, cjson.decode(reqs[1].body))
    assert.are.same({ "192.0.2.1", "2001:db8::5" }, H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.same({ "eu-west-1", "westeurope" }, H.pluck(res.value.succeeded, "region"))
    assert.are.same({ "duplicate IP in request", "invalid IP address", "unsupported vendor",
      "region must be a non-empty string" }, H.pluck(res.value.failed, "error"))
    assert.are.same({ "192.0.2.1", "not-an-ip", "198.51.100.1", "198.51.100.2" },
      H.pluck(res.value.failed, "input"))
  end)

  it("bulk_edit of 150 items sends 100 + 50 and reports the server's own refusals", function()
    local items = {}
    for i = 1, 150 do
      items[i] = { ip = string.format("10.1.%d.%d", i // 256, i % 256), region = "us-east-1", vendor = "aws" }
    end
    items[150].region = "mars-north-1" -- valid shape, unknown to the API
    local res = assert(ocr.bulk_edit { zone_id = ZONE, items = items, concurrency = 1 })
    assert.are.equal(2, res.requests)
    local reqs = api_requests(fake)
    assert.are.equal(100, #cjson.decode(reqs[1].body))
    assert.are.equal(50, #cjson.decode(reqs[2].body))
    assert.are.equal(149, #res.value.succeeded)
    assert.are.same({ { origin_ip = "10.1.0.150", error = "unsupported region", input = "10.1.0.150" } },
      res.value.failed)
    assert.are.equal(151, #fake:zone(ZONE))
  end)

  it("bulk_edit failing mid-way returns partial with pending", function()
    local items = {}
    for i = 1, 120 do
      items[i] = { ip = string.format("10.2.0.%d", i), region = "us-east-1", vendor = "aws" }
    end
    fake:fault { skip = 1, status = 500, errors = { { code = 1141, message = "Internal error." } } }
    local res, err, partial = ocr.bulk_edit { zone_id = ZONE, items = items, concurrency = 1 }
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(100, #partial.value.succeeded)
    assert.are.equal(20, #partial.value.pending)
    assert.are.equal("10.2.0.101", partial.value.pending[1])
  end)

  it("bulk_delete with dry_run lists the zone and sends nothing that mutates", function()
    local res = assert(ocr.bulk_delete { zone_id = ZONE, dry_run = true,
      ips = { "2001:db8::1", "198.51.100.50", "junk", "192.0.2.1" } })
    local reqs = api_requests(fake)
    assert.are.equal(1, #reqs)
    assert.are.equal("GET", reqs[1].method)
    assert.are.equal(BASE, reqs[1].path)
    assert.is_true(res.dry_run)
    assert.are.same({
      { origin_ip = "2001:db8::1", region = "us-central1", vendor = "gcp", input = "2001:db8::1" },
      { origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws", input = "192.0.2.1" },
    }, res.value.succeeded)
    assert.are.same({ "198.51.100.50", "junk" }, H.pluck(res.value.failed, "input"))
    assert.are.same({ "mapping not found", "invalid IP address" }, H.pluck(res.value.failed, "error"))
    assert.are.equal(2, #fake:zone(ZONE))
  end)

  it("supported_regions returns vendors with their regions and upper-tier colos", function()
    local res = assert(ocr.supported_regions { zone_id = ZONE })
    assert.are.equal(BASE .. "/supported_regions", api_requests(fake)[1].path)
    assert.is_true(res.obtained_codes)
    for _, v in ipairs { "aws", "azure", "gcp", "oci" } do
      assert.is_true(#res.vendors[v] > 0, v)
    end
    local names = H.pluck(res.vendors.aws, "name")
    assert.is_truthy(table.concat(names, " "):find("us-east-1", 1, true))
    assert.is_string(res.vendors.aws[1].upper_tier_colos[1])
  end)

  it("raises for bad arguments to create and edit, sending nothing", function()
    assert.error_matches(function()
      ocr.create { zone_id = ZONE, ip = "192.0.2.9", region = "us-east-1", vendor = "amazon" }
    end, "create: bad argument 'vendor': expected one of aws, azure, gcp, oci")
    assert.error_matches(function()
      ocr.edit { zone_id = ZONE, ip = "192.0.2.9", region = "", vendor = "aws" }
    end, "edit: bad argument 'region'")
    assert.error_matches(function()
      ocr.get { zone_id = ZONE, ip = "192.0.2.999" }
    end, "get: bad argument 'ip': invalid IP address")
    assert.error_matches(function()
      ocr.bulk_edit { zone_id = ZONE, items = { "192.0.2.1" } }
    end, "bulk_edit: bad argument 'items': element 1 is a string")
    assert.are.equal(0, #api_requests(fake))
  end)

  it("the default client exposes every operation", function()
    for _, op in ipairs { "list", "get", "create", "edit", "delete", "bulk_edit", "bulk_delete",
      "supported_regions" } do
      assert.is_function(cloudflare.cache.origin_cloud_regions[op], op)
      assert.is_function(ocr[op], op)
    end
  end)
end)
