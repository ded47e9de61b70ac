-- spec/progress_spec.lua: lua/cloudflare/progress.lua, the progress line of bulk calls on
-- stderr: first in this process, with a stand-in terminal (core.isatty, core.now and io.stderr
-- replaced) and a transport table; then for real, cfrun in a pseudo-terminal (script(1))
-- against the fake API: what the terminal was sent, and that nothing is drawn without one.
local H = require "spec.helper"
local core = require "cloudflare.core"
local progress = require "cloudflare.progress"

local q = H.shell_quote
local CLEAR = "\r\27[K" -- back to the start of the line and erase it

-- The draws in `out`: what follows each CLEAR up to the next one (after the last CLEAR of a
-- line that was cleared: "", or whatever the program wrote next).
local function draws(out)
  local list, i = {}, out:find(CLEAR, 1, true)
  while i do
    local j = out:find(CLEAR, i + #CLEAR, true)
    list[#list + 1] = out:sub(i + #CLEAR, (j or #out + 1) - 1)
    i = j
  end
  return list
end

describe("cloudflare.progress, in this process", function()
  local saved, clock, written, flushes, ttys

  before_each(function()
    saved = { isatty = core.isatty, quiet = core.quiet, now = core.now, stderr = io.stderr }
    clock, written, flushes, ttys = 100, {}, 0, {}
    core.isatty = function(fd)
      ttys[#ttys + 1] = fd
      return true
    end
    core.quiet = false
    core.now = function() return clock end
    rawset(io, "stderr", { -- what progress.lua writes to, looked up on each write
      write = function(self, ...)
        for _, s in ipairs { ... } do written[#written + 1] = s end
        return self
      end,
      flush = function(self) flushes = flushes + 1; return self end,
    })
  end)

  after_each(function()
    core.isatty, core.quiet, core.now = saved.isatty, saved.quiet, saved.now
    rawset(io, "stderr", saved.stderr)
  end)

  local function out() return table.concat(written) end

  it("draws at the start: the call's name, none of the total IPs done, no requests", function()
    local p = progress.start("bulk_delete", 300, {})
    assert.are.same({ 2 }, ttys) -- asks whether stderr is a terminal, not stdout
    assert.are.equal(CLEAR .. "cfrun: bulk_delete 0/300 IPs, 0 requests, 0.0 req/s", out())
    assert.are.equal(1, flushes)
    assert.are.equal("function", type(p.update))
  end)

  it("redraws the line on each update with the rate so far and an ETA at that pace", function()
    local p = progress.start("bulk_update", 300, {})
    clock = 101
    p:update(0, 2) -- the listing's requests, before any IP is done: no ETA yet
    clock = 102
    p:update(100, 4)
    clock = 104
    p:update(300, 6) -- all done: no ETA any more
    assert.are.same({
      "cfrun: bulk_update 0/300 IPs, 0 requests, 0.0 req/s",
      "cfrun: bulk_update 0/300 IPs, 2 requests, 2.0 req/s",
      "cfrun: bulk_update 100/300 IPs, 4 requests, 2.0 req/s, ETA 4 s",
      "cfrun: bulk_update 300/300 IPs, 6 requests, 1.5 req/s",
    }, draws(out()))
    assert.is_nil(out():find("\n", 1, true))
    assert.are.equal(4, flushes)
  end)

  it("shows a wait through the transport's hook, and passes it on to the hook there was", function()
    local calls = {}
    local function hook(secs, reason) calls[#calls + 1] = { secs, reason } end
    local transport = { on_wait = hook }
    local p = progress.start("bulk_delete", 500, transport)
    assert.are_not.equal(hook, transport.on_wait)
    clock = 104
    p:update(200, 2)
    transport.on_wait(2.54, "client rate budget of 2 requests per 1 s")
    assert.are.same({ { 2.54, "client rate budget of 2 requests per 1 s" } }, calls)
    clock = 107
    p:update(300, 3)
    assert.are.same({
      "cfrun: bulk_delete 0/500 IPs, 0 requests, 0.0 req/s",
      "cfrun: bulk_delete 200/500 IPs, 2 requests, 0.5 req/s, ETA 6 s",
      "cfrun: bulk_delete 200/500 IPs, 2 requests, 0.5 req/s, ETA 6 s, waiting 2.5 s for rate limit",
      "cfrun: bulk_delete 300/500 IPs, 3 requests, 0.4 req/s, ETA 5 s", -- the wait is over
    }, draws(out()))
  end)

  it("clears the line when done and gives the transport its hook back; a second done does nothing", function()
    local function hook() end
    local transport = { on_wait = hook }
    local p = progress.start("bulk_delete", 300, transport)
    p:update(300, 3)
    local before = #written
    p:done()
    assert.are.equal(hook, transport.on_wait)
    assert.are.equal(CLEAR, table.concat(written, "", before + 1))
    local n, f = #written, flushes
    p:done()
    assert.are.equal(n, #written)
    assert.are.equal(f, flushes)
    assert.are.equal(hook, transport.on_wait)
  end)

  it("leaves no hook after done when the transport had none", function()
    local transport = {}
    local p = progress.start("bulk_delete", 300, transport)
    assert.are.equal("function", type(transport.on_wait))
    transport.on_wait(1, "the API's rate limit (a 429's Retry-After)") -- no hook to pass it on to
    assert.are.equal("cfrun: bulk_delete 0/300 IPs, 0 requests, 0.0 req/s, waiting 1.0 s for rate limit",
      draws(out())[2])
    p:done()
    assert.is_nil(transport.on_wait)
  end)

  it("draws nothing and leaves the hook alone when stderr is not a terminal", function()
    core.isatty = function(fd)
      ttys[#ttys + 1] = fd
      return false
    end
    local function hook() end
    local transport = { on_wait = hook }
    local p = progress.start("bulk_delete", 300, transport)
    assert.are.equal(hook, transport.on_wait)
    p:update(100, 1)
    p:draw("waiting 1.0 s for rate limit")
    p:done()
    p:done()
    assert.are.same({ 2 }, ttys)
    assert.are.same({}, written)
    assert.are.equal(0, flushes)
    assert.are.equal(hook, transport.on_wait)
  end)

  it("draws nothing with --quiet, even on a terminal", function()
    core.quiet = true
    local transport = {}
    local p = progress.start("bulk_update", 300, transport)
    p:update(300, 3)
    p:done()
    assert.are.same({}, written)
    assert.is_nil(transport.on_wait)
  end)
end)

describe("the progress line in a terminal", function()
  local fake
  local ZONE = H.ZONE

  -- n addresses, the same in this process and in the scripts (PRELUDE's ips)
  local function ips(n)
    local list = {}
    for i = 1, n do list[i] = string.format("10.1.%d.%d", i // 256, i % 256) end
    return list
  end
  local function mapped(n)
    local m = {}
    for i, ip in ipairs(ips(n)) do m[i] = { ip, "us-east-1", "aws" } end
    return m
  end

  -- what every script starts with: its zone, ips(n), and client(opts): a client of the fake
  -- (from the environment) with a rate budget of its own
  local PRELUDE = [[
    local ZONE = os.getenv("ZONE")
    local function ips(n)
      local list = {}
      for i = 1, n do list[i] = string.format("10.1.%d.%d", i // 256, i % 256) end
      return list
    end
    local function client(o)
      o = o or {}
      o.rate_limit = o.rate_limit or { requests = 1200, per = 300, shared = false }
      return cloudflare.new(o)
    end
  ]]

  local function env_words()
    local words = { "env", "-u CFRUN_JOURNAL", "-u CFRUN_LOG", "-u CFRUN_RATE_KEY", "-u CFRUN_RATE_REDIS",
      "-u CLOUDFLARE_EMAIL", "-u CLOUDFLARE_API_KEY", "-u CLOUDFLARE_API_TOKEN_FILE",
      "CLOUDFLARE_BASE_URL=" .. q(fake.base_url), "CLOUDFLARE_API_TOKEN=" .. q(H.TOKEN), "ZONE=" .. ZONE }
    return table.concat(words, " ")
  end

  -- Runs the script `chunk` with cfrun (and opts.args before it) in a pseudo-terminal;
  -- returns everything the terminal was sent (stdout and stderr, newlines as CRLF) and the
  -- exit status. opts.stderr: a file for cfrun's stderr instead of the terminal.
  local function on_tty(chunk, opts)
    opts = opts or {}
    local file = H.tempfile(PRELUDE .. chunk)
    local args = {}
    for i, a in ipairs(opts.args or {}) do args[i] = q(a) end
    local cmd = env_words() .. " " .. q(H.CFRUN) .. " " .. table.concat(args, " ") .. " " .. q(file)
      .. (opts.stderr and " 2>" .. q(opts.stderr) or "")
    local p = assert(io.popen("SHELL=/bin/sh script -qec " .. q(cmd) .. " /dev/null </dev/null 2>&1", "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    os.remove(file)
    return out, code
  end

  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset(); fake:set_zone(ZONE, {}) end)

  local DELETE_300 = [[
    local res = assert(client().cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips(300) })
    print("deleted", #res.value.succeeded, #res.value.failed)
  ]]

  it("counts a bulk_delete of 300 IPs batch by batch, and is cleared before the script goes on", function()
    fake:set_zone(ZONE, mapped(300))
    local out, code = on_tty(DELETE_300)
    assert.are.equal(0, code, out)
    local d = draws(out)
    assert.are.equal("cfrun: bulk_delete 0/300 IPs, 0 requests, 0.0 req/s", d[1])
    assert.matches("^cfrun: bulk_delete 100/300 IPs, 1 requests, [%d.]+ req/s, ETA %d+ s$", d[2])
    assert.matches("^cfrun: bulk_delete 200/300 IPs, 2 requests, [%d.]+ req/s, ETA %d+ s$", d[3])
    assert.matches("^cfrun: bulk_delete 300/300 IPs, 3 requests, [%d.]+ req/s$", d[4])
    -- the line is erased, and what the script prints next starts on a clean line
    assert.are.equal("deleted\t300\t0\r\n", d[5])
    assert.are.equal(5, #d)
    assert.are.same({}, fake:zone(ZONE))
  end)

  it("shows the wait for the rate limit, still calls the script's on_wait, and gives it back", function()
    fake:set_zone(ZONE, mapped(300))
    local out, code = on_tty([[
      local waits = {}
      local function hook(_, reason) waits[#waits + 1] = reason end
      local c = client { on_wait = hook, rate_limit = { requests = 2, per = 1, shared = false } }
      local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips(300) })
      print("deleted", #res.value.succeeded, #waits, waits[1], c.transport.on_wait == hook)
    ]])
    assert.are.equal(0, code, out)
    local d = draws(out)
    local shown
    for _, line in ipairs(d) do
      shown = shown or line:match("^cfrun: bulk_delete %d+/300 IPs, %d+ requests, [%d.]+ req/s.*, "
        .. "(waiting [%d.]+ s for rate limit)$")
    end
    assert.truthy(shown, out)
    assert.matches("^cfrun: bulk_delete 300/300 IPs, 3 requests, [%d.]+ req/s$", d[#d - 1])
    -- the script's hook heard of every wait, and has its place back
    assert.matches("^deleted\t300\t[1-9]%d*\tclient rate budget of 2 requests per 1 s\ttrue\r\n$", d[#d])
  end)

  it("is cleared, and the hook given back, when a wait's hook raises and the call with it", function()
    fake:set_zone(ZONE, mapped(300))
    local out, code = on_tty([[
      local function hook() error("stopped in on_wait", 0) end
      local c = client { on_wait = hook, rate_limit = { requests = 2, per = 1, shared = false } }
      local ok, err = pcall(c.cache.origin_cloud_regions.bulk_delete, { zone_id = ZONE, ips = ips(300) })
      print(ok, err, c.transport.on_wait == hook)
    ]])
    assert.are.equal(0, code, out)
    local d = draws(out)
    local waited = false
    for _, line in ipairs(d) do waited = waited or line:find(", waiting [%d.]+ s for rate limit$") ~= nil end
    assert.is_true(waited, out)
    -- batches already in flight finish (and count) before the call raises, then the line goes
    assert.matches("^cfrun: bulk_delete %d+/300 IPs", d[#d - 1])
    assert.are.equal("false\tstopped in on_wait\ttrue\r\n", d[#d])
  end)

  it("is drawn for 101 IPs (two batches), and not for 100 (one request)", function()
    local out, code = on_tty([[
      local ocr = client().cache.origin_cloud_regions
      local a = assert(ocr.bulk_delete { zone_id = ZONE, ips = ips(100) })
      io.stdout:write("one batch\n"); io.stdout:flush()
      local b = assert(ocr.bulk_delete { zone_id = ZONE, ips = ips(101) })
      print(#a.value.failed, #b.value.failed)
    ]])
    assert.are.equal(0, code, out)
    local before, after = out:match("^(.-)one batch\r\n(.*)$")
    assert.are.equal("", before)
    local d = draws(after)
    assert.are.equal("cfrun: bulk_delete 0/101 IPs, 0 requests, 0.0 req/s", d[1])
    assert.matches("^cfrun: bulk_delete 101/101 IPs, 2 requests, [%d.]+ req/s$", d[#d - 1])
    assert.are.equal("100\t101\r\n", d[#d])
  end)

  it("is not drawn for a bulk call inside a task", function()
    fake:set_zone(ZONE, mapped(300))
    local out, code = on_tty([[
      local ocr = client().cache.origin_cloud_regions
      local t = cloudflare.spawn(function() return ocr.bulk_delete { zone_id = ZONE, ips = ips(300) } end)
      local res = assert(cloudflare.wait(t))
      print("deleted", #res.value.succeeded, #res.value.failed)
    ]])
    assert.are.equal(0, code, out)
    assert.are.equal("deleted\t300\t0\r\n", out)
    assert.are.same({}, fake:zone(ZONE))
  end)

  it("is not drawn with --quiet", function()
    fake:set_zone(ZONE, mapped(300))
    local out, code = on_tty(DELETE_300, { args = { "--quiet" } })
    assert.are.equal(0, code, out)
    assert.are.equal("deleted\t300\t0\r\n", out)
  end)

  it("is not drawn when only stdout is a terminal", function()
    fake:set_zone(ZONE, mapped(300))
    local err_file = H.tempfile("")
    local out, code = on_tty(DELETE_300, { stderr = err_file })
    local f = assert(io.open(err_file))
    local err = f:read("a")
    f:close()
    os.remove(err_file)
    assert.are.equal(0, code, out)
    assert.are.equal("deleted\t300\t0\r\n", out)
    assert.are.equal("", err)
  end)

  it("is not drawn without a terminal, the rate-limit wait included", function()
    fake:set_zone(ZONE, mapped(300))
    local file = H.tempfile(PRELUDE .. [[
      local c = client { rate_limit = { requests = 2, per = 1, shared = false } }
      local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips(300) })
      print("deleted", #res.value.succeeded, c.transport.stats.waits > 0)
    ]])
    local out, err, code = H.run({ file }, { env = { CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN, ZONE = ZONE, CFRUN_JOURNAL = false, CFRUN_LOG = false } })
    os.remove(file)
    assert.are.equal(0, code, err)
    assert.are.equal("deleted\t300\ttrue\n", out)
    assert.are.equal("", err)
  end)

  -- On an 80-column terminal "cfrun: bulk_delete 0/300 IPs, 0 requests, 0.0 req/s, waiting
  -- 1.0 s for rate limit" (82 characters) would wrap, and "\r\27[K" then erases only the
  -- last row: the line is cut to the terminal's width.
  it("leaves nothing on an 80-column terminal when the line would be wider", function()
    fake:set_zone(ZONE, mapped(300))
    local socket = require "socket"
    local unique = os.tmpname()
    os.remove(unique)
    local server = "cfrun-progress-" .. unique:match("[%w_]+$")
    local function tmux(args)
      local p = assert(io.popen("tmux -L " .. server .. " " .. args .. " 2>&1", "r"))
      local text = p:read("a")
      p:close()
      return text
    end
    local file = H.tempfile(PRELUDE .. [[
      local c = client { rate_limit = { requests = 2, per = 1, shared = false } }
      local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = ZONE, ips = ips(300) })
      print("deleted", #res.value.succeeded)
    ]])
    local run = env_words() .. " " .. q(H.CFRUN) .. " " .. q(file) .. '; echo "status=$?"; sleep 600'
    assert.are.equal("", tmux("new-session -d -x 80 -y 24 " .. q("sh -c " .. q(run))))
    local screen
    local stop = socket.gettime() + 10 * H.SLOW
    repeat
      socket.sleep(0.05)
      screen = tmux("capture-pane -p")
    until screen:find("status=%d") or socket.gettime() > stop
    tmux("kill-server")
    os.remove(file)
    screen = screen:gsub("%s+$", "")
    assert.matches("deleted\t?%s*300%s+status=0", screen)
    assert.is_nil(screen:find("cfrun: bulk_delete", 1, true), screen)
  end)
end)
