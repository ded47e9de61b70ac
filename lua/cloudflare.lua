-- cloudflare: the public `cloudflare` module, layered on the native `cloudflare.core`: clients
-- and their configuration, the default client, and the door to the submodules. The endpoint
-- family is described in cloudflare.origin_cloud_regions and built by cloudflare.binder;
-- nothing here does network I/O (it reads a token file and warns on stderr).
--
-- Error convention, kept by every function here: programming mistakes (bad arguments, no
-- credentials) raise; what happens on the wire returns `nil, err[, partial]`, `err` being a
-- cloudflare.Error with kind, status, errors, request_id and message.

local async = require "cloudflare.async"
local core = require "cloudflare.core"
local ratelimit = require "cloudflare.ratelimit"
local util = require "cloudflare.util"
local origin_cloud_regions = require "cloudflare.origin_cloud_regions"
local transport = require "cloudflare.transport"

local getenv = os.getenv
local format = string.format
local quote = util.quote

local M = {
  _VERSION = core.version,
  DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4",
}

-- Submodules load on first use (cloudflare.select, cloudflare.report, ...), so a script that
-- only deletes pays nothing for them at start-up.
local SUBMODULES = {
  ip = "cloudflare.ip", json = "cloudflare.json", select = "cloudflare.select",
  report = "cloudflare.report", iplist = "cloudflare.iplist", cli = "cloudflare.cli",
  journal = "cloudflare.journal",
}
setmetatable(M, {
  __index = function(t, k)
    local name = SUBMODULES[k]
    if name then
      local mod = require(name)
      rawset(t, k, mod)
      return mod
    end
  end,
})

---------------------------------------------------------------------------------------------
-- clients

--- The options of cloudflare.new, described once: { name, type, what it is }, in the order
--- the docs list them. help(cloudflare.new), the README's example, docs/api.md and the man
--- page are checked against it (spec/client_spec.lua).
M.OPTIONS = {
  { "api_token", "string", "API token (else $CLOUDFLARE_API_TOKEN)" },
  { "api_token_file", "string", "a file holding the token (else $CLOUDFLARE_API_TOKEN_FILE)" },
  { "api_email", "string", "legacy global key: the account's email (else $CLOUDFLARE_EMAIL)" },
  { "api_key", "string", "legacy global key: the key (else $CLOUDFLARE_API_KEY)" },
  { "base_url", "string", "default https://api.cloudflare.com/client/v4 (else $CLOUDFLARE_BASE_URL)" },
  { "generation", "string", "\"v2\" (default, /origin/cloud_regions) or \"v1\" (/cache/origin_cloud_regions;"
    .. " else $CFRUN_API_GENERATION)" },
  { "timeout", "number", "seconds for a whole request, more than 0, at most 3600 (default 60)" },
  { "connect_timeout", "number", "seconds to connect, more than 0, at most 600 (default 10)" },
  { "max_retries", "number", "retries of a failed request, 0 to 100 (default 2)" },
  { "max_retry_wait", "number", "longest Retry-After or Ratelimit reset waited for, 0 to 86400 s"
    .. " (default 60; 300 in --job/--every/--cron runs)" },
  { "rate_limit", "table", "{ requests=, per=, key=, redis=, shared= }: the user's rate budget"
    .. " (default 1200 per 300 s), shared with the user's other cfrun processes" },
  { "max_in_flight", "number", "requests in flight at once, across all tasks (default 16)" },
  { "on_wait", "function", "on_wait(seconds, reason), called before every wait" },
  { "log", "string", "\"debug\": one line per request on stderr (else $CFRUN_LOG); \"off\"" },
  { "ca_file", "string", "a private CA bundle; TLS verification is always on" },
  { "max_body", "number", "refuse larger response bodies, in bytes (default 32 MiB)" },
}

local OPTION_TYPES, OPTION_NAMES = {}, {} -- by name; the names in order, for "valid: ..."
for i, o in ipairs(M.OPTIONS) do
  OPTION_TYPES[o[1]], OPTION_NAMES[i] = o[2], o[1]
end

local function env(name)
  local v = getenv(name)
  if v == "" then return nil end
  return v
end

-- A token from a file (container secrets are mounted so). A file others can read is used,
-- with a warning: the operator should know the secret is exposed.
local function read_token_file(path, level)
  local f, err = io.open(path, "r")
  if not f then error("cloudflare: cannot read the API token file: " .. tostring(err), level + 1) end
  local token = (f:read("a") or ""):gsub("%s+$", "")
  f:close()
  if token == "" then error("cloudflare: the API token file " .. path .. " is empty", level + 1) end
  local mode = core.file_mode(path)
  if mode and mode & 4 ~= 0 then
    io.stderr:write("cfrun: warning: the API token file ", path,
      " is readable by every user; restrict it (chmod 600)\n")
  end
  return token
end

local warned_log = {} -- the CFRUN_LOG values warned about already

local function check_transport_options(opts, level)
  local function bad(msg) error("cloudflare.new: " .. msg, level + 1) end
  for _, k in ipairs { "timeout", "connect_timeout", "max_retries", "max_retry_wait" } do
    local problem = opts[k] ~= nil and util.LIMITS[k](opts[k])
    if problem then bad(format("option '%s': %s", k, problem)) end
  end
  local rl = opts.rate_limit
  if rl then
    local known = { requests = true, per = true, key = true, redis = true, shared = true }
    for k in pairs(rl) do
      if not known[k] then
        bad(format("rate_limit: unknown field %s (known: requests, per, key, redis, shared)", quote(tostring(k))))
      end
    end
    if (rl.requests ~= nil or rl.per ~= nil) and not (math.type(rl.requests) == "integer"
        and rl.requests > 0 and type(rl.per) == "number" and rl.per > 0) then
      bad("rate_limit must be { requests = <whole number > 0>, per = <seconds > 0> } (both, or neither)")
    end
    if rl.key ~= nil and (type(rl.key) ~= "string" or rl.key == "") then
      bad("rate_limit.key must be a non-empty string (a name for the Cloudflare user, not a credential)")
    end
    if rl.redis ~= nil and type(rl.redis) ~= "string" then bad("rate_limit.redis must be a redis:// URL") end
    if rl.shared ~= nil and type(rl.shared) ~= "boolean" then bad("rate_limit.shared must be a boolean") end
  end
  local mif = opts.max_in_flight
  if mif and (math.type(mif) ~= "integer" or mif < 1) then
    bad("max_in_flight must be a whole number >= 1")
  end
  local log = opts.log
  if log and log ~= "debug" and log ~= "off" then
    bad("option 'log' must be \"debug\" or \"off\", got " .. quote(log))
  end
  -- a bad CFRUN_LOG is the environment's, not the script's: warned about, once, and ignored
  if not log then
    log = env("CFRUN_LOG")
    if log and log ~= "debug" and log ~= "off" then
      if not warned_log[log] then
        warned_log[log] = true
        io.stderr:write(format("cfrun: warning: CFRUN_LOG=%s is not \"debug\" or \"off\"; ignored\n",
          quote(log)))
      end
      log = nil
    end
  end
  return log
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
      error("cloudflare.new: " .. util.unknown("option", k, OPTION_NAMES), level)
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
  elseif opts.api_token_file then
    config.api_token = read_token_file(opts.api_token_file, level)
  elseif opts.api_email or opts.api_key then
    config.api_email = opts.api_email or env("CLOUDFLARE_EMAIL")
    config.api_key = opts.api_key or env("CLOUDFLARE_API_KEY")
  else
    config.api_token = env("CLOUDFLARE_API_TOKEN")
    if not config.api_token and env("CLOUDFLARE_API_TOKEN_FILE") then
      config.api_token = read_token_file(env("CLOUDFLARE_API_TOKEN_FILE"), level)
    end
    config.api_email = env("CLOUDFLARE_EMAIL")
    config.api_key = env("CLOUDFLARE_API_KEY")
  end
  if not config.api_token and not (config.api_email and config.api_key) then
    -- the operator's setup, not a bug in the script: an error object (kind "config"), which
    -- cfrun reports without a traceback
    local where = debug.getinfo(level, "Sl")
    where = where and where.currentline > 0 and (where.short_src .. ":" .. where.currentline .. ": ") or ""
    error(core.error { kind = "config", unsent = true, message = where
      .. "cloudflare: no credentials configured: set CLOUDFLARE_API_TOKEN (or "
      .. "CLOUDFLARE_API_TOKEN_FILE, or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY), or pass "
      .. "api_token to cloudflare.new; to try things without a token, run the script with "
      .. "cfrun --sandbox (a local fake API with a sample zone)" }, level)
  end
  local log = check_transport_options(opts, level)
  -- the API generation: v2 (/origin/cloud_regions) unless the script or environment says v1
  local generation = opts.generation or env("CFRUN_API_GENERATION")
    or origin_cloud_regions.DEFAULT_GENERATION
  if not origin_cloud_regions.GENERATIONS[generation] then
    error(format("cloudflare.new: generation must be \"v1\" or \"v2\", got %s%s", quote(generation),
      opts.generation and "" or " (from CFRUN_API_GENERATION)"), level)
  end

  local fields = {}
  local ok, client = pcall(core.client, config, fields)
  if not ok then error(client, level) end
  -- clients of one credential share a rate budget, with every process of this user on the
  -- machine (or, through Redis, on every machine); named by a digest, never the credential
  local credential = config.api_token or (config.api_email .. "\n" .. config.api_key)
  local key = config.base_url .. "\n" .. credential
  local rl = opts.rate_limit or {}
  local share_key = rl.key or env("CFRUN_RATE_KEY")
  local name = core.sha256(share_key and ("key\n" .. config.base_url .. "\n" .. share_key) or key):sub(1, 32)
  local redis_url = rl.redis or env("CFRUN_RATE_REDIS")
  local redis
  if redis_url then
    local rerr
    redis, rerr = ratelimit.parse_redis(redis_url)
    if not redis then
      error(format("cloudflare.new: rate_limit.redis%s: %s", rl.redis and "" or " (from CFRUN_RATE_REDIS)",
        rerr), level)
    end
    if redis.password then core.add_secret(redis.password) end
  end
  local budget = ratelimit.budget { requests = rl.requests or 1200, per = rl.per or 300, name = name,
    shared = rl.shared, redis = redis }
  fields.transport = transport.new(client, { max_retries = opts.max_retries,
    max_retry_wait = opts.max_retry_wait, log = log, budget = budget,
    on_wait = opts.on_wait, max_in_flight = opts.max_in_flight, key = key })
  fields.generation = generation
  fields.cache = { origin_cloud_regions = origin_cloud_regions.bind(client, fields.transport,
    generation) }
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

-- cloudflare.cache.origin_cloud_regions.<op>: the same operations on the default client.
local default_ns = {}
for _, op in ipairs(origin_cloud_regions.NAMES) do
  default_ns[op] = function(args)
    local binder = require "cloudflare.binder"
    binder.check_colon(origin_cloud_regions, op, args, "cloudflare", 2)
    binder.precheck(origin_cloud_regions, op, args, 2) -- a mistake is told before credentials
    return get_default(2).cache.origin_cloud_regions[op](args)
  end
end
M.cache = { origin_cloud_regions = default_ns }

-- Concurrency (cloudflare.async): tasks whose API calls run at the same time.
M.spawn = async.spawn
M.wait = async.wait
M.parallel = async.parallel
M.sleep = async.sleep

--- cloudflare.default_client() -> the default client (built from the environment).
function M.default_client()
  return get_default(2)
end

return M
