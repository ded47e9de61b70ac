/* cf_journal: the journal writer (cloudflare.core.journal_open): one record a line, each in
 * one write(2) under an open-file-description lock and fdatasync'd before append returns, a
 * torn last line ended first. The records' meaning is Lua's (lua/cloudflare/journal.lua). */
#ifndef CF_JOURNAL_H
#define CF_JOURNAL_H

#include <lauxlib.h>
#include <lua.h>

/* core.journal_open */
extern const luaL_Reg cf_journal_funcs[];
/* Registers the metatable of journals. */
void cf_journal_open(lua_State *L);

#endif
