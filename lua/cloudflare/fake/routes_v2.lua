-- cloudflare.fake.routes_v2: the current generation, /zones/{zone_id}/origin/cloud_regions: its routes, pages and
-- entries ({origin_ip, region, vendor, modified_on}, no wrapper). Must keep no state: it serves the shared state.
--
-- Codes: 1146, 1157, 1164 as published; 404s (published without a code) answer 1142 (get) and
-- 1163 (delete); 1198 for a malformed body or query is the fake's own.

local wire = require("cloudflare.fake.wire")
local state = require("cloudflare.fake.state")
local family = require("cloudflare.fake.family")
local http = require("cloudflare.fake.http")

local array, ok, canonical_ip, fail = wire.array, wire.ok, wire.canonical_ip, wire.fail
local upsert = state.upsert

local DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100
local MISMATCH = "body origin_ip does not match URL"

local function entry(m)
  return { origin_ip = m.ip, region = m.region, vendor = m.vendor, modified_on = m.modified_on }
end

-- A query parameter that must be an integer from 1 to max (nil: no maximum). Returns it (or
-- default when absent), or nil, the problem.
local function query_int(params, repeated, name, default, max)
  local v = params[name]
  if v == nil then
    return default
  end
  local n = v:match("^%d+$") and math.tointeger(tonumber(v))
  if repeated[name] or not n or n < 1 or (max and n > max) then
    return nil, string.format("Invalid query parameter %s: must be an integer %s, given once", name,
      max and ("from 1 to " .. max) or ">= 1")
  end
  return n
end

-- GET ?page=&per_page=: one page of the zone's mappings in insertion order, with result_info.
local function list_mappings(req, zone)
  local params, repeated = http.parse_query(req.query)
  local page, problem = query_int(params, repeated, "page", 1)
  local per_page
  if page then
    per_page, problem = query_int(params, repeated, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
  end
  if problem then
    return fail(400, family.BAD_REQUEST_CODE, problem)
  end
  local total = zone.count
  local total_pages = (total + per_page - 1) // per_page
  local result = array()
  if page <= total_pages then           -- (also keeps (page - 1) * per_page from overflowing)
    local mappings = state.page(zone, (page - 1) * per_page + 1, per_page)
    for i = 1, #mappings do
      result[i] = entry(mappings[i])
    end
  end
  return ok(result, { page = page, per_page = per_page, count = #result, total_count = total,
    total_pages = total_pages })
end

-- GET /{ip}
local function get_one(req, zone)
  local m, status, env = family.path_mapping(req, zone, family.ABSENT)
  if not m then
    return status, env
  end
  return ok(entry(m))
end

local MAPPING_FIELDS = { "region", "vendor" }

-- PUT /{ip}, body {"origin_ip", "region", "vendor"}: creates or replaces the mapping. The
-- body's origin_ip must be the path's (1146 when missing, invalid or different).
local function put_one(req, zone)
  local ip, status, env = family.path_ip(req)
  if not ip then
    return status, env
  end
  local obj = wire.decode_json(req.body)
  if obj == nil then
    return family.bad_body("the body is not valid JSON")
  elseif type(obj) ~= "table" or wire.json_kind(req.body) ~= "object" then
    return family.bad_body('expected a JSON object {"origin_ip", "region", "vendor"}')
  end
  local body_ip = canonical_ip(obj.origin_ip)
  if not body_ip then
    return family.fail(400, family.INVALID_IP)
  elseif body_ip ~= ip then
    return fail(400, family.INVALID_IP.code, MISMATCH)
  end
  local problem = family.shape_problem(obj, MAPPING_FIELDS)
  if problem then
    return family.bad_body(problem)
  end
  if state.region_problem(obj.vendor, obj.region) then
    return family.fail(400, family.BAD_REGION)
  end
  local m = upsert(zone, ip, obj.region, obj.vendor, req.now, req.options.max_mappings)
  if not m then
    return family.limit_reached(req.options)
  end
  return ok(entry(m))
end

-- DELETE /{ip}: the result names the IP only.
local function delete_one(req, zone)
  local m, ip, env = family.path_mapping(req, zone, family.DELETE_ABSENT)
  if not m then
    return ip, env -- ip is the status here
  end
  state.delete(zone, m, req.now)
  return ok({ origin_ip = ip })
end

-- PUT /batch, body [{"origin_ip", "region", "vendor"}, ...] (1..100): creates or replaces item
-- by item, in order; an invalid address or an unsupported vendor or region fails that item
-- only. A batch whose new IPs would take the zone past the limit is refused whole (403 code
-- 1164, which the contract publishes for this operation). Unlisted mappings are untouched.
local function bulk_update(req, zone)
  local items, status, env = family.mapping_list(req, "origin_ip")
  if not items then
    return status, env
  end
  local s, e = family.batch_limit(req, zone, items, "origin_ip")
  if s then
    return s, e
  end
  local texts, now, max = req.options.item_errors, req.now, req.options.max_mappings
  local region_problem = state.region_problem
  local succeeded, failed = array(), array()
  for i = 1, #items do
    local item = items[i]
    local ip = canonical_ip(item.origin_ip)
    if not ip then
      failed[#failed + 1] = { origin_ip = item.origin_ip, error = texts.invalid_ip }
    else
      local why = region_problem(item.vendor, item.region)
      local m = not why and upsert(zone, ip, item.region, item.vendor, now, max)
      if m then
        succeeded[#succeeded + 1] = { origin_ip = ip, region = m.region, vendor = m.vendor }
      else
        failed[#failed + 1] = { origin_ip = ip, error = texts[why or "limit"] }
      end
    end
  end
  return ok({ succeeded = succeeded, failed = failed })
end

-- DELETE /batch, body ["ip", ...] (1..100).
local function bulk_delete(req, zone)
  local items, status, env = family.ip_list(req)
  if not items then
    return status, env
  end
  local succeeded, failed = family.delete_many(zone, items, "origin_ip", req.now, req.options.item_errors)
  return ok({ succeeded = succeeded, failed = failed })
end

-- The routes, as in routes_v1.
return {
  name = "v2",
  base = "/origin/cloud_regions",
  routes = {
    { path = "", methods = { GET = list_mappings } },
    { path = "/batch", methods = { PUT = bulk_update, DELETE = bulk_delete } },
    { path = "/supported_regions", methods = { GET = family.supported_regions } },
    { path = "/([^/]+)", methods = { GET = get_one, PUT = put_one, DELETE = delete_one } },
  },
}
