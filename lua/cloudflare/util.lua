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
