/* cf_lock: the job lock: its default path under a directory only the user controls, and
 * taking it without following links, truncating, or trusting what another user prepared. */
#ifndef CF_LOCK_H
#define CF_LOCK_H

#include <stddef.h>

/* Results of cf_lock_take. */
enum { CF_LOCK_TAKEN = 0, CF_LOCK_HELD = 1, CF_LOCK_ERROR = -1 };

/* Width of the pid hint line written at offset 0 of a lock, newline included. */
#define CF_LOCK_PID_LINE 21

/* Makes sure `dir` is a private directory: creates it 0700 when missing, then refuses it
 * unless it is a real directory (not a symlink) owned by the user and not writable by group
 * or others. Returns 0, or -1 with a message naming the directory in err. */
int cf_lock_private_dir(const char *dir, char *err, size_t errlen);

/* The default lock of a script: $XDG_RUNTIME_DIR/cfrun (else /tmp/cfrun-UID), checked by
 * cf_lock_private_dir, then <script name>-<hash of its absolute path>.lock. Returns 0, or
 * -1 with a message in err. */
int cf_lock_default_path(const char *script, char *out, size_t len, char *err, size_t errlen);

/* Opens (creating 0600) and flocks `path` without blocking. CF_LOCK_TAKEN: *fd holds the
 * lock until it is closed, and the pid hint was written if the file held nothing else;
 * CF_LOCK_HELD: another open file holds it; CF_LOCK_ERROR: a symlink, not a regular file, or
 * a system error, with a message in err. *fd is -1 unless the lock was taken. */
int cf_lock_take(const char *path, int *fd, char *err, size_t errlen);

#endif
