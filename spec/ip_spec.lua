-- spec/ip_spec.lua: cloudflare.ip (runtime/cf_iplib.c over runtime/cf_ip.c), as scripts see it.
local ip = require "cloudflare.ip"

describe("cloudflare.ip.canonical", function()
  local cases = {
    { "192.0.2.1", "192.0.2.1" },
    { "2001:DB8::1", "2001:db8::1" },
    { "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1" },
    { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },   -- leftmost run on a tie
    { "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },         -- longest run wins
    { "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" }, -- no :: for one zero group
    { "0:0:0:0:0:0:0:0", "::" },
    { "::FFFF:C000:0201", "::ffff:192.0.2.1" },         -- IPv4-mapped in dotted form
    { "0:0:0:0:0:ffff:192.0.2.1", "::ffff:192.0.2.1" },
    { "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " -> " .. c[2], function()
      assert.are.equal(c[2], ip.canonical(c[1]))
    end)
  end

  it("returns nil and a reason for text that is not an address", function()
    for _, bad in ipairs { "", "not-an-ip", "256.1.1.1", "010.0.0.1", " 192.0.2.1",
      "192.0.2.1\n", "fe80::1%eth0", "1::2::3", "192.0.2.0/24", "[::1]" } do
      local v, err = ip.canonical(bad)
      assert.is_nil(v, bad)
      assert.are.equal("invalid IP address", err)
    end
  end)

  it("raises for a non-string argument", function()
    assert.has_error(function() ip.canonical({}) end)
  end)
end)

describe("cloudflare.ip.version", function()
  it("tells 4 from 6 and nil for non-addresses", function()
    assert.are.equal(4, ip.version("198.51.100.7"))
    assert.are.equal(6, ip.version("::ffff:198.51.100.7"))
    assert.is_nil(ip.version("example.com"))
  end)
end)

describe("cloudflare.ip.contains", function()
  local contains = ip.contains
  it("handles /0, /32, /128 and prefixes that do not end on a byte", function()
    assert.is_true(contains("0.0.0.0/0", "203.0.113.7"))
    assert.is_true(contains("::/0", "2001:db8::1"))
    assert.is_true(contains("192.0.2.1/32", "192.0.2.1"))
    assert.is_false(contains("192.0.2.1/32", "192.0.2.2"))
    assert.is_true(contains("2001:db8::1/128", "2001:DB8::1"))
    assert.is_false(contains("2001:db8::1/128", "2001:db8::2"))
    assert.is_true(contains("192.0.2.128/25", "192.0.2.200"))
    assert.is_false(contains("192.0.2.128/25", "192.0.2.127"))
    assert.is_true(contains("2001:db8::/33", "2001:db8:7fff::1"))
    assert.is_false(contains("2001:db8::/33", "2001:db8:8000::"))
  end)

  it("masks a base with host bits set, as routers do", function()
    assert.is_true(contains("10.1.2.3/8", "10.250.0.1"))
    assert.are.equal("10.0.0.0/8", ip.cidr("10.1.2.3/8"))
    assert.are.equal("2001:db8::/32", ip.cidr("2001:DB8:1::/32"))
  end)

  it("treats IPv4-mapped IPv6 addresses as their IPv4 host, and never as IPv6", function()
    assert.is_true(contains("192.0.2.0/24", "::ffff:192.0.2.9"))
    assert.is_true(contains("::ffff:192.0.2.0/120", "192.0.2.9"))
    assert.are.equal("192.0.2.0/24", ip.cidr("::ffff:192.0.2.0/120"))
    assert.is_false(contains("::/0", "::ffff:192.0.2.9"))
    assert.is_false(contains("::/0", "192.0.2.9"))
    assert.is_false(contains("0.0.0.0/0", "2001:db8::1"))
  end)

  it("raises for an invalid CIDR and answers false for a non-address", function()
    assert.error_matches(function() contains("10.0.0.0/33", "10.0.0.1") end, "invalid CIDR '10.0.0.0/33'")
    assert.error_matches(function() contains("10.0.0.0/08", "10.0.0.1") end, "invalid CIDR")
    assert.is_false(contains("10.0.0.0/8", "ten.0.0.1"))
    assert.is_nil(ip.cidr("nope/8"))
  end)
end)

describe("cloudflare.ip.valid and ip.less", function()
  it("validates and sorts numerically, IPv4 first, non-addresses last", function()
    assert.is_true(ip.valid("::1"))
    assert.is_false(ip.valid("::g"))
    local list = { "2001:db8::10", "10.0.0.10", "zzz", "10.0.0.9", "2001:db8::9", "::ffff:1.2.3.4" }
    table.sort(list, ip.less)
    assert.are.same({ "10.0.0.9", "10.0.0.10", "::ffff:1.2.3.4", "2001:db8::9", "2001:db8::10", "zzz" }, list)
  end)
end)

describe("cloudflare.ip.index (a bulk call's input handling, one pass in C)", function()
  -- the same computation in plain Lua, the reference it must agree with
  local function reference(list)
    local order, rank_of, input_of, bad = {}, {}, {}, {}
    for i = 1, #list do
      local s = list[i]
      local c = ip.canonical(s)
      if c then
        if not rank_of[c] then
          rank_of[c], order[#order + 1] = i, c
          if s ~= c then input_of[c] = s end
        end
      else
        bad[#bad + 1] = i
        bad[#bad + 1] = s
      end
    end
    return #list, order, rank_of, input_of, bad
  end

  it("agrees with the plain Lua reference: order, first rank, spelling, every bad element", function()
    local pool = { "10.0.0.1", "10.0.0.2", "2001:DB8::1", "2001:db8::1", "::ffff:10.0.0.1", "010.0.0.1",
      "", " 10.0.0.3", "10.0.0.3", "fe80::1%eth0", "2001:0db8:0:0:0:0:0:1", "not-an-ip", "10.0.0.0/8" }
    math.randomseed(18)
    for _ = 1, 200 do
      local list = {}
      for i = 1, math.random(0, 40) do list[i] = pool[math.random(#pool)] end
      assert.are.same({ reference(list) }, { ip.index(list) })
    end
  end)

  it("takes a list marked json.array; hands back lists it cannot read plainly", function()
    local json = require "cloudflare.json"
    local n, order = ip.index(json.array { "10.0.0.2", "10.0.0.1" })
    assert.are.equal(2, n)
    assert.are.same({ "10.0.0.2", "10.0.0.1" }, order)
    -- not a plain sequence: nil, 0 (the caller's checks say what is wrong)
    for _, list in ipairs {
      { "10.0.0.1", x = 1 }, { [1] = "10.0.0.1", [3] = "10.0.0.3" }, { [2] = "10.0.0.2" },
      setmetatable({}, { __index = function(_, i) return i == 1 and "10.0.0.1" or nil end }),
      setmetatable({ "10.0.0.1" }, { __pairs = pairs }), "10.0.0.1", 7,
    } do
      assert.are.same({ nil, 0 }, { ip.index(list) })
    end
    -- an element that is not a string: nil, its position
    assert.are.same({ nil, 2 }, { ip.index { "10.0.0.1", 10, "10.0.0.3" } })
    assert.are.same({ 0, {}, {}, {}, {} }, { ip.index {} })
  end)
end)

describe("cloudflare.ip.scan (the lines of an IP list, one pass in C)", function()
  it("agrees with the line-by-line Lua reading: comments, trimming (Lua's %s), line numbers", function()
    local function reference(text)
      local ips, bad, n = {}, {}, 0
      for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        local s = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
        if s ~= "" then
          if ip.valid(s) then
            ips[#ips + 1] = s
          else
            bad[#bad + 1] = n
            bad[#bad + 1] = s
          end
        end
      end
      return ips, bad
    end
    local parts = { "10.0.0.1", "2001:DB8::1", "\r", "\t", " ", "\v", "\f", "#", "# c", "x", "\n", "\n",
      "\n", "10.0.0.0/8", "\0", "1.2.3.4" }
    math.randomseed(18)
    for _ = 1, 300 do
      local t = {}
      for i = 1, math.random(0, 30) do t[i] = parts[math.random(#parts)] end
      local text = table.concat(t)
      assert.are.same({ reference(text) }, { ip.scan(text) }, string.format("%q", text))
    end
    assert.are.same({ {}, {} }, { ip.scan "" })
    assert.error_matches(function() ip.scan(nil) end, "string expected")
  end)
end)
