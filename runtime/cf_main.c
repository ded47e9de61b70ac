/* cf_main: the cfrun command: arguments, running scripts, --sandbox and --fake-api, exit
 * statuses; modelled on lua.c. Must not implement API behaviour: that is the modules' job. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_interrupt.h"
#include "cf_lua.h"
#include "cf_sandbox.h"

#define EXIT_SCRIPT_ERROR 1
#define EXIT_USAGE        2
#define TRY_HELP          "Try 'cfrun --help' for more information.\n"

static const char *const progname = "cfrun";

static void print_usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] [script [args]]\n"
            "Run Lua scripts that automate the Cloudflare API.\n"
            "\n"
            "  -e chunk        run the Lua chunk (repeatable, before the script)\n"
            "  -l name         require library 'name' into global 'name'\n"
            "  --sandbox       start the built-in fake Cloudflare API on 127.0.0.1 and point\n"
            "                  the default client at it (zone in $CFRUN_SANDBOX_ZONE)\n"
            "  --fake-api ...  run only the fake Cloudflare API server (for tests and demos);\n"
            "                  'cfrun --fake-api --help' lists its options\n"
            "  -v, --version   print version information and exit\n"
            "  -h, --help      print this help and exit\n"
            "  --              stop handling options\n"
            "  -               run the script from standard input\n"
            "\n"
            "Environment: CLOUDFLARE_API_TOKEN, or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY;\n"
            "CLOUDFLARE_BASE_URL (default https://api.cloudflare.com/client/v4).\n"
            "Exit status: 0 success, 1 uncaught script error, 2 usage error;\n"
            "a script's own os.exit(n) wins.\n",
            progname);
}

static void print_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("cfrun %s (%s, libcurl %s)\n", CF_VERSION, LUA_RELEASE, cv->version);
}

static void message(const char *msg)
{
    fprintf(stderr, "%s: %s\n", progname, msg);
    fflush(stderr);
}

/* Reports a failed status with the message on the stack; returns the status. */
static int report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        message(msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

typedef struct cf_opts {
    int script; /* index of the script in argv, 0 if none */
    int has_e;  /* -e or -l given */
    int sandbox;
    int fake_api; /* index of --fake-api: the rest of argv is the server's */
    int version, help;
} cf_opts;

/* Returns 0, or -1 after printing a usage error. */
static int collect_args(char **argv, cf_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; argv[i]; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            o->script = i;
            return 0;
        }
        if (strcmp(a, "--") == 0) {
            o->script = argv[i + 1] ? i + 1 : 0;
            return 0;
        }
        if (strcmp(a, "--sandbox") == 0) {
            o->sandbox = 1;
        } else if (strcmp(a, "--fake-api") == 0) {
            o->fake_api = i;
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            o->version = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = 1;
        } else if ((a[1] == 'e' || a[1] == 'l') && a[0] == '-') {
            o->has_e = 1;
            if (a[2] == '\0' && (argv[i + 1] == NULL || argv[i + 1][0] == '-')) {
                fprintf(stderr, "%s: '%s' needs an argument\n%s", progname, a, TRY_HELP);
                return -1;
            }
            if (a[2] == '\0')
                i++;
        } else {
            fprintf(stderr, "%s: unrecognized option '%s'\n%s", progname, a, TRY_HELP);
            return -1;
        }
    }
    return 0;
}

/* arg table as lua.c builds it: script name at 0, its arguments at 1.., options below 0. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
    int narg = argc - (script + 1);
    lua_createtable(L, narg > 0 ? narg : 0, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int do_chunk(lua_State *L, int status)
{
    if (status == LUA_OK)
        status = cf_pcall(L, 0, 0);
    return report(L, status);
}

static int do_string(lua_State *L, const char *s, const char *name)
{
    return do_chunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int do_library(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int status = cf_pcall(L, 1, 1);
    if (status == LUA_OK)
        lua_setglobal(L, name);
    return report(L, status);
}

/* Runs -e and -l in order, as lua.c does. */
static int run_args(lua_State *L, char **argv, int upto)
{
    for (int i = 1; i < upto; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
            continue;
        const char *extra = a[2] ? a + 2 : argv[++i];
        int status = a[1] == 'e' ? do_string(L, extra, "=(command line)") : do_library(L, extra);
        if (status != LUA_OK)
            return status;
    }
    return LUA_OK;
}

static int run_script(lua_State *L, char **argv, int script, int argc)
{
    const char *fname = argv[script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
        fname = NULL; /* stdin */
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = argc - script - 1;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (int i = script + 1; i < argc; i++)
            lua_pushstring(L, argv[i]);
        status = cf_pcall(L, n, 0);
    }
    return report(L, status);
}

static int run_fake_api(lua_State *L, char **argv, int first, int argc)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cloudflare.fake_api");
    int status = cf_pcall(L, 1, 1);
    if (status == LUA_OK) {
        lua_getfield(L, -1, "main");
        lua_createtable(L, argc - first, 0);
        for (int i = first; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i - first + 1);
        }
        status = cf_pcall(L, 1, 0);
    }
    return report(L, status);
}

/* Everything runs inside one protected call, so even start-up failures are reported. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    cf_opts o;
    if (collect_args(argv, &o) != 0) {
        lua_pushinteger(L, EXIT_USAGE);
        return 1;
    }
    if (o.help) {
        print_usage(stdout);
        lua_pushinteger(L, 0);
        return 1;
    }
    if (o.version) {
        print_version();
        lua_pushinteger(L, 0);
        return 1;
    }
    if (o.fake_api && o.sandbox) {
        message("--sandbox and --fake-api cannot be combined");
        lua_pushinteger(L, EXIT_USAGE);
        return 1;
    }

    luaL_checkversion(L);
    cf_interrupt_install(L);
    luaL_openlibs(L);
    cf_lua_preload(L);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);

    if (o.fake_api) {
        int status = run_fake_api(L, argv, o.fake_api + 1, argc);
        lua_pushinteger(L, status == LUA_OK ? 0 : EXIT_SCRIPT_ERROR);
        return 1;
    }

    create_arg_table(L, argv, argc, o.script);
    if (o.sandbox) /* stack: sandbox handle, closed by lua_close at the latest */
        cf_sandbox_start(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cloudflare");
    if (report(L, cf_pcall(L, 1, 1)) != LUA_OK) {
        lua_pushinteger(L, EXIT_SCRIPT_ERROR);
        return 1;
    }
    lua_setglobal(L, "cloudflare");

    int status = run_args(L, argv, o.script ? o.script : argc);
    if (status == LUA_OK && o.script)
        status = run_script(L, argv, o.script, argc);
    else if (status == LUA_OK && !o.has_e) {
        if (isatty(STDIN_FILENO)) {
            message("no script given; the interactive REPL is not available yet "
                    "(see 'cfrun --help')");
            lua_pushinteger(L, EXIT_USAGE);
            return 1;
        }
        status = do_chunk(L, luaL_loadfile(L, NULL));
    }
    lua_pushinteger(L, status == LUA_OK ? 0 : EXIT_SCRIPT_ERROR);
    return 1;
}

int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        message("cannot initialise libcurl");
        return EXIT_SCRIPT_ERROR;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        message("cannot create Lua state: not enough memory");
        return EXIT_SCRIPT_ERROR;
    }
    lua_gc(L, LUA_GCSTOP); /* no collections while the libraries load */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code = status == LUA_OK ? (int)lua_tointeger(L, -1) : EXIT_SCRIPT_ERROR;
    report(L, status);
    lua_close(L);
    curl_global_cleanup();
    return code;
}
