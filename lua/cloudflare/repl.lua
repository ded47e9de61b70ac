-- cloudflare.repl: what the REPL (runtime/cf_repl.c) shows and offers: `show` (pretty results),
-- `complete` (candidates for Tab) and `help`. Must not read input nor touch the terminal.
-- What it prints goes through core.redact: no active credential (runtime/cf_redact.h) is shown.
local core = require "cloudflare.core"
local report = require "cloudflare.report"

local concat, sort = table.concat, table.sort
local format = string.format

local M = {}

--- Tunables of the printer: items of a list shown before "... N more", rows of an aligned
--- table, nesting shown before "{...}", keys of a table shown before "... N more keys", line
--- width for one-line tables.
M.options = { max_items = 20, max_rows = 50, max_depth = 6, max_keys = 100, width = 100 }

local globals = _G -- the REPL's chunks run in the global environment

local KEYWORDS = {}
for k in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[k] = true
end

local function is_identifier(k)
  return type(k) == "string" and k:find("^[%a_][%w_]*$") ~= nil and not KEYWORDS[k]
end

-- tostring that never raises (a __tostring may fail or return a non-string)
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<" .. type(v) .. ">"
end

local function mt_name(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") or nil
end

local function is_error(v)
  return type(v) == "table" and mt_name(v) == "cloudflare.Error"
end

---------------------------------------------------------------------------------------------
-- documentation (help)

-- Signatures and one-paragraph docs, by path. "ocr." entries are the operations of a
-- cache.origin_cloud_regions namespace (the default client's and every client's).
local OCR = "cloudflare.cache.origin_cloud_regions"
-- cloudflare.new's signature and option list, from the one description of its options
local function new_options()
  local names, lines = {}, {}
  for i, o in ipairs(require("cloudflare").OPTIONS) do
    names[i] = o[1] .. "="
    lines[i] = o[1] .. ": " .. o[3]
  end
  return "{" .. table.concat(names, ", ") .. "} -> client", " Options: " .. table.concat(lines, "; ") .. "."
end
local NEW_SIG, NEW_OPTIONS = new_options()

local DOCS = {
  { "cloudflare.new", NEW_SIG,
    "Creates a client. Its requests share the process's connection pool; clients of one "
    .. "credential share one rate budget (with every cfrun process of the user on the machine; "
    .. "rate_limit = {requests=, per=, key=, redis=, shared=}) and at most max_in_flight (16) "
    .. "requests in flight. "
    .. "Unset fields come from the environment: "
    .. "CLOUDFLARE_API_TOKEN (or CLOUDFLARE_API_TOKEN_FILE, or CLOUDFLARE_EMAIL with "
    .. "CLOUDFLARE_API_KEY), CLOUDFLARE_BASE_URL and CFRUN_API_GENERATION (generation: \"v2\", "
    .. "the default, /origin/cloud_regions, or \"v1\", /cache/origin_cloud_regions, removed by "
    .. "Cloudflare on 2026-10-01; client.generation says which); credentials given here switch the "
    .. "environment's off. An unknown option or missing credentials raise. Credentials never "
    .. "appear in errors or tostring(client). Close it with client:close() or `local c <close> = ...`."
    .. NEW_OPTIONS },
  { "cloudflare.default_client", "() -> client",
    "The client behind cloudflare.cache.origin_cloud_regions.*, built from the environment on "
    .. "first use; raises when no credentials are configured." },
  { "client:close", "()",
    "Releases the client's connection. Idempotent; <close> and garbage collection do it too. "
    .. "Using a closed client raises." },
  { "client:request", "(method, path[, body[, {timeout=, connect_timeout=, shape=}]]) -> result, info | nil, err",
    "One raw HTTP request to base_url .. path (GET, POST, PUT, PATCH or DELETE, body a JSON "
    .. "string), with no retry, pacing or journal; the cache.origin_cloud_regions operations "
    .. "are built on it." },
  { "client:start", "(method, path[, body[, opts]]) -> transfer",
    "Starts client:request's request and returns at once; transfer:finish() waits for it "
    .. "and returns what client:request would have. Tasks use it to run requests at once." },

  { "cloudflare.spawn", "(fn, ...) -> task",
    "Runs fn(...) as a task: a coroutine whose API calls let other tasks run while their "
    .. "request is in flight. It starts at once and runs until its first wait. Tasks run while "
    .. "somebody waits (task:wait, parallel, sleep) and at the end of the script, which waits "
    .. "for every task." },
  { "cloudflare.wait", "(task) -> values",
    "task:wait(): what the task's function returned; if it raised, the error is raised again "
    .. "here, with the task's traceback. task.status is ready, running, waiting, done or failed." },
  { "cloudflare.parallel", "(fns[, {concurrency=8}]) -> results, errs",
    "Runs a list of functions as tasks, at most concurrency at once, and returns when all "
    .. "finished: results[i], errs[i] are the first two values fns[i] returned (res, err of an "
    .. "API call). Never raises for a task: one that raised has errs[i].kind = \"raised\" "
    .. "(message, traceback, value), and the others keep their results." },
  { "cloudflare.sleep", "(seconds)",
    "Waits; in a task the others run meanwhile, elsewhere the tasks run until the time passed." },

  { "cloudflare.ip.canonical", "(s) -> string | nil, \"invalid IP address\"",
    "The canonical text of an address: dotted quad, or RFC 5952 for IPv6 (lowercase, the "
    .. "longest run of zero groups compressed). Strict: no leading zeros in IPv4 parts, no "
    .. "zone ids, no surrounding spaces." },
  { "cloudflare.ip.valid", "(s) -> boolean", "Whether s is an IP address, by canonical's strict rules." },
  { "cloudflare.ip.version", "(s) -> 4 | 6 | nil", "The IP version of an address, nil for anything else." },
  { "cloudflare.ip.contains", "(cidr, s) -> boolean",
    "Whether address s lies in cidr. An invalid CIDR raises; a non-address is false. An "
    .. "IPv4-mapped IPv6 address counts as its IPv4 host." },
  { "cloudflare.ip.cidr", "(s) -> string | nil, \"invalid CIDR\"",
    "The canonical network/bits form with host bits cleared; a bare address is a host prefix." },
  { "cloudflare.ip.less", "(a, b) -> boolean",
    "Numeric order for table.sort: IPv4 before IPv6, non-addresses last." },
  { "cloudflare.ip.index", "(list) -> n, order, rank_of, input_of, invalid | nil, position",
    "A bulk call's input handling in one pass: the canonical IPs first seen first (order), each "
    .. "one's position in list (rank_of) and its spelling where not canonical (input_of), and "
    .. "{ i, s, ... } of every element that is not an address (invalid). nil, 0: list is not a "
    .. "plain sequence (keys 1..n, no metamethods); nil, i: element i is not a string." },
  { "cloudflare.ip.scan", "(text) -> ips, lines",
    "The lines of an IP list in one pass, as iplist.parse reads them ('#' comments, spaces "
    .. "trimmed, blank lines skipped): the addresses as written, and { line, text, ... } of "
    .. "every other line." },

  { "cloudflare.select.vendor", "(\"aws\"[, ...]) or ({...}) -> selector",
    "Matches mappings of these vendors; an unknown vendor raises. Combine selectors with * "
    .. "(and), + (or) and unary - (not)." },
  { "cloudflare.select.region", "(\"us-east-1\"[, ...]) -> selector",
    "Matches mappings whose region is exactly one of these." },
  { "cloudflare.select.region_matching", "(pattern) -> selector",
    "Matches mappings whose region contains a match of the Lua pattern." },
  { "cloudflare.select.cidr", "(\"10.0.0.0/8\"[, ...]) -> selector",
    "Matches mappings whose IP lies in one of the CIDRs; an invalid CIDR raises." },
  { "cloudflare.select.ips", "(list_or_set) -> selector",
    "Matches mappings whose IP is in the list (or set {[ip]=true}), after canonicalisation; an "
    .. "invalid IP raises." },
  { "cloudflare.select.where", "(fn[, description]) -> selector", "Matches mappings for which fn(mapping) is true." },
  { "cloudflare.select.all_of", "(s1, s2, ...) -> selector", "Matches when every given selector matches." },
  { "cloudflare.select.any_of", "(s1, s2, ...) -> selector", "Matches when any given selector matches." },
  { "cloudflare.select.none_of", "(s1, s2, ...) -> selector", "Matches when no given selector matches." },
  { "cloudflare.select.is_selector", "(v) -> boolean", "Whether v is a selector." },
  { "selector:matches", "(mapping) -> boolean", "Whether the selector matches one mapping; s(mapping) is the same." },
  { "selector:filter", "(mappings | list result) -> list", "The matching mappings." },
  { "selector:ips", "(mappings | list result) -> list",
    "The IPs of the matching mappings, ready for bulk_delete's ips." },
  { "selector:count", "(mappings | list result) -> integer", "How many mappings match." },
  { "selector:partition", "(mappings | list result) -> matching, rest", "The mappings split in two lists." },

  { "cloudflare.iplist.read", "(path | \"-\" | nil | file) -> ips, bad | nil, message",
    "Reads one address per line (# starts a comment, blank lines are skipped, CRLF is read as "
    .. "LF): ips as written, bad the lines that are not addresses, as {line=, text=, error=, why=}." },
  { "cloudflare.iplist.parse", "(text) -> ips, bad", "iplist.read for a string." },
  { "cloudflare.iplist.describe", "(bad) -> string", "The bad lines of read or parse, rendered for a message." },
  { "cloudflare.iplist.not_address", "(entry) -> string",
    "One bad line, quoted so that a stray character shows, with why it is not an address (a CIDR, a host name...)." },

  { "cloudflare.report.each", "(res) -> iterator",
    "for status, item in report.each(res): every IP of a batch result or partial, as "
    .. "succeeded, failed, pending or unsent, then absent when the result has value.absent "
    .. "(pending, unsent and absent items as {origin_ip=})." },
  { "cloudflare.report.counts", "(res) -> {succeeded=, failed=, pending=, unsent=, total=}",
    "The counts of a batch result (and absent=, when it has value.absent)." },
  { "cloudflare.report.write", "(x[, {format=, out=, columns=, dry_status=}])",
    "Prints a batch result, a list of mappings or rows, one mapping or supported regions as "
    .. "an aligned table (format \"table\", the default), \"json\", \"jsonl\" or \"csv\"; out "
    .. "defaults to io.stdout. A dry run's rows (res.dry_run) say dry_status (e.g. "
    .. "\"would_delete\"; default report.DRY_STATUS) in place of succeeded, in every format." },
  { "cloudflare.report.format", "(x[, {format=, columns=, dry_status=}]) -> string",
    "What report.write prints, as a string." },
  { "cloudflare.report.rows", "(x[, {dry_status=}]) -> columns, rows",
    "The columns and row tables behind the formats." },

  { "cloudflare.json.encode", "(value[, {indent=true}]) -> string",
    "JSON with sorted keys; tables marked with json.array stay arrays even when empty." },
  { "cloudflare.json.decode", "(text) -> value",
    "Strict JSON (the decoder of API responses); JSON null is json.null, integer literals are "
    .. "integers. Invalid JSON and an object that repeats a key raise." },
  { "cloudflare.json.array", "([t]) -> t", "Marks t (or a new table) to encode as a JSON array, even when empty." },
  { "cloudflare.json.is_array", "(t) -> boolean", "Whether t is marked as an array." },

  { "cloudflare.journal.restore", "{path=, zone_id=, since=, client=, dry_run=} -> res | nil, err, partial",
    "Undoes what the journal shows: re-creates with bulk_update every mapping it shows as deleted "
    .. "(or possibly deleted) that the zone does not have again, puts back what a journaled "
    .. "bulk_update changed and deletes what it created, leaving alone what someone changed since. "
    .. "Idempotent; res.restore = {candidates=, records=, bad_lines=, present=, present_ips=, "
    .. "changed=, changed_ips=, deleted=}." },
  { "cloudflare.journal.read", "(path[, {zone_id=, since=}]) -> records, bad_lines | nil, message",
    "The journal's records, and how many lines could not be read." },
  { "cloudflare.journal.path", "(journal_arg) -> path | nil",
    "The journal file for a call: its journal= argument, else $CFRUN_JOURNAL; false turns it off." },
  { "cloudflare.journal.open", "(path, op, zone_id) -> writer | nil, message",
    "Opens a journal for one API call (its records share a call id); used by the operations." },
  { "cloudflare.journal.items", "(ips, known[, before]) -> list",
    "The {ip=, region=, vendor=} items of an intent record (with before= what a write replaces, "
    .. "or false); used by the operations." },
  { "cloudflare.journal.outcome", "(batch, attempt, result, info, entries) -> record",
    "The outcome record of one attempt; used by the operations." },

  { "cloudflare.cli.parse", "(args, spec, usage[, doc]) -> options, positional",
    "Parses --name value, --name=value, flags and repeatable options for a script "
    .. "(spec = {name = \"flag\" | \"string\" | \"number\" | \"list\" | {choices}}, or a list of "
    .. "option records, see cli.options, whose --help is cli.help); answers --help and exits 2 on a usage error." },
  { "cloudflare.cli.zone", "(opts, usage) -> zone_id",
    "The zone from --zone, $CFRUN_SANDBOX_ZONE or $ZONE; exits 2 when missing or malformed." },
  { "cloudflare.cli.finish",
    "(res, err, partial, {format=, dry_run=, dry_status=, done=, would=, tail=, changed=, advice=})",
    "How a script that changes mappings ends: the rows, the count line in table format, the dry-run "
    .. "note, then cli.fail for a wire failure or exit 0 / 3 (some IPs failed)." },
  { "cloudflare.cli.fail", "(err, partial[, advice])",
    "Reports a wire failure, the pending IPs (check or restore them) and the unsent ones (send "
    .. "them again) on stderr, and exits 4." },
  { "cloudflare.cli.read_ips", "(source)", "iplist.read for scripts: reports every line that is not an address "
    .. "on stderr as FILE:LINE and exits 2 when the file cannot be read. Returns ips, bad." },
  { "cloudflare.cli.concurrency", "(opts, usage)", "The --concurrency option for a bulk call's "
    .. "concurrency=: nil when not given; not a whole number from 1 to 64 is a usage error (exit 2)." },
  { "cloudflare.cli.options", "(...) -> records",
    "Option records for cli.parse's list form: names of the shared cli.OPTIONS (zone, format, "
    .. "concurrency, dry-run, ignore-missing, yes, journal, no-journal) or {name, kind, arg=, help=, required=}." },
  { "cloudflare.cli.usage", "(records[, operands]) -> string", "The usage line of a list of option records." },
  { "cloudflare.cli.help", "(usage, records[, {about=, operands=, epilog=}]) -> text",
    "What --help prints for a list of option records: usage, about, operands and every option with its help." },
  { "cloudflare.cli.confirm", "{n=, threshold=, share=, max_share=, summary=, yes=, verb=}",
    "On a terminal (stdin and stderr), for a change of more than threshold (default "
    .. "cli.CONFIRM_THRESHOLD, 100) mappings or a share above max_share, prints summary (text or "
    .. "a function returning text[, exact n]) and asks \"Proceed? [y/N]\"; anything but y or yes "
    .. "exits 2 "
    .. "before anything is sent. Never asks with yes or without a terminal." },
  { "cloudflare.cli.confirm_delete", "(zone, ips, yes)",
    "cli.confirm for deleting the mappings of ips in zone, its plan from a dry run (a listing) "
    .. "taken only when asking." },
  { "cloudflare.cli.would_ask", "{n=, threshold=, share=, max_share=, yes=} -> boolean",
    "Whether cli.confirm with these arguments would ask." },
  { "cloudflare.cli.plan_summary", "{verb=, items=, zone=} -> text",
    "What a change will do, for cli.confirm: its count, counts per zone, vendor and region, a few IPs." },
  { "cloudflare.cli.journal", "(opts[, {undo=}]) -> path | false | nil",
    "The journal= of a script's bulk calls: --no-journal, --journal PATH, $CFRUN_JOURNAL, else "
    .. "a new 0600 file per run in cli.journal_dir(), named on stderr; keeps the directory to "
    .. "the newest cli.KEEP_JOURNALS, none older than cli.KEEP_DAYS. None under --dry-run or --sandbox." },
  { "cloudflare.cli.journal_dir", "() -> path | nil",
    "$XDG_STATE_HOME/cfrun/journal, else ~/.local/state/cfrun/journal." },
  { "cloudflare.cli.last_journal", "() -> path | nil",
    "The newest journal in cli.journal_dir() (restore.lua --last)." },
  { "cloudflare.cli.split_absent", "(zone, ips) -> present, absent, requests | nil, err",
    "The --ignore-missing split, from one listing of the zone: the inputs to send, and "
    .. "{origin_ip=, input=} for each address the zone has no mapping of (value.absent)." },
  { "cloudflare.cli.die", "(msg[, usage])", "Prints the message (and usage) on stderr and exits 2." },
  { "cloudflare.cli.note", "(fmt, ...)", "One formatted line on stderr, prefixed with the script's name." },
  { "cloudflare.cli.name", "() -> string", "The running script's file name, for messages." },

  { "help", "([fn | table | name])",
    "help() lists the API; help(fn) shows a function's signature and what it does." },
}

local MODULES = {
  { "cloudflare.ip", "IP addresses (native)" },
  { "cloudflare.select", "composable selectors over mappings" },
  { "cloudflare.iplist", "IP lists from files" },
  { "cloudflare.report", "walking and printing results" },
  { "cloudflare.json", "JSON with sorted keys and real empty arrays" },
  { "cloudflare.journal", "the journal of mutating calls, and restore" },
  { "cloudflare.cli", "option parsing and exit statuses for scripts" },
}

-- The operations' entries come from the family's description, aliases included.
local binder = require "cloudflare.binder"
local ocr = require "cloudflare.origin_cloud_regions"
for _, op in ipairs(ocr.OPERATIONS) do
  DOCS[#DOCS + 1] = { "ocr." .. op.name, op.signature, op.doc }
  for _, alias in ipairs(op.aliases or {}) do
    DOCS[#DOCS + 1] = { "ocr." .. alias, op.signature, "The older name of " .. op.name .. ": the "
      .. "same function. " .. op.doc }
  end
end

local doc_by_path = {}
local names = {} -- every documented name, probed when an __index is a function
for _, d in ipairs(DOCS) do
  doc_by_path[d[1]] = { path = d[1], sig = d[2], text = d[3] }
  names[#names + 1] = d[1]:match("[%w_]+$")
end
for _, n in ipairs { "cache", "origin_cloud_regions", "ip", "select", "iplist", "report", "json",
  "journal", "cli", "everything", "null" } do
  names[#names + 1] = n
end

local doc_of = setmetatable({}, { __mode = "k" }) -- function -> doc entry
local known_ops = {}                               -- operation names

local function register(fn, path)
  if type(fn) == "function" and doc_by_path[path] and not doc_of[fn] then doc_of[fn] = doc_by_path[path] end
end

-- Builds the function -> doc index from the module tables as they are now.
local function build_index()
  local ok, cf = pcall(require, "cloudflare")
  if not ok then return end
  for _, d in ipairs(DOCS) do
    local mod, name = d[1]:match("^(cloudflare[%w_.]*)%.([%w_]+)$")
    if mod then
      local t = cf
      for seg in mod:gmatch("%.([%w_]+)") do t = type(t) == "table" and t[seg] or nil end
      if type(t) == "table" then register(rawget(t, name), d[1]) end
    end
  end
  for _, op in ipairs(ocr.NAMES) do
    known_ops[op] = true
    register(cf.cache.origin_cloud_regions[op], "ocr." .. op)
  end
  local sel = getmetatable(cf.select.everything)
  if type(sel) == "table" and type(sel.__index) == "table" then
    for k, v in pairs(sel.__index) do register(v, "selector:" .. k) end
  end
  -- client methods: from a client that never connects (no request is made); its token is
  -- shorter than any secret core.redact hides (cf_redact.h), so it hides nothing
  local made, client = pcall(cf.new, { api_token = "probe", base_url = "http://127.0.0.1:9" })
  if made then
    register(client.close, "client:close")
    register(client.request, "client:request")
    register(client.start, "client:start")
    client:close()
  end
  register(M.help, "help")
end

-- The doc entry of a function, or nil: by identity (the documented functions, the default
-- client's operations), then as an operation that cloudflare.binder built for some client.
local function find_doc(fn)
  if doc_of[fn] then return doc_of[fn] end
  local _, name = binder.op_of(fn)
  return name and doc_by_path["ocr." .. name] or nil
end

local function display_path(path, client_bound)
  if path:sub(1, 4) == "ocr." then
    return (client_bound and "client.cache.origin_cloud_regions." or OCR .. ".") .. path:sub(5)
  end
  return path
end

local function wrap(text, indent, width)
  local lines, line = {}, indent
  for word in text:gmatch("%S+") do
    if #line > #indent and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = indent .. word
    else
      line = (#line > #indent and line .. " " or line) .. word
    end
  end
  if #line > #indent then lines[#lines + 1] = line end
  return concat(lines, "\n")
end

local function show_doc(d, client_bound)
  local head = wrap(display_path(d.path, client_bound) .. d.sig, "", 92):gsub("\n", "\n    ")
  return head .. "\n" .. wrap(d.text, "  ", 92) .. "\n"
end

local function overview()
  local out = {
    "cfrun: Lua 5.4 with the cloudflare module. help(fn) shows any function below.",
    "",
    "Clients",
  }
  local function entry(path, short)
    local d = doc_by_path[path]
    out[#out + 1] = "  " .. path .. (short and "" or d.sig)
  end
  entry("cloudflare.new", true)
  out[#out] = out[#out] .. "{api_token=, base_url=, timeout=, ...}  (env: CLOUDFLARE_API_TOKEN)"
  entry("cloudflare.default_client")
  entry("client:close")
  entry("client:request")
  entry("client:start")
  out[#out + 1] = ""
  out[#out + 1] = "Concurrency"
  entry("cloudflare.spawn")
  entry("cloudflare.wait")
  entry("cloudflare.parallel")
  entry("cloudflare.sleep")
  out[#out + 1] = ""
  out[#out + 1] = "Origin cloud region mappings: " .. OCR .. ".<op>{...} (the default client)"
  out[#out + 1] = "  or client.cache.origin_cloud_regions.<op>{...}"
  local ops = {}
  for op in pairs(known_ops) do ops[#ops + 1] = op end
  sort(ops)
  for _, op in ipairs(ops) do
    local d = doc_by_path["ocr." .. op]
    if d then out[#out + 1] = format("  %s%s", op, d.sig) end
  end
  out[#out + 1] = ""
  out[#out + 1] = "Library"
  for _, m in ipairs(MODULES) do
    local fns = {}
    for _, d in ipairs(DOCS) do
      local name = d[1]:match("^" .. m[1]:gsub("%.", "%%.") .. "%.([%w_]+)$")
      if name then fns[#fns + 1] = name end
    end
    out[#out + 1] = format("  %-20s %s", m[1], m[2])
    out[#out + 1] = wrap(concat(fns, ", "), string.rep(" ", 23), 92)
  end
  out[#out + 1] = format("  %-20s %s", "selectors", "what cloudflare.select builds")
  out[#out + 1] = wrap("s:ips(x), s:filter(x), s:count(x), s:partition(x), s:matches(m)",
    string.rep(" ", 23), 92)
  out[#out + 1] = ""
  out[#out + 1] = "REPL: Tab completes names, Ctrl-C stops a call or clears the line, Ctrl-D exits."
  out[#out + 1] = "Printing: require(\"cloudflare.repl\").options (max_items, max_rows, ...)."
  return concat(out, "\n") .. "\n"
end

-- help for a module table: its documented functions
local function module_help(t)
  for _, m in ipairs(MODULES) do
    local ok, mod = pcall(require, m[1])
    if ok and mod == t then
      local out = { m[1] .. ": " .. m[2] }
      for _, d in ipairs(DOCS) do
        if d[1]:match("^" .. m[1]:gsub("%.", "%%.") .. "%.[%w_]+$") then
          out[#out + 1] = "  " .. d[1]:match("[%w_]+$") .. d[2]
        end
      end
      return concat(out, "\n") .. "\n"
    end
  end
end

--- help([x]) -> nothing; prints the API overview, or the doc of a function, module or name.
function M.help(...)
  local x = ...
  local out
  if select("#", ...) == 0 then
    out = overview()
  elseif type(x) == "function" then
    local d = find_doc(x)
    if d then
      out = show_doc(d, doc_of[x] == nil)
    else
      out = "no help for " .. safe_tostring(x) .. ": it is not a function of the cloudflare API "
        .. "(help() lists them)\n"
    end
  elseif type(x) == "string" then
    local d = doc_by_path[x] or doc_by_path["ocr." .. x]
    if not d then
      for _, e in ipairs(DOCS) do
        if e[1]:match("[%w_]+$") == x then d = doc_by_path[e[1]] break end
      end
    end
    out = d and show_doc(d) or format("no help for %q (help() lists the API)\n", x)
  elseif type(x) == "table" then
    local ok, cf = pcall(require, "cloudflare")
    if ok and (x == cf.cache or x == cf.cache.origin_cloud_regions or x == cf) then
      out = overview()
    else
      out = module_help(x) or "no help for this table (help() lists the API)\n"
    end
  elseif mt_name(x) == "cloudflare.Client" then
    out = show_doc(doc_by_path["cloudflare.new"]) .. "  Methods: client:close(), client:request(...), "
      .. "client:start(...); "
      .. "operations: client.cache.origin_cloud_regions.<op>{...} (help() lists them).\n"
  else
    out = "no help for a " .. type(x) .. " value (help() lists the API)\n"
  end
  io.stdout:write(core.redact(out))
end

---------------------------------------------------------------------------------------------
-- pretty printing

local SECRET_KEYS = {
  api_token = true, api_key = true, authorization = true, ["x-auth-key"] = true, token = true,
}
local SECRET_HEADERS = { authorization = true, ["x-auth-key"] = true }

local ESCAPES = {
  ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t", ["\v"] = "\\v", ['"'] = '\\"', ["\\"] = "\\\\",
}

-- A string as Lua would read it back: escapes for quotes, backslashes, control characters
-- and (when the string is not valid UTF-8) bytes above 127.
local function quote(s)
  local pattern = utf8.len(s) and '[\0-\31\127"\\]' or '[\0-\31\127-\255"\\]'
  return '"' .. s:gsub(pattern, function(c)
    return ESCAPES[c] or format("\\%03d", c:byte())
  end) .. '"'
end
M.quote = quote

local function number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n ~= n then return "0/0" end
  if n == math.huge then return "math.huge" end
  if n == -math.huge then return "-math.huge" end
  local s
  for digits = 14, 17 do -- the shortest text that reads back as the same number
    s = format("%." .. digits .. "g", n)
    if tonumber(s) == n then break end
  end
  if not s:find("[.eEn]") then s = s .. ".0" end -- still a float when read back
  return s
end

local function is_null(v)
  local ok, json = pcall(require, "cloudflare.json")
  return ok and v == json.null
end

local function scalar(v)
  local t = type(v)
  if t == "string" then
    local header = v:match("^%s*([%w-]+)%s*:")
    if header and SECRET_HEADERS[header:lower()] then
      return quote(v:match("^[^:]*:") .. " <redacted>")
    end
    return quote(v)
  elseif t == "number" then
    return number(v)
  elseif t == "function" then
    local d = find_doc(v)
    if d then return "function: " .. display_path(d.path, doc_of[v] == nil) end
  elseif t == "userdata" and is_null(v) then
    return "json.null"
  end
  return safe_tostring(v)
end

local KEY_ORDER = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = KEY_ORDER[type(a)] or 4, KEY_ORDER[type(b)] or 4
  if ta ~= tb then return ta < tb end
  if ta == 1 or ta == 2 then return a < b end
  return safe_tostring(a) < safe_tostring(b)
end

local function key_text(k)
  if is_identifier(k) then return k end
  return "[" .. scalar(k) .. "]"
end

local function is_secret(k)
  return type(k) == "string" and SECRET_KEYS[k:lower()] == true
end

local value -- forward

-- A table: the list part in order (truncated after max_items), then the other keys sorted;
-- on one line when it fits, else one item per line. `indent` is the column of the line the
-- table starts on; `path` names it for cycle reports.
local function render_table(t, indent, path, ctx, depth)
  local opts, active = M.options, ctx.active
  if active[t] then return "<cycle: " .. active[t] .. ">" end
  local mt = getmetatable(t)
  if type(mt) == "table" and rawget(mt, "__tostring") and not is_error(t) then
    return safe_tostring(t) -- selectors and other objects that describe themselves
  end
  if depth >= opts.max_depth then return next(t) == nil and "{}" or "{...}" end
  active[t] = path
  local items = {}
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local shown = math.min(n, opts.max_items)
  for i = 1, shown do
    items[#items + 1] = value(rawget(t, i), indent + 2, path .. "[" .. i .. "]", ctx, depth + 1)
  end
  local more
  if n > shown then more = format("... %d more", n - shown) end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  sort(keys, key_less)
  local hidden = #keys - opts.max_keys
  for i = 1, math.min(#keys, opts.max_keys) do
    local k = keys[i]
    local v = rawget(t, k)
    local text
    if is_secret(k) then
      text = "<redacted>"
    else
      local sub = is_identifier(k) and (path .. "." .. k) or (path .. "[" .. scalar(k) .. "]")
      text = value(v, indent + 2, sub, ctx, depth + 1)
    end
    items[#items + 1] = key_text(k) .. " = " .. text
  end
  active[t] = nil
  if hidden > 0 then more = (more and more .. ", " or "... ") .. hidden .. " more keys" end
  if more then items[#items + 1] = more end
  if #items == 0 then return "{}" end
  local one = "{ " .. concat(items, ", ") .. " }"
  if not one:find("\n", 1, true) and (ctx.flat or indent + #one <= opts.width) then return one end
  local pad = string.rep(" ", indent)
  local lines = { "{" }
  for i, item in ipairs(items) do
    local last_more = more and i == #items
    lines[#lines + 1] = pad .. "  " .. item .. (last_more and "" or ",")
  end
  lines[#lines + 1] = pad .. "}"
  return concat(lines, "\n")
end

function value(v, indent, path, ctx, depth)
  if type(v) == "table" then return render_table(v, indent, path, ctx, depth) end
  return scalar(v)
end

--- render_value(v[, flat]) -> the generic rendering of one value (no aligned tables); flat:
--- on one line whatever its length.
function M.render_value(v, flat)
  return value(v, 0, "root", { active = {}, flat = flat }, 0)
end

local function is_mapping(m)
  return type(m) == "table" and type(rawget(m, "origin_ip")) == "string"
end

local function is_mapping_list(l)
  if type(l) ~= "table" or rawget(l, 1) == nil then return false end
  for _, m in ipairs(l) do
    if not is_mapping(m) then return false end
  end
  return true
end

local function is_batch(x)
  return type(x) == "table" and type(rawget(x, "value")) == "table"
    and type(rawget(x.value, "succeeded")) == "table"
end

-- rows as an aligned table (report's), truncated after max_rows
local function aligned(columns, rows)
  local limit = M.options.max_rows
  local shown = {}
  for i = 1, math.min(#rows, limit) do shown[i] = rows[i] end
  local text = report.format(shown, { columns = columns }):gsub("\n$", "")
  if #rows > limit then text = text .. format("\n... %d more", #rows - limit) end
  return text
end

-- the fields of a result other than the ones shown above them, on one line
local function other_fields(x, skip)
  local rest, any = {}, false
  for k, v in next, x do
    if not skip[k] then rest[k], any = v, true end
  end
  return any and M.render_value(rest, true) or nil
end

local function plural(n, word)
  return format("%d %s%s", n, word, n == 1 and "" or "s")
end

-- The special shapes, as text, or nil for the generic rendering.
local function special(x)
  if is_batch(x) then
    local c = report.counts(x)
    local head = format("%s%d succeeded, %d failed, %d pending, %d unsent",
      rawget(x, "dry_run") and "dry run: " or "", c.succeeded, c.failed, c.pending, c.unsent)
    if math.type(rawget(x, "requests")) == "integer" then
      head = head .. " (" .. plural(x.requests, "request") .. ")"
    end
    local out = { head }
    local columns, rows = report.rows(x)
    if #rows > 0 then out[#out + 1] = aligned(columns, rows) end
    out[#out + 1] = other_fields(x, { value = true, requests = true, dry_run = true })
    return concat(out, "\n")
  elseif type(x) == "table" and type(rawget(x, "value")) == "table"
    and (is_mapping(x.value) or is_mapping_list(x.value)
      or (rawget(x, "id") == "origin_public_cloud_region" and next(x.value) == nil)) then
    local list = is_mapping(x.value) and { x.value } or x.value
    local out = { plural(#list, "mapping") }
    if #list > 0 then out[#out + 1] = aligned(report.rows(list)) end
    out[#out + 1] = other_fields(x, { value = true })
    return concat(out, "\n")
  elseif is_mapping_list(x) then
    return plural(#x, "mapping") .. "\n" .. aligned(report.rows(x))
  elseif type(x) == "table" and type(rawget(x, "vendors")) == "table" and not getmetatable(x) then
    local columns, rows = report.rows(x)
    local out = { plural(#rows, "region") }
    if #rows > 0 then out[#out + 1] = aligned(columns, rows) end
    out[#out + 1] = other_fields(x, { vendors = true })
    return concat(out, "\n")
  elseif is_error(x) then
    local rest = {}
    for k, v in next, x do
      if k ~= "message" then rest[k] = v end
    end
    return "cloudflare.Error: " .. safe_tostring(x) .. "\n  "
      .. value(rest, 2, "error", { active = {}, flat = true }, 0)
  end
  return nil
end

-- One value at the top level: a special shape when it is one (and renders), else generic.
local function block(x)
  local ok, text = pcall(special, x)
  if ok and text then return text end
  return M.render_value(x)
end

--- render(...) -> the text show prints for a call's results ("" for none).
function M.render(...)
  local n = select("#", ...)
  if n == 0 then return "" end
  local v = table.pack(...)
  if n >= 2 and v[1] == nil and is_error(v[2]) then -- nil, err[, partial]
    local out = { "nil, " .. block(v[2]) }
    if v[3] ~= nil then out[#out + 1] = "partial: " .. block(v[3]) end
    for i = 4, n do out[#out + 1] = block(v[i]) end
    return concat(out, "\n") .. "\n"
  end
  local blocks, one_line = {}, true
  for i = 1, n do
    blocks[i] = block(v[i])
    one_line = one_line and not blocks[i]:find("\n", 1, true)
  end
  return concat(blocks, one_line and "\t" or "\n") .. "\n"
end

--- show(...): prints the results of an evaluated line, with every active credential redacted.
function M.show(...)
  local ok, text = pcall(M.render, ...)
  if not ok then -- never lose a result to a printing bug: fall back to lua.c's way
    local plain = {}
    for i = 1, select("#", ...) do plain[i] = safe_tostring((select(i, ...))) end
    text = concat(plain, "\t") .. "\n(pretty printing failed: " .. tostring(text) .. ")\n"
  end
  io.stdout:write(core.redact(text))
  io.stdout:flush()
end

---------------------------------------------------------------------------------------------
-- completion

local function index(obj, k)
  local ok, v = pcall(function() return obj[k] end)
  if ok then return v end
  return nil
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- The names v offers: its identifier keys, those of its __index tables, and for an __index
-- function (a userdata such as a cloudflare.Client, a module loading submodules on demand)
-- the documented names it answers.
local function members(v, out, depth)
  if depth > 5 then return end
  if type(v) == "table" then
    for k in next, v do
      if is_identifier(k) then out[k] = true end
    end
  end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then
    members(idx, out, depth + 1)
  elseif idx ~= nil then
    for _, k in ipairs(names) do
      if out[k] == nil and index(v, k) ~= nil then out[k] = true end
    end
  end
end

local function candidates(v, partial, methods_only, prefix, out)
  local found = {}
  members(v, found, 0)
  for k in pairs(found) do
    if k:sub(1, #partial) == partial and (not methods_only or callable(index(v, k))) then
      out[#out + 1] = prefix .. k
    end
  end
end

--- complete(text_before_cursor) -> candidates for the expression at the cursor (a name, or
--- fields and methods after `.` and `:`), each a full replacement of the trailing
--- [%w_.:]* run of the text, sorted. Never raises on odd input.
function M.complete(line)
  if type(line) ~= "string" then return {} end
  local word = line:match("[%w_.:]*$")
  local lead, expr = word:match("^([.:]*)(.*)$")
  if lead ~= "" and lead ~= ".." then return {} end -- after `..` a new expression starts
  if expr:find("^%d") then return {} end             -- a number
  local out = {}
  local prefix, sep, partial = expr:match("^(.-)([.:])([%w_]*)$")
  if not prefix then
    candidates(globals, expr, false, lead, out)
    for k in pairs(KEYWORDS) do
      if k:sub(1, #expr) == expr and #expr > 0 then out[#out + 1] = lead .. k end
    end
  else
    if prefix:find(":", 1, true) then return {} end
    local v = globals
    for seg in (prefix .. "."):gmatch("([^.]*)%.") do
      if not is_identifier(seg) then return {} end
      local tv = type(v)
      if tv ~= "table" and tv ~= "userdata" and tv ~= "string" then return {} end
      v = index(v, seg)
    end
    if v == nil then return {} end
    candidates(v, partial, sep == ":", lead .. prefix .. sep, out)
  end
  sort(out)
  local unique = {}
  for _, c in ipairs(out) do
    if unique[#unique] ~= c then unique[#unique + 1] = c end
  end
  return unique
end

---------------------------------------------------------------------------------------------

--- init(): called once by the REPL: defines the global `help` and indexes the docs.
function M.init()
  local ok, err = pcall(build_index)
  if not ok then io.stderr:write("cfrun: help is incomplete: ", tostring(err), "\n") end
  rawset(globals, "help", M.help)
end

--- doc(fn) -> "path" or nil: the documented name of a function (for the specs).
function M.doc(fn)
  local d = find_doc(fn)
  return d and d.path or nil
end

--- The help registry, where each function's doc is defined (cloudflare.types generates the
--- editor definitions from it): DOCS { path, signature, text }, MODULES { name, what }.
M.DOCS, M.MODULES = DOCS, MODULES

return M
