-- cloudflare.util: argument checking shared by the modules of lua/cloudflare, so every
-- raised message has one shape: "<function>: bad argument '<name>': <what was wrong>".
-- Must stay free of I/O and of any knowledge of endpoints.
local format = string.format

local M = {}

--- A printable, bounded rendering of a value the caller passed (never long, never raw).
function M.quote(v)
  local s = tostring(v)
  if #s > 40 then
    -- cut at 40 bytes, but never inside a UTF-8 sequence (its continuation bytes are 10xxxxxx)
    local cut = 40
    while cut > 1 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
    s = s:sub(1, cut) .. "..."
  end
  -- %q writes a newline as a backslash and a real line break: a message keeps to one line
  return (format("%q", s):gsub("\\\n", "\\n"))
end

-- A check that v is a finite number of seconds in [lo, hi] (above lo when open_lo).
local function seconds(lo, hi, open_lo)
  return function(v)
    if type(v) ~= "number" or v ~= v or v < lo or v > hi or (open_lo and v == lo) then
      return format(open_lo and "expected more than %g and at most %g seconds, got %s"
        or "expected from %g to %g seconds, got %s", lo, hi, M.quote(v))
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

--- The edit distance between strings a and b (insertions, deletions, substitutions and
--- swaps of two neighbours each count 1).
function M.distance(a, b)
  local la, lb = #a, #b
  local prev2, prev = nil, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = ca == b:byte(j) and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if prev2 and i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

--- The name of `names` closest to `name`, when it is close enough to be what was meant
--- (at most 1 edit for short names, 2 for longer ones, or a prefix of 3+ characters), or nil.
function M.closest(name, names)
  if type(name) ~= "string" then return nil end
  local lower = name:lower()
  local best, best_d
  for _, n in ipairs(names) do
    local d = M.distance(lower, n:lower())
    if #lower >= 3 and n:sub(1, #lower) == lower then d = math.min(d, 1) end
    if not best_d or d < best_d then best, best_d = n, d end
  end
  if best_d and best_d <= (#name <= 4 and 1 or 2) and best_d < #name then return best end
end

--- "unknown <what> "x" (did you mean "y"?); valid: a, b, c": names is the ordered list.
function M.unknown(what, k, names)
  local near = M.closest(k, names)
  return format("unknown %s %s%s; valid: %s", what, M.quote(k),
    near and format(" (did you mean %s?)", M.quote(near)) or "", table.concat(names, ", "))
end

--- Checks that args is a table whose keys are all in `allowed` (typos raise, with the closest
--- valid name and the valid ones, in the order of `names` when given).
function M.check_args(fname, args, allowed, level, names)
  if type(args) ~= "table" then
    error(format("%s: expected a table of arguments, got %s", fname, type(args)), level + 1)
  end
  for k in pairs(args) do
    if not allowed[k] then
      if not names then
        names = {}
        for n in pairs(allowed) do names[#names + 1] = n end
        table.sort(names)
      end
      error(format("%s: %s", fname, M.unknown("argument", k, names)), level + 1)
    end
  end
  return args
end

--- Why s, which is not a valid IP address, is not one, when a common mistake explains it:
--- a reason, or nil. `canonical` is cloudflare.ip.canonical.
function M.ip_problem(s, canonical)
  if type(s) ~= "string" then return nil end
  local trimmed = s:match("^%s*(.-)%s*$")
  if trimmed ~= s then
    local inner = M.ip_problem(trimmed, canonical)
    return "surrounding whitespace or a carriage return (CRLF file?)"
      .. (canonical(trimmed) and "" or inner and "; and " .. inner or "")
  end
  local addr = s:match("^([^/]+)/%d+$")
  if addr and canonical(addr) then
    return "a CIDR, not an address: use cloudflare.select.cidr or list the addresses"
  end
  local zaddr, zone = s:match("^([^%%]+)(%%.+)$")
  if zaddr and canonical(zaddr) then
    return format("a zone index (%s) is not part of an address", zone)
  end
  local o = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #o == 4 then
    for _, part in ipairs(o) do
      if #part > 1 and part:sub(1, 1) == "0" then
        return "a leading zero, which some tools read as octal"
      end
    end
  end
  if not s:find(":", 1, true) and s:find("^[%w][%w%-]*%.[%w%-%.]*%a[%w%-]*%.?$") then
    return "a host name, not an address"
  end
  return nil
end

--- The error text of an invalid IP: "invalid IP address[: why]".
function M.invalid_ip(s, canonical)
  local why = M.ip_problem(s, canonical)
  return why and "invalid IP address: " .. why or "invalid IP address"
end

--- Where a zone id is found, for messages about a zone argument that is not one.
M.ZONE_HINT = "the zone id is the 32-hex-digit id on the zone's Overview page in the "
  .. "Cloudflare dashboard, or from GET /zones?name=%s"

--- What is wrong with zone id z (a string), or nil: a zone id is 32 hex digits.
function M.zone_problem(z)
  if #z == 32 and z:find("^%x+$") then return nil end
  local looks_like_name = z:find("^[%w][%w%-]*%.[%w%-%.]*%a[%w%-]*%.?$") ~= nil
  local what = looks_like_name and "a domain name, not a zone id"
    or format("expected 32 hex digits, got %d characters", #z)
  return format("%s %s: %s", what, M.quote(z),
    format(M.ZONE_HINT, looks_like_name and z or "example.com"))
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
  -- every key lies in 1..n but fewer than n are there: a hole (# is then any border)
  for k = 1, n do
    if list[k] == nil then
      M.argerror(fname, arg, format("element %d is nil: a list cannot have holes (of %d elements)", k, n),
        level + 1)
    end
  end
  return n
end

return M
