-- spec/fake_api_spec.lua: lua/cloudflare/fake_api.lua and lua/cloudflare/fake/, the fake Cloudflare API the other
-- specs and --sandbox rely on: envelopes, authentication, both API generations over one state and the codes each
-- answers, --generations, the control API (options, item_errors, the request log), faults, the rate limit, and
-- serving connections concurrently. Talks to it with LuaSocket only, so a cfrun bug cannot mask a fake-server bug.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local BATCH = "/client/v4/zones/" .. H.ZONE .. "/cache/origin_cloud_regions/batch"
local AUTH = { authorization = "Bearer " .. H.TOKEN }

-- The messages of the codes Cloudflare publishes for the family (the reference's table), and
-- the fake's own where none is published (DELETE_ABSENT, the end of LIMIT).
local INVALID_IP = "Invalid or missing origin IP address."
local BAD_REGION = "The vendor provided doesn't exist or the region provided does not exist for the specified "
  .. "cloud vendor"
local ABSENT = "Unable to retrieve origin_public_cloud_region setting value. The zone setting does not exist."
local EXISTS = "Unable to create new origin_public_cloud_region setting. The zone setting already exists."
local DELETE_ABSENT = "Unable to delete origin_public_cloud_region setting. The zone setting does not exist."
local INTERNAL = "Unable to delete origin_public_cloud_region setting. Internal error."
local function LIMIT(n) return string.format("Maximum number of IP mappings per zone (%d) reached.", n) end

local V1 = "/client/v4/zones/" .. H.ZONE .. "/cache/origin_cloud_regions"
local V2 = "/client/v4/zones/" .. H.ZONE .. "/origin/cloud_regions"
local RFC3339 = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"

-- One request to fake over a raw socket (Connection: close); returns status, headers (lower-case
-- names), body and the header section as sent, or nil when the server closed without answering.
local function exchange(fake, method, path, headers, body)
  local c = assert(socket.connect(fake.host, fake.port))
  c:settimeout(30)
  body = body or ""
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: x", "Connection: close",
    "Content-Length: " .. #body }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
  local all, _, partial = c:receive("*a")
  c:close()
  all = all or partial
  local head, rest = all:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil end
  local status = tonumber(head:match("^HTTP/1%.1 (%d+)"))
  local fields = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do fields[name:lower()] = value end
  return status, fields, rest, head .. "\r\n"
end

-- The envelope expected for a failure, and for a success (result_info only on v2 lists).
local function failure(code, message)
  return { success = false, errors = { { code = code, message = message } }, messages = {}, result = cjson.null }
end
local function success(result, result_info)
  return { success = true, errors = {}, messages = {}, result = result, result_info = result_info }
end

------------------------------------------------------------------------------------------
-- The published schemas (../shared/reference/origin-cloud-regions-contract.json, transcribed),
-- as validators: each is function(value, where) and raises on a mismatch. Objects are closed
-- here (no field the schema does not name), stricter than the schema: the fake writes no more.
------------------------------------------------------------------------------------------
local T = {}
local function mismatch(where, what, v)
  error(string.format("%s: expected %s, got %s", where, what, (pcall(cjson.encode, v)) and cjson.encode(v)
    or tostring(v)), 0)
end
local function is_list(v) -- as cjson decodes: keys 1..n, or none
  if type(v) ~= "table" then return false end
  local n = 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" then return false end
    n = n + 1
  end
  return n == #v
end
function T.string(v, w) if type(v) ~= "string" then mismatch(w, "a string", v) end end
function T.boolean(v, w) if type(v) ~= "boolean" then mismatch(w, "a boolean", v) end end
function T.integer(min)
  return function(v, w)
    if type(v) ~= "number" or not math.tointeger(v) or (min and v < min) then
      mismatch(w, "an integer" .. (min and " >= " .. min or ""), v)
    end
  end
end
function T.date_time(v, w) if type(v) ~= "string" or not v:match(RFC3339) then mismatch(w, "a date-time", v) end end
function T.enum(values)
  return function(v, w)
    for _, x in ipairs(values) do if v == x then return end end
    mismatch(w, "one of " .. cjson.encode(values), v)
  end
end
function T.nullable(f) return function(v, w) if v ~= cjson.null then f(v, w) end end end
function T.array(item, min)
  return function(v, w)
    if not is_list(v) or #v < (min or 0) then mismatch(w, "an array" .. (min and " of " .. min .. "+" or ""), v) end
    for i, x in ipairs(v) do item(x, w .. "[" .. i .. "]") end
  end
end
function T.map(item)
  return function(v, w)
    if type(v) ~= "table" or (next(v) ~= nil and is_list(v)) then mismatch(w, "an object", v) end
    for k, x in pairs(v) do item(x, w .. "." .. tostring(k)) end
  end
end
function T.object(required, props)
  return function(v, w)
    if type(v) ~= "table" or (next(v) ~= nil and is_list(v)) then mismatch(w, "an object", v) end
    for _, k in ipairs(required) do
      if v[k] == nil then mismatch(w, "a field " .. k, v) end
    end
    for k, x in pairs(v) do
      local f = props[k]
      if not f then mismatch(w, "no field " .. tostring(k), v) end
      f(x, w .. "." .. k)
    end
  end
end

local VENDOR = T.enum { "aws", "azure", "gcp", "oci" }
local MESSAGES = T.array(T.object({ "code", "message" },
  { code = T.integer(1000), message = T.string, documentation_url = T.string }))
local V1_ENTRY = T.object({ "origin-ip", "vendor", "region" },
  { ["origin-ip"] = T.string, region = T.string, vendor = VENDOR, modified_on = T.date_time })
local V1_ITEM = T.object({ "origin-ip" }, { ["origin-ip"] = T.string, error = T.string, region = T.string,
  vendor = T.string })
local function v1_setting(value, nullable_time)
  return T.object({ "id", "editable", "value" }, { id = T.enum { "origin_public_cloud_region" },
    editable = T.boolean, value = value, modified_on = nullable_time and T.nullable(T.date_time) or T.date_time })
end
local V2_ENTRY = T.object({ "origin_ip", "vendor", "region" },
  { origin_ip = T.string, region = T.string, vendor = VENDOR, modified_on = T.date_time })
local V2_ITEM = T.object({ "origin_ip" }, { origin_ip = T.string, error = T.string, region = T.string,
  vendor = T.string })
local REGIONS = T.object({ "vendors", "obtained_codes" }, { obtained_codes = T.boolean,
  vendors = T.map(T.array(T.object({ "name", "upper_tier_colos" },
    { name = T.string, upper_tier_colos = T.array(T.string) }))) })
local V2_RESULT_INFO = T.object({ "page", "per_page", "count", "total_count", "total_pages" },
  { page = T.integer(), per_page = T.integer(), count = T.integer(), total_count = T.integer(),
    total_pages = T.integer() })

-- result schemas by generation, then "<METHOD> <path after the base>" ({ip} for an address)
local RESULTS = {
  v1 = {
    ["GET "] = v1_setting(T.array(V1_ENTRY), true),
    ["POST "] = v1_setting(V1_ENTRY),
    ["PATCH "] = v1_setting(T.array(V1_ENTRY), true),
    ["GET {ip}"] = v1_setting(V1_ENTRY),
    ["DELETE {ip}"] = v1_setting(V1_ENTRY),
    ["PATCH /batch"] = v1_setting(T.object({ "succeeded", "failed" },
      { succeeded = T.array(V1_ITEM), failed = T.array(V1_ITEM) }), true),
    ["DELETE /batch"] = v1_setting(T.object({ "succeeded", "failed" },
      { succeeded = T.array(V1_ITEM), failed = T.array(V1_ITEM) }), true),
    ["GET /supported_regions"] = REGIONS,
  },
  v2 = {
    ["GET "] = T.array(V2_ENTRY),
    ["GET {ip}"] = V2_ENTRY,
    ["PUT {ip}"] = V2_ENTRY,
    ["DELETE {ip}"] = T.object({ "origin_ip" }, { origin_ip = T.string }),
    ["PUT /batch"] = T.object({ "succeeded", "failed" }, { succeeded = T.array(V2_ITEM), failed = T.array(V2_ITEM) }),
    ["DELETE /batch"] = T.object({ "succeeded", "failed" },
      { succeeded = T.array(V2_ITEM), failed = T.array(V2_ITEM) }),
    ["GET /supported_regions"] = REGIONS,
  },
}
local BASES = { v1 = "/cache/origin_cloud_regions", v2 = "/origin/cloud_regions" }

-- Checks one recorded exchange (a /__fake/requests entry) against the schemas; returns the
-- operation's key ("v2 PUT /batch") or raises.
local function check_exchange(r)
  local where = string.format("#%d %s %s", r.seq, r.method, r.path)
  local suffix = r.path:match("^/client/v4/zones/[^/]*" .. BASES[r.generation]:gsub("%p", "%%%0") .. "(.*)$")
  if suffix ~= "" and suffix ~= "/batch" and suffix ~= "/supported_regions" then suffix = "{ip}" end
  local key = r.method .. " " .. suffix
  local env = cjson.decode(r.response.body)
  if r.response.status == 200 then
    local result = RESULTS[r.generation][key]
    assert(result, where .. ": no published operation " .. key)
    local paged = r.generation == "v2" and key == "GET "
    T.object({ "success", "errors", "messages", "result" }, { success = T.enum { true }, errors = MESSAGES,
      messages = MESSAGES, result = result, result_info = paged and V2_RESULT_INFO or nil })(env, where)
    if paged then assert(env.result_info, where .. ": no result_info") end
  else
    T.object({ "success", "errors", "messages", "result" }, { success = T.enum { false },
      errors = T.array(T.object({ "code", "message" }, { code = T.integer(1000), message = T.string }), 1),
      messages = MESSAGES, result = T.enum { cjson.null } })(env, where)
  end
  return r.generation .. " " .. key
end

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
  local BASE = V1
  local EMPTY_ZONE = "0123456789abcdef0123456789abcdef"
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
    end)

    it("POST /__fake/zones/<id> adds mappings after the zone's, in parts; an IP mapped already changes nothing",
      function()
      local NEW = "fedcba9876543210fedcba9876543211"
      local body, status = fake:control("POST", "/__fake/zones/" .. H.ZONE, cjson.encode {
        m("192.0.2.7", "eu-west-1", "aws"), m("2001:DB8::7", "us-central1", "gcp") })
      assert.are.equal(200, status)
      assert.are.same({ ok = true, added = 2, count = 5 }, body)
      local ips = {}
      for i, e in ipairs(fake:zone(H.ZONE)) do ips[i] = e["origin-ip"] end
      assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.5", "192.0.2.7", "2001:db8::7" }, ips)
      -- the API sees them: a listing, then a delete of one added in the second part
      local env = api("GET", "")
      assert.are.equal(5, #(env.result.value or env.result))
      body, status = fake:control("POST", "/__fake/zones/" .. H.ZONE, cjson.encode {
        m("198.51.100.1", "us-east-1", "aws"), m("2001:db8::7", "us-east-1", "aws") })
      assert.are.equal(400, status)
      assert.matches("2001:db8::7 is mapped already", body.error)
      assert.are.equal(5, #fake:zone(H.ZONE)) -- nothing of that part was added
      -- an unknown zone is created; what is not a list of mappings is refused, naming the item
      assert.are.same({ ok = true, added = 1, count = 1 },
        (fake:control("POST", "/__fake/zones/" .. NEW, cjson.encode { m("192.0.2.9", "us-east-1", "aws") })))
      body, status = fake:control("POST", "/__fake/zones/" .. NEW, '{"origin-ip":"192.0.2.10"}')
      assert.are.equal(400, status)
      assert.matches("JSON array", body.error)
      body, status = fake:control("POST", "/__fake/zones/" .. NEW, cjson.encode { { region = "us-east-1" } })
      assert.are.equal(400, status)
      assert.matches("item 1", body.error)
      assert.are.equal(1, #fake:zone(NEW))
    end)

    it("answers a zone never seeded 403 code 10000, as Cloudflare answers a zone it does not know", function()
      local UNKNOWN = "fedcba9876543210fedcba9876543210"
      local denied = failure(10000, "Authentication error")
      for _, c in ipairs { { "GET", V1 }, { "GET", V2 }, { "GET", V2 .. "/192.0.2.1" },
        { "DELETE", V2 .. "/batch", { "192.0.2.1" } }, { "GET", V1 .. "/supported_regions" },
        { "PUT", V2 .. "/192.0.2.9", { origin_ip = "192.0.2.9", region = "us-east-1", vendor = "aws" } } } do
        local path = c[2]:gsub(H.ZONE, UNKNOWN)
        local text, status = fake:raw(c[1], path, c[3] and cjson.encode(c[3]), AUTH)
        assert.are.equal(403, status, c[1] .. " " .. path)
        assert.are.same(denied, cjson.decode(text))
      end
      assert.are.same({}, fake:zone(UNKNOWN))
      assert.is_nil(fake:control("GET", "/__fake/zones")[UNKNOWN]) -- no zone made by asking
      -- any_zone serves it as an empty zone; reset restores the start-up value
      local o = fake:control("PUT", "/__fake/options", { any_zone = true })
      assert.is_true(o.any_zone)
      local text, status = fake:raw("GET", V1:gsub(H.ZONE, UNKNOWN), nil, AUTH)
      assert.are.equal(200, status)
      assert.matches('"value":%[%]', text)
      fake:reset()
      assert.are.equal(403, select(2, fake:raw("GET", V2:gsub(H.ZONE, UNKNOWN), nil, AUTH)))
      -- a seeded zone is known, even when empty
      fake:set_zone(UNKNOWN, {})
      assert.are.equal(200, select(2, fake:raw("GET", V2:gsub(H.ZONE, UNKNOWN), nil, AUTH)))
    end)

    it("--any-zone serves every zone id, an unknown one as empty", function()
      local any = H.start_fake { "--any-zone" }
      local ok, err = pcall(function()
        local text, status = any:raw("GET", "/client/v4/zones/fedcba9876543210fedcba9876543210/origin/cloud_regions",
          nil, AUTH)
        assert.are.equal(200, status)
        assert.matches('"result":%[%]', text)
      end)
      any:stop()
      assert(ok, err)
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

    it("answers 404 code 1142 for an unmapped IP and 400 code 1146 for an invalid one", function()
      assert_fails(404, 1142, ABSENT, "GET", "/198.51.100.1")
      assert_fails(400, 1146, INVALID_IP, "GET", "/not-an-ip")
      assert_fails(400, 1146, INVALID_IP, "GET", "/192.0.2.256")
      assert_fails(400, 1146, INVALID_IP, "GET", "/2001%3Adb8%3A%3A1%2F64")
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
      assert_fails(400, 1145, EXISTS, "POST", "", { ip = "2001:db8:0::1", region = "us-east-1", vendor = "aws" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("validates the body: 1198 for its shape, 1146 for a missing or invalid IP, 1157 for vendor/region", function()
      local function bad(body) return "Invalid request body: " .. body end
      assert_fails(400, 1198, bad("the body is not valid JSON"), "POST", "", "{nope")
      assert_fails(400, 1198, bad('expected a JSON object {"ip", "region", "vendor"}'), "POST", "", "[]")
      assert_fails(400, 1146, INVALID_IP, "POST", "", { region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1146, INVALID_IP, "POST", "", '{"ip":null,"region":"us-east-1","vendor":"aws"}')
      assert_fails(400, 1146, INVALID_IP, "POST", "", { ip = 19202, region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1198, bad('"region" must be a string'), "POST", "",
        { ip = "192.0.2.9", region = 1, vendor = "aws" })
      assert_fails(400, 1198, bad('"vendor" is required'), "POST", "",
        '{"ip":"192.0.2.9","region":"us-east-1","vendor":null}')
      assert_fails(400, 1146, INVALID_IP, "POST", "",
        { ip = "192.0.2", region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1157, BAD_REGION, "POST", "",
        { ip = "192.0.2.9", region = "us-east-1", vendor = "ibm" })
      assert_fails(400, 1157, BAD_REGION, "POST", "",
        { ip = "192.0.2.9", region = "us-central1", vendor = "aws" })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("refuses a new mapping at the limit with 403 code 1164; reset restores the limit", function()
      fake:options { max_mappings = 3 }
      assert_fails(403, 1164, LIMIT(3), "POST", "",
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
      assert_fails(403, 1164, LIMIT(3), "PATCH", "",
        { ip = "198.51.100.7", region = "us-east-1", vendor = "aws" })
      assert.are.same({ "192.0.2.1", "2001:db8::1", "203.0.113.5" }, H.pluck(fake:zone(H.ZONE), "origin-ip"))
      assert.are.equal("ap-tokyo-1", fake:zone(H.ZONE)[3].region)
    end)

    it("validates like create", function()
      assert_fails(400, 1146, INVALID_IP, "PATCH", "",
        { ip = { "192.0.2.1" }, region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1146, INVALID_IP, "PATCH", "",
        { ip = "fe80::1%eth0", region = "eastus", vendor = "azure" })
      assert_fails(400, 1198, 'Invalid request body: "region" is required', "PATCH", "",
        { ip = "192.0.2.1", vendor = "aws" })
      assert_fails(400, 1157, BAD_REGION, "PATCH", "",
        { ip = "192.0.2.1", region = "us-east-1", vendor = "AWS" })
      assert_fails(400, 1157, BAD_REGION, "PATCH", "",
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

    it("answers 404 code 1163 when there is no mapping, 400 code 1146 for an invalid IP", function()
      api("DELETE", "/192.0.2.1")
      assert_fails(404, 1163, DELETE_ABSENT, "DELETE", "/192.0.2.1")
      assert_fails(400, 1146, INVALID_IP, "DELETE", "/192.0.2.01")
      assert.are.same({ SEEDED[2], SEEDED[3] }, fake:zone(H.ZONE))
    end)
  end)

  describe("bulk_edit (PATCH /batch)", function()
    it("upserts item by item in order; an invalid IP fails alone", function()
      fake:options { max_mappings = 4 }
      local env, status = api("PATCH", "/batch", cjson.encode {
        { ip = "2001:DB8::1", region = "us-west1", vendor = "gcp" },        -- update, keeps its place
        { ip = "nope", region = "us-east-1", vendor = "aws" },
        { ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },    -- new: the 4th mapping
        { ip = "192.0.2.1", region = "eu-central-1", vendor = "aws" },      -- update at the limit
        { ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },    -- twice: counted once
      })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.matches(RFC3339, now)
      assert.are.same(setting({
        succeeded = {
          { ["origin-ip"] = "2001:db8::1", region = "us-west1", vendor = "gcp" },
          { ["origin-ip"] = "198.51.100.3", region = "uk-london-1", vendor = "oci" },
          { ["origin-ip"] = "192.0.2.1", region = "eu-central-1", vendor = "aws" },
          { ["origin-ip"] = "198.51.100.3", region = "uk-london-1", vendor = "oci" },
        },
        failed = { { ["origin-ip"] = "nope", error = "invalid IP address" } },
      }, now), env)
      assert.are.same({
        m("192.0.2.1", "eu-central-1", "aws", now), m("2001:db8::1", "us-west1", "gcp", now), SEEDED[3],
        m("198.51.100.3", "uk-london-1", "oci", now),
      }, fake:zone(H.ZONE))
    end)

    it("fails the whole batch with 500 code 1141 for an unsupported vendor or region, changing nothing", function()
      for _, bad in ipairs { { ip = "198.51.100.1", region = "us-east-1", vendor = "ibm" },
        { ip = "198.51.100.2", region = "us-east1", vendor = "aws" } } do
        assert_fails(500, 1141, INTERNAL, "PATCH", "/batch", cjson.encode {
          { ip = "192.0.2.1", region = "eu-central-1", vendor = "aws" }, bad,
          { ip = "198.51.100.9", region = "us-east-1", vendor = "aws" } })
      end
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("fails the whole batch with 403 code 1164 when its new IPs pass the limit, changing nothing", function()
      fake:options { max_mappings = 4 }
      assert_fails(403, 1164, LIMIT(4), "PATCH", "/batch", cjson.encode {
        { ip = "192.0.2.1", region = "eu-central-1", vendor = "aws" },
        { ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },
        { ip = "198.51.100.4", region = "eu-central-1", vendor = "aws" } })
      assert.are.same(SEEDED, fake:zone(H.ZONE))
    end)

    it("has a null modified_on and [] for succeeded when nothing was applied", function()
      local env, status, text = api("PATCH", "/batch", '[{"ip":"192.0.2.300","region":"us-east-1","vendor":"aws"}]')
      assert.are.equal(200, status)
      assert.are.equal(cjson.null, env.result.modified_on)
      assert.matches('"succeeded":%[%]', text)
      assert.are.same({ { ["origin-ip"] = "192.0.2.300", error = "invalid IP address" } }, env.result.value.failed)
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

  local function request(method, path, headers, body) return exchange(fake, method, path, headers, body) end

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

    it("with one_user (--one-user), counts every credential in one window, as Cloudflare counts per user", function()
      fake:options { tokens = { H.TOKEN, OTHER_TOKEN }, one_user = true }
      limit(2, 60)
      local legacy = { ["X-Auth-Email"] = H.EMAIL, ["X-Auth-Key"] = H.KEY }
      local statuses = {}
      for _, headers in ipairs { bearer(), bearer(OTHER_TOKEN), legacy, bearer() } do
        statuses[#statuses + 1] = (request("GET", BASE, headers))
      end
      assert.are.same({ 200, 200, 429, 429 }, statuses)
      fake:reset()
      assert.is_false((fake:control("GET", "/__fake/options")).one_user)
      local one = H.start_fake { "--one-user", "--rate-limit", "1/60" }
      assert.is_true((one:control("GET", "/__fake/options")).one_user)
      one:stop()
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

describe("the fake API's v2 endpoints (/origin/cloud_regions)", function()
  local MISMATCH = "body origin_ip does not match URL"
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)

  local SEED = {
    { ["origin-ip"] = "192.0.2.1", region = "us-east-1", vendor = "aws", modified_on = "2026-01-01T00:00:00Z" },
    { ["origin-ip"] = "2001:db8::1", region = "us-central1", vendor = "gcp", modified_on = "2026-01-03T00:00:00Z" },
    { ["origin-ip"] = "203.0.113.5", region = "us-ashburn-1", vendor = "oci", modified_on = "2026-01-02T00:00:00Z" },
  }
  local function e(ip, region, vendor, modified_on)
    return { origin_ip = ip, region = region, vendor = vendor, modified_on = modified_on }
  end
  local ENTRIES = {
    e("192.0.2.1", "us-east-1", "aws", "2026-01-01T00:00:00Z"),
    e("2001:db8::1", "us-central1", "gcp", "2026-01-03T00:00:00Z"),
    e("203.0.113.5", "us-ashburn-1", "oci", "2026-01-02T00:00:00Z"),
  }

  local function seed(list)
    local _, status = fake:control("PUT", "/__fake/zones/" .. H.ZONE, #list == 0 and "[]" or cjson.encode(list))
    assert.are.equal(200, status)
  end
  before_each(function()
    fake:reset()
    seed(SEED)
  end)

  -- method on V2 .. suffix with the spec token; returns the decoded envelope, status, text
  local function v2(method, suffix, body)
    local text, status = fake:raw(method, V2 .. suffix, body, AUTH)
    return cjson.decode(text), status, text
  end
  local function assert_fails(status, code, message, method, suffix, body)
    local env, got = v2(method, suffix, body)
    assert.are.equal(status, got, method .. " " .. suffix .. " " .. tostring(body))
    assert.are.same(failure(code, message), env)
  end
  local function bad(problem) return "Invalid request body: " .. problem end

  -- 25 mappings 10.0.0.1 .. 10.0.0.25, in that order
  local function seed25()
    local list = {}
    for i = 1, 25 do
      list[i] = { ["origin-ip"] = "10.0.0." .. i, region = "us-east-1", vendor = "aws",
        modified_on = "2026-02-01T00:00:00Z" }
    end
    seed(list)
  end
  local function ips(from, to)
    local out = {}
    for i = from, to do out[#out + 1] = "10.0.0." .. i end
    return out
  end
  local function info(page, per_page, count, total_count, total_pages)
    return { page = page, per_page = per_page, count = count, total_count = total_count, total_pages = total_pages }
  end

  describe("list (GET ?page=&per_page=)", function()
    it("answers an array of entries in insertion order with result_info next to result", function()
      local env, status = v2("GET", "")
      assert.are.equal(200, status)
      assert.are.same(success(ENTRIES, info(1, 20, 3, 3, 1)), env)
    end)

    it("pages 20 at a time by default, up to 100 with per_page; past the end is []", function()
      seed25()
      local function page(query, from, to, expected_info)
        local env, status, text = v2("GET", query)
        assert.are.equal(200, status, query)
        assert.are.same(from and ips(from, to) or {}, H.pluck(env.result, "origin_ip"), query)
        assert.are.same(expected_info, env.result_info, query)
        if not from then assert.matches('"result":%[%]', text) end
        return env
      end
      local env = page("", 1, 20, info(1, 20, 20, 25, 2))
      assert.are.same(e("10.0.0.1", "us-east-1", "aws", "2026-02-01T00:00:00Z"), env.result[1])
      page("?page=2", 21, 25, info(2, 20, 5, 25, 2))
      page("?page=3", nil, nil, info(3, 20, 0, 25, 2))
      page("?per_page=100", 1, 25, info(1, 100, 25, 25, 1))
      page("?page=2&per_page=100", nil, nil, info(2, 100, 0, 25, 1))
      page("?per_page=7&page=4", 22, 25, info(4, 7, 4, 25, 4))
      page("?page=25&per_page=1", 25, 25, info(25, 1, 1, 25, 25))
      page("?per%5Fpage=5&page=%32&other=x", 6, 10, info(2, 5, 5, 25, 5))
      -- the largest page there is: no overflow computing where it starts (cjson decodes it as a float)
      local _, status, text = v2("GET", "?page=9223372036854775807&per_page=100")
      assert.are.equal(200, status)
      assert.matches('"result":[],"result_info":{"count":0,"page":9223372036854775807,"per_page":100,'
        .. '"total_count":25,"total_pages":1}', text, 1, true)
    end)

    it("writes [] and zero counts for a zone without mappings", function()
      seed {}
      local _, status, text = v2("GET", "")
      assert.are.equal(200, status)
      assert.are.equal('{"errors":[],"messages":[],"result":[],"result_info":{"count":0,"page":1,"per_page":20,'
        .. '"total_count":0,"total_pages":0},"success":true}', text)
    end)

    it("answers 400 code 1198 naming a bad page or per_page", function()
      local PAGE = "Invalid query parameter page: must be an integer >= 1, given once"
      local PER_PAGE = "Invalid query parameter per_page: must be an integer from 1 to 100, given once"
      for _, q in ipairs { "page=0", "page=-1", "page=abc", "page=1.5", "page=", "page=1e2", "page=+1",
        "page=99999999999999999999", "page=1&page=2", "page=0&per_page=0" } do
        assert_fails(400, 1198, PAGE, "GET", "?" .. q)
      end
      for _, q in ipairs { "per_page=0", "per_page=101", "per_page=x", "per_page=", "page=2&per_page=1000",
        "per_page=5&per_page=5" } do
        assert_fails(400, 1198, PER_PAGE, "GET", "?" .. q)
      end
    end)

    it("lists what remains after deletes, in order, without gaps", function()
      seed25()
      local gone = {}
      for i = 2, 24, 2 do gone[#gone + 1] = "10.0.0." .. i end
      assert.are.equal(12, #v2("DELETE", "/batch", gone).result.succeeded)
      local seen = {}
      for p = 1, 3 do
        local env = v2("GET", "?per_page=5&page=" .. p)
        assert.are.same(info(p, 5, p < 3 and 5 or 3, 13, 3), env.result_info)
        for _, x in ipairs(env.result) do seen[#seen + 1] = x.origin_ip end
      end
      local odd = {}
      for i = 1, 25, 2 do odd[#odd + 1] = "10.0.0." .. i end
      assert.are.same(odd, seen)
      assert.are.same(odd, H.pluck(fake:zone(), "origin-ip"))
    end)
  end)

  describe("get (GET /<ip>)", function()
    it("answers the entry, by percent-encoded, raw or non-canonical IP", function()
      for _, ip in ipairs { "2001%3Adb8%3A%3A1", "2001:db8::1", "2001:DB8:0:0::1" } do
        local env, status = v2("GET", "/" .. ip)
        assert.are.equal(200, status, ip)
        assert.are.same(success(ENTRIES[2]), env)
      end
    end)

    it("answers 404 (code 1142) when absent and 400 code 1146 for an invalid IP", function()
      assert_fails(404, 1142, ABSENT, "GET", "/198.51.100.1")
      assert_fails(400, 1146, INVALID_IP, "GET", "/not-an-ip")
      assert_fails(400, 1146, INVALID_IP, "GET", "/192.0.2.01")
    end)
  end)

  describe("update (PUT /<ip>)", function()
    it("creates a mapping at the end and answers the entry", function()
      local env, status = v2("PUT", "/198.51.100.7", { origin_ip = "198.51.100.7", region = "europe-west3",
        vendor = "gcp" })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.matches(RFC3339, now)
      assert.are.same(success(e("198.51.100.7", "europe-west3", "gcp", now)), env)
      local zone = fake:zone()
      assert.are.equal(4, #zone)
      assert.are.same({ ["origin-ip"] = "198.51.100.7", region = "europe-west3", vendor = "gcp", modified_on = now },
        zone[4])
    end)

    it("replaces a mapping in place; the body's IP may be written differently from the path's", function()
      local env, status = v2("PUT", "/2001%3Adb8%3A%3A1", { origin_ip = "2001:DB8:0::1", region = "eastus",
        vendor = "azure" })
      assert.are.equal(200, status)
      local now = env.result.modified_on
      assert.are.same(success(e("2001:db8::1", "eastus", "azure", now)), env)
      assert.are.same({ SEED[1], { ["origin-ip"] = "2001:db8::1", region = "eastus", vendor = "azure",
        modified_on = now }, SEED[3] }, fake:zone())
    end)

    it("answers 400 code 1146 for an origin_ip missing, invalid or not the URL's", function()
      assert_fails(400, 1146, MISMATCH, "PUT", "/192.0.2.1",
        { origin_ip = "192.0.2.2", region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1146, MISMATCH, "PUT", "/2001:db8::1",
        { origin_ip = "2001:db8::2", region = "us-east-1", vendor = "aws" })
      for _, body in ipairs {
        { region = "us-east-1", vendor = "aws" },
        { ip = "192.0.2.1", region = "us-east-1", vendor = "aws" },            -- v1's key
        { ["origin-ip"] = "192.0.2.1", region = "us-east-1", vendor = "aws" }, -- v1's response key
        { origin_ip = "192.0.2.999", region = "us-east-1", vendor = "aws" },
        { origin_ip = 3221225985, region = "us-east-1", vendor = "aws" },
      } do
        assert_fails(400, 1146, INVALID_IP, "PUT", "/192.0.2.1", body)
      end
      assert_fails(400, 1146, INVALID_IP, "PUT", "/not-an-ip", { origin_ip = "not-an-ip", region = "us-east-1",
        vendor = "aws" })
      assert.are.same(SEED, fake:zone())
    end)

    it("answers 1198 for the body's shape and 1157 for a vendor or region not supported", function()
      assert_fails(400, 1198, bad("the body is not valid JSON"), "PUT", "/192.0.2.1", "{nope")
      assert_fails(400, 1198, bad('expected a JSON object {"origin_ip", "region", "vendor"}'), "PUT", "/192.0.2.1",
        "[]")
      assert_fails(400, 1198, bad('"region" is required'), "PUT", "/192.0.2.1", { origin_ip = "192.0.2.1",
        vendor = "aws" })
      assert_fails(400, 1198, bad('"vendor" must be a string'), "PUT", "/192.0.2.1", { origin_ip = "192.0.2.1",
        region = "us-east-1", vendor = true })
      assert_fails(400, 1157, BAD_REGION, "PUT", "/192.0.2.1", { origin_ip = "192.0.2.1", region = "us-east-1",
        vendor = "ibm" })
      assert_fails(400, 1157, BAD_REGION, "PUT", "/192.0.2.1", { origin_ip = "192.0.2.1", region = "eastus",
        vendor = "aws" })
      assert.are.same(SEED, fake:zone())
    end)

    it("refuses a new IP past max_mappings with 403 code 1164 but replaces existing ones", function()
      fake:options { max_mappings = 3 }
      assert_fails(403, 1164, LIMIT(3), "PUT", "/198.51.100.7", { origin_ip = "198.51.100.7",
        region = "us-east-1", vendor = "aws" })
      assert.are.same(SEED, fake:zone())
      local _, status = v2("PUT", "/203.0.113.5", { origin_ip = "203.0.113.5", region = "ap-tokyo-1",
        vendor = "oci" })
      assert.are.equal(200, status)
      assert.are.equal("ap-tokyo-1", fake:zone()[3].region)
    end)
  end)

  describe("delete (DELETE /<ip>)", function()
    it("deletes and answers {origin_ip} only", function()
      local env, status, text = v2("DELETE", "/2001%3ADB8%3A%3A1")
      assert.are.equal(200, status)
      assert.are.same(success { origin_ip = "2001:db8::1" }, env)
      assert.matches('"result":{"origin_ip":"2001:db8::1"}', text, 1, true)
      assert.are.same({ SEED[1], SEED[3] }, fake:zone())
    end)

    it("answers 404 (code 1163) when absent and 400 code 1146 for an invalid IP", function()
      v2("DELETE", "/192.0.2.1")
      assert_fails(404, 1163, DELETE_ABSENT, "DELETE", "/192.0.2.1")
      assert_fails(400, 1146, INVALID_IP, "DELETE", "/192.0.2.1.1")
      assert.are.same({ SEED[2], SEED[3] }, fake:zone())
    end)
  end)

  describe("bulk_update (PUT /batch)", function()
    it("creates or replaces item by item; failures per item; the result is not wrapped", function()
      fake:options { max_mappings = 5 }
      local env, status = v2("PUT", "/batch", cjson.encode {
        { origin_ip = "2001:DB8::1", region = "us-west1", vendor = "gcp" },      -- replaced in place
        { origin_ip = "nope", region = "us-east-1", vendor = "aws" },
        { origin_ip = "198.51.100.1", region = "us-east-1", vendor = "ibm" },
        { origin_ip = "198.51.100.2", region = "us-east1", vendor = "aws" },
        { origin_ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },  -- new: the 4th mapping
      })
      assert.are.equal(200, status)
      assert.are.same(success {
        succeeded = {
          { origin_ip = "2001:db8::1", region = "us-west1", vendor = "gcp" },
          { origin_ip = "198.51.100.3", region = "uk-london-1", vendor = "oci" },
        },
        failed = {
          { origin_ip = "nope", error = "invalid IP address" },
          { origin_ip = "198.51.100.1", error = "unsupported vendor" },
          { origin_ip = "198.51.100.2", error = "unsupported region" },
        },
      }, env)
      local zone = fake:zone()
      assert.are.equal(4, #zone)
      assert.are.same(SEED[1], zone[1]) -- unlisted: untouched
      assert.are.same(SEED[3], zone[3])
      assert.matches(RFC3339, zone[2].modified_on)
      assert.are_not.equal(SEED[2].modified_on, zone[2].modified_on)
      assert.are.same({ "2001:db8::1", "us-west1", "gcp" }, { zone[2]["origin-ip"], zone[2].region, zone[2].vendor })
      assert.are.same({ "198.51.100.3", "uk-london-1", "oci" },
        { zone[4]["origin-ip"], zone[4].region, zone[4].vendor })
    end)

    it("writes [] for an empty list", function()
      local _, status, text = v2("PUT", "/batch", '[{"origin_ip":"x","region":"us-east-1","vendor":"aws"}]')
      assert.are.equal(200, status)
      assert.matches('"result":{"failed":[{"error":"invalid IP address","origin_ip":"x"}],"succeeded":[]}', text, 1,
        true)
    end)

    it("rejects a body that is not an array of 1 to 100 {origin_ip, region, vendor} with code 1198", function()
      local many = {}
      for i = 1, 101 do many[i] = { origin_ip = "10.0.0." .. i, region = "us-east-1", vendor = "aws" } end
      assert_fails(400, 1198, bad("the body is not valid JSON"), "PUT", "/batch", "")
      assert_fails(400, 1198, bad('expected a JSON array of objects {"origin_ip", "region", "vendor"}'), "PUT",
        "/batch", { origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws" })
      assert_fails(400, 1198, bad("the array is empty; send 1 to 100 mappings"), "PUT", "/batch", "[]")
      assert_fails(400, 1198, bad("101 items; at most 100 mappings per request"), "PUT", "/batch", cjson.encode(many))
      assert_fails(400, 1198, bad('item 1 of the array: "origin_ip" is required'), "PUT", "/batch",
        '[{"ip":"192.0.2.1","region":"us-east-1","vendor":"aws"}]')
      assert_fails(400, 1198, bad("item 2 of the array: not a JSON object"), "PUT", "/batch",
        '[{"origin_ip":"192.0.2.1","region":"us-east-1","vendor":"aws"},"192.0.2.2"]')
      assert.are.same(SEED, fake:zone())
    end)
  end)

  describe("bulk_delete (DELETE /batch)", function()
    it("deletes item by item with the region and vendor each had; failures per item; not wrapped", function()
      local env, status = v2("DELETE", "/batch", '["198.51.100.1","nope","2001:DB8::1","2001:db8::1"]')
      assert.are.equal(200, status)
      assert.are.same(success {
        succeeded = { { origin_ip = "2001:db8::1", region = "us-central1", vendor = "gcp" } },
        failed = {
          { origin_ip = "198.51.100.1", error = "mapping not found" },
          { origin_ip = "nope", error = "invalid IP address" },
          { origin_ip = "2001:db8::1", error = "mapping not found" }, -- second occurrence
        },
      }, env)
      assert.are.same({ SEED[1], SEED[3] }, fake:zone())
      local _, _, text = v2("DELETE", "/batch", '["192.0.2.1"]')
      assert.matches('"failed":[]', text, 1, true)
    end)

    it("rejects bad bodies with code 1198", function()
      local list = {}
      for i = 1, 101 do list[i] = "10.0.0." .. (i % 250) end
      for _, body in ipairs { "not json", "{}", "[]", '["a", 2]', cjson.encode(list) } do
        local env, status = v2("DELETE", "/batch", body)
        assert.are.equal(400, status, body)
        assert.are.equal(1198, env.errors[1].code)
        assert.matches("^Invalid request body: ", env.errors[1].message)
      end
      assert.are.same(SEED, fake:zone())
    end)
  end)

  describe("supported_regions and routing", function()
    it("answers supported_regions as v1 does", function()
      local _, status, text = v2("GET", "/supported_regions")
      assert.are.equal(200, status)
      assert.are.equal((fake:raw("GET", V1 .. "/supported_regions", nil, AUTH)), text)
      assert.are.same(require("cloudflare.fake_api").SUPPORTED_REGIONS, cjson.decode(text).result.vendors)
    end)

    it("answers 405 code 10405 for other methods, 7000 below an IP, 7003 for a bad zone id", function()
      for _, c in ipairs {
        { "POST", "" }, { "PUT", "" }, { "PATCH", "" }, { "DELETE", "" }, { "GET", "/batch" }, { "PATCH", "/batch" },
        { "POST", "/batch" }, { "PUT", "/supported_regions" }, { "PATCH", "/192.0.2.1" }, { "POST", "/192.0.2.1" },
      } do
        assert_fails(405, 10405, "Method not allowed", c[1], c[2], c[1] ~= "GET" and "[]" or nil)
      end
      assert_fails(404, 7000, "No route for that URI", "GET", "/192.0.2.1/more")
      local text, status = fake:raw("GET", "/client/v4/zones/bad-zone!/origin/cloud_regions", nil, AUTH)
      assert.are.equal(404, status)
      assert.are.equal(7003, cjson.decode(text).errors[1].code)
      assert.are.same(SEED, fake:zone())
    end)

    it("always writes origin_ip, whatever wire_key says", function()
      for _, key in ipairs { "origin-ip", "origin_ip" } do
        fake:options { wire_key = key }
        for _, c in ipairs { { "GET", "" }, { "GET", "/192.0.2.1" }, { "DELETE", "/batch", '["2001:db8::1"]' },
          { "PUT", "/batch", '[{"origin_ip":"2001:db8::1","region":"us-east1","vendor":"gcp"}]' } } do
          local _, status, text = v2(c[1], c[2], c[3])
          assert.are.equal(200, status)
          assert.matches('"origin_ip":', text, 1, true)
          assert.is_nil(text:find('"origin-ip"', 1, true), text)
        end
      end
    end)
  end)
end)

describe("the fake API's one state under both generations", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "2001:db8::1", "us-central1", "gcp" } })
  end)

  local function call(method, path, body)
    local text, status = fake:raw(method, path, body, AUTH)
    return cjson.decode(text), status
  end

  it("shows a mapping written through one generation to the other", function()
    local _, status = call("POST", V1, { ip = "198.51.100.7", region = "eu-west-2", vendor = "aws" })
    assert.are.equal(200, status)
    local env
    env, status = call("GET", V2 .. "/198.51.100.7")
    assert.are.equal(200, status)
    assert.are.same({ "198.51.100.7", "eu-west-2", "aws" }, { env.result.origin_ip, env.result.region,
      env.result.vendor })
    _, status = call("PUT", V2 .. "/198.51.100.8", { origin_ip = "198.51.100.8", region = "uksouth",
      vendor = "azure" })
    assert.are.equal(200, status)
    env, status = call("GET", V1 .. "/198.51.100.8")
    assert.are.equal(200, status)
    assert.are.same({ "198.51.100.8", "uksouth", "azure" }, { env.result.value["origin-ip"], env.result.value.region,
      env.result.value.vendor })
    local order = { "192.0.2.1", "2001:db8::1", "198.51.100.7", "198.51.100.8" }
    assert.are.same(order, H.pluck(call("GET", V1).result.value, "origin-ip"))
    assert.are.same(order, H.pluck(call("GET", V2).result, "origin_ip"))
    assert.are.equal(4, call("GET", V2).result_info.total_count)
    assert.are.same(order, H.pluck(fake:zone(), "origin-ip"))
  end)

  it("deletes through one generation what the other wrote", function()
    call("PUT", V2 .. "/198.51.100.8", { origin_ip = "198.51.100.8", region = "uksouth", vendor = "azure" })
    local _, status = call("DELETE", V2 .. "/192.0.2.1")
    assert.are.equal(200, status)
    assert.are.same({ 404, 1142 }, (function()
      local env, s = call("GET", V1 .. "/192.0.2.1")
      return { s, env.errors[1].code }
    end)())
    local env = call("DELETE", V1 .. "/batch", { "198.51.100.8" })
    assert.are.same({ { ["origin-ip"] = "198.51.100.8", region = "uksouth", vendor = "azure" } },
      env.result.value.succeeded)
    _, status = call("GET", V2 .. "/198.51.100.8")
    assert.are.equal(404, status)
    assert.are.same({ "2001:db8::1" }, H.pluck(fake:zone(), "origin-ip"))
  end)

  it("counts both generations' mappings against one limit", function()
    fake:options { max_mappings = 3 }
    local _, status = call("POST", V1, { ip = "198.51.100.7", region = "eu-west-2", vendor = "aws" })
    assert.are.equal(200, status)
    local env
    env, status = call("PUT", V2 .. "/198.51.100.8", { origin_ip = "198.51.100.8", region = "uksouth",
      vendor = "azure" })
    assert.are.same({ 403, 1164 }, { status, env.errors[1].code })
    env, status = call("PUT", V2 .. "/batch", { { origin_ip = "198.51.100.8", region = "uksouth", vendor = "azure" } })
    assert.are.same({ 403, 1164 }, { status, env.errors[1].code }) -- the whole batch, as v1's
    env, status = call("PATCH", V1 .. "/batch", { { ip = "198.51.100.8", region = "eu-west-2", vendor = "aws" } })
    assert.are.same({ 403, 1164 }, { status, env.errors[1].code })
    assert.are.same({ "192.0.2.1", "2001:db8::1", "198.51.100.7" }, H.pluck(fake:zone(), "origin-ip"))
  end)
end)

describe("the fake API's generations (--generations, the generations option)", function()
  local NO_ROUTE = failure(7000, "No route for that URI")

  -- Runs fn(fake) against a fake started with args, stopping it whatever happens.
  local function with_fake(args, fn)
    local fake = H.start_fake(args)
    fake:set_zone(H.ZONE, {})
    local ok, err = pcall(fn, fake)
    fake:stop()
    assert(ok, err)
  end
  local function call(fake, method, path, body, headers)
    local text, status = fake:raw(method, path, body, headers or AUTH)
    return cjson.decode(text), status, text
  end
  local function generations(fake) return (fake:control("GET", "/__fake/options")).generations end

  it("serves both by default and shows them in the options", function()
    with_fake({}, function(fake)
      assert.are.same({ "v1", "v2" }, generations(fake))
      assert.are.equal(200, select(2, call(fake, "GET", V1)))
      assert.are.equal(200, select(2, call(fake, "GET", V2)))
    end)
    with_fake({ "--generations", "v1,v2" }, function(fake)
      assert.are.same({ "v1", "v2" }, generations(fake))
    end)
  end)

  it("--generations v2: v1 answers 404 code 7000 exactly as an unknown route, changing nothing", function()
    with_fake({ "--generations", "v2" }, function(fake)
      assert.are.same({ "v2" }, generations(fake))
      for _, c in ipairs { { "GET", V1 }, { "GET", V1 .. "/192.0.2.1" }, { "GET", V1 .. "/supported_regions" },
        { "POST", V1, { ip = "192.0.2.1", region = "us-east-1", vendor = "aws" } },
        { "DELETE", V1 .. "/batch", { "192.0.2.1" } } } do
        local env, status, text = call(fake, c[1], c[2], c[3])
        assert.are.equal(404, status, c[1] .. " " .. c[2])
        assert.are.same(NO_ROUTE, env)
        assert.are.equal(select(3, call(fake, c[1], "/client/v4/nowhere", c[3])), text)
      end
      assert.are.same({}, fake:zone())
      -- authentication comes first, as for an unknown route
      local bad = { authorization = "Bearer wrong" }
      local _, s1, t1 = call(fake, "GET", V1, nil, bad)
      local _, s2, t2 = call(fake, "GET", "/client/v4/nowhere", nil, bad)
      assert.are.same({ 403, t2 }, { s1, t1 })
      assert.are.equal(403, s2)
      local _, status = call(fake, "PUT", V2 .. "/192.0.2.1", { origin_ip = "192.0.2.1", region = "us-east-1",
        vendor = "aws" })
      assert.are.equal(200, status)
      assert.are.same({ "192.0.2.1" }, H.pluck(fake:zone(), "origin-ip"))
    end)
  end)

  it("--generations v1: v2 answers 404 code 7000", function()
    with_fake({ "--generations=v1" }, function(fake)
      assert.are.same({ "v1" }, generations(fake))
      for _, c in ipairs { { "GET", V2 }, { "GET", V2 .. "/192.0.2.1" }, { "DELETE", V2 .. "/batch", { "192.0.2.1" } },
        { "PUT", V2 .. "/192.0.2.1", { origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws" } } } do
        local env, status = call(fake, c[1], c[2], c[3])
        assert.are.equal(404, status)
        assert.are.same(NO_ROUTE, env)
      end
      assert.are.same({}, fake:zone())
      assert.are.equal(200, select(2, call(fake, "GET", V1)))
    end)
  end)

  it("switches at run time with the generations option; reset restores the start-up value", function()
    with_fake({ "--generations", "v2" }, function(fake)
      local o, status = fake:control("PUT", "/__fake/options", { generations = { "v1" } })
      assert.are.equal(200, status)
      assert.are.same({ "v1" }, o.generations)
      assert.are.same({ "v1" }, generations(fake))
      assert.are.same({ 404, NO_ROUTE }, (function()
        local env, s = call(fake, "GET", V2)
        return { s, env }
      end)())
      assert.are.equal(200, select(2, call(fake, "GET", V1)))
      o = fake:control("PUT", "/__fake/options", { generations = { "v2", "v1", "v2" } })
      assert.are.same({ "v1", "v2" }, o.generations)
      assert.are.equal(200, select(2, call(fake, "GET", V2)))
      fake:reset()
      assert.are.same({ "v2" }, generations(fake))
      assert.are.equal(404, select(2, call(fake, "GET", V1)))
    end)
  end)

  it("rejects bad lists in the option and on the command line", function()
    with_fake({}, function(fake)
      for _, body in ipairs { '{"generations":[]}', '{"generations":["v3"]}', '{"generations":"v1"}',
        '{"generations":[1]}', '{"generations":null}', '{"generations":{"v1":true}}' } do
        local o, status = fake:control("PUT", "/__fake/options", body)
        assert.are.equal(400, status, body)
        assert.is_false(o.ok)
        assert.matches("generations", o.error, 1, true)
      end
      local o = fake:control("PUT", "/__fake/options", '{"generations":["v3"]}')
      assert.are.equal("generations: unknown generation 'v3' (known: v1, v2)", o.error)
      assert.are.same({ "v1", "v2" }, generations(fake))
    end)
    for _, value in ipairs { "v3", "", "v1,,v2", "V1" } do
      local _, stderr, code = H.run { "--fake-api", "--generations", value }
      assert.are.equal(2, code, value)
      assert.matches("option --generations", stderr, 1, true)
    end
    local out, _, code = H.run { "--fake-api", "--help" }
    assert.are.equal(0, code)
    assert.matches("--generations LIST", out, 1, true)
  end)
end)

describe("the fake API's per-item error texts (item_errors)", function()
  local DEFAULTS = { not_found = "mapping not found", invalid_ip = "invalid IP address",
    unsupported_vendor = "unsupported vendor", unsupported_region = "unsupported region",
    limit = "mapping limit reached" }
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "2001:db8::1", "us-central1", "gcp" } })
  end)

  local function item_errors() return (fake:control("GET", "/__fake/options")).item_errors end
  local function set(body)
    local o, status = fake:control("PUT", "/__fake/options", body)
    return o, status
  end
  local function call(method, path, body)
    local text, status = fake:raw(method, path, body, AUTH)
    assert.are.equal(200, status, text)
    return cjson.decode(text).result
  end

  it("shows the defaults", function()
    assert.are.same(DEFAULTS, item_errors())
  end)

  it("sets the texts of failed batch items in both generations, key by key; reset restores them", function()
    local o, status = set { item_errors = { not_found = "NF", invalid_ip = "BAD IP" } }
    assert.are.equal(200, status)
    local expected = {}
    for k, v in pairs(DEFAULTS) do expected[k] = v end
    expected.not_found, expected.invalid_ip = "NF", "BAD IP"
    assert.are.same(expected, o.item_errors)
    assert.are.same(expected, item_errors())
    assert.are.same({ "NF", "BAD IP" }, H.pluck(call("DELETE", V1 .. "/batch", { "198.51.100.1", "nope" }).value.failed,
      "error"))
    assert.are.same({ "NF", "BAD IP" }, H.pluck(call("DELETE", V2 .. "/batch", { "198.51.100.1", "nope" }).failed,
      "error"))
    assert.are.same({ "BAD IP" }, H.pluck(call("PATCH", V1 .. "/batch",
      { { ip = "nope", region = "us-east-1", vendor = "aws" } }).value.failed, "error"))

    set { item_errors = { unsupported_vendor = "V?", unsupported_region = "R?", limit = "FULL" } }
    fake:options { max_mappings = #fake:zone() + 1 }
    local result = call("PUT", V2 .. "/batch", {
      { origin_ip = "198.51.100.1", region = "us-east-1", vendor = "ibm" },
      { origin_ip = "198.51.100.2", region = "eastus", vendor = "aws" },
      { origin_ip = "198.51.100.3", region = "us-east-1", vendor = "aws" },
      { origin_ip = "x", region = "us-east-1", vendor = "aws" },
    })
    assert.are.same({ "198.51.100.3" }, H.pluck(result.succeeded, "origin_ip"))
    assert.are.same({ "V?", "R?", "BAD IP" }, H.pluck(result.failed, "error"))
    -- past the limit, the contract's 1164 refuses the whole batch, whatever the texts
    local text, lstatus = fake:raw("PUT", V2 .. "/batch", cjson.encode {
      { origin_ip = "198.51.100.4", region = "us-east-1", vendor = "aws" },
      { origin_ip = "198.51.100.5", region = "us-east-1", vendor = "aws" } }, AUTH)
    assert.are.equal(403, lstatus)
    assert.are.equal(1164, cjson.decode(text).errors[1].code)
    fake:options { max_mappings = 3500 }

    o = set '{"item_errors":{"not_found":null}}'
    assert.are.equal("mapping not found", o.item_errors.not_found)
    assert.are.equal("BAD IP", o.item_errors.invalid_ip)
    fake:reset()
    assert.are.same(DEFAULTS, item_errors())
    set { item_errors = { limit = "FULL" } }
    o = set '{"item_errors":null}'
    assert.are.same(DEFAULTS, o.item_errors)
  end)

  it("rejects unknown keys and texts that are not non-empty strings, changing nothing", function()
    for _, c in ipairs {
      { '{"item_errors":{"gone":"x"}}', "item_errors: unknown key 'gone' (known: not_found, invalid_ip, "
        .. "unsupported_vendor, unsupported_region, limit)" },
      { '{"item_errors":{"not_found":5}}', "item_errors.not_found must be a non-empty string" },
      { '{"item_errors":{"not_found":""}}', "item_errors.not_found must be a non-empty string" },
      { '{"item_errors":{"limit":"ok","not_found":""}}', "item_errors.not_found must be a non-empty string" },
      { '{"item_errors":"x"}', "item_errors must be an object" },
      { '{"item_errors":["x"]}', "item_errors must be an object" },
    } do
      local o, status = set(c[1])
      assert.are.equal(400, status, c[1])
      assert.is_false(o.ok)
      assert.are.equal(c[2], o.error:sub(1, #c[2]), c[1])
    end
    assert.are.same(DEFAULTS, item_errors())
  end)
end)

describe("the fake API's request log (generation, response)", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "2001:db8::1", "us-central1", "gcp" } })
  end)

  local function last() local log = fake:requests() return log[#log] end

  it("notes which generation each API request was for", function()
    fake:raw("GET", V1, nil, AUTH)
    fake:raw("GET", V2 .. "?page=1", nil, AUTH)
    fake:raw("GET", "/client/v4/nowhere", nil, AUTH)
    fake:raw("GET", "/client/v4/zones/" .. H.ZONE .. "/dns_records", nil, AUTH)
    fake:raw("GET", "/client/v4/zones/" .. H.ZONE .. "/origin/cloud_regionsX", nil, AUTH)
    fake:raw("DELETE", V2 .. "/batch", '["192.0.2.1"]', AUTH)
    fake:raw("GET", V1 .. "/supported_regions", nil, { authorization = "Bearer wrong" })
    fake:control("GET", "/__fake/zones")
    local log = fake:requests()
    assert.are.equal(7, #log) -- control requests are not logged
    local got = {}
    for i, r in ipairs(log) do got[i] = r.generation or "-" end
    assert.are.same({ "v1", "v2", "-", "-", "-", "v2", "v1" }, got)
    assert.are.equal("page=1", log[2].query)
  end)

  it("holds no credential a client sent: their values are <redacted>, the scheme and the email stay", function()
    local wrong = "wrong-token-" .. math.random(1e9)
    local legacy = { ["x-auth-email"] = H.EMAIL, ["x-auth-key"] = H.KEY }
    fake:raw("GET", V2, nil, AUTH)
    fake:raw("GET", V2, nil, legacy)
    fake:raw("GET", V2, nil, { authorization = "Bearer " .. wrong })
    fake:raw("GET", V2, nil, { authorization = wrong, ["proxy-authorization"] = "Basic " .. wrong })
    fake:raw("GET", V2, nil, {})
    local text = fake:raw("GET", "/__fake/requests") -- what anyone reaching the control API reads
    for _, secret in ipairs { H.TOKEN, H.KEY, wrong } do
      assert.is_nil(text:find(secret, 1, true), "the log shows " .. secret)
    end
    local log = cjson.decode(text)
    assert.are.equal(5, #log)
    assert.are.equal("Bearer <redacted>", log[1].headers.authorization)
    assert.are.equal("token", log[1].credential)
    assert.are.equal("<redacted>", log[2].headers["x-auth-key"])
    assert.are.equal(H.EMAIL, log[2].headers["x-auth-email"])
    assert.are.equal("key", log[2].credential)
    assert.are.equal("Bearer <redacted>", log[3].headers.authorization)
    assert.are.equal("rejected", log[3].credential)
    assert.are.equal("<redacted>", log[4].headers.authorization) -- no scheme to keep
    assert.are.equal("Basic <redacted>", log[4].headers["proxy-authorization"])
    assert.is_nil(log[5].credential)
    assert.are.same({ 200, 200, 403, 400, 400 }, H.pluck(log, "status")) -- authentication still saw them
  end)

  it("holds the status and the exact body of each response", function()
    local cases = {
      { "GET", V1 }, { "GET", V2 }, { "GET", V2 .. "/198.51.100.1" }, { "GET", V1 .. "/nope" },
      { "PUT", V2 .. "/batch", '[{"origin_ip":"198.51.100.1","region":"us-east-1","vendor":"aws"}]' },
      { "GET", "/client/v4/nowhere" },
    }
    for _, c in ipairs(cases) do
      local text, status = fake:raw(c[1], c[2], c[3], AUTH)
      local r = last()
      assert.are.equal(status, r.status)
      assert.are.same({ status = status, body = text }, r.response)
    end
    local text, status = fake:raw("GET", V1, nil, {})
    assert.are.same({ 400, text }, { last().response.status, last().response.body })
    assert.are.equal(400, status)
  end)

  it("holds what a fault sent: half a body, a garbled one, its own, a note for oversize", function()
    local function check(f, expected_status)
      fake:fault(f)
      local status, _, body = exchange(fake, "GET", V1, { Authorization = "Bearer " .. H.TOKEN })
      assert.are.equal(expected_status, status)
      assert.are.same({ status = status, body = body }, last().response)
      return body
    end
    local whole = select(3, exchange(fake, "GET", V1, { Authorization = "Bearer " .. H.TOKEN }))
    local half = check({ truncate = true }, 200)
    assert.are.equal(whole:sub(1, #whole // 2), half)
    assert.matches("#<garbage>$", check({ malformed = true }, 200))
    assert.are.equal("<html>down</html>", check({ status = 502, body = "<html>down</html>" }, 502))
    assert.are.equal(1141, cjson.decode(check({ status = 500 }, 500)).errors[1].code)

    fake:fault { oversize = 1000 }
    local status, _, body = exchange(fake, "GET", V1, { Authorization = "Bearer " .. H.TOKEN })
    assert.are.same({ 200, 1000 }, { status, #body })
    local r = last()
    assert.are.equal(200, r.response.status)
    assert.is_nil(r.response.body)
    assert.matches("oversize", r.response.note, 1, true)

    for _, when in ipairs { "before", "after" } do
      fake:fault { drop = when }
      assert.is_nil((exchange(fake, "GET", V1, { Authorization = "Bearer " .. H.TOKEN })))
      r = last()
      assert.are.equal(when, r.dropped)
      assert.is_nil(r.response)
    end
  end)

  it("holds the 429 of the rate limit", function()
    fake:options { rate_limit = { requests = 1, per = 60 } }
    fake:raw("GET", V2, nil, AUTH)
    local text, status = fake:raw("GET", V2, nil, AUTH)
    assert.are.equal(429, status)
    assert.are.same({ status = 429, body = text }, last().response)
  end)

  it("lets every exchange of both generations be checked against the published schemas", function()
    local a, b = AUTH, { authorization = "Bearer wrong" }
    local function mapping(ip, key) return { [key or "ip"] = ip, region = "us-east-1", vendor = "aws" } end
    fake:options { max_mappings = 5 }
    for _, c in ipairs {
      { "GET", V1 }, { "GET", V1 .. "/192.0.2.1" }, { "GET", V1 .. "/198.51.100.1" }, { "GET", V1 .. "/x" },
      { "POST", V1, mapping("198.51.100.1") }, { "POST", V1, mapping("198.51.100.1") }, { "POST", V1, "{" },
      { "PATCH", V1, mapping("198.51.100.2") }, { "PATCH", V1, { ip = "198.51.100.2", region = "x", vendor = "aws" } },
      { "PATCH", V1 .. "/batch", { mapping("198.51.100.3"), mapping("nope") } },
      { "PATCH", V1 .. "/batch", { { ip = "198.51.100.4", region = "x", vendor = "aws" } } },
      { "PATCH", V1 .. "/batch", { mapping("198.51.100.5"), mapping("198.51.100.6") } },
      { "DELETE", V1 .. "/batch", { "198.51.100.3", "198.51.100.3", "nope" } }, { "DELETE", V1 .. "/batch", "[]" },
      { "DELETE", V1 .. "/198.51.100.2" }, { "DELETE", V1 .. "/198.51.100.2" }, { "GET", V1 .. "/supported_regions" },
      { "GET", V2 }, { "GET", V2 .. "?page=9" }, { "GET", V2 .. "?per_page=0" }, { "GET", V2 .. "/192.0.2.1" },
      { "GET", V2 .. "/198.51.100.9" }, { "PUT", V2 .. "/198.51.100.9", mapping("198.51.100.9", "origin_ip") },
      { "PUT", V2 .. "/198.51.100.9", mapping("198.51.100.8", "origin_ip") },
      { "PUT", V2 .. "/198.51.100.7", mapping("198.51.100.7", "origin_ip") },
      { "PUT", V2 .. "/batch", { mapping("198.51.100.9", "origin_ip"), mapping("198.51.100.6", "origin_ip"),
        mapping("x", "origin_ip"), { origin_ip = "192.0.2.1", region = "x", vendor = "aws" } } },
      { "DELETE", V2 .. "/batch", { "198.51.100.9", "198.51.100.9", "x" } }, { "DELETE", V2 .. "/batch", "{}" },
      { "DELETE", V2 .. "/192.0.2.1" }, { "DELETE", V2 .. "/192.0.2.1" }, { "GET", V2 .. "/supported_regions" },
      { "POST", V2 }, { "GET", V2, nil, b }, { "GET", V1, nil, {} },
    } do
      fake:raw(c[1], c[2], c[3], c[4] or a)
    end
    local seen, statuses = {}, {}
    for _, r in ipairs(fake:requests()) do
      assert.is_string(r.generation)
      local ok, key = pcall(check_exchange, r)
      assert(ok, key)
      seen[key] = true
      statuses[r.response.status] = true
    end
    for gen, ops in pairs(RESULTS) do
      for op in pairs(ops) do assert.is_true(seen[gen .. " " .. op], "no exchange for " .. gen .. " " .. op) end
    end
    for _, s in ipairs { 200, 400, 403, 404, 405, 500 } do assert.is_true(statuses[s], "no " .. s) end
    -- and the check can fail: a v1 answer is not a v2 one
    local r = fake:requests()[1]
    r.generation, r.path = "v2", V2
    assert.is_false((pcall(check_exchange, r)))
  end)
end)

describe("the fake API module", function()
  local F = require "cloudflare.fake_api"

  it("keeps its public fields", function()
    for _, k in ipairs { "new", "main", "sandbox_seed", "canonical_ip", "encode_json", "array" } do
      assert.is_function(F[k], k)
    end
    assert.are.equal(H.ZONE, F.SANDBOX_ZONE)
    assert.are.equal(3500, F.DEFAULT_MAX_MAPPINGS)
    assert.is_table(F.SUPPORTED_REGIONS.aws)
    assert.are.equal(cjson.null, F.null)
    assert.are.equal("2001:db8::1", F.canonical_ip("2001:DB8:0::1"))
    assert.is_nil(F.canonical_ip("192.0.2.01"))
    assert.are.equal('{"a":[],"b":null}', F.encode_json { a = F.array(), b = F.null })
    assert.are.equal(12, #F.sandbox_seed().zones[F.SANDBOX_ZONE])
    local status, env = F.envelope.ok({}, { page = 1 })
    assert.are.same({ 200, 1 }, { status, env.result_info.page })
    status, env = F.envelope.fail(404, 1142, "x")
    assert.are.same({ 404, 1142 }, { status, env.errors[1].code })
    assert.are.equal("origin_public_cloud_region", F.envelope.setting({}).id)
    local by_generation = {}
    for _, r in ipairs(F.routes) do
      assert.is_string(r.path)
      assert.is_table(r.methods)
      by_generation[r.generation] = (by_generation[r.generation] or 0) + 1
    end
    assert.are.same({ v1 = 4, v2 = 4 }, by_generation)
    assert.truthy(("/zones/" .. H.ZONE .. "/origin/cloud_regions/batch"):match(F.routes[6].path))
  end)

  it("checks its options when created", function()
    assert.has_error(function() F.new { generations = { "v3" } } end)
    assert.has_error(function() F.new { item_errors = { bogus = "x" } } end)
    assert.has_error(function() F.new { wire_key = "ip" } end)
    local server = F.new { generations = { "v2" }, item_errors = { not_found = "gone" }, quiet = true }
    assert.are.same({ "v2" }, server.options.generations)
    assert.are.equal("gone", server.options.item_errors.not_found)
    assert.are.equal("invalid IP address", server.options.item_errors.invalid_ip)
  end)
end)

describe("the fake API's JSON encoder", function()
  local wire = require "cloudflare.fake.wire"

  it("writes what the C encoder writes the same way, and takes the rest itself", function()
    -- the common answer: sorted keys, [] for a marked empty array, 1141.0 as 1141
    assert.are.equal('{"code":1141,"errors":[],"result":{"failed":[],"succeeded":[{"origin_ip":"192.0.2.1"}]}}',
      wire.encode_json { errors = wire.array(), code = 1141.0,
        result = { failed = wire.array(), succeeded = wire.array { { origin_ip = "192.0.2.1" } } } })
    -- bytes that are not UTF-8 (a binary body in the log) are written as \u00XX: still JSON
    local text = wire.encode_json { body = "\xff\xfe" }
    assert.are.equal('{"body":"\\u00ff\\u00fe"}', text)
    assert.are.same({ body = "\u{ff}\u{fe}" }, cjson.decode(text))
    -- NaN is null, a key that is not a string is its tostring
    assert.are.equal('{"n":null}', wire.encode_json { n = 0 / 0 })
    assert.are.equal('{"true":1}', wire.encode_json { [true] = 1 })
  end)
end)
