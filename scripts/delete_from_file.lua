-- delete_from_file.lua: delete the origin cloud region mappings of the IPs listed in a file
-- (or on standard input), one address per line; '#' starts a comment, blank lines are skipped.
--
-- Usage: cfrun scripts/delete_from_file.lua [--zone Z] [--format F] [--skip-invalid]
--                                           [--concurrency N] [FILE|-]
--        cfrun --sandbox scripts/delete_from_file.lua ips.txt      (against the fake API)
--
--   FILE              the list of IPs; "-" or nothing reads standard input
--   --zone Z          the zone id (default: the sandbox zone under --sandbox, else $ZONE)
--   --format F        table (default), json, jsonl or csv
--   --skip-invalid    report lines that are not IP addresses and delete the rest; without it,
--                     any such line stops the script before anything is deleted
--   --concurrency N   batches of 100 in flight at once (1 to 64, default 4)
--
-- Output: one row per IP: succeeded (deleted, with the vendor and region it had: enough to
-- undo), failed (with the reason), pending (sent, not known whether deleted: check them, or
-- restore them from the journal) or unsent (certainly not deleted: safe to send again, e.g.
-- by running the script again on them). In table format a count line follows ("12 deleted,
-- 1 failed, 0 pending, 87 unsent"). Lines that are not IP addresses are reported on stderr as
-- FILE:LINE: ...
--
-- Exit status: 0 every IP was deleted, 3 some IPs failed (e.g. they had no mapping), 2 usage
-- error, unreadable file or invalid lines, 4 a request failed: what was deleted is printed
-- first, then on stderr the error, the IPs left pending and the IPs left unsent (each list on
-- a line of its own, with what to do next).

local cli, report = cloudflare.cli, cloudflare.report

local NAME = cli.name()
local USAGE = NAME .. " [--zone Z] [--format F] [--skip-invalid] [--concurrency N] [FILE|-]"

local opts, args = cli.parse(arg, { zone = "string", format = cli.FORMATS, ["skip-invalid"] = "flag",
  concurrency = "number" }, USAGE)
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
if #args > 1 then cli.die("expected one FILE, got " .. #args, USAGE) end

local source = args[1] or "-"
local ips, bad = cli.read_ips(source)
if #bad > 0 and not opts["skip-invalid"] then
  cli.die(#bad .. " invalid line(s), nothing was deleted (fix them or pass --skip-invalid)")
end

local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete { zone_id = zone, ips = ips,
  concurrency = cli.concurrency(opts, USAGE) }
local out = res or partial
report.write(out, { format = format })
if format == "table" then
  local n = report.counts(out)
  print(string.format("%d deleted, %d failed, %d pending, %d unsent", n.succeeded, n.failed,
    n.pending, n.unsent))
end
if not res then cli.fail(err, partial) end
os.exit(#res.value.failed == 0 and cli.EXIT_OK or cli.EXIT_FAILED)
