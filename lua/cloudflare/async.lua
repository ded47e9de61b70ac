-- cloudflare.async: concurrency in one thread. A task is a coroutine whose API calls yield
-- while their transfer is in flight on the state's libcurl multi handle (cf_loop.c), the
-- model of OpenResty's cosockets. Outside a task the same calls block, as they always did,
-- so sequential scripts need nothing of this module.
--
-- Tasks run when somebody waits: Task:wait, parallel, sleep, and the end of the script
-- (cfrun waits for every task before it exits, so no request is left behind). Transfers
-- keep moving whenever any request or wait is in progress.
--
-- Error convention: a task that raises keeps its error, and Task:wait (or parallel)
-- raises it again, with the task's traceback; nil, err results are plain return values.

local core = require "cloudflare.core"

local now, poll = core.now, core.poll
local co_create, co_resume, co_running, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield, coroutine.status
local pack, unpack = table.pack, table.unpack
local format = string.format

local M = {}

local PARK = {}                                    -- what a task yields to wait
local task_of = setmetatable({}, { __mode = "k" }) -- coroutine -> Task
local ready = {}                                   -- tasks to resume, in order
local on_transfer = {}                             -- Transfer -> the task waiting for it
local transfers = 0                                -- entries in on_transfer
local sleepers = {}                                -- { at = deadline, task = t }
local live = 0                                     -- tasks not finished
local alive = {}                                   -- the set of them
local unobserved = {}                              -- failed tasks nobody waited for, in order

local Task = {}
Task.__index = Task
Task.__name = "cloudflare.Task"

function Task:__tostring()
  return format("cloudflare.Task (%s): %s", self.status, tostring(self.co):match("0x%x+") or "?")
end

local function handler(e)
  if type(e) == "string" then return debug.traceback(e, 2) end
  return e
end

local function finished(t)
  return t.status == "done" or t.status == "failed"
end

local function schedule(t)
  t.status = "ready"
  ready[#ready + 1] = t
end

local function resume(t, ...)
  if finished(t) then return end -- failed by a deadlock, then handed a slot
  t.status = "running"
  local ok, a = co_resume(t.co, ...)
  if co_status(t.co) ~= "dead" then
    if a == PARK then
      t.status = "waiting"
    else -- a plain coroutine.yield() in a task gives way to the others
      schedule(t)
    end
    return
  end
  live, alive[t] = live - 1, nil
  if ok and a[1] then
    t.status, t.values = "done", pack(unpack(a, 2, a.n))
  else
    t.status, t.err = "failed", ok and a[2] or a
    if #t.joiners == 0 then unobserved[#unobserved + 1] = t end
  end
  for _, j in ipairs(t.joiners) do schedule(j) end
  t.joiners = nil
end

local function run_ready()
  while #ready > 0 do
    local batch = ready
    ready = {}
    for i = 1, #batch do resume(batch[i]) end
  end
end

-- Wakes the sleepers whose time came (all of them once the process is stopping: a signal
-- cuts every sleep short); returns the earliest deadline still ahead, or nil.
local function wake_sleepers(t)
  local earliest
  if core.stopping() then t = math.huge end
  for i = #sleepers, 1, -1 do
    local s = sleepers[i]
    if s.at <= t then
      table.remove(sleepers, i)
      schedule(s.task)
    elseif not earliest or s.at < earliest then
      earliest = s.at
    end
  end
  return earliest
end

local function deliver(done)
  for i = 1, #done do
    local t = on_transfer[done[i]]
    if t then
      on_transfer[done[i]] = nil
      transfers = transfers - 1
      schedule(t)
    end
  end
end

-- The loop: runs tasks until cond() holds, waiting for transfers and timers between them.
-- `deadline` (optional) bounds the wait: a sleep outside any task is a wait for a time.
local function run_until(cond, deadline)
  while true do
    run_ready()
    if cond() then return end
    local t = now()
    local wake_at = wake_sleepers(t)
    if #ready == 0 then
      if deadline and (not wake_at or deadline < wake_at) then wake_at = deadline end
      if not wake_at and transfers == 0 then
        -- queued completions first: a blocking request may have driven them to the end
        deliver(poll(0))
        if #ready == 0 then
          -- nothing can wake them: they fail, so that later waits and drain() do not hang
          local msg = format("cloudflare: deadlock: %d task(s) wait for each other or for a "
            .. "slot nothing will free", live)
          for parked in pairs(alive) do
            parked.status, parked.err, parked.observed, parked.joiners = "failed", msg, true, nil
          end
          alive, live = {}, 0
          error(msg, 0)
        end
      else
        deliver(poll(wake_at and math.max(0, wake_at - t) or 60))
      end
    end
  end
end

-- The task running this code, or nil outside tasks (the main script, or a coroutine of the
-- script's own, which a yield here would confuse).
local function current()
  local co, main = co_running()
  if main then return nil end
  local t = task_of[co]
  if t and t.status == "running" then return t end
  return nil
end
M.current = current

--- async.park(): the current task waits until async.wake(task) (for synchronisation
--- primitives built on tasks, such as Semaphore).
function M.park()
  co_yield(PARK)
end

function M.wake(t)
  schedule(t)
end

--- cloudflare.spawn(fn, ...) -> Task: runs fn(...) as a task, at once, until its first wait.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("cloudflare.spawn: expected a function, got " .. type(fn), 2)
  end
  local t = setmetatable({ status = "ready", joiners = {} }, Task)
  t.co = co_create(function(...) return pack(xpcall(fn, handler, ...)) end)
  task_of[t.co] = t
  live, alive[t] = live + 1, true
  resume(t, ...)
  return t
end

--- task:wait() -> what the task's function returned; raises its error if it raised one.
--- In a task it yields; elsewhere it runs the tasks until this one finishes.
function Task:wait()
  if getmetatable(self) ~= Task then
    error("cloudflare.wait: expected a task (from cloudflare.spawn), got " .. type(self), 2)
  end
  if not finished(self) then
    local me = current()
    if me == self then error("cloudflare.wait: a task cannot wait for itself", 2) end
    if me then
      self.joiners[#self.joiners + 1] = me
      co_yield(PARK)
    else
      run_until(function() return finished(self) end)
    end
  end
  if self.status == "failed" then
    self.observed = true
    error(self.err, 0)
  end
  return unpack(self.values, 1, self.values.n)
end

M.wait = Task.wait

--- cloudflare.sleep(seconds): in a task, lets the others run meanwhile; elsewhere, runs the
--- tasks until the time has passed. A signal that stops the process ends it early.
function M.sleep(secs)
  if type(secs) ~= "number" or secs ~= secs or secs < 0 or secs > 86400 then
    error("cloudflare.sleep: expected 0 to 86400 seconds, got " .. tostring(secs), 2)
  end
  local deadline = now() + secs
  local me = current()
  if me then
    sleepers[#sleepers + 1] = { at = deadline, task = me }
    co_yield(PARK)
  else
    run_until(function() return now() >= deadline or core.stopping() end, deadline)
  end
end

--- async.request(client, method, path, body, opts): Client:request that lets the other
--- tasks run while this one's transfer is in flight.
function M.request(client, method, path, body, opts)
  local me = current()
  if not me then return client:request(method, path, body, opts) end
  local x = client:start(method, path, body, opts)
  if not x:done() then -- refused at once (a signal): nothing to wait for
    on_transfer[x] = me
    transfers = transfers + 1
    co_yield(PARK)
  end
  return x:finish()
end

-- errs[i] of a function that raised: its message and traceback, as a cloudflare.Error.
local function raised(e, tb)
  local msg = type(e) == "string" and e or tostring(e)
  return core.error { kind = "raised", message = msg, traceback = tb, value = e }
end

--- cloudflare.parallel(fns[, {concurrency = n}]) -> results, errs: runs the functions as
--- tasks, at most n at once (default 8); results[i], errs[i] are the first two values fns[i]
--- returned. Every task finishes before it returns, and it never raises for a task: one that
--- raised has errs[i] (kind "raised", with message and traceback) while the others keep their
--- results; once a signal stops the process, functions not yet started are not, and their
--- errs[i] say so (kind "interrupted").
function M.parallel(fns, opts)
  if type(fns) ~= "table" then
    error("cloudflare.parallel: expected a list of functions, got " .. type(fns), 2)
  end
  local n = #fns
  for i = 1, n do
    if type(fns[i]) ~= "function" then
      error(format("cloudflare.parallel: fns[%d] is a %s, expected a function", i, type(fns[i])), 2)
    end
  end
  opts = opts or {}
  local conc = opts.concurrency or 8
  if math.type(conc) ~= "integer" or conc < 1 then
    error("cloudflare.parallel: concurrency must be a whole number >= 1, got " .. tostring(conc), 2)
  end
  local results, errs = {}, {}
  local nexti = 1
  local function run_one(i)
    local tb
    local ok, a, b = xpcall(fns[i], function(e)
      tb = debug.traceback(type(e) == "string" and e or tostring(e), 2)
      return e
    end)
    if ok then
      results[i], errs[i] = a, b
    else
      errs[i] = raised(a, tb)
    end
  end
  local function worker()
    while nexti <= n do
      local i = nexti
      nexti = i + 1
      local sig = core.stopping()
      if sig then
        errs[i] = core.error { kind = "interrupted", signal = sig, unsent = true,
          message = format("not started: cfrun is stopping after %s", sig) }
      else
        run_one(i)
      end
    end
  end
  local workers = {}
  for w = 1, math.min(conc, n) do workers[w] = M.spawn(worker) end
  for w = 1, #workers do workers[w]:wait() end
  return results, errs
end

--- async.semaphore(n): at most n holders at once; tasks queue for a slot in order. Code
--- outside tasks takes a slot without waiting (it cannot yield), so it may exceed n.
local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(n)
  return setmetatable({ limit = n, used = 0, queue = {}, qhead = 1, qtail = 0 }, Semaphore)
end

-- What acquire hands out: closing it (a `<close>` variable) gives the slot back once.
local Slot = {}
Slot.__index = Slot
function Slot:release()
  local sem = self.sem
  if sem then
    self.sem = nil
    sem:release()
  end
end
Slot.__close = Slot.release

--- sem:acquire() -> slot: hold it in a `<close>` variable, so that an error or a signal
--- between acquire and release cannot keep the slot (slot:release() gives it back earlier).
function Semaphore:acquire()
  local me = current()
  if self.used < self.limit or not me then
    self.used = self.used + 1
    return setmetatable({ sem = self }, Slot)
  end
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = me
  co_yield(PARK) -- the releaser hands its slot over: `used` stays as it was
  return setmetatable({ sem = self }, Slot)
end

function Semaphore:release()
  if self.qhead <= self.qtail then
    local t = self.queue[self.qhead]
    self.queue[self.qhead] = nil
    self.qhead = self.qhead + 1
    schedule(t)
  else
    self.used = self.used - 1
  end
end

--- async.drain(): runs the tasks until every one finished (cfrun calls it when a script
--- ends), then raises the error of the first task that failed with nobody waiting for it.
function M.drain()
  if live > 0 then run_until(function() return live == 0 end) end
  for _, t in ipairs(unobserved) do
    if not t.observed then
      unobserved = {}
      error(t.err, 0)
    end
  end
  unobserved = {}
end

--- async.pending() -> number of tasks not finished
function M.pending()
  return live
end

M.Task = Task
return M
