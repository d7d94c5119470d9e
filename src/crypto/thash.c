#include "crypto/thash.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/ctx.h"
#include "common/banned.h"

void thash_init(struct thash *h, const char *tag)
{
    uint8_t th[32];

    h->err = 0;
    h->md = EVP_MD_CTX_new();
    if (h->md == NULL || crypto_sha256() == NULL) {
        h->err = 1;
        return;
    }
    if (EVP_Digest(tag, strlen(tag), th, NULL, crypto_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(h->md, crypto_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h->md, th, sizeof(th)) != 1 ||
        EVP_DigestUpdate(h->md, th, sizeof(th)) != 1)
        h->err = 1;
}

void thash_update(struct thash *h, const void *p, size_t n)
{
    if (h->err || n == 0)
        return;
    if (EVP_DigestUpdate(h->md, p, n) != 1)
        h->err = 1;
}

void thash_update_u8(struct thash *h, uint8_t v)
{
    thash_update(h, &v, 1);
}

void thash_update_be32(struct thash *h, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    thash_update(h, b, sizeof(b));
}

void thash_update_be64(struct thash *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    thash_update(h, b, sizeof(b));
}

int thash_final(struct thash *h, uint8_t out[32])
{
    unsigned int len = 0;
    int r = KM_ERR_CRYPTO;

    if (!h->err && EVP_DigestFinal_ex(h->md, out, &len) == 1 && len == 32)
        r = KM_OK;
    else
        secure_wipe(out, 32);
    thash_abort(h);
    return r;
}

void thash_abort(struct thash *h)
{
    EVP_MD_CTX_free(h->md); /* cleanses the hash state */
    h->md = NULL;
    h->err = 1;
}

void thash_oneshot(uint8_t out[32], const char *tag, const uint8_t *msg, size_t len)
{
    static const uint8_t empty[1];
    int ok = secp256k1_tagged_sha256(crypto_ctx(), out, (const unsigned char *)tag, strlen(tag),
                                     len ? msg : empty, len);
    (void)ok; /* documented to return 1 always */
}

int thash_sha256(uint8_t out[32], const void *p, size_t n)
{
    static const uint8_t empty[1];
    if (crypto_sha256() == NULL ||
        EVP_Digest(n ? p : empty, n, out, NULL, crypto_sha256(), NULL) != 1) {
        secure_wipe(out, 32);
        return KM_ERR_CRYPTO;
    }
    return KM_OK;
}
