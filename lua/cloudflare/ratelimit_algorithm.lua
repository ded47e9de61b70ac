-- cloudflare.ratelimit_algorithm: the rate budget's algorithm (see cloudflare.ratelimit), as
-- Lua that runs both here (Lua 5.4) and inside Redis (Lua 5.1), so it keeps to what both
-- have (ratelimit_spec checks for 5.4's operators) and requires nothing. cloudflare.ratelimit gives
-- Redis this file's text (core.module_text) and runs the compiled module itself.
--
-- State s is { log = { slice end, count, ... } ascending, seed = (the same, for requests other
-- processes sent before Redis failed), inflight = { [id] = { t =, o = owner } }, allow =,
-- allow_until =, blocked =, degraded = }; p holds the budget (requests, per, lease, margin,
-- share) and the op's arguments. Each op returns the seconds to wait (0: granted or done) and
-- why.
local RL = {}

-- The log is a flat list { t1, n1, t2, n2, ... }: n requests started in the slice of time
-- ending at t (slices of per / 100 seconds). Counting each request at its slice's end (at or
-- after its real start) keeps it in the window a little longer than the server does: never
-- too early, at most per / 100 late; and the state stays ~200 numbers however fast the
-- requests go.
local function slice_end(now, p)
  local q = p.per / 100
  return math.ceil(now / q) * q
end

local function prune_log(log, now, p)
  local keep = {}
  for i = 1, #(type(log) == "table" and log or {}) - 1, 2 do
    local t, n = tonumber(log[i]), tonumber(log[i + 1])
    -- outside (now - per, now + per / 100 + 1 s]: left the window, or from another clock
    if t and n and n > 0 and t > now - p.per and t <= now + p.per / 100 + 1 then
      keep[#keep + 1] = t
      keep[#keep + 1] = n
    end
  end
  return keep
end

-- Two logs as one, ascending.
local function merged(a, b)
  local sum, keys, out = {}, {}, {}
  for _, log in ipairs({ a, b }) do
    for i = 1, #log - 1, 2 do
      if not sum[log[i]] then keys[#keys + 1] = log[i] end
      sum[log[i]] = (sum[log[i]] or 0) + log[i + 1]
    end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    out[#out + 1] = k
    out[#out + 1] = sum[k]
  end
  return out
end

local function prune(s, now, p)
  s.log = prune_log(s.log, now, p)
  s.seed = prune_log(s.seed, now, p)
  if #s.seed == 0 then s.seed = nil end
  if type(s.degraded) ~= "number" or s.degraded <= now then s.degraded = nil end
  local fl = {}
  for id, f in pairs(type(s.inflight) == "table" and s.inflight or {}) do
    if type(f) == "table" and tonumber(f.t) and f.t + p.lease > now and f.t <= now + 1 then
      fl[id] = f
    end
  end
  s.inflight = fl
  if type(s.blocked) ~= "number" or s.blocked <= now then s.blocked = nil end
  if type(s.allow) ~= "number" or type(s.allow_until) ~= "number" or s.allow_until <= now then
    s.allow, s.allow_until = nil, nil
  end
end

-- Requests in the log at or after time `from`, and when the `k`-th oldest of them leaves a
-- window of `window` seconds (nil when there are fewer).
local function count_from(log, from, k, window)
  local n, leaves = 0, nil
  for i = 1, #log - 1, 2 do
    if log[i] > from then
      n = n + log[i + 1]
      if not leaves and k and n >= k then leaves = log[i] + window end
    end
  end
  return n, leaves
end

local function add(s, t, n)
  local log = s.log
  local last = #log - 1
  if last >= 1 and log[last] == t then
    log[last + 1] = log[last + 1] + n
  else
    log[#log + 1] = t
    log[#log + 1] = n
  end
end

-- A request wants to start: granted (its start recorded) or the seconds to wait, and why.
function RL.acquire(s, now, p)
  prune(s, now, p)
  if s.blocked then return s.blocked - now, "blocked" end
  if s.allow and s.allow <= 0 then return s.allow_until - now, "header" end
  local log = s.seed and merged(s.log, s.seed) or s.log
  -- after a process came back from a Redis outage, the others may still be on their own
  -- budgets with requests Redis does not know of: the share each of them keeps to
  local requests = s.degraded and math.max(1, math.floor(p.requests * p.share)) or p.requests
  local n = count_from(log, now - p.per)
  if n >= requests then
    -- it may start once the oldest n - requests + 1 left the window
    local _, leaves = count_from(log, now - p.per, n - requests + 1, p.per)
    local free = leaves + p.margin
    if free > now then return free - now, "budget" end
  end
  add(s, slice_end(now, p), 1)
  s.inflight[p.id] = { t = now, o = p.owner }
  if s.allow then s.allow = s.allow - 1 end
  return 0, "granted"
end

-- A request ended: its reservation goes; what its response said narrows the budget.
function RL.done(s, now, p)
  prune(s, now, p)
  if p.id ~= nil then s.inflight[p.id] = nil end -- nil: no grant to give back (only the news)
  -- a server's numbers, bounded: a week at most (the state must stay finite to be stored)
  local WEEK = 604800
  if type(p.retry_after) == "number" and p.retry_after > 0 then
    local b = now + math.min(p.retry_after, WEEK)
    if not s.blocked or b > s.blocked then s.blocked = b end
  end
  if type(p.remaining) == "number" and p.remaining >= 0 then
    local others = 0
    for _ in pairs(s.inflight) do others = others + 1 end
    local reset = type(p.reset) == "number" and math.min(p.reset, WEEK) or 0
    if reset > 0 then
      local allow, until_ = p.remaining - others, now + reset
      if allow <= 0 and p.quota and p.window then
        -- our own requests explain it: the moment enough of ours left the window that
        -- fewer than quota remain in it (the header's t is rounded up to whole seconds)
        local inside = count_from(s.log, now - p.window)
        if p.quota > 0 and inside >= p.quota then
          local _, leaves = count_from(s.log, now - p.window, inside - p.quota + 1, p.window)
          if leaves and leaves + p.margin < until_ then until_ = leaves + p.margin end
        end
      end
      s.allow, s.allow_until = allow, until_
    else
      s.allow, s.allow_until = nil, nil
    end
  end
  return 0, "done"
end

-- Requests this process sent `ages` seconds ago while the store did not see them (Redis was
-- down): added to the log, so the store counts them; and, for a window, requests other
-- processes still cut off from Redis send are allowed for (s.degraded).
function RL.merge(s, now, p)
  prune(s, now, p)
  s.degraded = math.max(s.degraded or 0, now + p.per)
  local add_n = {}
  for i = 1, #(p.ages or {}) do
    local t = now - p.ages[i]
    if t > now - p.per then
      local k = slice_end(t, p)
      add_n[k] = (add_n[k] or 0) + 1
    end
  end
  local log = s.log
  for i = 1, #log - 1, 2 do add_n[log[i]] = (add_n[log[i]] or 0) + log[i + 1] end
  local keys = {}
  for k in pairs(add_n) do keys[#keys + 1] = k end
  table.sort(keys)
  s.log = {}
  for _, k in ipairs(keys) do add(s, k, add_n[k]) end
  return 0, "merged"
end

-- What Redis last said of the window ({ age, count, ... }) as the fallback budget takes over:
-- every machine counts a share of it, so that machines on their own budgets do not spend
-- what was already spent. Processes of one machine seed the same file: by slice, the most
-- any of them saw is kept, not the sum.
function RL.seed(s, now, p)
  prune(s, now, p)
  local seed, at = s.seed or {}, {}
  for i = 1, #seed - 1, 2 do at[seed[i]] = i end
  local log = p.log or {}
  for i = 1, #log - 1, 2 do
    local age, n = tonumber(log[i]), tonumber(log[i + 1])
    if age and n and n > 0 then
      local t = slice_end(now - age, p)
      if t > now - p.per and t <= now + p.per / 100 + 1 then
        if at[t] then
          seed[at[t] + 1] = math.max(seed[at[t] + 1], n * p.share)
        else
          seed[#seed + 1] = t
          seed[#seed + 1] = n * p.share
          at[t] = #seed - 1
        end
      end
    end
  end
  s.seed = merged(seed, {})
  if #s.seed == 0 then s.seed = nil end
  return 0, "seeded"
end

return RL
