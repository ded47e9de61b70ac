/* lock_test: unit tests of cf_lock (the private lock directory, taking a lock, the pid hint),
 * without Lua, in a fresh directory under $TMPDIR (else /tmp) that it removes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_lock.h"
#include "check.h"

static char root[PATH_MAX];

static const char *at(const char *name)
{
    static char buf[4][2 * PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", root, name);
    return p;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The whole file, or "(absent)". */
static const char *slurp(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "rb");
    if (!f)
        return "(absent)";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* rm -rf, without a shell */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void private_dir(void)
{
    char err[PATH_MAX + 512];
    mode_t old = umask(0); /* the mode must not depend on the caller's umask */
    const char *d = at("made");
    CHECK(cf_lock_private_dir(d, err, sizeof err) == 0, "a missing directory: %s", err);
    umask(old);
    struct stat st;
    CHECK(lstat(d, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700,
          "created with mode %04o, expected 0700", (unsigned)(st.st_mode & 07777));
    CHECK(cf_lock_private_dir(d, err, sizeof err) == 0, "an existing private directory: %s", err);

    static const mode_t open_modes[] = {0777, 0770, 0720, 0702, 0701 | 0020};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        chmod(d, open_modes[i]);
        err[0] = 0;
        CHECK(cf_lock_private_dir(d, err, sizeof err) == -1 && strstr(err, d) &&
                  strstr(err, "writable by group or others"),
              "mode %04o accepted or unclear: %s", (unsigned)open_modes[i], err);
    }
    chmod(d, 0750); /* readable by the group is harmless */
    CHECK(cf_lock_private_dir(d, err, sizeof err) == 0, "mode 0750 refused: %s", err);

    const char *link = at("link");
    chmod(d, 0700);
    CHECK(symlink(d, link) == 0, "symlink: %s", strerror(errno));
    err[0] = 0;
    CHECK(cf_lock_private_dir(link, err, sizeof err) == -1 && strstr(err, "a symbolic link"),
          "a symlink to a private directory accepted or unclear: %s", err);

    const char *file = at("file");
    spit(file, "x");
    err[0] = 0;
    CHECK(cf_lock_private_dir(file, err, sizeof err) == -1 && strstr(err, "a regular file"),
          "a file accepted or unclear: %s", err);

    if (geteuid() == 0) {
        const char *theirs = at("theirs");
        mkdir(theirs, 0700);
        CHECK(chown(theirs, 65534, 65534) == 0, "chown: %s", strerror(errno));
        err[0] = 0;
        CHECK(cf_lock_private_dir(theirs, err, sizeof err) == -1 && strstr(err, "uid 65534)") &&
                  strstr(err, "rather than by you, ") && strstr(err, "(uid 0)"),
              "a directory of uid 65534 accepted or unclear: %s", err);
    } else {
        printf("skipped: the other owner's directory (needs root to chown)\n");
    }

    err[0] = 0;
    CHECK(cf_lock_private_dir(at("no/such/parent"), err, sizeof err) == -1 &&
              strstr(err, "cannot create the lock directory"),
          "a directory that cannot be made: %s", err);
}

static void default_path(void)
{
    char path[2 * PATH_MAX], other[2 * PATH_MAX], err[PATH_MAX + 512];
    setenv("XDG_RUNTIME_DIR", root, 1);
    int rc = cf_lock_default_path("/some/where/job.lua", path, sizeof path, err, sizeof err);
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "%s/cfrun/job.lua-", root);
    CHECK(rc == 0 && strncmp(path, want, strlen(want)) == 0 &&
              strcmp(path + strlen(path) - 5, ".lock") == 0,
          "default path %s (%s)", rc == 0 ? path : "-", err);
    rc = cf_lock_default_path("/else/where/job.lua", other, sizeof other, err, sizeof err);
    CHECK(rc == 0 && strcmp(path, other) != 0, "two job.lua in two places share %s", path);

    chmod(at("cfrun"), 0777);
    err[0] = 0;
    CHECK(cf_lock_default_path("/some/where/job.lua", path, sizeof path, err, sizeof err) == -1 &&
              strstr(err, "writable by group or others"),
          "the default path under an open directory: %s", err);
    chmod(at("cfrun"), 0700);
}

static void take(void)
{
    char err[PATH_MAX + 512], want[64];
    int fd, fd2;
    snprintf(want, sizeof want, "%-20ld\n", (long)getpid());

    const char *lock = at("job.lock");
    CHECK(cf_lock_take(lock, &fd, err, sizeof err) == CF_LOCK_TAKEN, "a new lock: %s", err);
    CHECK(strcmp(slurp(lock), want) == 0, "pid hint '%s', expected '%s'", slurp(lock), want);
    struct stat st;
    CHECK(stat(lock, &st) == 0 && (st.st_mode & 0777) == 0600, "a new lock's mode %04o",
          (unsigned)(st.st_mode & 0777));
    /* flock conflicts between two open files, even of one process */
    CHECK(cf_lock_take(lock, &fd2, err, sizeof err) == CF_LOCK_HELD && fd2 == -1,
          "a held lock taken twice");
    close(fd);
    CHECK(cf_lock_take(lock, &fd2, err, sizeof err) == CF_LOCK_TAKEN, "a released lock: %s", err);
    close(fd2);

    static const char *const kept[] = {"notes\nmore notes\n",
                                       "123\nabc\n",
                                       "   \n",
                                       "12x\n",
                                       "123456789012345678901234567890\n",
                                       "42"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        spit(lock, kept[i]);
        CHECK(cf_lock_take(lock, &fd, err, sizeof err) == CF_LOCK_TAKEN, "lock: %s", err);
        CHECK(strcmp(slurp(lock), kept[i]) == 0, "'%s' became '%s'", kept[i], slurp(lock));
        close(fd);
    }
    spit(lock, "4194303\n"); /* an older cfrun's hint */
    CHECK(cf_lock_take(lock, &fd, err, sizeof err) == CF_LOCK_TAKEN, "lock: %s", err);
    CHECK(strcmp(slurp(lock), want) == 0, "older hint became '%s'", slurp(lock));
    close(fd);
    spit(lock, "99999999999999999999\n"); /* a full-width one */
    CHECK(cf_lock_take(lock, &fd, err, sizeof err) == CF_LOCK_TAKEN, "lock: %s", err);
    CHECK(strcmp(slurp(lock), want) == 0, "full-width hint became '%s'", slurp(lock));
    close(fd);

    const char *victim = at("victim"), *link = at("victim.lock");
    spit(victim, "precious\n");
    symlink(victim, link);
    err[0] = 0;
    CHECK(cf_lock_take(link, &fd, err, sizeof err) == CF_LOCK_ERROR && fd == -1 &&
              strstr(err, "a symbolic link, not a regular file"),
          "a symlink lock: %s", err);
    CHECK(strcmp(slurp(victim), "precious\n") == 0, "the victim became '%s'", slurp(victim));

    const char *dangling = at("dangling.lock");
    symlink(at("created"), dangling);
    CHECK(cf_lock_take(dangling, &fd, err, sizeof err) == CF_LOCK_ERROR, "a dangling symlink");
    CHECK(access(at("created"), F_OK) != 0, "a dangling symlink's target was created");

    const char *fifo = at("fifo.lock");
    mkfifo(fifo, 0600);
    alarm(10); /* a blocking open would hang here: fail by SIGALRM instead */
    err[0] = 0;
    CHECK(cf_lock_take(fifo, &fd, err, sizeof err) == CF_LOCK_ERROR && strstr(err, "a FIFO"),
          "a FIFO lock: %s", err);
    alarm(0);

    const char *sub = at("dir.lock");
    mkdir(sub, 0700);
    err[0] = 0;
    CHECK(cf_lock_take(sub, &fd, err, sizeof err) == CF_LOCK_ERROR && strstr(err, "a directory"),
          "a directory lock: %s", err);
    CHECK(dir_is_empty(sub), "something was made in the directory");

    err[0] = 0;
    CHECK(cf_lock_take("/dev/null", &fd, err, sizeof err) == CF_LOCK_ERROR &&
              strstr(err, "a device"),
          "/dev/null as a lock: %s", err);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/lock_test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        printf("cannot make a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    private_dir();
    default_path();
    take();

    if (nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        printf("could not remove %s\n", root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
