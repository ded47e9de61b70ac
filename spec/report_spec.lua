-- spec/report_spec.lua: lua/cloudflare/report.lua, walking results and printing them as a
-- table, JSON, JSON lines or CSV.
local report = require "cloudflare.report"
local json = require "cloudflare.json"
local cjson = require "cjson"

local function batch()
  return {
    id = "origin_public_cloud_region", requests = 1,
    value = {
      succeeded = json.array { { origin_ip = "192.0.2.1", vendor = "aws", region = "us-east-1", input = "192.0.2.1" } },
      failed = json.array { { origin_ip = "db,01", error = 'not "an" IP', input = "db,01" } },
      pending = json.array { "2001:db8::1" },
      unsent = json.array { "192.0.2.9" },
    },
  }
end

describe("cloudflare.report", function()
  it("marks every row of a dry run with dry_status, in table, CSV, JSON lines and JSON", function()
    local res = batch()
    res.dry_run = true
    local t = report.format(res, { dry_status = "would_delete" })
    assert.matches("\nwould_delete  192%.0%.2%.1", t)
    assert.is_nil(t:find("succeeded", 1, true))
    assert.matches("^status,origin_ip,vendor,region,error,input\r\nwould_delete,192%.0%.2%.1,",
      report.format(res, { format = "csv", dry_status = "would_delete" }))
    local first = report.format(res, { format = "jsonl", dry_status = "would_update" }):match("^[^\n]*")
    assert.are.equal("would_update", cjson.decode(first).status)
    local doc = cjson.decode(report.format(res, { format = "json", dry_status = "would_delete" }))
    assert.is_nil(doc.value.succeeded)
    assert.are.equal("would_delete", doc.value.would_delete[1].status)
    assert.are.same({ status = "pending", origin_ip = "2001:db8::1" }, doc.value.pending[1])
    assert.are.equal(report.DRY_STATUS, select(2, report.rows(res))[1].status)
    res.dry_run = nil -- a real run's rows say succeeded
    assert.are.equal("succeeded", select(2, report.rows(res, { dry_status = "would_delete" }))[1].status)
  end)

  it("lists value.absent last, as absent, and counts it only when the result has it", function()
    local res = batch()
    res.value.absent = json.array { { origin_ip = "192.0.2.7", input = "192.0.2.7" } }
    local _, rows = report.rows(res)
    assert.are.same({ status = "absent", origin_ip = "192.0.2.7", input = "192.0.2.7" }, rows[#rows])
    assert.are.same({ succeeded = 1, failed = 1, pending = 1, unsent = 1, absent = 1, total = 5 },
      report.counts(res))
  end)

  it("iterates succeeded, failed, pending and unsent, and counts them", function()
    local seen = {}
    for status, item in report.each(batch()) do seen[#seen + 1] = status .. " " .. item.origin_ip end
    assert.are.same({ "succeeded 192.0.2.1", "failed db,01", "pending 2001:db8::1", "unsent 192.0.2.9" }, seen)
    assert.are.same({ succeeded = 1, failed = 1, pending = 1, unsent = 1, total = 4 }, report.counts(batch()))
  end)

  it("gives unsent items as { origin_ip = ip }, apart from pending ones", function()
    local res = batch()
    res.value.pending = json.array()
    res.value.unsent = json.array { "192.0.2.9", "2001:db8::9" }
    local seen = {}
    for status, item in report.each(res) do
      if status ~= "succeeded" and status ~= "failed" then seen[#seen + 1] = { status, item } end
    end
    assert.are.same({ { "unsent", { origin_ip = "192.0.2.9" } }, { "unsent", { origin_ip = "2001:db8::9" } } }, seen)
    assert.are.same({ succeeded = 1, failed = 1, pending = 0, unsent = 2, total = 4 }, report.counts(res))
  end)

  it("counts a result without an unsent list (made before there was one) as none unsent", function()
    local res = batch()
    res.value.unsent = nil
    assert.are.same({ succeeded = 1, failed = 1, pending = 1, unsent = 0, total = 3 }, report.counts(res))
    local n = 0
    for status in report.each(res) do
      assert.are_not.equal("unsent", status)
      n = n + 1
    end
    assert.are.equal(3, n)
  end)

  it("prints an aligned table", function()
    assert.are.equal(table.concat({
      "status     origin_ip    vendor  region     error        input",
      "---------  -----------  ------  ---------  -----------  ---------",
      "succeeded  192.0.2.1    aws     us-east-1               192.0.2.1",
      'failed     db,01                           not "an" IP  db,01',
      "pending    2001:db8::1",
      "unsent     192.0.2.9",
      "" }, "\n"), report.format(batch()))
  end)

  it("prints CSV with RFC 4180 quoting", function()
    assert.are.equal('status,origin_ip,vendor,region,error,input\r\n'
      .. 'succeeded,192.0.2.1,aws,us-east-1,,192.0.2.1\r\n'
      .. 'failed,"db,01",,,"not ""an"" IP","db,01"\r\n'
      .. 'pending,2001:db8::1,,,,\r\n'
      .. 'unsent,192.0.2.9,,,,\r\n', report.format(batch(), { format = "csv" }))
  end)

  it("prints JSON lines, one object per IP", function()
    local lines = {}
    for l in report.format(batch(), { format = "jsonl" }):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
    assert.are.equal(4, #lines)
    assert.are.same({ status = "pending", origin_ip = "2001:db8::1" }, lines[3])
    assert.are.same({ status = "unsent", origin_ip = "192.0.2.9" }, lines[4])
  end)

  it("prints the whole result as one JSON object, empty lists as []", function()
    local res = batch()
    res.value.pending = json.array()
    local text = report.format(res, { format = "json" })
    assert.matches('"pending": %[%]', text)
    assert.are.equal("192.0.2.1", cjson.decode(text).value.succeeded[1].origin_ip)
    assert.are.same({ "192.0.2.9" }, cjson.decode(text).value.unsent)
  end)

  it("prints lists of mappings, supported regions and plain rows", function()
    local list = { value = json.array { { origin_ip = "192.0.2.1", vendor = "aws", region = "us-east-1" } } }
    assert.matches("^origin_ip  vendor  region     modified_on\n", report.format(list))
    local regions = { vendors = { gcp = { { name = "us-central1", upper_tier_colos = { "ORD", "DFW" } } } } }
    assert.matches("gcp     us%-central1  ORD DFW\n$", report.format(regions))
    assert.are.equal("count,vendor\r\n2,aws\r\n",
      report.format({ { vendor = "aws", count = 2 } }, { format = "csv" }))
    assert.are.equal("vendor,count\r\naws,2\r\n",
      report.format({ { vendor = "aws", count = 2 } }, { format = "csv", columns = { "vendor", "count" } }))
  end)

  it("writes to the file it is given and rejects unknown formats", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    report.write(batch(), { format = "csv", out = f })
    f:close()
    f = assert(io.open(path))
    assert.matches("^status,origin_ip", f:read("a"))
    f:close()
    os.remove(path)
    assert.error_matches(function() report.format(batch(), { format = "xml" }) end, 'unknown format "xml"')
  end)
end)
