-- prune.lua: the decommissioned-hosts job: delete every origin cloud region mapping whose IP
-- is NOT in the inventory, a file of the IPs still in service (one per line, '#' comments).
--
-- Usage: cfrun scripts/prune.lua [--zone Z] [--dry-run] [--max-share FRACTION] [--force]
--                                [--format F] INVENTORY
--        cfrun --sandbox scripts/prune.lua --dry-run --force hosts.txt   (against the fake API)
--
--   INVENTORY            the IPs to keep; "-" reads standard input
--   --zone Z             the zone id (default: the sandbox zone under --sandbox, else $ZONE)
--   --dry-run            show what would be deleted; delete nothing
--   --concurrency N      batches of 100 in flight at once (1 to 64, default 4)
--   --max-share FRACTION refuse to delete more than this share of the zone's mappings
--                        (default 0.25): a truncated inventory must not wipe the zone
--   --force              delete anyway: despite invalid inventory lines, and beyond --max-share
--   --format F           table (default), json, jsonl or csv
--
-- Output: one row per pruned IP: succeeded (deleted, with its vendor and region: enough to
-- undo; under --dry-run, would be deleted), failed (with the reason), pending (sent, not known
-- whether deleted: check them, or restore them from the journal) or unsent (certainly not
-- deleted: safe to send again; running the job again prunes them). In table format a count
-- line follows ("2 deleted, 0 failed, 0 pending, 0 unsent (6 mapping(s) kept)"). Notes and
-- refusals go to stderr.
--
-- Exit status: 0 pruned (or nothing to prune, or an empty zone), 3 some IPs failed, 2 usage
-- error or refusal (invalid inventory lines, more than --max-share), nothing deleted,
-- 4 the listing failed (nothing was deleted) or a delete request failed: what was deleted is
-- printed first, then on stderr the error, the IPs left pending and the IPs left unsent (each
-- list on a line of its own, with what to do next).

local cli, report, S = cloudflare.cli, cloudflare.report, cloudflare.select
local R = cloudflare.cache.origin_cloud_regions

local NAME = cli.name()
local USAGE = NAME .. " [--zone Z] [--dry-run] [--max-share FRACTION] [--force] [--format F]"
  .. " [--concurrency N] INVENTORY"

local opts, args = cli.parse(arg, { zone = "string", ["dry-run"] = "flag", ["max-share"] = "number",
  force = "flag", format = cli.FORMATS, concurrency = "number" }, USAGE)
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
local max_share = opts["max-share"] or 0.25
if not (max_share >= 0 and max_share <= 1) then cli.die("--max-share must be between 0 and 1", USAGE) end
if #args ~= 1 then cli.die("expected one INVENTORY file", USAGE) end

local inventory = args[1]
local keep, bad = cli.read_ips(inventory)
if #bad > 0 and not opts.force then
  cli.die(#bad .. " invalid line(s) in the inventory: refusing to prune, nothing was deleted"
    .. " (the hosts on those lines would lose their mappings); fix them or pass --force")
end

local listing, err = R.list { zone_id = zone }
if not listing then cli.fail(err) end
local total = #listing.value
if total == 0 then
  cli.note("zone %s has no mappings: nothing to prune", zone)
  os.exit(cli.EXIT_OK)
end
local doomed = (-S.ips(keep)):ips(listing)
if #doomed == 0 then
  cli.note("nothing to prune: all %d mapping(s) are in the inventory", total)
  os.exit(cli.EXIT_OK)
end
if #doomed > max_share * total and not opts.force then
  cli.die(string.format("refusing to delete %d of %d mappings (%.0f%%, more than --max-share %g), nothing was"
    .. " deleted; check the inventory, or pass --force (or a larger --max-share)",
    #doomed, total, 100 * #doomed / total, max_share))
end

local res, partial
res, err, partial = R.bulk_delete { zone_id = zone, ips = doomed, dry_run = opts["dry-run"],
  concurrency = cli.concurrency(opts, USAGE) }
local out = res or partial
report.write(out, { format = format })
if format == "table" then
  local n = report.counts(out)
  print(string.format("%d %s, %d failed, %d pending, %d unsent (%d mapping(s) kept)", n.succeeded,
    opts["dry-run"] and "would be deleted" or "deleted", n.failed, n.pending, n.unsent,
    total - #doomed))
end
if opts["dry-run"] then cli.note("dry run: nothing was deleted") end
if not res then cli.fail(err, partial) end
os.exit(#res.value.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
