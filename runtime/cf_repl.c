/* cf_repl: the interactive loop (cfrun -i, or cfrun on a terminal): lua.c's REPL rules, GNU
 * readline with history and completion, Ctrl-C. Must not format values nor know the API:
 * printing, completion candidates and help() are lua/cloudflare/repl.lua's job. */

/* Secrets: the values of CLOUDFLARE_API_TOKEN and CLOUDFLARE_API_KEY are registered as the
 * state's secrets when the REPL starts (cf_redact.h), next to the credentials of every client
 * the session creates. A line joins the history (in memory and in the file) only after its
 * chunk ran, and only when it holds none of them; when a line registers a new one (it created
 * a client), the lines already kept that hold it are dropped and the file is rewritten.
 * Errors are printed redacted; repl.show redacts the results. */

/* Signals: readline's own handlers are off (rl_catch_signals = 0); cf_interrupt's handler is
 * the only one. At the prompt the line is read with readline's callback interface around
 * ppoll(), with SIGINT and SIGTERM blocked except inside ppoll, so a Ctrl-C there is seen at
 * once and consumed (it clears the line; it must not abort the next call). While a chunk
 * runs, Ctrl-C stops a transfer in flight (the call returns err.kind "interrupted") or raises
 * "interrupted!" in Lua code, as cf_interrupt arranges. */
#include "cf_repl.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cf_interrupt.h"
#include "cf_lua.h"
#include "cf_redact.h"

#define REPL_MODULE     "cloudflare.repl"
#define REG_REPL        "cfrun.repl" /* registry: the cloudflare.repl module table */
#define DEFAULT_PROMPT  "> "
#define DEFAULT_PROMPT2 ">> "
#define EOF_MARK        "<eof>"
#define HISTORY_MAX     1000
#define CHUNKNAME       "=stdin"

/* What reading a line can end in besides a line (read_tty, read_plain, push_line). */
enum { LINE_OK = 0, LINE_EOF = -1, LINE_INTERRUPT = -2, LINE_TERMINATE = -3 };

/* Every character that ends a completion word for readline, which completes the name after
 * the last '.' or ':' (repl.lua's candidates are whole expressions; see on_complete). */
static const char word_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^#~!?.:";

typedef struct cf_repl_state {
    lua_State *L;
    int tty;            /* stdin is a terminal: readline, history, banner */
    char history[4096]; /* the history file, "" when there is none */
    char *line;         /* the line readline handed over (malloc'd), or NULL at EOF */
    int line_done;
    char **pending; /* the lines of the chunk being read and run, for the history (malloc'd) */
    size_t npending, cap_pending;
    size_t secrets; /* cf_redact_count when the history was last cleaned */
} cf_repl_state;

/* readline's callbacks carry no context: this is the one pointer they reach the REPL by
 * (set for the duration of cf_repl only), as cf_interrupt's handler reaches its state. */
static cf_repl_state *active;

/* ---- history ------------------------------------------------------------------------ */

/* mkdir -p of the directory in buf (modified while walking it); new directories are 0700 */
static int make_dirs(char *buf)
{
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(buf, 0700);
        *p = c;
        if (rc != 0 && errno != EEXIST)
            return -1;
        if (c == '\0')
            return 0;
    }
}

/* $XDG_STATE_HOME/cfrun/history (directories created 0700), else ~/.cfrun_history. */
static void history_path(cf_repl_state *r)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    size_t cap = sizeof r->history;
    int n;
    r->history[0] = '\0';
    errno = 0;
    if (state && state[0]) {
        n = snprintf(r->history, cap, "%s/cfrun", state);
        if (n < 0 || (size_t)n >= cap || make_dirs(r->history) != 0)
            goto fail;
        int m = snprintf(r->history + n, cap - (size_t)n, "/history");
        if (m < 0 || (size_t)m >= cap - (size_t)n)
            goto fail;
    } else if (home && home[0]) {
        n = snprintf(r->history, cap, "%s/.cfrun_history", home);
        if (n < 0 || (size_t)n >= cap)
            goto fail;
    } else {
        return; /* nowhere to keep it */
    }
    /* the file may hold what was typed (tokens too): owner only */
    int fd = open(r->history, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    close(fd);
    return;
fail:
    fprintf(stderr, "cfrun: history is not saved: cannot use %s: %s\n",
            r->history[0] ? r->history : "the history file",
            errno ? strerror(errno) : "path too long");
    r->history[0] = '\0';
}

static void history_open(cf_repl_state *r)
{
    using_history();
    stifle_history(HISTORY_MAX);
    history_path(r);
    if (r->history[0]) {
        read_history(r->history);
        history_truncate_file(r->history, HISTORY_MAX);
    }
}

/* Keeps one physical line: not an empty one, not the same as the one before. Each line is
 * appended at once, so the history survives a crash or a kill. */
static void history_keep(cf_repl_state *r, const char *line)
{
    if (line[strspn(line, " \t\r\n")] == '\0')
        return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && last->line && strcmp(last->line, line) == 0)
        return;
    add_history(line);
    if (r->history[0])
        append_history(1, r->history);
}

/* Notes a line read at the terminal; it joins the history once its chunk ran (history_flush).
 * A line that cannot be noted (out of memory) is not kept. */
static void history_note(cf_repl_state *r, const char *line)
{
    if (r->npending == r->cap_pending) {
        size_t cap = r->cap_pending ? 2 * r->cap_pending : 8;
        char **p = realloc(r->pending, cap * sizeof *p);
        if (p == NULL)
            return;
        r->pending = p;
        r->cap_pending = cap;
    }
    char *copy = strdup(line);
    if (copy)
        r->pending[r->npending++] = copy;
}

/* Drops every kept line that holds one of the state's secrets; rewrites the file if any. */
static void history_clean(cf_repl_state *r)
{
    int removed = 0;
    for (int i = 0; i < history_length;) {
        HIST_ENTRY **list = history_list();
        const char *line = list && list[i] ? list[i]->line : NULL;
        if (line && cf_redact_contains(r->L, line, strlen(line))) {
            HIST_ENTRY *e = remove_history(i);
            if (e) {
                histdata_t data = free_history_entry(e);
                (void)data;
            }
            removed = 1;
        } else {
            i++;
        }
    }
    if (removed && r->history[0] && write_history(r->history) != 0)
        fprintf(stderr, "cfrun: could not rewrite the history file %s\n", r->history);
}

/* After a chunk ran (or was abandoned): keeps its lines that hold no secret, and, when the
 * chunk registered a secret, drops the kept lines that hold it. */
static void history_flush(cf_repl_state *r)
{
    if (!r->tty)
        return;
    size_t now = cf_redact_count(r->L);
    if (now != r->secrets) {
        r->secrets = now;
        history_clean(r);
    }
    for (size_t i = 0; i < r->npending; i++) {
        const char *line = r->pending[i];
        if (!cf_redact_contains(r->L, line, strlen(line)))
            history_keep(r, line);
        free(r->pending[i]);
    }
    r->npending = 0;
}

static void history_close(cf_repl_state *r)
{
    history_flush(r);
    free(r->pending);
    r->pending = NULL;
    r->cap_pending = 0;
    if (r->history[0])
        history_truncate_file(r->history, HISTORY_MAX);
    clear_history();
}

/* ---- completion --------------------------------------------------------------------- */

typedef struct cf_text {
    const char *s;
    size_t len;
} cf_text;

/* stack: repl.complete(text) result */
static int complete_protected(lua_State *L)
{
    const cf_text *t = lua_touserdata(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_REPL);
    lua_getfield(L, -1, "complete");
    lua_pushlstring(L, t->s, t->len);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        lua_newtable(L);
    return 1;
}

static int is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':';
}

/* frees m and its strings m[first..] */
static void free_matches(char **m, size_t first)
{
    for (size_t i = first; m[i]; i++)
        free(m[i]);
    free(m);
}

/* readline's completion entry: asks repl.complete for the candidates of the expression
 * ending at the cursor. They replace the Lua word (a run of [A-Za-z0-9_.:]) while readline
 * replaces only its last name, so each is cut to what follows the part already typed. */
static char **on_complete(const char *text, int start, int end)
{
    (void)text;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0';
    cf_repl_state *r = active;
    if (r == NULL || start < 0 || end < start || end > rl_end)
        return NULL;
    int ws = end;
    while (ws > 0 && is_word_char((unsigned char)rl_line_buffer[ws - 1]))
        ws--;
    if (ws > start) /* readline's word has bytes Lua names cannot hold */
        return NULL;
    size_t keep = (size_t)(start - ws); /* the typed part before readline's word */

    lua_State *L = r->L;
    int top = lua_gettop(L);
    cf_text t = {rl_line_buffer, (size_t)end};
    if (!lua_checkstack(L, 4))
        return NULL;
    lua_pushcfunction(L, complete_protected);
    lua_pushlightuserdata(L, &t);
    if (cf_pcall(L, 1, 1) != LUA_OK) { /* stack: list | message */
        lua_settop(L, top);
        return NULL;
    }
    size_t n = (size_t)lua_rawlen(L, -1);
    char **m = calloc(n + 2, sizeof *m); /* m[0]: the common prefix; NULL-terminated */
    size_t k = 1;
    for (size_t i = 1; m && i <= n; i++) {
        size_t len;
        if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &len);
            if (len >= keep && memcmp(s, rl_line_buffer + ws, keep) == 0 &&
                (m[k] = strdup(s + keep)) != NULL)
                k++;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (m == NULL || k == 1) {
        free(m);
        return NULL;
    }
    if (k == 2) { /* one match: it is the replacement */
        m[0] = m[1];
        m[1] = NULL;
        return m;
    }
    size_t common = strlen(m[1]);
    for (size_t i = 2; i < k; i++) {
        size_t j = 0;
        while (j < common && m[i][j] == m[1][j])
            j++;
        common = j;
    }
    m[0] = strndup(m[1], common);
    if (m[0] == NULL) {
        free_matches(m, 1);
        return NULL;
    }
    return m;
}

/* ---- reading lines ------------------------------------------------------------------ */

static void on_line(char *line)
{
    cf_repl_state *r = active;
    rl_callback_handler_remove(); /* no new prompt until the REPL asks for one */
    r->line = line;
    r->line_done = 1;
}

/* A signal at the prompt: forget the line (showing ^C for a Ctrl-C), give the terminal back
 * and end the line on screen. */
static void abandon_line(int sig)
{
    if (sig == SIGINT)
        rl_echo_signal_char(SIGINT);
    rl_free_line_state();
    rl_callback_sigcleanup();
    rl_cleanup_after_signal();
    rl_callback_handler_remove();
    fputc('\n', rl_outstream);
    fflush(rl_outstream);
}

static int read_tty(cf_repl_state *r, const char *prompt, char **out)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    cf_interrupt_consume(); /* a Ctrl-C that arrived after the last call is not for this line */
    r->line = NULL;
    r->line_done = 0;
    rl_callback_handler_install(prompt, on_line);
    int result = LINE_OK;
    while (!r->line_done) {
        /* signals are blocked here: a flag set now is seen before ppoll can sleep */
        if (cf_termination_requested()) {
            abandon_line(SIGTERM);
            result = LINE_TERMINATE;
            break;
        }
        if (cf_interrupt_consume()) {
            abandon_line(SIGINT);
            result = LINE_INTERRUPT;
            break;
        }
        struct pollfd p = {.fd = fileno(rl_instream), .events = POLLIN};
        int n = ppoll(&p, 1, NULL, &old); /* the only place the signals get through */
        if (n < 0 && errno == EINTR) {
            rl_check_signals(); /* readline's own: a window resize */
            continue;
        }
        if (n < 0 || (p.revents & POLLNVAL)) {
            rl_callback_handler_remove();
            break; /* treated as end of input */
        }
        sigprocmask(SIG_SETMASK, &old, NULL); /* completion may run Lua: let Ctrl-C stop it */
        rl_callback_read_char();
        sigprocmask(SIG_BLOCK, &block, NULL);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (result != LINE_OK)
        return result;
    if (r->line == NULL)
        return LINE_EOF;
    history_note(r, r->line);
    *out = r->line;
    r->line = NULL;
    return LINE_OK;
}

/* Without a terminal: the prompt on stdout and a plain line from stdin, as lua.c does. */
static int read_plain(const char *prompt, char **out)
{
    fputs(prompt, stdout);
    fflush(stdout);
    char *buf = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&buf, &cap, stdin);
    if (n < 0) {
        int interrupted = errno == EINTR;
        free(buf);
        clearerr(stdin);
        if (cf_termination_requested())
            return LINE_TERMINATE;
        if (interrupted && cf_interrupt_consume()) {
            fputc('\n', stdout);
            return LINE_INTERRUPT;
        }
        return LINE_EOF;
    }
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    *out = buf;
    return LINE_OK;
}

/* Pushes the next line (first: the "=" shorthand applied) or returns why there is none. */
static int push_line(cf_repl_state *r, int first)
{
    lua_State *L = r->L;
    const char *name = first ? "_PROMPT" : "_PROMPT2";
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS); /* stack: _G */
    lua_pushstring(L, name);
    lua_rawget(L, -2); /* raw: fetching the prompt must not run Lua code */
    const char *prompt = lua_tostring(L, -1);
    if (prompt == NULL)
        prompt = first ? DEFAULT_PROMPT : DEFAULT_PROMPT2;
    char *line = NULL;
    int rc = r->tty ? read_tty(r, prompt, &line) : read_plain(prompt, &line);
    lua_pop(L, 2);
    if (rc != LINE_OK)
        return rc;
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (first && line[0] == '=') /* lua.c 5.3's "=expr" still works */
        lua_pushfstring(L, "return %s", line + 1);
    else
        lua_pushlstring(L, line, len);
    free(line);
    return LINE_OK;
}

/* A syntax error at <eof>: the chunk goes on on the next line. Pops the message if so. */
static int incomplete(lua_State *L, int status)
{
    if (status == LUA_ERRSYNTAX) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        size_t mark = sizeof(EOF_MARK) - 1;
        if (msg && len >= mark && strcmp(msg + len - mark, EOF_MARK) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* Compiles the line at the top as an expression ("return <line>;"); on success replaces it
 * with the function. stack: line -> function | line */
static int add_return(lua_State *L)
{
    const char *line = lua_tostring(L, -1);
    const char *retline = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, retline, strlen(retline), CHUNKNAME);
    if (status == LUA_OK) {
        lua_remove(L, -2); /* the "return" text */
        lua_remove(L, -2); /* the line */
    } else {
        lua_pop(L, 2); /* message, "return" text */
    }
    return status;
}

/* As a statement, reading more lines while it is incomplete. stack: line -> function | msg */
static int multi_line(cf_repl_state *r)
{
    lua_State *L = r->L;
    for (;;) {
        size_t len;
        const char *chunk = lua_tolstring(L, -1, &len);
        int status = luaL_loadbuffer(L, chunk, len, CHUNKNAME);
        if (!incomplete(L, status)) {
            lua_remove(L, -2); /* the text */
            return status;
        }
        int rc = push_line(r, 0);
        if (rc != LINE_OK) {
            lua_pop(L, 1);
            return rc;
        }
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3); /* stack: chunk "\n" line -> chunk */
    }
}

/* Reads a whole chunk: LUA_OK with the function pushed, a load error with its message
 * pushed, or a LINE_* code with nothing pushed. */
static int load_chunk(cf_repl_state *r)
{
    int rc = push_line(r, 1);
    if (rc != LINE_OK)
        return rc;
    if (add_return(r->L) == LUA_OK)
        return LUA_OK;
    return multi_line(r);
}

/* ---- evaluating --------------------------------------------------------------------- */

/* Prints the message on top (redacted) and pops it. */
static void report_error(lua_State *L)
{
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    if (msg)
        msg = cf_redact_push(L, msg, len);
    fflush(stdout);
    fprintf(stderr, "cfrun: %s\n", msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, msg ? 2 : 1);
}

/* stack: results... -> (empty); repl.show prints them */
static void show_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0)
        return;
    if (!lua_checkstack(L, 2)) {
        fprintf(stderr, "cfrun: too many results to print (%d)\n", n);
        return;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, REG_REPL);
    lua_getfield(L, -1, "show");
    lua_remove(L, -2);
    lua_insert(L, base + 1);
    if (cf_pcall(L, n, 0) != LUA_OK) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        msg = msg ? cf_redact_push(L, msg, len) : "?";
        fprintf(stderr, "cfrun: error calling 'show' (%s)\n", msg);
        lua_settop(L, base);
    }
}

/* stack: function -> (empty) */
static void evaluate(lua_State *L, int base)
{
    cf_interrupt_consume(); /* start clean: only a Ctrl-C from now on stops this call */
    int status = cf_pcall(L, 0, LUA_MULTRET);
    /* a Ctrl-C after the last point the hook could see it must not outlive the call */
    cf_interrupt_consume();
    if (status == LUA_OK)
        show_results(L, base);
    else
        report_error(L);
    lua_settop(L, base);
}

/* ---- setup -------------------------------------------------------------------------- */

/* stack: -> (empty); registers the environment's credentials as secrets, loads
 * cloudflare.repl into the registry and runs its init */
static int setup_protected(lua_State *L)
{
    static const char *const credentials[] = {"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY"};
    for (size_t i = 0; i < sizeof credentials / sizeof credentials[0]; i++) {
        const char *v = getenv(credentials[i]);
        if (v)
            cf_redact_add(L, v, strlen(v));
    }
    lua_getglobal(L, "require");
    lua_pushliteral(L, REPL_MODULE);
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_REPL);
    lua_getfield(L, -1, "init");
    lua_call(L, 0, 0);
    return 0;
}

static void readline_setup(void)
{
    rl_readline_name = "cfrun"; /* for $if cfrun in ~/.inputrc */
    rl_catch_signals = 0;       /* cf_interrupt handles SIGINT and SIGTERM */
    rl_change_environment = 0;  /* leave LINES and COLUMNS alone */
    rl_instream = stdin;
    rl_outstream = stdout;
    rl_attempted_completion_function = on_complete;
    rl_basic_word_break_characters = word_breaks;
    rl_completer_word_break_characters = word_breaks;
    /* a second Tab lists the candidates once nothing more is common (~/.inputrc may differ) */
    rl_variable_bind("show-all-if-unmodified", "on");
}

int cf_repl(lua_State *L)
{
    cf_repl_state r;
    memset(&r, 0, sizeof r);
    r.L = L;
    r.tty = isatty(STDIN_FILENO);
    int base = lua_gettop(L); /* stack: what the caller keeps (e.g. the sandbox) */

    lua_pushcfunction(L, setup_protected);
    if (cf_pcall(L, 0, 0) != LUA_OK) {
        report_error(L);
        return 1;
    }
    if (r.tty) {
        printf("cfrun %s (%s)  help() for the API, Ctrl-D to exit\n", CF_VERSION, LUA_RELEASE);
        fflush(stdout);
        active = &r;
        readline_setup();
        history_open(&r);
        r.secrets = (size_t)-1; /* lines of earlier sessions may hold a secret of this one */
        history_flush(&r);
    }

    int code = 0;
    for (;;) {
        int status = load_chunk(&r);
        if (status == LINE_EOF) {
            fputc('\n', stdout); /* as lua.c: leave the shell's prompt on a line of its own */
            break;
        }
        if (status == LINE_TERMINATE) {
            code = 128 + cf_termination_requested();
            break;
        }
        if (status == LINE_INTERRUPT) { /* the pending chunk is dropped */
            lua_settop(L, base);
            history_flush(&r);
            continue;
        }
        if (status == LUA_OK)
            evaluate(L, base);
        else
            report_error(L);
        lua_settop(L, base);
        history_flush(&r); /* after the chunk ran: it may have created a client */
        if (cf_termination_requested()) {
            code = 128 + cf_termination_requested();
            break;
        }
    }
    cf_interrupt_consume(); /* a SIGTERM that ended the loop must not raise in the caller */
    fflush(stdout);
    if (r.tty) {
        history_close(&r);
        active = NULL;
    }
    lua_settop(L, base);
    return code;
}
