-- cloudflare.run: the policy of one run of a script: calling it, draining the tasks it left,
-- the exit status (signals, the script's own os.exit, errors, the IPs' outcomes over the
-- run's API calls) and, for jobs, the log record. cf_main.c makes one protected call here
-- and writes the line it gets back; must not do I/O beyond stderr and stdout.
local async = require "cloudflare.async"
local core = require "cloudflare.core"
local json = require "cloudflare.json"
local ratelimit = require "cloudflare.ratelimit"

local format = string.format

local M = {}

-- Exit statuses: runtime/cf_exit.h's, the one definition (documented in README and cfrun.1).
local EXIT = core.EXIT
M.OK, M.SCRIPT_ERROR, M.USAGE, M.FAILED_IPS, M.INCOMPLETE, M.LOCKED = EXIT.OK, EXIT.SCRIPT_ERROR,
  EXIT.USAGE, EXIT.FAILED_IPS, EXIT.INCOMPLETE, EXIT.LOCKED
local SIGNALS = { SIGINT = 2, SIGTERM = 15 }

--- run.signal_status() -> 128 + the stopping signal's number, or nil when none came
function M.signal_status()
  local sig = core.stopping()
  return sig and 128 + SIGNALS[sig] or nil
end

local OUTCOMES = EXIT.outcome

--- run.outcome(status) -> the log's name for an exit status
function M.outcome(status)
  if status > 128 then return "interrupted" end
  return OUTCOMES[status] or "script_error"
end

-- The error object the last call raised, as raised (the handler turns it into text).
local raised

-- The traceback handler of the script's call; a trapped os.exit passes untouched. The
-- traceback ends at the script, as lua.c's does, without the frames of this module.
local function handler(e)
  raised = e
  if core.exit_code(e) then return e end
  if type(e) == "table" and (e.kind == "interrupted" or e.kind == "config")
      and type(e.message) == "string" then
    return e.message -- a call refused as cfrun stops, or no credentials: no bug, no traceback
  end
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    e = mt and mt.__tostring and tostring(e) or format("(error object is a %s value)", type(e))
  end
  local tb = debug.traceback(e, 2)
  local cut = tb:find("\n\t[C]: in function 'xpcall'\n\tlua/cloudflare/run.lua", 1, true)
  return cut and tb:sub(1, cut - 1) or tb
end

local function is_error(e)
  local mt = type(e) == "table" and getmetatable(e)
  return mt and mt.__name == "cloudflare.Error" or false
end

-- Calls fn(...) and then waits for the tasks it spawned. Returns ok, and then fn's values,
-- or false, the error's text (a trapped os.exit's sentinel as it is), the error object and
-- the partial result it carries. A chunk that returns nil and a cloudflare.Error (the
-- `nil, err[, partial]` of every API call) failed as if it had raised the error.
local function call(fn, ...)
  raised = nil
  local r = table.pack(xpcall(fn, handler, ...))
  if r[1] then
    local ok, err = xpcall(async.drain, handler)
    if not ok then r = { false, err, n = 2 } end
  end
  if r[1] and r[2] == nil and r.n >= 3 and is_error(r[3]) then
    return { false, tostring(r[3]), r[3], r[4], n = 4, returned = true }
  end
  if not r[1] then
    local e = raised
    return { false, r[2], e, is_error(e) and rawget(e, "partial") or nil, n = 4 }
  end
  return r
end

-- Prints the script's return values as JSON documents, one per line (--json).
local function print_json(r)
  for i = 2, r.n do io.stdout:write(json.encode(r[i]), "\n") end
  io.stdout:flush()
end

--- run.error_document(e, text, partial) -> the JSON document of a failed run (--json):
--- { error = { kind, status, errors, request_id, message }, partial = partial or null }. e: the
--- error as raised (a cloudflare.Error gives its fields; anything else is kind "raised"
--- with the first line of `text`, the message as stderr shows it); absent fields are null.
function M.error_document(e, text, partial)
  local null = json.null
  local doc = { kind = "raised", status = null, errors = json.array(), request_id = null,
    message = core.redact(tostring(text):match("^[^\n]*")) }
  if is_error(e) then
    doc.kind, doc.status, doc.request_id = e.kind, e.status or null, e.request_id or null
    local errors = type(e.errors) == "table" and e.errors or {}
    doc.errors = json.array(table.move(errors, 1, #errors, 1, {}))
    doc.message = core.redact(tostring(e))
  end
  if partial == nil then partial = null end
  return { error = doc, partial = partial }
end

--- run.chunk(fn, opts, ...) -> true | false, err, returned: fn(...) and its tasks (a script, an -e chunk,
--- a script read from stdin); opts.json prints the values it returns, one JSON document a
--- line, or, when it failed, one error document (run.error_document). err is the message for
--- stderr (not printed here), or a trapped os.exit's sentinel.
function M.chunk(fn, opts, ...)
  local r = call(fn, ...)
  if not opts.json or (not r[1] and core.exit_code(r[2])) then return r[1], r[2], r.returned end
  if r[1] then
    local ok, err = pcall(print_json, r)
    if not ok then return false, err end
    return true
  end
  local doc = M.error_document(r[3], r[2], r[4])
  local ok, text = pcall(json.encode, doc)
  if not ok then -- a partial that is no JSON (a script's own value): the error still shows
    doc.partial = json.null
    text = json.encode(doc)
  end
  io.stdout:write(text, "\n")
  io.stdout:flush()
  return false, r[2], r.returned
end

-- Network text in errors was made safe where it entered (cloudflare.core); credentials the
-- script itself put in a message are hidden here.
local function say(msg)
  io.stderr:write("cfrun: ", core.redact(msg), "\n")
  io.stderr:flush()
end

--- run.status(ok, err) -> status, error message | nil: the exit status of a run that ended
--- so (the signal first, then the script's os.exit, then its error, then the IPs).
--- `returned`: the error is a cloudflare.Error the chunk returned (nil, err), not raised: a
--- wire failure, whose IPs' outcome (4, 3) says more than "script error" when there is one.
function M.status(ok, err, returned)
  local sig = M.signal_status()
  local code = not ok and core.exit_code(err)
  local msg = not ok and not code and tostring(err) or nil
  if sig then return sig, msg end
  if code then return code, nil end
  local st = core.stats
  local by_ips = (st.pending > 0 or st.unsent > 0) and M.INCOMPLETE
    or st.failed > 0 and M.FAILED_IPS or nil
  if msg then return returned and by_ips or M.SCRIPT_ERROR, msg end
  return by_ips or M.OK
end

--- run.script(fn, opts, ...) -> status: a plain run (cfrun script.lua): fn(...) and its tasks;
--- an error is printed; opts.json as for run.chunk. The status is 0 or 1 unless
--- a signal stopped the run (130, 143); os.exit ends the process, with 130/143 after a signal.
function M.script(fn, opts, ...)
  local exit = os.exit
  os.exit = function(code, close) -- luacheck: ignore 122 (a signal's status wins, as in jobs)
    local sig = M.signal_status()
    if sig then code = sig end
    return exit(code, close)
  end
  local ok, err = M.chunk(fn, opts, ...)
  if not ok then say(tostring(err)) end
  return M.signal_status() or (ok and M.OK or M.SCRIPT_ERROR)
end

-- Field order of the log record, as documented.
local FIELDS = { "event", "job", "start", "end", "duration_s", "status", "outcome", "succeeded",
  "failed", "pending", "unsent", "requests", "retries", "rate_limit_waits", "rate_limit_waited_s",
  "error", "warnings" }

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
  -- a job waits out a 429's Retry-After up to Cloudflare's five-minute block rather than
  -- fail the call: unattended, the work matters more than the minutes
  require("cloudflare.transport").default_max_retry_wait = 300
  local ok, err, returned
  if opts.chunk then
    ok, err, returned = M.chunk(opts.chunk, opts, ...)
  else
    ok, err = false, opts.error or "no script"
  end
  local status, msg = M.status(ok, err, returned)
  if msg then say(msg) end
  local st = core.stats
  return status, M.record {
    event = "run", job = opts.job, start = start, ["end"] = core.timestamp(),
    duration_s = math.floor((core.now() - t0) * 1000 + 0.5) / 1000,
    status = status, outcome = M.outcome(status),
    succeeded = st.succeeded, failed = st.failed, pending = st.pending, unsent = st.unsent,
    requests = st.requests, retries = st.retries, rate_limit_waits = st.waits,
    rate_limit_waited_s = math.floor((st.waited or 0) * 1000 + 0.5) / 1000,
    error = msg and core.redact(msg:match("^[^\n]*"):sub(1, 1024)) or nil,
    warnings = #ratelimit.warnings > 0 and json.array(ratelimit.warnings) or nil,
  }
end

return M
