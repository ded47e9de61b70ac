-- cloudflare.cli: what the example scripts share, so each script stays about its job: the
-- option parser (`--name value`, `--name=value`, flags, repeatable options, `--help` rendered
-- from the option records, usage errors that exit 2 like cfrun's own), the question a large
-- change asks on a terminal, the default journal file of a run, and how failures are told.
-- Never changes a zone; lists one only where a function says so (cli.split_absent).
local M = {}

-- Exit statuses the example scripts share (documented in each script's header); the same
-- numbers as `cfrun --job`'s, so a scheduler reads a script's status and a job's alike.
local EXIT = require("cloudflare.core").EXIT -- runtime/cf_exit.h's, the one definition
M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE, M.EXIT_PENDING = EXIT.OK, EXIT.FAILED_IPS, EXIT.USAGE,
  EXIT.INCOMPLETE

--- The output formats of cloudflare.report, as a choice for cli.parse: { format = cli.FORMATS }.
M.FORMATS = { "table", "json", "jsonl", "csv" }

--- The running script's file name, for messages.
function M.name()
  return ((arg and arg[0]) or "script"):match("[^/]*$")
end

--- cli.die(msg[, usage]): the message (and the usage line) on stderr, exit status 2.
function M.die(msg, usage)
  io.stderr:write(M.name(), ": ", msg, "\n", usage and ("usage: " .. usage .. "\n") or "")
  os.exit(M.EXIT_USAGE)
end

--- cli.note(fmt, ...): one line on stderr, prefixed with the script's name.
function M.note(fmt, ...)
  io.stderr:write(M.name(), ": ", string.format(fmt, ...), "\n")
end

local function die(_, usage, msg) M.die(msg, usage) end

--- The options several scripts share, documented once: cli.OPTIONS.zone and so on, each an
--- option record for cli.parse's list form ({ name, kind, arg =, help = }).
M.OPTIONS = {
  zone = { "zone", "string", arg = "Z", help = "the zone id (default: the sandbox zone under --sandbox, else $ZONE)" },
  format = { "format", M.FORMATS, arg = "F", help = "table (default), json, jsonl or csv" },
  concurrency = { "concurrency", "number", arg = "N",
    help = "batches of 100 in flight at once (1 to 64, default 4)" },
  ["dry-run"] = { "dry-run", "flag", help = "show what would change (from a listing of the zone), with each row's"
    .. " status would_delete or would_update; change nothing" },
  ["ignore-missing"] = { "ignore-missing", "flag", help = "IPs the zone has no mapping of (by a listing taken"
    .. " first) are reported as already absent (status absent), not sent, and do not make the exit"
    .. " status 3; a job run on a fixed list should pass it" },
  yes = { "yes", "flag", help = "do not ask: on a terminal (stdin and stderr), a change of more than 100"
    .. " mappings shows what it will do and asks \"Proceed? [y/N]\" first; without a terminal it never"
    .. " asks" },
  journal = { "journal", "string", arg = "PATH", help = "journal to PATH instead of a new file in"
    .. " $XDG_STATE_HOME/cfrun/journal/ (else ~/.local/state/cfrun/journal/), the default of every run"
    .. " that changes something; restore.lua --last undoes the newest one" },
  ["no-journal"] = { "no-journal", "flag", help = "do not journal (a journaled delete lists the zone first)" },
}

--- cli.options(...) -> a list of option records for cli.parse: each argument a name of
--- cli.OPTIONS or a record of the script's own ({ name, kind, arg =, help =, required = }).
function M.options(...)
  local list = {}
  for i, o in ipairs { ... } do
    list[i] = type(o) == "string" and assert(M.OPTIONS[o], "cli.options: no common option " .. o) or o
  end
  return list
end

-- Word-wraps text to width columns, every line after the first indented by `indent`.
local function wrap(text, width, indent)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = line == "" and word or line .. " " .. word
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n" .. indent)
end

--- cli.usage(options, operands) -> "NAME [--zone Z] ... OPERANDS": the usage line of a list
--- of option records (a required one without brackets, a repeatable one with "...").
function M.usage(options, operands)
  local parts = { M.name() }
  for _, o in ipairs(options) do
    local text = "--" .. o[1] .. (o.arg and " " .. o.arg or "") .. (o[2] == "list" and " ..." or "")
    parts[#parts + 1] = o.required and text or "[" .. text .. "]"
  end
  if operands then parts[#parts + 1] = operands end
  return table.concat(parts, " ")
end

--- cli.help(usage, options[, doc]) -> text: what --help prints: the usage line, doc.about,
--- doc.operands ({ { "FILE", "what it is" }, ... }) and every option with its help, wrapped.
function M.help(usage, options, doc)
  doc = doc or {}
  local out = { "usage: " .. usage }
  if doc.about then out[#out + 1] = "\n" .. wrap(doc.about, 92, "") end
  local entries = {}
  for _, d in ipairs(doc.operands or {}) do entries[#entries + 1] = { d[1], d[2] } end
  for _, o in ipairs(options) do
    local help = o.help or ""
    if type(o[2]) == "table" and not o.help then help = "one of " .. table.concat(o[2], ", ") end
    entries[#entries + 1] = { "--" .. o[1] .. (o.arg and " " .. o.arg or ""), help }
  end
  if #entries > 0 then out[#out + 1] = "" end
  local width = 0
  for _, e in ipairs(entries) do width = math.max(width, #e[1]) end
  width = math.min(width, 22)
  for _, e in ipairs(entries) do
    local head = "  " .. e[1]
    local indent = string.rep(" ", width + 4)
    if #e[1] > width then
      out[#out + 1] = head .. "\n" .. indent .. wrap(e[2], 92 - #indent, indent)
    else
      out[#out + 1] = head .. string.rep(" ", width - #e[1] + 2) .. wrap(e[2], 92 - #indent, indent)
    end
  end
  if doc.epilog then out[#out + 1] = "\n" .. wrap(doc.epilog, 92, "") end
  return table.concat(out, "\n") .. "\n"
end

--- cli.parse(args, spec, usage[, doc]) -> options, positional
--- spec: { name = "flag" | "string" | "number" | "list" | { "choice", ... } }, or a list of
--- option records ({ name, kind, arg =, help = }; see cli.options), which --help renders
--- with doc (see cli.help); `args` is a list of strings (the script's `arg` or { ... }).
--- `--help` prints the help (the usage line alone for the map form) and exits 0. A `format`
--- choice given no --format takes $CFRUN_FORMAT when it is one of its choices (cfrun --json
--- sets it to json).
function M.parse(args, spec, usage, doc)
  local name = M.name()
  local records
  if spec[1] ~= nil then -- the list form: the records, in the order --help shows them
    records, spec = spec, {}
    for _, o in ipairs(records) do spec[o[1]] = o[2] end
  end
  local opts, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      table.move(args, i + 1, #args, #rest + 1, rest)
      break
    elseif a == "--help" or a == "-h" then
      if records then
        io.stdout:write(M.help(usage or M.usage(records), records, doc))
      else
        io.stdout:write("usage: ", usage or name, "\n")
      end
      os.exit(0)
    elseif a:sub(1, 2) == "--" then
      local key, value = a:match("^%-%-([^=]+)=(.*)$")
      key = key or a:sub(3)
      local kind = spec[key]
      if not kind then die(name, usage, "unknown option '--" .. key .. "'") end
      if kind == "flag" then
        if value then die(name, usage, "option '--" .. key .. "' takes no value") end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then die(name, usage, "option '--" .. key .. "' needs a value") end
        end
        if kind == "number" then
          local v = tonumber(value)
          if not v then die(name, usage, "option '--" .. key .. "' needs a number, got '" .. value .. "'") end
          opts[key] = v
        elseif kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], value)
        elseif type(kind) == "table" then
          local ok = false
          for _, choice in ipairs(kind) do ok = ok or choice == value end
          if not ok then
            die(name, usage, "option '--" .. key .. "' must be one of " .. table.concat(kind, ", ")
              .. ", got '" .. value .. "'")
          end
          opts[key] = value
        else
          opts[key] = value
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      die(name, usage, "unknown option '" .. a .. "'")
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  -- `cfrun --json` (or the user) sets $CFRUN_FORMAT: the default of a --format choice; an
  -- explicit --format wins, and a value the choice does not offer is ignored
  local choices, env = spec.format, os.getenv("CFRUN_FORMAT")
  if opts.format == nil and type(choices) == "table" and env then
    for _, c in ipairs(choices) do
      if c == env then opts.format = env end
    end
  end
  return opts, rest
end

--- cli.zone(opts, usage) -> the zone id from --zone, else $CFRUN_SANDBOX_ZONE (under
--- --sandbox a production $ZONE means nothing), else $ZONE. An id that is not 32 hex digits
--- exits 2 with where the id is found (util.zone_problem).
function M.zone(opts, usage)
  local env = os.getenv
  local z = opts.zone or env("CFRUN_SANDBOX_ZONE") or env("ZONE")
  if not z or z == "" then
    M.die("no zone: pass --zone ZONE_ID or set ZONE (run with --sandbox to try it out)", usage)
  end
  local problem = require("cloudflare.util").zone_problem(z:sub(1, 64))
  if problem then M.die("invalid zone id: " .. problem, usage) end
  return z
end

--- cli.concurrency(opts, usage) -> the --concurrency option (batches in flight at once, 1 to
--- 64), or nil for the library's default; anything else is a usage error.
function M.concurrency(opts, usage)
  local n = opts.concurrency
  if n ~= nil and (math.type(n) ~= "integer" or n < 1 or n > 64) then
    M.die("option '--concurrency' must be a whole number from 1 to 64", usage)
  end
  return n
end

--- cli.read_ips(source) -> ips, bad: cloudflare.iplist.read, with every line that is not an
--- address reported on stderr as FILE:LINE (exit 2 when the file cannot be read).
function M.read_ips(source)
  local iplist = require "cloudflare.iplist"
  local ips, bad = iplist.read(source)
  if not ips then M.die(bad) end -- bad is the message of io.open or read
  local name = (source == nil or source == "-") and "stdin" or source
  for _, b in ipairs(bad) do
    io.stderr:write(string.format("%s:%d: %s\n", name, b.line, iplist.not_address(b)))
  end
  return ips, bad
end

--- cli.split_absent(zone, ips) -> present, absent, requests: the --ignore-missing split, from one
--- listing of the zone taken before the call (never from an error's wording): `present` the
--- inputs to send (what is not an address too: the call reports it), `absent` a list of
--- { origin_ip = canonical, input = as given } for the addresses the zone has no mapping of,
--- each once; requests, those of the listing. A failed listing returns nil, err (nothing was
--- sent).
function M.split_absent(zone, ips)
  -- luacheck: read globals cloudflare (the host's module, present when a script runs)
  local listing, err = cloudflare.cache.origin_cloud_regions.list { zone_id = zone }
  if not listing then return nil, err end
  local has = {}
  for _, m in ipairs(listing.value) do has[m.origin_ip] = true end
  local present, absent, seen = {}, cloudflare.json.array(), {}
  for _, s in ipairs(ips) do
    local c = cloudflare.ip.canonical(s)
    if c and not has[c] then
      if not seen[c] then
        seen[c] = true
        absent[#absent + 1] = { origin_ip = c, input = s }
      end
    else
      present[#present + 1] = s
    end
  end
  return present, absent, listing.requests
end

--- The number of mappings above which cli.confirm asks on a terminal, unless told otherwise.
M.CONFIRM_THRESHOLD = 100

-- Whether a person can answer: standard input and standard error are terminals.
local function interactive()
  local core = require "cloudflare.core"
  return core.isatty(0) and core.isatty(2)
end

--- cli.would_ask{ n=, threshold=, share=, max_share=, yes= } -> boolean: whether cli.confirm
--- with these arguments asks (so that a script computes the plan to show only then): on a
--- terminal (stdin and stderr), without yes, when n is above threshold (default
--- cli.CONFIRM_THRESHOLD) or share (of the zone) is above max_share.
function M.would_ask(a)
  if a.yes or not interactive() then return false end
  local over = (a.n or 0) > (a.threshold or M.CONFIRM_THRESHOLD)
  if a.share and a.max_share and a.share > a.max_share then over = true end
  return over
end

-- "vendor/region n, ..." for the items of a plan, largest first, at most `limit` of them.
local function tally(items, key, limit)
  local n, order = {}, {}
  for _, it in ipairs(items) do
    local k = key(it)
    if not n[k] then n[k] = 0; order[#order + 1] = k end
    n[k] = n[k] + 1
  end
  table.sort(order, function(x, y) return n[x] > n[y] or (n[x] == n[y] and x < y) end)
  local parts = {}
  for i = 1, math.min(#order, limit) do parts[i] = order[i] .. " " .. n[order[i]] end
  if #order > limit then parts[#parts + 1] = "and " .. (#order - limit) .. " more" end
  return table.concat(parts, ", ")
end

--- cli.plan_summary{ verb=, items=, zone= } -> text: what a change will do, for cli.confirm:
--- "delete 250 mapping(s)", then per zone, per vendor and per region counts and a few IPs.
--- items: { origin_ip=, vendor=, region=, zone= } (zone defaults to the zone given).
function M.plan_summary(a)
  local items, zone = a.items, a.zone
  local sample = {}
  for i = 1, math.min(5, #items) do sample[i] = items[i].origin_ip end
  local out = { string.format("%s %d mapping(s)", a.verb or "change", #items),
    "  zones:   " .. tally(items, function(it) return it.zone or zone or "?" end, 5),
    "  vendors: " .. tally(items, function(it) return it.vendor or "(unknown)" end, 5),
    "  regions: " .. tally(items, function(it) return it.region or "(unknown)" end, 8),
    "  IPs:     " .. table.concat(sample, " ") .. (#items > #sample and " ..." or "") }
  return table.concat(out, "\n")
end

--- cli.confirm{ n=, threshold=, share=, max_share=, summary=, yes=, verb= }: the question a
--- large change asks on a terminal. When cli.would_ask says so, prints summary (text, or a
--- function giving it, called only then) on stderr and asks "Proceed? [y/N]"; anything but
--- y or yes, or end of input, exits EXIT_USAGE ("not confirmed: nothing was <verb>d"), before
--- anything is sent. A summary function may also return the exact count of its plan: at or
--- under the threshold, nothing is asked. Returns when the change may go ahead; never asks
--- (nor blocks) without a terminal, nor with yes (the scripts' --yes).
function M.confirm(a)
  if not M.would_ask(a) then return true end
  local summary = a.summary
  if type(summary) == "function" then
    local n
    summary, n = summary()
    if n and not M.would_ask { n = n, threshold = a.threshold, share = a.share,
      max_share = a.max_share } then
      return true -- the plan is smaller than n said (e.g. repeated or absent IPs)
    end
  end
  local name = M.name()
  io.stderr:write(name, ": ", tostring(summary or (a.n .. " mapping(s)")), "\n",
    name, ": Proceed? [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  if answer and (answer:match("^%s*[yY]%s*$") or answer:match("^%s*[yY][eE][sS]%s*$")) then
    return true
  end
  if not answer then io.stderr:write("\n") end
  io.stderr:write(name, ": not confirmed: nothing was ", a.verb or "change", "d (pass --yes to",
    " skip the question)\n")
  os.exit(M.EXIT_USAGE)
end

--- cli.confirm_delete(zone, ips, yes): cli.confirm for deleting the mappings of `ips` (a list
--- of address strings) in `zone`; the plan it shows comes from a dry run of bulk_delete (a
--- listing), taken only when asking.
function M.confirm_delete(zone, ips, yes)
  return M.confirm { n = #ips, yes = yes, verb = "delete", summary = function()
    -- luacheck: read globals cloudflare (the host's module, present when a script runs)
    local plan = cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = zone, ips = ips,
      dry_run = true }
    if not plan then return string.format("delete up to %d mapping(s) in zone %s", #ips, zone) end
    return M.plan_summary { verb = "delete", items = plan.value.succeeded, zone = zone },
      #plan.value.succeeded
  end }
end

---------------------------------------------------------------------------------------------
-- the default journal: an undo for every run

--- How many journals cli.journal keeps, and for how long: creating one deletes the journals
--- of its directory beyond the newest KEEP_JOURNALS, and those older than KEEP_DAYS (judged by
--- the UTC time in their names).
M.KEEP_JOURNALS, M.KEEP_DAYS = 100, 30

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- cli.journal_dir() -> the directory of the default journals: $XDG_STATE_HOME/cfrun/journal,
--- else ~/.local/state/cfrun/journal (nil when neither variable is set).
function M.journal_dir()
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then return nil end
    state = home .. "/.local/state"
  end
  return state .. "/cfrun/journal"
end

-- The default journals of dir, oldest first: by name (they start with the UTC time), or by
-- the time they were last written when by_mtime (two runs in one second stay in order).
local function journals_in(dir, by_mtime)
  local names = {}
  local p = io.popen("ls -1" .. (by_mtime and "rt " or " ") .. shq(dir) .. " 2>/dev/null")
  if p then
    for name in p:lines() do
      if name:find("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ%-.+%.jsonl$") then names[#names + 1] = name end
    end
    p:close()
  end
  if not by_mtime then table.sort(names) end
  return names
end

--- cli.last_journal() -> the path of the default journal written last, or nil.
function M.last_journal()
  local dir = M.journal_dir()
  if not dir then return nil end
  local names = journals_in(dir, true)
  return names[#names] and dir .. "/" .. names[#names] or nil
end

-- Deletes the journals of dir beyond the newest `keep` and those older than `days`.
local function prune_journals(dir, keep, days)
  local names = journals_in(dir)
  local cutoff = os.date("!%Y%m%dT%H%M%SZ", os.time() - days * 86400)
  for i, name in ipairs(names) do
    if i <= #names - keep or name:sub(1, 16) < cutoff then os.remove(dir .. "/" .. name) end
  end
end

--- cli.journal(opts[, { undo = text }]) -> the journal= argument of the script's bulk calls:
--- false under --no-journal and --dry-run (nothing changes); --journal PATH; $CFRUN_JOURNAL
--- when set (set but empty: false); nil under --sandbox (the fake's zone needs no undo); else
--- a new file in cli.journal_dir() (directories made 0700, the file is 0600), named by the
--- UTC time and the script: 20261201T234500Z-prune.lua-3f9a1c.jsonl. Creating it keeps the
--- directory bounded (cli.KEEP_JOURNALS, cli.KEEP_DAYS). The path is noted on stderr with how
--- to undo the run (undo, default the restore.lua command). A directory that cannot be made
--- is a usage error (exit 2): pass --journal PATH or --no-journal.
function M.journal(opts, how)
  local undo = how and how.undo
  if opts["no-journal"] then return false end
  if opts["dry-run"] then return false end -- a dry run changes nothing: nothing to journal
  if opts.journal then
    M.note("journal: %s (undo: %s)", opts.journal, undo or "cfrun scripts/restore.lua " .. opts.journal)
    return opts.journal
  end
  local env = os.getenv("CFRUN_JOURNAL")
  if env then return env ~= "" and env or false end
  if os.getenv("CFRUN_SANDBOX_ZONE") then return nil end
  local dir = M.journal_dir()
  if not dir then M.die("no HOME or XDG_STATE_HOME for the journal: pass --journal PATH or --no-journal") end
  local ok = os.execute("umask 077 && mkdir -p " .. shq(dir))
  if not ok then
    M.die("cannot make the journal directory " .. dir .. ": pass --journal PATH or --no-journal")
  end
  prune_journals(dir, M.KEEP_JOURNALS - 1, M.KEEP_DAYS)
  local path
  repeat
    path = string.format("%s/%s-%s-%06x.jsonl", dir, os.date("!%Y%m%dT%H%M%SZ"), M.name(),
      math.random(0, 0xffffff))
    local f = io.open(path)
    if f then f:close() end
  until not f
  M.note("journal: %s (undo: %s)", path, undo or "cfrun scripts/restore.lua --last")
  return path
end

--- What to do next with the IPs a batch call left without an answer, as cli.fail says it:
--- cli.ADVICE.pending and cli.ADVICE.unsent.
M.ADVICE = {
  pending = "sent, not known whether changed; check them, or restore from the journal",
  unsent = "certainly not changed; safe to send again",
}

--- cli.fail(err[, partial[, advice]]): report a wire failure on stderr, then the IPs it left
--- pending and those it left unsent, each list on a line of its own with what to do next
--- (cli.ADVICE, or advice.pending / advice.unsent in its place); exit EXIT_PENDING.
function M.fail(err, partial, advice)
  local name = M.name()
  io.stderr:write(name, ": ", tostring(err), "\n")
  local value = type(partial) == "table" and type(partial.value) == "table" and partial.value or {}
  for _, status in ipairs { "pending", "unsent" } do
    local ips = type(value[status]) == "table" and value[status] or {}
    if #ips > 0 then
      io.stderr:write(name, ": ", #ips, " IP(s) ", status, " (",
        (advice and advice[status]) or M.ADVICE[status], "): ", table.concat(ips, " "), "\n")
    end
  end
  os.exit(M.EXIT_PENDING)
end

--- cli.finish(res, err, partial, { format=, dry_run=, dry_status=, done=, would=, tail=,
--- changed=, advice= }): how a script that changes mappings ends: every row (report.write; a
--- dry run's as dry_status), in table format the count line ("12 <done>, 1 failed, 0 pending,
--- 0 unsent<tail(n)>", `would` in place of `done` under a dry run), "dry run: nothing was
--- <changed>" on stderr, then cli.fail (status 4) for a wire failure, else exit 0 when no IP
--- failed and 3 when some did.
function M.finish(res, err, partial, a)
  local report = require "cloudflare.report"
  local out = res or partial
  report.write(out, { format = a.format, dry_status = a.dry_status })
  if a.format == "table" then
    local n = report.counts(out)
    print(string.format("%d %s, %d failed, %d pending, %d unsent%s", n.succeeded,
      a.dry_run and a.would or a.done, n.failed, n.pending, n.unsent, a.tail and a.tail(n) or ""))
  end
  if a.dry_run then M.note("dry run: nothing was %s", a.changed or "deleted") end
  if not res then M.fail(err, partial, a.advice) end
  os.exit(#res.value.failed == 0 and M.EXIT_OK or M.EXIT_FAILED)
end

return M
