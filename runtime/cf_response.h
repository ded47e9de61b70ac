/* cf_response: what came back from one HTTP exchange, and its conversion into Lua values.
 * Must not perform I/O: it reads the struct it is given and nothing else. */
#ifndef CF_RESPONSE_H
#define CF_RESPONSE_H

#include <lua.h>
#include <stddef.h>

#include "cf_http.h"
#include "cf_jsondec.h"

/* registry key holding cjson.null, what JSON null decodes to (set by cf_open_core) */
#define CF_REG_NULL "cfrun.json.null"

typedef struct cf_response {
    enum cf_http_outcome outcome;
    long status;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    size_t max_body;    /* for the message of CF_HTTP_TOO_LARGE */
    long http_version;  /* CURL_HTTP_VERSION_*, 0 when unknown */
    const char *errmsg; /* transport failure text */
    /* response headers, NULL or "" when absent */
    const char *cf_ray, *content_type, *retry_after, *retry_after_ms, *should_retry, *ratelimit,
        *ratelimit_policy;
    const cf_json_shape *shape; /* how the body's records are built (NULL: plain JSON) */
} cf_response;

/* Pushes `result, info` (info: status, request_id, result_info, bytes, http_version,
 * ratelimit, retry_after, should_retry, shaped: true when decoded with r->shape) or `nil, err`
 * (a cloudflare.Error: kind, status, errors, request_id, message, plus the same hints).
 * Returns 2. Raises only when memory runs out. */
int cf_response_push(lua_State *L, const cf_response *r);

#endif
