-- cloudflare.fake.family: what every generation's routes of the origin cloud regions family share: the errors
-- Cloudflare publishes for it, request body checks, the batch delete. Must not route, nor keep state of its own.
--
-- Handlers get req = { method, path, query, headers, body, params (path captures after the
-- zone id, percent-decoded), now (RFC 3339), options (the server's), wire_key } and the zone,
-- and return status, envelope.

local wire = require("cloudflare.fake.wire")
local state = require("cloudflare.fake.state")

local F = {}

local fail, canonical_ip, is_sequence, absent = wire.fail, wire.canonical_ip, wire.is_sequence, wire.absent
local MAX_BATCH = state.MAX_BATCH

-- The errors Cloudflare publishes (codes and, where published, messages). DELETE_ABSENT's
-- message and the text after "Maximum number of IP mappings" are the fake's own.
F.INVALID_IP = { code = 1146, message = "Invalid or missing origin IP address." }
F.BAD_REGION = { code = 1157,
  message = "The vendor provided doesn't exist or the region provided does not exist for the specified cloud vendor" }
F.EXISTS = { code = 1145,
  message = "Unable to create new origin_public_cloud_region setting. The zone setting already exists." }
F.ABSENT = { code = 1142,
  message = "Unable to retrieve origin_public_cloud_region setting value. The zone setting does not exist." }
F.DELETE_ABSENT = { code = 1163,
  message = "Unable to delete origin_public_cloud_region setting. The zone setting does not exist." }
F.INTERNAL_ERROR = wire.INTERNAL_ERROR
F.LIMIT_CODE = 1164
F.BAD_REQUEST_CODE = 1198    -- the fake's own: Cloudflare publishes no code for a malformed body

function F.fail(status, e)
  return fail(status, e.code, e.message)
end

-- 403 code 1164, naming the limit in force.
function F.limit_reached(options)
  return fail(403, F.LIMIT_CODE, string.format("Maximum number of IP mappings per zone (%d) reached.",
    options.max_mappings))
end

-- 400 code 1198 for a body (or query) that is not what the operation takes.
function F.bad_body(problem)
  return fail(400, F.BAD_REQUEST_CODE, "Invalid request body: " .. problem)
end

-- The canonical IP of the path ({ip} is req.params[1]), or nil, status, envelope.
function F.path_ip(req)
  local ip = canonical_ip(req.params[1])
  if not ip then
    return nil, F.fail(400, F.INVALID_IP)
  end
  return ip
end

-- Why a decoded value is not an object with string fields `fields` (other fields are
-- ignored), or nil when it is one.
function F.shape_problem(obj, fields)
  if type(obj) ~= "table" or is_sequence(obj) then
    return "not a JSON object"
  end
  for _, field in ipairs(fields) do
    local v = obj[field]
    if absent(v) then
      return string.format('"%s" is required', field)
    elseif type(v) ~= "string" then
      return string.format('"%s" must be a string', field)
    end
  end
  return nil
end

-- The decoded body of a batch: a JSON array of 1 to 100 items, each passing check(item) (which
-- returns why not, or nil). Returns the items, or nil, status, envelope (1198). what names
-- the items in messages ("IP addresses", "mappings"), shape the expected body.
function F.batch_body(req, what, shape, check)
  local body = req.body
  local items = wire.decode_json(body)
  local problem
  if items == nil then
    problem = "the body is not valid JSON"
  elseif type(items) ~= "table" or wire.json_kind(body) ~= "array" then
    problem = "expected a JSON array of " .. shape
  elseif #items == 0 then
    problem = string.format("the array is empty; send 1 to %d %s", MAX_BATCH, what)
  elseif #items > MAX_BATCH then
    problem = string.format("%d items; at most %d %s per request", #items, MAX_BATCH, what)
  else
    for i = 1, #items do
      local why = check(items[i])
      if why then
        problem = string.format("item %d of the array%s", i, why)
        break
      end
    end
  end
  if problem then
    return nil, F.bad_body(problem)
  end
  return items
end

local function string_item(v)
  if type(v) ~= "string" then
    return " is not a string"
  end
end

-- The body of a batch delete, ["ip", ...] (the same in every generation); see batch_body.
function F.ip_list(req)
  return F.batch_body(req, "IP addresses", "IP address strings", string_item)
end

-- The mapping the path names, and its canonical IP; or nil, status, envelope: 400 1146 for an
-- invalid IP, 404 with `missing` (an error of this file) when there is no mapping.
function F.path_mapping(req, zone, missing)
  local ip, status, env = F.path_ip(req)
  if not ip then
    return nil, status, env
  end
  local m = state.find(zone, ip)
  if not m then
    return nil, F.fail(404, missing)
  end
  return m, ip
end

-- The body of a batch upsert, [{<ip_key>, "region", "vendor"}, ...]; see batch_body.
function F.mapping_list(req, ip_key)
  local fields = { ip_key, "region", "vendor" }
  return F.batch_body(req, "mappings", string.format('objects {"%s", "region", "vendor"}', ip_key),
    function(item)
      local why = F.shape_problem(item, fields)
      return why and (": " .. why)
    end)
end

-- Deletes the mappings of a batch's IPs, one by one, in order, and returns the arrays
-- succeeded {<key>, region, vendor} and failed {<key>, error} (the IP as sent when it is not
-- one; the second of an IP listed twice is not found: it is gone by then).
function F.delete_many(zone, items, key, now, texts)
  local succeeded, failed = wire.array(), wire.array()
  local find, delete = state.find, state.delete
  for i = 1, #items do
    local text = items[i]
    local ip = canonical_ip(text)
    local m = ip and find(zone, ip)
    if not ip then
      failed[#failed + 1] = { [key] = text, error = texts.invalid_ip }
    elseif not m then
      failed[#failed + 1] = { [key] = ip, error = texts.not_found }
    else
      delete(zone, m, now)
      succeeded[#succeeded + 1] = { [key] = ip, region = m.region, vendor = m.vendor }
    end
  end
  return succeeded, failed
end

-- The 403 1164 of a batch upsert whose new IPs (under `key`; items that would be applied:
-- with a supported vendor and region) would take the zone past the limit, or nil. Both
-- generations publish 1164 for the batch upsert: the whole request is refused, nothing changes.
function F.batch_limit(req, zone, items, key)
  local new, seen, find, region_problem = 0, {}, state.find, state.region_problem
  for i = 1, #items do
    local item = items[i]
    local ip = canonical_ip(item[key])
    if ip and not seen[ip] and not region_problem(item.vendor, item.region) then
      seen[ip] = true
      if not find(zone, ip) then new = new + 1 end
    end
  end
  if zone.count + new > req.options.max_mappings then
    return F.limit_reached(req.options)
  end
end

-- GET .../supported_regions: the same in every generation (not a setting).
function F.supported_regions()
  return wire.ok(state.supported_regions())
end

return F
