-- bench/kill_restore.lua: the journal's promise, tried many times over: a cfrun deleting a
-- whole zone (300 to 3,000 mappings, v2) with CFRUN_JOURNAL is killed with SIGKILL at a random
-- moment of the deletion, then cloudflare.journal.restore runs and the zone must equal the
-- original exactly (same IPs, vendors and regions, nothing extra). Prints one line per failed
-- try and "N tries, N restored exactly". Not a spec: it takes minutes and its kill moments are
-- random (the seed is printed, and can be given back to repeat a series).
--
-- Usage: build/cfrun bench/kill_restore.lua [TRIES (default 120)] [SEED]
-- Exit status: 0 when every try restored exactly, 1 otherwise.
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local tries = tonumber(arg[1]) or 120
local seed = tonumber(arg[2]) or os.time()
local cfrun = arg[-1] or "cfrun"
local ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
local TOKEN = "bench-token-kill-restore"
local LATENCY = 0.02 -- seconds per request at the fake, so that batches are in flight a while
math.randomseed(seed)

local function quote(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local proc = assert(io.popen(string.format("exec %s --fake-api --port 0 --quiet --exit-with-parent "
  .. "--token %s", quote(cfrun), quote(TOKEN))))
local host, port = (proc:read("l") or ""):match("^LISTENING (%S+) (%d+)$")
assert(port, "the fake API did not start")
local origin = "http://" .. host .. ":" .. port

local function control(method, path, body)
  local chunks, source, headers = {}, nil, {}
  if body then
    source = ltn12.source.string(body)
    headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#body) }
  end
  local ok, status = http.request { url = origin .. path, method = method, source = source,
    headers = headers, sink = ltn12.sink.table(chunks) }
  assert(ok and status == 200, "control request " .. method .. " " .. path .. " failed: " .. tostring(status))
  local text = table.concat(chunks)
  local good, decoded = pcall(cjson.decode, text)
  return good and decoded or text
end

-- the zone as a sorted list of "ip vendor region"
local function snapshot()
  local out = {}
  for i, m in ipairs(control("GET", "/__fake/zones/" .. ZONE)) do
    out[i] = m["origin-ip"] .. " " .. m.vendor .. " " .. m.region
  end
  table.sort(out)
  return out
end

local VENDORS = { { "aws", "us-east-1" }, { "gcp", "us-central1" }, { "azure", "eastus" },
  { "oci", "us-ashburn-1" }, { "aws", "eu-west-1" }, { "gcp", "europe-west1" } }

local function zone_of(n)
  local list, ips = {}, {}
  for i = 1, n do
    local v = VENDORS[math.random(#VENDORS)]
    local ip = string.format("10.%d.%d.%d", 20 + i // 65536, i // 256 % 256, i % 256)
    list[i] = { ["origin-ip"] = ip, region = v[2], vendor = v[1] }
    ips[i] = ip
  end
  return list, ips
end

local script = os.tmpname()
do
  local f = assert(io.open(script, "w"))
  f:write([[
    local ips = {}
    for line in io.lines(os.getenv("IPS")) do ips[#ips + 1] = line end
    cloudflare.cache.origin_cloud_regions.bulk_delete{ zone_id = os.getenv("ZONE"), ips = ips }
  ]])
  f:close()
end

local function alive(pid)
  local p = io.popen("ps -o stat= -p " .. pid .. " 2>/dev/null")
  local stat = p:read("l")
  p:close()
  return stat ~= nil and not stat:find("Z", 1, true)
end

-- Starts the deleting cfrun in the background; returns its pid.
local function launch(journal, ipfile)
  local pidfile = os.tmpname()
  os.execute(string.format("env CFRUN_API_GENERATION=v2 ZONE=%s IPS=%s CFRUN_JOURNAL=%s "
    .. "CLOUDFLARE_BASE_URL=%s CLOUDFLARE_API_TOKEN=%s %s %s >/dev/null 2>&1 & echo $! > %s",
    ZONE, quote(ipfile), quote(journal), quote(origin .. "/client/v4"), quote(TOKEN), quote(cfrun),
    quote(script), pidfile))
  local pid = read(pidfile):match("%d+")
  os.remove(pidfile)
  return pid
end

-- restore's client: its own rate budget (1,200 per 300 s by default) would pace a long series;
-- the fake enforces none
local client = cloudflare.new { base_url = origin .. "/client/v4", api_token = TOKEN, generation = "v2",
  rate_limit = { requests = 1000000, per = 1 } }

local function count(text, what)
  local k, at = 0, 1
  while true do
    at = text:find(what, at, true)
    if not at then return k end
    k, at = k + 1, at + #what
  end
end

-- One try with n mappings, killed once the journal holds `outcomes` outcomes and `jitter`
-- seconds more (aimed by the journal, not the clock: load on the machine moves the clock):
-- returns whether restore brought the zone back exactly, the number of mappings the kill left,
-- and whether it cut the call short (some batch unjournaled or unanswered).
local function try(n, outcomes, jitter)
  control("POST", "/__fake/reset")
  local list, ips = zone_of(n)
  control("PUT", "/__fake/zones/" .. ZONE, cjson.encode(list))
  control("PUT", "/__fake/options", cjson.encode { latency = LATENCY })
  local before = snapshot()
  local journal, ipfile = os.tmpname(), os.tmpname()
  os.remove(journal)
  local f = assert(io.open(ipfile, "w"))
  f:write(table.concat(ips, "\n"), "\n")
  f:close()
  local pid = launch(journal, ipfile)
  -- the deletion starts with the first intent on disk (the listing comes before it)
  local deadline = socket.gettime() + 30
  while alive(pid) and not (read(journal) or ""):find('"intent"', 1, true) do
    assert(socket.gettime() < deadline, "the child never journaled an intent")
    socket.sleep(0.001)
  end
  while alive(pid) and count(read(journal) or "", '"outcome"') < outcomes do
    assert(socket.gettime() < deadline, "the child stalled")
    socket.sleep(0.002)
  end
  socket.sleep(jitter)
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  while alive(pid) do socket.sleep(0.005) end
  socket.sleep(LATENCY + 0.1) -- requests already sent finish at the server
  control("PUT", "/__fake/options", cjson.encode { latency = 0 })
  local left = #control("GET", "/__fake/zones/" .. ZONE)
  -- the call was cut short: a batch not journaled yet, or one whose answer never came
  local text = read(journal) or ""
  local intents = count(text, '"intent"')
  local cut = intents < (n + 99) // 100 or count(text, '"outcome"') < intents
  local ok, why = true, nil
  if read(journal) then
    local res, err = cloudflare.journal.restore { path = journal, zone_id = ZONE, client = client }
    if not res then
      ok, why = false, "restore failed: " .. tostring(err)
    elseif #res.value.failed > 0 then
      ok, why = false, #res.value.failed .. " not re-created, e.g. " .. res.value.failed[1].origin_ip
        .. ": " .. tostring(res.value.failed[1].error)
    end
  end
  if ok then
    local after = snapshot()
    if #after ~= #before then
      ok, why = false, string.format("%d mappings after restore, %d before", #after, #before)
    else
      for i = 1, #before do
        if before[i] ~= after[i] then
          ok, why = false, "first difference: " .. before[i] .. " / " .. after[i]
          break
        end
      end
    end
  end
  if not ok then
    io.stderr:write(string.format("try with %d mappings, killed after %d outcomes + %.3f s, %d left: %s; "
      .. "journal kept at %s\n", n, outcomes, jitter, left, why, journal))
  else
    os.remove(journal)
  end
  os.remove(ipfile)
  return ok, left, cut
end

print(string.format("seed %d; latency %g s per request at the fake", seed, LATENCY))
local t0 = socket.gettime()
local exact, cut_short, partly = 0, 0, 0
for _ = 1, tries do
  local n = math.random(300, 3000)
  -- anywhere from the first batch in flight to the last one's answer
  local ok, left, cut = try(n, math.random(0, (n + 99) // 100 - 1), math.random() * LATENCY * 0.75)
  if ok then exact = exact + 1 end
  if cut then cut_short = cut_short + 1 end
  if left > 0 and left < n then partly = partly + 1 end
end
print(string.format("%d tries, %d restored exactly (%d killed mid-deletion, %d of them with the zone "
  .. "partly deleted; %.0f s)", tries, exact, cut_short, partly, socket.gettime() - t0))
client:close()
control("POST", "/__fake/shutdown")
proc:close()
os.remove(script)
os.exit(exact == tries and 0 or 1)
