/* cf_loop: the Lua state's one libcurl multi handle. Every request of every client in a
 * state runs on it, so all requests share one connection pool (keep-alive, and HTTP/2
 * multiplexing over TLS where the server offers it) and any number can be in flight at once.
 * A request is a cloudflare.Transfer userdata: started by Client:start, driven by
 * Transfer:finish (blocking) or core.poll (the task scheduler in lua/cloudflare/async.lua). */
#ifndef CF_LOOP_H
#define CF_LOOP_H

#include <lua.h>

#include "cf_http.h"
#include "cf_jsondec.h"

/* Gives a handle back to its owner when its transfer is over (the owner may pool it). */
typedef void (*cf_loop_release)(void *owner, cf_http *h);

/* Creates the state's loop and registers the Transfer type; sets poll in the table on top
 * of the stack (cloudflare.core). Raises if libcurl cannot make a multi handle. */
void cf_loop_open(lua_State *L);

/* Pushes a new Transfer running h, which cf_http_prepare set up (it sets CURLOPT_PRIVATE). The
 * values at owner_idx (the client) and body_idx (the body string, or 0) are anchored for as long as
 * the transfer runs. When the transfer is over, release(owner, h) is called exactly once. notify:
 * once it completes, core.poll lists it (a task of the scheduler waits for it); 0 when the caller
 * finishes it at once (Client:request). */
void cf_loop_start(lua_State *L, cf_http *h, cf_loop_release release, void *owner, int owner_idx,
                   int body_idx, int notify);

/* The shape the response of the Transfer on top of the stack is decoded with (cf_jsondec.h);
 * NULL, the default: plain JSON. shape must outlive the transfer (static data). */
void cf_loop_shape(lua_State *L, const cf_json_shape *shape);

/* Blocks until the Transfer at idx completes (other transfers progress meanwhile), then pushes
 * result, info | nil, err and returns 2. */
int cf_loop_finish(lua_State *L, int idx);

#endif
