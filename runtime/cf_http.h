/* cf_http: one reusable libcurl easy handle per client; performs a request and captures
 * what the API layer needs. Lua-free: it reports outcomes as codes, never raises. */
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
} cf_http_config;

typedef struct cf_http {
    CURL *curl;                 /* NULL once closed */
    struct curl_slist *headers; /* fixed headers, credentials among them */
    size_t max_body;
    int too_large, nomem;
    char errbuf[CURL_ERROR_SIZE];
    const char *send; /* the current request body, during cf_http_perform only */
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
/* Adds a fixed header line ("Name: value") sent on every request. 0 or -1 (no memory). */
int cf_http_add_header(cf_http *h, const char *line);
/* body may be NULL. The body memory must stay valid during the call. */
enum cf_http_outcome cf_http_perform(cf_http *h, const char *method, const char *url,
                                     const char *body, size_t body_len, long timeout_ms,
                                     long connect_timeout_ms);
/* A one-line description of the last failure (never contains header values). */
const char *cf_http_errmsg(const cf_http *h);
void cf_http_close(cf_http *h);

#endif
