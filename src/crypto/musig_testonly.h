/*
 * musig_testonly.h - entry points for tests only (library km_crypto_testonly,
 * never linked into a product binary).
 *
 * The official BIP-327 vectors give secret nonces as 97-byte arrays and fix
 * NonceGen's randomness; the product API deliberately offers neither (a
 * secret nonce that can be loaded can be reused). These functions exist so
 * the vector tests and the constant-time check can drive the real code.
 */
#ifndef KM_CRYPTO_MUSIG_TESTONLY_H
#define KM_CRYPTO_MUSIG_TESTONLY_H

#include "crypto/musig.h"

#define MUSIG_SECNONCE_BYTES 97 /* k1 || k2 || pk, the BIP's suggested form */

/* Creates a secret nonce from its 97-byte serialization. No validation (Sign
 * validates). Returns KM_OK or KM_ERR_NOMEM. */
int musig_testonly_secnonce_load(struct musig_secnonce **out,
                                 const uint8_t in[MUSIG_SECNONCE_BYTES]) KM_WUR;

/* Serializes a secret nonce (to compare with NonceGen vectors). */
void musig_testonly_secnonce_store(uint8_t out[MUSIG_SECNONCE_BYTES],
                                   const struct musig_secnonce *sn);

/* NonceGen exactly as the BIP states it: rand_ given, sk optional (NULL),
 * pk mandatory, aggpk/msg/extra_in optional (NULL = absent). */
int musig_testonly_nonce_gen(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                             const uint8_t rand_[32], const uint8_t *sk,
                             const uint8_t pk[MUSIG_PUBKEY_LEN], const uint8_t *aggpk,
                             const uint8_t *msg, size_t msglen, const uint8_t *extra_in,
                             size_t extra_len) KM_WUR;

#endif /* KM_CRYPTO_MUSIG_TESTONLY_H */
