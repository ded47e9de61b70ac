/* cf_journal: the journal writer behind cloudflare.journal: an append-only file whose every
 * line reaches the disk before append returns (see cf_journal.h). */
#include "cf_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_lua.h"

#define JOURNAL_MT "cloudflare.Journal"

/* An append-only file whose every line reaches the disk before append returns: the record
 * of what was about to be deleted must survive a SIGKILL or a power cut a moment later.
 * Several processes may share one (CFRUN_JOURNAL): each record goes out in one write(2) on
 * an O_APPEND descriptor, under an advisory lock. */
typedef struct cf_journal {
    int fd;       /* -1 once closed */
    int readable; /* opened O_RDWR, so the last byte can be checked */
} cf_journal;

static int cf_journal_close(lua_State *L)
{
    cf_journal *j = luaL_checkudata(L, 1, JOURNAL_MT);
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    return 0;
}

/* Takes (F_WRLCK) or gives back (F_UNLCK) the lock that makes "check the last byte, then
 * append" one step for every cfrun sharing the file. An open file description lock: it goes
 * with the process, so a SIGKILL never leaves it held. Returns 0, or -1 (errno) when the
 * filesystem has no such locks: the append goes on unguarded, still one write. */
static int journal_lock(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET}; /* l_len 0: the whole file */
    while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* 1 when the file ends inside a line (a write torn by a full disk or a SIGKILL), 0 when it is
 * empty or ends with a newline, -1 (errno) on error. */
static int journal_torn(const cf_journal *j)
{
    if (!j->readable)
        return 1; /* cannot tell: a newline too many costs only an empty line */
    struct stat st;
    if (fstat(j->fd, &st) != 0)
        return -1;
    if (st.st_size == 0)
        return 0;
    char last;
    ssize_t n;
    while ((n = pread(j->fd, &last, 1, st.st_size - 1)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -1;
    return n == 1 && last != '\n';
}

/* Writes all of p, resuming after a short write; 0, or -1 (errno: ENOSPC, EFBIG, EIO...). */
static int journal_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) { /* no progress and no reason given: never spin on it */
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* journal:append(line) -> true | nil, message. The line and its newline go out in one
 * write(2) (O_APPEND keeps lines of concurrent writers whole), preceded in that same write by
 * a newline when the file ends with a torn line, so a torn line costs only itself; then
 * fdatasync. A full disk (ENOSPC), a file size limit (EFBIG) or a failed sync gives
 * nil, message: the caller must not send what this was to record. */
static int cf_journal_append(lua_State *L)
{
    cf_journal *j = luaL_checkudata(L, 1, JOURNAL_MT);
    size_t len;
    const char *line = luaL_checklstring(L, 2, &len);
    if (j->fd < 0)
        return luaL_error(L, "attempt to use a closed journal");
    luaL_argcheck(L, memchr(line, '\n', len) == NULL, 2, "a journal line cannot hold a newline");
    /* built before the lock is taken: nothing may raise while it is held */
    lua_pushliteral(L, "\n");
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "\n");
    lua_concat(L, 3); /* stack: journal line "\n"..line.."\n" */
    const char *p = lua_tolstring(L, -1, &len);
    int locked = journal_lock(j->fd, F_WRLCK) == 0;
    int torn = journal_torn(j);
    int failed = torn < 0;
    if (!failed) {
        if (!torn) { /* skip the leading newline */
            p++;
            len--;
        }
        failed = journal_write_all(j->fd, p, len) != 0;
    }
    int saved = errno;
    if (locked)
        journal_lock(j->fd, F_UNLCK);
    if (!failed && fdatasync(j->fd) != 0) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        lua_pushnil(L);
        lua_pushfstring(L, "journal: %s", strerror(saved));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.journal_open(path) -> journal | nil, message. Created 0600: it names the zone's
 * origin addresses. Opened for reading too, to see whether its last line is whole. */
static int core_journal_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    cf_journal *j = lua_newuserdatauv(L, sizeof *j, 0);
    j->fd = -1;
    j->readable = 1;
    luaL_setmetatable(L, JOURNAL_MT);
    j->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0 && errno == EACCES) { /* write-only for us: append without the check */
        j->readable = 0;
        j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    }
    if (j->fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open journal %s: %s", path, strerror(errno));
        return 2;
    }
    return 1;
}

const luaL_Reg cf_journal_funcs[] = {{"journal_open", core_journal_open}, {NULL, NULL}};

void cf_journal_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"append", cf_journal_append}, {"close", cf_journal_close}, {NULL, NULL}};
    cf_new_class(L, JOURNAL_MT, methods, cf_journal_close, cf_journal_close, NULL);
}
