/* response_fuzz: libFuzzer target for cf_response_push (runtime/cf_response.c) and for the
 * Lua code that normalises what it returns (lua/cloudflare/origin_cloud_regions.lua).
 *
 * Input: byte 0 selects the outcome (mod 5: DONE, NETWORK, TIMEOUT, TOO_LARGE, DONE; the
 * quotient picks the transport error text and whether empty headers are NULL or ""), bytes
 * 1-2 the status (big-endian, mod 600), then seven '\n'-terminated header values (cf-ray,
 * content-type, retry-after, retry-after-ms, x-should-retry, ratelimit, ratelimit-policy;
 * each cut to the size cf_http keeps), then the body: every remaining byte.
 *
 * One lua_State, built as the host builds it, serves the whole run. Each input goes through
 * cf_response_push; its two values are checked against the documented contract, then handed
 * to a fake transport under cloudflare.origin_cloud_regions.bind, and bulk_delete, list and
 * friends run on them (with fixed, valid arguments). The same bytes are decoded again with the
 * batch shape (runtime/cf_merge.c), which must agree with the plain decode, and that decode
 * (a fresh one per request) is what the batch requests get. Any Lua error there, or a broken
 * invariant, is printed and abort()s, so libFuzzer records the input. Set
 * CFRUN_FUZZ_STRICT=1 to also abort on "soft" invariants (see spec/fuzz/README.md). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_http.h"
#include "cf_lua.h"
#include "cf_merge.h"
#include "cf_response.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Compiled once; returns run(result, info, outcome, status, body_len, input) and summary(). */
static const char HARNESS[] =
    "local STRICT = ...\n"
    "local core = require 'cloudflare.core'\n"
    "local json = require 'cloudflare.json'\n"
    "local ip = require 'cloudflare.ip'\n"
    "local ocr = require 'cloudflare.origin_cloud_regions'\n"
    "local transport_mod = require 'cloudflare.transport'\n"
    "local format = string.format\n"
    "local ERROR_MT = debug.getregistry()['cloudflare.Error']\n"
    "assert(type(ERROR_MT) == 'table', 'cloudflare.Error metatable missing')\n"
    "local ZONE = '023e105f4ecef8ad9ca31a8372d0c353'\n"
    "local HUGE = math.huge\n"
    "\n"
    "-- fixed arguments: duplicates, a non-canonical IPv6, a mapped address, a non-address\n"
    "local IPS = { '192.0.2.1', '2001:DB8:0:0:0:0:0:1', '203.0.113.5', '::ffff:198.51.100.99',\n"
    "  'not-an-ip', '192.0.2.1' }\n"
    "local EDIT_ITEMS = {\n"
    "  { ip = '192.0.2.1', region = 'us-east-1', vendor = 'aws' },\n"
    "  { ip = '2001:db8::1', region = 'us-central1', vendor = 'gcp' },\n"
    "  { ip = '203.0.113.5', region = 'x', vendor = 'nope' },\n"
    "}\n"
    "\n"
    "-- what each call must account for: canonical IPs sent (first input, rank) and local "
    "failures\n"
    "local function expectations(inputs, sendable)\n"
    "  local e = { sent = {}, input_of = {}, rank = {}, local_fail = {} }\n"
    "  for i, s in ipairs(inputs) do\n"
    "    if e.rank[s] == nil then e.rank[s] = i end\n"
    "    local c = sendable(i) and ip.canonical(s)\n"
    "    if c and not e.input_of[c] then e.input_of[c] = s; e.sent[#e.sent + 1] = c\n"
    "    elseif not c and not e.local_fail[s] then e.local_fail[s] = true end\n"
    "  end\n"
    "  return e\n"
    "end\n"
    "local DELETE_EXP = expectations(IPS, function() return true end)\n"
    "DELETE_EXP.soft = true -- the soft checks: the corpus answers bulk_delete's request\n"
    "local EDIT_INPUTS = {}\n"
    "for i, it in ipairs(EDIT_ITEMS) do EDIT_INPUTS[i] = it.ip end\n"
    "local EDIT_EXP = expectations(EDIT_INPUTS, function(i) return EDIT_ITEMS[i].vendor ~= "
    "'nope' end)\n"
    "\n"
    "-- the slot the harness fills: what cf_response_push returned for this input, and a function\n"
    "-- decoding it again with the shape a batch request asks for (a fresh decode per request, as\n"
    "-- each real response is merged once)\n"
    "local slot_r, slot_i, slot_shaped, shaped_i -- shaped_i: the error the last shaped decode gave\n"
    "local client = {}\n"
    "function client.request(_, _, _, _, opts) -- called as client:request(method, path, body, opts)\n"
    "  if opts and opts.shape ~= nil then\n"
    "    if opts.shape ~= 'batch' then error('INVARIANT: request: shape ' .. tostring(opts.shape)) end\n"
    "    local r, i = slot_shaped()\n"
    "    shaped_i = r == nil and i or nil\n"
    "    return r, i\n"
    "  end\n"
    "  return slot_r, slot_i\n"
    "end\n"

    "local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true }\n"
    "local transport = { client = client, sends = 0 }\n"
    "function transport:send(method, path, body, opts, on_attempt)\n"
    "  assert(self == transport, 'INVARIANT: send not called as a method')\n"
    "  assert(METHODS[method], 'INVARIANT: send: bad method')\n"
    "  assert(type(path) == 'string' and path:sub(1, 7) == '/zones/', 'INVARIANT: send: bad "
    "path')\n"
    "  assert(body == nil or type(body) == 'string', 'INVARIANT: send: bad body')\n"
    "  assert(opts == nil or type(opts) == 'table', 'INVARIANT: send: bad opts')\n"
    "  self.sends = self.sends + 1\n"
    "  local r, i = self.client:request(method, path, body, opts)\n"
    "  if on_attempt then on_attempt(1, r, i) end\n"
    "  return r, i, 1\n"
    "end\n"
    "local api = ocr.bind(client, transport, 'v1') -- the corpus answers v1's requests\n"
    "local api2 = ocr.bind(client, transport, 'v2') -- and is read as v2 would read it\n"
    "local real_transport = transport_mod.new(client, {})\n"
    "\n"
    "local current_input\n"
    "local function fail(fmt, ...) error('INVARIANT: ' .. format(fmt, ...), 2) end\n"
    "local notes, note_count, note_run, run_id = {}, {}, {}, 0\n"
    "local function printable(s)\n"
    "  return (s:gsub('[^\\32-\\126]', function(c) return format('\\\\x%02x', c:byte()) end))\n"
    "end\n"
    "local function soft(kind, fmt, ...)\n"
    "  if STRICT then error('SOFT INVARIANT (' .. kind .. '): ' .. format(fmt, ...), 2) end\n"
    "  if note_run[kind] == run_id then return end\n"
    "  note_run[kind] = run_id\n"
    "  note_count[kind] = (note_count[kind] or 0) + 1\n"
    "  if not notes[kind] then\n"
    "    notes[kind] = true\n"
    "    io.stderr:write(format('response_fuzz: NOTE (soft invariant %s, reported once): %s\\n',\n"
    "      kind, format(fmt, ...)), format('  input: %s\\n', printable(current_input:sub(1, "
    "600))))\n"
    "  end\n"
    "end\n"
    "local function opt(v, t) return v == nil or type(v) == t end\n"
    "local function is_int(v) return math.type(v) == 'integer' end\n"
    "\n"
    "local KINDS = { api = true, http = true, network = true, timeout = true, decode = true,\n"
    "  interrupted = true }\n"
    "-- texts of errors are sanitized (runtime/cf_redact.h): no raw C0 control, DEL or C1 control\n"
    "local function raw_control(s)\n"
    "  return s:find('[\\0-\\31\\127]') ~= nil or s:find('\\194[\\128-\\159]') ~= nil\n"
    "end\n"
    "local function check_error(e, where)\n"
    "  if type(e) ~= 'table' or getmetatable(e) ~= ERROR_MT then\n"
    "    fail('%s: err is a %s, not a cloudflare.Error', where, type(e)) end\n"
    "  if not KINDS[e.kind] then fail('%s: err.kind is %s', where, tostring(e.kind)) end\n"
    "  if type(e.message) ~= 'string' then fail('%s: err.message is not a string', where) end\n"
    "  if tostring(e) ~= e.message then fail('%s: tostring(err) is not err.message', where) end\n"
    "  if raw_control(e.message) then fail('%s: err.message holds a raw control character', where) end\n"
    "  if e.status ~= nil and not (is_int(e.status) and e.status > 0) then\n"
    "    fail('%s: err.status is %s', where, tostring(e.status)) end\n"
    "  if not opt(e.request_id, 'string') or (e.request_id and raw_control(e.request_id)) then\n"
    "    fail('%s: err.request_id', where) end\n"
    "  if type(e.errors) ~= 'table' then fail('%s: err.errors is not a table', where) end\n"
    "  local n = 0\n"
    "  for k, x in pairs(e.errors) do\n"
    "    n = n + 1\n"
    "    if not is_int(k) or type(x) ~= 'table' or type(x.message) ~= 'string'\n"
    "        or not (x.code == nil or is_int(x.code)) or raw_control(x.message) then\n"
    "      fail('%s: err.errors[%s] is malformed', where, tostring(k)) end\n"
    "  end\n"
    "  if n ~= #e.errors then fail('%s: err.errors is not a sequence', where) end\n"
    "end\n"
    "\n"
    "local function check_hints(h, where)\n"
    "  local w = h.retry_after\n"
    "  if w ~= nil and not (type(w) == 'number' and w >= 0) then\n"
    "    fail('%s: retry_after is %s', where, tostring(w)) end\n"
    "  if not opt(h.should_retry, 'boolean') then fail('%s: should_retry', where) end\n"
    "  local rl = h.ratelimit\n"
    "  if rl ~= nil then\n"
    "    if type(rl) ~= 'table' or not (is_int(rl.remaining) and rl.remaining >= 0)\n"
    "        or not (is_int(rl.reset) and rl.reset >= 0)\n"
    "        or (rl.quota == nil) ~= (rl.window == nil)\n"
    "        or not (rl.quota == nil or (is_int(rl.quota) and rl.quota >= 0))\n"
    "        or not (rl.window == nil or (is_int(rl.window) and rl.window >= 0)) then\n"
    "      fail('%s: ratelimit is malformed', where) end\n"
    "  end\n"
    "end\n"
    "\n"
    "-- the contract of cf_response_push (runtime/cf_response.h)\n"
    "local function check_response(r, i, outcome, status, nbytes)\n"
    "  local where = 'cf_response_push'\n"
    "  if r == nil then\n"
    "    check_error(i, where)\n"
    "    if outcome == 'network' or outcome == 'timeout' then\n"
    "      if i.kind ~= outcome or i.status ~= nil then fail('%s: %s gave kind %s', where, "
    "outcome, i.kind) end\n"
    "    elseif outcome == 'too_large' then\n"
    "      if i.kind ~= 'decode' then fail('%s: too_large gave kind %s', where, i.kind) end\n"
    "    elseif i.kind == 'network' or i.kind == 'timeout' then\n"
    "      fail('%s: a complete response gave kind %s', where, i.kind)\n"
    "    end\n"
    "    if outcome ~= 'network' and outcome ~= 'timeout' and i.status ~= (status > 0 and "
    "status or nil) then\n"
    "      fail('%s: err.status %s for status %d', where, tostring(i.status), status) end\n"
    "  else\n"
    "    if outcome ~= 'done' then fail('%s: a result for outcome %s', where, outcome) end\n"
    "    if r == core.null then fail('%s: result is JSON null', where) end\n"
    "    if type(i) ~= 'table' then fail('%s: info is a %s', where, type(i)) end\n"
    "    if i.status ~= status or status < 200 or status > 299 then\n"
    "      fail('%s: success with status %s (input %d)', where, tostring(i.status), status) end\n"
    "    if not opt(i.request_id, 'string') then fail('%s: info.request_id', where) end\n"
    "  end\n"
    "  if outcome == 'done' and i.bytes ~= nbytes then\n"
    "    fail('%s: bytes %s, body has %d', where, tostring(i.bytes), nbytes) end\n"
    "  check_hints(i, where)\n"
    "end\n"
    "\n"
    "local function check_list_of(list, where, name)\n"
    "  if type(list) ~= 'table' or not json.is_array(list) then\n"
    "    fail('%s: %s is not a json.array', where, name) end\n"
    "  local n = 0\n"
    "  for _ in pairs(list) do n = n + 1 end\n"
    "  if n ~= #list then fail('%s: %s is not a sequence', where, name) end\n"
    "end\n"
    "\n"
    "-- a bulk result (res or partial): shapes, coverage of every input, order of entries\n"
    "local function check_batch_result(res, exp, where, ok)\n"
    "  if type(res) ~= 'table' or type(res.value) ~= 'table' then fail('%s: no result table', "
    "where) end\n"
    "  if res.generation == 'v2' then -- no setting object: its fields are nil\n"
    "    if res.id ~= nil or res.editable ~= nil or res.modified_on ~= nil then\n"
    "      fail('%s: v2 result with setting fields', where) end\n"
    "  elseif res.generation == 'v1' then\n"
    "    if res.id ~= 'origin_public_cloud_region' then fail('%s: id %s', where, "
    "tostring(res.id)) end\n"
    "    if not opt(res.editable, 'boolean') or not opt(res.modified_on, 'string') then\n"
    "      fail('%s: editable/modified_on', where) end\n"
    "  else\n"
    "    fail('%s: generation %s', where, tostring(res.generation))\n"
    "  end\n"
    "  if res.requests ~= 1 then fail('%s: requests = %s', where, tostring(res.requests)) end\n"
    "  local v = res.value\n"
    "  check_list_of(v.succeeded, where, 'succeeded')\n"
    "  check_list_of(v.failed, where, 'failed')\n"
    "  check_list_of(v.pending, where, 'pending')\n"
    "  check_list_of(v.unsent, where, 'unsent')\n"
    "  if ok and #v.pending + #v.unsent > 0 then\n"
    "    fail('%s: success with %d pending, %d unsent', where, #v.pending, #v.unsent) end\n"
    "  local seen = {}\n"
    "  local function count(c) seen[c] = (seen[c] or 0) + 1 end\n"
    "  for _, list in ipairs { 'succeeded', 'failed' } do\n"
    "    local last = 0\n"
    "    for k, e in ipairs(v[list]) do\n"
    "      if type(e) ~= 'table' or type(e.origin_ip) ~= 'string' or not opt(e.input, "
    "'string') then\n"
    "        fail('%s: %s[%d] is malformed', where, list, k) end\n"
    "      if list == 'failed' and type(e.error) ~= 'string' then fail('%s: failed[%d].error', "
    "where, k) end\n"
    "      if list == 'succeeded' and not (opt(e.region, 'string') and opt(e.vendor, "
    "'string')) then\n"
    "        fail('%s: succeeded[%d] region/vendor', where, k) end\n"
    "      local c = e.origin_ip\n"
    "      if exp.input_of[c] and e.input ~= exp.input_of[c] then\n"
    "        fail('%s: %s[%d] input %q for %s, expected %q', where, list, k, tostring(e.input), "
    "c, exp.input_of[c]) end\n"
    "      local rank = e.input and exp.rank[e.input] or HUGE\n"
    "      if rank < last then fail('%s: %s not in input order at %d', where, list, k) end\n"
    "      last = rank\n"
    "      if exp.input_of[c] or (list == 'failed' and e.input == c and exp.local_fail[c]) then\n"
    "        count(c)\n"
    "      else -- a response is never believed about an IP its request did not carry\n"
    "        fail('%s: %s lists %q, which was not sent', where, list, c)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  for _, list in ipairs { 'pending', 'unsent' } do\n"
    "    for _, c in ipairs(v[list]) do\n"
    "      if type(c) ~= 'string' then fail('%s: %s holds a %s', where, list, type(c)) end\n"
    "      if exp.input_of[c] then count(c) else\n"
    "        fail('%s: %q %s but never sendable', where, c, list) end\n"
    "    end\n"
    "  end\n"
    "  for _, c in ipairs(exp.sent) do -- the four lists are a partition of the inputs\n"
    "    if not seen[c] then\n"
    "      fail('%s: %s is in none of succeeded, failed, pending, unsent', where, c) end\n"
    "    if seen[c] > 1 then fail('%s: %s is in %d lists', where, c, seen[c]) end\n"
    "  end\n"
    "  for s in pairs(exp.local_fail) do\n"
    "    if seen[s] ~= 1 then fail('%s: invalid input %q reported %s times', where, s, "
    "tostring(seen[s])) end\n"
    "  end\n"
    "  return seen\n"
    "end\n"
    "\n"
    "-- (res, err, partial) of bulk_delete / bulk_edit for the response (r, i)\n"
    "local function check_bulk(where, exp, r, i, res, err, partial)\n"
    "  if res ~= nil then\n"
    "    if r == nil then fail('%s: success although the request failed', where) end\n"
    "    if err ~= nil or partial ~= nil then fail('%s: success with an error', where) end\n"
    "    return check_batch_result(res, exp, where, true)\n"
    "  else\n"
    "    check_error(err, where)\n"
    "    if r == nil and err ~= i and err ~= shaped_i then fail('%s: err is not the transport error', where) end\n"
    "    if r ~= nil and err.kind ~= 'decode' then fail('%s: kind %s for a result', where, "
    "err.kind) end\n"
    "    check_batch_result(partial, exp, where .. ' partial', false)\n"
    "  end\n"
    "end\n"
    "\n"
    "local function check_mapping(m, where)\n"
    "  if type(m) ~= 'table' or type(m.origin_ip) ~= 'string' or not opt(m.region, 'string')\n"
    "      or not opt(m.vendor, 'string') or not opt(m.modified_on, 'string') then\n"
    "    fail('%s: malformed mapping', where) end\n"
    "end\n"
    "\n"
    "-- (res, err) of a single call: shape(res) checks res.value\n"
    "local function check_single(where, r, i, res, err, shape)\n"
    "  if res ~= nil then\n"
    "    if r == nil or err ~= nil then fail('%s: success although the request failed', where) "
    "end\n"
    "    if type(res) ~= 'table' or res.requests ~= 1 then fail('%s: no result / requests', "
    "where) end\n"
    "    shape(res)\n"
    "  else\n"
    "    check_error(err, where)\n"
    "    if r == nil and err ~= i and err ~= shaped_i then fail('%s: err is not the transport error', where) end\n"
    "    if r ~= nil and err.kind ~= 'decode' then fail('%s: kind %s for a result', where, "
    "err.kind) end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function setting_shape(where)\n"
    "  return function(res)\n"
    "    if type(res.id) ~= 'string' or type(res.editable) ~= 'boolean' or not "
    "opt(res.modified_on, 'string') then\n"
    "      fail('%s: id/editable/modified_on', where) end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function encode_all(...)\n"
    "  for k = 1, select('#', ...) do\n"
    "    local v = select(k, ...)\n"
    "    for _, o in ipairs { false, { indent = true } } do\n"
    "      local ok, s = pcall(json.encode, v, o or nil)\n"
    "      if type(s) ~= 'string' then fail('json.encode returned/raised a %s', type(s)) end\n"
    "      if ok and v ~= nil and s == '' then fail('json.encode returned an empty string') end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "-- the same bytes as an IP list file: ip.scan (iplist.read's one pass) and ip.index (a bulk\n"
    "-- call's input handling) on what it found\n"
    "local function check_list_file(input)\n"
    "  local ips, bad = ip.scan(input)\n"
    "  local all = {}\n"
    "  for _, s in ipairs(ips) do\n"
    "    if not ip.valid(s) then fail('ip.scan: %q listed as an address', s) end\n"
    "    all[#all + 1] = s\n"
    "  end\n"
    "  local last = 0\n"
    "  for k = 1, #bad - 1, 2 do\n"
    "    local line, s = bad[k], bad[k + 1]\n"
    "    if math.type(line) ~= 'integer' or line <= last then fail('ip.scan: line %s after %d', "
    "tostring(line), last) end\n"
    "    if s == '' or ip.valid(s) or s:find('[#\\n]') or s:find('^%s') or s:find('%s$') then\n"
    "      fail('ip.scan: %q reported as a bad line', s)\n"
    "    end\n"
    "    last, all[#all + 1] = line, s\n"
    "  end\n"
    "  local n, order, rank_of, _, flat = ip.index(all)\n"
    "  if n ~= #all or #flat ~= 2 * (#bad // 2) then fail('ip.index: %s of %d', tostring(n), #all) end\n"
    "  for _, c in ipairs(order) do\n"
    "    if ip.canonical(c) ~= c or ip.canonical(all[rank_of[c]]) ~= c then fail('ip.index: %q', c) end\n"
    "  end\n"
    "end\n"
    "\n"
    "-- the shaped decode (runtime/cf_jsondec.c, cf_merge.c's batch shape) against the plain one:\n"
    "-- the same success or error, and each object of a list named succeeded or failed the record\n"
    "-- of what an entry keeps: origin_ip (origin-ip first), region and vendor or error, strings only\n"
    "local LIST_KEEPS = { succeeded = { 'region', 'vendor' }, failed = { 'error' } }\n"
    "local function deep_equal(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function record_of(item, list)\n"
    "  local rec = {}\n"
    "  for _, k in ipairs { 'origin-ip', 'origin_ip' } do\n"
    "    if rec.origin_ip == nil and type(item[k]) == 'string' then rec.origin_ip = item[k] end\n"
    "  end\n"
    "  for _, k in ipairs(LIST_KEEPS[list]) do\n"
    "    if type(item[k]) == 'string' then rec[k] = item[k] end\n"
    "  end\n"
    "  return rec\n"
    "end\n"
    "local function same_shaped(plain, shaped, where, list)\n"
    "  -- an element of a shaped list: its record when it was an object, else decoded as usual\n"
    "  if list and type(plain) == 'table' and deep_equal(record_of(plain, list), shaped) then return end\n"
    "  if type(plain) ~= type(shaped) then fail('%s: %s, shaped %s', where, type(plain), type(shaped)) end\n"
    "  if type(plain) ~= 'table' then\n"
    "    if plain ~= shaped and not (plain ~= plain and shaped ~= shaped) then fail('%s: values differ', where) end\n"
    "    return\n"
    "  end\n"
    "  for k, v in pairs(plain) do\n"
    "    local named = type(v) == 'table' and LIST_KEEPS[k] and k or nil\n"
    "    if named then\n"
    "      for j, e in pairs(v) do same_shaped(e, shaped[k][j], where .. '.' .. k .. '[' .. tostring(j) .. ']', named) end\n"
    "      for j in pairs(shaped[k]) do\n"
    "        if v[j] == nil then fail('%s.%s: shaped has [%s] more', where, k, tostring(j)) end\n"
    "      end\n"
    "    else\n"
    "      same_shaped(v, shaped[k], where .. '.' .. tostring(k))\n"
    "    end\n"
    "  end\n"
    "  for k in pairs(shaped) do\n"
    "    if plain[k] == nil then fail('%s: shaped has %s more', where, tostring(k)) end\n"
    "  end\n"
    "end\n"
    "local function check_shaped(r, i, shaped, outcome, status, nbytes)\n"
    "  local sr, si = shaped()\n"
    "  check_response(sr, si, outcome, status, nbytes)\n"
    "  if (r == nil) ~= (sr == nil) then fail('shaped decode: %s where the plain one %s', tostring(sr), tostring(r)) end\n"
    "  if r == nil then\n"
    "    if si.kind ~= i.kind or si.message ~= i.message then\n"
    "      fail('shaped decode: error %s %q, plain %s %q', si.kind, si.message, i.kind, i.message)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  if si.shaped ~= true then fail('shaped decode: info.shaped is not true') end\n"
    "  same_shaped(r, sr, 'result')\n"
    "end\n"
    "\n"
    "local function run(r, i, outcome, status, nbytes, input, shaped)\n"
    "  current_input, run_id = input, run_id + 1\n"
    "  check_response(r, i, outcome, status, nbytes)\n"
    "  check_shaped(r, i, shaped, outcome, status, nbytes)\n"
    "  slot_shaped = shaped\n"

    "  check_list_file(input)\n"
    "  slot_r, slot_i = r, i\n"
    "  if r == nil then\n"
    "    local retry = transport_mod.retryable(i)\n"
    "    if type(retry) ~= 'boolean' then fail('retryable returned a %s', type(retry)) end\n"
    "  end\n"
    "  real_transport:observe(i)\n"
    "  real_transport.blocked_until = 0\n"
    "\n"
    "  local res, err, partial = api.bulk_delete { zone_id = ZONE, ips = IPS, journal = false }\n"
    "  check_bulk('bulk_delete', DELETE_EXP, r, i, res, err, partial)\n"
    "  encode_all(r, i, res, err, partial)\n"
    "\n"
    "  local dres, derr, dpartial = api.bulk_delete { zone_id = ZONE, ips = IPS, dry_run = "
    "true, journal = false }\n"
    "  local seen = check_bulk('bulk_delete dry_run', DELETE_EXP, r, i, dres, derr, dpartial)\n"
    "  if dres then\n"
    "    if dres.dry_run ~= true then fail('dry_run: res.dry_run is not true') end\n"
    "    for _, c in ipairs(DELETE_EXP.sent) do\n"
    "      if seen[c] ~= 1 then fail('dry_run: %s reported %d times', c, seen[c]) end\n"
    "    end\n"
    "  end\n"
    "\n"
    "  local lres, lerr = api.list { zone_id = ZONE }\n"
    "  check_single('list', r, i, lres, lerr, function(v)\n"
    "    setting_shape('list')(v)\n"
    "    check_list_of(v.value, 'list', 'value')\n"
    "    local value = r.value -- a JSON object (not a list) should be a decode error\n"
    "    if type(value) == 'table' and #value == 0 and next(value) ~= nil then\n"
    "      soft('list_object', 'list: result.value is a JSON object, yet list returned %d "
    "mappings', #v.value)\n"
    "    end\n"
    "    for k, m in ipairs(v.value) do check_mapping(m, 'list value[' .. k .. ']') end\n"
    "  end)\n"
    "  encode_all(lres, lerr)\n"
    "\n"
    "  local eres, eerr, epartial = api.bulk_edit { zone_id = ZONE, items = EDIT_ITEMS, journal "
    "= false }\n"
    "  check_bulk('bulk_edit', EDIT_EXP, r, i, eres, eerr, epartial)\n"
    "  encode_all(eres, eerr, epartial)\n"
    "\n"
    "  local gres, gerr = api.get { zone_id = ZONE, ip = '192.0.2.1' }\n"
    "  check_single('get', r, i, gres, gerr, function(v)\n"
    "    setting_shape('get')(v)\n"
    "    check_mapping(v.value, 'get value')\n"
    "  end)\n"
    "  local sres, serr = api.supported_regions { zone_id = ZONE }\n"
    "  check_single('supported_regions', r, i, sres, serr, function(v)\n"
    "    if type(v.vendors) ~= 'table' or type(v.obtained_codes) ~= 'boolean' then\n"
    "      fail('supported_regions: malformed result') end\n"
    "  end)\n"
    "  encode_all(gres, gerr, sres, serr)\n"
    "\n"
    "  -- v2 reads the same bytes: results unwrapped, the list paged (a repeated page is an "
    "error)\n"
    "  local vres, verr, vpartial = api2.bulk_delete { zone_id = ZONE, ips = IPS, journal = "
    "false }\n"
    "  check_bulk('v2 bulk_delete', DELETE_EXP, r, i, vres, verr, vpartial)\n"
    "  local wres, werr, wpartial = api2.bulk_update { zone_id = ZONE, items = EDIT_ITEMS, "
    "journal = false }\n"
    "  check_bulk('v2 bulk_update', EDIT_EXP, r, i, wres, werr, wpartial)\n"
    "  local v2l, v2lerr = api2.list { zone_id = ZONE }\n"
    "  if v2l then\n"
    "    if r == nil then fail('v2 list: success although the request failed') end\n"
    "    if v2l.id ~= nil or v2l.editable ~= nil then fail('v2 list: setting fields') end\n"
    "    check_list_of(v2l.value, 'v2 list', 'value')\n"
    "    for k, m in ipairs(v2l.value) do check_mapping(m, 'v2 list value[' .. k .. ']') end\n"
    "  else\n"
    "    check_error(v2lerr, 'v2 list')\n"
    "  end\n"
    "  encode_all(vres, verr, vpartial, wres, werr, wpartial, v2l, v2lerr)\n"
    "  slot_r, slot_i, slot_shaped = nil, nil, nil\n"
    "end\n"
    "\n"
    "local function summary()\n"
    "  for kind, n in pairs(note_count) do\n"
    "    io.stderr:write(format('response_fuzz: soft invariant %s broken in %d executions this "
    "run\\n', "
    "kind, n))\n"
    "  end\n"
    "end\n"
    "return run, summary\n";

static lua_State *L;
static int run_ref = LUA_NOREF, summary_ref = LUA_NOREF;
static unsigned long inputs;
/* Inputs between full collections (CFRUN_FUZZ_GC_EVERY, default 1). Collecting after every
 * input keeps libFuzzer's per-input leak check usable: with garbage left for later, nearly
 * every input has more mallocs than frees, libFuzzer then runs LeakSanitizer after it, and
 * the run drops from ~1100 to ~90 inputs per second. A full collection costs ~5%. */
static unsigned long gc_every = 1;

static void die(const char *what)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "response_fuzz: %s:\n%s\n", what, msg ? msg : "(no message)");
    abort();
}

/* Called through cf_pcall with the cf_response as a light userdata. */
static int push_response(lua_State *S)
{
    const cf_response *r = lua_touserdata(S, 1);
    lua_settop(S, 0);
    int n = cf_response_push(S, r);
    if (n != 2 || lua_gettop(S) < 2) {
        fprintf(stderr, "response_fuzz: cf_response_push returned %d with %d values\n", n,
                lua_gettop(S));
        abort();
    }
    return 2;
}

/* The same response decoded with the batch shape (upvalue 1: the cf_response): what a batch
 * request, which asks for it, gets back. */
static int push_shaped(lua_State *S)
{
    cf_response r = *(const cf_response *)lua_touserdata(S, lua_upvalueindex(1));
    r.shape = cf_merge_shape("batch");
    lua_settop(S, 0);
    return cf_response_push(S, &r);
}

/* Coverage of the Lua modules for libFuzzer, which sees only C edges: a line hook counts
 * (previous line, line) pairs of the embedded modules ("@lua/...") in libFuzzer's extra
 * counters, so inputs reaching new Lua branches (merge_batch, mapping, ...) are kept. */
#define LUA_COV_SIZE 16384
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_cov[LUA_COV_SIZE];
static uintptr_t lua_prev;

static void line_hook(lua_State *S, lua_Debug *ar)
{
    if (!lua_getinfo(S, "S", ar) || ar->source[0] != '@')
        return; /* the harness chunk ("=response_fuzz") does not count */
    uintptr_t cur = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
    size_t i = (size_t)((cur ^ (lua_prev >> 1)) % LUA_COV_SIZE);
    if (lua_cov[i] < 255)
        lua_cov[i]++;
    lua_prev = cur;
}

static void summary(void)
{
    if (L == NULL || summary_ref == LUA_NOREF)
        return;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, summary_ref);
    if (cf_pcall(L, 0, 0) != LUA_OK)
        fprintf(stderr, "response_fuzz: summary failed: %s\n", lua_tostring(L, -1));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate(); /* as cf_main.c builds its state */
    if (L == NULL)
        abort();
    lua_gc(L, LUA_GCSTOP);
    luaL_checkversion(L);
    luaL_openlibs(L);
    cf_lua_preload(L);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);

    if (luaL_loadbufferx(L, HARNESS, sizeof HARNESS - 1, "=response_fuzz", "t") != LUA_OK)
        die("cannot compile the harness chunk");
    const char *strict = getenv("CFRUN_FUZZ_STRICT");
    lua_pushboolean(L, strict && *strict && strcmp(strict, "0") != 0);
    if (cf_pcall(L, 1, 2) != LUA_OK)
        die("cannot load the harness chunk");
    summary_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    const char *every = getenv("CFRUN_FUZZ_GC_EVERY");
    if (every && strtoul(every, NULL, 10) > 0)
        gc_every = strtoul(every, NULL, 10);
    if (!getenv("CFRUN_FUZZ_NO_LUA_COV"))
        lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    atexit(summary);
    return 0;
}

/* A NUL-terminated heap copy of n bytes, exactly sized so ASan sees any over-read. */
static char *copy(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

#define NHEADERS    7
#define FIELDCAP(f) sizeof(((cf_http *)0)->f) /* what cf_http keeps, NUL included */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum cf_http_outcome outcomes[5] = {CF_HTTP_DONE, CF_HTTP_NETWORK, CF_HTTP_TIMEOUT,
                                                     CF_HTTP_TOO_LARGE, CF_HTTP_DONE};
    static const char *const names[5] = {"done", "network", "timeout", "too_large", "done"};
    static const size_t caps[NHEADERS] = {FIELDCAP(cf_ray),          FIELDCAP(content_type),
                                          FIELDCAP(retry_after),     FIELDCAP(retry_after_ms),
                                          FIELDCAP(should_retry),    FIELDCAP(ratelimit),
                                          FIELDCAP(ratelimit_policy)};
    static const uint8_t nothing[1];
    static char long_errmsg[CURL_ERROR_SIZE];
    if (long_errmsg[0] == '\0')
        memset(long_errmsg, 'x', sizeof long_errmsg - 1);
    if (data == NULL) /* no arithmetic on a null pointer, even for an empty input */
        data = nothing;
    lua_prev = 0; /* Lua coverage: every input starts from the same state */

    unsigned sel = size > 0 ? data[0] : 0;
    unsigned raw_status = (size > 1 ? (unsigned)data[1] << 8 : 0) | (size > 2 ? data[2] : 0);
    size_t pos = size < 3 ? size : 3;
    unsigned variant = sel / 5;
    int empty_is_null = (variant / 4) % 2;

    char *hdr[NHEADERS];
    for (int k = 0; k < NHEADERS; k++) {
        const uint8_t *start = data + pos;
        const uint8_t *nl = pos < size ? memchr(start, '\n', size - pos) : NULL;
        size_t len = nl ? (size_t)(nl - start) : size - pos;
        size_t keep = len < caps[k] - 1 ? len : caps[k] - 1;
        hdr[k] = keep == 0 && empty_is_null ? NULL : copy(start, keep);
        pos += len + (nl != NULL);
    }
    size_t body_len = size - pos;
    char *body = body_len ? copy(data + pos, body_len) : NULL; /* NULL when empty, as cf_buf */

    cf_response r = {0};
    r.outcome = outcomes[sel % 5];
    r.status = (long)(raw_status % 600);
    r.body = body;
    r.body_len = body_len;
    r.max_body = (size_t)32 << 20;
    switch (variant % 4) {
    case 0:
        r.errmsg = "Connection reset by peer";
        break;
    case 1:
        r.errmsg = "";
        break;
    case 2:
        r.errmsg = NULL;
        break;
    default:
        r.errmsg = long_errmsg;
    }
    r.cf_ray = hdr[0];
    r.content_type = hdr[1];
    r.retry_after = hdr[2];
    r.retry_after_ms = hdr[3];
    r.should_retry = hdr[4];
    r.ratelimit = hdr[5];
    r.ratelimit_policy = hdr[6];

    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
    lua_pushcfunction(L, push_response);
    lua_pushlightuserdata(L, &r);
    int status = cf_pcall(L, 1, 2); /* stack: run result info */
    if (status == LUA_OK) {
        lua_pushstring(L, names[sel % 5]);
        lua_pushinteger(L, r.status);
        lua_pushinteger(L, (lua_Integer)body_len);
        lua_pushlstring(L, (const char *)data, size);
        lua_pushlightuserdata(L, &r);
        lua_pushcclosure(L, push_shaped, 1);
        status = cf_pcall(L, 7, 0);
        if (status != LUA_OK && status != LUA_ERRMEM)
            die("unexpected Lua error in the Lua layer (origin_cloud_regions, json)");
    } else if (status != LUA_ERRMEM) { /* raising is allowed only when memory runs out */
        die("cf_response_push raised");
    }
    lua_settop(L, 0);

    for (int k = 0; k < NHEADERS; k++)
        free(hdr[k]);
    free(body);
    if (++inputs % gc_every == 0) /* see gc_every */
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
