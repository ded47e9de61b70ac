-- cloudflare.transport: one logical API request over a native Client: rate-limit pacing
-- (a client-side budget and Cloudflare's Ratelimit headers), a bound on requests in flight,
-- retries with backoff, and the debug log. Must not know endpoints or result shapes; it
-- returns what Client:request returns, plus the number of attempts.
--
-- Concurrent tasks (cloudflare.async) may send through one transport at once: a request
-- yields while in flight, and the budget is checked and spent with no yield in between.
local async = require "cloudflare.async"
local core = require "cloudflare.core"

local now, sleep = core.now, async.sleep
local format = string.format

local M = {}

local Transport = {}
Transport.__index = Transport

-- Requests in flight at once, bounded per process, per credential and max_in_flight value: the
-- rate budget itself is cloudflare.ratelimit's, shared across processes.
local slot_sets = {}

local function slots_for(key, max_in_flight)
  key = format("%s\n%d", key, max_in_flight)
  slot_sets[key] = slot_sets[key] or async.semaphore(max_in_flight)
  return slot_sets[key]
end

--- The max_retry_wait of clients that do not set one: 60 s, or 300 s (the length of
--- Cloudflare's block) in a --job/--every/--cron run, where a 429 would cost the job's work.
M.default_max_retry_wait = 60

--- M.new(client, cfg): cfg.max_retries (2), cfg.max_retry_wait (M.default_max_retry_wait),
--- cfg.rate_limit ({requests = 1200, per = 300}), cfg.max_in_flight (16), cfg.log ("debug"
--- or nil), cfg.on_wait (function), cfg.key (what identifies the credential: clients with
--- the same key share one budget), cfg.budget (a cloudflare.ratelimit budget; default: one
--- of this process, for a client alone).
function M.new(client, cfg)
  local rl = cfg.rate_limit or { requests = 1200, per = 300 }
  local key = cfg.key or tostring(client)
  return setmetatable({
    client = client,
    max_retries = cfg.max_retries or 2,
    max_retry_wait = cfg.max_retry_wait,
    budget = cfg.budget or require("cloudflare.ratelimit").budget { requests = rl.requests, per = rl.per },
    slots = slots_for(key, cfg.max_in_flight or 16),
    debug = cfg.log == "debug",
    on_wait = cfg.on_wait,
    stats = { requests = 0, retries = 0, waits = 0, waited = 0 },
  }, Transport)
end

function Transport:log(fmt, ...)
  if self.debug then io.stderr:write("cfrun: ", core.sanitize(format(fmt, ...)), "\n") end
end

-- Sleeps for `secs`, visibly: in the debug log and through the on_wait hook. A signal that
-- stops the process cuts the sleep short.
function Transport:wait(secs, reason)
  if secs <= 0 then return end
  self.stats.waits = self.stats.waits + 1
  self.stats.waited = self.stats.waited + secs
  core.stats.waits = core.stats.waits + 1
  core.stats.waited = (core.stats.waited or 0) + secs
  self:log("waiting %.2f s: %s", secs, reason)
  if self.on_wait then self.on_wait(secs, reason) end
  sleep(secs)
end

-- The error of a request the rate limit keeps from being sent within max_retry_wait.
local function rate_limited(secs, max_wait)
  return core.error { kind = "rate_limited", retry_after = secs, unsent = true,
    message = format("not sent: the API's rate limit (Ratelimit header) resets in %.0f s, "
      .. "more than max_retry_wait (%g s); try again later or raise max_retry_wait", secs, max_wait) }
end

-- Waits for the rate budget (cloudflare.ratelimit: shared by every process of the user) to
-- grant a request, and returns true and the grant's id. Loops, as other tasks and processes
-- may spend what a wait freed before this one wakes. Returns nil and an error instead of
-- waiting longer than max_wait for the API's reset or a 429's Retry-After; returns true and
-- no id when a signal stops the process meanwhile.
function Transport:pace(max_wait)
  local b = self.budget
  while true do
    if core.stopping() then return true end
    local wait, id = b:acquire()
    if wait <= 0 then return true, id end
    if id ~= "budget" and wait > max_wait then return nil, rate_limited(wait, max_wait) end
    self:wait(wait, id == "budget" and format("client rate budget of %d requests per %g s",
      b.requests, b.per) or id == "blocked" and "the API's rate limit (a 429's Retry-After)"
      or "the API's rate limit (Ratelimit header)")
  end
end

-- Gives the grant back once its request ended, with what the response said of the limit
-- (the Ratelimit header; for a 429, the Retry-After): every process sharing the budget
-- learns it.
function Transport:observe(info, id)
  local retry_after = info and info.status == 429 and info.retry_after or nil
  self.budget:done(id, info and info.ratelimit, retry_after)
end

local function retryable(err)
  if err.should_retry ~= nil then return err.should_retry end -- x-should-retry wins
  if err.kind == "network" or err.kind == "timeout" then return true end
  local s = err.status
  return s ~= nil and (s == 408 or s == 409 or s == 429 or s >= 500)
end
M.retryable = retryable

-- Whether a failed attempt certainly was not applied: never written (err.unsent from the
-- transfer), or refused as a whole with a status that says so (any error status but 408, 409,
-- 429 and 5xx, whose requests the server may have applied in part or in full).
local function refused(err)
  if err.unsent then return true end
  local s = err.status
  return err.kind ~= "decode" and s ~= nil and s >= 300 and s < 500 and s ~= 408 and s ~= 409
    and s ~= 429
end
M.refused = refused

-- The error of a request a stopping process no longer sends.
local function stopped(sig, unsent)
  core.consume_interrupt() -- reported here, so not raised as well
  return core.error { kind = "interrupted", unsent = unsent or nil, signal = sig,
    message = format("interrupted by %s: not sent, as cfrun is stopping", sig) }
end

--- t:send(method, path, body, opts[, on_attempt[, on_send]]) -> result, info, attempts |
--- nil, err, attempts. opts: max_retries, max_retry_wait, timeout, connect_timeout (per call),
--- shape (Client:request's: "batch" for a batch request).
--- on_attempt(n, result, info_or_err) is called after every attempt (the journal records
--- each one), on_send(n) right before attempt n goes out.
--- err.unsent is true when no attempt can have been applied (see refused); a signal that
--- stops the process ends the call with err.kind "interrupted", and a wait longer than
--- max_retry_wait (Retry-After, the API's Ratelimit reset) ends it with err.retry_after set.
function Transport:send(method, path, body, opts, on_attempt, on_send)
  opts = opts or {}
  local max_retries = opts.max_retries or self.max_retries
  local max_wait = opts.max_retry_wait or self.max_retry_wait or M.default_max_retry_wait
  local req_opts = { timeout = opts.timeout, connect_timeout = opts.connect_timeout, shape = opts.shape }
  local attempt, unsent = 0, true -- unsent: no attempt so far can have been applied
  local slots = self.slots
  while true do
    local sig = core.stopping()
    if sig then return nil, stopped(sig, unsent), attempt end
    attempt = attempt + 1
    local result, info, started
    do
      -- given back however this block is left: an error in a hook, a signal
      local slot <close> = slots:acquire() -- luacheck: ignore 211
      local ok, grant = self:pace(max_wait)
      sig = core.stopping()
      if sig or not ok then
        if ok and grant then self.budget:done(grant) end -- granted, never sent
        local err = sig and stopped(sig, unsent) or grant
        err.unsent = unsent or nil -- an earlier attempt may have been applied
        if on_attempt then on_attempt(attempt, nil, err) end
        return nil, err, attempt - 1
      end
      -- the grant is given back however the request ends (a hook that raises included)
      local held <close> = setmetatable({}, { __close = function() -- luacheck: ignore 211
        if grant then self:observe(info, grant) end
      end })
      if on_send then on_send(attempt) end
      self.stats.requests = self.stats.requests + 1
      core.stats.requests = core.stats.requests + 1
      started = now()
      result, info = async.request(self.client, method, path, body, req_opts)
    end
    if self.debug then
      self:log("%s %s -> %s (%s bytes, %.1f ms%s, attempt %d)", method, path,
        result and tostring(info.status) or (info.status and tostring(info.status) or info.kind),
        tostring(info.bytes or 0), (now() - started) * 1000,
        info.request_id and (", cf-ray " .. info.request_id) or "", attempt)
    end
    if result == nil then
      unsent = unsent and refused(info)
      info.unsent = unsent or nil
    end
    if on_attempt then on_attempt(attempt, result, info) end
    if result ~= nil then return result, info, attempt end

    local err = info
    if err.kind == "interrupted" then
      core.consume_interrupt()
      return nil, err, attempt
    end
    if attempt > max_retries or not retryable(err) then return nil, err, attempt end
    local delay
    if err.retry_after then
      if err.retry_after > max_wait then
        self:log("not retrying: the server asks for %.1f s, more than max_retry_wait %g s",
          err.retry_after, max_wait)
        return nil, err, attempt
      end
      delay = err.retry_after
    else
      -- exponential backoff from 0.5 s, capped at 8 s, minus up to 25 % jitter
      delay = math.min(0.5 * 2 ^ (attempt - 1), 8) * (1 - 0.25 * math.random())
    end
    self.stats.retries = self.stats.retries + 1
    core.stats.retries = core.stats.retries + 1
    self:log("retrying %s %s in %.2f s after %s (attempt %d of %d)", method, path, delay,
      err.message, attempt + 1, max_retries + 1)
    self:wait(delay, "retry backoff after " .. (err.status and ("HTTP " .. err.status) or err.kind))
  end
end

return M
