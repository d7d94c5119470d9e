/*
 * vectors_bip340.c - every row of tests/data/vectors/bip340/test-vectors.csv:
 * signing rows must reproduce the signature bit for bit (given the same
 * aux_rand) and every row's verification result must match.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "cvec.h"
#include "crypto/keypair.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

#define FIELDS 7

/* Splits one CSV line into its first FIELDS fields (the comment, which may
 * contain commas, is ignored). Returns the number of fields found. */
static int split(char *line, char *f[FIELDS])
{
    int n = 0;
    char *p = line;
    while (n < FIELDS) {
        f[n++] = p;
        char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static void test_bip340_csv(void **state)
{
    (void)state;
    size_t len, rows = 0, signed_rows = 0;
    char *text = cvec_load_text("bip340/test-vectors.csv", &len);
    char *save = NULL;
    char *line = strtok_r(text, "\r\n", &save); /* header */

    CHECK_NOT_NULL(line);
    CHECK(strncmp(line, "index,secret key,public key", 27) == 0);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *f[FIELDS];
        uint8_t pk[32], sig[64], msg[256];
        size_t msglen;
        int want;

        CHECK_EQ(split(line, f), FIELDS);
        cvec_hex_str(pk, 32, f[2]);
        cvec_hex_str(sig, 64, f[5]);
        CHECK_OK(hex_decode(msg, sizeof(msg), &msglen, f[4], strlen(f[4])));
        want = strcmp(f[6], "TRUE") == 0;
        CHECK(want || strcmp(f[6], "FALSE") == 0);

        if (f[1][0] != '\0') {
            uint8_t sk[32], aux[32], got[64];
            struct keypair kp;
            cvec_hex_str(sk, 32, f[1]);
            cvec_hex_str(aux, 32, f[3]);
            CHECK_OK(keypair_init(&kp, sk));
            CHECK_MEM_EQ(kp.xonly, pk, 32);
            CHECK_OK(schnorr_sign(got, &kp, msg, msglen, aux));
            if (memcmp(got, sig, 64) != 0)
                fail_msg("row %s: signature differs", f[0]);
            keypair_clear(&kp);
            signed_rows++;
        }
        int r = schnorr_verify(sig, 64, msg, msglen, pk, 32);
        if ((r == KM_OK) != want)
            fail_msg("row %s: verify returned %s, expected %s", f[0], km_errname(r), f[6]);
        if (!want)
            CHECK(r == KM_ERR_CRYPTO || r == KM_ERR_INVALID);
        rows++;
    }
    free(text);
    CHECK(rows >= 15);
    printf("bip340/test-vectors.csv: %zu cases passed (%zu signed, %zu verified)\n", rows,
           signed_rows, rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_bip340_csv),
    };
    (void)test_vectors_dir();
    return RUN_TESTS("crypto.vectors_bip340", tests);
}
