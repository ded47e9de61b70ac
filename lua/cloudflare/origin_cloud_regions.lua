-- cloudflare.origin_cloud_regions: the description of the origin cloud regions endpoint family,
-- as data: each operation once (name, arguments, help text) and, per API generation, its
-- method, path, request body and result shape. Must hold no control flow: cloudflare.binder
-- builds the Lua functions from this table and cloudflare.batch runs the batch operations, so
-- that another generation or another family is one more description.

local M = {
  NAME = "cache.origin_cloud_regions",
  BATCH_SIZE = 100,  -- the API's limit per batch request
  CONCURRENCY = 4,   -- batches of one bulk call in flight at once, by default
  PAGE_SIZE = 100,   -- per_page when a v2 listing is fetched whole (the API's maximum)
  VENDORS = { "aws", "azure", "gcp", "oci" },
  DEFAULT_GENERATION = "v2",
}

-- The generations. base: the path after /zones/{zone_id}; ip_key: what request bodies call the
-- address; setting: results come wrapped in the "setting" object {id, editable, value,
-- modified_on} (v1), else result is the value itself (v2); paged: list is paginated (page,
-- per_page, result_info); exists_code: the error code of a create whose IP is mapped already;
-- removed: the announced end of life.
M.GENERATIONS = {
  v1 = { name = "v1", base = "/cache/origin_cloud_regions", ip_key = "ip", setting = true,
    setting_id = "origin_public_cloud_region", exists_code = 1145, removed = "2026-10-01" },
  v2 = { name = "v2", base = "/origin/cloud_regions", ip_key = "origin_ip", paged = true },
}

local PER_CALL = " Also takes timeout=, connect_timeout=, max_retries= and max_retry_wait= for "
  .. "this call. Wire failures are returned, never raised."

-- The operations, in the order help() and the docs list them. For each:
--   args: required arguments; options: optional ones (both checked by cloudflare.binder, whose
--     ARGUMENTS table says what each name takes); every operation also takes the per-call
--     transport options.
--   flow: how the binder runs it: "read" (one request), "list" (every page, or one),
--     "change" (one mapping changed, counted and optionally journaled), "batch" (any number
--     of IPs, cloudflare.batch).
--   batch: for flow "batch", what the engine prepares: "delete" (IPs) or "update" (mappings).
--   aliases: older names of the same function.
--   per generation: method, path (suffix after the generation's base; {ip} is the canonical
--     IP, percent-encoded), body ("mapping", "ips", "mappings" or nil), result ("one",
--     "many", "written", "deleted", "batch" or "regions"), and steps taken first: lookup
--     (get the mapping first: for what the journal and the result must tell) and
--     absent_first (fail, sending nothing, when the IP already has a mapping).
M.OPERATIONS = {
  { name = "list", args = { "zone_id" }, options = { "page", "per_page" }, flow = "list",
    signature = "{zone_id=[, page=, per_page=]} -> res | nil, err",
    doc = "Every mapping of the zone: res.value is a list of {origin_ip=, region=, vendor=, "
      .. "modified_on=} in the server's order (empty when there are none). On v2 the listing "
      .. "is paginated and fetched whole, 100 per request (res.requests counts them); page= "
      .. "and per_page= (1-100) ask for one page, with res.result_info = {page=, per_page=, "
      .. "count=, total_count=, total_pages=} (v2 only: v1 has no pages)." .. PER_CALL,
    v1 = { method = "GET", path = "", result = "many" },
    v2 = { method = "GET", path = "", result = "many" } },

  { name = "get", args = { "zone_id", "ip" }, flow = "read",
    signature = "{zone_id=, ip=} -> res | nil, err",
    doc = "One mapping as res.value. An absent one gives nil, err with err.status 404 (and "
      .. "err.absent = true); an invalid ip raises." .. PER_CALL,
    v1 = { method = "GET", path = "/{ip}", result = "one" },
    v2 = { method = "GET", path = "/{ip}", result = "one" } },

  { name = "create", args = { "zone_id", "ip", "region", "vendor" }, flow = "change",
    signature = "{zone_id=, ip=, region=, vendor=} -> res | nil, err",
    doc = "Adds one mapping and returns it as res.value; never replaces one. vendor is aws, "
      .. "azure, gcp or oci and region a non-empty string (bad values raise); an IP already "
      .. "mapped gives nil, err with err.exists = true, a full zone code 1164. On v2, which "
      .. "has no create-only request, cfrun looks the IP up first and then writes: not "
      .. "atomic, so a mapping created by somebody else in between is replaced." .. PER_CALL,
    v1 = { method = "POST", path = "", body = "mapping", result = "one" },
    v2 = { method = "PUT", path = "/{ip}", body = "mapping", result = "one", absent_first = true } },

  { name = "update", aliases = { "edit" }, args = { "zone_id", "ip", "region", "vendor" },
    options = { "journal" }, flow = "change",
    signature = "{zone_id=, ip=, region=, vendor=, journal=} -> res | nil, err",
    doc = "Creates or replaces one mapping (edit is the same function); res.value is the "
      .. "mapping as written. A full zone gives code 1164." .. PER_CALL,
    v1 = { method = "PATCH", path = "", body = "mapping", result = "written" },
    v2 = { method = "PUT", path = "/{ip}", body = "mapping", result = "one" } },

  { name = "delete", args = { "zone_id", "ip" }, options = { "journal" }, flow = "change",
    signature = "{zone_id=, ip=, journal=} -> res | nil, err",
    doc = "Deletes one mapping; res.value is what was deleted, with the region and vendor it "
      .. "had. An absent one gives nil, err with err.status 404 (err.absent = true). On v2, "
      .. "whose answer names only the IP, cfrun looks the mapping up first (two requests)."
      .. PER_CALL,
    v1 = { method = "DELETE", path = "/{ip}", result = "one", lookup = "journal" },
    v2 = { method = "DELETE", path = "/{ip}", result = "deleted", lookup = "always" } },

  { name = "bulk_delete", args = { "zone_id", "ips" },
    options = { "dry_run", "journal", "concurrency" }, flow = "batch", batch = "delete",
    signature = "{zone_id=, ips=, dry_run=, journal=, concurrency=} -> res | nil, err, partial",
    doc = "Deletes the mappings of any number of IPs, 100 per request. IPs are canonicalised "
      .. "and de-duplicated; invalid ones are reported in failed without being sent. "
      .. "res.value.succeeded has what was deleted (with vendor and region), failed what was "
      .. "not and why, pending what is unknown. On a wire failure: nil, err and partial, the "
      .. "same shape for what completed. dry_run = true only lists the zone and reports what "
      .. "would go. Up to concurrency (4) batches are in flight at once; results are the same "
      .. "as one at a time." .. PER_CALL,
    v1 = { method = "DELETE", path = "/batch", body = "ips", result = "batch" },
    v2 = { method = "DELETE", path = "/batch", body = "ips", result = "batch" } },

  { name = "bulk_update", aliases = { "bulk_edit" }, args = { "zone_id", "items" },
    options = { "journal", "concurrency" }, flow = "batch", batch = "update",
    signature = "{zone_id=, items={{ip=, region=, vendor=}, ...}, journal=, concurrency=} "
      .. "-> res | nil, err, partial",
    doc = "Creates or replaces any number of mappings, 100 per request (bulk_edit is the same "
      .. "function). Items with an invalid IP, vendor or region are reported in failed "
      .. "without being sent; for a duplicate IP the last item wins. Results are shaped like "
      .. "bulk_delete's." .. PER_CALL,
    v1 = { method = "PATCH", path = "/batch", body = "mappings", result = "batch" },
    v2 = { method = "PUT", path = "/batch", body = "mappings", result = "batch" } },

  { name = "supported_regions", args = { "zone_id" }, flow = "read",
    signature = "{zone_id=} -> res | nil, err",
    doc = "The vendors and regions the API accepts: res.vendors[vendor] is a list of {name=, "
      .. "upper_tier_colos={...}}." .. PER_CALL,
    v1 = { method = "GET", path = "/supported_regions", result = "regions" },
    v2 = { method = "GET", path = "/supported_regions", result = "regions" } },
}

-- Every callable name (aliases included), sorted, and the description behind each.
M.NAMES, M.BY_NAME = {}, {}
for _, op in ipairs(M.OPERATIONS) do
  for _, name in ipairs { op.name, table.unpack(op.aliases or {}) } do
    M.NAMES[#M.NAMES + 1] = name
    M.BY_NAME[name] = op
  end
end
table.sort(M.NAMES)

--- The namespace of one client for one generation (see cloudflare.binder).
function M.bind(client, transport, generation)
  return require("cloudflare.binder").bind(M, client, transport, generation)
end

return M
