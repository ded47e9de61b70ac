/* cf_redact: the Lua state's active secrets and the two filters every text cfrun writes or
 * returns goes through: redact (each secret becomes "<redacted>") and sanitize (redact, then
 * escape control characters), in C (cf_redact_*, cf_sanitize_*) and as core.redact and
 * core.sanitize. Must not keep a secret anywhere but the state's registry, nor decide which
 * texts need filtering: its callers do.
 *
 * The secrets: the API token or API key of every client the state created (cf_core_client
 * registers them; the email is not a secret), plus what cf_repl registers from the environment
 * and what core.add_secret adds (a Redis password).
 * They stay registered for the state's lifetime, so a text that quotes a closed client's token
 * is still redacted. A value shorter than CF_REDACT_MIN bytes is never registered: replacing a
 * one-character "token" in every text would wreck the texts and hide nothing.
 *
 * redact(s): every occurrence of a secret, as exact bytes, becomes "<redacted>"; scanning left
 * to right, where several secrets start at one place the longest wins, and the scan goes on
 * after it (occurrences do not overlap).
 *
 * sanitize(s): redact(s), then every control character escaped so that the text stays one
 * line and cannot drive a terminal: newline, carriage return and tab as \n \r \t; every other
 * byte below 0x20 and DEL (0x7f) as \xHH (two lower-case hex digits: ESC is \x1b); the UTF-8
 * encodings of the C1 controls U+0080..U+009F as \u0080..\u009f. Other bytes, a backslash
 * included, are kept as they are (a server's literal "\n" text reads like an escaped newline,
 * but no raw control byte ever gets through). The result is redacted again when escaping
 * changed something, so it holds neither a secret nor a raw control character. */
#ifndef CF_REDACT_H
#define CF_REDACT_H

#include <lua.h>
#include <stddef.h>

#define CF_REDACTED   "<redacted>"
#define CF_REDACT_MIN 8 /* bytes: shorter values are never treated as secrets */

/* Registers s[0..len) as a secret of the state (a copy anchored in the registry). Does nothing
 * when it is shorter than CF_REDACT_MIN or already registered. Raises only when memory runs
 * out. */
void cf_redact_add(lua_State *L, const char *s, size_t len);

/* How many secrets the state holds: grows by one with each new one, never shrinks. */
size_t cf_redact_count(lua_State *L);

/* Whether s[0..len) contains one of the state's secrets. Never raises. */
int cf_redact_contains(lua_State *L, const char *s, size_t len);

/* The length of the longest secret that starts at p (avail bytes readable there), or 0.
 * Never raises. For filters that cut a text short and must not cut a secret in two. */
size_t cf_redact_at(lua_State *L, const char *p, size_t avail);

/* Push redact(s) / sanitize(s) and return the pushed string. Raise only when memory runs
 * out. */
const char *cf_redact_push(lua_State *L, const char *s, size_t len);
const char *cf_sanitize_push(lua_State *L, const char *s, size_t len);

/* Replaces the string at idx with its sanitized form; any other value is left alone. */
void cf_sanitize_at(lua_State *L, int idx);

/* core.redact(s) -> string and core.sanitize(s) -> string (s itself when nothing changes). */
int cf_core_redact(lua_State *L);
int cf_core_sanitize(lua_State *L);
int cf_core_add_secret(lua_State *L);

#endif
