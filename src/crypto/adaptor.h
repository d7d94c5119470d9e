/*
 * adaptor.h - MuSig2 adaptor signatures.
 *
 * Pre-signing: build the MuSig2 session with the adaptor point T
 * (musig_session_init(..., T, 33)); the signers sign as usual and
 * musig_partial_sig_agg returns the pre-signature presig = xbytes(R) || s',
 * where R = R1 + b*R2 + T. The session's nonce parity
 * (musig_session_nonce_parity) travels with the pre-signature.
 *
 * Whoever knows t (T = t*G) completes it: adaptor_adapt gives a valid BIP-340
 * signature (x(R), s' + t) (s' - t when R has odd Y). Anyone holding both the
 * pre-signature and the published signature recovers t with
 * adaptor_extract. adaptor_presig_verify checks a pre-signature against the
 * aggregate key, message and T before anyone relies on it.
 *
 * Formats: points 33-byte compressed, scalars 32-byte big-endian, signatures
 * and pre-signatures 64 bytes.
 */
#ifndef KM_CRYPTO_ADAPTOR_H
#define KM_CRYPTO_ADAPTOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ADAPTOR_POINT_LEN  33
#define ADAPTOR_SECRET_LEN 32
#define ADAPTOR_SIG_LEN    64

/* T = t*G for a secret t (constant time).
 * Returns KM_OK or KM_ERR_INVALID (t is 0 or >= n; point zeroed). */
int adaptor_point(uint8_t point[ADAPTOR_POINT_LEN],
                  const uint8_t secret[ADAPTOR_SECRET_LEN]) KM_WUR;

/*
 * Verifies a pre-signature: with R = lift of presig[0:32] having odd Y iff
 * nonce_parity, e = hash_BIP0340/challenge(x(R) || pk || msg), checks
 * s'*G == g*(R - T) + e*P, g = 1 if R has even Y else -1.
 * Returns: KM_OK; KM_ERR_INVALID (lengths, x(R) not on the curve, s' >= n,
 *          T or pk invalid); KM_ERR_CRYPTO (does not verify).
 * In: xonly_pk  the 32-byte aggregate key (musig_keyagg_xonly)
 */
int adaptor_presig_verify(const uint8_t *presig, size_t presig_len, int nonce_parity,
                          const uint8_t *adaptor, size_t adaptor_len, const uint8_t *xonly_pk,
                          size_t pk_len, const uint8_t *msg, size_t msglen) KM_WUR;

/*
 * Completes a pre-signature with the adaptor secret (constant time in t).
 * Returns: KM_OK; KM_ERR_INVALID (t is 0 or >= n, or s' >= n; sig zeroed).
 */
int adaptor_adapt(uint8_t sig[ADAPTOR_SIG_LEN], const uint8_t presig[ADAPTOR_SIG_LEN],
                  const uint8_t secret[ADAPTOR_SECRET_LEN], int nonce_parity) KM_WUR;

/*
 * Recovers t from a pre-signature and the completed signature. When adaptor
 * is non-NULL, also checks t*G == T.
 * Returns: KM_OK; KM_ERR_INVALID (lengths, scalars >= n, different R, t = 0);
 *          KM_ERR_CRYPTO (t does not match T; secret zeroed).
 */
int adaptor_extract(uint8_t secret[ADAPTOR_SECRET_LEN], const uint8_t *sig, size_t sig_len,
                    const uint8_t *presig, size_t presig_len, int nonce_parity,
                    const uint8_t *adaptor, size_t adaptor_len) KM_WUR;

#endif /* KM_CRYPTO_ADAPTOR_H */
