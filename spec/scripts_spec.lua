-- spec/scripts_spec.lua: the example scripts of scripts/, run end to end as an operator runs
-- them (cfrun script.lua args, as a subprocess) against a fake API this spec starts, so that
-- the zone's state and the requests received can be checked after each run; and each once
-- with --sandbox, as its header suggests.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local ZONE = H.ZONE
local INTERNAL = "Unable to delete origin_public_cloud_region setting. Internal error."

local SEED = {
  { "192.0.2.1", "us-east-1", "aws" },
  { "192.0.2.2", "us-east-1", "aws" },
  { "192.0.2.3", "us-west-2", "aws" },
  { "198.51.100.10", "us-central1", "gcp" },
  { "2001:db8::1", "us-central1", "gcp" },
  { "2001:db8::2", "eastus", "azure" },
  { "203.0.113.5", "us-ashburn-1", "oci" },
  { "203.0.113.6", "eu-frankfurt-1", "oci" },
}

local function script(name) return H.SOURCE_DIR .. "/scripts/" .. name end

local function lines(text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

-- lines(text) with the hint the library may add to a 403 ("(check that the API token ...)")
-- taken off: these specs are about what the scripts add, not the library's wording.
local function unhinted(text)
  local out = lines(text)
  for i, l in ipairs(out) do out[i] = l:gsub(" %(check that the API token .*%)$", "") end
  return out
end

local fake

-- Runs scripts/<name> with args against the fake API; returns stdout, stderr, exit status.
-- (extra: more environment, name = value or false to unset)
local function run(name, args, stdin, extra)
  -- CFRUN_JOURNAL empty: no default journal (the journal's own specs say so), unless `extra`
  local env = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN, ZONE = ZONE,
    CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false, CFRUN_SANDBOX_ZONE = false, CFRUN_JOURNAL = "" }
  for k, v in pairs(extra or {}) do env[k] = v end
  return H.run({ script(name), table.unpack(args or {}) }, { stdin = stdin, env = env })
end

-- Starts scripts/<name> as run() does, in the background (a shell waits for it and records its
-- status); returns its pid and a function giving stdout, stderr and the exit status once it ended.
local function start(name, args)
  local q, out, pidfile, statusfile = H.shell_quote, os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(statusfile)
  local parts = { "env", "-u CLOUDFLARE_EMAIL", "-u CLOUDFLARE_API_KEY", "-u CFRUN_SANDBOX_ZONE",
    "CLOUDFLARE_BASE_URL=" .. q(fake.base_url), "CLOUDFLARE_API_TOKEN=" .. q(H.TOKEN), "ZONE=" .. ZONE,
    "CFRUN_JOURNAL=", q(H.CFRUN), q(script(name)) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  os.execute(string.format("sh -c %s >/dev/null 2>&1 &", q(string.format(
    "%s </dev/null >%s 2>%s.err & echo $! >%s; wait $!; echo $? >%s.tmp; mv %s.tmp %s",
    table.concat(parts, " "), out, out, pidfile, statusfile, statusfile, statusfile))))
  local function slurp(path)
    local f = io.open(path)
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
  end
  local pid
  local deadline = socket.gettime() + 10
  repeat
    pid = tonumber((slurp(pidfile) or ""):match("%d+"))
    if not pid then socket.sleep(0.01) end
  until pid or socket.gettime() > deadline
  assert(pid, name .. " did not start")
  return pid, function()
    local status
    deadline = socket.gettime() + 30
    repeat
      status = slurp(statusfile)
      if not status then socket.sleep(0.02) end
    until status or socket.gettime() > deadline
    local o, e = slurp(out), slurp(out .. ".err")
    for _, f in ipairs { out, out .. ".err", pidfile, statusfile } do os.remove(f) end
    return o, e, tonumber(status)
  end
end

-- Runs scripts/<name> under --sandbox (its own seeded server) as the headers show. A
-- production $ZONE left in the environment must not steer a sandbox run away from its zone.
local function sandbox(name, args, stdin)
  return H.run({ "--sandbox", script(name), table.unpack(args or {}) },
    { stdin = stdin, env = { ZONE = "ffffffffffffffffffffffffffffffff" } })
end

-- The zone's mappings as "ip vendor region", in the server's order.
local function state()
  local out = {}
  for i, m in ipairs(fake:zone(ZONE)) do out[i] = m["origin-ip"] .. " " .. m.vendor .. " " .. m.region end
  return out
end

local function seed_state()
  local out = {}
  for i, m in ipairs(SEED) do out[i] = m[1] .. " " .. m[3] .. " " .. m[2] end
  return out
end

-- The API requests received, as "METHOD <path after the family's prefix>" ("/" for the list).
local function calls()
  local out = {}
  for _, r in ipairs(fake:requests()) do
    local rest = H.suffix(r.path)
    if rest then out[#out + 1] = r.method .. " " .. (rest == "" and "/" or rest) end
  end
  return out
end

-- The API requests that change state.
local function writes()
  local out = {}
  for _, c in ipairs(calls()) do
    if not c:find("^GET ") then out[#out + 1] = c end
  end
  return out
end

-- The IPs the zone holds, in the server's order.
local function zone_ips(zone)
  return H.pluck(fake:zone(zone or ZONE), "origin-ip")
end

-- list[i..j] as a new list.
local function slice(list, i, j) return table.move(list, i, j, 1, {}) end

-- Replaces the zone's mappings with n of them, 10.<b>.x.y in aws us-east-1 (b = 0 unless
-- given), and returns their IPs in order.
local function seed_many(n, b, zone)
  local list, ips = {}, {}
  for i = 1, n do
    ips[i] = string.format("10.%d.%d.%d", b or 0, i // 256, i % 256)
    list[i] = { ips[i], "us-east-1", "aws" }
  end
  fake:set_zone(zone or ZONE, list)
  return ips
end

-- What the scripts say of the IPs a failed call left without an answer, and what to do next,
-- as in "<script>: 3 IP(s) pending <PENDING><the IPs>".
local PENDING = "(sent, not known whether changed; check them, or restore from the journal): "
local UNSENT = "(certainly not changed; safe to send again): "

-- A 403 refusing one request as a whole (never retried): its IPs are certainly unchanged.
local function refuse(method, extra)
  local f = { match = { method = method }, status = 403,
    errors = { { code = 10000, message = "Authentication error" } } }
  for k, v in pairs(extra or {}) do f[k] = v end
  fake:fault(f)
end

-- The origin_ip of each row of JSON lines output, by status.
local function ips_by_status(out)
  local by = {}
  for _, l in ipairs(lines(out)) do
    local row = cjson.decode(l)
    by[row.status] = by[row.status] or {}
    table.insert(by[row.status], row.origin_ip)
  end
  return by
end

-- The method of a batch write: v1 PATCH, v2 PUT.
local WRITE = H.V1 and "PATCH" or "PUT"

local function body_of(method)
  for _, r in ipairs(fake:requests()) do
    if r.method == method then return cjson.decode(r.body) end
  end
end

-- A failing request, on the first attempt and on both default retries.
local function fault(method, extra)
  local f = { match = { method = method }, status = 500, times = 3,
    errors = { { code = 1141, message = INTERNAL } } }
  for k, v in pairs(extra or {}) do f[k] = v end
  fake:fault(f)
end

setup(function() fake = H.start_fake() end)
teardown(function() fake:stop() end)
before_each(function()
  fake:reset()
  fake:set_zone(ZONE, SEED)
  fake:clear_requests()
end)

describe("every script", function()
  local SCRIPTS = { "delete_from_file.lua", "delete_vendor.lua", "prune.lua", "report.lua", "move_region.lua" }

  it("prints its usage line for --help and exits 0", function()
    for _, name in ipairs(SCRIPTS) do
      local out, err, code = run(name, { "--help" })
      assert.are.equal(0, code, name .. ": " .. err)
      assert.matches("^usage: " .. name:gsub("%p", "%%%0") .. " %[%-%-zone Z%]", out)
    end
  end)

  it("exits 2 on an unknown option, a bad --format or no zone, before any request", function()
    for _, name in ipairs(SCRIPTS) do
      local _, err, code = run(name, { "--frobnicate", "aws" })
      assert.are.equal(2, code, name)
      assert.are.equal(name .. ": unknown option '--frobnicate'", lines(err)[1])
      _, err, code = run(name, { "--format", "xml", "aws" })
      assert.are.equal(2, code, name)
      assert.are.equal(name .. ": option '--format' must be one of table, json, jsonl, csv, got 'xml'",
        lines(err)[1])
      _, err, code = run(name, { "-n", "aws" })
      assert.are.equal(2, code, name)
      assert.are.equal(name .. ": unknown option '-n'", lines(err)[1])
      _, err, code = run(name, { "--zone", "bad-zone/x", "aws" })
      assert.are.equal(2, code, name)
      assert.matches('^' .. name:gsub("%p", "%%%0")
        .. ': invalid zone id: expected 32 hex digits, got 10 characters "bad%-zone/x": the zone id is', err)
      _, err, code = run(name, { "--zone", "example.com", "aws" })
      assert.are.equal(2, code, name)
      assert.truthy(err:find(name .. ': invalid zone id: a domain name, not a zone id "example.com": the zone'
        .. " id is the 32-hex-digit id on the zone's Overview page", 1, true), err)
      _, err, code = H.run({ script(name), "aws" }, { env = { ZONE = false, CFRUN_SANDBOX_ZONE = false } })
      assert.are.equal(2, code, name)
      assert.matches("^" .. name:gsub("%p", "%%%0") .. ": no zone: pass %-%-zone ZONE_ID or set ZONE", err)
    end
    assert.are.same({}, calls())
  end)
end)

describe("scripts/delete_from_file.lua", function()
  it("deletes the IPs of a file, reports each, and exits 3 when one had no mapping", function()
    local path = H.tempfile("# decommissioned\n192.0.2.1\n\n2001:DB8::1  # db01\n198.51.100.99\n")
    local out, err, code = run("delete_from_file.lua", { path })
    os.remove(path)
    assert.are.equal(3, code, err)
    assert.are.same({
      "status     origin_ip      vendor  region       error              input",
      "---------  -------------  ------  -----------  -----------------  -------------",
      "succeeded  192.0.2.1      aws     us-east-1                       192.0.2.1",
      "succeeded  2001:db8::1    gcp     us-central1                     2001:DB8::1",
      "failed     198.51.100.99                       mapping not found  198.51.100.99",
      "2 deleted, 1 failed, 0 pending, 0 unsent",
    }, lines(out))
    assert.are.equal("", err)
    assert.are.same({ "DELETE /batch" }, calls())
    assert.are.same({ "192.0.2.1", "2001:db8::1", "198.51.100.99" }, body_of("DELETE"))
    assert.are.same({ "192.0.2.2 aws us-east-1", "192.0.2.3 aws us-west-2", "198.51.100.10 gcp us-central1",
      "2001:db8::2 azure eastus", "203.0.113.5 oci us-ashburn-1", "203.0.113.6 oci eu-frankfurt-1" }, state())
  end)

  it("reads standard input by default and prints JSON; exits 0 when every IP was deleted", function()
    local out, err, code = run("delete_from_file.lua", { "--format", "json" }, "203.0.113.5\n203.0.113.6\n")
    assert.are.equal(0, code, err)
    local res = cjson.decode(out)
    assert.are.same({
      { origin_ip = "203.0.113.5", vendor = "oci", region = "us-ashburn-1", input = "203.0.113.5" },
      { origin_ip = "203.0.113.6", vendor = "oci", region = "eu-frankfurt-1", input = "203.0.113.6" },
    }, res.value.succeeded)
    assert.are.same({}, res.value.failed)
    assert.are.equal(6, #state())
  end)

  it("refuses a list with invalid lines, naming them, and deletes nothing", function()
    local out, err, code = run("delete_from_file.lua", { "-" }, "192.0.2.1\ndb01.example.com\n\n300.1.1.1 # old\n")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.same({
      'stdin:2: "db01.example.com" is not an IP address (a host name, not an address)',
      'stdin:4: "300.1.1.1" is not an IP address',
      "delete_from_file.lua: 2 invalid line(s), nothing was deleted (fix them or pass --skip-invalid)",
    }, lines(err))
    assert.are.same({}, calls())
    assert.are.same(seed_state(), state())
  end)

  it("with --skip-invalid, reports the invalid lines and deletes the rest (CSV)", function()
    local path = H.tempfile("192.0.2.1\ndb01.example.com\n192.0.2.2\n")
    local out, err, code = run("delete_from_file.lua", { "--skip-invalid", "--format", "csv", path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.equal("status,origin_ip,vendor,region,error,input\r\n"
      .. "succeeded,192.0.2.1,aws,us-east-1,,192.0.2.1\r\n"
      .. "succeeded,192.0.2.2,aws,us-east-1,,192.0.2.2\r\n", out)
    assert.are.equal(path .. ':2: "db01.example.com" is not an IP address (a host name, not an address)\n', err)
    assert.are.same({ "192.0.2.1", "192.0.2.2" }, body_of("DELETE"))
  end)

  it("exits 2 for a file it cannot read or for two files", function()
    local _, err, code = run("delete_from_file.lua", { "/nonexistent/ips.txt" })
    assert.are.equal(2, code)
    assert.are.equal("delete_from_file.lua: /nonexistent/ips.txt: No such file or directory\n", err)
    _, err, code = run("delete_from_file.lua", { "a", "b" })
    assert.are.equal(2, code)
    assert.are.equal("delete_from_file.lua: expected one FILE, got 2", lines(err)[1])
  end)

  it("on a failed batch, reports what was deleted before the failure, then exits 4 with that batch"
    .. " pending and the batches never started unsent, listed apart", function()
      local ips = seed_many(250)
      fault("DELETE", { skip = 1 }) -- the second batch of 100 fails, on its two retries too
      local out, err, code = run("delete_from_file.lua", { "--format", "jsonl", "--concurrency", "1" },
        table.concat(ips, "\n"))
      assert.are.equal(4, code, err)
      for _, l in ipairs(lines(out)) do
        local row = cjson.decode(l)
        if row.status == "succeeded" then assert.are.equal("us-east-1", row.region) end
      end
      assert.are.same({ succeeded = slice(ips, 1, 100), pending = slice(ips, 101, 200),
        unsent = slice(ips, 201, 250) }, ips_by_status(out))
      assert.are.same({
        "delete_from_file.lua: HTTP 500: [1141] " .. INTERNAL,
        "delete_from_file.lua: 100 IP(s) pending " .. PENDING .. table.concat(ips, " ", 101, 200),
        "delete_from_file.lua: 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 201, 250),
      }, lines(err))
      -- the first batch, then the second and its two retries; the third never went out
      assert.are.same({ "DELETE /batch", "DELETE /batch", "DELETE /batch", "DELETE /batch" }, calls())
      -- the 500s changed nothing: the zone holds exactly the pending and the unsent IPs
      assert.are.same(slice(ips, 101, 250), zone_ips())
    end)

  it("on a batch refused with a 403, exits 4 with its IPs unsent and none pending (table)", function()
    local ips = seed_many(150)
    refuse("DELETE", { skip = 1 })
    local out, err, code = run("delete_from_file.lua", { "--concurrency", "1" }, table.concat(ips, "\n"))
    assert.are.equal(4, code, err)
    local o = lines(out)
    assert.are.equal(2 + 150 + 1, #o)
    local rows = {}
    for i = 3, 152 do rows[#rows + 1] = o[i]:match("^(%a+)%s") .. " " .. o[i]:match("^%a+%s+(%S+)") end
    for i = 1, 150 do
      assert.are.equal((i <= 100 and "succeeded " or "unsent ") .. ips[i], rows[i])
    end
    assert.matches("^unsent     10%.0%.0%.101$", o[103])
    assert.are.equal("100 deleted, 0 failed, 0 pending, 50 unsent", o[153])
    assert.are.same({
      "delete_from_file.lua: HTTP 403: [10000] Authentication error",
      "delete_from_file.lua: 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 101, 150),
    }, unhinted(err))
    assert.are.same({ "DELETE /batch", "DELETE /batch" }, calls()) -- a 403 is not retried
    assert.are.same(slice(ips, 101, 150), zone_ips())
  end)

  it("sends --concurrency batches at once, and refuses a bad value with status 2", function()
    local many, ips = {}, {}
    for i = 1, 400 do
      ips[i] = string.format("10.0.%d.%d", i // 256, i % 256)
      many[i] = { ips[i], "us-east-1", "aws" }
    end
    fake:set_zone(ZONE, many)
    fake:clear_stats()
    fake:options { latency = 0.05 } -- so that requests overlap at the server
    local _, err, code = run("delete_from_file.lua", { "--concurrency", "3" }, table.concat(ips, "\n"))
    fake:options { latency = 0 }
    assert.are.equal(0, code, err)
    assert.are.equal(3, fake:stats().peak_in_flight)
    assert.are.equal(0, #state())
    _, err, code = run("delete_from_file.lua", { "--concurrency", "0" }, "192.0.2.1\n")
    assert.are.equal(2, code)
    assert.matches("option '%-%-concurrency' must be a whole number from 1 to 64", err)
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("delete_from_file.lua", {}, "192.0.2.1\n198.51.100.99\n")
    assert.are.equal(3, code, err)
    assert.are.same({
      "status     origin_ip      vendor  region     error              input",
      "---------  -------------  ------  ---------  -----------------  -------------",
      "succeeded  192.0.2.1      aws     us-east-1                     192.0.2.1",
      "failed     198.51.100.99                     mapping not found  198.51.100.99",
      "1 deleted, 1 failed, 0 pending, 0 unsent",
    }, lines(out))
  end)
end)

describe("scripts/delete_vendor.lua", function()
  it("deletes every mapping of the vendor", function()
    local out, err, code = run("delete_vendor.lua", { "aws" })
    assert.are.equal(0, code, err)
    assert.are.same({
      "status     origin_ip  vendor  region     error  input",
      "---------  ---------  ------  ---------  -----  ---------",
      "succeeded  192.0.2.1  aws     us-east-1         192.0.2.1",
      "succeeded  192.0.2.2  aws     us-east-1         192.0.2.2",
      "succeeded  192.0.2.3  aws     us-west-2         192.0.2.3",
      "3 deleted, 0 failed, 0 pending, 0 unsent",
    }, lines(out))
    assert.are.equal("delete_vendor.lua: 3 of 8 mapping(s) match vendor(aws)\n", err)
    assert.are.same({ "GET /", "DELETE /batch" }, calls())
    assert.are.same({ "198.51.100.10 gcp us-central1", "2001:db8::1 gcp us-central1", "2001:db8::2 azure eastus",
      "203.0.113.5 oci us-ashburn-1", "203.0.113.6 oci eu-frankfurt-1" }, state())
  end)

  it("limits the deletion by exact regions, a region pattern and CIDRs (JSON lines)", function()
    local out, err, code = run("delete_vendor.lua", { "--format", "jsonl", "--region", "us-east-1",
      "--region", "us-west-2", "--cidr", "192.0.2.2/32", "--cidr", "192.0.2.3/32", "aws" })
    assert.are.equal(0, code, err)
    local got = {}
    for _, l in ipairs(lines(out)) do got[#got + 1] = cjson.decode(l) end
    assert.are.same({
      { status = "succeeded", origin_ip = "192.0.2.2", vendor = "aws", region = "us-east-1", input = "192.0.2.2" },
      { status = "succeeded", origin_ip = "192.0.2.3", vendor = "aws", region = "us-west-2", input = "192.0.2.3" },
    }, got)
    out, err, code = run("delete_vendor.lua", { "--region-match", "^eu%-", "--format", "csv", "oci" })
    assert.are.equal(0, code, err)
    assert.are.equal("status,origin_ip,vendor,region,error,input\r\n"
      .. "succeeded,203.0.113.6,oci,eu-frankfurt-1,,203.0.113.6\r\n", out)
    assert.are.equal('delete_vendor.lua: 1 of 6 mapping(s) match vendor(oci) and region_matching("^eu%-")\n', err)
    assert.are.same({ "192.0.2.1 aws us-east-1", "198.51.100.10 gcp us-central1", "2001:db8::1 gcp us-central1",
      "2001:db8::2 azure eastus", "203.0.113.5 oci us-ashburn-1" }, state())
  end)

  it("--dry-run shows what would be deleted and sends no DELETE", function()
    local out, err, code = run("delete_vendor.lua", { "--dry-run", "--cidr", "2001:db8::/32", "gcp" })
    assert.are.equal(0, code, err)
    assert.are.same({
      "status        origin_ip    vendor  region       error  input",
      "------------  -----------  ------  -----------  -----  -----------",
      "would_delete  2001:db8::1  gcp     us-central1         2001:db8::1",
      "1 would be deleted, 0 failed, 0 pending, 0 unsent",
    }, lines(out))
    assert.are.same({ "delete_vendor.lua: 1 of 8 mapping(s) match vendor(gcp) and cidr(2001:db8::/32)",
      "delete_vendor.lua: dry run: nothing was deleted" }, lines(err))
    assert.are.same({ "GET /", "GET /" }, calls())
    assert.are.same(seed_state(), state())
  end)

  it("deletes nothing and exits 0 when nothing matches", function()
    local out, err, code = run("delete_vendor.lua", { "--region", "westeurope", "azure" })
    assert.are.equal(0, code, err)
    assert.are.equal("0 deleted, 0 failed, 0 pending, 0 unsent", lines(out)[3])
    assert.are.same({ "GET /" }, calls())
  end)

  it("exits 2 on an unknown vendor, a bad CIDR or pattern, or no vendor, before any request", function()
    for _, case in ipairs {
      { { "amazon" }, 'delete_vendor.lua: select.vendor: unknown vendor "amazon" (aws, azure, gcp or oci)' },
      { { "--cidr", "10.0.0.0/33", "aws" }, 'delete_vendor.lua: select.cidr: invalid CIDR "10.0.0.0/33"' },
      { { "--region-match", "[", "aws" },
        "delete_vendor.lua: select.region_matching: bad pattern: malformed pattern (missing ']')" },
      { {}, "delete_vendor.lua: expected one VENDOR" },
    } do
      local out, err, code = run("delete_vendor.lua", case[1])
      assert.are.equal(2, code, case[2])
      assert.are.equal("", out)
      assert.are.equal(case[2], lines(err)[1])
    end
    assert.are.same({}, calls())
  end)

  it("exits 4 when the listing fails", function()
    fault("GET")
    local out, err, code = run("delete_vendor.lua", { "aws" })
    assert.are.equal(4, code)
    assert.are.equal("", out)
    assert.are.equal("delete_vendor.lua: HTTP 500: [1141] " .. INTERNAL .. "\n", err)
    assert.are.same(seed_state(), state())
  end)

  it("exits 4 listing apart the pending IPs (deleted, the answer lost) and the unsent ones", function()
    local ips = seed_many(250)
    -- the second batch is applied, then its connection closed before the answer, three times
    fake:fault { match = { method = "DELETE" }, skip = 1, times = 3, drop = "after" }
    local out, err, code = run("delete_vendor.lua", { "--concurrency", "1", "--format", "jsonl", "aws" })
    assert.are.equal(4, code, err)
    assert.are.same({ succeeded = slice(ips, 1, 100), pending = slice(ips, 101, 200),
      unsent = slice(ips, 201, 250) }, ips_by_status(out))
    local e = lines(err)
    assert.are.equal(4, #e)
    assert.are.equal("delete_vendor.lua: 250 of 250 mapping(s) match vendor(aws)", e[1])
    assert.matches("^delete_vendor%.lua: network error: ", e[2]) -- the request was written: pending
    assert.are.equal("delete_vendor.lua: 100 IP(s) pending " .. PENDING .. table.concat(ips, " ", 101, 200), e[3])
    assert.are.equal("delete_vendor.lua: 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 201, 250), e[4])
    -- the pending ones are in fact gone (check them, as the script says); the unsent ones remain
    assert.are.same(slice(ips, 201, 250), zone_ips())
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("delete_vendor.lua", { "--dry-run", "aws" })
    assert.are.equal(0, code, err)
    assert.are.equal("4 would be deleted, 0 failed, 0 pending, 0 unsent", lines(out)[7])
    assert.are.equal("delete_vendor.lua: dry run: nothing was deleted", lines(err)[2])
  end)
end)

describe("scripts/prune.lua", function()
  local KEEP = "# hosts in service\n192.0.2.1\n192.0.2.2\n192.0.2.3\n198.51.100.10\n2001:DB8::1\n203.0.113.5\n"

  it("deletes the mappings of IPs not in the inventory", function()
    local path = H.tempfile(KEEP)
    local out, err, code = run("prune.lua", { path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.same({
      "status     origin_ip    vendor  region          error  input",
      "---------  -----------  ------  --------------  -----  -----------",
      "succeeded  2001:db8::2  azure   eastus                 2001:db8::2",
      "succeeded  203.0.113.6  oci     eu-frankfurt-1         203.0.113.6",
      "2 deleted, 0 failed, 0 pending, 0 unsent (6 mapping(s) kept)",
    }, lines(out))
    assert.are.equal("", err)
    assert.are.same({ "GET /", "DELETE /batch" }, calls())
    assert.are.same({ "192.0.2.1 aws us-east-1", "192.0.2.2 aws us-east-1", "192.0.2.3 aws us-west-2",
      "198.51.100.10 gcp us-central1", "2001:db8::1 gcp us-central1", "203.0.113.5 oci us-ashburn-1" }, state())
  end)

  it("refuses to delete more than --max-share of the zone unless --force", function()
    local inventory = "192.0.2.1\n192.0.2.2\n192.0.2.3\n198.51.100.10\n2001:db8::1\n" -- 3 of 8 to go
    local out, err, code = run("prune.lua", { "-" }, inventory)
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.equal("prune.lua: refusing to delete 3 of 8 mappings (38%, more than --max-share 0.25), nothing"
      .. " was deleted; check the inventory, or pass --force (or a larger --max-share)\n", err)
    assert.are.same({ "GET /" }, calls())
    assert.are.same(seed_state(), state())

    out, err, code = run("prune.lua", { "--max-share", "0.5", "--format", "json", "-" }, inventory)
    assert.are.equal(0, code, err)
    assert.are.same({ "2001:db8::2", "203.0.113.5", "203.0.113.6" },
      H.pluck(cjson.decode(out).value.succeeded, "origin_ip"))
    assert.are.equal(5, #state())

    fake:set_zone(ZONE, SEED)
    out, err, code = run("prune.lua", { "--force", "-" }, "") -- an empty inventory: everything goes
    assert.are.equal(0, code, err)
    assert.are.equal("8 deleted, 0 failed, 0 pending, 0 unsent (0 mapping(s) kept)", lines(out)[11])
    assert.are.same({}, state())
  end)

  it("refuses an inventory with invalid lines, naming them, unless --force", function()
    local path = H.tempfile(KEEP .. "web01.example.com\n")
    local out, err, code = run("prune.lua", { path })
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.same({
      path .. ':8: "web01.example.com" is not an IP address (a host name, not an address)',
      "prune.lua: 1 invalid line(s) in the inventory: refusing to prune, nothing was deleted"
        .. " (the hosts on those lines would lose their mappings); fix them or pass --force",
    }, lines(err))
    assert.are.same({}, calls())

    out, err, code = run("prune.lua", { "--force", path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.equal(path .. ':8: "web01.example.com" is not an IP address (a host name, not an address)\n', err)
    assert.are.equal("2 deleted, 0 failed, 0 pending, 0 unsent (6 mapping(s) kept)", lines(out)[5])
    assert.are.equal(6, #state())
  end)

  it("says so and exits 0 when there is nothing to prune or the zone is empty", function()
    local out, err, code = run("prune.lua", { "-" }, KEEP .. "2001:db8::2\n203.0.113.6\n")
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    assert.are.equal("prune.lua: nothing to prune: all 8 mapping(s) are in the inventory\n", err)
    fake:set_zone(ZONE, {})
    out, err, code = run("prune.lua", { "-" }, KEEP)
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    assert.are.equal("prune.lua: zone " .. ZONE .. " has no mappings: nothing to prune\n", err)
    assert.are.same({ "GET /", "GET /" }, calls())
  end)

  it("--dry-run shows what would be deleted and sends no DELETE", function()
    local out, err, code = run("prune.lua", { "--dry-run", "--format", "csv", "-" }, KEEP)
    assert.are.equal(0, code, err)
    assert.are.equal("status,origin_ip,vendor,region,error,input\r\n"
      .. "would_delete,2001:db8::2,azure,eastus,,2001:db8::2\r\n"
      .. "would_delete,203.0.113.6,oci,eu-frankfurt-1,,203.0.113.6\r\n", out)
    assert.are.equal("prune.lua: dry run: nothing was deleted\n", err)
    assert.are.same({ "GET /", "GET /" }, calls())
    assert.are.same(seed_state(), state())
  end)

  it("exits 4 with the IPs pending when the DELETE fails", function()
    fault("DELETE")
    local out, err, code = run("prune.lua", { "-" }, KEEP)
    assert.are.equal(4, code)
    assert.are.same({
      "status   origin_ip    vendor  region  error  input",
      "-------  -----------  ------  ------  -----  -----",
      "pending  2001:db8::2",
      "pending  203.0.113.6",
      "0 deleted, 0 failed, 2 pending, 0 unsent (6 mapping(s) kept)",
    }, lines(out))
    assert.are.same({ "prune.lua: HTTP 500: [1141] " .. INTERNAL,
      "prune.lua: 2 IP(s) pending " .. PENDING .. "2001:db8::2 203.0.113.6" }, lines(err))
  end)

  it("exits 4 with the pending and the unsent IPs apart in the count line and on stderr", function()
    local ips = seed_many(256)
    local keep = slice(ips, 251, 256)
    fault("DELETE", { skip = 1 })
    local out, err, code = run("prune.lua", { "--force", "--concurrency", "1", "-" }, table.concat(keep, "\n"))
    assert.are.equal(4, code, err)
    local o = lines(out)
    assert.are.equal("100 deleted, 0 failed, 100 pending, 50 unsent (6 mapping(s) kept)", o[#o])
    assert.matches("^pending    10%.0%.0%.101$", o[2 + 101])
    assert.matches("^unsent     10%.0%.0%.201$", o[2 + 201])
    assert.are.same({ "prune.lua: HTTP 500: [1141] " .. INTERNAL,
      "prune.lua: 100 IP(s) pending " .. PENDING .. table.concat(ips, " ", 101, 200),
      "prune.lua: 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 201, 250) }, lines(err))
    assert.are.same(slice(ips, 101, 256), zone_ips())
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("prune.lua", { "--dry-run", "--force", "-" }, "192.0.2.1\n")
    assert.are.equal(0, code, err)
    assert.are.equal("11 would be deleted, 0 failed, 0 pending, 0 unsent (1 mapping(s) kept)", lines(out)[14])
  end)
end)

describe("scripts/report.lua", function()
  it("counts mappings per vendor and region, with a total line", function()
    fake:set_zone(ZONE, { SEED[1], SEED[3], SEED[2], SEED[6], SEED[4], SEED[5] })
    local out, err, code = run("report.lua")
    assert.are.equal(0, code, err)
    assert.are.same({
      "vendor  region       count",
      "------  -----------  -----",
      "aws     us-east-1    2",
      "aws     us-west-2    1",
      "azure   eastus       1",
      "gcp     us-central1  2",
      "total: 6 mapping(s) in 4 region(s) of 3 vendor(s)",
    }, lines(out))
    assert.are.same({ "GET /" }, calls())
  end)

  it("prints JSON, JSON lines and CSV for pipes", function()
    local out, err, code = run("report.lua", { "--format", "json" })
    assert.are.equal(0, code, err)
    assert.are.same({
      { vendor = "aws", region = "us-east-1", count = 2 }, { vendor = "aws", region = "us-west-2", count = 1 },
      { vendor = "azure", region = "eastus", count = 1 }, { vendor = "gcp", region = "us-central1", count = 2 },
      { vendor = "oci", region = "eu-frankfurt-1", count = 1 }, { vendor = "oci", region = "us-ashburn-1", count = 1 },
    }, cjson.decode(out))
    out = run("report.lua", { "--format=jsonl" })
    assert.are.equal('{"count":2,"region":"us-east-1","vendor":"aws"}', lines(out)[1])
    assert.are.equal(6, #lines(out))
    out = run("report.lua", { "--format", "csv" })
    assert.are.equal("vendor,region,count\r\naws,us-east-1,2\r\naws,us-west-2,1\r\nazure,eastus,1\r\n"
      .. "gcp,us-central1,2\r\noci,eu-frankfurt-1,1\r\noci,us-ashburn-1,1\r\n", out)
  end)

  it("reports an empty zone", function()
    fake:set_zone(ZONE, {})
    local out, err, code = run("report.lua")
    assert.are.equal(0, code, err)
    assert.are.equal("total: 0 mapping(s) in 0 region(s) of 0 vendor(s)", lines(out)[3])
    out = run("report.lua", { "--format", "json" })
    assert.are.equal("[]\n", out)
  end)

  it("exits 4 when the listing fails", function()
    fault("GET", { status = 503, errors = { { code = 1141, message = "try later" } } })
    local out, err, code = run("report.lua")
    assert.are.equal(4, code)
    assert.are.equal("", out)
    assert.are.equal("report.lua: HTTP 503: [1141] try later\n", err)
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("report.lua")
    assert.are.equal(0, code, err)
    assert.are.same({
      "vendor  region          count",
      "------  --------------  -----",
      "aws     eu-west-1       1",
      "aws     us-east-1       2",
      "aws     us-west-2       1",
      "azure   eastus          1",
      "azure   northeurope     1",
      "azure   westeurope      1",
      "gcp     europe-west1    1",
      "gcp     us-central1     2",
      "oci     eu-frankfurt-1  1",
      "oci     us-ashburn-1    1",
      "total: 12 mapping(s) in 10 region(s) of 4 vendor(s)",
    }, lines(out))
  end)
end)

describe("scripts/move_region.lua", function()
  it("moves IPs keeping their vendor; an IP with no mapping fails without being sent", function()
    local out, err, code = run("move_region.lua", { "--region", "us-west-2", "192.0.2.1", "192.0.2.2",
      "203.0.113.99", "192.0.2.1" })
    assert.are.equal(3, code, err)
    assert.are.same({
      "status     origin_ip     vendor  region     error                                             input",
      "---------  ------------  ------  ---------  ------------------------------------------------  ------------",
      "succeeded  192.0.2.1     aws     us-west-2                                                    192.0.2.1",
      "succeeded  192.0.2.2     aws     us-west-2                                                    192.0.2.2",
      "failed     203.0.113.99                     no mapping to move (pass --vendor to create one)  203.0.113.99",
      "2 moved to us-west-2, 1 failed, 0 pending, 0 unsent",
    }, lines(out))
    assert.are.same({ "GET /", WRITE .. " /batch" }, calls())
    assert.are.same({ { [H.IP_KEY] = "192.0.2.1", region = "us-west-2", vendor = "aws" },
      { [H.IP_KEY] = "192.0.2.2", region = "us-west-2", vendor = "aws" } }, body_of(WRITE))
    assert.are.same({ "192.0.2.1 aws us-west-2", "192.0.2.2 aws us-west-2" }, { table.unpack(state(), 1, 2) })
    assert.are.equal(8, #state())
  end)

  it("with --vendor, sets the vendor too and creates missing mappings, without listing", function()
    local out, err, code = run("move_region.lua", { "--region", "westus2", "--vendor", "azure",
      "--format", "json", "192.0.2.3", "203.0.113.99" })
    assert.are.equal(0, code, err)
    assert.are.same({ "192.0.2.3", "203.0.113.99" }, H.pluck(cjson.decode(out).value.succeeded, "origin_ip"))
    assert.are.same({ WRITE .. " /batch" }, calls())
    local s = state()
    assert.are.equal("192.0.2.3 azure westus2", s[3])
    assert.are.equal("203.0.113.99 azure westus2", s[9])
  end)

  it("--dry-run checks against the supported regions and sends no PATCH", function()
    local out, err, code = run("move_region.lua", { "--dry-run", "--region", "us-west-2", "--format", "csv",
      "192.0.2.1", "2001:db8::2", "nope", "203.0.113.99" })
    assert.are.equal(3, code, err)
    assert.are.equal("status,origin_ip,vendor,region,error,input\r\n"
      .. "would_update,192.0.2.1,aws,us-west-2,,192.0.2.1\r\n"
      .. "failed,2001:db8::2,,,unsupported region,2001:db8::2\r\n"
      .. "failed,nope,,,invalid IP address,nope\r\n"
      .. "failed,203.0.113.99,,,no mapping to move (pass --vendor to create one),203.0.113.99\r\n", out)
    assert.are.equal("move_region.lua: dry run: nothing was changed\n", err)
    assert.are.same({ "GET /", "GET /supported_regions" }, calls())
    assert.are.same(seed_state(), state())
  end)

  it("reads --file, refusing invalid lines, and needs --region and some IPs", function()
    local path = H.tempfile("192.0.2.1\nweb01\n")
    local _, err, code = run("move_region.lua", { "--region", "us-west-2", "--file", path })
    os.remove(path)
    assert.are.equal(2, code)
    assert.are.same({ path .. ':2: "web01" is not an IP address',
      "move_region.lua: 1 invalid line(s), nothing was changed" }, lines(err))
    local out
    out, err, code = run("move_region.lua", { "--region", "us-west-1", "--file", "-" }, "192.0.2.3\n")
    assert.are.equal(0, code, err)
    assert.are.equal("1 moved to us-west-1, 0 failed, 0 pending, 0 unsent", lines(out)[4])
    for _, case in ipairs {
      { { "192.0.2.1" }, "move_region.lua: --region is required" },
      { { "--region", "us-west-2" }, "move_region.lua: no IPs given" },
      { { "--region", "us-west-2", "--file", "-", "192.0.2.1" }, "move_region.lua: give IPs or --file, not both" },
      { { "--region", "us-west-2", "--vendor", "amazon", "192.0.2.1" },
        "move_region.lua: unknown vendor 'amazon' (aws, azure, gcp or oci)" },
    } do
      _, err, code = run("move_region.lua", case[1])
      assert.are.equal(2, code, case[2])
      assert.are.equal(case[2], lines(err)[1])
    end
    assert.are.same({ "GET /", WRITE .. " /batch" }, calls())
  end)

  it("exits 4 with the IPs pending when the PATCH fails", function()
    fault(WRITE)
    local out, err, code = run("move_region.lua", { "--region", "us-west-2", "--format", "jsonl",
      "192.0.2.1", "203.0.113.99" })
    assert.are.equal(4, code)
    assert.are.same({ '{"error":"no mapping to move (pass --vendor to create one)","input":"203.0.113.99",'
        .. '"origin_ip":"203.0.113.99","status":"failed"}',
      '{"origin_ip":"192.0.2.1","status":"pending"}' }, lines(out))
    assert.are.same({ "move_region.lua: HTTP 500: [1141] " .. INTERNAL,
      "move_region.lua: 1 IP(s) pending (sent, not known whether changed; check them, move them"
        .. " again (that is harmless), or restore from the journal): 192.0.2.1" }, lines(err))
    assert.are.same(seed_state(), state())
  end)

  it("exits 4 with the IPs unsent when the write is refused, pending and unsent apart", function()
    refuse(WRITE)
    local out, err, code = run("move_region.lua", { "--region", "us-west-2", "192.0.2.1", "192.0.2.2" })
    assert.are.equal(4, code, err)
    local o = lines(out)
    assert.are.same({ "unsent  192.0.2.1", "unsent  192.0.2.2", "0 moved to us-west-2, 0 failed, 0 pending, 2 unsent" },
      slice(o, 3, 5))
    assert.are.same({ "move_region.lua: HTTP 403: [10000] Authentication error",
      "move_region.lua: 2 IP(s) unsent " .. UNSENT .. "192.0.2.1 192.0.2.2" }, unhinted(err))
    assert.are.same(seed_state(), state())

    -- 250 IPs, the second batch failing with a 500: 100 moved, 100 pending, 50 unsent
    local ips = seed_many(250)
    fault(WRITE, { skip = 1 })
    out, err, code = run("move_region.lua", { "--region", "us-west-2", "--concurrency", "1", "--format", "jsonl",
      table.unpack(ips) })
    assert.are.equal(4, code, err)
    assert.are.same({ succeeded = slice(ips, 1, 100), pending = slice(ips, 101, 200),
      unsent = slice(ips, 201, 250) }, ips_by_status(out))
    local e = lines(err)
    assert.are.equal(3, #e)
    assert.matches(" 100 IP%(s%) pending %(sent, not known whether changed; check them, move them again", e[2])
    assert.are.equal("move_region.lua: 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 201, 250), e[3])
    local regions = {}
    for _, m in ipairs(fake:zone(ZONE)) do regions[#regions + 1] = m.region end
    for i = 1, 250 do assert.are.equal(i <= 100 and "us-west-2" or "us-east-1", regions[i], ips[i]) end
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("move_region.lua", { "--region", "us-west-2", "192.0.2.1" })
    assert.are.equal(0, code, err)
    assert.are.equal("succeeded  192.0.2.1  aws     us-west-2         192.0.2.1", lines(out)[3])
  end)
end)

describe("scripts/delete_across_zones.lua", function()
  local OTHER = "9a7806061c88ada191ed06f989cc3dac"

  local function seed_other(n)
    local list, ips = {}, {}
    for i = 1, n do
      ips[i] = string.format("10.1.%d.%d", i // 256, i % 256)
      list[i] = { ips[i], "eu-west-1", "aws" }
    end
    fake:set_zone(OTHER, list)
    return ips
  end

  it("works on the zones at once and reports each IP with its zone", function()
    local ips = seed_other(250)
    local input = { ZONE .. " 192.0.2.1", "# a comment", "", OTHER .. ", " .. ips[1], ZONE .. "\t198.51.100.99" }
    for i = 2, 250 do input[#input + 1] = OTHER .. " " .. ips[i] end
    fake:clear_stats()
    fake:options { latency = 0.05 } -- so that the zones' requests overlap at the server
    local out, err, code = run("delete_across_zones.lua", { "--format", "jsonl" }, table.concat(input, "\n") .. "\n")
    fake:options { latency = 0 }
    assert.are.equal(3, code, err)
    local by_zone, failed = {}, {}
    for _, l in ipairs(lines(out)) do
      local row = cjson.decode(l)
      by_zone[row.zone] = (by_zone[row.zone] or 0) + 1
      if row.status == "failed" then failed[#failed + 1] = row.zone .. " " .. row.origin_ip .. " " .. row.error end
    end
    assert.are.same({ [ZONE] = 2, [OTHER] = 250 }, by_zone)
    assert.are.same({ ZONE .. " 198.51.100.99 mapping not found" }, failed)
    assert.are.equal(0, #fake:zone(OTHER))
    assert.are.equal(#SEED - 1, #fake:zone(ZONE))
    -- both zones at once, and the other zone's three batches at once: four requests
    assert.are.equal(4, fake:stats().peak_in_flight)
  end)

  it("goes on with the other zones when one fails, then exits 4 naming it and what is pending", function()
    local ips = seed_other(3)
    fake:fault { match = { method = "DELETE", path = OTHER }, status = 500, times = 3,
      errors = { { code = 1141, message = INTERNAL } } }
    local input = ZONE .. " 192.0.2.1\n" .. OTHER .. " " .. table.concat(ips, "\n" .. OTHER .. " ") .. "\n"
    local out, err, code = run("delete_across_zones.lua", {}, input)
    assert.are.equal(4, code, err)
    assert.are.same({
      "delete_across_zones.lua: zone " .. OTHER .. ": HTTP 500: [1141] " .. INTERNAL,
      "delete_across_zones.lua: zone " .. OTHER .. ": 3 IP(s) pending " .. PENDING .. table.concat(ips, " "),
    }, lines(err))
    assert.are.equal("2 zone(s): 1 deleted, 0 failed, 3 pending, 0 unsent", lines(out)[#lines(out)])
    assert.are.equal(#SEED - 1, #fake:zone(ZONE))
    assert.are.equal(3, #fake:zone(OTHER))
  end)

  it("names per zone the IPs left pending and those left unsent, and counts them apart", function()
    local THIRD = "7b1e1d2c3a4f5e6d7c8b9a0f1e2d3c4b"
    local ips = seed_many(250, 1, OTHER)
    local third = seed_many(2, 2, THIRD)
    fake:fault { match = { method = "DELETE", path = OTHER }, skip = 1, status = 500, times = 3,
      errors = { { code = 1141, message = INTERNAL } } }
    refuse("DELETE", { match = { method = "DELETE", path = THIRD } })
    local input = { ZONE .. " 192.0.2.1", THIRD .. " " .. third[1], THIRD .. " " .. third[2] }
    for _, ip in ipairs(ips) do input[#input + 1] = OTHER .. " " .. ip end
    local out, err, code = run("delete_across_zones.lua", { "--concurrency", "1" }, table.concat(input, "\n"))
    assert.are.equal(4, code, err)
    local p = "delete_across_zones.lua: zone "
    assert.are.same({
      p .. THIRD .. ": HTTP 403: [10000] Authentication error",
      p .. THIRD .. ": 2 IP(s) unsent " .. UNSENT .. table.concat(third, " "),
      p .. OTHER .. ": HTTP 500: [1141] " .. INTERNAL,
      p .. OTHER .. ": 100 IP(s) pending " .. PENDING .. table.concat(ips, " ", 101, 200),
      p .. OTHER .. ": 50 IP(s) unsent " .. UNSENT .. table.concat(ips, " ", 201, 250),
    }, unhinted(err))
    local o = lines(out)
    assert.are.equal("3 zone(s): 101 deleted, 0 failed, 100 pending, 52 unsent", o[#o])
    assert.are.same(slice(ips, 101, 250), zone_ips(OTHER))
    assert.are.same(third, zone_ips(THIRD))
    assert.are.equal(#SEED - 1, #fake:zone(ZONE))
  end)

  it("after SIGINT, lists the zone in flight as pending and the zones never started as unsent", function()
    local THIRD = "7b1e1d2c3a4f5e6d7c8b9a0f1e2d3c4b"
    local ips = seed_other(2)
    local third = seed_many(1, 2, THIRD)
    fake:clear_stats()
    fake:options { latency = 2 } -- the first zone's DELETE is applied on arrival, answered later
    local input = H.tempfile(ZONE .. " 192.0.2.1\n" .. OTHER .. " " .. ips[1] .. "\n" .. OTHER .. " " .. ips[2]
      .. "\n" .. THIRD .. " " .. third[1] .. "\n")
    local pid, wait = start("delete_across_zones.lua", { "--zones", "1", input })
    local deadline = socket.gettime() + 10
    while fake:stats().in_flight < 1 and socket.gettime() < deadline do socket.sleep(0.01) end
    os.execute("kill -INT " .. pid)
    local out, err, code = wait()
    fake:options { latency = 0 }
    os.remove(input)
    assert.are.equal(130, code, err)
    local o = lines(out)
    assert.are.same({
      ZONE .. "  pending  192.0.2.1",
      OTHER .. "  unsent   " .. ips[1],
      OTHER .. "  unsent   " .. ips[2],
      THIRD .. "  unsent   " .. third[1],
      "3 zone(s): 0 deleted, 0 failed, 1 pending, 3 unsent",
    }, slice(o, 3, 7))
    local e = lines(err)
    local p = "delete_across_zones.lua: zone "
    assert.are.equal(6, #e, err)
    assert.matches("^" .. p .. ZONE .. ": ", e[1])
    assert.are.equal(p .. ZONE .. ": 1 IP(s) pending " .. PENDING .. "192.0.2.1", e[2])
    assert.matches("^" .. p .. OTHER .. ": not started", e[3])
    assert.are.equal(p .. OTHER .. ": 2 IP(s) unsent " .. UNSENT .. table.concat(ips, " "), e[4])
    assert.matches("^" .. p .. THIRD .. ": not started", e[5])
    assert.are.equal(p .. THIRD .. ": 1 IP(s) unsent " .. UNSENT .. third[1], e[6])
    -- the pending IP was in fact deleted (its answer never came); the unsent ones are all there
    assert.are.equal(#SEED - 1, #fake:zone(ZONE))
    assert.are.same(ips, zone_ips(OTHER))
    assert.are.same(third, zone_ips(THIRD))
  end)

  it("refuses malformed lines and bad options with status 2, before any request", function()
    local _, err, code = run("delete_across_zones.lua", {}, ZONE .. " 192.0.2.1\nzone/x 192.0.2.2\n" .. ZONE .. "\n")
    assert.are.equal(2, code)
    assert.are.same({ 'stdin:2: expected ZONE_ID IP, got "zone/x 192.0.2.2"',
      'stdin:3: expected ZONE_ID IP, got "' .. ZONE .. '"',
      "delete_across_zones.lua: 2 malformed line(s), nothing was deleted" }, lines(err))
    _, err, code = run("delete_across_zones.lua", { "--zones", "0" }, "")
    assert.are.equal(2, code)
    assert.matches("option '%-%-zones' must be a whole number >= 1", err)
    assert.are.same({}, calls())
  end)

  it("works in the sandbox as its header shows", function()
    local out, err, code = sandbox("delete_across_zones.lua", {}, ZONE .. " 192.0.2.1\n")
    assert.are.equal(0, code, err)
    assert.are.equal("1 zone(s): 1 deleted, 0 failed, 0 pending, 0 unsent", lines(out)[#lines(out)])
  end)
end)

describe("scripts/demo.lua", function()
  it("--dry-run marks every row would_delete and deletes nothing", function()
    local out, err, code = run("demo.lua", { "--dry-run", "192.0.2.1", "198.51.100.99" })
    assert.are.equal(0, code, err)
    assert.are.same({ "would_delete 192.0.2.1            aws    us-east-1",
      "failed   198.51.100.99        mapping not found",
      "1 would be deleted, 1 failed, 1 request(s)" }, lines(out))
    assert.are.same({ "demo.lua: dry run: nothing was deleted" }, lines(err))
    assert.are.same({}, writes())
    assert.are.same(seed_state(), state())
  end)

  it("--ignore-missing reports IPs with no mapping as absent, apart, and a second run exits 0", function()
    local out, err, code = run("demo.lua", { "--ignore-missing", "192.0.2.1", "198.51.100.99" })
    assert.are.equal(0, code, err)
    assert.are.same({ "deleted  192.0.2.1            aws    us-east-1",
      "absent   198.51.100.99        (had no mapping)",
      "1 deleted, 0 failed, 1 already absent, 2 request(s)" }, lines(out))
    assert.are.same({ "GET /", "DELETE /batch" }, calls())
    out, err, code = run("demo.lua", { "--ignore-missing", "192.0.2.1", "198.51.100.99" })
    assert.are.equal(0, code, err)
    assert.are.equal("0 deleted, 0 failed, 2 already absent, 1 request(s)", lines(out)[3])
  end)

  it("prints the pending and the unsent IPs each on a line of their own, then exits 4", function()
    local ips = seed_many(200)
    -- Both batches are in flight at once: the first request to arrive is refused (403: its
    -- IPs unsent), the other fails with 500s on every attempt (its IPs pending).
    refuse("DELETE")
    fault("DELETE")
    local out, err, code = run("demo.lua", ips)
    assert.are.equal(4, code, err)
    local order, got, other = {}, { pending = {}, unsent = {} }, {}
    for _, l in ipairs(lines(out)) do
      local ip = l:match("^pending  (%S+)%s+%(sent, not known whether it was deleted%)$")
      local status = ip and "pending"
      if not ip then
        ip = l:match("^unsent   (%S+)%s+%(certainly not deleted%)$")
        status = ip and "unsent"
      end
      if ip then
        table.insert(got[status], ip)
        if order[#order] ~= status then order[#order + 1] = status end
      else
        other[#other + 1] = l
      end
    end
    assert.are.same({ "pending", "unsent" }, order)
    assert.are.same({ "0 deleted, 0 failed, 100 pending, 100 unsent, 4 request(s)" }, other)
    local batches = { slice(ips, 1, 100), slice(ips, 101, 200) }
    local u = got.unsent[1] == ips[1] and 1 or 2 -- the refused batch
    assert.are.same(batches[u], got.unsent)
    assert.are.same(batches[3 - u], got.pending)
    local e = lines(err)
    assert.are.equal(3, #e)
    assert.matches("^demo: HTTP [45]0[03]: ", e[1])
    assert.are.equal("demo: 100 IP(s) pending: check them, or restore them from the journal", e[2])
    assert.are.equal("demo: 100 IP(s) unsent: safe to send again", e[3])
    assert.are.same(ips, zone_ips()) -- neither the 403 nor the 500s changed anything
  end)
end)

-- Issue 14: dry runs, --ignore-missing, confirmation, an undo for every run, --help.

-- The status column of each data row of CSV output: the first, or the second when `second`.
local function csv_statuses(out, second)
  local got = {}
  for i, l in ipairs(lines((out:gsub("\r", "")))) do
    if i > 1 then got[#got + 1] = second and l:match("^[^,]*,([^,]*)") or l:match("^([^,]*)") end
  end
  return got
end

describe("every deleting or editing script under --dry-run", function()
  -- name, arguments (before --format), stdin, the status of the rows that would change, how
  -- many, and the CSV column that holds the status (delete_across_zones.lua starts with zone)
  local CASES
  before_each(function()
    CASES = {
      { "delete_from_file.lua", { "--dry-run", "-" }, "192.0.2.1\n2001:db8::1\n", "would_delete", 2 },
      { "delete_across_zones.lua", { "--dry-run", "-" }, ZONE .. " 192.0.2.1\n" .. ZONE .. " 192.0.2.2\n",
        "would_delete", 2, true },
      { "delete_vendor.lua", { "--dry-run", "gcp" }, nil, "would_delete", 2 },
      { "prune.lua", { "--dry-run", "--force", "-" }, "192.0.2.1\n", "would_delete", 7 },
      { "move_region.lua", { "--dry-run", "--region", "us-west-2", "192.0.2.1", "192.0.2.2" }, nil,
        "would_update", 2 },
    }
  end)

  local function expected(case)
    local want = {}
    for i = 1, case[5] do want[i] = case[4] end
    return want
  end

  it("marks every JSON lines row as what it would do, and sends nothing that changes state", function()
    for _, case in ipairs(CASES) do
      fake:clear_requests()
      local args = { "--format", "jsonl", table.unpack(case[2]) }
      local out, err, code = run(case[1], args, case[3])
      assert.are.equal(0, code, case[1] .. ": " .. err)
      local by = ips_by_status(out)
      assert.are.equal(case[5], #(by[case[4]] or {}), case[1] .. ": " .. out)
      assert.is_nil(by.succeeded, case[1])
      assert.are.same({}, writes(), case[1])
      assert.are.same(seed_state(), state(), case[1])
    end
  end)

  it("marks every CSV row as what it would do, and sends nothing that changes state", function()
    for _, case in ipairs(CASES) do
      fake:clear_requests()
      local args = { "--format", "csv", table.unpack(case[2]) }
      local out, err, code = run(case[1], args, case[3])
      assert.are.equal(0, code, case[1] .. ": " .. err)
      assert.are.same(expected(case), csv_statuses(out, case[6]), case[1])
      assert.are.same({}, writes(), case[1])
      assert.are.same(seed_state(), state(), case[1])
    end
  end)

  it("marks every JSON item with its status, the list named by it", function()
    local out, err, code = run("delete_from_file.lua", { "--dry-run", "--format", "json", "-" },
      "192.0.2.1\n198.51.100.99\n")
    assert.are.equal(3, code, err)
    local doc = cjson.decode(out)
    assert.is_true(doc.dry_run)
    assert.is_nil(doc.value.succeeded)
    assert.are.same({ { status = "would_delete", origin_ip = "192.0.2.1", input = "192.0.2.1",
      vendor = "aws", region = "us-east-1" } }, doc.value.would_delete)
    assert.are.equal("failed", doc.value.failed[1].status)
    assert.are.same({}, writes())
    assert.are.same(seed_state(), state())
  end)

  it("restore.lua --dry-run marks its rows would_update and re-creates nothing", function()
    local journal = os.tmpname()
    local _, err, code = run("delete_from_file.lua", { "-" }, "192.0.2.1\n192.0.2.2\n",
      { CFRUN_JOURNAL = journal })
    assert.are.equal(0, code, err)
    local after = state()
    fake:clear_requests()
    local out
    out, err, code = run("restore.lua", { "--dry-run", "--format", "jsonl", journal })
    assert.are.equal(0, code, err)
    assert.are.same({ would_update = { "192.0.2.1", "192.0.2.2" } }, ips_by_status(out))
    out, err, code = run("restore.lua", { "--dry-run", "--format", "csv", journal })
    assert.are.equal(0, code, err)
    assert.are.same({ "would_update", "would_update" }, csv_statuses(out))
    os.remove(journal)
    assert.are.same({}, writes())
    assert.are.same(after, state())
  end)
end)

describe("the deleting scripts with --ignore-missing", function()
  it("delete_from_file.lua: a second run on the same list exits 0 reporting them absent; without it, 3", function()
    local list = "192.0.2.1\n2001:db8::1\n"
    local _, err, code = run("delete_from_file.lua", { "-" }, list)
    assert.are.equal(0, code, err)
    local after = state()
    fake:clear_requests()
    local out
    out, err, code = run("delete_from_file.lua", { "--ignore-missing", "--format", "jsonl", "-" }, list)
    assert.are.equal(0, code, err)
    assert.are.same({ absent = { "192.0.2.1", "2001:db8::1" } }, ips_by_status(out))
    assert.are.same({ "GET /" }, calls()) -- the listing; nothing absent is sent
    out, err, code = run("delete_from_file.lua", { "--ignore-missing", "-" }, list)
    assert.are.equal(0, code, err)
    assert.are.equal("0 deleted, 0 failed, 0 pending, 0 unsent, 2 already absent", lines(out)[#lines(out)])
    _, err, code = run("delete_from_file.lua", { "-" }, list) -- behaviour without it stays
    assert.are.equal(3, code, err)
    assert.are.same(after, state())
  end)

  it("delete_from_file.lua: deletes the present IPs, reports the absent apart, and still fails the rest", function()
    local out, err, code = run("delete_from_file.lua", { "--ignore-missing", "--format", "csv", "-" },
      "192.0.2.1\n198.51.100.99\n192.0.2.1\n")
    assert.are.equal(0, code, err)
    assert.are.equal("status,origin_ip,vendor,region,error,input\r\n"
      .. "succeeded,192.0.2.1,aws,us-east-1,,192.0.2.1\r\n"
      .. "absent,198.51.100.99,,,,198.51.100.99\r\n", out)
    assert.are.same({ "192.0.2.1" }, body_of("DELETE"))
    fault("DELETE") -- a present IP whose delete fails is no absent one
    out, err, code = run("delete_from_file.lua", { "--ignore-missing", "--format", "jsonl", "-" }, "192.0.2.2\n")
    assert.are_not.equal(0, code, err)
    assert.is_nil(ips_by_status(out).absent)
  end)

  it("delete_across_zones.lua: absent IPs per zone do not make the status 3", function()
    local input = ZONE .. " 192.0.2.1\n" .. ZONE .. " 198.51.100.99\n"
    local _, err, code = run("delete_across_zones.lua", { "--format", "jsonl", "-" }, input)
    assert.are.equal(3, code, err)
    local out
    fake:set_zone(ZONE, SEED)
    out, err, code = run("delete_across_zones.lua", { "--ignore-missing", "--format", "jsonl", "-" }, input)
    assert.are.equal(0, code, err)
    assert.are.same({ succeeded = { "192.0.2.1" }, absent = { "198.51.100.99" } }, ips_by_status(out))
    out, err, code = run("delete_across_zones.lua", { "--ignore-missing", "-" }, input)
    assert.are.equal(0, code, err)
    assert.are.equal("1 zone(s): 0 deleted, 0 failed, 0 pending, 0 unsent, 2 already absent", lines(out)[#lines(out)])
  end)
end)

describe("the deleting and editing scripts on a terminal", function()
  -- Runs scripts/<name> as run() does, on a pseudo-terminal (stdin and stderr are its tty), with
  -- `typed` as what the operator types; returns everything the terminal showed and the status.
  local function run_pty(name, args, typed)
    local q = H.shell_quote
    local parts = { "env", "-u CLOUDFLARE_EMAIL", "-u CLOUDFLARE_API_KEY", "-u CFRUN_SANDBOX_ZONE",
      "CLOUDFLARE_BASE_URL=" .. q(fake.base_url), "CLOUDFLARE_API_TOKEN=" .. q(H.TOKEN), "ZONE=" .. ZONE,
      "CFRUN_JOURNAL=", q(H.CFRUN), q(script(name)) }
    for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
    local p = io.popen(string.format("printf %s | script -qec %s /dev/null; echo \"status=$?\"",
      q(typed), q(table.concat(parts, " "))))
    local text = p:read("a")
    p:close()
    local status = tonumber(text:match("status=(%d+)%s*$"))
    return text, status
  end

  local ips, list
  before_each(function()
    ips = seed_many(150)
    list = H.tempfile(table.concat(ips, "\n") .. "\n")
  end)
  after_each(function() os.remove(list) end)

  it("shows what a large delete will do and, answered n, sends nothing and exits 2", function()
    local text, code = run_pty("delete_from_file.lua", { list }, "n\n")
    assert.are.equal(2, code, text)
    assert.truthy(text:find("delete 150 mapping(s)", 1, true), text)
    assert.truthy(text:find("vendors: aws 150", 1, true), text)
    assert.truthy(text:find("regions: us-east-1 150", 1, true), text)
    assert.truthy(text:find("IPs:     10.0.0.1 10.0.0.2", 1, true), text)
    assert.truthy(text:find("Proceed? [y/N]", 1, true), text)
    assert.truthy(text:find("not confirmed: nothing was deleted", 1, true), text)
    assert.are.same({}, writes())
    assert.are.same(ips, zone_ips())
  end)

  it("answered y, deletes", function()
    local text, code = run_pty("delete_from_file.lua", { list }, "y\n")
    assert.are.equal(0, code, text)
    assert.truthy(text:find("Proceed? [y/N]", 1, true), text)
    assert.truthy(text:find("150 deleted, 0 failed", 1, true), text)
    assert.are.same({}, zone_ips())
  end)

  it("with --yes, does not ask", function()
    local text, code = run_pty("delete_from_file.lua", { "--yes", list }, "n\n")
    assert.are.equal(0, code, text)
    assert.is_nil(text:find("Proceed?", 1, true), text)
    assert.are.same({}, zone_ips())
  end)

  it("does not ask for 100 mappings or fewer", function()
    local few = H.tempfile(table.concat(slice(ips, 1, 100), "\n") .. "\n")
    local text, code = run_pty("delete_from_file.lua", { few }, "n\n")
    os.remove(few)
    assert.are.equal(0, code, text)
    assert.is_nil(text:find("Proceed?", 1, true), text)
    assert.are.same(slice(ips, 101, 150), zone_ips())
  end)

  it("prune.lua --force asks for any share above --max-share, however few the mappings", function()
    fake:set_zone(ZONE, SEED)
    local keep = H.tempfile("192.0.2.1\n")
    local text, code = run_pty("prune.lua", { "--force", keep }, "n\n")
    assert.are.equal(2, code, text)
    assert.truthy(text:find("delete 7 mapping(s)", 1, true), text)
    assert.truthy(text:find("Proceed? [y/N]", 1, true), text)
    assert.are.same(seed_state(), state())
    text, code = run_pty("prune.lua", { "--max-share", "1", keep }, "n\n") -- within the share: no question
    os.remove(keep)
    assert.are.equal(0, code, text)
    assert.is_nil(text:find("Proceed?", 1, true), text)
    assert.are.same({ "192.0.2.1" }, zone_ips())
  end)

  it("never asks (nor blocks) under a pipe", function()
    local _, err, code = run("delete_from_file.lua", { list }, "n\n")
    assert.are.equal(0, code, err)
    assert.is_nil(err:find("Proceed?", 1, true), err)
    assert.are.same({}, zone_ips())
  end)

  it("every other deleting or editing script asks too, and answered n changes nothing", function()
    local pairs_file = H.tempfile(ZONE .. " " .. table.concat(ips, "\n" .. ZONE .. " ") .. "\n")
    local keep = H.tempfile("192.0.2.250\n")
    local journal = os.tmpname()
    local _, err, code = run("delete_from_file.lua", { list }, nil, { CFRUN_JOURNAL = journal })
    assert.are.equal(0, code, err)
    fake:set_zone(ZONE, (function()
      local l = {}
      for i, ip in ipairs(ips) do l[i] = { ip, "us-east-1", "aws" } end
      return l
    end)())
    local cases = {
      { "delete_across_zones.lua", { pairs_file }, "delete" },
      { "delete_vendor.lua", { "aws" }, "delete" },
      { "prune.lua", { "--force", keep }, "delete" },
      { "move_region.lua", { "--region", "us-west-2", "--file", list }, "update" },
      { "demo.lua", ips, "delete" },
    }
    for _, case in ipairs(cases) do
      fake:clear_requests()
      local text
      text, code = run_pty(case[1], case[2], "n\n")
      assert.are.equal(2, code, case[1] .. ": " .. text)
      assert.truthy(text:find("Proceed? [y/N]", 1, true), case[1] .. ": " .. text)
      assert.truthy(text:find("nothing was " .. case[3] .. "d", 1, true), case[1] .. ": " .. text)
      assert.are.same({}, writes(), case[1])
      assert.are.same(ips, zone_ips(), case[1])
    end
    -- restore.lua, of the journal's 150 deletions, after they happened again
    fake:set_zone(ZONE, {})
    fake:clear_requests()
    local text
    text, code = run_pty("restore.lua", { journal }, "n\n")
    assert.are.equal(2, code, text)
    assert.truthy(text:find("restore 150 mapping(s)", 1, true), text)
    assert.are.same({}, writes())
    assert.are.same({}, zone_ips())
    for _, f in ipairs { pairs_file, keep, journal } do os.remove(f) end
  end)
end)

describe("the default journal", function()
  local home -- $XDG_STATE_HOME of these runs: a directory of this spec's own
  before_each(function()
    home = os.tmpname()
    os.remove(home)
    assert(os.execute("mkdir " .. H.shell_quote(home)))
  end)
  after_each(function() os.execute("rm -r " .. H.shell_quote(home)) end)

  local function env() return { CFRUN_JOURNAL = false, XDG_STATE_HOME = home } end

  local function files(dir)
    local p = io.popen("ls -1 " .. H.shell_quote(dir) .. " 2>/dev/null")
    local out = {}
    for l in p:lines() do out[#out + 1] = l end
    p:close()
    return out
  end

  local function mode(path)
    local p = io.popen("stat -c %a " .. H.shell_quote(path))
    local m = p:read("l")
    p:close()
    return m
  end

  it("a run without options leaves a 0600 journal there, names it, and restore.lua --last undoes it", function()
    local dir = home .. "/cfrun/journal"
    local _, err, code = run("delete_from_file.lua", { "-" }, "192.0.2.1\n2001:db8::1\n", env())
    assert.are.equal(0, code, err)
    local names = files(dir)
    assert.are.equal(1, #names)
    assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ%-delete_from_file%.lua%-%x+%.jsonl$", names[1])
    assert.are.equal("delete_from_file.lua: journal: " .. dir .. "/" .. names[1]
      .. " (undo: cfrun scripts/restore.lua --last)", lines(err)[1])
    assert.are.equal("600", mode(dir .. "/" .. names[1]))
    assert.are.equal("700", mode(dir))
    assert.are.equal("700", mode(home .. "/cfrun"))
    assert.are_not.same(seed_state(), state())
    local out
    out, err, code = run("restore.lua", { "--last", "--format", "jsonl" }, nil, env())
    assert.are.equal(0, code, err)
    assert.are.same({ succeeded = { "192.0.2.1", "2001:db8::1" } }, ips_by_status(out))
    local got, want = state(), seed_state()
    table.sort(got)
    table.sort(want)
    assert.are.same(want, got) -- exactly the zone before, vendors and regions included
  end)

  it("restore.lua --last undoes a move_region.lua run: moved back, created ones deleted", function()
    -- 192.0.2.1 is aws us-east-1 in the seed; 192.0.2.99 has no mapping: --vendor creates it
    local _, err, code = run("move_region.lua", { "--vendor", "aws", "--region", "us-west-2",
      "192.0.2.1", "192.0.2.99" }, nil, env())
    assert.are.equal(0, code, err)
    assert.are_not.same(seed_state(), state())
    assert.truthy(err:find("(undo: cfrun scripts/restore.lua --last)", 1, true), err)
    local out
    out, err, code = run("restore.lua", { "--last", "--dry-run", "--format", "jsonl" }, nil, env())
    assert.are.equal(0, code, err)
    assert.are.same({ would_update = { "192.0.2.1" }, would_delete = { "192.0.2.99" } }, ips_by_status(out))
    out, err, code = run("restore.lua", { "--last", "--format", "jsonl" }, nil, env())
    assert.are.equal(0, code, err)
    assert.are.same({ succeeded = { "192.0.2.1", "192.0.2.99" } }, ips_by_status(out))
    local got, want = state(), seed_state()
    table.sort(got)
    table.sort(want)
    assert.are.same(want, got)
  end)

  it("every deleting or editing script journals by default; --no-journal, --dry-run, --journal: none there", function()
    local dir = home .. "/cfrun/journal"
    local _, err, code = run("delete_from_file.lua", { "--no-journal", "-" }, "192.0.2.1\n", env())
    assert.are.equal(0, code, err)
    assert.is_nil(err:find("journal", 1, true))
    assert.are.same({}, files(dir))
    _, err, code = run("delete_vendor.lua", { "--dry-run", "aws" }, nil, env())
    assert.are.equal(0, code, err)
    assert.are.same({}, files(dir))
    local chosen = os.tmpname()
    os.remove(chosen)
    _, err, code = run("delete_from_file.lua", { "--journal", chosen, "-" }, "192.0.2.2\n", env())
    assert.are.equal(0, code, err)
    assert.are.same({}, files(dir))
    assert.truthy(io.open(chosen)):close()
    os.remove(chosen)
    for _, case in ipairs {
      { "demo.lua", { "2001:db8::1" } },
      { "delete_vendor.lua", { "oci" } },
      { "prune.lua", { "--force", "-" }, "192.0.2.3\n" },
      { "move_region.lua", { "--region", "us-west-2", "192.0.2.3" } },
      { "delete_across_zones.lua", { "-" }, ZONE .. " 192.0.2.3\n" }, -- last: prune spared it
    } do
      local before = #files(dir)
      _, err, code = run(case[1], case[2], case[3], env())
      assert.are.equal(0, code, case[1] .. ": " .. err)
      local names = files(dir)
      assert.are.equal(before + 1, #names, case[1])
      assert.truthy(err:find(case[1] .. ": journal: " .. dir .. "/", 1, true), case[1] .. ": " .. err)
    end
  end)

  it("keeps the journals bounded: the newest 100, none older than 30 days", function()
    local dir = home .. "/cfrun/journal"
    assert(os.execute("mkdir -p " .. H.shell_quote(dir)))
    local old = "20200101T000000Z-prune.lua-000001.jsonl"
    local names = { old }
    local day = os.date("!%Y%m%d", os.time() - 86400) -- yesterday: within 30 days, before this run
    for i = 1, 100 do names[#names + 1] = string.format("%sT%06dZ-x.lua-%06x.jsonl", day, i - 1, i) end
    for _, n in ipairs(names) do assert(io.open(dir .. "/" .. n, "w")):close() end
    local _, err, code = run("delete_from_file.lua", { "-" }, "192.0.2.1\n", env())
    assert.are.equal(0, code, err)
    local now = files(dir)
    assert.are.equal(100, #now)
    assert.is_nil(io.open(dir .. "/" .. old))       -- older than 30 days
    assert.is_nil(io.open(dir .. "/" .. names[2]))  -- the oldest beyond the newest 100
    assert.matches("delete_from_file", now[#now])
  end)
end)

describe("--help of every script", function()
  -- every option each script accepts (what its cli.parse table holds), checked apart from it
  local ACCEPTS = {
    ["delete_from_file.lua"] = { "zone", "format", "skip-invalid", "dry-run", "ignore-missing", "concurrency",
      "yes", "journal", "no-journal" },
    ["delete_across_zones.lua"] = { "zones", "concurrency", "format", "dry-run", "ignore-missing", "yes",
      "journal", "no-journal" },
    ["delete_vendor.lua"] = { "zone", "region", "region-match", "cidr", "dry-run", "format", "concurrency",
      "yes", "journal", "no-journal" },
    ["prune.lua"] = { "zone", "dry-run", "max-share", "force", "format", "concurrency", "yes", "journal",
      "no-journal" },
    ["move_region.lua"] = { "zone", "region", "vendor", "dry-run", "format", "file", "concurrency", "yes",
      "journal", "no-journal" },
    ["restore.lua"] = { "zone", "since", "dry-run", "format", "yes", "last" },
    ["report.lua"] = { "zone", "format" },
  }

  it("lists every option the script accepts, each with its help, and no other", function()
    for name, accepted in pairs(ACCEPTS) do
      local out, err, code = run(name, { "--help" })
      assert.are.equal(0, code, name .. ": " .. err)
      local listed, text = {}, lines(out)
      for i, l in ipairs(text) do
        local opt = l:match("^  %-%-([%w-]+)")
        if opt then
          listed[#listed + 1] = opt
          -- its help: after the option (and its argument) on the line, or on the next line
          local help = l:match("^  %-%-[%w-]+ ?[%u.]*%s%s+(%S.*)$")
            or (text[i + 1] or ""):match("^%s%s%s%s+(%S.*)$")
          assert.truthy(help and #help > 10, name .. ": --" .. opt .. " has no help: " .. l)
        end
      end
      table.sort(listed)
      local want = table.move(accepted, 1, #accepted, 1, {})
      table.sort(want)
      assert.are.same(want, listed, name)
      -- the usage line names each of them too
      for _, opt in ipairs(accepted) do
        assert.truthy(lines(out)[1]:find("--" .. opt, 1, true), name .. ": usage lacks --" .. opt)
      end
    end
    assert.are.same({}, calls())
  end)

  it("accepts every option its --help lists (none is unknown to the parser)", function()
    for name, accepted in pairs(ACCEPTS) do
      for _, opt in ipairs(accepted) do
        local _, err = run(name, { "--" .. opt .. "=x", "--help" })
        assert.is_nil(err:find("unknown option", 1, true), name .. " --" .. opt .. ": " .. err)
      end
    end
  end)
end)
