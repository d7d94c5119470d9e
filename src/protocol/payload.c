#include "protocol/payload.h"

#include <string.h>

#include "common/buf.h"
#include "common/secure.h"
#include "protocol/schema_defs.h"
#include "common/banned.h"

/* ---- Tweak ------------------------------------------------------------------ */

static const char *const tweak_names[] = {
    "none", "unspendable_taproot", "taproot_with_merkle_root", "plain_tweak", "x_only_tweak", NULL,
};

static int check_tweak(const void *obj, struct km_error *err)
{
    const struct proto_tweak *t = obj;
    bool want_root = t->type == PROTO_TWEAK_TAPROOT_MERKLE_ROOT;
    bool want_tweak = t->type == PROTO_TWEAK_PLAIN || t->type == PROTO_TWEAK_XONLY;
    if (t->has_merkle_root != want_root)
        return km_error_set(err, KM_ERR_INVALID, 0, "\"merkle_root\" is %s for type \"%s\"",
                            want_root ? "required" : "not allowed", tweak_names[t->type]);
    if (t->has_tweak != want_tweak)
        return km_error_set(err, KM_ERR_INVALID, 0, "\"tweak\" is %s for type \"%s\"",
                            want_tweak ? "required" : "not allowed", tweak_names[t->type]);
    return KM_OK;
}

static const struct proto_field tweak_fields[] = {
    FENUM(proto_tweak, type, tweak_names, 0),
    FHEX_P(proto_tweak, merkle_root, 32, has_merkle_root),
    FHEX_P(proto_tweak, tweak, 32, has_tweak),
};
PROTO_SCHEMA(tweak, "taproot tweak", tweak_fields, check_tweak);

/* ---- Adaptor configs ----------------------------------------------------------- */

static const char *const adaptor_names[] = {"single", "and", "or", NULL};

static int check_adaptor_config(const void *obj, struct km_error *err)
{
    const struct proto_adaptor_config *c = obj;
    if (c->adaptor_type == PROTO_ADAPTOR_SINGLE && c->n_points != 1)
        return km_error_set(err, KM_ERR_INVALID, 0, "a \"single\" config has exactly one point");
    if (c->adaptor_type != PROTO_ADAPTOR_SINGLE && c->n_points < 2)
        return km_error_set(err, KM_ERR_INVALID, 0, "an \"%s\" config needs two or more points",
                            adaptor_names[c->adaptor_type]);
    return KM_OK;
}

static const struct proto_field adaptor_config_fields[] = {
    FUUID(proto_adaptor_config, adaptor_id, 0),
    FENUM(proto_adaptor_config, adaptor_type, adaptor_names, 0),
    FHEXARR(proto_adaptor_config, adaptor_points, n_points, PROTO_PUBKEY_LEN, 1,
            PROTO_MAX_ADAPTOR_POINTS, 0),
};
static const struct proto_schema adaptor_config_schema = {
    .name = "adaptor config",
    .size = sizeof(struct proto_adaptor_config),
    .fields = adaptor_config_fields,
    .nfields = KM_ARRAY_LEN(adaptor_config_fields),
    .check = check_adaptor_config,
};

static const struct proto_field adaptor_configs_fields[] = {
    FARR(proto_adaptor_configs, configs, n_configs, &adaptor_config_schema, 1,
         PROTO_MAX_ADAPTOR_CONFIGS, PF_F_DISTINCT),
};
const struct proto_schema proto_adaptor_configs_schema = {
    .name = "adaptor configs",
    .size = sizeof(struct proto_adaptor_configs),
    .fields = adaptor_configs_fields,
    .nfields = 1,
    .root_array = true,
};

/* ---- Nonces and partial signatures ------------------------------------------------ */

static const struct proto_field nonce_entry_fields[] = {
    FUUID(proto_nonce_entry, item_id, 0),
    FU32(proto_nonce_entry, unit, 0, PROTO_MAX_UNITS - 1, 0),
    FHEX(proto_nonce_entry, pubnonce, PROTO_PUBNONCE_LEN, 0),
};
PROTO_ELEM_SCHEMA(nonce_entry_schema, proto_nonce_entry, nonce_entry_fields);

static const struct proto_field nonce_data_fields[] = {
    FUUID(proto_nonce_data, signing_session_id, 0),
    FUUID(proto_nonce_data, user_id, 0),
    FARR(proto_nonce_data, nonces, n_nonces, &nonce_entry_schema, 1, PROTO_MAX_UNITS, 0),
};
PROTO_SCHEMA(nonce_data, "nonce data", nonce_data_fields, NULL);

static const struct proto_field pool_nonce_fields[] = {
    FUUID(proto_pool_nonce, keygen_session_id, 0),
    FUUID(proto_pool_nonce, user_id, 0),
    FHEX(proto_pool_nonce, entry_id, PROTO_POOL_ENTRY_ID_LEN, 0),
    FHEX(proto_pool_nonce, pubnonce, PROTO_PUBNONCE_LEN, 0),
};
PROTO_SCHEMA(pool_nonce, "pool nonce", pool_nonce_fields, NULL);

static const struct proto_field psig_entry_fields[] = {
    FUUID(proto_psig_entry, item_id, 0),
    FU32(proto_psig_entry, unit, 0, PROTO_MAX_UNITS - 1, 0),
    FHEX(proto_psig_entry, psig, PROTO_PSIG_LEN, 0),
};
PROTO_ELEM_SCHEMA(psig_entry_schema, proto_psig_entry, psig_entry_fields);

static const struct proto_field psig_data_fields[] = {
    FUUID(proto_psig_data, signing_session_id, 0),
    FUUID(proto_psig_data, user_id, 0),
    FARR(proto_psig_data, partial_signatures, n_partial_signatures, &psig_entry_schema, 1,
         PROTO_MAX_UNITS, 0),
};
PROTO_SCHEMA(psig_data, "partial signature data", psig_data_fields, NULL);

/* ---- Adaptor results ---------------------------------------------------------------- */

static const struct proto_field adaptor_result_fields[] = {
    FUUID(proto_adaptor_result, adaptor_id, 0),
    FENUM(proto_adaptor_result, adaptor_type, adaptor_names, 0),
    FU32(proto_adaptor_result, branch, 0, PROTO_MAX_ADAPTOR_POINTS - 1, 0),
    FHEX(proto_adaptor_result, adaptor_point, PROTO_PUBKEY_LEN, 0),
    FHEX(proto_adaptor_result, presignature, PROTO_SIG_LEN, 0),
    FU32(proto_adaptor_result, nonce_parity, 0, 1, 0),
};
PROTO_ELEM_SCHEMA(adaptor_result_schema, proto_adaptor_result, adaptor_result_fields);

static const struct proto_field adaptor_results_fields[] = {
    FARR(proto_adaptor_results, results, n_results, &adaptor_result_schema, 1, PROTO_MAX_UNITS, 0),
};
const struct proto_schema proto_adaptor_results_schema = {
    .name = "adaptor results",
    .size = sizeof(struct proto_adaptor_results),
    .fields = adaptor_results_fields,
    .nfields = 1,
    .root_array = true,
};

/* ---- Bound binary plaintexts ---------------------------------------------------------- */

void proto_bound_secret_pack(uint8_t out[PROTO_BOUND_SECRET_LEN], const struct uuid *keygen_id,
                             const uint8_t secret[PROTO_SECRET_LEN])
{
    memcpy(out, keygen_id->b, 16);
    memcpy(out + 16, secret, PROTO_SECRET_LEN);
}

int proto_bound_secret_unpack(uint8_t secret[PROTO_SECRET_LEN], const uint8_t *p, size_t len,
                              const struct uuid *keygen_id)
{
    /* The session id is public: a plain comparison is fine. */
    if (len != PROTO_BOUND_SECRET_LEN || memcmp(p, keygen_id->b, 16) != 0) {
        secure_wipe(secret, PROTO_SECRET_LEN);
        return KM_ERR_INVALID;
    }
    memcpy(secret, p + 16, PROTO_SECRET_LEN);
    return KM_OK;
}

void proto_bound_pubkey_pack(uint8_t out[PROTO_BOUND_PUBKEY_LEN], const struct uuid *keygen_id,
                             const struct uuid *user_id, const uint8_t pubkey[PROTO_PUBKEY_LEN])
{
    memcpy(out, keygen_id->b, 16);
    memcpy(out + 16, user_id->b, 16);
    memcpy(out + 32, pubkey, PROTO_PUBKEY_LEN);
}

int proto_bound_pubkey_unpack(uint8_t pubkey[PROTO_PUBKEY_LEN], const uint8_t *p, size_t len,
                              const struct uuid *keygen_id, const struct uuid *user_id)
{
    if (len != PROTO_BOUND_PUBKEY_LEN || memcmp(p, keygen_id->b, 16) != 0 ||
        memcmp(p + 16, user_id->b, 16) != 0)
        return KM_ERR_INVALID;
    memcpy(pubkey, p + 32, PROTO_PUBKEY_LEN);
    return KM_OK;
}

/* ---- Approval preimage ------------------------------------------------------------------ */

size_t proto_approval_preimage(uint8_t *out, size_t cap, const struct uuid *signing_id,
                               const struct uuid *keygen_id, uint64_t timestamp,
                               const struct uuid *item_ids, const uint8_t (*msgs)[PROTO_MSG_LEN],
                               size_t n)
{
    size_t need = PROTO_APPROVAL_PREIMAGE_LEN(n);
    if (n > PROTO_MAX_ITEMS || cap < need)
        KM_BUG("approval preimage: %zu items, %zu bytes of room", n, cap);
    uint8_t *p = out;
    memcpy(p, signing_id->b, 16);
    memcpy(p + 16, keygen_id->b, 16);
    buf_store_be64(p + 32, timestamp);
    buf_store_be32(p + 40, (uint32_t)n);
    p += 44;
    for (size_t i = 0; i < n; i++, p += 16 + PROTO_MSG_LEN) {
        memcpy(p, item_ids[i].b, 16);
        memcpy(p + 16, msgs[i], PROTO_MSG_LEN);
    }
    return need;
}
