/* cf_jsondec: a strict JSON (RFC 8259) decoder into Lua values, for API responses.
 * lua-cjson grows every table key by key, and rehashing was the largest cost of a bulk call;
 * this decoder gathers an object's or array's members on the Lua stack first and creates the
 * table at its final size. Objects and arrays become plain tables, null becomes the value at
 * null_idx (cjson.null), integer literals that fit become integers, other numbers floats. */
#ifndef CF_JSONDEC_H
#define CF_JSONDEC_H

#include <lua.h>
#include <stddef.h>

#define CF_JSON_MAX_DEPTH 1000 /* as lua-cjson's default */

/* Pushes the value of the JSON text s[0..n) and returns 1, or pushes a message ("expected a
 * value at byte 12") and returns 0. Raises only when memory runs out. */
int cf_json_decode(lua_State *L, const char *s, size_t n, int null_idx);

#endif
