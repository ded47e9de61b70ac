-- spec/helper.lua: shared setup for the specs (busted --helper): starts the fake Cloudflare
-- API as its own process and talks to its control API over real HTTP. Must not fake anything
-- itself: every spec observes what the server really received.
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local H = {}

H.CFRUN = assert(os.getenv("CFRUN"), "CFRUN must name the cfrun binary (CTest sets it)")
H.SOURCE_DIR = os.getenv("CFRUN_SOURCE_DIR") or "."
-- How much slower than native the processes under test run: spec/valgrind/run.sh sets it, so
-- that deadlines for something to happen stretch (assertions never do).
H.SLOW = tonumber(os.getenv("CFRUN_SPEC_SLOW")) or 1
H.ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
H.TOKEN = "spec-token-4f1c2d9e8b7a6"
H.EMAIL = "ops@example.com"
H.KEY = "spec-key-0a1b2c3d4e5f"

-- The API generation the specs run against: CTest runs every spec that talks to the API once
-- per generation (CFRUN_API_GENERATION, which every client built from the environment reads
-- too). PREFIX: the family's path after /zones/{zone_id}; IP_KEY: what request bodies call
-- the address; ITEM_KEY: what responses call it.
H.GENERATION = os.getenv("CFRUN_API_GENERATION") or "v2"
local GENERATIONS = {
  v1 = { prefix = "/cache/origin_cloud_regions", ip_key = "ip", item_key = "origin-ip" },
  v2 = { prefix = "/origin/cloud_regions", ip_key = "origin_ip", item_key = "origin_ip" },
}
local GEN = assert(GENERATIONS[H.GENERATION], "CFRUN_API_GENERATION must be v1 or v2")
H.PREFIX, H.IP_KEY, H.ITEM_KEY = GEN.prefix, GEN.ip_key, GEN.item_key
H.V1 = H.GENERATION == "v1"

--- The family's path for a zone as the server sees it (after /client/v4 when `api` is false),
--- with an optional suffix: H.path(zone, "/batch") -> "/client/v4/zones/<zone>/.../batch".
function H.path(zone, suffix, api)
  return (api == false and "" or "/client/v4") .. "/zones/" .. (zone or H.ZONE) .. H.PREFIX
    .. (suffix or "")
end

--- A success envelope (JSON text) whose result carries `value` as the generation does: inside
--- the v1 setting object (with `fields`: id, editable, modified_on), or as the result itself.
function H.envelope(value, fields)
  local result = value
  if H.V1 then
    result = { id = "origin_public_cloud_region", editable = true, modified_on = cjson.null,
      value = value }
    for k, v in pairs(fields or {}) do result[k] = v end
  end
  return cjson.encode { success = true, errors = {}, messages = {}, result = result }
end

--- A wire item naming `ip` under the generation's key, with other fields copied from `t`.
function H.item(ip, t)
  local out = { [H.ITEM_KEY] = ip }
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- The suffix of a recorded request's path after the family's prefix (nil for another path),
--- and its query: "/batch", "" for the list, "/192.0.2.1", ...
function H.suffix(path)
  return path:match("^/client/v4/zones/%w+" .. H.PREFIX:gsub("%p", "%%%0") .. "(.*)$")
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shell_quote = shell_quote

local Fake = {}
Fake.__index = Fake

--- Starts `cfrun --fake-api` on an ephemeral port; `args` are extra server options.
function H.start_fake(args)
  local cmd = { "exec", shell_quote(H.CFRUN), "--fake-api", "--port", "0", "--quiet",
    "--exit-with-parent", "--token", shell_quote(H.TOKEN), "--email", shell_quote(H.EMAIL),
    "--key", shell_quote(H.KEY) }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = shell_quote(a) end
  local proc = assert(io.popen(table.concat(cmd, " "), "r"))
  local line = proc:read("l")
  local host, port = (line or ""):match("^LISTENING (%S+) (%d+)$")
  assert(port, "fake API did not start: " .. tostring(line))
  return setmetatable({
    proc = proc, host = host, port = tonumber(port),
    origin = "http://" .. host .. ":" .. port,
    base_url = "http://" .. host .. ":" .. port .. "/client/v4",
  }, Fake)
end

--- One HTTP request to the server; returns the raw body text and the status.
function Fake:raw(method, path, body, headers)
  local chunks = {}
  local source
  local given = headers
  headers = {}
  for k, v in pairs(given or {}) do headers[k] = v end -- never change the caller's table
  if body ~= nil then
    local text = type(body) == "string" and body or cjson.encode(body)
    source = ltn12.source.string(text)
    headers["content-type"] = "application/json"
    headers["content-length"] = tostring(#text)
  end
  local ok, status = http.request {
    url = self.origin .. path, method = method, source = source, headers = headers,
    sink = ltn12.sink.table(chunks),
  }
  assert(ok, "request to the fake API failed: " .. tostring(status))
  return table.concat(chunks), status
end

--- One control request; returns the decoded JSON body (or raw text) and the status.
function Fake:control(method, path, body)
  local text, status = self:raw(method, path, body)
  local decoded_ok, decoded = pcall(cjson.decode, text)
  return decoded_ok and decoded or text, status
end

function Fake:requests() return (self:control("GET", "/__fake/requests")) end

--- The recorded requests to the API itself (control requests left out).
function Fake:api_requests()
  local out = {}
  for _, r in ipairs(self:requests()) do
    if r.path:find("^/client/v4/") then out[#out + 1] = r end
  end
  return out
end
function Fake:clear_requests() self:control("DELETE", "/__fake/requests") end
--- requests, by_status, in_flight and peak_in_flight (API requests answered at once)
function Fake:stats() return (self:control("GET", "/__fake/stats")) end
function Fake:clear_stats() self:control("DELETE", "/__fake/stats") end
function Fake:reset() self:control("POST", "/__fake/reset") end
function Fake:zone(zone) return (self:control("GET", "/__fake/zones/" .. (zone or H.ZONE))) end

--- Replaces a zone's mappings; `mappings` is a list of { ip, region, vendor }.
function Fake:set_zone(zone, mappings)
  local list = {}
  for i, m in ipairs(mappings) do
    list[i] = { ["origin-ip"] = m[1], region = m[2], vendor = m[3] }
  end
  local text = #list == 0 and "[]" or cjson.encode(list)
  local _, status = self:control("PUT", "/__fake/zones/" .. zone, text)
  assert(status == 200, "set_zone failed with status " .. tostring(status))
end

function Fake:fault(f)
  local _, status = self:control("POST", "/__fake/faults", f)
  assert(status == 200, "fault not accepted: " .. tostring(status))
end
function Fake:clear_faults() self:control("DELETE", "/__fake/faults") end
function Fake:options(o) self:control("PUT", "/__fake/options", o) end

--- A client pointed at this server, with the spec token unless opts says otherwise.
function Fake:client(opts)
  local o = { base_url = self.base_url, api_token = H.TOKEN }
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.api_token == false then o.api_token = nil end
  return cloudflare.new(o)
end

--- Stops the server and reaps it; a second call does nothing.
function Fake:stop()
  if self.stopped then return end
  self.stopped = true
  pcall(self.control, self, "POST", "/__fake/shutdown")
  self.proc:close()
end

--- Runs cfrun with the given arguments (a list), optional stdin text and environment changes
--- (opts.env: name = value, or name = false to unset); returns stdout, stderr, exit status.
function H.run(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local parts, sets = { "env" }, {}
  for k, v in pairs(opts.env or {}) do
    if v == false then
      parts[#parts + 1] = "-u " .. k
    else
      sets[#sets + 1] = k .. "=" .. shell_quote(v)
    end
  end
  table.move(sets, 1, #sets, #parts + 1, parts)
  parts[#parts + 1] = shell_quote(H.CFRUN)
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local cmd = table.concat(parts, " ")
  local inp
  if opts.stdin then
    inp = H.tempfile(opts.stdin)
    cmd = cmd .. " <" .. inp
  else
    cmd = cmd .. " </dev/null"
  end
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>" .. err)
  if inp then os.remove(inp) end
  local function slurp(p)
    local f = assert(io.open(p))
    local s = f:read("a")
    f:close()
    os.remove(p)
    return s
  end
  return slurp(out), slurp(err), code
end

--- Whether process `pid` is still running. A process that exited but was not reaped yet
--- (a zombie: in some sandboxes PID 1 reaps slowly) counts as gone.
function H.alive(pid)
  local p = io.popen("ps -o stat= -p " .. tonumber(pid) .. " 2>/dev/null")
  local stat = p:read("l")
  p:close()
  return stat ~= nil and not stat:find("Z", 1, true)
end

--- The text of a file of the source tree, by its path relative to it ("docs/api.md").
function H.source(path)
  local f = assert(io.open(H.SOURCE_DIR .. "/" .. path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

--- Writes text to a fresh temporary file and returns its path.
function H.tempfile(text)
  local p = os.tmpname()
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

--- Sorted list of the values of field k in a list of tables.
function H.pluck(list, k)
  local out = {}
  for i, v in ipairs(list) do out[i] = v[k] end
  return out
end

return H
