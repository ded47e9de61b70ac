/* ip_test: unit tests of cf_ip (parsing and RFC 5952 formatting), without Lua.
 * Table-driven; prints one line per failure and a closing "N passed, N failed". */
#include <stdio.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_ip.h"

static int passed, failed;

static void expect_canonical(const char *in, const char *want)
{
    char out[CF_IP_STRLEN];
    int len = cf_ip_canonical(in, strlen(in), out);
    if (want == NULL) {
        if (len < 0) {
            passed++;
        } else {
            failed++;
            printf("FAIL: '%s' accepted as '%s', expected invalid\n", in, out);
        }
        return;
    }
    if (len >= 0 && strcmp(out, want) == 0 && (size_t)len == strlen(want)) {
        passed++;
    } else {
        failed++;
        printf("FAIL: '%s' -> '%s', expected '%s'\n", in, len < 0 ? "(invalid)" : out, want);
    }
}

static void test_buf(void)
{
    cf_buf b;
    cf_buf_init(&b);
    int ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= cf_buf_appendstr(&b, "0123456789") == 0;
    ok &= b.len == 10000 && b.data[10000] == '\0' && memcmp(b.data + 9990, "0123456789", 10) == 0;
    cf_buf_reset(&b);
    ok &= b.len == 0 && b.cap >= 10001;
    cf_buf_free(&b);
    ok &= b.data == NULL;
    if (ok)
        passed++;
    else {
        failed++;
        printf("FAIL: cf_buf append/reset/free\n");
    }
}

int main(void)
{
    static const char *const cases[][2] = {
        /* IPv4 */
        {"192.0.2.1", "192.0.2.1"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"256.0.0.1", NULL},
        {"192.0.2", NULL},
        {"192.0.2.1.5", NULL},
        {"010.0.0.1", NULL}, /* leading zero: octal to inet_aton, refused */
        {"1.2.3.04", NULL},
        {"1.2.3.", NULL},
        {".1.2.3", NULL},
        {"1..2.3", NULL},
        {"1.2.3.4 ", NULL},
        {" 1.2.3.4", NULL},
        {"1.2.3.1000", NULL},
        {"0x1.2.3.4", NULL},
        {"", NULL},
        {"not-an-ip", NULL},
        /* IPv6, RFC 5952 */
        {"2001:db8::1", "2001:db8::1"},
        {"2001:DB8::1", "2001:db8::1"},                             /* 4.3 lowercase */
        {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"}, /* 4.1 leading zeros */
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},              /* 4.2.3 leftmost on a tie */
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},                    /* 4.2.3 longest run */
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},           /* 4.2.2 single zero kept */
        {"2001:db8::", "2001:db8::"},
        {"::", "::"},
        {"::1", "::1"},
        {"0:0:0:0:0:0:0:1", "::1"},
        {"1:0:0:0:0:0:0:0", "1::"},
        {"fe80::1:0:0:0", "fe80::1:0:0:0"}, /* tie: leftmost run */
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"::FFFF:c000:0201", "::ffff:192.0.2.1"}, /* mapped: dotted form */
        {"0:0:0:0:0:ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"::192.0.2.1", "::c000:201"}, /* deprecated compatible form */
        {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
        {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
        {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
        {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
        {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
        {"1:2:3:4:5:6:7:8:9", NULL},
        {"1:2:3:4:5:6:7", NULL},
        {"1:2:3:4:5:6:7:8::", NULL},
        {"::1:2:3:4:5:6:7:8", NULL},
        {"1::2::3", NULL},
        {":::", NULL},
        {":1::", NULL},
        {"1::2:", NULL},
        {"1:", NULL},
        {":", NULL},
        {"12345::", NULL},
        {"g::1", NULL},
        {"fe80::1%eth0", NULL},
        {"::ffff:1.2.3", NULL},
        {"::ffff:1.2.3.4.5", NULL},
        {"1.2.3.4::", NULL},
        {"1:2:3:4:5:6:7:1.2.3.4", NULL},
        {"[2001:db8::1]", NULL},
        {"2001:db8::1/64", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_canonical(cases[i][0], cases[i][1]);

    /* an embedded NUL is not the end of the address */
    char out[CF_IP_STRLEN];
    if (cf_ip_canonical("1.2.3.4\0x", 9, out) < 0)
        passed++;
    else {
        failed++;
        printf("FAIL: embedded NUL accepted\n");
    }
    static const struct {
        const char *cidr, *ip;
        int in;
    } contains[] = {
        {"0.0.0.0/0", "255.255.255.255", 1},
        {"0.0.0.0/0", "::ffff:1.2.3.4", 1}, /* mapped = the IPv4 host */
        {"0.0.0.0/0", "::1", 0},
        {"::/0", "2001:db8::1", 1},
        {"::/0", "192.0.2.1", 0},
        {"::/0", "::ffff:192.0.2.1", 0},
        {"192.0.2.1/32", "192.0.2.1", 1},
        {"192.0.2.1/32", "192.0.2.2", 0},
        {"192.0.2.1", "192.0.2.1", 1},   /* a bare address is a host prefix */
        {"10.1.2.3/8", "10.200.0.1", 1}, /* non-aligned base: masked */
        {"10.1.2.3/8", "11.0.0.0", 0},
        {"192.0.2.128/25", "192.0.2.127", 0},
        {"192.0.2.128/25", "192.0.2.128", 1},
        {"192.0.2.0/23", "192.0.3.255", 1},
        {"192.0.2.0/23", "192.0.4.0", 0},
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::", 0},
        {"2001:db8::1/128", "2001:db8::1", 1},
        {"2001:db8::1/128", "2001:db8::2", 0},
        {"2001:db8::/33", "2001:db8:7fff::", 1},
        {"2001:db8::/33", "2001:db8:8000::", 0},
        {"::ffff:192.0.2.0/120", "192.0.2.9", 1}, /* a mapped network is an IPv4 network */
        {"192.0.2.0/24", "::ffff:192.0.2.200", 1},
    };
    for (size_t i = 0; i < sizeof contains / sizeof contains[0]; i++) {
        cf_prefix p;
        cf_ip ip;
        const char *c = contains[i].cidr, *a = contains[i].ip;
        int ok = cf_prefix_parse(c, strlen(c), &p) == 0 && cf_ip_parse(a, strlen(a), &ip) == 0 &&
                 cf_prefix_contains(&p, &ip) == contains[i].in;
        if (ok)
            passed++;
        else {
            failed++;
            printf("FAIL: contains(%s, %s) != %d\n", c, a, contains[i].in);
        }
    }
    static const char *const prefixes[][2] = {
        {"10.1.2.3/8", "10.0.0.0/8"},
        {"192.0.2.1", "192.0.2.1/32"},
        {"2001:DB8::1/32", "2001:db8::/32"},
        {"::/0", "::/0"},
        {"::ffff:192.0.2.0/120", "192.0.2.0/24"},
        {"10.0.0.0/33", NULL},
        {"10.0.0.0/", NULL},
        {"10.0.0.0/08", NULL},
        {"::/129", NULL},
        {"10.0.0.0/8/8", NULL},
        {"/8", NULL},
        {"10.0.0.0/-1", NULL},
        {"10.0.0.0/ 8", NULL},
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        cf_prefix p;
        char text[CF_PREFIX_STRLEN];
        const char *in = prefixes[i][0], *want = prefixes[i][1];
        int rc = cf_prefix_parse(in, strlen(in), &p);
        int ok = want ? rc == 0 && cf_prefix_format(&p, text) == strlen(want) && !strcmp(text, want)
                      : rc != 0;
        if (ok)
            passed++;
        else {
            failed++;
            printf("FAIL: prefix '%s' -> %s, expected %s\n", in, rc ? "(invalid)" : text,
                   want ? want : "(invalid)");
        }
    }
    test_buf();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
