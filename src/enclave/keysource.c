/*
 * keysource.c - the sealed blob and the sealer-independent half of
 * creating and opening a sealed identity key (enclave/keysource.h).
 */
#include "enclave/keysource.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "enclave/keysource_impl.h"
#include "common/banned.h"

const char *sealer_name(uint8_t sealer)
{
    switch (sealer) {
    case SEALER_FILE:
        return "file";
    case SEALER_AWS_KMS:
        return "aws-kms";
    default:
        return "unknown";
    }
}

const char *keysource_name(const struct keysource *ks)
{
    return ks->ops->name;
}

int sealed_key_parse(struct sealed_key *out, const uint8_t *p, size_t len, struct km_error *err)
{
    struct buf b;
    uint8_t version = 0;
    uint16_t kms_len = 0;
    memset(out, 0, sizeof(*out));
    if (len > SEALED_KEY_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "sealed key of %zu bytes (at most %d)", len,
                            SEALED_KEY_MAX);
    buf_view(&b, p, len);
    if (buf_get_u8(&b, &version) != KM_OK || buf_get_u8(&b, &out->sealer) != KM_OK ||
        buf_get_u32(&b, &out->enclave_id) != KM_OK || buf_get_u64(&b, &out->key_epoch) != KM_OK ||
        buf_get_u16(&b, &kms_len) != KM_OK)
        return km_error_set(err, KM_ERR_INCOMPLETE, 0, "sealed key: header cut short");
    if (version != SEALED_KEY_VERSION)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sealed key: version %u (this enclave reads %d)", version,
                            SEALED_KEY_VERSION);
    if (out->sealer != SEALER_FILE && out->sealer != SEALER_AWS_KMS)
        return km_error_set(err, KM_ERR_INVALID, 0, "sealed key: unknown sealer %u", out->sealer);
    if ((out->sealer == SEALER_FILE) != (kms_len == 0) || kms_len > SEALED_KEY_KMS_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sealed key: a KMS ciphertext of %u bytes for sealer %s", kms_len,
                            sealer_name(out->sealer));
    if (out->key_epoch == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "sealed key: key epoch 0");
    out->kms_len = kms_len;
    out->kms_blob = kms_len ? buf_peek(&b) : NULL;
    if (buf_consume(&b, kms_len) != KM_OK)
        return km_error_set(err, KM_ERR_INCOMPLETE, 0, "sealed key: KMS ciphertext cut short");
    out->ad = p;
    out->ad_len = SEALED_KEY_HEADER + kms_len;
    out->box = buf_peek(&b);
    if (buf_len(&b) < SEALBOX_LEN)
        return km_error_set(err, KM_ERR_INCOMPLETE, 0, "sealed key: sealed secret cut short");
    if (buf_len(&b) > SEALBOX_LEN)
        return km_error_set(err, KM_ERR_TRAILING_DATA, 0, "sealed key: %zu bytes after the end",
                            buf_len(&b) - SEALBOX_LEN);
    return KM_OK;
}

static void put_header(uint8_t *h, uint8_t sealer, uint32_t enclave_id, uint64_t epoch,
                       size_t kms_len)
{
    h[0] = SEALED_KEY_VERSION;
    h[1] = sealer;
    buf_store_be32(h + 2, enclave_id);
    buf_store_be64(h + 6, epoch);
    h[14] = (uint8_t)(kms_len >> 8);
    h[15] = (uint8_t)kms_len;
}

int keysource_create(struct keysource *ks, struct keypair *kp, uint8_t **blob, size_t *blob_len,
                     uint32_t enclave_id, uint64_t key_epoch, struct km_error *err)
{
    uint8_t kek[SEALBOX_KEK_LEN];
    uint8_t *kms = NULL;
    size_t kms_len = 0;
    *blob = NULL;
    *blob_len = 0;
    memset(kp, 0, sizeof(*kp));
    if (key_epoch == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "key epoch 0");
    int r = ks->ops->kek(ks, kek, &kms, &kms_len, NULL, err);
    if (r == KM_OK && kms_len > SEALED_KEY_KMS_MAX)
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "KMS ciphertext of %zu bytes", kms_len);
    if (r == KM_OK && (r = keypair_generate(kp)) != KM_OK)
        km_error_set(err, r, 0, "cannot generate the identity key: %s", km_strerror(r));
    if (r == KM_OK) {
        size_t n = SEALED_KEY_HEADER + kms_len + SEALBOX_LEN;
        uint8_t *out = xmalloc(n);
        put_header(out, ks->ops->sealer, enclave_id, key_epoch, kms_len);
        if (kms_len)
            memcpy(out + SEALED_KEY_HEADER, kms, kms_len);
        r = sealbox_seal(out + SEALED_KEY_HEADER + kms_len, kek, out, SEALED_KEY_HEADER + kms_len,
                         kp->seckey);
        if (r == KM_OK) {
            *blob = out;
            *blob_len = n;
        } else {
            free(out);
            km_error_set(err, r, 0, "cannot seal the identity key: %s", km_strerror(r));
        }
    }
    if (r != KM_OK)
        keypair_clear(kp);
    secure_wipe(kek, sizeof(kek));
    free(kms);
    return r;
}

int keysource_open(struct keysource *ks, struct keypair *kp, uint64_t *key_epoch,
                   const uint8_t *blob, size_t blob_len, uint32_t enclave_id, struct km_error *err)
{
    struct sealed_key sk;
    uint8_t kek[SEALBOX_KEK_LEN], secret[SEALBOX_SECRET_LEN];
    memset(kp, 0, sizeof(*kp));
    *key_epoch = 0;
    int r = sealed_key_parse(&sk, blob, blob_len, err);
    if (r != KM_OK)
        return r == KM_ERR_TOO_LARGE ? r : KM_ERR_INVALID;
    if (sk.sealer != ks->ops->sealer)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "the key was sealed with sealer %s but this enclave runs SEALER=%s",
                            sealer_name(sk.sealer), ks->ops->name);
    if (sk.enclave_id != enclave_id)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "the key was sealed for enclave %u, this is enclave %u: check the "
                            "gateway's address for enclave %u",
                            sk.enclave_id, enclave_id, enclave_id);
    r = ks->ops->kek(ks, kek, NULL, NULL, &sk, err);
    if (r == KM_OK && sealbox_open(secret, kek, sk.ad, sk.ad_len, sk.box) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "the sealed key does not open with this %s key-encryption key (a "
                         "different KEK than the one it was sealed with, or an altered blob)",
                         ks->ops->name);
    if (r == KM_OK && (r = keypair_init(kp, secret)) != KM_OK)
        km_error_set(err, KM_ERR_CRYPTO, 0, "the sealed key is not a valid secp256k1 key");
    if (r == KM_OK)
        *key_epoch = sk.key_epoch;
    secure_wipe(kek, sizeof(kek));
    secure_wipe(secret, sizeof(secret));
    return r;
}

int keysource_set_credentials(struct keysource *ks, const char *access_key_id,
                              const char *secret_access_key, const char *session_token,
                              struct km_error *err)
{
    if (ks->ops->set_credentials == NULL)
        return KM_OK;
    return ks->ops->set_credentials(ks, access_key_id, secret_access_key, session_token, err);
}

bool keysource_needs_credentials(const struct keysource *ks)
{
    return ks->ops->set_credentials != NULL;
}

void keysource_free(struct keysource *ks)
{
    if (ks != NULL)
        ks->ops->free(ks);
}
