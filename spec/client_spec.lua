-- spec/client_spec.lua: runtime/cf_client.c, the cloudflare.Client and cloudflare.Error types,
-- and cloudflare.new's configuration rules (lua/cloudflare.lua), against the fake API.
local H = require "spec.helper"

describe("cloudflare.new", function()
  it("needs credentials and says which environment variables to set", function()
    local out, err, code = H.run({ "-e", "cloudflare.new{}" }, { env = {
      CLOUDFLARE_API_TOKEN = false, CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false,
      CLOUDFLARE_API_TOKEN_FILE = false } })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("no credentials configured: set CLOUDFLARE_API_TOKEN %(or "
      .. "CLOUDFLARE_API_TOKEN_FILE, or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY%)", err)
  end)

  it("rejects unknown options and wrong types, naming them", function()
    assert.error_matches(function() cloudflare.new { api_tokn = "x" } end, 'unknown option "api_tokn"')
    assert.error_matches(function() cloudflare.new { api_token = 5 } end,
      "option 'api_token' must be a string, got number")
    assert.error_matches(function() cloudflare.new { api_token = "x", timeout = -1 } end,
      "timeout must be a number of seconds")
    assert.error_matches(function() cloudflare.new { api_token = "x", base_url = "ftp://h/" } end,
      "base_url must start with https:// or http://")
    assert.error_matches(function()
      cloudflare.new { api_token = "x", base_url = "https://user:pw@h/client/v4" } end,
      "base_url must not contain credentials")
  end)

  it("refuses credentials that could inject headers, without echoing them", function()
    local ok, msg = pcall(cloudflare.new, { api_token = "abc\r\nX-Evil: 1" })
    assert.is_false(ok)
    assert.matches("api_token contains a space or control character", msg)
    assert.is_nil(msg:find("X-Evil", 1, true))
  end)

  it("never shows credentials in tostring", function()
    local c = cloudflare.new { api_token = "very-secret-token", base_url = "http://127.0.0.1:9/x" }
    local s = tostring(c)
    assert.matches("^cloudflare.Client %(api token, http://127.0.0.1:9/x%)", s)
    assert.is_nil(s:find("very-secret-token", 1, true))
    c:close()
    assert.matches("closed", tostring(c))
  end)

  it("raises when a closed client is used, and closes with <close>", function()
    local c = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
    c:close()
    c:close() -- idempotent
    assert.error_matches(function()
      c.cache.origin_cloud_regions.bulk_delete { zone_id = "a", ips = { "192.0.2.1" } }
    end, "attempt to use a closed cloudflare.Client")
    local kept
    do
      local d <close> = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
      kept = d
    end
    assert.matches("closed", tostring(kept))
  end)
end)

describe("credentials from the environment", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
    fake:clear_requests()
  end)

  local script = [[
    local res, err = cloudflare.cache.origin_cloud_regions.bulk_delete{
      zone_id = os.getenv("ZONE"), ips = { "192.0.2.1" } }
    assert(res, tostring(err))
    print(#res.value.succeeded, res.value.succeeded[1].vendor)
  ]]

  it("the default client uses CLOUDFLARE_API_TOKEN and CLOUDFLARE_BASE_URL", function()
    local out, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN,
      CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false } })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("1\taws\n", out)
    local r = fake:requests()[1]
    assert.are.equal("Bearer " .. H.TOKEN, r.headers.authorization)
  end)

  it("uses CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY when no token is set", function()
    local _, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = false,
      CLOUDFLARE_EMAIL = H.EMAIL, CLOUDFLARE_API_KEY = H.KEY } })
    assert.are.equal(0, code, err)
    local r = fake:requests()[1]
    assert.are.equal(H.KEY, r.headers["x-auth-key"])
    assert.is_nil(r.headers.authorization)
  end)

  it("prefers the token when both schemes are configured", function()
    local _, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN,
      CLOUDFLARE_EMAIL = H.EMAIL, CLOUDFLARE_API_KEY = H.KEY } })
    assert.are.equal(0, code, err)
    local r = fake:requests()[1]
    assert.are.equal("Bearer " .. H.TOKEN, r.headers.authorization)
    assert.is_nil(r.headers["x-auth-key"])
  end)

  it("explicit options win over the environment", function()
    local c = cloudflare.new { base_url = fake.base_url, api_email = H.EMAIL, api_key = H.KEY }
    assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = H.ZONE, ips = { "192.0.2.1" } })
    local r = fake:requests()[1]
    assert.are.equal(H.EMAIL, r.headers["x-auth-email"])
    c:close()
  end)
end)

describe("cloudflare.core.new_table (runtime/cf_client.c)", function()
  local core = require "cloudflare.core"

  it("returns an empty table that grows like any other", function()
    local t = core.new_table(4, 2)
    assert.are.same({}, t)
    for i = 1, 10 do t[i] = i end
    t.x = true
    assert.are.equal(10, #t)
    assert.is_true(t.x)
    assert.are.same({}, core.new_table())
  end)

  it("raises for sizes out of range, naming the argument", function()
    assert.has_error(function() core.new_table(-1, 0) end,
      "bad argument #1 to 'new_table' (out of range)")
    assert.has_error(function() core.new_table(0, math.maxinteger) end,
      "bad argument #2 to 'new_table' (out of range)")
  end)
end)
