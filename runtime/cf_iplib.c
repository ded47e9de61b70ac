/* cf_iplib: the Lua binding of cf_ip (module cloudflare.ip).
 * Must stay a thin binding: parsing and formatting live in cf_ip.c. */
#include <lauxlib.h>
#include <lua.h>
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

int cf_open_ip(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"canonical", cf_ip_lua_canonical},
                                     {"version", cf_ip_lua_version},
                                     {"valid", cf_ip_lua_valid},
                                     {"contains", cf_ip_lua_contains},
                                     {"cidr", cf_ip_lua_cidr},
                                     {"less", cf_ip_lua_less},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
