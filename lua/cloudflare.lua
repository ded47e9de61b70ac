-- cloudflare: the public `cloudflare` module, layered on the native `cloudflare.core`.
-- Holds argument checking, IP canonicalisation, batching and result normalisation; must not
-- do I/O itself (every request goes through core's Client:request).
--
-- Error convention, kept by every function here: programming mistakes (bad arguments, no
-- credentials) raise; what happens on the wire returns `nil, err[, partial]`, `err` being a
-- cloudflare.Error with kind, status, errors, request_id and message.

local core = require "cloudflare.core"
local ip = require "cloudflare.ip"

local canonical = ip.canonical
local concat = table.concat
local getenv = os.getenv
local format = string.format
local mtype = math.type

local BATCH_SIZE = 100 -- the API's limit per batch request
local SETTING_ID = "origin_public_cloud_region"

local M = {
  _VERSION = core.version,
  DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4",
  BATCH_SIZE = BATCH_SIZE,
  ip = ip,
}

---------------------------------------------------------------------------------------------
-- argument checking (raises, pointing at the caller's line)

local function quote(v)
  local s = tostring(v)
  if #s > 40 then s = s:sub(1, 40) .. "..." end
  return format("%q", s)
end

local function argerror(fname, arg, msg, level)
  error(format("%s: bad argument '%s': %s", fname, arg, msg), level + 1)
end

local function check_args(fname, args, allowed, level)
  if type(args) ~= "table" then
    error(format("%s: expected a table of arguments, got %s", fname, type(args)), level + 1)
  end
  for k in pairs(args) do
    if not allowed[k] then
      error(format("%s: unknown argument %s", fname, quote(k)), level + 1)
    end
  end
end

-- A zone id goes into the URL path: letters and digits only, so it cannot change the path.
local function check_zone_id(fname, zone_id, level)
  if zone_id == nil then
    argerror(fname, "zone_id", "missing (the zone identifier, 32 hex digits)", level + 1)
  elseif type(zone_id) ~= "string" then
    argerror(fname, "zone_id", "expected a string, got " .. type(zone_id), level + 1)
  elseif #zone_id == 0 or #zone_id > 32 or not zone_id:find("^%w+$") then
    argerror(fname, "zone_id", "expected 1 to 32 letters and digits, got " .. quote(zone_id),
      level + 1)
  end
  return zone_id
end

local function check_ip_list(fname, ips, level)
  if type(ips) ~= "table" then
    argerror(fname, "ips", "expected a list of IP address strings, got " .. type(ips), level + 1)
  end
  local n = #ips
  for k, v in pairs(ips) do
    if mtype(k) ~= "integer" or k < 1 or k > n then
      argerror(fname, "ips", "expected a list (keys 1.." .. n .. "), found key " .. quote(k),
        level + 1)
    elseif type(v) ~= "string" then
      argerror(fname, "ips", format("element %d is a %s, expected a string", k, type(v)),
        level + 1)
    end
  end
  return n
end

---------------------------------------------------------------------------------------------
-- results

local function wire_string(v)
  if type(v) == "string" then return v end
  return nil -- absent, JSON null (cjson.null) or a wrong type
end

-- The docs name the item key origin_ip while the wire and OpenAPI use origin-ip: accept both.
local function wire_ip(item)
  return wire_string(item["origin-ip"]) or wire_string(item.origin_ip)
end

local function new_result()
  return {
    id = SETTING_ID,
    value = { succeeded = {}, failed = {}, pending = {} },
    requests = 0,
  }
end

local function append_all(dst, src, first, last)
  for i = first or 1, last or #src do dst[#dst + 1] = src[i] end
end

-- Sorts result items by where their input stood in the caller's list (items the server named
-- without our asking go last, in the order they came).
local function in_input_order(items, position)
  local key = {}
  for i, item in ipairs(items) do
    key[item] = { item.input and position[item.input] or math.huge, i }
  end
  table.sort(items, function(a, b)
    local ka, kb = key[a], key[b]
    if ka[1] ~= kb[1] then return ka[1] < kb[1] end
    return ka[2] < kb[2]
  end)
end

local function decode_error(info, problem)
  return core.error {
    kind = "decode",
    status = info.status,
    request_id = info.request_id,
    message = format("HTTP %d: %s", info.status, problem),
  }
end

-- Merges one batch's `result` into res. Items are taken one by one so that a malformed item
-- cannot hide the valid ones (a deletion must never go unrecorded); IPs of the batch that the
-- response does not account for go to pending. Returns a description of what was wrong, or nil.
local function merge_batch(res, result, sent, input_of)
  if type(result) ~= "table" then
    append_all(res.value.pending, sent)
    return "result is a " .. type(result) .. ", expected an object"
  end
  local value = result.value
  if type(value) ~= "table" or type(value.succeeded) ~= "table"
      or type(value.failed) ~= "table" then
    append_all(res.value.pending, sent)
    return "result.value.succeeded and result.value.failed are missing"
  end
  local problem
  local accounted = {}
  local out = res.value
  for _, list in ipairs { "succeeded", "failed" } do
    local items = value[list]
    for i = 1, #items do
      local item = items[i]
      local raw = type(item) == "table" and wire_ip(item)
      if not raw then
        problem = problem or format("result.value.%s[%d] has no origin-ip string", list, i)
      else
        local c = canonical(raw) or raw
        accounted[c] = true
        local entry = { origin_ip = c, input = input_of[c] }
        if list == "succeeded" then
          entry.region = wire_string(item.region)
          entry.vendor = wire_string(item.vendor)
        else
          entry.error = wire_string(item.error) or "unknown error"
        end
        out[list][#out[list] + 1] = entry
      end
    end
  end
  local missing = 0
  for i = 1, #sent do
    if not accounted[sent[i]] then
      out.pending[#out.pending + 1] = sent[i]
      missing = missing + 1
    end
  end
  if missing > 0 and not problem then
    problem = format("the response accounts for %d of the %d IPs sent", #sent - missing, #sent)
  end
  if type(result.editable) == "boolean" then res.editable = result.editable end
  if type(result.id) == "string" then res.id = result.id end
  res.modified_on = wire_string(result.modified_on) or res.modified_on
  return problem
end

---------------------------------------------------------------------------------------------
-- cache.origin_cloud_regions

local BULK_DELETE_ARGS = { zone_id = true, ips = true }

local function bulk_delete(client, args)
  local fname = "bulk_delete"
  check_args(fname, args, BULK_DELETE_ARGS, 2)
  local zone_id = check_zone_id(fname, args.zone_id, 2)
  local ips = args.ips
  local n = check_ip_list(fname, ips, 2)

  -- canonical form, first-seen order, one entry per address; non-addresses are never sent
  local res = new_result()
  local order, input_of, position = {}, {}, {}
  for i = 1, n do
    local s = ips[i]
    local c = canonical(s)
    if c then
      if not input_of[c] then
        input_of[c] = s
        position[s] = i
        order[#order + 1] = c
      end
    elseif not position[s] then
      position[s] = i
      res.value.failed[#res.value.failed + 1] = { origin_ip = s, error = "invalid IP address", input = s }
    end
  end

  local path = "/zones/" .. zone_id .. "/cache/origin_cloud_regions/batch"
  for first = 1, #order, BATCH_SIZE do
    local last = math.min(first + BATCH_SIZE - 1, #order)
    local sent = table.move(order, first, last, 1, {})
    -- canonical addresses hold only [0-9a-f.:], so no JSON escaping is needed
    local body = '["' .. concat(sent, '","') .. '"]'
    res.requests = res.requests + 1
    local result, info = client:request("DELETE", path, body)
    local err
    if result == nil then
      err = info
      append_all(res.value.pending, sent)
    else
      local problem = merge_batch(res, result, sent, input_of)
      if problem then err = decode_error(info, problem) end
    end
    if err then -- stop: nothing more is sent, the rest stays pending
      append_all(res.value.pending, order, last + 1)
      in_input_order(res.value.succeeded, position)
      in_input_order(res.value.failed, position)
      return nil, err, res
    end
  end
  in_input_order(res.value.succeeded, position)
  in_input_order(res.value.failed, position)
  return res
end

local function origin_cloud_regions(client)
  return {
    bulk_delete = function(args) return bulk_delete(client, args) end,
  }
end

---------------------------------------------------------------------------------------------
-- clients

local OPTION_TYPES = {
  api_token = "string", api_email = "string", api_key = "string", base_url = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", max_body = "number",
}

local function env(name)
  local v = getenv(name)
  if v == "" then return nil end
  return v
end

-- level: where a raised error points, counted from build's caller
local function build(opts, level)
  level = level + 1
  if type(opts) ~= "table" then
    error("cloudflare.new: expected a table of options, got " .. type(opts), level)
  end
  for k, v in pairs(opts) do
    local want = OPTION_TYPES[k]
    if not want then
      error(format("cloudflare.new: unknown option %s", quote(k)), level)
    elseif type(v) ~= want then
      error(format("cloudflare.new: option '%s' must be a %s, got %s", k, want, type(v)), level)
    end
  end
  local config = {
    base_url = opts.base_url or env("CLOUDFLARE_BASE_URL") or M.DEFAULT_BASE_URL,
    timeout = opts.timeout,
    connect_timeout = opts.connect_timeout,
    ca_file = opts.ca_file,
    max_body = opts.max_body,
  }
  -- Explicit credentials switch the environment's off, so a token in the environment can
  -- never override an email + key pair the script chose.
  if opts.api_token then
    config.api_token = opts.api_token
  elseif opts.api_email or opts.api_key then
    config.api_email = opts.api_email or env("CLOUDFLARE_EMAIL")
    config.api_key = opts.api_key or env("CLOUDFLARE_API_KEY")
  else
    config.api_token = env("CLOUDFLARE_API_TOKEN")
    config.api_email = env("CLOUDFLARE_EMAIL")
    config.api_key = env("CLOUDFLARE_API_KEY")
  end
  if not config.api_token and not (config.api_email and config.api_key) then
    error("cloudflare: no credentials configured: set CLOUDFLARE_API_TOKEN (or "
      .. "CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY), or pass api_token to cloudflare.new", level)
  end

  local fields = {}
  local ok, client = pcall(core.client, config, fields)
  if not ok then error(client, level) end
  fields.cache = { origin_cloud_regions = origin_cloud_regions(client) }
  return client
end

--- cloudflare.new{ api_token=, api_email=, api_key=, base_url=, timeout=, ... } -> Client
function M.new(opts)
  return build(opts == nil and {} or opts, 1)
end

local default_client
-- The default client is built from the environment on first use.
local function get_default(level)
  if not default_client then default_client = build({}, level + 1) end
  return default_client
end

M.cache = {
  origin_cloud_regions = {
    bulk_delete = function(args)
      return get_default(2).cache.origin_cloud_regions.bulk_delete(args)
    end,
  },
}

return M
