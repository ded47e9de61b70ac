-- delete_from_file.lua: delete the origin cloud region mappings of the IPs listed in a file
-- (or on standard input), one address per line; '#' starts a comment, blank lines are skipped.
--
-- Usage: cfrun scripts/delete_from_file.lua [OPTIONS] [FILE|-]
--        cfrun --sandbox scripts/delete_from_file.lua ips.txt      (against the fake API)
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- Journal: every run that changes something journals by default to a new file (0600) in
-- $XDG_STATE_HOME/cfrun/journal/ (else ~/.local/state/cfrun/journal/, made 0700), named by the
-- UTC time and the script, and names it on stderr; `cfrun scripts/restore.lua --last` undoes
-- the newest one. Creating one deletes the journals there beyond the newest 100 and those
-- older than 30 days. $CFRUN_JOURNAL, when set, is used instead (set but empty: none); under
-- --sandbox and --dry-run there is none. The cost: a journaled delete lists the zone first (the
-- requests of a listing), to record what each deleted mapping was.
--
-- A job run on a fixed list (a cron job, a retry after a failure) should pass
-- --ignore-missing: its second run finds the IPs already gone and exits 0. Without it an IP
-- with no mapping fails, which is what a one-off run on a list believed current wants.
--
-- Output: one row per IP: succeeded (deleted, with the vendor and region it had: enough to
-- undo), would_delete (under --dry-run), absent (under --ignore-missing: had no mapping),
-- failed (with the reason), pending (sent, not known whether deleted: check them, or
-- restore them from the journal) or unsent (certainly not deleted: safe to send again, e.g.
-- by running the script again on them). In table format a count line follows ("12 deleted,
-- 1 failed, 0 pending, 87 unsent", and "..., 3 already absent" under --ignore-missing). Lines
-- that are not IP addresses are reported on stderr as FILE:LINE: ...
--
-- Exit status: 0 every IP was deleted (or, under --dry-run, would be; under --ignore-missing,
-- was already absent), 3 some IPs failed (e.g. they had no mapping), 2 usage error,
-- unreadable file or invalid lines, 4 a request failed: what was deleted is printed first,
-- then on stderr the error, the IPs left pending and the IPs left unsent (each list on a line
-- of its own, with what to do next).

local cli = cloudflare.cli

local OPTIONS = cli.options("zone", "format",
  { "skip-invalid", "flag", help = "report lines that are not IP addresses and delete the rest;"
    .. " without it, any such line stops the script before anything is deleted" },
  "dry-run", "ignore-missing", "concurrency", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "[FILE|-]")
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "Delete the origin cloud region mappings of the IPs listed in FILE, one a line.",
  operands = { { "FILE", "the list of IPs ('#' starts a comment); \"-\" or nothing reads standard input" } },
})
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
local concurrency = cli.concurrency(opts, USAGE)
if #args > 1 then cli.die("expected one FILE, got " .. #args, USAGE) end

local source = args[1] or "-"
local ips, bad = cli.read_ips(source)
if #bad > 0 and not opts["skip-invalid"] then
  cli.die(#bad .. " invalid line(s), nothing was deleted (fix them or pass --skip-invalid)")
end

local absent
if opts["ignore-missing"] then
  ips, absent = cli.split_absent(zone, ips)
  if not ips then cli.fail(absent) end -- the listing failed: nothing was sent
end

if not opts["dry-run"] then cli.confirm_delete(zone, ips, opts.yes) end

local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = zone, ips = ips,
  dry_run = opts["dry-run"], concurrency = concurrency, journal = cli.journal(opts) }
local out = res or partial
out.value.absent = absent
cli.finish(res, err, partial, { format = format, dry_run = opts["dry-run"], dry_status = "would_delete",
  done = "deleted", would = "would be deleted",
  tail = absent and function(n) return string.format(", %d already absent", n.absent) end })
