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
