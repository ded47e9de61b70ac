/* cf_loop: the state's multi handle and the Transfer userdata (see cf_loop.h).
 * Knows libcurl's multi interface and the Lua values that anchor a transfer; must not know
 * clients, credentials or the API (cf_client.c), nor schedule coroutines (async.lua). */
#include "cf_loop.h"

#include "cf_lua.h"
#include "cf_sys.h"

#include <lauxlib.h>
#include <time.h>

#include "cf_interrupt.h"
#include "cf_response.h"

#define LOOP_KEY     "cfrun.loop"      /* the cf_loop userdata */
#define INFLIGHT_KEY "cfrun.inflight"  /* light userdata -> Transfer, for every running one */
#define DONE_KEY     "cfrun.completed" /* Transfers completed since the last core.poll */
#define TRANSFER_MT  "cloudflare.Transfer"

/* A poll never sleeps longer than this, so a signal that lands just before it is noticed
 * soon (poll(2) itself returns early on a signal that lands during it). */
#define SLICE_MS 100

typedef struct cf_loop {
    CURLM *multi; /* NULL once closed (the state is closing) */
    int inflight;
} cf_loop;

enum { XF_RUNNING, XF_DONE, XF_FINISHED };

typedef struct cf_transfer {
    cf_http *h; /* NULL once given back */
    cf_loop *loop;
    cf_loop_release release;
    void *owner;
    int state;
    int notify;  /* on completion, queue it for core.poll (a task waits for it) */
    int started; /* handed to libcurl (else refused before it began) */
    enum cf_http_outcome outcome;
    const cf_json_shape *shape;
} cf_transfer;

static cf_loop *get_loop(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    cf_loop *lp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lp;
}

static void give_back(cf_transfer *x)
{
    if (x->h) {
        cf_http *h = x->h;
        x->h = NULL;
        x->release(x->owner, h);
    }
}

/* The transfer is over: take it off the multi handle and out of the in-flight table, and
 * queue it for the scheduler when a task waits for it. */
static void complete(lua_State *L, cf_transfer *x, enum cf_http_outcome outcome)
{
    cf_loop *lp = x->loop;
    if (x->state == XF_RUNNING) {
        curl_multi_remove_handle(lp->multi, x->h->curl);
        lp->inflight--;
    }
    x->state = XF_DONE;
    x->outcome = outcome;
    if (outcome == CF_HTTP_INTERRUPTED) /* reported as its result, so not raised in Lua */
        cf_interrupt_consume();
    lua_getfield(L, LUA_REGISTRYINDEX, INFLIGHT_KEY); /* stack: inflight */
    if (x->notify) {
        lua_getfield(L, LUA_REGISTRYINDEX, DONE_KEY); /* stack: inflight done */
        lua_rawgetp(L, -2, x);
        if (lua_isnil(L, -1)) { /* completed at start: the caller still holds it */
            lua_pop(L, 2);
        } else {
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
            lua_pop(L, 1);
        }
    }
    lua_pushnil(L);
    lua_rawsetp(L, -2, x);
    lua_pop(L, 1);
}

static void collect(lua_State *L, cf_loop *lp)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(lp->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
        cf_transfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        complete(L, x, cf_http_outcome_of(x->h, rc));
    }
}

/* Ctrl-C or SIGTERM stops every request in flight: each reports "interrupted" as its result
 * (so what was sent stays on record), and the interrupt is consumed instead of raised. */
static void abort_all(lua_State *L, cf_loop *lp)
{
    if (lp->inflight == 0)
        return;
    lua_getfield(L, LUA_REGISTRYINDEX, INFLIGHT_KEY);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) { /* clearing fields during a traversal is allowed */
        cf_transfer *x = lua_touserdata(L, -1);
        lua_pop(L, 1);
        complete(L, x, cf_http_interrupted(x->h, 1));
    }
    lua_pop(L, 1);
}

static int signalled(void)
{
    return cf_interrupted() || cf_termination_requested();
}

/* Moves every transfer forward; waits up to timeout_ms for activity first if asked. */
static void step(lua_State *L, cf_loop *lp, int timeout_ms)
{
    int running;
    if (timeout_ms > 0)
        curl_multi_poll(lp->multi, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(lp->multi, &running);
    int sig = signalled(); /* before collect: completing an interrupted transfer consumes it */
    collect(L, lp);
    if (sig)
        abort_all(L, lp);
}

void cf_loop_start(lua_State *L, cf_http *h, cf_loop_release release, void *owner, int owner_idx,
                   int body_idx, int notify)
{
    owner_idx = lua_absindex(L, owner_idx);
    body_idx = body_idx ? lua_absindex(L, body_idx) : 0;
    cf_loop *lp = get_loop(L);
    cf_transfer *x = lua_newuserdatauv(L, sizeof *x, 2);
    x->h = h;
    x->loop = lp;
    x->release = release;
    x->owner = owner;
    x->state = XF_DONE;
    x->notify = notify;
    x->started = 0;
    x->outcome = CF_HTTP_NETWORK;
    x->shape = NULL;
    luaL_setmetatable(L, TRANSFER_MT); /* from here __gc gives the handle back */
    lua_pushvalue(L, owner_idx);
    lua_setiuservalue(L, -2, 1);
    if (body_idx) { /* libcurl reads the body from the Lua string while the transfer runs */
        lua_pushvalue(L, body_idx);
        lua_setiuservalue(L, -2, 2);
    }
    curl_easy_setopt(h->curl, CURLOPT_PRIVATE, x);

    if (signalled()) { /* not even started */
        complete(L, x, cf_http_interrupted(h, 0));
        return;
    }
    CURLMcode mc = lp->multi ? curl_multi_add_handle(lp->multi, h->curl) : CURLM_BAD_HANDLE;
    if (mc != CURLM_OK) {
        snprintf(h->errbuf, sizeof h->errbuf, "cannot start the request: %s",
                 curl_multi_strerror(mc));
        complete(L, x, CF_HTTP_NETWORK);
        return;
    }
    x->state = XF_RUNNING;
    x->started = 1;
    lp->inflight++;
    lua_getfield(L, LUA_REGISTRYINDEX, INFLIGHT_KEY); /* anchored while it runs */
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, x);
    lua_pop(L, 1);
}

/* Whether any byte of the request reached the connection: a transfer that failed before
 * (refused, no connection, TLS handshake failed) cannot have been applied. */
static int wrote_request(const cf_transfer *x)
{
    if (!x->started)
        return 0;
    if (x->outcome == CF_HTTP_DONE || x->outcome == CF_HTTP_TOO_LARGE)
        return 1; /* a response came: whatever it says, the server had the request */
    long size = 0;
    if (curl_easy_getinfo(x->h->curl, CURLINFO_REQUEST_SIZE, &size) != CURLE_OK)
        return 1; /* unknown: assume the worst */
    return size > 0;
}

int cf_loop_finish(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    cf_transfer *x = luaL_checkudata(L, idx, TRANSFER_MT);
    if (x->state == XF_FINISHED)
        return luaL_error(L, "the result of this transfer was already taken");
    x->notify = 0; /* its caller is here: nobody else needs to hear of it */
    while (x->state == XF_RUNNING)
        step(L, x->loop, SLICE_MS);
    cf_http *h = x->h;
    cf_response r = {0};
    r.outcome = x->outcome;
    r.status = h->status;
    r.body = h->body.data;
    r.body_len = h->body.len;
    r.max_body = h->max_body;
    curl_easy_getinfo(h->curl, CURLINFO_HTTP_VERSION, &r.http_version);
    r.errmsg = cf_http_errmsg(h);
    r.cf_ray = h->cf_ray;
    r.content_type = h->content_type;
    r.retry_after = h->retry_after;
    r.retry_after_ms = h->retry_after_ms;
    r.should_retry = h->should_retry;
    r.ratelimit = h->ratelimit;
    r.ratelimit_policy = h->ratelimit_policy;
    r.shape = x->shape;
    int n = cf_response_push(L, &r);
    if (n == 2 && lua_isnil(L, -2) && lua_istable(L, -1) && !wrote_request(x)) {
        lua_pushboolean(L, 1); /* certainly not applied: the server never saw it */
        lua_setfield(L, -2, "unsent");
    }
    x->state = XF_FINISHED;
    give_back(x);
    lua_pushnil(L); /* the body string is no longer needed */
    lua_setiuservalue(L, idx, 2);
    return n;
}

void cf_loop_shape(lua_State *L, const cf_json_shape *shape)
{
    cf_transfer *x = luaL_checkudata(L, -1, TRANSFER_MT);
    x->shape = shape;
}

/* transfer:finish() -> result, info | nil, err: waits for it if it still runs. */
static int transfer_finish(lua_State *L)
{
    return cf_loop_finish(L, 1);
}

/* transfer:done() -> true once it completed (finish will not wait) */
static int transfer_done(lua_State *L)
{
    cf_transfer *x = luaL_checkudata(L, 1, TRANSFER_MT);
    lua_pushboolean(L, x->state != XF_RUNNING);
    return 1;
}

static int transfer_gc(lua_State *L)
{
    cf_transfer *x = luaL_checkudata(L, 1, TRANSFER_MT);
    /* running only when the state closes: nothing anchors it otherwise */
    if (x->state == XF_RUNNING && x->loop->multi) {
        curl_multi_remove_handle(x->loop->multi, x->h->curl);
        x->loop->inflight--;
    }
    x->state = XF_FINISHED;
    give_back(x);
    return 0;
}

static int transfer_tostring(lua_State *L)
{
    static const char *const states[] = {"running", "done", "finished"};
    cf_transfer *x = luaL_checkudata(L, 1, TRANSFER_MT);
    lua_pushfstring(L, "cloudflare.Transfer (%s): %p", states[x->state], (void *)x);
    return 1;
}

/* core.poll([seconds]) -> list of the Transfers (started by Client:start) completed since the
 * last call. Waits up to `seconds` (default 0) for the first completion; returns early when a
 * signal arrives (the list then holds the transfers it interrupted) or the process is
 * stopping. */
static int core_poll(lua_State *L)
{
    lua_Number secs = luaL_optnumber(L, 1, 0);
    luaL_argcheck(L, secs >= 0 && secs <= 86400, 1, "expected 0 to 86400 seconds");
    cf_loop *lp = get_loop(L);
    double deadline = (cf_now() * 1e3) + secs * 1e3;
    lua_getfield(L, LUA_REGISTRYINDEX, DONE_KEY); /* stack: done */
    for (;;) {
        double left = deadline - (cf_now() * 1e3);
        step(L, lp, left <= 0 ? 0 : left > SLICE_MS ? SLICE_MS : (int)left + 1);
        if (lua_rawlen(L, -1) > 0 || left <= 0 || signalled())
            break;
    }
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, DONE_KEY);
    return 1;
}

static int loop_gc(lua_State *L)
{
    cf_loop *lp = lua_touserdata(L, 1);
    if (lp->multi) {
        curl_multi_cleanup(lp->multi);
        lp->multi = NULL;
    }
    return 0;
}

void cf_loop_open(lua_State *L)
{
    static const luaL_Reg transfer_methods[] = {
        {"finish", transfer_finish}, {"done", transfer_done}, {NULL, NULL}};
    int core = lua_gettop(L);

    cf_loop *lp = lua_newuserdatauv(L, sizeof *lp, 0);
    lp->multi = NULL;
    lp->inflight = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, loop_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lp->multi = curl_multi_init();
    if (!lp->multi)
        luaL_error(L, "cannot initialise libcurl's multi interface");
    /* HTTP/2 multiplexing where a TLS server offers it; keep-alive otherwise */
    curl_multi_setopt(lp->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, INFLIGHT_KEY);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, DONE_KEY);

    cf_new_class(L, TRANSFER_MT, transfer_methods, transfer_gc, NULL, transfer_tostring);

    lua_pushcfunction(L, core_poll);
    lua_setfield(L, core, "poll");
}
