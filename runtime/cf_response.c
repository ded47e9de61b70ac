/* cf_response: turns what came back from the network (cf_response) into the Lua values
 * scripts see: `result, info` or `nil, err` with err a cloudflare.Error. This is the one
 * place that interprets bytes from the server, and the fuzz target: whatever the input, it
 * must return a value and never raise (but when memory runs out), crash or read out of bounds.
 * Every text of an error (message, errors[i].message, request_id) is sanitized (cf_redact.h): no
 * active credential and no raw control character from the server reaches a script, a log or a
 * terminal. */
#include "cf_response.h"

#include "cf_error.h"
#include "cf_jsondec.h"
#include "cf_redact.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* how cf_http_outcome_of's text for a completed 3xx response with a Location starts */
#define REDIRECT_PREFIX "redirect to "

/* ---- errors ------------------------------------------------------------------------- */

#define EXCERPT_MAX 117 /* bytes of a body shown in a message, before "..." */

/* Pushes a printable one-line excerpt of a body, so an HTML error page can be recognised.
 * Runs of control characters become one space; a credential becomes <redacted> before the
 * excerpt is cut, so the cut can never leave part of one. */
static void push_excerpt(lua_State *L, const char *p, size_t len)
{
    char out[EXCERPT_MAX + 3];
    size_t n = 0;
    int space = 0, cut = 0;
    if (p == NULL) /* an empty body has no buffer yet */
        len = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f) {
            space = n > 0;
            continue;
        }
        size_t secret = cf_redact_at(L, p + i, len - i);
        const char *piece = secret ? CF_REDACTED : p + i;
        size_t plen = secret ? sizeof CF_REDACTED - 1 : 1;
        if (n + (size_t)space + plen > EXCERPT_MAX) {
            cut = 1;
            break;
        }
        if (space)
            out[n++] = ' ';
        space = 0;
        memcpy(out + n, piece, plen);
        n += plen;
        if (secret)
            i += secret - 1;
    }
    if (cut)
        for (int dots = 0; dots < 3; dots++)
            out[n++] = '.';
    lua_pushlstring(L, out, n);
}

/* Converts the envelope's errors array at index idx (any value) into a fresh array of
 * { code = <integer or nil>, message = <string> }, so that a code is an integer whatever
 * number type it decoded as (1141.0 would print as "[1141.0]"). stack: ... -> ... errors */
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
        if (lua_getfield(L, -1, "message") == LUA_TSTRING) {
            cf_sanitize_at(L, -1);
        } else {
            lua_pop(L, 1);
            lua_pushliteral(L, "(no message)");
        }
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, i);
    }
}

/* ---- headers ------------------------------------------------------------------------ */

/* Reads a non-negative integer after "key=" in a structured header such as
 * `"default";r=12;t=30`. Returns -1 when absent or malformed. */
static long sf_param(const char *h, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = h; p && *p; p = strchr(p + 1, ';')) {
        const char *q = p;
        while (*q == ';' || *q == ' ')
            q++;
        if (strncmp(q, key, klen) == 0 && q[klen] == '=') {
            char *end;
            long v = strtol(q + klen + 1, &end, 10);
            if (end != q + klen + 1 && v >= 0 && (*end == '\0' || *end == ';' || *end == ' '))
                return v;
            return -1;
        }
    }
    return -1;
}

/* Seconds the server asks us to wait: retry-after-ms, then Retry-After as seconds or as an
 * HTTP date. Returns -1 when neither is usable. */
static double retry_after(const cf_response *r)
{
    char *end;
    if (r->retry_after_ms && *r->retry_after_ms) {
        double ms = strtod(r->retry_after_ms, &end);
        if (end != r->retry_after_ms && *end == '\0' && ms >= 0 && ms < 1e12)
            return ms / 1000.0;
    }
    if (r->retry_after && *r->retry_after) {
        long s = strtol(r->retry_after, &end, 10);
        if (end != r->retry_after && *end == '\0' && s >= 0)
            return (double)s;
        time_t when = curl_getdate(r->retry_after, NULL);
        if (when != -1) {
            double d = difftime(when, time(NULL));
            return d > 0 ? d : 0;
        }
    }
    return -1;
}

/* Adds the body size and what the response headers say about pacing and retrying to the
 * table on top. */
static void push_header_hints(lua_State *L, const cf_response *r)
{
    if (r->outcome == CF_HTTP_DONE) {
        lua_pushinteger(L, (lua_Integer)r->body_len);
        lua_setfield(L, -2, "bytes");
        const char *v = r->http_version == CURL_HTTP_VERSION_3     ? "3"
                        : r->http_version == CURL_HTTP_VERSION_2_0 ? "2"
                        : r->http_version == CURL_HTTP_VERSION_1_1 ? "1.1"
                        : r->http_version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                                   : NULL;
        if (v) { /* which protocol answered: HTTP/2 means requests shared a connection */
            lua_pushstring(L, v);
            lua_setfield(L, -2, "http_version");
        }
    }
    double wait = retry_after(r);
    if (wait >= 0) {
        lua_pushnumber(L, wait);
        lua_setfield(L, -2, "retry_after");
    }
    if (r->should_retry && *r->should_retry) {
        if (strcmp(r->should_retry, "true") == 0 || strcmp(r->should_retry, "false") == 0) {
            lua_pushboolean(L, r->should_retry[0] == 't');
            lua_setfield(L, -2, "should_retry");
        }
    }
    if (r->ratelimit && *r->ratelimit) {
        long remaining = sf_param(r->ratelimit, "r"), reset = sf_param(r->ratelimit, "t");
        if (remaining >= 0 && reset >= 0) {
            lua_createtable(L, 0, 4);
            lua_pushinteger(L, remaining);
            lua_setfield(L, -2, "remaining");
            lua_pushinteger(L, reset);
            lua_setfield(L, -2, "reset");
            if (r->ratelimit_policy && *r->ratelimit_policy) {
                long q = sf_param(r->ratelimit_policy, "q");
                long w = sf_param(r->ratelimit_policy, "w");
                if (q >= 0 && w >= 0) {
                    lua_pushinteger(L, q);
                    lua_setfield(L, -2, "quota");
                    lua_pushinteger(L, w);
                    lua_setfield(L, -2, "window");
                }
            }
            lua_setfield(L, -2, "ratelimit");
        }
    }
}

/* ---- responses ---------------------------------------------------------------------- */

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static int fail(lua_State *L, const cf_response *r, const char *kind, long status, int errors_idx,
                const char *detail)
{
    cf_error_push(L, kind, status, r->cf_ray, errors_idx, detail);
    push_header_hints(L, r);
    return 2;
}

int cf_response_push(lua_State *L, const cf_response *r)
{
    char detail[CURL_ERROR_SIZE + 200];
    const char *errmsg = r->errmsg && *r->errmsg ? r->errmsg : "unknown transport error";

    luaL_checkstack(L, 20, "cf_response_push");
    switch (r->outcome) {
    case CF_HTTP_DONE:
        break;
    case CF_HTTP_TIMEOUT:
        snprintf(detail, sizeof detail, "timeout: %s", errmsg);
        return fail(L, r, "timeout", 0, 0, detail);
    case CF_HTTP_TOO_LARGE:
        snprintf(detail, sizeof detail, "response body larger than %zu bytes; refused",
                 r->max_body);
        return fail(L, r, "decode", r->status, 0, detail);
    case CF_HTTP_NOMEM:
        return luaL_error(L, "not enough memory for the response body");
    case CF_HTTP_INTERRUPTED:
        snprintf(detail, sizeof detail, "interrupted: %s", errmsg);
        return fail(L, r, "interrupted", 0, 0, detail);
    case CF_HTTP_NETWORK:
    default:
        snprintf(detail, sizeof detail, "network error: %s", errmsg);
        return fail(L, r, "network", 0, 0, detail);
    }

    long status = r->status;
    /* cfrun never follows a redirect (cf_http.c turns off libcurl's following): for a 3xx
     * with a Location, cf_http's errmsg says where it pointed */
    if (status >= 300 && status < 400 && r->errmsg &&
        strncmp(r->errmsg, REDIRECT_PREFIX, sizeof REDIRECT_PREFIX - 1) == 0) {
        snprintf(detail, sizeof detail,
                 "%s (not followed: cfrun never follows redirects; check base_url)", r->errmsg);
        return fail(L, r, "http", status, 0, detail);
    }
    const char *ctype = r->content_type && *r->content_type ? r->content_type : "no content type";
    lua_getfield(L, LUA_REGISTRYINDEX, CF_REG_NULL);
    int decoded = cf_json_decode_shaped(L, r->body ? r->body : "", r->body_len, -1, r->shape);
    lua_remove(L, -2); /* stack: the value, or the decoder's message */
    /* JSON whose object repeats a key is ambiguous, not an error page: a decode error
     * whatever the status */
    int duplicate =
        !decoded && lua_isstring(L, -1) && strncmp(lua_tostring(L, -1), "duplicate key", 13) == 0;
    if (!decoded) {
        if (!is_2xx(status) && !duplicate) {
            lua_pop(L, 1);
            push_excerpt(L, r->body, r->body_len);
            snprintf(detail, sizeof detail, "unexpected response (%s, %zu bytes): %s", ctype,
                     r->body_len, lua_tostring(L, -1));
            return fail(L, r, "http", status, 0, detail);
        }
        snprintf(detail, sizeof detail, "invalid JSON in response body (%zu bytes, %s): %s",
                 r->body_len, ctype, lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
        return fail(L, r, "decode", status, 0, detail);
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
                     "unexpected response without a Cloudflare envelope (%s, %zu bytes)", ctype,
                     r->body_len);
            return fail(L, r, "http", status, 0, detail);
        }
        return fail(L, r, "decode", status, 0,
                    "response is not a Cloudflare API envelope (no boolean 'success')");
    }
    lua_getfield(L, env, "errors");
    push_errors(L, -1);
    if (!success || !is_2xx(status))
        return fail(L, r, "api", status, -1, NULL);
    lua_pop(L, 2);

    lua_getfield(L, env, "result");
    lua_getfield(L, LUA_REGISTRYINDEX, CF_REG_NULL);
    int null = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (lua_isnil(L, -1) || null)
        return fail(L, r, "decode", status, 0, "response has success=true but no result");
    lua_createtable(L, 0, 5); /* info */
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    /* a paginated list's counts sit beside result in the envelope (the v2 list) */
    if (lua_getfield(L, env, "result_info") == LUA_TTABLE)
        lua_setfield(L, -2, "result_info");
    else
        lua_pop(L, 1);
    if (r->cf_ray && *r->cf_ray) {
        cf_sanitize_push(L, r->cf_ray, strlen(r->cf_ray));
        lua_setfield(L, -2, "request_id");
    }
    push_header_hints(L, r);
    if (r->shape) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "shaped");
    }
    return 2; /* result, info */
}
