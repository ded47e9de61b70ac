-- spec/types_spec.lua: lua/cloudflare/types.lua, the LuaLS definitions generated from the
-- runtime's descriptions. lua-language-server is not packaged for Debian 12, so the
-- definitions are checked against the runtime itself: the text is parsed (classes, fields,
-- functions, parameters, returns), every public function of the runtime must have a
-- definition and every definition must name something that exists, each operation's argument
-- class must hold exactly what the binder accepts, the client options what cloudflare.new
-- accepts, and the results and errors a real session (the fake API) returns must have the
-- declared shapes. The checks are shown to fail when the runtime gains what the text lacks.
local H = require "spec.helper"
local types = require "cloudflare.types"
local binder = require "cloudflare.binder"
local family = require "cloudflare.origin_cloud_regions"

local ZONE = H.ZONE
local concat, sort = table.concat, table.sort
local format = string.format

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function sorted(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  sort(out)
  return out
end

-- Splits a type at `sep` outside (), {}, <>, [] and string literals.
local function split_top(s, sep)
  local out, cur, depth, quoted = {}, {}, 0, false
  for c in s:gmatch(".") do
    if c == '"' then quoted = not quoted end
    if not quoted then
      if c:find("[%(%{<%[]") then depth = depth + 1 elseif c:find("[%)%}>%]]") then depth = depth - 1 end
    end
    if c == sep and depth == 0 and not quoted then
      out[#out + 1], cur = concat(cur), {}
    else
      cur[#cur + 1] = c
    end
  end
  out[#out + 1] = concat(cur)
  return out
end

-- The type at the start of an annotation's rest, and what follows it (a name, a description).
-- A space ends the type outside brackets and literals, unless it follows ':' or ','.
local function read_type(s)
  local depth, quoted, prev = 0, false, ""
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == '"' then quoted = not quoted end
    if not quoted then
      if c:find("[%(%{<%[]") then depth = depth + 1 elseif c:find("[%)%}>%]]") then depth = depth - 1 end
      if c == " " and depth == 0 and prev ~= ":" and prev ~= "," then
        return s:sub(1, i - 1), trim(s:sub(i + 1))
      end
    end
    prev = c
  end
  return s, ""
end

--- The definitions of a generated text: classes (fields, parent, operators), aliases,
--- functions by path ("cloudflare.ip.canonical", "cloudflare.Client:close"), the tables it
--- assigns ("cloudflare.ip = {}" with its class) and what the parser found wrong.
local function parse(text)
  local d = { classes = {}, aliases = {}, functions = {}, assigned = {}, locals = {}, errors = {} }
  local block, class = { params = {}, returns = {}, overloads = {} }, nil
  local function reset() block, class = { params = {}, returns = {}, overloads = {} }, nil end
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    local function bad(msg) d.errors[#d.errors + 1] = format("line %d: %s: %s", n, msg, line) end
    local cname, parent = line:match("^%-%-%-@class ([%w_.]+)%s*:?%s*([%w_.]*)$")
    local fname, fopt, frest = line:match("^%-%-%-@field ([%w_]+)(%??) (.+)$")
    local pname, popt, prest = line:match("^%-%-%-@param ([%w_.]+)(%??) (.+)$")
    local lname = line:match("^local ([%w_]+) = {}$")
    local target, sep, name, args = line:match("^function ([%w_.]+)([.:])([%w_]+)%((.-)%) end$")
    local lhs, rhs = line:match("^([%w_.]+) = (.+)$")
    if cname then
      class = { name = cname, parent = parent ~= "" and parent or nil, fields = {}, field_list = {},
        operators = {} }
      if d.classes[cname] then bad("class declared twice") end
      d.classes[cname] = class
    elseif fname then
      if not class then bad("a field outside a class") else
        local ty, desc = read_type(frest)
        local f = { name = fname, optional = fopt == "?", type = ty, desc = desc }
        if class.fields[fname] then bad("field declared twice") end
        class.fields[fname], class.field_list[#class.field_list + 1] = f, f
      end
    elseif line:find("^%-%-%-@operator ") then
      if not class then bad("an operator outside a class") end
      class.operators[#class.operators + 1] = line:match("^%-%-%-@operator (.+)$")
    elseif line:find("^%-%-%-@alias ") then
      local a, ty = line:match("^%-%-%-@alias ([%w_.]+) (.+)$")
      d.aliases[a] = ty
    elseif pname then
      local ty, desc = read_type(prest)
      block.params[#block.params + 1] = { name = pname, optional = popt == "?", type = ty, desc = desc }
    elseif line:find("^%-%-%-@return ") then
      local ty, rname = read_type(line:match("^%-%-%-@return (.+)$"))
      block.returns[#block.returns + 1] = { type = ty, name = rname ~= "" and rname or nil }
    elseif line:find("^%-%-%-@overload ") then
      block.overloads[#block.overloads + 1] = line:match("^%-%-%-@overload (.+)$")
    elseif line:find("^%-%-%-@type ") then
      block.type = line:match("^%-%-%-@type (.+)$")
    elseif line == "---@meta" then
      d.meta = n
    elseif line:find("^%-%-%-@") then
      bad("an annotation this spec does not know")
    elseif line:find("^%-%-") then -- luacheck: ignore 542 (a doc line or a comment)
    elseif line == "" then
      reset()
    elseif lname then
      if not class then bad("a local without a class") else d.locals[lname] = class.name end
      reset()
    elseif target then
      local owner = d.locals[target] or target
      local path = owner .. sep .. name
      local header = {}
      for a in args:gmatch("[^,%s]+") do header[#header + 1] = a end
      local annotated = {}
      for i, p in ipairs(block.params) do annotated[i] = p.name end
      if concat(header, ",") ~= concat(annotated, ",") then bad("@param names differ from the header") end
      if d.functions[path] then bad("function defined twice") end
      d.functions[path] = { path = path, params = block.params, returns = block.returns,
        overloads = block.overloads }
      reset()
    elseif lhs then
      d.assigned[lhs] = { class = class and class.name or block.type, value = rhs }
      reset()
    elseif line:find("^return ") then
      d.returned = line:match("^return (.+)$")
    else
      bad("a line this spec does not know")
    end
  end
  return d
end

-- Every field of a class, its parents' included.
local function fields_of(d, cname)
  local out, c = {}, d.classes[cname]
  while c do
    for k, f in pairs(c.fields) do out[k] = out[k] or f end
    c = c.parent and d.classes[c.parent]
  end
  return out
end

--- What the runtime has: its public functions by the paths the definitions use, and the
--- constants of the module and its submodules. opts.ns replaces the family's namespace.
local function inventory(opts)
  opts = opts or {}
  local inv = { functions = {}, fields = {}, modules = {} }
  local src = types.sources()
  for _, m in ipairs(src.modules) do inv.modules[m[1]:match("^cloudflare%.(.+)$")] = true end
  local cf = cloudflare
  for m in pairs(inv.modules) do
    for k, v in pairs(cf[m]) do
      if type(v) == "function" then
        inv.functions["cloudflare." .. m .. "." .. k] = true
      else
        inv.fields["cloudflare." .. m .. "." .. k] = true
      end
    end
  end
  for k, v in pairs(cf) do
    if type(v) == "function" then
      inv.functions["cloudflare." .. k] = true
    elseif not inv.modules[k] and k ~= "cache" then
      inv.fields["cloudflare." .. k] = true
    end
  end
  local probe = cloudflare.new { api_token = "probe", base_url = "http://127.0.0.1:9" }
  for k in pairs(opts.ns or cf.cache.origin_cloud_regions) do
    inv.functions["cloudflare.OriginCloudRegions." .. k] = true
  end
  if not opts.ns then -- a client's namespace has the same operations as the default client's
    for k in pairs(probe.cache.origin_cloud_regions) do
      inv.functions["cloudflare.OriginCloudRegions." .. k] = true
    end
  end
  for k in pairs(getmetatable(probe).methods) do inv.functions["cloudflare.Client:" .. k] = true end
  probe:close()
  local function methods(class, t)
    for k, v in pairs(t) do
      if type(v) == "function" and not k:find("^__") then inv.functions[class .. ":" .. k] = true end
    end
  end
  methods("cloudflare.Transfer", debug.getregistry()["cloudflare.Transfer"].__index)
  methods("cloudflare.Task", require("cloudflare.async").Task)
  methods("cloudflare.Selector", getmetatable(cf.select.everything))
  return inv
end

--- The mismatches between definitions and runtime, sorted.
local function problems(d, inv)
  local out = {}
  for _, e in ipairs(d.errors) do out[#out + 1] = "parse: " .. e end
  for path in pairs(inv.functions) do
    if not d.functions[path] then out[#out + 1] = "no definition of " .. path end
  end
  for path in pairs(d.functions) do
    if not inv.functions[path] then out[#out + 1] = path .. " is defined but does not exist" end
  end
  -- constants: the fields of the module classes ("cloudflare", "cloudflare.<module>")
  local declared = {}
  for cname, c in pairs(d.classes) do
    if cname == "cloudflare" or cname:find("^cloudflare%.%l[%w_]*$") then
      for _, f in ipairs(c.field_list) do declared[cname .. "." .. f.name] = true end
    end
  end
  for path in pairs(inv.fields) do
    if not declared[path] then out[#out + 1] = "no field definition of " .. path end
  end
  for path in pairs(declared) do
    if not inv.fields[path] then out[#out + 1] = path .. " is declared but does not exist" end
  end
  for m in pairs(inv.modules) do
    local a = d.assigned["cloudflare." .. m]
    if not (a and a.class == "cloudflare." .. m) then out[#out + 1] = "no module table cloudflare." .. m end
  end
  sort(out)
  return out
end

--- The names the binder accepts for each operation of ns (from its "valid: ..." list), and
--- the mismatches with the argument classes of the definitions.
local function binder_names(fn)
  local ok, msg = pcall(fn, { zone_id = ZONE, ["not an argument"] = true })
  assert(not ok)
  local list = {}
  for name in assert(msg:match("; valid: (.-)$"), msg):gmatch("[%w_]+") do list[#list + 1] = name end
  return list
end

local function argument_problems(d, ns, fam)
  local out = {}
  for name, fn in pairs(ns) do
    local def = d.functions["cloudflare.OriginCloudRegions." .. name]
    local class = def and #def.params == 1 and d.classes[def.params[1].type]
    if not class then
      out[#out + 1] = name .. ": no argument class"
    else
      local accepted = binder_names(fn)
      local fields = {}
      for _, f in ipairs(class.field_list) do fields[#fields + 1] = f.name end
      sort(accepted)
      sort(fields)
      if concat(accepted, " ") ~= concat(fields, " ") then
        out[#out + 1] = format("%s: %s has %s; the binder accepts %s", name, class.name,
          concat(fields, " "), concat(accepted, " "))
      end
      local required = {}
      for _, f in ipairs(class.field_list) do
        if not f.optional then required[#required + 1] = f.name end
      end
      if concat(required, " ") ~= concat(fam.BY_NAME[name].args, " ") then
        out[#out + 1] = format("%s: required %s, the description's args %s", name, concat(required, " "),
          concat(fam.BY_NAME[name].args, " "))
      end
    end
  end
  sort(out)
  return out
end

-- Checks a runtime value against a declared type: tables of a class have only declared
-- fields, every required one, each of its declared type. Problems are appended to `probs`.
local function check(d, v, ty, where, probs)
  ty = trim(ty)
  local alts = split_top(ty, "|")
  if #alts == 1 and ty:sub(-1) == "?" then alts = { ty:sub(1, -2), "nil" } end
  if #alts > 1 then
    for _, alt in ipairs(alts) do
      local p = {}
      check(d, v, alt, where, p)
      if #p == 0 then return end
    end
    probs[#probs + 1] = format("%s: a %s is not %s", where, type(v), ty)
    return
  end
  local function want(ok)
    if not ok then probs[#probs + 1] = format("%s: %s is not %s", where, tostring(v), ty) end
  end
  if ty:find("^%b()$") then return check(d, v, ty:sub(2, -2), where, probs) end
  if ty == "any" then return end
  if ty == "nil" then return want(v == nil) end
  if ty == "true" or ty == "false" then return want(v == (ty == "true")) end
  if ty:find('^"') then return want(v == ty:sub(2, -2)) end
  if ty:find("^%-?%d+$") then return want(v == tonumber(ty)) end
  if ty == "integer" then return want(math.type(v) == "integer") end
  if ({ string = 1, boolean = 1, number = 1, table = 1, ["function"] = 1 })[ty] then return want(type(v) == ty) end
  local elem = ty:match("^(.+)%[%]$")
  if elem then
    want(type(v) == "table")
    if type(v) == "table" then
      for i, x in ipairs(v) do check(d, x, elem, where .. "[" .. i .. "]", probs) end
    end
    return
  end
  local kt, vt = ty:match("^table<(.-), (.+)>$")
  if kt then
    want(type(v) == "table")
    if type(v) == "table" then
      for k, x in pairs(v) do
        check(d, k, kt, where .. " key", probs)
        check(d, x, vt, where .. "." .. tostring(k), probs)
      end
    end
    return
  end
  if d.aliases[ty] then
    local p = {}
    check(d, v, d.aliases[ty], where, p)
    if #p > 0 then probs[#probs + 1] = format("%s: a %s is not %s", where, type(v), ty) end
    return
  end
  if d.classes[ty] then
    if type(v) ~= "table" then return want(false) end
    local fields = fields_of(d, ty)
    for k, x in pairs(v) do
      local f = fields[k]
      local method = d.functions[ty .. "." .. tostring(k)] or d.functions[ty .. ":" .. tostring(k)]
      if method then
        if type(x) ~= "function" then probs[#probs + 1] = format("%s.%s: not a function", where, k) end
      elseif not f then
        probs[#probs + 1] = format("%s.%s: not declared in %s", where, tostring(k), ty)
      else
        check(d, x, f.type .. (f.optional and "?" or ""), where .. "." .. k, probs)
      end
    end
    for k, f in pairs(fields) do
      if not f.optional and v[k] == nil then
        probs[#probs + 1] = format("%s.%s: missing (required by %s)", where, k, ty)
      end
    end
    return
  end
  -- fun(...), {k: v} literals, file*, lightuserdata: taken as declared
end

local TEXT = types.generate()
local DEFS = parse(TEXT)

--- A copy of the family's description with `change(copy)` applied (BY_NAME and NAMES rebuilt).
local function family_copy(change)
  local c = {}
  for k, v in pairs(family) do c[k] = v end
  c.OPERATIONS = {}
  for i, op in ipairs(family.OPERATIONS) do
    local o = {}
    for k, v in pairs(op) do o[k] = v end
    o.allowed, o.allowed_names = nil, nil -- the binder's cache of the accepted names
    c.OPERATIONS[i] = o
  end
  change(c)
  c.NAMES, c.BY_NAME = {}, {}
  for _, op in ipairs(c.OPERATIONS) do
    for _, name in ipairs { op.name, table.unpack(op.aliases or {}) } do
      c.NAMES[#c.NAMES + 1], c.BY_NAME[name] = name, op
    end
  end
  sort(c.NAMES)
  return c
end

local PURGE = { name = "purge", args = { "zone_id" }, options = { "dry_run" }, flow = "read",
  signature = "{zone_id=, dry_run=} -> res | nil, err", doc = "A made-up operation.",
  v1 = { method = "GET", path = "/purge", result = "one" },
  v2 = { method = "GET", path = "/purge", result = "one" } }

describe("cloudflare.types.generate", function()
  it("writes a LuaLS meta file that is valid Lua and defines nothing but the global cloudflare", function()
    assert.are.equal("---@meta\n", TEXT:sub(1, 9))
    assert.are.equal(TEXT, types.generate()) -- deterministic
    local env = {}
    local chunk = assert(load(TEXT, "=types", "t", env))
    local returned = chunk()
    assert.are.same({ "cloudflare" }, sorted(env))
    assert.are.equal(env.cloudflare, returned)
    -- the executed definitions have the runtime's shape: modules, namespace, functions
    assert.are.equal("function", type(env.cloudflare.new))
    assert.are.equal("function", type(env.cloudflare.ip.canonical))
    assert.are.equal("function", type(env.cloudflare.cache.origin_cloud_regions.bulk_delete))
    assert.are.equal("function", type(env.cloudflare.cli.finish))
    assert.are.equal("cloudflare", DEFS.returned)
    assert.are.equal(1, DEFS.meta)
    assert.are.same({}, DEFS.errors)
    assert.is_true(#TEXT > 30000, #TEXT)
  end)

  it("declares cloudflare as a global of class cloudflare and every module table", function()
    assert.are.equal("cloudflare", DEFS.assigned.cloudflare.class)
    assert.are.equal("{}", DEFS.assigned.cloudflare.value)
    for _, m in ipairs { "ip", "select", "iplist", "report", "json", "journal", "cli" } do
      assert.are.equal("cloudflare." .. m, DEFS.assigned["cloudflare." .. m].class, m)
    end
    assert.are.equal("cloudflare.Cache", DEFS.assigned["cloudflare.cache"].class)
    assert.are.equal("cloudflare.OriginCloudRegions",
      DEFS.classes["cloudflare.Cache"].fields.origin_cloud_regions.type)
  end)

  it("defines every public function of the runtime, and only those", function()
    local inv = inventory()
    assert.are.same({}, problems(DEFS, inv))
    local paths = sorted(DEFS.functions)
    assert.are.equal(84, #paths)
    local by_kind = {}
    for _, p in ipairs(paths) do
      local kind = p:match("^cloudflare%.(%u[%w_]*)[.:]") or p:match("^cloudflare%.(%l[%w_]*)%.") or "cloudflare"
      by_kind[kind] = (by_kind[kind] or 0) + 1
    end
    assert.are.same({ cloudflare = 6, Client = 3, OriginCloudRegions = 10, Selector = 5, Task = 1,
      Transfer = 2, ip = 8, select = 10, iplist = 4, report = 5, json = 4, journal = 6, cli = 20 }, by_kind)
    for _, p in ipairs { "cloudflare.new", "cloudflare.default_client", "cloudflare.parallel",
      "cloudflare.spawn", "cloudflare.wait", "cloudflare.sleep", "cloudflare.Client:request",
      "cloudflare.Task:wait", "cloudflare.Transfer:finish", "cloudflare.Selector:ips",
      "cloudflare.OriginCloudRegions.bulk_edit", "cloudflare.journal.restore" } do
      assert.is_table(DEFS.functions[p], p)
    end
  end)

  it("fails when the runtime has an operation without a definition", function()
    local fam = family_copy(function(c) table.insert(c.OPERATIONS, PURGE) end)
    local ns = binder.bind(fam, nil, nil, "v2")
    assert.are.same({ "no definition of cloudflare.OriginCloudRegions.purge" },
      problems(DEFS, inventory { ns = ns }))
    assert.are.same({ "purge: no argument class" }, argument_problems(DEFS, ns, fam))
    -- generated from that description, the definitions cover it
    local src = types.sources()
    src.family = fam
    local d = parse(types.generate(src))
    assert.are.same({}, problems(d, inventory { ns = ns }))
    assert.are.same({}, argument_problems(d, ns, fam))
    assert.are.same({ "args" }, { d.functions["cloudflare.OriginCloudRegions.purge"].params[1].name })
    assert.are.same({ "zone_id", "dry_run", "timeout", "connect_timeout", "max_retries", "max_retry_wait" },
      (function()
        local out = {}
        for i, f in ipairs(d.classes["cloudflare.PurgeArgs"].field_list) do out[i] = f.name end
        return out
      end)())
  end)

  it("fails when a definition names nothing at runtime, or one is missing", function()
    local extra = TEXT:gsub("\nreturn cloudflare\n$",
      "\n---@param s string\nfunction cloudflare.ip.frobnicate(s) end\nreturn cloudflare\n")
    assert.are.same({ "cloudflare.ip.frobnicate is defined but does not exist" },
      problems(parse(extra), inventory()))
    local missing, n = TEXT:gsub("\nfunction OriginCloudRegions%.bulk_delete%(args%) end\n", "\n")
    assert.are.equal(1, n)
    assert.are.same({ "no definition of cloudflare.OriginCloudRegions.bulk_delete" },
      problems(parse(missing), inventory()))
    local field = TEXT:gsub("\n%-%-%-@field EXIT_USAGE integer = 2\n", "\n")
    assert.are.same({ "no field definition of cloudflare.cli.EXIT_USAGE" }, problems(parse(field), inventory()))
  end)

  it("gives each operation an argument class of exactly the names the binder accepts", function()
    local probe = cloudflare.new { api_token = "probe", base_url = "http://127.0.0.1:9" }
    local ns = probe.cache.origin_cloud_regions
    assert.are.same({}, argument_problems(DEFS, ns, family))
    assert.are.same({ "zone_id", "ips", "dry_run", "journal", "concurrency", "timeout", "connect_timeout",
      "max_retries", "max_retry_wait" }, binder_names(ns.bulk_delete))
    local c = DEFS.classes["cloudflare.BulkDeleteArgs"]
    local got = {}
    for i, f in ipairs(c.field_list) do got[i] = f.name .. (f.optional and "?" or "") .. " " .. f.type end
    assert.are.same({ "zone_id string", "ips string[]", "dry_run? boolean", "journal? string|false",
      "concurrency? integer", "timeout? number", "connect_timeout? number", "max_retries? number",
      "max_retry_wait? number" }, got)
    assert.are.same({ "zone_id", "ip", "origin_ip", "timeout", "connect_timeout", "max_retries",
      "max_retry_wait" }, binder_names(ns.get))
    assert.are.equal("cloudflare.Vendor", DEFS.classes["cloudflare.CreateArgs"].fields.vendor.type)
    assert.are.equal("cloudflare.MappingInput[]", DEFS.classes["cloudflare.BulkUpdateArgs"].fields.items.type)
    -- aliases take their operation's class; results come from the description's result kinds
    local bulk_edit = DEFS.functions["cloudflare.OriginCloudRegions.bulk_edit"]
    assert.are.equal("cloudflare.BulkUpdateArgs", bulk_edit.params[1].type)
    assert.are.same({ { type = "cloudflare.BatchResult?", name = "res" }, { type = "cloudflare.Error?", name = "err" },
      { type = "cloudflare.BatchResult?", name = "partial" } }, bulk_edit.returns)
    assert.are.same({ { type = "cloudflare.ListResult?", name = "res" }, { type = "cloudflare.Error?", name = "err" } },
      DEFS.functions["cloudflare.OriginCloudRegions.list"].returns)
    assert.are.equal("cloudflare.RegionsResult?",
      DEFS.functions["cloudflare.OriginCloudRegions.supported_regions"].returns[1].type)
    -- an option the description adds that the binder does not take is caught
    local fam = family_copy(function(f)
      local op = f.OPERATIONS[6]
      assert.are.equal("bulk_delete", op.name)
      op.options = { "dry_run", "journal", "concurrency", "force" }
    end)
    local src = types.sources()
    src.family = fam
    assert.are.same({ "bulk_delete: cloudflare.BulkDeleteArgs has concurrency connect_timeout dry_run force ips "
      .. "journal max_retries max_retry_wait timeout zone_id; the binder accepts concurrency connect_timeout "
      .. "dry_run ips journal max_retries max_retry_wait timeout zone_id" },
      argument_problems(parse(types.generate(src)), ns, family))
    probe:close()
  end)

  it("declares the client options as cloudflare.OPTIONS and cloudflare.new have them", function()
    local c = DEFS.classes["cloudflare.ClientOptions"]
    local names = {}
    for i, f in ipairs(c.field_list) do
      names[i] = f.name
      assert.is_true(f.optional, f.name)
      assert.are.equal(cloudflare.OPTIONS[i][3], f.desc)
    end
    local options = {}
    for i, o in ipairs(cloudflare.OPTIONS) do options[i] = o[1] end
    assert.are.same(options, names)
    assert.are.equal(16, #names)
    -- what cloudflare.new itself accepts
    local ok, msg = pcall(cloudflare.new, { ["not an option"] = 1 })
    assert.is_false(ok)
    assert.are.equal(concat(names, ", "), msg:match("; valid: (.-)$"))
    local want = { string = "string", number = "number", table = "cloudflare.RateLimit",
      ["function"] = "(fun(seconds: number, reason: string))" }
    for i, o in ipairs(cloudflare.OPTIONS) do
      local ty = c.field_list[i].type
      if o[1] == "generation" then
        assert.are.equal('"v1"|"v2"', ty)
      elseif o[1] == "log" then
        assert.are.equal('"debug"|"off"', ty)
      else
        assert.are.equal(want[o[2]], ty, o[1])
      end
    end
    local rl = {}
    for i, f in ipairs(DEFS.classes["cloudflare.RateLimit"].field_list) do rl[i] = f.name .. "? " .. f.type end
    assert.are.same({ "requests? integer", "per? number", "key? string", "redis? string", "shared? boolean" }, rl)
    ok, msg = pcall(cloudflare.new, { api_token = "probe", base_url = "http://127.0.0.1:9", rate_limit = { x = 1 } })
    assert.is_false(ok)
    assert.matches("%(known: requests, per, key, redis, shared%)", msg)
    local new = DEFS.functions["cloudflare.new"]
    assert.are.same({ { name = "opts", optional = true, type = "cloudflare.ClientOptions", desc = "" } }, new.params)
    assert.are.same({ { type = "cloudflare.Client", name = "client" } }, new.returns)
  end)

  it("takes every library function from the REPL's help registry, typed from its signature", function()
    local info = {}
    types.generate(nil, info)
    assert.are.same({ "help" }, info.skipped)                      -- the REPL's own
    assert.are.same({ "task:wait", "transfer:finish", "transfer:done" }, info.extra) -- not in the registry
    assert.are.same({}, info.undocumented)
    assert.are.same({}, info.fallbacks)
    assert.are.same({}, info.unknown)
    local src = types.sources()
    assert.are.equal(82, #src.docs)
    for _, e in ipairs(src.docs) do
      local path = e[1]:gsub("^ocr%.", "cloudflare.OriginCloudRegions."):gsub("^client:", "cloudflare.Client:")
        :gsub("^selector:", "cloudflare.Selector:")
      if path ~= "help" then assert.is_table(DEFS.functions[path], path) end
    end
    local canonical = DEFS.functions["cloudflare.ip.canonical"]
    assert.are.same({ { name = "s", optional = false, type = "string", desc = "" } }, canonical.params)
    assert.are.same({ { type = "string?" }, { type = '"invalid IP address"|nil' } }, canonical.returns)
    assert.are.same({ { type = "4|6|nil" } }, DEFS.functions["cloudflare.ip.version"].returns)
    assert.are.same({ { type = "integer?", name = "n" }, { type = "string[]|integer", name = "order" },
      { type = "table<string, integer>|nil", name = "rank_of" },
      { type = "table<string, string>|nil", name = "input_of" },
      { type = "any[]?", name = "invalid" } }, DEFS.functions["cloudflare.ip.index"].returns)
    local read = DEFS.functions["cloudflare.iplist.read"]
    assert.are.same({ { name = "path", optional = true, type = 'string|"-"|file*', desc = "" } }, read.params)
    assert.are.same({ { type = "string[]?", name = "ips" }, { type = "cloudflare.BadLine[]|string", name = "bad" } },
      read.returns)
    local vendor = DEFS.functions["cloudflare.select.vendor"]
    assert.are.same({ "fun(opts: table): cloudflare.Selector" }, vendor.overloads)
    assert.are.equal("string", vendor.params[2].type)
    local parallel = DEFS.functions["cloudflare.parallel"]
    assert.are.equal("{concurrency?: integer}", parallel.params[2].type)
    assert.is_true(parallel.params[2].optional)
    local finish = DEFS.functions["cloudflare.cli.finish"]
    assert.are.same({ true, true, true, false }, { finish.params[1].optional, finish.params[2].optional,
      finish.params[3].optional, finish.params[4].optional })
    assert.are.same({}, DEFS.functions["cloudflare.Task:wait"].params) -- cloudflare.wait(task), as a method
    assert.are.equal("cloudflare.Each", DEFS.functions["cloudflare.report.each"].returns[1].type)
  end)

  it("declares the constants, object fields and operators the runtime has", function()
    local cli = DEFS.classes["cloudflare.cli"].fields
    assert.are.equal("integer", cli.EXIT_PENDING.type)
    assert.are.equal("= 4", cli.EXIT_PENDING.desc)
    assert.are.equal("cloudflare.Selector", DEFS.classes["cloudflare.select"].fields.everything.type)
    assert.are.equal("lightuserdata", DEFS.classes["cloudflare.json"].fields.null.type)
    assert.are.equal('= "would_change"', DEFS.classes["cloudflare.report"].fields.DRY_STATUS.desc)
    -- a client's fields (a userdata: not enumerable, so each declared one is looked up)
    local probe = cloudflare.new { api_token = "probe", base_url = "http://127.0.0.1:9" }
    local client_fields = {}
    for i, f in ipairs(DEFS.classes["cloudflare.Client"].field_list) do
      client_fields[i] = f.name
      local probs = {}
      check(DEFS, probe[f.name], f.type, "client." .. f.name, probs)
      assert.are.same({}, probs)
    end
    assert.are.same({ "generation", "cache" }, client_fields)
    probe:close()
    -- a task's status (its other fields are the scheduler's)
    local status = DEFS.classes["cloudflare.Task"].fields.status.type
    local task = cloudflare.spawn(function() cloudflare.sleep(0) return 1 end)
    local probs = {}
    check(DEFS, task.status, status, "task.status", probs)
    assert.are.equal("waiting", task.status)
    assert.are.equal(1, task:wait())
    check(DEFS, task.status, status, "task.status", probs)
    check(DEFS, "lost", status, "made up", probs)
    assert.are.same({ 'made up: a string is not "ready"|"running"|"waiting"|"done"|"failed"' }, probs)
    -- the selector operators, from the metatable
    local mt = getmetatable(cloudflare.select.everything)
    local ops = {}
    for _, o in ipairs(DEFS.classes["cloudflare.Selector"].operators) do
      local mm = "__" .. o:match("^(%l+)")
      assert.is_function(mt[mm], mm)
      ops[#ops + 1] = mm
    end
    assert.are.same({ "__add", "__call", "__mul", "__unm" }, ops)
    -- every type a definition names is declared
    local names = {}
    local function collect(ty) for n in (ty or ""):gmatch("cloudflare%.[%w_]+") do names[n] = true end end
    for _, c in pairs(DEFS.classes) do
      for _, f in ipairs(c.field_list) do collect(f.type) end
      for _, o in ipairs(c.operators) do collect(o) end
      collect(c.parent)
    end
    for _, a in pairs(DEFS.aliases) do collect(a) end
    for _, f in pairs(DEFS.functions) do
      for _, p in ipairs(f.params) do collect(p.type) end
      for _, r in ipairs(f.returns) do collect(r.type) end
      for _, o in ipairs(f.overloads) do collect(o) end
    end
    for n in pairs(names) do assert.is_true(DEFS.classes[n] ~= nil or DEFS.aliases[n] ~= nil, n) end
    assert.are.equal('"aws"|"azure"|"gcp"|"oci"', DEFS.aliases["cloudflare.Vendor"])
    assert.are.equal('"v1"|"v2"', DEFS.aliases["cloudflare.Generation"])
  end)
end)

describe("the declared result and error shapes", function()
  local fake, client, ocr

  setup(function()
    fake = H.start_fake()
    client = fake:client { max_retries = 0 }
    ocr = client.cache.origin_cloud_regions
  end)
  teardown(function()
    client:close()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    fake:set_zone(ZONE, { { "192.0.2.1", "us-east-1", "aws" }, { "2001:db8::1", "us-central1", "gcp" },
      { "198.51.100.7", "eastus", "azure" } })
  end)

  local function shape(v, ty, where)
    local probs = {}
    check(DEFS, v, ty, where, probs)
    sort(probs)
    assert.are.same({}, probs)
  end

  it("are what the operations return, on success and on failure", function()
    shape(assert(ocr.list { zone_id = ZONE }), "cloudflare.ListResult", "list")
    if not H.V1 then
      local page = assert(ocr.list { zone_id = ZONE, page = 1, per_page = 2 })
      assert.is_table(page.result_info)
      shape(page, "cloudflare.ListResult", "list page")
    end
    shape(assert(ocr.get { zone_id = ZONE, ip = "192.0.2.1" }), "cloudflare.MappingResult", "get")
    local res, err = ocr.get { zone_id = ZONE, ip = "192.0.2.99" }
    assert.is_nil(res)
    assert.is_true(err.absent)
    shape(err, "cloudflare.Error", "get absent")
    shape(assert(ocr.create { zone_id = ZONE, ip = "192.0.2.50", region = "us-east-1", vendor = "aws" }),
      "cloudflare.MappingResult", "create")
    res, err = ocr.create { zone_id = ZONE, ip = "192.0.2.50", region = "us-east-1", vendor = "aws" }
    assert.is_nil(res)
    assert.is_true(err.exists)
    shape(err, "cloudflare.Error", "create exists")
    shape(assert(ocr.update { zone_id = ZONE, ip = "192.0.2.50", region = "us-west-2", vendor = "aws",
      journal = false }), "cloudflare.MappingResult", "update")
    shape(assert(ocr.delete { zone_id = ZONE, ip = "192.0.2.50", journal = false }), "cloudflare.MappingResult",
      "delete")
    local ips = { "192.0.2.1", "not an ip", "192.0.2.77", "10.0.0.0/8" }
    local dry = assert(ocr.bulk_delete { zone_id = ZONE, ips = ips, dry_run = true, journal = false })
    assert.is_true(dry.dry_run)
    shape(dry, "cloudflare.BatchResult", "bulk_delete dry run")
    local deleted = assert(ocr.bulk_delete { zone_id = ZONE, ips = ips, journal = false })
    assert.are.equal(1, #deleted.value.succeeded)
    assert.is_true(#deleted.value.failed >= 2)
    shape(deleted, "cloudflare.BatchResult", "bulk_delete")
    shape(assert(ocr.bulk_update { zone_id = ZONE, journal = false, items = {
      { ip = "192.0.2.1", region = "us-east-1", vendor = "aws" },
      { origin_ip = "192.0.2.2", region = "us-east-1", vendor = "aws" },
      { ip = "bad", region = "us-east-1", vendor = "aws" } } }), "cloudflare.BatchResult", "bulk_update")
    shape(assert(ocr.supported_regions { zone_id = ZONE }), "cloudflare.RegionsResult", "supported_regions")

    -- a batch that fails after one succeeded: err and partial
    local many = {}
    for i = 1, 150 do many[i] = string.format("10.1.%d.%d", i // 256, i % 256) end
    fake:fault { skip = 1, status = 500, match = { method = "DELETE" } }
    local r, e, partial = ocr.bulk_delete { zone_id = ZONE, ips = many, concurrency = 1, journal = false }
    assert.is_nil(r)
    assert.are.equal(500, e.status)
    shape(e, "cloudflare.Error", "bulk_delete err")
    assert.are.equal(150, #partial.value.succeeded + #partial.value.failed + #partial.value.pending
      + #partial.value.unsent)
    assert.are.equal(50, #partial.value.pending)
    shape(partial, "cloudflare.BatchResult", "bulk_delete partial")
  end)

  it("are what the library returns", function()
    local _, errs = cloudflare.parallel { function() error("boom") end }
    assert.are.equal("raised", errs[1].kind)
    shape(errs[1], "cloudflare.Error", "parallel errs[1]")
    local ips, bad = cloudflare.iplist.parse("192.0.2.1\n10.0.0.0/8\n010.0.0.1\n")
    assert.are.same({ "192.0.2.1" }, ips)
    shape(bad, "cloudflare.BadLine[]", "iplist bad")
    local probs = {}
    check(DEFS, { value = { succeeded = {}, failed = {}, pending = {} }, requests = 1, generation = "v3" },
      "cloudflare.BatchResult", "made up", probs)
    sort(probs)
    assert.are.same({ 'made up.generation: a string is not cloudflare.Generation',
      "made up.value.unsent: missing (required by cloudflare.BatchValue)" }, probs)
  end)
end)
