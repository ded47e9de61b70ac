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
    local function send(ip)
      local c = assert(socket.connect(fake.host, fake.port))
      local body = '["' .. ip .. '"]'
      c:send("DELETE " .. BATCH .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. H.TOKEN
        .. "\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
      return c
    end
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
end)
