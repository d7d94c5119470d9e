/*
 * kms_server.c - the KMS stand-in for tests (kms_server.h): SigV4 check,
 * GenerateDataKey and Decrypt with a Recipient.
 */
#include "kms_server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attest/doc.h"
#include "attest/verify.h"
#include "common/buf.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/base64.h"
#include "kms/client.h"
#include "kms/cms.h"
#include "kms/sigv4.h"
#include "common/banned.h"

#define BODY_MAX     (64u * 1024u)
#define BLOB_VERSION 0x01
#define GCM_IV_LEN   12
#define GCM_TAG_LEN  16

struct kms_server {
    struct MHD_Daemon *daemon;
    uint16_t port;
    char region[SIGV4_SCOPE_PART_MAX + 1];
    char access_key_id[SIGV4_ACCESS_KEY_MAX + 1];
    char secret_access_key[SIGV4_SECRET_MAX + 1];
    char session_token[SIGV4_TOKEN_MAX + 1]; /* "" = none */
    char key_id[KMS_KEY_ID_MAX + 1];         /* "" = any */
    uint8_t *root_der;
    size_t root_der_len;
    bool want_pcr0;
    uint8_t pcr0[ATTEST_PCR_LEN];
    uint32_t max_skew_secs;
    uint32_t max_doc_age_secs;
    bool leak_plaintext;
    bool tamper_generate;
    uint8_t master_key[32];
    EVP_PKEY *cert_key; /* signs the throwaway recipient certificates */

    pthread_mutex_t lock;
    unsigned requests;
    unsigned succeeded;
};

/* One request being answered. */
struct reply {
    unsigned status;
    json_t *body;
};

static void fail(struct reply *r, const char *type, const char *fmt, ...) KM_PRINTF(3, 4);

static void fail(struct reply *r, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(r->body);
    r->status = 400;
    r->body = json_pack("{s:s, s:s}", "__type", type, "message", msg);
}

/* ---- SigV4 ------------------------------------------------------------------------ */

static bool signed_header(const struct sigv4_authorization *a, const char *name)
{
    for (size_t i = 0; i < a->nsigned; i++)
        if (strcmp(a->signed_headers[i], name) == 0)
            return true;
    return false;
}

/* Recomputes the signature from what arrived. */
static bool check_signature(struct kms_server *s, struct MHD_Connection *conn, const char *url,
                            const struct buf *body, struct reply *rep)
{
    struct sigv4_authorization a;
    struct km_error err;
    const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (authz == NULL) {
        fail(rep, "MissingAuthenticationTokenException", "Missing Authentication Token");
        return false;
    }
    if (sigv4_parse_authorization(&a, authz, &err) != KM_OK) {
        fail(rep, "IncompleteSignatureException", "%s", err.msg);
        return false;
    }
    if (strcmp(a.access_key_id, s->access_key_id) != 0) {
        fail(rep, "UnrecognizedClientException",
             "The security token included in the request is invalid.");
        return false;
    }
    if (strcmp(a.service, "kms") != 0 || strcmp(a.region, s->region) != 0) {
        fail(rep, "InvalidSignatureException",
             "Credential should be scoped to a valid region and service (kms/%s), not %s/%s",
             s->region, a.service, a.region);
        return false;
    }
    static const char *const required[] = {"host", "x-amz-date", "x-amz-target", "content-type"};
    for (size_t i = 0; i < KM_ARRAY_LEN(required); i++) {
        if (!signed_header(&a, required[i])) {
            fail(rep, "InvalidSignatureException", "%s must be signed", required[i]);
            return false;
        }
    }
    const char *token = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Security-Token");
    if (s->session_token[0] != '\0' && (token == NULL || strcmp(token, s->session_token) != 0 ||
                                        !signed_header(&a, "x-amz-security-token"))) {
        fail(rep, "UnrecognizedClientException",
             "The security token included in the request is invalid.");
        return false;
    }
    const char *date = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Date");
    time_t t = 0, now = time(NULL);
    if (date == NULL || sigv4_parse_date(&t, date) != KM_OK || strncmp(date, a.date8, 8) != 0) {
        fail(rep, "InvalidSignatureException",
             "X-Amz-Date missing, malformed or not the "
             "credential scope's date");
        return false;
    }
    if (t + (time_t)s->max_skew_secs < now || t > now + (time_t)s->max_skew_secs) {
        fail(rep, "InvalidSignatureException", "Signature expired: %s is not within %u seconds",
             date, s->max_skew_secs);
        return false;
    }

    struct sigv4_header hs[SIGV4_MAX_HEADERS];
    for (size_t i = 0; i < a.nsigned; i++) {
        hs[i].name = a.signed_headers[i];
        hs[i].value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, a.signed_headers[i]);
        if (hs[i].value == NULL) {
            fail(rep, "InvalidSignatureException", "signed header %s is missing",
                 a.signed_headers[i]);
            return false;
        }
    }
    struct sigv4_request req = {
        .method = "POST",
        .path = url,
        .query = NULL,
        .headers = hs,
        .nheaders = a.nsigned,
        .body = buf_peek(body),
        .body_len = buf_len(body),
        .region = s->region,
        .service = "kms",
        .amz_date = date,
    };
    struct sigv4_credentials cred = {s->access_key_id, s->secret_access_key,
                                     s->session_token[0] != '\0' ? s->session_token : NULL};
    struct sigv4_signature sig;
    if (sigv4_sign(&sig, &req, &cred, &err) != KM_OK) {
        fail(rep, "InvalidSignatureException", "%s", err.msg);
        return false;
    }
    bool ok = secure_memeq(sig.signature, a.signature, SIGV4_SIG_HEX_LEN);
    sigv4_signature_clear(&sig);
    if (!ok)
        fail(rep, "InvalidSignatureException",
             "The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method. Consult the service "
             "documentation for details.");
    return ok;
}

/* ---- Recipient ------------------------------------------------------------------------ */

/* The recipient's RSA public key from a verified (or parsed) document. */
static EVP_PKEY *recipient_key(struct kms_server *s, const json_t *req, struct reply *rep)
{
    const json_t *rcp = json_object_get(req, "Recipient");
    const char *alg = json_string_value(json_object_get(rcp, "KeyEncryptionAlgorithm"));
    const char *b64 = json_string_value(json_object_get(rcp, "AttestationDocument"));
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    struct attest_doc d;
    struct km_error err;
    EVP_PKEY *pub = NULL;

    memset(&d, 0, sizeof(d));
    if (!json_is_object(rcp) || alg == NULL || b64 == NULL) {
        fail(rep, "ValidationException",
             "Recipient with AttestationDocument and KeyEncryptionAlgorithm is required");
        return NULL;
    }
    if (strcmp(alg, KMS_KEY_ENCRYPTION_ALG) != 0) {
        fail(rep, "ValidationException", "KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256");
        return NULL;
    }
    if (base64_decode(&doc, &doc_len, b64, strlen(b64), ATTEST_DOC_MAX_LEN, false) != KM_OK) {
        fail(rep, "ValidationException", "AttestationDocument is not base64 of at most %u bytes",
             ATTEST_DOC_MAX_LEN);
        return NULL;
    }
    int r;
    enum attest_check failed = ATTEST_CHECK_NONE;
    if (s->root_der != NULL) {
        struct attest_pcr_policy pol;
        memset(&pol, 0, sizeof(pol));
        if (s->want_pcr0) {
            pol.nsets = 1;
            pol.sets[0].want[0] = true;
            memcpy(pol.sets[0].value[0], s->pcr0, ATTEST_PCR_LEN);
        }
        struct attest_verify_opts o = {.root_der = s->root_der,
                                       .root_der_len = s->root_der_len,
                                       .max_age_secs = s->max_doc_age_secs,
                                       .pcrs = &pol};
        r = attest_verify(&d, &failed, doc, doc_len, &o, &err);
    } else {
        r = attest_doc_parse(&d, doc, doc_len, &err);
        if (r == KM_OK && s->want_pcr0 &&
            (!d.pcrs[0].present || d.pcrs[0].len != ATTEST_PCR_LEN ||
             memcmp(d.pcrs[0].value, s->pcr0, ATTEST_PCR_LEN) != 0)) {
            r = km_error_set(&err, KM_ERR_CRYPTO, 0, "pcrs: PCR0 does not match");
            failed = ATTEST_CHECK_PCRS;
        }
    }
    free(doc);
    if (r != KM_OK) {
        if (failed == ATTEST_CHECK_PCRS || failed == ATTEST_CHECK_DEBUG)
            fail(rep, "AccessDeniedException",
                 "The key policy condition kms:RecipientAttestation:ImageSha384 is not met (%s)",
                 err.msg);
        else
            fail(rep, "ValidationException", "AttestationDocument: %s", err.msg);
        attest_doc_clear(&d);
        return NULL;
    }
    if (d.public_key.present && d.public_key.len > 0) {
        const unsigned char *p = d.public_key.data;
        pub = d2i_PUBKEY(NULL, &p, (long)d.public_key.len);
    }
    if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || EVP_PKEY_get_bits(pub) < 2048) {
        fail(rep, "ValidationException",
             "the attestation document's public_key is not an RSA-2048+ SubjectPublicKeyInfo");
        EVP_PKEY_free(pub);
        pub = NULL;
    }
    ERR_clear_error();
    attest_doc_clear(&d);
    return pub;
}

/* A certificate carrying pub with a 32-byte subjectKeyIdentifier (SHA-256
 * of the SPKI), only so CMS names the recipient the way KMS does. */
static X509 *recipient_cert(struct kms_server *s, EVP_PKEY *pub)
{
    uint8_t spki[KMS_RSA_SPKI_MAX], ski[32];
    size_t n = 0;
    X509 *c = X509_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    bool ok = c != NULL && os != NULL && kms_rsa_spki_der(spki, sizeof(spki), &n, pub) == KM_OK &&
              EVP_Digest(spki, n, ski, NULL, EVP_sha256(), NULL) == 1 &&
              ASN1_OCTET_STRING_set(os, ski, sizeof(ski)) == 1 && X509_set_version(c, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(c), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(c), 0) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(c), 60) != NULL && X509_set_pubkey(c, pub) == 1 &&
              X509_add1_ext_i2d(c, NID_subject_key_identifier, os, 0, X509V3_ADD_DEFAULT) == 1 &&
              X509_sign(c, s->cert_key, EVP_sha256()) > 0;
    ASN1_OCTET_STRING_free(os);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* CiphertextForRecipient: key[32] in CMS EnvelopedData for pub, base64. */
static char *seal_for_recipient(struct kms_server *s, EVP_PKEY *pub, const uint8_t key[32])
{
    const unsigned flags = CMS_BINARY | CMS_PARTIAL | CMS_STREAM;
    X509 *cert = recipient_cert(s, pub);
    CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), flags);
    CMS_RecipientInfo *ri = cert != NULL && cms != NULL
                                ? CMS_add1_recipient_cert(cms, cert, CMS_KEY_PARAM | CMS_USE_KEYID)
                                : NULL;
    EVP_PKEY_CTX *pctx = ri != NULL ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
    BIO *in = BIO_new_mem_buf(key, 32);
    BIO *out = BIO_new(BIO_s_mem());
    char *b64 = NULL, *p = NULL;
    if (pctx != NULL && in != NULL && out != NULL &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
        i2d_CMS_bio_stream(out, cms, in, flags) == 1) {
        long n = BIO_get_mem_data(out, &p);
        if (n > 0)
            b64 = base64_encode((const uint8_t *)p, (size_t)n);
    }
    BIO_free(out);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    X509_free(cert);
    ERR_clear_error();
    return b64;
}

/* ---- CiphertextBlob: version | key id length (2) | key id | IV | ct | tag ---------- */

static int gcm(bool enc, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *master,
               const uint8_t iv[GCM_IV_LEN], const uint8_t *aad, size_t aad_len, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx != NULL &&
                    EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, master, iv, enc ? 1 : 0) &&
                    EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) &&
                    EVP_CipherUpdate(ctx, out, &n, in, (int)len);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag);
    if (ok)
        ok = EVP_CipherFinal_ex(ctx, out + n, &n);
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag);
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return ok ? KM_OK : KM_ERR_CRYPTO;
}

static char *seal_blob(struct kms_server *s, const char *key_id, const uint8_t key[32])
{
    size_t idlen = strlen(key_id);
    size_t n = 3 + idlen + GCM_IV_LEN + 32 + GCM_TAG_LEN;
    uint8_t *b = xmalloc(n);
    b[0] = BLOB_VERSION;
    b[1] = (uint8_t)(idlen >> 8);
    b[2] = (uint8_t)idlen;
    memcpy(b + 3, key_id, idlen);
    uint8_t *iv = b + 3 + idlen;
    char *out = NULL;
    if (secure_random(iv, GCM_IV_LEN) == KM_OK &&
        gcm(true, iv + GCM_IV_LEN, key, 32, s->master_key, iv, b, 3 + idlen,
            iv + GCM_IV_LEN + 32) == KM_OK)
        out = base64_encode(b, n);
    free(b);
    return out;
}

/* Opens a CiphertextBlob into key[32] and its key id. */
static bool open_blob(struct kms_server *s, uint8_t key[32], char *key_id, size_t id_cap,
                      const uint8_t *b, size_t n)
{
    if (n < 3 || b[0] != BLOB_VERSION)
        return false;
    size_t idlen = (size_t)b[1] << 8 | b[2];
    if (idlen >= id_cap || n != 3 + idlen + GCM_IV_LEN + 32 + GCM_TAG_LEN)
        return false;
    const uint8_t *iv = b + 3 + idlen;
    uint8_t tag[GCM_TAG_LEN];
    memcpy(tag, iv + GCM_IV_LEN + 32, GCM_TAG_LEN);
    if (gcm(false, key, iv + GCM_IV_LEN, 32, s->master_key, iv, b, 3 + idlen, tag) != KM_OK) {
        secure_wipe(key, 32);
        return false;
    }
    memcpy(key_id, b + 3, idlen);
    key_id[idlen] = '\0';
    return true;
}

/* ---- Operations ---------------------------------------------------------------------- */

static bool known_key(struct kms_server *s, const char *key_id, struct reply *rep)
{
    if (s->key_id[0] != '\0' && strcmp(key_id, s->key_id) != 0) {
        fail(rep, "NotFoundException", "Key '%.200s' does not exist", key_id);
        return false;
    }
    return true;
}

/* Answers with CiphertextForRecipient (and, with the test hook, the
 * plaintext a broken KMS would leak). */
static void answer(struct kms_server *s, struct reply *rep, EVP_PKEY *pub, const uint8_t key[32],
                   const char *key_id)
{
    char *cfr = seal_for_recipient(s, pub, key);
    if (cfr == NULL) {
        json_decref(rep->body);
        rep->status = 500;
        rep->body = json_pack("{s:s, s:s}", "__type", "KMSInternalException", "message",
                              "cannot build CiphertextForRecipient");
        return;
    }
    json_object_set_new(rep->body, "KeyId", json_string(key_id));
    json_object_set_new(rep->body, "CiphertextForRecipient", json_string(cfr));
    if (s->leak_plaintext) {
        char *pt = base64_encode(key, 32);
        json_object_set_new(rep->body, "Plaintext", json_string(pt));
        free(pt);
    }
    free(cfr);
}

static void generate_data_key(struct kms_server *s, const json_t *req, struct reply *rep)
{
    const char *key_id = json_string_value(json_object_get(req, "KeyId"));
    const char *spec = json_string_value(json_object_get(req, "KeySpec"));
    uint8_t key[32];
    if (key_id == NULL || key_id[0] == '\0') {
        fail(rep, "ValidationException", "KeyId is required");
        return;
    }
    if (spec == NULL || strcmp(spec, "AES_256") != 0) {
        fail(rep, "ValidationException", "KeySpec must be AES_256 here");
        return;
    }
    if (!known_key(s, key_id, rep))
        return;
    EVP_PKEY *pub = recipient_key(s, req, rep);
    if (pub == NULL)
        return;
    char *blob = NULL;
    if (secure_random(key, sizeof(key)) == KM_OK)
        blob = seal_blob(s, key_id, key);
    if (blob != NULL) {
        rep->body = json_object();
        json_object_set_new(rep->body, "CiphertextBlob", json_string(blob));
        if (s->tamper_generate)
            key[0] ^= 0x01; /* what flipping a bit of the AES-CBC IV does */
        answer(s, rep, pub, key, key_id);
    } else {
        fail(rep, "KMSInternalException", "cannot make a data key");
        rep->status = 500;
    }
    free(blob);
    secure_wipe(key, sizeof(key));
    EVP_PKEY_free(pub);
}

static void decrypt(struct kms_server *s, const json_t *req, struct reply *rep)
{
    const char *b64 = json_string_value(json_object_get(req, "CiphertextBlob"));
    const json_t *jid = json_object_get(req, "KeyId");
    char blob_key_id[KMS_KEY_ID_MAX + 1];
    uint8_t key[32], *blob = NULL;
    size_t n = 0;
    if (b64 == NULL ||
        base64_decode(&blob, &n, b64, strlen(b64), KMS_CIPHERTEXT_BLOB_MAX, false) != KM_OK) {
        fail(rep, "ValidationException", "CiphertextBlob must be base64 of 1..6144 bytes");
        return;
    }
    bool ok = open_blob(s, key, blob_key_id, sizeof(blob_key_id), blob, n);
    free(blob);
    if (!ok) {
        fail(rep, "InvalidCiphertextException", "the ciphertext is invalid or not ours");
        return;
    }
    if (jid != NULL && (!json_is_string(jid) || strcmp(json_string_value(jid), blob_key_id) != 0)) {
        fail(rep, "IncorrectKeyException",
             "The key ID in the request does not identify a CMK that can perform this "
             "operation.");
    } else if (known_key(s, blob_key_id, rep)) {
        EVP_PKEY *pub = recipient_key(s, req, rep);
        if (pub != NULL) {
            rep->body = json_pack("{s:s}", "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
            answer(s, rep, pub, key, blob_key_id);
        }
        EVP_PKEY_free(pub);
    }
    secure_wipe(key, sizeof(key));
}

static void handle(struct kms_server *s, struct MHD_Connection *conn, const char *url,
                   const char *method, const struct buf *body, struct reply *rep)
{
    if (strcmp(method, "POST") != 0 || strcmp(url, "/") != 0) {
        fail(rep, "UnknownOperationException", "only POST / is served");
        return;
    }
    if (!check_signature(s, conn, url, body, rep))
        return;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (ct == NULL || strcmp(ct, KMS_CONTENT_TYPE) != 0) {
        fail(rep, "SerializationException", "Content-Type must be %s", KMS_CONTENT_TYPE);
        return;
    }
    json_t *req =
        json_loadb((const char *)buf_peek(body), buf_len(body), JSON_REJECT_DUPLICATES, NULL);
    const char *target = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Target");
    if (!json_is_object(req))
        fail(rep, "SerializationException", "the body is not a JSON object");
    else if (target != NULL && strcmp(target, "TrentService.GenerateDataKey") == 0)
        generate_data_key(s, req, rep);
    else if (target != NULL && strcmp(target, "TrentService.Decrypt") == 0)
        decrypt(s, req, rep);
    else
        fail(rep, "UnknownOperationException", "unknown X-Amz-Target %.100s",
             target ? target : "(none)");
    json_decref(req);
}

/* ---- libmicrohttpd ------------------------------------------------------------------- */

struct request {
    struct buf body;
    bool too_large;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct kms_server *s = cls;
    struct request *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = xcalloc(1, sizeof(*rq));
        buf_init(&rq->body, BODY_MAX);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (buf_put(&rq->body, upload_data, *upload_data_size) != KM_OK)
            rq->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct reply rep = {200, NULL};
    if (rq->too_large)
        fail(&rep, "ValidationException", "request body over %u bytes", BODY_MAX);
    else
        handle(s, conn, url, method, &rq->body, &rep);
    char *text = rep.body != NULL ? json_dumps(rep.body, JSON_COMPACT) : NULL;
    if (text == NULL)
        KM_BUG("kms_server: no reply body");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", KMS_CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(conn, rep.status, resp);
    MHD_destroy_response(resp);
    pthread_mutex_lock(&s->lock);
    s->requests++;
    if (rep.status == 200)
        s->succeeded++;
    pthread_mutex_unlock(&s->lock);
    json_decref(rep.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rq != NULL) {
        buf_release(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static bool copy_str(char *out, size_t cap, const char *s, bool required)
{
    if (s == NULL)
        return !required;
    if (strlen(s) >= cap || (required && s[0] == '\0'))
        return false;
    memcpy(out, s, strlen(s) + 1);
    return true;
}

int kms_server_start(struct kms_server **out, const struct kms_server_config *cfg,
                     struct km_error *err)
{
    *out = NULL;
    struct kms_server *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    if (!copy_str(s->region, sizeof(s->region), cfg->region ? cfg->region : "us-east-1", true) ||
        !copy_str(s->access_key_id, sizeof(s->access_key_id), cfg->access_key_id, true) ||
        !copy_str(s->secret_access_key, sizeof(s->secret_access_key), cfg->secret_access_key,
                  true) ||
        !copy_str(s->session_token, sizeof(s->session_token), cfg->session_token, false) ||
        !copy_str(s->key_id, sizeof(s->key_id), cfg->key_id, false)) {
        kms_server_stop(s);
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "kms_server: region, access key and secret are required");
    }
    if (cfg->root_der != NULL) {
        s->root_der = xmalloc(cfg->root_der_len);
        memcpy(s->root_der, cfg->root_der, cfg->root_der_len);
        s->root_der_len = cfg->root_der_len;
    }
    if (cfg->pcr0 != NULL) {
        s->want_pcr0 = true;
        memcpy(s->pcr0, cfg->pcr0, ATTEST_PCR_LEN);
    }
    s->max_skew_secs = cfg->max_skew_secs ? cfg->max_skew_secs : 300;
    s->max_doc_age_secs = cfg->max_doc_age_secs ? cfg->max_doc_age_secs : 300;
    s->leak_plaintext = cfg->leak_plaintext;
    s->tamper_generate = cfg->tamper_generate;
    s->cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (s->cert_key == NULL || secure_random(s->master_key, sizeof(s->master_key)) != KM_OK) {
        kms_server_stop(s);
        return km_error_set(err, KM_ERR_CRYPTO, 0, "kms_server: cannot make its keys");
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, cfg->port,
        NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (s->daemon == NULL) {
        kms_server_stop(s);
        return km_error_set(err, KM_ERR_IO, 0, "kms_server: cannot listen on 127.0.0.1:%u",
                            cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : cfg->port;
    *out = s;
    return KM_OK;
}

uint16_t kms_server_port(const struct kms_server *s)
{
    return s->port;
}

unsigned kms_server_requests(struct kms_server *s, unsigned *succeeded)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->requests;
    if (succeeded != NULL)
        *succeeded = s->succeeded;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void kms_server_stop(struct kms_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    EVP_PKEY_free(s->cert_key);
    free(s->root_der);
    pthread_mutex_destroy(&s->lock);
    secure_free(s, sizeof(*s));
}
