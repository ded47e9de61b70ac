-- spec/contract_spec.lua: every exchange between cfrun and the fake API, for every operation of
-- both API generations (success and each error code the operation publishes), held against the
-- published contract (spec/contract/origin-cloud-regions.json): request bodies against the
-- request schemas, envelopes and results against the response schemas, error codes against
-- the codes each operation publishes. The fake's request log gives what was really sent and
-- answered, byte for byte.
local H = require "spec.helper"
local S = require "spec.schema"
local cjson = require "cjson"

local ZONE = H.ZONE
local RAW = "x-contract-raw" -- marks requests a spec sends by hand, deliberately off-contract

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end

local CONTRACT = assert(S.decode(read(H.SOURCE_DIR .. "/spec/contract/origin-cloud-regions.json")))
local SCHEMAS = CONTRACT.schemas

-- Published codes the fake does not answer with, and why (each still has a published
-- alternative that is exercised).
local ALTERNATIVES = {
  ["origin-cloud-regions-delete"] = { [1142] = "the operation's text gives 1163 for an absent IP; "
    .. "its example shows 1142: the fake answers 1163, cfrun treats any 404 as absent" },
}

-- The operation a request is for: generation, method and path template from the contract.
local ROUTES = {}
for _, op in ipairs(CONTRACT.operations) do
  local literal = not op.path:find("{origin_ip}", 1, true)
  local pattern = "^/client/v4" .. op.path:gsub("[%-%.]", "%%%0"):gsub("{zone_id}", "[^/]+")
    :gsub("{origin_ip}", "[^/]+") .. "$"
  ROUTES[#ROUTES + 1] = { op = op, pattern = pattern, literal = literal }
end
table.sort(ROUTES, function(a, b) -- /batch and /supported_regions before /{origin_ip}
  if a.literal ~= b.literal then return a.literal end
  return a.op.id < b.op.id
end)

local function operation_of(r)
  for _, route in ipairs(ROUTES) do
    if r.path:find(route.pattern) and route.op.method == r.method then return route.op end
  end
end

-- Problems of one recorded exchange against the contract; notes what it covered in `seen`.
local function check_exchange(r, seen)
  local problems = {}
  local function add(list, prefix)
    for _, p in ipairs(list) do problems[#problems + 1] = prefix .. p end
  end
  local op = operation_of(r)
  if not op then return { r.method .. " " .. r.path .. ": no operation of the contract" } end
  local name = op.id .. " (" .. r.method .. " " .. r.path .. ")"
  local mark = seen[op.id] or { codes = {}, success = false, requests = 0 }
  seen[op.id] = mark
  local raw = r.headers and r.headers[RAW]
  if not raw then
    mark.requests = mark.requests + 1
    if op.request ~= S.NULL then
      local body, err = S.decode(r.body or "")
      if body == nil then
        problems[#problems + 1] = name .. ": request body is not JSON: " .. err
      else
        add(S.validate(SCHEMAS, op.request, body, "request"), name .. ": ")
      end
    elseif r.body and r.body ~= "" then
      problems[#problems + 1] = name .. ": a body was sent to an operation that takes none"
    end
  end
  local resp = r.response
  if type(resp) ~= "table" or type(resp.body) ~= "string" then
    problems[#problems + 1] = name .. ": the fake recorded no response"
    return problems
  end
  local env, err = S.decode(resp.body)
  if env == nil then
    problems[#problems + 1] = name .. ": response is not JSON: " .. err
    return problems
  end
  if resp.status >= 200 and resp.status < 300 then
    mark.success = mark.success or not raw
    add(S.validate(SCHEMAS, { ["$ref"] = "cache-rules_api-response-common" }, env, "response"), name .. ": ")
    if S.kind(env.result) == "null" or env.result == nil then
      problems[#problems + 1] = name .. ": success without a result"
    elseif op.result then
      add(S.validate(SCHEMAS, { ["$ref"] = op.result }, env.result, "result"), name .. ": ")
    elseif op.result_array then
      add(S.validate(SCHEMAS, { type = "array", items = { ["$ref"] = op.result_array } }, env.result,
        "result"), name .. ": ")
      if env.result_info == nil then
        problems[#problems + 1] = name .. ": no result_info beside a paginated result"
      else
        add(S.validate(SCHEMAS, { ["$ref"] = op.result_info }, env.result_info, "result_info"), name .. ": ")
      end
    end
  else
    add(S.validate(SCHEMAS, { ["$ref"] = "cache-rules_api-response-common-failure" }, env, "response"),
      name .. ": ")
    for _, e in ipairs(S.kind(env.errors) == "array" and env.errors or {}) do
      local code = type(e) == "table" and e.code
      if math.type(code) == "integer" then
        mark.codes[code] = true
        local published = #op.codes == 0 -- an operation that publishes none may answer any
        for _, c in ipairs(op.codes) do published = published or c == code end
        if not published then
          problems[#problems + 1] = string.format("%s: HTTP %d code %d is not one %s publishes",
            name, resp.status, code, op.id)
        end
      end
    end
  end
  return problems
end

describe("the published contract", function()
  local fake

  setup(function() fake = H.start_fake() end)
  teardown(function() fake:stop() end)

  it("the project's copy is the transcription of both generations' operations", function()
    local gens = {}
    for _, op in ipairs(CONTRACT.operations) do gens[op.gen] = (gens[op.gen] or 0) + 1 end
    assert.are.same({ v1 = 8, v2 = 7 }, gens) -- v2 has no create-only operation
    -- and the validator can fail: a v1 body sent to v2, an empty object for an array
    assert.are.same({ 'request[1]: lacks the required field "origin_ip"' },
      S.validate(SCHEMAS, { type = "array", items = { ["$ref"] = "cache-rules_origin_cloud_region_v2_request" } },
        S.decode('[{"ip":"192.0.2.1","region":"us-east-1","vendor":"aws"}]'), "request"))
    assert.are.same({ "result.succeeded: is a object, expected a array" },
      S.validate(SCHEMAS, { ["$ref"] = "cache-rules_origin_cloud_region_v2_batch_result" },
        S.decode('{"succeeded":{},"failed":[]}'), "result"))
  end)

  for _, gen in ipairs { "v1", "v2" } do
    it("holds every exchange of every " .. gen .. " operation, success and each published error", function()
      fake:reset()
      fake:set_zone(ZONE, {
        { "192.0.2.1", "us-east-1", "aws" },
        { "2001:db8::1", "us-central1", "gcp" },
        { "198.51.100.7", "eastus", "azure" },
      })
      fake:clear_requests()
      local c = fake:client { generation = gen, max_retries = 0 }
      local ocr = c.cache.origin_cloud_regions
      local function ok(res, err) return assert(res, err and err.message) end
      local function fails(code, res, err)
        assert.is_nil(res)
        if code then assert.are.equal(code, err.errors[1] and err.errors[1].code, err.message) end
        return err
      end

      ok(ocr.list { zone_id = ZONE })
      if gen == "v2" then ok(ocr.list { zone_id = ZONE, page = 2, per_page = 2 }) end
      ok(ocr.get { zone_id = ZONE, ip = "192.0.2.1" })
      fails(gen == "v1" and 1142 or nil, ocr.get { zone_id = ZONE, ip = "203.0.113.1" })
      ok(ocr.supported_regions { zone_id = ZONE })

      ok(ocr.create { zone_id = ZONE, ip = "203.0.113.1", region = "us-west-2", vendor = "aws" })
      assert.is_true(fails(gen == "v1" and 1145 or nil,
        ocr.create { zone_id = ZONE, ip = "203.0.113.1", region = "us-west-2", vendor = "aws" }).exists)
      fails(1157, ocr.create { zone_id = ZONE, ip = "203.0.113.2", region = "mars-north-1", vendor = "aws" })

      ok(ocr.update { zone_id = ZONE, ip = "203.0.113.1", region = "eu-west-1", vendor = "aws" })
      fails(1157, ocr.update { zone_id = ZONE, ip = "203.0.113.1", region = "mars-north-1", vendor = "aws" })
      fake:options { max_mappings = 4 }
      fails(1164, ocr.update { zone_id = ZONE, ip = "203.0.113.3", region = "eu-west-1", vendor = "aws" })
      fails(1164, ocr.bulk_update { zone_id = ZONE, items = {
        { ip = "203.0.113.4", region = "eu-west-1", vendor = "aws" },
        { ip = "203.0.113.5", region = "eu-west-1", vendor = "aws" } } })
      fake:options { max_mappings = 3500 }

      ok(ocr.delete { zone_id = ZONE, ip = "203.0.113.1" })
      assert.is_true(fails(gen == "v1" and 1163 or nil, ocr.delete { zone_id = ZONE, ip = "203.0.113.1" }).absent)

      ok(ocr.bulk_update { zone_id = ZONE, items = {
        { ip = "203.0.113.6", region = "eu-west-1", vendor = "aws" },
        { ip = "2001:db8::1", region = "us-east1", vendor = "gcp" } } })
      if gen == "v1" then -- a region failing validation fails v1's batch patch with a 5xx
        fails(1141, ocr.bulk_update { zone_id = ZONE, items = {
          { ip = "203.0.113.7", region = "mars-north-1", vendor = "aws" } } })
      end
      ok(ocr.bulk_delete { zone_id = ZONE, ips = { "203.0.113.6", "198.51.100.99", "2001:db8::1" } })
      ok(ocr.bulk_delete { zone_id = ZONE, ips = { "192.0.2.1" }, dry_run = true })
      fake:fault { status = 500, match = { method = "DELETE" }, errors = { { code = 1141,
        message = "Unable to delete origin_public_cloud_region setting. Internal error." } } }
      fails(1141, ocr.bulk_delete { zone_id = ZONE, ips = { "192.0.2.1" } })
      c:close()

      -- what cfrun refuses to send, sent by hand: the server's own answer must hold too
      local prefix = "/client/v4/zones/" .. ZONE .. (gen == "v1" and "/cache/origin_cloud_regions"
        or "/origin/cloud_regions")
      local auth = { authorization = "Bearer " .. H.TOKEN, [RAW] = "1" }
      local text, status
      if gen == "v1" then
        text, status = fake:raw("POST", prefix, '{"ip":"not-an-ip","region":"us-east-1","vendor":"aws"}', auth)
      else
        text, status = fake:raw("PUT", prefix .. "/192.0.2.50",
          '{"origin_ip":"192.0.2.51","region":"us-east-1","vendor":"aws"}', auth)
      end
      assert.are.equal(400, status, text)
      assert.are.equal(1146, cjson.decode(text).errors[1].code)

      local seen, problems = {}, {}
      for _, r in ipairs(fake:api_requests()) do
        for _, p in ipairs(check_exchange(r, seen)) do problems[#problems + 1] = p end
      end
      assert.are.same({}, problems)
      -- every operation of the generation was exercised by cfrun, with success and each code
      local missing = {}
      for _, op in ipairs(CONTRACT.operations) do
        if op.gen == gen then
          local mark = seen[op.id]
          if not (mark and mark.success) then missing[#missing + 1] = op.id .. ": no successful exchange" end
          for _, code in ipairs(op.codes) do
            if not (mark and mark.codes[code]) and not (ALTERNATIVES[op.id] or {})[code] then
              missing[#missing + 1] = op.id .. ": code " .. code .. " never answered"
            end
          end
        end
      end
      assert.are.same({}, missing)
    end)
  end
end)
