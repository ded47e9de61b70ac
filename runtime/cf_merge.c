/* cf_merge: core.merge_items, the per-item loop of a batch merge. Its behaviour is
 * merge_batch's (lua/cloudflare/batch.lua), which documents the ledger it works on. */
#include "cf_merge.h"

#include "cf_ip.h"

#include <string.h>

/* stack slots of merge_items' arguments and of the ledger's tables */
enum {
    ITEMS = 1,
    INTO,
    SENT,
    LEDGER,
    LIST,
    WHERE,
    SUCCEEDED,
    ABSENT,
    LISTED,
    SHAPED,
    BATCH_OF,
    INPUT_OF,
    RANK_OF,
    CLAIMED,
    UNEXPECTED,
    PROBLEM,
    TOP = PROBLEM
};

/* Keeps the first problem: formats one only while there is none (at PROBLEM). */
static int have_problem(lua_State *L)
{
    return !lua_isnil(L, PROBLEM);
}

static void set_problem(lua_State *L)
{
    lua_replace(L, PROBLEM);
}

/* The string at field k of the table at idx, pushed, or nothing (returns 0) when it is not one. */
static int string_field(lua_State *L, int idx, const char *k)
{
    if (lua_getfield(L, idx, k) == LUA_TSTRING)
        return 1;
    lua_pop(L, 1);
    return 0;
}

/* The records a batch's items are decoded into (cf_jsondec.h): what an entry keeps, under
 * the name it has there, and room for what merge_items adds (input; already_absent). v1 says
 * origin-ip, v2 (and v1's docs) origin_ip; region and vendor repeat from item to item. */
static const cf_json_shape batch_shape = {
    .nlists = 2,
    .slots = 4,
    .lists = {
        {"succeeded",
         4,
         {{"origin-ip", "origin_ip", 0},
          {"origin_ip", "origin_ip", 0},
          {"region", "region", 1},
          {"vendor", "vendor", 1}}},
        {"failed",
         3,
         {{"origin-ip", "origin_ip", 0}, {"origin_ip", "origin_ip", 0}, {"error", "error", 0}}}}};

const cf_json_shape *cf_merge_shape(const char *name)
{
    return name && strcmp(name, "batch") == 0 ? &batch_shape : NULL;
}

/* core.merge_items(items, into, sent, ledger, list, where, succeeded, absent, listed, shaped)
 * -> problem | nil. items: one list of an answer (succeeded or failed); into: the result list
 * entries are appended to; sent: the IPs of this request (batch_of's mark); ledger: the
 * call's (batch_of, input_of, rank_of, claimed, unexpected); list: "succeeded" or "failed";
 * where: "result" or "result.value", for messages; succeeded: whether items are successes;
 * absent: whether a failure after a retry may be the first attempt's deletion, when mapped
 * before the call (listed[c], or listed nil: unknown); shaped: the items are batch_shape's
 * records (the response was decoded with it), completed in place into the entries, which
 * are otherwise new tables. Returns the first thing wrong. */
static int cf_core_merge_items(lua_State *L)
{
    luaL_checktype(L, ITEMS, LUA_TTABLE);
    luaL_checktype(L, INTO, LUA_TTABLE);
    luaL_checktype(L, SENT, LUA_TTABLE);
    luaL_checktype(L, LEDGER, LUA_TTABLE);
    const char *list = luaL_checkstring(L, LIST);
    const char *where = luaL_optstring(L, WHERE, "result");
    int succeeded = lua_toboolean(L, SUCCEEDED), absent = lua_toboolean(L, ABSENT);
    int shaped = lua_toboolean(L, SHAPED);
    lua_settop(L, SHAPED);
    luaL_checkstack(L, 16, "merge_items"); /* the ledger's tables, then an item's values */
    static const char *const fields[] = {"batch_of", "input_of", "rank_of", "claimed",
                                         "unexpected"};
    for (int k = 0; k < 5; k++)
        if (lua_getfield(L, LEDGER, fields[k]) != LUA_TTABLE)
            return luaL_error(L, "merge_items: ledger.%s is not a table", fields[k]);
    lua_pushnil(L); /* PROBLEM */
    lua_Integer n = (lua_Integer)lua_rawlen(L, ITEMS), count = (lua_Integer)lua_rawlen(L, INTO);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_settop(L, TOP);
        int item = TOP + 1;
        int is_table = lua_rawgeti(L, ITEMS, i) == LUA_TTABLE;
        /* v1 says origin-ip; v2 (and v1's docs) origin_ip */
        if (!is_table ||
            (shaped ? !string_field(L, item, "origin_ip")
                    : !string_field(L, item, "origin-ip") && !string_field(L, item, "origin_ip"))) {
            if (!have_problem(L)) {
                lua_pushfstring(L, "%s.%s[%I] has no origin_ip string", where, list,
                                (LUAI_UACINT)i);
                set_problem(L);
            }
            continue;
        }
        int raw = item + 1, c = item + 2;
        /* what was sent is canonical, and the server echoes it */
        lua_pushvalue(L, raw);
        if (lua_rawget(L, BATCH_OF) == LUA_TTABLE && lua_rawequal(L, -1, SENT)) {
            lua_pop(L, 1);
            lua_pushvalue(L, raw);
        } else {
            lua_pop(L, 1);
            size_t len;
            const char *s = lua_tolstring(L, raw, &len);
            char out[CF_IP_STRLEN];
            int clen = cf_ip_canonical(s, len, out);
            if (clen < 0)
                lua_pushvalue(L, raw);
            else
                lua_pushlstring(L, out, (size_t)clen);
        }
        lua_pushvalue(L, c);
        int mine = lua_rawget(L, BATCH_OF); /* c + 1 */
        if (!(mine == LUA_TTABLE && lua_rawequal(L, -1, SENT))) {
            /* Not an IP of this request (or reported twice): each IP's fate comes from the
             * answer to the request that carried it, so this word is not taken, but the call is
             * suspect, and an input named so is at best pending. */
            if (mine == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
                if (!have_problem(L)) {
                    lua_pushfstring(L, "the response reports %s twice", lua_tostring(L, c));
                    set_problem(L);
                }
                continue;
            }
            if (!have_problem(L)) {
                lua_pushfstring(L, "the response names %s, which was not sent in this request",
                                lua_tostring(L, c));
                set_problem(L);
            }
            lua_pushvalue(L, c);
            if (lua_rawget(L, RANK_OF) != LUA_TNIL) {
                lua_pushvalue(L, c);
                lua_pushboolean(L, 1);
                lua_rawset(L, CLAIMED);
            } else {
                lua_createtable(L, 0, 2);
                lua_pushvalue(L, c);
                lua_setfield(L, -2, "origin_ip");
                lua_pushstring(L, list);
                lua_setfield(L, -2, "list");
                lua_rawseti(L, UNEXPECTED, (lua_Integer)lua_rawlen(L, UNEXPECTED) + 1);
            }
            continue;
        }
        lua_pushvalue(L, c);
        lua_pushboolean(L, 1);
        lua_rawset(L, BATCH_OF);
        int entry = item;
        if (!shaped) {
            lua_createtable(L, 0, 4);
            entry = lua_gettop(L);
        }
        if (!shaped || !lua_rawequal(L, raw, c)) {
            lua_pushvalue(L, c);
            lua_setfield(L, entry, "origin_ip");
        }
        /* input_for: the caller's spelling, else c itself when it is an input */
        lua_pushvalue(L, c);
        if (lua_rawget(L, INPUT_OF) != LUA_TNIL) {
            lua_setfield(L, entry, "input");
        } else {
            lua_pop(L, 1);
            lua_pushvalue(L, c);
            int ranked = lua_rawget(L, RANK_OF) != LUA_TNIL;
            lua_pop(L, 1);
            if (ranked) {
                lua_pushvalue(L, c);
                lua_setfield(L, entry, "input");
            }
        }
        if (succeeded) {
            if (!shaped && string_field(L, item, "region"))
                lua_setfield(L, entry, "region");
            if (!shaped && string_field(L, item, "vendor"))
                lua_setfield(L, entry, "vendor");
        } else {
            if (!string_field(L, item, "error")) {
                lua_pushliteral(L, "unknown error");
                lua_setfield(L, entry, "error");
            } else if (!shaped) {
                lua_setfield(L, entry, "error");
            }
            if (absent) {
                int mapped = 1;
                if (!lua_isnil(L, LISTED)) {
                    lua_pushvalue(L, c);
                    mapped = lua_gettable(L, LISTED) != LUA_TNIL && lua_toboolean(L, -1);
                    lua_pop(L, 1);
                }
                if (mapped) {
                    lua_pushboolean(L, 1);
                    lua_setfield(L, entry, "already_absent");
                }
            }
        }
        lua_pushvalue(L, entry);
        lua_rawseti(L, INTO, ++count);
    }
    lua_pushvalue(L, PROBLEM);
    return 1;
}

/* core.mark_sent(batch_of, sent): each IP of the request's list `sent` is the request's
 * (batch_of[c] = sent) unless an answer already accounted for it (batch_of[c] == true). */
static int cf_core_mark_sent(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i); /* c */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, 2);
        lua_rawset(L, 1);
    }
    return 0;
}

/* core.unaccounted(batch_of, sent, into) -> n: appends to `into` the IPs of `sent` that no
 * answer accounted for (batch_of[c] ~= true), in order; returns how many. */
static int cf_core_unaccounted(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2), len = (lua_Integer)lua_rawlen(L, 3), missing = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i); /* c */
        lua_pushvalue(L, -1);
        int done = lua_rawget(L, 1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (done) {
            lua_pop(L, 1);
        } else {
            lua_rawseti(L, 3, len + ++missing);
        }
    }
    lua_pushinteger(L, missing);
    return 1;
}

const luaL_Reg cf_merge_funcs[] = {{"merge_items", cf_core_merge_items},
                                   {"mark_sent", cf_core_mark_sent},
                                   {"unaccounted", cf_core_unaccounted},
                                   {NULL, NULL}};
