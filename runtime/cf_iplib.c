/* cf_iplib: the Lua binding of cf_ip (module cloudflare.ip).
 * Must stay a thin binding: parsing and formatting live in cf_ip.c. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <string.h>

#include "cf_ip.h"
#include "cf_lua.h"

/* ip.canonical(s) -> canonical text | nil, "invalid IP address". A non-address is data,
 * not a programming mistake, so it is returned rather than raised. */
static int cf_ip_lua_canonical(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char out[CF_IP_STRLEN];
    int len = cf_ip_canonical(s, n, out);
    if (len < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid IP address");
        return 2;
    }
    if ((size_t)len == n && memcmp(out, s, n) == 0)
        lua_settop(L, 1); /* already canonical (the usual case): no new string */
    else
        lua_pushlstring(L, out, (size_t)len);
    return 1;
}

/* ip.version(s) -> 4 | 6 | nil */
static int cf_ip_lua_version(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    cf_ip ip;
    if (cf_ip_parse(s, n, &ip) != 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, ip.family);
    return 1;
}

/* ip.valid(s) -> boolean */
static int cf_ip_lua_valid(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    cf_ip ip;
    lua_pushboolean(L, cf_ip_parse(s, n, &ip) == 0);
    return 1;
}

static cf_prefix check_prefix(lua_State *L, int arg)
{
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    cf_prefix p;
    if (cf_prefix_parse(s, n, &p) != 0) /* a CIDR is written by the programmer: raise */
        luaL_argerror(L, arg, lua_pushfstring(L, "invalid CIDR '%s'", s));
    return p;
}

/* ip.contains(cidr, addr) -> boolean. A bad cidr raises; an addr that is not an address
 * is simply not contained (it comes from data). */
static int cf_ip_lua_contains(lua_State *L)
{
    cf_prefix p = check_prefix(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    cf_ip ip;
    lua_pushboolean(L, cf_ip_parse(s, n, &ip) == 0 && cf_prefix_contains(&p, &ip));
    return 1;
}

/* ip.cidr(s) -> canonical "network/bits" | nil, "invalid CIDR" */
static int cf_ip_lua_cidr(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    cf_prefix p;
    if (cf_prefix_parse(s, n, &p) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid CIDR");
        return 2;
    }
    char out[CF_PREFIX_STRLEN];
    lua_pushlstring(L, out, cf_prefix_format(&p, out));
    return 1;
}

/* ip.less(a, b): numeric order for table.sort; non-addresses sort last, as text. */
static int cf_ip_lua_less(lua_State *L)
{
    size_t na, nb;
    const char *a = luaL_checklstring(L, 1, &na);
    const char *b = luaL_checklstring(L, 2, &nb);
    cf_ip ia, ib;
    int va = cf_ip_parse(a, na, &ia) == 0, vb = cf_ip_parse(b, nb, &ib) == 0;
    if (va && vb)
        lua_pushboolean(L, cf_ip_compare(&ia, &ib) < 0);
    else if (va != vb)
        lua_pushboolean(L, va);
    else
        lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* A table whose elements plain raw access reads as Lua code would: no metatable, or one that
 * only marks it (json.array) without __index, __len or __pairs. */
static int plain_table(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    if (!lua_getmetatable(L, idx))
        return 1;
    int plain = lua_getfield(L, -1, "__index") == LUA_TNIL;
    plain = (lua_getfield(L, -2, "__len") == LUA_TNIL) && plain;
    plain = (lua_getfield(L, -3, "__pairs") == LUA_TNIL) && plain;
    lua_pop(L, 4);
    return plain;
}

/* ip.index(list) -> n, order, rank_of, input_of, bad | nil, 0 | nil, i: a bulk call's input
 * handling in one pass. order: the canonical IPs, first seen first; rank_of[c]: the position of
 * c's first spelling; input_of[c]: that spelling where it was not c; bad: { i, s, ... }, every
 * element that is not an address (repeats included). nil, 0: not a plain sequence (keys 1..n,
 * no metamethods; the caller's checks name what is wrong); nil, i: element i is not a string. */
static int cf_ip_lua_index(lua_State *L)
{
    lua_settop(L, 1);
    if (!plain_table(L, 1))
        goto not_plain;
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    /* exactly n keys, none of 1..n missing (checked below), means the keys are 1..n */
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n)
        goto not_plain;
    int sized = n > INT32_MAX ? INT32_MAX : (int)n;
    lua_createtable(L, sized, 0); /* 2 order */
    lua_createtable(L, 0, sized); /* 3 rank_of */
    lua_newtable(L);              /* 4 input_of */
    lua_newtable(L);              /* 5 bad */
    lua_Integer count = 0, nbad = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, i); /* 6 s */
        if (t == LUA_TNIL)
            goto not_plain;
        if (t != LUA_TSTRING) {
            lua_pushnil(L);
            lua_pushinteger(L, i);
            return 2;
        }
        size_t len;
        const char *s = lua_tolstring(L, 6, &len);
        char out[CF_IP_STRLEN];
        int clen = cf_ip_canonical(s, len, out);
        if (clen < 0) {
            lua_pushinteger(L, i);
            lua_rawseti(L, 5, ++nbad);
            lua_rawseti(L, 5, ++nbad); /* s */
            continue;
        }
        int same = (size_t)clen == len && memcmp(out, s, len) == 0;
        if (same)
            lua_pushvalue(L, 6);
        else
            lua_pushlstring(L, out, (size_t)clen); /* 7 c */
        lua_pushvalue(L, 7);
        if (lua_rawget(L, 3) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, 7);
            lua_pushinteger(L, i);
            lua_rawset(L, 3);
            if (!same) {
                lua_pushvalue(L, 7);
                lua_pushvalue(L, 6);
                lua_rawset(L, 4);
            }
            lua_pushvalue(L, 7);
            lua_rawseti(L, 2, ++count);
        } else {
            lua_pop(L, 1);
        }
        lua_settop(L, 5);
    }
    lua_pushinteger(L, n);
    lua_replace(L, 1);
    return 5;
not_plain:
    lua_pushnil(L);
    lua_pushinteger(L, 0);
    return 2;
}

/* Whether c is a space to Lua's %s (the C locale's isspace). */
static int lua_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* ip.scan(text) -> ips, bad: the lines of an IP list ('#' starts a comment, spaces around are
 * trimmed, blank lines skipped), in one pass. ips: the addresses as written; bad: { line,
 * text, ... } of every other non-blank line. */
static int cf_ip_lua_scan(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *end = s + n;
    lua_settop(L, 1);
    /* a line is at least 8 bytes ("1.2.3.4\n"): room for most lists without rehashing */
    lua_createtable(L, (int)(n / 8 > INT32_MAX ? INT32_MAX : n / 8), 0); /* 2 ips */
    lua_newtable(L);                                                     /* 3 bad */
    lua_Integer count = 0, nbad = 0, line = 0;
    for (const char *p = s; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(stop - p));
        const char *b = p, *e = hash ? hash : stop;
        line++;
        p = nl ? nl + 1 : end;
        while (b < e && lua_space(*b))
            b++;
        while (e > b && lua_space(e[-1]))
            e--;
        if (b == e)
            continue;
        cf_ip ip;
        if (cf_ip_parse(b, (size_t)(e - b), &ip) == 0) {
            lua_pushlstring(L, b, (size_t)(e - b));
            lua_rawseti(L, 2, ++count);
        } else {
            lua_pushinteger(L, line);
            lua_rawseti(L, 3, ++nbad);
            lua_pushlstring(L, b, (size_t)(e - b));
            lua_rawseti(L, 3, ++nbad);
        }
    }
    return 2;
}

int cf_open_ip(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"canonical", cf_ip_lua_canonical},
                                     {"version", cf_ip_lua_version},
                                     {"valid", cf_ip_lua_valid},
                                     {"contains", cf_ip_lua_contains},
                                     {"cidr", cf_ip_lua_cidr},
                                     {"less", cf_ip_lua_less},
                                     {"index", cf_ip_lua_index},
                                     {"scan", cf_ip_lua_scan},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
