/* cf_redact: the state's secrets, redact and sanitize (see cf_redact.h for the rules).
 * Must not copy a secret out of the registry's anchor, nor print or log anything itself. */
#include "cf_redact.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* The registry key is this constant's address (no string to allocate: lookups never raise). */
static const char secrets_key = 0;
#define SECRETS_MT "cfrun.Secrets"

typedef struct cf_secret {
    const char *s; /* the bytes of a Lua string anchored in the userdata's user value */
    size_t len;
} cf_secret;

/* The userdata at registry[&secrets_key]: a C array for scanning, whose strings its user value
 * (a sequence) keeps alive. Lua strings never move, so the pointers stay valid. */
typedef struct cf_secrets {
    size_t n, cap;
    cf_secret *v; /* malloc'd, freed by __gc */
} cf_secrets;

static int secrets_gc(lua_State *L)
{
    cf_secrets *t = lua_touserdata(L, 1);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    return 0;
}

/* The state's secrets, or NULL when none was ever registered. Never raises. */
static const cf_secrets *get(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &secrets_key);
    const cf_secrets *t = lua_touserdata(L, -1); /* anchored by the registry */
    lua_pop(L, 1);
    return t && t->n > 0 ? t : NULL;
}

/* The first place at or after s where a secret starts, the longest there; NULL when none.
 * *mlen: its length. */
static const char *first(const cf_secrets *t, const char *s, size_t len, size_t *mlen)
{
    const char *best = NULL;
    size_t blen = 0;
    for (size_t i = 0; i < t->n; i++) {
        const cf_secret *x = &t->v[i];
        /* only a match starting at or before the best one so far can win */
        size_t span = best ? (size_t)(best - s) + x->len : len;
        if (span > len)
            span = len;
        const char *p = memmem(s, span, x->s, x->len);
        if (p && (!best || p < best || (p == best && x->len > blen))) {
            best = p;
            blen = x->len;
        }
    }
    *mlen = blen;
    return best;
}

void cf_redact_add(lua_State *L, const char *s, size_t len)
{
    if (len < CF_REDACT_MIN)
        return;
    luaL_checkstack(L, 4, "cf_redact_add");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &secrets_key); /* stack: secrets | nil */
    cf_secrets *t = lua_touserdata(L, -1);
    if (t == NULL) {
        lua_pop(L, 1);
        t = lua_newuserdatauv(L, sizeof *t, 1);
        memset(t, 0, sizeof *t);
        if (luaL_newmetatable(L, SECRETS_MT)) {
            lua_pushcfunction(L, secrets_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_setmetatable(L, -2);
        lua_newtable(L);
        lua_setiuservalue(L, -2, 1);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &secrets_key);
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].len == len && memcmp(t->v[i].s, s, len) == 0) {
            lua_pop(L, 1);
            return;
        }
    }
    if (t->n == t->cap) { /* the array stays owned by the userdata whatever happens */
        size_t cap = t->cap ? 2 * t->cap : 4;
        cf_secret *v = realloc(t->v, cap * sizeof *v);
        if (v == NULL) {
            luaL_error(L, "not enough memory");
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    lua_getiuservalue(L, -1, 1); /* stack: secrets anchors */
    const char *copy = lua_pushlstring(L, s, len);
    lua_rawseti(L, -2, (lua_Integer)t->n + 1);
    t->v[t->n].s = copy;
    t->v[t->n].len = len;
    t->n++;
    lua_pop(L, 2);
}

size_t cf_redact_count(lua_State *L)
{
    const cf_secrets *t = get(L);
    return t ? t->n : 0;
}

int cf_redact_contains(lua_State *L, const char *s, size_t len)
{
    const cf_secrets *t = get(L);
    size_t m;
    return t && first(t, s, len, &m) != NULL;
}

size_t cf_redact_at(lua_State *L, const char *p, size_t avail)
{
    const cf_secrets *t = get(L);
    size_t best = 0;
    for (size_t i = 0; t && i < t->n; i++) {
        const cf_secret *x = &t->v[i];
        if (x->len <= avail && x->len > best && memcmp(p, x->s, x->len) == 0)
            best = x->len;
    }
    return best;
}

/* Pushes redact(s) and returns 1, or pushes nothing and returns 0 when it would be s. */
static int redact(lua_State *L, const char *s, size_t len)
{
    const cf_secrets *t = get(L);
    size_t m;
    const char *p = t ? first(t, s, len, &m) : NULL;
    if (p == NULL)
        return 0;
    const char *at = s, *end = s + len;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (p) {
        luaL_addlstring(&b, at, (size_t)(p - at));
        luaL_addstring(&b, CF_REDACTED);
        at = p + m;
        p = first(t, at, (size_t)(end - at), &m);
    }
    luaL_addlstring(&b, at, (size_t)(end - at));
    luaL_pushresult(&b);
    return 1;
}

/* The length of the escape of the character at s[i] (n bytes in all), 0 when it is kept. */
static int escape_len(const unsigned char *s, size_t i, size_t n)
{
    unsigned char c = s[i];
    if (c == '\n' || c == '\r' || c == '\t')
        return 2;
    if (c < 0x20 || c == 0x7f)
        return 4;
    if (c == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
        return 6; /* a C1 control in UTF-8 */
    return 0;
}

/* Pushes s with its control characters escaped and returns 1, or returns 0 when it has none. */
static int escape(lua_State *L, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len && escape_len(s, i, len) == 0)
        i++;
    if (i == len)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, text, i);
    for (; i < len; i++) {
        unsigned char c = s[i];
        switch (escape_len(s, i, len)) {
        case 0:
            luaL_addchar(&b, (char)c);
            break;
        case 2:
            luaL_addchar(&b, '\\');
            luaL_addchar(&b, c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
            break;
        case 4: {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            luaL_addlstring(&b, e, 4);
            break;
        }
        default: { /* 6: U+0080..U+009F */
            unsigned char d = s[++i];
            char e[6] = {'\\', 'u', '0', '0', hex[d >> 4], hex[d & 15]};
            luaL_addlstring(&b, e, 6);
            break;
        }
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* Pushes sanitize(s) and returns 1, or pushes nothing and returns 0 when it would be s. */
static int sanitize(lua_State *L, const char *s, size_t len)
{
    int changed = redact(L, s, len);
    if (changed)
        s = lua_tolstring(L, -1, &len);
    if (escape(L, s, len)) {
        if (changed)
            lua_remove(L, -2);
        changed = 1;
        s = lua_tolstring(L, -1, &len);
        if (redact(L, s, len)) /* a secret that held a backslash sequence */
            lua_remove(L, -2);
    }
    return changed;
}

const char *cf_redact_push(lua_State *L, const char *s, size_t len)
{
    if (!redact(L, s, len))
        lua_pushlstring(L, s, len);
    return lua_tostring(L, -1);
}

const char *cf_sanitize_push(lua_State *L, const char *s, size_t len)
{
    if (!sanitize(L, s, len))
        lua_pushlstring(L, s, len);
    return lua_tostring(L, -1);
}

void cf_sanitize_at(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        return;
    idx = lua_absindex(L, idx);
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (sanitize(L, s, len))
        lua_replace(L, idx);
}

int cf_core_redact(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    redact(L, s, len);
    return 1; /* the redacted text, or s itself */
}

int cf_core_sanitize(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    sanitize(L, s, len);
    return 1;
}

/* core.add_secret(s): from now on s (8 bytes or more) is redacted like a token: a Redis
 * password, say. */
int cf_core_add_secret(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    cf_redact_add(L, s, len);
    return 0;
}
