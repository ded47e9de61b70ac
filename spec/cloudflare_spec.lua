-- spec/cloudflare_spec.lua: lua/cloudflare.lua, the public module: bulk_delete end to end
-- against the fake API over real HTTP, asserting on what the server received and what the
-- script got back.
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

local function api_requests(fake)
  local out = {}
  for _, r in ipairs(fake:requests()) do
    if r.path:find("^/client/v4/") then out[#out + 1] = r end
  end
  return out
end

describe("cloudflare.cache.origin_cloud_regions.bulk_delete", function()
  local fake, client

  setup(function()
    fake = H.start_fake()
    client = fake:client()
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
    local res = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips })
    local reqs = api_requests(fake)
    assert.are.equal(3, #reqs)
    assert.are.same(table.move(ips, 1, 100, 1, {}), cjson.decode(reqs[1].body))
    assert.are.same(table.move(ips, 101, 200, 1, {}), cjson.decode(reqs[2].body))
    assert.are.same(table.move(ips, 201, 250, 1, {}), cjson.decode(reqs[3].body))
    assert.are.equal(3, res.requests)
    assert.are.same(ips, H.pluck(res.value.succeeded, "origin_ip"))
    assert.are.same({}, fake:zone(ZONE))
    -- one libcurl handle per client: every batch went over the same connection
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
    local res, err, partial = client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = input }
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
      local c = cloudflare.new { base_url = "http://127.0.0.1:1/client/v4", api_token = H.TOKEN }
      local _, err, partial = call(c)
      assert.are.equal("network", err.kind)
      assert.are.equal(1, partial.requests)
      c:close()
    end)

    it("timeout: the response came later than the client's timeout", function()
      fake:fault { delay = 2 }
      local c = fake:client { timeout = 0.3 }
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
