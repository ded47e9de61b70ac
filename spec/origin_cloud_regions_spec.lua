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
    assert.are.equal(H.path(ZONE, "/batch"), r.path)
    assert.are.equal("application/json", r.headers["content-type"])
    -- the fake accepted the token it was started with, and never shows it in its log
    assert.are.equal("token", r.credential)
    assert.are.equal("Bearer <redacted>", r.headers["authorization"])
    assert.matches("^cfrun/%d+%.%d+%.%d+", r.headers["user-agent"])
    assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.50" }, cjson.decode(r.body))

    assert.are.equal(H.GENERATION, res.generation)
    if H.V1 then
      assert.are.equal("origin_public_cloud_region", res.id)
      assert.is_true(res.editable)
      assert.is_string(res.modified_on)
    else -- v2 has no setting object: no id, editable or set-level modified_on
      assert.is_nil(res.id)
      assert.is_nil(res.editable)
      assert.is_nil(res.modified_on)
    end
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
    fake:options { wire_key = "origin_ip" } -- v1 answers so; v2 always does
    local res = assert(client.cache.origin_cloud_regions.bulk_delete {
      zone_id = ZONE, ips = { "192.0.2.1", "203.0.113.50" } })
    -- the server really used the underscore key on the wire
    local raw = fake:raw("DELETE", H.path(ZONE, "/batch"),
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
      { origin_ip = "db01.example.com", error = "invalid IP address: a host name, not an address",
        input = "db01.example.com" },
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
      assert.are.equal(H.V1 and "origin_public_cloud_region" or nil, res.id)
      assert.are.equal(H.GENERATION, res.generation)
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

  it("stops at a failed second batch: its IPs pending (a 500 may have applied it), the rest unsent", function()
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
    assert.are.same(table.move(ips, 101, 200, 1, {}), partial.value.pending)
    assert.are.same(table.move(ips, 201, 250, 1, {}), partial.value.unsent)
    -- every input is accounted for exactly once
    assert.are.equal(#input, #partial.value.succeeded + #partial.value.failed + #partial.value.pending
      + #partial.value.unsent)
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

    it("a request refused as a whole (403, 401, 400, 404 no route) leaves every IP unsent, none pending", function()
      for _, case in ipairs { { 403, 10000 }, { 401, 10001 }, { 400, 6003 }, { 404, 7000 } } do
        fake:fault { status = case[1], errors = { { code = case[2], message = "refused" } } }
        local res, err, partial = call()
        assert.is_nil(res)
        assert.are.equal(case[1], err.status)
        assert.is_true(err.unsent, tostring(case[1]))
        assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.unsent)
        assert.are.same({}, partial.value.pending)
        assert.are.equal(4, #fake:zone(ZONE)) -- and indeed nothing changed
      end
    end)

    it("408, 409, 429 and 5xx may have been applied: their IPs stay pending, never unsent", function()
      for _, st in ipairs { 408, 409, 429, 500, 503 } do
        fake:fault { status = st, times = 10 }
        local _, err, partial = call(fake:client { max_retries = 0 })
        assert.are.equal(st, err.status)
        assert.is_nil(err.unsent)
        assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
        assert.are.same({}, partial.value.unsent)
        fake:clear_faults()
      end
    end)

    it("a connection refused before the request was written leaves every IP unsent", function()
      local port = require("socket").bind("127.0.0.1", 0) -- bound, never listened on
      local _, p = port:getsockname()
      port:close()
      local c = cloudflare.new { base_url = "http://127.0.0.1:" .. p .. "/client/v4",
        api_token = H.TOKEN, max_retries = 1 }
      local res, err, partial = c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
        ips = { "192.0.2.1", "198.51.100.7" } }
      assert.is_nil(res)
      assert.are.equal("network", err.kind)
      assert.is_true(err.unsent)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.unsent)
      assert.are.same({}, partial.value.pending)
      c:close()
    end)

    it("a retry after a lost attempt is pending even when the last attempt was refused", function()
      fake:fault { drop = "after" } -- attempt 1: the server deleted, the answer was lost
      fake:fault { skip = 1, status = 403, errors = { { code = 10000, message = "refused" } } }
      local _, err, partial = call(fake:client { max_retries = 1 })
      assert.are.equal(403, err.status, err.message)
      assert.is_nil(err.unsent) -- the first attempt may have been applied (it was)
      assert.are.same({ "192.0.2.1", "198.51.100.7" }, partial.value.pending)
      assert.are.equal(2, #fake:zone(ZONE))
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
        '{"success":true,"errors":[],"messages":[],"result":{}}',
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
        H.envelope { succeeded = { H.item(7) }, failed = {} },
        H.envelope { succeeded = { { region = "x" } }, failed = {} },
        H.envelope { succeeded = "all", failed = {} },
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
        return H.envelope { succeeded = succeeded, failed = { H.item("198.51.100.7", { error = "x" }) } }
      end
      fake:fault { body_override = body { H.item "192.0.2.1", H.item "192.0.2.1" } }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.matches("reports 192.0.2.1 twice", err.message)
      assert.are.equal(1, #partial.value.succeeded)
      fake:fault { body_override = body { H.item "192.0.2.1", H.item "198.18.0.1" } }
      res, err, partial = call()
      assert.is_nil(res)
      assert.matches("names 198.18.0.1, which was not sent", err.message)
      -- not the caller's: kept apart (err.unexpected), so the four lists stay a partition
      assert.are.same({ "192.0.2.1" }, H.pluck(partial.value.succeeded, "origin_ip"))
      assert.are.equal("192.0.2.1", partial.value.succeeded[1].input)
      assert.are.same({ { origin_ip = "198.18.0.1", list = "succeeded" } }, err.unexpected)
      fake:fault { body_override = H.envelope { a = 1 } }
      local listed
      listed, err = client.cache.origin_cloud_regions.list { zone_id = ZONE }
      assert.is_nil(listed)
      assert.matches((H.V1 and "result.value" or "result") .. " is not a list", err.message)
    end)

    it("decode: a malformed item is named; the items beside it still count, and what it hid is pending", function()
      local where = H.V1 and "result.value" or "result"
      fake:fault { body_override = H.envelope {
        succeeded = { 7, { region = "us-east-1", vendor = "aws" }, H.item("192.0.2.1", { region = 5 }) },
        failed = { H.item("198.51.100.7", { error = false }) } } }
      local res, err, partial = call()
      assert.is_nil(res)
      assert.are.equal("decode", err.kind)
      assert.truthy(err.message:find(where .. ".succeeded[1] has no origin_ip string", 1, true), err.message)
      local ok = partial.value.succeeded[1]
      -- a region that is not a string is not passed on; a failure without an error string has one
      assert.are.same({ origin_ip = "192.0.2.1", input = "192.0.2.1" }, ok)
      assert.are.same({ { origin_ip = "198.51.100.7", input = "198.51.100.7", error = "unknown error" } },
        partial.value.failed)
      assert.are.same({}, partial.value.pending) -- both IPs sent were accounted for
    end)

    it("decode: a response naming an IP of a later batch never makes it both succeeded and pending", function()
      local list = {}
      for i = 1, 201 do list[i] = { string.format("10.7.%d.%d", i // 250, i % 250), "us-east-1", "aws" } end
      fake:set_zone(ZONE, list)
      local ips = H.pluck(list, 1)
      -- batch 1's answer claims the first IP of batch 3 as deleted too
      local claimed = ips[201]
      local items = {}
      for i = 1, 100 do items[i] = H.item(ips[i]) end
      items[101] = H.item(claimed)
      fake:fault { body_override = H.envelope { succeeded = items, failed = {} } }
      local res, err, partial = client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE,
        ips = ips, concurrency = 1 }
      assert.is_nil(res)
      assert.are.equal("decode", err.kind)
      assert.matches("names " .. claimed:gsub("%.", "%%.") .. ", which was not sent in this request", err.message)
      local v, where = partial.value, {}
      for _, name in ipairs { "succeeded", "failed", "pending", "unsent" } do
        for _, e in ipairs(v[name]) do
          local ip = type(e) == "table" and e.origin_ip or e
          assert.is_nil(where[ip], ip .. " is both " .. tostring(where[ip]) .. " and " .. name)
          where[ip] = name
        end
      end
      for _, ip in ipairs(ips) do assert.is_not_nil(where[ip], ip .. " has no outcome") end
      assert.are.equal(100, #v.succeeded)
      -- never sent, but a server said it deleted it: its fate is unknown, not "unsent"
      assert.are.equal("pending", where[claimed])
      assert.are.equal(100, #v.unsent) -- batch 2 and the rest of batch 3: never started
      assert.are.equal(101, #fake:zone(ZONE))
    end)

    it("decode: a response that leaves out an IP sent keeps it pending", function()
      fake:fault { body_override = H.envelope { succeeded = { H.item("192.0.2.1",
        { region = "r", vendor = "aws" }) }, failed = {} } }
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
    assert.are.equal("key", r.credential) -- the fake accepted this email and key
    assert.are.equal("<redacted>", r.headers["x-auth-key"])
    assert.is_nil(r.headers["authorization"])
    c:close()
  end)

  describe("raises for programming mistakes, naming the argument", function()
    local bd
    before_each(function() bd = client.cache.origin_cloud_regions.bulk_delete end)

    it("zone_id missing, too long, or not 32 hex digits", function()
      assert.has_error(function() bd { ips = {} } end,
        "bulk_delete: bad argument 'zone_id': missing (the zone identifier, 32 hex digits)")
      assert.error_matches(function() bd { zone_id = string.rep("a", 33), ips = {} } end,
        "bad argument 'zone_id': expected 32 hex digits, got 33 characters")
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
  local BASE = H.path(ZONE)

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

  -- "METHOD suffix" of each API request the server received, in order
  local function calls()
    local out = {}
    for i, r in ipairs(api_requests(fake)) do out[i] = r.method .. " " .. H.suffix(r.path) end
    return out
  end

  it("the client says which generation it talks to, v2 unless told otherwise", function()
    assert.are.equal(H.GENERATION, client.generation)
    local c1, c2 = fake:client { generation = "v1" }, fake:client { generation = "v2" }
    assert.are.equal("v1", c1.generation)
    assert.are.equal("v2", c2.generation)
    c1:close()
    c2:close()
    assert.error_matches(function() fake:client { generation = "v3" } end,
      'cloudflare.new: generation must be "v1" or "v2", got "v3"')
    local _, err, code = H.run({ "-e", "cloudflare.default_client()" },
      { env = { CFRUN_API_GENERATION = "2", CLOUDFLARE_API_TOKEN = "t" } })
    assert.are.equal(1, code)
    assert.matches('generation must be "v1" or "v2", got "2" %(from CFRUN_API_GENERATION%)', err)
  end)

  it("list returns the mappings in the server's order", function()
    local res = assert(ocr.list { zone_id = ZONE })
    local r = api_requests(fake)[1]
    assert.are.equal("GET", r.method)
    assert.are.equal(BASE, r.path)
    assert.are.equal(H.GENERATION, res.generation)
    if H.V1 then
      assert.are.equal("origin_public_cloud_region", res.id)
    else -- fetched whole, at the largest page size
      assert.are.equal("page=1&per_page=100", r.query)
      assert.is_nil(res.id)
      assert.is_nil(res.result_info)
    end
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
    assert.are.equal(H.V1 and '{"editable":true,"generation":"v1","id":"origin_public_cloud_region",'
      .. '"requests":1,"value":[]}' or '{"generation":"v2","requests":1,"value":[]}',
      cloudflare.json.encode(res))
  end)

  it("list of 250 mappings returns all of them in one result, paging through v2", function()
    local ips = ten(250)
    fake:set_zone(ZONE, mappings(ips))
    fake:clear_requests()
    local res = assert(ocr.list { zone_id = ZONE })
    assert.are.same(ips, H.pluck(res.value, "origin_ip"))
    local queries = H.pluck(api_requests(fake), "query")
    if H.V1 then
      assert.are.equal(1, res.requests)
    else
      assert.are.equal(3, res.requests)
      -- page 1 first (it tells how many there are), then the rest at once, in any order
      assert.are.equal("page=1&per_page=100", table.remove(queries, 1))
      table.sort(queries)
      assert.are.same({ "page=2&per_page=100", "page=3&per_page=100" }, queries)
    end
  end)

  it("list{page=, per_page=} returns one page with result_info on v2, and raises on v1", function()
    local ips = ten(250)
    fake:set_zone(ZONE, mappings(ips))
    fake:clear_requests()
    if H.V1 then
      assert.error_matches(function() ocr.list { zone_id = ZONE, page = 2 } end,
        "list: bad argument 'page': generation v1 has no pages")
      assert.are.equal(0, #api_requests(fake))
      return
    end
    local res = assert(ocr.list { zone_id = ZONE, page = 2, per_page = 100 })
    assert.are.same(table.move(ips, 101, 200, 1, {}), H.pluck(res.value, "origin_ip"))
    assert.are.same({ page = 2, per_page = 100, count = 100, total_count = 250, total_pages = 3 },
      res.result_info)
    assert.are.equal("page=2&per_page=100", api_requests(fake)[1].query)
    res = assert(ocr.list { zone_id = ZONE, page = 1 }) -- the API's default page size
    assert.are.equal(20, #res.value)
    assert.are.equal(13, res.result_info.total_pages)
    assert.error_matches(function() ocr.list { zone_id = ZONE, per_page = 101 } end,
      "list: bad argument 'per_page': expected a whole number from 1 to 100")
  end)

  it("get percent-encodes an IPv6 address in the path", function()
    local res = assert(ocr.get { zone_id = ZONE, ip = "2001:DB8:0::1" })
    assert.are.equal(BASE .. "/2001%3Adb8%3A%3A1", api_requests(fake)[1].path)
    assert.are.same({ origin_ip = "2001:db8::1", region = "us-central1", vendor = "gcp",
      modified_on = res.value.modified_on }, res.value)
    -- origin_ip, the SDKs' v2 name, is the same argument
    res = assert(ocr.get { zone_id = ZONE, origin_ip = "192.0.2.1" })
    assert.are.equal("aws", res.value.vendor)
    assert.error_matches(function() ocr.get { zone_id = ZONE, ip = "192.0.2.1", origin_ip = "192.0.2.2" } end,
      "get: bad argument 'origin_ip': names another IP than 'ip'")
  end)

  it("get of an absent mapping returns the API's 404, marked absent", function()
    local res, err = ocr.get { zone_id = ZONE, ip = "198.51.100.1" }
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(404, err.status)
    assert.is_true(err.absent)
    if H.V1 then assert.are.equal(1142, err.errors[1].code) end
  end)

  it("create sends the generation's body and returns the new mapping; twice is refused", function()
    local res = assert(ocr.create { zone_id = ZONE, ip = "::FFFF:198.51.100.1", region = "eu-west-1", vendor = "aws" })
    local sent = { [H.IP_KEY] = "::ffff:198.51.100.1", region = "eu-west-1", vendor = "aws" }
    local reqs = api_requests(fake)
    if H.V1 then
      assert.are.same({ "POST " }, calls())
      assert.are.same(sent, cjson.decode(reqs[1].body))
    else -- no create-only request on v2: look first, then PUT
      assert.are.same({ "GET /%3A%3Affff%3A198.51.100.1", "PUT /%3A%3Affff%3A198.51.100.1" }, calls())
      assert.are.same(sent, cjson.decode(reqs[2].body))
      assert.are.equal(2, res.requests)
    end
    assert.are.equal("::ffff:198.51.100.1", res.value.origin_ip)
    assert.are.equal("eu-west-1", res.value.region)
    fake:clear_requests()
    local again, err = ocr.create { zone_id = ZONE, ip = "::ffff:198.51.100.1", region = "us-east-1", vendor = "aws" }
    assert.is_nil(again)
    assert.is_true(err.exists)
    if H.V1 then
      assert.are.equal(1145, err.errors[1].code)
      assert.are.equal(400, err.status)
    else
      assert.are.same({ "GET /%3A%3Affff%3A198.51.100.1" }, calls()) -- nothing written
      assert.are.equal("exists", err.kind)
    end
    -- the existing mapping is untouched
    for _, m in ipairs(fake:zone(ZONE)) do
      if m["origin-ip"] == "::ffff:198.51.100.1" then assert.are.equal("eu-west-1", m.region) end
    end
  end)

  it("create at the zone limit is refused with 1164", function()
    fake:options { max_mappings = 2 }
    local _, err = ocr.create { zone_id = ZONE, ip = "198.51.100.1", region = "eu-west-1", vendor = "aws" }
    assert.are.equal(403, err.status)
    assert.are.equal(1164, err.errors[1].code)
  end)

  it("update (and edit, the same function) creates or replaces one mapping and returns it", function()
    local res = assert(ocr.update { zone_id = ZONE, ip = "192.0.2.1", region = "us-west-2", vendor = "aws" })
    local r = api_requests(fake)[1]
    if H.V1 then
      assert.are.equal("PATCH", r.method)
      assert.are.equal(BASE, r.path)
    else
      assert.are.equal("PUT", r.method)
      assert.are.equal(BASE .. "/192.0.2.1", r.path)
    end
    assert.are.same({ [H.IP_KEY] = "192.0.2.1", region = "us-west-2", vendor = "aws" }, cjson.decode(r.body))
    assert.are.equal("192.0.2.1", res.value.origin_ip)
    assert.are.equal("us-west-2", res.value.region)
    res = assert(ocr.edit { zone_id = ZONE, origin_ip = "203.0.113.9", region = "eastus", vendor = "azure" })
    assert.are.same({ "203.0.113.9", "eastus", "azure" }, { res.value.origin_ip, res.value.region, res.value.vendor })
    assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.9" }, H.pluck(fake:zone(ZONE), "origin-ip"))
    assert.are.same({ "us-west-2", "us-central1", "eastus" }, H.pluck(fake:zone(ZONE), "region"))
  end)

  it("delete returns the mapping it removed, with its region and vendor; absent is a 404", function()
    local res = assert(ocr.delete { zone_id = ZONE, ip = "2001:db8::1" })
    if H.V1 then
      assert.are.same({ "DELETE /2001%3Adb8%3A%3A1" }, calls())
      assert.are.equal(1, res.requests)
    else -- v2 answers only the IP: the mapping is looked up first
      assert.are.same({ "GET /2001%3Adb8%3A%3A1", "DELETE /2001%3Adb8%3A%3A1" }, calls())
      assert.are.equal(2, res.requests)
    end
    assert.are.equal("2001:db8::1", res.value.origin_ip)
    assert.are.equal("gcp", res.value.vendor)
    assert.are.equal("us-central1", res.value.region)
    fake:clear_requests()
    local _, err = ocr.delete { zone_id = ZONE, ip = "2001:db8::1" }
    assert.are.equal(404, err.status)
    assert.is_true(err.absent)
    if H.V1 then
      assert.are.equal(1163, err.errors[1].code)
    else
      assert.are.same({ "GET /2001%3Adb8%3A%3A1" }, calls()) -- nothing to delete: nothing sent
    end
    assert.are.same({ "192.0.2.1" }, H.pluck(fake:zone(ZONE), "origin-ip"))
  end)

  it("bulk_update (and bulk_edit) batches, canonicalises, keeps the last duplicate, rejects bad items locally",
    function()
    local items = {
      { ip = "192.0.2.1", region = "us-west-2", vendor = "aws" },
      { ip = "not-an-ip", region = "us-east-1", vendor = "aws" },
      { ip = "198.51.100.1", region = "us-east-1", vendor = "amazon" },
      { ip = "198.51.100.2", region = "", vendor = "aws" },
      { origin_ip = "192.0.2.1", region = "eu-west-1", vendor = "aws" },
      { ip = "2001:DB8::5", region = "westeurope", vendor = "azure" },
      { ip = "192.0.2.7", origin_ip = "192.0.2.8", region = "eu-west-1", vendor = "aws" },
    }
    for _, name in ipairs { "bulk_update", "bulk_edit" } do
      fake:clear_requests()
      local res = assert(ocr[name] { zone_id = ZONE, items = items })
      local reqs = api_requests(fake)
      assert.are.equal(1, #reqs)
      assert.are.same({ (H.V1 and "PATCH" or "PUT") .. " /batch" }, calls())
      assert.are.same({
        { [H.IP_KEY] = "192.0.2.1", region = "eu-west-1", vendor = "aws" },
        { [H.IP_KEY] = "2001:db8::5", region = "westeurope", vendor = "azure" },
      }, cjson.decode(reqs[1].body))
      assert.are.same({ "192.0.2.1", "2001:db8::5" }, H.pluck(res.value.succeeded, "origin_ip"))
      assert.are.same({ "eu-west-1", "westeurope" }, H.pluck(res.value.succeeded, "region"))
      assert.are.same({ "duplicate IP in request", "invalid IP address", "unsupported vendor",
        "region must be a non-empty string", "ip and origin_ip name different IPs" },
        H.pluck(res.value.failed, "error"))
      assert.are.same({ "192.0.2.1", "not-an-ip", "198.51.100.1", "198.51.100.2" },
        { table.unpack(H.pluck(res.value.failed, "input"), 1, 4) })
      assert.are.equal(H.GENERATION, res.generation)
    end
  end)

  it("bulk_update of 150 items sends 100 + 50, and the server's refusal of a region counts", function()
    local items = {}
    for i = 1, 150 do
      items[i] = { ip = string.format("10.1.%d.%d", i // 256, i % 256), region = "us-east-1", vendor = "aws" }
    end
    items[150].region = "mars-north-1" -- valid shape, unknown to the API
    local res, err, partial = ocr.bulk_update { zone_id = ZONE, items = items, concurrency = 1 }
    local reqs = api_requests(fake)
    assert.are.equal(100, #cjson.decode(reqs[1].body))
    assert.are.equal(50, #cjson.decode(reqs[2].body))
    if H.V1 then -- a region failing validation fails v1's whole batch with a 5xx
      assert.is_nil(res)
      assert.are.equal(500, err.status)
      assert.are.equal(100, #partial.value.succeeded)
      assert.are.equal(50, #partial.value.pending)
      assert.are.equal(102, #fake:zone(ZONE))
    else
      assert.are.equal(2, res.requests)
      assert.are.equal(149, #res.value.succeeded)
      assert.are.same({ "10.1.0.150" }, H.pluck(res.value.failed, "origin_ip"))
      assert.are.equal(151, #fake:zone(ZONE))
    end
  end)

  it("bulk_update failing mid-way returns partial with pending", function()
    local items = {}
    for i = 1, 120 do
      items[i] = { ip = string.format("10.2.0.%d", i), region = "us-east-1", vendor = "aws" }
    end
    fake:fault { skip = 1, status = 500, errors = { { code = 1141, message = "Internal error." } } }
    local res, err, partial = ocr.bulk_update { zone_id = ZONE, items = items, concurrency = 1 }
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

  it("bulk_delete with dry_run or a journal pages through a large v2 zone, counting every request", function()
    local ips = ten(250)
    fake:set_zone(ZONE, mappings(ips))
    fake:clear_requests()
    local listing = H.V1 and 1 or 3
    local res = assert(ocr.bulk_delete { zone_id = ZONE, dry_run = true, ips = ips })
    assert.are.equal(listing, res.requests)
    assert.are.equal(250, #res.value.succeeded)
    local j = os.tmpname()
    res = assert(ocr.bulk_delete { zone_id = ZONE, journal = j, ips = ips })
    assert.are.equal(listing + 3, res.requests)
    assert.are.equal(2 * listing + 3, #api_requests(fake))
    assert.are.same({}, fake:zone(ZONE))
    -- every intent knew the vendor and region of what it was about to delete
    local records = assert(cloudflare.journal.read(j))
    local intents = 0
    for _, r in ipairs(records) do
      if r.phase == "intent" then
        for _, it in ipairs(r.items) do
          intents = intents + 1
          assert.are.same({ "us-east-1", "aws" }, { it.region, it.vendor })
        end
      end
    end
    assert.are.equal(250, intents)
    os.remove(j)
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

  it("raises for bad arguments to create and edit, naming the function called, sending nothing", function()
    assert.error_matches(function()
      ocr.create { zone_id = ZONE, ip = "192.0.2.9", region = "us-east-1", vendor = "amazon" }
    end, "create: bad argument 'vendor': expected one of aws, azure, gcp, oci")
    assert.error_matches(function()
      ocr.edit { zone_id = ZONE, ip = "192.0.2.9", region = "", vendor = "aws" }
    end, "edit: bad argument 'region'")
    assert.error_matches(function()
      ocr.update { zone_id = ZONE, ip = "192.0.2.9", region = "", vendor = "aws" }
    end, "update: bad argument 'region'")
    assert.error_matches(function()
      ocr.get { zone_id = ZONE, ip = "192.0.2.999" }
    end, "get: bad argument 'ip': invalid IP address")
    assert.error_matches(function()
      ocr.bulk_edit { zone_id = ZONE, items = { "192.0.2.1" } }
    end, "bulk_edit: bad argument 'items': element 1 is a string")
    assert.are.equal(0, #api_requests(fake))
  end)

  it("the default client exposes every operation, under the current and the older names", function()
    for _, op in ipairs { "list", "get", "create", "update", "edit", "delete", "bulk_update",
      "bulk_edit", "bulk_delete", "supported_regions" } do
      assert.is_function(cloudflare.cache.origin_cloud_regions[op], op)
      assert.is_function(ocr[op], op)
    end
  end)
end)

describe("a generation the server does not serve", function()
  local only_v1, only_v2

  setup(function()
    only_v1 = H.start_fake { "--generations", "v1" }
    only_v2 = H.start_fake { "--generations", "v2" }
  end)
  teardown(function()
    only_v1:stop()
    only_v2:stop()
  end)

  it("gives v1 clients of a v2-only server the error that names the fix", function()
    local c = only_v2:client { generation = "v1", max_retries = 0 }
    for _, call in ipairs {
      function() return c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = { "192.0.2.1" } } end,
      function() return c.cache.origin_cloud_regions.list { zone_id = ZONE } end,
      function() return c.cache.origin_cloud_regions.get { zone_id = ZONE, ip = "192.0.2.1" } end,
    } do
      local res, err = call()
      assert.is_nil(res)
      assert.are.equal(404, err.status)
      assert.are.equal(7000, err.errors[1].code)
      assert.is_nil(err.absent) -- no route is not "no mapping"
      assert.matches('removed /zones/{zone_id}/cache/origin_cloud_regions on 2026%-10%-01; use generation = "v2"',
        err.message)
    end
    c:close()
  end)

  it("gives v2 clients of a v1-only server the error that names the other generation", function()
    local c = only_v1:client { generation = "v2", max_retries = 0 }
    local res, err = c.cache.origin_cloud_regions.delete { zone_id = ZONE, ip = "192.0.2.1" }
    assert.is_nil(res)
    assert.are.equal(7000, err.errors[1].code)
    assert.matches('use generation = "v1"', err.hint)
    c:close()
  end)
end)

describe("the one description of the family", function()
  local ocr = require "cloudflare.origin_cloud_regions"
  local repl = require "cloudflare.repl"
  setup(function() repl.init() end) -- builds help's index, as the REPL does at start

  local function read(path)
    local f = assert(io.open(H.SOURCE_DIR .. "/" .. path))
    local text = f:read("a")
    f:close()
    return text
  end

  it("gives every operation and alias a function and a help entry", function()
    assert.are.same({ "bulk_delete", "bulk_edit", "bulk_update", "create", "delete", "edit", "get",
      "list", "supported_regions", "update" }, ocr.NAMES)
    for _, name in ipairs(ocr.NAMES) do
      assert.are.equal("ocr." .. name, repl.doc(cloudflare.cache.origin_cloud_regions[name]), name)
      for _, gen in ipairs { "v1", "v2" } do
        local g = ocr.BY_NAME[name][gen]
        assert.is_table(g, name .. " " .. gen)
        assert.matches("^%u+$", g.method)
      end
    end
  end)

  it("is what docs/api.md's operation table says, for both generations", function()
    local doc = read("docs/api.md")
    local section = assert(doc:match("\n## `cache%.origin_cloud_regions`\n(.-)\n## "))
    local rows = {}
    for line in section:gmatch("[^\n]+") do
      local name = line:match("^| `([%w_]+){")
      if name then rows[name] = line end
    end
    -- the operation's own request is the cell's last `METHOD …path` (lookups come first)
    local function last_request(cell)
      local method, path
      for m, p in cell:gmatch("`(%u+) …([^`]*)`") do method, path = m, p end
      return method, path and path:gsub("%?.*$", "")
    end
    for _, op in ipairs(ocr.OPERATIONS) do
      local row = rows[op.name]
      assert.is_string(row, op.name .. " has no row")
      local cells = {}
      for cell in row:gmatch("|([^|]*)") do cells[#cells + 1] = cell end
      for i, gen in ipairs { "v2", "v1" } do
        local method, path = last_request(cells[i + 1])
        assert.are.same({ op[gen].method, op[gen].path }, { method, path }, op.name .. " " .. gen)
      end
      for _, alias in ipairs(op.aliases or {}) do
        assert.matches("%(also `" .. alias .. "`%)", row)
      end
    end
  end)

  it("is what the man page lists", function()
    local man = read("docs/cfrun.1")
    local section = assert(man:match('\n%.SH "THE LUA API"\n(.-)\n%.SH '))
    for _, name in ipairs(ocr.NAMES) do
      assert.matches("\n%.BR? " .. name .. "[ ,.)\n;]", section, name)
    end
  end)
end)

describe("per-item error texts, which the contract does not publish", function()
  local fake, client

  setup(function()
    fake = H.start_fake()
    client = fake:client()
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)

  -- What a journaled delete whose first response is lost leaves, with the server's texts.
  local function lost_response_run(texts)
    fake:reset()
    if texts then fake:options { item_errors = texts } end
    fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "192.0.2.2", "eastus", "azure" } })
    fake:fault { drop = "after", match = { method = "DELETE" } }
    local j = os.tmpname()
    local res = assert(client.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, journal = j,
      ips = { "192.0.2.1", "192.0.2.2", "198.51.100.9", "not-an-ip" } })
    local out = { requests = res.requests, succeeded = #res.value.succeeded, pending = #res.value.pending }
    for _, e in ipairs(res.value.failed) do
      out[e.input] = { already_absent = e.already_absent or false }
      out.errors = (out.errors or "") .. e.error .. "|"
    end
    local restored = assert(cloudflare.journal.restore { path = j, zone_id = ZONE, client = client })
    out.restored = H.pluck(restored.value.succeeded, "origin_ip")
    out.zone = H.pluck(fake:zone(ZONE), "origin-ip")
    os.remove(j)
    return out
  end

  it("decide nothing: changing every one of them changes no outcome, only the text shown", function()
    local plain = lost_response_run()
    local odd = lost_response_run { not_found = "zzz 1", invalid_ip = "zzz 2",
      unsupported_vendor = "zzz 3", unsupported_region = "zzz 4", limit = "zzz 5" }
    -- the texts the server sent really changed
    assert.is_nil(odd.errors:find("not found", 1, true))
    assert.matches("zzz 1", odd.errors)
    plain.errors, odd.errors = nil, nil
    assert.are.same(plain, odd)
    -- the lost attempt deleted both mappings: the retry's failures are marked, restore undoes them
    assert.are.same({ already_absent = true }, odd["192.0.2.1"])
    assert.are.same({ already_absent = false }, odd["198.51.100.9"]) -- never mapped (listing)
    assert.are.same({ "192.0.2.1", "192.0.2.2" }, odd.restored)
    assert.are.same({ "192.0.2.1", "192.0.2.2" }, odd.zone)
  end)
end)
