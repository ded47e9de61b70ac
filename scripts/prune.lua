-- prune.lua: the decommissioned-hosts job: delete every origin cloud region mapping whose IP
-- is NOT in the inventory, a file of the IPs still in service (one per line, '#' comments).
--
-- Usage: cfrun scripts/prune.lua [OPTIONS] INVENTORY
--        cfrun --sandbox scripts/prune.lua --dry-run --force hosts.txt   (against the fake API)
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- It deletes what a listing of the zone just showed, so it takes no --ignore-missing: an IP
-- can lack a mapping only if someone deleted it meanwhile (it fails then).
--
-- Journal: every run that changes something journals by default to a new file (0600) in
-- $XDG_STATE_HOME/cfrun/journal/ (else ~/.local/state/cfrun/journal/, made 0700), named by the
-- UTC time and the script, and names it on stderr; `cfrun scripts/restore.lua --last` undoes
-- the newest one. Creating one deletes the journals there beyond the newest 100 and those
-- older than 30 days. $CFRUN_JOURNAL, when set, is used instead (set but empty: none); under
-- --sandbox and --dry-run there is none. The cost: a journaled delete lists the zone first (the
-- requests of a listing), to record what each deleted mapping was.
--
-- Output: one row per pruned IP: succeeded (deleted, with its vendor and region: enough to
-- undo; under --dry-run the status is would_delete instead), failed (with the reason), pending (sent, not known
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

local cli, S = cloudflare.cli, cloudflare.select
local R = cloudflare.cache.origin_cloud_regions

local OPTIONS = cli.options("zone", "dry-run",
  { "max-share", "number", arg = "FRACTION", help = "refuse to delete more than this share of the"
    .. " zone's mappings (default 0.25): a truncated inventory must not wipe the zone" },
  { "force", "flag", help = "delete anyway: despite invalid inventory lines, and beyond --max-share"
    .. " (on a terminal it asks first, unless --yes)" },
  "format", "concurrency", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "INVENTORY")
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "Delete every origin cloud region mapping whose IP is not in the inventory.",
  operands = { { "INVENTORY", "the IPs to keep, one a line ('#' comments); \"-\" reads standard input" } },
})
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

if not opts["dry-run"] then -- asks too for any share above --max-share (that is, under --force)
  cli.confirm { n = #doomed, share = #doomed / total, max_share = max_share, yes = opts.yes,
    verb = "delete", summary = function()
      return cli.plan_summary { verb = "delete", items = (-S.ips(keep)):filter(listing), zone = zone }
    end }
end

local res, partial
res, err, partial = R.bulk_delete { zone_id = zone, ips = doomed, dry_run = opts["dry-run"],
  journal = cli.journal(opts),
  concurrency = cli.concurrency(opts, USAGE) }
cli.finish(res, err, partial, { format = format, dry_run = opts["dry-run"], dry_status = "would_delete",
  done = "deleted", would = "would be deleted",
  tail = function() return string.format(" (%d mapping(s) kept)", total - #doomed) end })
