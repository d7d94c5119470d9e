#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "common/secure.h"
#include "crypto/ctx.h"
#include "common/banned.h"

/* OSSL_PARAM takes non-const buffers even for inputs it only reads. */
static void *kdf_unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

int kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
                    const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
    int r = KM_ERR_CRYPTO;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    size_t np = 0;
    char digest[] = "SHA256";

    if (outlen == 0 || outlen > KDF_HKDF_MAX_OUT || ikmlen == 0)
        return KM_ERR_RANGE; /* out untouched: outlen itself is suspect */
    if (crypto_hkdf() == NULL || (kctx = EVP_KDF_CTX_new(crypto_hkdf())) == NULL)
        goto out;
    params[np++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, kdf_unconst(ikm), ikmlen);
    if (salt != NULL && saltlen > 0)
        params[np++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, kdf_unconst(salt), saltlen);
    if (info != NULL && infolen > 0)
        params[np++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, kdf_unconst(info), infolen);
    params[np] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, outlen, params) != 1)
        goto out;
    r = KM_OK;
out:
    EVP_KDF_CTX_free(kctx); /* cleanses the key material it copied */
    if (r != KM_OK && out != NULL)
        secure_wipe(out, outlen);
    return r;
}
