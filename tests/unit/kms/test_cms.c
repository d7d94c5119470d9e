/*
 * test_cms.c - CiphertextForRecipient (kms/cms.h) on the committed blobs
 * of tests/data/kms (README.md there): the synthetic blob opens with its
 * key to 00..1f; tampering with the encrypted key or the ciphertext is
 * refused; the two real KMS blobs pass the structure checks but cannot be
 * opened (their key was never published); blobs made here with OpenSSL's
 * CMS_encrypt round-trip (DER and streamed BER) and every other algorithm
 * or shape is refused by name. Also the RSA key pair and its SPKI.
 */
#include "test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kms/cms.h"
#include "common/banned.h"

/* Offsets in synthetic-envelopeddata.ber (openssl asn1parse). */
#define SYN_ENCKEY_OFF 115 /* 256-byte encryptedKey */
#define SYN_IV_OFF     399 /* 16-byte IV */
#define SYN_CT1_OFF    419 /* first ciphertext chunk, 32 bytes */
#define SYN_CT2_OFF    453 /* second chunk, 16 bytes (the padding block) */

static uint8_t *data_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/kms/%s", KM_TEST_DATA_DIR, name);
    return (uint8_t *)test_read_file(path, len);
}

static EVP_PKEY *synthetic_key(void)
{
    size_t len;
    char *pem = (char *)data_file("synthetic-recipient-rsa2048.key.pem", &len);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    CHECK_NOT_NULL(k);
    return k;
}

/* Opens blob into a 64-byte buffer prefilled with 0xaa; on failure checks
 * that nothing was left in it and that the message is set. */
static int open_blob(uint8_t out[64], size_t *len, const uint8_t *blob, size_t blob_len,
                     EVP_PKEY *key, struct km_error *err)
{
    memset(out, 0xaa, 64);
    km_error_clear(err);
    int r = kms_cms_open(out, 64, len, blob, blob_len, key, err);
    if (r != KM_OK) {
        static const uint8_t zero[64];
        CHECK_MEM_EQ(out, zero, 64);
        CHECK_EQ(*len, 0);
        CHECK_EQ(err->code, r);
        CHECK(err->msg[0] != '\0');
    }
    return r;
}

static void test_synthetic(void **state)
{
    (void)state;
    size_t len, n = 99;
    uint8_t *blob = data_file("synthetic-envelopeddata.ber", &len);
    EVP_PKEY *key = synthetic_key();
    uint8_t out[64], want[32];
    struct km_error err;
    for (size_t i = 0; i < 32; i++)
        want[i] = (uint8_t)i;
    CHECK_EQ(len, 479);

    CHECK_OK(open_blob(out, &n, blob, len, key, &err));
    CHECK_EQ(n, 32);
    CHECK_MEM_EQ(out, want, 32);

    /* Exactly the room needed, then too little. */
    uint8_t exact[32];
    CHECK_OK(kms_cms_open(exact, sizeof(exact), &n, blob, len, key, &err));
    CHECK_MEM_EQ(exact, want, 32);
    uint8_t small[16];
    memset(small, 0xaa, sizeof(small));
    CHECK_ERR(kms_cms_open(small, sizeof(small), &n, blob, len, key, &err), KM_ERR_TOO_LARGE);
    CHECK_EQ(small[0] | small[15], 0);
    CHECK_EQ(n, 0);

    /* Trailing bytes and the input limit. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, blob, len);
    longer[len] = 0;
    CHECK_ERR(open_blob(out, &n, longer, len + 1, key, &err), KM_ERR_TRAILING_DATA);
    free(longer);
    uint8_t *huge = calloc(1, KMS_CMS_MAX_INPUT + 1);
    CHECK_ERR(open_blob(out, &n, huge, KMS_CMS_MAX_INPUT + 1, key, &err), KM_ERR_TOO_LARGE);
    free(huge);
    CHECK_ERR(open_blob(out, &n, blob, 0, key, &err), KM_ERR_INVALID);
    CHECK_ERR(open_blob(out, &n, blob, len / 2, key, &err), KM_ERR_INVALID);
    CHECK_ERR(open_blob(out, &n, (const uint8_t *)"hello", 5, key, &err), KM_ERR_INVALID);

    EVP_PKEY_free(key);
    free(blob);
}

static void test_tampered(void **state)
{
    (void)state;
    size_t len, n;
    uint8_t *blob = data_file("synthetic-envelopeddata.ber", &len);
    EVP_PKEY *key = synthetic_key();
    uint8_t out[64];
    struct km_error err;
    /* The offsets are where asn1parse says. */
    CHECK_MEM_EQ(blob + SYN_ENCKEY_OFF - 4, "\x04\x82\x01\x00", 4);
    CHECK_MEM_EQ(blob + SYN_IV_OFF - 2, "\x04\x10", 2);
    CHECK_MEM_EQ(blob + SYN_CT1_OFF - 2, "\x04\x20", 2);
    CHECK_MEM_EQ(blob + SYN_CT2_OFF - 2, "\x04\x10", 2);

    /* The encrypted content key: OAEP decoding fails. */
    static const size_t key_offs[] = {0, 100, 255};
    for (size_t i = 0; i < KM_ARRAY_LEN(key_offs); i++) {
        blob[SYN_ENCKEY_OFF + key_offs[i]] ^= 0x01;
        CHECK_ERR(open_blob(out, &n, blob, len, key, &err), KM_ERR_CRYPTO);
        CHECK_CONTAINS(err.msg, "content key");
        blob[SYN_ENCKEY_OFF + key_offs[i]] ^= 0x01;
    }
    /* The ciphertext: the last block (padding decrypts to garbage) and the
     * byte before it, which turns the pad byte 0x10 into 0x11. */
    static const size_t ct_offs[] = {SYN_CT2_OFF + 15, SYN_CT2_OFF + 7, SYN_CT1_OFF + 31};
    for (size_t i = 0; i < KM_ARRAY_LEN(ct_offs); i++) {
        blob[ct_offs[i]] ^= 0x01;
        CHECK_ERR(open_blob(out, &n, blob, len, key, &err), KM_ERR_CRYPTO);
        CHECK_CONTAINS(err.msg, "content");
        blob[ct_offs[i]] ^= 0x01;
    }
    /* CBC has no integrity: a flipped IV bit flips the same bit of the
     * first plaintext block and goes unnoticed. Whoever relays the reply
     * can do this; the sealed-key feature must not rely on this layer for
     * integrity. */
    blob[SYN_IV_OFF] ^= 0x80;
    CHECK_OK(open_blob(out, &n, blob, len, key, &err));
    CHECK_EQ(out[0], 0x80);
    blob[SYN_IV_OFF] ^= 0x80;

    EVP_PKEY_free(key);
    free(blob);
}

static void test_real_blobs(void **state)
{
    (void)state;
    static const char *const names[] = {"kms-cms-envelopeddata-1.ber",
                                        "kms-cms-envelopeddata-2.ber"};
    static const size_t lens[] = {493, 457};
    EVP_PKEY *key = synthetic_key();
    for (size_t i = 0; i < KM_ARRAY_LEN(names); i++) {
        size_t len, n;
        uint8_t *blob = data_file(names[i], &len);
        uint8_t out[64];
        struct km_error err;
        CHECK_EQ(len, lens[i]);
        /* Parsed, every structure check passed: refused at the key. */
        CHECK_ERR(open_blob(out, &n, blob, len, key, &err), KM_ERR_CRYPTO);
        CHECK_CONTAINS(err.msg, "cannot decrypt the content key");
        free(blob);
    }
    EVP_PKEY_free(key);
}

static void test_wrong_key(void **state)
{
    (void)state;
    size_t len, n;
    uint8_t *blob = data_file("synthetic-envelopeddata.ber", &len);
    EVP_PKEY *other = NULL;
    uint8_t out[64];
    struct km_error err;
    CHECK_OK(kms_rsa_keypair_new(&other));
    CHECK_ERR(open_blob(out, &n, blob, len, other, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "wrong RSA key");
    EVP_PKEY_free(other);

    /* Not an RSA key at all. */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK_ERR(open_blob(out, &n, blob, len, ec, &err), KM_ERR_INVALID);
    EVP_PKEY_free(ec);
    free(blob);
}

/* ---- Blobs made here ------------------------------------------------------------- */

/* A certificate carrying pub and a subjectKeyIdentifier, so CMS can name
 * the recipient by SKI (the enclave itself never has one). */
static X509 *recipient_cert(EVP_PKEY *pub)
{
    EVP_PKEY *signer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *c = X509_new();
    X509V3_CTX ctx;
    CHECK(signer != NULL && c != NULL);
    CHECK(X509_set_version(c, 2) && ASN1_INTEGER_set(X509_get_serialNumber(c), 1));
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)"recipient", -1, -1, 0);
    CHECK(X509_set_issuer_name(c, X509_get_subject_name(c)));
    CHECK(X509_gmtime_adj(X509_getm_notBefore(c), 0) != NULL);
    CHECK(X509_gmtime_adj(X509_getm_notAfter(c), 3600) != NULL);
    CHECK(X509_set_pubkey(c, pub));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    CHECK(ext != NULL && X509_add_ext(c, ext, -1));
    X509_EXTENSION_free(ext);
    CHECK(X509_sign(c, signer, EVP_sha256()));
    EVP_PKEY_free(signer);
    return c;
}

struct blob_spec {
    const EVP_CIPHER *cipher;
    int padding;      /* RSA_PKCS1_OAEP_PADDING or RSA_PKCS1_PADDING */
    const EVP_MD *md; /* OAEP hash and MGF1 hash */
    int recipients;   /* 1 or 2 */
    bool stream;      /* indefinite-length BER like KMS */
    bool other_ctype; /* content type id-ct-TSTInfo instead of id-data */
};

static uint8_t *make_blob(size_t *len, EVP_PKEY *pub, const struct blob_spec *s,
                          const uint8_t *plain, size_t plain_len)
{
    unsigned flags = CMS_BINARY | CMS_PARTIAL | (s->stream ? CMS_STREAM : 0);
    CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, s->cipher, flags);
    X509 *cert = recipient_cert(pub);
    CHECK_NOT_NULL(cms);
    for (int i = 0; i < s->recipients; i++) {
        CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, cert, CMS_KEY_PARAM | CMS_USE_KEYID);
        CHECK_NOT_NULL(ri);
        EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, s->padding) > 0);
        if (s->padding == RSA_PKCS1_OAEP_PADDING) {
            CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, s->md) > 0);
            CHECK(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, s->md) > 0);
        }
    }
    if (s->other_ctype)
        CHECK(CMS_set1_eContentType(cms, OBJ_nid2obj(NID_id_smime_ct_TSTInfo)));
    BIO *in = BIO_new_mem_buf(plain, (int)plain_len);
    BIO *out = BIO_new(BIO_s_mem());
    if (s->stream) {
        CHECK(i2d_CMS_bio_stream(out, cms, in, flags));
    } else {
        CHECK(CMS_final(cms, in, NULL, CMS_BINARY));
        CHECK(i2d_CMS_bio(out, cms));
    }
    char *p = NULL;
    long n = BIO_get_mem_data(out, &p);
    CHECK(n > 0);
    uint8_t *blob = malloc((size_t)n);
    memcpy(blob, p, (size_t)n);
    *len = (size_t)n;
    BIO_free(out);
    BIO_free(in);
    X509_free(cert);
    CMS_ContentInfo_free(cms);
    return blob;
}

static void test_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    uint8_t plain[32], out[64];
    struct km_error err;
    size_t len, n;
    CHECK_OK(kms_rsa_keypair_new(&key));
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (uint8_t)(0xc0 + i);

    for (int stream = 0; stream < 2; stream++) {
        struct blob_spec s = {
            EVP_aes_256_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 1, stream == 1, false};
        uint8_t *blob = make_blob(&len, key, &s, plain, sizeof(plain));
        if (stream)
            CHECK_MEM_EQ(blob, "\x30\x80", 2); /* indefinite length, like KMS */
        CHECK_OK(open_blob(out, &n, blob, len, key, &err));
        CHECK_EQ(n, sizeof(plain));
        CHECK_MEM_EQ(out, plain, sizeof(plain));

        /* And not with another key. */
        EVP_PKEY *other = NULL;
        CHECK_OK(kms_rsa_keypair_new(&other));
        CHECK_ERR(open_blob(out, &n, blob, len, other, &err), KM_ERR_CRYPTO);
        EVP_PKEY_free(other);
        free(blob);
    }
    EVP_PKEY_free(key);
}

static void test_refused_shapes(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    uint8_t plain[32] = {1, 2, 3}, out[64];
    struct km_error err;
    size_t len, n;
    CHECK_OK(kms_rsa_keypair_new(&key));
    const struct {
        struct blob_spec spec;
        int code;
        const char *msg;
    } cases[] = {
        {{EVP_aes_256_cbc(), RSA_PKCS1_PADDING, NULL, 1, false, false},
         KM_ERR_UNSUPPORTED,
         "is not RSAES-OAEP"},
        {{EVP_aes_256_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha1(), 1, false, false},
         KM_ERR_UNSUPPORTED,
         "SHA-256"},
        {{EVP_aes_256_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha384(), 1, true, false},
         KM_ERR_UNSUPPORTED,
         "SHA-256"},
        {{EVP_aes_128_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 1, false, false},
         KM_ERR_UNSUPPORTED,
         "AES-256-CBC"},
        {{EVP_aes_256_ofb(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 1, true, false},
         KM_ERR_UNSUPPORTED,
         "AES-256-CBC"},
        {{EVP_aes_256_gcm(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 1, false, false},
         KM_ERR_UNSUPPORTED,
         "not EnvelopedData"},
        {{EVP_aes_256_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 2, false, false},
         KM_ERR_UNSUPPORTED,
         "2 recipient infos"},
        {{EVP_aes_256_cbc(), RSA_PKCS1_OAEP_PADDING, EVP_sha256(), 1, false, true},
         KM_ERR_UNSUPPORTED,
         "not id-data"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        uint8_t *blob = make_blob(&len, key, &cases[i].spec, plain, sizeof(plain));
        int r = open_blob(out, &n, blob, len, key, &err);
        if (r != cases[i].code || strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: got %d \"%s\", want %d \"...%s...\"", i, r, err.msg, cases[i].code,
                     cases[i].msg);
        free(blob);
    }

    /* Other CMS content types. */
    BIO *in = BIO_new_mem_buf(plain, sizeof(plain));
    CMS_ContentInfo *data = CMS_data_create(in, CMS_BINARY);
    uint8_t *der = NULL;
    int dlen = i2d_CMS_ContentInfo(data, &der);
    CHECK(dlen > 0);
    CHECK_ERR(open_blob(out, &n, der, (size_t)dlen, key, &err), KM_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "not EnvelopedData");
    OPENSSL_free(der);
    CMS_ContentInfo_free(data);
    BIO_free(in);
    EVP_PKEY_free(key);
}

static void test_spki(void **state)
{
    (void)state;
    EVP_PKEY *key = synthetic_key();
    uint8_t spki[KMS_RSA_SPKI_MAX];
    size_t n = 0, want_len;
    uint8_t *want = data_file("synthetic-recipient-rsa2048.spki.der", &want_len);
    CHECK_OK(kms_rsa_spki_der(spki, sizeof(spki), &n, key));
    CHECK_EQ(n, 294);
    CHECK_EQ(want_len, 294);
    CHECK_MEM_EQ(spki, want, 294);
    CHECK_ERR(kms_rsa_spki_der(spki, 293, &n, key), KM_ERR_TOO_LARGE);
    CHECK_EQ(n, 0);
    free(want);
    EVP_PKEY_free(key);

    /* A fresh key: RSA-2048, e = 65537, SPKI that parses back. */
    CHECK_OK(kms_rsa_keypair_new(&key));
    CHECK_EQ(EVP_PKEY_get_bits(key), 2048);
    CHECK_OK(kms_rsa_spki_der(spki, sizeof(spki), &n, key));
    CHECK_EQ(n, 294);
    const unsigned char *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)n);
    CHECK_NOT_NULL(pub);
    CHECK_EQ(EVP_PKEY_eq(pub, key), 1);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);

    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK_ERR(kms_rsa_spki_der(spki, sizeof(spki), &n, ec), KM_ERR_INVALID);
    EVP_PKEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_synthetic), TEST(test_tampered),   TEST(test_real_blobs),
        TEST(test_wrong_key), TEST(test_round_trip), TEST(test_refused_shapes),
        TEST(test_spki),
    };
    return RUN_TESTS("unit.kms.cms", tests);
}
