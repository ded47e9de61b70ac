-- move_region.lua: move origin cloud region mappings to another region. Each IP keeps the
-- vendor of its current mapping, unless --vendor is given (which also creates missing ones).
--
-- Usage: cfrun scripts/move_region.lua [OPTIONS] --region R [IP ... | --file FILE]
--        cfrun --sandbox scripts/move_region.lua --region us-west-2 192.0.2.1   (fake API)
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- Journal: every run that changes something journals by default to a new file (0600) in
-- $XDG_STATE_HOME/cfrun/journal/ (else ~/.local/state/cfrun/journal/, made 0700), named by the
-- UTC time and the script, and names it on stderr; it keeps what each IP had before the move,
-- and `cfrun scripts/restore.lua --last` puts them back (and deletes the mappings --vendor
-- created). Creating one deletes the journals there beyond the newest 100 and those older
-- than 30 days. $CFRUN_JOURNAL, when set, is used instead (set but empty: none); under
-- --sandbox and --dry-run there is none. The cost: a journaled move lists the zone first (the
-- requests of a listing), to record what each mapping was.
--
-- Output: one row per IP: succeeded (now in R, with its vendor; under --dry-run the status is
-- would_update instead),
-- failed (with the reason; IPs refused before sending come last), pending (sent, not known
-- whether moved: check them, move them again (moving an IP twice is harmless) or restore
-- them from the journal) or unsent
-- (certainly not changed: safe to send again). In table format a count line follows ("2 moved
-- to R, 1 failed, 0 pending, 0 unsent").
--
-- Exit status: 0 every IP was moved, 3 some IPs failed, 2 usage error (also invalid lines in
-- FILE), 4 the listing failed (nothing was changed) or a request failed: what was changed is
-- printed first, then on stderr the error, the IPs left pending and the IPs left unsent (each
-- list on a line of its own, with what to do next).

local cli, json = cloudflare.cli, cloudflare.json
local R = cloudflare.cache.origin_cloud_regions

local OPTIONS = cli.options("zone",
  { "region", "string", arg = "R", required = true, help = "the new region (required)" },
  { "vendor", "string", arg = "V", help = "aws, azure, gcp or oci, for every IP; without it each IP"
    .. " keeps its vendor, and an IP with no mapping fails without being sent" },
  { "dry-run", "flag", help = "show what would change (checked against the supported regions), each"
    .. " row's status would_update; change nothing" },
  "format",
  { "file", "string", arg = "FILE", help = "read the addresses from FILE instead (\"-\": standard"
    .. " input), one per line, '#' comments; a line that is not an address stops the script" },
  "concurrency", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "[IP ...]")
local opts, ips = cli.parse(arg, OPTIONS, USAGE, {
  about = "Move origin cloud region mappings to another region, each IP keeping its vendor"
    .. " unless --vendor is given (which also creates missing ones).",
  operands = { { "IP ...", "the addresses to move" } },
})
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
if not opts.region or opts.region == "" then cli.die("--region is required", USAGE) end
local VENDORS = { aws = true, azure = true, gcp = true, oci = true }
if opts.vendor and not VENDORS[opts.vendor] then
  cli.die("unknown vendor '" .. opts.vendor .. "' (aws, azure, gcp or oci)", USAGE)
end
if opts.file then
  if #ips > 0 then cli.die("give IPs or --file, not both", USAGE) end
  local bad
  ips, bad = cli.read_ips(opts.file)
  if #bad > 0 then cli.die(#bad .. " invalid line(s), nothing was changed") end
end
if #ips == 0 then cli.die("no IPs given", USAGE) end

-- Each IP's current vendor, unless --vendor decides it for all.
local current = {}
if not opts.vendor then
  local listing, err = R.list { zone_id = zone }
  if not listing then cli.fail(err) end
  for _, m in ipairs(listing.value) do current[m.origin_ip] = m end
end

local items, refused, seen = {}, {}, {}
for _, s in ipairs(ips) do
  local c = cloudflare.ip.canonical(s) -- nil for a non-address: bulk_edit reports it
  if not (c and seen[c]) then          -- an address listed twice is sent once
    local vendor = opts.vendor or (current[c] and current[c].vendor)
    if c and not vendor then
      refused[#refused + 1] = { origin_ip = c, input = s, error = "no mapping to move (pass --vendor to create one)" }
    else
      items[#items + 1] = { ip = s, region = opts.region, vendor = vendor }
    end
    if c then seen[c] = true end
  end
end

-- What bulk_edit would answer, without sending it.
local function preview()
  local supported, err = R.supported_regions { zone_id = zone }
  if not supported then cli.fail(err) end
  local has_region = {} -- vendor -> true when it supports the new region
  for vendor, regions in pairs(supported.vendors) do
    for _, r in ipairs(regions) do
      if r.name == opts.region then has_region[vendor] = true end
    end
  end
  local res = { dry_run = true, requests = supported.requests,
    value = { succeeded = json.array(), failed = json.array(), pending = json.array(),
      unsent = json.array() } }
  for _, item in ipairs(items) do
    local c = cloudflare.ip.canonical(item.ip)
    if not c then
      table.insert(res.value.failed, { origin_ip = item.ip, input = item.ip, error = "invalid IP address" })
    elseif not has_region[item.vendor] then
      table.insert(res.value.failed, { origin_ip = c, input = item.ip, error = "unsupported region" })
    else
      table.insert(res.value.succeeded, { origin_ip = c, input = item.ip, vendor = item.vendor, region = item.region })
    end
  end
  return res
end

if not opts["dry-run"] then
  cli.confirm { n = #items, yes = opts.yes, verb = "update", summary = function()
    local plan = {}
    for i, item in ipairs(items) do
      plan[i] = { origin_ip = cloudflare.ip.canonical(item.ip) or item.ip, vendor = item.vendor,
        region = item.region }
    end
    return cli.plan_summary { verb = "move to " .. opts.region .. ":", items = plan, zone = zone }
  end }
end

local res, err, partial
if opts["dry-run"] then
  res = preview()
else
  res, err, partial = R.bulk_edit { zone_id = zone, items = items,
    journal = cli.journal(opts),
    concurrency = cli.concurrency(opts, USAGE) }
end
local out = res or partial
table.move(refused, 1, #refused, #out.value.failed + 1, out.value.failed)
cli.finish(res, err, partial, { format = format, dry_run = opts["dry-run"], dry_status = "would_update",
  done = "moved to " .. opts.region, would = "would be moved to " .. opts.region, changed = "changed",
  advice = { pending = "sent, not known whether changed; check them, move them again (that is"
    .. " harmless), or restore from the journal" } })
