-- cloudflare.run: the policy of one run of a script: calling it, draining the tasks it left,
-- the exit status (signals, the script's own os.exit, errors, the IPs' outcomes over the
-- run's API calls) and, for jobs, the log record. cf_main.c makes one protected call here
-- and writes the line it gets back; must not do I/O beyond stderr and stdout.
local async = require "cloudflare.async"
local core = require "cloudflare.core"
local json = require "cloudflare.json"

local format = string.format

local M = {}

-- Exit statuses (documented in README and cfrun.1).
M.OK, M.SCRIPT_ERROR, M.USAGE, M.FAILED_IPS, M.INCOMPLETE, M.LOCKED = 0, 1, 2, 3, 4, 5
local SIGNALS = { SIGINT = 2, SIGTERM = 15 }

--- run.signal_status() -> 128 + the stopping signal's number, or nil when none came
function M.signal_status()
  local sig = core.stopping()
  return sig and 128 + SIGNALS[sig] or nil
end

local OUTCOMES = { [0] = "success", [1] = "script_error", [2] = "usage_error",
  [3] = "failed_ips", [4] = "incomplete", [5] = "locked" }

--- run.outcome(status) -> the log's name for an exit status
function M.outcome(status)
  if status > 128 then return "interrupted" end
  return OUTCOMES[status] or "script_error"
end

-- The traceback handler of the script's call; a trapped os.exit passes untouched. The
-- traceback ends at the script, as lua.c's does, without the frames of this module.
local function handler(e)
  if core.exit_code(e) then return e end
  if type(e) == "table" and e.kind == "interrupted" and type(e.message) == "string" then
    return e.message -- a call refused as cfrun stops: no bug, so no traceback
  end
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    e = mt and mt.__tostring and tostring(e) or format("(error object is a %s value)", type(e))
  end
  local tb = debug.traceback(e, 2)
  local cut = tb:find("\n\t[C]: in function 'xpcall'\n\tlua/cloudflare/run.lua", 1, true)
  return cut and tb:sub(1, cut - 1) or tb
end

-- Calls fn(...) and then waits for the tasks it spawned. Returns true, or false and the
-- error (a trapped os.exit's sentinel included).
local function call(fn, ...)
  local r = table.pack(xpcall(fn, handler, ...))
  if r[1] then
    local ok, err = xpcall(async.drain, handler)
    if not ok then return false, err end
  end
  return table.unpack(r, 1, r.n)
end

-- Prints the script's return values as JSON documents, one per line (--json).
local function print_json(r)
  for i = 2, r.n do io.stdout:write(json.encode(r[i]), "\n") end
  io.stdout:flush()
end

-- Network text in errors was made safe where it entered (cloudflare.core); credentials the
-- script itself put in a message are hidden here.
local function say(msg)
  io.stderr:write("cfrun: ", core.redact(msg), "\n")
  io.stderr:flush()
end

--- run.status(ok, err) -> status, error message | nil: the exit status of a run that ended
--- so (the signal first, then the script's os.exit, then its error, then the IPs).
function M.status(ok, err)
  local sig = M.signal_status()
  local code = not ok and core.exit_code(err)
  local msg = not ok and not code and tostring(err) or nil
  if sig then return sig, msg end
  if code then return code, nil end
  if msg then return M.SCRIPT_ERROR, msg end
  local st = core.stats
  if st.pending > 0 or st.unsent > 0 then return M.INCOMPLETE end
  if st.failed > 0 then return M.FAILED_IPS end
  return M.OK
end

--- run.script(fn, opts, ...) -> status: a plain run (cfrun script.lua): fn(...) and its tasks;
--- an error is printed; opts.json prints the values it returns. The status is 0 or 1 unless
--- a signal stopped the run (130, 143); os.exit ends the process, with 130/143 after a signal.
function M.script(fn, opts, ...)
  local exit = os.exit
  os.exit = function(code, close) -- luacheck: ignore 122 (a signal's status wins, as in jobs)
    local sig = M.signal_status()
    if sig then code = sig end
    return exit(code, close)
  end
  local r = table.pack(call(fn, ...))
  if r[1] and opts.json then
    local ok, err = pcall(print_json, r)
    if not ok then r = { false, err, n = 2 } end
  end
  if not r[1] then say(tostring(r[2])) end
  return M.signal_status() or (r[1] and M.OK or M.SCRIPT_ERROR)
end

-- Field order of the log record, as documented.
local FIELDS = { "event", "job", "start", "end", "duration_s", "status", "outcome", "succeeded",
  "failed", "pending", "unsent", "requests", "retries", "rate_limit_waits", "error" }

--- run.record(fields) -> the log line (JSON, fixed field order, no newline)
function M.record(r)
  local parts = {}
  for _, k in ipairs(FIELDS) do
    local v = r[k]
    if v ~= nil then parts[#parts + 1] = format("%q:%s", k, json.encode(v)) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- run.job(opts, ...) -> status, line: one run of a job (--job, --every, --cron). opts.job:
--- its name; opts.chunk: the loaded script, or opts.error: why there is none (it could not
--- be loaded, or -e/-l failed); opts.json as for run.script. Every API call of the run is
--- counted, a call that raised included (cloudflare.batch counts on every path).
function M.job(opts, ...)
  local start, t0 = core.timestamp(), core.now()
  local ok, err
  if opts.chunk then
    local r = table.pack(call(opts.chunk, ...))
    ok, err = r[1], r[2]
    if ok and opts.json then ok, err = pcall(print_json, r) end
  else
    ok, err = false, opts.error or "no script"
  end
  local status, msg = M.status(ok, err)
  if msg then say(msg) end
  local st = core.stats
  return status, M.record {
    event = "run", job = opts.job, start = start, ["end"] = core.timestamp(),
    duration_s = math.floor((core.now() - t0) * 1000 + 0.5) / 1000,
    status = status, outcome = M.outcome(status),
    succeeded = st.succeeded, failed = st.failed, pending = st.pending, unsent = st.unsent,
    requests = st.requests, retries = st.retries, rate_limit_waits = st.waits,
    error = msg and core.redact(msg:match("^[^\n]*"):sub(1, 1024)) or nil,
  }
end

return M
