/* cf_buf: a growable byte buffer (see cf_buf.h).
 * Must not include Lua headers or abort on allocation failure. */
#include "cf_buf.h"

#include <stdlib.h>
#include <string.h>

void cf_buf_init(cf_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cf_buf_free(cf_buf *b)
{
    free(b->data);
    cf_buf_init(b);
}

void cf_buf_reset(cf_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int cf_buf_reserve(cf_buf *b, size_t extra)
{
    /* +1 keeps room for the terminating NUL that parsers rely on */
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cf_buf_append(cf_buf *b, const void *p, size_t n)
{
    if (cf_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cf_buf_appendstr(cf_buf *b, const char *s)
{
    return cf_buf_append(b, s, strlen(s));
}
