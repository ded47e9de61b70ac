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
    assert.are.equal("incomplete", l.outcome)
    assert.are.equal(1, l.pending) -- a 5xx may have been applied: pending, not unsent
    assert.are.equal(0, l.unsent)
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

-- The lock (runtime/cf_lock.c): what another local user could prepare at a lock's path or
-- in the default lock directory must neither be written through nor stop the job silently.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end
local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end
local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
local q = H.shell_quote

-- Like H.run, but killed after `secs` seconds (status 137), so a lock open that blocks fails
-- the spec instead of hanging busted.
local function run_bounded(args, extra, secs)
  local out, err = os.tmpname(), os.tmpname()
  local parts, sets = { "timeout -s KILL " .. (secs or 20), "env" }, {}
  for k, v in pairs(env(extra)) do -- env takes its -u options before any NAME=VALUE
    if v == false then parts[#parts + 1] = "-u " .. k else sets[#sets + 1] = k .. "=" .. q(v) end
  end
  table.move(sets, 1, #sets, #parts + 1, parts)
  parts[#parts + 1] = q(H.CFRUN)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local _, _, code = os.execute(table.concat(parts, " ") .. " </dev/null >" .. out .. " 2>" .. err)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return o, e, code
end

-- A fresh directory to serve as XDG_RUNTIME_DIR, so the default lock directory is <it>/cfrun.
local function runtime_dir()
  local d = dir .. "/xdg-" .. tostring(math.random(1, 1e9))
  assert(os.execute("mkdir -m 700 " .. q(d)))
  return d, d .. "/cfrun"
end

describe("the job lock", function()
  it("refuses a --lock that is a symlink, leaving the file it names unchanged and uncreated", function()
    local victim = dir .. "/victim.txt"
    spit(victim, "the victim's data\n")
    local link = dir .. "/link.lock"
    assert(os.execute("ln -sf " .. q(victim) .. " " .. q(link)))
    local _, err, code = run_bounded({ "--job", "--lock", link, DELETE, "192.0.2.1" })
    assert.are.equal(2, code, err)
    assert.matches("the lock " .. link:gsub("%p", "%%%0") .. " is a symbolic link, not a regular file", err)
    assert.are.equal("the victim's data\n", slurp(victim))
    assert.are.equal(2, #fake:zone(ZONE)) -- the job did not run
    -- a dangling link: O_CREAT would have made the file it names
    local absent = dir .. "/absent.txt"
    assert(os.execute("ln -sf " .. q(absent) .. " " .. q(link)))
    _, err, code = run_bounded({ "--job", "--lock", link, DELETE, "192.0.2.1" })
    assert.are.equal(2, code, err)
    assert.is_nil(slurp(absent), "the link's target was created")
    os.remove(link)
    os.remove(victim)
  end)

  it("refuses a --lock that is a FIFO, a directory or a device, without blocking", function()
    local fifo, sub = dir .. "/fifo.lock", dir .. "/dir.lock"
    assert(os.execute("mkfifo " .. q(fifo) .. " && mkdir " .. q(sub)))
    for path, kind in pairs { [fifo] = "a FIFO", [sub] = "a directory", ["/dev/null"] = "a device" } do
      local t0 = socket.gettime()
      local _, err, code = run_bounded({ "--job", "--lock", path, DELETE, "192.0.2.1" }, nil, 10)
      assert.are.equal(2, code, path .. ": " .. err)
      assert.is_true(socket.gettime() - t0 < 5, path .. ": took too long")
      assert.matches("the lock " .. path:gsub("%p", "%%%0") .. " is " .. kind .. ", not a regular file", err)
      assert.are.equal(2, #fake:zone(ZONE), path .. ": the job ran")
    end
    assert.are.equal("", sh("ls -A " .. q(sub))) -- nothing was put in the directory
    os.remove(fifo)
    os.remove(sub)
  end)

  it("never truncates a lock; writes its pid hint only over an earlier hint", function()
    local lock = dir .. "/notes.lock"
    local content = "an operator's notes\nthat must survive\n"
    spit(lock, content)
    local pid_script = H.tempfile('print((io.open("/proc/self/stat"):read("l"):match("^%d+")))')
    local _, err, code = H.run({ "--job", "--lock", lock, pid_script }, { env = env() })
    assert.are.equal(0, code, err)
    assert.are.equal(content, slurp(lock))
    -- an older cfrun's shorter hint is overwritten in place by this run's fixed-width one
    spit(lock, "4194303\n")
    local out
    out, err, code = H.run({ "--job", "--lock", lock, pid_script }, { env = env() })
    assert.are.equal(0, code, err)
    local pid = assert(tonumber(out:match("^(%d+)\n$")), out)
    assert.are.equal(string.format("%-20d\n", pid), slurp(lock))
    os.remove(lock)
    os.remove(pid_script)
  end)

  it("makes the default lock directory 0700 and refuses it once group or others can write it", function()
    local xdg, ldir = runtime_dir()
    local _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(0, code, err)
    assert.are.equal("700", sh("stat -c %a " .. q(ldir)))
    -- the job's lock and, as the rate budget's state is kept there too, its file (0600), and
    -- the stamp of the last prune of stale budgets
    local names = sh("LC_ALL=C ls -A " .. q(ldir))
    assert.matches("^%.prune%-rate%-\n[^\n]+%.lock\nrate%-%x+%-1200%-300%.json$", names)
    assert.are.equal("600", sh("stat -c %a " .. q(ldir) .. "/rate-*"))
    for _, mode in ipairs { "777", "720", "702" } do
      assert(os.execute("rm -rf " .. q(ldir) .. " && mkdir " .. q(ldir) .. " && chmod " .. mode .. " " .. q(ldir)))
      fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
      _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env { XDG_RUNTIME_DIR = xdg } })
      assert.are.equal(2, code, mode .. ": " .. err)
      assert.matches("the lock directory " .. ldir:gsub("%p", "%%%0")
        .. " is writable by group or others %(mode 0" .. mode .. "%).*chmod 700", err)
      assert.are.equal("", sh("ls -A " .. q(ldir)), mode .. ": a lock was made in it")
      assert.are.equal(1, #fake:zone(ZONE), mode .. ": the job ran")
    end
    os.execute("rm -rf " .. q(xdg))
  end)

  it("refuses a default lock directory owned by another user", function()
    if sh("id -u") ~= "0" then
      pending("needs root, to make a directory owned by nobody (CI runs the specs as root)")
      return
    end
    local xdg, ldir = runtime_dir()
    assert(os.execute("mkdir -m 700 " .. q(ldir) .. " && chown 65534 " .. q(ldir)))
    local _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(2, code, err)
    assert.matches("the lock directory " .. ldir:gsub("%p", "%%%0")
      .. " is owned by [^,]*uid 65534%)? rather than by you, [^,]*uid 0%)?, .*remove it", err)
    assert.are.equal("", sh("ls -A " .. q(ldir)))
    assert.are.equal(2, #fake:zone(ZONE)) -- the job did not run
    os.execute("rm -rf " .. q(xdg))
  end)

  it("refuses a default lock directory that is a symlink or not a directory", function()
    local xdg, ldir = runtime_dir()
    local elsewhere = xdg .. "/elsewhere"
    assert(os.execute("mkdir -m 700 " .. q(elsewhere) .. " && ln -s " .. q(elsewhere) .. " " .. q(ldir)))
    local _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(2, code, err)
    assert.matches("the lock directory " .. ldir:gsub("%p", "%%%0") .. " is a symbolic link, not a directory", err)
    assert.are.equal("", sh("ls -A " .. q(elsewhere))) -- no lock made through the link
    os.remove(ldir)
    spit(ldir, "a file\n")
    _, err, code = H.run({ "--job", DELETE, "192.0.2.1" }, { env = env { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(2, code, err)
    assert.matches("the lock directory " .. ldir:gsub("%p", "%%%0") .. " is a regular file, not a directory", err)
    assert.are.equal("a file\n", slurp(ldir))
    assert.are.equal(2, #fake:zone(ZONE)) -- the job never ran
    os.execute("rm -rf " .. q(xdg))
  end)
end)

describe("cfrun --every", function()
  it("runs each time in a fresh Lua state, and stops on SIGTERM with status 143", function()
    local s = H.tempfile("counter = (counter or 0) + 1 print('run', counter) io.stdout:flush()")
    local out, pidfile = os.tmpname(), os.tmpname()
    local e = {}
    for k, v in pairs(env()) do if v then e[#e + 1] = k .. "=" .. H.shell_quote(v) end end
    os.execute(string.format("env %s %s --every 1s %s >%s 2>%s.err & echo $! > %s",
      table.concat(e, " "), H.shell_quote(H.CFRUN), s, out, out, pidfile))
    local f = io.open(pidfile)
    local pid = f:read("l")
    f:close()
    -- three runs logged (waited for, not timed: under valgrind a run takes far longer)
    local t1 = socket.gettime()
    while #log_lines((slurp(out .. ".err") or ""):match("^.*\n") or "") < 3 and H.alive(pid)
      and socket.gettime() - t1 < 60 do
      socket.sleep(0.02)
    end
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

  -- Between runs the previous run's Lua state is closed: a SIGTERM there must reach nothing
  -- of it (valgrind.sched runs this spec under memcheck, which sees a write into it).
  it("exits 143 on a SIGTERM between runs, with one log line per run", function()
    local s = H.tempfile("print('run') io.stdout:flush()")
    local out, pidfile, statusfile = os.tmpname(), os.tmpname(), os.tmpname()
    local e = {}
    for k, v in pairs(env()) do if v then e[#e + 1] = k .. "=" .. q(v) end end
    -- a shell that waits for cfrun, so its exit status can be read afterwards
    os.execute(string.format("sh -c %s >/dev/null 2>&1 &", q(string.format(
      "env %s %s --every 1s %s >%s 2>%s.err & echo $! >%s; wait $!; echo $? >%s.done; mv %s.done %s",
      table.concat(e, " "), q(H.CFRUN), s, out, out, pidfile, statusfile, statusfile, statusfile))))
    local function logged() -- complete lines only: cfrun may be writing the next one
      return #log_lines((slurp(out .. ".err") or ""):match("^.*\n") or "")
    end
    local t0 = socket.gettime()
    while logged() < 2 and not slurp(statusfile):find("%d") and socket.gettime() - t0 < 60 do
      socket.sleep(0.02)
    end
    assert.are.equal(2, logged(), "two runs did not finish in time")
    -- the second run has logged, the third is a second away: cfrun is sleeping between runs
    local pid = assert(tonumber(slurp(pidfile):match("%d+")))
    os.execute("kill -TERM " .. pid)
    t0 = socket.gettime()
    local status
    repeat
      status = slurp(statusfile)
      if status and status ~= "" then break end
      socket.sleep(0.02)
    until socket.gettime() - t0 > 30
    assert.are.equal("143\n", status, slurp(out .. ".err"))
    local text = slurp(out)
    local runs = select(2, text:gsub("run\n", ""))
    assert.are.equal(2, runs, text)
    local lines = log_lines(slurp(out .. ".err"))
    assert.are.equal(runs, #lines)
    for _, l in ipairs(lines) do assert.are.equal(0, l.status) end
    for _, p in ipairs { out, out .. ".err", pidfile, statusfile, s } do os.remove(p) end
  end)

  it("stops after --max-failures consecutive failed runs with the last status", function()
    local _, err, code = H.run({ "--every", "1s", "--max-failures", "3", DELETE, "203.0.113.1" },
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
    -- the listing went through once the intent is journaled; then the DELETE is held by the delay
    local t1 = socket.gettime()
    while not (slurp(journal) or ""):find('"phase"%s*:%s*"intent"') and socket.gettime() - t1 < 60 do
      socket.sleep(0.02)
    end
    socket.sleep(0.3)
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
