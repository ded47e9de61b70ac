/* cf_json: the cloudflare.json module: a JSON encoder that keeps empty arrays as [] (tables
 * marked with json.array, as every list the API layer returns is), sorts object keys for
 * stable output and can indent; and json.decode, the strict decoder of cf_jsondec.c (API
 * responses go through it too). Must not raise while holding
 * memory that Lua does not own: the output buffer lives in a userdata with __gc. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_jsondec.h"
#include "cf_lua.h"

#define ARRAY_MT  "cloudflare.array"
#define BOX_MT    "cloudflare.json.buffer"
#define MAX_DEPTH 100
#define UPV_NULL  lua_upvalueindex(1) /* cjson.null */

typedef struct enc {
    lua_State *L;
    cf_buf *b;
    int indent; /* spaces per level, 0 for compact */
} enc;

static int box_gc(lua_State *L)
{
    cf_buf_free(luaL_checkudata(L, 1, BOX_MT));
    return 0;
}

static void put(enc *e, const char *s, size_t n)
{
    if (cf_buf_append(e->b, s, n) != 0)
        luaL_error(e->L, "not enough memory");
}

#define PUTLIT(e, lit) put((e), (lit), sizeof(lit) - 1)

static void newline(enc *e, int level)
{
    if (!e->indent)
        return;
    PUTLIT(e, "\n");
    for (int i = 0; i < level * e->indent; i++)
        PUTLIT(e, " ");
}

static void put_string(enc *e, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    PUTLIT(e, "\"");
    size_t run = 0; /* bytes that need no escape, written in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(e, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            PUTLIT(e, "\\\"");
            break;
        case '\\':
            PUTLIT(e, "\\\\");
            break;
        case '\n':
            PUTLIT(e, "\\n");
            break;
        case '\r':
            PUTLIT(e, "\\r");
            break;
        case '\t':
            PUTLIT(e, "\\t");
            break;
        case '\b':
            PUTLIT(e, "\\b");
            break;
        case '\f':
            PUTLIT(e, "\\f");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(e, u, sizeof u);
        }
        }
    }
    put(e, s + run, n - run);
    PUTLIT(e, "\"");
}

static void put_number(enc *e, int idx)
{
    char num[32];
    int len;
    if (lua_isinteger(e->L, idx)) {
        len = snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
    } else {
        double d = lua_tonumber(e->L, idx);
        if (!isfinite(d))
            luaL_error(e->L, "json.encode: cannot encode NaN or infinity");
        /* the shortest of %.15g / %.17g that reads back as the same double */
        len = snprintf(num, sizeof num, "%.15g", d);
        if (strtod(num, NULL) != d)
            len = snprintf(num, sizeof num, "%.17g", d);
    }
    put(e, num, (size_t)len);
}

/* Length of the table at idx if it is to be written as an array, else -1. Marked tables
 * are arrays (even empty); unmarked ones are arrays when their keys are exactly 1..n. */
static lua_Integer array_length(lua_State *L, int idx)
{
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, ARRAY_MT);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked)
            return (lua_Integer)lua_rawlen(L, idx);
    }
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return -1;
        }
        lua_Integer k = lua_tointeger(L, -1);
        max = k > max ? k : max;
        count++;
    }
    return count > 0 && count == max ? count : -1;
}

typedef struct key {
    const char *s;
    size_t n;
    lua_Integer slot; /* where the key's value sits in the values table */
} key;

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static void put_value(enc *e, int idx, int level);

static void put_object(enc *e, int idx, int level)
{
    lua_State *L = e->L;
    lua_newtable(L); /* names: the keys as strings, which also anchors them */
    int names = lua_gettop(L);
    lua_newtable(L); /* values, in the same slots */
    int values = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* stack: ... key value */
        int t = lua_type(L, -2);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "json.encode: cannot encode a table key of type %s", lua_typename(L, t));
        lua_rawseti(L, values, ++n);
        lua_pushvalue(L, -1);
        lua_tostring(L, -1); /* converts the copy: converting the key itself breaks lua_next */
        lua_rawseti(L, names, n);
    }
    key *keys = lua_newuserdatauv(L, n ? (size_t)n * sizeof *keys : 1, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, names, i + 1);
        keys[i].s = lua_tolstring(L, -1, &keys[i].n);
        keys[i].slot = i + 1;
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)n, sizeof *keys, key_cmp);
    PUTLIT(e, "{");
    for (lua_Integer i = 0; i < n; i++) {
        if (i)
            PUTLIT(e, ",");
        newline(e, level + 1);
        put_string(e, keys[i].s, keys[i].n);
        if (e->indent)
            PUTLIT(e, ": ");
        else
            PUTLIT(e, ":");
        lua_rawgeti(L, values, keys[i].slot);
        put_value(e, lua_gettop(L), level + 1);
        lua_pop(L, 1);
    }
    if (n)
        newline(e, level);
    PUTLIT(e, "}");
    lua_pop(L, 3);
}

static void put_value(enc *e, int idx, int level)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        PUTLIT(e, "null");
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            PUTLIT(e, "true");
        else
            PUTLIT(e, "false");
        return;
    case LUA_TNUMBER:
        put_number(e, idx);
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(e, s, n);
        return;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_rawequal(L, idx, UPV_NULL)) {
            PUTLIT(e, "null");
            return;
        }
        break;
    case LUA_TTABLE: {
        if (level >= MAX_DEPTH)
            luaL_error(L, "json.encode: nesting deeper than %d (a cycle?)", MAX_DEPTH);
        luaL_checkstack(L, 8, "json.encode: nesting too deep");
        lua_Integer n = array_length(L, idx);
        if (n < 0) {
            put_object(e, idx, level);
            return;
        }
        PUTLIT(e, "[");
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                PUTLIT(e, ",");
            newline(e, level + 1);
            lua_rawgeti(L, idx, i);
            put_value(e, lua_gettop(L), level + 1);
            lua_pop(L, 1);
        }
        if (n > 0)
            newline(e, level);
        PUTLIT(e, "]");
        return;
    }
    default:
        break;
    }
    luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
}

/* json.encode(value[, {indent = true|n}]) -> string */
static int cf_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    enc e = {L, NULL, 0};
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "indent");
        if (lua_isinteger(L, -1))
            e.indent = (int)luaL_checkinteger(L, -1);
        else
            e.indent = lua_toboolean(L, -1) ? 2 : 0;
        if (e.indent < 0 || e.indent > 16)
            return luaL_argerror(L, 2, "indent must be between 0 and 16");
        lua_pop(L, 1);
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_typeerror(L, 2, "table");
    }
    lua_settop(L, 1);
    e.b = lua_newuserdatauv(L, sizeof(cf_buf), 0); /* stack: value box */
    cf_buf_init(e.b);
    luaL_setmetatable(L, BOX_MT);
    put_value(&e, 1, 0);
    lua_pushlstring(L, e.b->data ? e.b->data : "", e.b->len);
    cf_buf_free(e.b); /* now, rather than at the next collection */
    return 1;
}

/* json.array([t]) -> t marked to encode as a JSON array, even when empty */
static int cf_json_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ARRAY_MT);
    return 1;
}

/* json.is_array(t) -> true when t is marked as an array */
static int cf_json_is_array(lua_State *L)
{
    int marked = 0;
    if (lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, ARRAY_MT);
        marked = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, marked);
    return 1;
}

/* json.decode(text) -> value; raises "json.decode: <problem> at byte N" on invalid JSON, as
 * cjson.decode raises. The decoder of API responses (cf_jsondec.c), so scripts and the
 * runtime read JSON alike: null is json.null, integer literals are integers. */
static int cf_json_decode_lua(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (!cf_json_decode(L, s, n, UPV_NULL))
        return luaL_error(L, "json.decode: %s", lua_tostring(L, -1));
    return 1;
}

int cf_open_json(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"encode", cf_json_encode},
                                     {"decode", cf_json_decode_lua},
                                     {"array", cf_json_array},
                                     {"is_array", cf_json_is_array},
                                     {NULL, NULL}};
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);

    luaL_requiref(L, "cjson", luaopen_cjson, 0); /* stack: cjson */
    luaL_newlibtable(L, funcs);
    lua_getfield(L, -2, "null");
    luaL_setfuncs(L, funcs, 1); /* stack: cjson json (upvalue: cjson.null) */
    lua_getfield(L, -2, "null");
    lua_setfield(L, -2, "null");
    lua_remove(L, -2);
    return 1;
}
