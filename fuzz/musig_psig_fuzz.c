/*
 * musig_psig_fuzz.c - partial signatures from arbitrary bytes (crypto/
 * musig.h): verification and aggregation against a fixed two-signer session.
 *
 * Input: psig(32) || signer(1) || optional pubnonce(66) || more psigs.
 * Contract: no crash; out-of-range or short psigs are refused with
 * KM_ERR_INVALID; a psig that verifies is the honest one (fixed at start-up,
 * since the session is deterministic); aggregation blames the first psig
 * that is out of range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/musig_testonly.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    int ready;
    struct musig_keyagg *ka;
    struct musig_session s;
    struct musig_pubnonce pn[2];
    uint8_t psig[2][32];
} F;

/* A deterministic session: fixed keys, NonceGen randomness and message. */
static void setup(void)
{
    struct keypair kp[2];
    uint8_t sk[32], rnd[32], pks[2][33], pnb[2][66], msg[32];
    struct musig_secnonce *sn[2];
    struct musig_aggnonce an;

    memset(msg, 0x42, sizeof(msg));
    for (int i = 0; i < 2; i++) {
        memset(sk, 0x11 * (i + 1), sizeof(sk));
        if (keypair_init(&kp[i], sk) != KM_OK)
            abort();
        memcpy(pks[i], kp[i].pubkey, 33);
    }
    if (musig_keyagg_new(&F.ka, NULL, (const uint8_t(*)[33])pks, 2) != KM_OK)
        abort();
    for (int i = 0; i < 2; i++) {
        memset(rnd, 0x21 * (i + 1), sizeof(rnd));
        if (musig_testonly_nonce_gen(&sn[i], pnb[i], rnd, kp[i].seckey, kp[i].pubkey, NULL, msg, 32,
                                     NULL, 0) != KM_OK ||
            musig_pubnonce_parse(&F.pn[i], pnb[i], 66) != KM_OK)
            abort();
    }
    if (musig_nonce_agg(&an, NULL, F.pn, 2) != KM_OK ||
        musig_session_init(&F.s, F.ka, &an, msg, 32, NULL, 0) != KM_OK)
        abort();
    for (int i = 0; i < 2; i++) {
        if (musig_partial_sign(F.psig[i], NULL, sn[i], &kp[i], F.ka, &F.s) != KM_OK)
            abort();
        musig_secnonce_free(sn[i]);
        keypair_clear(&kp[i]);
    }
    F.ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct musig_pubnonce pn;
    struct musig_blame blame;
    uint8_t sig[64], ps[4][32];

    if (!F.ready)
        setup();
    if (size < 32) {
        if (musig_partial_sig_verify(data, size, &F.pn[0], F.ka, 0, &F.s) != KM_ERR_INVALID)
            abort();
        return 0;
    }
    size_t signer = size > 32 ? data[32] % 3 : 0; /* 2 is out of range */
    const struct musig_pubnonce *use = &F.pn[signer % 2];
    if (size >= 33 + 66 && musig_pubnonce_parse(&pn, data + 33, 66) == KM_OK)
        use = &pn;
    int r = musig_partial_sig_verify(data, 32, use, F.ka, signer, &F.s);
    if (signer == 2 && r != KM_ERR_RANGE && r != KM_ERR_INVALID)
        abort();
    if (r == KM_OK && memcmp(data, F.psig[signer], 32) != 0)
        abort(); /* a forged partial signature verified */

    /* Aggregate the fuzzed psig(s) after the honest one. */
    size_t n = 1;
    memcpy(ps[0], F.psig[0], 32);
    for (size_t off = 0; off + 32 <= size && n < 4; off += 32)
        memcpy(ps[n++], data + off, 32);
    r = musig_partial_sig_agg(sig, &blame, &F.s, (const uint8_t(*)[32])ps, n);
    if (r != KM_OK && (blame.reason != MUSIG_R_PSIG || blame.signer < 1))
        abort();
    return 0;
}
