/*
 * attestation.c - get_attestation: a document from the attestation
 * provider (attest/provider.h) that binds this enclave's identity key, so a
 * client can check which code holds the key before it encrypts to it
 * (docs/ATTESTATION.md).
 *
 * The document's public_key is the 33-byte compressed identity key;
 * user_data is the JSON text {"enclave_id":N,"key_epoch":E} (enclave_id
 * null until ENCLAVE_ID or configure sets it); nonce is the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/provider.h"
#include "common/log.h"
#include "enclave/internal.h"
#include "common/banned.h"

const char *en_attestation_name(const struct enclave *en)
{
    return en->cfg.attest != NULL ? attest_provider_name(en->cfg.attest) : "none";
}

static size_t user_data(char *out, size_t cap, struct enclave *en, uint64_t epoch)
{
    pthread_mutex_lock(&en->lock);
    bool has_id = en->has_enclave_id;
    uint32_t id = en->enclave_id;
    pthread_mutex_unlock(&en->lock);
    char idbuf[16] = "null";
    if (has_id)
        snprintf(idbuf, sizeof(idbuf), "%u", id);
    int n = snprintf(out, cap, "{\"enclave_id\":%s,\"key_epoch\":%llu}", idbuf,
                     (unsigned long long)epoch);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int en_get_attestation(struct en_req *r)
{
    const struct proto_get_attestation_args *a = r->args;
    struct enclave *en = r->en;
    if (en->cfg.attest == NULL)
        return en_fail(&r->err, PROTO_E_INVALID_STATE,
                       "attestation is off in this enclave (ATTESTATION=none): start it with "
                       "ATTESTATION=nsm in a Nitro Enclave or ATTESTATION=development");
    uint8_t pub[PROTO_PUBKEY_LEN];
    uint64_t epoch;
    en_identity(en, pub, &epoch);
    char ud[64];
    size_t ud_len = user_data(ud, sizeof(ud), en, epoch);
    struct attest_request req = {
        .public_key = pub,
        .public_key_len = PROTO_PUBKEY_LEN,
        .user_data = (const uint8_t *)ud,
        .user_data_len = ud_len,
        .nonce = a->nonce.len > 0 ? a->nonce.p : NULL,
        .nonce_len = a->nonce.len,
    };
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    struct km_error err;
    if (attest_provider_attest(en->cfg.attest, &doc, &doc_len, &req, &err) != KM_OK)
        return en_fail(&r->err, PROTO_E_INTERNAL, "attestation (%s) failed: %s",
                       attest_provider_name(en->cfg.attest), err.msg);
    struct proto_attestation_result res = {.key_epoch = epoch,
                                           .document = {.p = doc, .len = doc_len}};
    snprintf(res.attestation, sizeof(res.attestation), "%s", attest_provider_name(en->cfg.attest));
    memcpy(res.public_key, pub, PROTO_PUBKEY_LEN);
    r->result = proto_attestation_result_encode(&res);
    free(doc);
    log_debug(LOG_COMP, "attestation document issued (%zu bytes, nonce %zu bytes)", doc_len,
              a->nonce.len);
    return KM_OK;
}
