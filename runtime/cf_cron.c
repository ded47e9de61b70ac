/* cf_cron: durations and cron expressions (see cf_cron.h).
 * Must not read the clock itself: callers pass the time, so tests are exact. */
#include "cf_cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

double cf_duration_parse(const char *s)
{
    static const struct {
        const char *unit;
        double secs;
    } units[] = {{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    double total = 0;
    if (!s || !*s)
        return -1;
    while (*s) {
        char *end;
        if (!isdigit((unsigned char)*s))
            return -1;
        double v = strtod(s, &end);
        s = end;
        size_t i, n = sizeof units / sizeof units[0];
        for (i = 0; i < n; i++) {
            size_t len = strlen(units[i].unit);
            /* "m" must not swallow the "m" of "ms" */
            if (strncmp(s, units[i].unit, len) == 0 && !(len == 1 && s[0] == 'm' && s[1] == 's'))
                break;
        }
        if (i == n)
            return -1;
        total += v * units[i].secs;
        s += strlen(units[i].unit);
    }
    return total > 0 && total < 366.0 * 86400 ? total : -1;
}

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A number or a name; returns the value or -1; advances *p. */
static int value(const char **p, const char *const *names, int nnames, int name_base)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0, digits = 0;
        while (isdigit((unsigned char)*s) && digits < 3) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (isdigit((unsigned char)*s))
            return -1;
        *p = s;
        return v;
    }
    for (int i = 0; names && i < nnames; i++) {
        if (strncasecmp(s, names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *p = s + 3;
            return i + name_base;
        }
    }
    return -1;
}

/* One field: a comma list of *, a, a-b, with optional /step. */
static int field(const char *s, size_t len, int lo, int hi, const char *const *names, int nnames,
                 int name_base, uint64_t *bits, int *any)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *any = strcmp(buf, "*") == 0;
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,")) /* strtok would skip these */
        return -1;
    for (char *item = strtok(buf, ","); item; item = strtok(NULL, ",")) {
        const char *p = item;
        int a, b, step = 1;
        if (*p == '*') {
            a = lo, b = hi;
            p++;
        } else {
            a = value(&p, names, nnames, name_base);
            if (a < 0)
                return -1;
            b = a;
            if (*p == '-') {
                p++;
                b = value(&p, names, nnames, name_base);
                if (b < 0)
                    return -1;
            } else if (*p == '/') {
                b = hi; /* "a/n": from a to the end, as most crons read it */
            }
        }
        if (*p == '/') {
            p++;
            step = value(&p, NULL, 0, 0);
            if (step <= 0)
                return -1;
        }
        if (*p != '\0' || a < lo || b > hi || a > b)
            return -1;
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << v;
    }
    return *bits ? 0 : -1;
}

int cf_cron_parse(const char *s, cf_cron *c, char *err, size_t errlen)
{
    static const char *const what[] = {"minute", "hour", "day of month", "month", "day of week"};
    const char *start[5];
    size_t len[5];
    int n = 0;
    memset(c, 0, sizeof *c);
    for (const char *p = s; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == 5) {
            snprintf(err, errlen, "more than 5 fields");
            return -1;
        }
        start[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n != 5) {
        snprintf(err, errlen, "expected 5 fields (MIN HOUR DOM MON DOW), got %d", n);
        return -1;
    }
    int any;
    int rc = field(start[0], len[0], 0, 59, NULL, 0, 0, &c->minute, &any);
    if (rc == 0)
        rc = field(start[1], len[1], 0, 23, NULL, 0, 0, &c->hour, &any) == 0 ? 0 : -2;
    if (rc == 0)
        rc = field(start[2], len[2], 1, 31, NULL, 0, 0, &c->dom, &c->dom_any) == 0 ? 0 : -3;
    if (rc == 0)
        rc = field(start[3], len[3], 1, 12, month_names, 12, 1, &c->month, &any) == 0 ? 0 : -4;
    if (rc == 0)
        rc = field(start[4], len[4], 0, 7, dow_names, 7, 0, &c->dow, &c->dow_any) == 0 ? 0 : -5;
    if (rc != 0) {
        int i = -rc - 1;
        snprintf(err, errlen, "bad %s field '%.*s'", what[i], (int)len[i], start[i]);
        return -1;
    }
    if (c->dow & ((uint64_t)1 << 7)) /* 7 is Sunday too */
        c->dow |= 1;
    return 0;
}

static int day_matches(const cf_cron *c, const struct tm *tm)
{
    int dom = (int)((c->dom >> tm->tm_mday) & 1), dow = (int)((c->dow >> tm->tm_wday) & 1);
    if (!c->dom_any && !c->dow_any)
        return dom || dow; /* cron: either restricted day field may match */
    return dom && dow;
}

time_t cf_cron_next(const cf_cron *c, time_t after)
{
    struct tm tm;
    localtime_r(&after, &tm);
    tm.tm_sec = 0;
    tm.tm_min += 1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    time_t limit = after + (time_t)5 * 366 * 86400;
    while (t != (time_t)-1 && t <= limit) {
        localtime_r(&t, &tm);
        if (!((c->month >> (tm.tm_mon + 1)) & 1) || !day_matches(c, &tm)) {
            tm.tm_mday += 1; /* next day, at midnight */
            tm.tm_hour = tm.tm_min = 0;
        } else if (!((c->hour >> tm.tm_hour) & 1)) {
            tm.tm_hour += 1;
            tm.tm_min = 0;
        } else if (!((c->minute >> tm.tm_min) & 1)) {
            tm.tm_min += 1;
        } else {
            return t;
        }
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return (time_t)-1;
}
