/*
 * ecies.h - ECIES on secp256k1 in the eciesjs / eciespy / ecies-rs default
 * format (DESIGN.md §6), so browser and SDK clients can encrypt to an
 * enclave key with the npm package eciesjs.
 *
 *   ciphertext = E(65) || nonce(16) || tag(16) || AES-256-GCM(pt)
 *   E          = ephemeral public key, uncompressed (0x04 || x || y)
 *   key        = HKDF-SHA256(salt: none, IKM: E || S, info: empty, 32 bytes)
 *   S          = recipient_seckey * E, uncompressed (65 bytes): the raw
 *                shared point, NOT libsecp256k1's hashed ECDH output
 *
 * The shared point is computed with secp256k1_ecdh (constant-time
 * multiplication) and a hash callback that just copies the point out.
 */
#ifndef KM_CRYPTO_ECIES_H
#define KM_CRYPTO_ECIES_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ECIES_EPHEMERAL_LEN 65
#define ECIES_NONCE_LEN     16
#define ECIES_TAG_LEN       16
#define ECIES_OVERHEAD      (ECIES_EPHEMERAL_LEN + ECIES_NONCE_LEN + ECIES_TAG_LEN)
/* Largest plaintext accepted (1 GiB; OpenSSL's EVP lengths are int). */
#define ECIES_MAX_PLAINTEXT (1u << 30)

/*
 * Encrypts pt[0..ptlen) to a recipient public key (33-byte compressed or
 * 65-byte uncompressed). Draws the ephemeral key and nonce from the OS.
 * Returns: KM_OK; KM_ERR_INVALID (bad recipient key); KM_ERR_TOO_LARGE
 *          (ptlen above ECIES_MAX_PLAINTEXT, or outcap < ptlen +
 *          ECIES_OVERHEAD); KM_ERR_IO (no randomness); KM_ERR_CRYPTO.
 * Out: out[0..*outlen)  the ciphertext (*outlen = ptlen + ECIES_OVERHEAD);
 *      out must not overlap pt
 */
int ecies_encrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *recipient,
                  size_t recipient_len, const uint8_t *pt, size_t ptlen) KM_WUR;

/*
 * Decrypts a ciphertext with the recipient's 32-byte secret key. Every
 * input byte is untrusted.
 * Returns: KM_OK; KM_ERR_INVALID (shorter than ECIES_OVERHEAD, ephemeral key
 *          not an uncompressed curve point, invalid secret key);
 *          KM_ERR_CRYPTO (authentication failed: tampered, truncated or
 *          wrongly keyed); KM_ERR_TOO_LARGE (outcap < ctlen -
 *          ECIES_OVERHEAD, or too long).
 *          On any error out is zeroed (up to the plaintext size) and a
 *          message is left in *err (err may be NULL).
 * Out: out[0..*outlen)  the plaintext; out must not overlap ct
 */
int ecies_decrypt(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                  const uint8_t seckey[32], const uint8_t *ct, size_t ctlen) KM_WUR;

#endif /* KM_CRYPTO_ECIES_H */
