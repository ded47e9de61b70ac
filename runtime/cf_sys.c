/* cf_sys: clock, signal-aware sleep and small system bindings (see cf_sys.h). */
#include "cf_sys.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_interrupt.h"

double cf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cf_timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

int cf_sleep_until(double until)
{
    for (;;) {
        int sig = cf_termination_requested();
        if (sig)
            return sig;
        double left = until - cf_now();
        if (left <= 0)
            return 0;
        if (left > 0.1)
            left = 0.1; /* wake often enough to notice a signal */
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* core.now() -> seconds on the monotonic clock (pacing, backoff and durations) */
static int core_now(lua_State *L)
{
    lua_pushnumber(L, cf_now());
    return 1;
}

/* core.timestamp() -> "2026-11-28T01:02:03.456Z" */
static int core_timestamp(lua_State *L)
{
    char out[40];
    cf_timestamp(out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

/* core.exit_with_parent(): ask the kernel to SIGTERM this process when its parent dies,
 * so a fake API server started by a test never outlives it. */
static int core_exit_with_parent(lua_State *L)
{
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        return luaL_error(L, "prctl(PR_SET_PDEATHSIG) failed");
    if (parent == 1) /* the parent is already gone */
        raise(SIGTERM);
    return 0;
}

/* core.new_table(narr, nrec) -> a table with room for narr list and nrec other entries: a bulk
 * call's bookkeeping holds one entry per IP, and growing there by rehashing costs more than
 * the entries themselves */
static int core_new_table(lua_State *L)
{
    lua_Integer narr = luaL_optinteger(L, 1, 0), nrec = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, narr >= 0 && narr <= INT_MAX, 1, "out of range");
    luaL_argcheck(L, nrec >= 0 && nrec <= INT_MAX, 2, "out of range");
    lua_createtable(L, (int)narr, (int)nrec);
    return 1;
}

/* core.isatty(fd) -> boolean (progress lines and questions are for terminals only) */
static int core_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* core.term_width(fd) -> columns of the terminal at fd, or nil (not a terminal, or it does not
 * say): a progress line wider than the terminal wraps, and "\r" then redraws only its last
 * row */
static int core_term_width(lua_State *L)
{
    struct winsize ws;
    if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
        return 0;
    lua_pushinteger(L, ws.ws_col);
    return 1;
}

/* core.file_mode(path) -> permission bits | nil, message (for the token file warning) */
static int core_file_mode(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, st.st_mode & 07777);
    return 1;
}

const luaL_Reg cf_sys_funcs[] = {{"now", core_now},
                                 {"timestamp", core_timestamp},
                                 {"exit_with_parent", core_exit_with_parent},
                                 {"new_table", core_new_table},
                                 {"isatty", core_isatty},
                                 {"term_width", core_term_width},
                                 {"file_mode", core_file_mode},
                                 {NULL, NULL}};
