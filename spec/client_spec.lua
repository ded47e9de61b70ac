-- spec/client_spec.lua: runtime/cf_client.c (the cloudflare.Client type), runtime/cf_error.c (cloudflare.Error),
-- and cloudflare.new's configuration rules (lua/cloudflare.lua), against the fake API; the
-- state's secrets and the texts of errors (runtime/cf_redact.c, runtime/cf_response.c), against
-- a hostile server (a LuaSocket process that echoes what it received into its answers).
local H = require "spec.helper"

describe("cloudflare.new", function()
  it("needs credentials and says which environment variables to set", function()
    local out, err, code = H.run({ "-e", "cloudflare.new{}" }, { env = {
      CLOUDFLARE_API_TOKEN = false, CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false,
      CLOUDFLARE_API_TOKEN_FILE = false } })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("no credentials configured: set CLOUDFLARE_API_TOKEN %(or "
      .. "CLOUDFLARE_API_TOKEN_FILE, or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY%)", err)
  end)

  it("rejects unknown options and wrong types, naming them", function()
    assert.error_matches(function() cloudflare.new { api_tokn = "x" } end, 'unknown option "api_tokn"')
    assert.error_matches(function() cloudflare.new { api_token = 5 } end,
      "option 'api_token' must be a string, got number")
    assert.error_matches(function() cloudflare.new { api_token = "x", timeout = -1 } end,
      "timeout.* seconds")
    assert.error_matches(function() cloudflare.new { api_token = "x", base_url = "ftp://h/" } end,
      "base_url must start with https:// or http://")
    assert.error_matches(function()
      cloudflare.new { api_token = "x", base_url = "https://user:pw@h/client/v4" } end,
      "base_url must not contain credentials")
  end)

  it("refuses credentials that could inject headers, without echoing them", function()
    local ok, msg = pcall(cloudflare.new, { api_token = "abc\r\nX-Evil: 1" })
    assert.is_false(ok)
    assert.matches("api_token contains a space or control character", msg)
    assert.is_nil(msg:find("X-Evil", 1, true))
  end)

  it("never shows credentials in tostring", function()
    local c = cloudflare.new { api_token = "very-secret-token", base_url = "http://127.0.0.1:9/x" }
    local s = tostring(c)
    assert.matches("^cloudflare.Client %(api token, http://127.0.0.1:9/x%)", s)
    assert.is_nil(s:find("very-secret-token", 1, true))
    c:close()
    assert.matches("closed", tostring(c))
  end)

  it("raises when a closed client is used, and closes with <close>", function()
    local c = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
    c:close()
    c:close() -- idempotent
    assert.error_matches(function()
      c.cache.origin_cloud_regions.bulk_delete { zone_id = H.ZONE, ips = { "192.0.2.1" } }
    end, "attempt to use a closed cloudflare.Client")
    local kept
    do
      local d <close> = cloudflare.new { api_token = "t", base_url = "http://127.0.0.1:9" }
      kept = d
    end
    assert.matches("closed", tostring(kept))
  end)
end)

describe("credentials from the environment", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
    fake:clear_requests()
  end)

  local script = [[
    local res, err = cloudflare.cache.origin_cloud_regions.bulk_delete{
      zone_id = os.getenv("ZONE"), ips = { "192.0.2.1" } }
    assert(res, tostring(err))
    print(#res.value.succeeded, res.value.succeeded[1].vendor)
  ]]

  it("the default client uses CLOUDFLARE_API_TOKEN and CLOUDFLARE_BASE_URL", function()
    local out, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN,
      CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false } })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("1\taws\n", out)
    local r = fake:requests()[1]
    assert.are.equal("Bearer <redacted>", r.headers.authorization) -- the fake's log keeps no secret
    assert.are.equal("token", r.credential)                        -- but says it was the right one
  end)

  it("uses CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY when no token is set", function()
    local _, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = false,
      CLOUDFLARE_EMAIL = H.EMAIL, CLOUDFLARE_API_KEY = H.KEY } })
    assert.are.equal(0, code, err)
    local r = fake:requests()[1]
    assert.are.equal("<redacted>", r.headers["x-auth-key"])
    assert.are.equal(H.EMAIL, r.headers["x-auth-email"])
    assert.are.equal("key", r.credential)
    assert.is_nil(r.headers.authorization)
  end)

  it("prefers the token when both schemes are configured", function()
    local _, err, code = H.run({ "-e", script }, { env = { ZONE = H.ZONE,
      CLOUDFLARE_BASE_URL = fake.base_url, CLOUDFLARE_API_TOKEN = H.TOKEN,
      CLOUDFLARE_EMAIL = H.EMAIL, CLOUDFLARE_API_KEY = H.KEY } })
    assert.are.equal(0, code, err)
    local r = fake:requests()[1]
    assert.are.equal("Bearer <redacted>", r.headers.authorization)
    assert.are.equal("token", r.credential)
    assert.is_nil(r.headers["x-auth-key"])
  end)

  it("explicit options win over the environment", function()
    local c = cloudflare.new { base_url = fake.base_url, api_email = H.EMAIL, api_key = H.KEY }
    assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = H.ZONE, ips = { "192.0.2.1" } })
    local r = fake:requests()[1]
    assert.are.equal(H.EMAIL, r.headers["x-auth-email"])
    assert.are.equal("key", r.credential)
    c:close()
  end)
end)

describe("cloudflare.core.new_table (runtime/cf_sys.c)", function()
  local core = require "cloudflare.core"

  it("returns an empty table that grows like any other", function()
    local t = core.new_table(4, 2)
    assert.are.same({}, t)
    for i = 1, 10 do t[i] = i end
    t.x = true
    assert.are.equal(10, #t)
    assert.is_true(t.x)
    assert.are.same({}, core.new_table())
  end)

  it("raises for sizes out of range, naming the argument", function()
    assert.has_error(function() core.new_table(-1, 0) end,
      "bad argument #1 to 'new_table' (out of range)")
    assert.has_error(function() core.new_table(0, math.maxinteger) end,
      "bad argument #2 to 'new_table' (out of range)")
  end)
end)

---------------------------------------------------------------------------------------------
-- Secrets and control characters in what comes back (runtime/cf_redact.c, cf_response.c)

-- A hostile server: a LuaSocket process that answers every request (Connection: close) by
-- its path after /client/v4, echoing the credentials it received. Prints "PORT <n>" once
-- listening; /quit (or 120 s without a connection) ends it.
local HOSTILE = [==[
local socket = require "socket"
local cjson = require "cjson"
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write("PORT ", port, "\n")
io.stdout:flush()
server:settimeout(120)
local function envelope(errors)
  return cjson.encode { success = false, errors = errors, messages = {}, result = cjson.null }
end
local function answer(path, h)
  local auth = h.authorization or "-"
  local token = auth:match("^Bearer (%S+)$") or "-"
  if path == "/echo" then
    return 400, {}, envelope {
      { code = 6003, message = "Invalid request headers: Authorization: " .. auth },
      { code = 6111, message = "X-Auth-Key " .. (h["x-auth-key"] or "-") .. " of " .. (h["x-auth-email"] or "-") } }
  elseif path == "/forge" then
    return 500, {}, envelope { { code = 1141, message = 'failed\n{"event":"run","outcome":"ok","deleted":0}'
      .. "\r\27[2K\27]0;owned\7 del=\127 csi=\194\155 tab=\t nul=\0 token=" .. token } }
  elseif path == "/page" then
    return 502, { ["Content-Type"] = "text/html" },
      "<html><body>\r\n<h1>502</h1>\27[5m proxy saw " .. auth .. "</body></html>"
  elseif path == "/page-cut" then -- the token starts 108 printable bytes in: where an excerpt is cut
    return 502, { ["Content-Type"] = "text/html" }, "<html>" .. string.rep("x", 95) .. auth .. " and more"
  elseif path == "/redirect" then
    return 302, { Location = "https://login.example/sso?token=" .. token .. "\27[31m&next=/" }, ""
  elseif path == "/ray" then
    return 400, { ["cf-ray"] = "8f00\27[31m-EVIL" }, envelope { { code = 6003, message = "no" } }
  end
  return 200, {}, cjson.encode { success = true, errors = {}, messages = {}, result = {} }
end
while true do
  local c = server:accept()
  if not c then break end
  c:settimeout(5)
  local request = c:receive("*l") or ""
  local target = request:match("^%S+ (%S+)") or "/"
  local h = {}
  while true do
    local line = c:receive("*l")
    if not line or line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  local n = tonumber(h["content-length"] or "0") or 0
  if n > 0 then c:receive(n) end
  local path = target:gsub("^/client/v4", "")
  local status, headers, body = answer(path, h)
  local out = { "HTTP/1.1 " .. status .. " X\r\n", "Content-Length: " .. #body .. "\r\n", "Connection: close\r\n" }
  if not headers["Content-Type"] then out[#out + 1] = "Content-Type: application/json\r\n" end
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  c:send(table.concat(out) .. "\r\n" .. body)
  c:close()
  if path == "/quit" then break end
end
]==]

local function start_hostile()
  local script = H.tempfile(HOSTILE)
  local proc = assert(io.popen("exec " .. H.shell_quote(H.CFRUN) .. " " .. script, "r"))
  local port = (proc:read("l") or ""):match("^PORT (%d+)$")
  os.remove(script)
  assert(port, "the hostile server did not start")
  local base_url = "http://127.0.0.1:" .. port .. "/client/v4"
  return {
    base_url = base_url,
    stop = function()
      local c = cloudflare.new { api_token = "quit", base_url = base_url, max_retries = 0 }
      c:request("GET", "/quit")
      c:close()
      proc:close()
    end,
  }
end

local CONTROL = "[\0-\31\127]" -- any raw C0 control character or DEL

describe("what a hostile server sends back (runtime/cf_redact.c, runtime/cf_response.c)", function()
  local hostile, token
  setup(function() hostile = start_hostile() end)
  teardown(function() hostile:stop() end)
  before_each(function() token = string.format("echoed-token-%08x", math.random(0, 0x7fffffff)) end)

  local function get(path, opts)
    local o = { base_url = hostile.base_url, api_token = token, max_retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    if o.api_token == false then o.api_token = nil end
    local c = cloudflare.new(o)
    local res, err = c:request("GET", path)
    c:close()
    return res, err
  end

  it("replaces a token the server echoes by <redacted>, in err.message and every err.errors[i].message", function()
    local res, err = get("/echo")
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(400, err.status)
    assert.is_nil(err.message:find(token, 1, true), err.message)
    -- the server did echo it: the place it took shows the placeholder
    assert.are.equal("Invalid request headers: Authorization: Bearer <redacted>", err.errors[1].message)
    assert.matches("%[6003%] Invalid request headers: Authorization: Bearer <redacted>; %[6111%]", err.message)
    assert.are.equal(err.message, tostring(err))
  end)

  it("redacts an echoed API key too, but not the email, which is no secret", function()
    local key = "echoed-key-" .. token
    local _, err = get("/echo", { api_token = false, api_email = "ops@example.com", api_key = key })
    assert.are.equal("X-Auth-Key <redacted> of ops@example.com", err.errors[2].message)
    assert.is_nil(err.message:find(key, 1, true), err.message)
  end)

  it("redacts the token in the excerpt of an error page, and never leaves a piece of it where the excerpt is cut",
    function()
      local _, err = get("/page")
      assert.are.equal("http", err.kind)
      assert.matches("proxy saw Bearer <redacted></body></html>$", err.message)
      assert.is_nil(err.message:find(CONTROL), err.message)
      _, err = get("/page-cut")
      -- cut where the token would start: <redacted> does not fit, and no byte of the token shows
      assert.matches("xxxxBearer %.%.%.$", err.message)
      assert.is_nil(err.message:find(token:sub(1, 8), 1, true), err.message)
    end)

  it("escapes the control characters of an error message, so it can neither forge a log line nor drive a terminal",
    function()
      local _, err = get("/forge")
      assert.are.equal("api", err.kind)
      for _, text in ipairs { err.message, err.errors[1].message } do
        assert.is_nil(text:find(CONTROL), text)
        assert.is_nil(text:find("\194\155", 1, true), text)
      end
      assert.are.equal('failed\\n{"event":"run","outcome":"ok","deleted":0}\\r\\x1b[2K\\x1b]0;owned\\x07 del=\\x7f'
        .. ' csi=\\u009b tab=\\t nul=\\x00 token=<redacted>', err.errors[1].message)
      assert.are.equal("HTTP 500: [1141] " .. err.errors[1].message, err.message)
    end)

  it("sanitizes the request id a server sends", function()
    local _, err = get("/ray")
    assert.are.equal("8f00\\x1b[31m-EVIL", err.request_id)
  end)

  it("reports a redirect as an error that says where it pointed, redacted and escaped", function()
    local _, err = get("/redirect")
    assert.are.equal("http", err.kind)
    assert.are.equal(302, err.status)
    assert.matches("^HTTP 302: redirect to https://login%.example/sso%?token=<redacted>", err.message)
    assert.matches("not followed", err.message)
    assert.is_nil(err.message:find(CONTROL), err.message)
    assert.is_nil(err.message:find(token, 1, true), err.message)
  end)

  it("keeps what a script writes on stderr to one line with no secret", function()
    local script = [[
      local c = cloudflare.new { base_url = os.getenv("CLOUDFLARE_BASE_URL"), max_retries = 0 }
      local _, err = c:request("GET", "/forge")
      io.stderr:write("script: ", tostring(err), "\n")
    ]]
    local _, err = H.run({ "-e", script }, { env = { CLOUDFLARE_BASE_URL = hostile.base_url,
      CLOUDFLARE_API_TOKEN = token, CLOUDFLARE_EMAIL = false, CLOUDFLARE_API_KEY = false } })
    assert.matches("^script: HTTP 500: %[1141%] failed\\n{\"event\":\"run\"[^\n]*token=<redacted>\n$", err)
    assert.is_nil(err:sub(1, -2):find(CONTROL), err)
  end)
end)

describe("responses the decoder refuses (runtime/cf_jsondec.c via cf_response.c)", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local PATH = "/zones/" .. H.ZONE .. H.PREFIX

  it("a response object that repeats a key is a decode error naming the key, whatever the status", function()
    local c = fake:client { max_retries = 0 }
    -- which "success" is meant? a reader that keeps the last value would call this a success
    fake:fault { status = 200, body = '{"success":false,"errors":[{"code":1,"message":"no"}],"messages":[],'
      .. '"result":null,"success":true}' }
    local res, err = c:request("GET", PATH)
    assert.is_nil(res)
    assert.are.equal("decode", err.kind)
    assert.are.equal(200, err.status)
    assert.matches('duplicate key "success" in the object at byte 1', err.message)
    fake:fault { status = 503, body = '{"success":false,"errors":[],"errors":[],"messages":[],"result":null}' }
    res, err = c:request("GET", PATH)
    assert.is_nil(res)
    assert.are.equal("decode", err.kind)
    assert.are.equal(503, err.status) -- still retryable by its status
    assert.matches('duplicate key "errors"', err.message)
    c:close()
  end)

  it("a bulk_delete whose response repeats a key inside an item leaves the batch pending", function()
    fake:set_zone(H.ZONE, { { "192.0.2.1", "us-east-1", "aws" } })
    local item = string.format('{"%s":"192.0.2.1","%s":"198.51.100.1","region":"us-east-1","vendor":"aws"}',
      H.ITEM_KEY, H.ITEM_KEY)
    local result = '{"succeeded":[' .. item .. '],"failed":[]}'
    if H.V1 then
      result = '{"id":"origin_public_cloud_region","editable":true,"modified_on":null,"value":' .. result .. '}'
    end
    fake:fault { body_override = '{"success":true,"errors":[],"messages":[],"result":' .. result .. '}' }
    local c = fake:client { max_retries = 0 }
    local res, err, partial = c.cache.origin_cloud_regions.bulk_delete { zone_id = H.ZONE, ips = { "192.0.2.1" } }
    assert.is_nil(res)
    assert.are.equal("decode", err.kind)
    assert.truthy(err.message:find('duplicate key "' .. H.ITEM_KEY .. '"', 1, true), err.message)
    assert.are.same({}, partial.value.succeeded)
    c:close()
  end)
end)

describe("cloudflare.core.redact and cloudflare.core.sanitize (runtime/cf_redact.c)", function()
  local core = require "cloudflare.core"

  it("replace the credentials of every client the state created, never the email nor a short value", function()
    local token, key = "state-token-" .. math.random(1e9), "state-key-" .. math.random(1e9)
    local text = "t=" .. token .. " k=" .. key .. " e=me@example.com"
    assert.are.equal(text, core.redact(text)) -- not yet secrets
    cloudflare.new({ api_token = token, base_url = "http://127.0.0.1:9" }):close()
    cloudflare.new({ api_email = "me@example.com", api_key = key, base_url = "http://127.0.0.1:9" }):close()
    assert.are.equal("t=<redacted> k=<redacted> e=me@example.com", core.redact(text))
    assert.are.equal("<redacted><redacted>", core.redact(token .. token))
    cloudflare.new({ api_token = "seven77", base_url = "http://127.0.0.1:9" }):close()
    assert.are.equal("seven77 stays", core.redact("seven77 stays")) -- under 8 bytes: never a secret
    local plain = "nothing to hide"
    assert.is_true(rawequal(plain, core.redact(plain)))
    assert.is_true(rawequal(plain, core.sanitize(plain)))
  end)

  it("prefer the longest secret starting at one place", function()
    local short = "overlap-" .. math.random(1e9)
    local long = short .. "-and-more"
    cloudflare.new({ api_token = short, base_url = "http://127.0.0.1:9" }):close()
    cloudflare.new({ api_token = long, base_url = "http://127.0.0.1:9" }):close()
    assert.are.equal("[<redacted>] [<redacted>]", core.redact("[" .. long .. "] [" .. short .. "]"))
  end)

  it("sanitize redacts, then escapes every control character in one readable scheme", function()
    local token = "sanitize-token-" .. math.random(1e9)
    cloudflare.new({ api_token = token, base_url = "http://127.0.0.1:9" }):close()
    local cases = {
      { "a\nb\r\tc", "a\\nb\\r\\tc" },
      { "\27[31mred\27]0;t\7", "\\x1b[31mred\\x1b]0;t\\x07" },
      { "\0\1\31\127", "\\x00\\x01\\x1f\\x7f" },
      { "c1 \194\128 \194\155 \194\159, not \194\160 é", "c1 \\u0080 \\u009b \\u009f, not \194\160 é" },
      { "kept: \\n \" ' \\", "kept: \\n \" ' \\" },
      { token .. "\n" .. token, "<redacted>\\n<redacted>" },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], core.sanitize(c[1])) end
    assert.are.equal("a\nb", core.redact("a\nb")) -- redact alone keeps control characters
    assert.has_error(function() core.sanitize(nil) end)
  end)

  it("make core.error's message and errors[i].message safe too", function()
    local err = core.error { kind = "decode", message = "bad\n\27x", errors = { { message = "\r" }, "plain" } }
    assert.are.equal("bad\\n\\x1bx", err.message)
    assert.are.equal("\\r", err.errors[1].message)
    assert.are.equal("plain", err.errors[2])
  end)
end)

describe("cloudflare.new's options, described once (cloudflare.OPTIONS)", function()
  it("are what cloudflare.new accepts: every one, and nothing else", function()
    local names = {}
    for _, o in ipairs(cloudflare.OPTIONS) do names[#names + 1] = o[1] end
    assert.are.equal(16, #names)
    local ok, err = pcall(cloudflare.new, { api_tokn = "x" })
    assert.is_false(ok)
    assert.matches("valid: " .. table.concat(names, ", "):gsub("%p", "%%%0"), err)
  end)

  it("docs/api.md's table is theirs, row by row", function()
    local api = H.source("docs/api.md")
    local block = api:match("<!%-%- options: generated from cloudflare.OPTIONS %-%->\n(.-)\n"
      .. "<!%-%- end of options %-%->")
    assert.truthy(block, "docs/api.md has no options table")
    local want = { "| option | |", "|---|---|" }
    for _, o in ipairs(cloudflare.OPTIONS) do want[#want + 1] = string.format("| `%s` | %s |", o[1], o[3]) end
    assert.are.equal(table.concat(want, "\n"), block)
  end)

  it("the man page lists each with the same words, and help(cloudflare.new) shows each", function()
    local man = H.source("docs/cfrun.1")
    local help = H.run { "-e", 'require("cloudflare.repl").init(); help(cloudflare.new)' }
    help = help:gsub("\n%s*", " ") -- unwrapped
    for _, o in ipairs(cloudflare.OPTIONS) do
      local text = o[3]:gsub("\\", "\\e"):gsub("%-", "\\-")
      assert.truthy(man:find(".TP\n.B " .. o[1] .. "\n" .. text .. "\n", 1, true), "cfrun.1: " .. o[1])
      assert.truthy(help:find(o[1] .. ": ", 1, true), "help: " .. o[1])
    end
  end)

  it("the README's example uses only real options", function()
    local readme = H.source("README.md")
    local example = readme:match("local client = cloudflare%.new {\n(.-)\n}")
    assert.truthy(example, "README has no cloudflare.new example")
    local known = {}
    for _, o in ipairs(cloudflare.OPTIONS) do known[o[1]] = true end
    local n = 0
    for line in example:gmatch("[^\n]+") do
      local name = line:gsub("%-%-.*", ""):match("^%s*([%w_]+)%s*=")
      if name then
        assert.is_true(known[name], "README example: unknown option " .. name)
        n = n + 1
      end
    end
    assert.is_true(n >= 10)
  end)
end)


describe("cloudflare.Error, built by one constructor (runtime/cf_error.c)", function()
  local core = require "cloudflare.core"

  it("core.error composes the message as C does: from status and detail, or the errors", function()
    local e = core.error { kind = "decode", status = 502, detail = "result is not an object\n" }
    assert.are.equal("HTTP 502: result is not an object\\n", e.message) -- sanitized too
    assert.is_nil(e.detail)
    assert.are.equal("HTTP 502: result is not an object\\n", tostring(e))
    e = core.error { kind = "api", status = 403, errors = { { code = 10000, message = "Authentication error" },
      { message = "second" } } }
    assert.are.equal("HTTP 403: [10000] Authentication error; second", e.message)
    e = core.error { kind = "journal", message = "given as it is" }
    assert.are.equal("given as it is", e.message)
    assert.are.same({}, e.errors)
    assert.has_error(function() core.error { message = "no kind" } end)
    assert.has_error(function() core.error { kind = "x", message = 5 } end)
  end)

  it("a failure decoded in C and one the binder finds in Lua read alike", function()
    local fake = H.start_fake()
    local c = fake:client { max_retries = 0 }
    fake:fault { status = 500, errors = { { code = 1141, message = "Internal error" } } }
    local _, from_c = c.cache.origin_cloud_regions.list { zone_id = H.ZONE }
    fake:fault { status = 200, body = '{"success":true,"errors":[],"messages":[],"result":5}' }
    local _, from_lua = c.cache.origin_cloud_regions.list { zone_id = H.ZONE }
    assert.are.equal("HTTP 500: [1141] Internal error", from_c.message)
    assert.matches("^HTTP 200: ", from_lua.message)
    assert.are.equal("decode", from_lua.kind)
    assert.are.equal(getmetatable(from_c), getmetatable(from_lua))
    c:close()
    fake:stop()
  end)
end)

describe("a batch's answer decoded into its records (Client:request's shape, runtime/cf_jsondec.c)", function()
  local fake
  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local PATH = "/zones/" .. H.ZONE .. H.PREFIX

  local function request(body, shape)
    fake:fault { status = 200, body = body }
    local c = fake:client { max_retries = 0 }
    local res, info = c:request("GET", PATH, nil, { shape = shape })
    c:close()
    return res, info
  end

  local function envelope(result) return '{"success":true,"errors":[],"messages":[],"result":' .. result .. '}' end

  it("keeps what an entry holds, strings only, under its name; origin-ip's string before origin_ip's", function()
    local body = envelope('{"succeeded":[{"origin-ip":"192.0.2.1","origin_ip":"192.0.2.9","region":"us-east-1",'
      .. '"vendor":"aws","note":{"deep":[1,2]},"error":"x"},{"origin_ip":"192.0.2.2","origin-ip":7,"region":5,'
      .. '"vendor":"gcp"},{"origin_ip":"192.0.2.3","origin-ip":"192.0.2.4"},"plain",[1],{}],'
      .. '"failed":[{"origin_ip":"198.51.100.1","error":"no mapping","region":"us-east-1"},{"error":null}],'
      .. '"other":[{"origin-ip":"203.0.113.1","x":1}]}')
    local res, info = request(body, "batch")
    assert.is_true(info.shaped)
    assert.are.same({
      { origin_ip = "192.0.2.1", region = "us-east-1", vendor = "aws" },
      { origin_ip = "192.0.2.2", vendor = "gcp" },
      { origin_ip = "192.0.2.4" }, -- origin-ip is listed first, wherever it stands in the object
      "plain", { 1 }, {},
    }, res.succeeded)
    assert.are.same({ { origin_ip = "198.51.100.1", error = "no mapping" }, {} }, res.failed)
    assert.are.same({ { ["origin-ip"] = "203.0.113.1", x = 1 } }, res.other) -- not a list of the shape
    -- without the shape, the same bytes are plain JSON
    local plain, pinfo = request(body, nil)
    assert.is_nil(pinfo.shaped)
    assert.are.same({ ["origin-ip"] = "192.0.2.1", origin_ip = "192.0.2.9", region = "us-east-1", vendor = "aws",
      note = { deep = { 1, 2 } }, error = "x" }, plain.succeeded[1])
  end)

  it("shapes the lists wherever they stand (v1's result.value), and keys that are escaped or past the cache", function()
    local many = {}
    for i = 1, 20 do many[#many + 1] = string.format('"k%02d":%d', i, i) end
    local body = envelope('{"id":"origin_public_cloud_region","value":{"succeeded":['
      .. '{"origin_ip":"192.0.2.1","regi\\u006fn":"eu-west-1","vendor":"aws"},'
      .. '{' .. table.concat(many, ",") .. ',"origin_ip":"192.0.2.2","region":"us-east-1","vendor":"aws"}],'
      .. '"f\\u0061iled":[{"origin_ip":"198.51.100.1","error":"e\\u00e9"}]}}')
    local res = request(body, "batch")
    assert.are.same({ { origin_ip = "192.0.2.1", region = "eu-west-1", vendor = "aws" },
      { origin_ip = "192.0.2.2", region = "us-east-1", vendor = "aws" } }, res.value.succeeded)
    assert.are.same({ { origin_ip = "198.51.100.1", error = "e\u{e9}" } }, res.value.failed)
  end)

  it("gives repeated regions and vendors their own values, however they alternate", function()
    local items, want = {}, {}
    local regions = { "us-east-1", "eu-west-1", "us-east-1", "us-east-1", "ap-south-1", "us-east-1\\u0000",
      "us-east-1" }
    for i, r in ipairs(regions) do
      local v = i % 2 == 0 and "gcp" or "aws"
      items[i] = string.format('{"origin_ip":"192.0.2.%d","region":"%s","vendor":"%s"}', i, r, v)
      want[i] = { origin_ip = "192.0.2." .. i, region = (r:gsub("\\u0000", "\0")), vendor = v }
    end
    local res = request(envelope('{"succeeded":[' .. table.concat(items, ",") .. '],"failed":[]}'), "batch")
    assert.are.same(want, res.succeeded)
  end)

  it("refuses what plain JSON refuses: a repeated key, even escaped, or a repeat past the key cache", function()
    for _, item in ipairs {
      '{"origin_ip":"192.0.2.1","origin_ip":"192.0.2.2"}',
      '{"region":"a","regi\\u006fn":"b"}',
      '{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,'
        .. '"k14":14,"k15":15,"k16":16,"k17":17,"k17":18}',
    } do
      local res, err = request(envelope('{"succeeded":[' .. item .. '],"failed":[]}'), "batch")
      assert.is_nil(res)
      assert.are.equal("decode", err.kind)
      assert.matches("duplicate key", err.message)
    end
  end)

  it("raises for a shape it does not know, naming the option", function()
    local c = fake:client { max_retries = 0 }
    assert.has_error(function() c:request("GET", PATH, nil, { shape = "list" }) end,
      'request: shape must be "batch" (a batch\'s succeeded and failed items)')
    c:close()
  end)

  it("bulk_delete's entries are those records, completed: canonical IP, input, and nothing the server added", function()
    fake:set_zone(H.ZONE, { { "2001:db8::1", "us-east-1", "aws" }, { "192.0.2.1", "us-east-1", "aws" } })
    local value = { succeeded = { H.item("2001:DB8:0:0::1", { region = "us-east-1", vendor = "aws", note = "x",
      input = "forged" }) }, failed = { H.item("192.0.2.1", { error = "busy", already_absent = true }) } }
    fake:fault { body_override = H.envelope(value) }
    local c = fake:client { max_retries = 0 }
    local res = assert(c.cache.origin_cloud_regions.bulk_delete { zone_id = H.ZONE,
      ips = { "2001:0db8::0001", "192.0.2.1" } })
    c:close()
    assert.are.same({ { origin_ip = "2001:db8::1", input = "2001:0db8::0001", region = "us-east-1", vendor = "aws" } },
      res.value.succeeded)
    assert.are.same({ { origin_ip = "192.0.2.1", input = "192.0.2.1", error = "busy" } }, res.value.failed)
  end)
end)
