/* cf_lua: protected calls and module registration (see cf_lua.h).
 * Must not contain API logic: it only wires modules into a state. */
#include "cf_lua.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lualib.h>
#include <string.h>

#include "cf_exit.h"
#include "cf_interrupt.h"

/* The error a trapped os.exit raises: its address is the identity (see cf_lua_trap_exit). */
static const char exit_sentinel = 0;

static int msghandler(lua_State *L)
{
    if (lua_touserdata(L, 1) == &exit_sentinel)
        return 1; /* not an error: let it through untouched */
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) { /* not a string: honour __tostring (cloudflare.Error has one) */
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int cf_pcall(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs; /* function index */
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    lua_State *outer = cf_interrupt_bind(L); /* a signal reaches L only while this runs */
    int status = lua_pcall(L, nargs, nres, base);
    cf_interrupt_bind(outer);
    lua_remove(L, base);
    return status;
}

static int load_embedded(lua_State *L)
{
    const cf_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
    /* bytecode made by luac at build time from lua/ (cmake/embed.cmake) */
    if (luaL_loadbufferx(L, (const char *)m->src, m->len, m->chunkname, "b") != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1); /* stack: module value */
    return 1;
}

void cf_lua_preload(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* stack: preload */
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, cf_open_core);
    lua_setfield(L, -2, "cloudflare.core");
    lua_pushcfunction(L, cf_open_ip);
    lua_setfield(L, -2, "cloudflare.ip");
    lua_pushcfunction(L, cf_open_json);
    lua_setfield(L, -2, "cloudflare.json");
    for (const cf_embedded *m = cf_embedded_modules; m->name; m++) {
        lua_pushlightuserdata(L, (void *)m);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
}

/* os.exit for runs that must not end the process (scheduled runs): records the status in
 * the registry and unwinds with the sentinel. */
static int trapped_exit(lua_State *L)
{
    int code;
    if (lua_isboolean(L, 1))
        code = lua_toboolean(L, 1) ? 0 : 1;
    else
        code = (int)luaL_optinteger(L, 1, 0);
    lua_pushinteger(L, code);
    lua_setfield(L, LUA_REGISTRYINDEX, "cfrun.exit_code");
    lua_pushlightuserdata(L, (void *)&exit_sentinel);
    return lua_error(L);
}

void cf_lua_trap_exit(lua_State *L)
{
    lua_getglobal(L, "os");
    if (lua_istable(L, -1)) {
        lua_pushcfunction(L, trapped_exit);
        lua_setfield(L, -2, "exit");
    }
    lua_pop(L, 1);
}

int cf_lua_exit_code(lua_State *L, int idx, int *code)
{
    if (lua_touserdata(L, idx) != &exit_sentinel)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "cfrun.exit_code");
    *code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return 1;
}

/* core.exit_code(e) -> the status of a trapped os.exit when e is its error, else nil (for the
 * run policy in cloudflare.run, which sees the error through xpcall) */
static int cf_core_exit_code(lua_State *L)
{
    int code;
    if (cf_lua_exit_code(L, 1, &code))
        lua_pushinteger(L, code);
    else
        lua_pushnil(L);
    return 1;
}

/* core.module_text(name) -> the source of an embedded module that keeps it (CMakeLists.txt's
 * CFRUN_LUA_TEXTS); raises for any other name. */
static int cf_core_module_text(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const cf_embedded *m = cf_embedded_modules; m->name; m++) {
        if (strcmp(m->name, name) == 0 && m->text) {
            lua_pushlstring(L, (const char *)m->text, m->text_len);
            return 1;
        }
    }
    return luaL_error(L, "core.module_text: no embedded module keeps the text of '%s'", name);
}

const luaL_Reg cf_lua_funcs[] = {
    {"exit_code", cf_core_exit_code}, {"module_text", cf_core_module_text}, {NULL, NULL}};

void cf_lua_push_exit_table(lua_State *L)
{
    lua_newtable(L); /* stack: EXIT */
    lua_newtable(L); /* stack: EXIT outcome */
#define CF_EXIT_FIELD(name, lua, status, outcome)                                                  \
    lua_pushinteger(L, status);                                                                    \
    lua_setfield(L, -3, lua);                                                                      \
    lua_pushliteral(L, outcome);                                                                   \
    lua_rawseti(L, -2, status);
    CF_EXIT_STATUSES(CF_EXIT_FIELD)
#undef CF_EXIT_FIELD
    lua_setfield(L, -2, "outcome");
}

void cf_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                  lua_CFunction close, lua_CFunction tostring)
{
    luaL_newmetatable(L, name);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    const lua_CFunction fns[] = {gc, close, tostring};
    const char *const names[] = {"__gc", "__close", "__tostring"};
    for (int i = 0; i < 3; i++) {
        if (fns[i]) {
            lua_pushcfunction(L, fns[i]);
            lua_setfield(L, -2, names[i]);
        }
    }
    lua_pop(L, 1);
}
