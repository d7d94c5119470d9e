/*
 * kms_cms_fuzz.c - CiphertextForRecipient (kms/cms.h) on arbitrary bytes:
 * the BER/CMS parse, the structure checks and, when they pass, decryption
 * with a fixed RSA key, the synthetic test key of tests/data/kms (it
 * protects nothing), so mutations of the synthetic blob reach the
 * RSA-OAEP and AES-CBC steps. The committed seeds are the three blobs of
 * tests/data/kms, truncations of them, and blobs made with the openssl CLI
 * for that key (DER with OAEP SHA-256, AES-128, OAEP SHA-1, PKCS#1 v1.5 by
 * issuer and serial).
 *
 * Contract checked: never crashes, leaks or reads out of bounds; a refusal
 * has its code and a message and leaves the output wiped with length 0;
 * success never claims more than the room given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "kms/cms.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCujiqkCSnPb/ei\n"
    "pL9d1Nnc8Hwat4dHUwJuFzlSrBxbQoZmid9GSvNhsQzTc0LSgKmtqbljWfIvyhxu\n"
    "JuN08NxdHZEoMEJSrTpIvPoetaBJZnm/wZgwECGteKv7WhkRP5L/f6+UPJdhkvKN\n"
    "EHAtnzZ8dxPRtuIWBhqkaaD3Sa/pWWegoaPdjzw1zP5x3aPGNdbx1t3TCl7KSQsU\n"
    "0tHhBqdOQ9INPS93Uw5yDayWLznHArd92mOaVxWndPuRRCqiSf9BMWzpqbYX4Hyd\n"
    "YYhewaAD/ubj/mxDSnX1UoQtLw7mecbEgZwaraj7aT+EST0NDQc5HfLDCztwK7Vc\n"
    "z5nV+v2FAgMBAAECggEAHNLxC6FPvCdbFwppZ08soqU7eRXxSr/UWOWQ26v8Cr3T\n"
    "f78olWzu/6TC32/bCvOgEUNDj7pcmbOgOjhFuxvC58VoIODHMuvUAgriqouHald3\n"
    "p0iKnvUq+oBAtgLMvOJonbQyBCJ1RPGFB/I88+ukja0EIs82Sji70YZ3xB3w5HFP\n"
    "Ltr4lUzHzQqx5xceaMS7VxY/pAzoBZBlBFolWKvy3nVg5hAz14eku8qzUp3RROaP\n"
    "f8rVL27+tUkRz9A/DU5nY1AXNyTej9mmrevzyVIASCKzdzoiAWfUT7g/b7eWYELp\n"
    "V4hu5TWGn0xxaaDHCTteKAWOvBcaMfFuPBzs/RqlwQKBgQDWosp0ch7maJxFAEl/\n"
    "kL7TN2qfv41OZyc3m1MtN0y0q2NSxODBvCvCGHu2tP073YKV4BAEAybVzcTsM6KI\n"
    "+h4fM5PUh5VJ0KqWJm82Y0C0Z36ogUPb5/XVA8wCXQ7S7NpGrIoDCUHCgJODWJmb\n"
    "9ZqzmCfdNJgUAeTr09E7m1l6uQKBgQDQMflDMHT+L4nJ6bl7T6XxzTcMNAaMVL1e\n"
    "+ig4NO6dp+7xOIh6Oj485H0eA/0+JLzqofIvqIADMOMhRpbrMFhs/9xFFiTAkcSH\n"
    "zixUmgxCwUkiwfmx6USAl+e0MzfjOSGddpg1cIG29cVlWmzDWDSx4wOlAwcu+c48\n"
    "CeOERDJDLQKBgQCF5y2TFBc++4hya8lusii6sNnuK5zGiwgmYtqzXMqX9EyUuIrX\n"
    "ksNh5dBYnfVWQc1UH2MefbDete7ixRvjhNcB9DWH48Y5NNsXrYa4UZdudRrJmUty\n"
    "h/YQHLxLxS6YXHeYm8/GMSI7a+ebi8zZRZJr9ML59/Pgl4XvskfYfgSG0QKBgQCW\n"
    "xAmw6U9fn0dV66aBML2ILEb31FkFmHwGYntrsJE3pBv5nSnf8XuOlxwv902Vif8w\n"
    "npQGhSwmo2lneHnj2P+/900ozo9Q0H6Upe4eWewVD2mJ/RR4DOepg9er/Ac1yfKY\n"
    "2AADevTEbJhE/EWU9LQ8OZwzC81Q7F+3xKV46/XGBQKBgQDFXjTbDt/h49ENByhF\n"
    "ICDQesRH66AmXmnA7z5CXjp3q402MHZPB/UFFCKgjUEbq66fJRPZXBicFtNoc+EV\n"
    "bUpJUBIW786ZrrYq4qS8j6hOGrFQ7lbOAVZmP+hUWx4N+kq5BsE2EKNkTPliE5lY\n"
    "GAjaagqq8wtwH7dB2vEAXRbc/A==\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *test_key(void)
{
    static EVP_PKEY *key;
    if (key == NULL) {
        BIO *b = BIO_new_mem_buf(test_key_pem, (int)sizeof(test_key_pem) - 1);
        key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (key == NULL)
            abort();
    }
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zero[64];
    uint8_t out[64];
    size_t len = 1;
    struct km_error err;

    memset(out, 0xaa, sizeof(out));
    km_error_clear(&err);
    int r = kms_cms_open(out, sizeof(out), &len, data, size, test_key(), &err);
    if (r == KM_OK) {
        if (len > sizeof(out))
            abort();
    } else if (err.code != r || err.msg[0] == '\0' || len != 0 ||
               memcmp(out, zero, sizeof(out)) != 0) {
        abort();
    }
    return 0;
}
