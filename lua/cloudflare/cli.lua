-- cloudflare.cli: the small option parser the example scripts share, so each script stays
-- about its job: `--name value`, `--name=value`, flags, repeatable options, `--help`, and
-- usage errors that exit with status 2 like cfrun's own. Must not touch the API.
local M = {}

-- Exit statuses the example scripts share (documented in each script's header); the same
-- numbers as `cfrun --job`'s, so a scheduler reads a script's status and a job's alike.
M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE, M.EXIT_PENDING = 0, 3, 2, 4

--- The output formats of cloudflare.report, as a choice for cli.parse: { format = cli.FORMATS }.
M.FORMATS = { "table", "json", "jsonl", "csv" }

--- The running script's file name, for messages.
function M.name()
  return ((arg and arg[0]) or "script"):match("[^/]*$")
end

--- cli.die(msg[, usage]): the message (and the usage line) on stderr, exit status 2.
function M.die(msg, usage)
  io.stderr:write(M.name(), ": ", msg, "\n", usage and ("usage: " .. usage .. "\n") or "")
  os.exit(M.EXIT_USAGE)
end

--- cli.note(fmt, ...): one line on stderr, prefixed with the script's name.
function M.note(fmt, ...)
  io.stderr:write(M.name(), ": ", string.format(fmt, ...), "\n")
end

local function die(_, usage, msg) M.die(msg, usage) end

--- cli.parse(args, spec, usage) -> options, positional
--- spec: { name = "flag" | "string" | "number" | "list" | { "choice", ... } }; `args` is a
--- list of strings (the script's `arg` or { ... }). `--help` prints usage and exits 0.
function M.parse(args, spec, usage)
  local name = M.name()
  local opts, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      table.move(args, i + 1, #args, #rest + 1, rest)
      break
    elseif a == "--help" or a == "-h" then
      io.stdout:write("usage: ", usage or name, "\n")
      os.exit(0)
    elseif a:sub(1, 2) == "--" then
      local key, value = a:match("^%-%-([^=]+)=(.*)$")
      key = key or a:sub(3)
      local kind = spec[key]
      if not kind then die(name, usage, "unknown option '--" .. key .. "'") end
      if kind == "flag" then
        if value then die(name, usage, "option '--" .. key .. "' takes no value") end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then die(name, usage, "option '--" .. key .. "' needs a value") end
        end
        if kind == "number" then
          local v = tonumber(value)
          if not v then die(name, usage, "option '--" .. key .. "' needs a number, got '" .. value .. "'") end
          opts[key] = v
        elseif kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], value)
        elseif type(kind) == "table" then
          local ok = false
          for _, choice in ipairs(kind) do ok = ok or choice == value end
          if not ok then
            die(name, usage, "option '--" .. key .. "' must be one of " .. table.concat(kind, ", ")
              .. ", got '" .. value .. "'")
          end
          opts[key] = value
        else
          opts[key] = value
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      die(name, usage, "unknown option '" .. a .. "'")
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

--- cli.zone(opts, usage) -> the zone id from --zone, else $CFRUN_SANDBOX_ZONE (under
--- --sandbox a production $ZONE means nothing), else $ZONE. A malformed id exits 2.
function M.zone(opts, usage)
  local env = os.getenv
  local z = opts.zone or env("CFRUN_SANDBOX_ZONE") or env("ZONE")
  if not z or z == "" then
    M.die("no zone: pass --zone ZONE_ID or set ZONE (run with --sandbox to try it out)", usage)
  end
  if #z > 32 or not z:find("^%w+$") then
    M.die(string.format("invalid zone id %q: expected up to 32 letters and digits", z:sub(1, 40)), usage)
  end
  return z
end

--- cli.concurrency(opts, usage) -> the --concurrency option (batches in flight at once, 1 to
--- 64), or nil for the library's default; anything else is a usage error.
function M.concurrency(opts, usage)
  local n = opts.concurrency
  if n ~= nil and (math.type(n) ~= "integer" or n < 1 or n > 64) then
    M.die("option '--concurrency' must be a whole number from 1 to 64", usage)
  end
  return n
end

--- cli.read_ips(source) -> ips, bad: cloudflare.iplist.read, with every line that is not an
--- address reported on stderr as FILE:LINE (exit 2 when the file cannot be read).
function M.read_ips(source)
  local ips, bad = require("cloudflare.iplist").read(source)
  if not ips then M.die(bad) end -- bad is the message of io.open or read
  local name = (source == nil or source == "-") and "stdin" or source
  for _, b in ipairs(bad) do
    io.stderr:write(string.format("%s:%d: %q is not an IP address\n", name, b.line, b.text))
  end
  return ips, bad
end

--- What to do next with the IPs a batch call left without an answer, as cli.fail says it:
--- cli.ADVICE.pending and cli.ADVICE.unsent.
M.ADVICE = {
  pending = "sent, not known whether changed; check them, or restore from the journal",
  unsent = "certainly not changed; safe to send again",
}

--- cli.fail(err[, partial[, advice]]): report a wire failure on stderr, then the IPs it left
--- pending and those it left unsent, each list on a line of its own with what to do next
--- (cli.ADVICE, or advice.pending / advice.unsent in its place); exit EXIT_PENDING.
function M.fail(err, partial, advice)
  local name = M.name()
  io.stderr:write(name, ": ", tostring(err), "\n")
  local value = type(partial) == "table" and type(partial.value) == "table" and partial.value or {}
  for _, status in ipairs { "pending", "unsent" } do
    local ips = type(value[status]) == "table" and value[status] or {}
    if #ips > 0 then
      io.stderr:write(name, ": ", #ips, " IP(s) ", status, " (",
        (advice and advice[status]) or M.ADVICE[status], "): ", table.concat(ips, " "), "\n")
    end
  end
  os.exit(M.EXIT_PENDING)
end

return M
