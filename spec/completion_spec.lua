-- spec/completion_spec.lua: scripts/completion/cfrun.bash, driven by a real bash as readline
-- drives it (COMP_WORDS split as bash splits them, `--opt=` as `--opt` `=`): cfrun's flags,
-- exactly those `cfrun --help` lists; the examples of --every, --jitter, --cron and
-- --max-failures, each one cfrun accepts; file names; the fake API's options; the scripts of
-- CFRUN_SCRIPTS_DIR by full path; and a script's options, read from its --help only when it is
-- one of that directory's (a script elsewhere is never run). docs/completion.md.
local H = require "spec.helper"

local q = H.shell_quote
-- absolute: the completions run in other directories
local function absolute(path) return path:find("^/") and path or (os.getenv("PWD") .. "/" .. path) end
local SOURCE = absolute(H.SOURCE_DIR)
local FILE = SOURCE .. "/scripts/completion/cfrun.bash"
local SCRIPTS = SOURCE .. "/scripts"

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local function sorted(list)
  local out = table.move(list, 1, #list, 1, {})
  table.sort(out)
  return out
end

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

local function run_shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function mkdtemp()
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("l")
  p:close()
  return dir
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- A directory with a `cfrun` that is H.CFRUN, put first on PATH: the function runs the cfrun
-- it finds there for a script's --help (never an installed one).
local BIN = mkdtemp()
assert(os.execute("ln -s " .. q(absolute(H.CFRUN)) .. " " .. q(BIN .. "/cfrun")))
local CWD = mkdtemp() -- where the completions run: no file in it unless a test makes one

--- The completions `_cfrun` offers for `cfrun <words...>`, the last word being the one under
--- the cursor; opts.scripts: CFRUN_SCRIPTS_DIR (default: the source tree's), opts.cwd.
local function complete(words, opts)
  opts = opts or {}
  local all = { "cfrun" }
  for _, w in ipairs(words) do all[#all + 1] = w end
  local quoted = {}
  for i, w in ipairs(all) do quoted[i] = q(w) end
  local line = table.concat(all, " ")
  local script = table.concat({
    "source " .. q(FILE) .. " || exit 99",
    "PATH=" .. q(BIN) .. ":$PATH",
    "export CFRUN_SCRIPTS_DIR=" .. q(opts.scripts or SCRIPTS),
    "cd " .. q(opts.cwd or CWD) .. " || exit 98",
    "COMP_WORDS=(" .. table.concat(quoted, " ") .. ")",
    "COMP_CWORD=" .. (#all - 1),
    "COMP_LINE=" .. q(line),
    "COMP_POINT=" .. #line,
    "_cfrun || exit 97",
    "if ((${#COMPREPLY[@]})); then printf '%s\\n' \"${COMPREPLY[@]}\"; fi",
  }, "\n")
  local out, code = run_shell("bash -c " .. q(script))
  assert.are.equal(0, code, out)
  return lines(out)
end

--- The options a --help text lists: on each line of two spaces and a dash, the leading
--- options ("-v, --version", "--email E --key K"), each maybe followed by its argument.
local function help_options(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:find("^  %-") then
      local after_option = false
      for token in line:gmatch("%S+") do
        if token:find("^%-") then
          out[#out + 1] = token:gsub(",$", "")
          after_option = true
        elseif after_option then
          after_option = false -- its argument
        else
          break
        end
      end
    end
  end
  return out
end

describe("scripts/completion/cfrun.bash", function()
  it("is valid bash and registers _cfrun for cfrun", function()
    local out, code = run_shell("bash -n " .. q(FILE))
    assert.are.equal(0, code, out)
    out, code = run_shell("bash -c " .. q("source " .. q(FILE) .. " && complete -p cfrun"))
    assert.are.equal(0, code, out)
    assert.are.equal("complete -F _cfrun cfrun\n", out)
  end)

  it("completes cfrun's flags", function()
    assert.are.same({ "--every" }, complete { "--ev" })
    assert.are.same({ "--fake-api" }, complete { "--fa" })
    assert.are.same({ "--jitter", "--job", "--json" }, sorted(complete { "--j" }))
    assert.are.same({ "--lock", "--log-file" }, complete { "--quiet", "--lo" })
    assert.are.same({ "--max-failures" }, complete { "-e", "x = 1", "--every", "5m", "--ma" })
  end)

  it("offers for '-' every flag `cfrun --help` lists, and only those", function()
    local help, _, code = H.run({ "--help" })
    assert.are.equal(0, code)
    local listed = help_options(help)
    for _, flag in ipairs { "-e", "-l", "-i", "--version", "--help", "--json", "--sandbox", "--quiet",
      "--fake-api", "--job", "--every", "--cron", "--jitter", "--max-failures", "--lock", "--log-file" } do
      assert.is_true(contains(listed, flag), "--help lists " .. flag)
    end
    assert.are.same(sorted(listed), sorted(complete { "-" }))
  end)

  it("offers durations for --every and --jitter, each one cfrun accepts", function()
    local every = complete { "--every", "" }
    for _, d in ipairs { "30s", "5m", "1h" } do assert.is_true(contains(every, d), d) end
    assert.are.same(every, complete { "--job", "--jitter", "" })
    assert.are.same({ "1h", "1h30m" }, complete { "--every", "1h" })
    for _, d in ipairs(every) do
      for _, opt in ipairs { "--every", "--jitter" } do
        local _, err = H.run({ opt, d })
        assert.is_nil(err:find(opt .. ":", 1, true), err)
      end
    end
    for _, n in ipairs(complete { "--max-failures", "" }) do
      local _, err = H.run({ "--max-failures", n })
      assert.is_nil(err:find("--max-failures:", 1, true), err)
    end
  end)

  it("offers quoted cron specs for --cron, each one cfrun accepts", function()
    local cron = complete { "--cron", "" }
    assert.is_true(contains(cron, "'*/5 * * * *'"))
    assert.is_true(contains(cron, "'0 3 * * *'"))
    for _, spec in ipairs(cron) do
      assert.matches("^'[^']+'$", spec)
      local _, err = H.run({ "--cron", spec:sub(2, -2) })
      assert.is_nil(err:find("--cron:", 1, true), err)
    end
    -- in the quote the word opened
    assert.are.same({ "'30 2 * * mon-fri'" }, complete { "--cron", "'30" })
    assert.are.same({ '"0 3 * * *"' }, complete { "--cron", '"0 3' })
  end)

  it("completes file names for --lock, --log-file and the fake API's --seed", function()
    local dir = mkdtemp()
    write(dir .. "/job.lock", "")
    write(dir .. "/runs.jsonl", "")
    write(dir .. "/seed.json", "{}")
    assert.are.same({ dir .. "/job.lock" }, complete { "--job", "--lock", dir .. "/jo" })
    assert.are.same({ dir .. "/runs.jsonl" }, complete { "--log-file", dir .. "/r" })
    assert.are.same({ dir .. "/seed.json" }, complete { "--fake-api", "--seed", dir .. "/s" })
    assert.are.same({ "runs.jsonl" }, complete({ "--every", "1h", "--log-file", "ru" }, { cwd = dir }))
    os.execute("rm -rf " .. q(dir))
  end)

  it("completes the fake API's options after --fake-api, and their values", function()
    assert.are.same({ "--rate-limit" }, complete { "--fake-api", "--ra" })
    assert.are.same({}, complete { "--fake-api", "--ev" }) -- cfrun's own are over
    assert.are.same({ "--quiet" }, complete { "--fake-api", "--port", "0", "--qu" })
    local help, _, code = H.run({ "--fake-api", "--help" })
    assert.are.equal(0, code)
    local listed = help_options(help)
    for _, opt in ipairs { "--host", "--port", "--sandbox", "--seed", "--token", "--email", "--key",
      "--rate-limit", "--generations", "--exit-with-parent", "--quiet" } do
      assert.is_true(contains(listed, opt), "--fake-api --help lists " .. opt)
    end
    listed[#listed + 1] = "--help"
    assert.are.same(sorted(listed), sorted(complete { "--fake-api", "-" }))
    -- `--generations=` reaches the function as `--generations` `=`
    assert.are.same({ "v1,v2", "v1", "v2" }, complete { "--fake-api", "--generations", "=" })
    assert.are.same({ "v1,v2", "v1" }, complete { "--fake-api", "--generations", "=", "v1" })
    assert.are.same({ "v2" }, complete { "--fake-api", "--quiet", "--generations", "v2" })
  end)

  it("offers the scripts of CFRUN_SCRIPTS_DIR by their full paths", function()
    local all = complete { "" }
    for _, name in ipairs { "demo.lua", "delete_from_file.lua", "prune.lua", "restore.lua" } do
      assert.is_true(contains(all, SCRIPTS .. "/" .. name), name)
    end
    assert.are.same({ SCRIPTS .. "/demo.lua" }, complete { "dem" })
    assert.are.same({ SCRIPTS .. "/demo.lua" }, complete { "--sandbox", "--every", "5m", "dem" })
    assert.are.same({ SCRIPTS .. "/demo.lua" }, complete { "-e", "x = 1", "-l", "cjson", "--", "dem" })
    local de = complete { SCRIPTS .. "/de" }
    assert.is_true(contains(de, SCRIPTS .. "/delete_from_file.lua"))
    assert.is_true(contains(de, SCRIPTS .. "/demo.lua"))
    local seen = {}
    for _, path in ipairs(de) do
      assert.is_nil(seen[path], "offered once: " .. path)
      seen[path] = true
    end
    -- and the files of the working directory
    local dir = mkdtemp()
    write(dir .. "/mine.lua", "")
    assert.are.same({ "mine.lua" }, complete({ "mi" }, { cwd = dir }))
    os.execute("rm -rf " .. q(dir))
  end)

  it("completes a script's options from its --help, and their values", function()
    local dff = SCRIPTS .. "/delete_from_file.lua"
    assert.are.same({ "--dry-run" }, complete { dff, "--dr" })
    assert.are.same({ "--dry-run" }, complete { "--sandbox", dff, "--zone", "z", "--dr" })
    assert.are.same({ "--dry-run" }, complete({ "scripts/delete_from_file.lua", "--dr" }, { cwd = SOURCE }))
    assert.are.same({ "json", "jsonl" }, complete { dff, "--format", "j" })
    assert.are.same({ "table", "json", "jsonl", "csv" }, complete { dff, "--format", "=" })
    assert.are.same({ "aws", "azure" }, complete { SCRIPTS .. "/move_region.lua", "--vendor", "a" })
    assert.are.same({}, complete { dff, "--ev" }) -- cfrun's own options are over
    assert.are.same({ "--last" }, complete { "--", SCRIPTS .. "/restore.lua", "--la" })
    -- every script: exactly the options its --help lists
    local p = io.popen("ls " .. q(SCRIPTS) .. "/*.lua")
    local scripts = lines(p:read("a"))
    p:close()
    assert.is_true(#scripts >= 8)
    for _, path in ipairs(scripts) do
      local help, _, code = H.run({ path, "--help" })
      assert.are.equal(0, code, path)
      local listed = {}
      for _, o in ipairs(help_options(help)) do
        if o:find("^%-%-") then listed[#listed + 1] = o end
      end
      assert.is_true(#listed >= 2, path)
      assert.are.same(sorted(listed), sorted(complete { path, "--" }), path)
    end
  end)

  it("runs for its options only a script of the scripts directory", function()
    local root = mkdtemp()
    local dir = root .. "/scripts"
    os.execute("mkdir " .. q(dir))
    -- run, it leaves a mark; its --help would list --evil
    local evil = [[
      local f = io.open(%q, "a"); f:write("ran\n"); f:close()
      print("usage: evil.lua"); print(""); print("  --evil  do harm")
    ]]
    local mark = root .. "/ran"
    write(root .. "/evil.lua", evil:format(mark))
    os.execute("ln -s ../evil.lua " .. q(dir .. "/linked.lua"))
    write(dir .. "/good.lua", [[
      print("usage: good.lua [--alpha N] [--beta]"); print("")
      print("  --alpha N  the alpha"); print("  --beta     the beta")
    ]])
    local opts = { scripts = dir }
    assert.are.same({ "--alpha", "--beta" }, complete({ dir .. "/good.lua", "--" }, opts))
    assert.are.same({ "--alpha", "--beta" }, complete({ "good.lua", "--" }, { scripts = dir, cwd = dir }))
    assert.are.same({ "--alpha", "--beta" }, complete({ "$CFRUN_SCRIPTS_DIR/good.lua", "--" }, opts))
    assert.are.same({}, complete({ dir .. "/good.lua", "--alpha", "" }, opts))
    for _, word in ipairs { root .. "/evil.lua", dir .. "/../evil.lua", dir .. "/linked.lua", "../evil.lua" } do
      assert.are.same({}, complete({ word, "--" }, { scripts = dir, cwd = dir }), word)
    end
    assert.is_false(exists(mark), "a script outside the scripts directory ran")
    assert.are.same({ dir .. "/good.lua", dir .. "/linked.lua" }, sorted(complete({ dir .. "/" }, opts)))
    os.execute("rm -rf " .. q(root))
  end)
end)

teardown(function()
  os.execute("rm -rf " .. q(BIN) .. " " .. q(CWD))
end)
