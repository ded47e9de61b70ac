-- cloudflare.origin_cloud_regions: the endpoint family under
-- /zones/{zone_id}/cache/origin_cloud_regions, bound to a client as
-- client.cache.origin_cloud_regions. Holds argument checks, IP canonicalisation, batching and
-- the normalisation of results; must not do I/O itself (requests go through Client:request).
--
-- Error convention, kept by every function here: programming mistakes (bad arguments) raise;
-- what happens on the wire returns nil, err[, partial], err being a cloudflare.Error.

local async = require "cloudflare.async"
local core = require "cloudflare.core"
local ip = require "cloudflare.ip"
local json = require "cloudflare.json"
local journal = require "cloudflare.journal"
local progress = require "cloudflare.progress"
local util = require "cloudflare.util"

local canonical = ip.canonical
local array = json.array
local new_table = core.new_table
local concat = table.concat
local format = string.format
local argerror, quote = util.argerror, util.quote

local BATCH_SIZE = 100 -- the API's limit per batch request
local CONCURRENCY = 4  -- batches of one bulk call in flight at once, by default
local SETTING_ID = "origin_public_cloud_region"
local BASE = "/cache/origin_cloud_regions"

local M = { BATCH_SIZE = BATCH_SIZE, CONCURRENCY = CONCURRENCY, VENDORS = { "aws", "azure", "gcp", "oci" } }
local VENDOR_SET = {}
for _, v in ipairs(M.VENDORS) do VENDOR_SET[v] = true end

---------------------------------------------------------------------------------------------
-- arguments (raise, pointing at the caller: `level` counts from the checking function)

-- A zone id goes into the URL path: letters and digits only, so it cannot change the path.
local function check_zone_id(fname, zone_id, level)
  if zone_id == nil then
    argerror(fname, "zone_id", "missing (the zone identifier, 32 hex digits)", level + 1)
  elseif type(zone_id) ~= "string" then
    argerror(fname, "zone_id", "expected a string, got " .. type(zone_id), level + 1)
  elseif #zone_id == 0 or #zone_id > 32 or not zone_id:find("^%w+$") then
    argerror(fname, "zone_id", "expected 1 to 32 letters and digits, got " .. quote(zone_id),
      level + 1)
  end
  return zone_id
end

local function check_ip(fname, value, level)
  if type(value) ~= "string" then
    argerror(fname, "ip", "expected an IP address string, got " .. type(value), level + 1)
  end
  local c = canonical(value)
  if not c then argerror(fname, "ip", "invalid IP address " .. quote(value), level + 1) end
  return c
end

local function check_mapping_args(fname, args, level)
  local c = check_ip(fname, args.ip, level + 1)
  if not VENDOR_SET[args.vendor] then
    argerror(fname, "vendor", "expected one of aws, azure, gcp, oci, got " .. quote(args.vendor),
      level + 1)
  end
  if type(args.region) ~= "string" or args.region == "" then
    argerror(fname, "region", "expected a non-empty string, got " .. quote(args.region), level + 1)
  end
  return c
end

local function check_bool(fname, args, name, level)
  local v = args[name]
  if v ~= nil and type(v) ~= "boolean" then
    argerror(fname, name, "expected a boolean, got " .. type(v), level + 1)
  end
  return v
end

local function zone_path(zone_id, suffix)
  return "/zones/" .. zone_id .. BASE .. (suffix or "")
end

-- Canonical addresses hold only [0-9a-f.:]; ':' is percent-encoded for the path.
local function ip_path(zone_id, c)
  return zone_path(zone_id, "/" .. c:gsub(":", "%%3A"))
end

---------------------------------------------------------------------------------------------
-- results

local function wire_string(v)
  if type(v) == "string" then return v end
  return nil -- absent, JSON null (cjson.null) or a wrong type
end

-- The docs name the item key origin_ip while the wire and OpenAPI use origin-ip: accept both.
local function wire_ip(item)
  return wire_string(item["origin-ip"]) or wire_string(item.origin_ip)
end

local function decode_error(info, problem)
  return core.error {
    kind = "decode",
    status = info.status,
    request_id = info.request_id,
    message = format("HTTP %d: %s", info.status, problem),
  }
end

-- One mapping as scripts see it, or nil and what is wrong with it.
local function mapping(item)
  if type(item) ~= "table" then return nil, "is not an object" end
  local raw = wire_ip(item)
  if not raw then return nil, "has no origin-ip string" end
  return {
    origin_ip = canonical(raw) or raw,
    region = wire_string(item.region),
    vendor = wire_string(item.vendor),
    modified_on = wire_string(item.modified_on),
  }
end

local function mapping_list(items)
  -- cjson gives {} for both [] and {}: a table with entries but no list part is an object
  if type(items) ~= "table" or (#items == 0 and next(items) ~= nil) then
    return nil, "result.value is not a list"
  end
  local out = array()
  for i = 1, #items do
    local m, problem = mapping(items[i])
    if not m then return nil, format("result.value[%d] %s", i, problem) end
    out[i] = m
  end
  return out
end

-- The "setting" envelope result shared by every endpoint but supported_regions.
local function setting(result, value)
  return {
    id = wire_string(result.id) or SETTING_ID,
    editable = result.editable == true,
    modified_on = wire_string(result.modified_on),
    value = value,
    requests = 1,
  }
end

-- Options every operation takes, passed on to the transport for this call only.
local CALL_OPTIONS = { timeout = "number", connect_timeout = "number", max_retries = "number",
  max_retry_wait = "number" }

local function allowed(names, extra)
  local t = {}
  for k in pairs(CALL_OPTIONS) do t[k] = true end
  for k in pairs(names) do t[k] = true end
  for k in pairs(extra or {}) do t[k] = true end
  return t
end

local function call_options(fname, args, level)
  local o = {}
  for k, want in pairs(CALL_OPTIONS) do
    local v = args[k]
    if v ~= nil then
      if type(v) ~= want or v < 0 then
        argerror(fname, k, "expected a non-negative " .. want .. ", got " .. quote(v), level + 1)
      end
      o[k] = v
    end
  end
  if o.max_retries and math.type(o.max_retries) ~= "integer" then
    argerror(fname, "max_retries", "expected a whole number", level + 1)
  end
  return o
end

local function check_concurrency(fname, args, level)
  local n = args.concurrency
  if n == nil then return CONCURRENCY end
  if math.type(n) ~= "integer" or n < 1 or n > 64 then
    argerror(fname, "concurrency", "expected a whole number from 1 to 64, got " .. quote(n), level + 1)
  end
  return n
end

local function check_journal(fname, args, level)
  local j = args.journal
  if j ~= nil and j ~= false and type(j) ~= "string" then
    argerror(fname, "journal", "expected a file path or false, got " .. type(j), level + 1)
  end
  return journal.path(j)
end

-- One request whose result is checked by shape(result) -> res | nil, problem.
local function call(ctx, method, path, body, shape, opts, on_attempt)
  local result, info, attempts = ctx.transport:send(method, path, body, opts, on_attempt)
  if result == nil then return nil, info end
  if type(result) ~= "table" then
    return nil, decode_error(info, "result is a " .. type(result) .. ", expected an object")
  end
  local res, problem = shape(result)
  if not res then return nil, decode_error(info, problem) end
  res.requests = attempts
  return res
end

local function one_mapping(result)
  local m, problem = mapping(result.value)
  if not m then return nil, "result.value " .. problem end
  return setting(result, m)
end

local function many_mappings(result)
  local list, problem = mapping_list(result.value)
  if not list then return nil, problem end
  return setting(result, list)
end

---------------------------------------------------------------------------------------------
-- batches

-- n: the number of inputs, which the lists of results are sized for.
local function new_batch_result(n)
  return {
    id = SETTING_ID,
    value = { succeeded = array(new_table(n, 0)), failed = array(), pending = array() },
    requests = 0,
  }
end

-- Bookkeeping of one batch call: the position (rank_of) of each canonical IP in the caller's
-- list and the caller's spelling where it was not the canonical one (input_of; see input_for),
-- and the position of the result entries rank_of cannot place (invalid inputs, overridden
-- duplicates), so results come back in the caller's order.
local function new_ledger(n)
  -- batch_of: canonical IP -> the list it was sent in, then true once a response accounted
  -- for it. Per call, not per batch, and sized for the n inputs once rather than grown by
  -- rehashing: with rank_of, these are a bulk call's largest tables.
  return { n = n, input_of = {}, rank_of = new_table(0, n), ranks = {}, batch_of = new_table(0, n) }
end

-- The caller's spelling of canonical IP c, nil for an IP the caller did not give.
local function input_for(ledger, c)
  return ledger.input_of[c] or (ledger.rank_of[c] and c) or nil
end

-- Adds an entry whose position is not its IP's (see new_ledger).
local function add_entry(ledger, list, entry, rank)
  list[#list + 1] = entry
  ledger.ranks[entry] = rank
end

-- Puts result entries in input order in linear time (a call may hold many thousand): each
-- takes the slot of its input position; entries with none (an IP the server named but was
-- never sent) follow in the order they came.
local function in_input_order(items, ledger)
  local ranks, rank_of = ledger.ranks, ledger.rank_of
  local slot, rest, last = new_table(ledger.n, 0), {}, 0
  for i = 1, #items do
    local item = items[i]
    local r = ranks[item] or rank_of[item.origin_ip]
    if r and not slot[r] then
      slot[r] = item
      if r > last then last = r end
    else
      rest[#rest + 1] = item
    end
  end
  local k = 0
  for r = 1, last do
    local item = slot[r]
    if item then
      k = k + 1
      items[k] = item
    end
  end
  table.move(rest, 1, #rest, k + 1, items)
end

local function append_pending(res, order, first, last)
  local pending = res.value.pending
  for i = first, last or #order do pending[#pending + 1] = order[i] end
end

-- Merges one batch's `result` into res. Items are taken one by one so that a malformed item
-- cannot hide the valid ones (a change must never go unrecorded); IPs of the batch that the
-- response does not account for go to pending. Returns a description of what was wrong, or nil.
local function merge_batch(res, ledger, result, sent, retried, listed)
  local value = type(result) == "table" and result.value
  if type(value) ~= "table" or type(value.succeeded) ~= "table"
      or type(value.failed) ~= "table" then
    append_pending(res, sent, 1)
    if type(result) ~= "table" then
      return "result is a " .. type(result) .. ", expected an object"
    end
    return "result.value.succeeded and result.value.failed are missing"
  end
  -- This loop runs for every IP of a bulk call: it is kept lean (no helper calls, whole
  -- tables built at once).
  local problem
  local batch_of = ledger.batch_of
  for i = 1, #sent do
    local c = sent[i]
    if batch_of[c] ~= true then batch_of[c] = sent end
  end
  local input_of, rank_of = ledger.input_of, ledger.rank_of
  for _, list in ipairs { "succeeded", "failed" } do
    local items, into = value[list], res.value[list]
    local succeeded = list == "succeeded"
    for i = 1, #items do
      local item = items[i]
      local raw = type(item) == "table" and item["origin-ip"] -- the docs' origin_ip too
      if type(raw) ~= "string" then raw = type(item) == "table" and item.origin_ip end
      if type(raw) ~= "string" then
        problem = problem or format("result.value.%s[%d] has no origin-ip string", list, i)
      else
        -- what was sent is canonical, and the server echoes it
        local c = batch_of[raw] == sent and raw or canonical(raw) or raw
        if batch_of[c] == true then -- each IP has exactly one fate: keep the first report
          problem = problem or format("the response reports %s twice", c)
          goto next_item
        end
        if batch_of[c] ~= sent then -- kept (a deletion is never dropped), but the call is suspect
          problem = problem or format("the response names %s, which was not sent", c)
        end
        batch_of[c] = true
        local input = input_of[c] or (rank_of[c] and c) or nil -- input_for, inlined
        local entry
        if succeeded then
          local region, vendor = item.region, item.vendor
          entry = { origin_ip = c, input = input,
            region = type(region) == "string" and region or nil,
            vendor = type(vendor) == "string" and vendor or nil }
        else
          entry = { origin_ip = c, input = input,
            error = wire_string(item.error) or "unknown error" }
          -- after a lost response, "not found" may mean "deleted by our first attempt"
          if retried and entry.error:lower():find("not found", 1, true)
              and (listed == nil or listed[c]) then
            entry.already_absent = true
          end
        end
        into[#into + 1] = entry
      end
      ::next_item::
    end
  end
  local out = res.value
  local missing = 0
  for i = 1, #sent do
    if batch_of[sent[i]] ~= true then
      out.pending[#out.pending + 1] = sent[i]
      missing = missing + 1
    end
  end
  if missing > 0 and not problem then
    problem = format("the response accounts for %d of the %d IPs sent", #sent - missing, #sent)
  end
  if type(result.editable) == "boolean" then res.editable = result.editable end
  res.modified_on = wire_string(result.modified_on) or res.modified_on
  return problem
end

-- Adds a call's outcome to the state's counters (the job log line and exit status use them).
local function count(succeeded, failed, pending)
  local st = core.stats
  st.succeeded, st.failed, st.pending = st.succeeded + succeeded, st.failed + failed,
    st.pending + pending
end

local function finish(res, ledger, err)
  in_input_order(res.value.succeeded, ledger)
  in_input_order(res.value.failed, ledger)
  if ledger.progress then ledger.progress:done() end
  if not res.dry_run then count(#res.value.succeeded, #res.value.failed, #res.value.pending) end
  if err then return nil, err, res end
  return res
end

-- Sets up the journal of a batch call: each batch's intent lists its IPs with what `known`
-- says of them (the current mapping, or the new one).
local function open_writer(run, path_j, fname, zone_id, known)
  local w, err = journal.open(path_j, fname, zone_id)
  if not w then return nil, err end
  run.writer = w
  run.intent = function(sent) return journal.items(sent, known) end
  return true
end

-- A call that cannot journal sends nothing: every IP stays pending.
local function journal_failure(res, ledger, order, message)
  append_pending(res, order, 1)
  return finish(res, ledger, core.error { kind = "journal", message = message })
end

-- Sends `order` (canonical IPs) in batches; body_of(batch) gives each request body. Up to
-- run.concurrency batches are in flight at once, each in a task (cloudflare.async).
-- A failed batch stops the run: no later batch starts, and it and every batch not started
-- stay pending; batches already in flight finish and count, as what they did happened.
-- Results are merged in input order, so they do not depend on the concurrency. With a
-- journal, each batch's intent is on disk before it is sent, and every attempt's outcome
-- after it.
local function run_batches(ctx, method, path, order, body_of, res, ledger, run)
  local w = run.writer
  local nbatches = (#order + BATCH_SIZE - 1) // BATCH_SIZE
  if #order > BATCH_SIZE and not async.current() then -- tasks would fight over one line
    ledger.progress = progress.start(run.name or method, #order, ctx.transport)
  end
  local next_batch, failed_at, first_err, done_n = 1, math.huge, nil, 0

  -- Sends batch number `batch`; returns the error that must stop the run, or nil.
  local function send_batch(batch)
    local first = (batch - 1) * BATCH_SIZE + 1
    local sent = table.move(order, first, math.min(first + BATCH_SIZE - 1, #order), 1, {})
    if w then
      local ok, jerr = w:write { phase = "intent", batch = batch, items = run.intent(sent) }
      if not ok then -- never send what the journal could not record
        append_pending(res, sent, 1)
        return core.error { kind = "journal", message = jerr }
      end
    end
    local result, info, attempts = ctx.transport:send(method, path, body_of(sent), run.opts,
      w and function(attempt, r, i)
        if r == nil then w:write(journal.outcome(batch, attempt, nil, i)) end
      end)
    res.requests = res.requests + attempts
    if result == nil then
      append_pending(res, sent, 1)
      return info
    end
    local ns, nf = #res.value.succeeded, #res.value.failed
    local problem = merge_batch(res, ledger, result, sent, attempts > 1, run.listed)
    if w then
      w:write(journal.outcome(batch, attempts, result, info, {
        succeeded = table.move(res.value.succeeded, ns + 1, #res.value.succeeded, 1, {}),
        failed = table.move(res.value.failed, nf + 1, #res.value.failed, 1, {}) }))
    end
    done_n = done_n + #sent
    if ledger.progress then ledger.progress:update(done_n, res.requests) end
    if problem then return decode_error(info, problem) end
  end

  local function worker()
    while next_batch <= nbatches and next_batch < failed_at do
      local batch = next_batch
      next_batch = batch + 1
      local err = send_batch(batch)
      if err and batch < failed_at then failed_at, first_err = batch, err end
    end
  end

  local conc = math.min(run.concurrency or 1, nbatches)
  if conc <= 1 then
    worker()
  else
    local workers = {}
    for i = 1, conc do workers[i] = worker end
    async.parallel(workers, { concurrency = conc })
  end
  if next_batch <= nbatches then -- never started
    append_pending(res, order, (next_batch - 1) * BATCH_SIZE + 1)
  end
  if conc > 1 and #res.value.pending > 1 then -- failed batches ended in any order
    local pos = {}
    for i, c in ipairs(order) do pos[c] = i end
    table.sort(res.value.pending, function(a, b) return pos[a] < pos[b] end)
  end
  return finish(res, ledger, first_err)
end

---------------------------------------------------------------------------------------------
-- the operations

-- Counts a single-item change: a definitive refusal failed, anything else unknown.
local function count_single(res, err)
  if res then
    count(1, 0, 0)
  elseif err.kind == "api" and err.status and err.status < 500 and err.status ~= 429 then
    count(0, 1, 0)
  else
    count(0, 0, 1)
  end
  return res, err
end

local ops = {}

function ops.list(ctx, args)
  util.check_args("list", args, allowed { zone_id = true }, 2)
  local zone_id = check_zone_id("list", args.zone_id, 2)
  return call(ctx, "GET", zone_path(zone_id), nil, many_mappings, call_options("list", args, 2))
end

function ops.get(ctx, args)
  util.check_args("get", args, allowed { zone_id = true, ip = true }, 2)
  local zone_id = check_zone_id("get", args.zone_id, 2)
  local c = check_ip("get", args.ip, 2)
  return call(ctx, "GET", ip_path(zone_id, c), nil, one_mapping, call_options("get", args, 2))
end

local MAPPING_ARGS = allowed({ zone_id = true, ip = true, region = true, vendor = true })

function ops.create(ctx, args)
  util.check_args("create", args, MAPPING_ARGS, 2)
  local zone_id = check_zone_id("create", args.zone_id, 2)
  local c = check_mapping_args("create", args, 2)
  local body = json.encode { ip = c, region = args.region, vendor = args.vendor }
  return count_single(call(ctx, "POST", zone_path(zone_id), body, one_mapping,
    call_options("create", args, 2)))
end

-- A single-item change, journaled like a batch of one when a journal is set.
local function single(ctx, fname, zone_id, c, method, path, body, shape, opts, known, path_j)
  if not path_j then return count_single(call(ctx, method, path, body, shape, opts)) end
  local w, jerr = journal.open(path_j, fname, zone_id)
  local ok = w and w:write { phase = "intent", batch = 1, items = journal.items({ c }, known) }
  if not ok then return nil, core.error { kind = "journal", message = jerr or "journal write failed" } end
  local res, err = call(ctx, method, path, body, shape, opts, function(attempt, r, i)
    if r == nil then w:write(journal.outcome(1, attempt, nil, i)) end
  end)
  if res then -- record the mapping concerned: what delete removed, or what edit wrote
    local m = res.value.origin_ip and res.value or (known and known[c]) or {}
    w:write(journal.outcome(1, res.requests, res, {},
      { succeeded = { { origin_ip = c, region = m.region, vendor = m.vendor } }, failed = {} }))
  end
  return count_single(res, err)
end

function ops.edit(ctx, args)
  util.check_args("edit", args, allowed(MAPPING_ARGS, { journal = true }), 2)
  local zone_id = check_zone_id("edit", args.zone_id, 2)
  local c = check_mapping_args("edit", args, 2)
  local body = json.encode { ip = c, region = args.region, vendor = args.vendor }
  return single(ctx, "edit", zone_id, c, "PATCH", zone_path(zone_id), body, many_mappings,
    call_options("edit", args, 2), { [c] = args }, check_journal("edit", args, 2))
end

function ops.delete(ctx, args)
  util.check_args("delete", args, allowed({ zone_id = true, ip = true }, { journal = true }), 2)
  local zone_id = check_zone_id("delete", args.zone_id, 2)
  local c = check_ip("delete", args.ip, 2)
  local opts, path_j = call_options("delete", args, 2), check_journal("delete", args, 2)
  local known
  if path_j then -- learn what is about to go, so a lost response can still be undone
    local current = call(ctx, "GET", ip_path(zone_id, c), nil, one_mapping, opts)
    known = current and { [c] = current.value } or nil
  end
  return single(ctx, "delete", zone_id, c, "DELETE", ip_path(zone_id, c), nil, one_mapping, opts,
    known, path_j)
end

local function regions_shape(result)
  if type(result.vendors) ~= "table" then return nil, "result.vendors is missing" end
  local vendors = {}
  for vendor, regions in pairs(result.vendors) do
    if type(vendor) ~= "string" or type(regions) ~= "table" then
      return nil, "result.vendors is not an object of lists"
    end
    local list = array()
    for i = 1, #regions do
      local r = regions[i]
      if type(r) ~= "table" or type(r.name) ~= "string" then
        return nil, format("result.vendors.%s[%d] has no name", vendor, i)
      end
      local colos = array()
      for _, colo in ipairs(type(r.upper_tier_colos) == "table" and r.upper_tier_colos or {}) do
        if type(colo) == "string" then colos[#colos + 1] = colo end
      end
      list[i] = { name = r.name, upper_tier_colos = colos }
    end
    vendors[vendor] = list
  end
  return { obtained_codes = result.obtained_codes == true, vendors = vendors, requests = 1 }
end

function ops.supported_regions(ctx, args)
  util.check_args("supported_regions", args, allowed { zone_id = true }, 2)
  local zone_id = check_zone_id("supported_regions", args.zone_id, 2)
  return call(ctx, "GET", zone_path(zone_id, "/supported_regions"), nil, regions_shape,
    call_options("supported_regions", args, 2))
end

-- The zone's current mappings by canonical IP, or nil, err.
local function current_mappings(ctx, zone_id, opts)
  local listing, err = ops.list(ctx, { zone_id = zone_id, timeout = opts.timeout,
    connect_timeout = opts.connect_timeout, max_retries = opts.max_retries,
    max_retry_wait = opts.max_retry_wait })
  if not listing then return nil, err end
  local by_ip = {}
  for _, m in ipairs(listing.value) do by_ip[m.origin_ip] = m end
  return by_ip, listing
end

-- bulk_delete{..., dry_run = true}: what a delete would do, from a listing of the zone.
local function dry_run_delete(ctx, zone_id, order, res, ledger, opts)
  local current, listing = current_mappings(ctx, zone_id, opts)
  res.requests = 1
  res.dry_run = true
  if not current then
    append_pending(res, order, 1)
    return finish(res, ledger, listing)
  end
  res.editable = listing.editable
  for _, c in ipairs(order) do
    local m = current[c]
    local entry = { origin_ip = c, input = input_for(ledger, c) }
    if m then
      entry.region, entry.vendor = m.region, m.vendor
      add_entry(ledger, res.value.succeeded, entry, ledger.rank_of[c])
    else
      entry.error = "mapping not found"
      add_entry(ledger, res.value.failed, entry, ledger.rank_of[c])
    end
  end
  return finish(res, ledger)
end

function ops.bulk_delete(ctx, args)
  local fname = "bulk_delete"
  util.check_args(fname, args, allowed({ zone_id = true, ips = true },
    { dry_run = true, journal = true, concurrency = true }), 2)
  local zone_id = check_zone_id(fname, args.zone_id, 2)
  local ips = args.ips
  local n = util.check_list(fname, "ips", ips, "IP address strings", 2)
  local dry_run = check_bool(fname, args, "dry_run", 2)
  local opts = call_options(fname, args, 2)
  local path_j = check_journal(fname, args, 2)
  local concurrency = check_concurrency(fname, args, 2)

  -- canonical form, first-seen order, one entry per address; non-addresses are never sent
  local res, ledger = new_batch_result(n), new_ledger(n)
  local order, input_of, rank_of = new_table(n, 0), ledger.input_of, ledger.rank_of
  local bad_seen = {}
  for i = 1, n do
    local s = ips[i]
    if type(s) ~= "string" then
      argerror(fname, "ips", format("element %d is a %s, expected a string", i, type(s)), 2)
    end
    local c = canonical(s)
    if c then
      if not rank_of[c] then
        rank_of[c] = i
        if s ~= c then input_of[c] = s end
        order[#order + 1] = c
      end
    elseif not bad_seen[s] then
      bad_seen[s] = true
      add_entry(ledger, res.value.failed,
        { origin_ip = s, error = "invalid IP address", input = s }, i)
    end
  end
  if dry_run and #order > 0 then return dry_run_delete(ctx, zone_id, order, res, ledger, opts) end
  if dry_run then res.dry_run = true end

  local run = { opts = opts, name = fname, concurrency = concurrency }
  if path_j and #order > 0 then
    -- the journal needs each mapping's vendor and region before it goes: list the zone once
    local current, err = current_mappings(ctx, zone_id, opts)
    res.requests = 1
    if not current then
      append_pending(res, order, 1)
      return finish(res, ledger, err)
    end
    run.listed = current
    local ok, jerr = open_writer(run, path_j, fname, zone_id, current)
    if not ok then return journal_failure(res, ledger, order, jerr) end
  end
  return run_batches(ctx, "DELETE", zone_path(zone_id, "/batch"), order,
    -- canonical addresses need no JSON escaping
    function(batch) return '["' .. concat(batch, '","') .. '"]' end, res, ledger, run)
end

local function check_item(_, v)
  if type(v) ~= "table" then return "is a " .. type(v) .. ", expected a table {ip=, region=, vendor=}" end
end

-- Why an item cannot be sent, or nil when it can.
local function item_problem(item, c)
  if not c then return "invalid IP address" end
  if not VENDOR_SET[item.vendor] then return "unsupported vendor" end
  if type(item.region) ~= "string" or item.region == "" then
    return "region must be a non-empty string"
  end
end

function ops.bulk_edit(ctx, args)
  local fname = "bulk_edit"
  util.check_args(fname, args, allowed({ zone_id = true, items = true },
    { journal = true, concurrency = true }), 2)
  local zone_id = check_zone_id(fname, args.zone_id, 2)
  local items = args.items
  local n = util.check_list(fname, "items", items, "tables {ip=, region=, vendor=}", 2, check_item)
  local opts = call_options(fname, args, 2)
  local path_j = check_journal(fname, args, 2)
  local concurrency = check_concurrency(fname, args, 2)

  local res, ledger = new_batch_result(n), new_ledger(n)
  local order, payload, input_of, rank_of = new_table(n, 0), new_table(0, n), ledger.input_of,
    ledger.rank_of
  for i = 1, n do
    local item = items[i]
    local given = item.ip
    local c = type(given) == "string" and canonical(given) or nil
    local problem = item_problem(item, c)
    if problem then
      add_entry(ledger, res.value.failed, { origin_ip = c or (type(given) == "string" and given or nil),
        error = problem, input = given }, i)
    else
      if payload[c] then -- the last item for an address wins; the earlier one is reported
        add_entry(ledger, res.value.failed, { origin_ip = c, error = "duplicate IP in request",
          input = input_for(ledger, c) }, rank_of[c])
      else
        order[#order + 1] = c
      end
      payload[c] = { ip = c, region = item.region, vendor = item.vendor }
      input_of[c], rank_of[c] = given ~= c and given or nil, i
    end
  end
  local run = { opts = opts, name = fname, concurrency = concurrency }
  if path_j and #order > 0 then
    local ok, jerr = open_writer(run, path_j, fname, zone_id, payload)
    if not ok then return journal_failure(res, ledger, order, jerr) end
  end
  return run_batches(ctx, "PATCH", zone_path(zone_id, "/batch"), order, function(batch)
    local body = {}
    for i, c in ipairs(batch) do body[i] = payload[c] end
    return json.encode(body)
  end, res, ledger, run)
end

--- The namespace table of one client: each operation as a plain function of an argument
--- table, bound to the client and its transport (called with a dot, as in the SDKs).
function M.bind(client, transport)
  local ctx = { client = client, transport = transport }
  local ns = {}
  for name, op in pairs(ops) do
    ns[name] = function(args) return op(ctx, args) end
  end
  return ns
end

M.OPERATIONS = {}
for name in pairs(ops) do M.OPERATIONS[#M.OPERATIONS + 1] = name end
table.sort(M.OPERATIONS)

return M
