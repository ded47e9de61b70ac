-- cloudflare.fake.ratelimit: Cloudflare's rate limit as the fake plays it: a sliding window per credential, the
-- Ratelimit / Ratelimit-Policy / Retry-After headers. Must not read requests or answer them: the server decides.

local R = {}

R.MIN_WINDOW = 0.001       -- seconds; Ratelimit-Policy writes w= with 3 decimals

-- Seconds as Ratelimit-Policy writes them: an integer, or up to 3 decimals.
local function format_seconds(x)
  local i = math.tointeger(x)
  if i then
    return string.format("%d", i)
  end
  return (string.format("%.3f", x):gsub("0+$", ""):gsub("%.$", ""))
end

local function headers(limit, remaining, reset)
  return {
    ["Ratelimit"] = string.format('"default";r=%d;t=%d', remaining, reset),
    ["Ratelimit-Policy"] = string.format('"burst";q=%d;w=%s', limit.requests, format_seconds(limit.per)),
  }
end

-- An API request arriving at `now`, under limit = { requests =, per = } (nil: off). windows
-- is { [credential] = window }, the server's; credential names the accepted token or
-- email/key pair (nil: not accepted, neither limited nor counted). A window holds the times of
-- accepted requests over the last `per` seconds; a request is accepted while fewer than
-- `requests` lie in it. The first refusal blocks the credential for `per` seconds, during
-- which every request is refused. Returns the header fields for the response (nil while the
-- limit is off) and, for a refused request, the seconds to wait.
function R.check(windows, limit, credential, now)
  if not limit then
    return nil
  end
  if not credential then
    return headers(limit, limit.requests, 0)
  end
  local w = windows[credential]
  if not w then
    w = { times = {}, head = 1, blocked_until = -math.huge }
    windows[credential] = w
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
    local h = headers(limit, 0, wait)
    h["Retry-After"] = string.format("%d", wait)
    return h, wait
  end
  times[last + 1] = now
  local reset = math.max(0, math.ceil(times[head] + limit.per - now))
  return headers(limit, limit.requests - count - 1, reset)
end

return R
