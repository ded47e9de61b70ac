-- bench/scenario2.lua: scenario 2's cfrun side. One bulk_delete of every IP in a file (3,500
-- in the benchmark: 35 requests of 100). CONCURRENCY (default 1) is the bulk_delete's
-- `concurrency`: at 1 the batches go one after the other on the client's one connection, as
-- curl sends them; the driver also times cfrun's default (4). Exits 1 unless every IP was
-- deleted.
--
-- usage: cfrun bench/scenario2.lua ZONE_ID IP_FILE [CONCURRENCY]
--        (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL)
local cf = require "cloudflare"
-- The rate budget is raised to 1,000,000 requests per 300 s (still kept in its shared state
-- file, whose cost is measured): the fake has no rate limit, and at Cloudflare's 1,200 per 300 s
-- the benchmark's thousands of requests would wait for the budget instead of working.
local RATE_LIMIT = { requests = 1000000, per = 300 }

local zone, path, concurrency = ...
local ips = {}
for line in io.lines(path) do ips[#ips + 1] = line end

local res, err = cf.new({ rate_limit = RATE_LIMIT }).cache.origin_cloud_regions.bulk_delete {
  zone_id = zone, ips = ips, concurrency = math.tointeger(tonumber(concurrency or "1")),
}
if not res then error(tostring(err), 0) end
if #res.value.succeeded ~= #ips then
  io.stderr:write(string.format("%d of %d IPs deleted\n", #res.value.succeeded, #ips))
  os.exit(1)
end
