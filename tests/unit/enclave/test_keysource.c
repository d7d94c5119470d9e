/*
 * test_keysource.c - the sealed identity key (enclave/keysource.h): the
 * file sealer's KEK file, create and open, the blob's binding to enclave id
 * and epoch, a wrong KEK, and the parser's refusals.
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"
#include "crypto/ecies.h"
#include "enclave/enclave.h"
#include "enclave/keysource.h"
#include "protocol/commands.h"
#include "en_call.h"
#include "common/banned.h"

struct kek {
    char path[64];
};

static void kek_write(struct kek *k, const void *p, size_t n, mode_t mode)
{
    snprintf(k->path, sizeof(k->path), "/tmp/km-kek-XXXXXX");
    int fd = mkstemp(k->path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, p, n), (ssize_t)n);
    CHECK_EQ(fchmod(fd, mode), 0);
    close(fd);
}

static struct keysource *open_file(const uint8_t kekbytes[32])
{
    struct kek k;
    struct keysource *ks = NULL;
    struct km_error err;
    bool loose = true;
    kek_write(&k, kekbytes, 32, 0600);
    CHECK_OK(keysource_file_new(&ks, k.path, &loose, &err));
    CHECK(!loose);
    unlink(k.path);
    return ks;
}

static const uint8_t kek1[32] = {7, 7, 7};
static const uint8_t kek2[32] = {8, 8, 8};

static void test_create_and_open(void **state)
{
    (void)state;
    struct keysource *ks = open_file(kek1);
    struct km_error err;
    struct keypair kp, back;
    uint8_t *blob = NULL;
    size_t len = 0;
    uint64_t epoch = 0;
    CHECK_STR_EQ(keysource_name(ks), "file");
    CHECK_OK(keysource_create(ks, &kp, &blob, &len, 3, 2, &err));
    CHECK_EQ(len, SEALED_KEY_HEADER + SEALBOX_LEN);
    CHECK_OK(keysource_open(ks, &back, &epoch, blob, len, 3, &err));
    CHECK_EQ(epoch, 2);
    CHECK_MEM_EQ(back.pubkey, kp.pubkey, 33);

    /* Another enclave id: refused before any decryption. */
    CHECK_ERR(keysource_open(ks, &back, &epoch, blob, len, 4, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "sealed for enclave 3, this is enclave 4");
    /* An edited header (epoch) no longer authenticates. */
    blob[13] ^= 1;
    CHECK_ERR(keysource_open(ks, &back, &epoch, blob, len, 3, &err), KM_ERR_CRYPTO);
    blob[13] ^= 1;
    /* Another KEK: a clear refusal. */
    struct keysource *other = open_file(kek2);
    CHECK_ERR(keysource_open(other, &back, &epoch, blob, len, 3, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "does not open with this file key-encryption key");
    CHECK_EQ(epoch, 0);
    free(blob);
    keypair_clear(&kp);
    keypair_clear(&back);
    keysource_free(ks);
    keysource_free(other);
}

static void test_kek_file_forms(void **state)
{
    (void)state;
    struct kek k;
    struct keysource *ks = NULL;
    struct km_error err;
    bool loose = false;
    char hexkek[66];
    hex_encode(hexkek, sizeof(hexkek), kek1, 32);
    hexkek[64] = '\n';
    kek_write(&k, hexkek, 65, 0644);
    CHECK_OK(keysource_file_new(&ks, k.path, &loose, &err));
    CHECK(loose); /* readable by others: a warning */
    unlink(k.path);
    /* The hex form seals the same as the raw one. */
    struct keysource *raw = open_file(kek1);
    struct keypair kp, back;
    uint8_t *blob = NULL;
    size_t len = 0;
    uint64_t epoch;
    CHECK_OK(keysource_create(ks, &kp, &blob, &len, 1, 1, &err));
    CHECK_OK(keysource_open(raw, &back, &epoch, blob, len, 1, &err));
    free(blob);
    keypair_clear(&kp);
    keypair_clear(&back);
    keysource_free(ks);
    keysource_free(raw);

    kek_write(&k, "short", 5, 0600);
    CHECK_ERR(keysource_file_new(&ks, k.path, &loose, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "must hold 32 bytes");
    unlink(k.path);
    CHECK_ERR(keysource_file_new(&ks, "/nonexistent/kek", &loose, &err), KM_ERR_IO);
    CHECK_NULL(ks);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct keysource *ks = open_file(kek1);
    struct km_error err;
    struct keypair kp;
    uint8_t *blob = NULL;
    size_t len = 0;
    struct sealed_key sk;
    CHECK_OK(keysource_create(ks, &kp, &blob, &len, 9, 5, &err));
    CHECK_OK(sealed_key_parse(&sk, blob, len, &err));
    CHECK_EQ(sk.sealer, SEALER_FILE);
    CHECK_EQ(sk.enclave_id, 9);
    CHECK_EQ(sk.key_epoch, 5);
    CHECK_EQ(sk.kms_len, 0);
    for (size_t n = 0; n < len; n++)
        CHECK_NE(sealed_key_parse(&sk, blob, n, &err), KM_OK);
    uint8_t longer[SEALED_KEY_HEADER + SEALBOX_LEN + 1] = {0};
    memcpy(longer, blob, len);
    CHECK_ERR(sealed_key_parse(&sk, longer, len + 1, &err), KM_ERR_TRAILING_DATA);
    blob[0] = 2;
    CHECK_ERR(sealed_key_parse(&sk, blob, len, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "version 2");
    blob[0] = 1;
    blob[1] = 2; /* aws-kms without a KMS ciphertext */
    CHECK_ERR(sealed_key_parse(&sk, blob, len, &err), KM_ERR_INVALID);
    blob[1] = 9;
    CHECK_ERR(sealed_key_parse(&sk, blob, len, &err), KM_ERR_INVALID);
    blob[1] = 1;
    memset(blob + 6, 0, 8); /* epoch 0 */
    CHECK_ERR(sealed_key_parse(&sk, blob, len, &err), KM_ERR_INVALID);
    free(blob);
    keypair_clear(&kp);
    keysource_free(ks);
}

/* A command straight into enclave_handle (see en_call.h). */
static int call(struct enclave *en, const char *cmd, json_t *args, struct tp_call *out)
{
    return en_call(en, cmd, args, out);
}

static json_t *configure_args(uint32_t id, const uint8_t *blob, size_t len)
{
    struct proto_configure_args a = {.enclave_id = id,
                                     .sealed_key = {.p = (uint8_t *)(uintptr_t)blob, .len = len}};
    return proto_configure_args_encode(&a);
}

/* What the gateway sees: an enclave with a sealer waits for configure,
 * creates and returns its sealed key, answers a repeat the same, and a
 * restarted enclave restores the same key from the blob. */
static void test_configure_flow(void **state)
{
    (void)state;
    struct keysource *ks = open_file(kek1);
    struct km_error err;
    struct enclave_config cfg = {.keysource = ks};
    struct enclave *en = enclave_new(&cfg, &err);
    CHECK_NOT_NULL(en);
    uint8_t pk[33];
    CHECK(!enclave_public_key(en, pk));
    struct tp_call c;
    struct proto_public_info pi;
    CHECK_OK(call(en, "get_public_info", json_object(), &c));
    CHECK_OK(proto_public_info_decode(&pi, c.result, &err));
    json_decref(c.result);
    CHECK(!pi.has_public_key);
    CHECK_STR_EQ(pi.key_state, "awaiting_configure");
    CHECK_STR_EQ(pi.sealer, "file");
    proto_public_info_clear(&pi);
    CHECK_NE(call(en, "keygen_get_aggregate",
                  json_pack("{s:s}", "keygen_session_id", "01900000-0000-7000-8000-000000000001"),
                  &c),
             KM_OK);
    CHECK_STR_EQ(c.error.code, "busy");
    CHECK_CONTAINS(c.error.message, "needs the identity key");

    CHECK_OK(call(en, "configure", configure_args(3, NULL, 0), &c));
    CHECK_OK(proto_public_info_decode(&pi, c.result, &err));
    json_decref(c.result);
    CHECK(pi.has_public_key && pi.sealed_key.len > 0);
    CHECK_STR_EQ(pi.key_origin, "created");
    CHECK_STR_EQ(pi.key_state, "ready");
    CHECK_EQ(pi.key_epoch, 1);
    uint8_t *blob = malloc(pi.sealed_key.len);
    size_t len = pi.sealed_key.len;
    memcpy(blob, pi.sealed_key.p, len);
    memcpy(pk, pi.public_key, 33);
    proto_public_info_clear(&pi);
    /* A repeat (the gateway restarted before committing): the same key. */
    CHECK_OK(call(en, "configure", configure_args(3, NULL, 0), &c));
    CHECK_OK(proto_public_info_decode(&pi, c.result, &err));
    json_decref(c.result);
    CHECK(pi.sealed_key.len == len && memcmp(pi.sealed_key.p, blob, len) == 0);
    proto_public_info_clear(&pi);
    /* Another sealed key for a running enclave: refused. */
    uint8_t other[SEALED_KEY_HEADER + SEALBOX_LEN];
    memcpy(other, blob, len);
    other[len - 1] ^= 1;
    CHECK_NE(call(en, "configure", configure_args(3, other, len), &c), KM_OK);
    CHECK_STR_EQ(c.error.code, "invalid_state");
    enclave_free(en);

    /* Restarted: the blob brings the same key back. */
    en = enclave_new(&cfg, &err);
    CHECK_OK(call(en, "configure", configure_args(3, blob, len), &c));
    CHECK_OK(proto_public_info_decode(&pi, c.result, &err));
    json_decref(c.result);
    CHECK_MEM_EQ(pi.public_key, pk, 33);
    CHECK_STR_EQ(pi.key_origin, "restored");
    CHECK_EQ(pi.sealed_key.len, len);
    proto_public_info_clear(&pi);
    enclave_free(en);

    /* With another KEK: a clear refusal and still no key. */
    struct keysource *wrong = open_file(kek2);
    cfg.keysource = wrong;
    en = enclave_new(&cfg, &err);
    CHECK_NE(call(en, "configure", configure_args(3, blob, len), &c), KM_OK);
    CHECK_STR_EQ(c.error.code, "decrypt_failed");
    CHECK_CONTAINS(c.error.message, "cannot restore the identity key");
    CHECK(!enclave_public_key(en, pk));
    enclave_free(en);

    /* SEALER=none cannot open a sealed key. */
    en = enclave_new(NULL, &err);
    CHECK_NE(call(en, "configure", configure_args(3, blob, len), &c), KM_OK);
    CHECK_STR_EQ(c.error.code, "invalid_argument");
    CHECK_CONTAINS(c.error.message, "SEALER=none");
    enclave_free(en);
    free(blob);
    keysource_free(ks);
    keysource_free(wrong);
}

static json_t *epoch_args(uint64_t epoch)
{
    return json_pack("{s:I}", "key_epoch", (json_int_t)epoch);
}

/* begin -> rekey -> commit, and a restart in between that gets both sealed
 * keys back in configure. */
static void test_rotation(void **state)
{
    (void)state;
    struct keysource *ks = open_file(kek1);
    struct km_error err;
    struct enclave_config cfg = {.keysource = ks};
    struct enclave *en = enclave_new(&cfg, &err);
    struct tp_call c;
    struct proto_public_info pi;
    CHECK_OK(call(en, "configure", configure_args(4, NULL, 0), &c));
    CHECK_OK(proto_public_info_decode(&pi, c.result, &err));
    json_decref(c.result);
    uint8_t old_pk[33];
    memcpy(old_pk, pi.public_key, 33);
    size_t cur_len = pi.sealed_key.len;
    uint8_t *cur = malloc(cur_len);
    memcpy(cur, pi.sealed_key.p, cur_len);
    proto_public_info_clear(&pi);

    /* A secret ECIES-encrypted to the current key, as a client would. */
    uint8_t secret[32] = {9, 9, 9}, ct[32 + ECIES_OVERHEAD];
    size_t ctlen = 0;
    CHECK_OK(ecies_encrypt(ct, sizeof(ct), &ctlen, old_pk, 33, secret, sizeof(secret)));
    char cthex[2 * sizeof(ct) + 1];
    hex_encode(cthex, sizeof(cthex), ct, ctlen);

    CHECK_NE(call(en, "rotate_key_begin", epoch_args(3), &c), KM_OK);
    CHECK_CONTAINS(c.error.message, "the next one is 2");
    CHECK_OK(call(en, "rotate_key_begin", epoch_args(2), &c));
    struct proto_rotation_result rot;
    CHECK_OK(proto_rotation_result_decode(&rot, c.result, &err));
    json_decref(c.result);
    uint8_t new_pk[33];
    memcpy(new_pk, rot.public_key, 33);
    size_t next_len = rot.sealed_key.len;
    uint8_t *next = malloc(next_len);
    memcpy(next, rot.sealed_key.p, next_len);
    proto_rotation_result_clear(&rot);
    CHECK(memcmp(new_pk, old_pk, 33) != 0);

    /* Restart mid-rotation: configure brings both keys back. */
    enclave_free(en);
    en = enclave_new(&cfg, &err);
    struct proto_configure_args ca = {
        .enclave_id = 4, .sealed_key = {cur, cur_len}, .next_sealed_key = {next, next_len}};
    CHECK_OK(call(en, "configure", proto_configure_args_encode(&ca), &c));
    json_decref(c.result);
    /* begin again: the same next key. */
    CHECK_OK(call(en, "rotate_key_begin", epoch_args(2), &c));
    CHECK_OK(proto_rotation_result_decode(&rot, c.result, &err));
    json_decref(c.result);
    CHECK_MEM_EQ(rot.public_key, new_pk, 33);
    proto_rotation_result_clear(&rot);

    CHECK_OK(call(en, "rekey",
                  json_pack("{s:I, s:[{s:s}]}", "key_epoch", (json_int_t)2, "ciphertexts",
                            "ciphertext", cthex),
                  &c));
    const char *h = json_string_value(
        json_object_get(json_array_get(json_object_get(c.result, "ciphertexts"), 0), "ciphertext"));
    CHECK_NOT_NULL(h);
    uint8_t rekeyed[sizeof(ct)];
    size_t rlen = 0;
    CHECK_OK(hex_decode(rekeyed, sizeof(rekeyed), &rlen, h, strlen(h)));
    json_decref(c.result);

    CHECK_OK(call(en, "rotate_key_commit", epoch_args(2), &c));
    json_decref(c.result);
    uint8_t pk[33];
    CHECK(enclave_public_key(en, pk));
    CHECK_MEM_EQ(pk, new_pk, 33);
    CHECK_EQ(enclave_key_epoch(en), 2);
    /* Committed twice: a no-op. */
    CHECK_OK(call(en, "rotate_key_commit", epoch_args(2), &c));
    json_decref(c.result);
    /* rekey without a rotation: refused. */
    CHECK_NE(call(en, "rekey",
                  json_pack("{s:I, s:[{s:s}]}", "key_epoch", (json_int_t)2, "ciphertexts",
                            "ciphertext", cthex),
                  &c),
             KM_OK);
    CHECK_STR_EQ(c.error.code, "invalid_state");
    enclave_free(en);

    /* The re-encrypted secret opens with the new key only. */
    struct keypair newkp, oldkp;
    uint64_t epoch;
    CHECK_OK(keysource_open(ks, &newkp, &epoch, next, next_len, 4, &err));
    CHECK_OK(keysource_open(ks, &oldkp, &epoch, cur, cur_len, 4, &err));
    uint8_t pt[64];
    size_t ptlen = 0;
    CHECK_OK(ecies_decrypt(pt, sizeof(pt), &ptlen, NULL, newkp.seckey, rekeyed, rlen));
    CHECK_MEM_EQ(pt, secret, 32);
    CHECK_NE(ecies_decrypt(pt, sizeof(pt), &ptlen, NULL, oldkp.seckey, rekeyed, rlen), KM_OK);
    keypair_clear(&newkp);
    keypair_clear(&oldkp);
    free(cur);
    free(next);
    keysource_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_create_and_open), TEST(test_kek_file_forms), TEST(test_parse_refusals),
        TEST(test_configure_flow),  TEST(test_rotation),
    };
    return RUN_TESTS("unit.enclave.keysource", tests);
}
