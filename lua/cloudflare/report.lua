-- cloudflare.report: walking results and printing them for a person (an aligned table) or a
-- pipe (JSON, JSON lines, CSV). Knows the shapes the API layer returns: batch results
-- (succeeded/failed/pending/unsent), lists of mappings, single mappings and supported regions.
-- Writes only to the file it is given.
local json = require "cloudflare.json"

local format = string.format
local concat = table.concat

local M = {}

-- The four outcomes of a batch call, each input IP in exactly one: succeeded, failed, pending
-- (sent, fate unknown: check it, or restore it from the journal) and unsent (certainly not
-- applied: it can simply be sent again). Results made before unsent existed have no such list.
-- A script may add a fifth, absent (IPs known to have had no mapping, left out of the call).
local STATUSES = { "succeeded", "failed", "pending", "unsent", "absent" }

--- The status a dry run's rows show in place of "succeeded" when the caller names none.
M.DRY_STATUS = "would_change"

local function is_batch(x)
  return type(x) == "table" and type(x.value) == "table" and type(x.value.succeeded) == "table"
end

--- for status, item in report.each(res) do ... end: every IP of a batch result (or of the
--- partial result of a failure), as "succeeded" | "failed" | "pending" | "unsent", in that
--- order (then "absent", for a result that has value.absent). Pending, unsent and absent
--- items may be given as plain IP strings: they come as { origin_ip = ip }.
function M.each(res)
  if not is_batch(res) then error("report.each: expected a batch result (value.succeeded)", 2) end
  return coroutine.wrap(function()
    for _, status in ipairs(STATUSES) do
      for _, item in ipairs(res.value[status] or {}) do
        coroutine.yield(status, type(item) == "table" and item or { origin_ip = item })
      end
    end
  end)
end

--- report.counts(res) -> { succeeded = n, failed = n, pending = n, unsent = n, total = n }, and
--- absent = n for a result that has value.absent
function M.counts(res)
  if not is_batch(res) then error("report.counts: expected a batch result (value.succeeded)", 2) end
  local c = { total = 0 }
  for _, status in ipairs(STATUSES) do
    if status ~= "absent" or res.value.absent then
      c[status] = #(res.value[status] or {})
      c.total = c.total + c[status]
    end
  end
  return c
end

---------------------------------------------------------------------------------------------
-- rows

local BATCH_COLUMNS = { "status", "origin_ip", "vendor", "region", "error", "input" }
local MAPPING_COLUMNS = { "origin_ip", "vendor", "region", "modified_on" }
local REGION_COLUMNS = { "vendor", "region", "upper_tier_colos" }

-- The status a row of x shows: a dry run's (x.dry_run) "succeeded" is what it would do: the
-- item's own dry_status (a restore's plan mixes writes and deletions), else opts.dry_status
-- (e.g. "would_delete"), else M.DRY_STATUS.
local function shown_status(x, status, item, opts)
  if status == "succeeded" and x.dry_run then
    return item.dry_status or (opts and opts.dry_status) or M.DRY_STATUS
  end
  return status
end

--- report.rows(x[, { dry_status = "would_delete" }]) -> columns, rows (each row a table keyed
--- by column name) for any result shape, or for a plain list of mappings or of row tables. The
--- rows of a dry run's batch result (x.dry_run) say dry_status where a real run says succeeded.
function M.rows(x, opts)
  if type(x) ~= "table" then error("report.rows: expected a result or a list, got " .. type(x), 2) end
  local rows = {}
  if is_batch(x) then
    for status, item in M.each(x) do
      rows[#rows + 1] = { status = shown_status(x, status, item, opts), origin_ip = item.origin_ip,
        vendor = item.vendor, region = item.region, error = item.error, input = item.input }
    end
    return BATCH_COLUMNS, rows
  end
  if type(x.vendors) == "table" then -- supported_regions
    local vendors = {}
    for v in pairs(x.vendors) do vendors[#vendors + 1] = v end
    table.sort(vendors)
    for _, v in ipairs(vendors) do
      for _, r in ipairs(x.vendors[v]) do
        rows[#rows + 1] = { vendor = v, region = r.name,
          upper_tier_colos = concat(r.upper_tier_colos or {}, " ") }
      end
    end
    return REGION_COLUMNS, rows
  end
  local list = x
  if type(x.value) == "table" then
    list = x.value.origin_ip and { x.value } or x.value -- one mapping, or a list of them
  end
  local columns = MAPPING_COLUMNS
  if list[1] ~= nil and list[1].origin_ip == nil then -- plain rows: columns from their keys
    local seen = {}
    columns = {}
    for _, row in ipairs(list) do
      for k in pairs(row) do
        if not seen[k] then seen[k] = true; columns[#columns + 1] = k end
      end
    end
    table.sort(columns)
  end
  for i, m in ipairs(list) do rows[i] = m end
  return columns, rows
end

local function cell(v)
  if v == nil or v == json.null then return "" end
  return tostring(v)
end

local function text_table(columns, rows)
  local width = {}
  for i, c in ipairs(columns) do width[i] = #c end
  local cells = {}
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(columns) do
      local s = cell(row[c]):gsub("[%c]", " ")
      cells[r][i] = s
      if utf8.len(s) and utf8.len(s) > width[i] then width[i] = utf8.len(s) end
    end
  end
  local function line(values)
    local parts = {}
    for i, v in ipairs(values) do
      -- pad by characters, not bytes, and leave the last column unpadded
      parts[i] = i < #values and v .. string.rep(" ", width[i] - (utf8.len(v) or #v)) or v
    end
    return concat(parts, "  "):gsub("%s+$", "") .. "\n"
  end
  local out = { line(columns) }
  local rule = {}
  for i = 1, #columns do rule[i] = string.rep("-", width[i]) end
  out[2] = line(rule)
  for r = 1, #rows do out[#out + 1] = line(cells[r]) end
  return concat(out)
end

local function csv_field(v)
  local s = cell(v)
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local function csv(columns, rows)
  local out = {}
  local head = {}
  for i, c in ipairs(columns) do head[i] = csv_field(c) end
  out[1] = concat(head, ",") .. "\r\n"
  for _, row in ipairs(rows) do
    local f = {}
    for i, c in ipairs(columns) do f[i] = csv_field(row[c]) end
    out[#out + 1] = concat(f, ",") .. "\r\n"
  end
  return concat(out)
end

local function json_lines(columns, rows)
  local out = {}
  for i, row in ipairs(rows) do
    local obj = {}
    for _, c in ipairs(columns) do obj[c] = row[c] end
    out[i] = json.encode(obj) .. "\n"
  end
  return concat(out)
end

M.FORMATS = { "table", "json", "jsonl", "csv" }

-- A dry run's batch result as JSON shows it: every item carries its status, and the list of
-- what would be done is named by it (value.would_delete in place of value.succeeded).
local function dry_json(x, opts)
  local copy, value = {}, {}
  for k, v in pairs(x) do copy[k] = v end
  for _, status in ipairs(STATUSES) do
    local list = x.value[status]
    if list then
      value[shown_status(x, status, {}, opts)] = json.array() -- present even when empty
      for _, item in ipairs(list) do
        local row = {}
        if type(item) == "table" then
          for k, v in pairs(item) do row[k] = v end
          row.dry_status = nil
        else
          row.origin_ip = item
        end
        row.status = shown_status(x, status, type(item) == "table" and item or {}, opts)
        value[row.status] = value[row.status] or json.array()
        table.insert(value[row.status], row)
      end
    end
  end
  copy.value = value
  return copy
end

--- report.format(x[, { format = "table"|"json"|"jsonl"|"csv", columns = {...},
--- dry_status = "would_delete" }]) -> string. A dry run's batch result (x.dry_run) is marked
--- row by row in every format: status dry_status (default M.DRY_STATUS) for what would be done.
function M.format(x, opts)
  opts = opts or {}
  local fmt = opts.format or "table"
  if fmt == "json" then
    if is_batch(x) and x.dry_run then x = dry_json(x, opts) end
    return json.encode(x, { indent = true }) .. "\n"
  end
  local columns, rows = M.rows(x, opts)
  columns = opts.columns or columns
  if fmt == "table" then return text_table(columns, rows) end
  if fmt == "csv" then return csv(columns, rows) end
  if fmt == "jsonl" then return json_lines(columns, rows) end
  error(format("report: unknown format %q (table, json, jsonl or csv)", tostring(fmt)), 2)
end

--- report.write(x[, opts]): report.format to opts.out (default io.stdout).
function M.write(x, opts)
  local out = (opts and opts.out) or io.stdout
  out:write(M.format(x, opts))
end

return M
