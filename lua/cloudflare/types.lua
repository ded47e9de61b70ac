-- cloudflare.types: LuaLS (lua-language-server) `---@meta` definitions of everything a script
-- can use, generated from the descriptions the runtime has already: cloudflare.OPTIONS (the
-- client options), the endpoint family's description (cloudflare.origin_cloud_regions: its
-- operations, arguments, signatures and docs), the REPL's help registry (cloudflare.repl's
-- DOCS and MODULES: every library function's signature and doc) and the modules as loaded
-- (their functions, constants and metatables). What none of them says is written here once,
-- as data: which Lua type a word of a signature stands for (TYPES), the shapes of results and
-- errors (SHAPES) and the few functions the help registry has no entry for (EXTRA).
--
-- `generate()` returns the text; the build writes it to build/types/cloudflare.lua and installs
-- it as share/cfrun/types/cloudflare.lua (docs/editor.md). spec/types_spec.lua checks it against
-- the runtime. Deterministic: everything comes out in description order, or sorted. Must not do
-- I/O.

local concat, sort = table.concat, table.sort
local format = string.format

local M = {}

---------------------------------------------------------------------------------------------
-- what the descriptions do not say

--- The LuaLS type a name in a signature (a parameter, a return value, a field of a table
--- argument) stands for. A name not listed is `any`.
M.TYPES = {
  -- plain words
  string = "string", boolean = "boolean", integer = "integer", number = "number", table = "table",
  text = "string", s = "string", a = "string", b = "string", cidr = "string", pattern = "string",
  description = "string", path = "string", file = "file*", source = "string", fmt = "string",
  msg = "string", message = "string", usage = "string", doc = "string", zone = "string",
  zone_id = "string", op = "string", method = "string", body = "string", name = "string",
  value = "any", v = "any", x = "any", t = "table", result = "any", values = "any",
  -- functions and tasks
  fn = "function", fns = "function[]", seconds = "number", task = "cloudflare.Task",
  transfer = "cloudflare.Transfer", client = "cloudflare.Client", results = "any[]",
  errs = "table<integer, cloudflare.Error>", iterator = "cloudflare.Each",
  -- selectors and mappings
  selector = "cloudflare.Selector", s1 = "cloudflare.Selector", s2 = "cloudflare.Selector",
  mapping = "cloudflare.Mapping", mappings = "cloudflare.Mapping[]", ["list result"] = "cloudflare.ListResult",
  list_or_set = "string[]|table<string, boolean>", list = "any[]", matching = "cloudflare.Mapping[]",
  rest = "cloudflare.Mapping[]",
  -- IP lists, results, errors
  ips = "string[]", bad = "cloudflare.BadLine[]", entry = "cloudflare.BadLine", res = "cloudflare.BatchResult",
  partial = "cloudflare.BatchResult", err = "cloudflare.Error", info = "table", present = "string[]",
  absent = "cloudflare.Absent[]", requests = "integer", succeeded = "integer", failed = "integer",
  pending = "integer", unsent = "integer", total = "integer", order = "string[]",
  rank_of = "table<string, integer>", input_of = "table<string, string>", invalid = "any[]",
  position = "integer", lines = "any[]",
  -- report, json, journal
  format = "string", out = "file*", columns = "string[]", rows = "table[]", dry_status = "string",
  indent = "boolean", records = "table[]", record = "table", bad_lines = "integer", since = "string",
  dry_run = "boolean", journal_arg = "string|false", writer = "table", known = "table",
  before = "table",
  batch = "integer", attempt = "integer", entries = "table",
  -- cli
  args = "string[]", spec = "table", options = "table", positional = "string[]", opts = "table",
  advice = "table", operands = "string", about = "string", epilog = "string", n = "integer",
  threshold = "integer", share = "number", max_share = "number", summary = "string|function",
  yes = "boolean", verb = "string", items = "table[]", undo = "string", done = "string",
  would = "string", changed = "string", tail = "(fun(n: integer): string)",
  -- client:request and cloudflare.parallel's options
  timeout = "number", connect_timeout = "number", concurrency = "integer", shape = "\"batch\"",
  -- rate_limit (cloudflare.new) and on_wait's arguments
  per = "number", key = "string", redis = "string", shared = "boolean", reason = "string",
}

--- The types of the operations' argument names (cloudflare.binder's ARGUMENTS checks them);
--- a name not listed here is taken from TYPES, then `any`.
M.ARGUMENT_TYPES = {
  zone_id = "string", ip = "string", origin_ip = "string", region = "string",
  vendor = "cloudflare.Vendor", ips = "string[]", items = "cloudflare.MappingInput[]",
  dry_run = "boolean", journal = "string|false", concurrency = "integer", page = "integer",
  per_page = "integer",
}

--- The result classes of the description's result kinds (per generation: list's "many", ...).
M.RESULTS = {
  one = "cloudflare.MappingResult", written = "cloudflare.MappingResult",
  deleted = "cloudflare.MappingResult", many = "cloudflare.ListResult",
  batch = "cloudflare.BatchResult", regions = "cloudflare.RegionsResult",
}

--- The object types a help entry names by prefix ("client:close", "selector:ips"): class, and
--- the local that carries its methods in the generated file.
M.OBJECTS = {
  client = "cloudflare.Client", selector = "cloudflare.Selector", task = "cloudflare.Task",
  transfer = "cloudflare.Transfer",
}

--- Parameters that may be nil whatever the signature says: what an API call returned (a
--- function taking `res, err, partial` gets nil for the ones that did not come).
M.NILABLE = { err = true, partial = true, res = true }

--- Help entries that are not part of a script's API (the REPL defines `help` for itself).
M.REPL_ONLY = { help = true }

--- Functions the help registry has no entry for: { path, signature, doc } as in the registry,
--- or { path, same = path }: a method that is the registry's function (task:wait is
--- cloudflare.wait). An entry of the registry with the same path wins.
M.EXTRA = {
  { "task:wait", same = "cloudflare.wait" },
  { "transfer:finish", "() -> result, info | nil, err",
    "Waits for the request client:start started and returns what client:request would have." },
  { "transfer:done", "() -> boolean", "Whether the request completed (finish will not wait)." },
}

--- Fields of objects that are not functions: { name, type, doc }.
M.OBJECT_FIELDS = {
  ["cloudflare.Client"] = {
    { "generation", "cloudflare.Generation", "the API generation the client talks to" },
    -- the family's namespace, from its NAME ("cache.origin_cloud_regions"): added below
  },
  ["cloudflare.Task"] = {
    { "status", '"ready"|"running"|"waiting"|"done"|"failed"', "where the task is" },
  },
}

--- The selectors' operators (metamethod -> LuaLS @operator), for those the metatable has.
M.OPERATORS = {
  __add = "add(cloudflare.Selector): cloudflare.Selector",
  __mul = "mul(cloudflare.Selector): cloudflare.Selector",
  __unm = "unm: cloudflare.Selector",
  __call = "call(cloudflare.Mapping): boolean",
}

local ERROR_KINDS = { "api", "http", "network", "timeout", "decode", "journal", "interrupted",
  "rate_limited", "internal", "config", "exists", "raised" }

--- The shapes of what the operations and the library return: { class, parent, doc, fields },
--- each field { name, type, doc } (a name ending in "?" is optional). In the order written.
M.SHAPES = {
  { "cloudflare.Mapping", nil, "One origin cloud region mapping.", {
    { "origin_ip", "string", "the canonical address" },
    { "region?", "string", "" }, { "vendor?", "cloudflare.Vendor|string", "" },
    { "modified_on?", "string", "when the mapping last changed (list)" } } },
  { "cloudflare.MappingInput", nil, "An item of bulk_update: ip (or origin_ip), region, vendor.", {
    { "ip?", "string", "the address (or origin_ip)" }, { "origin_ip?", "string", "the same as ip" },
    { "region", "string", "" }, { "vendor", "cloudflare.Vendor", "" } } },
  { "cloudflare.Result", nil, "What every operation's result has.", {
    { "generation", "cloudflare.Generation", "the API generation that answered" },
    { "requests", "integer", "HTTP requests made (retries, lookups and listings included)" },
    { "id?", "string", '"origin_public_cloud_region" on v1; nil on v2' },
    { "editable?", "boolean", "v1 only" },
    { "modified_on?", "string", "v1: the set's last change; nil on v2" } } },
  { "cloudflare.ListResult", "cloudflare.Result", "The result of list.", {
    { "value", "cloudflare.Mapping[]", "the mappings, in the server's order" },
    { "result_info?", "cloudflare.ResultInfo", "one page (page= or per_page=, v2 only)" } } },
  { "cloudflare.ResultInfo", nil, "The counts of one page of a v2 listing.", {
    { "page?", "integer", "" }, { "per_page?", "integer", "" }, { "count?", "integer", "" },
    { "total_count?", "integer", "" }, { "total_pages?", "integer", "" } } },
  { "cloudflare.MappingResult", "cloudflare.Result", "The result of get, create, update, delete.", {
    { "value", "cloudflare.Mapping", "the mapping read, written or deleted" } } },
  { "cloudflare.RegionsResult", nil, "The result of supported_regions.", {
    { "generation", "cloudflare.Generation", "the API generation that answered" },
    { "requests", "integer", "HTTP requests made" },
    { "vendors", "table<string, cloudflare.Region[]>", "the regions of each vendor" },
    { "obtained_codes", "boolean", "" } } },
  { "cloudflare.Region", nil, "A region supported_regions lists.", {
    { "name", "string", "" }, { "upper_tier_colos", "string[]", "" } } },
  { "cloudflare.BatchResult", "cloudflare.Result", "The result of a batch call (or its partial).", {
    { "value", "cloudflare.BatchValue", "every input IP in exactly one list" },
    { "dry_run?", "boolean", "true for a dry run: succeeded holds what would go" },
    { "restore?", "cloudflare.RestoreInfo", "journal.restore's counts" } } },
  { "cloudflare.BatchValue", nil, "The outcome of every IP of a batch call.", {
    { "succeeded", "cloudflare.Succeeded[]", "applied, in input order" },
    { "failed", "cloudflare.Failed[]", "refused, with the reason" },
    { "pending", "string[]", "canonical IPs sent, fate unknown: check them, or restore from the journal" },
    { "unsent", "string[]", "canonical IPs certainly not applied: safe to send again" },
    { "absent?", "cloudflare.Absent[]", "not mapped (cli.split_absent, --ignore-missing)" } } },
  { "cloudflare.Succeeded", nil, "An IP a batch call applied.", {
    { "origin_ip", "string", "the canonical address" }, { "region?", "string", "" },
    { "vendor?", "cloudflare.Vendor|string", "" }, { "input?", "string", "the string the caller passed" },
    { "deleted?", "boolean", "journal.restore: a creation undone" },
    { "dry_status?", "string", 'a dry run: what it would do, e.g. "would_delete"' } } },
  { "cloudflare.Failed", nil, "An IP a batch call did not apply, and why.", {
    { "origin_ip", "string", "" }, { "error", "string", "the server's text, or cfrun's" },
    { "input?", "string", "the string the caller passed" },
    { "already_absent?", "boolean", "after a retry: a lost attempt may have deleted it" } } },
  { "cloudflare.Absent", nil, "An IP the zone has no mapping of.", {
    { "origin_ip", "string", "" }, { "input", "string", "" } } },
  { "cloudflare.RestoreInfo", nil, "What journal.restore found.", {
    { "candidates", "integer", "" }, { "records", "integer", "" }, { "bad_lines", "integer", "" },
    { "present", "integer", "" }, { "present_ips", "string[]", "" }, { "changed", "integer", "" },
    { "changed_ips", "string[]", "" }, { "deleted", "integer", "" } } },
  { "cloudflare.Error", nil, "A failure on the wire (returned, never raised); tostring(err) is the message.", {
    { "kind", "cloudflare.ErrorKind", "" },
    { "message", "string", "one line" },
    { "status?", "integer", "HTTP status" },
    { "errors", "cloudflare.ErrorDetail[]", "the envelope's errors, possibly empty" },
    { "request_id?", "string", "the cf-ray response header" },
    { "unsent?", "boolean", "true when the request certainly was not applied" },
    { "retry_after?", "number", "seconds the server asked to wait" },
    { "should_retry?", "boolean", "the x-should-retry header" },
    { "ratelimit?", "cloudflare.Ratelimit", "the Ratelimit header" },
    { "hint?", "string", "what to do (a 403, a 404 of the wrong generation)" },
    { "absent?", "boolean", "get or delete: the mapping does not exist" },
    { "exists?", "boolean", "create: the IP is mapped already" },
    { "requests?", "integer", "HTTP requests made before the failure" },
    { "bytes?", "integer", "the size of the response body" },
    { "http_version?", "string", 'the protocol that answered: "1.1", "2" or "3"' },
    { "unexpected?", "table[]", "IPs a response named that the caller never gave: {origin_ip=, list=}" },
    { "signal?", "string", 'kind "interrupted": the signal' },
    { "traceback?", "string", 'kind "raised" (cloudflare.parallel): where the task raised' },
    { "value?", "any", 'kind "raised": the error object itself' } } },
  { "cloudflare.ErrorDetail", nil, "One error of an API envelope.", {
    { "code?", "integer", "" }, { "message?", "string", "" } } },
  { "cloudflare.Ratelimit", nil, "What a response's Ratelimit header said.", {
    { "remaining?", "integer", "" }, { "reset?", "integer", "seconds" }, { "quota?", "integer", "" },
    { "window?", "integer", "seconds" } } },
  { "cloudflare.BadLine", nil, "A line of an IP list that is not an address.", {
    { "line", "integer", "" }, { "text", "string", "" }, { "error", "string", "" },
    { "why?", "string", "what the text is, when it can tell" } } },
}

---------------------------------------------------------------------------------------------
-- the sources

--- The descriptions generate() reads: { cloudflare =, family =, docs =, modules = }: the
--- public module (its OPTIONS), the endpoint family and the REPL's help registry (repl.DOCS,
--- repl.MODULES), each where it is defined.
function M.sources()
  local repl = require "cloudflare.repl"
  return { cloudflare = require "cloudflare", family = require "cloudflare.origin_cloud_regions",
    docs = repl.DOCS, modules = repl.MODULES }
end

---------------------------------------------------------------------------------------------
-- signatures: "(a, b[, {k=, l=1}]) -> x, y | nil, err" to typed parameters and returns

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- Splits s at `sep` (a single character) outside (), {} and []; optional: also returns, per
-- piece, how many [ were open where it starts, with the brackets themselves removed.
local function split(s, sep, optional)
  local pieces, opt, depth, level, cur, start = {}, {}, 0, 0, {}, nil
  local function push()
    local p = trim(concat(cur))
    if p ~= "" then pieces[#pieces + 1], opt[#pieces + 1] = p, start or level end
    cur, start = {}, nil
  end
  for c in s:gmatch(".") do
    if depth == 0 and optional and (c == "[" or c == "]") then
      level = level + (c == "[" and 1 or -1)
    elseif depth == 0 and c == sep then
      push()
    else
      if c == "(" or c == "{" or c == "[" then depth = depth + 1 end
      if c == ")" or c == "}" or c == "]" then depth = depth - 1 end
      if not start and c:find("%S") then start = level end
      cur[#cur + 1] = c
    end
  end
  push()
  return pieces, opt
end

local function is_name(s) return s:find("^[%a_][%w_]*$") ~= nil end

-- The type of one alternative of a parameter or return value, or nil when it is not one.
local function alt_type(a, types, unknown, mark)
  if a == "nil" or a == "false" or a == "true" then return a end
  if a:find('^"[^"]*"$') or a:find("^%-?%d+$") then return a end -- a literal type
  if a:find("^%b{}$") then -- a table: {k=, l=default}
    local fields = {}
    for _, f in ipairs(split(a:sub(2, -2), ",")) do
      local k, default = f:match("^([%a_][%w_]*)=(.*)$")
      if not k then return f == "..." and "table" or nil end
      local t = types[k] or M.TYPES[k]
      if not t then
        local n = tonumber(default)
        if default == "true" or default == "false" then
          t = "boolean"
        elseif n then
          t = math.type(n)
        elseif default:find('^"') then
          t = "string"
        else
          t = "any"
          if unknown then unknown[#unknown + 1] = k end
        end
      end
      fields[#fields + 1] = k .. (mark or "?") .. ": " .. t
    end
    return #fields == 0 and "table" or "{" .. concat(fields, ", ") .. "}"
  end
  if is_name(a) or M.TYPES[a] then
    local t = types[a] or M.TYPES[a]
    if not t and unknown then unknown[#unknown + 1] = a end
    return t or "any"
  end
  return nil
end

-- "A|B" for a list of types (deduplicated, in order), nil added when `optional`.
local function union(list, optional)
  local seen, out = {}, {}
  for _, t in ipairs(list) do
    if t == "any" then return "any" end
    if not seen[t] then seen[t], out[#out + 1] = true, t end
  end
  if optional and not seen["nil"] then out[#out + 1] = "nil" end
  if #out == 2 and out[2] == "nil" and not out[1]:find("[|%s]") then return out[1] .. "?" end
  return concat(out, "|")
end

-- One parameter list "(a, b[, c])" or "{k=, l=}" (one table argument): a list of
-- { name, type, optional } or nil when it cannot be read.
local function params_of(text, types, unknown)
  if text:find("^%b{}$") then
    local t = alt_type(text, types, unknown)
    return t and { { name = "args", type = t } } or nil
  end
  if not text:find("^%b()$") then return nil end
  local pieces, levels = split(text:sub(2, -2), ",", true)
  local out, used, has = {}, {}, {}
  for _, p in ipairs(pieces) do has[p] = true end
  for i, p in ipairs(pieces) do
    local par = { optional = levels[i] > 0 }
    if p == "..." then
      local prev = out[#out]
      par.name, par.type = "...", prev and (prev.literal or prev.name:find("%d$")) and prev.type or "any"
    else
      local alts, types_of = split(p, "|"), {}
      for _, a in ipairs(alts) do
        if a == "nil" then
          par.optional = true
        else
          local t = alt_type(a, types, unknown)
          if not t then return nil end
          types_of[#types_of + 1] = t
          if not par.name and is_name(a) then par.name = a end
          if a:find('^"') then par.literal = true end
        end
      end
      if par.literal and #types_of == 1 then types_of[1] = "string" end
      if alts[1]:find("^%b{}$") then par.name = par.name or (used.opts and "opts" .. i or "opts") end
      -- what a call returned on failure: cli.finish(res, err, partial) takes them as they came
      if M.NILABLE[p] and (p ~= "res" or has.err) then par.optional = true end
      par.type = union(types_of)
    end
    if not par.name or used[par.name] then
      par.name = (par.literal and "s" or "arg") .. i
    end
    used[par.name] = true
    out[#out + 1] = par
  end
  return out
end

-- The return part "x, y | nil, err": a list of { name, type } or nil when it cannot be read.
local function returns_of(text, types, unknown)
  local alts, width = {}, 0
  for i, alt in ipairs(split(text, "|")) do
    alts[i] = split(alt, ",")
    width = math.max(width, #alts[i])
  end
  local out = {}
  for pos = 1, width do
    local list, optional, name = {}, false, nil
    for _, alt in ipairs(alts) do
      local a = alt[pos]
      if a == nil then
        optional = true
      else
        local t = alt_type(a, types, unknown, "")
        if not t then return nil end
        if t == "nil" then optional = true else list[#list + 1] = t end
        if not name and is_name(a) and t ~= a then name = a end -- not "nil", "false", "string"
      end
    end
    out[pos] = { name = name, type = #list == 0 and "nil" or union(list, optional) }
  end
  return out
end

--- signature(sig[, types]) -> { params =, returns =, overloads =, fallback = } for one help
--- signature: params and returns are lists of { name, type, optional }; `fallback` is set when
--- the parameters could not be read (they are then `...: any`). `types` overrides TYPES for
--- some names (an operation's res is its result class). Words typed as nothing are listed in
--- the result's `unknown`.
function M.signature(sig, types)
  types = types or {}
  local unknown = {}
  local arrow = sig:find(" -> ", 1, true)
  local ptext, rtext = trim(arrow and sig:sub(1, arrow - 1) or sig), arrow and trim(sig:sub(arrow + 4))
  local s = { overloads = {}, unknown = unknown }
  local forms = {}
  -- "(a) or (b)": the first form, and the others as overloads
  local rest = ptext
  while true do
    local form, after = rest:match("^(%b()) or (.*)$")
    if not form then break end
    forms[#forms + 1], rest = form, after
  end
  forms[#forms + 1] = rest
  s.params = params_of(forms[1], types, unknown)
  if not s.params then
    s.params, s.fallback = { { name = "...", type = "any", optional = true } }, ptext
  end
  if rtext then
    s.returns = returns_of(rtext, types, unknown)
    if not s.returns then s.returns, s.fallback = { { name = nil, type = "any" } }, sig end
  else
    s.returns = {}
  end
  for i = 2, #forms do
    local p = params_of(forms[i], types, unknown)
    if p then s.overloads[#s.overloads + 1] = p else s.fallback = sig end
  end
  return s
end

---------------------------------------------------------------------------------------------
-- writing

local function camel(name)
  return (name:gsub("^%l", string.upper):gsub("_(%w)", string.upper))
end

local function one_line(s) return (tostring(s or ""):gsub("%s+", " ")) end

-- Doc text as `---` comment lines of at most ~100 characters.
local function doc_lines(out, text)
  local line = "---"
  for word in one_line(text):gmatch("%S+") do
    if #line > 3 and #line + 1 + #word > 100 then
      out[#out + 1] = line
      line = "---" .. word
    else
      line = (#line > 3 and line .. " " or line) .. word
    end
  end
  if #line > 3 then out[#out + 1] = line end
end

local function fun_type(params, returns)
  local ps, rs = {}, {}
  for i, p in ipairs(params) do
    ps[i] = p.name == "..." and ("...: " .. p.type) or (p.name .. (p.optional and "?" or "") .. ": " .. p.type)
  end
  for i, r in ipairs(returns or {}) do rs[i] = r.type end
  return "fun(" .. concat(ps, ", ") .. ")" .. (#rs > 0 and (": " .. concat(rs, ", ")) or "")
end

-- One function: its doc, @param, @return and @overload lines and `function <target>(...) end`.
-- method: the first parameter is self (dropped).
local function write_function(out, target, sep, entry, s, method)
  local params = s.params
  if method and params[1] and params[1].name ~= "..." and entry.drop_first then
    params = { table.unpack(params, 2) }
  end
  out[#out + 1] = ""
  if entry.sig then out[#out + 1] = "---`" .. one_line(entry.sig) .. "`" .. (#entry.doc > 0 and "<br>" or "") end
  doc_lines(out, entry.doc)
  local names = {}
  for i, p in ipairs(params) do
    local desc = s.fallback and (" " .. one_line(s.fallback)) or ""
    out[#out + 1] = format("---@param %s%s %s%s", p.name, p.optional and p.name ~= "..." and "?" or "",
      p.type, desc)
    names[i] = p.name
  end
  for _, r in ipairs(s.returns) do
    out[#out + 1] = "---@return " .. r.type .. (r.name and (" " .. r.name) or "")
  end
  for _, o in ipairs(s.overloads) do
    out[#out + 1] = "---@overload " .. fun_type(o, s.returns)
  end
  out[#out + 1] = format("function %s%s%s(%s) end", target, sep, entry.name, concat(names, ", "))
end

local function lua_type(v, classes)
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  if name and classes[name] then return name end
  local t = type(v)
  if t == "number" then return math.type(v) end
  if t == "userdata" then return "lightuserdata" end -- json.null: lua-cjson's sentinel
  return t
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  sort(keys)
  return keys
end

local function literal(v)
  if type(v) == "string" then return format("%q", v) end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
end

--- generate([sources[, info]]) -> the text of the LuaLS definition file (one value: the build
--- runs io.write(generate())). sources defaults to M.sources(); a table `info` is filled with
--- what was made of them: skipped (help entries that are not a script's), extra (EXTRA entries
--- used), undocumented (functions without a help entry), fallbacks (signatures whose parameters
--- could not be read) and unknown (words of signatures typed `any`).
function M.generate(src, info)
  src = src or M.sources()
  local cf, family = src.cloudflare, src.family
  info = info or {}
  for _, k in ipairs { "skipped", "extra", "undocumented", "fallbacks", "unknown" } do info[k] = {} end
  local out = {
    "---@meta",
    "-- cfrun " .. tostring(cf._VERSION) .. ": LuaLS definitions of the `cloudflare` module, generated by",
    "-- cloudflare.types from the runtime's own descriptions (cloudflare.OPTIONS, the endpoint",
    "-- family's description and the REPL's help). Do not edit: regenerate with",
    "--   cfrun -e 'io.write(require(\"cloudflare.types\").generate())'",
    "-- The modules are compiled into cfrun; this file is for editors only (docs/editor.md).",
  }
  local classes = { ["cloudflare.Selector"] = true, ["cloudflare.Task"] = true, ["cloudflare.Error"] = true,
    ["cloudflare.Client"] = true, ["cloudflare.Transfer"] = true }
  local unknown_seen = {}
  local function sig_of(path, sig, types)
    local s = M.signature(sig, types)
    if s.fallback then info.fallbacks[#info.fallbacks + 1] = path end
    for _, w in ipairs(s.unknown) do
      if not unknown_seen[w] then unknown_seen[w], info.unknown[#info.unknown + 1] = true, w end
    end
    return s
  end

  -- the help registry by path, the extras where it has nothing
  local entries, by_path = {}, {}
  for _, d in ipairs(src.docs) do
    local e = { path = d[1], sig = d[2], doc = d[3] or "" }
    entries[#entries + 1], by_path[e.path] = e, e
  end
  for _, x in ipairs(M.EXTRA) do
    if not by_path[x[1]] then
      local same = x.same and by_path[x.same]
      local e = same and { path = x[1], sig = same.sig, doc = same.doc, drop_first = true }
        or { path = x[1], sig = x[2], doc = x[3] or "" }
      entries[#entries + 1], by_path[e.path] = e, e
      info.extra[#info.extra + 1] = x[1]
    end
  end

  -- aliases
  local gens, vendors, kinds = sorted_keys(family.GENERATIONS), {}, {}
  for i, g in ipairs(gens) do gens[i] = format("%q", g) end
  for i, v in ipairs(family.VENDORS) do vendors[i] = format("%q", v) end
  for i, k in ipairs(ERROR_KINDS) do kinds[i] = format("%q", k) end
  out[#out + 1] = ""
  out[#out + 1] = "---@alias cloudflare.Generation " .. concat(gens, "|")
  out[#out + 1] = "---@alias cloudflare.Vendor " .. concat(vendors, "|")
  out[#out + 1] = "---@alias cloudflare.ErrorKind " .. concat(kinds, "|")
  out[#out + 1] = "---@alias cloudflare.Each fun(): string?, table?"

  -- the module
  local modules, module_set = {}, {}
  for _, m in ipairs(src.modules) do
    local name = m[1]:match("^cloudflare%.([%w_]+)$")
    if name then modules[#modules + 1], module_set[name] = { name = name, doc = m[2] }, true end
  end
  local ns_path = {} -- the family's NAME: "cache.origin_cloud_regions"
  for seg in family.NAME:gmatch("[%w_]+") do ns_path[#ns_path + 1] = seg end
  local ns_class = "cloudflare." .. camel(ns_path[#ns_path])
  out[#out + 1] = ""
  out[#out + 1] = "---The cfrun API: a global in every script, and require(\"cloudflare\")."
  out[#out + 1] = "---@class cloudflare"
  for _, k in ipairs(sorted_keys(cf)) do
    local v = rawget(cf, k)
    if type(v) ~= "function" and not module_set[k] and k ~= ns_path[1] and v ~= nil then
      local lit = literal(v)
      out[#out + 1] = format("---@field %s %s%s", k, lua_type(v, classes), lit and (" = " .. lit) or "")
    end
  end
  out[#out + 1] = "cloudflare = {}"

  -- client options
  out[#out + 1] = ""
  out[#out + 1] = "---The options of cloudflare.new (cloudflare.OPTIONS)."
  out[#out + 1] = "---@class cloudflare.ClientOptions"
  local sub = {}
  for _, o in ipairs(cf.OPTIONS) do
    local name, t, help = o[1], o[2], o[3]
    local ty = t
    if t == "table" then
      local fields = help:match("^(%b{})")
      if fields then
        ty = "cloudflare." .. camel(name)
        sub[#sub + 1] = { ty, fields, name }
      end
    elseif t == "function" then
      local args = help:match("^" .. name .. "(%b())")
      if args then ty = "(" .. fun_type(params_of(args, {}, {}) or {}) .. ")" end
    elseif t == "string" and help:find('^"') then
      local lits = {}
      for l in help:gmatch('"[^"]*"') do lits[#lits + 1] = l end
      sort(lits)
      ty = concat(lits, "|")
    end
    out[#out + 1] = format("---@field %s? %s %s", name, ty, one_line(help))
  end
  for _, s in ipairs(sub) do
    out[#out + 1] = ""
    out[#out + 1] = "---cloudflare.new's " .. s[3] .. " option."
    out[#out + 1] = "---@class " .. s[1]
    for _, f in ipairs(split(trim(s[2]:sub(2, -2)), ",")) do
      local k = f:match("^([%a_][%w_]*)=")
      if k then
        out[#out + 1] = format("---@field %s? %s", k, M.TYPES[k] or "any")
        if not M.TYPES[k] then info.unknown[#info.unknown + 1] = k end
      end
    end
  end

  -- the objects (locals carrying methods)
  local objects = {}
  for prefix, class in pairs(M.OBJECTS) do objects[#objects + 1] = { prefix = prefix, class = class } end
  sort(objects, function(x, y) return x.class < y.class end)
  local object_fields = {}
  for k, v in pairs(M.OBJECT_FIELDS) do object_fields[k] = v end
  object_fields["cloudflare.Client"] = { table.unpack(M.OBJECT_FIELDS["cloudflare.Client"]) }
  table.insert(object_fields["cloudflare.Client"],
    { ns_path[1], "cloudflare." .. camel(ns_path[1]), "the endpoint families" })
  local sel_mt = cf.select and getmetatable(cf.select.everything)
  for _, o in ipairs(objects) do
    local lname = o.class:match("[%w_]+$")
    out[#out + 1] = ""
    out[#out + 1] = "---@class " .. o.class
    for _, f in ipairs(object_fields[o.class] or {}) do
      out[#out + 1] = format("---@field %s %s %s", f[1], f[2], f[3])
    end
    if o.class == "cloudflare.Selector" and type(sel_mt) == "table" then
      for _, mm in ipairs(sorted_keys(M.OPERATORS)) do
        if rawget(sel_mt, mm) then out[#out + 1] = "---@operator " .. M.OPERATORS[mm] end
      end
    end
    out[#out + 1] = format("local %s = {}", lname)
    o.lname = lname
  end
  local object_of = {}
  for _, o in ipairs(objects) do object_of[o.prefix] = o end

  -- the family: its namespace, one argument class per operation, the operations
  local per_call = {}
  local limits = require("cloudflare.util").LIMITS
  for _, o in ipairs(cf.OPTIONS) do
    if limits[o[1]] then per_call[#per_call + 1] = o end
  end
  out[#out + 1] = ""
  out[#out + 1] = "---@class cloudflare." .. camel(ns_path[1])
  out[#out + 1] = format("---@field %s %s", ns_path[#ns_path], ns_class)
  out[#out + 1] = ""
  out[#out + 1] = "---The operations of " .. family.NAME .. " (the default client's, and every client's)."
  out[#out + 1] = "---@class " .. ns_class
  local ns_local = ns_class:match("[%w_]+$")
  out[#out + 1] = format("local %s = {}", ns_local)
  out[#out + 1] = ""
  out[#out + 1] = format("---@type cloudflare.%s", camel(ns_path[1]))
  out[#out + 1] = format("cloudflare.%s = { %s = %s }", ns_path[1], ns_path[#ns_path], ns_local)
  for _, op in ipairs(family.OPERATIONS) do
    local class = "cloudflare." .. camel(op.name) .. "Args"
    out[#out + 1] = ""
    out[#out + 1] = format("---The arguments of %s.%s.", family.NAME, op.name)
    out[#out + 1] = "---@class " .. class
    local function field(name, optional, desc)
      local t = M.ARGUMENT_TYPES[name] or M.TYPES[name] or "any"
      out[#out + 1] = format("---@field %s%s %s%s", name, optional and "?" or "", t,
        desc and (" " .. one_line(desc)) or "")
    end
    for _, a in ipairs(op.args) do
      field(a, false)
      if a == "ip" then field("origin_ip", true, "the same as ip (the SDKs' v2 name)") end
    end
    for _, a in ipairs(op.options or {}) do field(a, true) end
    for _, o in ipairs(per_call) do -- typed as cloudflare.new's options of the same names
      out[#out + 1] = format("---@field %s? %s %s; for this call only", o[1], o[2], one_line(o[3]))
    end
    -- the result class, from what each generation returns
    local rs = {}
    for _, g in ipairs(sorted_keys(family.GENERATIONS)) do
      local r = op[g] and M.RESULTS[op[g].result]
      if r and not rs[r] then rs[r], rs[#rs + 1] = true, r end
    end
    local result = #rs > 0 and concat(rs, "|") or "cloudflare.Result"
    for _, name in ipairs { op.name, table.unpack(op.aliases or {}) } do
      local e = by_path["ocr." .. name] or { sig = op.signature, doc = op.doc or "" }
      -- the parameters are the argument class; the returns come from the signature
      local s = sig_of("ocr." .. name, "()" .. (e.sig:match(" %-> .*$") or ""),
        { res = result, partial = result })
      s.params = { { name = "args", type = class } }
      write_function(out, ns_local, ".", { name = name, sig = e.sig, doc = e.doc }, s)
    end
  end

  -- the result shapes
  for _, shape in ipairs(M.SHAPES) do
    out[#out + 1] = ""
    doc_lines(out, shape[3])
    out[#out + 1] = "---@class " .. shape[1] .. (shape[2] and (" : " .. shape[2]) or "")
    for _, f in ipairs(shape[4]) do
      out[#out + 1] = format("---@field %s %s%s", f[1], f[2], f[3] ~= "" and (" " .. f[3]) or "")
    end
  end

  -- the library: cloudflare.<fn>, the modules and their functions, the objects' methods
  local module_lines = {} -- module name -> lines
  local function module_out(name)
    if not module_lines[name] then
      module_lines[name] = {}
      if not module_set[name] then
        module_set[name] = true
        modules[#modules + 1] = { name = name, doc = "" }
      end
    end
    return module_lines[name]
  end
  local top = {}
  for _, e in ipairs(entries) do
    local path = e.path
    local prefix, method = path:match("^([%w_]+):([%w_]+)$")
    local mod, fname = path:match("^cloudflare%.([%w_]+)%.([%w_]+)$")
    local tname = path:match("^cloudflare%.([%w_]+)$")
    if path:find("^ocr%.") then -- luacheck: ignore 542 (written with the family above)
    elseif prefix and object_of[prefix] then
      local o = object_of[prefix]
      o.lines = o.lines or {}
      write_function(o.lines, o.lname, ":", { name = method, sig = e.sig, doc = e.doc,
        drop_first = e.drop_first }, sig_of(path, e.sig), true)
    elseif mod then
      write_function(module_out(mod), "cloudflare." .. mod, ".", { name = fname, sig = e.sig, doc = e.doc },
        sig_of(path, e.sig))
    elseif tname then
      local s
      if tname == "new" then -- its table argument is cloudflare.OPTIONS: ClientOptions
        s = sig_of(path, "()" .. (e.sig:match(" %-> .*$") or ""))
        s.params = { { name = "opts", type = "cloudflare.ClientOptions", optional = true } }
      else
        s = sig_of(path, e.sig)
      end
      write_function(top, "cloudflare", ".", { name = tname, sig = e.sig, doc = e.doc }, s)
    else
      info.skipped[#info.skipped + 1] = path
    end
  end
  -- functions of the module the registry has no entry for
  for _, k in ipairs(sorted_keys(cf)) do
    if type(rawget(cf, k)) == "function" and not by_path["cloudflare." .. k] then
      info.undocumented[#info.undocumented + 1] = "cloudflare." .. k
      write_function(top, "cloudflare", ".", { name = k, doc = "(no help entry)" }, sig_of(k, "(...) -> any"))
    end
  end
  for _, line in ipairs(top) do out[#out + 1] = line end
  for _, o in ipairs(objects) do
    for _, line in ipairs(o.lines or {}) do out[#out + 1] = line end
  end

  for _, m in ipairs(modules) do
    local t = cf[m.name]
    local lines = module_out(m.name)
    out[#out + 1] = ""
    if m.doc ~= "" then out[#out + 1] = "---cloudflare." .. m.name .. ": " .. one_line(m.doc) .. "." end
    out[#out + 1] = "---@class cloudflare." .. m.name
    if type(t) == "table" then
      for _, k in ipairs(sorted_keys(t)) do
        local v = t[k]
        if type(v) ~= "function" then
          local lit = literal(v)
          out[#out + 1] = format("---@field %s %s%s", k, lua_type(v, classes), lit and (" = " .. lit) or "")
        elseif not by_path["cloudflare." .. m.name .. "." .. k] then
          info.undocumented[#info.undocumented + 1] = "cloudflare." .. m.name .. "." .. k
          write_function(lines, "cloudflare." .. m.name, ".", { name = k, doc = "(no help entry)" },
            sig_of(k, "(...) -> any"))
        end
      end
    end
    out[#out + 1] = format("cloudflare.%s = {}", m.name)
    for _, line in ipairs(lines) do out[#out + 1] = line end
  end

  out[#out + 1] = ""
  out[#out + 1] = "return cloudflare"
  return (concat(out, "\n") .. "\n")
end

return M
