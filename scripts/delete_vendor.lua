-- delete_vendor.lua: delete every origin cloud region mapping of one vendor in a zone,
-- optionally only in some regions or address ranges (all the limits given must hold).
--
-- Usage: cfrun scripts/delete_vendor.lua [--zone Z] [--region R ...] [--region-match PATTERN]
--                                        [--cidr C ...] [--dry-run] [--format F]
--                                        [--concurrency N] VENDOR
--        cfrun --sandbox scripts/delete_vendor.lua --dry-run aws     (against the fake API)
--
--   VENDOR                 aws, azure, gcp or oci
--   --zone Z               the zone id (default: the sandbox zone under --sandbox, else $ZONE)
--   --region R             only mappings in region R (exact name; repeat for several)
--   --region-match PATTERN only regions matching a Lua pattern, e.g. '^eu%-'
--   --cidr C               only IPs in C, e.g. 10.0.0.0/8 or 2001:db8::/32 (repeatable)
--   --dry-run              show what would be deleted; delete nothing
--   --concurrency N        batches of 100 in flight at once (1 to 64, default 4)
--   --format F             table (default), json, jsonl or csv
--
-- Output: one row per selected IP: succeeded (deleted, with its vendor and region: enough to
-- undo; under --dry-run, would be deleted), failed (with the reason), pending (sent, not known
-- whether deleted: check them, or restore them from the journal) or unsent (certainly not
-- deleted: safe to send again, e.g. by running the script again). In table format a count line
-- follows ("3 deleted, 0 failed, 0 pending, 0 unsent"). Notes (what was selected, dry run) go
-- to stderr.
--
-- Exit status: 0 everything selected was deleted (or nothing matched), 3 some IPs failed,
-- 2 usage error (also an unknown vendor, a bad pattern or CIDR), 4 the listing failed
-- (nothing was deleted) or a delete request failed: what was deleted is printed first, then on
-- stderr the error, the IPs left pending and the IPs left unsent (each list on a line of its
-- own, with what to do next).

local cli, report, S = cloudflare.cli, cloudflare.report, cloudflare.select
local R = cloudflare.cache.origin_cloud_regions

local NAME = cli.name()
local USAGE = NAME .. " [--zone Z] [--region R ...] [--region-match PATTERN] [--cidr C ...]"
  .. " [--dry-run] [--format F] [--concurrency N] VENDOR"

local opts, args = cli.parse(arg, { zone = "string", region = "list", ["region-match"] = "string",
  cidr = "list", ["dry-run"] = "flag", format = cli.FORMATS, concurrency = "number" }, USAGE)
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
if #args ~= 1 then cli.die("expected one VENDOR", USAGE) end

-- The selector constructors raise on a typo (unknown vendor, bad CIDR): a usage error here.
local ok, selector = pcall(function()
  local s = S.vendor(args[1])
  if opts.region then s = s * S.region(opts.region) end
  if opts["region-match"] then s = s * S.region_matching(opts["region-match"]) end
  if opts.cidr then s = s * S.cidr(opts.cidr) end
  return s
end)
if not ok then cli.die((tostring(selector):gsub("^.-:%d+: ", "")), USAGE) end

local listing, err = R.list { zone_id = zone }
if not listing then cli.fail(err) end
local ips = selector:ips(listing)
cli.note("%d of %d mapping(s) match %s", #ips, #listing.value,
  (tostring(selector):gsub("^selector: ", "")))

local res, partial
res, err, partial = R.bulk_delete { zone_id = zone, ips = ips, dry_run = opts["dry-run"],
  concurrency = cli.concurrency(opts, USAGE) }
local out = res or partial
report.write(out, { format = format })
if format == "table" then
  local n = report.counts(out)
  print(string.format("%d %s, %d failed, %d pending, %d unsent", n.succeeded,
    opts["dry-run"] and "would be deleted" or "deleted", n.failed, n.pending, n.unsent))
end
if opts["dry-run"] then cli.note("dry run: nothing was deleted") end
if not res then cli.fail(err, partial) end
os.exit(#res.value.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
