-- cloudflare.fake.http: HTTP/1.1 for the fake API: listener, a coroutine per connection over select(), parse, write.
-- Must not know Cloudflare (envelopes, routes, state), and must never block or raise on what a client sends.
--
-- Inside a connection coroutine, waiting is a yield ("read"/"write" sock deadline, or
-- "sleep" time) that Loop:step resumes: true when the socket is ready, false past the deadline.

local socket = require("socket")

local H = {}

local gettime = socket.gettime
H.gettime = gettime

local MAX_HEAD = 64 * 1024          -- request line + headers
local MAX_BODY = 16 * 1024 * 1024
local IDLE_TIMEOUT = 300            -- seconds a connection may sit in one request read / write
local LINGER_TIME = 2               -- seconds spent draining input before closing after an error

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Content Too Large", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout", [520] = "Web Server Returned an Unknown Error",
  [521] = "Web Server Is Down", [522] = "Connection Timed Out", [524] = "A Timeout Occurred",
}

local function http_date()
  return os.date("!%a, %d %b %Y %H:%M:%S GMT")
end

function H.percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- A query string's parameters: { name = value } (percent-decoded, '+' as a space), and the
-- set of names given more than once (their last value is kept).
function H.parse_query(query)
  local params, repeated = {}, {}
  for pair in (query or ""):gmatch("[^&]+") do
    local name, value = pair:match("^([^=]*)=(.*)$")
    name = H.percent_decode(((name or pair):gsub("%+", " ")))
    value = H.percent_decode(((value or ""):gsub("%+", " ")))
    if params[name] ~= nil then
      repeated[name] = true
    end
    params[name] = value
  end
  return params, repeated
end

local function has_token(list, token)
  for t in list:lower():gmatch("[^,%s]+") do
    if t == token then
      return true
    end
  end
  return false
end

local function wait_readable(sock, deadline)
  return coroutine.yield("read", sock, deadline)
end

local function wait_writable(sock, deadline)
  return coroutine.yield("write", sock, deadline)
end

-- Parks the calling connection until time t (socket.gettime's clock).
function H.sleep_until(t)
  coroutine.yield("sleep", t)
end

------------------------------------------------------------------------------------------
-- The scheduler
------------------------------------------------------------------------------------------

local Loop = {}
Loop.__index = Loop

-- serve(conn) runs in a coroutine per accepted connection; conn is { id =, sock =, buf =,
-- eof = }; the connection closes when it returns. log(fmt, ...) reports internal errors.
function H.new_loop(host, port, serve, log)
  return setmetatable({
    host = host, port = port, serve_connection = serve, log = log,
    next_conn_id = 0, readers = {}, writers = {}, sleepers = {}, conns = {}, stopped = false,
  }, Loop)
end

-- Binds the listening socket. Returns host, port, or nil, message.
function Loop:listen()
  if self.listener then
    return self.bound_host, self.bound_port
  end
  local sock, err = socket.bind(self.host, self.port, 128)
  if not sock then
    return nil, string.format("cannot listen on %s port %s: %s", self.host, tostring(self.port), tostring(err))
  end
  sock:settimeout(0)
  local host, port = sock:getsockname()
  self.listener = sock
  self.bound_host, self.bound_port = host, math.tointeger(tonumber(port))
  return self.bound_host, self.bound_port
end

-- Runs until stopped is set, then closes everything. Returns true, or nil, message.
function Loop:serve()
  if not self.listener then
    local host, err = self:listen()
    if not host then
      return nil, err
    end
  end
  while not self.stopped do
    self:step(5)
  end
  self:close()
  return true
end

function Loop:close()
  self.stopped = true
  for conn in pairs(self.conns) do
    conn.sock:close()
  end
  self.conns, self.readers, self.writers, self.sleepers = {}, {}, {}, {}
  if self.listener then
    self.listener:close()
    self.listener = nil
  end
end

function Loop:_close_conn(conn)
  self.readers[conn.sock] = nil
  self.writers[conn.sock] = nil
  self.conns[conn] = nil
  conn.sock:close()
end

-- Resumes a connection coroutine and files it under whatever it waits for next.
function Loop:_resume(conn, ...)
  local good, op, a, b = coroutine.resume(conn.co, ...)
  if not good then
    self.log("connection %d: internal error: %s", conn.id, debug.traceback(conn.co, tostring(op)))
    self:_close_conn(conn)
  elseif coroutine.status(conn.co) == "dead" then
    self:_close_conn(conn)
  elseif op == "read" then
    self.readers[a] = { conn = conn, deadline = b }
  elseif op == "write" then
    self.writers[a] = { conn = conn, deadline = b }
  elseif op == "sleep" then
    self.sleepers[#self.sleepers + 1] = { conn = conn, wake = a }
  else
    self.log("connection %d: unexpected yield %s", conn.id, tostring(op))
    self:_close_conn(conn)
  end
end

function Loop:_accept_all()
  while true do
    local sock = self.listener:accept()
    if not sock then
      return
    end
    sock:settimeout(0)
    sock:setoption("tcp-nodelay", true)
    self.next_conn_id = self.next_conn_id + 1
    local conn = { id = self.next_conn_id, sock = sock, buf = "" }
    local serve = self.serve_connection
    conn.co = coroutine.create(function()
      serve(conn)
    end)
    self.conns[conn] = true
    self:_resume(conn)
  end
end

-- One scheduler iteration: wait up to `timeout` seconds (nil: until something happens) for
-- a socket event or a timer, then run every coroutine that can proceed.
function Loop:step(timeout)
  if not self.listener then
    error("step() before listen()", 2)
  end
  local now = gettime()
  local wait = timeout
  local function until_(t)
    local d = math.max(t - now, 0)
    if not wait or d < wait then
      wait = d
    end
  end
  for _, s in ipairs(self.sleepers) do
    until_(s.wake)
  end
  local recvt, sendt = { self.listener }, {}
  for sock, w in pairs(self.readers) do
    recvt[#recvt + 1] = sock
    until_(w.deadline)
  end
  for sock, w in pairs(self.writers) do
    sendt[#sendt + 1] = sock
    until_(w.deadline)
  end

  local readable, writable = socket.select(recvt, sendt, wait)
  for _, sock in ipairs(readable or {}) do
    if sock == self.listener then
      self:_accept_all()
    else
      local w = self.readers[sock]
      if w then
        self.readers[sock] = nil
        self:_resume(w.conn, true)
      end
    end
  end
  for _, sock in ipairs(writable or {}) do
    local w = self.writers[sock]
    if w then
      self.writers[sock] = nil
      self:_resume(w.conn, true)
    end
  end

  -- Timers: due sleepers (earliest first), then I/O waits whose deadline has passed.
  now = gettime()
  local due, later = {}, {}
  for _, s in ipairs(self.sleepers) do
    if s.wake <= now then
      due[#due + 1] = s
    else
      later[#later + 1] = s
    end
  end
  self.sleepers = later
  table.sort(due, function(x, y)
    return x.wake < y.wake
  end)
  for _, s in ipairs(due) do
    self:_resume(s.conn)
  end
  local expired = {}
  for _, waits in ipairs({ self.readers, self.writers }) do
    for sock, w in pairs(waits) do
      if w.deadline <= now then
        waits[sock] = nil
        expired[#expired + 1] = w.conn
      end
    end
  end
  for _, conn in ipairs(expired) do
    self:_resume(conn, false)
  end
end

------------------------------------------------------------------------------------------
-- Reading requests
------------------------------------------------------------------------------------------

-- Appends whatever the socket has (up to 64 KiB) to conn.buf. Returns true, or nil, err.
local function fill(conn, deadline)
  while true do
    if conn.eof then
      return nil, "closed"
    end
    local data, err, partial = conn.sock:receive(65536)
    local chunk = data or partial
    if err == "closed" then
      conn.eof = true
    end
    if chunk and #chunk > 0 then
      conn.buf = conn.buf .. chunk
      return true
    end
    if err ~= "timeout" and err ~= "closed" then
      return nil, err
    end
    if err == "timeout" and not wait_readable(conn.sock, deadline) then
      return nil, "timeout"
    end
  end
end

-- Exactly n bytes: first from conn.buf, then from the socket, collected in a table so that
-- a 16 MiB body is not copied over and over.
local function read_body(conn, n, deadline)
  local have = conn.buf
  if #have >= n then
    conn.buf = have:sub(n + 1)
    return have:sub(1, n)
  end
  conn.buf = ""
  local parts, got = { have }, #have
  while got < n do
    if conn.eof then
      return nil, "closed"
    end
    local data, err, partial = conn.sock:receive(math.min(n - got, 1 << 20))
    local chunk = data or partial
    if chunk and #chunk > 0 then
      parts[#parts + 1] = chunk
      got = got + #chunk
    end
    if err == "closed" then
      conn.eof = true
    elseif err == "timeout" then
      if (not chunk or #chunk == 0) and not wait_readable(conn.sock, deadline) then
        return nil, "timeout"
      end
    elseif err then
      return nil, err
    end
  end
  return table.concat(parts)
end

local function write_all(conn, data)
  local deadline = gettime() + IDLE_TIMEOUT
  local i = 1
  while i <= #data do
    local last, err, sent = conn.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = sent + 1
      if not wait_writable(conn.sock, deadline) then
        return nil, "timeout"
      end
    else
      return nil, err
    end
  end
  return true
end

-- Reads one request: { method, target, path, query, headers (lower-case names), body,
-- keep_alive, http10 }, or nil, status, message for a malformed one (to be answered with that
-- status, then the connection closes), or nil, nil, reason when the peer went away.
function H.read_request(conn)
  local deadline = gettime() + IDLE_TIMEOUT
  local head
  while true do
    conn.buf = conn.buf:gsub("^[\r\n]+", "")     -- blank lines before a request are allowed
    local s, e = conn.buf:find("\r?\n\r?\n")
    if s then
      if e > MAX_HEAD then
        break
      end
      head, conn.buf = conn.buf:sub(1, s - 1), conn.buf:sub(e + 1)
      break
    end
    if #conn.buf > MAX_HEAD then
      break
    end
    local good, err = fill(conn, deadline)
    if not good then
      return nil, nil, err
    end
  end
  if not head then
    return nil, 400, "the request header section is larger than 64 KiB"
  end

  local lines = {}
  for line in (head .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = (line:gsub("\r$", ""))
  end
  local method, target, major, minor = lines[1]:match("^([%w!#$%%&'*+.^_`|~-]+) (%S+) HTTP/(%d)%.(%d)$")
  if not method or major ~= "1" then
    return nil, 400, "malformed request line"
  end
  local headers = {}
  for i = 2, #lines do
    local line = lines[i]
    local name, value = line:match("^([%w!#$%%&'*+.^_`|~-]+):[ \t]*(.-)[ \t]*$")
    if not name then
      return nil, 400, "malformed header line " .. (i - 1)
    end
    name = name:lower()
    headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
  end

  local path, query = target, nil
  local q = target:find("?", 1, true)
  if q then
    path, query = target:sub(1, q - 1), target:sub(q + 1)
  end
  if path:sub(1, 1) ~= "/" then
    local p = path:match("^%a[%w+.-]*://[^/]*(.*)$")   -- absolute-form, as sent to proxies
    if not p then
      return nil, 400, "malformed request target"
    end
    path = p == "" and "/" or p
  end

  if headers["transfer-encoding"] then
    return nil, 411, "request bodies with Transfer-Encoding are not supported; send Content-Length"
  end
  local length = 0
  if headers["content-length"] then
    local value
    for part in headers["content-length"]:gmatch("[^,]+") do   -- repeated identical values are fine
      local v = part:match("^%s*(%d+)%s*$")
      if not v or (value and v ~= value) then
        return nil, 400, "invalid Content-Length"
      end
      value = v
    end
    if not value then
      return nil, 400, "invalid Content-Length"
    end
    if #value > 9 or tonumber(value) > MAX_BODY then
      return nil, 400, "the request body is larger than 16 MiB"
    end
    length = tonumber(value)
  end

  if length > 0 and #conn.buf < length and has_token(headers.expect or "", "100-continue") then
    local good, err = write_all(conn, "HTTP/1.1 100 Continue\r\n\r\n")
    if not good then
      return nil, nil, err
    end
  end
  local body = ""
  if length > 0 then
    local err
    body, err = read_body(conn, length, deadline)
    if not body then
      return nil, nil, err
    end
  end

  local conn_header = headers.connection or ""
  local keep_alive
  if minor == "0" then
    keep_alive = has_token(conn_header, "keep-alive")
  else
    keep_alive = not has_token(conn_header, "close")
  end
  return {
    method = method, target = target, path = path, query = query, headers = headers,
    body = body, keep_alive = keep_alive, http10 = minor == "0",
  }
end

------------------------------------------------------------------------------------------
-- Writing responses
------------------------------------------------------------------------------------------

-- The status line and header section of a response whose body is `length` bytes.
-- resp: status, content_type, extra (header name -> value; replaces a standard header of the
-- same name), ray.
local function response_head(resp, length, keep_alive)
  local fields = {
    { "Date", http_date() },
    { "Content-Type", resp.content_type or "application/json" },
    { "Content-Length", string.format("%d", length) },
    { "cf-ray", resp.ray },
    { "Connection", keep_alive and "keep-alive" or "close" },
  }
  if resp.extra then
    local names = {}
    for name in pairs(resp.extra) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      local replaced = false
      for _, field in ipairs(fields) do
        if field[1]:lower() == name:lower() then
          field[2], replaced = resp.extra[name], true
        end
      end
      if not replaced then
        fields[#fields + 1] = { name, resp.extra[name] }
      end
    end
  end
  local out = { string.format("HTTP/1.1 %d %s\r\n", resp.status, REASONS[resp.status] or "Unknown") }
  for _, field in ipairs(fields) do
    out[#out + 1] = field[1] .. ": " .. field[2] .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- The body text that send_response sends for resp.
function H.sent_body(req, resp, truncate)
  local body = resp.body or ""
  if req.method == "HEAD" then
    return ""
  end
  return truncate and body:sub(1, #body // 2) or body
end

-- Writes a response (see response_head; resp.body is the body, announced whole in
-- Content-Length). With truncate, only half the body goes out. Returns true or nil, err.
function H.send_response(conn, req, resp, keep_alive, truncate)
  local body = resp.body or ""
  return write_all(conn, response_head(resp, #body, keep_alive) .. H.sent_body(req, resp, truncate))
end

local FILLER = string.rep("x", 1 << 16)

-- Writes a response whose body is n bytes: open, n - #open - #close filler bytes "x", close
-- (or the first n bytes of open .. close when n is smaller than both), streamed in 64 KiB
-- chunks so that memory does not grow with n; with truncate, only the first n // 2 bytes go
-- out. Returns true, or nil, err (e.g. when the client closes early).
function H.send_generated(conn, req, resp, n, open, close, keep_alive, truncate)
  local head = response_head(resp, n, keep_alive)
  if req.method == "HEAD" then
    return write_all(conn, head)
  end
  local frame = open .. close
  local filler = 0
  if n >= #frame then
    filler = n - #frame
  else
    open, close = frame:sub(1, n), ""
  end
  local left = truncate and n // 2 or n            -- body bytes still to send
  open = open:sub(1, left)
  left = left - #open
  local good, err = write_all(conn, head .. open)
  while good and left > 0 and filler > 0 do
    local k = math.min(filler, left, #FILLER)
    good, err = write_all(conn, k == #FILLER and FILLER or FILLER:sub(1, k))
    filler, left = filler - k, left - k
  end
  if good and left > 0 then
    good, err = write_all(conn, close:sub(1, left))
  end
  return good, err
end

-- Answers a request that could not be parsed, then closes "gracefully": half-close and drain
-- what the client is still sending, so the close does not become a TCP reset that destroys
-- the response before the client has read it.
function H.reject(conn, status, body, ray)
  if H.send_response(conn, {}, { status = status, body = body, ray = ray }, false) then
    conn.sock:shutdown("send")
    local deadline = gettime() + LINGER_TIME
    while not conn.eof and gettime() < deadline do
      local data, err, partial = conn.sock:receive(65536)
      if err == "timeout" then
        if #partial == 0 and not wait_readable(conn.sock, deadline) then
          break
        end
      elseif not data then
        break                                  -- closed, or a real error
      end
    end
  end
end

return H
