/*
 * enclave_keys.c - hand an enclave its sealed identity key, or record the
 * one it creates (gateway/enclave_keys.h).
 */
#include "gateway/enclave_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "protocol/commands.h"
#include "common/banned.h"

#define LOG_COMP          "enclaves"
#define CONFIGURE_TIMEOUT 30000 /* a KMS round trip may be part of it */

/* The instance's temporary AWS credentials, for SEALER=aws-kms enclaves:
 * from the gateway's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN: what the instance role's credential provider sets).
 * Handed over in configure only; never stored or logged. */
void gw_aws_credentials(struct proto_configure_args *a)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (id == NULL || secret == NULL || strlen(id) > PROTO_AWS_ID_MAX ||
        strlen(secret) > PROTO_AWS_SECRET_MAX ||
        (token != NULL && strlen(token) > PROTO_AWS_TOKEN_MAX))
        return;
    snprintf(a->aws_access_key_id, sizeof(a->aws_access_key_id), "%s", id);
    snprintf(a->aws_secret_access_key, sizeof(a->aws_secret_access_key), "%s", secret);
    if (token != NULL)
        snprintf(a->aws_session_token, sizeof(a->aws_session_token), "%s", token);
}

static bool awaiting(const json_t *info)
{
    const char *st = json_string_value(json_object_get(info, "key_state"));
    return st != NULL && strcmp(st, "awaiting_configure") == 0;
}

static int blob_from_hex(struct proto_blob *out, const char *hex)
{
    size_t n = hex ? strlen(hex) : 0;
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return KM_OK;
    out->p = xmalloc(n / 2 + 1);
    if (n % 2 != 0 || hex_decode(out->p, n / 2, &out->len, hex, n) != KM_OK) {
        proto_blob_clear(out);
        return KM_ERR_INVALID;
    }
    return KM_OK;
}

static int send_configure(struct pool *pool, uint32_t enclave_id, const char *sealed_hex,
                          const char *next_hex, json_t **result, struct km_error *err)
{
    struct proto_configure_args a = {.enclave_id = enclave_id};
    if (blob_from_hex(&a.sealed_key, sealed_hex) != KM_OK ||
        blob_from_hex(&a.next_sealed_key, next_hex) != KM_OK) {
        proto_blob_clear(&a.sealed_key);
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "the stored sealed key of enclave %u is not hex", enclave_id);
    }
    gw_aws_credentials(&a);
    json_t *args = proto_configure_args_encode(&a);
    proto_blob_clear(&a.sealed_key);
    proto_blob_clear(&a.next_sealed_key);
    secure_wipe(a.aws_secret_access_key, sizeof(a.aws_secret_access_key));
    secure_wipe(a.aws_session_token, sizeof(a.aws_session_token));
    struct env_reply reply;
    int r = pool_request(pool, &reply, "configure", NULL, args, CONFIGURE_TIMEOUT, err);
    json_decref(args);
    if (r != KM_OK)
        return r;
    *result = json_incref(reply.result);
    env_reply_clear(&reply);
    return KM_OK;
}

/* A key the enclave created: commit it before anything uses it. */
static int record_created(struct store *store, uint32_t enclave_id, const json_t *res,
                          struct km_error *err)
{
    struct proto_public_info pi;
    struct km_error e;
    if (proto_public_info_decode(&pi, res, &e) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "enclave %u: bad configure result: %s",
                            enclave_id, e.msg);
    int r = KM_OK;
    if (pi.sealed_key.len == 0 || !pi.has_public_key)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "enclave %u created a key but returned no sealed key", enclave_id);
    struct store_sealed_key k = {.enclave_id = enclave_id, .key_epoch = (int64_t)pi.key_epoch};
    if (r == KM_OK) {
        snprintf(k.sealer, sizeof(k.sealer), "%s", pi.sealer);
        hex_encode(k.public_key, sizeof(k.public_key), pi.public_key, PROTO_PUBKEY_LEN);
        k.sealed_key_hex = xmalloc(2 * pi.sealed_key.len + 1);
        hex_encode(k.sealed_key_hex, 2 * pi.sealed_key.len + 1, pi.sealed_key.p, pi.sealed_key.len);
        r = store_sealed_key_add(store, &k);
        if (r == KM_ERR_EXISTS)
            km_error_set(err, r, 0,
                         "enclave %u created a new identity key but the database already holds "
                         "one for it: restart the enclave so it loads the stored key",
                         enclave_id);
        else if (r != KM_OK)
            km_error_set(err, r, 0, "cannot record the sealed key of enclave %u", enclave_id);
    }
    if (r == KM_OK)
        log_info(LOG_COMP,
                 "enclave %u created identity key epoch %lld (sealer %s); its sealed "
                 "key is stored",
                 enclave_id, (long long)k.key_epoch, k.sealer);
    store_sealed_key_clear(&k);
    proto_public_info_clear(&pi);
    return r;
}

/* An enclave without a sealer whose sealed key the database holds was
 * started without its sealer by mistake: treating it as a restart would
 * fail every keygen it holds, completed ones included. */
static int refuse_unsealed(struct store *store, uint32_t enclave_id, const json_t *info,
                           struct km_error *err)
{
    const char *sealer = json_string_value(json_object_get(info, "sealer"));
    if (sealer != NULL && strcmp(sealer, "none") != 0)
        return KM_OK;
    struct store_sealed_key k;
    int r = store_sealed_key_current(store, enclave_id, &k);
    if (r == KM_ERR_NOT_FOUND)
        return KM_OK;
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot read the sealed key of enclave %u", enclave_id);
    km_error_set(err, KM_ERR_STATE, 0,
                 "enclave %u runs without a sealer (SEALER=none) but the database holds its "
                 "sealed identity key (epoch %lld, sealer %s): restart it with SEALER=%s so its "
                 "keygens stay usable (docs/OPERATIONS.md \"Durable enclave keys\")",
                 enclave_id, (long long)k.key_epoch, k.sealer, k.sealer);
    store_sealed_key_clear(&k);
    return KM_ERR_STATE;
}

int gw_enclave_key_handshake(struct store *store, struct pool *pool, uint32_t enclave_id,
                             json_t **info, struct km_error *err)
{
    if (!awaiting(*info))
        return refuse_unsealed(store, enclave_id, *info, err);
    struct store_sealed_key k;
    int r = store_sealed_key_current(store, enclave_id, &k);
    if (r != KM_OK && r != KM_ERR_NOT_FOUND)
        return km_error_set(err, r, 0, "cannot read the sealed key of enclave %u", enclave_id);
    bool have = r == KM_OK;
    /* A rotation in progress: the enclave needs its next key back too. */
    struct store_sealed_key next;
    bool rotating = have && store_sealed_key_next(store, enclave_id, &next) == KM_OK;
    json_t *res = NULL;
    r = send_configure(pool, enclave_id, have ? k.sealed_key_hex : NULL,
                       rotating ? next.sealed_key_hex : NULL, &res, err);
    if (rotating)
        store_sealed_key_clear(&next);
    if (r == KM_ERR_REMOTE)
        km_error_prefix(err, "enclave %u refused its sealed identity key (epoch %lld)", enclave_id,
                        (long long)k.key_epoch);
    if (r == KM_OK && !have)
        r = record_created(store, enclave_id, res, err);
    if (r == KM_OK && have)
        log_info(LOG_COMP, "enclave %u restored identity key epoch %lld from its sealed key",
                 enclave_id, (long long)k.key_epoch);
    store_sealed_key_clear(&k);
    if (r != KM_OK) {
        json_decref(res);
        return r;
    }
    json_decref(*info);
    *info = res;
    return KM_OK;
}
