-- cloudflare.progress: the one-line progress display of calls that send several requests:
-- IPs done / total, requests, rate, ETA, and "waiting for rate limit" while pacing. Only
-- on a terminal (stderr) and never with --quiet; otherwise every method is a no-op.
local core = require "cloudflare.core"

local M = {}

local Progress = {}
Progress.__index = Progress

local silent = setmetatable({}, { __index = function() return function() end end })

--- progress.start(name, total, transport) -> a progress line, or a silent stand-in.
function M.start(name, total, transport)
  if core.quiet or not core.isatty(2) then return silent end
  local p = setmetatable({ name = name, total = total, t0 = core.now(), done_n = 0,
    requests = 0, transport = transport }, Progress)
  -- pacing announces itself through the transport's wait hook
  p.previous_hook = transport.on_wait
  transport.on_wait = function(secs, reason)
    p:draw(string.format("waiting %.1f s for rate limit", secs))
    if p.previous_hook then p.previous_hook(secs, reason) end
  end
  p:draw()
  return p
end

function Progress:draw(note)
  local elapsed = core.now() - self.t0
  local rate = elapsed > 0 and self.requests / elapsed or 0
  local eta = ""
  if self.done_n > 0 and self.done_n < self.total then
    eta = string.format(", ETA %.0f s", elapsed / self.done_n * (self.total - self.done_n))
  end
  local line = string.format("cfrun: %s %d/%d IPs, %d requests, %.1f req/s%s%s",
    self.name, self.done_n, self.total, self.requests, rate, eta, note and (", " .. note) or "")
  -- kept within one row: a line that wraps could not be redrawn or cleared in place (a
  -- terminal that does not say its width is not measured)
  local width = core.term_width(2)
  if width and #line > width - 1 then line = line:sub(1, math.max(width - 1, 1)) end
  io.stderr:write("\r\27[K", line)
  io.stderr:flush()
end

function Progress:update(done_n, requests)
  self.done_n, self.requests = done_n, requests
  self:draw()
end

--- p:done(): clears the line and gives the transport its wait hook back; idempotent (a
--- call's `<close>` calls it on every path, after the call may have done so).
function Progress:done()
  if self.finished then return end
  self.finished = true
  self.transport.on_wait = self.previous_hook
  io.stderr:write("\r\27[K")
  io.stderr:flush()
end

return M
