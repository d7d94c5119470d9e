/*
 * dev.c - the development attestation provider and its CA
 * (docs/ATTESTATION.md "Development attestation").
 *
 * A document is built exactly like the NSM's: a COSE_Sign1 array
 * [h'a1013822', {}, payload, signature] whose payload map holds module_id,
 * digest "SHA384", timestamp, pcrs 0..15, certificate, cabundle [root,
 * intermediate], public_key, user_data and nonce (CBOR null when not
 * provided). Like the NSM, each document gets a fresh P-384 leaf key and
 * certificate (valid 3 hours) issued by the intermediate; the leaf signs
 * the Sig_structure with ES384.
 *
 * PCR0 is the SHA-384 of the enclave binary; PCR1 and PCR2 (kernel and
 * application on Nitro) are zero here, so only PCR0 identifies a build.
 */
#include "attest/provider.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/cbor.h"
#include "attest/provider_impl.h"
#include "common/clock.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define DEV_PCR_COUNT       16
#define DEV_LEAF_LIFETIME_S (3 * 3600)
#define DEV_ROOT_DAYS       (20 * 365)
#define DEV_INTERM_DAYS     (5 * 365)

static const uint8_t cose_es384_protected[] = {0xa1, 0x01, 0x38, 0x22};

struct dev_provider {
    struct attest_provider base;
    pthread_mutex_t lock; /* the intermediate key signs one leaf at a time */
    EVP_PKEY *interm_key;
    X509 *interm;
    uint8_t *root_der;
    size_t root_der_len;
    uint8_t *interm_der;
    size_t interm_der_len;
    char module_id[ATTEST_MODULE_ID_MAX + 1];
};

/* ---- Certificates ------------------------------------------------------------ */

static EVP_PKEY *p384_generate(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return KM_ERR_CRYPTO;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? KM_OK : KM_ERR_CRYPTO;
}

static int set_name(X509_NAME *name, const char *cn)
{
    static const char *const fixed[][2] = {{"C", "US"}, {"O", "KeyMeld"}, {"OU", "development"}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (!X509_NAME_add_entry_by_txt(name, fixed[i][0], MBSTRING_ASC,
                                        (const unsigned char *)fixed[i][1], -1, -1, 0))
            return KM_ERR_CRYPTO;
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
        return KM_ERR_CRYPTO;
    return KM_OK;
}

struct cert_spec {
    const char *cn;
    bool ca;
    long not_before_offset; /* seconds from now */
    long lifetime;          /* seconds */
};

/* Issues a certificate for key, signed by issuer_key (self-signed when
 * issuer is NULL). */
static X509 *issue(const struct cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *c = X509_new();
    BIGNUM *serial = BN_new();
    int r = c != NULL && serial != NULL ? KM_OK : KM_ERR_NOMEM;
    if (r == KM_OK && (!X509_set_version(c, 2) || !BN_rand(serial, 64, BN_RAND_TOP_ONE, 0) ||
                       BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(c)) == NULL))
        r = KM_ERR_CRYPTO;
    if (r == KM_OK)
        r = set_name(X509_get_subject_name(c), spec->cn);
    if (r == KM_OK && !X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer)
                                                              : X509_get_subject_name(c)))
        r = KM_ERR_CRYPTO;
    if (r == KM_OK &&
        (X509_gmtime_adj(X509_getm_notBefore(c), spec->not_before_offset) == NULL ||
         X509_gmtime_adj(X509_getm_notAfter(c), spec->not_before_offset + spec->lifetime) == NULL ||
         !X509_set_pubkey(c, key)))
        r = KM_ERR_CRYPTO;
    X509 *iss = issuer != NULL ? issuer : c;
    if (r == KM_OK)
        r = add_ext(c, iss, NID_basic_constraints,
                    spec->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (r == KM_OK)
        r = add_ext(c, iss, NID_key_usage,
                    spec->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (r == KM_OK)
        r = add_ext(c, iss, NID_subject_key_identifier, "hash");
    if (r == KM_OK && issuer != NULL)
        r = add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
    if (r == KM_OK && !X509_sign(c, issuer_key != NULL ? issuer_key : key, EVP_sha384()))
        r = KM_ERR_CRYPTO;
    BN_free(serial);
    if (r != KM_OK) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static int cert_der(uint8_t **out, size_t *out_len, X509 *c)
{
    int n = i2d_X509(c, NULL);
    if (n <= 0)
        return KM_ERR_CRYPTO;
    *out = xmalloc((size_t)n);
    uint8_t *p = *out;
    i2d_X509(c, &p);
    *out_len = (size_t)n;
    return KM_OK;
}

/* ---- The CA directory ------------------------------------------------------------- */

static void ca_path(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

static int write_pem(const char *dir, const char *file, X509 *cert, EVP_PKEY *key,
                     struct km_error *err)
{
    char path[4096];
    ca_path(path, sizeof(path), dir, file);
    mode_t old = umask(key != NULL ? 0077 : 0022);
    FILE *f = fopen(path, "wx");
    umask(old);
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "cannot create %s: %s", path, strerror(errno));
    int ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_X509(f, cert);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return km_error_set(err, KM_ERR_IO, errno, "cannot write %s", path);
    return KM_OK;
}

static X509 *read_cert(const char *dir, const char *file)
{
    char path[4096];
    ca_path(path, sizeof(path), dir, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return c;
}

static EVP_PKEY *read_key(const char *dir, const char *file)
{
    char path[4096];
    ca_path(path, sizeof(path), dir, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static int count_present(const char *dir)
{
    static const char *const files[] = {ATTEST_DEV_ROOT_CERT, ATTEST_DEV_ROOT_KEY,
                                        ATTEST_DEV_INTERM_CERT, ATTEST_DEV_INTERM_KEY};
    int n = 0;
    for (size_t i = 0; i < 4; i++) {
        char path[4096];
        struct stat st;
        ca_path(path, sizeof(path), dir, files[i]);
        if (stat(path, &st) == 0)
            n++;
    }
    return n;
}

static int ca_create(const char *dir, struct km_error *err)
{
    static const struct cert_spec root_spec = {"KeyMeld development root", true, -60,
                                               DEV_ROOT_DAYS * 86400L};
    static const struct cert_spec interm_spec = {"KeyMeld development intermediate", true, -60,
                                                 DEV_INTERM_DAYS * 86400L};
    EVP_PKEY *rk = p384_generate();
    EVP_PKEY *ik = p384_generate();
    X509 *root = rk != NULL ? issue(&root_spec, rk, NULL, NULL) : NULL;
    X509 *interm = root != NULL && ik != NULL ? issue(&interm_spec, ik, root, rk) : NULL;
    int r = interm != NULL
                ? KM_OK
                : km_error_set(err, KM_ERR_CRYPTO, 0,
                               "cannot create the development CA's keys and certificates");
    if (r == KM_OK)
        r = write_pem(dir, ATTEST_DEV_ROOT_KEY, NULL, rk, err);
    if (r == KM_OK)
        r = write_pem(dir, ATTEST_DEV_INTERM_KEY, NULL, ik, err);
    if (r == KM_OK)
        r = write_pem(dir, ATTEST_DEV_INTERM_CERT, interm, NULL, err);
    /* The root certificate last: its presence marks a complete CA. */
    if (r == KM_OK)
        r = write_pem(dir, ATTEST_DEV_ROOT_CERT, root, NULL, err);
    X509_free(interm);
    X509_free(root);
    EVP_PKEY_free(ik);
    EVP_PKEY_free(rk);
    return r;
}

int attest_dev_ca_init(const char *dir, bool *created, struct km_error *err)
{
    *created = false;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return km_error_set(err, KM_ERR_IO, errno, "cannot create %s: %s", dir, strerror(errno));
    int n = count_present(dir);
    if (n == 4) {
        X509 *c = read_cert(dir, ATTEST_DEV_ROOT_CERT);
        EVP_PKEY *k = read_key(dir, ATTEST_DEV_INTERM_KEY);
        bool ok = c != NULL && k != NULL;
        X509_free(c);
        EVP_PKEY_free(k);
        if (!ok)
            return km_error_set(err, KM_ERR_STATE, 0,
                                "the development CA in %s does not load: remove the directory to "
                                "create a new one (clients must then trust the new root)",
                                dir);
        return KM_OK;
    }
    if (n != 0)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "%s holds a partial development CA (%d of 4 files): remove them to "
                            "create a new one",
                            dir, n);
    int r = ca_create(dir, err);
    if (r == KM_OK)
        *created = true;
    return r;
}

/* ---- Documents ---------------------------------------------------------------------- */

static int put_bytes_or_null(struct buf *b, const char *key, const uint8_t *p, size_t len)
{
    int r = cbor_put_text(b, key);
    if (r != KM_OK)
        return r;
    return p != NULL ? cbor_put_bytes(b, p, len) : cbor_put_null(b);
}

static int put_pcrs(struct buf *b, const uint8_t pcr0[ATTEST_PCR_LEN])
{
    static const uint8_t zero[ATTEST_PCR_LEN];
    int r = cbor_put_text(b, "pcrs");
    if (r == KM_OK)
        r = cbor_put_map(b, DEV_PCR_COUNT);
    for (unsigned i = 0; r == KM_OK && i < DEV_PCR_COUNT; i++) {
        r = cbor_put_uint(b, i);
        if (r == KM_OK)
            r = cbor_put_bytes(b, i == 0 ? pcr0 : zero, ATTEST_PCR_LEN);
    }
    return r;
}

static int build_payload(struct buf *b, const struct dev_provider *d, const uint8_t *leaf_der,
                         size_t leaf_len, const struct attest_request *req, uint64_t now_ms)
{
    int r = cbor_put_map(b, 9);
    if (r == KM_OK)
        r = cbor_put_text(b, "module_id");
    if (r == KM_OK)
        r = cbor_put_text(b, d->module_id);
    if (r == KM_OK)
        r = cbor_put_text(b, "digest");
    if (r == KM_OK)
        r = cbor_put_text(b, "SHA384");
    if (r == KM_OK)
        r = cbor_put_text(b, "timestamp");
    if (r == KM_OK)
        r = cbor_put_uint(b, now_ms);
    if (r == KM_OK)
        r = put_pcrs(b, d->base.pcr0);
    if (r == KM_OK)
        r = put_bytes_or_null(b, "certificate", leaf_der, leaf_len);
    if (r == KM_OK)
        r = cbor_put_text(b, "cabundle");
    if (r == KM_OK)
        r = cbor_put_array(b, 2);
    if (r == KM_OK)
        r = cbor_put_bytes(b, d->root_der, d->root_der_len);
    if (r == KM_OK)
        r = cbor_put_bytes(b, d->interm_der, d->interm_der_len);
    if (r == KM_OK)
        r = put_bytes_or_null(b, "public_key", req->public_key, req->public_key_len);
    if (r == KM_OK)
        r = put_bytes_or_null(b, "user_data", req->user_data, req->user_data_len);
    if (r == KM_OK)
        r = put_bytes_or_null(b, "nonce", req->nonce, req->nonce_len);
    return r;
}

/* ES384 over the Sig_structure: the raw r || s form COSE uses. */
static int cose_sign(uint8_t sig[ATTEST_SIGNATURE_LEN], EVP_PKEY *key, const uint8_t *payload,
                     size_t payload_len)
{
    struct buf tbs;
    buf_init(&tbs, ATTEST_DOC_MAX_LEN);
    int r = cbor_put_array(&tbs, 4);
    if (r == KM_OK)
        r = cbor_put_text(&tbs, "Signature1");
    if (r == KM_OK)
        r = cbor_put_bytes(&tbs, cose_es384_protected, sizeof(cose_es384_protected));
    if (r == KM_OK)
        r = cbor_put_bytes(&tbs, NULL, 0);
    if (r == KM_OK)
        r = cbor_put_bytes(&tbs, payload, payload_len);
    uint8_t der[160];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (r == KM_OK && (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
                       EVP_DigestSign(md, der, &der_len, buf_peek(&tbs), buf_len(&tbs)) != 1))
        r = KM_ERR_CRYPTO;
    EVP_MD_CTX_free(md);
    buf_release(&tbs);
    if (r != KM_OK)
        return r;
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (es == NULL)
        return KM_ERR_CRYPTO;
    const BIGNUM *br, *bs;
    ECDSA_SIG_get0(es, &br, &bs);
    if (BN_bn2binpad(br, sig, 48) != 48 || BN_bn2binpad(bs, sig + 48, 48) != 48)
        r = KM_ERR_CRYPTO;
    ECDSA_SIG_free(es);
    return r;
}

static int encode_cose(uint8_t **doc, size_t *doc_len, const struct buf *payload,
                       const uint8_t sig[ATTEST_SIGNATURE_LEN])
{
    struct buf out;
    buf_init(&out, ATTEST_DOC_MAX_LEN);
    int r = cbor_put_array(&out, 4);
    if (r == KM_OK)
        r = cbor_put_bytes(&out, cose_es384_protected, sizeof(cose_es384_protected));
    if (r == KM_OK)
        r = cbor_put_map(&out, 0);
    if (r == KM_OK)
        r = cbor_put_bytes(&out, buf_peek(payload), buf_len(payload));
    if (r == KM_OK)
        r = cbor_put_bytes(&out, sig, ATTEST_SIGNATURE_LEN);
    if (r == KM_OK) {
        *doc_len = buf_len(&out);
        *doc = xmalloc(*doc_len);
        memcpy(*doc, buf_peek(&out), *doc_len);
    }
    buf_release(&out);
    return r;
}

static X509 *issue_leaf(struct dev_provider *d, EVP_PKEY *leaf_key)
{
    struct cert_spec spec = {d->module_id, false, -60, DEV_LEAF_LIFETIME_S};
    pthread_mutex_lock(&d->lock);
    X509 *leaf = issue(&spec, leaf_key, d->interm, d->interm_key);
    pthread_mutex_unlock(&d->lock);
    return leaf;
}

static int dev_attest(struct attest_provider *p, uint8_t **doc, size_t *doc_len,
                      const struct attest_request *req, struct km_error *err)
{
    struct dev_provider *d = (struct dev_provider *)p;
    EVP_PKEY *leaf_key = p384_generate();
    X509 *leaf = leaf_key != NULL ? issue_leaf(d, leaf_key) : NULL;
    uint8_t *leaf_der = NULL;
    size_t leaf_len = 0;
    int r = leaf != NULL ? cert_der(&leaf_der, &leaf_len, leaf) : KM_ERR_CRYPTO;
    struct buf payload;
    buf_init(&payload, ATTEST_DOC_MAX_LEN);
    uint64_t now_ms = (uint64_t)time(NULL) * 1000u;
    if (r == KM_OK)
        r = build_payload(&payload, d, leaf_der, leaf_len, req, now_ms);
    uint8_t sig[ATTEST_SIGNATURE_LEN];
    if (r == KM_OK)
        r = cose_sign(sig, leaf_key, buf_peek(&payload), buf_len(&payload));
    if (r == KM_OK)
        r = encode_cose(doc, doc_len, &payload, sig);
    buf_release(&payload);
    free(leaf_der);
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    if (r != KM_OK)
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "cannot make a development attestation document (%s)", km_strerror(r));
    return KM_OK;
}

static void dev_free(struct attest_provider *p)
{
    struct dev_provider *d = (struct dev_provider *)p;
    EVP_PKEY_free(d->interm_key);
    X509_free(d->interm);
    free(d->root_der);
    free(d->interm_der);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static const struct attest_provider_ops dev_ops = {"development", dev_attest, dev_free};

int attest_dev_new(struct attest_provider **out, const char *ca_dir,
                   const uint8_t pcr0[ATTEST_PCR_LEN], const char *module_id, struct km_error *err)
{
    *out = NULL;
    struct dev_provider *d = xcalloc(1, sizeof(*d));
    d->base.ops = &dev_ops;
    pthread_mutex_init(&d->lock, NULL);
    memcpy(d->base.pcr0, pcr0, ATTEST_PCR_LEN);
    snprintf(d->module_id, sizeof(d->module_id), "%s", module_id);
    X509 *root = read_cert(ca_dir, ATTEST_DEV_ROOT_CERT);
    d->interm = read_cert(ca_dir, ATTEST_DEV_INTERM_CERT);
    d->interm_key = read_key(ca_dir, ATTEST_DEV_INTERM_KEY);
    int r = KM_OK;
    if (root == NULL || d->interm == NULL || d->interm_key == NULL)
        r = km_error_set(err, KM_ERR_IO, 0,
                         "no usable development CA in %s (%s, %s, %s): create one with `keymeld "
                         "dev-ca init %s`",
                         ca_dir, ATTEST_DEV_ROOT_CERT, ATTEST_DEV_INTERM_CERT,
                         ATTEST_DEV_INTERM_KEY, ca_dir);
    if (r == KM_OK)
        r = cert_der(&d->root_der, &d->root_der_len, root);
    if (r == KM_OK)
        r = cert_der(&d->interm_der, &d->interm_der_len, d->interm);
    X509_free(root);
    if (r != KM_OK) {
        dev_free(&d->base);
        return r == KM_ERR_IO ? r : km_error_set(err, r, 0, "cannot load the development CA");
    }
    *out = &d->base;
    return KM_OK;
}

int attest_dev_measure(uint8_t out[ATTEST_PCR_LEN], const char *path, struct km_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "cannot read %s to measure it: %s", path,
                            strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int r = md != NULL && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 ? KM_OK : KM_ERR_CRYPTO;
    uint8_t chunk[65536];
    size_t n;
    while (r == KM_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (EVP_DigestUpdate(md, chunk, n) != 1)
            r = KM_ERR_CRYPTO;
    if (r == KM_OK && ferror(f))
        r = km_error_set(err, KM_ERR_IO, errno, "cannot read %s to measure it", path);
    unsigned int len = 0;
    if (r == KM_OK && EVP_DigestFinal_ex(md, out, &len) != 1)
        r = KM_ERR_CRYPTO;
    EVP_MD_CTX_free(md);
    fclose(f);
    if (r == KM_ERR_CRYPTO)
        return km_error_set(err, r, 0, "SHA-384 of %s failed", path);
    return r;
}
