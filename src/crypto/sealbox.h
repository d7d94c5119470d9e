/*
 * sealbox.h - a 32-byte secret sealed under a 32-byte key-encryption key
 * with AES-256-GCM, its context bound as associated data (docs/CRYPTO.md
 * "Sealed identity key").
 *
 *   box = nonce (12 random bytes) || AES-256-GCM(kek, nonce, ad, secret) (32)
 *         || tag (16)                                           = 60 bytes
 *
 * The enclave seals its identity key this way (enclave/keysource.h); the
 * associated data is the sealed blob's header (version, sealer, enclave id,
 * key epoch, ...), so a box moved to another enclave or epoch does not open.
 */
#ifndef KM_CRYPTO_SEALBOX_H
#define KM_CRYPTO_SEALBOX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SEALBOX_KEK_LEN    32
#define SEALBOX_SECRET_LEN 32
#define SEALBOX_NONCE_LEN  12
#define SEALBOX_LEN        (SEALBOX_NONCE_LEN + SEALBOX_SECRET_LEN + 16)

/* Seals secret. Returns KM_OK, KM_ERR_IO (no randomness) or KM_ERR_CRYPTO. */
int sealbox_seal(uint8_t box[SEALBOX_LEN], const uint8_t kek[SEALBOX_KEK_LEN], const uint8_t *ad,
                 size_t adlen, const uint8_t secret[SEALBOX_SECRET_LEN]) KM_WUR;

/* Opens box into secret. KM_ERR_CRYPTO when kek or ad differ or box was
 * altered (secret is then zeroed). */
int sealbox_open(uint8_t secret[SEALBOX_SECRET_LEN], const uint8_t kek[SEALBOX_KEK_LEN],
                 const uint8_t *ad, size_t adlen, const uint8_t box[SEALBOX_LEN]) KM_WUR;

#endif /* KM_CRYPTO_SEALBOX_H */
