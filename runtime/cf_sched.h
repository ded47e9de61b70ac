/* cf_sched: running a script as a job: once (--job), every DURATION (--every) or on a cron
 * schedule (--cron), under a lock, with one JSON log line per run and signal handling. */
#ifndef CF_SCHED_H
#define CF_SCHED_H

#include "cf_cron.h"
#include "cf_exit.h"

typedef struct cf_run_result {
    int status;
    char line[4096]; /* the run's JSON log record (cloudflare.run), "" when it has none */
    char error[512]; /* why there is no record: the run could not start or its policy failed */
} cf_run_result;

/* Runs the script once in a fresh Lua state and fills *out. */
typedef void (*cf_run_fn)(void *ctx, cf_run_result *out);

typedef enum { CF_SCHED_JOB, CF_SCHED_EVERY, CF_SCHED_CRON } cf_sched_mode;

typedef struct cf_sched {
    cf_sched_mode mode;
    double every, jitter; /* seconds */
    cf_cron cron;
    int max_failures;        /* 0: never stop */
    const char *lock_path;   /* NULL: derived from script_path */
    const char *log_path;    /* NULL: stderr */
    const char *script_path; /* names the job in logs and the default lock */
} cf_sched;

/* Takes the lock, then runs as configured; returns the process's exit status. */
int cf_sched_run(const cf_sched *s, cf_run_fn run, void *ctx);

#endif
