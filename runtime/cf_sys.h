/* cf_sys: the system primitives the rest of cfrun shares: the one clock (monotonic, for
 * pacing, timeouts and durations) and the one wall-clock timestamp, a sleep that ends when a
 * signal asks the process to stop, and the small Lua bindings over them and over the file
 * system (cloudflare.core.now, timestamp, isatty, term_width, file_mode, new_table,
 * exit_with_parent). */
#ifndef CF_SYS_H
#define CF_SYS_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

/* Seconds on the monotonic clock. */
double cf_now(void);
/* "2026-11-28T01:02:03.456Z": UTC wall-clock time, for journals and logs; len >= 32. */
void cf_timestamp(char *out, size_t len);
/* Sleeps until cf_now() reaches `until`, waking at least every 0.1 s to notice a signal.
 * Returns the signal that asked the process to stop (cf_termination_requested), or 0. */
int cf_sleep_until(double until);

/* core.now, timestamp, isatty, term_width, file_mode, new_table, exit_with_parent */
extern const luaL_Reg cf_sys_funcs[];

#endif
