-- restore.lua: undo a run from its journal: re-create every origin cloud region mapping that
-- a cfrun journal shows as deleted (or possibly deleted, when a response was lost or cfrun
-- was killed), with the vendor and region it had, and put back every mapping a journaled
-- move changed (deleting those it created). A mapping the zone has as before already
-- (re-created since, by anyone) is left as it is, and so is one written since by someone else
-- (undoing the journal's write would overwrite it). Safe to run twice.
--
-- Usage: cfrun scripts/restore.lua [OPTIONS] [--last | JOURNAL]
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- Output: one row per mapping re-created or put back (succeeded; under --dry-run
-- would_update), deleted again (a mapping a journaled move created: succeeded, under
-- --dry-run would_delete) or not (failed, with the reason); in table format a count line
-- follows, with how many mappings are already as before (not touched) and, when there are
-- any, how many were changed since by someone else (not touched either). Exit status: 0 all restored (or
-- nothing to restore), 3 some could not be restored, 2 usage error, 4 a request failed (the
-- rest pending or unsent).

local cli, report = cloudflare.cli, cloudflare.report

local OPTIONS = cli.options("zone",
  { "since", "string", arg = "TIME", help = "only records at or after TIME (RFC 3339, as the journal"
    .. " writes it, e.g. 2026-11-28T01:00:00Z)" },
  { "dry-run", "flag", help = "show what would be re-created (exactly what a real run sends, from a"
    .. " listing of the zone), each row's status would_update; change nothing" },
  "format", "yes",
  { "last", "flag", help = "the newest journal the scripts wrote by default, in"
    .. " $XDG_STATE_HOME/cfrun/journal/ (else ~/.local/state/cfrun/journal/): undoes the last run"
    .. " (in the zone given; a delete_across_zones.lua run: zone by zone)" })
local USAGE = cli.usage(OPTIONS, "[JOURNAL]")
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "Undo a run from its journal: re-create every origin cloud region mapping it shows as"
    .. " deleted that the zone does not have again, and put back every mapping a journaled move"
    .. " changed. Safe to run twice.",
  operands = { { "JOURNAL", "the journal file (default: $CFRUN_JOURNAL)" } },
})
local zone = cli.zone(opts, USAGE)
local path = args[1] or os.getenv("CFRUN_JOURNAL")
if opts.last then
  if #args > 0 then cli.die("give --last or a JOURNAL, not both", USAGE) end
  path = cli.last_journal()
  if not path then cli.die("--last: no journal in " .. tostring(cli.journal_dir()), USAGE) end
  cli.note("journal: %s", path)
end
if not path or path == "" or #args > 1 then
  cli.die("expected one JOURNAL file (or --last, or set CFRUN_JOURNAL)", USAGE)
end
local f = io.open(path)
if not f then cli.die("cannot read the journal " .. path) end
f:close()

-- On a terminal, the plan (what a dry run would re-create) decides whether to ask.
if not opts["dry-run"] and cli.would_ask { n = math.huge, yes = opts.yes } then
  local plan = cloudflare.journal.restore { path = path, zone_id = zone, since = opts.since, dry_run = true }
  local items = plan and plan.value.succeeded or {}
  cli.confirm { n = #items, yes = opts.yes, verb = "change", summary = function()
    return cli.plan_summary { verb = "restore", items = items, zone = zone }, #items
  end }
end

local res, err, partial = cloudflare.journal.restore { path = path, zone_id = zone, since = opts.since,
  dry_run = opts["dry-run"] }
local out = res or partial
local format = opts.format or "table"
report.write(out, { format = format, dry_status = "would_update" })
if format == "table" then
  local n, r = report.counts(out), out.restore
  print(string.format("%d %s, %d failed, %d pending, %d unsent; %d already present, left as "
    .. "they are (%d journal record(s), %d unreadable line(s))",
    n.succeeded, opts["dry-run"] and "would be restored" or "restored", n.failed, n.pending,
    #(out.value.unsent or {}), r.present, r.records, r.bad_lines))
  if r.changed > 0 then
    print(string.format("%d changed since by someone else, left as they are: %s", r.changed,
      table.concat(r.changed_ips, " ")))
  end
end
if opts["dry-run"] then cli.note("dry run: nothing was changed") end
if not res then cli.fail(err, partial) end
os.exit(#res.value.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
