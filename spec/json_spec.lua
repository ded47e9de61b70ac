-- spec/json_spec.lua: runtime/cf_json.c, cloudflare.json: [] for marked empty arrays, sorted
-- keys, escaping, numbers, and clear errors for what JSON cannot hold.
local json = require "cloudflare.json"
local cjson = require "cjson"

describe("cloudflare.json.encode", function()
  it("writes marked empty arrays as [] and plain empty tables as {}", function()
    assert.are.equal('{"a":[],"b":{}}', json.encode { a = json.array(), b = {} })
    assert.are.equal("[]", json.encode(json.array {}))
    assert.is_true(json.is_array(json.array {}))
    assert.is_false(json.is_array {})
  end)

  it("sorts object keys and writes sequences as arrays", function()
    assert.are.equal('{"a":1,"b":[1,2,3],"c":{"x":true}}', json.encode { c = { x = true }, b = { 1, 2, 3 }, a = 1 })
  end)

  it("round-trips what cjson decodes, integers staying integers", function()
    local text = '{"errors":[{"code":1141,"message":"x"}],"ratio":0.25,"result":null}'
    assert.are.equal(text, json.encode(cjson.decode(text)))
  end)

  it("escapes quotes, backslashes and control characters", function()
    assert.are.equal([["a\"b\\c\n\u0001é"]], json.encode('a"b\\c\n\1é'))
    assert.are.same('a"b\\c\n\1é', cjson.decode(json.encode('a"b\\c\n\1é')))
  end)

  it("indents on request", function()
    assert.are.equal('{\n  "a": [\n    1\n  ]\n}', json.encode({ a = { 1 } }, { indent = true }))
  end)

  it("raises for functions, NaN, bad keys and cycles", function()
    assert.error_matches(function() json.encode { f = print } end, "cannot encode a function")
    assert.error_matches(function() json.encode(0 / 0) end, "NaN or infinity")
    assert.error_matches(function() json.encode { [true] = 1 } end, "table key of type boolean")
    local t = {}
    t.self = t
    assert.error_matches(function() json.encode(t) end, "nesting deeper than")
  end)

  it("writes sparse tables as objects rather than losing entries", function()
    assert.are.equal('{"1":"a","3":"c"}', json.encode { [1] = "a", [3] = "c" })
  end)
end)

describe("cloudflare.json.decode (runtime/cf_jsondec.c, also the decoder of API responses)", function()
  local decode = json.decode

  it("decodes every kind of value; null is json.null, integer literals integers", function()
    local v = decode(' {"a": [1, -2, 3.5, 1e2, 0, true, false, null], "b": {"c": "d"}, "e": []} ')
    assert.are.same({ a = { 1, -2, 3.5, 100.0, 0, true, false, json.null }, b = { c = "d" }, e = {} }, v)
    assert.are.equal("integer", math.type(v.a[1]))
    assert.are.equal("float", math.type(v.a[4]))
    assert.are.equal(json.null, cjson.null)
    assert.are.equal("float", math.type(decode("12345678901234567890"))) -- too big for an integer
    assert.are.equal(math.mininteger, decode("-9223372036854775808"))
  end)

  it("agrees with lua-cjson on what cfrun's encoder writes", function()
    local t = { errors = { { code = 1141, message = "x" } }, ratio = 0.25, list = { "a", "b" },
      nested = { deep = { deeper = { "é", "\1", 'q"' } } } }
    local text = json.encode(t)
    assert.are.same(cjson.decode(text).nested, decode(text).nested)
    assert.are.equal(text, json.encode(decode(text)))
  end)

  it("unescapes strings, surrogate pairs included", function()
    assert.are.equal('a"b\\c/\b\f\n\r\t', decode([["a\"b\\c\/\b\f\n\r\t"]]))
    assert.are.equal("é€😀", decode([["\u00e9\u20AC\ud83d\ude00"]]))
    assert.are.equal("nul\0byte", decode([["nul\u0000byte"]]))
  end)

  it("refuses an object that repeats a key, naming the key and where the object starts", function()
    local function refused(text)
      local ok, err = pcall(decode, text)
      assert.is_false(ok, text)
      return err
    end
    assert.matches('^json.decode: duplicate key "k" in the object at byte 1$', refused('{"k": 1, "k": 2}'))
    -- the same key in different objects is fine, at any depth
    assert.are.same({ { k = 1 }, { k = 2, o = { k = 3 } } }, decode('[{"k":1},{"k":2,"o":{"k":3}}]'))
    assert.matches('duplicate key "k" in the object at byte 21', refused('[{"k":1},{"k":2,"o":{"k":3,"k":4}}]'))
    -- however the key is written: escaped, or not among the first keys (the decoder's cache)
    assert.matches('duplicate key "a"', refused('{"a":1,"\\u0061":2}'))
    assert.matches('duplicate key "a"', refused('{"\\u0061":1,"a":2}'))
    local members = {}
    for i = 1, 20 do members[i] = string.format('"m%d":%d', i, i) end
    assert.matches('duplicate key "m18"', refused("{" .. table.concat(members, ",") .. ',"m18":0}'))
    assert.matches('duplicate key "m3"', refused("{" .. table.concat(members, ",") .. ',"m3":0}'))
    -- in an object too large to gather at once, and across its parts
    members = {}
    for i = 1, 3000 do members[i] = string.format('"k%d":%d', i, i) end
    assert.matches('duplicate key "k10"', refused("{" .. table.concat(members, ",") .. ',"k10":0}'))
    assert.matches('duplicate key "k2999"', refused("{" .. table.concat(members, ",", 1, 2999) .. ',"k2999":0}'))
    -- a key that would make the message unreadable is made printable or described by its size
    assert.truthy(refused('{"a\\u0001b\\"":1,"a\\u0001b\\"":2}'):find('duplicate key "a?b?" in', 1, true))
    local long = string.rep("k", 65)
    assert.matches("duplicate key %(of 65 bytes%) in the object at byte 1",
      refused(string.format('{"%s":1,"%s":2}', long, long)))
  end)

  it("decodes repeated object keys alike, whether short, escaped, long or many", function()
    -- the decoder caches the first short keys it meets; escaped, long and later keys take the
    -- general path, and all must come out the same
    local long, longer = string.rep("k", 40), string.rep("k", 41)
    local one = string.format('{"a":1,"b\\u0041":2,"%s":3,"%s":4,"":5}', long, longer)
    local members = {}
    for i = 1, 40 do members[i] = string.format('"m%d":%d', i, i) end
    local many = "{" .. table.concat(members, ",") .. "}"
    local v = decode("[" .. one .. "," .. one .. "," .. many .. "," .. many .. "]")
    for i = 1, 2 do
      assert.are.same({ a = 1, bA = 2, [long] = 3, [longer] = 4, [""] = 5 }, v[i])
    end
    for i = 1, 40 do
      assert.are.equal(i, v[3]["m" .. i])
      assert.are.equal(i, v[4]["m" .. i])
    end
    local ok, err = pcall(decode, '[{"a":1,"a\1":2}]')
    assert.is_false(ok)
    assert.matches("control character in a string at byte 11", err)
  end)

  it("builds arrays and objects of any size", function()
    local parts = {}
    for i = 1, 5000 do parts[i] = tostring(i) end
    local arr = decode("[" .. table.concat(parts, ",") .. "]")
    assert.are.equal(5000, #arr)
    assert.are.equal(5000, arr[5000])
    local members = {}
    for i = 1, 3000 do members[i] = string.format('"k%d":%d', i, i) end
    local obj = decode("{" .. table.concat(members, ",") .. "}")
    assert.are.equal(3000, obj.k3000)
    assert.are.equal(1, obj.k1)
  end)

  it("refuses what is not JSON, saying what and where", function()
    local cases = {
      [""] = "no JSON value %(empty text%)",
      ["  "] = "no JSON value",
      ["{"] = "expected a string key in an object at byte 2",
      ["[1,]"] = "expected a value at byte 4",
      ["[1 2]"] = "expected ',' or ']' in an array at byte 4",
      ['{"a" 1}'] = "expected ':' after a key at byte 6",
      ['{"a":1,}'] = "expected a string key in an object at byte 8",
      ["01"] = "unexpected text after the value at byte 2",
      ["1."] = "invalid number at byte 1",
      ["-"] = "invalid number at byte 1",
      ["+1"] = "expected a value at byte 1",
      ["nul"] = "expected a value at byte 1",
      ["truex"] = "unexpected text after the value at byte 5",
      ['"abc'] = "unterminated string at byte 1",
      ['"a\\qb"'] = "invalid escape in a string at byte 3",
      ['"\\u12"'] = "invalid escape in a string at byte 2",
      ['"\\udc00"'] = "lone low surrogate in a string at byte 2",
      ['"\\ud800x"'] = "high surrogate without its low half in a string at byte 2",
      ['"a\tb"'] = "control character in a string at byte 3",
      ["NaN"] = "expected a value at byte 1",
      ["[1] [2]"] = "unexpected text after the value at byte 5",
    }
    for text, message in pairs(cases) do
      local ok, err = pcall(decode, text)
      assert.is_false(ok, text)
      assert.matches("^json.decode: " .. message, err)
    end
  end)

  it("refuses nesting deeper than 1000 levels, without exhausting the C stack", function()
    assert.are.equal(1, #decode(string.rep("[", 1000) .. string.rep("]", 1000)))
    local ok, err = pcall(decode, string.rep("[", 1001) .. string.rep("]", 1001))
    assert.is_false(ok)
    assert.matches("nested deeper than 1000 levels at byte 1001", err)
    ok = pcall(decode, string.rep('{"a":', 100000))
    assert.is_false(ok)
  end)

  it("decodes the deepest document it allows, each level wide, within Lua's stack", function()
    -- 1,000 nested objects of 1,000 members (8.9 MB, under the default max_body): at most 256
    -- pairs wait on the stack per level, or this overflowed it and the decoder raised
    local members = {}
    for i = 1, 1000 do members[i] = string.format('"k%d":1', i) end
    local level = "{" .. table.concat(members, ",") .. ',"n":'
    local text = string.rep(level, 999) .. '{"x":1}' .. string.rep("}", 999)
    local v = decode(text)
    local depth = 1
    while v.n do v, depth = v.n, depth + 1 end
    assert.are.equal(1000, depth)
    assert.are.equal(1, v.x)
    local wide = string.rep("[" .. string.rep("1,", 999), 999) .. "[1]" .. string.rep("]", 999)
    local a = decode(wide)
    assert.are.equal(1000, #a)
  end)
end)
