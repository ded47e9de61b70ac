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

-- Budgets by credential, base URL and limits: every client of one token in this state
-- spends the same one, as the API counts requests per token.
local budgets = {}

local function budget_for(key, rl, max_in_flight)
  key = format("%s\n%d/%g\n%d", key, rl.requests, rl.per, max_in_flight)
  local b = budgets[key]
  if not b then
    b = {
      budget = rl.requests,
      per = rl.per,
      sent = {},            -- ring of the send times of the last `budget` requests
      head = 0,             -- index of the oldest entry in `sent`
      blocked_until = 0,    -- from a Ratelimit header with r=0, or a 429's Retry-After
      slots = async.semaphore(max_in_flight), -- requests in flight at once
    }
    budgets[key] = b
  end
  return b
end

--- M.new(client, cfg): cfg.max_retries (2), cfg.max_retry_wait (60 s), cfg.rate_limit
--- ({requests = 1200, per = 300}), cfg.max_in_flight (16), cfg.log ("debug" or nil),
--- cfg.on_wait (function), cfg.key (what identifies the credential: clients with the same
--- key, limits included, share one budget; nil: this client alone).
function M.new(client, cfg)
  local rl = cfg.rate_limit or { requests = 1200, per = 300 }
  local b = budget_for(cfg.key or tostring(client), rl, cfg.max_in_flight or 16)
  return setmetatable({
    client = client,
    max_retries = cfg.max_retries or 2,
    max_retry_wait = cfg.max_retry_wait or 60,
    b = b,
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

-- The client-side budget: at most `budget` requests in any `per` seconds. A small margin
-- covers the time a request takes to reach the server, whose window starts on arrival.
-- Loops, as other tasks may spend what a wait freed before this one wakes. Returns an error
-- instead of waiting longer than max_wait for the API's reset, or when a signal stops the
-- process meanwhile.
function Transport:pace(max_wait)
  local b = self.b
  while true do
    if core.stopping() then return true end
    local t = now()
    if b.blocked_until > t then
      local secs = b.blocked_until - t
      if secs > max_wait then return false, rate_limited(secs, max_wait) end
      self:wait(secs, "the API's rate limit (Ratelimit header)")
    elseif #b.sent >= b.budget
        and b.sent[b.head + 1] + b.per + math.min(0.05, b.per / 100) > t then
      self:wait(b.sent[b.head + 1] + b.per + math.min(0.05, b.per / 100) - t,
        format("client rate budget of %d requests per %g s", b.budget, b.per))
    else
      return true
    end
  end
end

function Transport:record_send()
  local b, t = self.b, now()
  if #b.sent < b.budget then
    b.sent[#b.sent + 1] = t
  else
    b.sent[b.head + 1] = t
    b.head = (b.head + 1) % b.budget
  end
end

-- When the oldest of our last `quota` requests leaves a `window`-second window, or nil if
-- fewer than `quota` of our requests fall inside it.
function Transport:window_frees(quota, window)
  local t, inside = now(), {}
  for _, s in ipairs(self.b.sent) do
    if t - s < window then inside[#inside + 1] = s end
  end
  if #inside < quota then return nil end
  table.sort(inside)
  return inside[#inside - quota + 1] + window
end

-- Learns from the Ratelimit headers. When the API says the budget is spent and our own
-- requests explain it, our send times give the exact moment a slot frees (the header's
-- seconds are rounded up); otherwise others share the token, so trust the header.
function Transport:observe(hints)
  local rl = hints and hints.ratelimit
  if rl and rl.remaining == 0 then
    local free = rl.quota and rl.window and self:window_frees(rl.quota, rl.window)
    local margin = math.min(0.05, (rl.window or 1) / 100)
    self.b.blocked_until = math.max(self.b.blocked_until, free and free + margin or now() + rl.reset)
  end
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
--- nil, err, attempts. opts: max_retries, max_retry_wait, timeout, connect_timeout (per call).
--- on_attempt(n, result, info_or_err) is called after every attempt (the journal records
--- each one), on_send(n) right before attempt n goes out.
--- err.unsent is true when no attempt can have been applied (see refused); a signal that
--- stops the process ends the call with err.kind "interrupted", and a wait longer than
--- max_retry_wait (Retry-After, the API's Ratelimit reset) ends it with err.retry_after set.
function Transport:send(method, path, body, opts, on_attempt, on_send)
  opts = opts or {}
  local max_retries = opts.max_retries or self.max_retries
  local max_wait = opts.max_retry_wait or self.max_retry_wait
  local req_opts = { timeout = opts.timeout, connect_timeout = opts.connect_timeout }
  local attempt, unsent = 0, true -- unsent: no attempt so far can have been applied
  local slots = self.b.slots
  while true do
    local sig = core.stopping()
    if sig then return nil, stopped(sig, unsent), attempt end
    attempt = attempt + 1
    local result, info, started
    do
      -- given back however this block is left: an error in a hook, a signal
      local slot <close> = slots:acquire() -- luacheck: ignore 211
      local ok, perr = self:pace(max_wait)
      sig = core.stopping()
      if sig or not ok then
        local err = sig and stopped(sig, unsent) or perr
        err.unsent = unsent or nil -- an earlier attempt may have been applied
        if on_attempt then on_attempt(attempt, nil, err) end
        return nil, err, attempt - 1
      end
      if on_send then on_send(attempt) end
      self:record_send()
      self.stats.requests = self.stats.requests + 1
      core.stats.requests = core.stats.requests + 1
      started = now()
      result, info = async.request(self.client, method, path, body, req_opts)
    end
    self:observe(info)
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
      if err.status == 429 then self.b.blocked_until = math.max(self.b.blocked_until, now() + delay) end
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
