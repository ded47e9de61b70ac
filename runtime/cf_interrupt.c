/* cf_interrupt: signal handling shared by scripts, the REPL and the scheduler (see
 * cf_interrupt.h). Must do nothing in the handler but set flags, arm the hook (lua_sethook is
 * async-signal-safe; lua.c relies on it) and, on a second stop signal, _exit. */
#include "cf_interrupt.h"

#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* A signal handler can reach nothing else: these are the process's only mutable globals,
 * as in lua.c (globalL). */
static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t stop_requested; /* the signal that asked the process to stop */
static volatile sig_atomic_t stop_mode;      /* CF_INTERRUPT_STOP */
static lua_State *volatile bound_state;

#define HOOK_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

/* Whether the function running is one of cfrun's own modules (embedded chunks are named
 * "@lua/cloudflare..."), or C: there a stop waits for the call to end cleanly. */
static int in_cfrun(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar))
        return 0;
    return ar->what[0] == 'C' || strncmp(ar->source, "@lua/cloudflare", 15) == 0;
}

static void hook_stop(lua_State *L, lua_Debug *ar)
{
    if (!pending_signal) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (stop_mode && in_cfrun(L, ar))
        return; /* stays armed: raised at the first line of the script's own code */
    lua_sethook(L, NULL, 0, 0);
    pending_signal = 0;
    luaL_error(L, "interrupted!");
}

static void on_signal(int sig)
{
    if (stop_mode && stop_requested) {
        /* the second one: the user insists; the journal already holds every intent */
        _exit(128 + sig);
    }
    pending_signal = sig;
    if (sig == SIGTERM || stop_mode)
        stop_requested = sig;
    lua_State *L = bound_state;
    if (L)
        lua_sethook(L, hook_stop, HOOK_MASK, 1);
}

void cf_interrupt_install(cf_interrupt_mode mode)
{
    stop_mode = mode == CF_INTERRUPT_STOP;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT); /* one handler at a time: it reads and sets the flags */
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

lua_State *cf_interrupt_bind(lua_State *L)
{
    lua_State *prev = bound_state;
    bound_state = L;
    /* a signal that came while no state was bound still stops the code about to run */
    if (L && pending_signal)
        lua_sethook(L, hook_stop, HOOK_MASK, 1);
    return prev;
}

int cf_interrupted(void)
{
    return pending_signal;
}

int cf_interrupt_consume(void)
{
    int sig = pending_signal;
    pending_signal = 0;
    lua_State *L = bound_state;
    if (sig && L)
        lua_sethook(L, NULL, 0, 0);
    return sig;
}

int cf_termination_requested(void)
{
    return stop_requested;
}

/* ---- the Lua side (registered into cloudflare.core) ----------------------------------- */

static void push_signal(lua_State *L, int sig)
{
    if (sig == 0)
        lua_pushnil(L);
    else
        lua_pushstring(L, sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal");
}

/* core.stopping() -> "SIGINT" | "SIGTERM" once a signal asked the process to stop, else nil */
static int cf_core_stopping(lua_State *L)
{
    push_signal(L, stop_requested);
    return 1;
}

/* core.consume_interrupt() -> the pending signal's name, taken (so it is not raised as well:
 * the caller reports it as a result), or nil */
static int cf_core_consume_interrupt(lua_State *L)
{
    push_signal(L, cf_interrupt_consume());
    return 1;
}

const luaL_Reg cf_interrupt_funcs[] = {
    {"stopping", cf_core_stopping}, {"consume_interrupt", cf_core_consume_interrupt}, {NULL, NULL}};
