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

static int sessenc_key(uint8_t key[32], const uint8_t secret[SESSENC_SECRET_LEN],
                       const uint8_t *context, size_t ctxlen)
{
    return kdf_hkdf_sha256(key, 32, NULL, 0, secret, SESSENC_SECRET_LEN, context, ctxlen);
}

int sessenc_encrypt(uint8_t *out, size_t outcap, size_t *outlen,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *context,
                    const uint8_t *pt, size_t ptlen)
{
    size_t ctxlen = strlen(context);
    uint8_t key[32];
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
    if ((r = sessenc_key(key, secret, (const uint8_t *)context, ctxlen)) != KM_OK)
        goto out;
    if ((r = aead_encrypt(ct, ct + ptlen, key, nonce, SESSENC_NONCE_LEN, pt, ptlen)) != KM_OK)
        goto out;
    *outlen = sessenc_blob_len(ctxlen, ptlen);
out:
    secure_wipe(key, sizeof(key));
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

int sessenc_decrypt(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                    const uint8_t secret[SESSENC_SECRET_LEN], const char *expected_context,
                    const uint8_t *blob, size_t bloblen)
{
    size_t want = strlen(expected_context), ctxlen, ptlen;
    const uint8_t *ctx, *nonce, *ct;
    uint8_t key[32];
    int r;

    *outlen = 0;
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
    ptlen = bloblen - sessenc_blob_len(ctxlen, 0);
    if (ptlen > SESSENC_MAX_PLAINTEXT || outcap < ptlen)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "plaintext of %zu bytes does not fit %zu",
                            ptlen, outcap);
    nonce = ctx + ctxlen;
    ct = nonce + SESSENC_NONCE_LEN;
    if ((r = sessenc_key(key, secret, ctx, ctxlen)) != KM_OK) {
        km_error_set(err, r, 0, "session key derivation failed");
        goto out;
    }
    r = aead_decrypt(out, key, nonce, SESSENC_NONCE_LEN, ct, ptlen, ct + ptlen);
    if (r != KM_OK) {
        km_error_set(err, r, 0, "session decryption failed: data tampered or wrong session secret");
        goto out;
    }
    *outlen = ptlen;
out:
    secure_wipe(key, sizeof(key));
    return r;
}
