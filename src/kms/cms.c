/*
 * cms.c - CiphertextForRecipient (cms.h): structure checks, then
 * OpenSSL's CMS decryption with the enclave's RSA key; the key pair and
 * its SubjectPublicKeyInfo.
 *
 * OpenSSL's public API exposes the content type, the recipient infos and
 * the key transport algorithm, but not the content encryption algorithm,
 * so that one is read from the BER with a small TLV walker below.
 */
#include "kms/cms.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/secure.h"
#include "common/banned.h"

#define BER_MAX_DEPTH 16

/* 2.16.840.1.101.3.4.1.42 (id-aes256-CBC), the OID's content bytes. */
static const uint8_t oid_aes256_cbc[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a};

/* ---- A minimal BER reader ------------------------------------------------------ */

struct tlv {
    uint8_t tag;        /* the identifier's first octet */
    const uint8_t *val; /* contents (without the end-of-contents octets) */
    size_t len;
    size_t total; /* identifier, length, contents and end-of-contents */
};

/* Reads one element at p[0..n). Indefinite lengths (constructed only) are
 * resolved by walking the children to the end-of-contents octets. */
static bool ber_read(struct tlv *t, const uint8_t *p, size_t n, int depth)
{
    size_t i = 1;
    if (depth > BER_MAX_DEPTH || n < 2)
        return false;
    t->tag = p[0];
    if ((p[0] & 0x1f) == 0x1f) { /* high tag number: base-128 continuation */
        while (i < n && (p[i] & 0x80) && i < 6)
            i++;
        if (i >= n || i >= 6)
            return false;
        i++;
    }
    if (i >= n)
        return false;
    uint8_t l = p[i++];
    if (l == 0x80) {
        if (!(t->tag & 0x20))
            return false;
        size_t off = i;
        for (;;) {
            if (n - off >= 2 && p[off] == 0 && p[off + 1] == 0)
                break;
            struct tlv c;
            if (off >= n || !ber_read(&c, p + off, n - off, depth + 1))
                return false;
            off += c.total;
        }
        t->val = p + i;
        t->len = off - i;
        t->total = off + 2;
        return true;
    }
    size_t len = 0;
    if (l < 0x80) {
        len = l;
    } else {
        size_t nb = l & 0x7fu;
        if (nb == 0 || nb > 4 || n - i < nb)
            return false;
        for (size_t k = 0; k < nb; k++)
            len = len << 8 | p[i++];
    }
    if (len > n - i)
        return false;
    t->val = p + i;
    t->len = len;
    t->total = i + len;
    return true;
}

/* Reads the element at *pos of the container c and advances *pos. */
static bool ber_next(struct tlv *t, const struct tlv *c, size_t *pos, int depth)
{
    if (*pos >= c->len || !ber_read(t, c->val + *pos, c->len - *pos, depth))
        return false;
    *pos += t->total;
    return true;
}

/*
 * ContentInfo { contentType, [0] EnvelopedData { version, [0]
 * originatorInfo OPTIONAL, recipientInfos SET, EncryptedContentInfo {
 * contentType, AlgorithmIdentifier { algorithm, IV }, ... } } }:
 * true when the content is encrypted with AES-256-CBC and a 16-byte IV.
 */
static bool content_is_aes256_cbc(const uint8_t *ber, size_t n)
{
    struct tlv ci, oid, ctx, ed, el, eci, alg, aoid, iv;
    size_t pos = 0;
    if (!ber_read(&ci, ber, n, 0) || ci.tag != 0x30)
        return false;
    if (!ber_next(&oid, &ci, &pos, 1) || oid.tag != 0x06 || !ber_next(&ctx, &ci, &pos, 1) ||
        ctx.tag != 0xa0)
        return false;
    pos = 0;
    if (!ber_next(&ed, &ctx, &pos, 2) || ed.tag != 0x30)
        return false;
    pos = 0;
    if (!ber_next(&el, &ed, &pos, 3) || el.tag != 0x02) /* version */
        return false;
    if (!ber_next(&el, &ed, &pos, 3))
        return false;
    if (el.tag == 0xa0 && !ber_next(&el, &ed, &pos, 3)) /* originatorInfo */
        return false;
    if (el.tag != 0x31 || !ber_next(&eci, &ed, &pos, 3) || eci.tag != 0x30)
        return false;
    pos = 0;
    if (!ber_next(&el, &eci, &pos, 4) || el.tag != 0x06 || !ber_next(&alg, &eci, &pos, 4) ||
        alg.tag != 0x30)
        return false;
    pos = 0;
    if (!ber_next(&aoid, &alg, &pos, 5) || aoid.tag != 0x06 || !ber_next(&iv, &alg, &pos, 5) ||
        iv.tag != 0x04 || iv.len != 16 || pos != alg.len)
        return false;
    return aoid.len == sizeof(oid_aes256_cbc) &&
           memcmp(aoid.val, oid_aes256_cbc, sizeof(oid_aes256_cbc)) == 0;
}

/* ---- Checks with OpenSSL's view of the structure --------------------------------- */

static int algor_nid(const X509_ALGOR *a)
{
    const ASN1_OBJECT *obj = NULL;
    if (a == NULL)
        return NID_undef;
    X509_ALGOR_get0(&obj, NULL, NULL, a);
    return obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
}

/* RSAES-OAEP-params with hashAlgorithm SHA-256, maskGenAlgorithm MGF1
 * with SHA-256 and the default (empty) label: KMS's RSAES_OAEP_SHA_256. */
static bool oaep_is_sha256(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj = NULL;
    int ptype = 0;
    const void *pval = NULL;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE || pval == NULL)
        return false; /* absent parameters mean SHA-1 */
    const ASN1_STRING *seq = pval;
    const unsigned char *p = ASN1_STRING_get0_data(seq);
    RSA_OAEP_PARAMS *op = d2i_RSA_OAEP_PARAMS(NULL, &p, ASN1_STRING_length(seq));
    bool ok = op != NULL && algor_nid(op->hashFunc) == NID_sha256 &&
              algor_nid(op->maskGenFunc) == NID_mgf1 && op->pSourceFunc == NULL;
    X509_ALGOR *mgf_hash = NULL;
    if (ok) {
        X509_ALGOR_get0(NULL, &ptype, &pval, op->maskGenFunc);
        ok = ptype == V_ASN1_SEQUENCE && pval != NULL;
    }
    if (ok) {
        seq = pval;
        p = ASN1_STRING_get0_data(seq);
        mgf_hash = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(seq));
        ok = algor_nid(mgf_hash) == NID_sha256;
    }
    X509_ALGOR_free(mgf_hash);
    RSA_OAEP_PARAMS_free(op);
    return ok;
}

static int check_structure(CMS_ContentInfo *cms, const uint8_t *ber, size_t ber_len,
                           struct km_error *err)
{
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0, "cms: content type is not EnvelopedData");
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    if (ris == NULL || sk_CMS_RecipientInfo_num(ris) != 1)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cms: %d recipient infos (exactly one expected)",
                            ris != NULL ? sk_CMS_RecipientInfo_num(ris) : 0);
    CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, 0);
    if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cms: the recipient info is not a KeyTransRecipientInfo");
    X509_ALGOR *kalg = NULL;
    if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &kalg) != 1 || kalg == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "cms: no key encryption algorithm");
    int knid = algor_nid(kalg);
    if (knid != NID_rsaesOaep)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cms: key encryption algorithm %s is not RSAES-OAEP",
                            knid != NID_undef ? OBJ_nid2sn(knid) : "(unknown)");
    if (!oaep_is_sha256(kalg))
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cms: RSAES-OAEP parameters are not SHA-256 / MGF1-SHA-256 with the "
                            "default label");
    const ASN1_OBJECT *ctype = CMS_get0_eContentType(cms);
    if (ctype == NULL || OBJ_obj2nid(ctype) != NID_pkcs7_data)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0, "cms: encrypted content is not id-data");
    if (!content_is_aes256_cbc(ber, ber_len))
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "cms: content encryption is not AES-256-CBC with a 16-byte IV");
    return KM_OK;
}

static const char *ossl_reason(void)
{
    const char *s = ERR_reason_error_string(ERR_peek_last_error());
    return s != NULL ? s : "unknown reason";
}

/* ---- Opening ------------------------------------------------------------------------ */

int kms_cms_open(uint8_t out[], size_t cap, size_t *len, const uint8_t *ber, size_t ber_len,
                 EVP_PKEY *rsa, struct km_error *err)
{
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL, *plain = NULL;
    int r = KM_OK;

    *len = 0;
    if (rsa == NULL || (out == NULL && cap > 0) || (ber == NULL && ber_len > 0))
        KM_BUG("kms_cms_open: NULL argument");
    ERR_clear_error();
    if (ber_len > KMS_CMS_MAX_INPUT) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "cms: input of %zu bytes (limit %u)", ber_len,
                         KMS_CMS_MAX_INPUT);
        goto out;
    }
    if (ber_len == 0) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "cms: empty input");
        goto out;
    }
    if (EVP_PKEY_get_base_id(rsa) != EVP_PKEY_RSA) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "cms: the recipient key is not RSA");
        goto out;
    }
    in = BIO_new_mem_buf(ber, (int)ber_len);
    plain = BIO_new(BIO_s_secmem()); /* the plaintext key: cleared when freed */
    if (in == NULL || plain == NULL) {
        r = km_error_set(err, KM_ERR_NOMEM, 0, "cms: out of memory");
        goto out;
    }
    cms = d2i_CMS_bio(in, NULL);
    if (cms == NULL) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "cms: not a BER CMS ContentInfo (%s)",
                         ossl_reason());
        goto out;
    }
    /* d2i_CMS_bio may read past the end of the object: measure it. */
    struct tlv whole;
    if (!ber_read(&whole, ber, ber_len, 0)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "cms: malformed BER");
        goto out;
    }
    if (whole.total != ber_len) {
        r = km_error_set(err, KM_ERR_TRAILING_DATA, 0, "cms: %zu bytes after the ContentInfo",
                         ber_len - whole.total);
        goto out;
    }
    r = check_structure(cms, ber, ber_len, err);
    if (r != KM_OK)
        goto out;
    /*
     * CMS_DEBUG_DECRYPT turns off OpenSSL's MMA countermeasure (a random
     * content key when the key transport fails, so a wrong key looks like a
     * padding error). That countermeasure targets PKCS#1 v1.5; only
     * RSAES-OAEP reaches this point, whose decoding reports one uniform
     * error, and a clear "wrong key" beats a 1-in-256 garbage plaintext.
     * The first call only records the flags (CMS_decrypt(3)).
     */
    const unsigned int flags = CMS_BINARY | CMS_DEBUG_DECRYPT;
    if (CMS_decrypt(cms, NULL, NULL, NULL, NULL, flags) != 1 ||
        CMS_decrypt_set1_pkey(cms, rsa, NULL) != 1) {
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "cms: cannot decrypt the content key (wrong RSA key or tampered "
                         "encryptedKey: %s)",
                         ossl_reason());
        goto out;
    }
    if (CMS_decrypt(cms, NULL, NULL, NULL, plain, flags) != 1) {
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "cms: cannot decrypt the content (tampered ciphertext or IV: %s)",
                         ossl_reason());
        goto out;
    }
    char *data = NULL;
    long n = BIO_get_mem_data(plain, &data);
    if (n < 0 || (size_t)n > cap) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "cms: content of %ld bytes (room for %zu)", n,
                         cap);
        goto out;
    }
    if (n > 0)
        memcpy(out, data, (size_t)n);
    *len = (size_t)n;
out:
    if (r != KM_OK && cap > 0)
        secure_wipe(out, cap);
    BIO_free(plain);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return r;
}

/* ---- The ephemeral key pair -------------------------------------------------------- */

int kms_rsa_keypair_new(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)KMS_RSA_BITS);
    ERR_clear_error();
    return *out != NULL ? KM_OK : KM_ERR_CRYPTO;
}

int kms_rsa_spki_der(uint8_t out[], size_t cap, size_t *len, const EVP_PKEY *key)
{
    *len = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return KM_ERR_INVALID;
    int n = i2d_PUBKEY(key, NULL);
    if (n <= 0) {
        ERR_clear_error();
        return KM_ERR_CRYPTO;
    }
    if ((size_t)n > cap)
        return KM_ERR_TOO_LARGE;
    unsigned char *p = out;
    if (i2d_PUBKEY(key, &p) != n) {
        ERR_clear_error();
        return KM_ERR_CRYPTO;
    }
    *len = (size_t)n;
    return KM_OK;
}
