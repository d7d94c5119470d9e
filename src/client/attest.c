/*
 * attest.c - fetch and verify an enclave's attestation before encrypting
 * to its key (client/attest.h, docs/ATTESTATION.md).
 */
#include "client/attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/doc.h"
#include "attest/policy.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/banned.h"

int client_trust_load(struct client_trust *t, const char *root_pem, const char *pcrs_path,
                      struct km_error *err)
{
    memset(t, 0, sizeof(*t));
    if (pcrs_path == NULL || pcrs_path[0] == '\0')
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "attestation needs a PCR policy: pass --pcrs FILE (deploy/nitro "
                            "writes it; the development stack writes DEV_DIR/pcrs.json) or, for "
                            "tests only, --insecure-skip-attestation");
    int r = root_pem != NULL && root_pem[0] != '\0'
                ? attest_root_load(&t->root_der, &t->root_der_len, root_pem, err)
                : attest_root_from_pem(&t->root_der, &t->root_der_len,
                                       (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                       strlen(attest_aws_nitro_root_g1_pem), err);
    if (r == KM_OK)
        r = attest_pcr_policy_load(&t->pcrs, pcrs_path, err);
    if (r != KM_OK)
        client_trust_release(t);
    return r;
}

void client_trust_insecure(struct client_trust *t)
{
    memset(t, 0, sizeof(*t));
    t->insecure_skip = true;
}

void client_trust_release(struct client_trust *t)
{
    free(t->root_der);
    memset(t, 0, sizeof(*t));
}

static bool already_verified(const struct client_trust *t, uint32_t id,
                             const uint8_t pk[PROTO_PUBKEY_LEN])
{
    for (size_t i = 0; i < t->nverified; i++)
        if (t->verified[i].enclave_id == id &&
            memcmp(t->verified[i].public_key, pk, PROTO_PUBKEY_LEN) == 0)
            return true;
    return false;
}

static void remember(struct client_trust *t, uint32_t id, const uint8_t pk[PROTO_PUBKEY_LEN])
{
    if (t->nverified == CLIENT_TRUST_CACHE)
        t->nverified = 0; /* start over: re-verifying is only slower */
    t->verified[t->nverified].enclave_id = id;
    memcpy(t->verified[t->nverified].public_key, pk, PROTO_PUBKEY_LEN);
    t->nverified++;
}

static void warn_insecure_once(void)
{
    static bool warned;
    if (warned)
        return;
    warned = true;
    fprintf(stderr, "WARNING: --insecure-skip-attestation: enclave keys are NOT verified; whoever "
                    "runs the gateway host can read every key encrypted to them\n");
}

/* GETs the document; *doc is malloc'ed raw CBOR. */
static int fetch_document(struct rest_client *c, uint32_t enclave_id, const uint8_t *nonce,
                          size_t nonce_len, uint8_t **doc, size_t *doc_len,
                          uint8_t key[PROTO_PUBKEY_LEN], struct km_error *err)
{
    char path[128 + 2 * ATTEST_NONCE_MAX];
    char nhex[2 * ATTEST_NONCE_MAX + 1] = "";
    *doc = NULL;
    *doc_len = 0;
    if (nonce_len > ATTEST_NONCE_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "nonce over %u bytes", ATTEST_NONCE_MAX);
    if (nonce != NULL)
        hex_encode(nhex, sizeof(nhex), nonce, nonce_len);
    snprintf(path, sizeof(path), "/api/v1/enclaves/%u/attestation%s%s", enclave_id,
             nonce != NULL ? "?nonce=" : "", nhex);
    struct rest_response rr;
    int r = rest_call(c, &rr, "GET", path, NULL, NULL, err);
    if (r != KM_OK)
        return r;
    const char *b64 = rr.body ? json_string_value(json_object_get(rr.body, "document")) : NULL;
    const char *pk = rr.body ? json_string_value(json_object_get(rr.body, "public_key")) : NULL;
    if (rr.status != 200)
        r = km_error_set(err, KM_ERR_REMOTE, 0, "GET %s: HTTP %ld: %s", path, rr.status,
                         rest_error_message(&rr));
    else if (b64 == NULL || pk == NULL ||
             hex_decode_exact(key, PROTO_PUBKEY_LEN, pk, strlen(pk)) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "GET %s: the reply lacks \"document\" or \"public_key\"", path);
    else
        r = attest_doc_read_any(doc, doc_len, (const uint8_t *)b64, strlen(b64), err);
    rest_response_clear(&rr);
    return r;
}

static void verify_opts(struct attest_verify_opts *o, const struct client_trust *t)
{
    memset(o, 0, sizeof(*o));
    o->root_der = t->root_der;
    o->root_der_len = t->root_der_len;
    o->at_unix = t->at_unix;
    o->max_age_secs = t->max_age_secs ? t->max_age_secs : CLIENT_ATTEST_MAX_AGE_DEFAULT;
    o->pcrs = &t->pcrs;
    o->allow_debug = t->allow_debug;
}

int client_attest_fetch(struct rest_client *c, const struct client_trust *t, uint32_t enclave_id,
                        const uint8_t *nonce, size_t nonce_len, struct attest_doc *out,
                        enum attest_check *failed, uint8_t key[PROTO_PUBKEY_LEN],
                        struct km_error *err)
{
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    *failed = ATTEST_CHECK_DECODE;
    memset(out, 0, sizeof(*out));
    int r = fetch_document(c, enclave_id, nonce, nonce_len, &doc, &doc_len, key, err);
    if (r != KM_OK)
        return r;
    struct attest_verify_opts o;
    verify_opts(&o, t);
    o.nonce = nonce;
    o.nonce_len = nonce_len;
    o.public_key = key;
    o.public_key_len = PROTO_PUBKEY_LEN;
    r = attest_verify(out, failed, doc, doc_len, &o, err);
    free(doc);
    return r;
}

int client_attest_enclave(struct rest_client *c, struct client_trust *t, uint32_t enclave_id,
                          const uint8_t public_key[PROTO_PUBKEY_LEN], struct attest_doc *out,
                          struct km_error *err)
{
    struct attest_doc local;
    struct attest_doc *d = out != NULL ? out : &local;
    memset(d, 0, sizeof(*d));
    if (t == NULL)
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "no attestation trust configured: pass --pcrs FILE (and --trust-root "
                            "PEM), or --insecure-skip-attestation for tests");
    if (t->insecure_skip) {
        warn_insecure_once();
        return KM_OK;
    }
    if (already_verified(t, enclave_id, public_key))
        return KM_OK;
    uint8_t nonce[CLIENT_ATTEST_NONCE_LEN];
    uint8_t attested[PROTO_PUBKEY_LEN];
    enum attest_check failed;
    int r = secure_random(nonce, sizeof(nonce));
    if (r == KM_OK)
        r = client_attest_fetch(c, t, enclave_id, nonce, sizeof(nonce), d, &failed, attested, err);
    /* The key we are about to encrypt to must be the attested one, not
     * merely the one the gateway relays with the document. */
    if (r == KM_OK && memcmp(attested, public_key, PROTO_PUBKEY_LEN) != 0) {
        attest_doc_clear(d);
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "public_key: the attested key differs from the key given for this "
                         "enclave");
    }
    if (r == KM_OK)
        remember(t, enclave_id, public_key);
    else
        km_error_prefix(err, "enclave %u's key is not attested; nothing was encrypted to it",
                        enclave_id);
    if (d == &local)
        attest_doc_clear(&local);
    /* Transport errors keep their code (retry may help); every failed check
     * is a refusal. */
    bool transport = r == KM_ERR_REMOTE || r == KM_ERR_CONNECT || r == KM_ERR_TIMEOUT ||
                     r == KM_ERR_RESOLVE || r == KM_ERR_IO || r == KM_ERR_CLOSED;
    if (r != KM_OK && !transport)
        r = KM_ERR_CRYPTO;
    if (err != NULL)
        err->code = r;
    return r;
}
