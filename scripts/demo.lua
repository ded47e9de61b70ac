-- demo.lua: bulk-delete a few origin cloud region mappings and show what happened to each IP.
--
-- Usage: cfrun --sandbox scripts/demo.lua                       (against the built-in fake API)
--        cfrun scripts/demo.lua [OPTIONS] --zone <zone id> IP...  (your zone; needs credentials)
--
-- With no IPs given it deletes three of the sandbox's sample mappings, one address that has
-- no mapping and one string that is not an address. The options and what they do: `--help`
-- prints them, from the OPTIONS table below (the one place they are written). Outside
-- --sandbox a run journals by default, as every deleting script does, and
-- `cfrun scripts/restore.lua --last` undoes it.
--
-- Output: a line per IP: deleted (with the vendor and region it had; under --dry-run
-- would_delete), absent (under --ignore-missing), failed (with the reason), pending (sent,
-- not known whether deleted: check it, or restore it from the journal) or unsent (certainly
-- not deleted: safe to send again), then a count line. Exits 0 once every IP has an answer
-- (deleted, absent or failed), 2 on a usage error, 4 when a request failed and some IPs are
-- left pending or unsent (the error and what to do next on stderr).

local cli = cloudflare.cli

local OPTIONS = cli.options("zone", "dry-run", "ignore-missing", "yes", "journal", "no-journal")
local USAGE = cli.usage(OPTIONS, "[IP ...]")
local opts, ips = cli.parse(arg, OPTIONS, USAGE, {
  about = "Bulk-delete a few origin cloud region mappings and show what happened to each IP.",
  operands = { { "IP ...", "the addresses (default: five samples of the sandbox zone)" } },
})
local zone = cli.zone(opts, USAGE)
if #ips == 0 then
  ips = { "192.0.2.1", "2001:DB8::1", "203.0.113.5", "198.51.100.99", "not-an-ip" }
end

local absent, listed = {}, 0
if opts["ignore-missing"] then
  ips, absent, listed = cli.split_absent(zone, ips)
  if not ips then cli.fail(absent) end -- the listing failed: nothing was sent
end
local dry = opts["dry-run"]
if not dry then cli.confirm_delete(zone, ips, opts.yes) end
local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete {
  zone_id = zone, ips = ips, dry_run = dry, journal = cli.journal(opts),
}
local out = res or partial
for _, item in ipairs(out.value.succeeded) do
  print(string.format("%-8s %-20s %-6s %s", dry and "would_delete" or "deleted", item.origin_ip,
    item.vendor, item.region))
end
for _, item in ipairs(absent) do
  print(string.format("absent   %-20s (had no mapping)", item.input))
end
for _, item in ipairs(out.value.failed) do
  print(string.format("failed   %-20s %s", item.input or item.origin_ip, item.error))
end
local pending, unsent = out.value.pending, out.value.unsent or {}
for _, ip in ipairs(pending) do
  print(string.format("pending  %-20s (sent, not known whether it was deleted)", ip))
end
for _, ip in ipairs(unsent) do
  print(string.format("unsent   %-20s (certainly not deleted)", ip))
end
if not res then
  print(string.format("%d deleted, %d failed, %d pending, %d unsent, %d request(s)",
    #out.value.succeeded, #out.value.failed, #pending, #unsent, out.requests + listed))
  io.stderr:write("demo: ", tostring(err), "\n")
  if #pending > 0 then
    io.stderr:write("demo: ", #pending, " IP(s) pending: check them, or restore them from the journal\n")
  end
  if #unsent > 0 then
    io.stderr:write("demo: ", #unsent, " IP(s) unsent: safe to send again\n")
  end
  os.exit(4)
end
print(string.format("%d %s, %d failed, %s%d request(s)", #res.value.succeeded,
  dry and "would be deleted" or "deleted", #res.value.failed,
  opts["ignore-missing"] and #absent .. " already absent, " or "", res.requests + listed))
if dry then cli.note("dry run: nothing was deleted") end
