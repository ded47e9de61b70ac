-- spec/errors_spec.lua: the messages that teach (issue 14): what a script is told when it
-- gets an argument, an IP, a zone or its configuration wrong, and what the fake received.
local H = require "spec.helper"

local ZONE = H.ZONE

local function raised(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("errors that teach", function()
  local fake, client, ocr

  setup(function()
    fake = H.start_fake()
    client = fake:client { max_retries = 0 }
    ocr = client.cache.origin_cloud_regions
  end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset(); fake:set_zone(ZONE, {}); fake:clear_requests() end)

  describe("an unknown argument", function()
    it("names the closest valid one and lists the valid ones, sending nothing", function()
      local msg = raised(function() ocr.bulk_delete { zone_id = ZONE, ip = { "192.0.2.1" } } end)
      assert.matches('bulk_delete: unknown argument "ip" %(did you mean "ips"%?%); valid: '
        .. 'zone_id, ips, dry_run, journal, concurrency, timeout, connect_timeout, max_retries, '
        .. 'max_retry_wait$', msg)
      assert.are.equal(0, #fake:api_requests())
    end)

    it("suggests for a swap of letters or a prefix, and not for a name far from all", function()
      assert.matches('did you mean "region"%?',
        raised(function() ocr.update { zone_id = ZONE, ip = "192.0.2.1", vendor = "aws", reigon = "x" } end))
      assert.matches('did you mean "concurrency"%?',
        raised(function() ocr.bulk_delete { zone_id = ZONE, ips = {}, concurr = 2 } end))
      local far = raised(function() ocr.get { zone_id = ZONE, ip = "192.0.2.1", colour = "red" } end)
      assert.matches('get: unknown argument "colour"; valid: zone_id, ip, origin_ip, timeout', far)
      assert.is_nil(far:find("did you mean", 1, true))
    end)

    it("in cloudflare.new options gets the same", function()
      local msg = raised(function() cloudflare.new { api_token = "t", base_ur = "http://x" } end)
      assert.matches('cloudflare.new: unknown option "base_ur" %(did you mean "base_url"%?%); '
        .. 'valid: api_token, api_token_file, api_email, api_key, base_url, generation,', msg)
    end)
  end)

  describe("a call through ':'", function()
    it("on a client's namespace is explained, and nothing is sent", function()
      local msg = raised(function() ocr:bulk_delete { zone_id = ZONE, ips = { "192.0.2.1" } } end)
      assert.matches("bulk_delete: called with ':' \u{2014} use a dot: "
        .. "client.cache.origin_cloud_regions.bulk_delete{...}", msg, 1, true)
      assert.is_nil(msg:find("unknown argument", 1, true))
      assert.matches("get: called with ':'",
        raised(function() ocr:get { zone_id = ZONE, ip = "192.0.2.1" } end), 1, true)
      assert.are.equal(0, #fake:api_requests())
    end)

    it("on cloudflare.cache.origin_cloud_regions names the dotted call", function()
      local ns = cloudflare.cache.origin_cloud_regions
      local msg = raised(function() ns:bulk_delete { zone_id = ZONE, ips = {} } end)
      assert.matches("bulk_delete: called with ':' \u{2014} use a dot: "
        .. "cloudflare.cache.origin_cloud_regions.bulk_delete{...}", msg, 1, true)
    end)
  end)

  describe("an invalid IP says why", function()
    local CASES = {
      { "10.0.0.0/8", "invalid IP address: a CIDR, not an address: use cloudflare.select.cidr "
        .. "or list the addresses" },
      { " 192.0.2.1", "invalid IP address: surrounding whitespace or a carriage return (CRLF file?)" },
      { "192.0.2.1\r", "invalid IP address: surrounding whitespace or a carriage return (CRLF file?)" },
      { "010.0.0.1", "invalid IP address: a leading zero, which some tools read as octal" },
      { "fe80::1%eth0", "invalid IP address: a zone index (%eth0) is not part of an address" },
      { "db01.example.com", "invalid IP address: a host name, not an address" },
      { "300.1.1.1", "invalid IP address" },
      { "nope", "invalid IP address" },
    }

    it("in bulk_delete's failed entries, none of them sent", function()
      fake:set_zone(ZONE, { { "192.0.2.7", "us-east-1", "aws" } })
      local ips = { "192.0.2.7" }
      for _, c in ipairs(CASES) do ips[#ips + 1] = c[1] end
      local res = assert(ocr.bulk_delete { zone_id = ZONE, ips = ips })
      assert.are.same({ "192.0.2.7" }, H.pluck(res.value.succeeded, "origin_ip"))
      local got = {}
      for _, f in ipairs(res.value.failed) do got[f.input] = f.error end
      for _, c in ipairs(CASES) do assert.are.equal(c[2], got[c[1]], c[1]) end
      local sent = {}
      for _, r in ipairs(fake:api_requests()) do
        if r.method == "DELETE" then sent[#sent + 1] = r.body end
      end
      assert.are.same({ '["192.0.2.7"]' }, sent)
    end)

    it("in bulk_update's failed entries", function()
      local res = assert(ocr.bulk_update { zone_id = ZONE, items = {
        { ip = "10.1.0.0/16", vendor = "aws", region = "us-east-1" },
        { ip = "192.0.2.9\r", vendor = "aws", region = "us-east-1" } } })
      assert.are.same({ CASES[1][2], CASES[3][2] }, H.pluck(res.value.failed, "error"))
      assert.are.equal(0, #fake:api_requests())
    end)

    it("in the raised error of get, delete and update, with the input quoted", function()
      assert.matches('get: bad argument \'ip\': invalid IP address "10.0.0.0/8": a CIDR, not an address',
        raised(function() ocr.get { zone_id = ZONE, ip = "10.0.0.0/8" } end), 1, true)
      assert.matches('delete: bad argument \'ip\': invalid IP address "192.0.2.1\\13": surrounding '
        .. "whitespace or a carriage return (CRLF file?)",
        raised(function() ocr.delete { zone_id = ZONE, ip = "192.0.2.1\r" } end), 1, true)
      assert.matches("update: bad argument 'origin_ip': invalid IP address \"fe80::1%eth0\": a zone "
        .. "index (%eth0) is not part of an address", raised(function()
          ocr.update { zone_id = ZONE, origin_ip = "fe80::1%eth0", vendor = "aws", region = "us-east-1" }
        end), 1, true)
      assert.are.equal(0, #fake:api_requests())
    end)
  end)

  describe("a zone argument that is not a zone id", function()
    it("a domain name is told where the id is found", function()
      local msg = raised(function() ocr.bulk_delete { zone_id = "example.com", ips = { "192.0.2.1" } } end)
      assert.matches("bulk_delete: bad argument 'zone_id': a domain name, not a zone id \"example.com\": "
        .. "the zone id is the 32-hex-digit id on the zone's Overview page in the Cloudflare "
        .. "dashboard, or from GET /zones?name=example.com", msg, 1, true)
      assert.are.equal(0, #fake:api_requests())
    end)

    it("a truncated or non-hex id too", function()
      assert.matches("list: bad argument 'zone_id': expected 32 hex digits, got 3 characters \"abc\": "
        .. "the zone id is the 32-hex-digit id", raised(function() ocr.list { zone_id = "abc" } end), 1, true)
      assert.matches("expected 32 hex digits, got 32 characters",
        raised(function() ocr.list { zone_id = string.rep("g", 32) } end), 1, true)
      assert.are.equal(0, #fake:api_requests())
    end)
  end)

  describe("a 403", function()
    local UNKNOWN = "fedcba9876543210fedcba9876543210"

    it("says to check that the token may edit this zone's cache settings", function()
      local res, err = ocr.list { zone_id = UNKNOWN }
      assert.is_nil(res)
      assert.are.equal(403, err.status)
      local hint = "check that the API token may edit this zone's cache settings (zone " .. UNKNOWN
        .. "), and that the zone id is right"
      assert.are.equal(hint, err.hint)
      assert.are.equal("HTTP 403: [10000] Authentication error (" .. hint .. ")", err.message)
      local r2, e2 = ocr.bulk_delete { zone_id = UNKNOWN, ips = { "192.0.2.1" } }
      assert.is_nil(r2)
      assert.matches("may edit this zone's cache settings", e2.message, 1, true)
      assert.are.same({}, fake:zone(UNKNOWN))
    end)

    it("of the mapping limit (1164) gets no such hint", function()
      fake:fault { status = 403, errors = { { code = 1164, message = "Maximum number of IP mappings reached" } } }
      local res, err = ocr.update { zone_id = ZONE, ip = "192.0.2.1", vendor = "aws", region = "us-east-1" }
      assert.is_nil(res)
      assert.are.equal(403, err.status)
      assert.is_nil(err.hint)
      assert.is_nil(err.message:find("token", 1, true))
    end)
  end)

  describe("the environment", function()
    local function run(chunk, env)
      local e = { ZONE = ZONE, CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN }
      for k, v in pairs(env or {}) do e[k] = v end
      return H.run({ "-e", chunk }, { env = e })
    end

    it("an unknown CFRUN_LOG is a warning naming the variable, and the script runs", function()
      local out, err, code = run([[
        local res = assert(cloudflare.cache.origin_cloud_regions.list { zone_id = os.getenv("ZONE") })
        print(#res.value)
      ]], { CFRUN_LOG = "info" })
      assert.are.equal(0, code, err)
      assert.are.equal("0\n", out)
      assert.are.equal('cfrun: warning: CFRUN_LOG="info" is not "debug" or "off"; ignored\n', err)
      assert.are.equal(1, #fake:api_requests())
    end)

    it("an explicit log= with a bad value still raises", function()
      assert.matches([[cloudflare.new: option 'log' must be "debug" or "off", got "info"]],
        raised(function() fake:client { log = "info" } end), 1, true)
    end)

    it("a mistake in a call through the default namespace is told before missing credentials", function()
      local _, err, code = run('cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = '
        .. '"023e105f4ecef8ad9ca31a8372d0c353", ip = { "192.0.2.1" } }', { CLOUDFLARE_API_TOKEN = false,
        CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false, CLOUDFLARE_API_TOKEN_FILE = false })
      assert.are.equal(1, code)
      assert.matches('bulk_delete: unknown argument "ip" %(did you mean "ips"%?%)', err)
      assert.is_nil(err:find("no credentials", 1, true), err)
    end)

    it("no credentials: the error mentions cfrun --sandbox", function()
      local out, err, code = run("cloudflare.new{}", { CLOUDFLARE_API_TOKEN = false,
        CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false, CLOUDFLARE_API_TOKEN_FILE = false })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("no credentials configured: .*; to try things without a token, run the "
        .. "script with cfrun %-%-sandbox", err)
      -- the operator's setup, not a bug: where, and no traceback
      assert.matches("^cfrun: %(command line%):1: cloudflare: no credentials", err)
      assert.is_nil(err:find("stack traceback", 1, true), err)
    end)
  end)
end)

describe("cloudflare.util's suggestions and reasons", function()
  local util = require "cloudflare.util"
  local canonical = require("cloudflare.ip").canonical

  it("measures edits, a swap of neighbours counting one", function()
    assert.are.equal(0, util.distance("ips", "ips"))
    assert.are.equal(1, util.distance("ip", "ips"))
    assert.are.equal(1, util.distance("reigon", "region"))
    assert.are.equal(3, util.distance("", "abc"))
    assert.are.equal(7, util.distance("zone_id", ""))
  end)

  it("suggests only a close name, never for a non-string key", function()
    local names = { "zone_id", "ips", "dry_run" }
    assert.are.equal("ips", util.closest("ip", names))
    assert.are.equal("dry_run", util.closest("dryrun", names))
    assert.are.equal("zone_id", util.closest("zone", names)) -- a prefix
    assert.is_nil(util.closest("x", names))
    assert.is_nil(util.closest("colour", names))
    assert.is_nil(util.closest(1, names))
    assert.matches('unknown argument "1"; valid: zone_id, ips, dry_run$',
      (select(2, pcall(util.check_args, "f", { "192.0.2.1" }, { zone_id = true, ips = true, dry_run = true }, 1,
        names))))
  end)

  it("gives no reason when none explains the input", function()
    for _, s in ipairs { "300.1.1.1", "nope", "1.2.3", "::g", "", "10.0.0.0/8/8", "db01" } do
      assert.is_nil(util.ip_problem(s, canonical), s)
      assert.are.equal("invalid IP address", util.invalid_ip(s, canonical))
    end
    assert.is_nil(util.ip_problem(42, canonical))
    assert.are.equal("a CIDR, not an address: use cloudflare.select.cidr or list the addresses",
      util.ip_problem("2001:db8::/32", canonical))
    assert.are.equal("surrounding whitespace or a carriage return (CRLF file?); and a CIDR, not an "
      .. "address: use cloudflare.select.cidr or list the addresses", util.ip_problem(" 10.0.0.0/8\r", canonical))
  end)
end)
