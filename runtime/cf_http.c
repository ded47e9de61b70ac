/* cf_http: libcurl transport (see cf_http.h).
 * Must not know about Lua, JSON or Cloudflare envelopes; it moves bytes and classifies failures.
 * Redirects are never followed; a completed 3xx response with a Location leaves
 * "redirect to <URL>" as its errmsg (the one errmsg of a completed transfer, read by
 * cf_response.c, which sanitizes it like every text from the network). */
#include "cf_http.h"

#include "cf_interrupt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cf_http *h = ud;
    size_t len = size * n;
    /* refuse oversized bodies while they stream in, so a hostile server cannot exhaust memory */
    if (h->body.len + len > h->max_body) {
        h->too_large = 1;
        return 0;
    }
    if (cf_buf_append(&h->body, p, len) != 0) {
        h->nomem = 1;
        return 0;
    }
    return len;
}

/* The request body is fed through a read callback instead of CURLOPT_POSTFIELDS on purpose:
 * libcurl silently resends a request whose reused connection died before any response, and
 * it can only do that by rewinding the body. With no seek callback the rewind fails, so a
 * DELETE whose response was lost is reported, never replayed behind the caller's back. */
static size_t on_send(char *p, size_t size, size_t n, void *ud)
{
    cf_http *h = ud;
    size_t len = size * n;
    size_t left = h->send_len - h->send_off;
    if (len > left)
        len = left;
    memcpy(p, h->send + h->send_off, len);
    h->send_off += len;
    return len;
}

/* Called by libcurl during a transfer: a non-zero return aborts it, so Ctrl-C or SIGTERM
 * stops a slow request at once instead of after its timeout. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    cf_http *h = ud;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    h->interrupted = cf_interrupted() != 0 || cf_termination_requested();
    return h->interrupted;
}

/* Copies the value of header line p (length len) into dst if its name matches. A value that
 * does not fit is dropped, not cut: a cut one would mean something else (a smaller number, a
 * part of a text that may hold a credential). */
static void capture(const char *p, size_t len, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return;
    p += nl + 1;
    len -= nl + 1;
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    if (len >= dstlen)
        len = 0;
    memcpy(dst, p, len);
    dst[len] = '\0';
}

static void clear_headers(cf_http *h)
{
    h->cf_ray[0] = h->content_type[0] = '\0';
    h->retry_after[0] = h->retry_after_ms[0] = h->should_retry[0] = '\0';
    h->ratelimit[0] = h->ratelimit_policy[0] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    cf_http *h = ud;
    size_t len = size * n;
    /* a status line starts a new response (after "100 Continue" or a retried auth) */
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        clear_headers(h);
        return len;
    }
    capture(p, len, "cf-ray", h->cf_ray, sizeof h->cf_ray);
    capture(p, len, "content-type", h->content_type, sizeof h->content_type);
    capture(p, len, "retry-after", h->retry_after, sizeof h->retry_after);
    capture(p, len, "retry-after-ms", h->retry_after_ms, sizeof h->retry_after_ms);
    capture(p, len, "x-should-retry", h->should_retry, sizeof h->should_retry);
    capture(p, len, "ratelimit", h->ratelimit, sizeof h->ratelimit);
    capture(p, len, "ratelimit-policy", h->ratelimit_policy, sizeof h->ratelimit_policy);
    return len;
}

int cf_http_open(cf_http *h, const cf_http_config *cfg)
{
    memset(h, 0, sizeof *h);
    cf_buf_init(&h->body);
    h->max_body = cfg->max_body;
    h->curl = curl_easy_init();
    if (!h->curl) {
        snprintf(h->errbuf, sizeof h->errbuf, "cannot initialise libcurl");
        return -1;
    }
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(c, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* verification is set explicitly so no build default or environment can weaken it */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, cfg->user_agent);
    SET(CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, h);
    SET(CURLOPT_READFUNCTION, on_send);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFODATA, h);
    SET(CURLOPT_READDATA, h);
    if (cfg->ca_file)
        SET(CURLOPT_CAINFO, cfg->ca_file);
    /* concurrent requests to one TLS host wait for its connection to learn whether it speaks
     * HTTP/2, and then share it, instead of each opening a connection of its own */
    if (cfg->multiplex)
        SET(CURLOPT_PIPEWAIT, 1L);
#undef SET
    if (rc != CURLE_OK) {
        snprintf(h->errbuf, sizeof h->errbuf, "libcurl option refused: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

void cf_http_prepare(cf_http *h, const char *method, const char *url, const char *body,
                     size_t body_len, long timeout_ms, long connect_timeout_ms,
                     const struct curl_slist *headers)
{
    CURL *c = h->curl;
    cf_buf_reset(&h->body);
    h->status = 0;
    h->too_large = h->nomem = h->interrupted = 0;
    h->errbuf[0] = '\0';
    clear_headers(h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);

    /* HTTPGET first: it resets the body settings of the previous request on this handle */
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    h->send = body;
    h->send_len = body ? body_len : 0;
    h->send_off = 0;
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
}

enum cf_http_outcome cf_http_interrupted(cf_http *h, int started)
{
    h->send = NULL;
    snprintf(h->errbuf, sizeof h->errbuf, "%s",
             started ? "interrupted by a signal; the request may or may not have been applied"
                     : "interrupted by a signal before it was sent");
    return CF_HTTP_INTERRUPTED;
}

enum cf_http_outcome cf_http_outcome_of(cf_http *h, CURLcode rc)
{
    CURL *c = h->curl;
    h->send = NULL; /* never keep a pointer into Lua memory */
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
    if (rc == CURLE_OK) {
        h->errbuf[0] = '\0';
        char *to = NULL; /* where libcurl would have gone: the Location, resolved */
        if (h->status >= 300 && h->status < 400 &&
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &to) == CURLE_OK && to) {
            size_t n = strlen(to);
            if (n + sizeof "redirect to " <= sizeof h->errbuf) /* whole, or not at all */
                snprintf(h->errbuf, sizeof h->errbuf, "redirect to %s", to);
            else
                snprintf(h->errbuf, sizeof h->errbuf,
                         "redirect to a location of %zu bytes, too long to show", n);
        }
        return CF_HTTP_DONE;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK && h->interrupted)
        return cf_http_interrupted(h, 1);
    if (h->too_large)
        return CF_HTTP_TOO_LARGE;
    if (h->nomem)
        return CF_HTTP_NOMEM;
    if (rc == CURLE_SEND_FAIL_REWIND)
        snprintf(h->errbuf, sizeof h->errbuf,
                 "connection closed before a response; not resent, as the server may "
                 "have applied the request");
    else if (h->errbuf[0] == '\0')
        snprintf(h->errbuf, sizeof h->errbuf, "%s", curl_easy_strerror(rc));
    return rc == CURLE_OPERATION_TIMEDOUT ? CF_HTTP_TIMEOUT : CF_HTTP_NETWORK;
}

const char *cf_http_errmsg(const cf_http *h)
{
    return h->errbuf[0] ? h->errbuf : "unknown transport error";
}

void cf_http_close(cf_http *h)
{
    if (h->curl) {
        curl_easy_cleanup(h->curl);
        h->curl = NULL;
    }
    cf_buf_free(&h->body);
}
