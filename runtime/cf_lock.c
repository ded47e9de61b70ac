/* cf_lock: the job lock (see cf_lock.h). Lua-free, so it is unit-tested alone
 * (spec/c/lock_test.c). Must never follow a link, truncate or write over what it did not write. */
#include "cf_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    if (S_ISLNK(m))
        return "a symbolic link";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    if (S_ISREG(m))
        return "a regular file";
    return "of an unknown type";
}

static void owner_name(uid_t uid, char *out, size_t len)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(out, len, "%s (uid %u)", found->pw_name, (unsigned)uid);
    else
        snprintf(out, len, "uid %u", (unsigned)uid);
}

/* As tmux and ssh-agent treat their socket directories: whoever can write the directory can
 * swap a lock for a link to the user's files, or hold it so the job never runs. */
int cf_lock_private_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot use the lock directory %s: %s", dir, strerror(errno));
            return -1;
        }
        /* EEXIST: made by someone else since the lstat; the checks below judge it */
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create the lock directory %s: %s", dir, strerror(errno));
            return -1;
        }
        if (lstat(dir, &st) != 0) {
            snprintf(err, errlen, "cannot use the lock directory %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "the lock directory %s is %s, not a directory; remove it (cfrun then creates "
                 "it, mode 0700) or give the job a --lock PATH",
                 dir, kind_of(st.st_mode));
        return -1;
    }
    if (st.st_uid != geteuid()) { /* geteuid: the owner mkdir gives the directory */
        char found[300], mine[300];
        owner_name(st.st_uid, found, sizeof found);
        owner_name(geteuid(), mine, sizeof mine);
        snprintf(err, errlen,
                 "the lock directory %s is owned by %s rather than by you, %s, so that user "
                 "could replace or hold its locks; remove it (cfrun then creates it, mode 0700) "
                 "or give the job a --lock PATH",
                 dir, found, mine);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "the lock directory %s is writable by group or others (mode %04o), so they "
                 "could replace or hold its locks; run chmod 700 %s, or remove it",
                 dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Named after the script and a hash of its absolute path, so two jobs that share a script
 * name do not share a lock. */
int cf_lock_default_path(const char *script, char *out, size_t len, char *err, size_t errlen)
{
    char dir[PATH_MAX], abs[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (xdg && *xdg)
        n = snprintf(dir, sizeof dir, "%s/cfrun", xdg);
    else
        n = snprintf(dir, sizeof dir, "/tmp/cfrun-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= sizeof dir) {
        snprintf(err, errlen, "the lock directory's path is too long");
        return -1;
    }
    if (cf_lock_private_dir(dir, err, errlen) != 0)
        return -1;
    if (!realpath(script, abs))
        snprintf(abs, sizeof abs, "%s", script);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = abs; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    n = snprintf(out, len, "%s/%s-%016llx.lock", dir, base_name(script), (unsigned long long)h);
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "the lock's path under %s is too long", dir);
        return -1;
    }
    return 0;
}

/* Whether the file holds nothing, or only a pid hint (this version's or an older, shorter
 * one): then rewriting the hint in place loses nothing. */
static int holds_only_a_hint(int fd, off_t size)
{
    if (size == 0)
        return 1;
    if (size > CF_LOCK_PID_LINE)
        return 0;
    char buf[CF_LOCK_PID_LINE];
    if (pread(fd, buf, (size_t)size, 0) != (ssize_t)size || buf[size - 1] != '\n')
        return 0;
    off_t i = 0;
    while (i < size - 1 && buf[i] >= '0' && buf[i] <= '9')
        i++;
    if (i == 0)
        return 0;
    while (i < size - 1 && buf[i] == ' ')
        i++;
    return i == size - 1;
}

int cf_lock_take(const char *path, int *fd, char *err, size_t errlen)
{
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; cleared once fstat said the
     * file is regular */
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (f < 0) {
        int e = errno;
        struct stat st;
        if ((e == ELOOP || e == EISDIR) && lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
            snprintf(err, errlen,
                     "the lock %s is %s, not a regular file; cfrun neither follows nor "
                     "replaces one: give --lock the path of a file",
                     path, kind_of(st.st_mode));
        else
            snprintf(err, errlen, "cannot open the lock %s: %s", path, strerror(e));
        return CF_LOCK_ERROR;
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        snprintf(err, errlen, "cannot use the lock %s: %s", path, strerror(errno));
        close(f);
        return CF_LOCK_ERROR;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen,
                 "the lock %s is %s, not a regular file; give --lock the path of a file", path,
                 kind_of(st.st_mode));
        close(f);
        return CF_LOCK_ERROR;
    }
    int flags = fcntl(f, F_GETFL);
    if (flags == -1 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) == -1) {
        snprintf(err, errlen, "cannot use the lock %s: %s", path, strerror(errno));
        close(f);
        return CF_LOCK_ERROR;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK)
            return CF_LOCK_HELD;
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return CF_LOCK_ERROR;
    }
    /* The pid is only a hint for operators: written in place at a fixed width, so a longer
     * earlier pid is covered without truncating; a file holding anything else is left as
     * it is. */
    if (fstat(f, &st) == 0 && holds_only_a_hint(f, st.st_size)) {
        char line[CF_LOCK_PID_LINE + 1];
        snprintf(line, sizeof line, "%-*ld\n", CF_LOCK_PID_LINE - 1, (long)getpid());
        if (pwrite(f, line, CF_LOCK_PID_LINE, 0) != CF_LOCK_PID_LINE) {
            /* a hint: a full disk must not stop the job */
        }
    }
    *fd = f;
    return CF_LOCK_TAKEN;
}
