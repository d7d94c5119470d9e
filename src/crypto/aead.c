#include "crypto/aead.h"

#include <openssl/evp.h>

#include "common/secure.h"
#include "crypto/ctx.h"
#include "common/banned.h"

static void *aead_unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

static EVP_CIPHER_CTX *aead_start(int enc, const uint8_t key[AEAD_KEY_LEN], const uint8_t *iv,
                                  size_t ivlen)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

    if (c == NULL || crypto_aes256gcm() == NULL)
        goto fail;
    if (EVP_CipherInit_ex(c, crypto_aes256gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1)
        goto fail;
    return c;
fail:
    EVP_CIPHER_CTX_free(c);
    return NULL;
}

/* Feeds associated data (none when adlen is 0). */
static int aead_ad(EVP_CIPHER_CTX *c, const uint8_t *ad, size_t adlen)
{
    int n = 0;
    if (adlen == 0)
        return 1;
    if (adlen > AEAD_MAX_LEN)
        return 0;
    return EVP_CipherUpdate(c, NULL, &n, ad, (int)adlen);
}

int aead_encrypt(uint8_t *ct, uint8_t tag[AEAD_TAG_LEN], const uint8_t key[AEAD_KEY_LEN],
                 const uint8_t *iv, size_t ivlen, const uint8_t *pt, size_t len)
{
    return aead_encrypt_ad(ct, tag, key, iv, ivlen, NULL, 0, pt, len);
}

int aead_decrypt(uint8_t *pt, const uint8_t key[AEAD_KEY_LEN], const uint8_t *iv, size_t ivlen,
                 const uint8_t *ct, size_t len, const uint8_t tag[AEAD_TAG_LEN])
{
    return aead_decrypt_ad(pt, key, iv, ivlen, NULL, 0, ct, len, tag);
}

int aead_encrypt_ad(uint8_t *ct, uint8_t tag[AEAD_TAG_LEN], const uint8_t key[AEAD_KEY_LEN],
                    const uint8_t *iv, size_t ivlen, const uint8_t *ad, size_t adlen,
                    const uint8_t *pt, size_t len)
{
    int r = KM_ERR_CRYPTO;
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *c = NULL;

    if (len > AEAD_MAX_LEN || ivlen == 0 || ivlen > 64)
        return KM_ERR_TOO_LARGE;
    if ((c = aead_start(1, key, iv, ivlen)) == NULL || aead_ad(c, ad, adlen) != 1)
        goto out;
    if (len > 0 && EVP_EncryptUpdate(c, ct, &n, pt, (int)len) != 1)
        goto out;
    /* GCM writes nothing at Final; never form NULL + 0 for an empty input. */
    if (EVP_EncryptFinal_ex(c, len ? ct + n : tag, &fin) != 1 || (size_t)n + (size_t)fin != len)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) != 1)
        goto out;
    r = KM_OK;
out:
    EVP_CIPHER_CTX_free(c); /* cleanses the key schedule */
    return r;
}

int aead_decrypt_ad(uint8_t *pt, const uint8_t key[AEAD_KEY_LEN], const uint8_t *iv, size_t ivlen,
                    const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len,
                    const uint8_t tag[AEAD_TAG_LEN])
{
    uint8_t dummy[AEAD_TAG_LEN];
    int r = KM_ERR_CRYPTO;
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *c = NULL;

    if (len > AEAD_MAX_LEN || ivlen == 0 || ivlen > 64)
        return KM_ERR_TOO_LARGE;
    if ((c = aead_start(0, key, iv, ivlen)) == NULL || aead_ad(c, ad, adlen) != 1)
        goto out;
    if (len > 0 && EVP_DecryptUpdate(c, pt, &n, ct, (int)len) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, aead_unconst(tag)) != 1)
        goto out;
    /* Authentication happens here; OpenSSL compares tags in constant time. */
    if (EVP_DecryptFinal_ex(c, len ? pt + n : dummy, &fin) != 1 || (size_t)n + (size_t)fin != len)
        goto out;
    r = KM_OK;
out:
    EVP_CIPHER_CTX_free(c);
    if (r != KM_OK && len > 0)
        secure_wipe(pt, len); /* never hand out unauthenticated plaintext */
    return r;
}
