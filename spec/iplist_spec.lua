-- spec/iplist_spec.lua: lua/cloudflare/iplist.lua, reading IP lists from text, files and stdin.
local H = require "spec.helper"
local iplist = require "cloudflare.iplist"

local TEXT = "# decommissioned hosts\n192.0.2.1\n\n  2001:DB8::1  # db01\r\ndb02.example.com\n198.51.100.7\n300.1.1.1"

describe("cloudflare.iplist", function()
  it("skips comments and blank lines and reports bad lines with their numbers", function()
    local ips, bad = iplist.parse(TEXT)
    assert.are.same({ "192.0.2.1", "2001:DB8::1", "198.51.100.7" }, ips)
    assert.are.same({
      { line = 5, text = "db02.example.com", error = "invalid IP address" },
      { line = 7, text = "300.1.1.1", error = "invalid IP address" },
    }, bad)
    assert.are.equal('line 5: "db02.example.com" is not an IP address; line 7: "300.1.1.1" is not an IP address',
      iplist.describe(bad))
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
