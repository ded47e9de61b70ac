/* cf_client: the native core of the cloudflare module (cloudflare.core): the Client userdata
 * that owns a transport, the Error type, and the turning of an HTTP response into a result
 * or an error. Must not contain endpoint logic (batching, item shapes): lua/cloudflare.lua. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_http.h"
#include "cf_lua.h"

#define CLIENT_MT "cloudflare.Client"
#define ERROR_MT  "cloudflare.Error"
/* upvalues shared by the functions that decode responses */
#define UPV_DECODE lua_upvalueindex(1) /* cjson.decode */
#define UPV_NULL   lua_upvalueindex(2) /* cjson.null */

typedef struct cf_client {
    cf_http http;     /* http.curl == NULL: closed (or never opened) */
    cf_buf url;       /* base_url followed by the current path; reused */
    size_t base_len;  /* length of base_url inside url */
    const char *auth; /* "api token" or "api key": shown by tostring instead of secrets */
} cf_client;

static cf_client *check_open(lua_State *L, int idx)
{
    cf_client *c = luaL_checkudata(L, idx, CLIENT_MT);
    if (c->http.curl == NULL)
        luaL_error(L, "attempt to use a closed cloudflare.Client");
    return c;
}

/* ---- errors ------------------------------------------------------------------------- */

/* Pushes a printable one-line excerpt of a body, so an HTML error page can be recognised. */
static void push_excerpt(lua_State *L, const char *p, size_t len)
{
    char out[121];
    size_t n = 0;
    int space = 0;
    if (p == NULL) /* an empty body has no buffer yet */
        len = 0;
    for (size_t i = 0; i < len && n < sizeof out - 4; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f) {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = 0;
        out[n++] = (char)ch;
    }
    if (n == sizeof out - 4)
        for (int dots = 0; dots < 3; dots++)
            out[n++] = '.';
    lua_pushlstring(L, out, n);
}

/* Converts the envelope's errors array at index idx (any value) into a fresh array of
 * { code = <integer or nil>, message = <string> }. lua-cjson under Lua 5.4 decodes 1141 as
 * 1141.0, which would print as "[1141.0]". stack: ... -> ... errors */
static void push_errors(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    if (!lua_istable(L, idx))
        return;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_createtable(L, 0, 2);
        if (lua_rawgeti(L, idx, i) == LUA_TTABLE) {
            lua_getfield(L, -1, "code");
            int isint = 0;
            lua_Integer code = lua_tointegerx(L, -1, &isint);
            lua_pop(L, 1);
            if (isint) {
                lua_pushinteger(L, code);
                lua_setfield(L, -3, "code");
            }
            if (lua_getfield(L, -1, "message") == LUA_TSTRING)
                lua_setfield(L, -3, "message");
            else
                lua_pop(L, 1);
        } else if (lua_type(L, -1) == LUA_TSTRING) { /* tolerate plain string errors */
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, "message");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, -1, "message") != LUA_TSTRING) {
            lua_pushliteral(L, "(no message)");
            lua_setfield(L, -3, "message");
        }
        lua_pop(L, 1);
        lua_rawseti(L, -2, i);
    }
}

/* Pushes nil and a cloudflare.Error; returns 2 for the C function to return.
 * errors_idx: a normalised errors array on the stack, or 0 for none. detail: what went
 * wrong, when the errors array does not say it. */
static int push_failure(lua_State *L, const char *kind, long status, const char *ray,
                        int errors_idx, const char *detail)
{
    if (errors_idx)
        errors_idx = lua_absindex(L, errors_idx);
    lua_pushnil(L);
    lua_createtable(L, 0, 6);
    int err = lua_gettop(L);
    lua_pushstring(L, kind);
    lua_setfield(L, err, "kind");
    if (status > 0) {
        lua_pushinteger(L, status);
        lua_setfield(L, err, "status");
    }
    if (ray && *ray) {
        lua_pushstring(L, ray);
        lua_setfield(L, err, "request_id");
    }
    if (errors_idx)
        lua_pushvalue(L, errors_idx);
    else
        lua_newtable(L);
    lua_setfield(L, err, "errors");

    /* message: "HTTP 500: [1141] text; [1142] text" or "HTTP 502: <detail>" */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (status > 0) {
        char head[32];
        snprintf(head, sizeof head, "HTTP %ld: ", status);
        luaL_addstring(&b, head);
    }
    lua_Integer n = errors_idx ? (lua_Integer)lua_rawlen(L, errors_idx) : 0;
    if (detail)
        luaL_addstring(&b, detail);
    else if (n == 0)
        luaL_addstring(&b, "request failed and the response gave no error details");
    for (lua_Integer i = 1; !detail && i <= n; i++) {
        /* balanced stack use between buffer operations; the strings stay anchored in errors */
        lua_rawgeti(L, errors_idx, i);
        lua_getfield(L, -1, "code");
        int has_code = 0;
        lua_Integer code = lua_tointegerx(L, -1, &has_code);
        lua_getfield(L, -2, "message");
        const char *msg = lua_tostring(L, -1);
        lua_pop(L, 3);
        if (i > 1)
            luaL_addstring(&b, "; ");
        if (has_code) {
            char num[32];
            snprintf(num, sizeof num, "[%lld] ", (long long)code);
            luaL_addstring(&b, num);
        }
        luaL_addstring(&b, msg ? msg : "");
    }
    luaL_pushresult(&b);
    lua_setfield(L, err, "message");
    luaL_setmetatable(L, ERROR_MT);
    return 2;
}

/* core.error(t): makes t a cloudflare.Error (for failures the Lua layer detects). */
static int cf_core_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "message");
    luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING, 1,
                  "an error needs string fields kind and message");
    lua_pop(L, 2);
    if (lua_getfield(L, 1, "errors") != LUA_TTABLE) {
        lua_newtable(L);
        lua_setfield(L, 1, "errors");
    }
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

static int cf_error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushliteral(L, "cloudflare error");
    return 1;
}

/* ---- responses ---------------------------------------------------------------------- */

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/* Turns the last transfer of c into `result, info` or `nil, err`. This is the only place
 * that interprets what the network sent; it never raises on bad input. */
static int push_response(lua_State *L, cf_client *c, enum cf_http_outcome outcome)
{
    cf_http *h = &c->http;
    const char *ray = h->cf_ray;
    char detail[CURL_ERROR_SIZE + 64];

    switch (outcome) {
    case CF_HTTP_DONE:
        break;
    case CF_HTTP_TIMEOUT:
        snprintf(detail, sizeof detail, "timeout: %s", cf_http_errmsg(h));
        return push_failure(L, "timeout", 0, ray, 0, detail);
    case CF_HTTP_TOO_LARGE:
        snprintf(detail, sizeof detail, "response body larger than %zu bytes; refused",
                 h->max_body);
        return push_failure(L, "decode", h->status, ray, 0, detail);
    case CF_HTTP_NOMEM:
        return luaL_error(L, "not enough memory for the response body");
    case CF_HTTP_NETWORK:
    default:
        snprintf(detail, sizeof detail, "network error: %s", cf_http_errmsg(h));
        return push_failure(L, "network", 0, ray, 0, detail);
    }

    long status = h->status;
    const char *ctype = h->content_type[0] ? h->content_type : "no content type";
    lua_pushvalue(L, UPV_DECODE);
    lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* stack: cjson's message */
        if (!is_2xx(status)) {
            lua_pop(L, 1);
            push_excerpt(L, h->body.data, h->body.len);
            snprintf(detail, sizeof detail, "unexpected response (%s, %zu bytes): %s", ctype,
                     h->body.len, lua_tostring(L, -1));
            return push_failure(L, "http", status, ray, 0, detail);
        }
        snprintf(detail, sizeof detail, "invalid JSON in response body (%zu bytes, %s): %s",
                 h->body.len, ctype, lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
        return push_failure(L, "decode", status, ray, 0, detail);
    }
    int env = lua_gettop(L);
    int success = -1;
    if (lua_istable(L, env)) {
        if (lua_getfield(L, env, "success") == LUA_TBOOLEAN)
            success = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (success < 0) {
        if (!is_2xx(status)) {
            snprintf(detail, sizeof detail,
                     "unexpected response without a Cloudflare envelope "
                     "(%s, %zu bytes)",
                     ctype, h->body.len);
            return push_failure(L, "http", status, ray, 0, detail);
        }
        return push_failure(L, "decode", status, ray, 0,
                            "response is not a Cloudflare API envelope (no boolean 'success')");
    }
    lua_getfield(L, env, "errors");
    push_errors(L, -1);
    if (!success || !is_2xx(status))
        return push_failure(L, "api", status, ray, -1, NULL);
    lua_pop(L, 2);

    lua_getfield(L, env, "result");
    if (lua_isnil(L, -1) || lua_rawequal(L, -1, UPV_NULL))
        return push_failure(L, "decode", status, ray, 0, "response has success=true but no result");
    lua_createtable(L, 0, 2); /* info */
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    if (ray[0]) {
        lua_pushstring(L, ray);
        lua_setfield(L, -2, "request_id");
    }
    return 2; /* result, info */
}

/* ---- the Client --------------------------------------------------------------------- */

/* client:request(method, path[, body]) -> result, info | nil, err */
static int cf_client_request(lua_State *L)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    cf_client *c = check_open(L, 1);
    const char *method = methods[luaL_checkoption(L, 2, NULL, methods)];
    size_t plen;
    const char *path = luaL_checklstring(L, 3, &plen);
    size_t blen = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &blen);
    if (plen == 0 || path[0] != '/')
        return luaL_argerror(L, 3, "path must start with '/'");
    for (size_t i = 0; i < plen; i++) { /* the path is spliced into the URL as it is */
        unsigned char ch = (unsigned char)path[i];
        if (ch <= 0x20 || ch == 0x7f)
            return luaL_argerror(L, 3, "path contains a space or control character");
    }

    c->url.len = c->base_len;
    if (cf_buf_append(&c->url, path, plen) != 0)
        return luaL_error(L, "not enough memory");
    enum cf_http_outcome o = cf_http_perform(&c->http, method, c->url.data, body, blen);
    return push_response(L, c, o);
}

static int cf_client_close(lua_State *L)
{
    cf_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    cf_http_close(&c->http);
    cf_buf_free(&c->url);
    return 0;
}

static int cf_client_tostring(lua_State *L)
{
    cf_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->http.curl == NULL) {
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
    lua_pushfstring(L, "%s: %s", name, value);
    int rc = cf_http_add_header(&c->http, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (rc != 0)
        luaL_error(L, "not enough memory");
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

    if (cf_http_open(&c->http, &cfg) != 0)
        return luaL_error(L, "cloudflare.new: %s", c->http.errbuf);
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
    return 1;
}

/* core.exit_with_parent(): ask the kernel to SIGTERM this process when its parent dies,
 * so a fake API server started by a test never outlives it. */
static int cf_core_exit_with_parent(lua_State *L)
{
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        return luaL_error(L, "prctl(PR_SET_PDEATHSIG) failed");
    if (parent == 1) /* the parent is already gone */
        raise(SIGTERM);
    return 0;
}

int cf_open_core(lua_State *L)
{
    static const luaL_Reg client_methods[] = {
        {"request", cf_client_request}, {"close", cf_client_close}, {NULL, NULL}};
    static const luaL_Reg core_funcs[] = {{"client", cf_core_client},
                                          {"error", cf_core_error},
                                          {"exit_with_parent", cf_core_exit_with_parent},
                                          {NULL, NULL}};

    luaL_requiref(L, "cjson", luaopen_cjson, 0); /* stack: cjson */
    lua_getfield(L, -1, "decode");
    lua_getfield(L, -2, "null");
    lua_remove(L, -3); /* stack: decode null */

    luaL_newmetatable(L, CLIENT_MT); /* stack: decode null mt */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    luaL_setfuncs(L, client_methods, 2); /* stack: decode null mt methods */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, cf_client_index, 1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, cf_client_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cf_client_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, cf_client_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, cf_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1); /* stack: decode null */

    luaL_newlib(L, core_funcs); /* stack: decode null core */
    luaL_getmetatable(L, CLIENT_MT);
    lua_getfield(L, -1, "methods");
    lua_setfield(L, -3, "Client"); /* the Lua layer may add methods */
    lua_pop(L, 1);
    lua_pushliteral(L, CF_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "null");
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 1;
}
