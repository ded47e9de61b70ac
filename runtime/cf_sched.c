/* cf_sched: the job runner behind --job, --every and --cron (see cf_sched.h).
 * Must not touch Lua: a run is a callback that owns its own fresh state. */
#include "cf_sched.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_interrupt.h"
#include "cf_lock.h"
#include "cf_sys.h"

static double random_fraction(void)
{
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned int)rand(); /* NOLINT(cert-msc30-c,cert-msc50-cpp): jitter, no secret */
    return (double)r / 4294967296.0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The record of a run whose policy could not produce one (cloudflare.run never ran). */
static void fallback_record(FILE *log, const char *job, const char *start, const char *end,
                            const cf_run_result *r)
{
    fputs("{\"event\":\"run\",\"job\":", log);
    json_string(log, job);
    fprintf(log, ",\"start\":\"%s\",\"end\":\"%s\",\"status\":%d,\"outcome\":\"script_error\"",
            start, end, r->status);
    fputs(",\"error\":", log);
    json_string(log, r->error[0] ? r->error : "the run ended without a record");
    fputs("}\n", log);
}

/* Runs once and writes its log line. A line that cannot be written is reported on stderr and
 * makes the run's status non-zero: a job whose record is lost must not look fine. */
static int one_run(const cf_sched *s, FILE *log, cf_run_fn run, void *ctx)
{
    char start[40], end[40];
    cf_run_result r;
    memset(&r, 0, sizeof r);
    cf_timestamp(start, sizeof start);
    run(ctx, &r);
    cf_timestamp(end, sizeof end);
    clearerr(log);
    if (r.line[0])
        fprintf(log, "%s\n", r.line);
    else
        fallback_record(log, base_name(s->script_path), start, end, &r);
    if (fflush(log) != 0 || ferror(log)) {
        fprintf(stderr, "cfrun: cannot write the run's log line to %s: %s\n",
                s->log_path ? s->log_path : "standard error", strerror(errno));
        if (r.status == CF_EXIT_OK)
            r.status = CF_EXIT_SCRIPT;
    }
    return r.status;
}

int cf_sched_run(const cf_sched *s, cf_run_fn run, void *ctx)
{
    char lock_path[PATH_MAX], err[PATH_MAX + 512];
    if (s->lock_path)
        snprintf(lock_path, sizeof lock_path, "%s", s->lock_path);
    else if (cf_lock_default_path(s->script_path, lock_path, sizeof lock_path, err, sizeof err) !=
             0) {
        fprintf(stderr, "cfrun: %s\n", err);
        return CF_EXIT_USAGE;
    }
    /* held until the process exits: runs of one job never overlap, in or across processes */
    int fd;
    switch (cf_lock_take(lock_path, &fd, err, sizeof err)) {
    case CF_LOCK_TAKEN:
        break;
    case CF_LOCK_HELD:
        fprintf(stderr, "cfrun: %s is already running (lock %s is held); not starting\n",
                base_name(s->script_path), lock_path);
        return CF_EXIT_LOCKED;
    default:
        fprintf(stderr, "cfrun: %s\n", err);
        return CF_EXIT_USAGE;
    }

    FILE *log = stderr;
    if (s->log_path) {
        log = fopen(s->log_path, "a");
        if (!log) {
            fprintf(stderr, "cfrun: cannot open the log file %s: %s\n", s->log_path,
                    strerror(errno));
            close(fd);
            return CF_EXIT_USAGE;
        }
    }
    int status = CF_EXIT_OK, failures = 0;
    double next = cf_now();
    for (;;) {
        if (s->mode == CF_SCHED_CRON) {
            time_t now = time(NULL), at = cf_cron_next(&s->cron, now);
            if (at == (time_t)-1) {
                fprintf(stderr, "cfrun: the cron expression never matches\n");
                status = CF_EXIT_USAGE;
                break;
            }
            next = cf_now() + difftime(at, now);
        }
        if (s->mode != CF_SCHED_JOB) {
            double at = next + (s->jitter > 0 ? s->jitter * random_fraction() : 0);
            int sig = cf_sleep_until(at);
            if (sig) {
                status = 128 + sig;
                break;
            }
        }
        status = one_run(s, log, run, ctx);
        int sig = cf_termination_requested();
        if (sig) {
            status = 128 + sig;
            break;
        }
        if (s->mode == CF_SCHED_JOB)
            break;
        failures = status == CF_EXIT_OK ? 0 : failures + 1;
        if (s->max_failures > 0 && failures >= s->max_failures) {
            fprintf(stderr, "cfrun: stopping after %d consecutive failed runs\n", failures);
            break;
        }
        if (s->mode == CF_SCHED_EVERY) {
            next += s->every;
            if (next < cf_now()) /* a run overran: skip the slots it missed */
                next = cf_now();
        }
    }
    if (log != stderr)
        fclose(log);
    close(fd);
    return status;
}
