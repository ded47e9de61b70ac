-- spec/iplist_spec.lua: lua/cloudflare/iplist.lua, reading IP lists from text, files and stdin.
local H = require "spec.helper"
local iplist = require "cloudflare.iplist"

local TEXT = "# decommissioned hosts\n192.0.2.1\n\n  2001:DB8::1  # db01\r\ndb02.example.com\n198.51.100.7\n300.1.1.1"

describe("cloudflare.iplist", function()
  it("skips comments and blank lines and reports bad lines with their numbers", function()
    local ips, bad = iplist.parse(TEXT)
    assert.are.same({ "192.0.2.1", "2001:DB8::1", "198.51.100.7" }, ips)
    assert.are.same({
      { line = 5, text = "db02.example.com", error = "invalid IP address: a host name, not an address",
        why = "a host name, not an address" },
      { line = 7, text = "300.1.1.1", error = "invalid IP address" },
    }, bad)
    assert.are.equal('line 5: "db02.example.com" is not an IP address (a host name, not an address);'
      .. ' line 7: "300.1.1.1" is not an IP address',
      iplist.describe(bad))
  end)

  it("reads a CRLF file as an LF one, and says why each bad line is not an address", function()
    local ips, bad = iplist.parse("192.0.2.1\r\n10.0.0.0/8\r\n010.0.0.1\r\nfe80::1%eth0\r\n2001:db8::1\r\n")
    assert.are.same({ "192.0.2.1", "2001:db8::1" }, ips)
    local why = {}
    for i, b in ipairs(bad) do why[i] = iplist.not_address(b) end
    assert.are.same({
      '"10.0.0.0/8" is not an IP address (a CIDR, not an address: use cloudflare.select.cidr or list the addresses)',
      '"010.0.0.1" is not an IP address (a leading zero, which some tools read as octal)',
      '"fe80::1%eth0" is not an IP address (a zone index (%eth0) is not part of an address)',
    }, why)
  end)

  it("reads a file, and says why when it cannot", function()
    local path = H.tempfile(TEXT)
    local ips, bad = iplist.read(path)
    assert.are.equal(3, #ips)
    assert.are.equal(2, #bad)
    os.remove(path)
    local none, err = iplist.read(path)
    assert.is_nil(none)
    assert.matches("No such file", err)
  end)

  it("reads standard input for '-'", function()
    local out, err, code = H.run({ "-e", [[
      local ips, bad = cloudflare.iplist.read("-")
      print(#ips, #bad, ips[1])
    ]] }, { stdin = "192.0.2.1\nbad\n" })
    assert.are.equal(0, code, err)
    assert.are.equal("1\t1\t192.0.2.1\n", out)
  end)
end)
