-- delete_across_zones.lua: delete origin cloud region mappings in many zones at once, from a
-- file of "ZONE_ID IP" lines (a space, tab or comma between them; '#' starts a comment,
-- blank lines are skipped). The zones are worked on concurrently, in one thread.
--
-- Usage: cfrun scripts/delete_across_zones.lua [OPTIONS] [FILE|-]
--        cfrun --sandbox scripts/delete_across_zones.lua pairs.txt      (against the fake API)
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- Journal (by default; --journal PATH, --no-journal): one file for every zone's call, as
-- delete_from_file.lua's header says; restore.lua --last --zone Z undoes it zone by zone.
--
-- A job run on a fixed list (a cron job, a retry after a failure) should pass
-- --ignore-missing: its second run finds the IPs already gone and exits 0. Without it an IP
-- with no mapping fails, which is what a one-off run on a list believed current wants.
--
-- All requests share the client's rate budget and in-flight bound (cloudflare.new's
-- max_in_flight, 16), however many zones run at once.
--
-- Output: one row per IP, with its zone: succeeded (deleted, with the vendor and region it
-- had; would_delete under --dry-run), absent (under --ignore-missing), failed (with the
-- reason), pending (sent, not known whether deleted: check them, or restore them from the
-- journal) or unsent (certainly not deleted: safe to send again, e.g.
-- by running the script again on those lines). In table format a count line follows ("2
-- zone(s): 12 deleted, 1 failed, 0 pending, 87 unsent"). A zone whose call failed is named on
-- stderr with the error, then its pending IPs and its unsent IPs, each list on a line of its
-- own with what to do next; the other zones go on.
--
-- Exit status: 0 every IP was deleted (or would be, or was already absent), 3 some IPs
-- failed (e.g. they had no mapping), 2 usage error, unreadable file or malformed lines
-- (nothing is deleted then), 4 a request failed in some zone: IPs are pending or unsent.

local cli, report = cloudflare.cli, cloudflare.report

local OPTIONS = cli.options(
  { "zones", "number", arg = "N", help = "zones worked on at once (default 4)" },
  { "concurrency", "number", arg = "N", help = "batches of 100 in flight per zone (1 to 64, default 4)" },
  "format", "dry-run", "ignore-missing", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "[FILE|-]")
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "Delete origin cloud region mappings in many zones at once, from ZONE_ID IP lines.",
  operands = { { "FILE", "the ZONE_ID IP lines (a space, tab or comma between them, '#' comments);"
    .. " \"-\" or nothing reads standard input" } },
})
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

-- A zone whose task has no result (not started once cfrun was stopping, or it raised): its
-- addresses are unsent when the error says nothing can have been sent (or `unsent` says so:
-- its listing failed), else pending.
local function lost(zone, e, unsent)
  local json, canonical = cloudflare.json, cloudflare.ip.canonical
  local value = { succeeded = json.array(), failed = json.array(), pending = json.array(),
    unsent = json.array() }
  local cause = type(e) == "table" and e.kind == "raised" and e.value or e
  local into = (unsent or type(e) == "table" and e.unsent or type(cause) == "table" and cause.unsent)
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

if not opts["dry-run"] then
  local count = 0
  for _, zone in ipairs(zones) do count = count + #ips_of[zone] end
  cli.confirm { n = count, yes = opts.yes, verb = "delete", summary = function()
    local items = {} -- what would go, from a listing of each zone (only when asking)
    for _, zone in ipairs(zones) do
      local plan = cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = zone,
        ips = ips_of[zone], dry_run = true }
      for _, it in ipairs(plan and plan.value.succeeded or {}) do
        items[#items + 1] = { origin_ip = it.origin_ip, vendor = it.vendor, region = it.region, zone = zone }
      end
    end
    return cli.plan_summary { verb = "delete", items = items }, #items
  end }
end

local journal = cli.journal(opts) -- one file for every zone's call
local jobs = {}
for i, zone in ipairs(zones) do
  jobs[i] = function()
    local ips, absent = ips_of[zone], nil
    if opts["ignore-missing"] then
      ips, absent = cli.split_absent(zone, ips)
      if not ips then return lost(zone, absent, true) end -- the listing failed: nothing sent
    end
    local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete {
      zone_id = zone, ips = ips, dry_run = opts["dry-run"], concurrency = concurrency, journal = journal }
    local out = res or partial
    out.value.absent = absent
    return { res = out, err = err }
  end
end

local outcomes, errs = cloudflare.parallel(jobs, { concurrency = zones_at_once })

local rows, total = {}, { succeeded = 0, failed = 0, pending = 0, unsent = 0, absent = 0 }
for i, zone in ipairs(zones) do
  local o = outcomes[i] or lost(zone, errs[i])
  local _, zone_rows = report.rows(o.res, { dry_status = "would_delete" })
  for _, row in ipairs(zone_rows) do
    row.zone = zone
    rows[#rows + 1] = row
  end
  local c = report.counts(o.res)
  for k in pairs(total) do total[k] = total[k] + (c[k] or 0) end
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
  print(string.format("%d zone(s): %d %s, %d failed, %d pending, %d unsent%s", #zones,
    total.succeeded, opts["dry-run"] and "would be deleted" or "deleted", total.failed,
    total.pending, total.unsent,
    opts["ignore-missing"] and string.format(", %d already absent", total.absent) or ""))
end
if opts["dry-run"] then cli.note("dry run: nothing was deleted") end
if total.pending + total.unsent > 0 then os.exit(cli.EXIT_PENDING) end
os.exit(total.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
