-- delete_across_zones.lua: delete origin cloud region mappings in many zones at once, from a
-- file of "ZONE_ID IP" lines (a space, tab or comma between them; '#' starts a comment,
-- blank lines are skipped). The zones are worked on concurrently, in one thread.
--
-- Usage: cfrun scripts/delete_across_zones.lua [--zones N] [--concurrency N] [--format F]
--                                              [FILE|-]
--        cfrun --sandbox scripts/delete_across_zones.lua pairs.txt      (against the fake API)
--
--   FILE              the ZONE_ID IP lines; "-" or nothing reads standard input
--   --zones N         zones worked on at once (default 4)
--   --concurrency N   batches of 100 in flight per zone (1 to 64, default 4)
--   --format F        table (default), json, jsonl or csv
--
-- All requests share the client's rate budget and in-flight bound (cloudflare.new's
-- max_in_flight, 16), however many zones run at once.
--
-- Output: one row per IP, with its zone: succeeded (deleted, with the vendor and region it
-- had), failed (with the reason), pending (sent, not known whether deleted: check them, or
-- restore them from the journal) or unsent (certainly not deleted: safe to send again, e.g.
-- by running the script again on those lines). In table format a count line follows ("2
-- zone(s): 12 deleted, 1 failed, 0 pending, 87 unsent"). A zone whose call failed is named on
-- stderr with the error, then its pending IPs and its unsent IPs, each list on a line of its
-- own with what to do next; the other zones go on.
--
-- Exit status: 0 every IP was deleted, 3 some IPs failed (e.g. they had no mapping), 2 usage
-- error, unreadable file or malformed lines (nothing is deleted then), 4 a request failed
-- in some zone: IPs are pending or unsent.

local cli, report = cloudflare.cli, cloudflare.report

local NAME = cli.name()
local USAGE = NAME .. " [--zones N] [--concurrency N] [--format F] [FILE|-]"

local opts, args = cli.parse(arg, { zones = "number", concurrency = "number", format = cli.FORMATS },
  USAGE)
local format = opts.format or "table"
local zones_at_once = opts.zones or 4
if math.type(zones_at_once) ~= "integer" or zones_at_once < 1 then
  cli.die("option '--zones' must be a whole number >= 1", USAGE)
end
local concurrency = cli.concurrency(opts, USAGE)
if #args > 1 then cli.die("expected one FILE, got " .. #args, USAGE) end

-- zone -> its IPs, zones in the order they first appear
local source = args[1] or "-"
local f, oerr = io.stdin, nil
if source ~= "-" then f, oerr = io.open(source) end
if not f then cli.die("cannot read " .. tostring(oerr)) end
local zones, ips_of, malformed = {}, {}, 0
local n = 0
for line in f:lines() do
  n = n + 1
  local text = line:gsub("#.*", "")
  if text:find("%S") then
    local zone, ip, rest = text:match("^%s*([^%s,]+)[%s,]+([^%s,]+)%s*(.-)%s*$")
    if not zone or rest ~= "" or #zone > 32 or not zone:find("^%w+$") then
      io.stderr:write(string.format("%s:%d: expected ZONE_ID IP, got %q\n",
        source == "-" and "stdin" or source, n, line))
      malformed = malformed + 1
    else
      if not ips_of[zone] then
        zones[#zones + 1] = zone
        ips_of[zone] = {}
      end
      table.insert(ips_of[zone], ip)
    end
  end
end
if f ~= io.stdin then f:close() end
if malformed > 0 then cli.die(malformed .. " malformed line(s), nothing was deleted") end

local jobs = {}
for i, zone in ipairs(zones) do
  jobs[i] = function()
    local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete {
      zone_id = zone, ips = ips_of[zone], concurrency = concurrency }
    return { res = res or partial, err = err }
  end
end
local outcomes, errs = cloudflare.parallel(jobs, { concurrency = zones_at_once })

-- A zone whose task has no result (not started once cfrun was stopping, or it raised): its
-- addresses are unsent when the error says nothing can have been sent, else pending.
local function lost(zone, e)
  local json, canonical = cloudflare.json, cloudflare.ip.canonical
  local value = { succeeded = json.array(), failed = json.array(), pending = json.array(),
    unsent = json.array() }
  local cause = type(e) == "table" and e.kind == "raised" and e.value or e
  local into = (type(e) == "table" and e.unsent or type(cause) == "table" and cause.unsent)
    and value.unsent or value.pending
  local seen = {}
  for _, s in ipairs(ips_of[zone]) do
    local c = canonical(s)
    if not c then
      table.insert(value.failed, { origin_ip = s, input = s, error = "invalid IP address" })
    elseif not seen[c] then
      seen[c] = true
      into[#into + 1] = c
    end
  end
  return { res = { value = value }, err = e or "no result" }
end

local rows, total = {}, { succeeded = 0, failed = 0, pending = 0, unsent = 0 }
for i, zone in ipairs(zones) do
  local o = outcomes[i] or lost(zone, errs[i])
  local _, zone_rows = report.rows(o.res)
  for _, row in ipairs(zone_rows) do
    row.zone = zone
    rows[#rows + 1] = row
  end
  local c = report.counts(o.res)
  for k in pairs(total) do total[k] = total[k] + c[k] end
  if o.err then cli.note("zone %s: %s", zone, tostring(o.err)) end
  for _, status in ipairs { "pending", "unsent" } do -- as cli.fail says it, for this zone
    local list = o.res.value[status] or {}
    if #list > 0 then
      cli.note("zone %s: %d IP(s) %s (%s): %s", zone, #list, status, cli.ADVICE[status],
        table.concat(list, " "))
    end
  end
end
report.write(rows, { format = format,
  columns = { "zone", "status", "origin_ip", "vendor", "region", "error", "input" } })
if format == "table" then
  print(string.format("%d zone(s): %d deleted, %d failed, %d pending, %d unsent", #zones,
    total.succeeded, total.failed, total.pending, total.unsent))
end
if total.pending + total.unsent > 0 then os.exit(cli.EXIT_PENDING) end
os.exit(total.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
