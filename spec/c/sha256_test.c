/* sha256_test: cf_sha256 against the published test vectors (FIPS 180-4's examples), and
 * the lengths around the padding's block boundaries against digests `openssl dgst -sha256`
 * gave. Prints each failure and "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_sha256.h"
#include "check.h"

static void hex(const uint8_t *md, char *out)
{
    for (size_t i = 0; i < CF_SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void expect(const void *s, size_t n, const char *want, const char *what)
{
    uint8_t md[CF_SHA256_LEN];
    char got[2 * CF_SHA256_LEN + 1];
    cf_sha256(s, n, md);
    hex(md, got);
    CHECK(strcmp(got, want) == 0, "%s: %s, expected %s", what, got, want);
}

int main(void)
{
    expect("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
    expect("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
           "448 bits");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    expect(four, strlen(four), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
           "896 bits");
    char *million = malloc(1000000);
    if (million) {
        memset(million, 'a', 1000000);
        expect(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
               "a million a");
        free(million);
    }
    /* runs of 'x' whose tails take one block or two: `head -c N /dev/zero | tr '\0' x |
     * openssl dgst -sha256` */
    static const struct {
        int n;
        const char *md;
    } runs[] = {
        {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {57, "ae14a2563ccf969d99aca69ce6bb74981f734bbf9f655f73b8f06db68cab5217"},
        {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
        {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
        {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
        {127, "70156a14adbabf98cff3a71c7084b417abf057a8efd27329ca36b7202c87d81f"},
        {128, "24da1b81d0b16df6428eee73c69fcb2a93c76bc6df706f0c6670fe6bfe800464"},
        {129, "0ec9eb33e74510bcdd1f2ea55206e82f21649c5c2becbf2b433eb475b34c01bd"},
    };
    char buf[129];
    memset(buf, 'x', sizeof buf);
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        char what[32];
        snprintf(what, sizeof what, "%d bytes of x", runs[k].n);
        expect(buf, (size_t)runs[k].n, runs[k].md, what);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
