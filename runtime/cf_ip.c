/* cf_ip: IP address parsing and RFC 5952 formatting (see cf_ip.h).
 * Must stay Lua-free and must not allocate: it runs on every IP a script passes. */
#include "cf_ip.h"

#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Dotted quad, exactly n bytes. Leading zeros are refused: "010.0.0.1" means 8.0.0.1 to
 * inet_aton and 10.0.0.1 to others, and guessing wrong would delete the wrong mapping. */
static int parse4(const char *s, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t digits = i - start;
        if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0'))
            return -1;
        if (i < n && s[i] >= '0' && s[i] <= '9')
            return -1; /* a fourth digit */
        out[part] = (uint8_t)v;
    }
    return i == n ? 0 : -1;
}

static int parse6(const char *s, size_t n, uint8_t out[16])
{
    unsigned g[8];
    int ng = 0;
    int gap = -1; /* index in g where "::" stands */
    size_t i = 0;

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return -1;
    }
    while (i < n) {
        size_t j = i;
        unsigned v = 0;
        int digits = 0;
        while (j < n && hexval(s[j]) >= 0 && digits < 5) {
            v = v * 16 + (unsigned)hexval(s[j++]);
            digits++;
        }
        if (j < n && s[j] == '.') { /* dotted IPv4 tail: must end the address */
            uint8_t v4[4];
            if (ng > 6 || parse4(s + i, n - i, v4) != 0)
                return -1;
            g[ng++] = (unsigned)v4[0] << 8 | v4[1];
            g[ng++] = (unsigned)v4[2] << 8 | v4[3];
            break;
        }
        if (digits == 0 || digits > 4 || ng == 8)
            return -1;
        g[ng++] = v;
        if (j == n)
            break;
        if (s[j] != ':')
            return -1;
        j++;
        if (j < n && s[j] == ':') {
            if (gap >= 0)
                return -1; /* a second "::" */
            gap = ng;
            j++;
        } else if (j == n) {
            return -1; /* trailing single ':' */
        }
        i = j;
    }
    if (gap < 0) {
        if (ng != 8)
            return -1;
    } else {
        if (ng > 7)
            return -1; /* "::" must stand for at least one group */
        int tail = ng - gap;
        for (int k = tail - 1; k >= 0; k--) /* backwards: the ranges may overlap */
            g[8 - tail + k] = g[gap + k];
        for (int k = gap; k < 8 - tail; k++)
            g[k] = 0;
    }
    for (size_t k = 0; k < 8; k++) {
        out[2 * k] = (uint8_t)(g[k] >> 8);
        out[2 * k + 1] = (uint8_t)(g[k] & 0xff);
    }
    return 0;
}

int cf_ip_parse(const char *s, size_t n, cf_ip *out)
{
    /* 45 is the longest valid text form (six 4-digit groups and a dotted quad) */
    if (n == 0 || n > 45)
        return -1;
    memset(out, 0, sizeof *out);
    if (memchr(s, ':', n)) {
        out->family = 6;
        return parse6(s, n, out->addr);
    }
    out->family = 4;
    return parse4(s, n, out->addr);
}

static int is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, sizeof prefix) == 0;
}

/* Writes the dotted quad of a[0..3] at out; returns its length. By hand: bulk calls format
 * every address they send and receive, and snprintf dominated that. */
static size_t format4(const uint8_t *a, char *out)
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    return (size_t)(p - out - 1);
}

size_t cf_ip_format(const cf_ip *ip, char *out)
{
    const uint8_t *a = ip->addr;
    if (ip->family == 4)
        return format4(a, out);
    if (is_v4_mapped(a)) {
        memcpy(out, "::ffff:", 7);
        return 7 + format4(a + 12, out + 7);
    }

    unsigned g[8];
    for (size_t k = 0; k < 8; k++)
        g[k] = (unsigned)a[2 * k] << 8 | a[2 * k + 1];
    /* RFC 5952 4.2: compress the longest run of two or more zero groups, the first on a tie */
    int best = -1, bestlen = 1;
    for (int k = 0; k < 8;) {
        if (g[k] != 0) {
            k++;
            continue;
        }
        int start = k;
        while (k < 8 && g[k] == 0)
            k++;
        if (k - start > bestlen) {
            best = start;
            bestlen = k - start;
        }
    }
    size_t len = 0;
    for (int k = 0; k < 8; k++) {
        if (k == best) {
            out[len++] = ':';
            if (k == 0)
                out[len++] = ':';
            k += bestlen - 1;
            continue;
        }
        len += (size_t)snprintf(out + len, CF_IP_STRLEN - len, "%x", g[k]);
        if (k < 7)
            out[len++] = ':';
    }
    out[len] = '\0';
    return len;
}

int cf_ip_canonical(const char *s, size_t n, char *out)
{
    cf_ip ip;
    if (cf_ip_parse(s, n, &ip) != 0)
        return -1;
    return (int)cf_ip_format(&ip, out);
}

int cf_ip_compare(const cf_ip *a, const cf_ip *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    return memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16);
}

/* An IPv4-mapped IPv6 address becomes its IPv4 host; anything else is unchanged. */
static cf_ip unmapped(const cf_ip *ip)
{
    cf_ip out = *ip;
    if (ip->family == 6 && is_v4_mapped(ip->addr)) {
        memset(&out, 0, sizeof out);
        out.family = 4;
        memcpy(out.addr, ip->addr + 12, 4);
    }
    return out;
}

static void mask(uint8_t *addr, int bits, int total)
{
    for (int bit = bits; bit < total; bit++)
        addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
}

int cf_prefix_parse(const char *s, size_t n, cf_prefix *out)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    if (cf_ip_parse(s, alen, &out->net) != 0)
        return -1;
    int total = out->net.family == 4 ? 32 : 128;
    out->bits = total;
    if (slash) {
        const char *d = slash + 1;
        size_t dlen = n - alen - 1;
        if (dlen == 0 || dlen > 3 || (dlen > 1 && d[0] == '0'))
            return -1;
        int bits = 0;
        for (size_t i = 0; i < dlen; i++) {
            if (d[i] < '0' || d[i] > '9')
                return -1;
            bits = bits * 10 + (d[i] - '0');
        }
        if (bits > total)
            return -1;
        out->bits = bits;
    }
    /* a prefix written as an IPv4-mapped network is an IPv4 network */
    if (out->net.family == 6 && out->bits >= 96 && is_v4_mapped(out->net.addr)) {
        out->net = unmapped(&out->net);
        out->bits -= 96;
        total = 32;
    }
    mask(out->net.addr, out->bits, total);
    return 0;
}

int cf_prefix_contains(const cf_prefix *p, const cf_ip *ip)
{
    cf_ip host = unmapped(ip);
    if (host.family != p->net.family)
        return 0;
    int full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(host.addr, p->net.addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xffu << (8 - rest));
    return (host.addr[full] & m) == p->net.addr[full];
}

size_t cf_prefix_format(const cf_prefix *p, char *out)
{
    size_t len = cf_ip_format(&p->net, out);
    len += (size_t)snprintf(out + len, CF_PREFIX_STRLEN - len, "/%d", p->bits);
    return len;
}
