/*
 * policy.h - what the enclave accepts and what it will sign (STYLE.md rule
 * 3: "the enclave validates what it signs"). Each check is a pure function
 * of its inputs, tested on its own (tests/unit/enclave/test_policy.c):
 *
 *  - keygen_init: the enclave list (distinct ids, valid distinct keys, this
 *    enclave in it exactly once, under its configured id), subsets drawn
 *    from the participants;
 *  - messages: only 32-byte digests the enclave decrypted itself;
 *  - work bounds of a signing session (units, signer-units);
 *  - signing approvals: a fresh BIP-340 signature by the participant's auth
 *    key over the session and every (item, message) it will sign.
 *
 * On refusal each returns KM_ERR_INVALID with a protocol code and message in
 * *e (struct en_err, enclave/internal.h).
 */
#ifndef KM_ENCLAVE_POLICY_H
#define KM_ENCLAVE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enclave/internal.h"

/* Approval timestamps: at most this old, at most this far ahead. */
#define POLICY_APPROVAL_MAX_AGE_SECS   300
#define POLICY_APPROVAL_MAX_AHEAD_SECS 60

/*
 * Checks keygen_init's enclave list and subsets against this enclave.
 * Out: *self  index of this enclave's entry in a->enclaves
 * In:  self_pk      this enclave's public key
 *      has_id, id   this enclave's configured id (ENCLAVE_ID / configure)
 */
int policy_keygen_init(struct en_err *e, size_t *self, const struct proto_keygen_init_args *a,
                       const uint8_t self_pk[PROTO_PUBKEY_LEN], bool has_id, uint32_t id) KM_WUR;

/* A decrypted message must be exactly PROTO_MSG_LEN bytes. */
int policy_message(struct en_err *e, size_t len, const struct uuid *item_id) KM_WUR;

/* A signing session's size: units and signer-units within the limits. */
int policy_signing_size(struct en_err *e, size_t units, size_t signer_units) KM_WUR;

/* true if ts (Unix seconds) is within the approval window around now. */
bool policy_timestamp_fresh(uint64_t now, uint64_t ts);

/* The digest an approval signs: tagged_hash(PROTO_TAG_APPROVAL, preimage)
 * with the preimage of proto_approval_preimage. */
void policy_approval_digest(uint8_t out[32], const struct uuid *signing_id,
                            const struct uuid *keygen_id, uint64_t timestamp,
                            const struct uuid *item_ids, const uint8_t (*msgs)[PROTO_MSG_LEN],
                            size_t n_items);

/* A participant whose approval is required. */
struct policy_signer {
    struct uuid user_id;
    uint8_t auth_pubkey[PROTO_XONLY_LEN];
};

struct policy_approval_input {
    const struct uuid *signing_id;
    const struct uuid *keygen_id;
    const struct uuid *item_ids; /* n_items */
    const uint8_t (*msgs)[PROTO_MSG_LEN];
    size_t n_items;
    const struct proto_approval *approvals; /* as received */
    size_t n_approvals;
    const struct policy_signer *required; /* local signers that asked for approval */
    size_t n_required;
    uint64_t now_secs; /* wall clock */
};

/*
 * Every required signer must have an approval (approval_required) that is
 * fresh and verifies under its auth key (invalid_approval). Approvals for
 * other users are ignored (another enclave checks them).
 */
int policy_approvals(struct en_err *e, const struct policy_approval_input *in) KM_WUR;

#endif /* KM_ENCLAVE_POLICY_H */
