-- spec/schema.lua: what the contract spec needs to hold exchanges against the published
-- schemas: a strict JSON reader that keeps what cjson loses ([] versus {}, null) and a
-- validator for the subset of JSON Schema / OpenAPI the transcribed contract uses. Must stay
-- independent of the client and of the fake API, which it judges.
local S = {}

S.NULL = setmetatable({}, { __name = "schema.null", __tostring = function() return "null" end })
local ARRAY = { __name = "schema.array" }
local OBJECT = { __name = "schema.object" }

---------------------------------------------------------------------------------------------
-- reading JSON

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_of(cp) return utf8.char(cp) end

--- S.decode(text) -> value | nil, message. Arrays and objects come back as tables marked as
--- such (S.kind tells them apart, also when empty); null is S.NULL.
function S.decode(text)
  local pos = 1
  local function fail(msg) error({ schema_decode = string.format("%s at byte %d", msg, pos) }) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then
        pos = pos + 1
        return table.concat(out)
      elseif c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        if e == "u" then
          local hex = text:sub(pos + 2, pos + 5)
          if not hex:find("^%x%x%x%x$") then fail("bad \\u escape") end
          local cp = tonumber(hex, 16)
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
            if lo and lo >= 0xDC00 and lo <= 0xDFFF then
              cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
              pos = pos + 6
            end
          end
          out[#out + 1] = utf8_of(cp)
        elseif ESCAPES[e] then
          out[#out + 1] = ESCAPES[e]
          pos = pos + 2
        else
          fail("bad escape")
        end
      elseif c:byte() < 0x20 then
        fail("control character in a string")
      else
        local stop = text:find('["\\%c]', pos) or #text + 1
        out[#out + 1] = text:sub(pos, stop - 1)
        pos = stop
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local obj = setmetatable({}, OBJECT)
      ws()
      if text:sub(pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local arr = setmetatable({}, ARRAY)
      ws()
      if text:sub(pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    end
    for lit, v in pairs { ["true"] = true, ["false"] = false, ["null"] = S.NULL } do
      if text:sub(pos, pos + #lit - 1) == lit then
        pos = pos + #lit
        return v
      end
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if num and num ~= "" and num ~= "-" then
      pos = pos + #num
      return math.tointeger(tonumber(num)) or tonumber(num) or fail("bad number")
    end
    fail("unexpected character")
  end
  local ok, v = pcall(function()
    local out = value()
    ws()
    if pos <= #text then fail("trailing characters") end
    return out
  end)
  if ok then return v end
  if type(v) == "table" and v.schema_decode then return nil, v.schema_decode end
  error(v, 0)
end

--- The JSON kind of a decoded value: object, array, string, integer, number, boolean, null.
function S.kind(v)
  if v == S.NULL then return "null" end
  local t = type(v)
  if t == "table" then return getmetatable(v) == ARRAY and "array" or "object" end
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  return t
end

---------------------------------------------------------------------------------------------
-- validating

-- Whether a value of kind `k` satisfies the schema type `want`.
local function type_ok(k, want)
  return k == want or (want == "number" and k == "integer")
end

--- S.validate(schemas, schema, value[, where]) -> list of problems ({} when valid). schemas:
--- the named schemas $ref may point to (by name, or "#/.../name").
function S.validate(schemas, schema, v, where, problems)
  where, problems = where or "$", problems or {}
  local function bad(fmt, ...) problems[#problems + 1] = where .. ": " .. string.format(fmt, ...) end
  if schema["$ref"] then
    local name = schema["$ref"]:match("([^/]+)$")
    local target = schemas[name]
    if not target then
      bad("unknown $ref %s", schema["$ref"])
    else
      S.validate(schemas, target, v, where, problems)
    end
  end
  for _, sub in ipairs(schema.allOf or {}) do S.validate(schemas, sub, v, where, problems) end
  local k = S.kind(v)
  if k == "null" then
    if not schema.nullable and schema.type then bad("is null") end
    return problems
  end
  if schema.type and not type_ok(k, schema.type) then
    bad("is a %s, expected a %s", k, schema.type)
    return problems
  end
  if schema.enum then
    local found = false
    for _, e in ipairs(schema.enum) do
      if e == v or (e == S.NULL and v == S.NULL) then found = true end
    end
    if not found then bad("%s is not one of the allowed values", tostring(v)) end
  end
  if k == "string" and schema.maxLength and utf8.len(v) > schema.maxLength then
    bad("is longer than %d characters", schema.maxLength)
  end
  if (k == "integer" or k == "number") and schema.minimum and v < schema.minimum then
    bad("%s is below the minimum %s", tostring(v), tostring(schema.minimum))
  end
  if k == "array" then
    if schema.minItems and #v < schema.minItems then bad("has fewer than %d items", schema.minItems) end
    if schema.maxItems and #v > schema.maxItems then bad("has more than %d items", schema.maxItems) end
    if schema.items then
      for i, item in ipairs(v) do S.validate(schemas, schema.items, item, where .. "[" .. i .. "]", problems) end
    end
  elseif k == "object" then
    for _, name in ipairs(schema.required or {}) do
      if v[name] == nil then bad("lacks the required field %q", name) end
    end
    for name, sub in pairs(schema.properties or {}) do
      if v[name] ~= nil then S.validate(schemas, sub, v[name], where .. "." .. name, problems) end
    end
    if type(schema.additionalProperties) == "table" then
      for name, item in pairs(v) do
        if not (schema.properties and schema.properties[name]) then
          S.validate(schemas, schema.additionalProperties, item, where .. "." .. name, problems)
        end
      end
    end
  end
  return problems
end

return S
