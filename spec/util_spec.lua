-- spec/util_spec.lua: lua/cloudflare/util.lua as a whole, in this process: quote, the shape and
-- level of argerror and check_args, edit distances and suggestions, the reasons of ip_problem,
-- zone_problem, check_list and the LIMITS of the transport's options. (The messages as a
-- script meets them through the API calls: errors_spec.)
local util = require "cloudflare.util"
local canonical = require("cloudflare.ip").canonical

-- The message of the error fn raises (it must raise).
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local HINT = "the zone id is the 32-hex-digit id on the zone's Overview page in the Cloudflare dashboard, "
  .. "or from GET /zones?name="

describe("cloudflare.util", function()
  describe("quote", function()
    it("renders a value in double quotes, whatever its type", function()
      assert.are.equal('"zone"', util.quote("zone"))
      assert.are.equal('""', util.quote(""))
      assert.are.equal('"42"', util.quote(42))
      assert.are.equal('"1.5"', util.quote(1.5))
      assert.are.equal('"nil"', util.quote(nil))
      assert.are.equal('"true"', util.quote(true))
      assert.matches('^"table: ', util.quote({}))
    end)

    it("keeps 40 characters and cuts a longer value there with ...", function()
      local forty = string.rep("a", 40)
      assert.are.equal('"' .. forty .. '"', util.quote(forty))
      assert.are.equal('"' .. forty .. '..."', util.quote(forty .. "b"))
      assert.are.equal('"' .. forty .. '..."', util.quote(forty .. string.rep("b", 10000)))
    end)

    it("escapes quotes, backslashes and control characters", function()
      assert.are.equal('"192.0.2.1\\13"', util.quote("192.0.2.1\r"))
      assert.are.equal('"a\\0b"', util.quote("a\0b"))
      assert.are.equal('"say \\"hi\\""', util.quote('say "hi"'))
      assert.are.equal('"C:\\\\x"', util.quote("C:\\x"))
    end)

    -- %q alone renders a newline as a backslash followed by a raw newline, which would break
    -- the one-line message it is put in
    it("renders a newline escaped, never as a raw line break", function()
      local q = util.quote("192.0.2.1\n10.0.0.1")
      assert.is_nil(q:find("\n", 1, true), q)
      assert.matches('^"192%.0%.2%.1.+10%.0%.0%.1"$', q)
    end)
  end)

  describe("argerror", function()
    it("raises \"<function>: bad argument '<name>': <what>\"", function()
      assert.are.equal("get: bad argument 'ip': expected a string, got number",
        raised(util.argerror, "get", "ip", "expected a string, got number", 1))
    end)

    it("blames the line `level` calls up from the function that calls it", function()
      local function api(x) util.argerror("api", "x", "expected a string, got " .. type(x), 2) end
      local line = debug.getinfo(1, "l").currentline + 1
      local function user() api(7) end
      local msg = raised(user)
      assert.matches("util_spec%.lua:" .. line .. ": api: bad argument 'x': expected a string, got number$",
        msg)
    end)
  end)

  describe("check_args", function()
    local ALLOWED = { zone_id = true, ips = true, dry_run = true }

    it("returns the very table it was given when every key is allowed", function()
      local args = { zone_id = "z", ips = {} }
      assert.are.equal(args, util.check_args("f", args, ALLOWED, 1))
      local empty = {}
      assert.are.equal(empty, util.check_args("f", empty, ALLOWED, 1))
    end)

    it("raises for arguments that are not a table, naming the type", function()
      assert.are.equal("f: expected a table of arguments, got nil", raised(util.check_args, "f", nil, ALLOWED, 1))
      assert.are.equal("f: expected a table of arguments, got string",
        raised(util.check_args, "f", "zone_id", ALLOWED, 1))
    end)

    it("lists the valid names sorted when no order is given, with the closest one", function()
      assert.are.equal('f: unknown argument "dryrun" (did you mean "dry_run"?); valid: dry_run, ips, zone_id',
        raised(util.check_args, "f", { zone_id = "z", dryrun = true }, ALLOWED, 1))
    end)

    it("lists them in the given order, and suggests nothing for a name far from all", function()
      assert.are.equal('f: unknown argument "colour"; valid: zone_id, ips, dry_run',
        raised(util.check_args, "f", { colour = "red" }, ALLOWED, 1, { "zone_id", "ips", "dry_run" }))
    end)

    it("suggests the valid spelling of a name typed in another case", function()
      assert.are.equal('f: unknown argument "IPS" (did you mean "ips"?); valid: dry_run, ips, zone_id',
        raised(util.check_args, "f", { IPS = {} }, ALLOWED, 1))
    end)

    it("blames the caller's caller at level 2", function()
      local function api(args) util.check_args("api", args, ALLOWED, 2) end
      local line = debug.getinfo(1, "l").currentline + 1
      local function user() api { zone = "z" } end
      assert.matches("util_spec%.lua:" .. line .. ': api: unknown argument "zone" %(did you mean "zone_id"%?%)',
        raised(user))
    end)
  end)

  describe("distance", function()
    it("counts a substitution, an insertion and a deletion as one edit each", function()
      assert.are.equal(1, util.distance("ips", "ipz"))
      assert.are.equal(1, util.distance("timout", "timeout"))
      assert.are.equal(1, util.distance("journall", "journal"))
      assert.are.equal(3, util.distance("kitten", "sitting"))
      assert.are.equal(0, util.distance("", ""))
    end)

    it("is symmetric and case-sensitive", function()
      assert.are.equal(util.distance("dryrun", "dry_run"), util.distance("dry_run", "dryrun"))
      assert.are.equal(1, util.distance("A", "a"))
    end)

    it("counts a swap of two neighbours as one, but never edits inside a swap", function()
      assert.are.equal(1, util.distance("ab", "ba"))
      assert.are.equal(2, util.distance("tmieuot", "timeout"))
      -- the restricted (optimal string alignment) distance: "ca" -> "ac" -> "abc" is not allowed
      assert.are.equal(3, util.distance("ca", "abc"))
      assert.are.equal(3, util.distance("abc", "ca"))
    end)
  end)

  describe("closest and unknown", function()
    local NAMES = { "zone_id", "ips", "dry_run", "journal", "concurrency", "timeout", "connect_timeout",
      "max_retries", "max_retry_wait" }

    it("allows one edit for a name of up to 4 characters, and two for a longer one", function()
      assert.are.equal("ips", util.closest("ipz", NAMES))
      assert.is_nil(util.closest("izz", NAMES))
      assert.are.equal("timeout", util.closest("tmieout", NAMES)) -- a swap
      assert.are.equal("journal", util.closest("journl", NAMES))
      assert.is_nil(util.closest("jrnl", NAMES))
    end)

    it("never suggests for a name no longer than the edits it needs", function()
      assert.is_nil(util.closest("i", { "ip" })) -- one edit, but as long as the name itself
      assert.are.equal("ips", util.closest("ip", { "ips" }))
      assert.is_nil(util.closest("", NAMES))
    end)

    it("takes a prefix of 3 characters or more as one edit, the first such name winning", function()
      assert.are.equal("concurrency", util.closest("conc", NAMES))
      assert.are.equal("max_retry_wait", util.closest("max_retry", NAMES))
      assert.are.equal("connect_timeout", util.closest("con", { "connect_timeout", "concurrency" }))
      assert.are.equal("concurrency", util.closest("con", { "concurrency", "connect_timeout" }))
      assert.is_nil(util.closest("co", NAMES))
    end)

    it("ignores case", function()
      assert.are.equal("zone_id", util.closest("Zone_ID", NAMES))
      assert.are.equal("ips", util.closest("IPS", NAMES))
    end)

    it("has nothing to suggest from an empty list", function()
      assert.is_nil(util.closest("ips", {}))
    end)

    it("words the unknown name with the suggestion and every valid name, in order", function()
      assert.are.equal('unknown option "base_ur" (did you mean "base_url"?); valid: api_token, base_url',
        util.unknown("option", "base_ur", { "api_token", "base_url" }))
      assert.are.equal('unknown field "x"; valid: requests, per', util.unknown("field", "x", { "requests", "per" }))
      assert.are.equal('unknown argument "7"; valid: zone_id', util.unknown("argument", 7, { "zone_id" }))
    end)
  end)

  describe("ip_problem and invalid_ip", function()
    local CIDR = "a CIDR, not an address: use cloudflare.select.cidr or list the addresses"
    local SPACE = "surrounding whitespace or a carriage return (CRLF file?)"
    local ZERO = "a leading zero, which some tools read as octal"
    local HOST = "a host name, not an address"

    it("takes a CIDR whose address is valid for a CIDR, and nothing else with a slash", function()
      assert.are.equal(CIDR, util.ip_problem("192.0.2.0/24", canonical))
      assert.are.equal(CIDR, util.ip_problem("::1/128", canonical))
      assert.is_nil(util.ip_problem("300.0.0.0/8", canonical))
      assert.is_nil(util.ip_problem("10.0.0.0/", canonical))
      assert.is_nil(util.ip_problem("10.0.0.0/x", canonical))
    end)

    it("names whitespace of any kind around the address, alone when the rest is valid", function()
      assert.are.equal(SPACE, util.ip_problem("\t192.0.2.1\n", canonical))
      assert.are.equal(SPACE, util.ip_problem("2001:db8::1 ", canonical))
      assert.are.equal(SPACE, util.ip_problem("\r", canonical)) -- a blank line of a CRLF file
    end)

    it("adds what else is wrong inside the whitespace", function()
      assert.are.equal(SPACE .. "; and " .. HOST, util.ip_problem(" db01.example.com ", canonical))
      assert.are.equal(SPACE .. "; and " .. ZERO, util.ip_problem(" 010.0.0.1", canonical))
      assert.are.equal(SPACE, util.ip_problem(" nope\r", canonical))
    end)

    it("finds a leading zero in any of the four parts", function()
      for _, s in ipairs { "010.0.0.1", "192.168.01.1", "1.2.3.04", "00.1.2.3" } do
        assert.are.equal(ZERO, util.ip_problem(s, canonical), s)
      end
      assert.is_nil(util.ip_problem("300.0.0.1", canonical))
    end)

    it("quotes the zone index of an IPv6 or IPv4 address, when the address is valid", function()
      assert.are.equal("a zone index (%25eth0) is not part of an address",
        util.ip_problem("fe80::1%25eth0", canonical))
      assert.are.equal("a zone index (%1) is not part of an address", util.ip_problem("192.0.2.1%1", canonical))
      assert.is_nil(util.ip_problem("nope%eth0", canonical))
      assert.is_nil(util.ip_problem("fe80::1%", canonical))
    end)

    it("takes a dotted name ending in a label with a letter for a host name", function()
      assert.are.equal(HOST, util.ip_problem("db01.example.com.", canonical))
      assert.are.equal(HOST, util.ip_problem("origin-1.eu-west.example", canonical))
      assert.is_nil(util.ip_problem("localhost", canonical)) -- no dot: could be anything
      assert.is_nil(util.ip_problem("10.0.0.300", canonical)) -- no letter: a bad address
      assert.is_nil(util.ip_problem("-db.example.com", canonical))
    end)

    it("gives nothing for a value that is not a string", function()
      assert.is_nil(util.ip_problem(nil, canonical))
      assert.is_nil(util.ip_problem({}, canonical))
    end)

    it("makes the error text \"invalid IP address\", with the reason after a colon when there is one", function()
      assert.are.equal("invalid IP address: " .. ZERO, util.invalid_ip("192.168.01.1", canonical))
      assert.are.equal("invalid IP address: " .. SPACE .. "; and " .. HOST,
        util.invalid_ip(" db01.example.com ", canonical))
      assert.are.equal("invalid IP address", util.invalid_ip("10.0.0.300", canonical))
      assert.are.equal("invalid IP address", util.invalid_ip(false, canonical))
    end)
  end)

  describe("zone_problem", function()
    it("accepts 32 hex digits, in either case", function()
      assert.is_nil(util.zone_problem("023e105f4ecef8ad9ca31a8372d0c353"))
      assert.is_nil(util.zone_problem("023E105F4ECEF8AD9CA31A8372D0C353"))
    end)

    it("tells a domain name where its zone id is found, naming the domain in the query", function()
      assert.are.equal('a domain name, not a zone id "shop.example.co.uk": ' .. HINT .. "shop.example.co.uk",
        util.zone_problem("shop.example.co.uk"))
    end)

    it("counts the characters of anything else, with example.com in the hint", function()
      assert.are.equal('expected 32 hex digits, got 31 characters "' .. string.rep("a", 31) .. '": '
        .. HINT .. "example.com", util.zone_problem(string.rep("a", 31)))
      assert.are.equal('expected 32 hex digits, got 33 characters "' .. string.rep("0", 33) .. '": '
        .. HINT .. "example.com", util.zone_problem(string.rep("0", 33)))
      assert.are.equal('expected 32 hex digits, got 0 characters "": ' .. HINT .. "example.com",
        util.zone_problem(""))
    end)

    it("exports the hint as a format taking the zone's name", function()
      assert.are.equal(HINT .. "example.org", string.format(util.ZONE_HINT, "example.org"))
    end)
  end)

  describe("check_list", function()
    local function is_string(_, v)
      if type(v) ~= "string" then return "is a " .. type(v) .. ", expected a string" end
    end

    it("returns the length of a proper sequence, and 0 for an empty table", function()
      assert.are.equal(3, util.check_list("f", "ips", { "a", "b", "c" }, "IP address strings", 1))
      assert.are.equal(0, util.check_list("f", "ips", {}, "IP address strings", 1))
      assert.are.equal(1, util.check_list("f", "ips", { [1.0] = "a" }, "IP address strings", 1))
    end)

    it("raises for a value that is not a table, naming what the list holds", function()
      assert.are.equal("f: bad argument 'ips': expected a list of IP address strings, got string",
        raised(util.check_list, "f", "ips", "192.0.2.1", "IP address strings", 1))
      assert.are.equal("f: bad argument 'ips': expected a list of IP address strings, got nil",
        raised(util.check_list, "f", "ips", nil, "IP address strings", 1))
    end)

    it("names a key outside 1..n", function()
      assert.are.equal("f: bad argument 'ips': expected a list (keys 1..1), found key \"zone\"",
        raised(util.check_list, "f", "ips", { "a", zone = "z" }, "IP address strings", 1))
      assert.are.equal("f: bad argument 'ips': expected a list (keys 1..1), found key \"0\"",
        raised(util.check_list, "f", "ips", { [0] = "a", "b" }, "IP address strings", 1))
      assert.are.equal("f: bad argument 'ips': expected a list (keys 1..1), found key \"1.5\"",
        raised(util.check_list, "f", "ips", { "a", [1.5] = "b" }, "IP address strings", 1))
      assert.are.equal("f: bad argument 'ips': expected a list (keys 1..0), found key \"2\"",
        raised(util.check_list, "f", "ips", { [2] = "a" }, "IP address strings", 1))
    end)

    it("calls check once per element, in order, with its index and value", function()
      local seen = {}
      local n = util.check_list("f", "ips", { "a", "b", "c" }, "IP address strings", 1, function(i, v)
        seen[#seen + 1] = i .. "=" .. v
      end)
      assert.are.equal(3, n)
      assert.are.same({ "1=a", "2=b", "3=c" }, seen)
    end)

    it("raises the first element check complains about, numbered", function()
      assert.are.equal("f: bad argument 'ips': element 2 is a number, expected a string",
        raised(util.check_list, "f", "ips", { "a", 7, false }, "IP address strings", 1, is_string))
    end)

    it("blames the caller's caller at level 2", function()
      local function api(list) util.check_list("api", "ips", list, "IP address strings", 2) end
      local line = debug.getinfo(1, "l").currentline + 1
      local function user() api { "a", x = 1 } end
      assert.matches("util_spec%.lua:" .. line .. ": api: bad argument 'ips': expected a list", raised(user))
    end)

    -- a hole inside 1..#list ({ "a", nil, "c" }: # is 3, both keys in 1..3) must not pass, or
    -- bulk_update { items = { item, nil, item } } would die in the binder instead of saying
    -- what is wrong with its argument
    it("raises for a hole inside the list, naming it, rather than returning its length", function()
      local checked = {}
      local msg = raised(util.check_list, "f", "items", { "a", nil, "c" }, "tables", 1, function(i)
        checked[#checked + 1] = i
      end)
      assert.matches("^f: bad argument 'items': ", msg)
      assert.truthy(msg:find("2", 1, true), msg)
    end)
  end)

  describe("LIMITS", function()
    local L = util.LIMITS

    it("takes a timeout of more than 0 and at most 3600 seconds", function()
      for _, v in ipairs { 1e-9, 0.5, 30, 3600 } do assert.is_nil(L.timeout(v), v) end
      assert.are.equal('expected more than 0 and at most 3600 seconds, got "0"', L.timeout(0))
      assert.are.equal('expected more than 0 and at most 3600 seconds, got "-0.0"', L.timeout(-0.0))
      assert.are.equal('expected more than 0 and at most 3600 seconds, got "3600.5"', L.timeout(3600.5))
      assert.are.equal('expected more than 0 and at most 3600 seconds, got "-1"', L.timeout(-1))
    end)

    it("takes a connect_timeout of more than 0 and at most 600 seconds", function()
      for _, v in ipairs { 1e-9, 10, 600 } do assert.is_nil(L.connect_timeout(v), v) end
      assert.are.equal('expected more than 0 and at most 600 seconds, got "0"', L.connect_timeout(0))
      assert.are.equal('expected more than 0 and at most 600 seconds, got "600.001"', L.connect_timeout(600.001))
      assert.are.equal('expected more than 0 and at most 600 seconds, got "3600"', L.connect_timeout(3600))
    end)

    it("takes a max_retry_wait from 0 to 86400 seconds, both included", function()
      for _, v in ipairs { 0, 0.25, 300, 86400 } do assert.is_nil(L.max_retry_wait(v), v) end
      assert.are.equal('expected from 0 to 86400 seconds, got "-0.001"', L.max_retry_wait(-0.001))
      assert.are.equal('expected from 0 to 86400 seconds, got "86400.5"', L.max_retry_wait(86400.5))
    end)

    it("takes max_retries as a whole number from 0 to 100, not a float even if integral", function()
      for _, v in ipairs { 0, 2, 100 } do assert.is_nil(L.max_retries(v), v) end
      assert.are.equal('expected a whole number from 0 to 100, got "-1"', L.max_retries(-1))
      assert.are.equal('expected a whole number from 0 to 100, got "101"', L.max_retries(101))
      assert.are.equal('expected a whole number from 0 to 100, got "2.5"', L.max_retries(2.5))
      assert.are.equal('expected a whole number from 0 to 100, got "2.0"', L.max_retries(2.0))
    end)

    it("rejects NaN and both infinities in every one of them", function()
      for _, name in ipairs { "timeout", "connect_timeout", "max_retry_wait", "max_retries" } do
        assert.matches('got "%-?nan"$', L[name](0 / 0), name)
        assert.matches('got "inf"$', L[name](math.huge), name)
        assert.matches('got "%-inf"$', L[name](-math.huge), name)
      end
    end)

    it("rejects what is not a number, a number in a string included, quoting it", function()
      assert.are.equal('expected more than 0 and at most 3600 seconds, got "30"', L.timeout("30"))
      assert.are.equal('expected from 0 to 86400 seconds, got "nil"', L.max_retry_wait(nil))
      assert.are.equal('expected a whole number from 0 to 100, got "3"', L.max_retries("3"))
    end)

    it("has exactly the four transport options", function()
      local names = {}
      for k in pairs(L) do names[#names + 1] = k end
      table.sort(names)
      assert.are.same({ "connect_timeout", "max_retries", "max_retry_wait", "timeout" }, names)
    end)
  end)

  it("exports exactly the functions and values covered here", function()
    local names = {}
    for k in pairs(util) do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({ "LIMITS", "ZONE_HINT", "argerror", "check_args", "check_list", "closest", "distance",
      "invalid_ip", "ip_problem", "quote", "unknown", "zone_problem" }, names)
  end)
end)
