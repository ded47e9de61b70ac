-- cloudflare.iplist: reading lists of IP addresses from files or stdin: one per line, '#'
-- starts a comment, blank lines are skipped, and every line that is not an address is
-- reported with its line number rather than silently dropped. Reads only what it is given.
local ip = require "cloudflare.ip"

local M = {}

--- iplist.parse(text) -> ips, bad. ips: the addresses as written (trimmed), in file order;
--- bad: { {line = n, text = "...", error = "invalid IP address"}, ... }.
function M.parse(text)
  if type(text) ~= "string" then error("iplist.parse: expected a string, got " .. type(text), 2) end
  local ips, bad = {}, {}
  local n = 0
  for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local s = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
    if s ~= "" then
      if ip.valid(s) then
        ips[#ips + 1] = s
      else
        bad[#bad + 1] = { line = n, text = s, error = "invalid IP address" }
      end
    end
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

--- iplist.describe(bad) -> "line 3: \"db01\" is not an IP address; ..." for messages.
function M.describe(bad)
  local parts = {}
  for i, b in ipairs(bad) do
    parts[i] = string.format("line %d: %q is not an IP address", b.line, b.text)
  end
  return table.concat(parts, "; ")
end

return M
