-- spec/sandbox_spec.lua: runtime/cf_sandbox.c, `cfrun --sandbox`: the fake API as a child
-- process, the environment pointed at it, the demo script, and the server gone afterwards.
local H = require "spec.helper"
local socket = require "socket"

local function can_connect(url)
  local host, port = url:match("^http://([^:/]+):(%d+)")
  local c = socket.tcp()
  c:settimeout(1)
  local ok = c:connect(host, tonumber(port))
  c:close()
  return ok ~= nil
end

describe("cfrun --sandbox", function()
  it("points the default client at a seeded fake API and ignores CLOUDFLARE_* variables", function()
    local out, err, code = H.run({ "--sandbox", "-e", [[
      print(os.getenv("CFRUN_SANDBOX_ZONE"), os.getenv("CLOUDFLARE_BASE_URL"))
      local res = assert(cloudflare.cache.origin_cloud_regions.bulk_delete{
        zone_id = os.getenv("CFRUN_SANDBOX_ZONE"), ips = { "192.0.2.1", "192.0.2.1" } })
      print(res.value.succeeded[1].vendor, res.value.succeeded[1].region, #res.value.failed)
      print(os.getenv("CLOUDFLARE_EMAIL"), (os.getenv("CLOUDFLARE_API_TOKEN"):match("^sandbox%-")))
    ]] }, { env = { CLOUDFLARE_API_TOKEN = "real-production-token",
      CLOUDFLARE_BASE_URL = "http://127.0.0.1:1/client/v4", CLOUDFLARE_EMAIL = "me@example.com",
      CLOUDFLARE_API_KEY = "real-key" } })
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local zone, url = lines[1]:match("^(%S+)\t(%S+)$")
    assert.are.equal(H.ZONE, zone)
    assert.matches("^http://127%.0%.0%.1:%d+/client/v4$", url)
    assert.are.equal("aws\tus-east-1\t0", lines[2])
    assert.are.equal("nil\tsandbox-", lines[3])
    assert.is_false(can_connect(url), "the sandbox server must be gone after cfrun exits")
  end)

  it("stops the server when the script fails or calls os.exit", function()
    for _, chunk in ipairs { "print(os.getenv('CLOUDFLARE_BASE_URL')) error('x')",
      "print(os.getenv('CLOUDFLARE_BASE_URL')) io.stdout:flush() os.exit(5)" } do
      local out, _, code = H.run({ "--sandbox", "-e", chunk })
      assert.is_true(code == 1 or code == 5)
      local url = out:match("^(%S+)")
      assert.matches("^http://127%.0%.0%.1:%d+", url)
      -- os.exit skips Lua's cleanup: the kernel's parent-death signal stops the server
      local deadline = socket.gettime() + 5
      while can_connect(url) and socket.gettime() < deadline do socket.sleep(0.05) end
      assert.is_false(can_connect(url), chunk)
    end
  end)

  it("runs the demo script: deleted with vendor and region, failed with reasons", function()
    local out, err, code = H.run({ "--sandbox", H.SOURCE_DIR .. "/scripts/demo.lua" })
    assert.are.equal(0, code, err)
    assert.matches("deleted  192%.0%.2%.1%s+aws%s+us%-east%-1\n", out)
    assert.matches("deleted  2001:db8::1%s+gcp%s+us%-central1\n", out)
    assert.matches("deleted  203%.0%.113%.5%s+oci%s+us%-ashburn%-1\n", out)
    assert.matches("failed   198%.51%.100%.99%s+mapping not found\n", out)
    assert.matches("failed   not%-an%-ip%s+invalid IP address\n", out)
    assert.matches("3 deleted, 2 failed, 1 request%(s%)\n$", out)
  end)
end)
