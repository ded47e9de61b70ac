-- cloudflare.util: argument checking shared by the modules of lua/cloudflare, so every
-- raised message has one shape: "<function>: bad argument '<name>': <what was wrong>".
-- Must stay free of I/O and of any knowledge of endpoints.
local format = string.format

local M = {}

--- A printable, bounded rendering of a value the caller passed (never long, never raw).
function M.quote(v)
  local s = tostring(v)
  if #s > 40 then s = s:sub(1, 40) .. "..." end
  return format("%q", s)
end

-- A check that v is a finite number of seconds in [lo, hi] (above lo when open_lo).
local function seconds(lo, hi, open_lo)
  return function(v)
    if type(v) ~= "number" or v ~= v or v < lo or v > hi or (open_lo and v == lo) then
      return format("expected %s %g and %g seconds, got %s", open_lo and "more than" or "from",
        lo, hi, M.quote(v))
    end
  end
end

--- The sane ranges of the transport's options, per call and per client: LIMITS[name](v) ->
--- what is wrong with v, or nil. A timeout of 0, NaN or a day is a mistake, not a setting.
M.LIMITS = {
  timeout = seconds(0, 3600, true),
  connect_timeout = seconds(0, 600, true),
  max_retry_wait = seconds(0, 86400),
  max_retries = function(v)
    if math.type(v) ~= "integer" or v < 0 or v > 100 then
      return "expected a whole number from 0 to 100, got " .. M.quote(v)
    end
  end,
}

--- Raises "<fname>: bad argument '<arg>': <msg>" at `level` (counted from the caller).
function M.argerror(fname, arg, msg, level)
  error(format("%s: bad argument '%s': %s", fname, arg, msg), level + 1)
end

--- Checks that args is a table whose keys are all in `allowed` (typos raise).
function M.check_args(fname, args, allowed, level)
  if type(args) ~= "table" then
    error(format("%s: expected a table of arguments, got %s", fname, type(args)), level + 1)
  end
  for k in pairs(args) do
    if not allowed[k] then
      error(format("%s: unknown argument %s", fname, M.quote(k)), level + 1)
    end
  end
  return args
end

--- Checks that `list` is a proper sequence (keys 1..n) and returns n; `check(i, v)` may
--- return a message for a bad element.
function M.check_list(fname, arg, list, what, level, check)
  if type(list) ~= "table" then
    M.argerror(fname, arg, "expected a list of " .. what .. ", got " .. type(list), level + 1)
  end
  local n = #list
  -- The common case, a proper sequence, checked without a call per element: exactly n keys,
  -- none of 1..n missing, means the keys are 1..n. Anything else takes the loop below, which
  -- names the first stray key.
  local keys = 0
  for _ in pairs(list) do keys = keys + 1 end
  if keys == n then
    local i = 1
    while i <= n and list[i] ~= nil do i = i + 1 end
    if i > n then
      if check then
        for k = 1, n do
          local problem = check(k, list[k])
          if problem then M.argerror(fname, arg, format("element %d %s", k, problem), level + 1) end
        end
      end
      return n
    end
  end
  for k, v in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      M.argerror(fname, arg, "expected a list (keys 1.." .. n .. "), found key " .. M.quote(k),
        level + 1)
    end
    local problem = check and check(k, v)
    if problem then M.argerror(fname, arg, format("element %d %s", k, problem), level + 1) end
  end
  return n
end

return M
