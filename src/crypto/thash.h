/*
 * thash.h - BIP-340 tagged hashes, SHA256(SHA256(tag) || SHA256(tag) || m),
 * streamed (internal to src/crypto).
 *
 * The streaming form (OpenSSL EVP) serves inputs built from several
 * variable-length parts (BIP-327 NonceGen, session values); thash_oneshot
 * (libsecp256k1's secp256k1_tagged_sha256) serves contiguous inputs. Both
 * are constant time in the data, so secret inputs are fine; OpenSSL
 * cleanses the hash state when the context is freed.
 *
 * Errors (allocation failure inside OpenSSL) are sticky: updates after a
 * failure do nothing and thash_final reports it, so call sites check once.
 */
#ifndef KM_CRYPTO_THASH_H
#define KM_CRYPTO_THASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/err.h"

struct thash {
    EVP_MD_CTX *md;
    int err;
};

/* Starts a tagged hash with tag (NUL-terminated ASCII). */
void thash_init(struct thash *h, const char *tag);

/* Absorbs p[0..n). p may be NULL when n is 0. */
void thash_update(struct thash *h, const void *p, size_t n);

/* Absorbs one byte, or v as big-endian u32 / u64. */
void thash_update_u8(struct thash *h, uint8_t v);
void thash_update_be32(struct thash *h, uint32_t v);
void thash_update_be64(struct thash *h, uint64_t v);

/* Writes the digest and releases the state. Returns KM_OK or
 * KM_ERR_CRYPTO (on error out is zeroed). Always releases. */
int thash_final(struct thash *h, uint8_t out[32]) KM_WUR;

/* Releases the state without a result (error paths). NULL-safe on a
 * zeroed struct. */
void thash_abort(struct thash *h);

/* One-shot tagged hash of msg[0..len). Cannot fail. */
void thash_oneshot(uint8_t out[32], const char *tag, const uint8_t *msg, size_t len);

/* Plain SHA-256 of p[0..n). Returns KM_OK or KM_ERR_CRYPTO. */
int thash_sha256(uint8_t out[32], const void *p, size_t n) KM_WUR;

#endif /* KM_CRYPTO_THASH_H */
