/*
 * musig_impl.h - MuSig2 internals shared by musig.c and musig_testonly.c
 * (internal to src/crypto; nothing outside the module includes it).
 */
#ifndef KM_CRYPTO_MUSIG_IMPL_H
#define KM_CRYPTO_MUSIG_IMPL_H

#include "crypto/musig.h"
#include "crypto/point.h"

#define MUSIG_SECNONCE_MAGIC 0x6d32736eu /* "m2sn" */
#define MUSIG_KEYAGG_MAGIC   0x6d326b61u /* "m2ka" */

struct musig_secnonce {
    uint32_t magic;
    int used;
    uint8_t k[2][32];             /* secret: k1, k2 */
    uint8_t pk[MUSIG_PUBKEY_LEN]; /* the individual key it was made for */
};

struct musig_key {
    uint8_t pk[MUSIG_PUBKEY_LEN];
    secp256k1_pubkey p; /* parsed pk */
    uint8_t coeff[32];  /* KeyAggCoeff a_i */
};

struct musig_keyagg {
    uint32_t magic;
    struct point q;   /* tweaked aggregate (never infinity) */
    uint8_t q_x[32];  /* xbytes(Q) */
    int q_even;       /* has_even_y(Q) */
    int gacc_neg;     /* gacc == -1 */
    uint8_t tacc[32]; /* accumulated tweak */
    uint8_t list_hash[32];
    uint8_t second_pk[MUSIG_PUBKEY_LEN];
    size_t n;
    struct musig_key keys[]; /* n entries */
};

/*
 * NonceGen with the caller's rand' (BIP-327 notation) instead of fresh OS
 * randomness, and the BIP's optional sk. The public musig_nonce_gen calls
 * this with 32 fresh bytes; tests call it (through musig_testonly.h) with
 * the vectors' values. rand_ is wiped by the caller.
 */
int musig_nonce_gen_internal(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                             const uint8_t rand_[32], const uint8_t *sk,
                             const uint8_t pk[MUSIG_PUBKEY_LEN], const uint8_t *aggpk,
                             const uint8_t *msg, size_t msglen, const uint8_t *extra_in,
                             size_t extra_len) KM_WUR;

/* Allocates an empty (unused, zero) secret nonce. NULL on OOM. */
struct musig_secnonce *musig_secnonce_alloc(void);

#endif /* KM_CRYPTO_MUSIG_IMPL_H */
