-- spec/install_spec.lua: the install rules of CMakeLists.txt: `cmake --install` puts the
-- binary, the man page, docs, the deploy examples and scripts in their places (and not the
-- Lua sources, which are in the binary), and the installed binary finds its modules with no
-- environment variable set.
local H = require "spec.helper"

describe("cmake --install", function()
  it("installs a cfrun that works on its own", function()
    local build = assert(os.getenv("CFRUN_BUILD_DIR"), "CTest sets CFRUN_BUILD_DIR")
    local prefix = os.tmpname()
    os.remove(prefix)
    local ok = os.execute(string.format("cmake --install %s --prefix %s >/dev/null", build, prefix))
    assert.is_true(ok == true or ok == 0)
    for _, f in ipairs { "bin/cfrun", "share/man/man1/cfrun.1", "share/doc/cfrun/api.md",
      "share/doc/cfrun/LICENSE", "share/cfrun/scripts/prune.lua", "share/doc/cfrun/examples/cronjob.yaml",
      "share/doc/cfrun/examples/cfrun-job.service", "share/bash-completion/completions/cfrun",
      "share/cfrun/types/cloudflare.lua", "share/doc/cfrun/editor.md" } do
      local fh = io.open(prefix .. "/" .. f)
      assert.is_truthy(fh, f .. " is missing")
      fh:close()
    end
    -- no dead weight: the Lua sources are in the binary (a plain lua5.4 cannot use them)
    for _, f in ipairs { "share/lua/5.4/cloudflare.lua", "share/lua", "share/cfrun/scripts/deploy" } do
      assert.is_nil(io.open(prefix .. "/" .. f), f .. " is installed")
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
