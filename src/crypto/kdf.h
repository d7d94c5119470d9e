/*
 * kdf.h - HKDF-SHA256 (RFC 5869) over OpenSSL 3's EVP_KDF.
 *
 * Used by ECIES (IKM = ephemeral pubkey || shared point, no salt, no info),
 * session encryption (IKM = session secret, info = context string) and key
 * derivations for request signing (docs/CRYPTO.md lists them all).
 */
#ifndef KM_CRYPTO_KDF_H
#define KM_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Largest output HKDF-SHA256 can produce (255 * 32). */
#define KDF_HKDF_MAX_OUT 8160

/*
 * Derives out[0..outlen) = HKDF-SHA256(salt, ikm, info).
 * Returns: KM_OK, KM_ERR_RANGE (outlen is 0 or above KDF_HKDF_MAX_OUT, or
 *          ikm is empty; out is then untouched) or KM_ERR_CRYPTO (OpenSSL
 *          failure; out is then zeroed).
 * In:  salt/saltlen  NULL means "no salt" (RFC 5869: HashLen zero bytes,
 *                    which is also what saltlen 0 gives)
 *      ikm/ikmlen    input keying material (secret; not kept)
 *      info/infolen  context; may be NULL when infolen is 0
 */
int kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
                    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen) KM_WUR;

#endif /* KM_CRYPTO_KDF_H */
