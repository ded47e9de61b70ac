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

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Sleeps until the monotonic time `until`, waking for signals. Returns the stopping signal,
 * or 0. */
static int sleep_until(double until)
{
    for (;;) {
        int sig = cf_termination_requested();
        if (sig)
            return sig;
        double left = until - monotonic();
        if (left <= 0)
            return 0;
        if (left > 0.1)
            left = 0.1; /* wake often enough to notice a signal */
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static double random_fraction(void)
{
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned int)rand();
    return (double)r / 4294967296.0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Default lock: $XDG_RUNTIME_DIR/cfrun (else /tmp/cfrun-UID), named after the script and a
 * hash of its absolute path, so two jobs that share a script name do not share a lock. */
static int default_lock(const char *script, char *out, size_t len)
{
    char dir[PATH_MAX], abs[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/cfrun", xdg);
    else
        snprintf(dir, sizeof dir, "/tmp/cfrun-%u", (unsigned)getuid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    if (!realpath(script, abs))
        snprintf(abs, sizeof abs, "%s", script);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = abs; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    int n = snprintf(out, len, "%s/%s-%016llx.lock", dir, base_name(script), (unsigned long long)h);
    return n > 0 && (size_t)n < len ? 0 : -1;
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

static void log_run(FILE *log, const char *job, const char *start, const char *end, double secs,
                    const cf_run_result *r)
{
    fputs("{\"event\":\"run\",\"job\":", log);
    json_string(log, job);
    fprintf(log, ",\"start\":\"%s\",\"end\":\"%s\",\"duration_s\":%.3f,\"status\":%d,", start, end,
            secs, r->status);
    fputs("\"outcome\":", log);
    json_string(log, r->outcome);
    fprintf(log,
            ",\"succeeded\":%lld,\"failed\":%lld,\"pending\":%lld,\"requests\":%lld,"
            "\"retries\":%lld,\"rate_limit_waits\":%lld",
            r->succeeded, r->failed, r->pending, r->requests, r->retries, r->waits);
    if (r->error[0]) {
        fputs(",\"error\":", log);
        json_string(log, r->error);
    }
    fputs("}\n", log);
    fflush(log);
}

static int one_run(const cf_sched *s, FILE *log, cf_run_fn run, void *ctx)
{
    char start[40], end[40];
    cf_run_result r;
    memset(&r, 0, sizeof r);
    r.outcome = "success";
    timestamp(start, sizeof start);
    double t0 = monotonic();
    run(ctx, &r);
    timestamp(end, sizeof end);
    log_run(log, base_name(s->script_path), start, end, monotonic() - t0, &r);
    return r.status;
}

int cf_sched_run(const cf_sched *s, cf_run_fn run, void *ctx)
{
    char lock_path[PATH_MAX];
    if (s->lock_path)
        snprintf(lock_path, sizeof lock_path, "%s", s->lock_path);
    else if (default_lock(s->script_path, lock_path, sizeof lock_path) != 0) {
        fprintf(stderr, "cfrun: cannot create the lock directory: %s\n", strerror(errno));
        return CF_EXIT_USAGE;
    }
    /* held until the process exits: runs of one job never overlap, in or across processes */
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cfrun: cannot open the lock %s: %s\n", lock_path, strerror(errno));
        return CF_EXIT_USAGE;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "cfrun: %s is already running (lock %s is held); not starting\n",
                base_name(s->script_path), lock_path);
        close(fd);
        return CF_EXIT_LOCKED;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && write(fd, pid, (size_t)n) < 0) {
        /* the pid is only a hint for operators */
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
    cf_interrupt_sigint_stops(1);

    int status = CF_EXIT_OK, failures = 0;
    double next = monotonic();
    for (;;) {
        if (s->mode == CF_SCHED_CRON) {
            time_t now = time(NULL), at = cf_cron_next(&s->cron, now);
            if (at == (time_t)-1) {
                fprintf(stderr, "cfrun: the cron expression never matches\n");
                status = CF_EXIT_USAGE;
                break;
            }
            next = monotonic() + difftime(at, now);
        }
        if (s->mode != CF_SCHED_JOB) {
            double at = next + (s->jitter > 0 ? s->jitter * random_fraction() : 0);
            int sig = sleep_until(at);
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
            if (next < monotonic()) /* a run overran: skip the slots it missed */
                next = monotonic();
        }
    }
    if (log != stderr)
        fclose(log);
    close(fd);
    return status;
}
