/*
 * keysource_kms.c - the aws-kms sealer: the key-encryption key is a KMS
 * data key that only an attested enclave can read (enclave/keysource.h).
 *
 *   create  GenerateDataKey(KeyId, AES_256) with a Recipient: a fresh
 *           attestation document whose public_key is a fresh RSA-2048
 *           key's SPKI. The data key comes back only as
 *           CiphertextForRecipient (opened with that RSA key) and is the
 *           KEK; the CiphertextBlob goes into the sealed blob. Then, before
 *           anything is sealed, Decrypt of that CiphertextBlob (another RSA
 *           key, another document) must give the same 32 bytes:
 *           CiphertextForRecipient is AES-CBC without integrity and its
 *           RSA key is public (it is in the document), so a host that
 *           altered or replaced the reply would otherwise have the identity
 *           key sealed under a KEK it chose or garbled.
 *   open    Decrypt(CiphertextBlob of the sealed blob, KeyId) with a
 *           Recipient, likewise.
 *
 * Every RSA key and document is used for one request and then freed. The
 * AWS credentials arrive in configure (keysource_set_credentials); until
 * then create and open fail with KM_ERR_STATE. They are held only in the
 * KMS client's fixed buffers, overwritten on replacement and wiped when
 * the client is freed, and never logged.
 *
 * Inside a Nitro Enclave there is no network: with a proxy port the KMS
 * client gets a socket connected over VSock to the host's vsock-proxy
 * (tp_connect); TLS still runs end to end with the endpoint's host name.
 */
#include "enclave/keysource.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/provider.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "enclave/keysource_impl.h"
#include "kms/client.h"
#include "kms/cms.h"
#include "transport/addr.h"
#include "transport/sock.h"
#include "common/banned.h"

#define COMP "keysource"

/* What the KMS client holds until configure brings real credentials: never
 * sent (kek() refuses first). */
#define PLACEHOLDER_CREDENTIAL "KEYMELDUNSET"

#define PROXY_CONNECT_TIMEOUT_MS 5000

struct kms_source {
    struct keysource base;
    struct attest_provider *attest; /* borrowed */
    struct kms_client *client;
    char key_id[KMS_KEY_ID_MAX + 1];
    struct tp_addr proxy; /* the host's vsock-proxy, when use_proxy */
    bool use_proxy;
    atomic_bool has_credentials;
};

/* The connect seam: a VSock stream to the host's vsock-proxy, which
 * forwards it to KMS. Runs only inside an enclave (proxy_port set). */
static int proxy_connect(void *ctx, struct km_error *err)
{
    const struct kms_source *k = ctx;
    int fd = -1;
    if (tp_connect(&fd, &k->proxy, deadline_in_ms(PROXY_CONNECT_TIMEOUT_MS), err) != KM_OK) {
        km_error_prefix(err, "vsock-proxy at CID %u port %u", k->proxy.cid, k->proxy.port);
        return -1;
    }
    return fd;
}

/* A fresh RSA-2048 key and an attestation document naming its SPKI: the
 * Recipient of one KMS request. */
static int recipient_new(struct kms_source *k, EVP_PKEY **rsa, uint8_t **doc, size_t *doc_len,
                         struct km_error *err)
{
    uint8_t spki[KMS_RSA_SPKI_MAX];
    size_t n = 0;
    *rsa = NULL;
    *doc = NULL;
    *doc_len = 0;
    if (kms_rsa_keypair_new(rsa) != KM_OK)
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "SEALER=aws-kms: cannot make an RSA-2048 recipient key");
    int r = kms_rsa_spki_der(spki, sizeof(spki), &n, *rsa);
    if (r != KM_OK) {
        km_error_set(err, r, 0, "SEALER=aws-kms: cannot encode the recipient key: %s",
                     km_strerror(r));
    } else {
        struct attest_request rq = {.public_key = spki, .public_key_len = n};
        r = attest_provider_attest(k->attest, doc, doc_len, &rq, err);
        if (r != KM_OK)
            km_error_prefix(err, "SEALER=aws-kms: the attestation document for KMS");
    }
    if (r != KM_OK) {
        EVP_PKEY_free(*rsa);
        *rsa = NULL;
    }
    return r;
}

/* GenerateDataKey: the data key into kek, the CiphertextBlob into *blob. */
static int generate(struct kms_source *k, uint8_t kek[KMS_DATA_KEY_LEN], uint8_t **blob,
                    size_t *blob_len, struct km_error *err)
{
    EVP_PKEY *rsa = NULL;
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    int r = recipient_new(k, &rsa, &doc, &doc_len, err);
    if (r == KM_OK) {
        r = kms_generate_data_key(k->client, kek, blob, blob_len, k->key_id, doc, doc_len, rsa,
                                  err);
        if (r != KM_OK)
            km_error_prefix(err, "SEALER=aws-kms: cannot create the key-encryption key");
    }
    free(doc);
    EVP_PKEY_free(rsa);
    return r;
}

/* Decrypt of a CiphertextBlob into kek; what names the step in errors. */
static int decrypt(struct kms_source *k, uint8_t kek[KMS_DATA_KEY_LEN], const uint8_t *blob,
                   size_t blob_len, const char *what, struct km_error *err)
{
    EVP_PKEY *rsa = NULL;
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    int r = recipient_new(k, &rsa, &doc, &doc_len, err);
    if (r == KM_OK) {
        r = kms_decrypt(k->client, kek, blob, blob_len, k->key_id, doc, doc_len, rsa, err);
        if (r != KM_OK)
            km_error_prefix(err, "SEALER=aws-kms: %s", what);
    }
    free(doc);
    EVP_PKEY_free(rsa);
    return r;
}

static int kms_kek(struct keysource *ks, uint8_t kek[SEALBOX_KEK_LEN], uint8_t **kms_blob,
                   size_t *kms_len, const struct sealed_key *existing, struct km_error *err)
{
    struct kms_source *k = (struct kms_source *)ks;
    if (kms_blob != NULL) {
        *kms_blob = NULL;
        *kms_len = 0;
    }
    if (!atomic_load(&k->has_credentials))
        return km_error_set(err, KM_ERR_STATE, 0,
                            "SEALER=aws-kms needs the instance's AWS credentials from the gateway "
                            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in "
                            "the gateway's environment); configure brought none");
    if (existing != NULL) {
        int r = decrypt(k, kek, existing->kms_blob, existing->kms_len,
                        "cannot recover the key-encryption key (KMS Decrypt of the sealed "
                        "key's CiphertextBlob)",
                        err);
        if (r == KM_OK)
            log_info(COMP, "aws-kms: key-encryption key recovered by KMS Decrypt (key %s)",
                     k->key_id);
        return r;
    }

    uint8_t *blob = NULL, check[KMS_DATA_KEY_LEN];
    size_t blob_len = 0;
    int r = generate(k, kek, &blob, &blob_len, err);
    if (r == KM_OK)
        r = decrypt(k, check, blob, blob_len,
                    "cannot check the new data key (KMS Decrypt of the CiphertextBlob "
                    "GenerateDataKey returned); nothing was sealed",
                    err);
    if (r == KM_OK && !secure_memeq(kek, check, KMS_DATA_KEY_LEN))
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "SEALER=aws-kms: the data key of KMS GenerateDataKey differs from what "
                         "Decrypt of its CiphertextBlob gives: the reply was altered on its way "
                         "(CiphertextForRecipient has no integrity protection); nothing was "
                         "sealed");
    secure_wipe(check, sizeof(check));
    if (r != KM_OK) {
        secure_wipe(kek, SEALBOX_KEK_LEN);
        free(blob);
        return r;
    }
    log_info(COMP,
             "aws-kms: new key-encryption key from KMS GenerateDataKey (key %s), checked by "
             "Decrypt",
             k->key_id);
    *kms_blob = blob;
    *kms_len = blob_len;
    return KM_OK;
}

static int kms_set_credentials(struct keysource *ks, const char *access_key_id,
                               const char *secret_access_key, const char *session_token,
                               struct km_error *err)
{
    struct kms_source *k = (struct kms_source *)ks;
    if (session_token != NULL && session_token[0] == '\0')
        session_token = NULL;
    int r =
        kms_client_set_credentials(k->client, access_key_id, secret_access_key, session_token, err);
    if (r != KM_OK) {
        km_error_prefix(err, "SEALER=aws-kms");
        return r;
    }
    atomic_store(&k->has_credentials, true);
    return KM_OK;
}

static void kms_source_free(struct keysource *ks)
{
    struct kms_source *k = (struct kms_source *)ks;
    kms_client_free(k->client); /* wipes the credentials */
    secure_free(k, sizeof(*k));
}

static const struct keysource_ops kms_ops = {"aws-kms", SEALER_AWS_KMS, kms_kek,
                                             kms_set_credentials, kms_source_free};

/* 1..KMS_KEY_ID_MAX printable ASCII characters, no spaces. */
static bool valid_key_id(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > KMS_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

int keysource_kms_new(struct keysource **out, const struct keysource_kms_config *cfg,
                      struct attest_provider *attest, struct km_error *err)
{
    *out = NULL;
    if (attest == NULL)
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "SEALER=aws-kms needs ATTESTATION=nsm (or development in tests): KMS "
                            "hands the data key only to an attested enclave");
    if (!valid_key_id(cfg->key_id))
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "SEALER=aws-kms needs KMS_KEY_ID: the KMS key's id, ARN or alias "
                            "(1..%d printable characters)",
                            KMS_KEY_ID_MAX);
    struct kms_source *k = xcalloc(1, sizeof(*k));
    k->base.ops = &kms_ops;
    k->attest = attest;
    memcpy(k->key_id, cfg->key_id, strlen(cfg->key_id) + 1);
    atomic_init(&k->has_credentials, false);
    int r = KM_OK;
    if (cfg->proxy_port != 0) {
        if (cfg->proxy_cid == 0)
            r = km_error_set(err, KM_ERR_CONFIG, 0,
                             "SEALER=aws-kms: a vsock-proxy port (%u) needs its CID (the parent "
                             "instance is CID 3)",
                             cfg->proxy_port);
        else
            r = tp_addr_vsock(&k->proxy, cfg->proxy_cid, cfg->proxy_port, err);
        k->use_proxy = r == KM_OK;
    }
    if (r == KM_OK) {
        struct kms_client_config cc = {.endpoint = cfg->endpoint,
                                       .region = cfg->region,
                                       .access_key_id = PLACEHOLDER_CREDENTIAL,
                                       .secret_access_key = PLACEHOLDER_CREDENTIAL,
                                       .ca_file = cfg->ca_file,
                                       .allow_http = cfg->allow_http,
                                       .connect = k->use_proxy ? proxy_connect : NULL,
                                       .connect_ctx = k->use_proxy ? k : NULL};
        r = kms_client_new(&k->client, &cc, err);
    }
    if (r != KM_OK) {
        km_error_prefix(err, "SEALER=aws-kms");
        kms_source_free(&k->base);
        return r;
    }
    *out = &k->base;
    return KM_OK;
}
