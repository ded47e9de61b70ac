/* cf_ip: IPv4/IPv6 address parsing and canonical (RFC 5952) formatting.
 * Lua-free and allocation-free, so it can be unit-tested and fuzzed alone. */
#ifndef CF_IP_H
#define CF_IP_H

#include <stddef.h>
#include <stdint.h>

/* Longest canonical text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" + NUL. */
#define CF_IP_STRLEN 46

typedef struct cf_ip {
    int family;       /* 4 or 6 */
    uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes */
} cf_ip;

/* Strict parse of exactly n bytes: IPv4 dotted quad without leading zeros; IPv6 in any
 * RFC 4291 text form, including a dotted IPv4 tail; no zone ids, no surrounding space.
 * Returns 0, or -1 when s is not an address. */
int cf_ip_parse(const char *s, size_t n, cf_ip *out);

/* Writes the canonical text (RFC 5952 for IPv6, with IPv4-mapped addresses as
 * ::ffff:a.b.c.d) into out, which must hold CF_IP_STRLEN bytes. Returns its length. */
size_t cf_ip_format(const cf_ip *ip, char *out);

/* Parse + format in one step: returns the canonical length, or -1 if invalid. */
int cf_ip_canonical(const char *s, size_t n, char *out);

#endif
