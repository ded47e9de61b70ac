/* cf_sandbox: `cfrun --sandbox`: runs the built-in fake API as a child process and points
 * this process's environment at it. Must not run any Lua in the child besides cfrun itself. */
#ifndef CF_SANDBOX_H
#define CF_SANDBOX_H

#include <lua.h>

#define CF_SANDBOX_ZONE "023e105f4ecef8ad9ca31a8372d0c353"

/* Starts the server and pushes a handle whose __gc/__close stops it; raises on failure.
 * Replaces every CLOUDFLARE_* variable with the sandbox's base URL and a throw-away token,
 * and sets CFRUN_SANDBOX_ZONE. */
int cf_sandbox_start(lua_State *L);

#endif
