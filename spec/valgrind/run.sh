#!/bin/sh
# spec/valgrind/run.sh CFRUN BUSTED SPEC: runs one busted spec under valgrind memcheck (the
# valgrind.* CTest tests): the cfrun that runs busted and every cfrun the spec starts.
# Must not let a report pass: a memcheck error in any of those processes fails the test.
#
# Why a CFRUN wrapper rather than --trace-children: the specs start cfrun through sh, env,
# timeout and tmux; tracing those would put every shell under memcheck (about a second each)
# for nothing, and a program left out with --trace-children-skip takes its children with it.
# The wrapper puts exactly the cfrun processes under memcheck, each logging to its own file;
# the logs decide, not only exit statuses, since a spec may ignore a child's status.
#
# The fake API (cfrun --fake-api) runs natively unless CFRUN_VG_FAKE=1: under memcheck it
# answers so slowly that specs measuring concurrency and rate limits fail for timing alone
# (async_spec saw 3 requests in flight instead of 4, and a 429).
#
# Leaks: only "definitely lost" blocks are errors. Debian's libcurl, OpenSSL and readline keep
# memory reachable until exit by design (a REPL session ends with ~400 kB "still reachable"),
# which is no leak; a block nothing points to any more is one, wherever it is. The few such
# blocks that are a library's own bug are suppressed in libraries.supp, beside this file, each
# entry saying why it is not cfrun's.
set -u
cfrun=$1
busted=$2
spec=$3
logs=$(mktemp -d "${TMPDIR:-/tmp}/cfrun-valgrind.XXXXXX")

CFRUN_VG_BINARY=$cfrun
CFRUN_VG_LOGS=$logs
CFRUN_VG_SUPP=$(cd "$(dirname "$0")" && pwd)/libraries.supp
export CFRUN_VG_BINARY CFRUN_VG_LOGS CFRUN_VG_SUPP
cat >"$logs/cfrun" <<'WRAPPER'
#!/bin/sh
if [ "${1-}" = --fake-api ] && [ "${CFRUN_VG_FAKE-}" != 1 ]; then
  exec "$CFRUN_VG_BINARY" "$@"
fi
exec valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
  --suppressions="$CFRUN_VG_SUPP" \
  --errors-for-leak-kinds=definite --num-callers=30 --child-silent-after-fork=yes \
  --log-file="$CFRUN_VG_LOGS/%p.log" "$CFRUN_VG_BINARY" "$@"
WRAPPER
chmod +x "$logs/cfrun"

# Under memcheck everything runs 10 to 50 times slower: specs stretch their deadlines by
# CFRUN_SPEC_SLOW (spec/helper.lua), and the few whose assertion is itself about timing (tagged
# #timing: a rate window's edge) are left to the native runs.
CFRUN_SPEC_SLOW=${CFRUN_SPEC_SLOW:-10}
export CFRUN_SPEC_SLOW
start=$(date +%s)
CFRUN=$logs/cfrun "$logs/cfrun" "$busted" --output=gtest --exclude-tags=timing "$spec"
status=$?

# A log with an ERROR SUMMARY decides by it; one without (a process killed by SIGKILL, as
# journal_spec does) by the error headers memcheck prints (a "Process terminating" trace is none).
# A process a signal ended (the REPL's pane closed under it: SIGHUP) may have died halfway
# through lua_close, so what it had not freed yet is no leak: there, only memory errors count.
errors='Invalid |Mismatched |Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Argument |Fishy value|Illegal memory'
leaks='[0-9,]+ bytes in [0-9,]+ blocks are definitely lost'
bad=$(
  for f in "$logs"/*.log; do
    if grep -q 'Process terminating with default action of signal' "$f"; then
      grep -qE "^==[0-9]+== ($errors)" "$f" && echo "$f"
    elif grep -q 'ERROR SUMMARY:' "$f"; then
      grep -qE 'ERROR SUMMARY: [1-9]' "$f" && echo "$f"
    elif grep -qE "^==[0-9]+== ($errors|$leaks)" "$f"; then
      echo "$f"
    fi
  done
)
echo "valgrind: $(basename "$spec") took $(($(date +%s) - start)) s;" \
  "$(find "$logs" -name '*.log' | wc -l) cfrun processes checked, $(echo "$bad" | grep -c .) with errors"
for f in $bad; do
  echo "==== memcheck report of $(grep -m1 'Command:' "$f" | sed 's/^==[0-9]*== Command: //')"
  cat "$f"
  status=1
done
if [ "$status" -eq 0 ]; then
  rm -rf "$logs"
else
  echo "valgrind: status $status; logs kept in $logs"
fi
exit "$status"
