/* cf_error: the constructor and type of cloudflare.Error (see cf_error.h). Every text of an
 * error may quote what a server sent, so it is sanitized here (cf_redact.h), once. */
#include "cf_error.h"

#include <stdio.h>
#include <string.h>

#include "cf_lua.h"
#include "cf_redact.h"

#define ERROR_MT "cloudflare.Error"

/* Pushes the message of the error table at err: "HTTP <status>: " (when there is a status),
 * then detail, or every errors[i] as "[code] message" joined with "; ". */
static void push_message(lua_State *L, int err, long status, const char *detail)
{
    lua_getfield(L, err, "errors");
    int errors = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (status > 0) {
        char head[32];
        snprintf(head, sizeof head, "HTTP %ld: ", status);
        luaL_addstring(&b, head);
    }
    lua_Integer n = lua_istable(L, errors) ? (lua_Integer)lua_rawlen(L, errors) : 0;
    if (detail)
        luaL_addstring(&b, detail);
    else if (n == 0)
        luaL_addstring(&b, "request failed and the response gave no error details");
    for (lua_Integer i = 1; !detail && i <= n; i++) {
        /* balanced stack use between buffer operations; the strings stay anchored in errors */
        lua_rawgeti(L, errors, i);
        lua_getfield(L, -1, "code");
        int has_code = 0;
        lua_Integer code = lua_tointegerx(L, -1, &has_code);
        lua_getfield(L, -2, "message");
        const char *msg = lua_tostring(L, -1);
        lua_pop(L, 3);
        if (i > 1)
            luaL_addstring(&b, "; ");
        if (has_code) {
            char num[32];
            snprintf(num, sizeof num, "[%lld] ", (long long)code);
            luaL_addstring(&b, num);
        }
        luaL_addstring(&b, msg ? msg : "");
    }
    luaL_pushresult(&b);
    lua_remove(L, errors);
    cf_sanitize_at(L, -1); /* the detail may quote headers, a body or libcurl's text */
}

int cf_error_push(lua_State *L, const char *kind, long status, const char *ray, int errors_idx,
                  const char *detail)
{
    if (errors_idx)
        errors_idx = lua_absindex(L, errors_idx);
    lua_pushnil(L);
    lua_createtable(L, 0, 6);
    int err = lua_gettop(L);
    lua_pushstring(L, kind);
    lua_setfield(L, err, "kind");
    if (status > 0) {
        lua_pushinteger(L, status);
        lua_setfield(L, err, "status");
    }
    if (ray && *ray) {
        cf_sanitize_push(L, ray, strlen(ray));
        lua_setfield(L, err, "request_id");
    }
    if (errors_idx)
        lua_pushvalue(L, errors_idx);
    else
        lua_newtable(L);
    lua_setfield(L, err, "errors");
    push_message(L, err, status, detail);
    lua_setfield(L, err, "message");
    luaL_setmetatable(L, ERROR_MT);
    return 2;
}

/* core.error(t) -> t as a cloudflare.Error, for failures the Lua layer detects. t.kind is
 * required; t.message, when absent, is built as cf_error_push builds it, from t.status and
 * t.detail (which is then removed) or t.errors. The message and errors[i].message are
 * sanitized in place, as they may quote what a server sent. */
static int core_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_argcheck(L, lua_getfield(L, 1, "kind") == LUA_TSTRING, 1, "an error needs a string kind");
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "errors") != LUA_TTABLE) {
        lua_newtable(L);
        lua_setfield(L, 1, "errors");
    } else {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {         /* stack: t errors */
            if (lua_rawgeti(L, -1, i) == LUA_TTABLE) { /* stack: t errors e */
                if (lua_getfield(L, -1, "message") == LUA_TSTRING) {
                    cf_sanitize_at(L, -1);
                    lua_setfield(L, -2, "message");
                } else {
                    lua_pop(L, 1);
                }
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, 1);
    int t = lua_getfield(L, 1, "message");
    if (t == LUA_TSTRING) {
        cf_sanitize_at(L, -1);
    } else {
        luaL_argcheck(L, t == LUA_TNIL, 1, "an error's message must be a string");
        lua_pop(L, 1);
        lua_getfield(L, 1, "status");
        long status = (long)lua_tointeger(L, -1);
        lua_getfield(L, 1, "detail");
        const char *detail = lua_tostring(L, -1);
        push_message(L, 1, status, detail);
        lua_replace(L, 2); /* stack: t message detail */
        lua_settop(L, 2);
        lua_pushnil(L);
        lua_setfield(L, 1, "detail");
    }
    lua_setfield(L, 1, "message");
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushliteral(L, "cloudflare error");
    return 1;
}

const luaL_Reg cf_error_funcs[] = {{"error", core_error}, {NULL, NULL}};

void cf_error_open(lua_State *L)
{
    cf_new_class(L, ERROR_MT, NULL, NULL, NULL, error_tostring);
}
