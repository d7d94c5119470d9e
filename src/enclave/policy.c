#include "enclave/policy.h"

#include <string.h>

#include "crypto/ctx.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

static int check_enclaves(struct en_err *e, size_t *self, const struct proto_keygen_init_args *a,
                          const uint8_t self_pk[PROTO_PUBKEY_LEN], bool has_id, uint32_t id)
{
    size_t found = 0;
    for (size_t i = 0; i < a->n_enclaves; i++) {
        const struct proto_enclave_key *k = &a->enclaves[i];
        if (!en_point_valid(k->public_key))
            return en_fail(e, PROTO_E_INVALID_KEY,
                           "enclaves[%zu]: the public key of enclave %u "
                           "is not a valid secp256k1 point",
                           i, k->enclave_id);
        for (size_t j = 0; j < i; j++) {
            if (a->enclaves[j].enclave_id == k->enclave_id)
                return en_fail(e, PROTO_E_INVALID_ARGUMENT, "enclave %u is listed twice",
                               k->enclave_id);
            if (memcmp(a->enclaves[j].public_key, k->public_key, PROTO_PUBKEY_LEN) == 0)
                return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                               "enclaves %u and %u have the same public key",
                               a->enclaves[j].enclave_id, k->enclave_id);
        }
        if (memcmp(k->public_key, self_pk, PROTO_PUBKEY_LEN) == 0) {
            *self = i;
            found++;
        }
    }
    if (found == 0)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                       "this enclave's public key is not in \"enclaves\" (did it restart?)");
    if (has_id && a->enclaves[*self].enclave_id != id)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                       "\"enclaves\" lists this enclave's key as enclave %u, but this is "
                       "enclave %u",
                       a->enclaves[*self].enclave_id, id);
    return KM_OK;
}

static bool is_participant(const struct proto_keygen_init_args *a, const struct uuid *u)
{
    for (size_t i = 0; i < a->n_participants; i++)
        if (uuid_equal(&a->participants[i], u))
            return true;
    return false;
}

int policy_keygen_init(struct en_err *e, size_t *self, const struct proto_keygen_init_args *a,
                       const uint8_t self_pk[PROTO_PUBKEY_LEN], bool has_id, uint32_t id)
{
    int r = check_enclaves(e, self, a, self_pk, has_id, id);
    if (r != KM_OK)
        return r;
    for (size_t i = 0; i < a->n_subsets; i++) {
        const struct proto_subset_def *s = &a->subsets[i];
        for (size_t j = 0; j < s->n_participants; j++) {
            if (!is_participant(a, &s->participants[j])) {
                char sid[UUID_STR_LEN + 1], uid[UUID_STR_LEN + 1];
                uuid_format(sid, &s->subset_id);
                uuid_format(uid, &s->participants[j]);
                return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                               "subset %s names %s, who is not a participant", sid, uid);
            }
        }
    }
    return KM_OK;
}

int policy_message(struct en_err *e, size_t len, const struct uuid *item_id)
{
    if (len != PROTO_MSG_LEN) {
        char id[UUID_STR_LEN + 1];
        uuid_format(id, item_id);
        return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                       "item %s: the message must be a 32-byte digest (got %zu bytes)", id, len);
    }
    return KM_OK;
}

int policy_signing_size(struct en_err *e, size_t units, size_t signer_units)
{
    if (units > PROTO_MAX_UNITS)
        return en_fail(e, PROTO_E_LIMIT_EXCEEDED, "%zu signing units (at most %d per session)",
                       units, PROTO_MAX_UNITS);
    if (signer_units > PROTO_MAX_SIGNER_UNITS)
        return en_fail(e, PROTO_E_LIMIT_EXCEEDED,
                       "%zu signer-units (units x signers; at most %d per session)", signer_units,
                       PROTO_MAX_SIGNER_UNITS);
    return KM_OK;
}

bool policy_timestamp_fresh(uint64_t now, uint64_t ts)
{
    if (ts > now)
        return ts - now <= POLICY_APPROVAL_MAX_AHEAD_SECS;
    return now - ts <= POLICY_APPROVAL_MAX_AGE_SECS;
}

void policy_approval_digest(uint8_t out[32], const struct uuid *signing_id,
                            const struct uuid *keygen_id, uint64_t timestamp,
                            const struct uuid *item_ids, const uint8_t (*msgs)[PROTO_MSG_LEN],
                            size_t n_items)
{
    uint8_t pre[PROTO_APPROVAL_PREIMAGE_LEN(PROTO_MAX_ITEMS)];
    size_t n = proto_approval_preimage(pre, sizeof(pre), signing_id, keygen_id, timestamp, item_ids,
                                       msgs, n_items);
    if (secp256k1_tagged_sha256(crypto_ctx(), out, (const unsigned char *)PROTO_TAG_APPROVAL,
                                strlen(PROTO_TAG_APPROVAL), pre, n) != 1)
        KM_BUG("tagged hash failed");
}

static const struct proto_approval *find_approval(const struct policy_approval_input *in,
                                                  const struct uuid *user)
{
    for (size_t i = 0; i < in->n_approvals; i++)
        if (uuid_equal(&in->approvals[i].user_id, user))
            return &in->approvals[i];
    return NULL;
}

int policy_approvals(struct en_err *e, const struct policy_approval_input *in)
{
    for (size_t i = 0; i < in->n_required; i++) {
        const struct policy_signer *s = &in->required[i];
        char uid[UUID_STR_LEN + 1];
        uuid_format(uid, &s->user_id);
        const struct proto_approval *a = find_approval(in, &s->user_id);
        if (a == NULL)
            return en_fail(e, PROTO_E_APPROVAL_REQUIRED,
                           "user %s requires a signing approval and none was given", uid);
        if (!policy_timestamp_fresh(in->now_secs, a->timestamp))
            return en_fail(e, PROTO_E_INVALID_APPROVAL,
                           "the approval of user %s is stale or from the future (timestamp "
                           "%llu, now %llu; window -%ds/+%ds)",
                           uid, (unsigned long long)a->timestamp, (unsigned long long)in->now_secs,
                           POLICY_APPROVAL_MAX_AGE_SECS, POLICY_APPROVAL_MAX_AHEAD_SECS);
        uint8_t digest[32];
        policy_approval_digest(digest, in->signing_id, in->keygen_id, a->timestamp, in->item_ids,
                               in->msgs, in->n_items);
        if (schnorr_verify(a->signature, PROTO_SIG_LEN, digest, sizeof(digest), s->auth_pubkey,
                           PROTO_XONLY_LEN) != KM_OK)
            return en_fail(e, PROTO_E_INVALID_APPROVAL,
                           "the approval of user %s does not verify under its auth key", uid);
    }
    return KM_OK;
}
