/*
 * schnorr.h - BIP-340 Schnorr signatures (wrapping libsecp256k1).
 *
 * Messages may have any length (BIP-340 allows it; the signing service only
 * signs 32-byte digests, but request signing and tests use others).
 */
#ifndef KM_CRYPTO_SCHNORR_H
#define KM_CRYPTO_SCHNORR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keypair.h"

#define SCHNORR_SIG_LEN    64
#define SCHNORR_PUBKEY_LEN 32 /* x-only */
#define SCHNORR_AUX_LEN    32

/*
 * Signs msg[0..msglen) with kp (BIP-340 Sign).
 * Returns: KM_OK, KM_ERR_IO (aux_rand is NULL and the OS has no randomness)
 *          or KM_ERR_CRYPTO (libsecp256k1 refused; not expected).
 * Out: sig   64-byte signature (zeroed on error)
 * In:  aux_rand  32 bytes of auxiliary randomness, or NULL to draw fresh
 *                bytes from the OS (recommended; BIP-340 "Default Signing").
 *                Fixed values are for the official test vectors.
 */
int schnorr_sign(uint8_t sig[SCHNORR_SIG_LEN], const struct keypair *kp, const uint8_t *msg,
                 size_t msglen, const uint8_t *aux_rand) KM_WUR;

/*
 * Verifies a BIP-340 signature. All three inputs are untrusted bytes.
 * Returns: KM_OK if valid; KM_ERR_INVALID if siglen != 64, pklen != 32 or
 *          the public key is not the x coordinate of a curve point;
 *          KM_ERR_CRYPTO if the signature does not verify.
 */
int schnorr_verify(const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t msglen,
                   const uint8_t *pubkey, size_t pklen) KM_WUR;

#endif /* KM_CRYPTO_SCHNORR_H */
