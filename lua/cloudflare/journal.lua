-- cloudflare.journal: the append-only record of what cfrun was about to change and what it
-- changed (JSON lines, each fsync'd before the request it announces is sent), and `restore`,
-- which re-creates every mapping a journal shows as deleted. Must never let a request go out
-- whose intent is not on disk.
local core = require "cloudflare.core"
local json = require "cloudflare.json"
local util = require "cloudflare.util"

local M = { VERSION = 1 }

local handles = {} -- path -> open native journal, kept for the life of the process
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
--- share a call id.
function M.open(path, op, zone_id)
  local h = handles[path]
  if not h then
    local err
    h, err = core.journal_open(path)
    if not h then return nil, err end
    handles[path] = h
  end
  calls = calls + 1
  return setmetatable({ h = h, op = op, zone_id = zone_id,
    call = string.format("%s-%06x-%d", core.timestamp(), math.random(0, 0xffffff), calls) }, Writer)
end

--- writer:write(record) -> true | nil, message. Adds version, time, call, op and zone.
function Writer:write(rec)
  rec.v, rec.ts, rec.call, rec.op, rec.zone_id = M.VERSION, core.timestamp(), self.call, self.op,
    self.zone_id
  return self.h:append(json.encode(rec))
end

-- A list of {ip, region, vendor} for the journal, from canonical IPs and what is known.
function M.items(ips, known)
  local out = json.array()
  for i, ip in ipairs(ips) do
    local m = known and known[ip]
    out[i] = { ip = ip, region = m and m.region, vendor = m and m.vendor }
  end
  return out
end

--- M.outcome(attempt, result_or_nil, info_or_err, merged) -> the outcome record of one attempt.
function M.outcome(batch, attempt, result, info, entries)
  local rec = { phase = "outcome", batch = batch, attempt = attempt, status = info and info.status,
    request_id = info and info.request_id }
  if result == nil then
    rec.error = { kind = info.kind, status = info.status, message = info.message }
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

-- Works out, from the records in file order, which mappings the journal shows as deleted
-- (or possibly deleted: a request sent whose outcome never arrived) and still gone.
local function deleted_mappings(records)
  local state, order = {}, {}       -- ip -> { region, vendor } | false (not deleted)
  local provisional = {}            -- call/batch -> { ip -> previous state }
  local function set(ip, v)
    if state[ip] == nil then order[#order + 1] = ip end
    state[ip] = v
  end
  for _, r in ipairs(records) do
    local key = tostring(r.call) .. "/" .. tostring(r.batch)
    if DELETES[r.op] and r.phase == "intent" and type(r.items) == "table" then
      local prev = {}
      for _, it in ipairs(r.items) do
        if type(it) == "table" and type(it.ip) == "string" and type(it.region) == "string"
            and type(it.vendor) == "string" then
          prev[it.ip] = state[it.ip] or false
          set(it.ip, { region = it.region, vendor = it.vendor }) -- possibly deleted from now on
        end
      end
      provisional[key] = prev
    elseif DELETES[r.op] and r.phase == "outcome" and type(r.succeeded) == "table" then
      local prev = provisional[key] or {}
      for _, it in ipairs(r.succeeded) do
        if type(it) == "table" and type(it.ip) == "string" and type(it.region) == "string"
            and type(it.vendor) == "string" then
          set(it.ip, { region = it.region, vendor = it.vendor })
        end
      end
      for _, it in ipairs(type(r.failed) == "table" and r.failed or {}) do
        -- failed on a first attempt (no retry could have hidden our own deletion): this call
        -- deleted nothing there
        if type(it) == "table" and prev[it.ip] ~= nil and it.already_absent ~= true then
          set(it.ip, prev[it.ip])
        end
      end
    elseif WRITES[r.op] and r.phase == "outcome" then
      for _, it in ipairs(type(r.succeeded) == "table" and r.succeeded or {}) do
        if type(it) == "table" and type(it.ip) == "string" and state[it.ip] then
          set(it.ip, false) -- re-created since: nothing to restore
        end
      end
    end
  end
  local out = {}
  for _, ip in ipairs(order) do
    if state[ip] then out[#out + 1] = { ip = ip, region = state[ip].region, vendor = state[ip].vendor } end
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
      bad = bad + 1 -- e.g. the last line of a process killed mid-write
    end
  end
  f:close()
  return records, bad
end

--- journal.restore{ path=, zone_id=, since=, client=, dry_run= } -> res | nil, err, partial
--- Re-creates, with bulk_update, every mapping the journal shows as deleted from the zone (with
--- the vendor and region it had). Idempotent: restoring twice changes nothing more.
--- res is bulk_update's result plus res.restore = { candidates = n, bad_lines = n }.
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
  local items = deleted_mappings(records)
  local client = args.client or require("cloudflare").default_client()
  local res, err, partial
  if args.dry_run or #items == 0 then
    res = { value = { succeeded = json.array(), failed = json.array(), pending = json.array() },
      requests = 0, dry_run = args.dry_run or nil }
    for i, it in ipairs(items) do
      res.value.succeeded[i] = { origin_ip = it.ip, region = it.region, vendor = it.vendor, input = it.ip }
    end
  else
    res, err, partial = client.cache.origin_cloud_regions.bulk_update {
      zone_id = args.zone_id, items = items, journal = false }
  end
  local out = res or partial
  out.restore = { candidates = #items, bad_lines = bad, records = #records }
  if not res then return nil, err, partial end
  return res
end

return M
