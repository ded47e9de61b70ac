/* measure: runs a command RUNS times, one after the other, and prints for each run its wall
 * time, CPU time and peak resident set size. It measures only; it must not interpret the
 * command's output (the caller checks what the command did).
 *
 * usage: measure [-n RUNS] [-o FILE] [--] command [args...]
 *
 * One line per run, on FILE (default standard output, which the command shares):
 *   run=1 wall=0.012345 user=0.004000 sys=0.002000 cpu=0.006000 maxrss_kb=5120 status=0
 * wall: CLOCK_MONOTONIC from just before fork to the return of wait4; user, sys: the child's
 * rusage (seconds); maxrss_kb: its ru_maxrss. Linux folds the RSS the child had before exec
 * (a copy of this small program) into ru_maxrss, so ~1 MB is a floor shared by every command.
 * status: the exit status, or 128 + the signal number. Exits 0 when every run exited 0, 1 when
 * one did not, 2 on a usage or system error.
 *
 * Build: cc -O2 -Wall -Wextra -o measure measure.c
 */
#define _GNU_SOURCE /* wait4 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void usage(void)
{
    fputs("usage: measure [-n RUNS] [-o FILE] [--] command [args...]\n", stderr);
    exit(2);
}

/* Runs argv once and writes its line to out. Returns the run's status, or -1 on a system error. */
static int run_once(int run, char **argv, FILE *out)
{
    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int wstatus;
    struct rusage ru;
    pid_t got;
    while ((got = wait4(pid, &wstatus, 0, &ru)) < 0 && errno == EINTR)
        ;
    double wall = now() - start;
    if (got < 0) {
        perror("measure: wait4");
        return -1;
    }
    int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    double user = seconds(ru.ru_utime), sys = seconds(ru.ru_stime);
    fprintf(out, "run=%d wall=%.6f user=%.6f sys=%.6f cpu=%.6f maxrss_kb=%ld status=%d\n", run,
            wall, user, sys, user + sys, ru.ru_maxrss, status);
    fflush(out);
    return status;
}

int main(int argc, char **argv)
{
    int runs = 1, opt;
    FILE *out = stdout;
    while ((opt = getopt(argc, argv, "+n:o:")) != -1) {
        switch (opt) {
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 100000)
                usage();
            runs = (int)n;
            break;
        }
        case 'o':
            out = fopen(optarg, "we"); /* e: close-on-exec, the command does not inherit it */
            if (!out) {
                fprintf(stderr, "measure: cannot write %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();

    int failed = 0;
    for (int i = 1; i <= runs; i++) {
        int status = run_once(i, argv + optind, out);
        if (status < 0)
            return 2;
        failed |= status != 0;
    }
    if (out != stdout && fclose(out) != 0) {
        perror("measure: output");
        return 2;
    }
    return failed;
}
