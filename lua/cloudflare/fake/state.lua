-- cloudflare.fake.state: the one state all generations serve: zones, mappings (in order, indexed by IP), seeds,
-- supported regions; find, upsert, delete, pages. Must know no wire shape or code, and cost O(batch) per batch.

local wire = require("cloudflare.fake.wire")

local S = {}

local array, absent, invalid = wire.array, wire.absent, wire.invalid
local check_list, check_string = wire.check_list, wire.check_string

S.SANDBOX_ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
S.DEFAULT_MAX_MAPPINGS = 3500   -- per zone; PUT /__fake/options {"max_mappings": N} changes it
S.MAX_BATCH = 100               -- items per batch request, every generation

function S.valid_zone_id(id)
  return #id >= 1 and #id <= 32 and id:match("^[0-9A-Za-z]+$") ~= nil
end

------------------------------------------------------------------------------------------
-- Supported vendors and regions: what GET .../supported_regions lists and what every write
-- validates against (exposed as M.SUPPORTED_REGIONS and read per request, so a change to its
-- contents applies to both). Every region of the sandbox seed must be listed here.
-- { vendor = { { name = region, upper_tier_colos = { IATA code, ... } }, ... } }
------------------------------------------------------------------------------------------

local function regions(list)
  local out = {}
  for i, row in ipairs(list) do
    out[i] = { name = row[1], upper_tier_colos = { table.unpack(row, 2) } }
  end
  return out
end

local SUPPORTED_REGIONS = {
  aws = regions({
    { "us-east-1", "IAD", "EWR" },
    { "us-east-2", "CMH", "ORD" },
    { "us-west-1", "SJC", "SFO" },
    { "us-west-2", "PDX", "SEA" },
    { "ca-central-1", "YUL" },
    { "sa-east-1", "GRU" },
    { "eu-west-1", "DUB", "LHR" },
    { "eu-west-2", "LHR" },
    { "eu-central-1", "FRA" },
    { "ap-south-1", "BOM" },
    { "ap-southeast-1", "SIN" },
    { "ap-northeast-1", "NRT", "KIX" },
  }),
  gcp = regions({
    { "us-central1", "ORD", "OMA" },
    { "us-east1", "ATL", "IAD" },
    { "us-east4", "IAD" },
    { "us-west1", "PDX", "SEA" },
    { "europe-west1", "BRU", "AMS" },
    { "europe-west2", "LHR" },
    { "europe-west3", "FRA" },
    { "asia-east1", "TPE" },
    { "asia-northeast1", "NRT" },
  }),
  azure = regions({
    { "eastus", "IAD" },
    { "eastus2", "IAD", "RIC" },
    { "centralus", "ORD", "OMA" },
    { "westus2", "SEA" },
    { "westeurope", "AMS" },
    { "northeurope", "DUB" },
    { "uksouth", "LHR" },
    { "southeastasia", "SIN" },
    { "japaneast", "NRT" },
  }),
  oci = regions({
    { "us-ashburn-1", "IAD" },
    { "us-phoenix-1", "PHX" },
    { "ca-toronto-1", "YYZ" },
    { "eu-frankfurt-1", "FRA" },
    { "uk-london-1", "LHR" },
    { "ap-tokyo-1", "NRT" },
  }),
}
S.SUPPORTED_REGIONS = SUPPORTED_REGIONS

-- nil when the vendor supports the region, else why not: "unsupported_vendor" or
-- "unsupported_region" (the keys of the per-item error texts).
function S.region_problem(vendor, region)
  local list = SUPPORTED_REGIONS[vendor]
  if type(list) ~= "table" then
    return "unsupported_vendor"
  end
  for _, r in ipairs(list) do
    if r.name == region then
      return nil
    end
  end
  return "unsupported_region"
end

-- The result of GET .../supported_regions (the same in every generation).
function S.supported_regions()
  local vendors = {}
  for vendor, entries in pairs(SUPPORTED_REGIONS) do
    local out = array()
    for i, r in ipairs(entries) do
      out[i] = { name = r.name, upper_tier_colos = array({ table.unpack(r.upper_tier_colos) }) }
    end
    vendors[vendor] = out
  end
  return { obtained_codes = true, vendors = vendors }
end

------------------------------------------------------------------------------------------
-- Zones. A zone is { id =, mappings = { {ip=, region=, vendor=, modified_on=}, ... },
-- count =, modified_on =, index =, dead = }; mappings keep their insertion order. Deleting
-- only marks a mapping (dead) and drops it from the index, so that a delete costs O(1); the
-- list is compacted once, when somebody reads it whole (live). count is the number of live
-- mappings, kept up to date, so that the limit costs O(1) too.
------------------------------------------------------------------------------------------

-- The newest modified_on of a list of mappings, or nil when it is empty.
local function latest_modified(mappings)
  local latest
  for _, m in ipairs(mappings) do
    if not latest or m.modified_on > latest then
      latest = m.modified_on
    end
  end
  return latest
end
S.latest_modified = latest_modified

local function new_zone(id, mappings)
  return { id = id, mappings = mappings, count = #mappings, modified_on = latest_modified(mappings) }
end

local function copy_mappings(mappings)
  local out = {}
  for i, m in ipairs(mappings) do
    out[i] = { ip = m.ip, region = m.region, vendor = m.vendor, modified_on = m.modified_on }
  end
  return out
end

-- The zone's live mappings, in order (compacted here, once after deletes).
local function live(zone)
  local dead = zone.dead
  if dead then
    local kept = {}
    for _, m in ipairs(zone.mappings) do
      if not dead[m] then
        kept[#kept + 1] = m
      end
    end
    zone.mappings, zone.dead = kept, nil
  end
  return zone.mappings
end
S.live = live

-- The mapping of a canonical IP, or nil; from an index by IP built on first use.
local function find(zone, ip)
  local index = zone.index
  if not index then
    index = {}
    for _, m in ipairs(live(zone)) do
      index[m.ip] = m
    end
    zone.index = index
  end
  return index[ip]
end
S.find = find

-- Creates or updates (in place, keeping its position) the mapping of a canonical IP and
-- stamps it with `now`. Returns the mapping and whether it is new, or nil when the IP is new
-- and the zone already holds `max` mappings.
function S.upsert(zone, ip, region, vendor, now, max)
  local m = find(zone, ip)
  local created = false
  if not m then
    if zone.count >= max then
      return nil
    end
    m, created = { ip = ip }, true
    zone.mappings[#zone.mappings + 1] = m
    zone.index[ip] = m
    zone.count = zone.count + 1
  end
  m.region, m.vendor, m.modified_on = region, vendor, now
  zone.modified_on = now
  return m, created
end

-- Removes a mapping that find returned.
function S.delete(zone, m, now)
  zone.dead = zone.dead or {}
  zone.dead[m] = true
  zone.index[m.ip] = nil
  zone.count = zone.count - 1
  zone.modified_on = now
end

-- Mappings first .. first + n - 1 of the zone's order (fewer, or none, past the end), and
-- how many the zone holds: O(n) once the list is compact.
function S.page(zone, first, n)
  local list = live(zone)
  local out = array()
  for i = first, math.min(first + n - 1, #list) do
    out[#out + 1] = list[i]
  end
  return out, #list
end

------------------------------------------------------------------------------------------
-- Seeds
------------------------------------------------------------------------------------------

-- One mapping from its JSON object (seed file, PUT /__fake/zones/...). Accepts the address
-- as "origin-ip", "origin_ip" or "ip".
local function mapping_from_object(obj, where, default_time)
  if type(obj) ~= "table" then
    invalid("%s is not a JSON object", where)
  end
  local text = obj["origin-ip"]
  if absent(text) then
    text = obj.origin_ip
  end
  if absent(text) then
    text = obj.ip
  end
  check_string(text, where .. ': "origin-ip" (or "ip")')
  local ip = wire.canonical_ip(text)
  if not ip then
    invalid("%s: invalid IP address '%s'", where, text)
  end
  local modified_on = obj.modified_on
  if absent(modified_on) then
    modified_on = default_time
  end
  return {
    ip = ip,
    region = check_string(obj.region, where .. ": region", true),
    vendor = check_string(obj.vendor, where .. ": vendor", true),
    modified_on = check_string(modified_on, where .. ": modified_on", true),
  }
end

-- A list of mappings from a JSON array of objects; raises invalid().
function S.mappings_from_list(list, where, default_time)
  check_list(list, where)
  local mappings, seen = {}, {}
  for i, obj in ipairs(list) do
    local m = mapping_from_object(obj, string.format("%s item %d", where, i), default_time)
    if seen[m.ip] then
      invalid("%s item %d: duplicate IP address %s", where, i, m.ip)
    end
    seen[m.ip] = true
    mappings[#mappings + 1] = m
  end
  return mappings
end

-- Normalises a seed ({"zones": {"<id>": [mapping, ...]}}) into { [id] = mappings }, or nil, msg.
function S.load_seed(seed, source)
  return wire.validated(function()
    if type(seed) ~= "table" or type(seed.zones) ~= "table" then
      invalid('%s: expected an object {"zones": {"<zone_id>": [...]}}', source)
    end
    local zones = {}
    for id, list in pairs(seed.zones) do
      if type(id) ~= "string" or not S.valid_zone_id(id) then
        invalid("%s: invalid zone id '%s' (1 to 32 letters or digits)", source, tostring(id))
      end
      zones[id] = S.mappings_from_list(list, source .. ": zone " .. id, wire.rfc3339_now())
    end
    return zones
  end)
end

function S.sandbox_seed()
  local rows = {
    { "192.0.2.1", "aws", "us-east-1", "2026-01-05T09:00:00Z" },
    { "192.0.2.2", "aws", "us-east-1", "2026-01-05T09:00:00Z" },
    { "192.0.2.3", "aws", "us-west-2", "2026-01-06T10:15:00Z" },
    { "198.51.100.10", "gcp", "us-central1", "2026-01-07T11:30:00Z" },
    { "198.51.100.11", "gcp", "europe-west1", "2026-01-07T11:31:00Z" },
    { "2001:db8::1", "gcp", "us-central1", "2026-01-08T08:00:00Z" },
    { "2001:db8::2", "azure", "eastus", "2026-01-09T14:45:00Z" },
    { "2001:db8:0:1::10", "azure", "westeurope", "2026-01-09T14:46:00Z" },
    { "203.0.113.5", "oci", "us-ashburn-1", "2026-01-10T16:20:00Z" },
    { "203.0.113.6", "oci", "eu-frankfurt-1", "2026-01-10T16:21:00Z" },
    { "198.51.100.12", "azure", "northeurope", "2026-01-11T12:00:00Z" },
    { "2001:db8:0:2::20", "aws", "eu-west-1", "2026-01-12T07:05:00Z" },
  }
  local list = array()
  for i, r in ipairs(rows) do
    list[i] = { ["origin-ip"] = r[1], vendor = r[2], region = r[3], modified_on = r[4] }
  end
  return { zones = { [S.SANDBOX_ZONE] = list } }
end

-- The decoded JSON of a seed file; raises (a start-up mistake) when it cannot be read.
function S.read_seed_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    error("cannot read seed file: " .. tostring(err), 0)
  end
  local text = f:read("a")
  f:close()
  local seed = wire.decode_json(text or "")
  if seed == nil then
    error("seed file " .. path .. " is not valid JSON", 0)
  end
  return seed
end

------------------------------------------------------------------------------------------
-- The state: every zone, and the seed that reset() returns to.
------------------------------------------------------------------------------------------

local State = {}
State.__index = State

-- seed_zones: { [zone id] = mappings } (as load_seed returns), copied on every reset.
function S.new(seed_zones)
  local self = setmetatable({ seed = seed_zones or {} }, State)
  self:reset()
  return self
end

function State:reset()
  self.zones = {}
  for id, mappings in pairs(self.seed) do
    self.zones[id] = new_zone(id, copy_mappings(mappings))
  end
end

-- The zone of a valid id; a zone never seen is simply empty (and is created).
function State:zone(id)
  local zone = self.zones[id]
  if not zone then
    zone = new_zone(id, {})
    self.zones[id] = zone
  end
  return zone
end

function State:replace(id, mappings)
  self.zones[id] = new_zone(id, mappings)
end

-- Adds mappings after the zone's (an unknown zone is created with them): a zone larger than
-- one control request's body is seeded in parts. nil, message when one of their IPs is mapped
-- already (the zone is then unchanged).
function State:extend(id, mappings)
  local zone = self.zones[id]
  if not zone then
    self:replace(id, mappings)
    return true
  end
  for _, m in ipairs(mappings) do
    if find(zone, m.ip) then
      return nil, string.format("zone %s: %s is mapped already", id, m.ip)
    end
  end
  local all = live(zone)
  table.move(mappings, 1, #mappings, #all + 1, all)
  self.zones[id] = new_zone(id, all)
  return true
end

-- The control API's view of a zone (always with the hyphenated key); [] for an unknown one.
function State:listing(id)
  local zone = self.zones[id]
  local out = array()
  for i, m in ipairs(zone and live(zone) or {}) do
    out[i] = { ["origin-ip"] = m.ip, region = m.region, vendor = m.vendor, modified_on = m.modified_on }
  end
  return out
end

-- { [id] = listing } of every zone.
function State:listings()
  local all = {}
  for id in pairs(self.zones) do
    all[id] = self:listing(id)
  end
  return all
end

return S
