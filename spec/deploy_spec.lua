-- spec/deploy_spec.lua: the files an operator copies or reads rather than runs through cfrun:
-- the systemd units and the Kubernetes CronJob of scripts/deploy/, and the manual page
-- docs/cfrun.1. Each is parsed (INI sections, YAML with lyaml, roff requests) and checked
-- against the command-line contract: jobs run with --job, tokens come from files, runs never
-- overlap, and the manual documents every option and exit status.
local H = require "spec.helper"

local DEPLOY = H.SOURCE_DIR .. "/scripts/deploy/"
local MANPAGE = H.SOURCE_DIR .. "/docs/cfrun.1"

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function dirname(path) return (path:match("^(.*)/[^/]*$")) end
local function basename(path) return (path:match("[^/]*$")) end

-- Output (stdout and stderr) and success of a shell command.
local function shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function have(program)
  local _, ok = shell("command -v " .. H.shell_quote(program) .. " >/dev/null")
  return ok
end

---------------------------------------------------------------------------------------------
-- systemd unit files
---------------------------------------------------------------------------------------------

-- Parses a unit file into { [section] = { [key] = { value, ... } } } (a key may repeat).
-- Comments (# or ;) and blank lines are skipped; a trailing backslash continues a line.
local function parse_unit(text)
  local sections, current = {}, nil
  local pending = nil
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    local line = pending and (pending .. " " .. raw:match("^%s*(.-)$")) or raw
    pending = nil
    if line:match("\\$") and not line:match("^%s*[#;]") then
      pending = line:sub(1, -2)
    elseif line:match("^%s*$") or line:match("^%s*[#;]") then -- luacheck: ignore 542
      -- nothing
    elseif line:match("^%[.*%]$") then
      current = line:sub(2, -2)
      sections[current] = sections[current] or {}
    else
      local key, value = line:match("^%s*([%w_%-]+)%s*=%s*(.-)%s*$")
      assert(key and current, "not a unit file line: " .. line)
      local values = sections[current][key] or {}
      values[#values + 1] = value
      sections[current][key] = values
    end
  end
  return sections
end

-- The last value of a key (what systemd uses for single-valued settings), or nil.
local function last(section, key)
  local values = section and section[key]
  return values and values[#values]
end

-- Words of a value: space-separated, double quotes group (enough for these files).
local function words(value)
  local out, i = {}, 1
  while i <= #value do
    local c = value:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == '"' then
      local close = assert(value:find('"', i + 1, true), "unbalanced quote in " .. value)
      out[#out + 1] = value:sub(i + 1, close - 1)
      i = close + 1
    else
      local stop = value:find("%s", i) or #value + 1
      out[#out + 1] = value:sub(i, stop - 1)
      i = stop
    end
  end
  return out
end

-- Every Environment= assignment of a section, as name -> value.
local function environment(section)
  local env = {}
  for _, value in ipairs(section.Environment or {}) do
    for _, w in ipairs(words(value)) do
      local name, v = w:match("^([%w_]+)=(.*)$")
      assert(name, "not an assignment in Environment=: " .. w)
      env[name] = v
    end
  end
  return env
end

-- A directory setting (StateDirectory=, LogsDirectory=) as a set of names.
local function directories(section, key)
  local out = {}
  for _, value in ipairs(section[key] or {}) do
    for _, w in ipairs(words(value)) do out[w:match("^[^:]+")] = true end
  end
  return out
end

-- The value following an option in an argument list, or nil.
local function option_value(argv, name)
  for i, a in ipairs(argv) do
    if a == name then return argv[i + 1] end
  end
end

local function index_of(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
end

describe("scripts/deploy/cfrun-job.service", function()
  local text = read(DEPLOY .. "cfrun-job.service")
  local unit = parse_unit(text)
  local service = unit.Service
  local env = environment(service or {})

  it("is a oneshot service that runs one cfrun --job", function()
    assert.is_table(service)
    assert.equals("oneshot", last(service, "Type"))
    assert.equals(1, #service.ExecStart, "one ExecStart= line")
    local argv = words(service.ExecStart[1]:gsub("^[-@:+!]+", ""))
    assert.matches("^/.*/cfrun$", argv[1])
    local job = index_of(argv, "--job")
    assert.truthy(job, "ExecStart has --job: " .. service.ExecStart[1])
    local script
    for i, a in ipairs(argv) do
      if a:match("%.lua$") then script = script or i end
    end
    assert.truthy(script, "ExecStart names a script")
    assert.is_true(job < script, "--job is a cfrun option, before the script")
    assert.matches("^/", argv[script], "the script is named by an absolute path")
    assert.equals("prune.lua", basename(argv[script]))
    assert.truthy(index_of(argv, "--max-share"), "the prune job keeps its safety limit")
  end)

  it("logs one JSON line per run into its LogsDirectory", function()
    local argv = words(service.ExecStart[1])
    local log_file = option_value(argv, "--log-file")
    assert.is_string(log_file)
    assert.truthy(index_of(argv, "--log-file") < index_of(argv, argv[#argv]))
    local dir = log_file:match("^/var/log/([^/]+)/")
    assert.truthy(dir and directories(service, "LogsDirectory")[dir],
      "--log-file " .. log_file .. " lies in a LogsDirectory=")
  end)

  it("reads the token from a file named by CLOUDFLARE_API_TOKEN_FILE, as a credential", function()
    local file = env.CLOUDFLARE_API_TOKEN_FILE
    assert.is_string(file)
    local name = file:match("^%%d/(.+)$")
    assert.truthy(name, "CLOUDFLARE_API_TOKEN_FILE is in the credentials directory %d: " .. file)
    local loaded = false
    for _, value in ipairs(service.LoadCredential or {}) do
      local id, source = value:match("^([^:]+):(.+)$")
      if id == name then
        loaded = true
        assert.matches("^/", source)
      end
    end
    assert.is_true(loaded, "LoadCredential=" .. name .. ":... loads it")
    assert.is_nil(env.CLOUDFLARE_API_TOKEN, "no token in the unit file")
    assert.is_nil(env.CLOUDFLARE_API_KEY, "no key in the unit file")
  end)

  it("has no default zone: until ZONE is set, ExecStartPre fails with what to do", function()
    assert.equals("", env.ZONE, "a copied unit must not delete in someone else's zone")
    assert.equals(1, #(service.ExecStartPre or {}), "one ExecStartPre= line")
    local pre = service.ExecStartPre[1]
    local script = assert(pre:match("^/bin/sh %-c '(.*)'$"), pre)
    local function run(zone)
      local p = io.popen("env " .. (zone and "ZONE=" .. H.shell_quote(zone) or "-u ZONE")
        .. " /bin/sh -c " .. H.shell_quote(script) .. " 2>&1; echo \"status=$?\"")
      local out = p:read("a")
      p:close()
      return out
    end
    assert.matches("^cfrun%-job%.service: ZONE is not set: run systemctl edit cfrun%-job%.service and add "
      .. "%[Service%] Environment=ZONE=<zone id>\nstatus=2\n$", run(nil))
    assert.matches("status=2", run(""))
    assert.are.equal("status=0\n", run("023e105f4ecef8ad9ca31a8372d0c353"))
  end)

  it("journals into its StateDirectory", function()
    local dir = (env.CFRUN_JOURNAL or ""):match("^/var/lib/([^/]+)/[^/]+$")
    assert.truthy(dir and directories(service, "StateDirectory")[dir],
      "CFRUN_JOURNAL " .. tostring(env.CFRUN_JOURNAL) .. " lies in a StateDirectory=")
  end)

  it("runs unprivileged and hardened", function()
    assert.equals("yes", last(service, "DynamicUser"))
    assert.equals("yes", last(service, "NoNewPrivileges"))
    assert.equals("strict", last(service, "ProtectSystem"))
    assert.equals("yes", last(service, "PrivateTmp"))
    assert.is_nil(service.User, "DynamicUser= allocates the user")
  end)

  it("shows every non-zero exit status as a failure, and its comments say what they mean", function()
    assert.is_nil(service.SuccessExitStatus)
    assert.matches("#%s*3%s+some IPs failed", text)
    assert.matches("#%s*4%s+[^\n]*pending", text)
    assert.matches("#%s*5%s+the lock is held", text)
  end)

  it("waits for the network", function()
    assert.matches("network%-online%.target", last(unit.Unit, "After"))
    assert.matches("network%-online%.target", last(unit.Unit, "Wants"))
  end)
end)

describe("scripts/deploy/cfrun-job.timer", function()
  local unit = parse_unit(read(DEPLOY .. "cfrun-job.timer"))
  local timer = unit.Timer

  it("starts cfrun-job.service on a calendar, catching up after downtime, spread out", function()
    assert.is_table(timer)
    assert.equals("cfrun-job.service", last(timer, "Unit"))
    assert.truthy(io.open(DEPLOY .. last(timer, "Unit"))):close()
    assert.is_string(last(timer, "OnCalendar"))
    assert.equals("true", last(timer, "Persistent"))
    assert.matches("^%d+%a*$", last(timer, "RandomizedDelaySec"))
    assert.equals("timers.target", last(unit.Install, "WantedBy"))
  end)

  it("has an OnCalendar= that systemd understands", function()
    if not have("systemd-analyze") then
      pending("systemd-analyze is not installed")
      return
    end
    local out, ok = shell("systemd-analyze calendar " .. H.shell_quote(last(timer, "OnCalendar")))
    assert.is_true(ok, out)
  end)
end)

---------------------------------------------------------------------------------------------
-- Kubernetes
---------------------------------------------------------------------------------------------

describe("scripts/deploy/cronjob.yaml", function()
  local text = read(DEPLOY .. "cronjob.yaml")
  local has_lyaml, lyaml = pcall(require, "lyaml")

  if not has_lyaml then
    -- Without lyaml (not installed with busted here), the essentials by pattern.
    it("is a CronJob running cfrun --job with the token from a mounted file (patterns)", function()
      assert.matches("\nkind:%s*CronJob", text)
      assert.matches("\n%s*concurrencyPolicy:%s*Forbid", text)
      assert.matches("\n%s*%-%s*%-%-job%s*\n", text)
      local file = text:match("name:%s*CLOUDFLARE_API_TOKEN_FILE%s*\n%s*value:%s*(%S+)")
      assert.is_string(file)
      assert.matches("mountPath:%s*" .. dirname(file):gsub("%p", "%%%0") .. "%s*\n", text)
    end)
    return
  end

  local docs = lyaml.load(text, { all = true })
  local by_kind = {}
  for _, d in ipairs(docs) do by_kind[d.kind] = d end
  local cron = by_kind.CronJob
  local job = cron and cron.spec.jobTemplate.spec
  local pod = job and job.template.spec
  local container = pod and pod.containers[1]

  local function env(name)
    for _, e in ipairs(container.env or {}) do
      if e.name == name then return e end
    end
  end
  local function volume(name)
    for _, v in ipairs(pod.volumes or {}) do
      if v.name == name then return v end
    end
  end
  -- The volume mounted at the directory holding path (the longest mountPath that is a prefix).
  local function mount_of(path)
    local best
    for _, m in ipairs(container.volumeMounts or {}) do
      local mp = m.mountPath:gsub("/$", "")
      if path:sub(1, #mp + 1) == mp .. "/" and (not best or #mp > #best.mountPath) then best = m end
    end
    return best, best and volume(best.name)
  end

  it("is a batch/v1 CronJob with one container", function()
    assert.is_table(cron)
    assert.equals("batch/v1", cron.apiVersion)
    assert.equals("CronJob", cron.kind)
    assert.equals(5, #words(cron.spec.schedule), "a five-field schedule")
    assert.equals(1, #pod.containers)
  end)

  it("never overlaps runs, and leaves retrying to cfrun", function()
    assert.equals("Forbid", cron.spec.concurrencyPolicy)
    assert.equals("integer", math.type(cron.spec.startingDeadlineSeconds))
    assert.is_true(cron.spec.startingDeadlineSeconds > 0)
    assert.equals(0, job.backoffLimit)
    assert.equals("Never", pod.restartPolicy)
  end)

  it("runs cfrun --job on a script", function()
    local argv = {}
    for _, a in ipairs(container.command or {}) do argv[#argv + 1] = a end
    for _, a in ipairs(container.args or {}) do argv[#argv + 1] = a end
    assert.matches("cfrun$", argv[1])
    local i = index_of(argv, "--job")
    assert.truthy(i, "the command has --job")
    local script = argv[i + 1]
    assert.matches("^/.*%.lua$", script)
    for _, a in ipairs(argv) do assert.is_string(a, "every argument is a string") end
    assert.matches("^registry%.example%.com/cfrun:", container.image)
  end)

  it("names the token file with CLOUDFLARE_API_TOKEN_FILE, inside a read-only Secret volume", function()
    local e = env("CLOUDFLARE_API_TOKEN_FILE")
    assert.is_table(e)
    local file = e.value
    assert.matches("^/", file)
    local m, v = mount_of(file)
    assert.is_table(m, "a volume is mounted at " .. dirname(file))
    assert.equals(dirname(file), (m.mountPath:gsub("/$", "")))
    assert.is_true(m.readOnly)
    assert.is_table(v and v.secret, "the volume is a Secret")
    assert.is_string(v.secret.secretName)
    assert.equals(256, v.secret.defaultMode, "defaultMode 0400")
    if v.secret.items then
      local paths = {}
      for _, item in ipairs(v.secret.items) do paths[item.path] = true end
      assert.is_true(paths[basename(file)], "the Secret provides " .. basename(file))
    end
    assert.is_nil(env("CLOUDFLARE_API_TOKEN"), "no token in the environment")
  end)

  it("takes the zone from a ConfigMap of the file, or the environment", function()
    local e = env("ZONE")
    assert.is_table(e)
    local ref = e.valueFrom and e.valueFrom.configMapKeyRef
    if ref then
      local cm = by_kind.ConfigMap
      if cm and cm.metadata.name == ref.name then
        assert.matches("^%w+$", cm.data[ref.key])
      end
    else
      assert.matches("^%w+$", e.value)
    end
  end)

  it("journals onto a PersistentVolumeClaim", function()
    local e = env("CFRUN_JOURNAL")
    assert.is_table(e)
    local m, v = mount_of(e.value)
    assert.is_table(m, "the journal lies on a mounted volume")
    assert.is_table(v and v.persistentVolumeClaim, "the journal's volume is a PersistentVolumeClaim")
    assert.is_not_true(m.readOnly)
    local pvc = by_kind.PersistentVolumeClaim
    if pvc then assert.equals(pvc.metadata.name, v.persistentVolumeClaim.claimName) end
  end)

  it("runs as non-root on a read-only root filesystem, with a writable /tmp for the lock", function()
    local pod_sc, sc = pod.securityContext or {}, container.securityContext or {}
    assert.is_true(sc.runAsNonRoot or pod_sc.runAsNonRoot)
    assert.is_true(sc.readOnlyRootFilesystem)
    assert.is_false(sc.allowPrivilegeEscalation)
    -- Without XDG_RUNTIME_DIR the default lock is /tmp/cfrun-<uid>/...: /tmp must be writable.
    local m, v = mount_of("/tmp/cfrun-1/x.lock")
    assert.is_table(m, "a volume is mounted at /tmp")
    assert.is_table(v and v.emptyDir)
  end)

  it("asks for little", function()
    local r = container.resources
    assert.is_table(r and r.requests)
    assert.is_table(r.limits)
    local mem = r.limits.memory
    assert.matches("^%d+Mi$", mem)
    assert.is_true(tonumber(mem:match("%d+")) <= 256)
  end)
end)

---------------------------------------------------------------------------------------------
-- The manual page
---------------------------------------------------------------------------------------------

-- The arguments of a roff macro line: separated by spaces, double quotes group ("" is a quote).
local function macro_args(rest)
  local out, i = {}, 1
  while i <= #rest do
    local c = rest:sub(i, i)
    if c == " " or c == "\t" then
      i = i + 1
    elseif c == '"' then
      local buf = {}
      i = i + 1
      while i <= #rest do
        local d = rest:sub(i, i)
        if d == '"' and rest:sub(i + 1, i + 1) == '"' then
          buf[#buf + 1], i = '"', i + 2
        elseif d == '"' then
          i = i + 1
          break
        else
          buf[#buf + 1], i = d, i + 1
        end
      end
      out[#out + 1] = table.concat(buf)
    else
      local j = i
      while j <= #rest do
        local d = rest:sub(j, j)
        if d == "\\" then
          j = j + 2
        elseif d == " " or d == "\t" then
          break
        else
          j = j + 1
        end
      end
      out[#out + 1] = rest:sub(i, j - 1)
      i = j
    end
  end
  return out
end

-- The text of roff input, without font changes and with the escapes used in cfrun.1.
local ESCAPES = { ["\\(aq"] = "'", ["\\(dq"] = '"', ["\\(ti"] = "~", ["\\(em"] = "--" }
local function plain(s)
  s = s:gsub("\\f[BIRP]", ""):gsub("\\%(%a%a", ESCAPES)
  s = s:gsub("\\([-e &])", { ["-"] = "-", e = "\\", [" "] = " ", ["&"] = "" })
  return s
end

-- The text of a line: a macro line's arguments (joined as the macro would: .B and .I with
-- spaces, the alternating-font macros without), or a text line as it is.
local function line_text(line)
  local macro, rest = line:match("^%.(%a+)%s*(.*)$")
  if not macro then return plain(line) end
  local args = macro_args(rest)
  local sep = (macro == "B" or macro == "I") and " " or ""
  return plain(table.concat(args, sep))
end

-- Parses the page into its sections: { name = ..., lines = {...}, tags = { {ss=, text=} } },
-- where tags are the .TP labels (the line after .TP) with the .SS subsection they are in.
local function parse_man(text)
  local sections, by_name = {}, {}
  local current, ss, after_tp = nil, nil, false
  for line in text:gmatch("([^\n]*)\n") do
    local macro, rest = line:match("^%.(%a+)%s*(.*)$")
    if macro == "SH" then
      current = { name = plain(table.concat(macro_args(rest), " ")), lines = {}, tags = {} }
      sections[#sections + 1], by_name[current.name] = current, current
      ss, after_tp = nil, false
    elseif macro == "SS" then
      ss = plain(table.concat(macro_args(rest), " "))
    elseif macro == "TP" then
      after_tp = true
    elseif current then
      if after_tp and macro ~= "PD" then
        current.tags[#current.tags + 1] = { ss = ss, text = line_text(line) }
        after_tp = false
      end
      current.lines[#current.lines + 1] = line
    end
  end
  return sections, by_name
end

-- The option-looking words of a tag: "-v, --version" -> { "-v", "--version" }.
local function tag_options(tag)
  local out = {}
  for w in tag:gmatch("[^%s,]+") do
    if w:match("^%-") then out[#out + 1] = w end
  end
  return out
end

local function section_text(section)
  local parts = {}
  for _, l in ipairs(section.lines) do parts[#parts + 1] = line_text(l) end
  return table.concat(parts, "\n")
end

describe("docs/cfrun.1", function()
  local text = read(MANPAGE)
  local sections, by_name = parse_man(text)

  -- The command line of cfrun(1): the options of cfrun, and those of `cfrun --fake-api`.
  local OPTIONS = { "-e", "-l", "-i", "-", "--", "--sandbox", "--fake-api", "--every", "--cron",
    "--jitter", "--max-failures", "--job", "--lock", "--log-file", "--quiet", "--json", "-v",
    "--version", "-h", "--help" }
  local SERVER_OPTIONS = { "--host", "--port", "--sandbox", "--seed", "--token", "--email", "--key",
    "--latency", "--rate-limit", "--exit-with-parent", "--quiet", "--any-zone", "--one-user" }
  local EXIT_STATUSES = { "0", "1", "2", "3", "4", "5", "130", "143" }
  local ENVIRONMENT = { "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_TOKEN_FILE", "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_API_KEY", "CLOUDFLARE_BASE_URL", "CFRUN_JOURNAL", "CFRUN_LOG", "CFRUN_SANDBOX_ZONE",
    "XDG_STATE_HOME", "XDG_RUNTIME_DIR" }

  it("is a section 1 page in man(7) macros, not mdoc", function()
    local first
    for line in text:gmatch("([^\n]*)\n") do
      if not line:match('^%.\\"') then first = line break end -- skip the .\" comments
    end
    assert.matches('^%.TH CFRUN 1 "%d%d%d%d%-%d%d%-%d%d" "cfrun [%d.]+" ', first)
    local MAN7 = set_of { "TH", "SH", "SS", "TP", "PP", "LP", "P", "IP", "HP", "RS", "RE", "B", "I",
      "BR", "BI", "IB", "IR", "RB", "RI", "SM", "SB", "PD", "nf", "fi", "br", "sp", "nh", "ad", "na" }
    local n = 0
    for line in text:gmatch("([^\n]*)\n") do
      local macro = line:match("^[.']%s*([%a]+)")
      if macro then
        n = n + 1
        assert.is_true(MAN7[macro] == true, "not a man(7) macro: " .. line)
      end
      assert.is_nil(line:match("^'"), "a text line starts with a quote: " .. line)
    end
    assert.is_true(n > 100)
    assert.is_nil(text:match("\n%.Dd"), "no mdoc")
  end)

  it("carries the version of the project", function()
    local version = read(H.SOURCE_DIR .. "/CMakeLists.txt"):match("project%(cfrun VERSION ([%d.]+)")
    assert.is_string(version)
    assert.matches('^%.TH CFRUN 1 "[^"]*" "cfrun ' .. version:gsub("%.", "%%.") .. '"', text:match("\n(%.TH[^\n]*)"))
  end)

  it("has the usual sections, in order", function()
    local names = {}
    for _, s in ipairs(sections) do names[#names + 1] = s.name end
    local want = { "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES",
      "EXAMPLES", "SEE ALSO" }
    local at = 0
    for _, w in ipairs(want) do
      local i = index_of(names, w)
      assert.truthy(i, "section " .. w)
      assert.is_true(i > at, "section " .. w .. " in order")
      at = i
    end
    assert.matches("^cfrun %- ", section_text(by_name.NAME))
  end)

  it("shows the five forms of the command in the synopsis", function()
    local synopsis = section_text(by_name.SYNOPSIS):gsub("\n", " ")
    assert.matches("cfrun %[options%] %[script %[args%.%.%.%]%]", synopsis)
    assert.matches("cfrun %-%-every DURATION %[options%] script %[args%.%.%.%]", synopsis)
    assert.matches("cfrun %-%-cron 'MIN HOUR DOM MON DOW' %[options%] script %[args%.%.%.%]", synopsis)
    assert.matches("cfrun %-%-job %[options%] script %[args%.%.%.%]", synopsis)
    assert.matches("cfrun %-%-fake%-api %[server options%]", synopsis)
  end)

  it("documents every option of the command line, and no other", function()
    local documented, server = {}, {}
    for _, tag in ipairs(by_name.OPTIONS.tags) do
      for _, o in ipairs(tag_options(tag.text)) do
        documented[o] = true
        if tag.ss and tag.ss:match("[Ff]ake API") then server[o] = true end
      end
    end
    for _, o in ipairs(OPTIONS) do assert.is_true(documented[o], "option " .. o) end
    for _, o in ipairs(SERVER_OPTIONS) do assert.is_true(server[o], "fake API option " .. o) end
    local known = set_of(OPTIONS)
    for _, o in ipairs(SERVER_OPTIONS) do known[o] = true end
    for o in pairs(documented) do assert.is_true(known[o], "option not in the contract: " .. o) end
  end)

  it("documents every exit status, and that os.exit wins", function()
    local tags = {}
    for _, tag in ipairs(by_name["EXIT STATUS"].tags) do tags[tag.text] = true end
    for _, s in ipairs(EXIT_STATUSES) do assert.is_true(tags[s], "exit status " .. s) end
    for s in pairs(tags) do assert.truthy(index_of(EXIT_STATUSES, s), "unexpected exit status tag " .. s) end
    local body = section_text(by_name["EXIT STATUS"])
    assert.matches("os%.exit%(n%)", body)
    assert.matches("%-%-max%-failures", body)
  end)

  it("documents the environment, the files and the Lua API", function()
    local vars = {}
    for _, tag in ipairs(by_name.ENVIRONMENT.tags) do
      for v in tag.text:gmatch("[%u_]+") do vars[v] = true end
    end
    for _, v in ipairs(ENVIRONMENT) do assert.is_true(vars[v], "variable " .. v) end
    local files = section_text(by_name.FILES)
    assert.matches("$XDG_STATE_HOME/cfrun/history", files, 1, true)
    assert.matches("~/.cfrun_history", files, 1, true)
    assert.matches("$XDG_RUNTIME_DIR/cfrun/script-hash.lock", files, 1, true)
    assert.matches("/tmp/cfrun-uid/script-hash.lock", files, 1, true)
    assert.matches("0600", files, 1, true)
    local api = section_text(by_name["THE LUA API"])
    assert.matches("docs/api.md", api, 1, true)
    assert.matches("share/doc/cfrun/api.md", api, 1, true)
  end)

  it("has the examples: sandbox, file, dry run, --every, --cron, --job, restore", function()
    local examples = section_text(by_name.EXAMPLES)
    for _, pattern in ipairs {
      "cfrun %-%-sandbox scripts/demo%.lua",
      "scripts/delete_from_file%.lua",
      "scripts/prune%.lua %-%-dry%-run",
      "%-%-every 15m[^\n]*%-%-max%-failures",
      "%-%-cron '[^']+'",
      "ExecStart=[^\n]*%-%-job",
      "scripts/restore%.lua",
    } do
      assert.matches(pattern, examples)
    end
  end)

  it("refers to lua(1), curl(1), cron(8) and systemd.timer(5)", function()
    local see = section_text(by_name["SEE ALSO"]):gsub("%s+", "")
    for _, ref in ipairs { "lua(1)", "curl(1)", "cron(8)", "systemd.timer(5)" } do
      assert.matches(ref, see, 1, true)
    end
  end)

  it("renders with man without a warning", function()
    if not (have("man") and have("groff")) then
      pending("man or groff is not installed")
      return
    end
    -- stderr into the pipe, stdout (the page) away: only warnings and errors remain.
    local p = assert(io.popen("MANWIDTH=80 man --warnings -l " .. H.shell_quote(MANPAGE) .. " 2>&1 >/dev/null"))
    local warnings = p:read("a")
    local ok, _, code = p:close()
    assert.equals("", warnings)
    assert.is_true(ok, "man exited with status " .. tostring(code))
  end)
end)
