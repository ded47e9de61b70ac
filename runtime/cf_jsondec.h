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

/* A shape: how the objects of some arrays are built, for a caller that wants them as its own
 * records straight from the bytes (one table each, at its final size, holding only what it
 * reads). Within an array that is the value of a member named `name`, each object element
 * becomes a table of the members listed: member `key` is stored as `as`, only when its value
 * is a string, and when several give the same `as`, the first listed with a string wins; other
 * members are checked as strictly as ever (duplicates included) and dropped. With `share`, a
 * value equal to the last one of that member is the same Lua string, not hashed again. Elements
 * that are not objects are decoded as usual. */
#define CF_JSON_SHAPE_MEMBERS 8

typedef struct cf_json_member {
    const char *key, *as;
    int share;
} cf_json_member;

typedef struct cf_json_list {
    const char *name;
    int nmembers;
    cf_json_member members[CF_JSON_SHAPE_MEMBERS];
} cf_json_list;

typedef struct cf_json_shape {
    int nlists;
    int slots; /* the hash size each record is created with: room for what its reader adds */
    cf_json_list lists[2];
} cf_json_shape;

/* cf_json_decode, with the arrays `shape` names built as it says (shape NULL: none). */
int cf_json_decode_shaped(lua_State *L, const char *s, size_t n, int null_idx,
                          const cf_json_shape *shape);

#endif
