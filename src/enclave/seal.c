/*
 * seal.c - the enclave's crypto plumbing: ECIES and session encryption of
 * protocol blobs, tweaks, adaptor point sums, aggregate_check. Secrets pass
 * through caller-provided fixed buffers and are wiped on every path.
 */
#include "enclave/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/buf.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "crypto/ecies.h"
#include "crypto/kdf.h"
#include "crypto/sessenc.h"
#include "crypto/taproot.h"
#include "common/banned.h"

int en_fail(struct en_err *e, enum proto_code code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return KM_ERR_INVALID;
}

int en_ecies_open(uint8_t *out, size_t cap, size_t *len, const struct enclave *en,
                  const struct proto_blob *ct, struct en_err *e, const char *what)
{
    struct km_error err;
    struct enclave *mut = (struct enclave *)(uintptr_t)en;
    pthread_rwlock_rdlock(&mut->key_lock);
    int r = ecies_decrypt(out, cap, len, &err, en->kp.seckey, ct->p, ct->len);
    pthread_rwlock_unlock(&mut->key_lock);
    /* During a rotation a ciphertext may already be for the next key. */
    if (r == KM_ERR_CRYPTO && en_ecies_open_next(out, cap, len, mut, ct) == KM_OK)
        r = KM_OK;
    if (r == KM_ERR_TOO_LARGE)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT, "%s: plaintext longer than %zu bytes", what,
                       cap);
    if (r != KM_OK)
        return en_fail(e, PROTO_E_DECRYPT_FAILED,
                       "%s: cannot be decrypted with this enclave's key: %s", what, err.msg);
    return KM_OK;
}

int en_ecies_seal(struct proto_blob *out, const uint8_t pk[PROTO_PUBKEY_LEN], const uint8_t *pt,
                  size_t len, struct en_err *e)
{
    size_t cap = len + ECIES_OVERHEAD, n = 0;
    uint8_t *ct = xmalloc(cap);
    int r = ecies_encrypt(ct, cap, &n, pk, PROTO_PUBKEY_LEN, pt, len);
    if (r != KM_OK) {
        free(ct);
        /* The recipient keys were validated when the session was created. */
        return en_fail(e, PROTO_E_INTERNAL, "ECIES encryption failed: %s", km_strerror(r));
    }
    out->p = ct;
    out->len = n;
    return KM_OK;
}

static int open_err(int r, const struct km_error *err, size_t cap, struct en_err *e,
                    const char *what)
{
    if (r == KM_ERR_TOO_LARGE)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT, "%s: plaintext longer than %zu bytes", what,
                       cap);
    return en_fail(e, PROTO_E_DECRYPT_FAILED, "%s: cannot be decrypted with the session secret: %s",
                   what, err->msg);
}

/* The contexts of kg->ctx_keys, in order. */
static const char *const ctx_names[EN_CTX_COUNT] = {
    PROTO_CTX_TWEAK,          PROTO_CTX_MESSAGE,    PROTO_CTX_ADAPTOR,       PROTO_CTX_NONCES,
    PROTO_CTX_PSIGS,          PROTO_CTX_AGGKEY,     PROTO_CTX_SUBSET_AGGKEY, PROTO_CTX_SIGNATURE,
    PROTO_CTX_ADAPTOR_RESULT, PROTO_CTX_POOL_NONCE,
};

int en_derive_keys(struct keygen_data *kg, struct en_err *e)
{
    for (size_t i = 0; i < EN_CTX_COUNT; i++) {
        if (sessenc_derive_key(kg->ctx_keys[i], kg->secret, ctx_names[i]) != KM_OK) {
            secure_wipe(kg->ctx_keys, sizeof(kg->ctx_keys));
            return en_fail(e, PROTO_E_INTERNAL, "session key derivation failed");
        }
    }
    kg->keys_ready = true;
    return KM_OK;
}

/* kg's derived key for ctx, or NULL (not derived yet, or another context:
 * the caller derives from the secret then). */
static const uint8_t *ctx_key(const struct keygen_data *kg, const char *ctx)
{
    for (size_t i = 0; kg->keys_ready && i < EN_CTX_COUNT; i++)
        if (strcmp(ctx, ctx_names[i]) == 0)
            return kg->ctx_keys[i];
    return NULL;
}

int en_open(uint8_t *out, size_t cap, size_t *len, const struct keygen_data *kg, const char *ctx,
            const struct proto_blob *blob, struct en_err *e, const char *what)
{
    struct km_error err;
    const uint8_t *key = ctx_key(kg, ctx);
    int r = key != NULL
                ? sessenc_decrypt_with_key(out, cap, len, &err, key, ctx, blob->p, blob->len)
                : sessenc_decrypt(out, cap, len, &err, kg->secret, ctx, blob->p, blob->len);
    return r == KM_OK ? KM_OK : open_err(r, &err, cap, e, what);
}

int en_open_alloc(uint8_t **out, size_t *len, size_t max, const struct keygen_data *kg,
                  const char *ctx, const struct proto_blob *blob, struct en_err *e,
                  const char *what)
{
    /* A blob is never shorter than its plaintext. */
    size_t cap = blob->len < max ? blob->len : max;
    uint8_t *p = xmalloc(cap ? cap : 1);
    int r = en_open(p, cap, len, kg, ctx, blob, e, what);
    if (r != KM_OK) {
        free(p);
        *out = NULL;
        return r;
    }
    *out = p;
    return KM_OK;
}

int en_seal(struct proto_blob *out, const struct keygen_data *kg, const char *ctx,
            const uint8_t *pt, size_t len, struct en_err *e)
{
    size_t cap = sessenc_blob_len(strlen(ctx), len), n = 0;
    uint8_t *blob = xmalloc(cap);
    const uint8_t *key = ctx_key(kg, ctx);
    int r = key != NULL ? sessenc_encrypt_with_key(blob, cap, &n, key, ctx, pt, len)
                        : sessenc_encrypt(blob, cap, &n, kg->secret, ctx, pt, len);
    if (r != KM_OK) {
        free(blob);
        return en_fail(e, PROTO_E_INTERNAL, "session encryption failed: %s", km_strerror(r));
    }
    out->p = blob;
    out->len = n;
    return KM_OK;
}

int en_seal_json(struct proto_blob *out, const struct keygen_data *kg, const char *ctx,
                 const struct proto_schema *s, const void *obj, struct en_err *e)
{
    struct buf b;
    buf_init(&b, PROTO_SEALED_LARGE_MAX);
    int r = proto_encode_bytes(&b, s, obj);
    if (r != KM_OK)
        r = en_fail(e, PROTO_E_LIMIT_EXCEEDED, "%s does not fit in %d bytes", s->name,
                    PROTO_SEALED_LARGE_MAX);
    else
        r = en_seal(out, kg, ctx, buf_peek(&b), buf_len(&b), e);
    buf_release(&b);
    return r;
}

int en_open_tweak(struct proto_tweak *out, const struct keygen_data *kg,
                  const struct proto_blob *blob, struct en_err *e, const char *what)
{
    uint8_t pt[PROTO_SEALED_SMALL_MAX];
    size_t n = 0;
    struct km_error err;
    int rc = en_open(pt, sizeof(pt), &n, kg, PROTO_CTX_TWEAK, blob, e, what);
    if (rc == KM_OK && proto_decode_bytes(&proto_tweak_schema, out, pt, n, &err) != KM_OK)
        rc = en_fail(e, PROTO_E_INVALID_ARGUMENT, "%s: %s", what, err.msg);
    secure_wipe(pt, sizeof(pt));
    return rc;
}

int en_apply_tweak(struct musig_keyagg *ka, const struct proto_tweak *t, struct en_err *e)
{
    int r = KM_OK;
    struct musig_blame blame;
    switch ((enum proto_tweak_type)t->type) {
    case PROTO_TWEAK_NONE:
        return KM_OK;
    case PROTO_TWEAK_UNSPENDABLE_TAPROOT:
        r = taproot_musig_tweak(ka, NULL);
        break;
    case PROTO_TWEAK_TAPROOT_MERKLE_ROOT:
        r = taproot_musig_tweak(ka, t->merkle_root);
        break;
    case PROTO_TWEAK_PLAIN:
    case PROTO_TWEAK_XONLY:
        r = musig_keyagg_apply_tweak(ka, &blame, t->tweak, t->type == PROTO_TWEAK_XONLY);
        break;
    }
    if (r != KM_OK)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT, "the taproot tweak cannot be applied: %s",
                       km_strerror(r));
    return KM_OK;
}

bool en_point_valid(const uint8_t p[PROTO_PUBKEY_LEN])
{
    secp256k1_pubkey pk;
    return (p[0] == 0x02 || p[0] == 0x03) &&
           secp256k1_ec_pubkey_parse(crypto_ctx(), &pk, p, PROTO_PUBKEY_LEN) == 1;
}

int en_point_sum(uint8_t out[PROTO_PUBKEY_LEN], const uint8_t (*points)[PROTO_PUBKEY_LEN], size_t n,
                 struct en_err *e)
{
    secp256k1_pubkey pk[PROTO_MAX_ADAPTOR_POINTS], sum;
    const secp256k1_pubkey *ptrs[PROTO_MAX_ADAPTOR_POINTS];
    if (n == 0 || n > PROTO_MAX_ADAPTOR_POINTS)
        KM_BUG("en_point_sum: %zu points", n);
    for (size_t i = 0; i < n; i++) {
        if (secp256k1_ec_pubkey_parse(crypto_ctx(), &pk[i], points[i], PROTO_PUBKEY_LEN) != 1)
            return en_fail(e, PROTO_E_INVALID_ARGUMENT, "adaptor point %zu is not a valid point",
                           i);
        ptrs[i] = &pk[i];
    }
    if (secp256k1_ec_pubkey_combine(crypto_ctx(), &sum, ptrs, n) != 1)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT, "the adaptor points sum to infinity");
    size_t len = PROTO_PUBKEY_LEN;
    secp256k1_ec_pubkey_serialize(crypto_ctx(), out, &len, &sum, SECP256K1_EC_COMPRESSED);
    return KM_OK;
}

int en_aggregate_check(struct keygen_data *kg, struct en_err *e)
{
    uint8_t key[32];
    unsigned int outlen = 0;
    int r = kdf_hkdf_sha256(key, sizeof(key), NULL, 0, kg->secret, PROTO_SECRET_LEN,
                            (const uint8_t *)PROTO_INFO_AGGREGATE_CHECK,
                            strlen(PROTO_INFO_AGGREGATE_CHECK));
    if (r != KM_OK)
        return en_fail(e, PROTO_E_INTERNAL, "aggregate_check key derivation failed");
    size_t n = 1 + kg->n_subsets;
    uint8_t *msg = xmalloc(st_mult(n, PROTO_PUBKEY_LEN));
    memcpy(msg, kg->full.aggkey, PROTO_PUBKEY_LEN);
    for (size_t i = 0; i < kg->n_subsets; i++)
        memcpy(msg + (i + 1) * PROTO_PUBKEY_LEN, kg->subsets[i].aggkey, PROTO_PUBKEY_LEN);
    const uint8_t *mac =
        HMAC(EVP_sha256(), key, (int)sizeof(key), msg, n * PROTO_PUBKEY_LEN, kg->check, &outlen);
    secure_wipe(key, sizeof(key));
    free(msg);
    if (mac == NULL || outlen != PROTO_CHECK_LEN)
        return en_fail(e, PROTO_E_INTERNAL, "aggregate_check HMAC failed");
    return KM_OK;
}
