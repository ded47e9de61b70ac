-- bench/scenario3.lua: scenario 3's cfrun side. Deletes every IP of several zones with one
-- bulk_delete per zone, all zones as concurrent tasks, at most CONCURRENCY requests in flight.
-- Exits 1 unless every IP was deleted.
--
-- usage: cfrun bench/scenario3.lua CONCURRENCY ZONE_ID IP_FILE [ZONE_ID IP_FILE ...]
--        (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL)
local cf = require "cloudflare"

local concurrency = math.tointeger(tonumber(arg[1]))
-- the rate budget raised as bench/scenario2.lua explains
local client = cf.new { max_in_flight = concurrency, rate_limit = { requests = 1000000, per = 300 } }

local tasks, zones, wanted = {}, {}, 0
for i = 2, #arg, 2 do
  local zone, ips = arg[i], {}
  for line in io.lines(arg[i + 1]) do ips[#ips + 1] = line end
  wanted = wanted + #ips
  zones[#tasks + 1] = zone
  tasks[#tasks + 1] = function()
    return client.cache.origin_cloud_regions.bulk_delete { zone_id = zone, ips = ips, concurrency = concurrency }
  end
end

local results, errs = cf.parallel(tasks, { concurrency = #tasks })
local deleted = 0
for i = 1, #tasks do
  if results[i] then
    deleted = deleted + #results[i].value.succeeded
  else
    io.stderr:write(string.format("zone %s: %s\n", zones[i], tostring(errs[i])))
  end
end
if deleted ~= wanted then
  io.stderr:write(string.format("%d of %d IPs deleted\n", deleted, wanted))
  os.exit(1)
end
