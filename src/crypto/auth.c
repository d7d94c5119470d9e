#include "crypto/auth.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/kdf.h"
#include "crypto/schnorr.h"
#include "crypto/thash.h"
#include "common/banned.h"

int auth_body_hash(uint8_t out[AUTH_BODY_HASH_LEN], const uint8_t *body, size_t len)
{
    return thash_sha256(out, body, len);
}

int auth_request_digest(uint8_t out[32], const struct auth_request *req)
{
    struct thash h;

    memset(out, 0, 32);
    if (req->method_len > AUTH_FIELD_MAX || req->path_len > AUTH_FIELD_MAX)
        return KM_ERR_TOO_LARGE;
    thash_init(&h, "KeyMeld/request/v1");
    thash_update_be32(&h, (uint32_t)req->method_len);
    thash_update(&h, req->method, req->method_len);
    thash_update_be32(&h, (uint32_t)req->path_len);
    thash_update(&h, req->path, req->path_len);
    thash_update_be64(&h, req->timestamp);
    thash_update(&h, req->nonce, AUTH_NONCE_LEN);
    thash_update(&h, req->body_hash, AUTH_BODY_HASH_LEN);
    return thash_final(&h, out);
}

int auth_sign(uint8_t sig[AUTH_SIG_LEN], const struct keypair *kp, const struct auth_request *req)
{
    uint8_t digest[32];
    int r;

    memset(sig, 0, AUTH_SIG_LEN);
    if ((r = auth_request_digest(digest, req)) != KM_OK)
        return r;
    return schnorr_sign(sig, kp, digest, sizeof(digest), NULL);
}

int auth_verify(const uint8_t *sig, size_t siglen, const uint8_t *pubkey, size_t pklen,
                const struct auth_request *req)
{
    uint8_t digest[32];
    int r;

    if ((r = auth_request_digest(digest, req)) != KM_OK)
        return r == KM_ERR_TOO_LARGE ? KM_ERR_INVALID : r;
    return schnorr_verify(sig, siglen, digest, sizeof(digest), pubkey, pklen);
}

int auth_timestamp_fresh(uint64_t now, uint64_t timestamp, uint64_t window)
{
    uint64_t d = now >= timestamp ? now - timestamp : timestamp - now;
    return d <= window;
}

int auth_derive_keypair(struct keypair *out, const uint8_t *ikm, size_t ikmlen, const char *salt,
                        const char *info)
{
    uint8_t sk[32];
    int r;

    memset(out, 0, sizeof(*out));
    r = kdf_hkdf_sha256(sk, sizeof(sk), (const uint8_t *)salt, salt ? strlen(salt) : 0, ikm, ikmlen,
                        (const uint8_t *)info, info ? strlen(info) : 0);
    if (r == KM_OK) {
        r = keypair_init(out, sk);
        if (r == KM_ERR_INVALID)
            r = KM_ERR_CRYPTO;
    }
    secure_wipe(sk, sizeof(sk));
    return r;
}
