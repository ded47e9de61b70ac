/* cf_main: the cfrun command: arguments, running scripts, --sandbox and --fake-api, exit
 * statuses; modelled on lua.c. Must not implement API behaviour: that is the modules' job. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_interrupt.h"
#include "cf_lua.h"
#include "cf_repl.h"
#include "cf_sandbox.h"
#include "cf_sched.h"

#define TRY_HELP "Try 'cfrun --help' for more information.\n"

static const char *const progname = "cfrun";

static void print_usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] [script [args]]\n"
            "Run Lua scripts that automate the Cloudflare API.\n"
            "\n"
            "  -e chunk        run the Lua chunk (repeatable, before the script)\n"
            "  -l name         require library 'name' into global 'name'\n"
            "  -i              enter the interactive REPL after running the script\n"
            "  --job           run the script once as a job: lock, JSON log line, job statuses\n"
            "  --every DUR     run it every DUR (30s, 15m, 1h, 1h30m), each run in a fresh state\n"
            "  --cron 'M H DOM MON DOW'  run it on a cron schedule (local time)\n"
            "  --jitter DUR    wait a random time up to DUR before each scheduled run\n"
            "  --max-failures N  stop a schedule after N consecutive failed runs\n"
            "  --lock PATH     the job's lock file (default: derived from the script)\n"
            "  --log-file PATH append the per-run JSON log lines there (default: stderr)\n"
            "  --quiet         no progress line\n"
            "  --json          print the values the script and -e chunks return as JSON, one\n"
            "                  document a line, or a failed run's error (with any partial\n"
            "                  result); sets CFRUN_FORMAT=json, the scripts' --format default\n"
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
            "Exit status: 0 success, 1 uncaught script error, 2 usage error, 130/143 stopped\n"
            "by SIGINT/SIGTERM (a second one ends cfrun at once); with --job/--every/--cron,\n"
            "per run: 3 some IPs failed, 4 incomplete (IPs pending or unsent), 5 lock held.\n"
            "A script's own os.exit(n) wins, except over a signal.\n",
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
    int code;
    if (status != LUA_OK && cf_lua_exit_code(L, -1, &code))
        return status; /* a trapped os.exit: not an error; the runner reads it */
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
    int interactive; /* -i */
    int quiet, json;
    cf_sched sched; /* with `scheduled` set: --job, --every or --cron */
    int scheduled;
} cf_opts;

/* Options that take a value, so run_args can skip the value. */
static const char *const value_options[] = {"--every", "--cron",     "--jitter", "--max-failures",
                                            "--lock",  "--log-file", NULL};

static int takes_value(const char *a)
{
    for (int i = 0; value_options[i]; i++)
        if (strcmp(a, value_options[i]) == 0)
            return 1;
    return 0;
}

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "%s: ", progname);
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n%s", TRY_HELP);
    return -1;
}

/* The scheduling options; returns 0, or -1 after a usage error. */
static int schedule_option(cf_opts *o, const char *a, const char *v)
{
    char err[160];
    if (!v)
        return usage_error("'%s' needs a value", a);
    if (strcmp(a, "--every") == 0) {
        if (o->scheduled && o->sched.mode != CF_SCHED_EVERY)
            return usage_error("%s: choose one of --job, --every and --cron", a);
        o->sched.every = cf_duration_parse(v);
        if (o->sched.every <= 0)
            return usage_error("--every: bad duration '%s' (e.g. 30s, 15m, 1h, 1h30m)", v);
        if (o->sched.every < 1) /* a typo such as 1e-3s must not hammer the API */
            return usage_error("--every: '%s' is less than the minimum of 1s", v);
        o->sched.mode = CF_SCHED_EVERY;
        o->scheduled = 1;
    } else if (strcmp(a, "--cron") == 0) {
        if (o->scheduled && o->sched.mode != CF_SCHED_CRON)
            return usage_error("%s: choose one of --job, --every and --cron", a);
        if (cf_cron_parse(v, &o->sched.cron, err, sizeof err) != 0)
            return usage_error("--cron: %s", err);
        o->sched.mode = CF_SCHED_CRON;
        o->scheduled = 1;
    } else if (strcmp(a, "--jitter") == 0) {
        o->sched.jitter = cf_duration_parse(v);
        if (o->sched.jitter <= 0)
            return usage_error("--jitter: bad duration '%s'", v);
    } else if (strcmp(a, "--max-failures") == 0) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 1000000)
            return usage_error("--max-failures: expected a whole number >= 1, got '%s'", v);
        o->sched.max_failures = (int)n;
    } else if (strcmp(a, "--lock") == 0) {
        o->sched.lock_path = v;
    } else if (strcmp(a, "--log-file") == 0) {
        o->sched.log_path = v;
    }
    return 0;
}

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
        } else if (strcmp(a, "-i") == 0) {
            o->interactive = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--job") == 0) {
            if (o->scheduled && o->sched.mode != CF_SCHED_JOB)
                return usage_error("%s: choose one of --job, --every and --cron", a);
            o->sched.mode = CF_SCHED_JOB;
            o->scheduled = 1;
        } else if (takes_value(a)) {
            if (schedule_option(o, a, argv[i + 1]) != 0)
                return -1;
            i++;
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

/* Pushes cloudflare.run's function `name`: the run policy lives there. */
static void push_run(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cloudflare.run");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

/* Runs the loaded chunk through cloudflare.run.chunk, which also waits for the tasks it
 * spawned (cloudflare.spawn) and, with --json, prints its values or its error as JSON. */
static int do_chunk(lua_State *L, int status, int json)
{
    if (status == LUA_OK) { /* stack: chunk */
        push_run(L, "chunk");
        lua_insert(L, -2); /* stack: run.chunk chunk */
        lua_createtable(L, 0, 1);
        lua_pushboolean(L, json);
        lua_setfield(L, -2, "json"); /* stack: run.chunk chunk opts */
        status = cf_pcall(L, 2, 2);
        if (status == LUA_OK) { /* stack: ok err */
            status = lua_toboolean(L, -2) ? LUA_OK : LUA_ERRRUN;
            lua_remove(L, -2);
            if (status == LUA_OK)
                lua_pop(L, 1);
        }
    }
    return report(L, status);
}

static int do_string(lua_State *L, const char *s, const char *name, int json)
{
    return do_chunk(L, luaL_loadbuffer(L, s, strlen(s), name), json);
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

/* Runs -e and -l in order, as lua.c does; json: --json applies to the -e chunks. */
static int run_args(lua_State *L, char **argv, int upto, int json)
{
    for (int i = 1; i < upto; i++) {
        const char *a = argv[i];
        if (takes_value(a)) {
            i++;
            continue;
        }
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
            continue;
        const char *extra = a[2] ? a + 2 : argv[++i];
        int status =
            a[1] == 'e' ? do_string(L, extra, "=(command line)", json) : do_library(L, extra);
        if (status != LUA_OK)
            return status;
    }
    return LUA_OK;
}

/* Loads the script (stdin for "-"); leaves the chunk, or the message, on the stack. */
static int load_script(lua_State *L, char **argv, int script)
{
    const char *fname = argv[script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
        fname = NULL; /* stdin */
    return luaL_loadfile(L, fname);
}

/* Pushes the script's arguments; returns how many. */
static int push_script_args(lua_State *L, char **argv, int script, int argc)
{
    int n = argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = script + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return n;
}

/* A plain run: cloudflare.run.script(chunk, {json=}, args...); returns the exit status. */
static int run_script(lua_State *L, char **argv, int script, int argc, int json)
{
    if (load_script(L, argv, script) != LUA_OK) {
        report(L, LUA_ERRSYNTAX);
        return CF_EXIT_SCRIPT;
    }
    push_run(L, "script"); /* stack: chunk script */
    lua_insert(L, -2);     /* stack: script chunk */
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, json);
    lua_setfield(L, -2, "json"); /* stack: script chunk opts */
    int n = push_script_args(L, argv, script, argc);
    if (report(L, cf_pcall(L, n + 2, 1)) != LUA_OK)
        return CF_EXIT_SCRIPT;
    int code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return code;
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

/* What every state running a script gets: libraries, modules, signal handling, `arg`,
 * the `cloudflare` global and the output flags. Returns a Lua status (error reported). */
static int setup_state(lua_State *L, const cf_opts *o, char **argv, int argc)
{
    luaL_checkversion(L);
    luaL_openlibs(L);
    cf_lua_preload(L);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    create_arg_table(L, argv, argc, o->script);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cloudflare.core");
    if (report(L, cf_pcall(L, 1, 1)) != LUA_OK)
        return LUA_ERRRUN;
    lua_pushboolean(L, o->quiet);
    lua_setfield(L, -2, "quiet");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cloudflare");
    if (report(L, cf_pcall(L, 1, 1)) != LUA_OK)
        return LUA_ERRRUN;
    lua_setglobal(L, "cloudflare");
    return LUA_OK;
}

typedef struct run_ctx {
    const cf_opts *o;
    char **argv;
    int argc;
    cf_run_result *out;
} run_ctx;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* One scheduled run, inside its own protected call on a fresh state: -e and -l, then
 * cloudflare.run.job({job=, json=, chunk= | error=}, args...) -> status, log line. */
static int prun(lua_State *L)
{
    run_ctx *rc = lua_touserdata(L, 1);
    cf_run_result *out = rc->out;
    if (setup_state(L, rc->o, rc->argv, rc->argc) != LUA_OK) {
        out->status = CF_EXIT_SCRIPT;
        snprintf(out->error, sizeof out->error, "the runtime failed to start");
        return 0;
    }
    cf_lua_trap_exit(L);
    int script = rc->o->script;
    int status = run_args(L, rc->argv, script, rc->o->json);
    int code;
    if (status != LUA_OK && !cf_lua_exit_code(L, -1, &code))
        lua_pushliteral(L, "a -e or -l option failed (see above)");
    else if (status == LUA_OK)
        status = load_script(L, rc->argv, script);
    /* stack: chunk | error */
    push_run(L, "job");
    lua_insert(L, -2); /* stack: job chunk|error */
    lua_createtable(L, 0, 3);
    lua_insert(L, -2);
    lua_setfield(L, -2, status == LUA_OK ? "chunk" : "error"); /* stack: job opts */
    lua_pushstring(L, base_name(rc->argv[script]));
    lua_setfield(L, -2, "job");
    lua_pushboolean(L, rc->o->json);
    lua_setfield(L, -2, "json");
    int n = push_script_args(L, rc->argv, script, rc->argc);
    if (cf_pcall(L, n + 1, 2) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        snprintf(out->error, sizeof out->error, "%s", msg ? msg : "(error object)");
        message(out->error);
        out->status = CF_EXIT_SCRIPT;
        return 0;
    }
    out->status = (int)lua_tointeger(L, -2);
    const char *line = lua_tostring(L, -1);
    snprintf(out->line, sizeof out->line, "%s", line ? line : "");
    return 0;
}

static void run_scheduled(void *ctx, cf_run_result *out)
{
    run_ctx *rc = ctx;
    rc->out = out;
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        out->status = CF_EXIT_SCRIPT;
        snprintf(out->error, sizeof out->error, "not enough memory for a Lua state");
        return;
    }
    lua_gc(L, LUA_GCSTOP);
    lua_pushcfunction(L, prun);
    lua_pushlightuserdata(L, rc);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        out->status = CF_EXIT_SCRIPT;
        snprintf(out->error, sizeof out->error, "%s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    }
    lua_close(L);
}

/* Everything runs inside one protected call, so even start-up failures are reported. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    cf_opts o;
    if (collect_args(argv, &o) != 0) {
        lua_pushinteger(L, CF_EXIT_USAGE);
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
    if (o.fake_api && (o.sandbox || o.scheduled)) {
        message("--fake-api cannot be combined with --sandbox or scheduling options");
        lua_pushinteger(L, CF_EXIT_USAGE);
        return 1;
    }
    if (o.scheduled && (!o.script || strcmp(argv[o.script], "-") == 0 || o.interactive)) {
        message("--job, --every and --cron need a script file (and no -i)");
        lua_pushinteger(L, CF_EXIT_USAGE);
        return 1;
    }
    if (!o.scheduled &&
        (o.sched.jitter > 0 || o.sched.max_failures || o.sched.lock_path || o.sched.log_path)) {
        message("--jitter, --max-failures, --lock and --log-file go with --job, --every or --cron");
        lua_pushinteger(L, CF_EXIT_USAGE);
        return 1;
    }

    if (o.fake_api) {
        luaL_checkversion(L);
        luaL_openlibs(L);
        cf_lua_preload(L);
        lua_gc(L, LUA_GCRESTART);
        int status = run_fake_api(L, argv, o.fake_api + 1, argc);
        lua_pushinteger(L, status == LUA_OK ? 0 : CF_EXIT_SCRIPT);
        return 1;
    }

    /* --json reaches the example scripts too: cloudflare.cli defaults --format to
     * $CFRUN_FORMAT (documented in README and cfrun.1); children inherit it */
    if (o.json && setenv("CFRUN_FORMAT", "json", 1) != 0) {
        message("cannot set CFRUN_FORMAT");
        lua_pushinteger(L, CF_EXIT_SCRIPT);
        return 1;
    }
    /* a script or job: the first SIGINT or SIGTERM stops it, a second ends the process */
    cf_interrupt_install(CF_INTERRUPT_STOP);
    /* past a file size limit (ulimit -f) a write fails with EFBIG, which the journal reports
     * (and then sends nothing), rather than the process dying mid-record */
    signal(SIGXFSZ, SIG_IGN);
    if (o.sandbox) /* stack: sandbox handle, closed by lua_close at the latest */
        cf_sandbox_start(L);
    if (o.scheduled) { /* each run gets a fresh state; this one only holds the sandbox */
        run_ctx rc = {&o, argv, argc, NULL};
        o.sched.script_path = argv[o.script];
        lua_pushinteger(L, cf_sched_run(&o.sched, run_scheduled, &rc));
        return 1;
    }
    if (setup_state(L, &o, argv, argc) != LUA_OK) {
        lua_pushinteger(L, CF_EXIT_SCRIPT);
        return 1;
    }

    int status = run_args(L, argv, o.script ? o.script : argc, o.json);
    int code = status == LUA_OK ? 0 : CF_EXIT_SCRIPT;
    if (status == LUA_OK && o.script)
        code = run_script(L, argv, o.script, argc, o.json);
    if (code == 0 && (o.interactive || (!o.script && !o.has_e && isatty(STDIN_FILENO)))) {
        cf_interrupt_install(CF_INTERRUPT_CALL); /* Ctrl-C stops the call, not the session */
        lua_pushinteger(L, cf_repl(L));          /* as lua.c: -i runs the REPL after the script */
        return 1;
    }
    if (code == 0 && !o.script && !o.has_e)
        code = do_chunk(L, luaL_loadfile(L, NULL), o.json) == LUA_OK ? 0 : CF_EXIT_SCRIPT;
    int sig = cf_termination_requested();
    lua_pushinteger(L, sig ? 128 + sig : code); /* a signal that stopped the run says so */
    return 1;
}

int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        message("cannot initialise libcurl");
        return CF_EXIT_SCRIPT;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        message("cannot create Lua state: not enough memory");
        return CF_EXIT_SCRIPT;
    }
    lua_gc(L, LUA_GCSTOP); /* no collections while the libraries load */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code = status == LUA_OK ? (int)lua_tointeger(L, -1) : CF_EXIT_SCRIPT;
    report(L, status);
    lua_close(L);
    curl_global_cleanup();
    return code;
}
