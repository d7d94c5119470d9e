/*
 * bench_crypto - per-operation cost of the crypto core, each beside
 * libsecp256k1's secp256k1_schnorrsig_sign32 measured in the same run
 * (ratio column), so figures from these shared VMs stay comparable.
 *
 *   KeyAgg (3 keys), NonceGen, NonceAgg (3, from encodings), session values,
 *   Sign, PartialSigVerify, PartialSigAgg (3), the coordinator's checked
 *   aggregation, a full 3-party signing (one coordinator process; and as
 *   three enclaves), ECIES encrypt/decrypt of a 32-byte secret; plus a few
 *   reference points.
 *
 * Each figure is the median of ROUNDS rounds. Targets (issue 3): a partial
 * Sign at most 3x one schnorrsig_sign, a full 3-party signing at most 25x.
 *
 * Usage: bench_crypto [scale]   (iterations multiplier, default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secp256k1_schnorrsig.h>

#include "common/secure.h"
#include "crypto/ctx.h"
#include "crypto/ecies.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/musig_testonly.h"
#include "crypto/schnorr.h"
#include "crypto/sessenc.h"
#include "common/banned.h"

#define ROUNDS 7
#define N      3 /* signers */

static unsigned scale = 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void must(int r, const char *what)
{
    if (r != KM_OK) {
        fprintf(stderr, "bench_crypto: %s failed: %s\n", what, km_strerror(r));
        exit(1);
    }
}

/* Fixture shared by the per-operation benchmarks. */
static struct {
    struct keypair kp[N];
    uint8_t pks[N][33];
    struct musig_keyagg *ka;
    uint8_t pnb[N][66];
    struct musig_pubnonce pn[N];
    uint8_t secnonce[N][MUSIG_SECNONCE_BYTES];
    struct musig_aggnonce an;
    struct musig_session s;
    uint8_t psig[N][32];
    uint8_t msg[32];
    secp256k1_keypair base_kp;
    uint8_t ecies_ct[32 + ECIES_OVERHEAD];
    size_t ecies_ctlen;
} F;

typedef void (*bench_fn)(void);

/* Median ns per call of fn over ROUNDS rounds of iters calls. */
static double measure(bench_fn fn, unsigned iters)
{
    double per[ROUNDS];
    iters *= scale;
    for (unsigned i = 0; i < iters / 10 + 1; i++) /* warm-up */
        fn();
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < iters; i++)
            fn();
        per[r] = (double)(now_ns() - t0) / iters;
    }
    qsort(per, ROUNDS, sizeof(per[0]), cmp_double);
    return per[ROUNDS / 2];
}

/* ---- the operations ---- */

static void op_baseline(void)
{
    uint8_t sig[64], aux[32] = {0};
    if (!secp256k1_schnorrsig_sign32(crypto_ctx(), sig, F.msg, &F.base_kp, aux))
        exit(1);
}

static void op_schnorr_verify(void)
{
    uint8_t sig[64], aux[32] = {0};
    static int ready;
    static uint8_t s[64];
    if (!ready) {
        must(schnorr_sign(s, &F.kp[0], F.msg, 32, aux), "schnorr_sign");
        ready = 1;
    }
    (void)sig;
    must(schnorr_verify(s, 64, F.msg, 32, F.kp[0].xonly, 32), "schnorr_verify");
}

static void op_keyagg(void)
{
    struct musig_keyagg *ka;
    must(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])F.pks, N), "keyagg");
    musig_keyagg_free(ka);
}

static void op_nonce_gen(void)
{
    struct musig_secnonce *sn;
    uint8_t pn[66];
    must(musig_nonce_gen(&sn, pn, &F.kp[0], NULL, F.msg, 32, NULL, 0), "nonce_gen");
    musig_secnonce_free(sn);
}

static void op_nonce_agg(void)
{
    struct musig_aggnonce an;
    must(musig_nonce_agg_bytes(&an, NULL, (const uint8_t(*)[66])F.pnb, N), "nonce_agg");
}

static void op_session(void)
{
    struct musig_session s;
    must(musig_session_init(&s, F.ka, &F.an, F.msg, 32, NULL, 0), "session_init");
}

/* Sign consumes its secret nonce, so every call loads a fresh copy of the
 * same one (test-only loader; a calloc and two memcpy, ~50 ns). */
static void op_sign(void)
{
    struct musig_secnonce *sn;
    uint8_t psig[32];
    must(musig_testonly_secnonce_load(&sn, F.secnonce[0]), "secnonce_load");
    must(musig_partial_sign(psig, NULL, sn, &F.kp[0], F.ka, &F.s), "sign");
    musig_secnonce_free(sn);
}

static void op_psig_verify(void)
{
    must(musig_partial_sig_verify(F.psig[1], 32, &F.pn[1], F.ka, 1, &F.s), "psig_verify");
}

static void op_psig_agg(void)
{
    uint8_t sig[64];
    must(musig_partial_sig_agg(sig, NULL, &F.s, (const uint8_t(*)[32])F.psig, N), "psig_agg");
}

/*
 * Everything for one 3-party signature, done once per role as a single
 * coordinator process does it: key aggregation, three NonceGen, parsing the
 * three public nonces, NonceAgg, the session values (identical for every
 * signer), three Sign, then the checked aggregation: every partial
 * signature verified (n - 1 explicitly, the last implied by the final
 * signature) plus the final BIP-340 verification.
 */
static void op_full_signing(void)
{
    struct musig_keyagg *ka;
    struct musig_secnonce *sn[N];
    uint8_t pnb[N][66], psig[N][32], sig[64], xonly[32];
    struct musig_pubnonce pn[N];
    struct musig_aggnonce an;
    struct musig_session s;

    must(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])F.pks, N), "keyagg");
    musig_keyagg_xonly(ka, xonly);
    for (int i = 0; i < N; i++) {
        must(musig_nonce_gen(&sn[i], pnb[i], &F.kp[i], xonly, F.msg, 32, NULL, 0), "nonce_gen");
        must(musig_pubnonce_parse(&pn[i], pnb[i], 66), "pubnonce_parse");
    }
    must(musig_nonce_agg(&an, NULL, pn, N), "nonce_agg");
    must(musig_session_init(&s, ka, &an, F.msg, 32, NULL, 0), "session");
    for (int i = 0; i < N; i++) {
        must(musig_partial_sign(psig[i], NULL, sn[i], &F.kp[i], ka, &s), "sign");
        musig_secnonce_free(sn[i]);
    }
    must(musig_partial_sig_agg_verify(sig, NULL, ka, &s, pn, (const uint8_t(*)[32])psig, N, F.msg,
                                      32),
         "agg_verify");
    musig_keyagg_free(ka);
}

/*
 * The same signature when the three signers are three enclaves: each one
 * also parses the nonces it receives, aggregates them and computes the
 * session values itself (two more of each than above).
 */
static void op_full_signing_3_enclaves(void)
{
    struct musig_keyagg *ka;
    struct musig_secnonce *sn[N];
    uint8_t pnb[N][66], psig[N][32], sig[64], xonly[32];
    struct musig_pubnonce pn[N][N];
    struct musig_aggnonce an;
    struct musig_session s[N];

    must(musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])F.pks, N), "keyagg");
    musig_keyagg_xonly(ka, xonly);
    for (int i = 0; i < N; i++)
        must(musig_nonce_gen(&sn[i], pnb[i], &F.kp[i], xonly, F.msg, 32, NULL, 0), "nonce_gen");
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            must(musig_pubnonce_parse(&pn[i][j], pnb[j], 66), "pubnonce_parse");
        must(musig_nonce_agg(&an, NULL, pn[i], N), "nonce_agg");
        must(musig_session_init(&s[i], ka, &an, F.msg, 32, NULL, 0), "session");
        must(musig_partial_sign(psig[i], NULL, sn[i], &F.kp[i], ka, &s[i]), "sign");
        musig_secnonce_free(sn[i]);
    }
    must(musig_partial_sig_agg_verify(sig, NULL, ka, &s[0], pn[0], (const uint8_t(*)[32])psig, N,
                                      F.msg, 32),
         "agg_verify");
    musig_keyagg_free(ka);
}

static void op_agg_verify(void)
{
    uint8_t sig[64];
    must(musig_partial_sig_agg_verify(sig, NULL, F.ka, &F.s, F.pn, (const uint8_t(*)[32])F.psig, N,
                                      F.msg, 32),
         "agg_verify");
}

static void op_det_sign(void)
{
    uint8_t pn[66], psig[32];
    must(musig_deterministic_sign(pn, psig, NULL, &F.kp[2], F.an.bytes, 66, F.ka, F.msg, 32, NULL),
         "det_sign");
}

static void op_ecies_encrypt(void)
{
    uint8_t ct[32 + ECIES_OVERHEAD];
    size_t n;
    must(ecies_encrypt(ct, sizeof(ct), &n, F.kp[1].pubkey, 33, F.msg, 32), "ecies_encrypt");
}

static void op_ecies_decrypt(void)
{
    uint8_t pt[32];
    size_t n;
    must(ecies_decrypt(pt, sizeof(pt), &n, NULL, F.kp[1].seckey, F.ecies_ct, F.ecies_ctlen),
         "ecies_decrypt");
}

static void op_sessenc_round_trip(void)
{
    uint8_t secret[32] = {1}, blob[128], pt[64];
    size_t n, m;
    must(sessenc_encrypt(blob, sizeof(blob), &n, secret, "signature", F.msg, 32), "sessenc");
    must(sessenc_decrypt(pt, sizeof(pt), &m, NULL, secret, "signature", blob, n), "sessenc");
}

static void setup(void)
{
    struct musig_secnonce *sn;
    uint8_t rnd[32];

    must(secure_random(F.msg, 32), "random");
    for (int i = 0; i < N; i++) {
        must(keypair_generate(&F.kp[i]), "keypair");
        memcpy(F.pks[i], F.kp[i].pubkey, 33);
    }
    musig_key_sort(F.pks, N);
    if (!secp256k1_keypair_create(crypto_ctx(), &F.base_kp, F.kp[0].seckey))
        exit(1);
    must(musig_keyagg_new(&F.ka, NULL, (const uint8_t(*)[33])F.pks, N), "keyagg");
    /* Keep signers in key order so signer i is kp[i]. */
    for (int i = 0; i < N; i++) {
        size_t idx;
        must(musig_keyagg_find(F.ka, F.kp[i].pubkey, &idx), "find");
        if (idx != (size_t)i) {
            struct keypair t = F.kp[i];
            F.kp[i] = F.kp[idx];
            F.kp[idx] = t;
            i = -1;
        }
    }
    for (int i = 0; i < N; i++) {
        must(secure_random(rnd, 32), "random");
        must(musig_testonly_nonce_gen(&sn, F.pnb[i], rnd, F.kp[i].seckey, F.kp[i].pubkey, NULL,
                                      F.msg, 32, NULL, 0),
             "nonce_gen");
        musig_testonly_secnonce_store(F.secnonce[i], sn);
        musig_secnonce_free(sn);
        must(musig_pubnonce_parse(&F.pn[i], F.pnb[i], 66), "pubnonce_parse");
    }
    must(musig_nonce_agg(&F.an, NULL, F.pn, N), "nonce_agg");
    must(musig_session_init(&F.s, F.ka, &F.an, F.msg, 32, NULL, 0), "session");
    for (int i = 0; i < N; i++) {
        must(musig_testonly_secnonce_load(&sn, F.secnonce[i]), "load");
        must(musig_partial_sign(F.psig[i], NULL, sn, &F.kp[i], F.ka, &F.s), "sign");
        musig_secnonce_free(sn);
        must(musig_partial_sig_verify(F.psig[i], 32, &F.pn[i], F.ka, (size_t)i, &F.s), "verify");
    }
    must(ecies_encrypt(F.ecies_ct, sizeof(F.ecies_ct), &F.ecies_ctlen, F.kp[1].pubkey, 33, F.msg,
                       32),
         "ecies_encrypt");
}

struct row {
    const char *name;
    bench_fn fn;
    unsigned iters;
    double ns;
};

int main(int argc, char **argv)
{
    struct row rows[] = {
        {"KeyAgg (3 keys)", op_keyagg, 500, 0},
        {"NonceGen", op_nonce_gen, 500, 0},
        {"NonceAgg (3, from encodings)", op_nonce_agg, 1000, 0},
        {"session values (b, R, e)", op_session, 1000, 0},
        {"Sign (partial)", op_sign, 5000, 0},
        {"PartialSigVerify", op_psig_verify, 500, 0},
        {"PartialSigAgg (3)", op_psig_agg, 20000, 0},
        {"PartialSigAgg + verify all (3)", op_agg_verify, 200, 0},
        {"full 3-party signing", op_full_signing, 50, 0},
        {"  ... as 3 separate enclaves", op_full_signing_3_enclaves, 50, 0},
        {"DeterministicSign", op_det_sign, 300, 0},
        {"ECIES encrypt (32 B)", op_ecies_encrypt, 500, 0},
        {"ECIES decrypt (32 B)", op_ecies_decrypt, 500, 0},
        {"session enc+dec (32 B)", op_sessenc_round_trip, 2000, 0},
        {"BIP-340 verify (ref.)", op_schnorr_verify, 1000, 0},
    };
    double base_a, base_b, base;

    if (argc > 1)
        scale = (unsigned)strtoul(argv[1], NULL, 10);
    if (scale == 0)
        scale = 1;
    setup();
    base_a = measure(op_baseline, 2000);
    for (size_t i = 0; i < KM_ARRAY_LEN(rows); i++)
        rows[i].ns = measure(rows[i].fn, rows[i].iters);
    base_b = measure(op_baseline, 2000);
    base = (base_a + base_b) / 2;

    printf("bench_crypto: median of %d rounds; baseline secp256k1_schnorrsig_sign32 = %.0f ns "
           "(%.0f before, %.0f after)\n\n",
           ROUNDS, base, base_a, base_b);
    printf("%-32s %12s %10s\n", "operation", "ns/op", "x sign");
    printf("%-32s %12.0f %10.2f\n", "schnorrsig_sign32 (baseline)", base, 1.0);
    for (size_t i = 0; i < KM_ARRAY_LEN(rows); i++)
        printf("%-32s %12.0f %10.2f\n", rows[i].name, rows[i].ns, rows[i].ns / base);
    double sign = 0, full = 0;
    for (size_t i = 0; i < KM_ARRAY_LEN(rows); i++) {
        if (rows[i].fn == op_sign)
            sign = rows[i].ns / base;
        if (rows[i].fn == op_full_signing)
            full = rows[i].ns / base;
    }
    printf("\ntargets: Sign <= 3x: %.2fx %s; full 3-party signing <= 25x: %.2fx %s\n", sign,
           sign <= 3.0 ? "met" : "MISSED", full, full <= 25.0 ? "met" : "MISSED");
    for (int i = 0; i < N; i++)
        keypair_clear(&F.kp[i]);
    musig_keyagg_free(F.ka);
    return 0;
}
