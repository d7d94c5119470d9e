#include "crypto/ctx.h"

#include <pthread.h>

#include "common/secure.h"
#include "common/banned.h"

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static secp256k1_context *ctx_secp;
static int ctx_is_blinded;
static EVP_MD *ctx_sha256;
static EVP_KDF *ctx_hkdf;
static EVP_CIPHER *ctx_gcm;

static void ctx_create(void)
{
    uint8_t seed[32];

    ctx_secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (ctx_secp == NULL)
        KM_BUG("secp256k1_context_create failed");
    if (secure_random(seed, sizeof(seed)) == KM_OK)
        ctx_is_blinded = secp256k1_context_randomize(ctx_secp, seed);
    secure_wipe(seed, sizeof(seed));

    ctx_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ctx_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

const secp256k1_context *crypto_ctx(void)
{
    if (pthread_once(&ctx_once, ctx_create) != 0)
        KM_BUG("pthread_once failed");
    return ctx_secp;
}

int crypto_ctx_blinded(void)
{
    (void)crypto_ctx();
    return ctx_is_blinded;
}

const EVP_MD *crypto_sha256(void)
{
    (void)crypto_ctx();
    return ctx_sha256;
}

int crypto_sha256_digest(uint8_t out[32], const void *p, size_t n)
{
    unsigned int len = 0;
    const EVP_MD *md = crypto_sha256();
    if (md == NULL || EVP_Digest(p, n, out, &len, md, NULL) != 1 || len != 32)
        return KM_ERR_CRYPTO;
    return KM_OK;
}

EVP_KDF *crypto_hkdf(void)
{
    (void)crypto_ctx();
    return ctx_hkdf;
}

const EVP_CIPHER *crypto_aes256gcm(void)
{
    (void)crypto_ctx();
    return ctx_gcm;
}
