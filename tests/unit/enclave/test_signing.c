/*
 * test_signing.c - the signing commands (enclave/signing.c) in-process over
 * three enclaves: batches, every tweak mode, subsets, adaptor signatures
 * (single, and, or), approvals, and the refusals of the rounds (nonces
 * from non-participants, swapped or reused nonces, invalid partial
 * signatures naming the signer), each leaving the session usable.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "en_fixture.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/banned.h"

struct env {
    struct en_fixture f;
    struct drv_keygen kg;
};

/* Three enclaves, a completed keygen of n users. */
static void setup(struct env *e, size_t n_users, void (*tune)(struct drv_keygen *))
{
    struct km_error err;
    en_fixture_start(&e->f, 3, NULL);
    drv_keygen_setup(&e->kg, n_users, 3);
    if (tune)
        tune(&e->kg);
    if (drv_keygen_run(&e->f.d, &e->kg, &err) != KM_OK)
        fail_msg("keygen: %s", err.msg);
}

static void teardown(struct env *e)
{
    drv_keygen_release(&e->kg);
    en_fixture_stop(&e->f);
}

static void sign_ok(struct env *e, struct drv_signing *sg)
{
    struct km_error err;
    if (drv_sign_run(&e->f.d, &e->kg, sg, &err) != KM_OK)
        fail_msg("signing: %s", err.msg);
}

static void test_batch_plain(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 5);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);
    /* A second session on the same keygen. */
    drv_signing_setup(&sg, 1);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_tweak_modes(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    setup(&e, 3, en_keygen_taproot);
    drv_signing_setup(&sg, 6);
    /* Item 0 keeps the keygen's BIP-86 tweak; the others bring their own. */
    drv_item_set_tweak(&sg.items[1], PROTO_TWEAK_NONE, 0);
    drv_item_set_tweak(&sg.items[2], PROTO_TWEAK_TAPROOT_MERKLE_ROOT, 0x42);
    drv_item_set_tweak(&sg.items[3], PROTO_TWEAK_PLAIN, 0x07);
    drv_item_set_tweak(&sg.items[4], PROTO_TWEAK_XONLY, 0x09);
    drv_item_set_tweak(&sg.items[5], PROTO_TWEAK_UNSPENDABLE_TAPROOT, 0);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_five_users_and_subsets(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    setup(&e, 5, en_keygen_two_subsets);
    drv_signing_setup(&sg, 4);
    sg.items[1].subset = 0;
    sg.items[2].subset = 1;
    sg.items[3].subset = 1;
    drv_item_set_tweak(&sg.items[3], PROTO_TWEAK_NONE, 0);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);

    /* Only subset 0 signs: users 1, 2, 4 take part in nothing. */
    drv_signing_setup(&sg, 2);
    sg.items[0].subset = 0;
    sg.items[1].subset = 0;
    sign_ok(&e, &sg);
    CHECK_EQ(sg.n_nonces, 2);
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_adaptors(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    setup(&e, 3, en_keygen_taproot);
    drv_signing_setup(&sg, 3);
    drv_item_add_adaptor(&sg.items[0], PROTO_ADAPTOR_SINGLE, 1);
    drv_item_add_adaptor(&sg.items[1], PROTO_ADAPTOR_AND, 3);
    drv_item_add_adaptor(&sg.items[1], PROTO_ADAPTOR_OR, 2);
    sign_ok(&e, &sg);
    CHECK_EQ(sg.items[0].ar.n_results, 1);
    CHECK_EQ(sg.items[1].ar.n_results, 3);
    CHECK_EQ(sg.items[1].ar.results[2].branch, 1);
    drv_signing_release(&sg);
    teardown(&e);
}

static void approvals_needed(struct drv_keygen *kg)
{
    kg->users[0].require_approval = true;
    kg->users[2].require_approval = true;
}

static void test_approvals(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct env_reply rep;
    struct km_error err;
    setup(&e, 3, approvals_needed);
    drv_signing_setup(&sg, 2);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);

    /* Without approvals: refused by the enclaves of users 0 and 2. */
    drv_signing_setup(&sg, 1);
    json_t *args = drv_signing_init_args(&e.kg, &sg);
    json_object_del(args, "approvals");
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "approval_required", "requires a signing approval");
    CHECK_OK(drv_call(&e.f.d, 1, "signing_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    json_decref(args);

    /* An approval over other messages does not verify. */
    args = drv_signing_init_args(&e.kg, &sg);
    json_t *item = json_array_get(json_object_get(args, "items"), 0);
    struct drv_signing other;
    drv_signing_setup(&other, 1);
    other.items[0].id = sg.items[0].id;
    struct proto_blob msg;
    CHECK_OK(participant_seal_message(&msg, e.kg.secret, other.items[0].msg));
    char *hex = malloc(2 * msg.len + 1);
    hex_encode(hex, 2 * msg.len + 1, msg.p, msg.len);
    json_object_set_new(item, "encrypted_message", json_string(hex));
    CHECK_ERR(drv_call(&e.f.d, 2, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_approval", "does not verify");
    free(hex);
    proto_blob_clear(&msg);
    json_decref(args);

    /* A stale approval. */
    drv_signing_release(&sg);
    drv_signing_setup(&sg, 1);
    args = drv_signing_init_args(&e.kg, &sg);
    json_t *ap = json_array_get(json_object_get(args, "approvals"), 0);
    json_object_set_new(ap, "timestamp", json_integer((json_int_t)time(NULL) - 3600));
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_approval", "stale");
    json_decref(args);
    drv_signing_release(&other);
    drv_signing_release(&sg);
    teardown(&e);
}

/* Replaces the sealed nonces of user u with JSON text, sealed properly. */
static void reseal(struct proto_user_blob *b, const uint8_t secret[32], const char *ctx,
                   const char *text)
{
    proto_blob_clear(&b->ciphertext);
    CHECK_OK(participant_seal(&b->ciphertext, secret, ctx, (const uint8_t *)text, strlen(text)));
}

static void test_bad_nonces_keep_session(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct km_error err;
    char uid[UUID_STR_LEN + 1];
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 2);
    CHECK_OK(drv_sign_init(&e.f.d, &e.kg, &sg, &err));
    CHECK_EQ(sg.n_nonces, 3);

    /* A nonce from a user who is not a participant. */
    struct proto_user_blob saved = sg.nonces[2];
    CHECK_OK(uuid_v7_new(&sg.nonces[2].user_id));
    uuid_format(uid, &sg.nonces[2].user_id);
    CHECK_ERR(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "invalid_nonce");
    CHECK_CONTAINS(err.msg, uid);
    sg.nonces[2].user_id = saved.user_id;

    /* Swapping two users' (validly sealed) nonces: bound to the wrong user. */
    struct proto_user_blob tmp = sg.nonces[0];
    sg.nonces[0].ciphertext = sg.nonces[1].ciphertext;
    sg.nonces[1].ciphertext = tmp.ciphertext;
    CHECK_ERR(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "bound to another session or user");
    sg.nonces[1].ciphertext = sg.nonces[0].ciphertext;
    sg.nonces[0].ciphertext = tmp.ciphertext;

    /* A missing user. */
    sg.n_nonces = 2;
    CHECK_ERR(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "no nonces from user");
    sg.n_nonces = 3;

    /* Garbage that decrypts. */
    struct proto_blob keep;
    proto_blob_set(&keep, sg.nonces[1].ciphertext.p, sg.nonces[1].ciphertext.len);
    reseal(&sg.nonces[1], e.kg.secret, PROTO_CTX_NONCES, "{\"nonces\":5}");
    CHECK_ERR(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "invalid_nonce");
    /* The wrong context. */
    reseal(&sg.nonces[1], e.kg.secret, PROTO_CTX_PSIGS, "{}");
    CHECK_ERR(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "decrypt_failed");
    proto_blob_clear(&sg.nonces[1].ciphertext);
    sg.nonces[1].ciphertext = keep;

    /* After all that, the real round works. */
    CHECK_OK(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err));
    CHECK_OK(drv_sign_finalize(&e.f.d, &e.kg, &sg, &err));
    CHECK_OK(drv_sign_check(&e.kg, &sg, &err));
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_nonce_reuse_impossible(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct km_error err;
    struct env_reply first, again;
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 1);
    CHECK_OK(drv_sign_init(&e.f.d, &e.kg, &sg, &err));
    struct proto_signing_distribute_nonces_args a = {
        .signing_session_id = sg.id, .n_nonces = sg.n_nonces, .nonces = sg.nonces};
    json_t *args = proto_signing_distribute_nonces_args_encode(&a);
    /* Enclave 0 coordinates: it keeps the session for signing_finalize.
     * Enclave 1 is done once it has signed, and removes the session. */
    CHECK_EQ(e.kg.coordinator, 0);
    for (uint32_t enclave = 0; enclave < 2; enclave++) {
        struct uuid cid;
        CHECK_OK(uuid_v7_new(&cid));
        CHECK_OK(drv_call(&e.f.d, enclave, "signing_distribute_nonces", &cid, args, &first, &err));
        /* The same command_id: the same reply, nothing signed twice. */
        CHECK_OK(drv_call(&e.f.d, enclave, "signing_distribute_nonces", &cid, args, &again, &err));
        CHECK(json_equal(first.result, again.result));
        env_reply_clear(&again);
        /* A new command_id: the nonces are spent. */
        CHECK_ERR(drv_call(&e.f.d, enclave, "signing_distribute_nonces", NULL, args, &again, &err),
                  KM_ERR_REMOTE);
        if (enclave == 0)
            en_expect_error(&again, "invalid_state", "not allowed in state partials_issued");
        else
            en_expect_error(&again, "not_found", "not found");
        env_reply_clear(&first);
    }
    json_decref(args);
    drv_signing_release(&sg);
    teardown(&e);
}

/* Flips a bit of user u's partial signature for its unit entry k. */
static void corrupt_psig_at(struct drv_signing *sg, size_t u, size_t k, const uint8_t secret[32])
{
    uint8_t pt[16384];
    size_t len = 0;
    struct km_error err;
    struct proto_psig_data pd;
    CHECK_OK(participant_open(pt, sizeof(pt), &len, &err, secret, PROTO_CTX_PSIGS,
                              &sg->psigs[u].ciphertext));
    CHECK_OK(proto_decode_bytes(&proto_psig_data_schema, &pd, pt, len, &err));
    CHECK(k < pd.n_partial_signatures);
    pd.partial_signatures[k].psig[31] ^= 1;
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(proto_encode_bytes(&b, &proto_psig_data_schema, &pd));
    proto_blob_clear(&sg->psigs[u].ciphertext);
    CHECK_OK(participant_seal(&sg->psigs[u].ciphertext, secret, PROTO_CTX_PSIGS, buf_peek(&b),
                              buf_len(&b)));
    buf_release(&b);
    proto_psig_data_clear(&pd);
}

/* Corrupts user u's partial signature of item `item`, then checks that
 * signing_finalize refuses and names both. */
static void finalize_names_culprit(struct env *e, struct drv_signing *sg, size_t u, size_t item)
{
    struct km_error err;
    char uid[UUID_STR_LEN + 1], iid[UUID_STR_LEN + 1];
    corrupt_psig_at(sg, u, item, e->kg.secret);
    uuid_format(uid, &sg->psigs[u].user_id);
    uuid_format(iid, &sg->items[item].id);
    CHECK_ERR(drv_sign_finalize(&e->f.d, &e->kg, sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "invalid_partial_signature");
    CHECK_CONTAINS(err.msg, uid);
    CHECK_CONTAINS(err.msg, iid);
}

/* A session of 40 items runs its units on two threads (signing.c
 * PARALLEL_MIN_UNITS): it signs and verifies as a small one, and a bad
 * partial signature in the second half, or in the coordinator's own
 * (which it does not verify again when it comes back unchanged), is still
 * named. */
static void test_large_batch_in_parallel(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct km_error err;
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 40);
    sign_ok(&e, &sg);
    drv_signing_release(&sg);
    for (size_t u = 0; u < 2; u++) {
        drv_signing_setup(&sg, 40);
        CHECK_OK(drv_sign_init(&e.f.d, &e.kg, &sg, &err));
        CHECK_OK(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err));
        finalize_names_culprit(&e, &sg, u, 39);
        drv_signing_release(&sg);
    }
    teardown(&e);
}

static void test_invalid_partial_signature_named(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct km_error err;
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 3);
    CHECK_OK(drv_sign_init(&e.f.d, &e.kg, &sg, &err));
    CHECK_OK(drv_sign_nonces(&e.f.d, &e.kg, &sg, &err));
    struct proto_blob keep;
    proto_blob_set(&keep, sg.psigs[1].ciphertext.p, sg.psigs[1].ciphertext.len);
    finalize_names_culprit(&e, &sg, 1, 0);
    /* Only the coordinator finalizes. */
    struct proto_signing_finalize_args a = {.signing_session_id = sg.id,
                                            .n_partial_signatures = sg.n_psigs,
                                            .partial_signatures = sg.psigs};
    json_t *args = proto_signing_finalize_args_encode(&a);
    struct env_reply rep;
    CHECK_ERR(drv_call(&e.f.d, 2, "signing_finalize", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "not_found", "not found"); /* enclave 2 is done, its session gone */
    json_decref(args);
    /* The right partial signatures still finalize. */
    proto_blob_clear(&sg.psigs[1].ciphertext);
    sg.psigs[1].ciphertext = keep;
    CHECK_OK(drv_sign_finalize(&e.f.d, &e.kg, &sg, &err));
    CHECK_OK(drv_sign_check(&e.kg, &sg, &err));
    /* Completed and removed: finalize again is refused (a new command_id). */
    CHECK_ERR(drv_sign_finalize(&e.f.d, &e.kg, &sg, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "not found");
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_signing_init_refusals(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct env_reply rep;
    struct km_error err;
    setup(&e, 3, NULL);
    drv_signing_setup(&sg, 1);
    /* Unknown keygen. */
    struct drv_keygen ghost = e.kg;
    CHECK_OK(uuid_v7_new(&ghost.id));
    json_t *args = drv_signing_init_args(&ghost, &sg);
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "not_found", "keygen session");
    json_decref(args);

    /* A message that is not 32 bytes. */
    args = drv_signing_init_args(&e.kg, &sg);
    struct proto_blob m;
    static const uint8_t short_msg[31] = {1};
    CHECK_OK(participant_seal(&m, e.kg.secret, PROTO_CTX_MESSAGE, short_msg, sizeof(short_msg)));
    char hex[512];
    hex_encode(hex, sizeof(hex), m.p, m.len);
    json_object_set_new(json_array_get(json_object_get(args, "items"), 0), "encrypted_message",
                        json_string(hex));
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "32-byte digest (got 31 bytes)");
    proto_blob_clear(&m);
    json_decref(args);

    /* An undecryptable tweak is an error, never "none". */
    sg.items[0].has_tweak = true;
    args = drv_signing_init_args(&e.kg, &sg);
    json_object_set_new(json_array_get(json_object_get(args, "items"), 0),
                        "encrypted_taproot_tweak", json_string("00ff00ff00ff00ff"));
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "decrypt_failed", "encrypted_taproot_tweak");
    json_decref(args);

    /* An unknown subset. */
    sg.items[0].has_tweak = false;
    args = drv_signing_init_args(&e.kg, &sg);
    json_object_set_new(json_array_get(json_object_get(args, "items"), 0), "subset_id",
                        json_string("01900000-0000-7000-8000-00000000abcd"));
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "subset is not defined");
    json_decref(args);

    /* The same session twice (new command_id). */
    args = drv_signing_init_args(&e.kg, &sg);
    CHECK_OK(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_state", "already exists in state nonces_issued");
    json_decref(args);
    drv_signing_release(&sg);
    teardown(&e);
}

static void test_too_many_units(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct env_reply rep;
    struct km_error err;
    setup(&e, 3, NULL);
    /* 100 items x 4 "or" configs x 4 points = 1600 units > 1000. */
    drv_signing_setup(&sg, 100);
    for (size_t i = 0; i < sg.n_items; i++)
        for (size_t c = 0; c < 4; c++)
            drv_item_add_adaptor(&sg.items[i], PROTO_ADAPTOR_OR, 4);
    json_t *args = drv_signing_init_args(&e.kg, &sg);
    CHECK_ERR(drv_call(&e.f.d, 0, "signing_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "limit_exceeded", "1600 signing units");
    json_decref(args);
    drv_signing_release(&sg);
    teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_batch_plain),
        TEST(test_tweak_modes),
        TEST(test_five_users_and_subsets),
        TEST(test_adaptors),
        TEST(test_approvals),
        TEST(test_bad_nonces_keep_session),
        TEST(test_nonce_reuse_impossible),
        TEST(test_invalid_partial_signature_named),
        TEST(test_large_batch_in_parallel),
        TEST(test_signing_init_refusals),
        TEST(test_too_many_units),
    };
    return RUN_TESTS("enclave.signing", tests);
}
