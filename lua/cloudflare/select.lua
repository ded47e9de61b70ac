-- cloudflare.select: composable predicates over mappings ({origin_ip=, region=, vendor=}) that
-- turn a listing into the plain IP lists bulk_delete takes. Must not do I/O.
--
--   local S = cloudflare.select
--   local doomed = S.vendor("aws") * S.cidr("10.0.0.0/8") * -S.ips(keep)   -- and, and not
--   local ips = doomed:ips(client.cache.origin_cloud_regions.list{ zone_id = z })
--
-- Operators: a * b (both), a + b (either), -a (not). Constructors raise on a mistake (an
-- unknown vendor, an invalid CIDR or IP), since a typo there would select the wrong hosts.
local ip = require "cloudflare.ip"
local json = require "cloudflare.json"
local util = require "cloudflare.util"

local canonical = ip.canonical
local format = string.format

local M = {}

local Selector = {}
Selector.__index = Selector
Selector.__name = "cloudflare.Selector"

local function new(fn, desc)
  return setmetatable({ fn = fn, desc = desc }, Selector)
end

local function is_selector(v)
  return getmetatable(v) == Selector
end
M.is_selector = is_selector

local function check_selector(v, fname, level)
  if not is_selector(v) then
    error(format("%s: expected a selector, got %s", fname, type(v)), level + 1)
  end
  return v
end

-- The mappings in x: a list of mappings, or a result whose value is one (list, edit).
local function mappings_of(x, fname)
  if type(x) ~= "table" then
    error(format("%s: expected a list of mappings or a list result, got %s", fname, type(x)), 3)
  end
  if type(x.value) == "table" and (x.value[1] ~= nil or json.is_array(x.value)) then
    return x.value
  end
  return x
end

local function strings(fname, ...)
  local list = { ... }
  if #list == 1 and type(list[1]) == "table" then list = list[1] end
  if #list == 0 then error(fname .. ": expected at least one value", 3) end
  for i, v in ipairs(list) do
    if type(v) ~= "string" then
      error(format("%s: value %d is a %s, expected a string", fname, i, type(v)), 3)
    end
  end
  return list
end

local function describe(name, list)
  if #list > 3 then return format("%s(%s, ... %d in all)", name, list[1], #list) end
  return format("%s(%s)", name, table.concat(list, ", "))
end

---------------------------------------------------------------------------------------------
-- using a selector

--- s:matches(mapping) -> boolean (also s(mapping)).
function Selector:matches(m)
  return self.fn(m) and true or false
end
Selector.__call = Selector.matches

--- s:filter(mappings | list result) -> a list of the matching mapping tables.
function Selector:filter(x)
  local out = json.array()
  for _, m in ipairs(mappings_of(x, "filter")) do
    if self.fn(m) then out[#out + 1] = m end
  end
  return out
end

--- s:ips(mappings | list result) -> the matching IPs, ready for bulk_delete's ips.
function Selector:ips(x)
  local out = json.array()
  for _, m in ipairs(mappings_of(x, "ips")) do
    if self.fn(m) then out[#out + 1] = m.origin_ip end
  end
  return out
end

--- s:count(mappings | list result) -> number of matches.
function Selector:count(x)
  local n = 0
  for _, m in ipairs(mappings_of(x, "count")) do
    if self.fn(m) then n = n + 1 end
  end
  return n
end

--- s:partition(mappings | list result) -> matching, not matching.
function Selector:partition(x)
  local yes, no = json.array(), json.array()
  for _, m in ipairs(mappings_of(x, "partition")) do
    local t = self.fn(m) and yes or no
    t[#t + 1] = m
  end
  return yes, no
end

function Selector.__mul(a, b)
  check_selector(a, "selector * selector", 2)
  check_selector(b, "selector * selector", 2)
  local fa, fb = a.fn, b.fn
  return new(function(m) return fa(m) and fb(m) end, a.desc .. " and " .. b.desc)
end

function Selector.__add(a, b)
  check_selector(a, "selector + selector", 2)
  check_selector(b, "selector + selector", 2)
  local fa, fb = a.fn, b.fn
  return new(function(m) return fa(m) or fb(m) end, "(" .. a.desc .. " or " .. b.desc .. ")")
end

function Selector.__unm(a)
  local fa = a.fn
  return new(function(m) return not fa(m) end, "not " .. a.desc)
end

function Selector.__tostring(s)
  return "selector: " .. s.desc
end

---------------------------------------------------------------------------------------------
-- constructors

local VENDORS = { aws = true, azure = true, gcp = true, oci = true }

--- select.vendor("aws"[, "gcp", ...]) or select.vendor{...}
function M.vendor(...)
  local list = strings("select.vendor", ...)
  local set = {}
  for _, v in ipairs(list) do
    if not VENDORS[v] then
      error(format("select.vendor: unknown vendor %s (aws, azure, gcp or oci)", util.quote(v)), 2)
    end
    set[v] = true
  end
  return new(function(m) return set[m.vendor] == true end, describe("vendor", list))
end

--- select.region("us-east-1"[, ...]): exact names.
function M.region(...)
  local list = strings("select.region", ...)
  local set = {}
  for _, r in ipairs(list) do set[r] = true end
  return new(function(m) return set[m.region] == true end, describe("region", list))
end

--- select.region_matching("^us%-"): a Lua pattern, searched in the region name.
function M.region_matching(pattern)
  if type(pattern) ~= "string" then
    error("select.region_matching: expected a Lua pattern string, got " .. type(pattern), 2)
  end
  local ok, err = pcall(string.find, "", pattern)
  if not ok then error("select.region_matching: bad pattern: " .. tostring(err), 2) end
  return new(function(m)
    return type(m.region) == "string" and m.region:find(pattern) ~= nil
  end, format("region_matching(%q)", pattern))
end

--- select.cidr("10.0.0.0/8"[, "2001:db8::/32", ...]): IPv4-mapped IPv6 addresses count as
--- their IPv4 host.
function M.cidr(...)
  local list = strings("select.cidr", ...)
  local canon = {}
  for i, c in ipairs(list) do
    canon[i] = ip.cidr(c) or error(format("select.cidr: invalid CIDR %s", util.quote(c)), 2)
  end
  local contains = ip.contains
  return new(function(m)
    if type(m.origin_ip) ~= "string" then return false end
    for i = 1, #canon do
      if contains(canon[i], m.origin_ip) then return true end
    end
    return false
  end, describe("cidr", canon))
end

--- select.ips{ "192.0.2.1", ... } or a set { ["192.0.2.1"] = true }: membership after
--- canonicalisation. A string that is not an address raises.
function M.ips(list)
  if type(list) ~= "table" then error("select.ips: expected a list or set of IPs, got " .. type(list), 2) end
  local set, n = {}, 0
  local function add(s)
    local c = type(s) == "string" and canonical(s)
    if not c then
      local why = type(s) == "string" and util.ip_problem(s, canonical)
      error(format("select.ips: invalid IP address %s%s", util.quote(s), why and ": " .. why or ""), 3)
    end
    if not set[c] then n = n + 1 end
    set[c] = true
  end
  for k, v in pairs(list) do
    if v == true then add(k) else add(v) end
  end
  return new(function(m)
    local c = type(m.origin_ip) == "string" and canonical(m.origin_ip)
    return c and set[c] or false
  end, format("ips(%d)", n))
end

--- select.where(function(mapping) ... end): any predicate.
function M.where(fn, desc)
  if type(fn) ~= "function" then error("select.where: expected a function, got " .. type(fn), 2) end
  return new(fn, desc or "where(...)")
end

--- select.all_of(s1, s2, ...), select.any_of(...), select.none_of(...)
local function combine(name, join, ...)
  local list = { ... }
  for i, s in ipairs(list) do
    if not is_selector(s) then
      error(format("select.%s: argument %d is a %s, expected a selector", name, i, type(s)), 3)
    end
  end
  local descs = {}
  for i, s in ipairs(list) do descs[i] = s.desc end
  return new(function(m) return join(list, m) end, name .. "(" .. table.concat(descs, ", ") .. ")")
end

function M.all_of(...)
  return combine("all_of", function(list, m)
    for i = 1, #list do if not list[i].fn(m) then return false end end
    return true
  end, ...)
end

function M.any_of(...)
  return combine("any_of", function(list, m)
    for i = 1, #list do if list[i].fn(m) then return true end end
    return false
  end, ...)
end

function M.none_of(...)
  return combine("none_of", function(list, m)
    for i = 1, #list do if list[i].fn(m) then return false end end
    return true
  end, ...)
end

--- select.everything: matches every mapping (a neutral start for building in a loop).
M.everything = new(function() return true end, "everything")

return M
