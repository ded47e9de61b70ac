-- spec/sched_spec.lua: runtime/cf_sched.c and the job options of cf_main.c: --job statuses,
-- the per-run JSON log line, locks, --every with fresh states and --max-failures, signals,
-- --json and the progress line. Scheduling arithmetic is in spec/c/sched_test.c.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local ZONE = H.ZONE
local INTERNAL = { { code = 1141, message = "Internal error." } }

local fake, dir
setup(function()
  fake = H.start_fake()
  dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
end)
teardown(function()
  fake:stop()
  os.execute("rm -rf " .. dir)
end)
before_each(function()
  fake:reset()
  fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "192.0.2.2", "us-east-1", "aws" } })
end)

local ENV = { ZONE = ZONE, CLOUDFLARE_API_TOKEN = H.TOKEN, CFRUN_JOURNAL = false }
local function env(extra)
  local e = { CLOUDFLARE_BASE_URL = fake.base_url, XDG_RUNTIME_DIR = dir }
  for k, v in pairs(ENV) do e[k] = v end
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local DELETE = H.tempfile([[
  local ips = { ... }
  local res, err = cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = os.getenv("ZONE"), ips = ips }
  return res and #res.value.succeeded or tostring(err)
]])

local function log_lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do
    if l:find('^{"event":"run"') then out[#out + 1] = cjson.decode(l) end
  end
  return out
end

describe("cfrun --job", function()
  it("exits 0 and logs the run when every IP was handled", function()
    local out, err, code = H.run({ "--job", "--json", DELETE, "192.0.2.1", "192.0.2.2" }, { env = env() })
    assert.are.equal(0, code, err)
    assert.are.equal("2\n", out)
    local l = log_lines(err)
    assert.are.equal(1, #l)
    assert.are.equal("success", l[1].outcome)
    assert.are.equal(0, l[1].status)
    assert.are.equal(2, l[1].succeeded)
    assert.are.equal(1, l[1].requests)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", l[1].start)
    assert.is_number(l[1].duration_s)
    assert.are.equal(DELETE:match("[^/]*$"), l[1].job)
  end)

  it("exits 3 when some IPs failed", function()
    local _, err, code = H.run({ "--job", DELETE, "192.0.2.1", "203.0.113.99" }, { env = env() })
    assert.are.equal(3, code, err)
    local l = log_lines(err)[1]
    assert.are.equal("failed_ips", l.outcome)
    assert.are.equal(1, l.succeeded)
    assert.are.equal(1, l.failed)
  end)

  it("exits 4 when a wire failure left IPs pending, counting the retries", function()
    fake:fault { status = 500, errors = INTERNAL, times = 10 }
    local _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env() })
    assert.are.equal(4, code, err)
    local l = log_lines(err)[1]
    assert.are.equal("pending", l.outcome)
    assert.are.equal(1, l.pending)
    assert.are.equal(3, l.requests)
    assert.are.equal(2, l.retries)
  end)

  it("exits 1 on a script error, with the message in the log line", function()
    local bad = H.tempfile("error('boom')")
    local _, err, code = H.run({ "--job", bad }, { env = env() })
    assert.are.equal(1, code)
    local l = log_lines(err)[1]
    assert.are.equal("script_error", l.outcome)
    assert.matches("boom", l.error)
    os.remove(bad)
  end)

  it("lets the script's own os.exit decide, also from -e", function()
    local s = H.tempfile("os.exit(9)")
    local _, err, code = H.run({ "--job", s }, { env = env() })
    assert.are.equal(9, code, err)
    assert.are.equal(9, log_lines(err)[1].status)
    _, err, code = H.run({ "--job", "-e", "os.exit(true)", s }, { env = env() })
    assert.are.equal(0, code, err)
    os.remove(s)
  end)

  it("exits 5, saying so, while another process holds the job's lock", function()
    local lock = dir .. "/held.lock"
    os.execute("flock " .. lock .. " sleep 3 >/dev/null 2>&1 &")
    socket.sleep(0.3)
    local _, err, code = H.run({ "--job", "--lock", lock, DELETE, "192.0.2.1" }, { env = env() })
    assert.are.equal(5, code)
    assert.matches("is already running %(lock .*held%.lock is held%); not starting", err)
    assert.are.equal(2, #fake:zone(ZONE)) -- nothing ran
  end)

  it("writes the log line to --log-file", function()
    local logf = dir .. "/runs.jsonl"
    local _, err, code = H.run({ "--job", "--log-file", logf, DELETE, "192.0.2.1" }, { env = env() })
    assert.are.equal(0, code, err)
    assert.are.same({}, log_lines(err))
    local f = assert(io.open(logf))
    local l = log_lines(f:read("a"))
    f:close()
    assert.are.equal(1, #l)
    assert.are.equal(1, l[1].succeeded)
  end)

  it("rejects bad scheduling options with status 2", function()
    for _, args in ipairs {
      { "--every", "soon", DELETE }, { "--cron", "* * *", DELETE }, { "--job", "--every", "1s", DELETE },
      { "--max-failures", "2", DELETE }, { "--every", "1s" }, { "--job", "-i", DELETE },
    } do
      local _, err, code = H.run(args, { env = env() })
      assert.are.equal(2, code, table.concat(args, " ") .. ": " .. err)
    end
    local _, err = H.run({ "--cron", "61 * * * *", DELETE }, { env = env() })
    assert.matches("%-%-cron: bad minute field '61'", err)
  end)
end)

describe("cfrun --every", function()
  it("runs each time in a fresh Lua state, and stops on SIGTERM with status 143", function()
    local s = H.tempfile("counter = (counter or 0) + 1 print('run', counter) io.stdout:flush()")
    local out, pidfile = os.tmpname(), os.tmpname()
    local e = {}
    for k, v in pairs(env()) do if v then e[#e + 1] = k .. "=" .. H.shell_quote(v) end end
    os.execute(string.format("env %s %s --every 200ms %s >%s 2>%s.err & echo $! > %s",
      table.concat(e, " "), H.shell_quote(H.CFRUN), s, out, out, pidfile))
    local f = io.open(pidfile)
    local pid = f:read("l")
    f:close()
    socket.sleep(0.75)
    os.execute("kill -TERM " .. pid)
    local t0 = socket.gettime()
    while H.alive(pid) and socket.gettime() - t0 < 5 do socket.sleep(0.02) end
    assert.is_false(H.alive(pid), "still running after SIGTERM")
    f = io.open(out)
    local text = f:read("a")
    f:close()
    local runs = select(2, text:gsub("run\t1\n", ""))
    assert.is_true(runs >= 3, text)
    assert.is_nil(text:find("run\t2", 1, true)) -- never the previous run's globals
    f = io.open(out .. ".err")
    assert.are.equal(runs, #log_lines(f:read("a")))
    f:close()
    os.remove(out)
    os.remove(out .. ".err")
    os.remove(pidfile)
    os.remove(s)
  end)

  it("stops after --max-failures consecutive failed runs with the last status", function()
    local _, err, code = H.run({ "--every", "100ms", "--max-failures", "3", DELETE, "203.0.113.1" },
      { env = env() })
    assert.are.equal(3, code)
    assert.are.equal(3, #log_lines(err))
    assert.matches("stopping after 3 consecutive failed runs", err)
  end)
end)

describe("signals during a run", function()
  it("SIGTERM aborts the request in flight, journals it and exits 143 promptly", function()
    fake:fault { delay = 10, match = { method = "DELETE" } }
    local journal = dir .. "/term.jsonl"
    local out, pidfile = os.tmpname(), os.tmpname()
    local e = {}
    for k, v in pairs(env { CFRUN_JOURNAL = journal }) do if v then e[#e + 1] = k .. "=" .. H.shell_quote(v) end end
    os.execute(string.format("env %s %s --job %s 192.0.2.1 >%s 2>&1 & echo $! > %s",
      table.concat(e, " "), H.shell_quote(H.CFRUN), DELETE, out, pidfile))
    local f = io.open(pidfile)
    local pid = f:read("l")
    f:close()
    socket.sleep(0.8) -- the listing went through; the DELETE is held by the delay
    local t0 = socket.gettime()
    os.execute("kill -TERM " .. pid)
    local status
    while socket.gettime() - t0 < 5 do
      if not H.alive(pid) then status = "gone" break end
      socket.sleep(0.02)
    end
    assert.are.equal("gone", status)
    f = io.open(out)
    local text = f:read("a")
    f:close()
    local l = log_lines(text)[1]
    assert.are.equal(143, l.status)
    assert.are.equal("interrupted", l.outcome)
    local records = {}
    for line in io.lines(journal) do records[#records + 1] = cjson.decode(line) end
    assert.are.equal("intent", records[1].phase)
    assert.are.equal("outcome", records[#records].phase)
    assert.are.equal("interrupted", records[#records].error.kind)
    os.remove(out)
    os.remove(pidfile)
  end)
end)

describe("the progress line", function()
  it("shows on a terminal for multi-request calls, and not with --quiet or off a terminal", function()
    local many = {}
    for i = 1, 250 do many[i] = { string.format("10.3.%d.%d", i // 256, i % 256), "us-east-1", "aws" } end
    local ips = {}
    for i, m in ipairs(many) do ips[i] = m[1] end
    local list = H.tempfile(table.concat(ips, "\n"))
    local s = H.tempfile([[
      local ips = cloudflare.iplist.read(os.getenv("LIST"))
      assert(cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = os.getenv("ZONE"), ips = ips })
    ]])
    local function run_in_pty(extra)
      fake:set_zone(ZONE, many)
      local e = {}
      for k, v in pairs(env { LIST = list }) do if v then e[#e + 1] = k .. "=" .. H.shell_quote(v) end end
      local cmd = string.format("env %s %s %s %s", table.concat(e, " "), H.shell_quote(H.CFRUN), extra, s)
      local p = io.popen("script -qec " .. H.shell_quote(cmd) .. " /dev/null")
      local text = p:read("a")
      p:close()
      return text
    end
    local shown = run_in_pty("")
    assert.matches("cfrun: bulk_delete %d+/250 IPs, %d+ requests", shown)
    assert.is_nil(run_in_pty("--quiet"):find("IPs,", 1, true))
    fake:set_zone(ZONE, many)
    local _, err = H.run({ s }, { env = env { LIST = list } })
    assert.is_nil(err:find("IPs,", 1, true))
    os.remove(list)
    os.remove(s)
  end)
end)
