/* cf_exit: cfrun's exit statuses, defined once. C uses the CF_EXIT_* names; Lua reads the same
 * table as cloudflare.core.EXIT (cf_lua.c: { name = status, ... } and EXIT.outcome[status], the
 * job log's name of each), so cloudflare.run, cloudflare.cli and cf_main.c cannot disagree.
 * Documented in README.md and docs/cfrun.1 (EXIT STATUS). A signal that stops a run gives
 * 128 + its number (130, 143): outcome "interrupted". */
#ifndef CF_EXIT_H
#define CF_EXIT_H

/* X(C name, Lua name, status, outcome in the job log) */
#define CF_EXIT_STATUSES(X)                                                                        \
    X(OK, "OK", 0, "success")                                                                      \
    X(SCRIPT, "SCRIPT_ERROR", 1, "script_error")                                                   \
    X(USAGE, "USAGE", 2, "usage_error")                                                            \
    X(FAILED_IPS, "FAILED_IPS", 3, "failed_ips")                                                   \
    X(PENDING, "INCOMPLETE", 4, "incomplete")                                                      \
    X(LOCKED, "LOCKED", 5, "locked")

#define CF_EXIT_ENUM(name, lua, status, outcome) CF_EXIT_##name = (status),
enum { CF_EXIT_STATUSES(CF_EXIT_ENUM) };
#undef CF_EXIT_ENUM

#endif
