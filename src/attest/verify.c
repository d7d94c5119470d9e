/*
 * verify.c - attestation document verification with OpenSSL 3 (verify.h).
 *
 * Every OpenSSL object is owned by one function and released at its out:
 * label; the thread's OpenSSL error queue is emptied before returning so a
 * refused document leaves nothing behind for unrelated code to trip over.
 */
#include "attest/verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/hex.h"
#include "common/banned.h"

/* Documents may be stamped at most this far after the verification time
 * (clock skew between the enclave host and the verifier). */
#define ATTEST_FUTURE_SKEW_SECS 300
/* 9999-12-31T23:59:59Z: the last instant an X.509 time can express. */
#define ATTEST_MAX_UNIX 253402300799u

const char *attest_check_name(enum attest_check c)
{
    switch (c) {
    case ATTEST_CHECK_NONE:
        return "ok";
    case ATTEST_CHECK_DECODE:
        return "decode";
    case ATTEST_CHECK_SIGNATURE:
        return "signature";
    case ATTEST_CHECK_ROOT:
        return "root";
    case ATTEST_CHECK_CHAIN:
        return "chain";
    case ATTEST_CHECK_VALIDITY:
        return "validity";
    case ATTEST_CHECK_FRESHNESS:
        return "freshness";
    case ATTEST_CHECK_DEBUG:
        return "debug";
    case ATTEST_CHECK_PCRS:
        return "pcrs";
    case ATTEST_CHECK_PUBLIC_KEY:
        return "public_key";
    case ATTEST_CHECK_NONCE:
        return "nonce";
    }
    return "unknown";
}

/* Hex of the first bytes of p, with "..." when cut: for messages. */
static const char *short_hex(char out[24], const uint8_t *p, size_t n)
{
    size_t k = n < 8 ? n : 8;
    hex_encode(out, 17, p, k);
    if (k < n)
        memcpy(out + 2 * k, "...", 4);
    return out;
}

/* "2022-09-15T17:43:28Z" */
static const char *fmt_unix(char out[32], uint64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t > ATTEST_MAX_UNIX || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%" PRIu64, t);
    return out;
}

static const char *fmt_asn1_time(char out[32], const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "?");
    return out;
}

/* The certificate's CN, printable ASCII only and cut (it comes from the
 * document). */
static const char *cert_cn(char out[65], X509 *x)
{
    char cn[256];
    int n = -1;
    size_t k = 0;

    if (x != NULL)
        n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    for (int i = 0; i < n && k < 64; i++)
        out[k++] = (cn[i] >= 0x20 && cn[i] < 0x7f) ? cn[i] : '?';
    out[k] = '\0';
    if (k == 0)
        snprintf(out, 65, "?");
    return out;
}

/* Parses DER that must be exactly one certificate. */
static X509 *der_to_x509(const uint8_t *p, size_t len)
{
    const unsigned char *q = p;
    X509 *x;

    if (len == 0 || len > ATTEST_CERT_MAX_LEN * 64u)
        return NULL;
    x = d2i_X509(NULL, &q, (long)len);
    if (x != NULL && q != p + len) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static int check_signature(const struct attest_doc *d, X509 *leaf, struct km_error *err)
{
    EVP_PKEY *pk = X509_get0_pubkey(leaf); /* borrowed */
    EVP_PKEY_CTX *pctx = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    uint8_t digest[48];
    char group[64];
    size_t glen = 0;
    int derlen, rc = KM_ERR_CRYPTO;

    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) != 1 ||
        strcmp(group, SN_secp384r1) != 0) {
        km_error_set(err, KM_ERR_CRYPTO, 0,
                     "signature: the leaf certificate's key is not an EC P-384 key");
        goto out;
    }
    r = BN_bin2bn(d->signature, ATTEST_SIGNATURE_LEN / 2, NULL);
    s = BN_bin2bn(d->signature + ATTEST_SIGNATURE_LEN / 2, ATTEST_SIGNATURE_LEN / 2, NULL);
    es = ECDSA_SIG_new();
    if (r == NULL || s == NULL || es == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        rc = km_error_set(err, KM_ERR_NOMEM, 0, "signature: out of memory");
        goto out;
    }
    r = s = NULL; /* owned by es now */
    derlen = i2d_ECDSA_SIG(es, &der);
    if (derlen <= 0) {
        rc = km_error_set(err, KM_ERR_NOMEM, 0, "signature: cannot encode the signature");
        goto out;
    }
    attest_doc_sig_digest(d, digest);
    pctx = EVP_PKEY_CTX_new(pk, NULL);
    if (pctx == NULL || EVP_PKEY_verify_init(pctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha384()) != 1) {
        rc = km_error_set(err, KM_ERR_NOMEM, 0, "signature: cannot set up ES384 verification");
        goto out;
    }
    if (EVP_PKEY_verify(pctx, der, (size_t)derlen, digest, sizeof(digest)) != 1) {
        km_error_set(err, KM_ERR_CRYPTO, 0,
                     "signature: the ES384 signature over the COSE Sig_structure does not "
                     "verify with the leaf certificate's key");
        goto out;
    }
    rc = KM_OK;
out:
    EVP_PKEY_CTX_free(pctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return rc;
}

static int check_root(const struct attest_doc *d, const struct attest_verify_opts *opts,
                      struct km_error *err)
{
    const struct attest_bytes *c = &d->cabundle[0];
    uint8_t fp[32];
    unsigned int fplen = 0;
    char hex[65];

    if (d->cabundle_len > 0 && c->len == opts->root_der_len &&
        memcmp(c->data, opts->root_der, c->len) == 0)
        return KM_OK;
    if (d->cabundle_len > 0 && EVP_Digest(c->data, c->len, fp, &fplen, EVP_sha256(), NULL) == 1 &&
        fplen == sizeof(fp))
        hex_encode(hex, sizeof(hex), fp, sizeof(fp));
    else
        snprintf(hex, sizeof(hex), "?");
    return km_error_set(err, KM_ERR_CRYPTO, 0,
                        "root: cabundle[0] is not the pinned root certificate (its SHA-256 is "
                        "%.16s...)",
                        hex);
}

static bool is_time_error(int e)
{
    return e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID ||
           e == X509_V_ERR_CRL_HAS_EXPIRED || e == X509_V_ERR_CRL_NOT_YET_VALID;
}

/* RFC 5280 4.1.2.5: a certificate is valid from notBefore through notAfter
 * inclusive; OpenSSL treats the notAfter second itself as expired. Accept
 * exactly that case and nothing else. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    X509 *cur;
    const X509_VERIFY_PARAM *param;

    if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_CERT_HAS_EXPIRED)
        return ok;
    cur = X509_STORE_CTX_get_current_cert(ctx);
    param = X509_STORE_CTX_get0_param(ctx);
    if (cur != NULL && param != NULL &&
        ASN1_TIME_cmp_time_t(X509_get0_notAfter(cur), X509_VERIFY_PARAM_get_time(param)) == 0) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    return ok;
}

/* Chain and validity: leaf <- cabundle[n-1] <- ... <- cabundle[1] <- root,
 * every certificate valid at `at`. */
static int check_chain(const struct attest_doc *d, X509 *leaf,
                       const struct attest_verify_opts *opts, uint64_t at,
                       enum attest_check *failed, struct km_error *err)
{
    X509 *root = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509_VERIFY_PARAM *param;
    char cn[65], t1[32], t2[32], t3[32];
    uint32_t xflags;
    int rc = KM_ERR_CRYPTO;

    *failed = ATTEST_CHECK_CHAIN;
    xflags = X509_get_extension_flags(leaf);
    if (xflags & EXFLAG_CA) {
        km_error_set(err, KM_ERR_CRYPTO, 0,
                     "chain: the leaf certificate is a CA (basicConstraints CA:TRUE)");
        goto out;
    }
    if ((xflags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
        km_error_set(err, KM_ERR_CRYPTO, 0,
                     "chain: the leaf certificate's key usage lacks digitalSignature");
        goto out;
    }
    root = der_to_x509(opts->root_der, opts->root_der_len);
    if (root == NULL) {
        *failed = ATTEST_CHECK_ROOT;
        km_error_set(err, KM_ERR_CRYPTO, 0, "root: the pinned root is not a DER X.509 certificate");
        goto out;
    }
    untrusted = sk_X509_new_null();
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (untrusted == NULL || store == NULL || ctx == NULL) {
        rc = km_error_set(err, KM_ERR_NOMEM, 0, "chain: out of memory");
        goto out;
    }
    for (size_t i = 1; i < d->cabundle_len; i++) {
        X509 *x = der_to_x509(d->cabundle[i].data, d->cabundle[i].len);
        if (x == NULL) {
            km_error_set(err, KM_ERR_CRYPTO, 0,
                         "chain: cabundle[%zu] is not a DER X.509 certificate", i);
            goto out;
        }
        if (sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            rc = km_error_set(err, KM_ERR_NOMEM, 0, "chain: out of memory");
            goto out;
        }
    }
    /* The pinned root is the only trust anchor: no default paths. */
    if (X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        rc = km_error_set(err, KM_ERR_NOMEM, 0, "chain: cannot set up the verifier");
        goto out;
    }
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    /* Not strict: AWS leaves lack an Authority Key Identifier. Never a
     * partial chain: the path must end at the pinned root. */
    X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *cur = X509_STORE_CTX_get_current_cert(ctx); /* borrowed */

        if (is_time_error(e)) {
            *failed = ATTEST_CHECK_VALIDITY;
            km_error_set(err, KM_ERR_CRYPTO, 0,
                         "validity: %s (depth %d, CN=%s, valid %s .. %s, verification time %s)",
                         X509_verify_cert_error_string(e), depth, cert_cn(cn, cur),
                         fmt_asn1_time(t1, cur ? X509_get0_notBefore(cur) : NULL),
                         fmt_asn1_time(t2, cur ? X509_get0_notAfter(cur) : NULL), fmt_unix(t3, at));
        } else {
            km_error_set(err, KM_ERR_CRYPTO, 0, "chain: %s (depth %d, CN=%s)",
                         e == X509_V_OK ? "verification failed" : X509_verify_cert_error_string(e),
                         depth, cert_cn(cn, cur));
        }
        goto out;
    }
    rc = KM_OK;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(root);
    return rc;
}

static bool pcr_zero(const struct attest_pcr *p)
{
    if (!p->present)
        return false;
    for (size_t i = 0; i < p->len; i++) {
        if (p->value[i] != 0)
            return false;
    }
    return true;
}

static bool pcr_matches(const struct attest_doc *d, const struct attest_pcr_set *s, size_t i)
{
    const struct attest_pcr *p = &d->pcrs[i];
    return p->present && p->len == ATTEST_PCR_LEN &&
           memcmp(p->value, s->value[i], ATTEST_PCR_LEN) == 0;
}

static int check_pcrs(const struct attest_doc *d, const struct attest_pcr_policy *pol,
                      struct km_error *err)
{
    size_t best = 0, best_bad = SIZE_MAX, best_first = 0;
    char want[24], got[40];

    for (size_t k = 0; k < pol->nsets; k++) {
        const struct attest_pcr_set *s = &pol->sets[k];
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < ATTEST_MAX_PCRS; i++) {
            if (s->want[i] && !pcr_matches(d, s, i)) {
                if (bad++ == 0)
                    first = i;
            }
        }
        if (bad == 0)
            return KM_OK;
        if (bad < best_bad)
            best = k, best_bad = bad, best_first = first;
    }
    const struct attest_pcr *p = &d->pcrs[best_first];
    if (!p->present)
        snprintf(got, sizeof(got), "absent");
    else if (p->len != ATTEST_PCR_LEN)
        snprintf(got, sizeof(got), "%zu bytes", p->len);
    else
        short_hex(got, p->value, p->len);
    return km_error_set(err, KM_ERR_CRYPTO, 0,
                        "pcrs: the document matches none of the %zu allowed PCR sets; closest "
                        "is set %zu, where PCR%zu differs: expected %s, got %s",
                        pol->nsets, best, best_first,
                        short_hex(want, pol->sets[best].value[best_first], ATTEST_PCR_LEN), got);
}

static int check_equal(const struct attest_bytes *have, const uint8_t *want, size_t want_len,
                       const char *name, struct km_error *err)
{
    char h1[24], h2[24];

    if (!have->present)
        return km_error_set(err, KM_ERR_CRYPTO, 0, "%s: the document carries no %s", name, name);
    if (have->len != want_len || (want_len > 0 && memcmp(have->data, want, want_len) != 0))
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "%s: the document's %s (%zu bytes, %s) differs from the expected "
                            "one (%zu bytes, %s)",
                            name, name, have->len, short_hex(h1, have->data, have->len), want_len,
                            short_hex(h2, want, want_len));
    return KM_OK;
}

int attest_verify(struct attest_doc *out, enum attest_check *failed, const uint8_t *doc, size_t len,
                  const struct attest_verify_opts *opts, struct km_error *err)
{
    struct attest_doc d;
    X509 *leaf = NULL;
    uint64_t at, ts;
    char t1[32], t2[32];
    int r;

    KM_ASSERT(failed != NULL && opts != NULL && opts->root_der != NULL);
    KM_ASSERT(opts->pcrs == NULL || opts->pcrs->nsets <= ATTEST_POLICY_MAX_SETS);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (err != NULL)
        km_error_clear(err);
    *failed = ATTEST_CHECK_DECODE;
    r = attest_doc_parse(&d, doc, len, err);
    if (r != KM_OK) {
        if (err != NULL)
            km_error_prefix(err, "decode");
        return r;
    }
    at = opts->at_unix != 0 ? opts->at_unix : (uint64_t)time(NULL);

    *failed = ATTEST_CHECK_SIGNATURE;
    leaf = der_to_x509(d.certificate.data, d.certificate.len);
    if (leaf == NULL) {
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "signature: the leaf certificate is not a DER X.509 certificate");
        goto out;
    }
    if ((r = check_signature(&d, leaf, err)) != KM_OK)
        goto out;

    *failed = ATTEST_CHECK_ROOT;
    if ((r = check_root(&d, opts, err)) != KM_OK)
        goto out;

    if (at > ATTEST_MAX_UNIX) {
        *failed = ATTEST_CHECK_VALIDITY;
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "validity: verification time %" PRIu64 " is past year 9999", at);
        goto out;
    }
    if ((r = check_chain(&d, leaf, opts, at, failed, err)) != KM_OK)
        goto out;

    *failed = ATTEST_CHECK_FRESHNESS;
    ts = d.timestamp_ms / 1000;
    if (opts->max_age_secs != 0) {
        if (ts > at && ts - at > ATTEST_FUTURE_SKEW_SECS) {
            r = km_error_set(err, KM_ERR_CRYPTO, 0,
                             "freshness: the document's timestamp %s is %" PRIu64
                             " s after the verification time %s (at most %d s allowed)",
                             fmt_unix(t1, ts), ts - at, fmt_unix(t2, at), ATTEST_FUTURE_SKEW_SECS);
            goto out;
        }
        if (at > ts && at - ts > opts->max_age_secs) {
            r = km_error_set(err, KM_ERR_CRYPTO, 0,
                             "freshness: the document is %" PRIu64 " s old (timestamp %s, "
                             "verification time %s, at most %" PRIu64 " s allowed)",
                             at - ts, fmt_unix(t1, ts), fmt_unix(t2, at), opts->max_age_secs);
            goto out;
        }
    }

    *failed = ATTEST_CHECK_DEBUG;
    if (!opts->allow_debug && pcr_zero(&d.pcrs[0]) && pcr_zero(&d.pcrs[1]) &&
        pcr_zero(&d.pcrs[2])) {
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "debug: PCR0, PCR1 and PCR2 are all zero (a debug-mode enclave, whose "
                         "memory the parent instance can read)");
        goto out;
    }

    *failed = ATTEST_CHECK_PCRS;
    if (opts->pcrs != NULL && opts->pcrs->nsets > 0 &&
        (r = check_pcrs(&d, opts->pcrs, err)) != KM_OK)
        goto out;

    *failed = ATTEST_CHECK_PUBLIC_KEY;
    if (opts->public_key != NULL &&
        (r = check_equal(&d.public_key, opts->public_key, opts->public_key_len, "public_key",
                         err)) != KM_OK)
        goto out;

    *failed = ATTEST_CHECK_NONCE;
    if (opts->nonce != NULL &&
        (r = check_equal(&d.nonce, opts->nonce, opts->nonce_len, "nonce", err)) != KM_OK)
        goto out;

    *failed = ATTEST_CHECK_NONE;
    r = KM_OK;
out:
    X509_free(leaf);
    ERR_clear_error();
    if (r == KM_OK && out != NULL) {
        *out = d; /* ownership of the copies moves to the caller */
    } else {
        attest_doc_clear(&d);
    }
    return r;
}
