/* cf_ip: IPv4/IPv6 address parsing and canonical (RFC 5952) formatting.
 * Lua-free and allocation-free, so it can be unit-tested and fuzzed alone. */
#ifndef CF_IP_H
#define CF_IP_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest text form, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" + NUL;
 * canonical text is at most 39 bytes. */
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

/* Numeric order: every IPv4 address before every IPv6 one. Returns <0, 0 or >0. */
int cf_ip_compare(const cf_ip *a, const cf_ip *b);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 host a.b.c.d for containment:
 * Cloudflare stores both spellings, and an operator selecting 192.0.2.0/24 means both. */

/* "address/bits" + NUL; the longest is an IPv6 address with "/128". */
#define CF_PREFIX_STRLEN (CF_IP_STRLEN + 4)

typedef struct cf_prefix {
    cf_ip net; /* host bits cleared */
    int bits;
} cf_prefix;

/* Parses "addr/bits" (bits without leading zeros, 0..32 or 0..128) or a bare address (a
 * host prefix). A base with host bits set ("10.1.2.3/8") is accepted and masked, as
 * routers and Python's strict=False do. Returns 0, or -1 when s is not a prefix. */
int cf_prefix_parse(const char *s, size_t n, cf_prefix *out);
/* 1 if ip lies inside p (see the note on mapped addresses above), else 0. */
int cf_prefix_contains(const cf_prefix *p, const cf_ip *ip);
/* Canonical "network/bits" into out (CF_PREFIX_STRLEN bytes); returns its length. */
size_t cf_prefix_format(const cf_prefix *p, char *out);

#endif
