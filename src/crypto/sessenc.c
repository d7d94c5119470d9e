#include "crypto/sessenc.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "common/banned.h"

size_t sessenc_blob_len(size_t ctxlen, size_t ptlen)
{
    return 1 + ctxlen + SESSENC_NONCE_LEN + ptlen + SESSENC_TAG_LEN;
}

static int sessenc_key(uint8_t key[SESSENC_KEY_LEN], const uint8_t secret[SESSENC_SECRET_LEN],
                       const uint8_t *context, size_t ctxlen)
{
    return kdf_hkdf_sha256(key, SESSENC_KEY_LEN, NULL, 0, secret, SESSENC_SECRET_LEN, context,
                           ctxlen);
}

int sessenc_derive_key(uint8_t key[SESSENC_KEY_LEN], const uint8_t secret[SESSENC_SECRET_LEN],
                       const char *context)
{
    size_t ctxlen = strlen(context);
    if (ctxlen == 0 || ctxlen > SESSENC_CONTEXT_MAX)
        return KM_ERR_INVALID;
    return sessenc_key(key, secret, (const uint8_t *)context, ctxlen);
}

int sessenc_encrypt(uint8_t *out, size_t outcap, size_t *outlen,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *context,
                    const uint8_t *pt, size_t ptlen)
{
    uint8_t key[SESSENC_KEY_LEN];
    *outlen = 0;
    int r = sessenc_derive_key(key, secret, context);
    if (r == KM_OK)
        r = sessenc_encrypt_with_key(out, outcap, outlen, key, context, pt, ptlen);
    secure_wipe(key, sizeof(key));
    return r;
}

int sessenc_encrypt_with_key(uint8_t *out, size_t outcap, size_t *outlen,
                             const uint8_t key[SESSENC_KEY_LEN], const char *context,
                             const uint8_t *pt, size_t ptlen)
{
    size_t ctxlen = strlen(context);
    uint8_t *nonce, *ct;
    int r;

    *outlen = 0;
    if (ctxlen == 0 || ctxlen > SESSENC_CONTEXT_MAX)
        return KM_ERR_INVALID;
    if (ptlen > SESSENC_MAX_PLAINTEXT || outcap < sessenc_blob_len(ctxlen, ptlen))
        return KM_ERR_TOO_LARGE;
    out[0] = (uint8_t)ctxlen;
    memcpy(out + 1, context, ctxlen);
    nonce = out + 1 + ctxlen;
    ct = nonce + SESSENC_NONCE_LEN;
    if ((r = secure_random(nonce, SESSENC_NONCE_LEN)) != KM_OK)
        goto out;
    if ((r = aead_encrypt(ct, ct + ptlen, key, nonce, SESSENC_NONCE_LEN, pt, ptlen)) != KM_OK)
        goto out;
    *outlen = sessenc_blob_len(ctxlen, ptlen);
out:
    if (r != KM_OK)
        secure_wipe(out, sessenc_blob_len(ctxlen, ptlen));
    return r;
}

int sessenc_peek_context(const uint8_t **ctx, size_t *ctxlen, const uint8_t *blob, size_t bloblen)
{
    *ctx = NULL;
    *ctxlen = 0;
    if (bloblen < 1 || blob[0] == 0 || bloblen < sessenc_blob_len(blob[0], 0))
        return KM_ERR_INVALID;
    *ctx = blob + 1;
    *ctxlen = blob[0];
    return KM_OK;
}

/* What sessenc_decrypt checks before it needs the key: the blob's shape
 * and context. Sets *ptlen and the parts of the blob on success. */
static int check_blob(size_t *ptlen, const uint8_t **ctxp, struct km_error *err, size_t outcap,
                      const char *expected_context, const uint8_t *blob, size_t bloblen)
{
    size_t want = strlen(expected_context), ctxlen;
    const uint8_t *ctx;
    if (bloblen == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "encrypted data is empty");
    if (sessenc_peek_context(&ctx, &ctxlen, blob, bloblen) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "encrypted data too short: %zu bytes for a %u-byte context", bloblen,
                            (unsigned)blob[0]);
    if (ctxlen != want || memcmp(ctx, expected_context, want) != 0)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "context mismatch: expected '%.100s', got '%.*s'", expected_context,
                            (int)(ctxlen < 100 ? ctxlen : 100), (const char *)ctx);
    *ptlen = bloblen - sessenc_blob_len(ctxlen, 0);
    if (*ptlen > SESSENC_MAX_PLAINTEXT || outcap < *ptlen)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "plaintext of %zu bytes does not fit %zu",
                            *ptlen, outcap);
    *ctxp = ctx;
    return KM_OK;
}

int sessenc_decrypt(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *expected_context,
                    const uint8_t *blob, size_t bloblen)
{
    const uint8_t *ctx = NULL;
    size_t ptlen = 0;
    uint8_t key[SESSENC_KEY_LEN];
    *outlen = 0;
    int r = check_blob(&ptlen, &ctx, err, outcap, expected_context, blob, bloblen);
    if (r != KM_OK)
        return r;
    if ((r = sessenc_key(key, secret, ctx, blob[0])) != KM_OK)
        return km_error_set(err, r, 0, "session key derivation failed");
    r = sessenc_decrypt_with_key(out, outcap, outlen, err, key, expected_context, blob, bloblen);
    secure_wipe(key, sizeof(key));
    return r;
}

int sessenc_decrypt_with_key(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                             const uint8_t key[SESSENC_KEY_LEN], const char *expected_context,
                             const uint8_t *blob, size_t bloblen)
{
    const uint8_t *ctx = NULL, *nonce, *ct;
    size_t ptlen = 0;

    *outlen = 0;
    int r = check_blob(&ptlen, &ctx, err, outcap, expected_context, blob, bloblen);
    if (r != KM_OK)
        return r;
    nonce = ctx + blob[0];
    ct = nonce + SESSENC_NONCE_LEN;
    r = aead_decrypt(out, key, nonce, SESSENC_NONCE_LEN, ct, ptlen, ct + ptlen);
    if (r != KM_OK)
        return km_error_set(err, r, 0,
                            "session decryption failed: data tampered or wrong session secret");
    *outlen = ptlen;
    return KM_OK;
}
