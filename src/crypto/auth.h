/*
 * auth.h - request signatures for the REST API (DESIGN.md §8).
 *
 * A client signs each request with BIP-340 over
 *
 *   digest = hash_KeyMeld/request/v1(
 *              be32(len(method)) || method || be32(len(path)) || path ||
 *              be64(timestamp) || nonce(16) || SHA-256(body))
 *
 * binding the method, the path (with query string), the time and the body,
 * unlike the original's "session_id:nonce". Lengths are prefixed so no two
 * requests share a digest. The gateway verifies the signature, checks the
 * timestamp window (auth_timestamp_fresh) and keeps a replay cache of
 * (key, nonce) for that window; the cache is the gateway's, not this
 * module's.
 */
#ifndef KM_CRYPTO_AUTH_H
#define KM_CRYPTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keypair.h"

#define AUTH_NONCE_LEN     16
#define AUTH_BODY_HASH_LEN 32
#define AUTH_SIG_LEN       64
#define AUTH_PUBKEY_LEN    32            /* x-only */
#define AUTH_FIELD_MAX     (64u * 1024u) /* longest method or path */

struct auth_request {
    const char *method; /* "POST"; not NUL-terminated necessarily */
    size_t method_len;
    const char *path; /* "/api/v1/signing?x=1" as sent */
    size_t path_len;
    uint64_t timestamp; /* Unix seconds */
    uint8_t nonce[AUTH_NONCE_LEN];
    uint8_t body_hash[AUTH_BODY_HASH_LEN]; /* auth_body_hash(body) */
};

/* body_hash = SHA-256(body[0..len)) (the empty body hashes too).
 * Returns KM_OK or KM_ERR_CRYPTO. */
int auth_body_hash(uint8_t out[AUTH_BODY_HASH_LEN], const uint8_t *body, size_t len) KM_WUR;

/* The 32-byte digest that is signed. Returns KM_OK, KM_ERR_TOO_LARGE
 * (method or path longer than AUTH_FIELD_MAX) or KM_ERR_CRYPTO. */
int auth_request_digest(uint8_t out[32], const struct auth_request *req) KM_WUR;

/* Signs the request digest with BIP-340 (fresh auxiliary randomness).
 * Returns KM_OK or the errors of auth_request_digest / schnorr_sign. */
int auth_sign(uint8_t sig[AUTH_SIG_LEN], const struct keypair *kp,
              const struct auth_request *req) KM_WUR;

/* Verifies a request signature (sig and pubkey are untrusted bytes).
 * Returns KM_OK, KM_ERR_INVALID (lengths, bad key, oversized fields) or
 * KM_ERR_CRYPTO (wrong signature). */
int auth_verify(const uint8_t *sig, size_t siglen, const uint8_t *pubkey, size_t pklen,
                const struct auth_request *req) KM_WUR;

/* 1 if |now - timestamp| <= window seconds, else 0. */
int auth_timestamp_fresh(uint64_t now, uint64_t timestamp, uint64_t window);

/*
 * Derives an auth keypair: seckey = HKDF-SHA256(salt, ikm, info), 32 bytes
 * (e.g. the session auth key from the session secret; docs/CRYPTO.md).
 * Returns KM_OK, KM_ERR_RANGE (empty ikm) or KM_ERR_CRYPTO (the output is
 * not a valid key: probability 2^-128). out must be keypair_clear'ed.
 */
int auth_derive_keypair(struct keypair *out, const uint8_t *ikm, size_t ikmlen, const char *salt,
                        const char *info) KM_WUR;

#endif /* KM_CRYPTO_AUTH_H */
