/*
 * test_keysource_kms.c - the aws-kms sealer (enclave/keysource_kms.c)
 * against the KMS stand-in (tests/support/kms_server.h) on 127.0.0.1 with
 * development attestation documents (a dev CA in a temp directory; the
 * stand-in verifies them against its root and a PCR0 policy):
 *
 *  - create then open gives the same key, also from a new key source (a
 *    restarted enclave); create costs GenerateDataKey + Decrypt, open one
 *    Decrypt; temporary credentials (a session token) work;
 *  - no credentials: KM_ERR_STATE naming the gateway's AWS_* variables,
 *    and nothing is sent;
 *  - wrong credentials: KMS's InvalidSignatureException, the secret never
 *    in the message; replaced credentials then work;
 *  - a policy pinning another PCR0: AccessDeniedException;
 *  - a GenerateDataKey reply whose CiphertextForRecipient was altered: the
 *    Decrypt check refuses before anything is sealed;
 *  - refusals at creation: no attestation provider, no key id, an http
 *    endpoint without allow_http, a proxy port without a CID.
 * The VSock proxy seam is never used here (no VSock connect on this
 * machine): every key source talks to the endpoint over TCP.
 */
#include "test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/doc.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "enclave/keysource.h"
#include "dev_ca_fixture.h"
#include "kms_server.h"
#include "common/banned.h"

#define AK     "AKIDKEYMELDSEALER"
#define SECRET "keymeld/sealer+secret/0123456789abcdefghij"
#define TOKEN  "FwoGZXIvYXdzEXAMPLE//sealer+token=="
#define KEY_ID "alias/keymeld-identity"
#define REGION "eu-west-1"

/* The dev CA and its root, a provider whose PCR0 is all 0x3c. */
static struct dev_ca_fixture fx;

static int setup(void **state)
{
    *state = &fx;
    return dev_ca_fixture_setup(&fx, "km-kmsseal-devca", 0x3c, "development-sealer-test");
}

/* A stand-in that verifies documents against the dev root and PCR0. */
static struct kms_server_config server_config(void)
{
    struct kms_server_config c = {
        .region = REGION,
        .access_key_id = AK,
        .secret_access_key = SECRET,
        .key_id = KEY_ID,
    };
    return dev_ca_server_config(&fx, c);
}

/* An aws-kms key source for the stand-in s (over TCP, never the proxy). */
static struct keysource *source_for(const struct kms_server *s)
{
    char url[64];
    struct keysource *ks = NULL;
    struct km_error err;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", kms_server_port(s));
    struct keysource_kms_config kc = {
        .key_id = KEY_ID, .region = REGION, .endpoint = url, .allow_http = true};
    if (keysource_kms_new(&ks, &kc, fx.provider, &err) != KM_OK)
        fail_msg("keysource_kms_new: %s", err.msg);
    CHECK_STR_EQ(keysource_name(ks), "aws-kms");
    CHECK(keysource_needs_credentials(ks));
    return ks;
}

static void test_create_and_open(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct keysource *ks = source_for(s);
    struct km_error err;
    struct keypair kp, back;
    uint8_t *blob = NULL;
    size_t len = 0;
    uint64_t epoch = 0;
    unsigned ok = 0;

    /* The gateway hands over credentials without a session token as "". */
    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, "", &err));
    if (keysource_create(ks, &kp, &blob, &len, 5, 1, &err) != KM_OK)
        fail_msg("keysource_create: %s", err.msg);
    CHECK_EQ(kms_server_requests(s, &ok), 2); /* GenerateDataKey, then the Decrypt check */
    CHECK_EQ(ok, 2);
    struct sealed_key sk;
    CHECK_OK(sealed_key_parse(&sk, blob, len, &err));
    CHECK_EQ(sk.sealer, SEALER_AWS_KMS);
    CHECK_EQ(sk.enclave_id, 5);
    CHECK_EQ(sk.key_epoch, 1);
    CHECK(sk.kms_len > 32);

    CHECK_OK(keysource_open(ks, &back, &epoch, blob, len, 5, &err));
    CHECK_EQ(epoch, 1);
    CHECK_MEM_EQ(back.pubkey, kp.pubkey, 33);
    keypair_clear(&back);
    CHECK_EQ(kms_server_requests(s, &ok), 3);
    CHECK_EQ(ok, 3);

    /* A restarted enclave: a new key source, the same key from KMS. */
    struct keysource *again = source_for(s);
    CHECK_OK(keysource_set_credentials(again, AK, SECRET, NULL, &err));
    epoch = 0;
    if (keysource_open(again, &back, &epoch, blob, len, 5, &err) != KM_OK)
        fail_msg("keysource_open after a restart: %s", err.msg);
    CHECK_EQ(epoch, 1);
    CHECK_MEM_EQ(back.pubkey, kp.pubkey, 33);
    CHECK_MEM_EQ(back.seckey, kp.seckey, 32);
    keypair_clear(&back);

    /* The CiphertextBlob is bound into the sealbox's associated data. */
    blob[SEALED_KEY_HEADER + 3] ^= 1;
    CHECK_NE(keysource_open(again, &back, &epoch, blob, len, 5, &err), KM_OK);
    CHECK_EQ(epoch, 0);
    blob[SEALED_KEY_HEADER + 3] ^= 1;
    /* Another enclave id: refused before KMS is asked. */
    unsigned before = kms_server_requests(s, NULL);
    CHECK_ERR(keysource_open(again, &back, &epoch, blob, len, 6, &err), KM_ERR_INVALID);
    CHECK_EQ(kms_server_requests(s, NULL), before);

    keypair_clear(&kp);
    free(blob);
    keysource_free(again);
    keysource_free(ks);
    kms_server_stop(s);

    /* Temporary credentials: the session token is sent and signed. */
    sc.session_token = TOKEN;
    s = dev_ca_server_start(&sc);
    ks = source_for(s);
    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, TOKEN, &err));
    if (keysource_create(ks, &kp, &blob, &len, 1, 7, &err) != KM_OK)
        fail_msg("keysource_create with a session token: %s", err.msg);
    CHECK_OK(keysource_open(ks, &back, &epoch, blob, len, 1, &err));
    CHECK_MEM_EQ(back.pubkey, kp.pubkey, 33);
    keypair_clear(&back);
    keypair_clear(&kp);
    free(blob);
    /* Without the token the stand-in does not know the client. */
    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, "", &err));
    blob = NULL;
    CHECK_ERR(keysource_create(ks, &kp, &blob, &len, 1, 8, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "UnrecognizedClientException");
    CHECK_NULL(blob);
    keysource_free(ks);
    kms_server_stop(s);
}

static void test_no_credentials(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct keysource *ks = source_for(s);
    struct km_error err;
    struct keypair kp;
    uint8_t junk = 1, *blob = &junk;
    size_t len = 1;
    uint64_t epoch = 9;

    CHECK_ERR(keysource_create(ks, &kp, &blob, &len, 1, 1, &err), KM_ERR_STATE);
    CHECK_CONTAINS(err.msg, "SEALER=aws-kms needs the instance's AWS credentials from the gateway");
    CHECK_CONTAINS(err.msg, "AWS_ACCESS_KEY_ID");
    CHECK_NULL(blob);
    CHECK_EQ(len, 0);

    /* Opening too (a blob made with credentials by another source). */
    struct keysource *maker = source_for(s);
    CHECK_OK(keysource_set_credentials(maker, AK, SECRET, NULL, &err));
    CHECK_OK(keysource_create(maker, &kp, &blob, &len, 1, 1, &err));
    keypair_clear(&kp);
    unsigned before = kms_server_requests(s, NULL);
    CHECK_ERR(keysource_open(ks, &kp, &epoch, blob, len, 1, &err), KM_ERR_STATE);
    CHECK_CONTAINS(err.msg, "AWS credentials");
    CHECK_EQ(epoch, 0);
    CHECK_EQ(kms_server_requests(s, NULL), before); /* nothing sent */

    /* Malformed credentials are refused and leave it without any. */
    CHECK_ERR(keysource_set_credentials(ks, "", SECRET, NULL, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "SEALER=aws-kms");
    CHECK_ERR(keysource_set_credentials(ks, AK, "has space", NULL, &err), KM_ERR_CONFIG);
    CHECK(strstr(err.msg, "has space") == NULL);
    CHECK_ERR(keysource_open(ks, &kp, &epoch, blob, len, 1, &err), KM_ERR_STATE);

    free(blob);
    keysource_free(maker);
    keysource_free(ks);
    kms_server_stop(s);
}

static void test_wrong_credentials(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct keysource *ks = source_for(s);
    struct km_error err;
    struct keypair kp;
    uint8_t *blob = NULL;
    size_t len = 0;

    CHECK_OK(keysource_set_credentials(ks, AK, "not-the-secret", NULL, &err));
    CHECK_ERR(keysource_create(ks, &kp, &blob, &len, 2, 1, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "SEALER=aws-kms");
    CHECK_CONTAINS(err.msg, "GenerateDataKey");
    CHECK_CONTAINS(err.msg, "InvalidSignatureException");
    CHECK(strstr(err.msg, "not-the-secret") == NULL);
    CHECK_NULL(blob);
    CHECK_EQ(len, 0);

    /* Credentials are replaced (temporary ones expire). */
    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, NULL, &err));
    if (keysource_create(ks, &kp, &blob, &len, 2, 1, &err) != KM_OK)
        fail_msg("after replacing the credentials: %s", err.msg);
    keypair_clear(&kp);

    /* Opening with wrong ones names KMS's error too. */
    uint64_t epoch = 0;
    CHECK_OK(keysource_set_credentials(ks, AK, "still-not-the-secret", NULL, &err));
    CHECK_ERR(keysource_open(ks, &kp, &epoch, blob, len, 2, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "Decrypt");
    CHECK_CONTAINS(err.msg, "InvalidSignatureException");
    CHECK(strstr(err.msg, "still-not-the-secret") == NULL);
    free(blob);
    keysource_free(ks);
    kms_server_stop(s);
}

static void test_pcr0_policy(void **state)
{
    (void)state;
    uint8_t other[ATTEST_PCR_LEN];
    memset(other, 0xa5, sizeof(other));
    struct kms_server_config sc = server_config();
    sc.pcr0 = other;
    struct kms_server *s = dev_ca_server_start(&sc);
    struct keysource *ks = source_for(s);
    struct km_error err;
    struct keypair kp;
    uint8_t *blob = NULL;
    size_t len = 0;

    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, NULL, &err));
    CHECK_ERR(keysource_create(ks, &kp, &blob, &len, 1, 1, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "AccessDeniedException");
    CHECK_CONTAINS(err.msg, "GenerateDataKey");
    CHECK_NULL(blob);
    keysource_free(ks);
    kms_server_stop(s);
}

static void test_tampered_reply(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    sc.tamper_generate = true;
    struct kms_server *s = dev_ca_server_start(&sc);
    struct keysource *ks = source_for(s);
    struct km_error err;
    struct keypair kp;
    uint8_t *blob = NULL, zero[32] = {0};
    size_t len = 0;
    unsigned ok = 0;

    CHECK_OK(keysource_set_credentials(ks, AK, SECRET, NULL, &err));
    CHECK_ERR(keysource_create(ks, &kp, &blob, &len, 1, 1, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "differs from what Decrypt of its CiphertextBlob gives");
    CHECK_CONTAINS(err.msg, "nothing was sealed");
    CHECK_NULL(blob);
    CHECK_EQ(len, 0);
    CHECK_MEM_EQ(kp.seckey, zero, sizeof(zero));
    /* Both requests succeeded as far as KMS could tell. */
    CHECK_EQ(kms_server_requests(s, &ok), 2);
    CHECK_EQ(ok, 2);
    keysource_free(ks);
    kms_server_stop(s);
}

static void test_config_refusals(void **state)
{
    (void)state;
    struct keysource *ks = (struct keysource *)1;
    struct km_error err;
    struct keysource_kms_config kc = {
        .key_id = KEY_ID, .region = REGION, .endpoint = "http://127.0.0.1:9", .allow_http = true};

    CHECK_ERR(keysource_kms_new(&ks, &kc, NULL, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "SEALER=aws-kms needs ATTESTATION=nsm (or development in tests)");
    CHECK_NULL(ks);

    kc.key_id = NULL;
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "KMS_KEY_ID");
    kc.key_id = "alias/with space";
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    kc.key_id = KEY_ID;

    kc.allow_http = false;
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "scheme must be https");
    kc.endpoint = "https://kms.eu-west-1.amazonaws.com/path";
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    kc.endpoint = "https://kms.eu-west-1.amazonaws.com";
    kc.region = "EU WEST";
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "region");
    kc.region = REGION;

    /* A proxy port needs its CID (nothing is connected at creation). */
    kc.proxy_port = 8000;
    CHECK_ERR(keysource_kms_new(&ks, &kc, fx.provider, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "CID");
    CHECK_NULL(ks);
    kc.proxy_port = 0;

    /* https without a proxy: fine, and nothing is sent until a key is
     * needed. */
    CHECK_OK(keysource_kms_new(&ks, &kc, fx.provider, &err));
    keysource_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_create_and_open), TEST(test_no_credentials), TEST(test_wrong_credentials),
        TEST(test_pcr0_policy),     TEST(test_tampered_reply), TEST(test_config_refusals),
    };
    return cmocka_run_group_tests_name("unit.enclave.keysource_kms", tests, setup,
                                       dev_ca_fixture_group_teardown);
}
