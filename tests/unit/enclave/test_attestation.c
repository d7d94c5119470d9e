/*
 * test_attestation.c - get_attestation (enclave/attestation.c): a document
 * from the development provider that the verifier accepts for the
 * enclave's own key, nonce and user_data; refusals without a provider and
 * for an oversized nonce; the provider named in public info.
 */
#include "test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "common/hex.h"
#include "common/secure.h"
#include "enclave/enclave.h"
#include "protocol/commands.h"
#include "en_call.h"
#include "common/banned.h"

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

/* A command straight into enclave_handle (see en_call.h). */
static int call(struct enclave *en, const char *cmd, json_t *args, struct tp_call *out)
{
    return en_call(en, cmd, args, out);
}

static void test_document_binds_the_identity_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/km-enclave-ca-XXXXXX";
    struct km_error err;
    bool created;
    CHECK_NOT_NULL(mkdtemp(dir));
    CHECK_OK(attest_dev_ca_init(dir, &created, &err));
    uint8_t pcr0[ATTEST_PCR_LEN];
    memset(pcr0, 0x11, sizeof(pcr0));
    struct attest_provider *prov = NULL;
    CHECK_OK(attest_dev_new(&prov, dir, pcr0, "development-enclave-5", &err));
    struct enclave_config cfg = {.has_enclave_id = true, .enclave_id = 5, .attest = prov};
    struct enclave *en = enclave_new(&cfg, &err);
    CHECK_NOT_NULL(en);
    uint8_t pk[33];
    enclave_public_key(en, pk);

    struct tp_call c;
    CHECK_OK(call(en, "get_public_info", json_object(), &c));
    CHECK_STR_EQ(json_string_value(json_object_get(c.result, "attestation")), "development");
    json_decref(c.result);

    uint8_t nonce[32];
    CHECK_OK(secure_random(nonce, sizeof(nonce)));
    char nhex[65];
    hex_encode(nhex, sizeof(nhex), nonce, sizeof(nonce));
    CHECK_OK(call(en, "get_attestation", json_pack("{s:s}", "nonce", nhex), &c));
    struct proto_attestation_result res;
    CHECK_OK(proto_attestation_result_decode(&res, c.result, &err));
    json_decref(c.result);
    CHECK_STR_EQ(res.attestation, "development");
    CHECK_MEM_EQ(res.public_key, pk, 33);
    CHECK_EQ(res.key_epoch, 1);

    char root_path[64];
    snprintf(root_path, sizeof(root_path), "%s/%s", dir, ATTEST_DEV_ROOT_CERT);
    uint8_t *root = NULL;
    size_t root_len = 0;
    CHECK_OK(attest_root_load(&root, &root_len, root_path, &err));
    struct attest_pcr_policy pol = {.nsets = 1};
    pol.sets[0].want[0] = true;
    memcpy(pol.sets[0].value[0], pcr0, ATTEST_PCR_LEN);
    struct attest_verify_opts o = {.root_der = root,
                                   .root_der_len = root_len,
                                   .max_age_secs = 60,
                                   .pcrs = &pol,
                                   .public_key = pk,
                                   .public_key_len = 33,
                                   .nonce = nonce,
                                   .nonce_len = sizeof(nonce)};
    struct attest_doc d;
    enum attest_check failed;
    CHECK_OK(attest_verify(&d, &failed, res.document.p, res.document.len, &o, &err));
    const char want_ud[] = "{\"enclave_id\":5,\"key_epoch\":1}";
    CHECK(d.user_data.present && d.user_data.len == strlen(want_ud));
    CHECK_MEM_EQ(d.user_data.data, want_ud, strlen(want_ud));
    attest_doc_clear(&d);

    /* Not cached: the same nonce again gives a new document. */
    CHECK_OK(call(en, "get_attestation", json_pack("{s:s}", "nonce", nhex), &c));
    struct proto_attestation_result res2;
    CHECK_OK(proto_attestation_result_decode(&res2, c.result, &err));
    json_decref(c.result);
    CHECK(res2.document.len != res.document.len ||
          memcmp(res2.document.p, res.document.p, res.document.len) != 0);
    proto_attestation_result_clear(&res2);
    proto_attestation_result_clear(&res);

    /* No nonce is allowed (the gateway's cached copy); 513 bytes are not. */
    CHECK_OK(call(en, "get_attestation", json_object(), &c));
    json_decref(c.result);
    char *big = calloc(1, 2 * 513 + 1);
    memset(big, 'a', 2 * 513);
    CHECK_ERR(call(en, "get_attestation", json_pack("{s:s}", "nonce", big), &c), KM_ERR_INVALID);
    free(big);
    CHECK_CONTAINS(c.error.message, "nonce");

    free(root);
    enclave_free(en);
    attest_provider_free(prov);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_without_a_provider(void **state)
{
    (void)state;
    struct km_error err;
    struct enclave *en = enclave_new(NULL, &err);
    CHECK_NOT_NULL(en);
    struct tp_call c;
    CHECK_OK(call(en, "get_public_info", json_object(), &c));
    CHECK_STR_EQ(json_string_value(json_object_get(c.result, "attestation")), "none");
    json_decref(c.result);
    CHECK_NE(call(en, "get_attestation", json_object(), &c), KM_OK);
    CHECK_STR_EQ(c.error.code, "invalid_state");
    CHECK_CONTAINS(c.error.message, "ATTESTATION=none");
    enclave_free(en);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_document_binds_the_identity_key),
        TEST(test_without_a_provider),
    };
    return RUN_TESTS("unit.enclave.attestation", tests);
}
