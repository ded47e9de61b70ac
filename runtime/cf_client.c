/* cf_client: the Client userdata (cloudflare.core.client): credentials, headers and a pool of
 * easy handles, whose requests run on the state's transfer loop (cf_loop.c); and
 * cf_open_core, which assembles cloudflare.core from the primitives of the other files.
 * Must not interpret responses (cf_response.c) nor hold endpoint logic (lua/cloudflare/). */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua-cjson.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_error.h"
#include "cf_http.h"
#include "cf_interrupt.h"
#include "cf_journal.h"
#include "cf_loop.h"
#include "cf_lua.h"
#include "cf_merge.h"
#include "cf_ratestate.h"
#include "cf_redact.h"
#include "cf_response.h"
#include "cf_sys.h"

#define CLIENT_MT "cloudflare.Client"

#define POOL_MAX 32 /* idle easy handles a client keeps for reuse */

typedef struct cf_client {
    int open;                   /* 0 once closed (or never opened) */
    cf_http_config cfg;         /* for the handles it opens; strings owned below */
    char *user_agent, *ca_file; /* malloc'd copies */
    struct curl_slist *headers; /* sent on every request; freed by __gc only, as requests
                                   still in flight after close use it */
    cf_http *pool[POOL_MAX];    /* idle handles */
    int npool;
    cf_buf url;       /* base_url followed by the current path; reused */
    size_t base_len;  /* length of base_url inside url */
    const char *auth; /* "api token" or "api key": shown by tostring instead of secrets */
    long timeout_ms, connect_timeout_ms; /* defaults; a request may override them */
} cf_client;

static cf_client *check_open(lua_State *L, int idx)
{
    cf_client *c = luaL_checkudata(L, idx, CLIENT_MT);
    if (!c->open)
        luaL_error(L, "attempt to use a closed cloudflare.Client");
    return c;
}

static void free_handle(cf_http *h)
{
    cf_http_close(h);
    free(h);
}

/* A finished transfer's handle comes back here (cf_loop_release). */
static void give_back(void *owner, cf_http *h)
{
    cf_client *c = owner;
    if (c->open && c->npool < POOL_MAX)
        c->pool[c->npool++] = h;
    else
        free_handle(h);
}

static cf_http *take_handle(lua_State *L, cf_client *c)
{
    if (c->npool > 0)
        return c->pool[--c->npool];
    cf_http *h = malloc(sizeof *h);
    if (!h) {
        luaL_error(L, "not enough memory");
        return NULL; /* not reached: luaL_error does not return */
    }
    if (cf_http_open(h, &c->cfg) != 0) {
        lua_pushfstring(L, "cloudflare: %s", h->errbuf);
        free_handle(h);
        lua_error(L);
        return NULL;
    }
    return h;
}

/* ---- the Client --------------------------------------------------------------------- */

static long opt_ms(lua_State *L, int opts, const char *field, long def)
{
    if (!lua_istable(L, opts))
        return def;
    lua_getfield(L, opts, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    lua_Number secs = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(secs > 0 && secs <= 86400))
        luaL_error(L, "request: %s must be a number of seconds in (0, 86400]", field);
    long ms = (long)(secs * 1000.0);
    return ms > 0 ? ms : 1;
}

/* Starts a request as a Transfer (cf_loop.c); notify: a task will wait for it. */
static void start(lua_State *L, int notify)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    cf_client *c = check_open(L, 1);
    const char *method = methods[luaL_checkoption(L, 2, NULL, methods)];
    size_t plen;
    const char *path = luaL_checklstring(L, 3, &plen);
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    if (plen == 0 || path[0] != '/')
        luaL_argerror(L, 3, "path must start with '/'");
    for (size_t i = 0; i < plen; i++) { /* the path is spliced into the URL as it is */
        unsigned char ch = (unsigned char)path[i];
        if (ch <= 0x20 || ch == 0x7f)
            luaL_argerror(L, 3, "path contains a space or control character");
    }

    long timeout_ms = opt_ms(L, 5, "timeout", c->timeout_ms);
    long connect_ms = opt_ms(L, 5, "connect_timeout", c->connect_timeout_ms);
    const cf_json_shape *shape = NULL;
    if (lua_istable(L, 5)) {
        lua_getfield(L, 5, "shape");
        if (!lua_isnil(L, -1) && !(shape = cf_merge_shape(lua_tostring(L, -1))))
            luaL_error(L,
                       "request: shape must be \"batch\" (a batch's succeeded and failed items)");
        lua_pop(L, 1);
    }

    c->url.len = c->base_len;
    if (cf_buf_append(&c->url, path, plen) != 0) /* keeps data NUL-terminated */
        luaL_error(L, "not enough memory");
    cf_http *h = take_handle(L, c);
    cf_http_prepare(h, method, c->url.data, body, blen, timeout_ms, connect_ms, c->headers);
    cf_loop_start(L, h, give_back, c, 1, body ? 4 : 0, notify);
    cf_loop_shape(L, shape);
}

/* client:start(method, path[, body[, opts]]) -> Transfer: the request runs while Lua goes on;
 * transfer:finish() gives what client:request would have. */
static int cf_client_start(lua_State *L)
{
    start(L, 1);
    return 1;
}

/* client:request(method, path[, body[, {timeout=, connect_timeout=, shape=}]])
 *   -> result, info | nil, err */
static int cf_client_request(lua_State *L)
{
    start(L, 0);
    return cf_loop_finish(L, -1);
}

/* Requests still in flight complete; their handles are freed as they come back. */
static int cf_client_close(lua_State *L)
{
    cf_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    c->open = 0;
    while (c->npool > 0)
        free_handle(c->pool[--c->npool]);
    return 0;
}

static int cf_client_gc(lua_State *L)
{
    cf_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    cf_client_close(L);
    cf_buf_free(&c->url);
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    free(c->user_agent);
    free(c->ca_file);
    c->user_agent = c->ca_file = NULL;
    return 0;
}

static int cf_client_tostring(lua_State *L)
{
    cf_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->open) {
        lua_pushfstring(L, "cloudflare.Client (closed): %p", (void *)c);
        return 1;
    }
    /* credentials are never shown, only which kind is configured */
    lua_pushlstring(L, c->url.data, c->base_len);
    lua_pushfstring(L, "cloudflare.Client (%s, %s): %p", c->auth, lua_tostring(L, -1), (void *)c);
    return 1;
}

/* Fields other than methods (the `cache` namespace built by the Lua layer) live in the
 * userdata's user value, so one client can carry closures bound to itself. */
static int cf_client_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) /* the method table */
        return 1;
    lua_getiuservalue(L, 1, 1);
    if (!lua_istable(L, -1))
        return 0;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* A credential goes into a header line: refuse anything that could end or split it. */
static const char *check_credential(lua_State *L, int cfg, const char *field)
{
    size_t len;
    int t = lua_getfield(L, cfg, field); /* left on the stack: it anchors the string */
    if (t == LUA_TNIL)
        return NULL;
    if (t != LUA_TSTRING)
        luaL_error(L, "cloudflare.new: %s must be a string", field);
    const char *s = lua_tolstring(L, -1, &len);
    if (len == 0)
        luaL_error(L, "cloudflare.new: %s is empty", field);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f) /* the value itself is never echoed */
            luaL_error(L, "cloudflare.new: %s contains a space or control character", field);
    }
    return s;
}

static long check_ms(lua_State *L, int cfg, const char *field, double def)
{
    lua_getfield(L, cfg, field);
    double secs = luaL_optnumber(L, -1, def);
    lua_pop(L, 1);
    if (!(secs > 0 && secs <= 86400))
        luaL_error(L, "cloudflare.new: %s must be a number of seconds in (0, 86400]", field);
    long ms = (long)(secs * 1000.0);
    return ms > 0 ? ms : 1;
}

static void add_header(lua_State *L, cf_client *c, const char *name, const char *value)
{
    lua_pushfstring(L, "%s:%s%s", name, *value ? " " : "", value);
    struct curl_slist *l = curl_slist_append(c->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!l)
        luaL_error(L, "not enough memory");
    c->headers = l;
}

static char *copy_string(lua_State *L, const char *s)
{
    if (!s)
        return NULL;
    char *p = strdup(s);
    if (!p)
        luaL_error(L, "not enough memory");
    return p;
}

/* core.client(config[, fields]) -> Client. config holds resolved settings (the Lua layer
 * applies environment defaults): base_url, api_token | api_email + api_key, timeout,
 * connect_timeout, ca_file, max_body. */
static int cf_core_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);

    size_t blen;
    const char *base = NULL;
    if (lua_getfield(L, 1, "base_url") == LUA_TSTRING)
        base = lua_tolstring(L, -1, &blen);
    if (base == NULL)
        return luaL_error(L, "cloudflare.new: base_url must be a string");
    if (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0)
        return luaL_error(L, "cloudflare.new: base_url must start with https:// or http://");
    const char *host = strstr(base, "://") + 3;
    for (const char *p = base; p < base + blen; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#')
            return luaL_error(L, "cloudflare.new: base_url contains a space, control "
                                 "character, '?' or '#'");
    }
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (at && (!slash || at < slash)) /* user:password@ would put secrets in URLs and logs */
        return luaL_error(L, "cloudflare.new: base_url must not contain credentials");
    while (blen > 0 && base[blen - 1] == '/')
        blen--;

    const char *token = check_credential(L, 1, "api_token");
    const char *email = check_credential(L, 1, "api_email");
    const char *key = check_credential(L, 1, "api_key");
    if (!token && !(email && key))
        return luaL_error(L, "cloudflare.new: no credentials (api_token, or api_email and "
                             "api_key)");
    /* from now on every text this state writes or returns shows them as <redacted>; the
     * email is not a secret (cf_redact.h) */
    if (token)
        cf_redact_add(L, token, strlen(token));
    if (key) /* a secret even when the token wins */
        cf_redact_add(L, key, strlen(key));

    cf_http_config cfg = {0};
    cfg.timeout_ms = check_ms(L, 1, "timeout", 60);
    cfg.connect_timeout_ms = check_ms(L, 1, "connect_timeout", 10);
    int t = lua_getfield(L, 1, "ca_file"); /* values stay on the stack while in use */
    if (t != LUA_TNIL && t != LUA_TSTRING)
        return luaL_error(L, "cloudflare.new: ca_file must be a string");
    cfg.ca_file = lua_tostring(L, -1);
    lua_getfield(L, 1, "max_body");
    lua_Integer max_body = luaL_optinteger(L, -1, (lua_Integer)32 << 20);
    if (max_body <= 0)
        return luaL_error(L, "cloudflare.new: max_body must be a positive number of bytes");
    cfg.max_body = (size_t)max_body;
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    lua_pushfstring(L, "cfrun/%s (libcurl/%s; %s)", CF_VERSION, cv->version, LUA_RELEASE);
    cfg.user_agent = lua_tostring(L, -1); /* libcurl copies string options */

    cf_client *c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    cf_buf_init(&c->url);
    luaL_setmetatable(L, CLIENT_MT); /* from here __gc releases whatever was acquired */
    if (lua_istable(L, 2))
        lua_pushvalue(L, 2);
    else
        lua_newtable(L);
    lua_setiuservalue(L, -2, 1);

    c->timeout_ms = cfg.timeout_ms;
    c->connect_timeout_ms = cfg.connect_timeout_ms;
    cfg.multiplex = strncmp(base, "https://", 8) == 0;
    c->user_agent = copy_string(L, cfg.user_agent);
    c->ca_file = copy_string(L, cfg.ca_file);
    cfg.user_agent = c->user_agent;
    cfg.ca_file = c->ca_file;
    c->cfg = cfg;
    c->open = 1;
    /* the first handle is opened now, so a libcurl that refuses an option fails here */
    give_back(c, take_handle(L, c));
    if (cf_buf_append(&c->url, base, blen) != 0)
        return luaL_error(L, "not enough memory");
    c->base_len = blen;
    if (token) { /* a token wins over the legacy pair, as documented */
        c->auth = "api token";
        lua_pushfstring(L, "Bearer %s", token);
        add_header(L, c, "Authorization", lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        c->auth = "api key";
        add_header(L, c, "X-Auth-Email", email);
        add_header(L, c, "X-Auth-Key", key);
    }
    add_header(L, c, "Content-Type", "application/json");
    add_header(L, c, "Accept", "application/json");
    /* libcurl would otherwise wait up to a second for "100 Continue" on bodies over 1 KiB */
    add_header(L, c, "Expect", "");
    return 1;
}

int cf_open_core(lua_State *L)
{
    static const luaL_Reg client_methods[] = {{"request", cf_client_request},
                                              {"start", cf_client_start},
                                              {"close", cf_client_close},
                                              {NULL, NULL}};
    static const luaL_Reg core_funcs[] = {{"client", cf_core_client},
                                          {"redact", cf_core_redact},
                                          {"sanitize", cf_core_sanitize},
                                          {"add_secret", cf_core_add_secret},
                                          {NULL, NULL}};
    /* the functions of core, by the file that owns them */
    static const luaL_Reg *const parts[] = {core_funcs,         cf_error_funcs,     cf_sys_funcs,
                                            cf_journal_funcs,   cf_interrupt_funcs, cf_lua_funcs,
                                            cf_ratestate_funcs, cf_merge_funcs};

    /* JSON null in responses is cjson.null, as everywhere else; cf_response finds it here */
    luaL_requiref(L, "cjson", luaopen_cjson, 0); /* stack: cjson */
    lua_getfield(L, -1, "null");
    lua_setfield(L, LUA_REGISTRYINDEX, CF_REG_NULL);
    lua_pop(L, 1);

    /* a Client's __index finds its methods, then its per-client fields (cf_client_index) */
    cf_new_class(L, CLIENT_MT, NULL, cf_client_gc, cf_client_close, cf_client_tostring);
    luaL_getmetatable(L, CLIENT_MT); /* stack: mt */
    luaL_newlib(L, client_methods);  /* stack: mt methods */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, cf_client_index, 1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    cf_error_open(L);
    cf_journal_open(L);
    cf_ratestate_open(L);

    lua_newtable(L); /* stack: core */
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        luaL_setfuncs(L, parts[i], 0);
    cf_loop_open(L);
    /* counts across this state's API calls, read by the run policy (cloudflare.run) */
    lua_createtable(L, 0, 7);
    static const char *const counters[] = {"succeeded", "failed",  "pending", "unsent",
                                           "requests",  "retries", "waits"};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, counters[i]);
    }
    lua_setfield(L, -2, "stats");
    cf_lua_push_exit_table(L);
    lua_setfield(L, -2, "EXIT");
    lua_pushliteral(L, CF_VERSION);
    lua_setfield(L, -2, "version");
    lua_getfield(L, LUA_REGISTRYINDEX, CF_REG_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
