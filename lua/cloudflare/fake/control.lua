-- cloudflare.fake.control: the control API under /__fake/ (request log, zones, faults, options, stats, reset,
-- shutdown) and the run-time options it sets. Must never be reachable from /client/v4, nor write to sockets.
--
-- A route handler(server, req, captures...) returns status, value and optionally "shutdown";
-- value is encoded as JSON by the server. Errors are {"ok": false, "error": "..."}.

local wire = require("cloudflare.fake.wire")
local faults = require("cloudflare.fake.faults")
local ratelimit = require("cloudflare.fake.ratelimit")
local state = require("cloudflare.fake.state")

local C = {}

local array, absent, invalid, NULL = wire.array, wire.absent, wire.invalid, wire.NULL
local check_int, check_list, check_string = wire.check_int, wire.check_list, wire.check_string

------------------------------------------------------------------------------------------
-- Options
------------------------------------------------------------------------------------------

-- The `error` texts of failed batch items, by key. Cloudflare publishes none: these are the
-- fake's, and a client must never depend on them (item_errors changes them at run time).
C.ITEM_ERROR_KEYS = { "not_found", "invalid_ip", "unsupported_vendor", "unsupported_region", "limit" }
C.DEFAULT_ITEM_ERRORS = {
  not_found = "mapping not found",
  invalid_ip = "invalid IP address",
  unsupported_vendor = "unsupported vendor",
  unsupported_region = "unsupported region",
  limit = "mapping limit reached",
}

local OPTION_NAMES = "wire_key, latency, tokens, email, key, max_mappings, rate_limit, generations, item_errors, "
  .. "any_zone, one_user"

-- A shallow copy of a list or a map (options are never shared with what a client sent).
local function copy(t)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  return out
end

local function copy_options(o)
  local rate_limit = o.rate_limit and { requests = o.rate_limit.requests, per = o.rate_limit.per }
  return {
    wire_key = o.wire_key, latency = o.latency, tokens = copy(o.tokens), email = o.email, key = o.key,
    max_mappings = o.max_mappings, rate_limit = rate_limit, generations = copy(o.generations),
    item_errors = copy(o.item_errors), any_zone = o.any_zone, one_user = o.one_user,
  }
end
C.copy_options = copy_options

-- What GET /__fake/options shows.
local function options_view(o)
  local v = copy_options(o)
  v.tokens = array(v.tokens)
  v.generations = array(v.generations)
  v.email = v.email or NULL
  v.key = v.key or NULL
  v.rate_limit = v.rate_limit or NULL
  return v
end

-- {"requests": N >= 1, "per": seconds >= 0.001} or null (off). Returns the table or nil.
local function check_rate_limit(v)
  if absent(v) then
    return nil
  end
  if type(v) ~= "table" or (next(v) ~= nil and wire.is_sequence(v)) then
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
  if type(per) ~= "number" or per ~= per or per < ratelimit.MIN_WINDOW or per == math.huge then
    invalid("rate_limit.per must be a number of seconds >= %g", ratelimit.MIN_WINDOW)
  end
  return { requests = requests, per = math.tointeger(per) or per }
end

-- A non-empty list of generation names, each one of `known`; returned in known's order,
-- without repetitions.
local function check_generations(v, known)
  local wanted = {}
  for i, name in ipairs(check_list(v, "generations")) do
    check_string(name, "generations[" .. i .. "]", true)
    local found = false
    for _, k in ipairs(known) do
      found = found or k == name
    end
    if not found then
      invalid("generations: unknown generation '%s' (known: %s)", name, table.concat(known, ", "))
    end
    wanted[name] = true
  end
  local out = {}
  for _, k in ipairs(known) do
    if wanted[k] then
      out[#out + 1] = k
    end
  end
  if #out == 0 then
    invalid("generations must name at least one of: %s", table.concat(known, ", "))
  end
  return out
end

-- item_errors: an object of some of the keys (a partial object changes only those; null
-- restores a key's default), or null for every default.
local function patch_item_errors(current, v)
  if absent(v) then
    return copy(C.DEFAULT_ITEM_ERRORS)
  end
  if not wire.is_object(v) then
    invalid("item_errors must be an object {key: text} (keys: %s)", table.concat(C.ITEM_ERROR_KEYS, ", "))
  end
  for k, text in pairs(v) do
    if C.DEFAULT_ITEM_ERRORS[k] == nil then
      invalid("item_errors: unknown key '%s' (known: %s)", tostring(k), table.concat(C.ITEM_ERROR_KEYS, ", "))
    end
    if text == NULL then
      current[k] = C.DEFAULT_ITEM_ERRORS[k]
    else
      current[k] = check_string(text, "item_errors." .. k, true)
    end
  end
  return current
end

-- Returns the options after applying patch (a decoded JSON object); raises invalid().
-- known_generations: the names of every generation the server can serve, in order.
local function patch_options(current, patch, known_generations)
  if not wire.is_object(patch) then
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
    elseif k == "generations" then
      o.generations = check_generations(v, known_generations)
    elseif k == "item_errors" then
      o.item_errors = patch_item_errors(o.item_errors, v)
    elseif k == "any_zone" then
      if type(v) ~= "boolean" then
        invalid("any_zone must be true or false")
      end
      o.any_zone = v
    elseif k == "one_user" then
      if type(v) ~= "boolean" then
        invalid("one_user must be true or false")
      end
      o.one_user = v
    else
      invalid("unknown option '%s' (known: %s)", tostring(k), OPTION_NAMES)
    end
  end
  return o
end

-- The start-up options from M.new's (nil fields take their defaults), or nil, message.
-- known_generations: the names of every generation the server can serve, in order.
function C.initial_options(opts, known_generations)
  local base = {
    wire_key = "origin-ip", latency = 0, tokens = {}, max_mappings = state.DEFAULT_MAX_MAPPINGS,
    generations = copy(known_generations), item_errors = C.DEFAULT_ITEM_ERRORS, any_zone = false,
    one_user = false,
  }
  return wire.validated(patch_options, base, {
    wire_key = opts.wire_key, latency = opts.latency, tokens = opts.tokens, email = opts.email, key = opts.key,
    max_mappings = opts.max_mappings, rate_limit = opts.rate_limit, generations = opts.generations,
    item_errors = opts.item_errors, any_zone = opts.any_zone, one_user = opts.one_user,
  }, known_generations)
end

------------------------------------------------------------------------------------------
-- Routes
------------------------------------------------------------------------------------------

local function ctl_error(status, message)
  return status, { ok = false, error = message }
end

local function decode_body(req, kind)
  local v = wire.decode_json(req.body)
  if v == nil then
    return nil, "request body is not valid JSON"
  end
  if kind and (type(v) ~= "table" or wire.json_kind(req.body) ~= kind) then
    return nil, "request body must be a JSON " .. kind
  end
  return v
end

-- The mappings a PUT or POST /__fake/zones/<id> carries, or nil, status, answer.
local function zone_body(req, id)
  if not state.valid_zone_id(id) then
    return nil, ctl_error(400, "invalid zone id '" .. id .. "' (1 to 32 letters or digits)")
  end
  local list, err = decode_body(req, "array")
  if not list then
    return nil, ctl_error(400, err)
  end
  local mappings, problem = wire.validated(state.mappings_from_list, list, "zone " .. id, wire.rfc3339_now())
  if not mappings then
    return nil, ctl_error(400, problem)
  end
  return mappings
end

-- by_status: { ["200"] = n, ... }; in_flight: API requests being answered now (latency and
-- delays included), peak_in_flight its highest value: how concurrent the clients really were.
function C.new_stats()
  return { requests = 0, by_status = {}, in_flight = 0, peak_in_flight = 0 }
end

local ROUTES = {
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
      return 200, server.state:listings()
    end,
  } },
  { path = "^/__fake/zones/([^/]*)$", methods = {
    GET = function(server, _, id)
      return 200, server.state:listing(id)
    end,
    PUT = function(server, req, id)
      local mappings, status, err = zone_body(req, id)
      if not mappings then
        return status, err
      end
      server.state:replace(id, mappings)
      return 200, server.state:listing(id)
    end,
    POST = function(server, req, id)
      local mappings, status, err = zone_body(req, id)
      if not mappings then
        return status, err
      end
      local ok, dup = server.state:extend(id, mappings)
      if not ok then
        return ctl_error(400, dup)
      end
      return 200, { ok = true, added = #mappings, count = #state.live(server.state.zones[id]) }
    end,
  } },
  { path = "^/__fake/faults$", methods = {
    GET = function(server)
      local out = array()
      for i, f in ipairs(server.faults) do
        out[i] = faults.view(f)
      end
      return 200, out
    end,
    POST = function(server, req)
      local v, err = decode_body(req)
      if v == nil then
        return ctl_error(400, err)
      end
      local list = wire.json_kind(req.body) == "array" and v or { v }
      local added, ids = {}, array()
      for i, raw in ipairs(list) do
        local f, problem = wire.validated(faults.normalize, raw, "fault " .. i)
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
      local o, problem = wire.validated(patch_options, server.options, patch, server.known_generations)
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
      server.stats = C.new_stats()
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
C.ROUTES = ROUTES

-- Answers one control request: status, value (to encode as JSON), and "shutdown" or nil.
-- log(fmt, ...) reports a handler that failed (a bug: answered 500).
function C.handle(server, req, log)
  for _, route in ipairs(ROUTES) do
    local caps = table.pack(req.path:match(route.path))
    if caps[1] then
      local handler = route.methods[req.method]
      if not handler then
        return ctl_error(405, "method " .. req.method .. " not allowed on " .. req.path)
      end
      local good, s, v, a = xpcall(handler, debug.traceback, server, req, table.unpack(caps, 1, caps.n))
      if good then
        return s, v, a
      end
      log("control handler failed: %s", tostring(s))
      return ctl_error(500, tostring(s))
    end
  end
  return ctl_error(404, "no control endpoint " .. req.path)
end

return C
