/* cf_repl: the interactive read-eval-print loop (cfrun -i, or cfrun on a terminal). */
#ifndef CF_REPL_H
#define CF_REPL_H

#include <lua.h>

/* Runs the REPL on a ready state (libraries, modules, `cloudflare` and `arg` set, signal
 * handling installed) until end of input; returns the exit status. */
int cf_repl(lua_State *L);

#endif
