/* cf_error: cloudflare.Error, the one error object of cfrun: what a failed request or call
 * returns as `nil, err`. One constructor builds it, for the C side (cf_error_push, used by
 * cf_response.c) and for Lua (core.error), so its message has one format:
 * "HTTP <status>: [<code>] <message>; [<code>] <message>" or "HTTP <status>: <detail>". */
#ifndef CF_ERROR_H
#define CF_ERROR_H

#include <lauxlib.h>
#include <lua.h>

/* Pushes nil and a cloudflare.Error { kind, status (when > 0), request_id (when ray is not
 * empty), errors (the normalised array at errors_idx, or empty), message }; returns 2, for a
 * C function to return. detail says what went wrong when the errors array does not. */
int cf_error_push(lua_State *L, const char *kind, long status, const char *ray, int errors_idx,
                  const char *detail);

/* core.error */
extern const luaL_Reg cf_error_funcs[];
/* Registers the metatable of errors (__tostring: the message). */
void cf_error_open(lua_State *L);

#endif
