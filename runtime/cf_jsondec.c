/* cf_jsondec: strict JSON into Lua values (see cf_jsondec.h).
 * Recursive descent over the text; members gather on the Lua stack, so each table is created
 * once at its final size (up to FLUSH members; larger ones grow from there). An object that
 * repeats a key is refused ("duplicate key"): which of the two values is meant is anybody's
 * guess, and two readers (a proxy, a script) could pick differently. Must not know what the
 * JSON means: envelopes and results are cf_response.c's and the Lua layer's. */
#include "cf_jsondec.h"

#include <lauxlib.h>
#include <string.h>

/* Members kept on the Lua stack before a table takes them: bounds stack use on huge arrays,
 * and, with CF_JSON_MAX_DEPTH open objects each holding FLUSH key/value pairs, keeps the
 * deepest document within Lua's stack limit (LUAI_MAXSTACK, 1,000,000 slots): 1,000 levels of
 * 2 * 256 slots. At 1024, 1,000 nested objects of 1,000 members (8.9 MB, under max_body)
 * overflowed it and the decoder raised. */
#define FLUSH 256
#if CF_JSON_MAX_DEPTH * (2 * FLUSH + 8) >= 1000000
#error "FLUSH too large for CF_JSON_MAX_DEPTH: the deepest document would overflow Lua's stack"
#endif

/* Object keys repeat (an API list is many objects of the same few keys): the first KEYS short
 * keys seen are kept, so that a repeat is pushed from the cache instead of being hashed and
 * looked up in Lua's string table again. */
#define KEYS       16
#define KEY_MAXLEN 40

/* Beyond the keys, the table at keys_idx anchors, for a shape, each member's `as` name and its
 * last shared value. */
#define AS_SLOT(l, m)     (KEYS + 1 + ((l)*CF_JSON_SHAPE_MEMBERS + (m)))
#define SHARED_SLOT(l, m) (AS_SLOT(2, 0) + ((l)*CF_JSON_SHAPE_MEMBERS + (m)))

#define DUP_SHOWN 64 /* a repeated key longer than this is described by its size */

typedef struct dec {
    lua_State *L;
    const char *p, *end, *start;
    int null_idx;
    int keys_idx; /* stack index of the table anchoring the cached keys */
    int nkeys;
    int slot; /* the cache slot of the key just read, -1 when it is not cached */
    /* objects of a list repeat their keys in one order: the slot that followed each slot last
     * time is tried first (-1: none) */
    int last;
    short next[KEYS];
    struct {
        const char *s; /* the Lua string's bytes, stable while the table anchors it */
        size_t len;
    } keys[KEYS];
    int depth;
    /* the shape (NULL: none); for each cached key, the list it names and the member it is in
     * each list (-1: none); per list and member, the last shared value (anchored at keys_idx
     * after the keys) */
    const cf_json_shape *shape;
    short list_of[KEYS], member_of[2][KEYS];
    short target[2][CF_JSON_SHAPE_MEMBERS]; /* the first member of the same `as` */
    struct {
        const char *s;
        size_t len;
    } shared[2][CF_JSON_SHAPE_MEMBERS];
    const char *err; /* the first problem found, a static string */
    size_t err_at;   /* its byte offset */
    /* for "duplicate key": the key, made printable; dup_len 0 when too long to show */
    char dup[DUP_SHOWN + 1];
    size_t dup_len, dup_size;
} dec;

static int fail(dec *d, const char *msg, const char *at)
{
    if (!d->err) {
        d->err = msg;
        d->err_at = (size_t)(at - d->start);
    }
    return 0;
}

static void skip_ws(dec *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static int is_digit(const dec *d, const char *q)
{
    return q < d->end && *q >= '0' && *q <= '9';
}

static int value(dec *d);

static int hex4(const dec *d, const char *q, unsigned *out)
{
    unsigned v = 0;
    if (d->end - q < 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    luaL_addlstring(b, u, n);
}

/* The escape at q (just after the backslash); returns the position after it, or NULL. */
static const char *escape(dec *d, const char *q, luaL_Buffer *b)
{
    static const char plain[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
    const char *c = q < d->end && *q ? strchr(plain, *q) : NULL;
    if (c) {
        luaL_addchar(b, meant[c - plain]);
        return q + 1;
    }
    unsigned cp, lo;
    if (q >= d->end || *q != 'u' || !hex4(d, q + 1, &cp)) {
        fail(d, "invalid escape in a string", q - 1);
        return NULL;
    }
    q += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        fail(d, "lone low surrogate in a string", q - 6);
        return NULL;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) { /* a pair makes one code point above U+FFFF */
        if (d->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(d, q + 2, &lo) || lo < 0xdc00 ||
            lo > 0xdfff) {
            fail(d, "high surrogate without its low half in a string", q - 6);
            return NULL;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        q += 6;
    }
    add_utf8(b, cp);
    return q;
}

static int string(dec *d)
{
    const char *open = d->p, *s = d->p + 1, *q = s;
    while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    if (q < d->end && *q == '"') { /* no escapes: the common case */
        lua_pushlstring(d->L, s, (size_t)(q - s));
        d->p = q + 1;
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(d->L, &b);
    luaL_addlstring(&b, s, (size_t)(q - s));
    while (q < d->end) {
        if (*q == '"') {
            luaL_pushresult(&b);
            d->p = q + 1;
            return 1;
        }
        if ((unsigned char)*q < 0x20)
            return fail(d, "control character in a string", q);
        if (*q == '\\') {
            q = escape(d, q + 1, &b);
            if (!q)
                return 0;
            continue;
        }
        const char *run = q;
        while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        luaL_addlstring(&b, run, (size_t)(q - run));
    }
    return fail(d, "unterminated string", open);
}

/* Which list of the shape the key s names (-1: none). */
static int list_named(const cf_json_shape *shape, const char *s, size_t len)
{
    for (int l = 0; l < shape->nlists; l++)
        if (strlen(shape->lists[l].name) == len && memcmp(shape->lists[l].name, s, len) == 0)
            return l;
    return -1;
}

/* What the key just cached in `slot` is to the shape: a list's name, a member of a list. */
static void classify(dec *d, int slot, const char *s, size_t len)
{
    const cf_json_shape *shape = d->shape;
    d->list_of[slot] = (short)list_named(shape, s, len);
    for (int l = 0; l < shape->nlists; l++) {
        d->member_of[l][slot] = -1;
        for (int m = 0; m < shape->lists[l].nmembers; m++) {
            const char *k = shape->lists[l].members[m].key;
            if (strlen(k) == len && memcmp(k, s, len) == 0) {
                d->member_of[l][slot] = (short)m;
                break;
            }
        }
    }
}

/* An object key: from the cache when it is one of the keys seen before. Sets d->slot. */
static int key(dec *d)
{
    const char *s = d->p + 1, *q = s;
    while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 &&
           q - s <= KEY_MAXLEN)
        q++;
    d->slot = -1;
    if (q >= d->end || *q != '"' || q - s > KEY_MAXLEN) {
        d->last = -1;
        return string(d); /* escapes, long keys, errors: the general path */
    }
    size_t len = (size_t)(q - s);
    int guess = d->last >= 0 ? d->next[d->last] : -1;
    for (int k = -1; k < d->nkeys; k++) {
        int i = k < 0 ? guess : k;
        if (i >= 0 && d->keys[i].len == len && memcmp(d->keys[i].s, s, len) == 0) {
            lua_rawgeti(d->L, d->keys_idx, i + 1);
            d->slot = i;
            if (d->last >= 0)
                d->next[d->last] = (short)i;
            d->last = i;
            d->p = q + 1;
            return 1;
        }
    }
    const char *interned = lua_pushlstring(d->L, s, len);
    if (d->nkeys < KEYS) {
        d->slot = d->nkeys;
        lua_pushvalue(d->L, -1);
        lua_rawseti(d->L, d->keys_idx, d->nkeys + 1);
        d->keys[d->nkeys].s = interned;
        d->keys[d->nkeys].len = len;
        if (d->shape)
            classify(d, d->nkeys, interned, len);
        d->next[d->nkeys] = -1;
        if (d->last >= 0)
            d->next[d->last] = (short)d->nkeys;
        d->nkeys++;
    }
    d->last = d->slot;
    d->p = q + 1;
    return 1;
}

/* The key of an object's member, pushed as key() pushes it (room made for its value too). */
static int member_key(dec *d)
{
    luaL_checkstack(d->L, 4, "JSON object too large");
    if (d->p >= d->end || *d->p != '"')
        return fail(d, "expected a string key in an object", d->p);
    return key(d);
}

static int number(dec *d)
{
    const char *s = d->p, *q = s;
    if (q < d->end && *q == '-')
        q++;
    if (q < d->end && *q == '0')
        q++;
    else if (is_digit(d, q) && *q != '0')
        while (is_digit(d, q))
            q++;
    else
        return fail(d, "invalid number", s);
    if (q < d->end && *q == '.') {
        if (!is_digit(d, ++q))
            return fail(d, "invalid number", s);
        while (is_digit(d, q))
            q++;
    }
    if (q < d->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < d->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(d, q))
            return fail(d, "invalid number", s);
        while (is_digit(d, q))
            q++;
    }
    /* the grammar is JSON's, checked above; Lua converts: an integer when the literal is one
     * and fits, a float otherwise */
    char buf[64];
    size_t len = (size_t)(q - s);
    const char *text = buf;
    if (len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = '\0';
    } else {
        text = lua_pushlstring(d->L, s, len);
    }
    int ok = lua_stringtonumber(d->L, text) != 0;
    if (text != buf)
        lua_remove(d->L, -2);
    d->p = q;
    return ok ? 1 : fail(d, "invalid number", s);
}

/* Moves the `pending` values above index t into the array at t (created at that size if t
 * holds nil), after its first *n elements. */
static void flush_array(lua_State *L, int t, lua_Integer *n, int pending)
{
    if (lua_isnil(L, t)) {
        lua_createtable(L, pending, 0);
        lua_replace(L, t);
    }
    for (int i = pending; i >= 1; i--)
        lua_rawseti(L, t, *n + i);
    *n += pending;
}

/* Moves the `pending` key/value pairs above index t into the table at t, in order. With
 * `lookup`, each key is looked up first: returns the stack index of a key the table already
 * holds (nothing is moved after it; values are never nil, JSON null being null_idx's value, so
 * a present key is a non-nil rawget). Returns 0 otherwise. */
static int flush_object(lua_State *L, int t, int pending, int lookup)
{
    if (lua_isnil(L, t)) {
        lua_createtable(L, 0, pending);
        lua_replace(L, t);
    }
    for (int i = 0; i < pending; i++) {
        if (lookup) {
            lua_pushvalue(L, t + 1 + 2 * i);
            int present = lua_rawget(L, t) != LUA_TNIL;
            lua_pop(L, 1);
            if (present)
                return t + 1 + 2 * i;
        }
        lua_pushvalue(L, t + 1 + 2 * i);
        lua_pushvalue(L, t + 2 + 2 * i);
        lua_rawset(L, t);
    }
    lua_settop(L, t);
    return 0;
}

/* Records the key at idx as repeated in the object that starts at `open`. */
static int duplicate(dec *d, int idx, const char *open)
{
    size_t len;
    const char *k = lua_tolstring(d->L, idx, &len);
    d->dup_size = len;
    d->dup_len = 0;
    if (len <= DUP_SHOWN) {
        for (size_t i = 0; i < len; i++) { /* the message must stay one printable line */
            unsigned char c = (unsigned char)k[i];
            d->dup[i] = (char)(c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : c);
        }
        d->dup_len = len;
    }
    d->dup[d->dup_len] = '\0';
    return fail(d, "duplicate key", open);
}

/* After a member or an element: 1 past a ',' (another follows), 0 past `close`, -1 (failed,
 * with msg) at anything else. */
static int separator(dec *d, char close, const char *msg)
{
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
        d->p++;
        skip_ws(d);
        return 1;
    }
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return 0;
    }
    fail(d, msg, d->p);
    return -1;
}

static int item(dec *d, int l);

/* parse(d, l), one level deeper, under the depth limit: a shaped list, or one of its records. */
static int nested(dec *d, int (*parse)(dec *, int), int l)
{
    if (++d->depth > CF_JSON_MAX_DEPTH)
        return fail(d, "nested deeper than 1000 levels", d->p);
    int ok = parse(d, l);
    d->depth--;
    return ok;
}

/* An array; l >= 0: a list of the shape, whose object elements are its records. */
static int array(dec *d, int l)
{
    lua_State *L = d->L;
    d->p++;
    lua_pushnil(L); /* the table's place */
    int t = lua_gettop(L), pending = 0;
    lua_Integer n = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        flush_array(L, t, &n, 0);
        return 1;
    }
    for (;;) {
        luaL_checkstack(L, 4, "JSON array too long");
        if (!(l >= 0 && d->p < d->end && *d->p == '{' ? nested(d, item, l) : value(d)))
            return 0;
        if (++pending == FLUSH) {
            flush_array(L, t, &n, pending);
            pending = 0;
        }
        int more = separator(d, ']', "expected ',' or ']' in an array");
        if (more < 0)
            return 0;
        if (!more) {
            flush_array(L, t, &n, pending);
            return 1;
        }
    }
}

static int object(dec *d)
{
    lua_State *L = d->L;
    const char *open = d->p;
    /* repeated keys: a cached key is checked against the bits of the cache slots this object
     * used (no lookup: the common case costs almost nothing); once a key that is not cached
     * comes (escaped, long, past the first KEYS), every key is looked up as it is stored */
    unsigned seen = 0;
    int lookup = 0, dup;
    d->p++;
    lua_pushnil(L); /* the table's place */
    int t = lua_gettop(L), pending = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        flush_object(L, t, 0, 0);
        return 1;
    }
    for (;;) {
        if (!member_key(d))
            return 0;
        if (d->slot < 0)
            lookup = 1;
        else if (seen & (1u << d->slot))
            return duplicate(d, lua_gettop(L), open);
        else
            seen |= 1u << d->slot;
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
            return fail(d, "expected ':' after a key", d->p);
        d->p++;
        skip_ws(d);
        int l = -1;
        if (d->shape && d->p < d->end && *d->p == '[') {
            size_t len;
            const char *k = d->slot >= 0 ? NULL : lua_tolstring(L, -1, &len);
            l = k ? list_named(d->shape, k, len) : d->list_of[d->slot];
        }
        if (!(l >= 0 ? nested(d, array, l) : value(d)))
            return 0;
        if (++pending == FLUSH) {
            if ((dup = flush_object(L, t, pending, lookup)) != 0)
                return duplicate(d, dup, open);
            pending = 0;
        }
        int more = separator(d, '}', "expected ',' or '}' in an object");
        if (more < 0)
            return 0;
        if (!more) {
            if ((dup = flush_object(L, t, pending, lookup)) != 0)
                return duplicate(d, dup, open);
            return 1;
        }
    }
}

/* A string value of a shared member: the last one's Lua string when the bytes are the same. */
static int shared_string(dec *d, int l, int m)
{
    const char *s = d->p + 1, *q = s;
    while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    if (q >= d->end || *q != '"')
        return string(d); /* escapes, errors: the general path */
    size_t len = (size_t)(q - s);
    int anchor = SHARED_SLOT(l, m);
    if (d->shared[l][m].s && d->shared[l][m].len == len && memcmp(d->shared[l][m].s, s, len) == 0) {
        lua_rawgeti(d->L, d->keys_idx, anchor);
    } else {
        d->shared[l][m].s = lua_pushlstring(d->L, s, len);
        d->shared[l][m].len = len;
        lua_pushvalue(d->L, -1);
        lua_rawseti(d->L, d->keys_idx, anchor);
    }
    d->p = q + 1;
    return 1;
}

/* Stores the string at idx as member m's `as` in the record at rec, unless a member listed
 * before m with the same `as` gave one (chosen[t]: the member that set target t, or -1). */
static void keep(dec *d, int l, int rec, int m, int idx, short *chosen)
{
    int t = d->target[l][m];
    if (chosen[t] >= 0 && chosen[t] < m)
        return;
    chosen[t] = (short)m;
    lua_rawgeti(d->L, d->keys_idx, AS_SLOT(l, m));
    lua_pushvalue(d->L, idx);
    lua_rawset(d->L, rec);
}

/* An object element of a shaped list: a record of the members the list names, created once
 * at the shape's size. Keys are checked for repeats as object() checks them; a key that is not
 * cached, or more than FLUSH members, take the general path: a table of every member, then the
 * record from it. */
static int item(dec *d, int l)
{
    lua_State *L = d->L;
    const cf_json_list *list = &d->shape->lists[l];
    const char *open = d->p;
    unsigned seen = 0;
    int general = 0, dup;
    short member[FLUSH]; /* each pending pair's member of the list, -1: dropped */
    short chosen[CF_JSON_SHAPE_MEMBERS];
    memset(chosen, -1, sizeof chosen);
    d->p++;
    lua_pushnil(L); /* the general path's table */
    int t = lua_gettop(L), pending = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
    } else {
        for (;;) {
            if (!member_key(d))
                return 0;
            int m = -1;
            if (d->slot < 0) {
                general = 1;
            } else if (seen & (1u << d->slot)) {
                return duplicate(d, lua_gettop(L), open);
            } else {
                seen |= 1u << d->slot;
                m = d->member_of[l][d->slot];
            }
            skip_ws(d);
            if (d->p >= d->end || *d->p != ':')
                return fail(d, "expected ':' after a key", d->p);
            d->p++;
            skip_ws(d);
            if (m >= 0 && list->members[m].share && d->p < d->end && *d->p == '"') {
                if (!shared_string(d, l, m))
                    return 0;
            } else if (!value(d)) {
                return 0;
            }
            member[pending] = (short)m;
            if (++pending == FLUSH) {
                if ((dup = flush_object(L, t, pending, 1)) != 0)
                    return duplicate(d, dup, open);
                general = 1;
                pending = 0;
            }
            int more = separator(d, '}', "expected ',' or '}' in an object");
            if (more < 0)
                return 0;
            if (!more)
                break;
        }
    }
    if (general) {
        if ((dup = flush_object(L, t, pending, 1)) != 0)
            return duplicate(d, dup, open);
        lua_createtable(L, 0, d->shape->slots);
        int rec = t + 1;
        for (int m = 0; m < list->nmembers; m++) {
            if (lua_getfield(L, t, list->members[m].key) == LUA_TSTRING)
                keep(d, l, rec, m, rec + 1, chosen);
            lua_pop(L, 1);
        }
        lua_replace(L, t);
        return 1;
    }
    lua_createtable(L, 0, d->shape->slots);
    int rec = lua_gettop(L);
    for (int i = 0; i < pending; i++)
        if (member[i] >= 0 && lua_type(L, t + 2 + 2 * i) == LUA_TSTRING)
            keep(d, l, rec, member[i], t + 2 + 2 * i, chosen);
    lua_replace(L, t);
    lua_settop(L, t);
    return 1;
}

static int literal(dec *d, const char *word, size_t len)
{
    if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
        return fail(d, "expected a value", d->p);
    d->p += len;
    return 1;
}

static int value(dec *d)
{
    if (d->p >= d->end)
        return fail(d, "expected a value", d->p);
    switch (*d->p) {
    case '{':
    case '[': {
        if (++d->depth > CF_JSON_MAX_DEPTH)
            return fail(d, "nested deeper than 1000 levels", d->p);
        int ok = *d->p == '{' ? object(d) : array(d, -1);
        d->depth--;
        return ok;
    }
    case '"':
        return string(d);
    case 't':
        if (!literal(d, "true", 4))
            return 0;
        lua_pushboolean(d->L, 1);
        return 1;
    case 'f':
        if (!literal(d, "false", 5))
            return 0;
        lua_pushboolean(d->L, 0);
        return 1;
    case 'n':
        if (!literal(d, "null", 4))
            return 0;
        lua_pushvalue(d->L, d->null_idx);
        return 1;
    default:
        if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
            return number(d);
        return fail(d, "expected a value", d->p);
    }
}

int cf_json_decode(lua_State *L, const char *s, size_t n, int null_idx)
{
    return cf_json_decode_shaped(L, s, n, null_idx, NULL);
}

int cf_json_decode_shaped(lua_State *L, const char *s, size_t n, int null_idx,
                          const cf_json_shape *shape)
{
    dec d = {.L = L,
             .p = s,
             .end = s + n,
             .start = s,
             .null_idx = lua_absindex(L, null_idx),
             .last = -1,
             .shape = shape};
    for (int l = 0; shape && l < shape->nlists; l++) {
        const cf_json_list *list = &shape->lists[l];
        for (int m = 0; m < list->nmembers; m++) {
            int first = 0;
            while (strcmp(list->members[first].as, list->members[m].as) != 0)
                first++;
            d.target[l][m] = (short)first;
        }
    }
    int base = lua_gettop(L);
    luaL_checkstack(L, 8, "JSON");
    skip_ws(&d);
    if (d.p == d.end) {
        lua_pushliteral(L, "no JSON value (empty text)");
        return 0;
    }
    lua_createtable(L, KEYS + (shape ? 4 * CF_JSON_SHAPE_MEMBERS : 0), 0);
    d.keys_idx = lua_gettop(L);
    for (int l = 0; shape && l < shape->nlists; l++)
        for (int m = 0; m < shape->lists[l].nmembers; m++) {
            lua_pushstring(L, shape->lists[l].members[m].as);
            lua_rawseti(L, d.keys_idx, AS_SLOT(l, m));
        }
    if (value(&d)) {
        skip_ws(&d);
        if (d.p == d.end) {
            lua_remove(L, d.keys_idx);
            return 1;
        }
        fail(&d, "unexpected text after the value", d.p);
    }
    lua_settop(L, base);
    if (d.err == NULL) /* cannot happen: every failure path records why */
        d.err = "invalid JSON";
    if (strcmp(d.err, "duplicate key") == 0 && d.dup_size == d.dup_len)
        lua_pushfstring(L, "duplicate key \"%s\" in the object at byte %I", d.dup,
                        (lua_Integer)d.err_at + 1);
    else if (strcmp(d.err, "duplicate key") == 0)
        lua_pushfstring(L, "duplicate key (of %I bytes) in the object at byte %I",
                        (lua_Integer)d.dup_size, (lua_Integer)d.err_at + 1);
    else
        lua_pushfstring(L, "%s at byte %I", d.err, (lua_Integer)d.err_at + 1);
    return 0;
}
