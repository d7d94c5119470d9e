#include "protocol/commands.h"

#include <string.h>

#include "protocol/schema_defs.h"
#include "common/banned.h"

/* ---- Error codes ---------------------------------------------------------- */

static const char *const code_names[PROTO_E_COUNT_] = {
    [PROTO_E_INVALID_REQUEST] = "invalid_request",
    [PROTO_E_UNKNOWN_COMMAND] = "unknown_command",
    [PROTO_E_INVALID_ARGUMENT] = "invalid_argument",
    [PROTO_E_NOT_FOUND] = "not_found",
    [PROTO_E_INVALID_STATE] = "invalid_state",
    [PROTO_E_LIMIT_EXCEEDED] = "limit_exceeded",
    [PROTO_E_DECRYPT_FAILED] = "decrypt_failed",
    [PROTO_E_INVALID_KEY] = "invalid_key",
    [PROTO_E_INVALID_NONCE] = "invalid_nonce",
    [PROTO_E_INVALID_PARTIAL_SIGNATURE] = "invalid_partial_signature",
    [PROTO_E_VERIFICATION_FAILED] = "verification_failed",
    [PROTO_E_APPROVAL_REQUIRED] = "approval_required",
    [PROTO_E_INVALID_APPROVAL] = "invalid_approval",
    [PROTO_E_BUSY] = "busy",
    [PROTO_E_TOO_LARGE] = "too_large",
    [PROTO_E_INTERNAL] = "internal",
    [PROTO_E_NONCE_UNAVAILABLE] = "nonce_unavailable",
};

const char *proto_code_name(enum proto_code code)
{
    if ((unsigned)code >= PROTO_E_COUNT_)
        KM_BUG("error code %d out of range", (int)code);
    return code_names[code];
}

int proto_code_parse(enum proto_code *out, const char *name)
{
    for (int i = 0; i < PROTO_E_COUNT_; i++) {
        if (strcmp(code_names[i], name) == 0) {
            *out = (enum proto_code)i;
            return KM_OK;
        }
    }
    *out = PROTO_E_INTERNAL;
    return KM_ERR_INVALID;
}

bool proto_code_retryable(enum proto_code code)
{
    return code == PROTO_E_BUSY;
}

/* ---- Shared elements ------------------------------------------------------ */

const struct proto_schema proto_empty_schema = {
    .name = "args", .size = sizeof(struct proto_empty), .fields = NULL, .nfields = 0};

static const struct proto_field enclave_key_fields[] = {
    FU32(proto_enclave_key, enclave_id, 0, PROTO_MAX_ENCLAVE_ID, 0),
    FHEX(proto_enclave_key, public_key, PROTO_PUBKEY_LEN, 0),
};
PROTO_ELEM_SCHEMA(enclave_key_schema, proto_enclave_key, enclave_key_fields);

static const struct proto_field enclave_blob_fields[] = {
    FU32(proto_enclave_blob, enclave_id, 0, PROTO_MAX_ENCLAVE_ID, 0),
    FBLOB(proto_enclave_blob, "ciphertext", ciphertext, 1, PROTO_ECIES_MAX, 0),
};
PROTO_ELEM_SCHEMA(enclave_blob_schema, proto_enclave_blob, enclave_blob_fields);

/* The same struct under three names of its blob. */
static const struct proto_field pubkey_blob_fields[] = {
    FUUID(proto_user_blob, user_id, 0),
    FBLOB(proto_user_blob, "ciphertext", ciphertext, 1, PROTO_ECIES_MAX, 0),
};
PROTO_ELEM_SCHEMA(pubkey_blob_schema, proto_user_blob, pubkey_blob_fields);

static const struct proto_field nonces_blob_fields[] = {
    FUUID(proto_user_blob, user_id, 0),
    FBLOB(proto_user_blob, "encrypted_nonces", ciphertext, 1, PROTO_SEALED_LARGE_MAX, 0),
};
PROTO_ELEM_SCHEMA(nonces_blob_schema, proto_user_blob, nonces_blob_fields);

static const struct proto_field psigs_blob_fields[] = {
    FUUID(proto_user_blob, user_id, 0),
    FBLOB(proto_user_blob, "encrypted_partial_signatures", ciphertext, 1, PROTO_SEALED_LARGE_MAX,
          0),
};
PROTO_ELEM_SCHEMA(psigs_blob_schema, proto_user_blob, psigs_blob_fields);

/* ---- System --------------------------------------------------------------- */

static const struct proto_field ping_result_fields[] = {
    FBOOL(proto_ping_result, pong, 0),
};
PROTO_SCHEMA(ping_result, "ping result", ping_result_fields, NULL);

static const struct proto_field active_sessions_fields[] = {
    FU32(proto_active_sessions, keygen, 0, UINT32_MAX, 0),
    FU32(proto_active_sessions, signing, 0, UINT32_MAX, 0),
};
PROTO_ELEM_SCHEMA(active_sessions_schema, proto_active_sessions, active_sessions_fields);

static const struct proto_field public_info_fields[] = {
    FU32_P(proto_public_info, enclave_id, 0, PROTO_MAX_ENCLAVE_ID, has_enclave_id),
    FHEX_P(proto_public_info, public_key, PROTO_PUBKEY_LEN, has_public_key),
    FU64(proto_public_info, key_epoch, 0, PROTO_U53_MAX, 0),
    FSTR(proto_public_info, key_state, PROTO_KEY_WORD_MAX, PF_F_OPTIONAL),
    FSTR(proto_public_info, sealer, PROTO_KEY_WORD_MAX, PF_F_OPTIONAL),
    FSTR(proto_public_info, key_origin, PROTO_KEY_WORD_MAX, PF_F_OPTIONAL),
    FBLOB(proto_public_info, "sealed_key", sealed_key, 1, PROTO_SEALED_KEY_MAX, PF_F_OPTIONAL),
    FU64(proto_public_info, uptime_secs, 0, PROTO_U53_MAX, 0),
    FOBJ(proto_public_info, active_sessions, &active_sessions_schema, 0),
    FSTR(proto_public_info, version, PROTO_VERSION_MAX, 0),
    FSTR(proto_public_info, attestation, PROTO_ATTESTATION_NAME_MAX, PF_F_OPTIONAL),
    FUUID(proto_public_info, instance_id, PF_F_OPTIONAL),
};
PROTO_SCHEMA(public_info, "public info", public_info_fields, NULL);

static const struct proto_field rotation_args_fields[] = {
    FU64(proto_rotation_args, key_epoch, 2, PROTO_U53_MAX, 0),
};
PROTO_SCHEMA(rotation_args, "rotation args", rotation_args_fields, NULL);

static const struct proto_field rotation_result_fields[] = {
    FHEX(proto_rotation_result, public_key, PROTO_PUBKEY_LEN, 0),
    FU64(proto_rotation_result, key_epoch, 1, PROTO_U53_MAX, 0),
    FBLOB(proto_rotation_result, "sealed_key", sealed_key, 1, PROTO_SEALED_KEY_MAX, 0),
};
PROTO_SCHEMA(rotation_result, "rotation result", rotation_result_fields, NULL);

static const struct proto_field ciphertext_fields[] = {
    FBLOB(proto_ciphertext, "ciphertext", ciphertext, 1, PROTO_ECIES_MAX, 0),
};
PROTO_ELEM_SCHEMA(ciphertext_schema, proto_ciphertext, ciphertext_fields);

static const struct proto_field check_private_key_args_fields[] = {
    FBLOB(proto_check_private_key_args, "encrypted_private_key", encrypted_private_key, 1,
          PROTO_ECIES_MAX, 0),
};
PROTO_SCHEMA(check_private_key_args, "check_private_key args", check_private_key_args_fields, NULL);

static const struct proto_field rekey_args_fields[] = {
    FU64(proto_rekey_args, key_epoch, 2, PROTO_U53_MAX, 0),
    FARR(proto_rekey_args, ciphertexts, n_ciphertexts, &ciphertext_schema, 1, PROTO_MAX_REKEY, 0),
};
PROTO_SCHEMA(rekey_args, "rekey args", rekey_args_fields, NULL);

static const struct proto_field rekey_result_fields[] = {
    FARR(proto_rekey_result, ciphertexts, n_ciphertexts, &ciphertext_schema, 1, PROTO_MAX_REKEY, 0),
};
PROTO_SCHEMA(rekey_result, "rekey result", rekey_result_fields, NULL);

static const struct proto_field get_attestation_args_fields[] = {
    FBLOB(proto_get_attestation_args, "nonce", nonce, 1, PROTO_ATTEST_NONCE_MAX, PF_F_OPTIONAL),
};
PROTO_SCHEMA(get_attestation_args, "get_attestation args", get_attestation_args_fields, NULL);

static const struct proto_field attestation_result_fields[] = {
    FSTR(proto_attestation_result, attestation, PROTO_ATTESTATION_NAME_MAX, 0),
    FHEX(proto_attestation_result, public_key, PROTO_PUBKEY_LEN, 0),
    FU64(proto_attestation_result, key_epoch, 0, PROTO_U53_MAX, 0),
    FBLOB(proto_attestation_result, "document", document, 1, PROTO_ATTEST_DOC_MAX, 0),
};
PROTO_SCHEMA(attestation_result, "attestation result", attestation_result_fields, NULL);

static const struct proto_field configure_args_fields[] = {
    FU32(proto_configure_args, enclave_id, 0, PROTO_MAX_ENCLAVE_ID, 0),
    FBLOB(proto_configure_args, "sealed_key", sealed_key, 1, PROTO_SEALED_KEY_MAX, PF_F_OPTIONAL),
    FU64(proto_configure_args, key_epoch, 0, PROTO_U53_MAX, PF_F_OPTIONAL),
    FBLOB(proto_configure_args, "next_sealed_key", next_sealed_key, 1, PROTO_SEALED_KEY_MAX,
          PF_F_OPTIONAL),
    FSTR(proto_configure_args, aws_access_key_id, PROTO_AWS_ID_MAX, PF_F_OPTIONAL),
    FSTR(proto_configure_args, aws_secret_access_key, PROTO_AWS_SECRET_MAX, PF_F_OPTIONAL),
    FSTR(proto_configure_args, aws_session_token, PROTO_AWS_TOKEN_MAX, PF_F_OPTIONAL),
};
PROTO_SCHEMA(configure_args, "configure args", configure_args_fields, NULL);

static int check_clear_session(const void *obj, struct km_error *err)
{
    const struct proto_clear_session_args *a = obj;
    if (uuid_is_nil(&a->keygen_session_id) == uuid_is_nil(&a->signing_session_id))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "exactly one of \"keygen_session_id\" and \"signing_session_id\"");
    return KM_OK;
}

static const struct proto_field clear_session_args_fields[] = {
    FUUID(proto_clear_session_args, keygen_session_id, PF_F_OPTIONAL),
    FUUID(proto_clear_session_args, signing_session_id, PF_F_OPTIONAL),
};
PROTO_SCHEMA(clear_session_args, "clear_session args", clear_session_args_fields,
             check_clear_session);

static const struct proto_field clear_session_result_fields[] = {
    FBOOL(proto_clear_session_result, cleared, 0),
};
PROTO_SCHEMA(clear_session_result, "clear_session result", clear_session_result_fields, NULL);

/* ---- Keygen --------------------------------------------------------------- */

static const struct proto_field subset_def_fields[] = {
    FUUID(proto_subset_def, subset_id, 0),
    FUUIDS(proto_subset_def, participants, n_participants, 2, PROTO_MAX_PARTICIPANTS,
           PF_F_DISTINCT),
};
PROTO_ELEM_SCHEMA(subset_def_schema, proto_subset_def, subset_def_fields);

static const struct proto_field keygen_init_args_fields[] = {
    FUUID(proto_keygen_init_args, keygen_session_id, 0),
    FBOOL(proto_keygen_init_args, coordinator, 0),
    FBLOB(proto_keygen_init_args, "encrypted_session_secret", encrypted_session_secret, 1,
          PROTO_ECIES_MAX, 0),
    FARR(proto_keygen_init_args, enclaves, n_enclaves, &enclave_key_schema, PROTO_MIN_ENCLAVES,
         PROTO_MAX_ENCLAVES, 0),
    FUUIDS(proto_keygen_init_args, participants, n_participants, PROTO_MIN_PARTICIPANTS,
           PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
    FBLOB(proto_keygen_init_args, "encrypted_taproot_tweak", encrypted_taproot_tweak, 1,
          PROTO_SEALED_SMALL_MAX, PF_F_OPTIONAL),
    FARR(proto_keygen_init_args, subsets, n_subsets, &subset_def_schema, 0, PROTO_MAX_SUBSETS,
         PF_F_OPTIONAL | PF_F_DISTINCT),
    FU32(proto_keygen_init_args, timeout_secs, 1, PROTO_MAX_TIMEOUT_SECS, 0),
};
PROTO_SCHEMA(keygen_init_args, "keygen_init args", keygen_init_args_fields, NULL);

static const struct proto_field keygen_init_result_fields[] = {
    FARR(proto_keygen_init_result, encrypted_session_secrets, n_encrypted_session_secrets,
         &enclave_blob_schema, 0, PROTO_MAX_ENCLAVES, PF_F_OPTIONAL),
};
PROTO_SCHEMA(keygen_init_result, "keygen_init result", keygen_init_result_fields, NULL);

static const struct proto_field participant_reg_fields[] = {
    FUUID(proto_participant_reg, user_id, 0),
    FBLOB(proto_participant_reg, "encrypted_private_key", encrypted_private_key, 1, PROTO_ECIES_MAX,
          0),
    FHEX(proto_participant_reg, auth_pubkey, PROTO_XONLY_LEN, 0),
    FBOOL(proto_participant_reg, require_signing_approval, 0),
};
PROTO_ELEM_SCHEMA(participant_reg_schema, proto_participant_reg, participant_reg_fields);

static const struct proto_field keygen_add_participants_args_fields[] = {
    FUUID(proto_keygen_add_participants_args, keygen_session_id, 0),
    FARR(proto_keygen_add_participants_args, participants, n_participants, &participant_reg_schema,
         1, PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_SCHEMA(keygen_add_participants_args, "keygen_add_participants args",
             keygen_add_participants_args_fields, NULL);

static const struct proto_field participant_pubkeys_fields[] = {
    FUUID(proto_participant_pubkeys, user_id, 0),
    FARR(proto_participant_pubkeys, encrypted_public_keys, n_encrypted_public_keys,
         &enclave_blob_schema, 0, PROTO_MAX_ENCLAVES, 0),
};
PROTO_ELEM_SCHEMA(participant_pubkeys_schema, proto_participant_pubkeys,
                  participant_pubkeys_fields);

static const struct proto_field keygen_add_participants_result_fields[] = {
    FARR(proto_keygen_add_participants_result, participants, n_participants,
         &participant_pubkeys_schema, 0, PROTO_MAX_PARTICIPANTS, 0),
    FBOOL(proto_keygen_add_participants_result, complete, 0),
    FU32(proto_keygen_add_participants_result, known, 0, PROTO_MAX_PARTICIPANTS, 0),
    FU32(proto_keygen_add_participants_result, expected, 0, PROTO_MAX_PARTICIPANTS, 0),
    FHEX_P(proto_keygen_add_participants_result, aggregate_check, PROTO_CHECK_LEN,
           has_aggregate_check),
};
PROTO_SCHEMA(keygen_add_participants_result, "keygen_add_participants result",
             keygen_add_participants_result_fields, NULL);

static const struct proto_field keygen_distribute_public_keys_args_fields[] = {
    FUUID(proto_keygen_distribute_public_keys_args, keygen_session_id, 0),
    FARR(proto_keygen_distribute_public_keys_args, public_keys, n_public_keys, &pubkey_blob_schema,
         1, PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_SCHEMA(keygen_distribute_public_keys_args, "keygen_distribute_public_keys args",
             keygen_distribute_public_keys_args_fields, NULL);

static const struct proto_field keygen_progress_fields[] = {
    FBOOL(proto_keygen_progress, complete, 0),
    FU32(proto_keygen_progress, known, 0, PROTO_MAX_PARTICIPANTS, 0),
    FU32(proto_keygen_progress, expected, 0, PROTO_MAX_PARTICIPANTS, 0),
    FHEX_P(proto_keygen_progress, aggregate_check, PROTO_CHECK_LEN, has_aggregate_check),
};
PROTO_SCHEMA(keygen_progress, "keygen progress", keygen_progress_fields, NULL);

static const struct proto_field keygen_ref_args_fields[] = {
    FUUID(proto_keygen_ref_args, keygen_session_id, 0),
};
PROTO_SCHEMA(keygen_ref_args, "args", keygen_ref_args_fields, NULL);

static const struct proto_field subset_key_fields[] = {
    FUUID(proto_subset_key, subset_id, 0),
    FBLOB(proto_subset_key, "encrypted_aggregate_public_key", encrypted_aggregate_public_key, 1,
          PROTO_SEALED_SMALL_MAX, 0),
};
PROTO_ELEM_SCHEMA(subset_key_schema, proto_subset_key, subset_key_fields);

static const struct proto_field keygen_get_aggregate_result_fields[] = {
    FBLOB(proto_keygen_get_aggregate_result, "encrypted_aggregate_public_key",
          encrypted_aggregate_public_key, 1, PROTO_SEALED_SMALL_MAX, 0),
    FU32(proto_keygen_get_aggregate_result, participant_count, PROTO_MIN_PARTICIPANTS,
         PROTO_MAX_PARTICIPANTS, 0),
    FARR(proto_keygen_get_aggregate_result, subsets, n_subsets, &subset_key_schema, 0,
         PROTO_MAX_SUBSETS, 0),
    FHEX(proto_keygen_get_aggregate_result, aggregate_check, PROTO_CHECK_LEN, 0),
};
PROTO_SCHEMA(keygen_get_aggregate_result, "keygen_get_aggregate result",
             keygen_get_aggregate_result_fields, NULL);

/* ---- Signing -------------------------------------------------------------- */

static const struct proto_field item_fields[] = {
    FUUID(proto_item, item_id, 0),
    FBLOB(proto_item, "encrypted_message", encrypted_message, 1, PROTO_SEALED_SMALL_MAX, 0),
    FBLOB(proto_item, "encrypted_taproot_tweak", encrypted_taproot_tweak, 1, PROTO_SEALED_SMALL_MAX,
          PF_F_OPTIONAL),
    FUUID(proto_item, subset_id, PF_F_OPTIONAL),
    FBLOB(proto_item, "encrypted_adaptor_configs", encrypted_adaptor_configs, 1,
          PROTO_SEALED_CONFIG_MAX, PF_F_OPTIONAL),
};
PROTO_ELEM_SCHEMA(item_schema, proto_item, item_fields);

static const struct proto_field approval_fields[] = {
    FUUID(proto_approval, user_id, 0),
    FU64(proto_approval, timestamp, 0, PROTO_U53_MAX, 0),
    FHEX(proto_approval, signature, PROTO_SIG_LEN, 0),
};
PROTO_ELEM_SCHEMA(approval_schema, proto_approval, approval_fields);

/* signing_init's keys, in struct st whose signing_init arguments are at
 * member path m: empty for signing_init itself, `init.` for signing_sign,
 * whose arguments are signing_init's plus the pool nonces. */
/* clang-format off */
#define SIGNING_INIT_FIELDS(st, m)                                                                 \
    {PF_BASE_(st, "signing_session_id", m signing_session_id, PF_UUID, 0)},                        \
    {PF_BASE_(st, "keygen_session_id", m keygen_session_id, PF_UUID, 0)},                          \
    {PF_BASE_(st, "timeout_secs", m timeout_secs, PF_U32, 0),                                      \
     .min = 1, .max = PROTO_MAX_TIMEOUT_SECS},                                                     \
    {PF_BASE_(st, "items", m items, PF_ARRAY, PF_F_DISTINCT),                                      \
     .count_off = offsetof(struct st, m n_items), .min = 1, .max = PROTO_MAX_ITEMS,                \
     .elem = &item_schema},                                                                        \
    {PF_BASE_(st, "approvals", m approvals, PF_ARRAY, PF_F_OPTIONAL | PF_F_DISTINCT),              \
     .count_off = offsetof(struct st, m n_approvals), .min = 0, .max = PROTO_MAX_PARTICIPANTS,     \
     .elem = &approval_schema}
/* clang-format on */

static const struct proto_field signing_init_args_fields[] = {
    SIGNING_INIT_FIELDS(proto_signing_init_args, ),
};
PROTO_SCHEMA(signing_init_args, "signing_init args", signing_init_args_fields, NULL);

static const struct proto_field signing_init_result_fields[] = {
    FARR(proto_signing_init_result, nonces, n_nonces, &nonces_blob_schema, 0,
         PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
    FU32(proto_signing_init_result, units, 1, PROTO_MAX_UNITS, 0),
};
PROTO_SCHEMA(signing_init_result, "signing_init result", signing_init_result_fields, NULL);

static const struct proto_field signing_distribute_nonces_args_fields[] = {
    FUUID(proto_signing_distribute_nonces_args, signing_session_id, 0),
    FARR(proto_signing_distribute_nonces_args, nonces, n_nonces, &nonces_blob_schema, 1,
         PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_SCHEMA(signing_distribute_nonces_args, "signing_distribute_nonces args",
             signing_distribute_nonces_args_fields, NULL);

static const struct proto_field signing_distribute_nonces_result_fields[] = {
    FARR(proto_signing_distribute_nonces_result, partial_signatures, n_partial_signatures,
         &psigs_blob_schema, 0, PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_SCHEMA(signing_distribute_nonces_result, "signing_distribute_nonces result",
             signing_distribute_nonces_result_fields, NULL);

static const struct proto_field signing_finalize_args_fields[] = {
    FUUID(proto_signing_finalize_args, signing_session_id, 0),
    FARR(proto_signing_finalize_args, partial_signatures, n_partial_signatures, &psigs_blob_schema,
         1, PROTO_MAX_PARTICIPANTS, PF_F_DISTINCT),
};
PROTO_SCHEMA(signing_finalize_args, "signing_finalize args", signing_finalize_args_fields, NULL);

static int check_item_result(const void *obj, struct km_error *err)
{
    const struct proto_item_result *r = obj;
    if ((r->encrypted_signature.len == 0) == (r->encrypted_adaptor_signatures.len == 0))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "exactly one of \"encrypted_signature\" and "
                            "\"encrypted_adaptor_signatures\"");
    return KM_OK;
}

static const struct proto_field item_result_fields[] = {
    FUUID(proto_item_result, item_id, 0),
    FBLOB(proto_item_result, "encrypted_signature", encrypted_signature, 1, PROTO_SEALED_SMALL_MAX,
          PF_F_OPTIONAL),
    FBLOB(proto_item_result, "encrypted_adaptor_signatures", encrypted_adaptor_signatures, 1,
          PROTO_SEALED_LARGE_MAX, PF_F_OPTIONAL),
};
static const struct proto_schema item_result_schema = {
    .name = "result",
    .size = sizeof(struct proto_item_result),
    .fields = item_result_fields,
    .nfields = KM_ARRAY_LEN(item_result_fields),
    .check = check_item_result,
};

static const struct proto_field signing_finalize_result_fields[] = {
    FARR(proto_signing_finalize_result, results, n_results, &item_result_schema, 1, PROTO_MAX_ITEMS,
         PF_F_DISTINCT),
};
PROTO_SCHEMA(signing_finalize_result, "signing_finalize result", signing_finalize_result_fields,
             NULL);

/* ---- Nonce pools ------------------------------------------------------------ */

static const struct proto_field nonce_pool_fill_args_fields[] = {
    FUUID(proto_nonce_pool_fill_args, keygen_session_id, 0),
    FU32(proto_nonce_pool_fill_args, count, 1, PROTO_POOL_FILL_MAX, 0),
};
PROTO_SCHEMA(nonce_pool_fill_args, "nonce_pool_fill args", nonce_pool_fill_args_fields, NULL);

static const struct proto_field pool_nonce_blob_fields[] = {
    FUUID(proto_user_blob, user_id, 0),
    FBLOB(proto_user_blob, "encrypted_nonce", ciphertext, 1, PROTO_SEALED_SMALL_MAX, 0),
};
PROTO_ELEM_SCHEMA(pool_nonce_blob_schema, proto_user_blob, pool_nonce_blob_fields);

static const struct proto_field pool_entry_fields[] = {
    FHEX(proto_pool_entry, entry_id, PROTO_POOL_ENTRY_ID_LEN, 0),
    FARR(proto_pool_entry, nonces, n_nonces, &pool_nonce_blob_schema, 1, PROTO_MAX_PARTICIPANTS,
         PF_F_DISTINCT),
};
PROTO_ELEM_SCHEMA(pool_entry_schema, proto_pool_entry, pool_entry_fields);

static const struct proto_field nonce_pool_fill_result_fields[] = {
    FARR(proto_nonce_pool_fill_result, entries, n_entries, &pool_entry_schema, 1,
         PROTO_POOL_FILL_MAX, 0),
    FU32(proto_nonce_pool_fill_result, ttl_secs, 1, PROTO_MAX_TIMEOUT_SECS, 0),
};
PROTO_SCHEMA(nonce_pool_fill_result, "nonce_pool_fill result", nonce_pool_fill_result_fields, NULL);

static const struct proto_field pool_nonce_ref_fields[] = {
    FUUID(proto_pool_nonce_ref, user_id, 0),
    FUUID(proto_pool_nonce_ref, item_id, 0),
    FU32(proto_pool_nonce_ref, unit, 0, PROTO_MAX_UNITS - 1, 0),
    FHEX(proto_pool_nonce_ref, entry_id, PROTO_POOL_ENTRY_ID_LEN, 0),
    FBLOB(proto_pool_nonce_ref, "encrypted_nonce", encrypted_nonce, 1, PROTO_SEALED_SMALL_MAX, 0),
};
PROTO_ELEM_SCHEMA(pool_nonce_ref_schema, proto_pool_nonce_ref, pool_nonce_ref_fields);

static const struct proto_field signing_sign_args_fields[] = {
    SIGNING_INIT_FIELDS(proto_signing_sign_args, init.),
    /* One per signer and unit: the handler checks coverage and duplicates. */
    FARR(proto_signing_sign_args, nonces, n_nonces, &pool_nonce_ref_schema, 1,
         PROTO_MAX_SIGNER_UNITS, 0),
};
PROTO_SCHEMA(signing_sign_args, "signing_sign args", signing_sign_args_fields, NULL);

/* ---- The command table ------------------------------------------------------ */

static const struct proto_command commands[PROTO_CMD_COUNT_] = {
    {PROTO_CMD_PING, "ping", &proto_empty_schema, &proto_ping_result_schema},
    {PROTO_CMD_GET_PUBLIC_INFO, "get_public_info", &proto_empty_schema, &proto_public_info_schema},
    {PROTO_CMD_CONFIGURE, "configure", &proto_configure_args_schema, &proto_public_info_schema},
    {PROTO_CMD_KEYGEN_INIT, "keygen_init", &proto_keygen_init_args_schema,
     &proto_keygen_init_result_schema},
    {PROTO_CMD_KEYGEN_ADD_PARTICIPANTS, "keygen_add_participants",
     &proto_keygen_add_participants_args_schema, &proto_keygen_add_participants_result_schema},
    {PROTO_CMD_KEYGEN_DISTRIBUTE_PUBLIC_KEYS, "keygen_distribute_public_keys",
     &proto_keygen_distribute_public_keys_args_schema, &proto_keygen_progress_schema},
    {PROTO_CMD_KEYGEN_GET_AGGREGATE, "keygen_get_aggregate", &proto_keygen_ref_args_schema,
     &proto_keygen_get_aggregate_result_schema},
    {PROTO_CMD_SIGNING_INIT, "signing_init", &proto_signing_init_args_schema,
     &proto_signing_init_result_schema},
    {PROTO_CMD_SIGNING_DISTRIBUTE_NONCES, "signing_distribute_nonces",
     &proto_signing_distribute_nonces_args_schema, &proto_signing_distribute_nonces_result_schema},
    {PROTO_CMD_SIGNING_FINALIZE, "signing_finalize", &proto_signing_finalize_args_schema,
     &proto_signing_finalize_result_schema},
    {PROTO_CMD_CLEAR_SESSION, "clear_session", &proto_clear_session_args_schema,
     &proto_clear_session_result_schema},
    {PROTO_CMD_GET_ATTESTATION, "get_attestation", &proto_get_attestation_args_schema,
     &proto_attestation_result_schema},
    {PROTO_CMD_ROTATE_KEY_BEGIN, "rotate_key_begin", &proto_rotation_args_schema,
     &proto_rotation_result_schema},
    {PROTO_CMD_REKEY, "rekey", &proto_rekey_args_schema, &proto_rekey_result_schema},
    {PROTO_CMD_ROTATE_KEY_COMMIT, "rotate_key_commit", &proto_rotation_args_schema,
     &proto_rotation_result_schema},
    {PROTO_CMD_CHECK_PRIVATE_KEY, "check_private_key", &proto_check_private_key_args_schema,
     &proto_empty_schema},
    {PROTO_CMD_NONCE_POOL_FILL, "nonce_pool_fill", &proto_nonce_pool_fill_args_schema,
     &proto_nonce_pool_fill_result_schema},
    {PROTO_CMD_SIGNING_SIGN, "signing_sign", &proto_signing_sign_args_schema,
     &proto_signing_distribute_nonces_result_schema},
};

const struct proto_command *proto_command_find(const char *name)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

const struct proto_command *proto_command_get(enum proto_cmd cmd)
{
    if ((unsigned)cmd >= PROTO_CMD_COUNT_)
        KM_BUG("command %d out of range", (int)cmd);
    return &commands[cmd];
}
