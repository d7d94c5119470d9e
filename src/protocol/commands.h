/*
 * commands.h - the enclave command set (docs/PROTOCOL.md): argument and
 * result structs, their codecs, the limits, and the error codes.
 *
 * Both sides use the same codecs. The gateway fills an args struct and
 * encodes it (proto_<cmd>_args_encode), sends it with pool_request(), and
 * decodes the reply's result (proto_<cmd>_result_decode). The enclave
 * decodes the args and encodes the result. Every struct owns what its
 * decoder allocated: release with proto_<name>_clear (schema.h).
 *
 * Bytes are hex on the wire; a struct proto_blob holds a ciphertext (ECIES
 * to an enclave key, or session-encrypted: docs/PROTOCOL.md "Encrypted
 * values"). Optional fields: an empty blob, a nil UUID or a zero count means
 * "absent" and is omitted by the encoder.
 *
 * Pure: no I/O, no crypto.
 */
#ifndef KM_PROTOCOL_COMMANDS_H
#define KM_PROTOCOL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/uuid.h"
#include "protocol/schema.h"

/* ---- Limits (docs/PROTOCOL.md) ------------------------------------------ */

#define PROTO_MIN_ENCLAVES        2
#define PROTO_MAX_ENCLAVES        64
#define PROTO_MIN_PARTICIPANTS    2
#define PROTO_MAX_PARTICIPANTS    1000
#define PROTO_MAX_SUBSETS         200
#define PROTO_MAX_ITEMS           100
#define PROTO_MAX_ADAPTOR_CONFIGS 16   /* per item */
#define PROTO_MAX_ADAPTOR_POINTS  16   /* per config */
#define PROTO_MAX_UNITS           1000 /* signing units per session */
/* Signer-units per session: the sum over units of the unit's signers. Bounds
 * the nonces, partial signatures and verifications of one session. */
#define PROTO_MAX_SIGNER_UNITS 10000
#define PROTO_MAX_TIMEOUT_SECS 86400
#define PROTO_MAX_ENCLAVE_ID   UINT32_MAX

#define PROTO_PUBKEY_LEN           33 /* compressed secp256k1 point */
#define PROTO_XONLY_LEN            32
#define PROTO_MSG_LEN              32 /* the enclave signs 32-byte digests only */
#define PROTO_SIG_LEN              64
#define PROTO_PUBNONCE_LEN         66
#define PROTO_PSIG_LEN             32
#define PROTO_CHECK_LEN            32 /* aggregate_check */
#define PROTO_VERSION_MAX          31
#define PROTO_ATTESTATION_NAME_MAX 15
#define PROTO_KEY_WORD_MAX         23
#define PROTO_SEALED_KEY_MAX       4172 /* bytes: enclave/keysource.h SEALED_KEY_MAX */
#define PROTO_AWS_ID_MAX           128
#define PROTO_AWS_SECRET_MAX       128
#define PROTO_AWS_TOKEN_MAX        4096
#define PROTO_MAX_REKEY            4096        /* ciphertexts per rekey */
#define PROTO_ATTEST_NONCE_MAX     512         /* bytes (the NSM's limit) */
#define PROTO_ATTEST_DOC_MAX       (32 * 1024) /* bytes of one document */
/* Nonce pools (docs/PROTOCOL.md "Nonce pools"). */
#define PROTO_POOL_ENTRY_ID_LEN 16 /* random; also NonceGen's extra_in */
#define PROTO_POOL_FILL_MAX     64 /* entries per nonce_pool_fill */

/* Decoded sizes of the encrypted fields (bytes, after hex). */
#define PROTO_ECIES_MAX         512         /* secrets, keys, public keys */
#define PROTO_SEALED_SMALL_MAX  1024        /* messages, tweaks, keys, sigs */
#define PROTO_SEALED_CONFIG_MAX (64 * 1024) /* adaptor configs of one item */
#define PROTO_SEALED_LARGE_MAX  (1 << 20)   /* nonces, partial sigs, adaptor results */

/* ---- Error codes (the "code" of an error reply) ------------------------- */

enum proto_code {
    PROTO_E_INVALID_REQUEST = 0,
    PROTO_E_UNKNOWN_COMMAND,
    PROTO_E_INVALID_ARGUMENT,
    PROTO_E_NOT_FOUND,
    PROTO_E_INVALID_STATE,
    PROTO_E_LIMIT_EXCEEDED,
    PROTO_E_DECRYPT_FAILED,
    PROTO_E_INVALID_KEY,
    PROTO_E_INVALID_NONCE,
    PROTO_E_INVALID_PARTIAL_SIGNATURE,
    PROTO_E_VERIFICATION_FAILED,
    PROTO_E_APPROVAL_REQUIRED,
    PROTO_E_INVALID_APPROVAL,
    PROTO_E_BUSY,
    PROTO_E_TOO_LARGE,
    PROTO_E_INTERNAL,
    /* signing_sign: a named pool entry is unknown, expired or already used
     * (final for that attempt: restart the signing with fresh nonces) */
    PROTO_E_NONCE_UNAVAILABLE,
    PROTO_E_COUNT_
};

/* The snake_case name ("invalid_state"). BUG for an out-of-range code. */
const char *proto_code_name(enum proto_code code);
/* Parses a name; KM_OK or KM_ERR_INVALID (an unknown code: treat it as
 * internal). */
int proto_code_parse(enum proto_code *out, const char *name) KM_WUR;
/* Whether sending the same command again may succeed (only "busy"). */
bool proto_code_retryable(enum proto_code code);

/* ---- Shared element types ------------------------------------------------ */

/* Arguments of commands without arguments ({}): ping, get_public_info. */
struct proto_empty {
    char unused_;
};
PROTO_CODEC(empty)

struct proto_enclave_key {
    uint32_t enclave_id;
    uint8_t public_key[PROTO_PUBKEY_LEN];
};

/* A ciphertext for one enclave: {"enclave_id":1,"ciphertext":"<hex>"}. */
struct proto_enclave_blob {
    uint32_t enclave_id;
    struct proto_blob ciphertext;
};

/* A ciphertext about one user. The JSON name of the blob depends on the
 * list: "ciphertext" (public keys), "encrypted_nonces",
 * "encrypted_partial_signatures". */
struct proto_user_blob {
    struct uuid user_id;
    struct proto_blob ciphertext;
};

/* ---- System commands ----------------------------------------------------- */

struct proto_ping_result {
    bool pong;
};
PROTO_CODEC(ping_result)

struct proto_active_sessions {
    uint32_t keygen;
    uint32_t signing;
};

/* Result of get_public_info and configure. An enclave with a sealer has no
 * identity key until `configure` hands it its sealed key (or lets it create
 * one): until then key_state is "awaiting_configure" and public_key absent. */
struct proto_public_info {
    bool has_enclave_id; /* false until ENCLAVE_ID or configure sets it */
    uint32_t enclave_id;
    bool has_public_key;
    uint8_t public_key[PROTO_PUBKEY_LEN];
    uint64_t key_epoch;
    char key_state[PROTO_KEY_WORD_MAX + 1];  /* "ready", "awaiting_configure" */
    char sealer[PROTO_KEY_WORD_MAX + 1];     /* "none", "file", "aws-kms" */
    char key_origin[PROTO_KEY_WORD_MAX + 1]; /* "ephemeral", "created", "restored", "rotated" */
    /* configure only: the key the enclave holds, sealed, whenever the enclave
     * has a sealer (created, restored or rotated); absent without one */
    struct proto_blob sealed_key;
    struct uuid instance_id; /* new at every enclave start */
    uint64_t uptime_secs;
    struct proto_active_sessions active_sessions;
    char version[PROTO_VERSION_MAX + 1];
    char attestation[PROTO_ATTESTATION_NAME_MAX + 1]; /* "nsm", "development", "none" */
};
PROTO_CODEC(public_info)

/* get_attestation: a fresh attestation document binding this enclave's
 * identity key (docs/PROTOCOL.md, docs/ATTESTATION.md). The nonce is
 * optional (empty = none). */
struct proto_get_attestation_args {
    struct proto_blob nonce;
};
PROTO_CODEC(get_attestation_args)

struct proto_attestation_result {
    char attestation[PROTO_ATTESTATION_NAME_MAX + 1]; /* the provider */
    uint8_t public_key[PROTO_PUBKEY_LEN];             /* what the document attests */
    uint64_t key_epoch;
    struct proto_blob document; /* raw COSE_Sign1 */
};
PROTO_CODEC(attestation_result)

/* configure: the enclave id, and for an enclave with a sealer its sealed
 * key (empty: create one, stamped with key_epoch, 0 = 1), the next key of a
 * rotation in progress, and for SEALER=aws-kms the instance's temporary AWS
 * credentials (never stored or logged by the enclave). */
struct proto_configure_args {
    uint32_t enclave_id;
    struct proto_blob sealed_key;
    uint64_t key_epoch;
    struct proto_blob next_sealed_key;
    char aws_access_key_id[PROTO_AWS_ID_MAX + 1];
    char aws_secret_access_key[PROTO_AWS_SECRET_MAX + 1];
    char aws_session_token[PROTO_AWS_TOKEN_MAX + 1];
};
PROTO_CODEC(configure_args)

/* Exactly one of the two ids. */
struct proto_clear_session_args {
    struct uuid keygen_session_id;
    struct uuid signing_session_id;
};
PROTO_CODEC(clear_session_args)

struct proto_clear_session_result {
    bool cleared;
};
PROTO_CODEC(clear_session_result)

/* ---- Key rotation (docs/PROTOCOL.md "Key rotation") ---------------------- */

/* rotate_key_begin / rotate_key_commit: the epoch of the new key. */
struct proto_rotation_args {
    uint64_t key_epoch;
};
PROTO_CODEC(rotation_args)

/* The next key (begin) or the current one (commit). */
struct proto_rotation_result {
    uint8_t public_key[PROTO_PUBKEY_LEN];
    uint64_t key_epoch;
    struct proto_blob sealed_key;
};
PROTO_CODEC(rotation_result)

struct proto_ciphertext {
    struct proto_blob ciphertext;
};

/* rekey: ECIES ciphertexts to the current key, returned (same order) as
 * ECIES ciphertexts of the same plaintexts to the next key (key_epoch). */
struct proto_rekey_args {
    uint64_t key_epoch;
    size_t n_ciphertexts;
    struct proto_ciphertext *ciphertexts;
};
PROTO_CODEC(rekey_args)

struct proto_rekey_result {
    size_t n_ciphertexts;
    struct proto_ciphertext *ciphertexts;
};
PROTO_CODEC(rekey_result)

/* ---- Keygen -------------------------------------------------------------- */

/* check_private_key: whether a participant's encrypted_private_key opens
 * with this enclave's current key and holds a valid secp256k1 secret key,
 * so a registration encrypted to the wrong enclave is refused when it
 * arrives. Result {}; a bad key answers decrypt_failed, invalid_argument
 * (wrong length) or invalid_key. Nothing is kept. */
struct proto_check_private_key_args {
    struct proto_blob encrypted_private_key;
};
PROTO_CODEC(check_private_key_args)

struct proto_subset_def {
    struct uuid subset_id;
    size_t n_participants;
    struct uuid *participants;
};

struct proto_keygen_init_args {
    struct uuid keygen_session_id;
    bool coordinator;
    struct proto_blob encrypted_session_secret;
    size_t n_enclaves;
    struct proto_enclave_key *enclaves;
    size_t n_participants;
    struct uuid *participants;
    struct proto_blob encrypted_taproot_tweak; /* optional */
    size_t n_subsets;                          /* optional */
    struct proto_subset_def *subsets;
    uint32_t timeout_secs;
};
PROTO_CODEC(keygen_init_args)

/* The coordinator's result lists one re-encrypted secret per other enclave;
 * the others' result is empty. */
struct proto_keygen_init_result {
    size_t n_encrypted_session_secrets;
    struct proto_enclave_blob *encrypted_session_secrets;
};
PROTO_CODEC(keygen_init_result)

struct proto_participant_reg {
    struct uuid user_id;
    struct proto_blob encrypted_private_key;
    uint8_t auth_pubkey[PROTO_XONLY_LEN];
    bool require_signing_approval;
};

struct proto_keygen_add_participants_args {
    struct uuid keygen_session_id;
    size_t n_participants;
    struct proto_participant_reg *participants;
};
PROTO_CODEC(keygen_add_participants_args)

struct proto_participant_pubkeys {
    struct uuid user_id;
    size_t n_encrypted_public_keys;
    struct proto_enclave_blob *encrypted_public_keys;
};

struct proto_keygen_add_participants_result {
    size_t n_participants;
    struct proto_participant_pubkeys *participants;
    bool complete;
    uint32_t known;
    uint32_t expected;
    bool has_aggregate_check; /* once complete */
    uint8_t aggregate_check[PROTO_CHECK_LEN];
};
PROTO_CODEC(keygen_add_participants_result)

struct proto_keygen_distribute_public_keys_args {
    struct uuid keygen_session_id;
    size_t n_public_keys;
    struct proto_user_blob *public_keys; /* "ciphertext" */
};
PROTO_CODEC(keygen_distribute_public_keys_args)

struct proto_keygen_progress {
    bool complete;
    uint32_t known;
    uint32_t expected;
    bool has_aggregate_check;
    uint8_t aggregate_check[PROTO_CHECK_LEN];
};
PROTO_CODEC(keygen_progress)

/* Arguments naming one keygen session (keygen_get_aggregate). */
struct proto_keygen_ref_args {
    struct uuid keygen_session_id;
};
PROTO_CODEC(keygen_ref_args)

struct proto_subset_key {
    struct uuid subset_id;
    struct proto_blob encrypted_aggregate_public_key;
};

struct proto_keygen_get_aggregate_result {
    struct proto_blob encrypted_aggregate_public_key;
    uint32_t participant_count;
    size_t n_subsets;
    struct proto_subset_key *subsets;
    uint8_t aggregate_check[PROTO_CHECK_LEN];
};
PROTO_CODEC(keygen_get_aggregate_result)

/* ---- Signing ------------------------------------------------------------- */

struct proto_item {
    struct uuid item_id;
    struct proto_blob encrypted_message;         /* sealed(session_data, msg32) */
    struct proto_blob encrypted_taproot_tweak;   /* optional */
    struct uuid subset_id;                       /* optional */
    struct proto_blob encrypted_adaptor_configs; /* optional */
};

struct proto_approval {
    struct uuid user_id;
    uint64_t timestamp;
    uint8_t signature[PROTO_SIG_LEN];
};

struct proto_signing_init_args {
    struct uuid signing_session_id;
    struct uuid keygen_session_id;
    uint32_t timeout_secs;
    size_t n_items;
    struct proto_item *items;
    size_t n_approvals; /* optional */
    struct proto_approval *approvals;
};
PROTO_CODEC(signing_init_args)

struct proto_signing_init_result {
    size_t n_nonces;
    struct proto_user_blob *nonces; /* "encrypted_nonces" */
    uint32_t units;
};
PROTO_CODEC(signing_init_result)

struct proto_signing_distribute_nonces_args {
    struct uuid signing_session_id;
    size_t n_nonces;
    struct proto_user_blob *nonces; /* "encrypted_nonces" */
};
PROTO_CODEC(signing_distribute_nonces_args)

struct proto_signing_distribute_nonces_result {
    size_t n_partial_signatures;
    struct proto_user_blob *partial_signatures; /* "encrypted_partial_signatures" */
};
PROTO_CODEC(signing_distribute_nonces_result)

struct proto_signing_finalize_args {
    struct uuid signing_session_id;
    size_t n_partial_signatures;
    struct proto_user_blob *partial_signatures; /* "encrypted_partial_signatures" */
};
PROTO_CODEC(signing_finalize_args)

/* Exactly one of the two blobs. */
struct proto_item_result {
    struct uuid item_id;
    struct proto_blob encrypted_signature;          /* sealed(signature, sig64) */
    struct proto_blob encrypted_adaptor_signatures; /* sealed(adaptor_signatures, JSON) */
};

struct proto_signing_finalize_result {
    size_t n_results;
    struct proto_item_result *results;
};
PROTO_CODEC(signing_finalize_result)

/* ---- Nonce pools (docs/PROTOCOL.md "Nonce pools") -------------------------- */

/* nonce_pool_fill: count fresh pool entries for a completed keygen. */
struct proto_nonce_pool_fill_args {
    struct uuid keygen_session_id;
    uint32_t count; /* 1..PROTO_POOL_FILL_MAX */
};
PROTO_CODEC(nonce_pool_fill_args)

/* One entry: its id and, per local participant, the sealed public nonce
 * (context "pool_nonce", payload.h struct proto_pool_nonce). The JSON name
 * of each blob is "encrypted_nonce". */
struct proto_pool_entry {
    uint8_t entry_id[PROTO_POOL_ENTRY_ID_LEN];
    size_t n_nonces;
    struct proto_user_blob *nonces;
};

struct proto_nonce_pool_fill_result {
    size_t n_entries;
    struct proto_pool_entry *entries;
    uint32_t ttl_secs; /* the entries expire this long after the fill */
};
PROTO_CODEC(nonce_pool_fill_result)

/* The public nonce of one signer for one signing unit, from the pool entry
 * entry_id of the signer's enclave, sealed as nonce_pool_fill returned it. */
struct proto_pool_nonce_ref {
    struct uuid user_id;
    struct uuid item_id;
    uint32_t unit;
    uint8_t entry_id[PROTO_POOL_ENTRY_ID_LEN];
    struct proto_blob encrypted_nonce;
};

/* signing_sign: signing_init's arguments plus one pool nonce per signer and
 * unit; replaces signing_init + signing_distribute_nonces. The result is
 * signing_distribute_nonces's. */
struct proto_signing_sign_args {
    struct proto_signing_init_args init; /* its keys sit beside "nonces" in the JSON */
    size_t n_nonces;
    struct proto_pool_nonce_ref *nonces;
};
PROTO_CODEC(signing_sign_args)

/* ---- The command table ---------------------------------------------------- */

enum proto_cmd {
    PROTO_CMD_PING = 0,
    PROTO_CMD_GET_PUBLIC_INFO,
    PROTO_CMD_CONFIGURE,
    PROTO_CMD_KEYGEN_INIT,
    PROTO_CMD_KEYGEN_ADD_PARTICIPANTS,
    PROTO_CMD_KEYGEN_DISTRIBUTE_PUBLIC_KEYS,
    PROTO_CMD_KEYGEN_GET_AGGREGATE,
    PROTO_CMD_SIGNING_INIT,
    PROTO_CMD_SIGNING_DISTRIBUTE_NONCES,
    PROTO_CMD_SIGNING_FINALIZE,
    PROTO_CMD_CLEAR_SESSION,
    PROTO_CMD_GET_ATTESTATION,
    PROTO_CMD_ROTATE_KEY_BEGIN,
    PROTO_CMD_REKEY,
    PROTO_CMD_ROTATE_KEY_COMMIT,
    PROTO_CMD_CHECK_PRIVATE_KEY,
    PROTO_CMD_NONCE_POOL_FILL,
    PROTO_CMD_SIGNING_SIGN,
    PROTO_CMD_COUNT_
};

struct proto_command {
    enum proto_cmd cmd;
    const char *name;                  /* the envelope's "cmd" */
    const struct proto_schema *args;   /* decodes "args" */
    const struct proto_schema *result; /* decodes "result" */
};

/* The command named name (NUL-terminated), or NULL if there is none. */
const struct proto_command *proto_command_find(const char *name);
/* The entry of cmd (BUG if out of range). */
const struct proto_command *proto_command_get(enum proto_cmd cmd);

#endif /* KM_PROTOCOL_COMMANDS_H */
