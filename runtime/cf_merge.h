/* cf_merge: the per-item loop of a batch merge (lua/cloudflare/batch.lua's merge_batch) in
 * C: the one loop a bulk call runs for every IP the server answers for. The checks of the
 * answer as a whole and the partition stay in Lua. */
#ifndef CF_MERGE_H
#define CF_MERGE_H

#include <lauxlib.h>
#include <lua.h>

#include "cf_jsondec.h"

/* core.merge_items */
extern const luaL_Reg cf_merge_funcs[];

/* The shape a request's opts name (Client:request's `shape`), or NULL when name is not one:
 * "batch", the records of a batch's succeeded and failed items, which merge_items completes
 * into result entries. */
const cf_json_shape *cf_merge_shape(const char *name);

#endif
