-- spec/readme_spec.lua: README.md's first contact: every command it shows runs as shown, on
-- a fresh clone, and prints what the README says it prints. Must not change the README.
--
-- Every fenced block carries, on the line before it, a marker saying how it is exercised:
--   <!-- spec: run -->       an sh block: run with sh in a fresh directory that looks like a
--                            clone (build/cfrun is the binary under test, scripts/ the
--                            repository's), no CLOUDFLARE_* in the environment
--   <!-- spec: run-last -->  the same for the last `&&` command only (what comes before is the
--                            install and build, which .ci/run does)
--   <!-- spec: output -->    what the run before it prints on stdout, compared exactly
--   <!-- spec: file NAME --> a file the README tells the reader to create: written there
--   <!-- spec: compile -->   Lua that is a reference or a fragment: it must compile
--   <!-- spec: repl -->      a REPL session: its `> ` lines fed to the `$ ` command with -i
--   <!-- spec: json-error --> the document of a failed --json run: a real one must match it
--   <!-- spec: skip (...) --> not run here; the comment names the spec that covers it
-- A block without a marker, or with another one, fails the first test. A README command in
-- running text is listed in INLINE below (and must appear in the README verbatim). What the
-- README shows in running text without running it elsewhere is covered so:
--   the command-line table (`cfrun script.lua`, `-`, `-e`, `-l`, `-i`, --version, --help):
--   spec/main_spec.lua; `--job`/`--every`/`--cron` and their options: spec/sched_spec.lua;
--   `--fake-api` options: spec/fake_api_spec.lua; `build/cfrun --sandbox scripts/report.lua`
--   and the scripts' options: spec/scripts_spec.lua (and INLINE); cmake, ctest, luacheck,
--   clang-tidy and `.ci/run`: the CI itself; `bench/run`: not a test (docs/benchmarks.md).
-- The fake-API block names port 8787: it runs on a free port in its place (in the command
-- and in the output it is compared with), so that parallel runs do not collide.
local H = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local README = slurp(H.SOURCE_DIR .. "/README.md")

local MARKERS = { run = true, ["run-last"] = true, output = true, file = true, compile = true,
  repl = true, ["json-error"] = true, skip = true }

-- The fenced blocks, in order: { line =, lang =, body =, marker =, arg = }.
local function blocks(text)
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local out, i = {}, 1
  local marker, arg, marker_end
  while i <= #lines do
    local l = lines[i]
    if l:find("^<!%-%- spec:") then
      local text_ = l
      while not text_:find("%-%->") and i < #lines do
        i = i + 1
        text_ = text_ .. " " .. lines[i]
      end
      marker, arg = text_:match("^<!%-%- spec: ([%w-]+)%s*(.-)%s*%-%->$")
      marker_end = i
    elseif l:find("^```") then
      local b = { line = i, lang = l:match("^```(%S*)"), marker = nil }
      if marker_end == i - 1 then b.marker, b.arg = marker, arg end
      local body = {}
      i = i + 1
      while lines[i] and not lines[i]:find("^```%s*$") do
        body[#body + 1] = lines[i]
        i = i + 1
      end
      b.body = table.concat(body, "\n") .. "\n"
      out[#out + 1] = b
    end
    i = i + 1
  end
  return out
end

local BLOCKS = blocks(README)

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- A fresh directory that looks like a clone: build/cfrun and scripts/.
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir .. "/build " .. dir .. "/state"))
assert(os.execute("ln -s " .. H.shell_quote(H.CFRUN) .. " " .. dir .. "/build/cfrun"))
assert(os.execute("ln -s " .. H.shell_quote(H.SOURCE_DIR .. "/scripts") .. " " .. dir .. "/scripts"))

-- What a reader's shell has: no credentials, no cfrun settings (the generation excepted:
-- CTest runs this spec once per generation).
local CLEAN = { "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_TOKEN_FILE", "CLOUDFLARE_EMAIL",
  "CLOUDFLARE_API_KEY", "CLOUDFLARE_BASE_URL", "CFRUN_JOURNAL", "CFRUN_FORMAT", "CFRUN_LOG",
  "CFRUN_SANDBOX_ZONE", "ZONE" }

--- Runs shell text in the directory; returns stdout, stderr, exit status.
local function sh(text, stdin, env)
  local script = H.tempfile(text)
  local out, err = os.tmpname(), os.tmpname()
  local parts = { "cd", H.shell_quote(dir), "&& env" }
  for _, k in ipairs(CLEAN) do parts[#parts + 1] = "-u " .. k end
  parts[#parts + 1] = "XDG_STATE_HOME=" .. H.shell_quote(dir .. "/state")
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.shell_quote(v) end
  parts[#parts + 1] = "sh " .. H.shell_quote(script)
  local input = stdin and H.tempfile(stdin) or "/dev/null"
  local _, _, code = os.execute(table.concat(parts, " ") .. " <" .. input .. " >" .. out
    .. " 2>" .. err)
  if stdin then os.remove(input) end
  os.remove(script)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return o, e, code
end

-- The output block right after block i, if it has one.
local function output_after(i)
  local nxt = BLOCKS[i + 1]
  return nxt and nxt.marker == "output" and nxt.body or nil
end

local function find_block(pred)
  for i, b in ipairs(BLOCKS) do
    if pred(b) then return b, i end
  end
end

-- Commands the README gives in running text, with what they must print (nil: exit 0 is
-- enough). Each must appear in the README verbatim.
local QUICK_OUTPUT = (function()
  local _, i = find_block(function(b) return b.marker == "run-last" end)
  return i and output_after(i)
end)()
local DELETE_OUTPUT = (function()
  local _, i = find_block(function(b) return b.marker == "run" and b.body:find("delete.lua", 1, true) end)
  return i and output_after(i)
end)()
local INLINE = {
  { cmd = "CFRUN_API_GENERATION=v1 build/cfrun --sandbox scripts/demo.lua", out = QUICK_OUTPUT },
  { cmd = "build/cfrun --sandbox scripts/report.lua", matches = "aws" },
  -- against a fake API in the place of Cloudflare: the zone and token placeholders filled in
  { cmd = "ZONE=<zone id> CLOUDFLARE_API_TOKEN=<token> build/cfrun delete.lua ips.txt",
    fake = true, out = DELETE_OUTPUT },
}

describe("README.md", function()
  it("marks every fenced block with how this spec exercises it", function()
    assert.is_true(#BLOCKS >= 10, "the README's blocks were not found")
    for i, b in ipairs(BLOCKS) do
      local where = "README.md:" .. b.line
      assert.is_truthy(b.marker, where .. ": a fenced block without a <!-- spec: ... --> marker")
      assert.is_truthy(MARKERS[b.marker], where .. ": unknown marker " .. tostring(b.marker))
      if b.marker == "output" then
        local prev = BLOCKS[i - 1]
        assert.is_truthy(prev and (prev.marker == "run" or prev.marker == "run-last"),
          where .. ": an output block must follow the block that prints it")
      end
      if b.marker == "skip" then
        assert.matches("%S", b.arg, where .. ": a skipped block must say why")
      end
      if b.marker == "run" or b.marker == "run-last" then
        assert.are.equal("sh", b.lang, where)
      end
    end
  end)

  it("runs the flagship example on a CRLF file: the lines are read with cloudflare.iplist", function()
    local b = find_block(function(x) return x.marker == "file" end)
    assert.is_truthy(b, "the README's delete.lua")
    assert.matches("cloudflare%.iplist%.read", b.body)
    assert.is_nil(b.body:find("io.lines", 1, true), "io.lines keeps a CRLF file's CR")
    local run = find_block(function(x) return x.marker == "run" and x.body:find("delete.lua", 1, true) end)
    assert.matches("\\r\\n", run.body, "the example list has CRLF line ends")
  end)

  -- One test per block, in the README's order (a file block before the command using it).
  for i, b in ipairs(BLOCKS) do
    local where = "README.md:" .. b.line
    if b.marker == "file" then
      it(where .. ": creates " .. b.arg .. " as the README says, and it compiles", function()
        assert.is_truthy(load(b.body, "=" .. b.arg), where)
        local f = assert(io.open(dir .. "/" .. b.arg, "wb"))
        f:write(b.body)
        f:close()
      end)
    elseif b.marker == "compile" then
      it(where .. ": compiles", function()
        local fn, err = load(b.body, "=" .. where)
        assert.is_truthy(fn, err)
      end)
    elseif b.marker == "run" or b.marker == "run-last" then
      it(where .. ": runs as shown" .. (output_after(i) and " and prints what the README shows" or ""),
        function()
          local body, expected = b.body, output_after(i)
          if b.marker == "run-last" then
            local joined = body:gsub("\\\n", " ")
            local last = ("&&" .. joined):match(".*&&%s*(.-)%s*$")
            assert.is_truthy(last and last ~= "", where)
            body = last .. "\n"
          end
          if body:find("8787", 1, true) then
            local port = tostring(free_port())
            body = body:gsub("8787", port)
            expected = expected and expected:gsub("8787", port)
          end
          local out, err, code = sh(body)
          assert.are.equal(0, code, where .. ":\n" .. body .. "\nstderr: " .. err)
          if expected then assert.are.equal(expected, out, where) end
        end)
    elseif b.marker == "repl" then
      it(where .. ": the REPL session works", function()
        local cmd = b.body:match("^%$ ([^\n]+)")
        assert.is_truthy(cmd, where .. ": the session starts with a `$ ` command")
        local input = {}
        for l in b.body:gmatch("\n> ([^\n]*)") do input[#input + 1] = l end
        assert.is_true(#input >= 3, where)
        -- stdin is a file here, not a terminal: -i asks for the REPL all the same
        local out, err, code = sh(cmd .. " -i\n", table.concat(input, "\n") .. "\n")
        assert.are.equal(0, code, err)
        assert.is_nil(err:find("stack traceback", 1, true), err)
        assert.is_nil(out:find("stdin:", 1, true), out) -- no error in the session
        assert.matches("origin_ip%s+vendor%s+region", out) -- the listing, as a table
        assert.matches('{ "192%.0%.2%.1", "192%.0%.2%.2", "192%.0%.2%.3", "2001:db8:0:2::20" }', out)
        assert.matches("bulk_delete{zone_id=, ips=", out) -- help(...)
      end)
    elseif b.marker == "json-error" then
      it(where .. ": shows the document a failed --json run prints", function()
        local shown = cjson.decode(b.body)
        local fake = H.start_fake()
        fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
        fake:fault { status = 500, errors = shown.error.errors, times = 10 }
        local out, err, code = sh("build/cfrun --json -e 'return cloudflare.cache."
          .. "origin_cloud_regions.bulk_delete{ zone_id = os.getenv(\"ZONE\"), ips = "
          .. cjson.encode(shown.partial.value.pending):gsub("^%[", "{"):gsub("%]$", "}")
          .. " }'\n", nil, { ZONE = H.ZONE, CLOUDFLARE_BASE_URL = fake.base_url,
          CLOUDFLARE_API_TOKEN = H.TOKEN })
        fake:stop()
        assert.are.equal(1, code, err)
        local real = cjson.decode(out)
        assert.is_string(real.error.request_id)
        real.error.request_id = shown.error.request_id -- the fake's cf-ray is random
        real.partial.generation = shown.partial.generation -- the spec's generation
        if H.V1 then -- a v1 result also names the setting (README: res.id)
          assert.are.equal("origin_public_cloud_region", real.partial.id)
          real.partial.id = nil
        end
        assert.are.same(shown, real)
      end)
    end
  end

  for _, c in ipairs(INLINE) do
    it("runs `" .. c.cmd .. "` from the running text", function()
      assert.is_truthy(README:find("`" .. c.cmd .. "`", 1, true), "not in the README: " .. c.cmd)
      local cmd, fake = c.cmd, nil
      if c.fake then
        fake = H.start_fake { "--sandbox" }
        cmd = "CLOUDFLARE_BASE_URL=" .. fake.base_url .. " "
          .. cmd:gsub("<zone id>", H.ZONE):gsub("<token>", H.TOKEN)
      end
      local out, err, code = sh(cmd .. "\n")
      if fake then fake:stop() end
      assert.are.equal(0, code, err)
      if c.out then assert.are.equal(c.out, out) end
      if c.matches then assert.matches(c.matches, out) end
    end)
  end

  teardown(function() os.execute("rm -rf " .. H.shell_quote(dir)) end)
end)
