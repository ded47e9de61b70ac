-- report.lua: how many origin cloud region mappings a zone has, per vendor and region.
--
-- Usage: cfrun scripts/report.lua [OPTIONS]
--        cfrun --sandbox scripts/report.lua                 (against the fake API)
--
-- The options and what they do: `--help` prints them, from the OPTIONS table below (the one
-- place they are written).
--
-- Output: the rows; in table format a total line follows. Changes nothing.
--
-- Exit status: 0 done, 2 usage error, 4 the listing failed (the error on stderr).

local cli, report = cloudflare.cli, cloudflare.report

local OPTIONS = cli.options("zone",
  { "format", cli.FORMATS, arg = "F", help = "table (default), json, jsonl or csv; one row {vendor,"
    .. " region, count} per region in use, sorted by vendor then region" })
local USAGE = cli.usage(OPTIONS)
local opts, args = cli.parse(arg, OPTIONS, USAGE, {
  about = "How many origin cloud region mappings a zone has, per vendor and region. Changes nothing." })
local zone = cli.zone(opts, USAGE)
local format = opts.format or "table"
if #args > 0 then cli.die("unexpected argument '" .. args[1] .. "'", USAGE) end

local listing, err = cloudflare.cache.origin_cloud_regions.list { zone_id = zone }
if not listing then cli.fail(err) end

-- one row per (vendor, region)
local rows, row_of = cloudflare.json.array(), {}
for _, m in ipairs(listing.value) do
  local vendor, region = m.vendor or "?", m.region or "?"
  local key = vendor .. " " .. region
  local row = row_of[key]
  if not row then
    row = { vendor = vendor, region = region, count = 0 }
    row_of[key], rows[#rows + 1] = row, row
  end
  row.count = row.count + 1
end
table.sort(rows, function(a, b)
  if a.vendor ~= b.vendor then return a.vendor < b.vendor end
  return a.region < b.region
end)

report.write(rows, { format = format, columns = { "vendor", "region", "count" } })
if format == "table" then
  local nvendors, last = 0, nil
  for _, row in ipairs(rows) do
    if row.vendor ~= last then nvendors, last = nvendors + 1, row.vendor end
  end
  print(string.format("total: %d mapping(s) in %d region(s) of %d vendor(s)", #listing.value, #rows, nvendors))
end
