-- cloudflare.fake_api: a fake Cloudflare API server (HTTP/1.1, one coroutine per connection
-- over LuaSocket) with a control API under /__fake/ for tests to seed, inspect and inject faults.
-- It must use nothing but LuaSocket, cjson and the standard library (optional hook:
-- cloudflare.core.exit_with_parent), and must never crash or block on what a client sends.
--
-- Conventions: M.new raises on bad configuration (a programming or start-up mistake);
-- listen() returns nil, message on system failure; whatever arrives on the wire is answered
-- with an HTTP error and never raised past its connection.

local socket = require("socket")
local cjson = require("cjson")

local M = {}

local NULL = cjson.null        -- JSON null, both as cjson decodes it and as we encode it
local gettime = socket.gettime

local MAX_HEAD = 64 * 1024          -- request line + headers
local MAX_BODY = 16 * 1024 * 1024
local IDLE_TIMEOUT = 300            -- seconds a connection may sit in one request read / write
local LINGER_TIME = 2               -- seconds spent draining input before closing after an error
local MAX_BATCH = 100
local DEFAULT_MAX_MAPPINGS = 3500   -- per zone; PUT /__fake/options {"max_mappings": N} changes it
local SETTING_ID = "origin_public_cloud_region"
local SANDBOX_ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
local INTERNAL_ERROR = "Unable to process origin_public_cloud_region request. Internal error."

------------------------------------------------------------------------------------------
-- JSON encoding. cjson.encode cannot write an empty array (it writes {}), so responses are
-- encoded here: tables marked with ARRAY_MT are arrays, NULL is null, keys are sorted so that
-- output is deterministic.
------------------------------------------------------------------------------------------

local ARRAY_MT = { __name = "cloudflare.fake_api.array" }

local function array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

local JSON_ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_byte(c)
  return JSON_ESCAPES[c] or string.format("\\u%04x", c:byte())
end

local function encode_new_string(s)
  if not s:find('[%c"\\\128-\255]') then -- the common case: nothing to escape or check
    return '"' .. s .. '"'
  end
  -- Valid UTF-8 passes through. Bytes of a string that is not valid UTF-8 (a binary request
  -- body in the log) are written as \u00XX, i.e. read as Latin-1, so the output stays JSON.
  local pattern = utf8.len(s) and '[%c"\\]' or '[%c"\\\128-\255]'
  return '"' .. s:gsub(pattern, escape_byte) .. '"'
end

-- Short strings' encodings are kept: every item of a batch's answer repeats the same keys and
-- values ("region", "us-east-1"), and scanning each one again was the fake's largest cost. The
-- cache is emptied when full, so that unique strings (IPs) cannot grow it without bound.
local ENCODED_MAX, ENCODED_LEN = 4096, 64
local encoded, n_encoded = {}, 0

local function encode_string(s)
  local e = encoded[s]
  if e then
    return e
  end
  e = encode_new_string(s)
  if #s <= ENCODED_LEN then
    if n_encoded == ENCODED_MAX then
      encoded, n_encoded = {}, 0
    end
    encoded[s], n_encoded = e, n_encoded + 1
  end
  return e
end

local function encode_number(n)
  if math.type(n) == "integer" then
    return string.format("%d", n)
  end
  if n ~= n or n == math.huge or n == -math.huge then
    return "null"
  end
  local i = math.tointeger(n)          -- 1141.0 (as cjson decodes it) is written 1141
  if i then
    return string.format("%d", i)
  end
  local s = string.format("%.14g", n)
  if tonumber(s) ~= n then
    s = string.format("%.17g", n)
  end
  return s
end

-- A plain table is an array when its keys are exactly 1..n with n > 0; an empty plain
-- table is an object, which is why arrays that may be empty must be marked with array().
local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then
      return false
    end
    n = n + 1
  end
  if n == 0 then
    return false
  end
  for i = 1, n do
    if t[i] == nil then
      return false
    end
  end
  return true
end

-- Appends v's JSON text to out, whose last index is n; returns the new last index. (The fake
-- answers every batch with an item per IP, so this is its hottest code.)
local function encode_value(v, out, n, depth)
  if depth > 100 then
    error("JSON value nested too deeply (a cycle?)")
  end
  local t = type(v)
  n = n + 1
  if v == nil or v == NULL then
    out[n] = "null"
  elseif t == "boolean" then
    out[n] = v and "true" or "false"
  elseif t == "number" then
    out[n] = encode_number(v)
  elseif t == "string" then
    out[n] = encode_string(v)
  elseif t == "table" then
    if getmetatable(v) == ARRAY_MT or is_sequence(v) then
      out[n] = "["
      for i = 1, #v do
        if i > 1 then
          n = n + 1
          out[n] = ","
        end
        n = encode_value(v[i], out, n, depth + 1)
      end
      n = n + 1
      out[n] = "]"
    else
      -- keys that are not strings are written as their tostring
      local keys, values, all_strings = {}, v, true
      for k in pairs(v) do
        keys[#keys + 1] = k
        all_strings = all_strings and type(k) == "string"
      end
      if not all_strings then
        values = {}
        for i, k in ipairs(keys) do
          local key = type(k) == "string" and k or tostring(k)
          keys[i], values[key] = key, v[k]
        end
      end
      table.sort(keys)
      out[n] = "{"
      for i = 1, #keys do
        local key = keys[i]
        n = n + 1
        out[n] = (i > 1 and "," or "") .. encode_string(key) .. ":"
        n = encode_value(values[key], out, n, depth + 1)
      end
      n = n + 1
      out[n] = "}"
    end
  else
    error("cannot encode a " .. t .. " as JSON")
  end
  return n
end

local function encode_json(v)
  local out = {}
  encode_value(v, out, 0, 0)
  return table.concat(out)
end

-- Decoding is cjson's. Because cjson decodes both [] and {} to an empty table, callers that
-- need "an array" also look at the first character of the text (json_kind).
local function decode_json(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    return nil
  end
  return value
end

local function json_kind(text)
  local c = text:match("^%s*(%S)")
  if c == "[" then
    return "array"
  elseif c == "{" then
    return "object"
  end
  return "other"
end

------------------------------------------------------------------------------------------
-- IP addresses: the server's own parser and RFC 5952 formatter, deliberately independent of
-- the client's, so that a canonicalisation bug on one side shows up in tests.
------------------------------------------------------------------------------------------

-- A dotted quad's part: 0..255 in decimal, no leading zero.
local function octet(part)
  if #part > 3 or (#part > 1 and part:byte(1) == 48) then
    return nil
  end
  local n = tonumber(part)
  return n <= 255 and n or nil
end

-- Strict dotted quad: four decimal parts 0..255, no leading zeros, nothing else. Returns the
-- four numbers, or nil.
local function parse_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  a, b, c, d = octet(a), octet(b), octet(c), octet(d)
  if not (a and b and c and d) then
    return nil
  end
  return a, b, c, d
end

-- Colon-separated hex groups (1-4 digits each); the last one may be a dotted IPv4 address
-- (two groups) when v4_tail is allowed. Returns a list of 16-bit numbers or nil.
local function parse_groups(text, v4_tail)
  local groups = {}
  if text == "" then
    return groups
  end
  local parts = {}
  for part in (text .. ":"):gmatch("([^:]*):") do
    parts[#parts + 1] = part
  end
  for i, part in ipairs(parts) do
    if v4_tail and i == #parts and part:find(".", 1, true) then
      local a, b, c, d = parse_ipv4(part)
      if not a then
        return nil
      end
      groups[#groups + 1] = a * 256 + b
      groups[#groups + 1] = c * 256 + d
    elseif part:match("^%x%x?%x?%x?$") then
      groups[#groups + 1] = tonumber(part, 16)
    else
      return nil                       -- empty part (stray ':'), too long, not hex, '%zone'
    end
  end
  return groups
end

local function parse_ipv6(s)
  if s:find("%", 1, true) then
    return nil                         -- zone ids (fe80::1%eth0) are not origin addresses
  end
  local dc = s:find("::", 1, true)
  if not dc then
    local groups = parse_groups(s, true)
    if not groups or #groups ~= 8 then
      return nil
    end
    return groups
  end
  if s:find("::", dc + 1, true) then
    return nil                         -- two '::' (this also rejects ':::')
  end
  -- Only the part after '::' can end the address, so only it may carry the IPv4 tail.
  local head = parse_groups(s:sub(1, dc - 1), false)
  local tail = parse_groups(s:sub(dc + 2), true)
  if not head or not tail or #head + #tail > 7 then
    return nil                         -- '::' stands for at least one zero group
  end
  local groups = head
  for _ = 1, 8 - #head - #tail do
    groups[#groups + 1] = 0
  end
  for _, g in ipairs(tail) do
    groups[#groups + 1] = g
  end
  return groups
end

local function format_ipv6(g)
  if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0 and g[6] == 0xffff then
    -- RFC 5952 section 5: IPv4-mapped addresses keep the dotted tail.
    return string.format("::ffff:%d.%d.%d.%d", g[7] >> 8, g[7] & 0xff, g[8] >> 8, g[8] & 0xff)
  end
  -- The longest run of two or more zero groups becomes '::'; on a tie the first one wins
  -- (strict '>' below); a lone zero group stays '0'.
  local best_start, best_len = nil, 1
  local i = 1
  while i <= 8 do
    if g[i] == 0 then
      local j = i
      while j <= 8 and g[j] == 0 do
        j = j + 1
      end
      if j - i > best_len then
        best_start, best_len = i, j - i
      end
      i = j
    else
      i = i + 1
    end
  end
  local hex = {}
  for k = 1, 8 do
    hex[k] = string.format("%x", g[k])
  end
  if not best_start then
    return table.concat(hex, ":")
  end
  return table.concat(hex, ":", 1, best_start - 1) .. "::"
    .. table.concat(hex, ":", best_start + best_len, 8)
end

-- The canonical text of an IP address, or nil when the string is not one.
local function canonical_ip(s)
  if type(s) ~= "string" or #s == 0 or #s > 64 then
    return nil
  end
  if s:find(":", 1, true) then
    local groups = parse_ipv6(s)
    return groups and format_ipv6(groups)
  end
  -- a strict dotted quad is its own canonical text (no leading zeros, nothing around it)
  return parse_ipv4(s) and s or nil
end

------------------------------------------------------------------------------------------
-- Small helpers
------------------------------------------------------------------------------------------

local function rfc3339_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local function http_date()
  return os.date("!%a, %d %b %Y %H:%M:%S GMT")
end

local function valid_zone_id(id)
  return #id >= 1 and #id <= 32 and id:match("^[0-9A-Za-z]+$") ~= nil
end

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

local function has_token(list, token)
  for t in list:lower():gmatch("[^,%s]+") do
    if t == token then
      return true
    end
  end
  return false
end

-- Validation helpers: invalid() raises a marked error that validated() turns into nil, msg;
-- any other error is a bug and propagates.
local function invalid(fmt, ...)
  error({ invalid = string.format(fmt, ...) }, 0)
end

local function validated(fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then
    return res
  end
  if type(res) == "table" and res.invalid then
    return nil, res.invalid
  end
  error(res, 0)
end

local function absent(v)
  return v == nil or v == NULL
end

local function check_list(v, what)
  if type(v) ~= "table" or (next(v) ~= nil and not is_sequence(v)) then
    invalid("%s must be a JSON array", what)
  end
  return v
end

local function check_string(v, what, nonempty)
  if type(v) ~= "string" or (nonempty and v == "") then
    invalid("%s must be a%s string", what, nonempty and " non-empty" or "")
  end
  return v
end

local function check_int(v, what, min, max)
  if absent(v) then
    return nil
  end
  local n = type(v) == "number" and math.tointeger(v)
  if not n or n < min or (max and n > max) then
    invalid("%s must be an integer %s", what, max and ("from " .. min .. " to " .. max) or (">= " .. min))
  end
  return n
end

------------------------------------------------------------------------------------------
-- Zone state. A zone is { id =, mappings = { {ip=, region=, vendor=, modified_on=}, ... },
-- modified_on = }; mappings keep their insertion order.
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
  local ip = canonical_ip(text)
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

local function mappings_from_list(list, where, default_time)
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

local function new_zone(id, mappings)
  return { id = id, mappings = mappings, modified_on = latest_modified(mappings) }
end

local function copy_mappings(mappings)
  local out = {}
  for i, m in ipairs(mappings) do
    out[i] = { ip = m.ip, region = m.region, vendor = m.vendor, modified_on = m.modified_on }
  end
  return out
end

-- The zone's mappings, in order. bulk_delete only marks what it removes (zone.dead), so
-- that a batch costs O(batch), not O(zone): the fake must not be what a benchmark
-- measures. The list is compacted here, once, when somebody reads it.
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

-- The mapping of an IP, from an index by IP built on first use. Whoever removes mappings
-- removes them from zone.index too.
local function zone_find(zone, ip)
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

-- The control API's view of a zone (always with the hyphenated key).
local function zone_listing(zone)
  local out = array()
  for i, m in ipairs(zone and live(zone) or {}) do
    out[i] = { ["origin-ip"] = m.ip, region = m.region, vendor = m.vendor, modified_on = m.modified_on }
  end
  return out
end

-- Normalises a seed ({"zones": {"<id>": [mapping, ...]}}) into { [id] = mappings }.
local function load_seed(seed, source)
  return validated(function()
    if type(seed) ~= "table" or type(seed.zones) ~= "table" then
      invalid('%s: expected an object {"zones": {"<zone_id>": [...]}}', source)
    end
    local zones = {}
    for id, list in pairs(seed.zones) do
      if type(id) ~= "string" or not valid_zone_id(id) then
        invalid("%s: invalid zone id '%s' (1 to 32 letters or digits)", source, tostring(id))
      end
      zones[id] = mappings_from_list(list, source .. ": zone " .. id, rfc3339_now())
    end
    return zones
  end)
end

local function sandbox_seed()
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
  return { zones = { [SANDBOX_ZONE] = list } }
end

local function read_seed_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    error("cannot read seed file: " .. tostring(err), 0)
  end
  local text = f:read("a")
  f:close()
  local seed = decode_json(text or "")
  if seed == nil then
    error("seed file " .. path .. " is not valid JSON", 0)
  end
  return seed
end

------------------------------------------------------------------------------------------
-- Supported vendors and regions: what GET .../supported_regions lists and what create, edit
-- and bulk_edit validate against (exposed as M.SUPPORTED_REGIONS and read per request, so a
-- change to its contents applies to both). Every region of the sandbox seed must be listed here.
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

-- nil when the vendor supports the region; else the code and message create/edit answer
-- with, and the short per-item error of bulk_edit.
local function region_problem(vendor, region)
  local list = SUPPORTED_REGIONS[vendor]
  if type(list) ~= "table" then
    return 1146, "unsupported vendor: " .. vendor, "unsupported vendor"
  end
  for _, r in ipairs(list) do
    if r.name == region then
      return nil
    end
  end
  return 1147, string.format("unsupported region %s for vendor %s", region, vendor), "unsupported region"
end

------------------------------------------------------------------------------------------
-- Cloudflare envelopes and the API routes
------------------------------------------------------------------------------------------

local function ok(result)
  return 200, { success = true, errors = array(), messages = array(), result = result }
end

local function fail_with(status, errors)
  return status, { success = false, errors = array(errors), messages = array(), result = NULL }
end

local function fail(status, code, message)
  return fail_with(status, { { code = code, message = message } })
end

-- The "setting" shape shared by every endpoint of the family except supported_regions.
local function setting(value, modified_on)
  return { id = SETTING_ID, editable = true, modified_on = modified_on or NULL, value = value }
end

-- DELETE /zones/{zone_id}/cache/origin_cloud_regions/batch, body ["ip", ...] (1..100).
local function bulk_delete(req, zone)
  local body = req.body
  local items = decode_json(body)
  local problem
  if items == nil then
    problem = "the body is not valid JSON"
  elseif type(items) ~= "table" or json_kind(body) ~= "array" then
    problem = "expected a JSON array of IP address strings"
  elseif #items == 0 then
    problem = "the array is empty; send 1 to 100 IP addresses"
  elseif #items > MAX_BATCH then
    problem = string.format("%d items; at most %d IP addresses per request", #items, MAX_BATCH)
  else
    for i, v in ipairs(items) do
      if type(v) ~= "string" then
        problem = string.format("item %d of the array is not a string", i)
        break
      end
    end
  end
  if problem then
    return fail(400, 1198, "Invalid request body: " .. problem)
  end

  local key = req.wire_key
  local succeeded, failed = array(), array()
  for _, text in ipairs(items) do
    local ip = canonical_ip(text)
    local m = ip and zone_find(zone, ip)
    if not ip then
      failed[#failed + 1] = { [key] = text, error = "invalid IP address" }
    elseif not m then
      -- also the second occurrence of an IP listed twice: it is gone by then
      failed[#failed + 1] = { [key] = ip, error = "mapping not found" }
    else
      zone.dead = zone.dead or {}
      zone.dead[m] = true
      zone.index[ip] = nil
      succeeded[#succeeded + 1] = { [key] = ip, region = m.region, vendor = m.vendor }
    end
  end
  local modified_on
  if #succeeded > 0 then
    modified_on = req.now
    zone.modified_on = modified_on
  end
  return ok(setting({ succeeded = succeeded, failed = failed }, modified_on))
end

local NOT_FOUND = "origin cloud region mapping not found"
local INVALID_IP = "invalid IP address"

-- A stored mapping as the API shows it: the address under the configured wire key, and
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

local function limit_reached(req)
  return fail(403, 1164, string.format("mapping limit reached (%d)", req.server.options.max_mappings))
end

-- Creates or updates (in place, keeping its position) the mapping of a canonical IP and
-- stamps it with the request time. Returns the mapping, or nil when the IP is new and the
-- zone already holds max_mappings.
local function upsert(req, zone, ip, region, vendor)
  local m = zone_find(zone, ip)
  if not m then
    if #live(zone) >= req.server.options.max_mappings then
      return nil
    end
    m = { ip = ip }
    zone.mappings[#zone.mappings + 1] = m
    zone.index[ip] = m
  end
  m.region, m.vendor, m.modified_on = region, vendor, req.now
  zone.modified_on = req.now
  return m
end

-- Why a decoded value is not a request mapping {"ip", "region", "vendor"} (string values;
-- other fields are ignored), or nil when it is one.
local function mapping_shape_problem(obj)
  if type(obj) ~= "table" or is_sequence(obj) then
    return "not a JSON object"
  end
  for _, field in ipairs({ "ip", "region", "vendor" }) do
    if absent(obj[field]) then
      return string.format('"%s" is required', field)
    elseif type(obj[field]) ~= "string" then
      return string.format('"%s" must be a string', field)
    end
  end
  return nil
end

-- The body of create and edit. Returns ip (canonical), region, vendor, or nil, status, envelope.
local function mapping_body(req)
  local obj = decode_json(req.body)
  local problem
  if obj == nil then
    problem = "the body is not valid JSON"
  elseif type(obj) ~= "table" or json_kind(req.body) ~= "object" then
    problem = 'expected a JSON object {"ip", "region", "vendor"}'
  else
    problem = mapping_shape_problem(obj)
  end
  if problem then
    return nil, fail(400, 1198, "Invalid request body: " .. problem)
  end
  local ip = canonical_ip(obj.ip)
  if not ip then
    return nil, fail(400, 1140, INVALID_IP)
  end
  local code, message = region_problem(obj.vendor, obj.region)
  if code then
    return nil, fail(400, code, message)
  end
  return ip, obj.region, obj.vendor
end

-- The canonical IP of the path, or nil, status, envelope.
local function path_ip(req)
  local ip = canonical_ip(req.params[1])
  if not ip then
    return nil, fail(400, 1140, INVALID_IP)
  end
  return ip
end

-- GET /zones/{zone_id}/cache/origin_cloud_regions: every mapping, in insertion order.
local function list_mappings(req, zone)
  return ok(setting(wire_list(zone, req.wire_key), latest_modified(live(zone))))
end

-- GET /zones/{zone_id}/cache/origin_cloud_regions/{ip}
local function get_one(req, zone)
  local ip, status, env = path_ip(req)
  if not ip then
    return status, env
  end
  local m = zone_find(zone, ip)
  if not m then
    return fail(404, 1142, NOT_FOUND)
  end
  return ok(setting(wire_mapping(m, req.wire_key), m.modified_on))
end

-- POST /zones/{zone_id}/cache/origin_cloud_regions, body {"ip", "region", "vendor"}.
local function create(req, zone)
  local ip, region, vendor = mapping_body(req)
  if not ip then
    return region, vendor                      -- status, envelope
  end
  if zone_find(zone, ip) then
    return fail(400, 1145, "mapping already exists for this IP")
  end
  local m = upsert(req, zone, ip, region, vendor)
  if not m then
    return limit_reached(req)
  end
  return ok(setting(wire_mapping(m, req.wire_key), m.modified_on))
end

-- PATCH /zones/{zone_id}/cache/origin_cloud_regions, body {"ip", "region", "vendor"}: upsert
-- one mapping; the value is the whole list afterwards.
local function edit(req, zone)
  local ip, region, vendor = mapping_body(req)
  if not ip then
    return region, vendor
  end
  if not upsert(req, zone, ip, region, vendor) then
    return limit_reached(req)
  end
  return ok(setting(wire_list(zone, req.wire_key), req.now))
end

-- DELETE /zones/{zone_id}/cache/origin_cloud_regions/{ip}: the value is the mapping deleted.
local function delete_one(req, zone)
  local ip, status, env = path_ip(req)
  if not ip then
    return status, env
  end
  local m = zone_find(zone, ip)
  if not m then
    return fail(404, 1163, NOT_FOUND)
  end
  for i, other in ipairs(live(zone)) do
    if other == m then
      table.remove(zone.mappings, i)
      break
    end
  end
  zone.index[ip] = nil
  zone.modified_on = req.now
  return ok(setting(wire_mapping(m, req.wire_key), req.now))
end

-- PATCH /zones/{zone_id}/cache/origin_cloud_regions/batch, body [{"ip", "region", "vendor"},
-- ...] (1..100). A body of the wrong shape fails as a whole; items that are well-formed but
-- invalid (address, vendor, region, the limit) fail one by one, in order.
local function bulk_edit(req, zone)
  local body = req.body
  local items = decode_json(body)
  local problem
  if items == nil then
    problem = "the body is not valid JSON"
  elseif type(items) ~= "table" or json_kind(body) ~= "array" then
    problem = 'expected a JSON array of objects {"ip", "region", "vendor"}'
  elseif #items == 0 then
    problem = "the array is empty; send 1 to 100 mappings"
  elseif #items > MAX_BATCH then
    problem = string.format("%d items; at most %d mappings per request", #items, MAX_BATCH)
  else
    for i, v in ipairs(items) do
      local why = mapping_shape_problem(v)
      if why then
        problem = string.format("item %d of the array: %s", i, why)
        break
      end
    end
  end
  if problem then
    return fail(400, 1198, "Invalid request body: " .. problem)
  end

  local key = req.wire_key
  local succeeded, failed = array(), array()
  for _, item in ipairs(items) do
    local ip = canonical_ip(item.ip)
    if not ip then
      failed[#failed + 1] = { [key] = item.ip, error = INVALID_IP }
    else
      local _, _, why = region_problem(item.vendor, item.region)
      local m = not why and upsert(req, zone, ip, item.region, item.vendor)
      if m then
        succeeded[#succeeded + 1] = wire_mapping(m, key, true)
      else
        failed[#failed + 1] = { [key] = ip, error = why or "mapping limit reached" }
      end
    end
  end
  return ok(setting({ succeeded = succeeded, failed = failed }, #succeeded > 0 and req.now or nil))
end

-- GET /zones/{zone_id}/cache/origin_cloud_regions/supported_regions (not the setting shape).
local function supported_regions()
  local vendors = {}
  for vendor, entries in pairs(SUPPORTED_REGIONS) do
    local out = array()
    for i, r in ipairs(entries) do
      out[i] = { name = r.name, upper_tier_colos = array({ table.unpack(r.upper_tier_colos) }) }
    end
    vendors[vendor] = out
  end
  return ok({ obtained_codes = true, vendors = vendors })
end

-- API routes, tried in order (so /batch and /supported_regions come before /{ip}; a known
-- path with an unlisted method is 405). `path` is a Lua pattern matched against the path
-- after /client/v4; its first capture is the zone id, further captures are percent-decoded
-- into req.params. A handler(req, zone) returns status, envelope (use ok/fail/setting); req
-- has method, path, query, headers, body, params, now (RFC 3339), wire_key and server.
local API_ROUTES = {
  { path = "^/zones/([^/]*)/cache/origin_cloud_regions$",
    methods = { GET = list_mappings, POST = create, PATCH = edit } },
  { path = "^/zones/([^/]*)/cache/origin_cloud_regions/batch$",
    methods = { PATCH = bulk_edit, DELETE = bulk_delete } },
  { path = "^/zones/([^/]*)/cache/origin_cloud_regions/supported_regions$",
    methods = { GET = supported_regions } },
  { path = "^/zones/([^/]*)/cache/origin_cloud_regions/([^/]+)$",
    methods = { GET = get_one, DELETE = delete_one } },
}

------------------------------------------------------------------------------------------
-- Faults
------------------------------------------------------------------------------------------

local FAULT_FIELDS = {
  match = true, skip = true, times = true, status = true, errors = true, body = true,
  content_type = true, delay = true, drop = true, malformed = true, truncate = true,
  headers = true, body_override = true, oversize = true,
}

local MAX_OVERSIZE = 1 << 40

local HEADER_NAME = "^[%w!#$%%&'*+.^_`|~-]+$"

local function normalize_fault(raw, where)
  if type(raw) ~= "table" or (next(raw) ~= nil and is_sequence(raw)) then
    invalid("%s is not a JSON object", where)
  end
  for k in pairs(raw) do
    if not FAULT_FIELDS[k] then
      invalid("%s: unknown field '%s'", where, tostring(k))
    end
  end
  local f = {}
  if not absent(raw.match) then
    local m = raw.match
    if type(m) ~= "table" then
      invalid("%s: match must be an object", where)
    end
    for k in pairs(m) do
      if k ~= "method" and k ~= "path" then
        invalid("%s: match: unknown field '%s'", where, tostring(k))
      end
    end
    if not absent(m.method) then
      f.method = check_string(m.method, where .. ": match.method", true):upper()
    end
    if not absent(m.path) then
      f.path = check_string(m.path, where .. ": match.path", true)
      local good, err = pcall(string.find, "", f.path)
      if not good then
        invalid("%s: match.path is not a valid Lua pattern: %s", where, tostring(err))
      end
    end
  end
  f.skip = check_int(raw.skip, where .. ": skip", 0) or 0
  f.times = check_int(raw.times, where .. ": times", 1) or 1
  f.status = check_int(raw.status, where .. ": status", 200, 599)
  f.oversize = check_int(raw.oversize, where .. ": oversize", 0, MAX_OVERSIZE)
  if not absent(raw.errors) then
    f.errors = array()
    for i, e in ipairs(check_list(raw.errors, where .. ": errors")) do
      local w = string.format("%s: errors[%d]", where, i)
      if type(e) ~= "table" then
        invalid("%s must be an object {code, message}", w)
      end
      local code = check_int(e.code, w .. ".code", 0)
      if not code then
        invalid("%s.code is required", w)
      end
      f.errors[i] = { code = code, message = absent(e.message) and "" or check_string(e.message, w .. ".message") }
      if not absent(e.documentation_url) then
        f.errors[i].documentation_url = check_string(e.documentation_url, w .. ".documentation_url")
      end
    end
  end
  for _, k in ipairs({ "body", "content_type", "body_override" }) do
    if not absent(raw[k]) then
      f[k] = check_string(raw[k], where .. ": " .. k)
    end
  end
  if not absent(raw.delay) then
    local d = raw.delay
    if type(d) ~= "number" or d ~= d or d < 0 or d == math.huge then
      invalid("%s: delay must be a number of seconds >= 0", where)
    end
    f.delay = d
  end
  if not absent(raw.drop) then
    if raw.drop ~= "before" and raw.drop ~= "after" then
      invalid('%s: drop must be "before" or "after"', where)
    end
    f.drop = raw.drop
  end
  for _, k in ipairs({ "malformed", "truncate" }) do
    if not absent(raw[k]) then
      if type(raw[k]) ~= "boolean" then
        invalid("%s: %s must be true or false", where, k)
      end
      f[k] = raw[k] or nil
    end
  end
  if not absent(raw.headers) then
    if type(raw.headers) ~= "table" or is_sequence(raw.headers) then
      invalid("%s: headers must be an object {name: value}", where)
    end
    f.headers = {}
    for name, value in pairs(raw.headers) do
      if type(name) ~= "string" or not name:match(HEADER_NAME) then
        invalid("%s: headers: invalid header name '%s'", where, tostring(name))
      end
      if type(value) == "number" then
        value = encode_number(value)
      elseif type(value) ~= "string" or value:find("[\r\n]") then
        invalid("%s: headers: the value of '%s' must be a one-line string", where, name)
      end
      f.headers[name] = value
    end
  end
  if f.body and f.errors then
    invalid("%s: give either body or errors, not both", where)
  end
  if f.body_override and (f.body or f.errors) then
    invalid("%s: body_override replaces the real response; it cannot go with body or errors", where)
  end
  if f.oversize and (f.body or f.errors or f.body_override or f.malformed) then
    invalid("%s: oversize replaces the real response; it cannot go with body, errors, body_override "
      .. "or malformed", where)
  end
  -- A fault that defines the response itself answers without touching state.
  f.synthetic = f.body ~= nil or f.errors ~= nil
    or (f.status ~= nil and not f.body_override and not f.malformed and not f.oversize)
  return f
end

-- What GET /__fake/faults shows: the fault as normalised, with its remaining skip/times.
local function fault_view(f)
  local v = {
    id = f.id, skip = f.skip, times = f.times, status = f.status, errors = f.errors,
    body = f.body, content_type = f.content_type, body_override = f.body_override,
    delay = f.delay, drop = f.drop, malformed = f.malformed, truncate = f.truncate,
    headers = f.headers, oversize = f.oversize,
  }
  if f.method or f.path then
    v.match = { method = f.method, path = f.path }
  end
  return v
end

local function fault_matches(f, req)
  return (not f.method or f.method == req.method) and (not f.path or req.path:find(f.path) ~= nil)
end

local RATE_LIMITED = { code = 971, message = "Please wait and consider throttling your request speed" }

local DEFAULT_FAULT_ERRORS = {
  [429] = RATE_LIMITED,
}

local function fault_response(f)
  if f.body then
    return { status = f.status or 200, body = f.body, content_type = f.content_type }
  end
  local status = f.status or 500
  local errors = f.errors
    or { DEFAULT_FAULT_ERRORS[status] or { code = 1141, message = INTERNAL_ERROR } }
  local _, env = fail_with(status, errors)
  return { status = status, body = encode_json(env), content_type = f.content_type }
end

-- Half of the body plus something no JSON parser accepts.
local function garble(body)
  return body:sub(1, #body // 2) .. "#<garbage>"
end

------------------------------------------------------------------------------------------
-- Options that the control API may change at run time
------------------------------------------------------------------------------------------

local function copy_options(o)
  local tokens = {}
  for i, t in ipairs(o.tokens) do
    tokens[i] = t
  end
  local rate_limit = o.rate_limit and { requests = o.rate_limit.requests, per = o.rate_limit.per }
  return {
    wire_key = o.wire_key, latency = o.latency, tokens = tokens, email = o.email, key = o.key,
    max_mappings = o.max_mappings, rate_limit = rate_limit,
  }
end

local function options_view(o)
  local v = copy_options(o)
  v.tokens = array(v.tokens)
  v.email = v.email or NULL
  v.key = v.key or NULL
  v.rate_limit = v.rate_limit or NULL
  return v
end

local MIN_RATE_WINDOW = 0.001       -- seconds; Ratelimit-Policy writes w= with 3 decimals

-- {"requests": N >= 1, "per": seconds >= 0.001} or null (off). Returns the table or nil.
local function check_rate_limit(v)
  if absent(v) then
    return nil
  end
  if type(v) ~= "table" or (next(v) ~= nil and is_sequence(v)) then
    invalid('rate_limit must be null or an object {"requests": N, "per": seconds}')
  end
  for k in pairs(v) do
    if k ~= "requests" and k ~= "per" then
      invalid("rate_limit: unknown field '%s' (known: requests, per)", tostring(k))
    end
  end
  local requests = check_int(v.requests, "rate_limit.requests", 1)
  if not requests then
    invalid("rate_limit.requests is required")
  end
  local per = v.per
  if type(per) ~= "number" or per ~= per or per < MIN_RATE_WINDOW or per == math.huge then
    invalid("rate_limit.per must be a number of seconds >= %g", MIN_RATE_WINDOW)
  end
  return { requests = requests, per = math.tointeger(per) or per }
end

-- Returns the options after applying patch (a decoded JSON object); raises invalid().
local function patch_options(current, patch)
  if type(patch) ~= "table" or (next(patch) ~= nil and is_sequence(patch)) then
    invalid("expected a JSON object of options")
  end
  local o = copy_options(current)
  for k, v in pairs(patch) do
    if k == "wire_key" then
      if v ~= "origin-ip" and v ~= "origin_ip" then
        invalid('wire_key must be "origin-ip" or "origin_ip"')
      end
      o.wire_key = v
    elseif k == "latency" then
      if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
        invalid("latency must be a number of seconds >= 0")
      end
      o.latency = v
    elseif k == "tokens" then
      o.tokens = {}
      for i, t in ipairs(check_list(v, "tokens")) do
        o.tokens[i] = check_string(t, "tokens[" .. i .. "]", true)
      end
    elseif k == "email" or k == "key" then
      o[k] = not absent(v) and check_string(v, k, true) or nil
    elseif k == "max_mappings" then
      o.max_mappings = check_int(v, "max_mappings", 0)
      if not o.max_mappings then
        invalid("max_mappings must be an integer >= 0")
      end
    elseif k == "rate_limit" then
      o.rate_limit = check_rate_limit(v)
    else
      invalid("unknown option '%s' (known: wire_key, latency, tokens, email, key, max_mappings, rate_limit)",
        tostring(k))
    end
  end
  return o
end

------------------------------------------------------------------------------------------
-- The control API (/__fake/...). A handler(server, req, captures...) returns status, value
-- and optionally "shutdown"; value is encoded as JSON. Errors are {"ok":false,"error":...}.
------------------------------------------------------------------------------------------

local function ctl_error(status, message)
  return status, { ok = false, error = message }
end

local function decode_body(req, kind)
  local v = decode_json(req.body)
  if v == nil then
    return nil, "request body is not valid JSON"
  end
  if kind and (type(v) ~= "table" or json_kind(req.body) ~= kind) then
    return nil, "request body must be a JSON " .. kind
  end
  return v
end

-- by_status: { ["200"] = n, ... }; in_flight: API requests being answered now (latency and
-- delays included), peak_in_flight its highest value: how concurrent the clients really were.
local function new_stats()
  return { requests = 0, by_status = {}, in_flight = 0, peak_in_flight = 0 }
end

local CONTROL_ROUTES = {
  { path = "^/__fake/requests$", methods = {
    GET = function(server)
      return 200, server.requests
    end,
    DELETE = function(server)
      local n = #server.requests
      server.requests = array()
      return 200, { ok = true, cleared = n }
    end,
  } },
  { path = "^/__fake/zones$", methods = {
    GET = function(server)
      local all = {}
      for id, zone in pairs(server.zones) do
        all[id] = zone_listing(zone)
      end
      return 200, all
    end,
  } },
  { path = "^/__fake/zones/([^/]*)$", methods = {
    GET = function(server, _, id)
      return 200, zone_listing(server.zones[id])
    end,
    PUT = function(server, req, id)
      if not valid_zone_id(id) then
        return ctl_error(400, "invalid zone id '" .. id .. "' (1 to 32 letters or digits)")
      end
      local list, err = decode_body(req, "array")
      if not list then
        return ctl_error(400, err)
      end
      local mappings, problem = validated(mappings_from_list, list, "zone " .. id, rfc3339_now())
      if not mappings then
        return ctl_error(400, problem)
      end
      server.zones[id] = new_zone(id, mappings)
      return 200, zone_listing(server.zones[id])
    end,
  } },
  { path = "^/__fake/faults$", methods = {
    GET = function(server)
      local out = array()
      for i, f in ipairs(server.faults) do
        out[i] = fault_view(f)
      end
      return 200, out
    end,
    POST = function(server, req)
      local v, err = decode_body(req)
      if v == nil then
        return ctl_error(400, err)
      end
      local list = json_kind(req.body) == "array" and v or { v }
      local added, ids = {}, array()
      for i, raw in ipairs(list) do
        local f, problem = validated(normalize_fault, raw, "fault " .. i)
        if not f then
          return ctl_error(400, problem)   -- nothing queued unless all are valid
        end
        added[i] = f
      end
      for _, f in ipairs(added) do
        server.next_fault_id = server.next_fault_id + 1
        f.id = server.next_fault_id
        server.faults[#server.faults + 1] = f
        ids[#ids + 1] = f.id
      end
      return 200, { ok = true, added = #added, ids = ids, pending = #server.faults }
    end,
    DELETE = function(server)
      local n = #server.faults
      server.faults = {}
      return 200, { ok = true, cleared = n }
    end,
  } },
  { path = "^/__fake/options$", methods = {
    GET = function(server)
      return 200, options_view(server.options)
    end,
    PUT = function(server, req)
      local patch, err = decode_body(req, "object")
      if patch == nil then
        return ctl_error(400, err)
      end
      local o, problem = validated(patch_options, server.options, patch)
      if not o then
        return ctl_error(400, problem)
      end
      server.options = o
      if patch.rate_limit ~= nil then
        server.rate = {}                 -- a new (or no) limit starts with empty windows
      end
      return 200, options_view(o)
    end,
  } },
  { path = "^/__fake/stats$", methods = {
    GET = function(server)
      return 200, server.stats
    end,
    DELETE = function(server)
      server.stats = new_stats()
      return 200, { ok = true }
    end,
  } },
  { path = "^/__fake/reset$", methods = {
    POST = function(server)
      server:reset()
      return 200, { ok = true }
    end,
  } },
  { path = "^/__fake/shutdown$", methods = {
    POST = function()
      return 200, { ok = true }, "shutdown"
    end,
  } },
}

------------------------------------------------------------------------------------------
-- HTTP
------------------------------------------------------------------------------------------

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Content Too Large", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout", [520] = "Web Server Returned an Unknown Error",
  [521] = "Web Server Is Down", [522] = "Connection Timed Out", [524] = "A Timeout Occurred",
}

-- Inside a connection coroutine: park until the socket is ready (true) or the deadline
-- passes (false), or sleep until a time. The scheduler in Server:step does the waking.
local function wait_readable(sock, deadline)
  return coroutine.yield("read", sock, deadline)
end

local function wait_writable(sock, deadline)
  return coroutine.yield("write", sock, deadline)
end

local function sleep_until(t)
  coroutine.yield("sleep", t)
end

------------------------------------------------------------------------------------------
-- The server
------------------------------------------------------------------------------------------

local Server = {}
Server.__index = Server

-- opts: host, port, sandbox (bool), seed (table shaped like a seed file), seed_file (path),
-- tokens (array), email, key, latency (seconds), max_mappings (per zone, default 3500),
-- rate_limit ({ requests =, per = seconds } or nil: off), quiet (bool). Raises on bad values.
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Server)
  self.host = opts.host or "127.0.0.1"
  self.port = opts.port or 0
  self.quiet = opts.quiet and true or false

  local seed_zones = {}
  local function merge(seed, source)
    local zones, err = load_seed(seed, source)
    if not zones then
      error(err, 0)
    end
    for id, mappings in pairs(zones) do
      seed_zones[id] = mappings
    end
  end
  if opts.sandbox then
    merge(sandbox_seed(), "sandbox seed")
  end
  if opts.seed then
    merge(opts.seed, "seed")
  end
  if opts.seed_file then
    merge(read_seed_file(opts.seed_file), opts.seed_file)
  end
  self.seed_zones = seed_zones

  local tokens, email, key = opts.tokens, opts.email, opts.key
  if tokens == nil and email == nil and key == nil then
    tokens, email, key = { "test-token" }, "test@example.com", "test-key"
  end
  local initial, err = validated(patch_options,
    { wire_key = "origin-ip", latency = 0, tokens = {}, max_mappings = DEFAULT_MAX_MAPPINGS },
    { wire_key = opts.wire_key, latency = opts.latency, tokens = tokens, email = email, key = key,
      max_mappings = opts.max_mappings, rate_limit = opts.rate_limit })
  if not initial then
    error(err, 0)
  end
  self.initial_options = initial

  self.next_conn_id, self.next_seq, self.next_fault_id = 0, 0, 0
  self.ray_prefix, self.ray_count = math.random(0, 0xffffffff), 0
  self.readers, self.writers, self.sleepers, self.conns = {}, {}, {}, {}
  self.stopped = false
  self:reset()
  return self
end

-- Back to the initial seed and start-up options; request log, faults, statistics and
-- rate-limit windows cleared.
function Server:reset()
  self.zones = {}
  for id, mappings in pairs(self.seed_zones) do
    self.zones[id] = new_zone(id, copy_mappings(mappings))
  end
  self.requests = array()
  self.faults = {}
  self.options = copy_options(self.initial_options)
  self.stats = new_stats()
  self.rate = {}                   -- credential -> { times = {...}, head =, blocked_until = }
end

function Server:_log(fmt, ...)
  if not self.quiet then
    io.stderr:write("fake-api: ", string.format(fmt, ...), "\n")
  end
end

function Server:_new_ray()
  self.ray_count = self.ray_count + 1
  return string.format("%08x%08x-FAKE", self.ray_prefix, self.ray_count & 0xffffffff)
end

-- Binds the listening socket. Returns host, port, or nil, message.
function Server:listen()
  if self.listener then
    return self.bound_host, self.bound_port
  end
  local sock, err = socket.bind(self.host, self.port, 128)
  if not sock then
    return nil, string.format("cannot listen on %s port %s: %s", self.host, tostring(self.port), tostring(err))
  end
  sock:settimeout(0)
  local host, port = sock:getsockname()
  self.listener = sock
  self.bound_host, self.bound_port = host, math.tointeger(tonumber(port))
  return self.bound_host, self.bound_port
end

-- Runs until POST /__fake/shutdown (or server.stopped is set), then closes everything.
function Server:serve()
  if not self.listener then
    local host, err = self:listen()
    if not host then
      return nil, err
    end
  end
  while not self.stopped do
    self:step(5)
  end
  self:close()
  return true
end

function Server:close()
  self.stopped = true
  for conn in pairs(self.conns) do
    conn.sock:close()
  end
  self.conns, self.readers, self.writers, self.sleepers = {}, {}, {}, {}
  if self.listener then
    self.listener:close()
    self.listener = nil
  end
end

function Server:_close_conn(conn)
  self.readers[conn.sock] = nil
  self.writers[conn.sock] = nil
  self.conns[conn] = nil
  conn.sock:close()
end

-- Resumes a connection coroutine and files it under whatever it waits for next.
function Server:_resume(conn, ...)
  local good, op, a, b = coroutine.resume(conn.co, ...)
  if not good then
    self:_log("connection %d: internal error: %s", conn.id, debug.traceback(conn.co, tostring(op)))
    self:_close_conn(conn)
  elseif coroutine.status(conn.co) == "dead" then
    self:_close_conn(conn)
  elseif op == "read" then
    self.readers[a] = { conn = conn, deadline = b }
  elseif op == "write" then
    self.writers[a] = { conn = conn, deadline = b }
  elseif op == "sleep" then
    self.sleepers[#self.sleepers + 1] = { conn = conn, wake = a }
  else
    self:_log("connection %d: unexpected yield %s", conn.id, tostring(op))
    self:_close_conn(conn)
  end
end

function Server:_accept_all()
  while true do
    local sock = self.listener:accept()
    if not sock then
      return
    end
    sock:settimeout(0)
    sock:setoption("tcp-nodelay", true)
    self.next_conn_id = self.next_conn_id + 1
    local conn = { id = self.next_conn_id, sock = sock, buf = "" }
    conn.co = coroutine.create(function()
      self:_serve_connection(conn)
    end)
    self.conns[conn] = true
    self:_resume(conn)
  end
end

-- One scheduler iteration: wait up to `timeout` seconds (nil: until something happens) for
-- a socket event or a timer, then run every coroutine that can proceed.
function Server:step(timeout)
  if not self.listener then
    error("step() before listen()", 2)
  end
  local now = gettime()
  local wait = timeout
  local function until_(t)
    local d = math.max(t - now, 0)
    if not wait or d < wait then
      wait = d
    end
  end
  for _, s in ipairs(self.sleepers) do
    until_(s.wake)
  end
  local recvt, sendt = { self.listener }, {}
  for sock, w in pairs(self.readers) do
    recvt[#recvt + 1] = sock
    until_(w.deadline)
  end
  for sock, w in pairs(self.writers) do
    sendt[#sendt + 1] = sock
    until_(w.deadline)
  end

  local readable, writable = socket.select(recvt, sendt, wait)
  for _, sock in ipairs(readable or {}) do
    if sock == self.listener then
      self:_accept_all()
    else
      local w = self.readers[sock]
      if w then
        self.readers[sock] = nil
        self:_resume(w.conn, true)
      end
    end
  end
  for _, sock in ipairs(writable or {}) do
    local w = self.writers[sock]
    if w then
      self.writers[sock] = nil
      self:_resume(w.conn, true)
    end
  end

  -- Timers: due sleepers (earliest first), then I/O waits whose deadline has passed.
  now = gettime()
  local due, later = {}, {}
  for _, s in ipairs(self.sleepers) do
    if s.wake <= now then
      due[#due + 1] = s
    else
      later[#later + 1] = s
    end
  end
  self.sleepers = later
  table.sort(due, function(x, y)
    return x.wake < y.wake
  end)
  for _, s in ipairs(due) do
    self:_resume(s.conn)
  end
  local expired = {}
  for _, waits in ipairs({ self.readers, self.writers }) do
    for sock, w in pairs(waits) do
      if w.deadline <= now then
        waits[sock] = nil
        expired[#expired + 1] = w.conn
      end
    end
  end
  for _, conn in ipairs(expired) do
    self:_resume(conn, false)
  end
end

-- Appends whatever the socket has (up to 64 KiB) to conn.buf. Returns true, or nil, err.
local function fill(conn, deadline)
  while true do
    if conn.eof then
      return nil, "closed"
    end
    local data, err, partial = conn.sock:receive(65536)
    local chunk = data or partial
    if err == "closed" then
      conn.eof = true
    end
    if chunk and #chunk > 0 then
      conn.buf = conn.buf .. chunk
      return true
    end
    if err ~= "timeout" and err ~= "closed" then
      return nil, err
    end
    if err == "timeout" and not wait_readable(conn.sock, deadline) then
      return nil, "timeout"
    end
  end
end

-- Exactly n bytes: first from conn.buf, then from the socket, collected in a table so that
-- a 16 MiB body is not copied over and over.
local function read_body(conn, n, deadline)
  local have = conn.buf
  if #have >= n then
    conn.buf = have:sub(n + 1)
    return have:sub(1, n)
  end
  conn.buf = ""
  local parts, got = { have }, #have
  while got < n do
    if conn.eof then
      return nil, "closed"
    end
    local data, err, partial = conn.sock:receive(math.min(n - got, 1 << 20))
    local chunk = data or partial
    if chunk and #chunk > 0 then
      parts[#parts + 1] = chunk
      got = got + #chunk
    end
    if err == "closed" then
      conn.eof = true
    elseif err == "timeout" then
      if (not chunk or #chunk == 0) and not wait_readable(conn.sock, deadline) then
        return nil, "timeout"
      end
    elseif err then
      return nil, err
    end
  end
  return table.concat(parts)
end

local function write_all(conn, data)
  local deadline = gettime() + IDLE_TIMEOUT
  local i = 1
  while i <= #data do
    local last, err, sent = conn.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = sent + 1
      if not wait_writable(conn.sock, deadline) then
        return nil, "timeout"
      end
    else
      return nil, err
    end
  end
  return true
end

-- Reads one request. Returns req, or nil, status, message for a malformed one (answered with
-- that status, then the connection closes), or nil, nil, reason when the peer went away.
local function read_request(conn)
  local deadline = gettime() + IDLE_TIMEOUT
  local head
  while true do
    conn.buf = conn.buf:gsub("^[\r\n]+", "")     -- blank lines before a request are allowed
    local s, e = conn.buf:find("\r?\n\r?\n")
    if s then
      if e > MAX_HEAD then
        break
      end
      head, conn.buf = conn.buf:sub(1, s - 1), conn.buf:sub(e + 1)
      break
    end
    if #conn.buf > MAX_HEAD then
      break
    end
    local good, err = fill(conn, deadline)
    if not good then
      return nil, nil, err
    end
  end
  if not head then
    return nil, 400, "the request header section is larger than 64 KiB"
  end

  local lines = {}
  for line in (head .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = (line:gsub("\r$", ""))
  end
  local method, target, major, minor = lines[1]:match("^([%w!#$%%&'*+.^_`|~-]+) (%S+) HTTP/(%d)%.(%d)$")
  if not method or major ~= "1" then
    return nil, 400, "malformed request line"
  end
  local headers = {}
  for i = 2, #lines do
    local line = lines[i]
    local name, value = line:match("^([%w!#$%%&'*+.^_`|~-]+):[ \t]*(.-)[ \t]*$")
    if not name then
      return nil, 400, "malformed header line " .. (i - 1)
    end
    name = name:lower()
    headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
  end

  local path, query = target, nil
  local q = target:find("?", 1, true)
  if q then
    path, query = target:sub(1, q - 1), target:sub(q + 1)
  end
  if path:sub(1, 1) ~= "/" then
    local p = path:match("^%a[%w+.-]*://[^/]*(.*)$")   -- absolute-form, as sent to proxies
    if not p then
      return nil, 400, "malformed request target"
    end
    path = p == "" and "/" or p
  end

  if headers["transfer-encoding"] then
    return nil, 411, "request bodies with Transfer-Encoding are not supported; send Content-Length"
  end
  local length = 0
  if headers["content-length"] then
    local value
    for part in headers["content-length"]:gmatch("[^,]+") do   -- repeated identical values are fine
      local v = part:match("^%s*(%d+)%s*$")
      if not v or (value and v ~= value) then
        return nil, 400, "invalid Content-Length"
      end
      value = v
    end
    if not value then
      return nil, 400, "invalid Content-Length"
    end
    if #value > 9 or tonumber(value) > MAX_BODY then
      return nil, 400, "the request body is larger than 16 MiB"
    end
    length = tonumber(value)
  end

  if length > 0 and #conn.buf < length and has_token(headers.expect or "", "100-continue") then
    local good, err = write_all(conn, "HTTP/1.1 100 Continue\r\n\r\n")
    if not good then
      return nil, nil, err
    end
  end
  local body = ""
  if length > 0 then
    local err
    body, err = read_body(conn, length, deadline)
    if not body then
      return nil, nil, err
    end
  end

  local conn_header = headers.connection or ""
  local keep_alive
  if minor == "0" then
    keep_alive = has_token(conn_header, "keep-alive")
  else
    keep_alive = not has_token(conn_header, "close")
  end
  return {
    method = method, target = target, path = path, query = query, headers = headers,
    body = body, keep_alive = keep_alive, http10 = minor == "0",
  }
end

-- The status line and header section of a response whose body is `length` bytes.
-- resp: status, content_type, extra (header name -> value; replaces a standard header of the
-- same name), ray.
local function response_head(resp, length, keep_alive)
  local fields = {
    { "Date", http_date() },
    { "Content-Type", resp.content_type or "application/json" },
    { "Content-Length", string.format("%d", length) },
    { "cf-ray", resp.ray },
    { "Connection", keep_alive and "keep-alive" or "close" },
  }
  if resp.extra then
    local names = {}
    for name in pairs(resp.extra) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      local replaced = false
      for _, field in ipairs(fields) do
        if field[1]:lower() == name:lower() then
          field[2], replaced = resp.extra[name], true
        end
      end
      if not replaced then
        fields[#fields + 1] = { name, resp.extra[name] }
      end
    end
  end
  local out = { string.format("HTTP/1.1 %d %s\r\n", resp.status, REASONS[resp.status] or "Unknown") }
  for _, field in ipairs(fields) do
    out[#out + 1] = field[1] .. ": " .. field[2] .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- Writes a response (see response_head; resp.body is the body). With truncate, only half the
-- body goes out.
local function send_response(conn, req, resp, keep_alive, truncate)
  local body = resp.body or ""
  local head = response_head(resp, #body, keep_alive)
  if req.method == "HEAD" then
    return write_all(conn, head)
  end
  return write_all(conn, head .. (truncate and body:sub(1, #body // 2) or body))
end

-- The oversize fault's body: OVERSIZE_OPEN, filler, OVERSIZE_CLOSE (a valid envelope whose
-- result is {"padding": "xxx..."}), or the first n bytes of OVERSIZE_OPEN .. OVERSIZE_CLOSE
-- when n is smaller than both.
local OVERSIZE_OPEN = '{"success":true,"errors":[],"messages":[],"result":{"padding":"'
local OVERSIZE_CLOSE = '"}}'
local FILLER = string.rep("x", 1 << 16)

-- Writes a response whose body is n bytes of the above, streamed FILLER-sized chunks at a
-- time so that memory does not grow with n; with truncate, only the first n // 2 bytes go out.
-- Returns true, or nil, err (e.g. when the client closes early).
local function send_oversize(conn, req, resp, n, keep_alive, truncate)
  local head = response_head(resp, n, keep_alive)
  if req.method == "HEAD" then
    return write_all(conn, head)
  end
  local frame = OVERSIZE_OPEN .. OVERSIZE_CLOSE
  local open, filler, close = frame:sub(1, n), 0, ""
  if n >= #frame then
    open, filler, close = OVERSIZE_OPEN, n - #frame, OVERSIZE_CLOSE
  end
  local left = truncate and n // 2 or n            -- body bytes still to send
  open = open:sub(1, left)
  left = left - #open
  local good, err = write_all(conn, head .. open)
  while good and left > 0 and filler > 0 do
    local k = math.min(filler, left, #FILLER)
    good, err = write_all(conn, k == #FILLER and FILLER or FILLER:sub(1, k))
    filler, left = filler - k, left - k
  end
  if good and left > 0 then
    good, err = write_all(conn, close:sub(1, left))
  end
  return good, err
end

-- Answers a request that could not be parsed, then closes "gracefully": half-close and drain
-- what the client is still sending, so the close does not become a TCP reset that destroys
-- the response before the client has read it.
function Server:_reject(conn, status, message)
  self:_log("connection %d: %d %s", conn.id, status, message)
  local _, env = fail(status, 6003, "Invalid request: " .. message)
  if send_response(conn, {}, { status = status, body = encode_json(env), ray = self:_new_ray() }, false) then
    conn.sock:shutdown("send")
    local deadline = gettime() + LINGER_TIME
    while not conn.eof and gettime() < deadline do
      local data, err, partial = conn.sock:receive(65536)
      if err == "timeout" then
        if #partial == 0 and not wait_readable(conn.sock, deadline) then
          break
        end
      elseif not data then
        break                                  -- closed, or a real error
      end
    end
  end
end

function Server:_serve_connection(conn)
  while not self.stopped do
    local req, status, message = read_request(conn)
    if not req then
      if status then
        self:_reject(conn, status, message)
      end
      return
    end
    req.conn = conn.id
    local keep
    if req.path == "/__fake" or req.path:sub(1, 8) == "/__fake/" then
      keep = self:_handle_control(conn, req)
    else
      local stats = self.stats -- the one this request counts in, even if reset meanwhile
      stats.in_flight = stats.in_flight + 1
      stats.peak_in_flight = math.max(stats.peak_in_flight, stats.in_flight)
      local good, result = pcall(self._handle_api, self, conn, req)
      stats.in_flight = stats.in_flight - 1
      if not good then
        error(result, 0)
      end
      keep = result
    end
    if not keep then
      return
    end
  end
end

function Server:_handle_control(conn, req)
  local status, value, after
  for _, route in ipairs(CONTROL_ROUTES) do
    local caps = table.pack(req.path:match(route.path))
    if caps[1] then
      local handler = route.methods[req.method]
      if not handler then
        status, value = ctl_error(405, "method " .. req.method .. " not allowed on " .. req.path)
      else
        local good, s, v, a = xpcall(handler, debug.traceback, self, req, table.unpack(caps, 1, caps.n))
        if good then
          status, value, after = s, v, a
        else
          self:_log("control handler failed: %s", tostring(s))
          status, value = ctl_error(500, tostring(s))
        end
      end
      break
    end
  end
  if not status then
    status, value = ctl_error(404, "no control endpoint " .. req.path)
  end
  local keep = req.keep_alive and after ~= "shutdown"
  send_response(conn, req, { status = status, body = encode_json(value), ray = self:_new_ray() }, keep)
  if after == "shutdown" then
    self:_log("shutting down")
    self.stopped = true
  end
  return keep
end

-- Returns nil, nil, credential (a string naming the token or email/key pair, the rate
-- limit's unit) when the request carries accepted credentials, else status, envelope.
function Server:_authenticate(req)
  local h, o = req.headers, self.options
  local presented = false
  local token = h.authorization and h.authorization:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
  if token then
    presented = true
    for _, t in ipairs(o.tokens) do
      if t == token then
        return nil, nil, "token " .. token
      end
    end
  end
  local email, key = h["x-auth-email"], h["x-auth-key"]
  if email and key and email ~= "" and key ~= "" then
    presented = true
    if email == o.email and key == o.key then
      return nil, nil, "key " .. email .. "\n" .. key
    end
  end
  if presented then
    return fail(403, 10000, "Authentication error")
  end
  return fail(400, 6003, "Invalid request headers")
end

function Server:_route_api(req)
  local status, env = self:_authenticate(req)
  if status then
    return status, env
  end
  local sub = req.path:match("^/client/v4(/.*)$")
  for _, route in ipairs(sub and API_ROUTES or {}) do
    local caps = table.pack(sub:match(route.path))
    if caps[1] then
      local zone_id = caps[1]
      if not valid_zone_id(zone_id) then
        return fail(404, 7003, "Could not route to " .. sub .. ", perhaps your object identifier is invalid?")
      end
      local handler = route.methods[req.method]
      if not handler then
        return fail(405, 10405, "Method not allowed")
      end
      req.params = {}
      for i = 2, caps.n do
        req.params[i - 1] = percent_decode(caps[i])
      end
      req.server, req.now, req.wire_key = self, rfc3339_now(), self.options.wire_key
      local zone = self.zones[zone_id]
      if not zone then
        zone = new_zone(zone_id, {})      -- a valid but unknown zone is simply empty
        self.zones[zone_id] = zone
      end
      return handler(req, zone)
    end
  end
  return fail(404, 7000, "No route for that URI")
end

-- Authentication, routing and the handler, protected: a Lua error becomes a 500 envelope.
function Server:_api_response(req)
  local good, status, body = xpcall(function()
    local s, env = self:_route_api(req)
    return s, encode_json(env)
  end, debug.traceback)
  if not good then
    self:_log("handler error for %s %s: %s", req.method, req.path, tostring(status))
    local _, env = fail(500, 1141, INTERNAL_ERROR)
    return { status = 500, body = encode_json(env) }
  end
  return { status = status, body = body }
end

-- The fault that applies to this request, if any. Every matching fault counts the request
-- against its `skip`, whether or not an earlier fault takes it; at most one fault applies:
-- the first in queue order whose skip is used up.
function Server:_take_fault(req)
  local chosen
  for _, f in ipairs(self.faults) do
    if fault_matches(f, req) then
      if f.skip > 0 then
        f.skip = f.skip - 1
      elseif not chosen then
        chosen = f
        f.times = f.times - 1
      end
    end
  end
  if chosen and chosen.times <= 0 then
    for i, f in ipairs(self.faults) do
      if f == chosen then
        table.remove(self.faults, i)
        break
      end
    end
  end
  return chosen
end

-- Seconds as Ratelimit-Policy writes them: an integer, or up to 3 decimals.
local function format_seconds(x)
  local i = math.tointeger(x)
  if i then
    return string.format("%d", i)
  end
  return (string.format("%.3f", x):gsub("0+$", ""):gsub("%.$", ""))
end

local function rate_headers(limit, remaining, reset)
  return {
    ["Ratelimit"] = string.format('"default";r=%d;t=%d', remaining, reset),
    ["Ratelimit-Policy"] = string.format('"burst";q=%d;w=%s', limit.requests, format_seconds(limit.per)),
  }
end

-- Header fields of `over` replace those of `base` with the same name in any case.
local function merge_headers(base, over)
  local out = {}
  for name, value in pairs(base or {}) do
    out[name] = value
  end
  for name, value in pairs(over) do
    for old in pairs(out) do
      if old:lower() == name:lower() then
        out[old] = nil
      end
    end
    out[name] = value
  end
  return out
end

-- The rate limit, applied to an API request arriving at `now`: a sliding window of
-- options.rate_limit.per seconds per credential holding the times of accepted requests; a
-- request is accepted while fewer than `requests` lie in it. The first refusal blocks the
-- credential for `per` seconds, during which every request is refused. Requests without
-- accepted credentials are neither limited nor counted. Returns the header fields for the
-- response (nil while the limit is off) and, for a refused request, the seconds to wait.
function Server:_rate_check(req, now)
  local limit = self.options.rate_limit
  if not limit then
    return nil
  end
  local _, _, credential = self:_authenticate(req)
  if not credential then
    return rate_headers(limit, limit.requests, 0)
  end
  local w = self.rate[credential]
  if not w then
    w = { times = {}, head = 1, blocked_until = -math.huge }
    self.rate[credential] = w
  end
  local times, head = w.times, w.head
  while times[head] and times[head] <= now - limit.per do
    head = head + 1                            -- left the window
  end
  local last = #times
  if head > 1 and last - head + 1 < head then  -- compact: moves fewer than were dropped
    table.move(times, head, last, 1)
    for i = last - head + 2, last do
      times[i] = nil
    end
    last, head = last - head + 1, 1
  end
  w.head = head
  local count = last - head + 1
  if w.blocked_until > now or count >= limit.requests then
    if w.blocked_until <= now then
      w.blocked_until = now + limit.per
    end
    local wait = math.ceil(w.blocked_until - now)
    local headers = rate_headers(limit, 0, wait)
    headers["Retry-After"] = string.format("%d", wait)
    return headers, wait
  end
  times[last + 1] = now
  local reset = math.max(0, math.ceil(times[head] + limit.per - now))
  return rate_headers(limit, limit.requests - count - 1, reset)
end

-- Notes the status of the response to a logged API request.
function Server:_count_status(record, status)
  record.status = status
  local key = string.format("%d", status)
  self.stats.by_status[key] = (self.stats.by_status[key] or 0) + 1
end

-- Answers a request refused by the rate limit: 429, code 971, without processing it.
function Server:_refuse(conn, req, record, headers, wait)
  if self.options.latency > 0 then
    sleep_until(gettime() + self.options.latency)
  end
  local _, env = fail_with(429, { RATE_LIMITED })
  self:_log("#%d conn %d %s %s -> 429, rate limited for %d s", record.seq, conn.id, req.method, req.path, wait)
  self:_count_status(record, 429)
  local resp = { status = 429, body = encode_json(env), ray = record.cf_ray, extra = headers }
  local sent = send_response(conn, req, resp, req.keep_alive)
  return req.keep_alive and sent
end

function Server:_handle_api(conn, req)
  local now = gettime()
  self.next_seq = self.next_seq + 1
  self.stats.requests = self.stats.requests + 1
  local record = {
    seq = self.next_seq, conn = conn.id, method = req.method, path = req.path, query = req.query,
    headers = req.headers, body = req.body, cf_ray = self:_new_ray(),
  }
  self.requests[#self.requests + 1] = record

  local limit_headers, wait_blocked = self:_rate_check(req, now)
  if wait_blocked then
    return self:_refuse(conn, req, record, limit_headers, wait_blocked)   -- takes no fault
  end

  local fault = self:_take_fault(req)
  local note = fault and string.format(" (fault %d)", fault.id) or ""
  -- The response leaves `latency` after the request came, the fake's own work included, so
  -- that requests answered together do not queue behind each other's processing (as they
  -- would if it came after the wait). A fault's delay comes first: a client that gives up
  -- during it finds nothing changed.
  local due = now + self.options.latency + (fault and fault.delay or 0)
  if fault and (fault.delay or fault.drop == "before") then
    sleep_until(due)
  end
  if fault and fault.drop == "before" then
    self:_log("#%d conn %d %s %s -> dropped before processing%s", record.seq, conn.id, req.method, req.path, note)
    return false
  end

  local resp
  if fault and fault.synthetic then
    resp = fault_response(fault)
  else
    resp = self:_api_response(req)
  end
  if gettime() < due then
    sleep_until(due)
  end
  resp.ray = record.cf_ray
  resp.extra = limit_headers
  local keep, truncate = req.keep_alive, false
  if fault then
    if fault.drop == "after" then
      self:_log("#%d conn %d %s %s -> %d, response dropped%s", record.seq, conn.id, req.method, req.path,
        resp.status, note)
      return false
    end
    if fault.body_override then
      resp.status, resp.body = fault.status or 200, fault.body_override
    end
    if fault.malformed then
      resp.status, resp.body = fault.status or 200, garble(resp.body)
    end
    if fault.content_type then
      resp.content_type = fault.content_type
    end
    if fault.oversize then
      resp.status = fault.status or 200
    end
    if fault.headers then
      resp.extra = merge_headers(resp.extra, fault.headers)
      for name, value in pairs(fault.headers) do
        if name:lower() == "cf-ray" then
          record.cf_ray = value         -- the log holds the ray actually sent
        end
      end
    end
    if fault.truncate then
      keep, truncate = false, true
    end
  end
  self:_log("#%d conn %d %s %s -> %d%s", record.seq, conn.id, req.method, req.path, resp.status, note)
  self:_count_status(record, resp.status)
  local sent
  if fault and fault.oversize then
    sent = send_oversize(conn, req, resp, fault.oversize, keep, truncate)   -- nil when cut short
  else
    sent = send_response(conn, req, resp, keep, truncate)
  end
  return keep and sent
end

------------------------------------------------------------------------------------------
-- Command line
------------------------------------------------------------------------------------------

local USAGE = [[
usage: cfrun --fake-api [options]
  --host H             address to listen on (default 127.0.0.1)
  --port N             port (default 0: an ephemeral port)
  --sandbox            seed zone 023e105f4ecef8ad9ca31a8372d0c353 with sample mappings
  --seed FILE          seed from {"zones": {"<zone_id>": [{"origin-ip","region","vendor"}, ...]}}
  --token T            accept this API token (repeatable)
  --email E --key K    accept this legacy email/key pair
  --latency SECONDS    answer each API request SECONDS after it came (default 0)
  --rate-limit R/S     allow R API requests per S seconds per credential, like Cloudflare's
                       1200/300; past it, 429 for S seconds (default: no limit)
  --exit-with-parent   exit when the parent process exits (under cfrun)
  --quiet              no log lines on stderr
Without --token/--email/--key: token "test-token" and test@example.com / test-key.
Prints "LISTENING <host> <port>" once ready. Control API under /__fake/.
]]

local VALUE_OPTIONS = {
  ["--host"] = true, ["--port"] = true, ["--seed"] = true, ["--token"] = true,
  ["--email"] = true, ["--key"] = true, ["--latency"] = true, ["--rate-limit"] = true,
}
local FLAG_OPTIONS = {
  ["--sandbox"] = "sandbox", ["--exit-with-parent"] = "exit_with_parent", ["--quiet"] = "quiet",
  ["--help"] = "help", ["-h"] = "help",
}

-- Returns the options for M.new (plus exit_with_parent, help), or nil, message.
local function parse_args(args)
  local opts = {}
  local i = 1
  while i <= #args do
    local arg = tostring(args[i])
    local name, inline = arg:match("^(%-%-[^=]+)=(.*)$")
    name = name or arg
    local value = inline
    if VALUE_OPTIONS[name] then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then
          return nil, "option " .. name .. " needs a value"
        end
        value = tostring(value)
      end
      if name == "--host" then
        if value == "" then
          return nil, "option --host needs a non-empty value"
        end
        opts.host = value
      elseif name == "--port" then
        local n = value:match("^%d+$") and tonumber(value)
        if not n or n > 65535 then
          return nil, "option --port: '" .. value .. "' is not a port number (0-65535)"
        end
        opts.port = math.tointeger(n)
      elseif name == "--seed" then
        opts.seed_file = value
      elseif name == "--token" then
        if value == "" then
          return nil, "option --token needs a non-empty value"
        end
        opts.tokens = opts.tokens or {}
        opts.tokens[#opts.tokens + 1] = value
      elseif name == "--email" or name == "--key" then
        if value == "" then
          return nil, "option " .. name .. " needs a non-empty value"
        end
        opts[name:sub(3)] = value
      elseif name == "--latency" then
        local n = tonumber(value)
        if not n or n ~= n or n < 0 or n == math.huge then
          return nil, "option --latency: '" .. value .. "' is not a number of seconds >= 0"
        end
        opts.latency = n
      elseif name == "--rate-limit" then
        local r, w = value:match("^(%d+)/(.+)$")
        local requests, per = math.tointeger(tonumber(r or "")), tonumber(w or "")
        if not requests or requests < 1 or not per or per ~= per or per < MIN_RATE_WINDOW or per == math.huge then
          return nil, "option --rate-limit: '" .. value .. "' is not REQUESTS/SECONDS (e.g. 1200/300; "
            .. "REQUESTS >= 1, SECONDS >= " .. MIN_RATE_WINDOW .. ")"
        end
        opts.rate_limit = { requests = requests, per = per }
      end
    elseif FLAG_OPTIONS[name] then
      if inline then
        return nil, "option " .. name .. " takes no value"
      end
      opts[FLAG_OPTIONS[name]] = true
    elseif arg:sub(1, 1) == "-" then
      return nil, "unknown option '" .. arg .. "'"
    else
      return nil, "unexpected argument '" .. arg .. "'"
    end
    i = i + 1
  end
  if (opts.email == nil) ~= (opts.key == nil) then
    return nil, "options --email and --key must be given together"
  end
  return opts
end

function M.main(args)
  args = args or {}
  local opts, err = parse_args(args)
  if not opts then
    io.stderr:write("fake-api: ", err, "\n", "fake-api: try --help\n")
    os.exit(2)
  end
  if opts.help then
    io.stdout:write(USAGE)
    return 0
  end
  local good, server = pcall(M.new, opts)
  if not good then
    io.stderr:write("fake-api: ", tostring(server), "\n")
    os.exit(2)
  end
  local host, port = server:listen()
  if not host then
    io.stderr:write("fake-api: ", port, "\n")
    os.exit(1)
  end
  if opts.exit_with_parent then
    -- Only cfrun provides this; under plain lua the require fails and is ignored.
    pcall(function()
      require("cloudflare.core").exit_with_parent()
    end)
  end
  io.stdout:write(string.format("LISTENING %s %d\n", host, port))
  io.stdout:flush()
  server:serve()
  return 0
end

function M.sandbox_seed()
  return sandbox_seed()
end

M.SANDBOX_ZONE = SANDBOX_ZONE
M.SUPPORTED_REGIONS = SUPPORTED_REGIONS   -- { vendor = { { name =, upper_tier_colos = {...} }, ... } }
M.DEFAULT_MAX_MAPPINGS = DEFAULT_MAX_MAPPINGS
M.canonical_ip = canonical_ip
M.encode_json = encode_json
M.array = array
M.null = NULL
M.routes = API_ROUTES           -- { path = <Lua pattern>, methods = { METHOD = handler } }
M.envelope = { ok = ok, fail = fail, setting = setting }

return M
