/* cf_sandbox: the fake API child process behind --sandbox (see cf_sandbox.h).
 * Must never leave the child running: a handle stops it, and PR_SET_PDEATHSIG covers the
 * exits that skip Lua's cleanup (os.exit, a crash, SIGKILL). */
#include "cf_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#define SANDBOX_MT       "cfrun.Sandbox"
#define START_TIMEOUT_MS 10000

extern char **environ;

typedef struct cf_sandbox {
    pid_t pid; /* -1 when stopped */
    int fd;    /* read end of the child's stdout, kept open so late output cannot SIGPIPE it */
} cf_sandbox;

static int cf_sandbox_stop(lua_State *L)
{
    cf_sandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = -1;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    return 0;
}

/* Reads the child's "LISTENING <host> <port>" line. Returns the port, or -1. */
static int read_port(int fd, char *line, size_t cap)
{
    size_t len = 0;
    while (len < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, START_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = read(fd, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    const char *sp = strrchr(line, ' ');
    if (strncmp(line, "LISTENING ", 10) != 0 || sp == NULL)
        return -1;
    char *end;
    long port = strtol(sp + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    return (int)port;
}

/* Every CLOUDFLARE_* variable goes, so a real token in the environment can never reach the
 * sandbox, nor a sandbox script reach the real API. */
static void clear_cloudflare_env(lua_State *L)
{
    lua_newtable(L);
    int n = 0;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && strncmp(*e, "CLOUDFLARE_", 11) == 0) {
            lua_pushlstring(L, *e, (size_t)(eq - *e));
            lua_rawseti(L, -2, ++n);
        }
    }
    for (int i = 1; i <= n; i++) { /* unsetenv after the scan: it rewrites environ */
        lua_rawgeti(L, -1, i);
        unsetenv(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

int cf_sandbox_start(lua_State *L)
{
    unsigned char rnd[16];
    char token[sizeof rnd * 2 + 16] = "sandbox-";
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return luaL_error(L, "sandbox: cannot read random bytes: %s", strerror(errno));
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(token + 8 + 2 * i, 3, "%02x", rnd[i]);

    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return luaL_error(L, "sandbox: cannot find the cfrun executable: %s", strerror(errno));
    self[sl] = '\0';

    cf_sandbox *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->pid = -1;
    s->fd = -1;
    if (luaL_newmetatable(L, SANDBOX_MT)) {
        lua_pushcfunction(L, cf_sandbox_stop);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, cf_sandbox_stop);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return luaL_error(L, "sandbox: pipe: %s", strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return luaL_error(L, "sandbox: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        execl(self, "cfrun", "--fake-api", "--sandbox", "--quiet", "--host", "127.0.0.1", "--port",
              "0", "--token", token, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    s->fd = pfd[0];

    char line[256];
    int port = read_port(s->fd, line, sizeof line);
    if (port < 0) {
        lua_pushcfunction(L, cf_sandbox_stop);
        lua_pushvalue(L, -2);
        lua_call(L, 1, 0);
        return luaL_error(L, "sandbox: the fake API server did not start (run "
                             "'cfrun --fake-api --sandbox' to see why)");
    }
    clear_cloudflare_env(L);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/client/v4", port);
    setenv("CLOUDFLARE_BASE_URL", url, 1);
    setenv("CLOUDFLARE_API_TOKEN", token, 1);
    setenv("CFRUN_SANDBOX_ZONE", CF_SANDBOX_ZONE, 1);
    return 1;
}
