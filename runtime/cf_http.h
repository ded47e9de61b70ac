/* cf_http: one libcurl easy handle with its buffers: prepares a request, captures what the API
 * layer needs from the response, and classifies the outcome. Transfers run on the state's
 * multi handle (cf_loop.c); handles are pooled per client and reused. Lua-free: it reports
 * outcomes as codes, never raises. */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <curl/curl.h>
#include <stddef.h>

#include "cf_buf.h"

enum cf_http_outcome {
    CF_HTTP_DONE = 0,  /* a complete HTTP response was received (any status) */
    CF_HTTP_NETWORK,   /* connection failed, dropped or reset, TLS failure, truncated body */
    CF_HTTP_TIMEOUT,   /* connect or total timeout */
    CF_HTTP_TOO_LARGE, /* body exceeded max_body; the transfer was aborted */
    CF_HTTP_NOMEM,
    CF_HTTP_INTERRUPTED /* Ctrl-C or SIGTERM stopped it (see cf_interrupt.h) */
};

typedef struct cf_http_config {
    const char *user_agent;
    const char *ca_file; /* NULL: the system store */
    long timeout_ms;     /* whole request */
    long connect_timeout_ms;
    size_t max_body;
    int multiplex; /* https: prefer one HTTP/2 connection for concurrent requests */
} cf_http_config;

typedef struct cf_http {
    CURL *curl; /* NULL once closed */
    size_t max_body;
    int too_large, nomem, interrupted; /* why a callback stopped the transfer */
    char errbuf[CURL_ERROR_SIZE];
    const char *send; /* the current request body, while the transfer runs */
    size_t send_len, send_off;
    /* the last response */
    long status;
    cf_buf body;
    char cf_ray[64];
    char content_type[96];
    char retry_after[64], retry_after_ms[32], should_retry[16];
    char ratelimit[128], ratelimit_policy[128];
} cf_http;

/* 0 on success; -1 with a reason in h->errbuf. Safe to cf_http_close either way. */
int cf_http_open(cf_http *h, const cf_http_config *cfg);
/* Sets up the next request on h. body may be NULL; it and headers must stay valid until the
 * transfer completed. CURLOPT_PRIVATE is the multi loop's (cf_loop_start sets it). */
void cf_http_prepare(cf_http *h, const char *method, const char *url, const char *body,
                     size_t body_len, long timeout_ms, long connect_timeout_ms,
                     const struct curl_slist *headers);
/* Classifies a completed transfer from libcurl's result code. */
enum cf_http_outcome cf_http_outcome_of(cf_http *h, CURLcode rc);
/* Marks the prepared request as stopped by a signal before or while it ran. */
enum cf_http_outcome cf_http_interrupted(cf_http *h, int started);
/* A one-line description of the last failure (never a credential header's value; for a 3xx,
 * the Location it pointed to). */
const char *cf_http_errmsg(const cf_http *h);
void cf_http_close(cf_http *h);

#endif
