-- cloudflare.batch: the batch engine behind the bulk operations of an endpoint family: inputs
-- split into batches of the API's size and sent concurrently, the ledger that puts every
-- result back in the caller's order, the merge of each answer (whichever generation gave it)
-- into succeeded, failed, pending (sent, fate unknown) and unsent (certainly not applied),
-- dry runs, and the journal of every batch. Must not know paths or wire shapes beyond what
-- cloudflare.binder and the description give it.
--
-- Error convention, kept by every function here: programming mistakes (bad arguments) raise;
-- what happens on the wire returns nil, err, partial, err being a cloudflare.Error.

local async = require "cloudflare.async"
local binder = require "cloudflare.binder"
local core = require "cloudflare.core"
local ip = require "cloudflare.ip"
local json = require "cloudflare.json"
local journal = require "cloudflare.journal"
local progress = require "cloudflare.progress"
local util = require "cloudflare.util"

local canonical, index_ips = ip.canonical, ip.index
local array = json.array
local new_table, merge_items, mark_sent = core.new_table, core.merge_items, core.mark_sent
local format = string.format
local argerror = util.argerror
local decode_error = binder.decode_error

local M = {}

---------------------------------------------------------------------------------------------
-- the ledger

-- n: the number of inputs, which the lists of results are sized for.
local function new_batch_result(ctx, n)
  return {
    id = ctx.gen.setting_id,
    value = { succeeded = array(new_table(n, 0)), failed = array(), pending = array(),
      unsent = array() },
    requests = 0,
    generation = ctx.gen.name,
  }
end

-- Bookkeeping of one batch call: the position (rank_of) of each canonical IP in the caller's
-- list and the caller's spelling where it was not the canonical one (input_of; see input_for),
-- and the position of the result entries rank_of cannot place (invalid inputs, overridden
-- duplicates), so results come back in the caller's order.
local function new_ledger(n, rank_of, input_of)
  -- batch_of: canonical IP -> the list it was sent in, then true once a response accounted
  -- for it. Per call, not per batch, and sized for the n inputs once rather than grown by
  -- rehashing: with rank_of, these are a bulk call's largest tables. claimed: inputs that a
  -- response to another request named (their fate is unknown even if never sent);
  -- unexpected: IPs a response named that the caller never gave.
  return { n = n, input_of = input_of or {}, rank_of = rank_of or new_table(0, n), ranks = {},
    batch_of = new_table(0, n),
    claimed = {}, unexpected = {} }
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
  -- results usually come in order already (one batch at a time, or batches answered in
  -- turn): then a read of the ranks is all it takes
  local prev = 0
  for i = 1, #items do
    local item = items[i]
    local r = ranks[item] or rank_of[item.origin_ip]
    if not r or r <= prev then goto reorder end
    prev = r
  end
  do return end
  ::reorder::
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

-- IPs certainly not applied (never sent, or refused as a whole); one a response claimed to
-- have handled is pending instead, as its fate is then unknown.
local function append_unsent(res, ledger, order, first, last)
  local unsent, pending, claimed = res.value.unsent, res.value.pending, ledger.claimed
  for i = first, last or #order do
    local c = order[i]
    if claimed[c] then pending[#pending + 1] = c else unsent[#unsent + 1] = c end
  end
end

-- A batch whose request failed as a whole: unsent when no attempt can have been applied
-- (err.unsent, see cloudflare.transport), else pending.
local function append_failed_batch(res, ledger, sent, err)
  if err.unsent then append_unsent(res, ledger, sent, 1) else append_pending(res, sent, 1) end
end

-- Merges one batch's `result` into res. Items are taken one by one so that a malformed item
-- cannot hide the valid ones (a change must never go unrecorded); IPs of the batch that the
-- response does not account for go to pending. Returns a description of what was wrong, or nil.
-- absent_on_retry: after a retry, a failed IP may be one the first attempt deleted (its
-- response lost) when it was mapped before the call (`listed`, or unknown without a listing).
-- Nothing here reads a per-item error's wording: the contract publishes none.
local function merge_batch(ctx, res, ledger, result, sent, retried, listed, absent_on_retry, shaped)
  local value, where, fields
  if type(result) == "table" then value, where, fields = binder.unwrap(ctx.gen, result) end
  if type(value) ~= "table" or type(value.succeeded) ~= "table"
      or type(value.failed) ~= "table" then
    append_pending(res, sent, 1) -- applied or not: the answer does not say
    if type(result) ~= "table" then
      return "result is a " .. type(result) .. ", expected an object"
    end
    where = ctx.gen.setting and "result.value" or "result"
    return where .. ".succeeded and " .. where .. ".failed are missing"
  end
  local problem
  mark_sent(ledger.batch_of, sent) -- on_send marked them, unless the transport skipped it
  -- every item, one by one, in C (core.merge_items): a malformed one is a problem named,
  -- never a reason to drop the others
  local absent = retried and absent_on_retry or false
  for _, list in ipairs { "succeeded", "failed" } do
    local p = merge_items(value[list], res.value[list], sent, ledger, list, where, list == "succeeded",
      absent, listed, shaped)
    problem = problem or p
  end
  local missing = core.unaccounted(ledger.batch_of, sent, res.value.pending)
  if missing > 0 and not problem then
    problem = format("the response accounts for %d of the %d IPs sent", #sent - missing, #sent)
  end
  if fields then
    res.editable = fields.editable
    res.modified_on = fields.modified_on or res.modified_on
  end
  return problem
end

local LISTS = { "succeeded", "failed", "pending", "unsent" }

-- The one check of every path's accounts: each IP of `order` (the canonical inputs) is in
-- exactly one of the four lists, and nothing else is, but entries placed by rank (invalid
-- inputs, overridden duplicates). An IP found in none is added as pending when it was sent,
-- unsent when not. Returns a description of what was wrong, or nil.
local function check_partition(res, ledger, order)
  local where, ranks, rank_of, problem = new_table(0, #order), ledger.ranks, ledger.rank_of, nil
  for _, list in ipairs(LISTS) do
    for _, e in ipairs(res.value[list]) do
      local c = type(e) == "table" and e.origin_ip or e
      -- an entry placed by rank is its IP's outcome unless it reports another input's problem
      if not ranks[e] or ranks[e] == rank_of[c] then
        if where[c] then
          problem = problem or format("%s is both %s and %s", c, where[c], list)
        elseif not rank_of[c] then
          problem = problem or format("%s is %s but is not an input", c, list)
        end
        where[c] = where[c] or list
      end
    end
  end
  for _, c in ipairs(order) do
    if not where[c] then
      problem = problem or format("%s had no outcome", c)
      local into = type(ledger.batch_of[c]) == "table" and res.value.pending or res.value.unsent
      into[#into + 1] = c
    end
  end
  return problem
end

-- Every path of a batch call ends here (a raise too: see account_on_raise): results in input
-- order, the partition checked, the counters of the run, the progress line gone.
local function finish(res, ledger, err)
  ledger.finished = true
  in_input_order(res.value.succeeded, ledger)
  in_input_order(res.value.failed, ledger)
  local problem = check_partition(res, ledger, ledger.order or {})
  if problem and not err then
    err = core.error { kind = "internal", message = "cfrun's accounts of this call were wrong ("
      .. problem .. "); the lists were corrected, please report it" }
  end
  if #ledger.unexpected > 0 and err then err.unexpected = ledger.unexpected end
  if ledger.progress then ledger.progress:done() end -- the run's close does it again: no-op
  local v = res.value
  if not res.dry_run then binder.count(#v.succeeded, #v.failed, #v.pending, #v.unsent) end
  if err then return nil, err, res end
  return res
end

-- Closed when a batch call's function is left: a call that raised (a hook that raised, say)
-- still counts what it did in the run's counters, each IP once (pending when its request
-- went out, unsent when not), so the job log tells the truth.
local function account_on_raise(res, ledger)
  return setmetatable({}, { __close = function(_, e)
    if e == nil or ledger.finished then return end
    ledger.finished = true
    local v, n = res.value, { pending = 0, unsent = 0 }
    local seen = {}
    for _, list in ipairs(LISTS) do
      for _, x in ipairs(v[list]) do seen[type(x) == "table" and x.origin_ip or x] = true end
    end
    for _, c in ipairs(ledger.order or {}) do
      if not seen[c] then
        local k = type(ledger.batch_of[c]) == "table" and "pending" or "unsent"
        n[k] = n[k] + 1
      end
    end
    if not res.dry_run then
      binder.count(#v.succeeded, #v.failed, #v.pending + n.pending, #v.unsent + n.unsent)
    end
  end })
end

-- Sets up the journal of a batch call: each batch's intent lists its IPs with what `known`
-- says of them (the current mapping, or the new one) and, for a write, what `before` says
-- the zone had (so that restore can undo it).
local function open_writer(run, path_j, fname, zone_id, known, before)
  local w, err = journal.open(path_j, fname, zone_id)
  if not w then return nil, err end
  run.writer = w -- closed with the run
  run.intent = function(sent) return journal.items(sent, known, before) end
  return true
end

-- What a batch call holds while it runs: options, the journal writer and the progress line
-- (whose hook on the transport's waits must be taken back). Held in a `<close>` variable, so
-- every path gives them back, a raise or a signal included.
local Run = {}
Run.__index = Run
function Run:__close()
  if self.writer and self.writer.close then self.writer:close() end
  if self.ledger.progress then self.ledger.progress:done() end
end

-- A batch's answer is decoded straight into the records merge_items completes into entries
-- (Client:request's shape "batch"); the caller's opts are not changed.
local function batch_opts(opts)
  local o = { shape = "batch" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

local function new_run(ctx, a, ledger, absent_on_retry)
  return setmetatable({ opts = batch_opts(a.opts), concurrency = a.concurrency or ctx.family.CONCURRENCY,
    absent_on_retry = absent_on_retry, ledger = ledger }, Run)
end

-- A call that cannot journal sends nothing: every IP is unsent.
local function journal_failure(res, ledger, order, message)
  append_unsent(res, ledger, order, 1)
  return finish(res, ledger, core.error { kind = "journal", unsent = true, message = message })
end

-- The progress line of a call of more than one batch (not in a task: tasks would fight over
-- one line); it counts the listing's requests too.
local function start_progress(ctx, ledger, name, n)
  if n > M.batch_size(ctx) and not async.current() then
    ledger.progress = progress.start(name, n, ctx.transport)
  end
end

function M.batch_size(ctx) return ctx.family.BATCH_SIZE end

-- The zone's mappings before a call (for the journal and dry runs): res.requests counts the
-- listing's requests. Returns current, listing, or nil, err with every IP unsent (nothing
-- was sent).
local function listing_for(ctx, res, ledger, order, zone_id, opts)
  local current, listing = ctx.current_mappings(zone_id, opts, function(n)
    res.requests = n
    if ledger.progress then ledger.progress:update(0, n) end
  end)
  if not current then -- nothing was changed yet
    res.requests = listing.requests or res.requests
    append_unsent(res, ledger, order, 1)
    listing.unsent = true
    return nil, listing
  end
  res.requests = listing.requests
  return current, listing
end

-- Sends `order` (canonical IPs) in batches; body_of(batch) gives each request body. Up to
-- run.concurrency batches are in flight at once, each in a task (cloudflare.async).
-- A failed batch stops the run: no later batch starts (those stay unsent), and the failed
-- batch is unsent or pending as its error says; batches already in flight finish and count,
-- as what they did happened.
-- Results are merged in input order, so they do not depend on the concurrency. With a
-- journal, each batch's intent is on disk before it is sent, and every attempt's outcome
-- after it.
local function run_batches(ctx, g, path, order, body_of, res, ledger, run)
  local w = run.writer
  local size = M.batch_size(ctx)
  local nbatches = (#order + size - 1) // size
  local next_batch, failed_at, first_err, done_n = 1, math.huge, nil, 0

  -- Sends batch number `batch`; returns the error that must stop the run, or nil.
  local function send_batch(batch)
    local first = (batch - 1) * size + 1
    local sent = table.move(order, first, math.min(first + size - 1, #order), 1, {})
    if w then
      local ok, jerr = w:write { phase = "intent", batch = batch, items = run.intent(sent) }
      if not ok then -- never send what the journal could not record
        append_unsent(res, ledger, sent, 1)
        return core.error { kind = "journal", unsent = true, message = jerr }
      end
    end
    -- once it goes out, its IPs are this request's: a raise before the answer leaves them
    -- pending, not unsent
    local batch_of = ledger.batch_of
    local function on_send() mark_sent(batch_of, sent) end
    local result, info, attempts = binder.send(ctx, g.method, path, body_of(sent), run.opts,
      w and function(attempt, r, i)
        if r == nil then w:write(journal.outcome(batch, attempt, nil, i)) end
      end, on_send)
    res.requests = res.requests + attempts
    if result == nil then
      append_failed_batch(res, ledger, sent, info)
      return info
    end
    local ns, nf = #res.value.succeeded, #res.value.failed
    local problem = merge_batch(ctx, res, ledger, result, sent, attempts > 1, run.listed,
      run.absent_on_retry, info.shaped)
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
    local _, errs = async.parallel(workers, { concurrency = conc })
    for i = 1, conc do -- a worker raised (a hook did): the call raises, as it would alone
      if errs[i] and errs[i].kind == "raised" then error(errs[i].value, 0) end
    end
  end
  if next_batch <= nbatches then -- never started
    append_unsent(res, ledger, order, (next_batch - 1) * size + 1)
  end
  if conc > 1 then -- failed batches ended in any order
    local pos
    for _, list in ipairs { res.value.pending, res.value.unsent } do
      if #list > 1 then
        if not pos then
          pos = {}
          for i, c in ipairs(order) do pos[c] = i end
        end
        table.sort(list, function(a, b) return pos[a] < pos[b] end)
      end
    end
  end
  return finish(res, ledger, first_err)
end

-- Runs the batches of `order` with the request of op's description for this generation;
-- payload: what an item body needs per IP (nil for a list of IPs).
local function send_all(ctx, op, zone_id, order, payload, res, ledger, run)
  local g = op[ctx.gen.name]
  local body = binder.BODIES[g.body]
  return run_batches(ctx, g, binder.op_path(ctx, g, zone_id), order,
    function(batch) return body(ctx.gen, batch, payload) end, res, ledger, run)
end

---------------------------------------------------------------------------------------------
-- the operations (a: the arguments as cloudflare.binder checked them; level: where a raised
-- error points, counted from the operation)

-- bulk_delete{..., dry_run = true}: what a delete would do, from a listing of the zone.
local function dry_run_delete(ctx, a, order, res, ledger)
  res.dry_run = true
  local current, listing = listing_for(ctx, res, ledger, order, a.zone_id, a.opts)
  if not current then return finish(res, ledger, listing) end
  res.editable = listing.editable
  for _, c in ipairs(order) do
    local m = current[c]
    local entry = { origin_ip = c, input = input_for(ledger, c) }
    if m then
      entry.region, entry.vendor = m.region, m.vendor
      add_entry(ledger, res.value.succeeded, entry, ledger.rank_of[c])
    else
      entry.error = "mapping not found" -- cfrun's own words: the listing does not have it
      add_entry(ledger, res.value.failed, entry, ledger.rank_of[c])
    end
  end
  return finish(res, ledger)
end

--- Deletes the mappings of a.ips (any number): canonical form, first-seen order, one entry
--- per address; non-addresses are never sent.
function M.delete(ctx, op, a, fname, level)
  local ips = a.ips
  local n, order, rank_of, input_of, bad = index_ips(ips) -- checks and canonicalises, in C
  if not n and order == 0 then
    -- not a plain sequence: check_list names what is wrong, else (metamethods) a plain copy
    local len = util.check_list(fname, "ips", ips, "IP address strings", level)
    local copy = new_table(len, 0)
    for i = 1, len do copy[i] = ips[i] end
    n, order, rank_of, input_of, bad = index_ips(copy)
  end
  if not n then
    argerror(fname, "ips", format("element %d is a %s, expected a string", order, type(ips[order])), level)
  end
  local res, ledger = new_batch_result(ctx, n), new_ledger(n, rank_of, input_of)
  local bad_seen = {}
  for k = 1, #bad - 1, 2 do
    local i, s = bad[k], bad[k + 1]
    if not bad_seen[s] then
      bad_seen[s] = true
      add_entry(ledger, res.value.failed,
        { origin_ip = s, error = util.invalid_ip(s, canonical), input = s }, i)
    end
  end
  ledger.order = order
  local accounts <close> = account_on_raise(res, ledger) -- luacheck: ignore 211 (closed on exit)
  local run <close> = new_run(ctx, a, ledger, true)
  if a.dry_run and #order == 0 then res.dry_run = true end
  start_progress(ctx, ledger, fname, #order)
  if a.dry_run and #order > 0 then return dry_run_delete(ctx, a, order, res, ledger) end

  if a.journal and #order > 0 then
    -- the journal needs each mapping's vendor and region before it goes: list the zone once
    local current, err = listing_for(ctx, res, ledger, order, a.zone_id, a.opts)
    if not current then return finish(res, ledger, err) end
    run.listed = current
    local ok, jerr = open_writer(run, a.journal, fname, a.zone_id, current)
    if not ok then return journal_failure(res, ledger, order, jerr) end
  end
  return send_all(ctx, op, a.zone_id, order, nil, res, ledger, run)
end

local function check_item(_, v)
  if type(v) ~= "table" then return "is a " .. type(v) .. ", expected a table {ip=, region=, vendor=}" end
end

-- Why an item cannot be sent, or nil when it can.
local function item_problem(item, given, c, clash)
  if clash then return "ip and origin_ip name different IPs" end
  if not c then return given == nil and "missing ip" or util.invalid_ip(given, canonical) end
  if not binder.VENDOR_SET[item.vendor] then return "unsupported vendor" end
  if type(item.region) ~= "string" or item.region == "" then
    return "region must be a non-empty string"
  end
end

--- Creates or replaces the mappings a.items (any number); items are {ip= (or origin_ip=),
--- region=, vendor=}.
function M.update(ctx, op, a, fname, level)
  local items = a.items
  local n = util.check_list(fname, "items", items, "tables {ip=, region=, vendor=}", level, check_item)
  local res, ledger = new_batch_result(ctx, n), new_ledger(n)
  local order, payload, input_of, rank_of = new_table(n, 0), new_table(0, n), ledger.input_of,
    ledger.rank_of
  for i = 1, n do
    local item = items[i]
    local given, _, clash = binder.given_ip(item)
    local c = type(given) == "string" and canonical(given) or nil
    local problem = item_problem(item, given, c, clash)
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
      payload[c] = { region = item.region, vendor = item.vendor }
      input_of[c], rank_of[c] = given ~= c and given or nil, i
    end
  end
  ledger.order = order
  local accounts <close> = account_on_raise(res, ledger) -- luacheck: ignore 211 (closed on exit)
  local run <close> = new_run(ctx, a, ledger)
  start_progress(ctx, ledger, fname, #order)
  if a.journal and #order > 0 then
    -- an undo needs what each write replaces: list the zone once, as a journaled delete does
    local current, err = listing_for(ctx, res, ledger, order, a.zone_id, a.opts)
    if not current then return finish(res, ledger, err) end
    local ok, jerr = open_writer(run, a.journal, fname, a.zone_id, payload, current)
    if not ok then return journal_failure(res, ledger, order, jerr) end
  end
  return send_all(ctx, op, a.zone_id, order, payload, res, ledger, run)
end

return M
