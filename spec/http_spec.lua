-- spec/http_spec.lua: runtime/cf_http.c, the libcurl transport: TLS verification that
-- cannot be switched off by accident (a local HTTPS server with a self-signed certificate),
-- ca_file for private CAs, the cap on response bodies, and redirects, never followed.
local H = require "spec.helper"
local socket = require "socket"

local ZONE = H.ZONE

local function openssl_cert(dir, name, san)
  local cmd = string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    .. "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=localhost -addext %s >/dev/null 2>&1",
    dir, name, dir, name, H.shell_quote("subjectAltName=" .. san))
  assert(os.execute(cmd), "openssl could not make a certificate")
  return dir .. "/" .. name .. ".pem", dir .. "/" .. name .. ".key"
end

-- Starts a TLS server on a free port: `openssl s_server -www` by default, or the command
-- that make(port) returns; returns the port and a stop function.
local function tls_server(cert, key, make)
  for _ = 1, 20 do
    local port = math.random(20000, 60000)
    local pidfile = os.tmpname()
    local cmd = make and make(port) or string.format("openssl s_server -quiet -www -accept "
      .. "127.0.0.1:%d -cert %s -key %s >/dev/null 2>&1", port, cert, key)
    os.execute(string.format("%s & echo $! > %s", cmd, pidfile))
    local f = assert(io.open(pidfile))
    local pid = f:read("l")
    f:close()
    os.remove(pidfile)
    for _ = 1, 100 do
      local c = socket.tcp()
      c:settimeout(0.2)
      if c:connect("127.0.0.1", port) then
        c:close()
        return port, function() os.execute("kill " .. pid .. " 2>/dev/null") end
      end
      c:close()
      if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end -- port taken
      socket.sleep(0.05)
    end
    os.execute("kill " .. pid .. " 2>/dev/null")
  end
  error("could not start openssl s_server")
end

describe("TLS", function()
  local dir, good, good_key, hostless, hostless_key
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    good, good_key = openssl_cert(dir, "good", "IP:127.0.0.1,DNS:localhost")
    hostless, hostless_key = openssl_cert(dir, "hostless", "DNS:elsewhere.example")
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  local function list(port, opts)
    local o = { base_url = "https://127.0.0.1:" .. port .. "/client/v4", api_token = H.TOKEN,
      max_retries = 0, timeout = 5 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local c = cloudflare.new(o)
    local res, err = c.cache.origin_cloud_regions.list { zone_id = ZONE }
    c:close()
    return res, err
  end

  it("refuses a self-signed certificate, and accepts it with ca_file", function()
    local port, stop = tls_server(good, good_key)
    local res, err = list(port)
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    assert.matches("SSL certificate problem", err.message)
    -- with the CA given, the handshake succeeds: s_server answers with an HTML page, which
    -- is then (correctly) not a Cloudflare envelope
    res, err = list(port, { ca_file = good })
    assert.is_nil(res)
    assert.are.equal("decode", err.kind)
    assert.are.equal(200, err.status)
    stop()
  end)

  it("checks the host name even when the CA is trusted", function()
    local port, stop = tls_server(hostless, hostless_key)
    local _, err = list(port, { ca_file = hostless })
    assert.are.equal("network", err.kind)
    assert.matches("subject name", err.message)
    stop()
  end)

  it("multiplexes concurrent requests over one HTTP/2 connection where the server offers it", function()
    -- nghttpd serves files: the listing is one, at the path the client asks for
    local docs = dir .. "/htdocs/client/v4/zones/" .. ZONE .. "/cache"
    os.execute("mkdir -p " .. docs)
    local f = assert(io.open(docs .. "/origin_cloud_regions", "w"))
    f:write('{"success":true,"errors":[],"messages":[],"result":{"id":"origin_public_cloud_region",'
      .. '"editable":true,"value":[{"origin-ip":"192.0.2.1","region":"us-east-1","vendor":"aws"}]}}')
    f:close()
    local log = dir .. "/nghttpd.log"
    local port, stop = tls_server(good, good_key, function(p)
      return string.format("nghttpd -v --address=127.0.0.1 -d %s/htdocs %d %s %s >%s 2>&1",
        dir, p, good_key, good, log)
    end)
    local c = cloudflare.new { base_url = "https://127.0.0.1:" .. port .. "/client/v4",
      api_token = H.TOKEN, ca_file = good }
    local fns = {}
    for i = 1, 4 do
      fns[i] = function()
        local x = c:start("GET", "/zones/" .. ZONE .. "/cache/origin_cloud_regions")
        local res, info = x:finish()
        return res and #res.value, info.http_version
      end
    end
    local counts, versions = cloudflare.parallel(fns, { concurrency = 4 })
    c:close()
    stop()
    assert.are.same({ 1, 1, 1, 1 }, counts)
    assert.are.same({ "2", "2", "2", "2" }, versions)
    local sessions, n, streams = {}, 0, 0 -- (the port probe was a session without requests)
    for line in io.lines(log) do
      local id = line:match("^%[id=(%d+)%]")
      if id and line:find("recv HEADERS frame", 1, true) then
        if not sessions[id] then sessions[id], n = true, n + 1 end
        streams = streams + 1
      end
    end
    assert.are.equal(1, n)       -- one connection
    assert.are.equal(4, streams) -- four requests on it
  end)

  it("has no option that turns verification off", function()
    assert.error_matches(function() cloudflare.new { api_token = "t", verify = false } end,
      'unknown option "verify"')
    assert.error_matches(function() cloudflare.new { api_token = "t", insecure = true } end,
      'unknown option "insecure"')
  end)
end)

describe("response bodies", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)

  it("refuses a body over the cap as a decode error, without reading it all", function()
    fake:reset()
    fake:fault { oversize = 40 * 1024 * 1024 }
    local c = fake:client { max_retries = 0 }
    local res, err = c.cache.origin_cloud_regions.list { zone_id = ZONE }
    assert.is_nil(res)
    assert.are.equal("decode", err.kind)
    assert.matches("response body larger than 33554432 bytes; refused", err.message)
    c:close()
  end)

  it("takes max_body per client", function()
    fake:reset()
    fake:set_zone(ZONE, {})
    fake:fault { oversize = 5000 }
    local c = fake:client { max_retries = 0, max_body = 4096 }
    local _, err = c.cache.origin_cloud_regions.list { zone_id = ZONE }
    assert.matches("larger than 4096 bytes", err.message)
    local res = assert(c.cache.origin_cloud_regions.list { zone_id = ZONE })
    assert.are.equal(0, #res.value)
    c:close()
  end)
end)

describe("redirects", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:clear_requests()
  end)

  local function list(location, status)
    -- an envelope without error details, as a proxy's redirect may carry
    fake:fault { status = status, errors = {}, headers = { Location = location } }
    local c = fake:client { max_retries = 2 }
    local res, err = c.cache.origin_cloud_regions.list { zone_id = ZONE }
    c:close()
    return res, err
  end

  it("a 301 or 302 is an error that says where it pointed; it is neither followed nor retried", function()
    for _, status in ipairs { 301, 302 } do
      fake:clear_requests()
      -- relative, to this very server: following it would show as a second request
      local res, err = list("/client/v4/zones/" .. ZONE .. "/moved", status)
      assert.is_nil(res)
      assert.are.equal("http", err.kind)
      assert.are.equal(status, err.status)
      assert.are.equal(string.format("HTTP %d: redirect to %s/zones/%s/moved (not followed: cfrun never "
        .. "follows redirects; check base_url)", status, fake.base_url, ZONE), err.message)
      assert.are.equal(1, #fake:api_requests())
    end
  end)

  it("shows an absolute Location as it came", function()
    local _, err = list("https://api.example.net/client/v4/zones/" .. ZONE, 308)
    assert.matches("^HTTP 308: redirect to https://api%.example%.net/client/v4/zones/" .. ZONE
      .. " %(not followed", err.message)
  end)

  it("describes a Location too long for the message by its size, never cutting it", function()
    local long = "https://api.example.net/" .. string.rep("a", 400)
    local _, err = list(long, 301)
    assert.matches("^HTTP 301: redirect to a location of 424 bytes, too long to show %(not followed", err.message)
  end)
end)
