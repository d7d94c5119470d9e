/*
 * test_provider.c - the attestation providers (attest/provider.h): the
 * development CA and provider, whose documents the real verifier accepts,
 * and the NSM provider through its interface (an injected raw exchange in
 * place of /dev/nsm).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/cbor.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "test.h"
#include "common/banned.h"

static const uint8_t key33[33] = {0x02, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                  11,   12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                  22,   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t nonce[32] = {0xaa, 0xbb, 0xcc};
static const char user_data[] = "{\"enclave_id\":7,\"key_epoch\":1}";

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

struct ca {
    char dir[64];
    uint8_t *root;
    size_t root_len;
    struct attest_pcr_policy pol;
    uint8_t pcr0[ATTEST_PCR_LEN];
};

static void ca_make(struct ca *c)
{
    struct km_error err;
    bool created = false;
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/km-devca-XXXXXX");
    CHECK_NOT_NULL(mkdtemp(c->dir));
    CHECK_OK(attest_dev_ca_init(c->dir, &created, &err));
    CHECK(created);
    char root[128];
    snprintf(root, sizeof(root), "%s/%s", c->dir, ATTEST_DEV_ROOT_CERT);
    CHECK_OK(attest_root_load(&c->root, &c->root_len, root, &err));
    memset(c->pcr0, 0x5a, sizeof(c->pcr0));
    c->pol.nsets = 1;
    c->pol.sets[0].want[0] = true;
    memcpy(c->pol.sets[0].value[0], c->pcr0, ATTEST_PCR_LEN);
}

static void ca_free(struct ca *c)
{
    free(c->root);
    nftw(c->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static struct attest_request request(void)
{
    struct attest_request r = {key33, sizeof(key33), (const uint8_t *)user_data, strlen(user_data),
                               nonce, sizeof(nonce)};
    return r;
}

static int verify(const struct ca *c, const uint8_t *doc, size_t len, enum attest_check *failed,
                  struct attest_doc *out)
{
    struct km_error err;
    struct attest_verify_opts o = {.root_der = c->root,
                                   .root_der_len = c->root_len,
                                   .max_age_secs = 60,
                                   .pcrs = &c->pol,
                                   .public_key = key33,
                                   .public_key_len = sizeof(key33),
                                   .nonce = nonce,
                                   .nonce_len = sizeof(nonce)};
    int r = attest_verify(out, failed, doc, len, &o, &err);
    if (r != KM_OK)
        fprintf(stderr, "verify: %s\n", err.msg);
    return r;
}

static void test_dev_ca_init_is_idempotent(void **state)
{
    (void)state;
    struct ca c;
    struct km_error err;
    bool created = true;
    ca_make(&c);
    CHECK_OK(attest_dev_ca_init(c.dir, &created, &err));
    CHECK(!created);
    char key[128];
    snprintf(key, sizeof(key), "%s/%s", c.dir, ATTEST_DEV_INTERM_KEY);
    CHECK_EQ(unlink(key), 0);
    CHECK_ERR(attest_dev_ca_init(c.dir, &created, &err), KM_ERR_STATE);
    CHECK_CONTAINS(err.msg, "partial");
    ca_free(&c);
}

static void test_dev_documents_verify(void **state)
{
    (void)state;
    struct ca c;
    struct km_error err;
    struct attest_provider *p = NULL;
    ca_make(&c);
    CHECK_OK(attest_dev_new(&p, c.dir, c.pcr0, "development-enclave-7", &err));
    CHECK_STR_EQ(attest_provider_name(p), "development");
    struct attest_request rq = request();
    uint8_t *doc = NULL;
    size_t len = 0;
    CHECK_OK(attest_provider_attest(p, &doc, &len, &rq, &err));
    enum attest_check failed;
    struct attest_doc d;
    CHECK_OK(verify(&c, doc, len, &failed, &d));
    CHECK_EQ(failed, ATTEST_CHECK_NONE);
    CHECK_STR_EQ(d.module_id, "development-enclave-7");
    CHECK_STR_EQ(d.digest, "SHA384");
    CHECK_EQ(d.cabundle_len, 2);
    CHECK(d.user_data.present && d.user_data.len == strlen(user_data));
    CHECK_MEM_EQ(d.user_data.data, user_data, strlen(user_data));
    for (unsigned i = 0; i < 16; i++)
        CHECK(d.pcrs[i].present && d.pcrs[i].len == ATTEST_PCR_LEN);
    attest_doc_clear(&d);

    /* Another binary: another PCR0, refused by the policy. */
    c.pol.sets[0].value[0][0] ^= 1;
    CHECK_ERR(verify(&c, doc, len, &failed, &d), KM_ERR_CRYPTO);
    CHECK_EQ(failed, ATTEST_CHECK_PCRS);
    c.pol.sets[0].value[0][0] ^= 1;

    /* The AWS root does not vouch for development documents. */
    struct ca aws = c;
    CHECK_OK(attest_root_from_pem(&aws.root, &aws.root_len,
                                  (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                  strlen(attest_aws_nitro_root_g1_pem), &err));
    CHECK_ERR(verify(&aws, doc, len, &failed, &d), KM_ERR_CRYPTO);
    CHECK_EQ(failed, ATTEST_CHECK_ROOT);
    free(aws.root);
    free(doc);

    /* Without a nonce the field is CBOR null, as the NSM writes it. */
    rq.nonce = NULL;
    rq.nonce_len = 0;
    CHECK_OK(attest_provider_attest(p, &doc, &len, &rq, &err));
    CHECK_ERR(verify(&c, doc, len, &failed, &d), KM_ERR_CRYPTO);
    CHECK_EQ(failed, ATTEST_CHECK_NONCE);
    free(doc);

    /* Limits. */
    uint8_t big[ATTEST_USER_DATA_MAX + 1] = {0};
    rq.user_data = big;
    rq.user_data_len = sizeof(big);
    CHECK_ERR(attest_provider_attest(p, &doc, &len, &rq, &err), KM_ERR_INVALID);
    CHECK_NULL(doc);
    attest_provider_free(p);
    ca_free(&c);
}

static void test_dev_without_ca_is_refused(void **state)
{
    (void)state;
    struct km_error err;
    struct attest_provider *p = NULL;
    uint8_t pcr0[ATTEST_PCR_LEN] = {0};
    CHECK_ERR(attest_dev_new(&p, "/nonexistent/km-ca", pcr0, "development", &err), KM_ERR_IO);
    CHECK_NULL(p);
    CHECK_CONTAINS(err.msg, "keymeld dev-ca init");
}

static void test_dev_measure(void **state)
{
    (void)state;
    char path[] = "/tmp/km-measure-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "abc", 3), 3);
    close(fd);
    uint8_t out[ATTEST_PCR_LEN];
    struct km_error err;
    CHECK_OK(attest_dev_measure(out, path, &err));
    /* SHA-384("abc"), FIPS 180-2 appendix D.1. */
    static const uint8_t want[4] = {0xcb, 0x00, 0x75, 0x3f};
    CHECK_MEM_EQ(out, want, sizeof(want));
    unlink(path);
    CHECK_ERR(attest_dev_measure(out, path, &err), KM_ERR_IO);
}

/* ---- nsm through its interface ------------------------------------------- */

struct fake_nsm {
    struct attest_provider *signer; /* answers like the NSM would */
    const char *mode;               /* "ok", "error", "garbage", "io" */
    bool saw_request;
};

/* Decodes the request exactly as the NSM would and answers. */
static int fake_raw(void *ctx, const uint8_t *req, size_t req_len, uint8_t *resp, size_t *resp_len,
                    struct km_error *err)
{
    struct fake_nsm *f = ctx;
    if (strcmp(f->mode, "io") == 0)
        return km_error_set(err, KM_ERR_IO, 5, "ioctl failed");
    struct cbor_tree *t = NULL;
    CHECK_OK(cbor_decode(&t, req, req_len, &cbor_doc_limits, err));
    const struct cbor_item *a = cbor_map_get_text(cbor_root(t), "Attestation");
    CHECK_NOT_NULL(a);
    const struct cbor_item *pk = cbor_map_get_text(a, "public_key");
    const struct cbor_item *n = cbor_map_get_text(a, "nonce");
    const struct cbor_item *ud = cbor_map_get_text(a, "user_data");
    CHECK(pk != NULL && pk->type == CBOR_BYTES && pk->len == 33);
    CHECK(n != NULL && n->type == CBOR_BYTES && n->len == sizeof(nonce));
    CHECK(ud != NULL && ud->type == CBOR_BYTES);
    f->saw_request = true;
    struct attest_request rq = {pk->ptr, pk->len, ud->ptr, ud->len, n->ptr, n->len};
    struct buf out;
    buf_init(&out, *resp_len);
    if (strcmp(f->mode, "error") == 0) {
        CHECK_OK(cbor_put_map(&out, 1));
        CHECK_OK(cbor_put_text(&out, "Error"));
        CHECK_OK(cbor_put_text(&out, "InvalidArgument"));
    } else if (strcmp(f->mode, "garbage") == 0) {
        CHECK_OK(cbor_put_array(&out, 0));
    } else {
        uint8_t *doc = NULL;
        size_t len = 0;
        CHECK_OK(attest_provider_attest(f->signer, &doc, &len, &rq, err));
        CHECK_OK(cbor_put_map(&out, 1));
        CHECK_OK(cbor_put_text(&out, "Attestation"));
        CHECK_OK(cbor_put_map(&out, 1));
        CHECK_OK(cbor_put_text(&out, "document"));
        CHECK_OK(cbor_put_bytes(&out, doc, len));
        free(doc);
    }
    cbor_tree_free(t);
    memcpy(resp, buf_peek(&out), buf_len(&out));
    *resp_len = buf_len(&out);
    buf_release(&out);
    return KM_OK;
}

static void test_nsm_through_its_interface(void **state)
{
    (void)state;
    struct ca c;
    struct km_error err;
    ca_make(&c);
    struct fake_nsm f = {.mode = "ok"};
    CHECK_OK(attest_dev_new(&f.signer, c.dir, c.pcr0, "i-0123-enc0123", &err));
    struct attest_provider *nsm = attest_nsm_new_raw(fake_raw, &f);
    CHECK_STR_EQ(attest_provider_name(nsm), "nsm");
    struct attest_request rq = request();
    uint8_t *doc = NULL;
    size_t len = 0;
    CHECK_OK(attest_provider_attest(nsm, &doc, &len, &rq, &err));
    CHECK(f.saw_request);
    enum attest_check failed;
    struct attest_doc d;
    CHECK_OK(verify(&c, doc, len, &failed, &d));
    attest_doc_clear(&d);
    free(doc);
    uint8_t pcr0[ATTEST_PCR_LEN];
    attest_provider_pcr0(nsm, pcr0);
    CHECK_MEM_EQ(pcr0, c.pcr0, ATTEST_PCR_LEN); /* learnt from the first document */

    f.mode = "error";
    CHECK_ERR(attest_provider_attest(nsm, &doc, &len, &rq, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "InvalidArgument");
    f.mode = "garbage";
    CHECK_ERR(attest_provider_attest(nsm, &doc, &len, &rq, &err), KM_ERR_INVALID);
    f.mode = "io";
    CHECK_ERR(attest_provider_attest(nsm, &doc, &len, &rq, &err), KM_ERR_IO);
    CHECK_NULL(doc);
    attest_provider_free(nsm);
    attest_provider_free(f.signer);
    ca_free(&c);
}

static void test_nsm_request_encoding(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4096);
    struct attest_request rq = {key33, sizeof(key33), NULL, 0, NULL, 0};
    CHECK_OK(attest_nsm_encode_request(&b, &rq));
    /* {"Attestation": {"public_key": h'02..', "user_data": null, "nonce": null}} */
    const uint8_t *p = buf_peek(&b);
    CHECK_EQ(p[0], 0xa1);
    CHECK_EQ(p[1], 0x6b);
    CHECK_MEM_EQ(p + 2, "Attestation", 11);
    CHECK_EQ(p[13], 0xa3);
    CHECK_EQ(p[buf_len(&b) - 1], 0xf6);
    buf_release(&b);
}

static void test_nsm_missing_device(void **state)
{
    (void)state;
    struct attest_provider *p = NULL;
    struct km_error err;
    CHECK_ERR(attest_nsm_open(&p, "/nonexistent/nsm", &err), KM_ERR_IO);
    CHECK_NULL(p);
    CHECK_CONTAINS(err.msg, "not an AWS Nitro Enclave");
}

static void test_nsm_response_decoding(void **state)
{
    (void)state;
    struct km_error err;
    uint8_t *doc = NULL;
    size_t len = 0;
    static const uint8_t ok[] = {0xa1, 0x6b, 'A', 't', 't', 'e', 's', 't', 'a', 't', 'i',  'o', 'n',
                                 0xa1, 0x68, 'd', 'o', 'c', 'u', 'm', 'e', 'n', 't', 0x42, 1,   2};
    CHECK_OK(attest_nsm_decode_response(&doc, &len, ok, sizeof(ok), &err));
    CHECK_EQ(len, 2);
    free(doc);
    CHECK_ERR(attest_nsm_decode_response(&doc, &len, ok, sizeof(ok) - 1, &err), KM_ERR_INCOMPLETE);
    static const uint8_t empty_doc[] = {0xa1, 0x6b, 'A', 't', 't', 'e',  's',  't',
                                        'a',  't',  'i', 'o', 'n', 0xa1, 0x68, 'd',
                                        'o',  'c',  'u', 'm', 'e', 'n',  't',  0x40};
    CHECK_ERR(attest_nsm_decode_response(&doc, &len, empty_doc, sizeof(empty_doc), &err),
              KM_ERR_INVALID);
    CHECK_NULL(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_dev_ca_init_is_idempotent), TEST(test_dev_documents_verify),
        TEST(test_dev_without_ca_is_refused), TEST(test_dev_measure),
        TEST(test_nsm_through_its_interface), TEST(test_nsm_request_encoding),
        TEST(test_nsm_missing_device),        TEST(test_nsm_response_decoding),
    };
    return RUN_TESTS("unit.attest.provider", tests);
}
