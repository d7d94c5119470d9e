/*
 * sessenc.h - session encryption between participants and enclaves, opaque
 * to the gateway (DESIGN.md §6; the original's SessionSecret/EncryptedData).
 *
 *   key  = HKDF-SHA256(IKM: 32-byte session secret, salt: none,
 *                      info: context string), 32 bytes
 *   blob = ctx_len(1) || context || nonce(12) || AES-256-GCM ciphertext ||
 *          tag(16)
 *
 * The context names what the plaintext is ("session_data", "nonce_data",
 * "signature", ...; docs/CRYPTO.md). Decryption takes the expected context
 * and refuses a blob made for another one, so a ciphertext cannot be
 * replayed into a different slot. Blobs travel as hex (common/hex.h).
 */
#ifndef KM_CRYPTO_SESSENC_H
#define KM_CRYPTO_SESSENC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SESSENC_SECRET_LEN  32
#define SESSENC_NONCE_LEN   12
#define SESSENC_TAG_LEN     16
#define SESSENC_CONTEXT_MAX 255
#define SESSENC_KEY_LEN     32
/* Largest plaintext accepted (1 GiB). */
#define SESSENC_MAX_PLAINTEXT (1u << 30)

/* Size of the blob for a context of ctxlen bytes and ptlen plaintext bytes. */
size_t sessenc_blob_len(size_t ctxlen, size_t ptlen);

/*
 * Encrypts pt[0..ptlen) under secret for context (NUL-terminated, 1..255
 * bytes). Draws the nonce from the OS.
 * Returns: KM_OK; KM_ERR_INVALID (context empty or longer than 255 bytes);
 *          KM_ERR_TOO_LARGE (outcap < sessenc_blob_len, or ptlen too big);
 *          KM_ERR_IO (no randomness); KM_ERR_CRYPTO.
 * Out: out[0..*outlen)  the blob; out must not overlap pt
 */
int sessenc_encrypt(uint8_t *out, size_t outcap, size_t *outlen,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *context,
                    const uint8_t *pt, size_t ptlen) KM_WUR;

/*
 * Decrypts a blob (untrusted bytes) that must carry expected_context.
 * Returns: KM_OK; KM_ERR_INVALID (truncated/malformed blob, or its context
 *          differs from expected_context: "context mismatch");
 *          KM_ERR_CRYPTO (authentication failed: tampered or wrong secret);
 *          KM_ERR_TOO_LARGE (outcap too small). On error out is zeroed and
 *          *err (may be NULL) says what was wrong.
 * Out: out[0..*outlen)  the plaintext; out must not overlap blob
 */
int sessenc_decrypt(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *expected_context,
                    const uint8_t *blob, size_t bloblen) KM_WUR;

/*
 * The same with the key derived ahead (sessenc_derive_key): a holder of one
 * secret that seals and opens many blobs of a few contexts derives each
 * context's key once instead of per blob (the HKDF costs more than the
 * AES-GCM of a small blob). The key is as secret as the secret: wipe it.
 * sessenc_derive_key returns KM_OK, KM_ERR_INVALID (context empty or
 * longer than 255 bytes) or KM_ERR_CRYPTO; the others as above, and key
 * must be the one derived for context / expected_context.
 */
int sessenc_derive_key(uint8_t key[SESSENC_KEY_LEN], const uint8_t secret[SESSENC_SECRET_LEN],
                       const char *context) KM_WUR;
int sessenc_encrypt_with_key(uint8_t *out, size_t outcap, size_t *outlen,
                             const uint8_t key[SESSENC_KEY_LEN], const char *context,
                             const uint8_t *pt, size_t ptlen) KM_WUR;
int sessenc_decrypt_with_key(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                             const uint8_t key[SESSENC_KEY_LEN], const char *expected_context,
                             const uint8_t *blob, size_t bloblen) KM_WUR;

/* Reads the context of a blob without decrypting (for routing/logging).
 * Returns KM_OK with ctx/ctxlen borrowed from blob, or KM_ERR_INVALID. */
int sessenc_peek_context(const uint8_t **ctx, size_t *ctxlen, const uint8_t *blob,
                         size_t bloblen) KM_WUR;

#endif /* KM_CRYPTO_SESSENC_H */
