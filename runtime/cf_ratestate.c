/* cf_ratestate: what a rate budget shared by several processes needs from the system (see
 * cf_ratestate.h). A state file is read and rewritten whole under an exclusive flock, so one
 * process at a time sees and changes the budget; the lock dies with its process, so a
 * process killed while holding it stops no one. A torn write (a kill mid-pwrite) leaves text
 * that does not decode, which the Lua side rebuilds with a warning. */
#include "cf_ratestate.h"

#include "cf_lock.h"
#include "cf_lua.h"
#include "cf_sha256.h"
#include "cf_sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RATE_FILE_MT "cfrun.RateFile"
#define REDIS_MT     "cfrun.Redis"
#define MAX_STATE    (1 << 20) /* a budget's state is a few KB; more is not ours */

typedef struct {
    int fd;
    int locked;
} RateFile;

/* core.rate_dir() -> dir | nil, message: $XDG_RUNTIME_DIR/cfrun, else /tmp/cfrun-<uid> (the
 * lock directory's), created 0700 and checked as the lock directory is. */
static int cf_core_rate_dir(lua_State *L)
{
    char dir[PATH_MAX], err[1024];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = (xdg && *xdg) ? snprintf(dir, sizeof dir, "%s/cfrun", xdg)
                          : snprintf(dir, sizeof dir, "/tmp/cfrun-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= sizeof dir) {
        luaL_pushfail(L);
        lua_pushstring(L, "the rate budget directory's path is too long");
        return 2;
    }
    if (cf_lock_private_dir(dir, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, dir);
    return 1;
}

/* Whether dir/.prune-<prefix> says a prune ran less than `every` seconds ago; else marks one
 * now (creating the stamp, or setting its time). Two processes may both prune: harmless. */
static int pruned_lately(int dfd, const char *prefix, lua_Number every, time_t now)
{
    char stamp[PATH_MAX];
    struct stat st;
    if (snprintf(stamp, sizeof stamp, ".prune-%s", prefix) >= (int)sizeof stamp)
        return 0;
    if (fstatat(dfd, stamp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        (lua_Number)(now - st.st_mtime) < every && st.st_mtime <= now)
        return 1;
    int fd = openat(dfd, stamp, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
    return 0;
}

/* core.rate_prune(dir, prefix, max_age[, every]) -> n: removes the files of dir named prefix*
 * that nobody wrote for max_age seconds (budgets of credentials or fakes gone); returns how
 * many. With `every`, at most one prune per `every` seconds (a stamp file in dir says when the
 * last one ran): scanning a directory of hundreds of budgets cost milliseconds at every start. */
static int cf_core_rate_prune(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    size_t plen;
    const char *prefix = luaL_checklstring(L, 2, &plen);
    lua_Number max_age = luaL_checknumber(L, 3);
    lua_Number every = luaL_optnumber(L, 4, 0);
    DIR *d = opendir(dir);
    lua_Integer removed = 0;
    if (d && every > 0 && pruned_lately(dirfd(d), prefix, every, time(NULL))) {
        closedir(d);
        d = NULL;
    }
    if (d) {
        time_t now = time(NULL);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            struct stat st;
            if (strncmp(e->d_name, prefix, plen) != 0)
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            if ((lua_Number)(now - st.st_mtime) > max_age && unlinkat(dirfd(d), e->d_name, 0) == 0)
                removed++;
        }
        closedir(d);
    }
    lua_pushinteger(L, removed);
    return 1;
}

/* core.rate_file(path) -> file | nil, message: the state file, created 0600; refused unless it
 * is a regular file of this user that no one else may read or write. */
static int cf_core_rate_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    struct stat st;
    if (fd < 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "cannot open the rate budget file %s: %s", path, strerror(errno));
        return 2;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0) {
        close(fd);
        luaL_pushfail(L);
        lua_pushfstring(L,
                        "the rate budget file %s is not a private regular file of yours "
                        "(mode 0600); remove it, and cfrun creates it again",
                        path);
        return 2;
    }
    RateFile *f = lua_newuserdatauv(L, sizeof *f, 0);
    f->fd = fd;
    f->locked = 0;
    luaL_setmetatable(L, RATE_FILE_MT);
    return 1;
}

static RateFile *check_file(lua_State *L)
{
    RateFile *f = luaL_checkudata(L, 1, RATE_FILE_MT);
    if (f->fd < 0)
        luaL_error(L, "rate budget file: used after close");
    return f;
}

/* file:lock([timeout]) -> text | nil, message: takes the exclusive lock (waiting at most
 * timeout seconds, default 5: a process stopped while holding it must not hang the others
 * forever) and returns the whole file. */
static int rate_file_lock(lua_State *L)
{
    RateFile *f = check_file(L);
    lua_Number timeout = luaL_optnumber(L, 2, 5);
    struct timespec nap = {0, 500000};
    double deadline = cf_now() + timeout;
    while (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            luaL_pushfail(L);
            lua_pushfstring(L, "cannot lock the rate budget file: %s", strerror(errno));
            return 2;
        }
        if (cf_now() > deadline) {
            luaL_pushfail(L);
            lua_pushstring(L, "the rate budget file stayed locked by another process");
            return 2;
        }
        nanosleep(&nap, NULL);
    }
    f->locked = 1;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    off_t off = 0;
    int bad = 0;
    for (;;) {
        char *p = luaL_prepbuffsize(&b, 8192);
        ssize_t n = pread(f->fd, p, 8192, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n < 0 || off + n > MAX_STATE) { /* unreadable, or too big to be ours: rebuilt */
            bad = 1;
            break;
        }
        luaL_addsize(&b, (size_t)n);
        off += n;
    }
    luaL_pushresult(&b);
    if (bad) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    return 1;
}

/* file:commit(text) -> true | nil, message: writes text as the whole file and unlocks. */
static int rate_file_commit(lua_State *L)
{
    RateFile *f = check_file(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    if (!f->locked)
        return luaL_error(L, "rate budget file: commit without lock");
    size_t done = 0;
    int ok = 1;
    while (done < len) {
        ssize_t n = pwrite(f->fd, s + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = 0;
            break;
        }
        done += (size_t)n;
    }
    if (ok && ftruncate(f->fd, (off_t)len) != 0)
        ok = 0;
    int saved = errno;
    flock(f->fd, LOCK_UN);
    f->locked = 0;
    if (!ok) {
        luaL_pushfail(L);
        lua_pushfstring(L, "cannot write the rate budget file: %s", strerror(saved));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* file:unlock(): gives the lock back without writing. */
static int rate_file_unlock(lua_State *L)
{
    RateFile *f = check_file(L);
    if (f->locked)
        flock(f->fd, LOCK_UN);
    f->locked = 0;
    return 0;
}

/* file:close(): idempotent; also __gc and __close. Closing releases the lock. */
static int rate_file_close(lua_State *L)
{
    RateFile *f = luaL_checkudata(L, 1, RATE_FILE_MT);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->locked = 0;
    return 0;
}

/* core.sha256(s) -> 64 hex digits: names a budget by its credential without holding it. */
static int cf_core_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uint8_t md[CF_SHA256_LEN];
    cf_sha256(s, len, md);
    char hex[2 * CF_SHA256_LEN + 1];
    for (size_t i = 0; i < CF_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    lua_pushlstring(L, hex, 2 * (size_t)CF_SHA256_LEN);
    return 1;
}

/* core.pid_alive(pid) -> boolean: whether a process of that id exists (a reservation of a
 * process that died can be dropped at once). */
static int cf_core_pid_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    lua_pushboolean(L, pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM));
    return 1;
}

/* core.pid() -> this process's id (the owner of its reservations in a state file). */
static int cf_core_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* ------------------------------------------------------------------------------------------
 * Redis: a blocking connection with a timeout on every command (the budget's requests are a
 * few per API request, each a round trip of a fraction of a millisecond on a LAN). */

typedef struct {
    redisContext *c;
} Redis;

/* core.redis_connect(host, port, timeout) -> conn | nil, message */
static int cf_core_redis_connect(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    lua_Number timeout = luaL_optnumber(L, 3, 0.5);
    time_t secs = (time_t)timeout;
    struct timeval tv = {secs, (suseconds_t)((timeout - (lua_Number)secs) * 1e6)};
    redisContext *c = redisConnectWithTimeout(host, (int)port, tv);
    if (c == NULL || c->err) {
        luaL_pushfail(L);
        lua_pushfstring(L, "cannot connect to Redis at %s:%d: %s", host, (int)port,
                        c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return 2;
    }
    redisSetTimeout(c, tv);
    Redis *r = lua_newuserdatauv(L, sizeof *r, 0);
    r->c = c;
    luaL_setmetatable(L, REDIS_MT);
    return 1;
}

/* Pushes a reply as Lua sees it: a string (bulk or status), an integer, false (nil reply), a
 * list (array), or for an error reply nil and its message. Returns the values pushed. */
static int push_reply(lua_State *L, const redisReply *r, int depth)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        return 1;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        return 1;
    case REDIS_REPLY_NIL:
        lua_pushboolean(L, 0);
        return 1;
    case REDIS_REPLY_ERROR:
        if (depth > 0) {
            lua_pushlstring(L, r->str, r->len);
            return 1;
        }
        luaL_pushfail(L);
        lua_pushfstring(L, "redis: %s", r->str);
        return 2;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)r->elements, 0);
        for (size_t i = 0; i < r->elements && depth < 8; i++) {
            push_reply(L, r->element[i], depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    default:
        luaL_pushfail(L);
        lua_pushliteral(L, "redis: unexpected reply type");
        return 2;
    }
}

/* conn:call(arg, ...) -> reply | nil, message. A failed connection stays failed (message
 * "connection lost"): the Lua side connects again. */
static int redis_call(lua_State *L)
{
    Redis *r = luaL_checkudata(L, 1, REDIS_MT);
    int argc = lua_gettop(L) - 1;
    if (r->c == NULL || r->c->err) {
        luaL_pushfail(L);
        lua_pushfstring(L, "redis: connection lost: %s", r->c ? r->c->errstr : "closed");
        return 2;
    }
    if (argc < 1 || argc > 64)
        return luaL_error(L, "redis call: expected 1 to 64 arguments");
    const char *argv[64];
    size_t lens[64];
    for (int i = 0; i < argc; i++)
        argv[i] = luaL_checklstring(L, i + 2, &lens[i]);
    redisReply *reply = redisCommandArgv(r->c, argc, argv, lens);
    if (reply == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "redis: %s", r->c->errstr[0] ? r->c->errstr : "no reply");
        return 2;
    }
    int n = push_reply(L, reply, 0);
    freeReplyObject(reply);
    return n;
}

/* conn:close(): idempotent; also __gc and __close. */
static int redis_close(lua_State *L)
{
    Redis *r = luaL_checkudata(L, 1, REDIS_MT);
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    return 0;
}

const luaL_Reg cf_ratestate_funcs[] = {
    {"rate_dir", cf_core_rate_dir},           {"rate_file", cf_core_rate_file},
    {"rate_prune", cf_core_rate_prune},       {"sha256", cf_core_sha256},
    {"pid_alive", cf_core_pid_alive},         {"pid", cf_core_pid},
    {"redis_connect", cf_core_redis_connect}, {NULL, NULL}};

void cf_ratestate_open(lua_State *L)
{
    static const luaL_Reg file_methods[] = {{"lock", rate_file_lock},
                                            {"commit", rate_file_commit},
                                            {"unlock", rate_file_unlock},
                                            {"close", rate_file_close},
                                            {NULL, NULL}};
    static const luaL_Reg redis_methods[] = {
        {"call", redis_call}, {"close", redis_close}, {NULL, NULL}};
    cf_new_class(L, RATE_FILE_MT, file_methods, rate_file_close, rate_file_close, NULL);
    cf_new_class(L, REDIS_MT, redis_methods, redis_close, redis_close, NULL);
}
