-- bench/scenario2.lua: scenario 2's cfrun side. One bulk_delete of every IP in a file (3,500
-- in the benchmark: 35 requests of 100). CONCURRENCY (default 1) is the bulk_delete's
-- `concurrency`: at 1 the batches go one after the other on the client's one connection, as
-- curl sends them; the driver also times cfrun's default (4). Exits 1 unless every IP was
-- deleted.
--
-- usage: cfrun bench/scenario2.lua ZONE_ID IP_FILE [CONCURRENCY]
--        (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL)
local cf = require "cloudflare"

local zone, path, concurrency = ...
local ips = {}
for line in io.lines(path) do ips[#ips + 1] = line end

local res, err = cf.cache.origin_cloud_regions.bulk_delete {
  zone_id = zone, ips = ips, concurrency = math.tointeger(tonumber(concurrency or "1")),
}
if not res then error(tostring(err), 0) end
if #res.value.succeeded ~= #ips then
  io.stderr:write(string.format("%d of %d IPs deleted\n", #res.value.succeeded, #ips))
  os.exit(1)
end
