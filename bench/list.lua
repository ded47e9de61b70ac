-- bench/list.lua: the list scenario's cfrun side. One `list` of a zone's mappings (on v2, every
-- page of 100 one after the other; on v1, the one setting object), checked to hold exactly
-- COUNT mappings. Exits 1 otherwise.
--
-- usage: cfrun bench/list.lua ZONE_ID COUNT   (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL,
--        CFRUN_API_GENERATION)
local cf = require "cloudflare"

local zone, count = ...
-- the rate budget raised as bench/scenario2.lua explains
local client = cf.new { rate_limit = { requests = 1000000, per = 300 } }
local res, err = client.cache.origin_cloud_regions.list { zone_id = zone }
if not res then error(tostring(err), 0) end
if #res.value ~= math.tointeger(tonumber(count)) then
  io.stderr:write(string.format("%d mappings listed, expected %s\n", #res.value, count))
  os.exit(1)
end
