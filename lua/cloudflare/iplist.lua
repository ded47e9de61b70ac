-- cloudflare.iplist: reading lists of IP addresses from files or stdin: one per line, '#'
-- starts a comment, blank lines are skipped, and every line that is not an address is
-- reported with its line number rather than silently dropped. Reads only what it is given.
local ip = require "cloudflare.ip"
local util = require "cloudflare.util"

local M = {}

--- iplist.parse(text) -> ips, bad. ips: the addresses as written (trimmed: a CRLF file reads
--- as well as an LF one), in file order; bad: { {line = n, text = "...", error = "invalid IP
--- address[: why]", why = "a CIDR, not an address" | nil}, ... } (why: see util.ip_problem).
function M.parse(text)
  if type(text) ~= "string" then error("iplist.parse: expected a string, got " .. type(text), 2) end
  local ips, lines = ip.scan(text) -- the lines, trimmed and checked in one pass, in C
  local bad = {}
  for k = 1, #lines - 1, 2 do
    local s = lines[k + 1]
    bad[#bad + 1] = { line = lines[k], text = s, error = util.invalid_ip(s, ip.canonical),
      why = util.ip_problem(s, ip.canonical) }
  end
  return ips, bad
end

--- iplist.read(source) -> ips, bad | nil, message. source: a path, "-" or nil for standard
--- input, or an open file.
function M.read(source)
  local f, close = source, false
  if source == nil or source == "-" then
    f = io.stdin
  elseif type(source) == "string" then
    local err
    f, err = io.open(source, "r")
    if not f then return nil, err end
    close = true
  elseif io.type(source) ~= "file" then
    error("iplist.read: expected a path, '-' or a file, got " .. type(source), 2)
  end
  local text, err = f:read("a")
  if close then f:close() end
  if not text then return nil, err end
  return M.parse(text)
end

--- iplist.not_address(b) -> "\"db01.example.com\" is not an IP address (a host name, not an
--- address)": one entry of bad, quoted so that a stray character shows, with why if known.
function M.not_address(b)
  return string.format("%q is not an IP address%s", b.text, b.why and " (" .. b.why .. ")" or "")
end

--- iplist.describe(bad) -> "line 3: \"db01\" is not an IP address; ..." for messages.
function M.describe(bad)
  local parts = {}
  for i, b in ipairs(bad) do parts[i] = string.format("line %d: %s", b.line, M.not_address(b)) end
  return table.concat(parts, "; ")
end

return M
