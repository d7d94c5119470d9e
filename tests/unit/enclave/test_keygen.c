/*
 * test_keygen.c - the keygen commands (enclave/keygen.c): layouts of users
 * over enclaves, tweaks and subsets, and every refusal of keygen_init,
 * keygen_add_participants and keygen_distribute_public_keys (each leaving
 * the session as it was).
 */
#include "test.h"

#include <string.h>

#include "en_fixture.h"
#include "common/hex.h"
#include "crypto/ecies.h"
#include "common/banned.h"

static void test_layouts(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct km_error err;
    en_fixture_start(&f, 3, NULL);
    /* Every user on one enclave: the others learn all keys by distribution. */
    drv_keygen_setup(&kg, 3, 3);
    for (size_t i = 0; i < kg.n_users; i++)
        kg.users[i].enclave = 1;
    kg.coordinator = 2; /* a coordinator without participants */
    CHECK_OK(drv_keygen_run(&f.d, &kg, &err));
    drv_signing_setup(&sg, 2);
    CHECK_OK(drv_sign_run(&f.d, &kg, &sg, &err));
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
    /* Many users, x-only keygen tweak. */
    drv_keygen_setup(&kg, 12, 3);
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_XONLY;
    kg.tweak.has_tweak = true;
    memset(kg.tweak.tweak, 0x33, 32);
    CHECK_OK(drv_keygen_run(&f.d, &kg, &err));
    drv_signing_setup(&sg, 3);
    CHECK_OK(drv_sign_run(&f.d, &kg, &sg, &err));
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

/* keygen_init of kg on enclave e with one field replaced. */
static void init_with(struct en_fixture *f, struct drv_keygen *kg, size_t e, const char *key,
                      json_t *value, const char *code, const char *want)
{
    struct env_reply rep;
    struct km_error err;
    json_t *args = drv_keygen_init_args(&f->d, kg, e, NULL);
    json_object_set_new(args, key, value);
    CHECK_ERR(drv_call(&f->d, e, "keygen_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, code, want);
    json_decref(args);
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char buf[1024];
    return json_string(hex_encode(buf, sizeof(buf), p, n));
}

static void test_init_refusals(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    en_fixture_start(&f, 3, NULL);
    drv_keygen_setup(&kg, 3, 3);
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    json_t *enclaves = json_object_get(args, "enclaves");

    /* This enclave is not listed. */
    json_t *two = json_deep_copy(enclaves);
    json_array_remove(two, 0);
    init_with(&f, &kg, 0, "enclaves", two, "invalid_argument", "public key is not in");
    /* Listed under another id than its configured one. */
    json_t *renum = json_deep_copy(enclaves);
    json_object_set_new(json_array_get(renum, 0), "enclave_id", json_integer(9));
    init_with(&f, &kg, 0, "enclaves", renum, "invalid_argument",
              "as enclave 9, but this is "
              "enclave 0");
    /* Duplicates and invalid keys. */
    json_t *dup = json_deep_copy(enclaves);
    json_object_set_new(json_array_get(dup, 1), "enclave_id", json_integer(0));
    init_with(&f, &kg, 0, "enclaves", dup, "invalid_argument", "enclave 0 is listed twice");
    json_t *badkey = json_deep_copy(enclaves);
    json_object_set_new(json_array_get(badkey, 2), "public_key",
                        json_string("05aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaa"));
    init_with(&f, &kg, 0, "enclaves", badkey, "invalid_key", "not a valid secp256k1 point");
    json_decref(args);

    /* A subset member who is not a participant. */
    CHECK_OK(uuid_v7_new(&kg.subsets[0].id));
    kg.subsets[0].n = 2;
    kg.subsets[0].members[0] = 0;
    kg.subsets[0].members[1] = 1;
    kg.n_subsets = 1;
    args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    json_array_set_new(
        json_object_get(json_array_get(json_object_get(args, "subsets"), 0), "participants"), 1,
        json_string("01900000-0000-7000-8000-0000000000aa"));
    struct env_reply rep;
    struct km_error err;
    CHECK_ERR(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "who is not a participant");
    json_decref(args);
    kg.n_subsets = 0;

    /* Secrets: garbage, the wrong length, or the client's raw secret handed
     * to a non-coordinator (only the coordinator's bound re-encryption). */
    static const uint8_t junk[120] = {4};
    init_with(&f, &kg, 0, "encrypted_session_secret", hex_json(junk, sizeof(junk)),
              "decrypt_failed", "encrypted_session_secret: cannot be decrypted");
    uint8_t ct31[31 + ECIES_OVERHEAD];
    size_t n31 = 0;
    CHECK_OK(ecies_encrypt(ct31, sizeof(ct31), &n31, f.d.pk[0], 33, junk, 31));
    init_with(&f, &kg, 0, "encrypted_session_secret", hex_json(ct31, n31), "invalid_argument",
              "must be 32 bytes (got 31)");
    struct proto_blob raw;
    CHECK_OK(participant_encrypt_secret(&raw, f.d.pk[1], kg.secret));
    args = drv_keygen_init_args(&f.d, &kg, 1, &raw);
    CHECK_ERR(drv_call(&f.d, 1, "keygen_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "not the coordinator's re-encryption");
    json_decref(args);
    proto_blob_clear(&raw);

    /* An undecryptable tweak is an error, never "none". */
    kg.has_tweak = true;
    args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    json_object_set_new(args, "encrypted_taproot_tweak", json_string("0d7461"));
    CHECK_ERR(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "decrypt_failed", "encrypted_taproot_tweak");
    json_decref(args);
    uint32_t nk, ns;
    enclave_session_counts(f.ip.en[0], &nk, &ns);
    CHECK_EQ(nk, 0);
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

/* keygen_add_participants on enclave 0 with registrations built by fn. */
static void add_with(struct en_fixture *f, struct drv_keygen *kg, const uint8_t *sk,
                     const struct uuid *user, const uint8_t auth[32], const char *code,
                     const char *want)
{
    struct proto_keygen_add_participants_args a = {.keygen_session_id = kg->id,
                                                   .n_participants = 1};
    struct proto_participant_reg reg = {.user_id = *user};
    struct env_reply rep;
    struct km_error err;
    uint8_t raw[32];
    memcpy(raw, sk, 32);
    memcpy(reg.auth_pubkey, auth, 32);
    struct proto_blob ct;
    struct keypair tmp;
    memset(&tmp, 0, sizeof(tmp));
    memcpy(tmp.seckey, raw, 32);
    CHECK_OK(participant_encrypt_private_key(&ct, f->d.pk[0], &tmp));
    reg.encrypted_private_key = ct;
    a.participants = &reg;
    json_t *args = proto_keygen_add_participants_args_encode(&a);
    int r = drv_call(&f->d, 0, "keygen_add_participants", NULL, args, &rep, &err);
    if (code == NULL) {
        CHECK_OK(r);
        env_reply_clear(&rep);
    } else {
        en_expect_error(&rep, code, want);
    }
    json_decref(args);
    proto_blob_clear(&ct);
}

static void test_add_refusals(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct env_reply rep;
    struct km_error err;
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 3, 2);
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    json_decref(args);
    const struct drv_user *u0 = &kg.users[0], *u2 = &kg.users[2];
    struct uuid stranger;
    CHECK_OK(uuid_v7_new(&stranger));
    static const uint8_t zero[32];
    add_with(&f, &kg, u0->kp.seckey, &stranger, u0->auth.xonly, "invalid_argument",
             "is not a participant");
    add_with(&f, &kg, zero, &u0->id, u0->auth.xonly, "invalid_key", "not a valid secp256k1 key");
    uint8_t bad_auth[32];
    memset(bad_auth, 0xff, 32);
    add_with(&f, &kg, u0->kp.seckey, &u0->id, bad_auth, "invalid_key", "auth_pubkey");
    add_with(&f, &kg, u0->kp.seckey, &u0->id, u0->auth.xonly, NULL, NULL);
    /* Again with the same key: harmless; with another: refused. */
    add_with(&f, &kg, u0->kp.seckey, &u0->id, u0->auth.xonly, NULL, NULL);
    add_with(&f, &kg, u2->kp.seckey, &u0->id, u0->auth.xonly, "invalid_argument",
             "already registered with another key");
    /* Another user with user 0's key. */
    add_with(&f, &kg, u0->kp.seckey, &u2->id, u2->auth.xonly, "invalid_argument",
             "have the same public key");
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

/* keygen_distribute_public_keys on enclave 0: `user`'s entry carries the
 * key of `key_of`, bound to `bound_to`, encrypted to enclave `to`. */
static int distribute_one(struct en_fixture *f, const struct drv_keygen *kg, size_t user,
                          const uint8_t pk[33], size_t bound_to, size_t to, struct env_reply *rep)
{
    uint8_t bound[PROTO_BOUND_PUBKEY_LEN], ct[PROTO_BOUND_PUBKEY_LEN + ECIES_OVERHEAD];
    char kid[UUID_STR_LEN + 1], uid[UUID_STR_LEN + 1], hex[2 * sizeof(ct) + 1];
    size_t n = 0;
    struct km_error err;
    proto_bound_pubkey_pack(bound, &kg->id, &kg->users[bound_to].id, pk);
    CHECK_OK(ecies_encrypt(ct, sizeof(ct), &n, f->d.pk[to], 33, bound, sizeof(bound)));
    uuid_format(kid, &kg->id);
    uuid_format(uid, &kg->users[user].id);
    json_t *args = json_pack("{s:s,s:[{s:s,s:s}]}", "keygen_session_id", kid, "public_keys",
                             "user_id", uid, "ciphertext", hex_encode(hex, sizeof(hex), ct, n));
    int r = drv_call(&f->d, 0, "keygen_distribute_public_keys", NULL, args, rep, &err);
    json_decref(args);
    return r;
}

static void test_distribute_refusals(void **state)
{
    (void)state;
    struct en_fixture f;
    struct drv_keygen kg;
    struct env_reply rep;
    struct km_error err;
    en_fixture_start(&f, 2, NULL);
    drv_keygen_setup(&kg, 2, 2);
    json_t *args = drv_keygen_init_args(&f.d, &kg, 0, NULL);
    CHECK_OK(drv_call(&f.d, 0, "keygen_init", NULL, args, &rep, &err));
    env_reply_clear(&rep);
    json_decref(args);
    const uint8_t *pk1 = kg.users[1].kp.pubkey;

    /* User 1's key bound to user 0: what a gateway moving blobs sends. */
    CHECK_ERR(distribute_one(&f, &kg, 1, pk1, 0, 0, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "not bound to this session and user");
    /* Bound correctly, but not a point. */
    uint8_t notpt[33];
    memset(notpt, 0xee, sizeof(notpt));
    notpt[0] = 0x05;
    CHECK_ERR(distribute_one(&f, &kg, 1, notpt, 1, 0, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_key", "not a valid secp256k1 point");
    /* Encrypted to the other enclave. */
    CHECK_ERR(distribute_one(&f, &kg, 1, pk1, 1, 1, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "decrypt_failed", "cannot be decrypted with this enclave's key");
    /* The right one: 1 of 2 keys known, then a different key is refused. */
    CHECK_OK(distribute_one(&f, &kg, 1, pk1, 1, 0, &rep));
    CHECK_EQ(json_integer_value(json_object_get(rep.result, "known")), 1);
    CHECK(json_is_false(json_object_get(rep.result, "complete")));
    env_reply_clear(&rep);
    CHECK_ERR(distribute_one(&f, &kg, 1, kg.users[0].kp.pubkey, 1, 0, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", "already registered with another key");
    drv_keygen_release(&kg);
    en_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_layouts),
        TEST(test_init_refusals),
        TEST(test_add_refusals),
        TEST(test_distribute_refusals),
    };
    return RUN_TESTS("enclave.keygen", tests);
}
