-- spec/repl_spec.lua: the interactive REPL (runtime/cf_repl.c, lua/cloudflare/repl.lua),
-- driven as a person would, in a pseudo-terminal (tmux): prompts, multi-line chunks, errors,
-- completion, pretty results from the fake API, Ctrl-C, Ctrl-D, history and help; then the
-- printer, completion and help of cloudflare.repl called directly.
local H = require "spec.helper"
local socket = require "socket"

local q = H.shell_quote
-- seconds to wait for something to appear on screen (sanitizer builds are slow, and memcheck
-- runs set CFRUN_SPEC_SLOW)
local DEADLINE = 15 * H.SLOW

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  p:close()
  return out
end

local function tempdir()
  local d = sh("mktemp -d /tmp/cfrun-repl-XXXXXX"):gsub("%s+$", "")
  assert(d:find("^/tmp/cfrun%-repl%-"), d)
  return d
end

-- every session of this file lives on one private tmux server
local SOCKET = (function()
  local unique = os.tmpname() -- a fresh file name: unique among concurrent runs
  os.remove(unique)
  return "cfrun-spec-" .. unique:match("[%w_]+$")
end)()
local function tmux(args)
  return sh("tmux -L " .. SOCKET .. " " .. args)
end

local Session = {}
Session.__index = Session
local sessions = 0

--- Starts `cfrun -i` (or opts.args) in a 200x50 pane. opts.env: name = value or false (unset);
--- the pane shows "pid=N" first, and stays open after cfrun exits, showing "status=N".
local function start(opts)
  opts = opts or {}
  sessions = sessions + 1
  local name = "s" .. sessions
  local env = { "env", "-u CLOUDFLARE_EMAIL", "-u CLOUDFLARE_API_KEY", "-u CLOUDFLARE_API_TOKEN_FILE",
    "-u CFRUN_JOURNAL", "-u CFRUN_LOG", "-u INPUTRC", "-u XDG_STATE_HOME" }
  local sets = {}
  for k, v in pairs(opts.env or {}) do
    if v ~= false then sets[#sets + 1] = k .. "=" .. q(v) end -- after every -u
  end
  table.move(sets, 1, #sets, #env + 1, env)
  local args = {}
  for i, a in ipairs(opts.args or { "-i" }) do args[i] = q(a) end
  -- the shell shows cfrun's pid (it execs cfrun), then its exit status
  local run = "echo \"pid=$$\"; exec " .. table.concat(env, " ") .. " " .. q(H.CFRUN) .. " "
    .. table.concat(args, " ")
  local cmd = "sh -c " .. q(run) .. '; echo "status=$?"; sleep 600'
  local out = tmux("new-session -d -s " .. name .. " -x 200 -y 50 " .. q(cmd))
  assert(out == "", out)
  return setmetatable({ name = name }, Session)
end

--- The whole pane, scrollback included, wrapped lines joined, without trailing spaces or
--- blank lines: the prompt "> " waiting for input is the last line, as ">".
function Session:screen()
  local text = tmux("capture-pane -p -J -S -2000 -t " .. self.name)
  return (text:gsub("[ \t]+\n", "\n"):gsub("%s+$", ""))
end

--- Types text literally (no Enter).
function Session:type(text)
  tmux("send-keys -t " .. self.name .. " -l " .. q(text))
end

--- Sends tmux key names: "Enter", "Tab", "C-c", "C-d", "Up".
function Session:keys(...)
  for _, k in ipairs { ... } do tmux("send-keys -t " .. self.name .. " " .. k) end
end

--- Types a line and presses Enter.
function Session:line(text)
  self:type(text)
  self:keys("Enter")
end

--- Where the line being typed starts (for wait's `from`): the end of the line above it.
function Session:mark()
  local text = self:screen()
  local last = 0
  for i in text:gmatch("()\n") do last = i end
  return last
end

--- Polls the screen until `pattern` (a Lua pattern) appears after position `from`; returns the
--- screen text from there, or fails with the screen after the deadline.
function Session:wait(pattern, from, deadline)
  local stop = socket.gettime() + (deadline or DEADLINE)
  local s
  repeat
    s = self:screen():sub((from or 0) + 1)
    if s:find(pattern) then return s end
    socket.sleep(0.05)
  until socket.gettime() > stop
  error(string.format("%q did not appear on screen; the screen:\n%s", pattern, s), 2)
end

--- Types a line and waits for `pattern` in what follows it.
function Session:eval(text, pattern)
  local from = self:mark()
  self:line(text)
  return self:wait(pattern, from)
end

describe("cfrun -i (in a terminal)", function()
  local fake, home
  local mappings = {
    { "192.0.2.1", "us-east-1", "aws" }, { "192.0.2.2", "us-east-1", "aws" },
    { "2001:db8::1", "us-central1", "gcp" },
  }

  local function session(opts)
    opts = opts or {}
    opts.env = opts.env or {}
    local env = { HOME = home, XDG_STATE_HOME = home .. "/.local/state", CLOUDFLARE_BASE_URL = fake.base_url,
      CLOUDFLARE_API_TOKEN = H.TOKEN }
    for k, v in pairs(env) do
      if opts.env[k] == nil then opts.env[k] = v end
    end
    local s = start(opts)
    -- the prompt, not just the banner: what is typed before readline is ready is echoed twice
    s:wait("help%(%) for the API[^\n]*\n>$")
    return s
  end

  lazy_setup(function()
    assert(os.execute("command -v tmux >/dev/null 2>&1"), "these specs need tmux (Debian package tmux)")
    fake = H.start_fake()
  end)
  lazy_teardown(function()
    local path = tmux("display-message -p '#{socket_path}'"):gsub("%s+$", "")
    tmux("kill-server")
    if path:find("^/.*" .. SOCKET:gsub("%-", "%%-") .. "$") then os.remove(path) end
    fake:stop()
  end)
  before_each(function()
    home = tempdir()
    fake:reset()
    fake:clear_faults()
    fake:set_zone(H.ZONE, mappings)
  end)
  after_each(function()
    os.execute("rm -rf " .. q(home))
  end)

  it("prints a one-line banner, the value of `1+1` and of `=1+1`", function()
    local s = session()
    assert.matches("^pid=%d+\ncfrun %d+%.%d+%.%d+ %(Lua 5%.4[^\n]*help%(%) for the API", s:screen())
    s:eval("1+1", "^> 1%+1\n2\n>$")
    s:eval("=1+1", "^> =1%+1\n2\n>$")
    s:eval('"a\\tb", nil, 2.5', '"a\\tb"%s+nil%s+2%.5\n')
  end)

  it("continues an incomplete chunk with the >> prompt, and honours _PROMPT", function()
    local s = session()
    s:eval("function f()", "\n>>$")
    s:eval("  return 40 + 2", "\n>>$")
    s:eval("end", "\n>$")
    s:eval("f()", "\n42\n")
    s:eval('_PROMPT = "cf$ "', "\ncf%$$")
    s:eval("2*3", "\n6\ncf%$$")
  end)

  it("prints an error with its traceback and goes on", function()
    local s = session()
    local out = s:eval('error("boom")', "stack traceback:")
    assert.matches("cfrun: stdin:1: boom\n", out)
    s:eval("x = = 1", "unexpected symbol")
    s:eval("1+2", "\n3\n>$")
  end)

  it("completes globals, fields, client fields and methods with Tab", function()
    local s = session()
    local from = s:mark()
    s:type("cloudflare.cache.or")
    s:keys("Tab")
    s:wait("> cloudflare%.cache%.origin_cloud_regions", from)
    s:type(".bu")
    s:keys("Tab", "Tab")
    local out = s:wait("bulk_delete%s+bulk_edit", from)
    assert.matches("cloudflare%.cache%.origin_cloud_regions%.bulk_", out)
    s:keys("C-u")
    s:eval("client = cloudflare.new{}", "\n>$")
    from = s:mark()
    s:type("client:clo")
    s:keys("Tab")
    s:wait("> client:close", from)
    s:keys("C-u")
    from = s:mark()
    s:type("client.cache.origin_cloud_regions.supp")
    s:keys("Tab")
    s:wait("> client%.cache%.origin_cloud_regions%.supported_regions", from)
    s:type("{zone_id = " .. string.format("%q", H.ZONE) .. "}.vendors.aws[1].name ~= nil")
    s:keys("Enter")
    s:wait("\ntrue\n", from)
  end)

  it("shows a listing and a bulk_delete result as aligned tables", function()
    local s = session()
    s:line("ocr = cloudflare.cache.origin_cloud_regions")
    s:line(string.format("Z = %q", H.ZONE))
    local out = s:eval("ocr.list{zone_id = Z}", "\n>$")
    assert.matches("\n3 mappings\norigin_ip%s+vendor%s+region%s+modified_on\n%-+", out)
    assert.matches("\n192%.0%.2%.1%s+aws%s+us%-east%-1", out)
    assert.matches("\n2001:db8::1%s+gcp%s+us%-central1", out)
    if H.V1 then assert.matches('id = "origin_public_cloud_region"', out) end
    assert.matches('generation = "' .. H.GENERATION .. '"', out)
    out = s:eval('ocr.bulk_delete{zone_id = Z, ips = {"192.0.2.1", "198.51.100.99", "bad"}}', "\n>$")
    assert.matches("\n1 succeeded, 2 failed, 0 pending, 0 unsent %(1 request%)\n", out)
    assert.matches("\nstatus%s+origin_ip%s+vendor%s+region%s+error%s+input\n", out)
    assert.matches("\nsucceeded%s+192%.0%.2%.1%s+aws%s+us%-east%-1%s+192%.0%.2%.1\n", out)
    assert.matches("\nfailed%s+198%.51%.100%.99%s+mapping not found", out)
    assert.matches("\nfailed%s+bad%s+invalid IP address", out)
  end)

  it("stops a slow call on Ctrl-C and shows the error and what is pending", function()
    local s = session()
    s:line(string.format("Z = %q", H.ZONE))
    fake:fault { delay = 5 }
    fake:clear_requests()
    local from = s:mark()
    s:line('cloudflare.cache.origin_cloud_regions.bulk_delete{zone_id = Z, ips = {"192.0.2.1", "192.0.2.2"}}')
    local stop = socket.gettime() + DEADLINE
    while #fake:requests() == 0 do -- the request is in flight: the fake logs it on arrival
      assert(socket.gettime() < stop, "the request never reached the fake API")
      socket.sleep(0.05)
    end
    local pressed = socket.gettime()
    s:keys("C-c")
    local out = s:wait("\n>$", from, 4)
    assert.is_true(socket.gettime() - pressed < 4.5, "Ctrl-C did not stop the transfer")
    assert.matches("nil, cloudflare%.Error: interrupted", out)
    assert.matches('kind = "interrupted"', out)
    assert.matches("\npartial: 0 succeeded, 0 failed, 2 pending", out)
    assert.matches("\npending%s+192%.0%.2%.2", out)
    -- the interrupt was consumed: the next call runs normally
    fake:clear_faults()
    s:eval("#cloudflare.cache.origin_cloud_regions.list{zone_id = Z}.value", "\n3\n>$")
  end)

  it("clears the line on Ctrl-C at the prompt and in a continuation, without exiting", function()
    local s = session()
    s:line(string.format("Z = %q", H.ZONE))
    local from = s:mark()
    s:type("abc")
    s:wait("> abc", from)
    s:keys("C-c")
    s:wait("> abc[^\n]*\n>$", from)
    s:eval("1+1", "\n2\n>$")
    from = s:mark()
    s:line("function g()")
    s:wait("\n>>$", from)
    s:keys("C-c")
    s:wait("\n>$", from)
    s:eval("g", "\nnil\n>$")
    -- no stale interrupt aborts the next request
    s:eval("#cloudflare.cache.origin_cloud_regions.list{zone_id = Z}.value", "\n3\n>$")
  end)

  it("raises 'interrupted!' in a runaway loop on Ctrl-C and returns to the prompt", function()
    local s = session()
    local from = s:mark()
    s:line("while true do end")
    socket.sleep(0.3) -- let it spin (the wait below is what is checked)
    s:keys("C-c")
    s:wait("interrupted!", from)
    s:wait("\n>$", from)
    s:eval("1+1", "\n2\n>$")
  end)

  it("exits with status 0 on Ctrl-D at an empty prompt", function()
    local s = session()
    local from = s:mark()
    s:keys("C-d")
    s:wait("\nstatus=0$", from)
  end)

  it("exits with status 143 on SIGTERM at the prompt, leaving the line on screen", function()
    local s = session()
    local pid = tonumber(s:screen():match("pid=(%d+)"))
    local from = s:mark()
    s:type("unfinished")
    s:wait("> unfinished", from)
    assert.is_true(os.execute("kill -TERM " .. pid))
    s:wait("> unfinished\nstatus=143$", from)
  end)

  it("keeps history across sessions, without empty lines or repeats", function()
    local s = session()
    s:eval("history_marker = 42", "\n>$")
    s:eval("1+1", "\n2\n>$")
    s:eval("1+1", "\n2\n>$")
    s:eval("", "^>\n>$")
    s:eval("'last'", '\n"last"\n>$')
    s:keys("C-d")
    s:wait("status=0")
    local dir = home .. "/.local/state/cfrun"
    assert.are.equal("700\n", sh("stat -c %a " .. q(dir)))
    assert.are.equal("600\n", sh("stat -c %a " .. q(dir .. "/history")))
    local f = assert(io.open(dir .. "/history"))
    local text = f:read("a")
    f:close()
    assert.are.equal("history_marker = 42\n1+1\n'last'\n", text)

    local s2 = session()
    local from = s2:mark()
    s2:keys("Up")
    s2:wait("> 'last'", from)
    s2:keys("Up", "Up")
    s2:wait("> history_marker = 42", from)
    s2:keys("Enter")
    s2:wait("\n>$", from)
    s2:eval("history_marker", "\n42\n>$")
  end)

  it("keeps no line that holds a credential in its history, in memory or in the file", function()
    local dir = home .. "/.local/state/cfrun"
    os.execute("mkdir -p " .. q(dir))
    local f = assert(io.open(dir .. "/history", "w")) -- an earlier session kept a token
    f:write('earlier = 1\nold = "' .. H.TOKEN .. '"\n')
    f:close()
    local typed = string.format("typed-secret-%08x", math.random(0, 0x7fffffff))
    local later = string.format("later-secret-%08x", math.random(0, 0x7fffffff))
    local s = session() -- CLOUDFLARE_API_TOKEN is H.TOKEN
    s:eval("kept_one = 1", "\n>$")
    s:eval('t = "' .. H.TOKEN .. '"', "\n>$") -- the environment's token
    s:eval("#t", "\n%d+\n>$")
    -- a credential the line itself registers, by creating a client with it
    s:eval('c = cloudflare.new{api_token = "' .. typed .. '", base_url = "http://127.0.0.1:9"}', "\n>$")
    -- not a secret yet, so kept; until the next line makes it one
    s:eval('later = "' .. later .. '"', "\n>$")
    s:eval('c2 = cloudflare.new{api_token = later, base_url = "http://127.0.0.1:9"}', "\n>$")
    s:eval("'last'", '\n"last"\n>$')
    -- in memory: Up walks back over the lines kept, and only those
    local from = s:mark()
    for _, line in ipairs { "'last'", "c2 = cloudflare.new{api_token = later", "#t", "kept_one = 1", "earlier = 1" } do
      s:keys("Up")
      s:wait("> " .. line:gsub("%p", "%%%0") .. "[^\n]*$", from)
    end
    s:keys("C-u", "C-d")
    s:wait("status=0")
    f = assert(io.open(dir .. "/history"))
    local text = f:read("a")
    f:close()
    assert.are.equal("earlier = 1\nkept_one = 1\n#t\n"
      .. 'c2 = cloudflare.new{api_token = later, base_url = "http://127.0.0.1:9"}\n\'last\'\n', text)
    for _, secret in ipairs { H.TOKEN, typed, later } do assert.is_nil(text:find(secret, 1, true), secret) end
  end)

  it("prints no credential: results and errors show <redacted>", function()
    local later = string.format("later-secret-%08x", math.random(0, 0x7fffffff))
    local s = session() -- CLOUDFLARE_API_TOKEN is H.TOKEN: a secret from the start
    s:eval('t = "' .. H.TOKEN .. '"', "\n>$")
    assert.matches('^> t\n"<redacted>"\n>$', s:eval("t", "\n>$"))
    assert.matches('^> { t, "x" }\n{ "<redacted>", "x" }\n>$', s:eval('{ t, "x" }', "\n>$"))
    assert.matches("\ncfrun: stdin:1: <redacted>\n", s:eval("error(t)", "\n>$"))
    s:eval('later = "' .. later .. '"', "\n>$")
    assert.matches('\n"' .. later:gsub("%p", "%%%0") .. '"\n>$', s:eval("later", "\n>$")) -- no secret yet
    s:eval('c = cloudflare.new{api_token = later, base_url = "http://127.0.0.1:9"}', "\n>$")
    assert.matches('^> later\n"<redacted>"\n>$', s:eval("later", "\n>$"))
  end)

  it("keeps history in ~/.cfrun_history when XDG_STATE_HOME is unset", function()
    local s = session { env = { XDG_STATE_HOME = false } }
    s:eval("in_home = 1", "\n>$")
    s:keys("C-d")
    s:wait("status=0")
    local f = assert(io.open(home .. "/.cfrun_history"))
    assert.are.equal("in_home = 1\n", f:read("a"))
    f:close()
  end)

  it("has help() for the API and help(fn) for any function, bound to a client or not", function()
    local s = session()
    local out = s:eval("help()", "\n>$")
    assert.matches("cloudflare%.new", out)
    assert.matches("bulk_delete{zone_id=, ips=", out)
    assert.matches("supported_regions", out)
    assert.matches("cloudflare%.select", out)
    assert.matches("cloudflare%.report", out)
    out = s:eval("help(cloudflare.cache.origin_cloud_regions.bulk_delete)", "\n>$")
    assert.matches("\ncloudflare%.cache%.origin_cloud_regions%.bulk_delete{zone_id=, ips=", out)
    assert.matches("\n  Deletes the mappings of any number of IPs", out)
    s:line("c = cloudflare.new{}")
    out = s:eval("help(c.cache.origin_cloud_regions.bulk_delete)", "\n>$")
    assert.matches("\nclient%.cache%.origin_cloud_regions%.bulk_delete{zone_id=", out)
    out = s:eval("help(cloudflare.ip.canonical)", "\n>$")
    assert.matches("\ncloudflare%.ip%.canonical%(s%)", out)
    out = s:eval("help(print)", "\n>$")
    assert.matches("no help for", out)
  end)

  it("never shows credentials: a client prints through its __tostring, secret fields redacted", function()
    local s = session()
    local out = s:eval("cloudflare.default_client()", "\n>$")
    assert.matches("\ncloudflare%.Client %(api token, http://127%.0%.0%.1:%d+/client/v4%): 0x%x+\n", out)
    out = s:eval('{ client = cloudflare.default_client(), config = { api_token = os.getenv("CLOUDFLARE_API_TOKEN"), '
      .. 'headers = { Authorization = "Bearer " .. os.getenv("CLOUDFLARE_API_TOKEN") } } }', "\n>$")
    assert.matches("api_token = <redacted>", out)
    assert.matches("Authorization = <redacted>", out)
    assert.matches("client = cloudflare%.Client %(api token", out)
    assert.is_nil(s:screen():find(H.TOKEN, 1, true))
  end)

  it("runs -e first, then the REPL: `cfrun -i -e 'x=5'` then `x` prints 5", function()
    local s = session { args = { "-i", "-e", "x=5" } }
    s:eval("x", "\n5\n>$")
  end)
end)

describe("cfrun -i (without a terminal)", function()
  it("reads lines from stdin with prompts, as lua does", function()
    local out, err, code = H.run({ "-i", "-e", "x=5" }, { stdin = "x\nfunction f()\nreturn 1\nend\nf()\n" })
    assert.are.equal(0, code, err)
    assert.are.equal("> 5\n> >> >> > 1\n> \n", out)
  end)

  it("defines help only in the REPL", function()
    local out = H.run({ "-e", "io.write(tostring(help))" })
    assert.are.equal("nil", out)
    out = H.run({ "-i" }, { stdin = "type(help)\n" })
    assert.are.equal('> "function"\n> \n', out)
  end)
end)

describe("cloudflare.repl", function()
  local repl = require "cloudflare.repl"
  local core = require "cloudflare.core"
  setup(function() repl.init() end)

  describe("render", function()
    it("quotes strings as Lua reads them and prints several values on one line", function()
      assert.are.equal('"a\\nb\\"\\\\\\000\\127"\t1\tnil\ttrue\n', repl.render("a\nb\"\\\0\127", 1, nil, true))
      assert.are.equal("2.5\t1e+100\tmath.huge\t0.1\n", repl.render(2.5, 1e100, math.huge, 0.1))
      assert.are.equal("1.0\n", repl.render(1.0))
      local s = "é\255"
      assert.are.equal('"\\195\\169\\255"\n', repl.render(s))
      assert.are.equal('"é"\n', repl.render("é"))
      assert.are.equal(s, load("return " .. repl.render(s))())
      assert.are.equal("", repl.render())
    end)

    it("indents nested tables with sorted keys, list part first", function()
      local t = { 3, 4, b = { c = 1, a = { "x" } }, a = true, [10] = "ten", ["not id"] = 1 }
      assert.are.equal('{ 3, 4, [10] = "ten", a = true, b = { a = { "x" }, c = 1 }, ["not id"] = 1 }\n',
        repl.render(t))
      local wide = { long_key_one = string.rep("x", 60), long_key_two = { nested = string.rep("y", 60) } }
      assert.are.equal('{\n  long_key_one = "' .. string.rep("x", 60) .. '",\n'
        .. '  long_key_two = { nested = "' .. string.rep("y", 60) .. '" },\n}\n', repl.render(wide))
    end)

    it("truncates long lists with a count and shows cycles", function()
      local list = {}
      for i = 1, 500 do list[i] = i end
      local out = repl.render(list)
      assert.matches("^{ 1, 2, 3,.* 20, %.%.%. 480 more }\n$", out)
      local t = { name = "t" }
      t.self = t
      t.child = { parent = t }
      assert.are.equal('{ child = { parent = <cycle: root> }, name = "t", self = <cycle: root> }\n', repl.render(t))
    end)

    it("redacts secret fields and authorization headers at any depth", function()
      local out = repl.render({ api_token = "s1", API_KEY = "s2", authorization = "s3", ["x-auth-key"] = "s4",
        token = "s5", nested = { deep = { token = "s6" } }, list = { "Authorization: Bearer s7" }, ok = "v" })
      for i = 1, 7 do assert.is_nil(out:find("s" .. i, 1, true), out) end
      assert.matches('ok = "v"', out)
      assert.matches("%[\"x%-auth%-key\"%] = <redacted>", out)
      assert.matches('"Authorization: <redacted>"', out)
    end)

    it("shows nil, err, partial as the error, then the partial result as a table", function()
      local err = core.error { kind = "http", status = 502, message = "HTTP 502: bad gateway" }
      local partial = { id = "origin_public_cloud_region", requests = 2, value = {
        succeeded = { { origin_ip = "192.0.2.1", vendor = "aws", region = "us-east-1", input = "192.0.2.1" } },
        failed = {}, pending = { "192.0.2.2" } } }
      local out = repl.render(nil, err, partial)
      assert.matches("^nil, cloudflare%.Error: HTTP 502: bad gateway\n", out)
      assert.matches('kind = "http"', out)
      assert.matches("status = 502", out)
      assert.matches("\npartial: 1 succeeded, 0 failed, 1 pending, 0 unsent %(2 requests%)\n", out)
      assert.matches("\nsucceeded%s+192%.0%.2%.1%s+aws%s+us%-east%-1", out)
      assert.matches("\npending%s+192%.0%.2%.2\n", out)
    end)

    it("shows mapping lists as aligned tables, truncated after max_rows", function()
      local list = {}
      for i = 1, 60 do list[i] = { origin_ip = "10.0.0." .. i, vendor = "aws", region = "r" } end
      local out = repl.render(list)
      assert.matches("^60 mappings\norigin_ip%s+vendor%s+region%s+modified_on\n", out)
      assert.matches("\n10%.0%.0%.50%s+aws%s+r\n%.%.%. 10 more\n$", out)
    end)

    it("names documented functions and falls back to tostring for the rest", function()
      assert.are.equal("function: cloudflare.ip.canonical\n", repl.render(cloudflare.ip.canonical))
      assert.matches("^function: ", repl.render(print))
      assert.are.equal("json.null\n", repl.render(cloudflare.json.null))
      local S = cloudflare.select
      assert.are.equal("selector: vendor(aws)\n", repl.render(S.vendor("aws")))
    end)

    it("never raises, whatever the value", function()
      local bad = setmetatable({}, { __tostring = function() error("no") end, __index = function() error("x") end,
        __pairs = function() error("y") end })
      assert.is_string(repl.render(bad, { bad }, { [bad] = bad }))
    end)
  end)

  describe("complete", function()
    it("completes globals, keywords, fields and methods", function()
      assert.are.same({ "cloudflare.cache.origin_cloud_regions" }, repl.complete("cloudflare.cache.or"))
      assert.are.same({ "cloudflare.cache.origin_cloud_regions.bulk_delete",
        "cloudflare.cache.origin_cloud_regions.bulk_edit",
        "cloudflare.cache.origin_cloud_regions.bulk_update" },
        repl.complete("x = cloudflare.cache.origin_cloud_regions.bu"))
      assert.are.same({ "string.format" }, repl.complete("string.form"))
      _G.repl_s = "x"
      assert.are.same({ "repl_s:upper" }, repl.complete("y = repl_s:up"))
      _G.repl_s = nil
      assert.are.same({ "..string" }, repl.complete('y = "a"..strin'))
      assert.are.same({ "function" }, repl.complete("functio"))
      local found = repl.complete("cloudflare.se")
      assert.are.same({ "cloudflare.select" }, found)
    end)

    it("offers a client's fields and methods, and a selector's methods", function()
      _G.repl_client = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
      _G.repl_sel = cloudflare.select.vendor("aws")
      assert.are.same({ "repl_client:close" }, repl.complete("repl_client:cl"))
      assert.are.same({ "repl_client.cache" }, repl.complete("repl_client.ca"))
      assert.are.same({ "repl_client.cache.origin_cloud_regions.list" },
        repl.complete("repl_client.cache.origin_cloud_regions.li"))
      assert.are.same({ "repl_sel:count" }, repl.complete("repl_sel:co"))
      _G.repl_client:close()
      _G.repl_client, _G.repl_sel = nil, nil
    end)

    it("returns nothing, and never raises, on odd input", function()
      for _, text in ipairs { "", "1.", "1.5e", "a..", ":::", "x.y:z.", "nope.x", "string.format.x", "\0\255.",
        "cloudflare.json.null.x", "a:b:c", "(", "..", "._", "s = 'x' s:up.", string.rep("a.", 1000) } do
        local ok, res = pcall(repl.complete, text)
        assert.is_true(ok, res)
        assert.is_table(res)
      end
      assert.are.same({}, repl.complete("nope.x"))
      assert.are.same({}, repl.complete(nil))
      local hostile = setmetatable({}, { __index = function() error("boom") end })
      _G.repl_hostile = hostile
      assert.are.same({}, repl.complete("repl_hostile.x"))
      _G.repl_hostile = nil
    end)
  end)

  describe("help", function()
    it("knows every function of the cloudflare module and its submodules", function()
      local missing = {}
      local seen = {}
      local function walk(t, path)
        if seen[t] then return end
        seen[t] = true
        for k, v in pairs(t) do
          if type(v) == "function" and not repl.doc(v) then
            missing[#missing + 1] = path .. "." .. tostring(k)
          elseif type(v) == "table" and type(k) == "string" and not getmetatable(v) then
            walk(v, path .. "." .. k)
          end
        end
      end
      for _, m in ipairs { "ip", "json", "select", "report", "iplist", "cli", "journal" } do
        walk(cloudflare[m], "cloudflare." .. m)
      end
      walk(cloudflare, "cloudflare")
      table.sort(missing)
      assert.are.same({}, missing)
    end)

    it("recognises a client's operations and methods", function()
      local c = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
      assert.are.equal("ocr.bulk_delete", repl.doc(c.cache.origin_cloud_regions.bulk_delete))
      -- an older name is documented as itself, on a client of either generation
      assert.are.equal("ocr.bulk_edit", repl.doc(c.cache.origin_cloud_regions.bulk_edit))
      local v1 = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9", generation = "v1" }
      assert.are.equal("ocr.update", repl.doc(v1.cache.origin_cloud_regions.update))
      v1:close()
      assert.are.equal("client:close", repl.doc(c.close))
      assert.are.equal("selector:ips", repl.doc(cloudflare.select.everything.ips))
      assert.is_nil(repl.doc(print))
      c:close()
    end)
  end)
end)
