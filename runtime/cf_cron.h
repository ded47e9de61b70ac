/* cf_cron: the scheduler's arithmetic: durations ("1h30m") and 5-field cron expressions.
 * Lua-free and side-effect free, so it is unit-tested alone (spec/c/sched_test.c). */
#ifndef CF_CRON_H
#define CF_CRON_H

#include <stdint.h>
#include <time.h>

/* "500ms", "30s", "15m", "1h", "1d" and sums like "1h30m"; returns seconds in (0, 366 days),
 * or -1. */
double cf_duration_parse(const char *s);

typedef struct cf_cron {
    uint64_t minute, hour, dom, month, dow; /* bit i set: value i allowed */
    int dom_any, dow_any;                   /* the field was "*" (cron's day rule) */
} cf_cron;

/* Parses "MIN HOUR DOM MON DOW": a star, numbers, a-b, lists, steps (star/n, a-b/n), names
 * jan..dec and sun..sat (case-insensitive), 7 = Sunday. Returns 0, or -1 with a reason in
 * err (errlen bytes). */
int cf_cron_parse(const char *s, cf_cron *c, char *err, size_t errlen);

/* The first local time strictly after `after` (rounded to the minute) that matches, or -1
 * when none does within five years (e.g. "0 0 31 2 *"). */
time_t cf_cron_next(const cf_cron *c, time_t after);

#endif
