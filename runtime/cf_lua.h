/* cf_lua: the host's Lua plumbing: protected calls with tracebacks and the registration of
 * every built-in module (native and embedded Lua) in package.preload. */
#ifndef CF_LUA_H
#define CF_LUA_H

#include <lauxlib.h>
#include <lua.h>

/* Error convention, for every Lua-facing function of cfrun:
 *  - programming mistakes (wrong argument types, missing zone_id, use after close) raise;
 *  - what happens on the wire returns nil, err[, partial], err being a cloudflare.Error. */

/* lua_pcall with a traceback handler, during which a signal reaches L (cf_interrupt_bind);
 * nargs/nres as for lua_pcall. Every call from the host
 * into Lua goes through here. */
int cf_pcall(lua_State *L, int nargs, int nres);

/* Makes os.exit unwind instead of ending the process (each scheduled run is one state in a
 * long-lived process); cf_lua_exit_code tells whether the error at idx is such an exit. */
void cf_lua_trap_exit(lua_State *L);
int cf_lua_exit_code(lua_State *L, int idx, int *code);
/* core.exit_code and core.module_text, for cf_open_core. */
extern const luaL_Reg cf_lua_funcs[];
/* Pushes core.EXIT: the exit statuses of cf_exit.h by name, and EXIT.outcome[status]. */
void cf_lua_push_exit_table(lua_State *L);

/* Registers the metatable `name` of a userdata type, as liolib.c registers FILE*'s: methods
 * (or NULL) as its __index, and gc, close and tostring (each may be NULL) as __gc, __close and
 * __tostring. */
void cf_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                  lua_CFunction close, lua_CFunction tostring);

/* Registers cjson, cloudflare.core, cloudflare.ip, cloudflare.json and the embedded Lua
 * modules. */
void cf_lua_preload(lua_State *L);

/* Embedded Lua modules (luac bytecode), generated at build time from lua/ (cf_embedded.c). */
typedef struct cf_embedded {
    const char *name;      /* module name, e.g. "cloudflare.fake_api" */
    const char *chunkname; /* "@lua/cloudflare/fake_api.lua" */
    const unsigned char *src;
    size_t len;
    const unsigned char *text; /* the source, for the few modules that keep it (else NULL) */
    size_t text_len;
} cf_embedded;
extern const cf_embedded cf_embedded_modules[];

/* Native modules: cloudflare.core (assembled in cf_client.c), cloudflare.ip (cf_iplib.c),
 * cloudflare.json (cf_json.c). */
int cf_open_core(lua_State *L);
int cf_open_ip(lua_State *L);
int cf_open_json(lua_State *L);

/* CF_VERSION: the project's version, defined once (CMakeLists.txt's project(... VERSION)) and
 * passed to the compiler; cloudflare.core.version gives it to Lua. */
#ifndef CF_VERSION
#error "CF_VERSION must be defined by the build (CMakeLists.txt)"
#endif

#endif
