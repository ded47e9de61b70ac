-- demo.lua: bulk-delete a few origin cloud region mappings and show what happened to each IP.
--
-- Usage: cfrun --sandbox scripts/demo.lua            (against the built-in fake API)
--        ZONE=<zone id> cfrun scripts/demo.lua IP...  (against your zone; needs credentials)
--
-- With no IPs given it deletes three of the sandbox's sample mappings, one address that has
-- no mapping and one string that is not an address.
--
-- Output: a line per IP: deleted (with the vendor and region it had), failed (with the
-- reason), pending (sent, not known whether deleted: check it, or restore it from the
-- journal) or unsent (certainly not deleted: safe to send again), then a count line. Exits 0
-- once every IP has an answer (deleted or failed), 4 when a request failed and some IPs are
-- left pending or unsent (the error and what to do next on stderr).

local zone = os.getenv("CFRUN_SANDBOX_ZONE") or os.getenv("ZONE")
  or error("set ZONE to the zone id")
local ips = { ... }
if #ips == 0 then
  ips = { "192.0.2.1", "2001:DB8::1", "203.0.113.5", "198.51.100.99", "not-an-ip" }
end

local res, err, partial = cloudflare.cache.origin_cloud_regions.bulk_delete {
  zone_id = zone, ips = ips,
}
local out = res or partial
for _, item in ipairs(out.value.succeeded) do
  print(string.format("deleted  %-20s %-6s %s", item.origin_ip, item.vendor, item.region))
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
    #out.value.succeeded, #out.value.failed, #pending, #unsent, out.requests))
  io.stderr:write("demo: ", tostring(err), "\n")
  if #pending > 0 then
    io.stderr:write("demo: ", #pending, " IP(s) pending: check them, or restore them from the journal\n")
  end
  if #unsent > 0 then
    io.stderr:write("demo: ", #unsent, " IP(s) unsent: safe to send again\n")
  end
  os.exit(4)
end
print(string.format("%d deleted, %d failed, %d request(s)", #res.value.succeeded,
  #res.value.failed, res.requests))
