-- delete_vendor.lua: delete every origin cloud region mapping of one vendor in a zone,
-- optionally only in some regions or address ranges (all the limits given must hold).
--
-- Usage: cfrun scripts/delete_vendor.lua [OPTIONS] VENDOR
--        cfrun --sandbox scripts/delete_vendor.lua --dry-run aws     (against the fake API)
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
-- Output: one row per selected IP: succeeded (deleted, with its vendor and region: enough to
-- undo; under --dry-run the status is would_delete instead), failed (with the reason), pending (sent, not known
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

local cli, S = cloudflare.cli, cloudflare.select
local R = cloudflare.cache.origin_cloud_regions

local OPTIONS = cli.options("zone",
  { "region", "list", arg = "R", help = "only mappings in region R (exact name; repeat for several)" },
  { "region-match", "string", arg = "PATTERN", help = "only regions matching a Lua pattern, e.g. '^eu%-'" },
  { "cidr", "list", arg = "C", help = "only IPs in C, e.g. 10.0.0.0/8 or 2001:db8::/32 (repeatable)" },
  "dry-run", "format", "concurrency", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "VENDOR")
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "Delete every origin cloud region mapping of one vendor in a zone, optionally only in"
    .. " some regions or address ranges (all the limits given must hold).",
  operands = { { "VENDOR", "aws, azure, gcp or oci" } },
})
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

if not opts["dry-run"] then
  cli.confirm { n = #ips, yes = opts.yes, verb = "delete", summary = function()
    return cli.plan_summary { verb = "delete", items = selector:filter(listing), zone = zone }
  end }
end

local res, partial
res, err, partial = R.bulk_delete { zone_id = zone, ips = ips, dry_run = opts["dry-run"],
  journal = cli.journal(opts),
  concurrency = cli.concurrency(opts, USAGE) }
cli.finish(res, err, partial, { format = format, dry_run = opts["dry-run"], dry_status = "would_delete",
  done = "deleted", would = "would be deleted" })
