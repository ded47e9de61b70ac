/* cf_ratestate: the primitives of a rate budget shared across processes: a state file held
 * under flock (the budget of every cfrun process of one user on one machine), its private
 * directory, the digest that names a budget without naming its credential, and a Redis
 * connection (the budget of processes on many machines). The algorithm is Lua's
 * (lua/cloudflare/ratelimit.lua); these only move bytes. */
#ifndef CF_RATESTATE_H
#define CF_RATESTATE_H

#include <lauxlib.h>
#include <lua.h>

/* core.rate_dir, rate_file, rate_prune, sha256, pid, pid_alive, redis_connect */
extern const luaL_Reg cf_ratestate_funcs[];
/* Registers the metatables of state files and Redis connections. */
void cf_ratestate_open(lua_State *L);

#endif
