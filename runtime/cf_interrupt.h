/* cf_interrupt: SIGINT and SIGTERM. The handler only sets flags and arms a Lua hook on the
 * state bound by the protected call that is running (cf_pcall binds it, as lua.c's docall
 * installs its handler around each lua_pcall), so it can never reach a closed state. */
#ifndef CF_INTERRUPT_H
#define CF_INTERRUPT_H

#include <lauxlib.h>
#include <lua.h>

/* How a signal is taken. CF_INTERRUPT_CALL (the REPL): SIGINT stops the call running (its
 * transfers return err.kind "interrupted", Lua code raises "interrupted!") and the session
 * goes on; SIGTERM stops the process. CF_INTERRUPT_STOP (scripts and jobs): the first SIGINT
 * or SIGTERM stops the process: transfers in flight return "interrupted", no later request
 * is sent, and the hook raises "interrupted!" only once Lua code outside cfrun's own modules
 * runs, so no call is cut in the middle of its bookkeeping; a second one ends the process at
 * once (_exit(128 + signal)), as the journal already holds every intent. */
typedef enum { CF_INTERRUPT_CALL, CF_INTERRUPT_STOP } cf_interrupt_mode;

/* Installs the handlers (once per process; again to change the mode). */
void cf_interrupt_install(cf_interrupt_mode mode);
/* Makes L the state a signal interrupts; returns the one bound before (NULL: none), which
 * the caller binds again when its protected call ends. */
lua_State *cf_interrupt_bind(lua_State *L);
/* The signal received and not yet consumed (SIGINT, SIGTERM), or 0. */
int cf_interrupted(void);
/* Takes the pending interrupt, disarming the Lua hook; returns the signal or 0. Used by what
 * turns the signal into a result (a transfer that reports "interrupted") instead of raising. */
int cf_interrupt_consume(void);
/* The signal that asked the process to stop (SIGTERM; in CF_INTERRUPT_STOP, SIGINT too), or 0.
 * Stays set for the life of the process. */
int cf_termination_requested(void);

/* core.stopping and core.consume_interrupt, for cf_open_core. */
extern const luaL_Reg cf_interrupt_funcs[];

#endif
