/* cf_merge: the per-item loop of a batch merge (lua/cloudflare/batch.lua's merge_batch) in
 * C: the one loop a bulk call runs for every IP the server answers for. The checks of the
 * answer as a whole and the partition stay in Lua. */
#ifndef CF_MERGE_H
#define CF_MERGE_H

#include <lauxlib.h>
#include <lua.h>

/* core.merge_items */
extern const luaL_Reg cf_merge_funcs[];

#endif
