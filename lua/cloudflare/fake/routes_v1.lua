-- cloudflare.fake.routes_v1: the first generation, /zones/{zone_id}/cache/origin_cloud_regions: its routes, its
-- "setting" wrapper and wire key. Must keep no state of its own: it reads and writes the shared state only.
--
-- Deprecated by Cloudflare (removed on 2026-10-01), served for clients that still call it.
-- Codes: the reference's table (1141, 1142, 1145, 1146, 1157, 1163, 1164); 1198 for a body
-- of the wrong shape is the fake's own.

local wire = require("cloudflare.fake.wire")
local state = require("cloudflare.fake.state")
local family = require("cloudflare.fake.family")

local array, ok, canonical_ip = wire.array, wire.ok, wire.canonical_ip
local find, upsert, live = state.find, state.upsert, state.live

local SETTING_ID = "origin_public_cloud_region"

-- The "setting" shape shared by every endpoint of the generation except supported_regions.
local function setting(value, modified_on)
  return { id = SETTING_ID, editable = true, modified_on = modified_on or wire.NULL, value = value }
end

-- A stored mapping as v1 shows it: the address under the configured wire key, and
-- modified_on unless the shape is bulk_edit's {ip, region, vendor}.
local function wire_mapping(m, key, without_time)
  local out = { [key] = m.ip, region = m.region, vendor = m.vendor }
  if not without_time then
    out.modified_on = m.modified_on
  end
  return out
end

local function wire_list(zone, key)
  local out = array()
  for i, m in ipairs(live(zone)) do
    out[i] = wire_mapping(m, key)
  end
  return out
end

local MAPPING_FIELDS = { "region", "vendor" }

-- The body of create and edit, {"ip", "region", "vendor"}. Returns ip (canonical), region,
-- vendor, or nil, status, envelope: 1198 for a body that is not an object or lacks region or
-- vendor strings, 1146 for a missing or invalid ip, 1157 for a vendor or region not supported.
local function mapping_body(req)
  local obj = wire.decode_json(req.body)
  local problem
  if obj == nil then
    problem = "the body is not valid JSON"
  elseif type(obj) ~= "table" or wire.json_kind(req.body) ~= "object" then
    problem = 'expected a JSON object {"ip", "region", "vendor"}'
  end
  if problem then
    return nil, family.bad_body(problem)
  end
  local ip = canonical_ip(obj.ip)
  if not ip then
    return nil, family.fail(400, family.INVALID_IP)
  end
  problem = family.shape_problem(obj, MAPPING_FIELDS)
  if problem then
    return nil, family.bad_body(problem)
  end
  if state.region_problem(obj.vendor, obj.region) then
    return nil, family.fail(400, family.BAD_REGION)
  end
  return ip, obj.region, obj.vendor
end

-- GET: every mapping, in insertion order.
local function list_mappings(req, zone)
  local mappings = live(zone)
  return ok(setting(wire_list(zone, req.wire_key), state.latest_modified(mappings)))
end

-- GET /{ip}
local function get_one(req, zone)
  local m, status, env = family.path_mapping(req, zone, family.ABSENT)
  if not m then
    return status, env
  end
  return ok(setting(wire_mapping(m, req.wire_key), m.modified_on))
end

-- POST, body {"ip", "region", "vendor"}: adds a mapping, never replaces one (1145).
local function create(req, zone)
  local ip, region, vendor = mapping_body(req)
  if not ip then
    return region, vendor                      -- status, envelope
  end
  if find(zone, ip) then
    return family.fail(400, family.EXISTS)
  end
  local m = upsert(zone, ip, region, vendor, req.now, req.options.max_mappings)
  if not m then
    return family.limit_reached(req.options)
  end
  return ok(setting(wire_mapping(m, req.wire_key), m.modified_on))
end

-- PATCH, body {"ip", "region", "vendor"}: upserts one mapping; the value is the whole list
-- afterwards.
local function edit(req, zone)
  local ip, region, vendor = mapping_body(req)
  if not ip then
    return region, vendor
  end
  if not upsert(zone, ip, region, vendor, req.now, req.options.max_mappings) then
    return family.limit_reached(req.options)
  end
  return ok(setting(wire_list(zone, req.wire_key), req.now))
end

-- DELETE /{ip}: the value is the mapping deleted.
local function delete_one(req, zone)
  local m, ip, env = family.path_mapping(req, zone, family.DELETE_ABSENT)
  if not m then
    return ip, env -- ip is the status here
  end
  state.delete(zone, m, req.now)
  return ok(setting(wire_mapping(m, req.wire_key), req.now))
end

-- PATCH /batch, body [{"ip", "region", "vendor"}, ...] (1..100). A body of the wrong shape
-- fails as a whole (1198); so does, changing nothing, an item whose vendor or region is not
-- supported (500 code 1141: the reference's "a region that fails validation") and a batch
-- whose new IPs would take the zone past the limit (403 code 1164). Items with an invalid
-- address fail one by one.
local function bulk_edit(req, zone)
  local items, status, env = family.mapping_list(req, "ip")
  if not items then
    return status, env
  end
  local region_problem = state.region_problem
  for i = 1, #items do
    if region_problem(items[i].vendor, items[i].region) then
      return family.fail(500, family.INTERNAL_ERROR)
    end
  end
  local s, e = family.batch_limit(req, zone, items, "ip")
  if s then
    return s, e
  end
  local max = req.options.max_mappings

  local key, texts, now = req.wire_key, req.options.item_errors, req.now
  local succeeded, failed = array(), array()
  for i = 1, #items do
    local item = items[i]
    local ip = canonical_ip(item.ip)
    if not ip then
      failed[#failed + 1] = { [key] = item.ip, error = texts.invalid_ip }
    else
      local m = upsert(zone, ip, item.region, item.vendor, now, max)
      succeeded[#succeeded + 1] = wire_mapping(m, key, true)
    end
  end
  return ok(setting({ succeeded = succeeded, failed = failed }, #succeeded > 0 and now or nil))
end

-- DELETE /batch, body ["ip", ...] (1..100).
local function bulk_delete(req, zone)
  local items, status, env = family.ip_list(req)
  if not items then
    return status, env
  end
  local succeeded, failed = family.delete_many(zone, items, req.wire_key, req.now, req.options.item_errors)
  return ok(setting({ succeeded = succeeded, failed = failed }, #succeeded > 0 and req.now or nil))
end

-- The routes, tried in order (so /batch and /supported_regions come before /{ip}; a known
-- path with an unlisted method is 405). path: a Lua pattern for what follows base; its
-- captures are percent-decoded into req.params.
return {
  name = "v1",
  base = "/cache/origin_cloud_regions",
  setting = setting,
  routes = {
    { path = "", methods = { GET = list_mappings, POST = create, PATCH = edit } },
    { path = "/batch", methods = { PATCH = bulk_edit, DELETE = bulk_delete } },
    { path = "/supported_regions", methods = { GET = family.supported_regions } },
    { path = "/([^/]+)", methods = { GET = get_one, DELETE = delete_one } },
  },
}
