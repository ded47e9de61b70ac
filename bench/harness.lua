-- bench/harness.lua: what the benchmark driver (bench/bench.lua) needs around the tools it
-- times: shell commands and files, medians, the fake API and its control API, measure's output.
-- It knows no scenario.

local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"

local H = {}

-- A string as one shell word.
function H.quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

-- A list of words as a shell command line.
function H.command(words)
  local out = {}
  for i, w in ipairs(words) do out[i] = H.quote(w) end
  return table.concat(out, " ")
end

-- Runs a shell command line; returns its standard output, or raises when it fails.
function H.capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  if not p:close() then error("command failed: " .. cmd, 2) end
  return out
end

function H.read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

function H.median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- The end of a tool's log, for an error message.
local function tail(path)
  local ok, text = pcall(H.read, path)
  if not ok then return "(no log)" end
  return text:sub(-1500)
end

-- Runs `words` once under measure (environment assignments `env` first, output to `log`).
-- Returns measure's figures { wall =, user =, sys =, cpu =, maxrss_kb = } (seconds, KiB);
-- raises with the end of the log unless the command exited 0.
function H.measure(measure, env, words, log)
  local figures = log .. ".measure"
  os.remove(figures) -- a run that never started must not be read as the last one's figures
  -- the command goes through a script file: a curl of 3,500 requests is a 1.4 MB command line,
  -- more than one argument of `sh -c` may hold (128 KiB), though within what exec allows
  local script = log .. ".sh"
  H.write(script, string.format("%sexec %s -o %s -- %s >%s 2>&1\n", env, H.quote(measure), H.quote(figures),
    H.command(words), H.quote(log)))
  os.execute("sh " .. H.quote(script))
  local m = {}
  local ok, line = pcall(H.read, figures)
  for k, v in (ok and line or ""):gmatch("([%w_]+)=([%d.]+)") do m[k] = tonumber(v) end
  if m.status ~= 0 then
    error(string.format("%s exited %s:\n%s", words[1], tostring(m.status), tail(log)), 0)
  end
  m.run, m.status = nil, nil
  return m
end

---------------------------------------------------------------------------------------------
-- The fake API (cfrun --fake-api) and its control API, /__fake/...

local Fake = {}
Fake.__index = Fake

-- Starts the fake with an added latency (seconds) per API response, accepting `token`, with
-- `extra` server options (a list, e.g. { "--any-zone", "--rate-limit", "1200/6" }). The shell
-- prints its pid before it becomes the fake, so that the fake's CPU time can be read.
function H.start_fake(cfrun, token, latency, extra)
  local words = {}
  for i, w in ipairs(extra or {}) do words[i] = H.quote(w) end
  local proc = assert(io.popen(string.format("echo $$; exec %s --fake-api --port 0 --quiet --exit-with-parent "
    .. "--token %s --latency %g %s", H.quote(cfrun), H.quote(token), latency, table.concat(words, " "))))
  local pid = proc:read("l")
  local line = proc:read("l")
  local host, port = (line or ""):match("^LISTENING (%S+) (%d+)$")
  if not host then error("the fake API did not start: " .. tostring(line), 2) end
  local origin = "http://" .. host .. ":" .. port
  return setmetatable({ proc = proc, pid = pid, origin = origin, base_url = origin .. "/client/v4",
    latency = latency }, Fake)
end

-- The CPU time (seconds) the fake has used so far, from the scheduler's nanosecond count.
function Fake:cpu()
  return tonumber(H.read("/proc/" .. self.pid .. "/schedstat"):match("^%d+")) / 1e9
end

-- A control call; returns the decoded answer, raises unless it is a 200.
function Fake:control(method, path, body)
  local chunks = {}
  local _, status = http.request {
    url = self.origin .. path, method = method, sink = ltn12.sink.table(chunks),
    source = body and ltn12.source.string(body),
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body },
  }
  local text = table.concat(chunks)
  if status ~= 200 then
    error(string.format("fake API: %s %s -> %s %s", method, path, tostring(status), text:sub(1, 300)), 2)
  end
  return cjson.decode(text)
end

-- Before a timed run: each zone ({ id =, ips =, seeds = <its mappings as JSON arrays, in
-- parts> }) holds exactly its IPs, and the request log and statistics are empty.
function Fake:prepare(zones)
  for _, z in ipairs(zones) do
    for i, part in ipairs(z.seeds) do self:control(i == 1 and "PUT" or "POST", "/__fake/zones/" .. z.id, part) end
  end
  self:control("DELETE", "/__fake/requests")
  self:control("DELETE", "/__fake/stats")
end

-- After a run of `tool`: raises unless every zone is empty (with `kept`: still holds all its
-- mappings), the log holds exactly `requests` API requests, all answered 200, and (when
-- `max_in_flight` is given) no more than that many were in flight at once. Returns the number
-- of connections they came on and the peak number in flight (nil from a fake that does not
-- count them).
function Fake:verify(tool, zones, requests, max_in_flight, kept)
  for _, z in ipairs(zones) do
    local left = #self:control("GET", "/__fake/zones/" .. z.id)
    if left ~= (kept and #z.ips or 0) then
      error(string.format("%s: zone %s holds %d of its %d mappings, expected %d", tool, z.id, left, #z.ips,
        kept and #z.ips or 0), 0)
    end
  end
  local log = self:control("GET", "/__fake/requests")
  local seen, connections = {}, 0
  for _, r in ipairs(log) do
    if r.status ~= 200 then
      error(string.format("%s: %s %s answered %s", tool, r.method, r.path, tostring(r.status)), 0)
    end
    if not seen[r.conn] then seen[r.conn], connections = true, connections + 1 end
  end
  if #log ~= requests then
    error(string.format("%s: %d API requests, expected %d", tool, #log, requests), 0)
  end
  local peak = math.tointeger(self:control("GET", "/__fake/stats").peak_in_flight)
  if max_in_flight and peak and peak > max_in_flight then
    error(string.format("%s: %d requests in flight at once, more than %d", tool, peak, max_in_flight), 0)
  end
  return connections, peak
end

function Fake:stop()
  pcall(self.control, self, "POST", "/__fake/shutdown")
  self.proc:close()
end

return H
