/* cf_buf: a growable byte buffer for response bodies and request building.
 * Lua-free on purpose: it is unit-tested alone and never raises; callers check results. */
#ifndef CF_BUF_H
#define CF_BUF_H

#include <stddef.h>

typedef struct cf_buf {
    char *data; /* NUL-terminated after an append or cf_buf_reset (cf_buf_reserve only keeps
                   room for the NUL) */
    size_t len;
    size_t cap;
} cf_buf;

void cf_buf_init(cf_buf *b);
void cf_buf_free(cf_buf *b);
/* Keeps the allocation so a reused buffer stops allocating after the first request. */
void cf_buf_reset(cf_buf *b);
/* 0 on success, -1 when memory runs out (the buffer is left as it was). */
int cf_buf_reserve(cf_buf *b, size_t extra);
int cf_buf_append(cf_buf *b, const void *p, size_t n);
int cf_buf_appendstr(cf_buf *b, const char *s);

#endif
