/*
 * payload.h - the plaintexts inside the protocol's encrypted fields
 * (docs/PROTOCOL.md "Encrypted values"): the session-encryption contexts,
 * the JSON plaintexts (tweaks, adaptor configs, nonces, partial signatures,
 * adaptor results), the binary plaintexts bound to a session and user, and
 * the signing-approval preimage.
 *
 * Enclaves decrypt and decode these; participants (src/client) encode and
 * encrypt them. Decoders take the decrypted bytes (untrusted: the gateway
 * chose the ciphertext) as (const uint8_t *, size_t) and are as strict as
 * the command codecs (schema.h).
 *
 * Pure: no I/O, no crypto. The binary packers handle secrets (the session
 * secret) only in caller-provided fixed-size arrays.
 */
#ifndef KM_PROTOCOL_PAYLOAD_H
#define KM_PROTOCOL_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/uuid.h"
#include "protocol/commands.h"
#include "protocol/schema.h"

/* ---- Session-encryption contexts ---------------------------------------- */

#define PROTO_CTX_TWEAK          "taproot_tweak"
#define PROTO_CTX_MESSAGE        "session_data"
#define PROTO_CTX_ADAPTOR        "adaptor_configs"
#define PROTO_CTX_NONCES         "nonce_data"
#define PROTO_CTX_PSIGS          "signature_data"
#define PROTO_CTX_AGGKEY         "aggregate_public_key"
#define PROTO_CTX_SUBSET_AGGKEY  "subset_aggregate_public_key"
#define PROTO_CTX_SIGNATURE      "signature"
#define PROTO_CTX_ADAPTOR_RESULT "adaptor_signatures"
/* A nonce-pool entry's public nonce: a context of its own, so that a pool
 * nonce and a signing session's nonce_data never pass for each other. */
#define PROTO_CTX_POOL_NONCE "pool_nonce"
/* HKDF info of the key behind aggregate_check. */
#define PROTO_INFO_AGGREGATE_CHECK "aggregate_check"
/* BIP-340 tag of the signing-approval digest. */
#define PROTO_TAG_APPROVAL "KeyMeld/signing-approval"

/* ---- Tweak JSON ------------------------------------------------------------ */

enum proto_tweak_type {
    PROTO_TWEAK_NONE = 0,
    PROTO_TWEAK_UNSPENDABLE_TAPROOT, /* BIP-86: key path only */
    PROTO_TWEAK_TAPROOT_MERKLE_ROOT, /* BIP-341 with a script tree */
    PROTO_TWEAK_PLAIN,               /* BIP-327 plain ApplyTweak */
    PROTO_TWEAK_XONLY,               /* BIP-327 x-only ApplyTweak */
};

/* {"type":"none"} | {"type":"unspendable_taproot"} |
 * {"type":"taproot_with_merkle_root","merkle_root":hex32} |
 * {"type":"plain_tweak","tweak":hex32} | {"type":"x_only_tweak","tweak":hex32}.
 * merkle_root is present exactly for taproot_with_merkle_root, tweak exactly
 * for the two BIP-327 modes. */
struct proto_tweak {
    int type; /* enum proto_tweak_type */
    bool has_merkle_root;
    uint8_t merkle_root[32];
    bool has_tweak;
    uint8_t tweak[32];
};
PROTO_CODEC(tweak)

/* ---- Adaptor JSON ---------------------------------------------------------- */

enum proto_adaptor_type {
    PROTO_ADAPTOR_SINGLE = 0, /* exactly one point */
    PROTO_ADAPTOR_AND,        /* two or more points, completed by their sum */
    PROTO_ADAPTOR_OR,         /* two or more points, one pre-signature each */
};

struct proto_adaptor_config {
    struct uuid adaptor_id;
    int adaptor_type; /* enum proto_adaptor_type */
    size_t n_points;
    uint8_t (*adaptor_points)[PROTO_PUBKEY_LEN];
};

/* A JSON array of 1..PROTO_MAX_ADAPTOR_CONFIGS configs with distinct ids. */
struct proto_adaptor_configs {
    size_t n_configs;
    struct proto_adaptor_config *configs;
};
PROTO_CODEC(adaptor_configs)

/* ---- Nonce and partial-signature JSON --------------------------------------- */

/* `unit` is the index of the signing unit within its item (docs/PROTOCOL.md
 * "Signing units"). */
struct proto_nonce_entry {
    struct uuid item_id;
    uint32_t unit;
    uint8_t pubnonce[PROTO_PUBNONCE_LEN];
};

struct proto_nonce_data {
    struct uuid signing_session_id;
    struct uuid user_id;
    size_t n_nonces;
    struct proto_nonce_entry *nonces;
};
PROTO_CODEC(nonce_data)

struct proto_psig_entry {
    struct uuid item_id;
    uint32_t unit;
    uint8_t psig[PROTO_PSIG_LEN];
};

struct proto_psig_data {
    struct uuid signing_session_id;
    struct uuid user_id;
    size_t n_partial_signatures;
    struct proto_psig_entry *partial_signatures;
};
PROTO_CODEC(psig_data)

/* The public nonce of one participant in one nonce-pool entry, bound to the
 * keygen (not to a signing session: the pool is filled before any signing
 * exists), the user and the entry. */
struct proto_pool_nonce {
    struct uuid keygen_session_id;
    struct uuid user_id;
    uint8_t entry_id[PROTO_POOL_ENTRY_ID_LEN];
    uint8_t pubnonce[PROTO_PUBNONCE_LEN];
};
PROTO_CODEC(pool_nonce)

/* ---- Adaptor result JSON ----------------------------------------------------- */

struct proto_adaptor_result {
    struct uuid adaptor_id;
    int adaptor_type;                        /* enum proto_adaptor_type */
    uint32_t branch;                         /* or: index of the point; single/and: 0 */
    uint8_t adaptor_point[PROTO_PUBKEY_LEN]; /* the sum for "and" */
    uint8_t presignature[PROTO_SIG_LEN];
    uint32_t nonce_parity; /* 0 or 1 */
};

/* A JSON array: one entry per signing unit of the item, in unit order. */
struct proto_adaptor_results {
    size_t n_results;
    struct proto_adaptor_result *results;
};
PROTO_CODEC(adaptor_results)

/* ---- Bound binary plaintexts --------------------------------------------------- */

#define PROTO_SECRET_LEN       32
#define PROTO_BOUND_SECRET_LEN (16 + PROTO_SECRET_LEN)
#define PROTO_BOUND_PUBKEY_LEN (16 + 16 + PROTO_PUBKEY_LEN)

/* keygen_session_id(16) || secret(32): the coordinator enclave's
 * re-encryption of the session secret to another enclave. */
void proto_bound_secret_pack(uint8_t out[PROTO_BOUND_SECRET_LEN], const struct uuid *keygen_id,
                             const uint8_t secret[PROTO_SECRET_LEN]);
/* Unpacks p[0..len) if it is bound to keygen_id. Returns KM_OK or
 * KM_ERR_INVALID (length or session mismatch; secret zeroed). */
int proto_bound_secret_unpack(uint8_t secret[PROTO_SECRET_LEN], const uint8_t *p, size_t len,
                              const struct uuid *keygen_id) KM_WUR;

/* keygen_session_id(16) || user_id(16) || pubkey(33): a participant's public
 * key as one enclave sends it to another. */
void proto_bound_pubkey_pack(uint8_t out[PROTO_BOUND_PUBKEY_LEN], const struct uuid *keygen_id,
                             const struct uuid *user_id, const uint8_t pubkey[PROTO_PUBKEY_LEN]);
/* Returns KM_OK or KM_ERR_INVALID (length, session or user mismatch). The
 * key itself is not validated here. */
int proto_bound_pubkey_unpack(uint8_t pubkey[PROTO_PUBKEY_LEN], const uint8_t *p, size_t len,
                              const struct uuid *keygen_id, const struct uuid *user_id) KM_WUR;

/* ---- Signing approval ------------------------------------------------------------ */

/* Size of the approval preimage for n items. */
#define PROTO_APPROVAL_PREIMAGE_LEN(n) (16 + 16 + 8 + 4 + (size_t)(n) * (16 + PROTO_MSG_LEN))

/*
 * The bytes a participant's auth key approves (docs/PROTOCOL.md
 * "signing_init"): signing_session_id(16) || keygen_session_id(16) ||
 * timestamp(u64 BE) || n_items(u32 BE) || n x (item_id(16) || msg(32)).
 * The digest signed with BIP-340 is tagged_hash(PROTO_TAG_APPROVAL, these).
 * Returns the length written; out must hold PROTO_APPROVAL_PREIMAGE_LEN(n)
 * bytes (n <= PROTO_MAX_ITEMS, else BUG).
 */
size_t proto_approval_preimage(uint8_t *out, size_t cap, const struct uuid *signing_id,
                               const struct uuid *keygen_id, uint64_t timestamp,
                               const struct uuid *item_ids, const uint8_t (*msgs)[PROTO_MSG_LEN],
                               size_t n);

#endif /* KM_PROTOCOL_PAYLOAD_H */
