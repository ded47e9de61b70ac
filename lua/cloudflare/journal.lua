-- cloudflare.journal: the append-only record of what cfrun was about to change and what it
-- changed (JSON lines, each fsync'd before the request it announces is sent), and `restore`,
-- which undoes it: re-creates every mapping a journal shows as deleted and the zone no longer
-- has, and puts back every mapping a journaled write changed. Must never let a request go out
-- whose intent is not on disk.
--
-- Error convention: programming mistakes (bad arguments, a writer used after close) raise;
-- what happens on the disk or the wire returns nil, err[, partial].
local core = require "cloudflare.core"
local ip = require "cloudflare.ip"
local json = require "cloudflare.json"
local transport = require "cloudflare.transport"
local util = require "cloudflare.util"

local M = { VERSION = 1 }

-- path -> { h = native journal, writers = open writers }: one descriptor per file however
-- many calls write to it at once, closed with the last of them
local handles = {}
local calls = 0

--- The journal path for a call: its `journal` argument, else $CFRUN_JOURNAL; `false`
--- switches journaling off for the call.
function M.path(arg)
  if arg == false then return nil end
  if arg ~= nil then return arg end
  local env = os.getenv("CFRUN_JOURNAL")
  if env and env ~= "" then return env end
  return nil
end

local Writer = {}
Writer.__index = Writer

--- M.open(path, op, zone_id) -> writer | nil, message. One writer per API call: its records
--- share a call id. Close it when the call ends (`local w <close> = ...`; a writer nobody
--- closed is closed when collected).
function M.open(path, op, zone_id)
  local entry = handles[path]
  if not entry then
    local h, err = core.journal_open(path)
    if not h then return nil, err end
    entry = { h = h, writers = 0 }
    handles[path] = entry
  end
  entry.writers = entry.writers + 1
  calls = calls + 1
  return setmetatable({ entry = entry, path = path, op = op, zone_id = zone_id,
    call = string.format("%s-%06x-%d", core.timestamp(), math.random(0, 0xffffff), calls) }, Writer)
end

--- writer:write(record) -> true | nil, message. Adds version, time, call, op and zone.
--- Raises once the writer is closed: a record written then would belong to no call.
function Writer:write(rec)
  local entry = self.entry
  if not entry then error("cloudflare.journal: attempt to write to a closed writer", 2) end
  rec.v, rec.ts, rec.call, rec.op, rec.zone_id = M.VERSION, core.timestamp(), self.call, self.op,
    self.zone_id
  return entry.h:append(json.encode(rec))
end

--- writer:close(): idempotent; also __close and __gc. The file is closed with its last writer.
function Writer:close()
  local entry = self.entry
  if not entry then return end
  self.entry = nil
  entry.writers = entry.writers - 1
  if entry.writers == 0 then
    if handles[self.path] == entry then handles[self.path] = nil end
    entry.h:close()
  end
end
Writer.__close = Writer.close
Writer.__gc = Writer.close

-- A list of {ip, region, vendor} for the journal, from canonical IPs and what is known; with
-- `before` (the zone's mappings before a write), each item also has before = {region, vendor},
-- or false when the IP had no mapping.
function M.items(ips, known, before)
  local out = json.array()
  for i, c in ipairs(ips) do
    local m = known and known[c]
    local item = { ip = c, region = m and m.region, vendor = m and m.vendor }
    if before then
      local b = before[c]
      item.before = b and { region = b.region, vendor = b.vendor } or false
    end
    out[i] = item
  end
  return out
end

--- M.outcome(batch, attempt, result_or_nil, info_or_err, entries) -> the outcome record of one
--- attempt. For a failed attempt, error.unsent copies err.unsent (the request was certainly
--- not applied: refused as a whole, or never written) and error.retryable says the transport
--- may send the batch again after it, so a later attempt's fate can still be unknown.
function M.outcome(batch, attempt, result, info, entries)
  local rec = { phase = "outcome", batch = batch, attempt = attempt, status = info and info.status,
    request_id = info and info.request_id }
  if result == nil then
    rec.error = { kind = info.kind, status = info.status, message = info.message,
      unsent = info.unsent == true or nil, retryable = transport.retryable(info) or nil }
  elseif entries then
    rec.succeeded, rec.failed = json.array(), json.array()
    for _, e in ipairs(entries.succeeded) do
      rec.succeeded[#rec.succeeded + 1] = { ip = e.origin_ip, region = e.region, vendor = e.vendor }
    end
    for _, e in ipairs(entries.failed) do
      rec.failed[#rec.failed + 1] = { ip = e.origin_ip, error = e.error, already_absent = e.already_absent }
    end
  end
  return rec
end

---------------------------------------------------------------------------------------------
-- restore

local DELETES = { bulk_delete = true, delete = true }
-- by the names journals were written with (update and bulk_update were edit and bulk_edit)
local WRITES = { bulk_update = true, update = true, bulk_edit = true, edit = true, create = true }

local function mapping_of(it)
  if type(it) == "table" and type(it.ip) == "string" and type(it.region) == "string"
      and type(it.vendor) == "string" then
    return ip.canonical(it.ip) or it.ip, it.region, it.vendor
  end
end

local function ip_of(it)
  if type(it) == "table" and type(it.ip) == "string" then return ip.canonical(it.ip) or it.ip end
end

-- Works out, from the records in file order, which mappings the journal shows as deleted or
-- possibly deleted (a request sent whose outcome never arrived) and not re-created since,
-- and which it shows as written (an edit or a creation, journaled with what the zone had
-- before: { ip, before, after, deleted }), to be put back as they were.
-- Each IP keeps the set of calls' batches (call/batch) that claim it: a claim is made by a
-- delete's intent or by a deletion its outcome reports, and withdrawn only by that same batch
-- showing it deleted nothing there; so another call's "not found" (a deletion that lost the
-- race to ours) never cancels ours. A successful write of the IP clears every claim before it.
local function undo_candidates(records)
  local claims, order = {}, {} -- ip -> { key -> {region=, vendor=, seq=} }; first-claim order
  local by_key = {}            -- key -> { ip -> true }: what each batch claims
  local unsent = {}            -- key -> { attempt -> true when that attempt was certainly not applied }
  local edits = {}             -- ip -> { before = {region=, vendor=} | false, after = {...} }

  local function claim(key, c, region, vendor, seq)
    local set = claims[c]
    if not set then
      set = {}
      claims[c] = set
      order[#order + 1] = c
    end
    set[key] = { region = region, vendor = vendor, seq = seq }
    by_key[key] = by_key[key] or {}
    by_key[key][c] = true
  end
  local function withdraw(key, c)
    if claims[c] then claims[c][key] = nil end
  end
  -- whether attempts 1..attempt-1 of a batch are all journaled as certainly not applied (so
  -- this attempt is the first that could have deleted anything)
  local function first_applied(key, attempt)
    if math.type(attempt) ~= "integer" or attempt < 1 then return false end
    local u = unsent[key] or {}
    for a = 1, attempt - 1 do
      if not u[a] then return false end
    end
    return true
  end

  for seq, r in ipairs(records) do
    local key = tostring(r.call) .. "/" .. tostring(r.batch)
    if DELETES[r.op] and r.phase == "intent" and type(r.items) == "table" then
      for _, it in ipairs(r.items) do
        local c, region, vendor = mapping_of(it)
        if c then claim(key, c, region, vendor, seq) end -- possibly deleted from now on
      end
    elseif DELETES[r.op] and r.phase == "outcome" and type(r.error) == "table" then
      local attempt = r.attempt
      if math.type(attempt) == "integer" and r.error.unsent == true then
        unsent[key] = unsent[key] or {}
        unsent[key][attempt] = true
        -- every attempt refused or never written, and no retry can follow: nothing deleted
        if r.error.retryable ~= true and first_applied(key, attempt) then
          for c in pairs(by_key[key] or {}) do withdraw(key, c) end
        end
      end
    elseif DELETES[r.op] and r.phase == "outcome" and type(r.succeeded) == "table" then
      for _, it in ipairs(r.succeeded) do
        local c, region, vendor = mapping_of(it)
        if c then
          claim(key, c, region, vendor, seq)
        else
          -- the server named the IP only: keep what the intent had, as of now
          c = ip_of(it)
          local mine = c and claims[c] and claims[c][key]
          if mine then mine.seq = seq end
        end
      end
      local first = first_applied(key, r.attempt)
      for _, it in ipairs(type(r.failed) == "table" and r.failed or {}) do
        -- failed where no earlier attempt of ours can have deleted it (a first attempt, or
        -- one after attempts never applied): this batch deleted nothing there
        local c = ip_of(it)
        if c and (it.already_absent ~= true or first) then withdraw(key, c) end
      end
    elseif WRITES[r.op] and r.phase == "intent" and type(r.items) == "table" then
      for _, it in ipairs(r.items) do
        local c, region, vendor = mapping_of(it)
        local b = c and it.before
        if b == false or (type(b) == "table" and type(b.region) == "string"
            and type(b.vendor) == "string") then
          local e = edits[c]
          if not e then
            -- the first write of the IP says what the zone had before the journal changed it
            e = { before = b and { region = b.region, vendor = b.vendor } or false }
            edits[c] = e
            if not claims[c] then order[#order + 1] = c end
          end
          e.after = { region = region, vendor = vendor } -- possibly written from now on
        end
      end
    elseif WRITES[r.op] and r.phase == "outcome" and type(r.succeeded) == "table" then
      for _, it in ipairs(r.succeeded) do
        local c = ip_of(it)
        if c and claims[c] then claims[c] = {} end -- re-created since: claims so far are void
      end
    end
  end
  local out = {}
  for _, c in ipairs(order) do
    local latest
    for _, m in pairs(claims[c] or {}) do
      if not latest or m.seq > latest.seq then latest = m end
    end
    local e = edits[c]
    if e then
      -- undone to what it was before its first write; deleted by us since: absent is ours too
      out[#out + 1] = { ip = c, before = e.before, after = e.after, deleted = latest ~= nil }
    elseif latest then
      out[#out + 1] = { ip = c, region = latest.region, vendor = latest.vendor }
    end
  end
  return out
end

--- journal.read(path[, {zone_id=, since=}]) -> records, bad_lines | nil, message
function M.read(path, filter)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local records, bad = {}, 0
  filter = filter or {}
  for line in f:lines() do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" and r.v == M.VERSION then
      if (not filter.zone_id or r.zone_id == filter.zone_id)
          and (not filter.since or (type(r.ts) == "string" and r.ts >= filter.since)) then
        records[#records + 1] = r
      end
    elseif line ~= "" then
      bad = bad + 1 -- e.g. a line torn by a full disk or a kill mid-write
    end
  end
  f:close()
  return records, bad
end

-- A result of restore's own making (a dry run, nothing to send, a failed listing), shaped
-- like bulk_update's.
local function own_result(requests, dry_run)
  return { value = { succeeded = json.array(), failed = json.array(), pending = json.array(),
    unsent = json.array() }, requests = requests, dry_run = dry_run or nil }
end

local function same(m, want)
  return m ~= nil and want ~= nil and want ~= false and m.region == want.region
    and m.vendor == want.vendor
end

-- The plan from the candidates and the zone now (ip -> mapping): `writes` to send with
-- bulk_update (a deletion to re-create, an edit to put back), `deletes` (mappings a journaled
-- write created, still as written), and the IPs left as they are: `present` (as before the
-- journal already: re-created, or put back, since) and `changed` (written since by someone
-- else: undoing ours would overwrite a newer state).
local function plan_of(candidates, now)
  local p = { writes = {}, deletes = {}, present = json.array(), changed = json.array() }
  local function keep(list, c) list[#list + 1] = c end
  for _, m in ipairs(candidates) do
    local cur = now[m.ip]
    if m.before == nil then -- a deletion: re-create it unless the zone has it again
      if cur then keep(p.present, m.ip) else p.writes[#p.writes + 1] = m end
    elseif m.before == false then -- created by the journal's write
      if not cur then keep(p.present, m.ip)
      elseif same(cur, m.after) then p.deletes[#p.deletes + 1] = m.ip
      else keep(p.changed, m.ip) end
    elseif same(cur, m.before) then keep(p.present, m.ip)
    elseif same(cur, m.after) or (not cur and m.deleted) then
      p.writes[#p.writes + 1] = { ip = m.ip, region = m.before.region, vendor = m.before.vendor }
    else
      keep(p.changed, m.ip)
    end
  end
  return p
end

-- Adds the lists and requests of `b` (a result or partial) to `a`.
local function merge_into(a, b)
  for _, k in ipairs { "succeeded", "failed", "pending", "unsent" } do
    local dst, src = a.value[k], b.value[k] or {}
    table.move(src, 1, #src, #dst + 1, dst)
  end
  a.requests = (a.requests or 0) + (b.requests or 0)
end

--- journal.restore{ path=, zone_id=, since=, client=, dry_run= } -> res | nil, err, partial
--- Undoes what a journal shows: the mappings it shows as deleted (or possibly deleted) are
--- re-created, with the vendor and region last journaled for them; the mappings it shows as
--- written (a bulk_update journaled with what each replaced) are put back as they were
--- before the journal's first write of them, and those it created are deleted again. The
--- plan, shared by the real run and the dry run, comes from one listing: a mapping the zone
--- has as before already is left as it is (present), and so is one written since by someone
--- else (changed: undoing ours would overwrite a newer state). A dry run stops right before
--- sending and reports exactly what a real run would send as succeeded. Idempotent: a second
--- run finds everything as before.
--- res is bulk_update's result (with bulk_delete's, for the creations undone, merged in; its
--- requests include the listing's) plus res.restore = { candidates = n, records = n,
--- bad_lines = n, present = n, present_ips = {ip, ...}, changed = n, changed_ips = {...},
--- deleted = n (creations undone, or under dry_run to undo) }.
--- A failed listing gives nil, err, partial with nothing sent (every candidate unsent).
function M.restore(args)
  util.check_args("journal.restore", args,
    { path = true, zone_id = true, since = true, client = true, dry_run = true }, 2)
  local path = args.path or M.path(nil)
  if type(path) ~= "string" then
    util.argerror("journal.restore", "path", "missing (pass path or set CFRUN_JOURNAL)", 2)
  end
  if type(args.zone_id) ~= "string" then
    util.argerror("journal.restore", "zone_id", "expected a zone id string", 2)
  end
  if args.since ~= nil and type(args.since) ~= "string" then
    util.argerror("journal.restore", "since", "expected an RFC 3339 time string", 2)
  end
  local records, bad = M.read(path, { zone_id = args.zone_id, since = args.since })
  if not records then util.argerror("journal.restore", "path", tostring(bad), 2) end
  local candidates = undo_candidates(records)
  local info = { candidates = #candidates, bad_lines = bad, records = #records, present = 0,
    present_ips = json.array(), changed = 0, changed_ips = json.array(), deleted = 0 }
  if #candidates == 0 then
    local res = own_result(0, args.dry_run)
    res.restore = info
    return res
  end

  local client = args.client or require("cloudflare").default_client()
  local ocr = client.cache.origin_cloud_regions
  local listing, lerr = ocr.list { zone_id = args.zone_id }
  if not listing then
    local partial = own_result(lerr.requests or 0, args.dry_run)
    for i, m in ipairs(candidates) do partial.value.unsent[i] = m.ip end
    partial.restore = info
    return nil, lerr, partial
  end
  local now = {}
  for _, m in ipairs(listing.value) do
    if type(m.origin_ip) == "string" then now[ip.canonical(m.origin_ip) or m.origin_ip] = m end
  end
  local plan = plan_of(candidates, now)
  info.present_ips, info.present = plan.present, #plan.present
  info.changed_ips, info.changed = plan.changed, #plan.changed
  info.deleted = #plan.deletes

  local out = own_result(listing.requests or 1, args.dry_run)
  out.restore, out.generation = info, listing.generation
  if args.dry_run then
    for _, m in ipairs(plan.writes) do
      out.value.succeeded[#out.value.succeeded + 1] = { origin_ip = m.ip, region = m.region,
        vendor = m.vendor, input = m.ip }
    end
    for _, c in ipairs(plan.deletes) do
      local m = now[c]
      out.value.succeeded[#out.value.succeeded + 1] = { origin_ip = c, region = m.region,
        vendor = m.vendor, input = c, deleted = true, dry_status = "would_delete" }
    end
    return out
  end
  if #plan.writes > 0 then
    local res, err, partial = ocr.bulk_update { zone_id = args.zone_id, items = plan.writes, journal = false }
    merge_into(out, res or partial)
    if not res then
      for _, c in ipairs(plan.deletes) do out.value.unsent[#out.value.unsent + 1] = c end
      return nil, err, out
    end
  end
  if #plan.deletes > 0 then
    local res, err, partial = ocr.bulk_delete { zone_id = args.zone_id, ips = plan.deletes, journal = false }
    local got = res or partial
    for _, e in ipairs(got.value.succeeded) do e.deleted = true end
    merge_into(out, got)
    if not res then return nil, err, out end
  end
  return out
end

return M
