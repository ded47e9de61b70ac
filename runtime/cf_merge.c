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

/* core.merge_items(items, into, sent, ledger, list, where, succeeded, absent, listed) ->
 * problem | nil. items: one list of an answer (succeeded or failed); into: the result list
 * entries are appended to; sent: the IPs of this request (batch_of's mark); ledger: the
 * call's (batch_of, input_of, rank_of, claimed, unexpected); list: "succeeded" or "failed";
 * where: "result" or "result.value", for messages; succeeded: whether items are successes;
 * absent: whether a failure after a retry may be the first attempt's deletion, when mapped
 * before the call (listed[c], or listed nil: unknown). Returns the first thing wrong. */
static int cf_core_merge_items(lua_State *L)
{
    luaL_checktype(L, ITEMS, LUA_TTABLE);
    luaL_checktype(L, INTO, LUA_TTABLE);
    luaL_checktype(L, SENT, LUA_TTABLE);
    luaL_checktype(L, LEDGER, LUA_TTABLE);
    const char *list = luaL_checkstring(L, LIST);
    const char *where = luaL_optstring(L, WHERE, "result");
    int succeeded = lua_toboolean(L, SUCCEEDED), absent = lua_toboolean(L, ABSENT);
    lua_settop(L, LISTED);
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
            (!string_field(L, item, "origin-ip") && !string_field(L, item, "origin_ip"))) {
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
        lua_createtable(L, 0, 4); /* the entry */
        int entry = lua_gettop(L);
        lua_pushvalue(L, c);
        lua_setfield(L, entry, "origin_ip");
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
            if (string_field(L, item, "region"))
                lua_setfield(L, entry, "region");
            if (string_field(L, item, "vendor"))
                lua_setfield(L, entry, "vendor");
        } else {
            if (!string_field(L, item, "error"))
                lua_pushliteral(L, "unknown error");
            lua_setfield(L, entry, "error");
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

const luaL_Reg cf_merge_funcs[] = {{"merge_items", cf_core_merge_items}, {NULL, NULL}};
