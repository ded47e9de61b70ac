-- cloudflare.fake.faults: the fake API's fault queue: checking faults posted to /__fake/faults, choosing the one that
-- applies to a request, and the responses a fault makes up. Must not touch zones, sockets or the clock.

local wire = require("cloudflare.fake.wire")

local F = {}

local array, absent, invalid, is_sequence = wire.array, wire.absent, wire.invalid, wire.is_sequence
local check_int, check_list, check_string = wire.check_int, wire.check_list, wire.check_string

local FAULT_FIELDS = {
  match = true, skip = true, times = true, status = true, errors = true, body = true,
  content_type = true, delay = true, drop = true, malformed = true, truncate = true,
  headers = true, body_override = true, oversize = true,
}

local MAX_OVERSIZE = 1 << 40

local HEADER_NAME = "^[%w!#$%%&'*+.^_`|~-]+$"

-- The oversize fault's body: OVERSIZE_OPEN, filler, OVERSIZE_CLOSE (a valid envelope whose
-- result is {"padding": "xxx..."}), or its first n bytes when n is smaller.
F.OVERSIZE_OPEN = '{"success":true,"errors":[],"messages":[],"result":{"padding":"'
F.OVERSIZE_CLOSE = '"}}'

-- A fault from its decoded JSON object; raises invalid().
function F.normalize(raw, where)
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
        value = wire.encode_number(value)
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
function F.view(f)
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

local function matches(f, req)
  return (not f.method or f.method == req.method) and (not f.path or req.path:find(f.path) ~= nil)
end

-- The fault of the queue `faults` that applies to this request, if any. Every matching fault
-- counts the request against its `skip`, whether or not an earlier fault takes it; at most
-- one fault applies: the first in queue order whose skip is used up. A fault whose `times`
-- are used up leaves the queue.
function F.take(faults, req)
  local chosen
  for _, f in ipairs(faults) do
    if matches(f, req) then
      if f.skip > 0 then
        f.skip = f.skip - 1
      elseif not chosen then
        chosen = f
        f.times = f.times - 1
      end
    end
  end
  if chosen and chosen.times <= 0 then
    for i, f in ipairs(faults) do
      if f == chosen then
        table.remove(faults, i)
        break
      end
    end
  end
  return chosen
end

local DEFAULT_FAULT_ERRORS = {
  [429] = wire.RATE_LIMITED,
}

-- The response of a synthetic fault: { status, body, content_type }.
function F.response(f)
  if f.body then
    return { status = f.status or 200, body = f.body, content_type = f.content_type }
  end
  local status = f.status or 500
  local errors = f.errors or { DEFAULT_FAULT_ERRORS[status] or wire.INTERNAL_ERROR }
  local _, env = wire.fail_with(status, errors)
  return { status = status, body = wire.encode_json(env), content_type = f.content_type }
end

-- Half of the body plus something no JSON parser accepts.
function F.garble(body)
  return body:sub(1, #body // 2) .. "#<garbage>"
end

-- Header fields of `over` replace those of `base` with the same name in any case.
function F.merge_headers(base, over)
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

return F
