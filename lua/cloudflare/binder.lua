-- cloudflare.binder: builds the Lua functions of an endpoint family from its description
-- (cloudflare.origin_cloud_regions): argument checks, paths, request bodies and result
-- decoding per API generation, and the read, list and change flows; batch operations go to
-- cloudflare.batch. Must not do I/O itself (requests go through the client's transport) nor
-- know an operation by its name: what differs between operations is in the description.
--
-- Error convention, kept by every function here: programming mistakes (bad arguments) raise;
-- what happens on the wire returns nil, err[, partial], err being a cloudflare.Error.

local async = require "cloudflare.async"
local core = require "cloudflare.core"
local ip = require "cloudflare.ip"
local json = require "cloudflare.json"
local journal = require "cloudflare.journal"
local util = require "cloudflare.util"

local canonical = ip.canonical
local array = json.array
local format = string.format
local argerror, quote = util.argerror, util.quote

local M = {}

local built = setmetatable({}, { __mode = "k" }) -- function -> { op =, generation = }

--- The description of the operation behind a function this module built, the name it was
--- bound under and its generation, or nil (help() finds a client's operations so).
function M.op_of(fn)
  local b = built[fn]
  if b then return b.op, b.name, b.generation end
end

---------------------------------------------------------------------------------------------
-- arguments (raise, pointing at the caller: `level` counts from the checking function)

local VENDOR_SET = { aws = true, azure = true, gcp = true, oci = true }
M.VENDOR_SET = VENDOR_SET

-- Options every operation takes, passed on to the transport for this call only.
local CALL_OPTIONS = { timeout = "number", connect_timeout = "number", max_retries = "number",
  max_retry_wait = "number" }
local CALL_OPTION_NAMES = { "timeout", "connect_timeout", "max_retries", "max_retry_wait" }

local function call_options(fname, args, level)
  local o = {}
  for k, want in pairs(CALL_OPTIONS) do
    local v = args[k]
    if v ~= nil then
      if type(v) ~= want then
        argerror(fname, k, "expected a " .. want .. ", got " .. quote(v), level + 1)
      end
      local problem = util.LIMITS[k](v)
      if problem then argerror(fname, k, problem, level + 1) end
      o[k] = v
    end
  end
  return o
end

--- The IP an argument table (or a bulk_update item) names: `ip`, or `origin_ip`, the SDKs' v2
--- name. Both given and different is a mistake.
function M.given_ip(t)
  local v, alt = t.ip, t.origin_ip
  if v == nil then return alt, "origin_ip" end
  if alt ~= nil and alt ~= v then return nil, "origin_ip", true end
  return v, "ip"
end

local function whole(fname, name, v, lo, hi, level)
  if v ~= nil and (math.type(v) ~= "integer" or v < lo or (hi and v > hi)) then
    argerror(fname, name, format("expected a whole number from %d%s, got %s", lo,
      hi and (" to " .. hi) or " up", quote(v)), level + 1)
  end
  return v
end

-- What each argument name takes: check(fname, args, level) -> the checked value.
local ARGUMENTS = {
  -- a zone id goes into the URL path: 32 hex digits, so it cannot change the path; a zone
  -- name or a truncated id is told where the id is found
  zone_id = function(fname, args, level)
    local z = args.zone_id
    if z == nil then
      argerror(fname, "zone_id", "missing (the zone identifier, 32 hex digits)", level + 1)
    elseif type(z) ~= "string" then
      argerror(fname, "zone_id", "expected a string, got " .. type(z), level + 1)
    end
    local problem = util.zone_problem(z)
    if problem then argerror(fname, "zone_id", problem, level + 1) end
    return z
  end,
  ip = function(fname, args, level)
    local v, name, clash = M.given_ip(args)
    if clash then
      argerror(fname, "origin_ip", "names another IP than 'ip' (" .. quote(args.ip) .. "); pass one",
        level + 1)
    elseif type(v) ~= "string" then
      argerror(fname, name, "expected an IP address string, got " .. type(v), level + 1)
    end
    local c = canonical(v)
    if not c then
      local why = util.ip_problem(v, canonical)
      argerror(fname, name, "invalid IP address " .. quote(v) .. (why and ": " .. why or ""), level + 1)
    end
    return c
  end,
  vendor = function(fname, args, level)
    if not VENDOR_SET[args.vendor] then
      argerror(fname, "vendor", "expected one of aws, azure, gcp, oci, got " .. quote(args.vendor),
        level + 1)
    end
    return args.vendor
  end,
  region = function(fname, args, level)
    if type(args.region) ~= "string" or args.region == "" then
      argerror(fname, "region", "expected a non-empty string, got " .. quote(args.region), level + 1)
    end
    return args.region
  end,
  dry_run = function(fname, args, level)
    local v = args.dry_run
    if v ~= nil and type(v) ~= "boolean" then
      argerror(fname, "dry_run", "expected a boolean, got " .. type(v), level + 1)
    end
    return v
  end,
  journal = function(fname, args, level)
    local j = args.journal
    if j ~= nil and j ~= false and type(j) ~= "string" then
      argerror(fname, "journal", "expected a file path or false, got " .. type(j), level + 1)
    end
    return journal.path(j)
  end,
  concurrency = function(fname, args, level)
    return whole(fname, "concurrency", args.concurrency, 1, 64, level + 1)
  end,
  page = function(fname, args, level) return whole(fname, "page", args.page, 1, nil, level + 1) end,
  per_page = function(fname, args, level)
    return whole(fname, "per_page", args.per_page, 1, 100, level + 1)
  end,
  -- checked element by element by cloudflare.batch, which walks them anyway
  ips = function(_, args) return args.ips end,
  items = function(_, args) return args.items end,
}

-- The names an operation accepts (a set, and a list in the order help shows them: required,
-- optional, per-call options), built once per operation.
local function allowed(op)
  if op.allowed then return op.allowed, op.allowed_names end
  local t, names = {}, {}
  for _, list in ipairs { op.args, op.options or {}, CALL_OPTION_NAMES } do
    for _, k in ipairs(list) do
      t[k], names[#names + 1] = true, k
      if k == "ip" then t.origin_ip, names[#names + 1] = true, "origin_ip" end
    end
  end
  op.allowed, op.allowed_names = t, names
  return t, names
end

-- Checks a call's arguments and returns them checked: a table with one field per argument
-- name, plus opts (the per-call transport options). Once a signal stopped the process, no
-- call starts: the script is told so by an error (every call in flight returned nil, err,
-- partial already).
local function check(fname, op, args, level)
  local set, names = allowed(op)
  util.check_args(fname, args, set, level + 1, names)
  local a = { opts = call_options(fname, args, level + 1) }
  for _, list in ipairs { op.args, op.options or {} } do
    for _, name in ipairs(list) do a[name] = ARGUMENTS[name](fname, args, level + 1) end
  end
  local sig = core.stopping()
  if sig then -- an error object: cfrun reports it without a traceback, as it is no bug
    error(core.error { kind = "interrupted", signal = sig, unsent = true,
      message = format("%s: not sent: cfrun is stopping after %s", fname, sig) }, level + 1)
  end
  return a
end

---------------------------------------------------------------------------------------------
-- paths and bodies

local function zone_path(ctx, zone_id, suffix)
  return "/zones/" .. zone_id .. ctx.gen.base .. suffix
end

--- The path of generation description g for a zone (and canonical IP c, for {ip}). Canonical
--- addresses hold only [0-9a-f.:]; ':' is percent-encoded.
local function op_path(ctx, g, zone_id, c)
  local suffix = g.path
  if c then
    local encoded = c:gsub(":", "%%3A")
    suffix = suffix:gsub("{ip}", function() return encoded end)
  end
  return zone_path(ctx, zone_id, suffix)
end
M.op_path = op_path

-- Request bodies by the description's name; the address is sent under the generation's key.
local BODIES = {
  mapping = function(gen, c, m) return json.encode { [gen.ip_key] = c, region = m.region, vendor = m.vendor } end,
  -- canonical addresses need no JSON escaping
  ips = function(_, batch) return '["' .. table.concat(batch, '","') .. '"]' end,
  mappings = function(gen, batch, payload)
    local body, key = {}, gen.ip_key
    for i, c in ipairs(batch) do
      local m = payload[c]
      body[i] = { [key] = c, region = m.region, vendor = m.vendor }
    end
    return json.encode(body)
  end,
}
M.BODIES = BODIES

---------------------------------------------------------------------------------------------
-- results

local function wire_string(v)
  if type(v) == "string" then return v end
  return nil -- absent, JSON null (cjson.null) or a wrong type
end

--- The address of a wire item: v1 writes origin-ip (and its docs origin_ip), v2 origin_ip.
function M.wire_ip(item)
  return wire_string(item["origin-ip"]) or wire_string(item.origin_ip)
end

function M.decode_error(info, problem)
  -- the message is built by the one constructor of errors ("HTTP <status>: <problem>")
  return core.error { kind = "decode", status = info.status, request_id = info.request_id,
    detail = problem }
end

-- One mapping as scripts see it, or nil and what is wrong with it.
local function mapping(item)
  if type(item) ~= "table" then return nil, "is not an object" end
  local raw = M.wire_ip(item)
  if not raw then return nil, "has no origin_ip string" end
  return {
    origin_ip = canonical(raw) or raw,
    region = wire_string(item.region),
    vendor = wire_string(item.vendor),
    modified_on = wire_string(item.modified_on),
  }
end

local function mapping_list(items, where)
  -- the decoder gives a plain {} for both [] and {}: a table with entries but no list part is an object
  if type(items) ~= "table" or (#items == 0 and next(items) ~= nil) then
    return nil, where .. " is not a list"
  end
  local out = array()
  for i = 1, #items do
    local m, problem = mapping(items[i])
    if not m then return nil, format("%s[%d] %s", where, i, problem) end
    out[i] = m
  end
  return out
end

local function regions(result)
  if type(result.vendors) ~= "table" then return nil, "result.vendors is missing" end
  local vendors = {}
  for vendor, list in pairs(result.vendors) do
    if type(vendor) ~= "string" or type(list) ~= "table" then
      return nil, "result.vendors is not an object of lists"
    end
    local out = array()
    for i = 1, #list do
      local r = list[i]
      if type(r) ~= "table" or type(r.name) ~= "string" then
        return nil, format("result.vendors.%s[%d] has no name", vendor, i)
      end
      local colos = array()
      for _, colo in ipairs(type(r.upper_tier_colos) == "table" and r.upper_tier_colos or {}) do
        if type(colo) == "string" then colos[#colos + 1] = colo end
      end
      out[i] = { name = r.name, upper_tier_colos = colos }
    end
    vendors[vendor] = out
  end
  return vendors
end

-- Result decoders by the description's name: decode(value, where, c, sent) -> Lua value | nil,
-- problem; `where` names the value in messages, c is the call's IP and sent its mapping.
local RESULTS = {
  one = function(value, where)
    local m, problem = mapping(value)
    if not m then return nil, where .. " " .. problem end
    return m
  end,
  many = mapping_list,
  -- v1's PATCH answers the zone's whole list: the call's mapping is the one written
  written = function(value, where, c, sent)
    local list, problem = mapping_list(value, where)
    if not list then return nil, problem end
    for _, m in ipairs(list) do
      if m.origin_ip == c then return m end
    end
    return { origin_ip = c, region = sent.region, vendor = sent.vendor }
  end,
  -- v2's DELETE answers {origin_ip} only; the binder adds what the lookup learnt
  deleted = function(value, where, c)
    if type(value) ~= "table" then return nil, where .. " is not an object" end
    local raw = M.wire_ip(value)
    if raw and (canonical(raw) or raw) ~= c then
      return nil, format("%s names %s, not the IP deleted (%s)", where, raw, c)
    end
    return { origin_ip = c }
  end,
}

--- The value inside a result and the set-level fields around it: v1 wraps every result but
--- supported_regions' in the setting object, v2 none. Returns value, where (for messages),
--- fields {id=, editable=, modified_on=} (nil on v2), or nil, problem.
function M.unwrap(gen, result)
  if not gen.setting then return result, "result", nil end
  if result.value == nil then return nil, "result.value is missing" end
  return result.value, "result.value", {
    id = wire_string(result.id) or gen.setting_id,
    editable = result.editable == true,
    modified_on = wire_string(result.modified_on),
  }
end

---------------------------------------------------------------------------------------------
-- requests

-- A 404 with code 7000 is Cloudflare's answer to a route it does not have: the wrong API
-- generation for this server. The error then says how to choose the other one.
local HINTS = {
  v1 = "this server has no v1 route: Cloudflare removed /zones/{zone_id}/cache/origin_cloud_regions "
    .. "on 2026-10-01; use generation = \"v2\" (cloudflare.new{ generation = \"v2\" }, or unset "
    .. "CFRUN_API_GENERATION)",
  v2 = "this server has no v2 route (/zones/{zone_id}/origin/cloud_regions); if it only serves the "
    .. "deprecated v1, use generation = \"v1\" (cloudflare.new{ generation = \"v1\" }, or "
    .. "CFRUN_API_GENERATION=v1)",
}

local function has_code(err, code)
  for _, e in ipairs(err.errors or {}) do
    if e.code == code then return true end
  end
  return false
end

--- Whether err says the mapping does not exist: a 404 envelope that is not a routing failure
--- (7000 no route, 7003 no such object). v1 publishes 1142 and 1163 for it, v2 no code.
function M.is_absent(err)
  return err.kind == "api" and err.status == 404 and not has_code(err, 7000)
    and not has_code(err, 7003)
end

-- A 403 other than the mapping limit (1164) is the credential's: Cloudflare answers so both a
-- token without the permission and a zone it does not know.
local function forbidden_hint(path)
  local zone = path:match("^/zones/([^/?]+)") or "?"
  return format("check that the API token may edit this zone's cache settings (zone %s), and "
    .. "that the zone id is right", zone)
end

--- t:send through the context's transport; an answer "no route" names the generation to use,
--- a 403 the token's permissions (err.hint, appended to err.message too).
function M.send(ctx, method, path, body, opts, on_attempt, on_send)
  local result, info, attempts = ctx.transport:send(method, path, body, opts, on_attempt, on_send)
  if result == nil and info.kind == "api" and not info.hint then
    if info.status == 404 and has_code(info, 7000) then
      info.hint = HINTS[ctx.gen.name]
    elseif info.status == 403 and not has_code(info, 1164) then
      info.hint = forbidden_hint(path)
    end
    if info.hint then info.message = info.message .. " (" .. info.hint .. ")" end
  end
  return result, info, attempts
end

-- One request whose result the description's `result` names. c and sent: the call's IP and
-- mapping, for the decoders that need them.
local function call(ctx, g, path, body, opts, c, sent, on_attempt)
  local result, info, attempts = M.send(ctx, g.method, path, body, opts, on_attempt)
  if result == nil then
    if c and M.is_absent(info) then info.absent = true end
    return nil, info, attempts
  end
  if type(result) ~= "table" then
    return nil, M.decode_error(info, "result is a " .. type(result) .. ", expected an object"), attempts
  end
  local res
  if g.result == "regions" then -- not the setting shape in any generation
    local vendors, problem = regions(result)
    if not vendors then return nil, M.decode_error(info, problem), attempts end
    res = { obtained_codes = result.obtained_codes == true, vendors = vendors }
  else
    local value, where, fields = M.unwrap(ctx.gen, result)
    if value == nil then return nil, M.decode_error(info, where), attempts end
    local v, problem = RESULTS[g.result](value, where, c, sent)
    if v == nil then return nil, M.decode_error(info, problem), attempts end
    res = fields or {}
    res.value = v
  end
  res.requests, res.generation = attempts, ctx.gen.name
  return res, info, attempts
end

-- Adds a call's outcome to the state's counters (the job log line and exit status use them).
function M.count(succeeded, failed, pending, unsent)
  local st = core.stats
  st.succeeded, st.failed, st.pending, st.unsent = st.succeeded + succeeded,
    st.failed + failed, st.pending + pending, st.unsent + (unsent or 0)
end

-- Counts a single-item change: a definitive refusal failed, one not sent unsent, anything
-- else unknown.
local function count_single(res, err)
  if res then
    M.count(1, 0, 0)
  elseif err.kind == "exists" or (err.kind == "api" and err.status and err.status < 500
      and err.status ~= 429 and err.status ~= 408 and err.status ~= 409) then
    M.count(0, 1, 0)
  elseif err.unsent then
    M.count(0, 0, 0, 1)
  else
    M.count(0, 0, 1)
  end
  return res, err
end

-- Counts a single-item change that raised (an on_wait hook, say) on its way out: a request
-- that went out leaves its IP pending, else unsent. Closed by flows.change's `<close>`.
local function single_guard()
  local g = { requests = core.stats.requests }
  return setmetatable(g, { __close = function(_, e)
    if e ~= nil then
      if core.stats.requests > g.requests then M.count(0, 0, 1) else M.count(0, 0, 0, 1) end
    end
  end })
end

---------------------------------------------------------------------------------------------
-- flows

local flows = {}

function flows.read(ctx, op, args, fname)
  local a = check(fname, op, args, 2)
  local g = op[ctx.gen.name]
  local res, err = call(ctx, g, op_path(ctx, g, a.zone_id, a.ip), nil, a.opts, a.ip)
  if not res then return nil, err end
  return res
end

local function int_field(t, k)
  local v = type(t) == "table" and t[k]
  return type(v) == "number" and math.tointeger(v) or nil
end

-- One page of a paginated listing; res.result_info has the server's counts.
local function list_page(ctx, g, zone_id, page, per_page, opts)
  local path = format("%s?page=%d&per_page=%d", op_path(ctx, g, zone_id), page, per_page)
  local res, info, attempts = call(ctx, g, path, nil, opts)
  if not res then return nil, info, attempts end
  local ri = info.result_info
  res.result_info = ri and { page = int_field(ri, "page"), per_page = int_field(ri, "per_page"),
    count = int_field(ri, "count"), total_count = int_field(ri, "total_count"),
    total_pages = int_field(ri, "total_pages") } or nil
  return res, info, attempts
end

local MAX_PAGES = 100 -- 10,000 mappings, far past the API's 3,500: a server that never ends

-- Every mapping of a zone in one result: one request on v1, every page on v2. Page 1 tells how
-- many pages there are; the others are fetched `concurrency` at a time (a full zone is 35
-- pages) and merged in page order. A zone changed by others meanwhile may shift a mapping
-- across pages; one seen twice is kept once. on_request(n) is told the requests made so far.
local function list_all(ctx, zone_id, opts, on_request)
  local g = ctx.family.BY_NAME.list[ctx.gen.name]
  if not ctx.gen.paged then
    local res, err, attempts = call(ctx, g, op_path(ctx, g, zone_id), nil, opts)
    if on_request then on_request(attempts or 0) end
    if not res then
      err.requests = attempts
      return nil, err
    end
    return res
  end
  local per_page = ctx.family.PAGE_SIZE
  local out, seen, requests = array(), {}, 0
  local pages, infos, failure = {}, {}, nil

  local function fetch(page)
    local res, info, attempts = list_page(ctx, g, zone_id, page, per_page, opts)
    requests = requests + (attempts or 0)
    if on_request then on_request(requests) end
    if not res then
      if not failure or page < failure.page then failure = { page = page, err = info } end
      return
    end
    pages[page], infos[page] = res, info
  end

  -- Adds page `page` to the listing; returns false when it cannot be trusted (an error is set).
  local function merge(page)
    local res, before = pages[page], #out
    for _, m in ipairs(res.value) do
      if not seen[m.origin_ip] then
        seen[m.origin_ip] = true
        out[#out + 1] = m
      end
    end
    if page > 1 and #res.value > 0 and #out == before then
      -- mappings are listed in insertion order, so a later page holds none of an earlier
      -- one's unless the server ignores `page`: paging on would spend the rate budget
      failure = { page = page, err = M.decode_error(infos[page], format(
        "page %d repeats earlier pages (does the server ignore 'page'?)", page)) }
      return false
    end
    return true
  end

  local page, total = 1, nil
  while not failure do
    fetch(page)
    if failure or not merge(page) then break end
    local res = pages[page]
    total = res.result_info and res.result_info.total_pages
    if #res.value == 0 or (total and page >= total) or (not total and #res.value < per_page) then
      return { value = out, requests = requests, generation = ctx.gen.name }
    end
    if total then break end -- the rest at once, below
    if page >= MAX_PAGES then
      failure = { page = page, err = M.decode_error(infos[page], format(
        "the listing did not end after %d pages", MAX_PAGES)) }
      break
    end
    page = page + 1 -- no page count: one page at a time until a short one
  end
  if not failure then
    if total > MAX_PAGES then
      failure = { page = 1, err = M.decode_error(infos[1], format(
        "the server announces %d pages; more than %d is not a zone's listing", total, MAX_PAGES)) }
    else
      local fns = {}
      for p = 2, total do fns[#fns + 1] = function() fetch(p) end end
      async.parallel(fns, { concurrency = ctx.family.CONCURRENCY })
      for p = 2, total do
        if failure and failure.page <= p then break end
        if not merge(p) then break end
      end
    end
  end
  if not failure then return { value = out, requests = requests, generation = ctx.gen.name } end
  local err = failure.err
  err.requests = requests
  return nil, err
end

--- ctx.current_mappings(zone_id, opts[, on_request]) -> the zone's mappings by canonical IP, listing
--- | nil, err (err.requests: the requests it took). For the batch engine.
local function current_mappings(ctx, zone_id, opts, on_request)
  local listing, err = list_all(ctx, zone_id, opts, on_request)
  if not listing then return nil, err end
  local by_ip = {}
  for _, m in ipairs(listing.value) do by_ip[m.origin_ip] = m end
  return by_ip, listing
end

function flows.list(ctx, op, args, fname)
  local a = check(fname, op, args, 2)
  if (a.page or a.per_page) and not ctx.gen.paged then
    argerror(fname, a.page and "page" or "per_page", "generation " .. ctx.gen.name
      .. " has no pages: its list returns every mapping at once", 2)
  end
  if a.page or a.per_page then
    local res, err = list_page(ctx, op[ctx.gen.name], a.zone_id, a.page or 1, a.per_page or 20, a.opts)
    if not res then return nil, err end
    return res
  end
  return list_all(ctx, a.zone_id, a.opts)
end

-- A single-item change, journaled like a batch of one when a journal is set; `known` says
-- what the journal records of the mapping (what goes, or what is written).
local function journaled(ctx, fname, g, a, path, body, known)
  local c = a.ip
  local w, jerr = journal.open(a.journal, fname, a.zone_id)
  if not w then return nil, core.error { kind = "journal", unsent = true, message = jerr } end
  local writer <close> = w -- luacheck: ignore 211 (closed however the call ends)
  local ok, werr = w:write { phase = "intent", batch = 1, items = journal.items({ c }, known) }
  if not ok then -- never send what the journal could not record
    return nil, core.error { kind = "journal", unsent = true, message = werr or "journal write failed" }
  end
  local res, err = call(ctx, g, path, body, a.opts, c, a, function(attempt, r, i)
    if r == nil then w:write(journal.outcome(1, attempt, nil, i)) end
  end)
  if res then -- record the mapping concerned: what delete removed, or what update wrote
    local m = known and known[c] or res.value
    w:write(journal.outcome(1, res.requests, res, {},
      { succeeded = { { origin_ip = c, region = m.region, vendor = m.vendor } }, failed = {} }))
  end
  return res, err
end

local function exists_error(c, m)
  return core.error { kind = "exists", exists = true, message = format(
    "%s already has a mapping (%s %s); update replaces one", c, tostring(m.vendor), tostring(m.region)) }
end

function flows.change(ctx, op, args, fname)
  local a = check(fname, op, args, 2)
  local guard <close> = single_guard() -- luacheck: ignore 211 (closed on exit)
  local g = op[ctx.gen.name]
  local c = a.ip
  local requests, current = 0, nil
  if g.absent_first or g.lookup == "always" or (g.lookup == "journal" and a.journal) then
    local get = ctx.family.BY_NAME.get[ctx.gen.name]
    local found, err, attempts = call(ctx, get, op_path(ctx, get, a.zone_id, c), nil, a.opts, c)
    requests = attempts or 0
    if found then
      if g.absent_first then return count_single(nil, exists_error(c, found.value)) end
      current = found.value
    elseif g.absent_first and not err.absent or g.lookup == "always" then
      if not err.absent then err.unsent = true end -- the change itself was never sent
      return count_single(nil, err) -- absent (nothing to delete), or nothing learnt: not sent
    end
  end
  local body = g.body and BODIES[g.body](ctx.gen, c, a)
  local path = op_path(ctx, g, a.zone_id, c)
  -- the journal keeps what a delete removes and what an update writes
  local known = g.body and { [c] = a } or (current and { [c] = current })
  local res, err
  if a.journal then
    res, err = journaled(ctx, fname, g, a, path, body, known)
  else
    res, err = call(ctx, g, path, body, a.opts, c, a)
  end
  if res then
    res.requests = res.requests + requests
    if current and g.result == "deleted" then
      res.value.region, res.value.vendor = current.region, current.vendor
    end
  elseif err.kind == "api" and ctx.gen.exists_code and has_code(err, ctx.gen.exists_code) then
    err.exists = true
  end
  return count_single(res, err)
end

function flows.batch(ctx, op, args, fname)
  local a = check(fname, op, args, 2)
  return ctx.batch[op.batch](ctx, op, a, fname, 2)
end

---------------------------------------------------------------------------------------------
-- binding

--- M.precheck(family, fname, args, level): operation fname's argument checks, with no client:
--- the default namespace runs them before it builds the default client, so that a mistake in
--- a call is reported as that, even where no credentials are configured yet.
function M.precheck(family, fname, args, level)
  local op = family.BY_NAME[fname]
  if op then check(fname, op, args, level + 1) end
end

--- Raises when args is an operations namespace (a table holding the family's operation
--- functions): what `ns:op{...}` passes, the real arguments coming second and being lost.
--- `owner` names what the namespace hangs from in the message ("cloudflare", "client").
function M.check_colon(family, fname, args, owner, level)
  if type(args) ~= "table" then return end
  for name in pairs(family.BY_NAME) do
    if type(rawget(args, name)) == "function" then
      error(format("%s: called with ':' \u{2014} use a dot: %s.%s.%s{...}", fname, owner,
        family.NAME, fname), level + 1)
    end
  end
end

--- M.bind(family, client, transport, generation) -> the namespace table of one client: each
--- operation (and alias) as a plain function of an argument table, bound to the client and
--- its transport (called with a dot, as in the SDKs).
function M.bind(family, client, transport, generation)
  local gen = family.GENERATIONS[generation or family.DEFAULT_GENERATION]
  assert(gen, "unknown API generation")
  local ctx = { client = client, transport = transport, family = family, gen = gen,
    batch = require "cloudflare.batch" }
  ctx.current_mappings = function(zone_id, opts, on_request)
    return current_mappings(ctx, zone_id, opts, on_request)
  end
  local ns = {}
  for _, op in ipairs(family.OPERATIONS) do
    local flow = flows[op.flow]
    -- an alias is a function of its own only so that errors and the journal use its name
    for _, name in ipairs { op.name, table.unpack(op.aliases or {}) } do
      local fn = function(args)
        M.check_colon(family, name, args, "client", 2)
        return flow(ctx, op, args, name)
      end
      built[fn] = { op = op, name = name, generation = gen.name }
      ns[name] = fn
    end
  end
  return ns
end

return M
