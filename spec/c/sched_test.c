/* sched_test: unit tests of cf_cron (durations, cron parsing and next-run times), without
 * Lua. Times are computed in UTC (TZ=UTC is set before any use). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_cron.h"
#include "check.h"

static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_isdst = 0;
    return timegm(&tm);
}

static void next_is(const char *expr, time_t after, time_t want)
{
    cf_cron c;
    char err[128];
    int rc = cf_cron_parse(expr, &c, err, sizeof err);
    time_t got = rc == 0 ? cf_cron_next(&c, after) : (time_t)-2;
    CHECK(got == want, "next('%s') = %lld, expected %lld (%s)", expr, (long long)got,
          (long long)want, rc ? err : "");
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();

    static const struct {
        const char *in;
        double want;
    } durations[] = {{"30s", 30},   {"15m", 900},   {"1h", 3600}, {"1h30m", 5400}, {"500ms", 0.5},
                     {"1d", 86400}, {"2m30s", 150}, {"", -1},     {"10", -1},      {"5x", -1},
                     {"-5s", -1},   {"0s", -1},     {"m", -1},    {"1h 2m", -1}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        double got = cf_duration_parse(durations[i].in);
        CHECK(got == durations[i].want, "duration '%s' = %g, expected %g", durations[i].in, got,
              durations[i].want);
    }

    time_t t = utc(2026, 11, 28, 1, 30); /* a Saturday */
    next_is("* * * * *", t, utc(2026, 11, 28, 1, 31));
    next_is("*/15 * * * *", t, utc(2026, 11, 28, 1, 45));
    next_is("0 * * * *", t, utc(2026, 11, 28, 2, 0));
    next_is("0 3 * * *", t, utc(2026, 11, 28, 3, 0));
    next_is("30 1 * * *", t, utc(2026, 11, 29, 1, 30)); /* strictly after */
    next_is("0 0 1 * *", t, utc(2026, 12, 1, 0, 0));
    next_is("0 0 * * mon", t, utc(2026, 11, 30, 0, 0));
    next_is("0 0 * * 0", t, utc(2026, 11, 29, 0, 0));
    next_is("0 0 * * 7", t, utc(2026, 11, 29, 0, 0)); /* 7 is Sunday too */
    next_is("0 12 1-7 jan *", t, utc(2027, 1, 1, 12, 0));
    next_is("5,10 9-17/4 * * *", t, utc(2026, 11, 28, 9, 5));
    /* both day fields restricted: either matches (the 15th, or a Monday) */
    next_is("0 0 15 * mon", t, utc(2026, 11, 30, 0, 0));
    next_is("0 0 29 feb *", t, utc(2028, 2, 29, 0, 0));
    next_is("0 0 31 2 *", t, (time_t)-1);

    static const char *const bad[] = {"* * * *",     "* * * * * *", "60 * * * *",  "* 24 * * *",
                                      "* * 0 * *",   "* * * 13 *",  "* * * * 8",   "*/0 * * * *",
                                      "5-1 * * * *", "a * * * *",   "1,,2 * * * *"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cf_cron c;
        char err[128] = "";
        CHECK(cf_cron_parse(bad[i], &c, err, sizeof err) != 0 && err[0], "cron '%s' accepted",
              bad[i]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
