-- spec/main_spec.lua: runtime/cf_main.c, the cfrun command line: arguments as lua(1) passes
-- them, -e, stdin, exit statuses, --help and --version, and --json's reach (-e chunks, the
-- scripts' CFRUN_FORMAT, a failed run's error document).
local H = require "spec.helper"
local cjson = require "cjson"

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("cfrun", function()
  it("runs a script with arg[0] and its arguments, as lua does", function()
    local path = H.tempfile("print(arg[0] == ..., select('#', ...), arg[1], arg[2], arg[-1] ~= nil)")
    local out, err, code = H.run({ path, "a b", "c" })
    assert.are.equal(0, code, err)
    assert.are.equal("false\t2\ta b\tc\ttrue\n", out)
    os.remove(path)
  end)

  it("runs -e chunks in order, before the script", function()
    local path = H.tempfile("io.write(X, ' ', select(1, ...))")
    local out, _, code = H.run({ "-e", "X = 1", "-e", "X = X + 1", path, "arg1" })
    assert.are.equal(0, code)
    assert.are.equal("2 arg1", out)
    os.remove(path)
  end)

  it("reads the script from stdin with '-'", function()
    local out, _, code = H.run({ "-", "x" }, { stdin = "io.write('stdin ', ...)" })
    assert.are.equal(0, code)
    assert.are.equal("stdin x", out)
  end)

  it("has cloudflare and cjson available as globals and modules", function()
    local out, _, code = H.run({ "-e", [[io.write(tostring(cloudflare == require "cloudflare"),
      " ", require("cjson").encode({1}))]] })
    assert.are.equal(0, code)
    assert.are.equal("true [1]", out)
  end)

  it("exits 1 with the message and a traceback on an uncaught error", function()
    local path = H.tempfile("local function f() error('boom') end\nf()\n")
    local out, err, code = H.run({ path })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^cfrun: [^\n]*:1: boom\nstack traceback:", err)
    os.remove(path)
  end)

  it("shows a cloudflare.Error raised by a script through its message", function()
    local _, err, code = H.run({ "-e", [[error(require("cloudflare.core").error{kind="api",
      message="HTTP 500: [1141] x"})]] })
    assert.are.equal(1, code)
    assert.matches("^cfrun: HTTP 500: %[1141%] x\nstack traceback:", err)
  end)

  it("exits 1 for a syntax error and for a missing script", function()
    local _, err, code = H.run({ "-e", "x = = 1" })
    assert.are.equal(1, code)
    assert.matches("unexpected symbol", err)
    _, err, code = H.run({ "/nonexistent/script.lua" })
    assert.are.equal(1, code)
    assert.matches("cannot open /nonexistent/script.lua", err)
  end)

  it("lets a script's os.exit decide the status", function()
    local _, _, code = H.run({ "-e", "os.exit(7)" })
    assert.are.equal(7, code)
  end)

  it("exits 2 for usage errors", function()
    local _, err, code = H.run({ "--no-such-option" })
    assert.are.equal(2, code)
    assert.matches("unrecognized option '%-%-no%-such%-option'", err)
    _, err, code = H.run({ "-e" })
    assert.are.equal(2, code)
    assert.matches("'%-e' needs an argument", err)
  end)

  it("prints --help and --version on stdout and exits 0", function()
    local out, _, code = H.run({ "--help" })
    assert.are.equal(0, code)
    assert.matches("usage: cfrun", out)
    assert.matches("%-%-sandbox", out)
    out, _, code = H.run({ "--version" })
    assert.are.equal(0, code)
    assert.matches("^cfrun %d+%.%d+%.%d+ %(Lua 5%.4", out)
  end)
end)

describe("cfrun --json", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "192.0.2.2", "us-east-1", "aws" } })
  end)
  local function env(extra)
    local e = { CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN,
      CFRUN_JOURNAL = false, CFRUN_FORMAT = false, ZONE = H.ZONE }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end
  local DELETE = [[return cloudflare.cache.origin_cloud_regions.bulk_delete{
    zone_id = os.getenv("ZONE"), ips = { "192.0.2.1", "not-an-ip" }, max_retries = 0 }]]

  it("prints what each -e chunk returns, one JSON document a line, as for a script", function()
    local path = H.tempfile("return { script = true }")
    local out, err, code = H.run({ "--json", "-e", "return 1, { a = {} }, 'x'", "-e", "X = 2",
      "-e", "return X", path })
    assert.are.equal(0, code, err)
    assert.are.same({ "1", '{"a":{}}', '"x"', "2", '{"script":true}' }, lines(out))
    out, err, code = H.run({ "-e", "return 1" }) -- without --json: nothing, as lua -e
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    os.remove(path)
  end)

  it("prints the result of an API call made in -e as JSON", function()
    local out, err, code = H.run({ "--json", "-e", (DELETE:gsub(", max_retries = 0", "")) },
      { env = env() })
    assert.are.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.are.equal("192.0.2.1", doc.value.succeeded[1].origin_ip)
    assert.are.equal("aws", doc.value.succeeded[1].vendor)
    assert.are.equal("not-an-ip", doc.value.failed[1].input)
    assert.are.equal(1, #lines(out))
  end)

  it("sets CFRUN_FORMAT=json for the script, its -e chunks and its child processes", function()
    local chunk = "io.write(tostring(os.getenv('CFRUN_FORMAT')), ' ') io.stdout:flush() "
      .. "os.execute('printf %s \"$CFRUN_FORMAT\"')"
    local out, err, code = H.run({ "--json", "-e", chunk }, { env = env() })
    assert.are.equal(0, code, err)
    assert.are.equal("json json", out)
    out, err, code = H.run({ "--json", "-e", chunk }, { env = env { CFRUN_FORMAT = "csv" } })
    assert.are.equal(0, code, err)
    assert.are.equal("json json", out, "--json wins over an inherited CFRUN_FORMAT")
    out, err, code = H.run({ "-e", chunk }, { env = env() })
    assert.are.equal(0, code, err)
    assert.are.equal("nil ", out, "without --json cfrun leaves CFRUN_FORMAT alone")
  end)

  -- The other half of the CFRUN_FORMAT contract: cloudflare.cli.parse takes $CFRUN_FORMAT as
  -- the default of a script's --format (an explicit --format wins).
  it("makes the example scripts print JSON, unless --format says otherwise", function()
    local report = H.SOURCE_DIR .. "/scripts/report.lua"
    local out, err, code = H.run({ "--json", "--sandbox", report }, { env = env() })
    assert.are.equal(0, code, err)
    local rows = cjson.decode(out)
    assert.are.equal("aws", rows[1].vendor)
    out, err, code = H.run({ "--json", "--sandbox", report, "--format", "csv" }, { env = env() })
    assert.are.equal(0, code, err)
    assert.matches("^vendor,region,count\r\n", out) -- CSV lines end in CRLF (RFC 4180)
    out, err, code = H.run({ "--sandbox", report }, { env = env { CFRUN_FORMAT = "csv" } })
    assert.are.equal(0, code, err)
    assert.matches("^vendor,region,count\r\n", out) -- CSV lines end in CRLF (RFC 4180)
  end)

  it("prints a failed call's error beside its partial result when -e returns nil, err, partial",
    function()
      fake:fault { status = 500, errors = { { code = 1141, message = "Internal error." } }, times = 10 }
      local out, err, code = H.run({ "--json", "-e", DELETE }, { env = env() })
      assert.are.equal(1, code, "a chunk returning nil, err fails the run")
      assert.matches("^cfrun: HTTP 500: %[1141%] Internal error%.\n", err)
      local l = lines(out)
      assert.are.equal(1, #l, out)
      local doc = cjson.decode(l[1])
      assert.are.same({ "error", "partial" }, (function()
        local keys = {}
        for k in pairs(doc) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      assert.are.equal("api", doc.error.kind)
      assert.are.equal(500, doc.error.status)
      assert.are.same({ { code = 1141, message = "Internal error." } }, doc.error.errors)
      assert.matches("^%x+", doc.error.request_id) -- the fake's cf-ray
      assert.are.equal("HTTP 500: [1141] Internal error.", doc.error.message)
      assert.are.same({ "192.0.2.1" }, doc.partial.value.pending)
      assert.are.same({}, doc.partial.value.succeeded)
      assert.are.equal("not-an-ip", doc.partial.value.failed[1].input)
    end)

  it("prints the error of a script that raises a cloudflare.Error, with the partial it carries",
    function()
      local path = H.tempfile([[
        local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete{
          zone_id = os.getenv("ZONE"), ips = { "192.0.2.2" }, max_retries = 0 }
        if not res then err.partial = partial error(err) end
      ]])
      fake:fault { status = 403, errors = { { code = 10000, message = "Authentication error" } },
        times = 10 }
      local out, err, code = H.run({ "--json", path }, { env = env() })
      assert.are.equal(1, code, err)
      assert.matches("^cfrun: HTTP 403: %[10000%] Authentication error %(check that the API token "
        .. "[^\n]*%)\nstack traceback:", err)
      local doc = cjson.decode(out)
      assert.are.equal("api", doc.error.kind)
      assert.are.equal(403, doc.error.status)
      assert.are.equal(10000, doc.error.errors[1].code)
      assert.are.same({ "192.0.2.2" }, doc.partial.value.unsent)
      os.remove(path)
    end)

  it("prints an error document with kind 'raised' and null fields for any other error", function()
    local out, err, code = H.run({ "--json", "-e", "error('boom')" })
    assert.are.equal(1, code)
    assert.matches("^cfrun: %(command line%):1: boom\nstack traceback:", err)
    assert.are.equal('{"error":{"errors":[],"kind":"raised","message":"(command line):1: boom",'
      .. '"request_id":null,"status":null},"partial":null}\n', out)
    out, err, code = H.run({ "--json", "-e", "os.exit(3)" }) -- an os.exit is no failure to report
    assert.are.equal(3, code, err)
    assert.are.equal("", out)
  end)

  it("carries the error into a job's JSON output too", function()
    local path = H.tempfile(DELETE)
    fake:fault { status = 500, errors = { { code = 1141, message = "Internal error." } }, times = 10 }
    local dir = os.tmpname()
    os.remove(dir)
    local out, err, code = H.run({ "--job", "--json", "--lock", dir .. ".lock", path },
      { env = env() })
    os.remove(dir .. ".lock")
    -- a returned wire failure is no script bug: the job's status is its IPs' (one pending)
    assert.are.equal(4, code, err)
    assert.matches('"outcome":"incomplete"', err)
    local doc = cjson.decode(out)
    assert.are.equal(500, doc.error.status)
    assert.are.same({ "192.0.2.1" }, doc.partial.value.pending)
    assert.matches('"error":"HTTP 500: %[1141%] Internal error%."', err)
    os.remove(path)
  end)
end)
