-- restore.lua: undo deletions: re-create every origin cloud region mapping that a cfrun
-- journal shows as deleted (or possibly deleted, when a response was lost or cfrun was
-- killed), with the vendor and region it had. A mapping the zone has again (re-created since,
-- by anyone) is left as it is. Safe to run twice.
--
-- Usage: cfrun scripts/restore.lua [--zone Z] [--since TIME] [--dry-run] [--format F] [JOURNAL]
--
--   JOURNAL        the journal file (default: $CFRUN_JOURNAL)
--   --zone Z       the zone id (default: the sandbox zone under --sandbox, else $ZONE)
--   --since TIME   only records at or after TIME (RFC 3339, as the journal writes it, e.g.
--                  2026-11-28T01:00:00Z)
--   --dry-run      show what would be re-created (exactly what a real run sends, from a
--                  listing of the zone); change nothing
--   --format F     table (default), json, jsonl or csv
--
-- Output: one row per mapping re-created (succeeded) or not (failed, with the reason); in
-- table format a count line follows, with how many of the journal's deletions the zone has
-- again (not touched). Exit status: 0 all restored (or nothing to restore), 3 some could not
-- be restored, 2 usage error, 4 a request failed (the rest pending or unsent).

local cli, report = cloudflare.cli, cloudflare.report

local USAGE = cli.name() .. " [--zone Z] [--since TIME] [--dry-run] [--format F] [JOURNAL]"
local opts, args = cli.parse(arg, { zone = "string", since = "string", ["dry-run"] = "flag",
  format = cli.FORMATS }, USAGE)
local zone = cli.zone(opts, USAGE)
local path = args[1] or os.getenv("CFRUN_JOURNAL")
if not path or #args > 1 then cli.die("expected one JOURNAL file (or set CFRUN_JOURNAL)", USAGE) end
local f = io.open(path)
if not f then cli.die("cannot read the journal " .. path) end
f:close()

local res, err, partial = cloudflare.journal.restore { path = path, zone_id = zone, since = opts.since,
  dry_run = opts["dry-run"] }
local out = res or partial
local format = opts.format or "table"
report.write(out, { format = format })
if format == "table" then
  local n, r = report.counts(out), out.restore
  print(string.format("%d %s, %d failed, %d pending, %d unsent; %d already present, left as "
    .. "they are (%d journal record(s), %d unreadable line(s))",
    n.succeeded, opts["dry-run"] and "would be restored" or "restored", n.failed, n.pending,
    #(out.value.unsent or {}), r.present, r.records, r.bad_lines))
end
if opts["dry-run"] then cli.note("dry run: nothing was changed") end
if not res then cli.fail(err, partial) end
os.exit(#res.value.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
