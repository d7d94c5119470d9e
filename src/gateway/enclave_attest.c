/*
 * enclave_attest.c - fetch and verify enclave attestation documents for
 * the gateway (gateway/enclave_attest.h).
 */
#include "gateway/enclave_attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/policy.h"
#include "attest/verify.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define ATTEST_TIMEOUT_MS 5000
#define GW_NONCE_LEN      32

struct gw_attest {
    uint8_t *root_der;
    size_t root_der_len;
    struct attest_pcr_policy pcrs;
    uint64_t max_age_secs;
    bool allow_debug;
};

int gw_attest_new(struct gw_attest **out, const struct cfg_security *sec, struct km_error *err)
{
    *out = NULL;
    if (!sec->enable_attestation)
        return KM_OK;
    struct gw_attest *a = xcalloc(1, sizeof(*a));
    a->max_age_secs = sec->attestation_max_age_secs;
    a->allow_debug = sec->attestation_allow_debug;
    int r = sec->attestation_root[0] != '\0'
                ? attest_root_load(&a->root_der, &a->root_der_len, sec->attestation_root, err)
                : attest_root_from_pem(&a->root_der, &a->root_der_len,
                                       (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                       strlen(attest_aws_nitro_root_g1_pem), err);
    if (r == KM_OK)
        r = attest_pcr_policy_load(&a->pcrs, sec->attestation_pcrs, err);
    if (r != KM_OK) {
        km_error_prefix(err, "security.enable_attestation");
        gw_attest_free(a);
        return r;
    }
    *out = a;
    return KM_OK;
}

uint64_t gw_attest_refresh_ms(const struct gw_attest *a)
{
    return a->max_age_secs * 800u;
}

void gw_attest_free(struct gw_attest *a)
{
    if (a == NULL)
        return;
    free(a->root_der);
    free(a);
}

int gw_attest_fetch(struct pool *pool, const uint8_t *nonce, size_t nonce_len,
                    struct proto_attestation_result *res, struct km_error *err)
{
    memset(res, 0, sizeof(*res));
    uint8_t copy[PROTO_ATTEST_NONCE_MAX];
    if (nonce_len > sizeof(copy))
        return km_error_set(err, KM_ERR_INVALID, 0, "nonce over %d bytes", PROTO_ATTEST_NONCE_MAX);
    if (nonce_len > 0)
        memcpy(copy, nonce, nonce_len);
    struct proto_get_attestation_args args = {
        .nonce = {.p = nonce_len ? copy : NULL, .len = nonce_len}};
    json_t *jargs = proto_get_attestation_args_encode(&args);
    struct env_reply reply;
    int r = pool_request(pool, &reply, "get_attestation", NULL, jargs, ATTEST_TIMEOUT_MS, err);
    json_decref(jargs);
    if (r != KM_OK)
        return r;
    r = proto_attestation_result_decode(res, reply.result, err);
    env_reply_clear(&reply);
    if (r != KM_OK)
        km_error_prefix(err, "get_attestation reply");
    return r;
}

static void pcr_hex(char out[GW_ATTEST_PCR_HEX], const struct attest_doc *d, unsigned i)
{
    out[0] = '\0';
    if (d->pcrs[i].present)
        hex_encode(out, GW_ATTEST_PCR_HEX, d->pcrs[i].value, d->pcrs[i].len);
}

static void summarize(struct gw_attest_summary *s, const struct attest_doc *d, const char *provider)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->provider, sizeof(s->provider), "%s", provider);
    snprintf(s->module_id, sizeof(s->module_id), "%s", d->module_id);
    s->timestamp_ms = d->timestamp_ms;
    pcr_hex(s->pcr0, d, 0);
    pcr_hex(s->pcr1, d, 1);
    pcr_hex(s->pcr2, d, 2);
    pcr_hex(s->pcr8, d, 8);
}

int gw_attest_check(struct gw_attest *a, struct pool *pool, const uint8_t key[PROTO_PUBKEY_LEN],
                    uint8_t **doc, size_t *doc_len, struct gw_attest_summary *summary,
                    struct km_error *err)
{
    *doc = NULL;
    *doc_len = 0;
    uint8_t nonce[GW_NONCE_LEN];
    if (secure_random(nonce, sizeof(nonce)) != KM_OK)
        return km_error_set(err, KM_ERR_IO, 0, "attestation: no randomness for a nonce");
    struct proto_attestation_result res;
    int r = gw_attest_fetch(pool, nonce, sizeof(nonce), &res, err);
    if (r != KM_OK)
        return r;
    struct attest_verify_opts o = {
        .root_der = a->root_der,
        .root_der_len = a->root_der_len,
        .max_age_secs = a->max_age_secs,
        .pcrs = &a->pcrs,
        .allow_debug = a->allow_debug,
        .public_key = key,
        .public_key_len = PROTO_PUBKEY_LEN,
        .nonce = nonce,
        .nonce_len = sizeof(nonce),
    };
    struct attest_doc d;
    enum attest_check failed = ATTEST_CHECK_NONE;
    r = attest_verify(&d, &failed, res.document.p, res.document.len, &o, err);
    if (r == KM_OK && memcmp(res.public_key, key, PROTO_PUBKEY_LEN) != 0)
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "public_key: get_attestation names another key than get_public_info");
    if (r == KM_OK) {
        summarize(summary, &d, res.attestation);
        summary->key_epoch = res.key_epoch;
        *doc = res.document.p;
        *doc_len = res.document.len;
        res.document.p = NULL;
        res.document.len = 0;
    } else {
        km_error_prefix(err, "attestation failed");
        r = KM_ERR_CRYPTO;
    }
    attest_doc_clear(&d);
    proto_attestation_result_clear(&res);
    return r;
}
