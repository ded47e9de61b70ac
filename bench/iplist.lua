-- bench/iplist.lua: cloudflare.iplist.read against the plain `io.lines` loop a script would
-- otherwise write (issue 18: read must be as fast or faster). Both read the same file of N
-- IPv4 addresses, one per line; each figure is the median of RUNS in-process timings
-- (os.clock, CPU time), the two taking turns run by run.
--   cfrun bench/iplist.lua [N] [RUNS]      defaults 350000 and 9
local iplist = require("cloudflare").iplist

local N = math.tointeger(tonumber(arg[1] or "350000"))
local RUNS = math.tointeger(tonumber(arg[2] or "9"))
assert(N and N > 0 and RUNS and RUNS > 0, "usage: cfrun bench/iplist.lua [N] [RUNS]")

local path = os.tmpname()
do
  local f = assert(io.open(path, "w"))
  for i = 0, N - 1 do
    f:write(string.format("10.%d.%d.%d\n", i // 65536 % 256, i // 256 % 256, i % 256))
  end
  f:close()
end

local tools = {
  { name = "io.lines loop", run = function()
    local ips = {}
    for line in io.lines(path) do ips[#ips + 1] = line end
    return #ips
  end },
  { name = "iplist.read", run = function()
    local ips, bad = assert(iplist.read(path))
    assert(#bad == 0)
    return #ips
  end },
}

local times = {}
for _ = 1, RUNS do
  for _, t in ipairs(tools) do
    collectgarbage("collect")
    local t0 = os.clock()
    assert(t.run() == N)
    local dt = os.clock() - t0
    times[t.name] = times[t.name] or {}
    table.insert(times[t.name], dt)
  end
end
os.remove(path)

local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end

local base = median(times["io.lines loop"])
print(string.format("%d IPs, medians of %d runs (CPU time)", N, RUNS))
for _, t in ipairs(tools) do
  local m = median(times[t.name])
  print(string.format("  %-14s %8.1f ms  %6.0f ns per line  %.2fx the io.lines loop", t.name, m * 1e3,
    m / N * 1e9, m / base))
end
