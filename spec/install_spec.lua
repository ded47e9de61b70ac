-- spec/install_spec.lua: the install rules of CMakeLists.txt: `cmake --install` puts the
-- binary, the Lua modules, the man page, docs and scripts in their places, and the installed
-- binary finds its modules with no environment variable set.
local H = require "spec.helper"

describe("cmake --install", function()
  it("installs a cfrun that works on its own", function()
    local build = assert(os.getenv("CFRUN_BUILD_DIR"), "CTest sets CFRUN_BUILD_DIR")
    local prefix = os.tmpname()
    os.remove(prefix)
    local ok = os.execute(string.format("cmake --install %s --prefix %s >/dev/null", build, prefix))
    assert.is_true(ok == true or ok == 0)
    for _, f in ipairs { "bin/cfrun", "share/man/man1/cfrun.1", "share/lua/5.4/cloudflare.lua",
      "share/lua/5.4/cloudflare/select.lua", "share/doc/cfrun/api.md",
      "share/cfrun/scripts/prune.lua", "share/cfrun/scripts/deploy/cronjob.yaml" } do
      local fh = io.open(prefix .. "/" .. f)
      assert.is_truthy(fh, f .. " is missing")
      fh:close()
    end
    -- from another directory, with an empty environment: modules come from the binary
    local p = io.popen(string.format("cd / && env -i %s/bin/cfrun -e %s 2>&1", prefix,
      H.shell_quote([[print(require("cloudflare.select").vendor("aws"), cloudflare._VERSION)]])))
    local out = p:read("a")
    p:close()
    assert.matches("^selector: vendor%(aws%)\t%d+%.%d+%.%d+\n$", out)
    local man = io.popen("man -l " .. prefix .. "/share/man/man1/cfrun.1 2>/dev/null | head -5")
    local text = man:read("a")
    man:close()
    if text ~= "" then assert.matches("cfrun", text) end
    os.execute("rm -rf " .. prefix)
  end)
end)
