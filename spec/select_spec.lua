-- spec/select_spec.lua: lua/cloudflare/select.lua, composable selection over mappings.
local S = require "cloudflare.select"
local json = require "cloudflare.json"

local MAPPINGS = {
  { origin_ip = "10.1.2.3", vendor = "aws", region = "us-east-1" },
  { origin_ip = "10.9.9.9", vendor = "aws", region = "us-west-2" },
  { origin_ip = "192.0.2.1", vendor = "gcp", region = "us-central1" },
  { origin_ip = "::ffff:10.0.0.5", vendor = "aws", region = "eu-west-1" },
  { origin_ip = "2001:db8::1", vendor = "azure", region = "westeurope" },
  { origin_ip = "2001:db8:1::7", vendor = "oci", region = "us-ashburn-1" },
}

describe("cloudflare.select", function()
  it("selects by vendor, one or several", function()
    assert.are.same({ "10.1.2.3", "10.9.9.9", "::ffff:10.0.0.5" }, S.vendor("aws"):ips(MAPPINGS))
    assert.are.same({ "192.0.2.1", "2001:db8::1" }, S.vendor("gcp", "azure"):ips(MAPPINGS))
    assert.are.same({ "192.0.2.1", "2001:db8::1" }, S.vendor { "gcp", "azure" }:ips(MAPPINGS))
  end)

  it("selects by exact region or by Lua pattern", function()
    assert.are.same({ "10.9.9.9" }, S.region("us-west-2"):ips(MAPPINGS))
    assert.are.same({ "10.1.2.3", "10.9.9.9", "192.0.2.1", "2001:db8:1::7" },
      S.region_matching("^us%-"):ips(MAPPINGS))
  end)

  it("selects by one or several CIDRs, v4 and v6", function()
    assert.are.same({ "10.1.2.3", "10.9.9.9", "::ffff:10.0.0.5" }, S.cidr("10.0.0.0/8"):ips(MAPPINGS))
    assert.are.same({ "192.0.2.1", "2001:db8:1::7" },
      S.cidr("192.0.2.0/24", "2001:db8:1::/48"):ips(MAPPINGS))
  end)

  it("selects in or not in a set of IPs, after canonicalisation", function()
    local keep = S.ips { "2001:DB8::1", "10.9.9.9" }
    assert.are.same({ "10.9.9.9", "2001:db8::1" }, keep:ips(MAPPINGS))
    assert.are.equal(4, (-keep):count(MAPPINGS))
    assert.are.same({ "192.0.2.1" }, S.ips { ["192.0.2.1"] = true }:ips(MAPPINGS))
  end)

  it("composes: aws AND 10.0.0.0/8 AND NOT in a keep-list", function()
    local s = S.vendor("aws") * S.cidr("10.0.0.0/8") * -S.ips { "10.9.9.9" }
    assert.are.same({ "10.1.2.3", "::ffff:10.0.0.5" }, s:ips(MAPPINGS))
    assert.are.equal("selector: vendor(aws) and cidr(10.0.0.0/8) and not ips(1)", tostring(s))
    local either = S.vendor("gcp") + S.region("westeurope")
    assert.are.same({ "192.0.2.1", "2001:db8::1" }, either:ips(MAPPINGS))
    assert.are.same(s:ips(MAPPINGS),
      S.all_of(S.vendor("aws"), S.cidr("10.0.0.0/8"), S.none_of(S.ips { "10.9.9.9" })):ips(MAPPINGS))
    assert.are.same(either:ips(MAPPINGS), S.any_of(S.vendor("gcp"), S.region("westeurope")):ips(MAPPINGS))
  end)

  it("takes any predicate and works on list results as well as plain lists", function()
    local v6 = S.where(function(m) return m.origin_ip:find(":", 1, true) ~= nil end)
    local res = { value = json.array(MAPPINGS) }
    assert.are.equal(3, v6:count(res))
    local yes, no = v6:partition(res)
    assert.are.equal(3, #yes)
    assert.are.equal(3, #no)
    assert.is_true(v6(MAPPINGS[5]))
    assert.are.same({}, S.vendor("aws"):ips { value = json.array() })
    assert.are.equal(6, S.everything:count(MAPPINGS))
  end)

  it("returns lists that encode as JSON arrays even when empty", function()
    assert.are.equal("[]", json.encode(S.vendor("oci"):ips { MAPPINGS[1] }))
  end)

  it("raises on mistakes that would select the wrong hosts", function()
    assert.error_matches(function() S.vendor("amazon") end, 'unknown vendor "amazon"')
    assert.error_matches(function() S.cidr("10.0.0.0/33") end, 'invalid CIDR "10.0.0.0/33"')
    assert.error_matches(function() S.ips { "db01" } end, 'invalid IP address "db01"')
    assert.error_matches(function() S.ips { "10.0.0.0/8" } end,
      'invalid IP address "10.0.0.0/8": a CIDR, not an address', 1, true)
    assert.error_matches(function() S.region_matching("[") end, "bad pattern")
    assert.error_matches(function() return S.vendor("aws") * 5 end, "expected a selector")
    assert.error_matches(function() S.region() end, "expected at least one value")
  end)
end)
