/*
 * keypair.h - a secp256k1 secret key with its public forms precomputed.
 *
 * Used for BIP-340 signing (schnorr.h), MuSig2 partial signing (musig.h),
 * request signing (auth.h). Deriving the public key costs one base-point
 * multiplication, so it is done once here rather than on every signature.
 *
 * The struct is caller-owned and holds the secret key: initialize with
 * keypair_init / keypair_generate, wipe with keypair_clear on every path.
 * Never log it. Copying it copies the secret (avoid; pass pointers).
 */
#ifndef KM_CRYPTO_KEYPAIR_H
#define KM_CRYPTO_KEYPAIR_H

#include <stdint.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>

#include "common/err.h"

#define KEYPAIR_SECKEY_LEN 32
#define KEYPAIR_PUBKEY_LEN 33 /* compressed: 02/03 || x */
#define KEYPAIR_XONLY_LEN  32

struct keypair {
    uint8_t seckey[KEYPAIR_SECKEY_LEN]; /* secret: d' as given, not negated */
    uint8_t pubkey[KEYPAIR_PUBKEY_LEN]; /* cbytes(d'*G), BIP-327 IndividualPubkey */
    uint8_t xonly[KEYPAIR_XONLY_LEN];   /* xbytes(d'*G), BIP-340 public key */
    secp256k1_keypair kp;               /* libsecp256k1's form, for BIP-340 */
};

/*
 * Loads seckey and derives the public forms. Constant time in seckey.
 * Returns: KM_OK, or KM_ERR_INVALID if seckey is 0 or >= n (kp is then
 *          zeroed).
 */
int keypair_init(struct keypair *kp, const uint8_t seckey[KEYPAIR_SECKEY_LEN]) KM_WUR;

/* Draws a fresh random secret key from the OS CSPRNG.
 * Returns: KM_OK or KM_ERR_IO (no randomness). */
int keypair_generate(struct keypair *kp) KM_WUR;

/* Wipes everything. kp may be NULL. */
void keypair_clear(struct keypair *kp);

#endif /* KM_CRYPTO_KEYPAIR_H */
