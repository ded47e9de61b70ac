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
