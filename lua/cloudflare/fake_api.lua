-- cloudflare.fake_api: a fake Cloudflare API server (`cfrun --fake-api`): command line, the Server object that wires
-- HTTP, state, generations, faults and rate limit together. Must not crash or block on what a client sends.
--
-- The parts live in cloudflare.fake.*: wire (JSON, envelopes, IPs), state (zones, the mapping
-- operations), http (connections, scheduler), control (/__fake/, options), faults, ratelimit,
-- family (what the generations share) and one routes_<generation> per API generation, all over
-- one state. It uses nothing but LuaSocket, cjson and the standard library (optional hook:
-- cloudflare.core.exit_with_parent). docs/fake_api.md describes it.
--
-- Conventions: M.new raises on bad configuration (a programming or start-up mistake);
-- listen() returns nil, message on system failure; whatever arrives on the wire is answered
-- with an HTTP error and never raised past its connection.

local wire = require("cloudflare.fake.wire")
local state = require("cloudflare.fake.state")
local http = require("cloudflare.fake.http")
local control = require("cloudflare.fake.control")
local faults = require("cloudflare.fake.faults")
local ratelimit = require("cloudflare.fake.ratelimit")

local M = {}

local fail, encode_json, gettime = wire.fail, wire.encode_json, http.gettime

------------------------------------------------------------------------------------------
-- API generations: one routes module each, served over the one state. A generation is
-- { name =, base = <path after /zones/{zone_id}>, routes = { { path =, methods = }, ... } };
-- another generation is one more module in this list.
------------------------------------------------------------------------------------------

local GENERATIONS = {
  (require("cloudflare.fake.routes_v1")),
  (require("cloudflare.fake.routes_v2")),
}

local GENERATION_NAMES = {}

-- Every route of every generation, tried in order: { path = <Lua pattern matched against the
-- path after /client/v4; its first capture is the zone id, further captures are
-- percent-decoded into req.params>, methods = { METHOD = handler(req, zone) }, generation = }.
local API_ROUTES = {}

for i, gen in ipairs(GENERATIONS) do
  GENERATION_NAMES[i] = gen.name
  gen.compiled = {}
  local base = "^/zones/([^/]*)" .. gen.base:gsub("%p", "%%%0")
  for _, r in ipairs(gen.routes) do
    local route = { path = base .. r.path .. "$", methods = r.methods, generation = gen.name }
    gen.compiled[#gen.compiled + 1] = route
    API_ROUTES[#API_ROUTES + 1] = route
  end
end

-- The generation whose base a request path (/client/v4/zones/<id><base>[/...]) lies under.
local function generation_of(path)
  local rest = path:match("^/client/v4/zones/[^/]*(/.*)$")
  if rest then
    for _, gen in ipairs(GENERATIONS) do
      local base = gen.base
      if rest == base or rest:sub(1, #base + 1) == base .. "/" then
        return gen
      end
    end
  end
  return nil
end

------------------------------------------------------------------------------------------
-- The server
------------------------------------------------------------------------------------------

local Server = {}
Server.__index = Server

-- opts: host, port, sandbox (bool), seed (table shaped like a seed file), seed_file (path),
-- tokens (array), email, key, latency (seconds), max_mappings (per zone, default 3500),
-- rate_limit ({ requests =, per = seconds } or nil: off), generations (names, default all),
-- item_errors ({ key = text }), wire_key, any_zone (bool: serve an unknown zone as an empty one
-- instead of answering 403 10000, as Cloudflare does), one_user (bool: every credential is one
-- Cloudflare user, counted in one rate-limit window, as Cloudflare counts per user), quiet
-- (bool). Raises on bad values.
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Server)
  self.quiet = opts.quiet and true or false

  local seed_zones = {}
  local function merge(seed, source)
    local zones, err = state.load_seed(seed, source)
    if not zones then
      error(err, 0)
    end
    for id, mappings in pairs(zones) do
      seed_zones[id] = mappings
    end
  end
  if opts.sandbox then
    merge(state.sandbox_seed(), "sandbox seed")
  end
  if opts.seed then
    merge(opts.seed, "seed")
  end
  if opts.seed_file then
    merge(state.read_seed_file(opts.seed_file), opts.seed_file)
  end

  local o = {}
  for k, v in pairs(opts) do
    o[k] = v
  end
  if o.tokens == nil and o.email == nil and o.key == nil then
    o.tokens, o.email, o.key = { "test-token" }, "test@example.com", "test-key"
  end
  self.known_generations = GENERATION_NAMES
  local initial, err = control.initial_options(o, GENERATION_NAMES)
  if not initial then
    error(err, 0)
  end
  self.initial_options = initial

  self.state = state.new(seed_zones)
  self.next_seq, self.next_fault_id = 0, 0
  self.ray_prefix, self.ray_count = math.random(0, 0xffffffff), 0
  self.loop = http.new_loop(opts.host or "127.0.0.1", opts.port or 0, function(conn)
    self:_serve_connection(conn)
  end, function(...)
    self:_log(...)
  end)
  self:reset()
  return self
end

-- Back to the initial seed and start-up options; request log, faults, statistics and
-- rate-limit windows cleared.
function Server:reset()
  self.state:reset()
  self.zones = self.state.zones    -- { [id] = zone }, for who reads the state directly
  self.requests = wire.array()
  self.faults = {}
  self.options = control.copy_options(self.initial_options)
  self.stats = control.new_stats()
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
  return self.loop:listen()
end

-- Runs until POST /__fake/shutdown (or stop()), then closes everything.
function Server:serve()
  return self.loop:serve()
end

-- One scheduler iteration (see cloudflare.fake.http): for running the server inside a loop
-- of one's own.
function Server:step(timeout)
  return self.loop:step(timeout)
end

function Server:stop()
  self.loop.stopped = true
end

function Server:close()
  self.loop:close()
end

function Server:_serve_connection(conn)
  while not self.loop.stopped do
    local req, status, message = http.read_request(conn)
    if not req then
      if status then
        self:_log("connection %d: %d %s", conn.id, status, message)
        local _, env = fail(status, 6003, "Invalid request: " .. message)
        http.reject(conn, status, encode_json(env), self:_new_ray())
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
  local status, value, after = control.handle(self, req, function(...)
    self:_log(...)
  end)
  local keep = req.keep_alive and after ~= "shutdown"
  http.send_response(conn, req, { status = status, body = encode_json(value), ray = self:_new_ray() }, keep)
  if after == "shutdown" then
    self:_log("shutting down")
    self:stop()
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

-- Credential headers as the request log shows them: the log is for anyone who can reach the
-- control API, so it never holds a secret a client sent. Authorization keeps its scheme
-- ("Bearer <redacted>"), so a spec still sees which kind was sent; X-Auth-Email is kept (an
-- address, not a secret). The log's `credential` says what the server made of them.
local SECRET_HEADERS = { authorization = true, ["proxy-authorization"] = true, ["x-auth-key"] = true }
local REDACTED = "<redacted>"

local function logged_headers(headers)
  local out = {}
  for name, value in pairs(headers) do
    if SECRET_HEADERS[name] then
      local scheme = value:match("^%s*([%w!#$%%&'*+.^_`|~-]+)%s+%S")
      out[name] = scheme and (scheme .. " " .. REDACTED) or REDACTED
    else
      out[name] = value
    end
  end
  return out
end

-- "token" or "key" (credentials accepted, by scheme), "rejected" (credentials presented but
-- not accepted), or nil (none presented), for the request log.
function Server:_credential_of(req)
  local status, _, credential = self:_authenticate(req)
  if not status then
    return credential:match("^%a+")
  end
  return status == 403 and "rejected" or nil
end

local function serves(options, name)
  for _, g in ipairs(options.generations) do
    if g == name then
      return true
    end
  end
  return false
end

-- A path of a generation not served answers as an unknown route does.
local function no_route()
  return fail(404, wire.NO_ROUTE.code, wire.NO_ROUTE.message)
end

function Server:_route_api(req)
  local status, env = self:_authenticate(req)
  if status then
    return status, env
  end
  local gen = req.generation
  if not gen or not serves(self.options, gen.name) then
    return no_route()
  end
  local sub = req.path:sub(#"/client/v4" + 1)
  for _, route in ipairs(gen.compiled) do
    local caps = table.pack(sub:match(route.path))
    if caps[1] then
      local zone_id = caps[1]
      if not state.valid_zone_id(zone_id) then
        return fail(404, 7003, "Could not route to " .. sub .. ", perhaps your object identifier is invalid?")
      end
      -- Cloudflare does not tell a zone that does not exist from one the credential may not
      -- reach: both answer 403 code 10000. Zones exist here once seeded (--seed, --sandbox,
      -- PUT /__fake/zones/<id>), or all of them with any_zone.
      if not self.state.zones[zone_id] and not self.options.any_zone then
        return fail(403, 10000, "Authentication error")
      end
      local handler = route.methods[req.method]
      if not handler then
        return fail(405, 10405, "Method not allowed")
      end
      req.params = {}
      for i = 2, caps.n do
        req.params[i - 1] = http.percent_decode(caps[i])
      end
      req.now, req.options, req.wire_key = wire.rfc3339_now(), self.options, self.options.wire_key
      return handler(req, self.state:zone(zone_id))
    end
  end
  return no_route()
end

-- Authentication, routing and the handler, protected: a Lua error becomes a 500 envelope.
function Server:_api_response(req)
  local good, status, body = xpcall(function()
    local s, env = self:_route_api(req)
    return s, encode_json(env)
  end, debug.traceback)
  if not good then
    self:_log("handler error for %s %s: %s", req.method, req.path, tostring(status))
    local _, env = wire.fail_with(500, { wire.INTERNAL_ERROR })
    return { status = 500, body = encode_json(env) }
  end
  return { status = status, body = body }
end

-- Notes the response to a logged API request: its status, and the body sent (or a note).
function Server:_record_response(record, status, body, note)
  record.status = status
  record.response = { status = status, body = body, note = note }
  local key = string.format("%d", status)
  self.stats.by_status[key] = (self.stats.by_status[key] or 0) + 1
end

-- Answers a request refused by the rate limit: 429, code 971, without processing it.
function Server:_refuse(conn, req, record, headers, wait)
  if self.options.latency > 0 then
    http.sleep_until(gettime() + self.options.latency)
  end
  local _, env = wire.fail_with(429, { wire.RATE_LIMITED })
  self:_log("#%d conn %d %s %s -> 429, rate limited for %d s", record.seq, conn.id, req.method, req.path, wait)
  local resp = { status = 429, body = encode_json(env), ray = record.cf_ray, extra = headers }
  self:_record_response(record, 429, http.sent_body(req, resp))
  local sent = http.send_response(conn, req, resp, req.keep_alive)
  return req.keep_alive and sent
end

function Server:_handle_api(conn, req)
  local now = gettime()
  self.next_seq = self.next_seq + 1
  self.stats.requests = self.stats.requests + 1
  local gen = generation_of(req.path)
  req.generation = gen
  local record = {
    seq = self.next_seq, conn = conn.id, method = req.method, path = req.path, query = req.query,
    headers = logged_headers(req.headers), credential = self:_credential_of(req), body = req.body,
    cf_ray = self:_new_ray(), generation = gen and gen.name,
  }
  self.requests[#self.requests + 1] = record

  local limit_headers, wait_blocked
  if self.options.rate_limit then
    local _, _, credential = self:_authenticate(req)
    if credential and self.options.one_user then credential = "the user" end -- all one user's
    limit_headers, wait_blocked = ratelimit.check(self.rate, self.options.rate_limit, credential, now)
  end
  if wait_blocked then
    return self:_refuse(conn, req, record, limit_headers, wait_blocked)   -- takes no fault
  end

  local fault = faults.take(self.faults, req)
  local note = fault and string.format(" (fault %d)", fault.id) or ""
  -- The response leaves `latency` after the request came, the fake's own work included, so
  -- that requests answered together do not queue behind each other's processing (as they
  -- would if it came after the wait). A fault's delay comes first: a client that gives up
  -- during it finds nothing changed.
  local due = now + self.options.latency + (fault and fault.delay or 0)
  if fault and (fault.delay or fault.drop == "before") then
    http.sleep_until(due)
  end
  if fault and fault.drop == "before" then
    self:_log("#%d conn %d %s %s -> dropped before processing%s", record.seq, conn.id, req.method, req.path, note)
    record.dropped = "before"
    return false
  end

  local resp
  if fault and fault.synthetic then
    resp = faults.response(fault)
  else
    resp = self:_api_response(req)
  end
  if gettime() < due then
    http.sleep_until(due)
  end
  resp.ray = record.cf_ray
  resp.extra = limit_headers
  local keep, truncate = req.keep_alive, false
  if fault then
    if fault.drop == "after" then
      self:_log("#%d conn %d %s %s -> %d, response dropped%s", record.seq, conn.id, req.method, req.path,
        resp.status, note)
      record.dropped = "after"
      return false
    end
    if fault.body_override then
      resp.status, resp.body = fault.status or 200, fault.body_override
    end
    if fault.malformed then
      resp.status, resp.body = fault.status or 200, faults.garble(resp.body)
    end
    if fault.content_type then
      resp.content_type = fault.content_type
    end
    if fault.oversize then
      resp.status = fault.status or 200
    end
    if fault.headers then
      resp.extra = faults.merge_headers(resp.extra, fault.headers)
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
  local sent
  if fault and fault.oversize then
    local n = fault.oversize
    self:_record_response(record, resp.status, nil, string.format("oversize fault: %d generated bytes%s, not recorded",
      n, truncate and " announced, half of them sent" or ""))
    sent = http.send_generated(conn, req, resp, n, faults.OVERSIZE_OPEN, faults.OVERSIZE_CLOSE, keep, truncate)
  else
    self:_record_response(record, resp.status, http.sent_body(req, resp, truncate))
    sent = http.send_response(conn, req, resp, keep, truncate)
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
  --any-zone           serve any zone id, unknown ones as empty (default: an unseeded zone
                       answers 403 code 10000, as Cloudflare answers a zone it does not know)
  --token T            accept this API token (repeatable)
  --email E --key K    accept this legacy email/key pair
  --latency SECONDS    answer each API request SECONDS after it came (default 0)
  --rate-limit R/S     allow R API requests per S seconds per credential, like Cloudflare's
                       1200/300; past it, 429 for S seconds (default: no limit)
  --one-user           count every credential in one rate-limit window, as Cloudflare counts
                       the requests of all of a user's tokens together
  --generations LIST   API generations to serve, comma-separated: v1 (/cache/origin_cloud_regions),
                       v2 (/origin/cloud_regions); default v1,v2. A generation not served
                       answers 404 code 7000, as an unknown route does.
  --exit-with-parent   exit when the parent process exits (under cfrun)
  --quiet              no log lines on stderr
Without --token/--email/--key: token "test-token" and test@example.com / test-key.
Prints "LISTENING <host> <port>" once ready. Control API under /__fake/ (docs/fake_api.md).
]]

local VALUE_OPTIONS = {
  ["--host"] = true, ["--port"] = true, ["--seed"] = true, ["--token"] = true,
  ["--email"] = true, ["--key"] = true, ["--latency"] = true, ["--rate-limit"] = true,
  ["--generations"] = true,
}
local FLAG_OPTIONS = {
  ["--sandbox"] = "sandbox", ["--any-zone"] = "any_zone", ["--exit-with-parent"] = "exit_with_parent",
  ["--one-user"] = "one_user",
  ["--quiet"] = "quiet",
  ["--help"] = "help", ["-h"] = "help",
}

-- "v1,v2" -> { "v1", "v2" } (every name known), or nil, message.
local function parse_generations(value)
  local list = {}
  for part in (value .. ","):gmatch("([^,]*),") do
    local name = part:match("^%s*(.-)%s*$")
    local known = false
    for _, g in ipairs(GENERATION_NAMES) do
      known = known or g == name
    end
    if not known then
      return nil, string.format("option --generations: '%s' is not a generation (known: %s)", name,
        table.concat(GENERATION_NAMES, ", "))
    end
    list[#list + 1] = name
  end
  return list
end

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
        if not requests or requests < 1 or not per or per ~= per or per < ratelimit.MIN_WINDOW
          or per == math.huge then
          return nil, "option --rate-limit: '" .. value .. "' is not REQUESTS/SECONDS (e.g. 1200/300; "
            .. "REQUESTS >= 1, SECONDS >= " .. ratelimit.MIN_WINDOW .. ")"
        end
        opts.rate_limit = { requests = requests, per = per }
      elseif name == "--generations" then
        local list, err = parse_generations(value)
        if not list then
          return nil, err
        end
        opts.generations = list
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
  return state.sandbox_seed()
end

M.SANDBOX_ZONE = state.SANDBOX_ZONE
M.SUPPORTED_REGIONS = state.SUPPORTED_REGIONS   -- { vendor = { { name =, upper_tier_colos = {...} }, ... } }
M.DEFAULT_MAX_MAPPINGS = state.DEFAULT_MAX_MAPPINGS
M.canonical_ip = wire.canonical_ip
M.encode_json = encode_json
M.array = wire.array
M.null = wire.NULL
M.routes = API_ROUTES           -- { path = <Lua pattern>, methods = { METHOD = handler }, generation = }
M.generations = GENERATION_NAMES
M.envelope = { ok = wire.ok, fail = wire.fail, setting = GENERATIONS[1].setting }

return M
