-- spec/docs_spec.lua: docs/architecture.md keeps up with the tree: it names every file of
-- runtime/ and lua/ (with what it owns), so a file added without a place in the layers fails.
local H = require "spec.helper"

local function files(dir)
  local out = {}
  local p = io.popen("cd " .. H.shell_quote(H.SOURCE_DIR) .. " && find " .. dir
    .. " -type f \\( -name '*.c' -o -name '*.h' -o -name '*.lua' \\) | sort")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

describe("docs/architecture.md", function()
  local doc = H.source("docs/architecture.md")

  it("names every file of runtime/ and lua/", function()
    local all = files("runtime")
    for _, f in ipairs(files("lua")) do all[#all + 1] = f end
    assert.is_true(#all > 40, "found only " .. #all .. " files")
    local missing = {}
    for _, f in ipairs(all) do
      if not doc:find(f, 1, true) then missing[#missing + 1] = f end
    end
    assert.are.same({}, missing)
  end)

  it("names no file that does not exist", function()
    for path in doc:gmatch("(runtime/cf_[%w_]+%.[ch])") do
      local f = io.open(H.SOURCE_DIR .. "/" .. path)
      assert.truthy(f, path)
      f:close()
    end
    for path in doc:gmatch("(lua/[%w_/]+%.lua)") do
      local f = io.open(H.SOURCE_DIR .. "/" .. path)
      assert.truthy(f, path)
      f:close()
    end
  end)
end)
