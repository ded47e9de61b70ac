/* cf_interrupt: Ctrl-C and SIGTERM. A signal sets a flag that stops an HTTP transfer in
 * flight (the request returns err.kind "interrupted", so partial results survive) and arms
 * a Lua hook that raises "interrupted!" in running Lua code, as lua.c does. */
#ifndef CF_INTERRUPT_H
#define CF_INTERRUPT_H

#include <lua.h>

/* Installs handlers for SIGINT and SIGTERM; `L` is the state whose Lua code a signal
 * interrupts (NULL: none). Call again to point it at another state. */
void cf_interrupt_install(lua_State *L);
/* The signal received and not yet consumed (SIGINT, SIGTERM), or 0. */
int cf_interrupted(void);
/* Takes the pending interrupt, disarming the Lua hook; returns the signal or 0. Used by a
 * request that was aborted by it, which reports it as its result instead of raising. */
int cf_interrupt_consume(void);
/* The signal that asked the process to stop (SIGTERM; SIGINT too once
 * cf_interrupt_sigint_stops(1) was called, as jobs do), or 0. */
int cf_termination_requested(void);
void cf_interrupt_reset_termination(void);
void cf_interrupt_sigint_stops(int on);

#endif
