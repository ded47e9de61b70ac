-- cloudflare.ratelimit: the rate budget of a Cloudflare user, shared by every cfrun process
-- that spends it. Cloudflare counts 1,200 requests per 5 minutes per user, across all of the
-- user's tokens and clients, and blocks the user for five minutes once that is passed, so a
-- budget per process is not enough. Three stores hold the same state and run the same
-- algorithm:
--   memory  one process (a client with no credential key, or rate_limit.shared = false);
--   file    every process of this OS user on this machine: a state file under
--           $XDG_RUNTIME_DIR/cfrun/ (else /tmp/cfrun-<uid>/), read and rewritten under flock;
--   redis   every process on every machine: one key in Redis, changed by one server-side
--           script (EVALSHA), atomic as Redis runs one script at a time.
-- When Redis cannot be reached, the machine's file store takes over at FALLBACK_SHARE of the
-- limit (said once on stderr and in the job log), seeded with that share of the window Redis
-- last showed; Redis is tried again every RETRY_REDIS seconds, and on its return this
-- process's recent requests are merged into it and, for a window, it grants only the share.
--
-- The algorithm is a sliding-window log, chosen over GCRA because Cloudflare's limit is a
-- window of `per` seconds (so is the fake's) and the log knows when a slot frees: a request
-- may start while fewer than `requests` started in the last `per` seconds (counted in slices
-- of per / 100, each request at its slice's end: never early, at most 1 % late). On top
-- of it, the API's own view wins: a response's Ratelimit header (remaining r, reset t) sets
-- an allowance of r minus the requests then in flight (they may be counted already) until t,
-- which each request spends; r = 0 waits until t (or, when our own log explains it, until
-- our oldest request in the window leaves it). A 429's Retry-After blocks everyone sharing
-- the budget until it passes.
local core = require "cloudflare.core"
local json = require "cloudflare.json"

local M = {}

--- The share of the limit a process keeps to while Redis is unreachable: every machine falls
--- back to its own budget of requests * FALLBACK_SHARE, so up to 1 / FALLBACK_SHARE machines
--- cannot overrun the user's limit together.
M.FALLBACK_SHARE = 0.25
--- Seconds between attempts to reach Redis again after it failed.
M.RETRY_REDIS = 2
--- Seconds a request may stay in flight before its reservation is dropped (a process that
--- died mid-request; on one machine a dead process's are dropped at once).
M.LEASE = 120
--- Warnings said so far (for the job log), each once.
M.warnings = {}

local function warn(msg)
  for _, w in ipairs(M.warnings) do
    if w == msg then return end
  end
  M.warnings[#M.warnings + 1] = msg
  io.stderr:write("cfrun: warning: ", msg, "\n")
end
M.warn = warn

-- The algorithm (lua/cloudflare/ratelimit_algorithm.lua): compiled into the binary as every
-- module is, and kept as text for Redis, which runs it too.
local RL = require "cloudflare.ratelimit_algorithm"
--- The algorithm's source: Lua that runs both here (Lua 5.4) and inside Redis (Lua 5.1).
M.ALGORITHM = core.module_text("cloudflare.ratelimit_algorithm")


-- The server side of the Redis store: the algorithm, then one call of it on the key's state
-- at the server's clock (so machines need not agree on the time). Returns { wait, why }.
M.REDIS_SCRIPT = "local RL = (function()\n" .. M.ALGORITHM .. "\nend)()\n" .. [==[
local raw = redis.call('GET', KEYS[1])
local s = {}
if raw then
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then s = v end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local p = cjson.decode(ARGV[2])
local wait, why = RL[ARGV[1]](s, now, p)
-- the window as ages, for the fallback should Redis fail before the next call
local ages = {}
for i = 1, #s.log - 1, 2 do
  ages[#ages + 1] = now - s.log[i]
  ages[#ages + 1] = s.log[i + 1]
end
if next(s.inflight) == nil then s.inflight = nil end -- cjson writes {} as an object anyway
redis.call('SET', KEYS[1], cjson.encode(s), 'PX', math.floor((p.per * 2 + p.lease) * 1000))
return { tostring(wait), why, cjson.encode(ages) }
]==]

---------------------------------------------------------------------------------------------
-- stores: store:call(op, p) -> wait, why | nil, message

local Memory = {}
Memory.__index = Memory

local function memory_store()
  return setmetatable({ s = { log = {}, inflight = {} } }, Memory)
end

function Memory:call(op, p)
  return RL[op](self.s, core.now(), p)
end

local File = {}
File.__index = File

local function file_store(path)
  local f, err = core.rate_file(path)
  if not f then return nil, err end
  return setmetatable({ f = f, path = path }, File)
end

local pid = core.pid()

local BOOT = (function()
  local f = io.open("/proc/sys/kernel/random/boot_id")
  local id = f and f:read("l")
  if f then f:close() end
  return id or "unknown"
end)()

function File:call(op, p)
  local text, err = self.f:lock()
  if not text then return nil, err end
  local ok, s = pcall(json.decode, text)
  if text ~= "" and not (ok and type(s) == "table") then
    warn("the rate budget file " .. self.path .. " was corrupt (a process killed while"
      .. " writing it?); rebuilt empty")
  end
  -- times are of the monotonic clock, which starts again at boot (and /tmp may outlive one)
  if not (ok and type(s) == "table") or s.boot ~= BOOT then s = { boot = BOOT } end
  if type(s.log) ~= "table" then s.log = {} end
  if type(s.inflight) ~= "table" then s.inflight = {} end
  -- a reservation of a process that died is dropped at once: it sends nothing any more
  for id, fl in pairs(s.inflight) do
    if type(fl) ~= "table" or (math.type(fl.o) == "integer" and fl.o ~= pid
        and not core.pid_alive(fl.o)) then
      s.inflight[id] = nil
    end
  end
  local wait, why = RL[op](s, core.now(), p)
  local saved, werr = self.f:commit(json.encode(s))
  if not saved then return nil, werr end
  return wait, why
end

local Redis = {}
Redis.__index = Redis

--- ratelimit.parse_redis(url) -> { host=, port=, db=, password=, shown= } | nil, message.
--- redis://[[user]:password@]host[:port][/db]; shown is the URL without the password, for
--- messages.
function M.parse_redis(url)
  if type(url) ~= "string" then return nil, "expected a redis:// URL string" end
  if url:find("^rediss://") then
    return nil, "rediss:// (TLS) is not supported: Debian 12's hiredis (0.14) has no TLS; reach"
      .. " Redis over a private network or a TLS tunnel (stunnel, spiped) with redis://"
  end
  local rest = url:match("^redis://(.+)$")
  if not rest then return nil, "expected redis://host[:port][/db], got " .. string.format("%q", url) end
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  hostpart = hostpart or rest
  local password = auth and (auth:match("^[^:]*:(.*)$") or auth) or nil
  local host, port, db = hostpart:match("^([^:/]+):?(%d*)/?(%d*)$")
  if not host then return nil, "expected redis://host[:port][/db], got a malformed address" end
  local shown = "redis://" .. (password and "<redacted>@" or "") .. hostpart
  return { host = host, port = tonumber(port) or 6379, db = tonumber(db) or 0,
    password = password ~= "" and password or nil, shown = shown }
end

local function redis_store(cfg)
  return setmetatable({ cfg = cfg, conn = nil, sha = nil, down_until = 0 }, Redis)
end

function Redis:connect()
  local cfg = self.cfg
  local conn, err = core.redis_connect(cfg.host, cfg.port, 0.5)
  if not conn then return nil, err end
  if cfg.password then
    local ok, aerr = conn:call("AUTH", cfg.password)
    if not ok then conn:close(); return nil, aerr end
  end
  if cfg.db ~= 0 then
    local ok, serr = conn:call("SELECT", tostring(cfg.db))
    if not ok then conn:close(); return nil, serr end
  end
  local sha, lerr = conn:call("SCRIPT", "LOAD", M.REDIS_SCRIPT)
  if not sha then conn:close(); return nil, lerr end
  self.conn, self.sha = conn, sha
  return true
end

function Redis:call(op, p, key)
  if not self.conn then
    local ok, err = self:connect()
    if not ok then return nil, err end
  end
  local r, err = self.conn:call("EVALSHA", self.sha, "1", key, op, json.encode(p))
  if not r and tostring(err):find("NOSCRIPT", 1, true) then -- the server restarted: load again
    self.conn:close()
    self.conn = nil
    local ok, cerr = self:connect()
    if not ok then return nil, cerr end
    r, err = self.conn:call("EVALSHA", self.sha, "1", key, op, json.encode(p))
  end
  if not r then
    if self.conn then self.conn:close() end
    self.conn = nil
    return nil, err
  end
  return tonumber(r[1]) or 0, r[2], r[3]
end

---------------------------------------------------------------------------------------------
-- budgets

local Budget = {}
Budget.__index = Budget

local budgets = {} -- name -> Budget: every client of this process on one budget shares it
local counter = 0

local function margin(per) return math.min(0.05, per / 100) end

-- The local store of a budget: the machine's state file, else (with a warning) this process.
local function local_store(name)
  local dir, err = core.rate_dir()
  local store
  if dir then
    -- budgets nobody used for an hour are stale; looked for at most every 10 minutes
    core.rate_prune(dir, "rate-", 3600, 600)
    store, err = file_store(dir .. "/rate-" .. name .. ".json")
  end
  if not store then
    warn("the rate budget cannot be shared with other cfrun processes (" .. tostring(err)
      .. "); this process keeps its own")
    store = memory_store()
  end
  return store
end

--- ratelimit.budget{ requests=, per=, name=, shared=, redis= } -> budget: name identifies the
--- user's budget (already a digest, never the credential); shared = false (or no name) keeps
--- it to this process; redis = a parsed URL (M.parse_redis) shares it across machines.
function M.budget(a)
  local full = string.format("%s-%d-%g%s", a.name or "process", a.requests, a.per,
    a.redis and ("@" .. a.redis.host .. ":" .. a.redis.port .. "/" .. a.redis.db) or "")
  if a.name and a.shared ~= false and budgets[full] then return budgets[full] end
  local b = setmetatable({ requests = a.requests, per = a.per, name = a.name, own = {} }, Budget)
  if not a.name or a.shared == false then
    b.store = memory_store()
  elseif a.redis then
    b.redis, b.redis_cfg = redis_store(a.redis), a.redis
    b.redis_key = string.format("cfrun:rate:%s:%d:%g", a.name, a.requests, a.per)
    b.fallback_name = string.format("%s-%d-%g-fallback", a.name, math.max(1,
      math.floor(a.requests * M.FALLBACK_SHARE)), a.per)
  else
    b.store = local_store(string.format("%s-%d-%g", a.name, a.requests, a.per))
  end
  if a.name and a.shared ~= false then budgets[full] = b end
  return b
end

-- The budget's parameters for the algorithm, with op arguments `extra`.
function Budget:params(extra, requests)
  local p = { requests = requests or self.requests, per = self.per, lease = M.LEASE,
    margin = margin(self.per), share = M.FALLBACK_SHARE }
  for k, v in pairs(extra) do p[k] = v end
  return p
end

function Budget:fallback_requests()
  return math.max(1, math.floor(self.requests * M.FALLBACK_SHARE))
end

-- Runs op on the store; through Redis when it is up, else on the fallback.
function Budget:call(op, extra)
  if not self.redis then
    local wait, why = self.store:call(op, self:params(extra))
    if wait then return wait, why end
    warn("the rate budget file failed (" .. tostring(why) .. "); this process keeps its own budget")
    self.store = memory_store()
    return self.store:call(op, self:params(extra))
  end
  local t = core.now()
  if t >= self.redis.down_until then
    local recovering = self.redis_down
    if recovering then
      -- what this process sent meanwhile, so that Redis counts it
      local ages = {}
      for _, s in ipairs(self.own) do
        if t - s < self.per then ages[#ages + 1] = t - s end
      end
      if not self.redis:call("merge", self:params { ages = ages }, self.redis_key) then
        self.redis.down_until = t + M.RETRY_REDIS
        goto fallback
      end
    end
    do
      local wait, why, window = self.redis:call(op, self:params(extra), self.redis_key)
      if wait then
        -- kept as Redis sent it: it is read only should Redis fail
        self.seen_at, self.seen = t, window
        if recovering then
          self.redis_down = false
          warn("Redis at " .. self.redis_cfg.shown .. " is reachable again: the shared rate budget is back")
        end
        return wait, why
      end
      self.redis.down_until = t + M.RETRY_REDIS
      if not self.redis_down then
        self.redis_down = true
        warn(string.format("Redis at %s is unreachable (%s): keeping to this machine's budget of"
          .. " %d%% of the limit until it is back", self.redis_cfg.shown, core.redact(tostring(why)),
          math.floor(M.FALLBACK_SHARE * 100 + 0.5)))
        self.fallback = self.fallback or local_store(self.fallback_name)
        local ok, seen = pcall(json.decode, self.seen or "[]")
        if self.seen and ok and type(seen) == "table" then -- the window Redis last showed, aged to now
          local ages, d = {}, t - self.seen_at
          for i = 1, #seen - 1, 2 do
            ages[i], ages[i + 1] = (tonumber(seen[i]) or 0) + d, seen[i + 1]
          end
          self.fallback:call("seed", self:params({ log = ages }, self:fallback_requests()))
        end
      end
    end
  end
  ::fallback::
  self.fallback = self.fallback or local_store(self.fallback_name)
  if op == "done" and type(extra.remaining) == "number" then
    -- the API's remaining is the user's: each machine on its own budget takes its share
    extra.remaining = math.floor(extra.remaining * M.FALLBACK_SHARE)
  end
  return self.fallback:call(op, self:params(extra, self:fallback_requests()))
end

--- budget:acquire() -> 0, id (granted: the request may start; pass id to done) | seconds, why
--- (why: "budget", the client-side budget; "header", the API's Ratelimit said so;
--- "blocked", a 429's Retry-After).
function Budget:acquire()
  counter = counter + 1
  local id = string.format("%s:%d:%d", M.HOST, pid or 0, counter)
  local wait, why = self:call("acquire", { id = id, owner = pid })
  if wait > 0 then return wait, why end
  if self.redis then -- kept to be merged into Redis should it go down and come back
    local own, t = self.own, core.now()
    own[#own + 1] = t
    if #own > self.requests then table.remove(own, 1) end
  end
  return 0, id
end

--- budget:done(id[, ratelimit[, retry_after]]): the request ended; ratelimit is what its
--- response's headers said ({ remaining=, reset=, quota=, window= }), retry_after a 429's.
function Budget:done(id, rl, retry_after)
  local extra = { id = id, retry_after = retry_after }
  if type(rl) == "table" and type(rl.remaining) == "number" then
    extra.remaining, extra.reset, extra.quota, extra.window = rl.remaining, rl.reset, rl.quota, rl.window
  end
  self:call("done", extra)
end

--- Which store the budget is on now: "memory", "file", "redis" or "fallback".
function Budget:where()
  if self.redis then return self.redis_down and "fallback" or "redis" end
  return getmetatable(self.store) == File and "file" or "memory"
end

M.HOST = (function()
  local f = io.open("/proc/sys/kernel/hostname")
  local h = f and f:read("l")
  if f then f:close() end
  return h or "host"
end)()

return M
