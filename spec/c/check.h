/* check.h: the assertion of the C unit tests (spec/c/): counts passes, prints each failure,
 * and the tests end with "N passed, N failed". Must stay header-only and free of Lua. */
#ifndef CF_CHECK_H
#define CF_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            passed++;                                                                              \
        else {                                                                                     \
            failed++;                                                                              \
            printf("FAIL: " __VA_ARGS__);                                                          \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

#endif
