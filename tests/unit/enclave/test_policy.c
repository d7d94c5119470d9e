/*
 * test_policy.c - every check in enclave/policy.c on its own: the enclave
 * list and subsets of keygen_init, the 32-byte message rule, the session
 * size bounds, the approval time window and approval signatures.
 */
#include "test.h"

#include <string.h>

#include "client/participant.h"
#include "crypto/schnorr.h"
#include "enclave/policy.h"
#include "common/banned.h"

struct kg_args {
    struct proto_keygen_init_args a;
    struct proto_enclave_key enclaves[3];
    struct uuid parts[3];
    struct proto_subset_def subset;
    struct uuid members[2];
    struct keypair kp[3];
};

static void kg_args_init(struct kg_args *k)
{
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(keypair_generate(&k->kp[i]));
        k->enclaves[i].enclave_id = (uint32_t)i;
        memcpy(k->enclaves[i].public_key, k->kp[i].pubkey, 33);
        CHECK_OK(uuid_v7_new(&k->parts[i]));
    }
    k->members[0] = k->parts[0];
    k->members[1] = k->parts[2];
    CHECK_OK(uuid_v7_new(&k->subset.subset_id));
    k->subset.n_participants = 2;
    k->subset.participants = k->members;
    k->a.n_enclaves = 3;
    k->a.enclaves = k->enclaves;
    k->a.n_participants = 3;
    k->a.participants = k->parts;
    k->a.n_subsets = 1;
    k->a.subsets = &k->subset;
}

static void expect(int r, const struct en_err *e, enum proto_code code, const char *want)
{
    CHECK_ERR(r, KM_ERR_INVALID);
    CHECK_EQ(e->code, code);
    CHECK_CONTAINS(e->msg, want);
}

static void test_keygen_init(void **state)
{
    (void)state;
    struct kg_args k;
    struct en_err e;
    size_t self = 99;
    kg_args_init(&k);
    CHECK_OK(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, true, 1));
    CHECK_EQ(self, 1);
    CHECK_OK(policy_keygen_init(&e, &self, &k.a, k.kp[2].pubkey, false, 0));
    CHECK_EQ(self, 2);
    expect(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, true, 2), &e,
           PROTO_E_INVALID_ARGUMENT, "as enclave 1, but this is enclave 2");
    struct keypair other;
    CHECK_OK(keypair_generate(&other));
    expect(policy_keygen_init(&e, &self, &k.a, other.pubkey, false, 0), &e,
           PROTO_E_INVALID_ARGUMENT, "not in \"enclaves\"");
    k.enclaves[2].enclave_id = 0;
    expect(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, false, 0), &e,
           PROTO_E_INVALID_ARGUMENT, "enclave 0 is listed twice");
    k.enclaves[2].enclave_id = 2;
    memcpy(k.enclaves[2].public_key, k.kp[0].pubkey, 33);
    expect(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, false, 0), &e,
           PROTO_E_INVALID_ARGUMENT, "have the same public key");
    k.enclaves[2].public_key[0] = 0x04;
    expect(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, false, 0), &e, PROTO_E_INVALID_KEY,
           "not a valid secp256k1 point");
    memcpy(k.enclaves[2].public_key, k.kp[2].pubkey, 33);
    CHECK_OK(uuid_v7_new(&k.members[1]));
    expect(policy_keygen_init(&e, &self, &k.a, k.kp[1].pubkey, false, 0), &e,
           PROTO_E_INVALID_ARGUMENT, "who is not a participant");
    for (int i = 0; i < 3; i++)
        keypair_clear(&k.kp[i]);
    keypair_clear(&other);
}

static void test_message_and_size(void **state)
{
    (void)state;
    struct en_err e;
    struct uuid id;
    CHECK_OK(uuid_v7_new(&id));
    CHECK_OK(policy_message(&e, 32, &id));
    expect(policy_message(&e, 33, &id), &e, PROTO_E_INVALID_ARGUMENT, "got 33 bytes");
    expect(policy_message(&e, 0, &id), &e, PROTO_E_INVALID_ARGUMENT, "got 0 bytes");
    CHECK_OK(policy_signing_size(&e, PROTO_MAX_UNITS, PROTO_MAX_SIGNER_UNITS));
    expect(policy_signing_size(&e, PROTO_MAX_UNITS + 1, 1), &e, PROTO_E_LIMIT_EXCEEDED,
           "signing units");
    expect(policy_signing_size(&e, 1, PROTO_MAX_SIGNER_UNITS + 1), &e, PROTO_E_LIMIT_EXCEEDED,
           "signer-units");
}

static void test_timestamp_window(void **state)
{
    (void)state;
    CHECK(policy_timestamp_fresh(1000, 1000));
    CHECK(policy_timestamp_fresh(1000, 1000 - POLICY_APPROVAL_MAX_AGE_SECS));
    CHECK(!policy_timestamp_fresh(1000, 1000 - POLICY_APPROVAL_MAX_AGE_SECS - 1));
    CHECK(policy_timestamp_fresh(1000, 1000 + POLICY_APPROVAL_MAX_AHEAD_SECS));
    CHECK(!policy_timestamp_fresh(1000, 1000 + POLICY_APPROVAL_MAX_AHEAD_SECS + 1));
    CHECK(!policy_timestamp_fresh(1000, UINT64_MAX));
    CHECK(!policy_timestamp_fresh(UINT64_MAX, 0));
}

static void test_approvals(void **state)
{
    (void)state;
    struct uuid sid, kid, items[2], user, other;
    uint8_t msgs[2][32];
    struct keypair auth;
    struct en_err e;
    CHECK_OK(uuid_v7_new(&sid));
    CHECK_OK(uuid_v7_new(&kid));
    CHECK_OK(uuid_v7_new(&items[0]));
    CHECK_OK(uuid_v7_new(&items[1]));
    CHECK_OK(uuid_v7_new(&user));
    CHECK_OK(uuid_v7_new(&other));
    CHECK_OK(keypair_generate(&auth));
    memset(msgs, 0x5c, sizeof(msgs));
    struct proto_approval ap[2] = {{.user_id = other, .timestamp = 5000},
                                   {.user_id = user, .timestamp = 5000}};
    CHECK_OK(participant_approval_sign(ap[1].signature, &auth, &sid, &kid, 5000, items,
                                       (const uint8_t(*)[32])msgs, 2));
    /* The client's signature verifies over the policy's digest. */
    uint8_t digest[32];
    policy_approval_digest(digest, &sid, &kid, 5000, items, (const uint8_t(*)[32])msgs, 2);
    CHECK_OK(schnorr_verify(ap[1].signature, 64, digest, 32, auth.xonly, 32));
    struct policy_signer req = {.user_id = user};
    memcpy(req.auth_pubkey, auth.xonly, 32);
    struct policy_approval_input in = {.signing_id = &sid,
                                       .keygen_id = &kid,
                                       .item_ids = items,
                                       .msgs = (const uint8_t(*)[32])msgs,
                                       .n_items = 2,
                                       .approvals = ap,
                                       .n_approvals = 2,
                                       .required = &req,
                                       .n_required = 1,
                                       .now_secs = 5100};
    CHECK_OK(policy_approvals(&e, &in));
    /* Nobody required: nothing checked (the other approval is not ours). */
    in.n_required = 0;
    CHECK_OK(policy_approvals(&e, &in));
    in.n_required = 1;
    in.now_secs = 5000 + POLICY_APPROVAL_MAX_AGE_SECS + 1;
    expect(policy_approvals(&e, &in), &e, PROTO_E_INVALID_APPROVAL, "stale or from the future");
    in.now_secs = 5100;
    /* Another message, another session, another key. */
    msgs[1][0] ^= 1;
    expect(policy_approvals(&e, &in), &e, PROTO_E_INVALID_APPROVAL, "does not verify");
    msgs[1][0] ^= 1;
    in.signing_id = &kid;
    expect(policy_approvals(&e, &in), &e, PROTO_E_INVALID_APPROVAL, "does not verify");
    in.signing_id = &sid;
    req.auth_pubkey[5] ^= 1;
    CHECK_ERR(policy_approvals(&e, &in), KM_ERR_INVALID);
    req.auth_pubkey[5] ^= 1;
    in.n_approvals = 1;
    expect(policy_approvals(&e, &in), &e, PROTO_E_APPROVAL_REQUIRED, "requires a signing approval");
    keypair_clear(&auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_keygen_init),
        TEST(test_message_and_size),
        TEST(test_timestamp_window),
        TEST(test_approvals),
    };
    return RUN_TESTS("enclave.policy", tests);
}
