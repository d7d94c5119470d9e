/*
 * test_taproot.c - Taproot beyond the BIP-341 vectors: a MuSig2 aggregate
 * tweaked for Taproot signs for its output key, a bad internal key is
 * refused, branch hashes ignore order and leaf hashes use CompactSize.
 * (P2TR addresses are bitcoin/address.h: tests/unit/bitcoin/test_address.c.)
 */
#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "common/secure.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

static void test_musig_taproot_spend(void **state)
{
    (void)state;
    struct keypair kp[2];
    uint8_t pks[2][33], pnb[2][66], psig[2][32], internal[32], out[32], x[32], sig[64];
    uint8_t msg[32], root[32];
    struct musig_keyagg *ka;
    struct musig_secnonce *sn[2];
    struct musig_aggnonce an;
    struct musig_session s;

    CHECK_OK(secure_random(msg, 32));
    CHECK_OK(secure_random(root, 32));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(keypair_generate(&kp[i]));
        memcpy(pks[i], kp[i].pubkey, 33);
    }
    musig_key_sort(pks, 2);
    for (int with_root = 0; with_root < 2; with_root++) {
        CHECK_OK(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])pks, 2));
        musig_keyagg_xonly(ka, internal);
        CHECK_OK(taproot_musig_tweak(ka, with_root ? root : NULL));
        CHECK_OK(taproot_output_key(out, NULL, internal, 32, with_root ? root : NULL));
        musig_keyagg_xonly(ka, x);
        CHECK_MEM_EQ(x, out, 32);
        for (int i = 0; i < 2; i++)
            CHECK_OK(musig_nonce_gen(&sn[i], pnb[i], &kp[i], x, msg, 32, NULL, 0));
        CHECK_OK(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])pnb, 2));
        CHECK_OK(musig_session_init(&s, ka, &an, msg, 32, NULL, 0));
        for (int i = 0; i < 2; i++) {
            size_t idx;
            CHECK_OK(musig_keyagg_find(ka, kp[i].pubkey, &idx));
            CHECK_OK(musig_partial_sign(psig[idx], NULL, sn[i], &kp[i], ka, &s));
            musig_secnonce_free(sn[i]);
        }
        CHECK_OK(musig_partial_sig_agg(sig, NULL, &s, (const uint8_t(*)[32])psig, 2));
        CHECK_OK(schnorr_verify(sig, 64, msg, 32, out, 32));
        musig_keyagg_free(ka);
    }
    keypair_clear(&kp[0]);
    keypair_clear(&kp[1]);
}

static void test_output_key_refusals(void **state)
{
    (void)state;
    uint8_t bad[32], out[32], leaf[32], a[32], b[32];
    int parity;

    memset(bad, 0xff, 32);
    CHECK_ERR(taproot_output_key(out, &parity, bad, 32, NULL), KM_ERR_INVALID);
    CHECK_ERR(taproot_output_key(out, &parity, bad, 31, NULL), KM_ERR_INVALID);
    /* Branch hashing is order-independent; leaf sizes use CompactSize. */
    memset(a, 1, 32);
    memset(b, 2, 32);
    taproot_branch_hash(leaf, a, b);
    taproot_branch_hash(out, b, a);
    CHECK_MEM_EQ(leaf, out, 32);
    static uint8_t big[70000];
    taproot_leaf_hash(a, TAPROOT_LEAF_TAPSCRIPT, big, 252);
    taproot_leaf_hash(b, TAPROOT_LEAF_TAPSCRIPT, big, 253);
    CHECK(memcmp(a, b, 32) != 0);
    taproot_leaf_hash(b, TAPROOT_LEAF_TAPSCRIPT, big, sizeof(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_musig_taproot_spend),
        TEST(test_output_key_refusals),
    };
    return RUN_TESTS("crypto.taproot", tests);
}
