/* cf_sha256: SHA-256 (FIPS 180-4), Lua-free. cfrun needs one digest of a few bytes per
 * process (naming a rate budget by its credential); OpenSSL 3's EVP spent 3 M instructions
 * fetching its provider for that, a fifth of a cold start. */
#ifndef CF_SHA256_H
#define CF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CF_SHA256_LEN 32

/* The digest of the n bytes at s, into out. */
void cf_sha256(const void *s, size_t n, uint8_t out[CF_SHA256_LEN]);

#endif
