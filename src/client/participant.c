#include "client/participant.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/adaptor.h"
#include "crypto/auth.h"
#include "crypto/ctx.h"
#include "crypto/ecies.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "crypto/sessenc.h"
#include "crypto/taproot.h"
#include "common/banned.h"

int participant_secret_new(uint8_t secret[PARTICIPANT_SECRET_LEN])
{
    return secure_random(secret, PARTICIPANT_SECRET_LEN);
}

static int ecies_blob(struct proto_blob *out, const uint8_t pk[33], const uint8_t *pt, size_t len)
{
    size_t cap = len + ECIES_OVERHEAD, n = 0;
    uint8_t *ct = xmalloc(cap);
    int r = ecies_encrypt(ct, cap, &n, pk, 33, pt, len);
    if (r != KM_OK) {
        free(ct);
        memset(out, 0, sizeof(*out));
        return r;
    }
    out->p = ct;
    out->len = n;
    return KM_OK;
}

int participant_encrypt_secret(struct proto_blob *out, const uint8_t enclave_pk[33],
                               const uint8_t secret[PARTICIPANT_SECRET_LEN])
{
    return ecies_blob(out, enclave_pk, secret, PARTICIPANT_SECRET_LEN);
}

int participant_encrypt_private_key(struct proto_blob *out, const uint8_t enclave_pk[33],
                                    const struct keypair *kp)
{
    return ecies_blob(out, enclave_pk, kp->seckey, KEYPAIR_SECKEY_LEN);
}

int participant_seal(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                     const char *ctx, const uint8_t *pt, size_t len)
{
    size_t cap = sessenc_blob_len(strlen(ctx), len), n = 0;
    uint8_t *blob = xmalloc(cap);
    int r = sessenc_encrypt(blob, cap, &n, secret, ctx, pt, len);
    if (r != KM_OK) {
        free(blob);
        memset(out, 0, sizeof(*out));
        return r;
    }
    out->p = blob;
    out->len = n;
    return KM_OK;
}

int participant_open(uint8_t *out, size_t cap, size_t *len, struct km_error *err,
                     const uint8_t secret[PARTICIPANT_SECRET_LEN], const char *ctx,
                     const struct proto_blob *blob)
{
    return sessenc_decrypt(out, cap, len, err, secret, ctx, blob->p, blob->len);
}

int participant_seal_message(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                             const uint8_t msg[PROTO_MSG_LEN])
{
    return participant_seal(out, secret, PROTO_CTX_MESSAGE, msg, PROTO_MSG_LEN);
}

static int seal_json(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                     const char *ctx, const struct proto_schema *s, const void *obj)
{
    struct buf b;
    buf_init(&b, PROTO_SEALED_LARGE_MAX);
    int r = proto_encode_bytes(&b, s, obj);
    if (r == KM_OK)
        r = participant_seal(out, secret, ctx, buf_peek(&b), buf_len(&b));
    buf_release(&b);
    return r;
}

int participant_seal_tweak(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                           const struct proto_tweak *tweak)
{
    return seal_json(out, secret, PROTO_CTX_TWEAK, &proto_tweak_schema, tweak);
}

int participant_seal_adaptor_configs(struct proto_blob *out,
                                     const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                     const struct proto_adaptor_configs *cfgs)
{
    return seal_json(out, secret, PROTO_CTX_ADAPTOR, &proto_adaptor_configs_schema, cfgs);
}

/* Opens a blob whose plaintext must be exactly n bytes. */
static int open_exact(uint8_t *out, size_t n, struct km_error *err,
                      const uint8_t secret[PARTICIPANT_SECRET_LEN], const char *ctx,
                      const struct proto_blob *blob)
{
    uint8_t pt[128];
    size_t len = 0;
    int r = participant_open(pt, sizeof(pt), &len, err, secret, ctx, blob);
    if (r == KM_OK && len != n)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: expected %zu bytes, got %zu", ctx, n, len);
    if (r == KM_OK)
        memcpy(out, pt, n);
    secure_wipe(pt, sizeof(pt));
    return r;
}

int participant_open_aggregate_key(uint8_t out[PROTO_PUBKEY_LEN], struct km_error *err,
                                   const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                   const struct proto_blob *blob, bool subset)
{
    return open_exact(out, PROTO_PUBKEY_LEN, err, secret,
                      subset ? PROTO_CTX_SUBSET_AGGKEY : PROTO_CTX_AGGKEY, blob);
}

int participant_open_signature(uint8_t sig[PROTO_SIG_LEN], struct km_error *err,
                               const uint8_t secret[PARTICIPANT_SECRET_LEN],
                               const struct proto_blob *blob)
{
    return open_exact(sig, PROTO_SIG_LEN, err, secret, PROTO_CTX_SIGNATURE, blob);
}

int participant_open_adaptor_results(struct proto_adaptor_results *out, struct km_error *err,
                                     const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                     const struct proto_blob *blob)
{
    memset(out, 0, sizeof(*out));
    size_t cap = blob->len ? blob->len : 1, len = 0;
    uint8_t *pt = xmalloc(cap);
    int r = participant_open(pt, cap, &len, err, secret, PROTO_CTX_ADAPTOR_RESULT, blob);
    if (r == KM_OK)
        r = proto_decode_bytes(&proto_adaptor_results_schema, out, pt, len, err);
    free(pt);
    return r;
}

int participant_adaptor_complete(uint8_t sig[PROTO_SIG_LEN], const struct proto_adaptor_result *res,
                                 const uint8_t (*secrets)[32], size_t n)
{
    uint8_t t[32], point[ADAPTOR_POINT_LEN];
    int r = KM_OK;
    if (n == 0 || (res->adaptor_type != PROTO_ADAPTOR_AND && n != 1))
        return KM_ERR_INVALID;
    memcpy(t, secrets[0], 32);
    /* "and": the adaptor point is the sum of the points, so the secret is
     * the sum of the secrets (mod n). */
    for (size_t i = 1; i < n && r == KM_OK; i++)
        if (secp256k1_ec_seckey_tweak_add(crypto_ctx(), t, secrets[i]) != 1)
            r = KM_ERR_INVALID;
    if (r == KM_OK)
        r = adaptor_point(point, t);
    if (r == KM_OK && memcmp(point, res->adaptor_point, ADAPTOR_POINT_LEN) != 0)
        r = KM_ERR_CRYPTO;
    if (r == KM_OK)
        r = adaptor_adapt(sig, res->presignature, t, (int)res->nonce_parity);
    secure_wipe(t, sizeof(t));
    return r;
}

static int apply_tweak(struct musig_keyagg *ka, const struct proto_tweak *t)
{
    switch ((enum proto_tweak_type)t->type) {
    case PROTO_TWEAK_NONE:
        return KM_OK;
    case PROTO_TWEAK_UNSPENDABLE_TAPROOT:
        return taproot_musig_tweak(ka, NULL);
    case PROTO_TWEAK_TAPROOT_MERKLE_ROOT:
        return taproot_musig_tweak(ka, t->merkle_root);
    case PROTO_TWEAK_PLAIN:
    case PROTO_TWEAK_XONLY:
        return musig_keyagg_apply_tweak(ka, NULL, t->tweak, t->type == PROTO_TWEAK_XONLY);
    }
    return KM_ERR_INVALID;
}

int participant_aggregate_key(uint8_t out[PROTO_PUBKEY_LEN], uint8_t xonly[PROTO_XONLY_LEN],
                              const uint8_t (*pubkeys)[PROTO_PUBKEY_LEN], size_t n,
                              const struct proto_tweak *tweak)
{
    uint8_t(*sorted)[PROTO_PUBKEY_LEN] = xcalloc(n ? n : 1, PROTO_PUBKEY_LEN);
    struct musig_keyagg *ka = NULL;
    memcpy(sorted, pubkeys, n * PROTO_PUBKEY_LEN);
    musig_key_sort(sorted, n);
    int r = musig_keyagg_new(&ka, NULL, (const uint8_t(*)[PROTO_PUBKEY_LEN])sorted, n);
    if (r == KM_OK && tweak != NULL)
        r = apply_tweak(ka, tweak);
    if (r == KM_OK) {
        musig_keyagg_plain(ka, out);
        musig_keyagg_xonly(ka, xonly);
    }
    musig_keyagg_free(ka);
    free(sorted);
    return r;
}

int participant_approval_sign(uint8_t sig[PROTO_SIG_LEN], const struct keypair *auth,
                              const struct uuid *signing_id, const struct uuid *keygen_id,
                              uint64_t timestamp, const struct uuid *item_ids,
                              const uint8_t (*msgs)[PROTO_MSG_LEN], size_t n_items)
{
    uint8_t pre[PROTO_APPROVAL_PREIMAGE_LEN(PROTO_MAX_ITEMS)], digest[32];
    size_t n = proto_approval_preimage(pre, sizeof(pre), signing_id, keygen_id, timestamp, item_ids,
                                       msgs, n_items);
    if (secp256k1_tagged_sha256(crypto_ctx(), digest, (const unsigned char *)PROTO_TAG_APPROVAL,
                                strlen(PROTO_TAG_APPROVAL), pre, n) != 1)
        return KM_ERR_CRYPTO;
    return schnorr_sign(sig, auth, digest, sizeof(digest), NULL);
}

int participant_auth_keypair(struct keypair *out, const struct keypair *user,
                             const struct uuid *keygen_id)
{
    char info[UUID_STR_LEN + 1];
    uuid_format(info, keygen_id);
    return auth_derive_keypair(out, user->seckey, KEYPAIR_SECKEY_LEN, "keymeld-approval-v1", info);
}
