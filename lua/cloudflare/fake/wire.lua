-- cloudflare.fake.wire: the fake API's wire format: JSON encoder (arrays stay []), Cloudflare's envelopes, the server's
-- own IP parser, checks of decoded values. Must hold no state and do no I/O: pure functions of their arguments.
--
-- Checks follow one rule: invalid() raises a marked error that validated() turns into nil, msg;
-- any other error is a bug and propagates.

local cjson = require("cjson")
local json = require("cloudflare.json")

local W = {}

local NULL = cjson.null        -- JSON null, both as cjson decodes it and as we encode it

------------------------------------------------------------------------------------------
-- JSON encoding. cjson.encode cannot write an empty array (it writes {}), so responses are
-- encoded here: tables marked with ARRAY_MT are arrays, NULL is null, keys are sorted so that
-- output is deterministic.
------------------------------------------------------------------------------------------

-- the mark cloudflare.json's encoder (in C) knows, so that both encoders write [] for it
local array = json.array
local ARRAY_MT = getmetatable(array())

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

local function encode_lua(v)
  local out = {}
  encode_value(v, out, 0, 0)
  return table.concat(out)
end

-- Encoded in C (cloudflare.json: the same sorted keys, [] for marked arrays, 1141.0 as 1141)
-- when it can be: the fake's answers are most of its CPU. What C does not write as this
-- encoder would (NaN, keys that are not strings or numbers, bytes that are not UTF-8, which
-- C copies as they are) goes to the encoder above.
local function encode_json(v)
  local ok, text = pcall(json.encode, v)
  if ok and utf8.len(text) then return text end
  return encode_lua(v)
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
-- Timestamps, value checks
------------------------------------------------------------------------------------------

local function rfc3339_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

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

-- A decoded JSON object (a table that is not a non-empty sequence).
local function is_object(v)
  return type(v) == "table" and (next(v) == nil or not is_sequence(v))
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
-- Cloudflare's envelopes: { success, errors, messages, result[, result_info] }
------------------------------------------------------------------------------------------

-- 200 and a success envelope; result_info (pagination) goes next to result when given.
local function ok(result, result_info)
  return 200, { success = true, errors = array(), messages = array(), result = result, result_info = result_info }
end

local function fail_with(status, errors)
  return status, { success = false, errors = array(errors), messages = array(), result = NULL }
end

local function fail(status, code, message)
  return fail_with(status, { { code = code, message = message } })
end

-- Errors that Cloudflare publishes and more than one part of the fake answers with.
W.INTERNAL_ERROR = { code = 1141, message = "Unable to delete origin_public_cloud_region setting. Internal error." }
W.RATE_LIMITED = { code = 971, message = "Please wait and consider throttling your request speed" }
W.NO_ROUTE = { code = 7000, message = "No route for that URI" }

W.NULL = NULL
W.ARRAY_MT = ARRAY_MT
W.array = array
W.is_sequence = is_sequence
W.is_object = is_object
W.encode_json = encode_json
W.encode_number = encode_number
W.decode_json = decode_json
W.json_kind = json_kind
W.canonical_ip = canonical_ip
W.rfc3339_now = rfc3339_now
W.invalid = invalid
W.validated = validated
W.absent = absent
W.check_list = check_list
W.check_string = check_string
W.check_int = check_int
W.ok = ok
W.fail = fail
W.fail_with = fail_with

return W
