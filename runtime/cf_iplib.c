/* cf_iplib: the Lua binding of cf_ip (module cloudflare.ip).
 * Must stay a thin binding: parsing and formatting live in cf_ip.c. */
#include <lauxlib.h>
#include <lua.h>

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

int cf_open_ip(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"canonical", cf_ip_lua_canonical}, {"version", cf_ip_lua_version}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
