/* cf_interrupt: signal handling shared by scripts, the REPL and the scheduler (see
 * cf_interrupt.h). Must do nothing in the handler but set flags and arm the hook, which is
 * async-signal-safe (lua_sethook is documented as such; lua.c relies on it). */
#include "cf_interrupt.h"

#include <lauxlib.h>
#include <signal.h>
#include <string.h>

/* A signal handler can reach nothing else: these are the process's only mutable globals,
 * as in lua.c (globalL). */
static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t stop_requested; /* the signal that asked the process to stop */
static volatile sig_atomic_t sigint_stops;   /* jobs: SIGINT stops like SIGTERM */
static lua_State *volatile hooked_state;

static void hook_stop(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (pending_signal) {
        pending_signal = 0;
        luaL_error(L, "interrupted!");
    }
}

static void on_signal(int sig)
{
    pending_signal = sig;
    if (sig == SIGTERM || sigint_stops)
        stop_requested = sig;
    lua_State *L = hooked_state;
    if (L)
        lua_sethook(L, hook_stop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

void cf_interrupt_install(lua_State *L)
{
    hooked_state = L;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cf_interrupted(void)
{
    return pending_signal;
}

int cf_interrupt_consume(void)
{
    int sig = pending_signal;
    pending_signal = 0;
    lua_State *L = hooked_state;
    if (sig && L)
        lua_sethook(L, NULL, 0, 0);
    return sig;
}

int cf_termination_requested(void)
{
    return stop_requested;
}

void cf_interrupt_reset_termination(void)
{
    stop_requested = 0;
}

void cf_interrupt_sigint_stops(int on)
{
    sigint_stops = on;
}
