/*
 * attest_doc_fuzz.c - Nitro attestation documents (attest/doc.h,
 * attest/verify.h) and the CBOR decoder under them (attest/cbor.h) on
 * arbitrary bytes. The committed seeds are the real documents of
 * tests/data/nitro/ as raw CBOR, the negative variants, and small CBOR
 * edge cases (indefinite map, nested tags, duplicate keys, non-shortest
 * integers).
 *
 * Contract checked: never crashes, leaks or reads out of bounds; every
 * refusal comes with its code and a message (for attest_verify, one that
 * begins with the failed check's name) and leaves *out cleared; success
 * yields the mandatory fields. A document that parses is verified at its
 * own timestamp with the AWS root, so mutations of the real documents
 * reach the signature, chain and policy checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/cbor.h"
#include "attest/doc.h"
#include "attest/policy.h"
#include "attest/verify.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *aws_root(size_t *len)
{
    static uint8_t *der;
    static size_t der_len;

    if (der == NULL &&
        attest_root_from_pem(&der, &der_len, (const uint8_t *)attest_aws_nitro_root_g1_pem,
                             strlen(attest_aws_nitro_root_g1_pem), NULL) != KM_OK)
        abort();
    *len = der_len;
    return der;
}

static void fuzz_cbor(const uint8_t *data, size_t size)
{
    static const struct cbor_limits generous = {1u << 20, 64, 1u << 16, 1u << 16};
    struct cbor_tree *t = NULL;
    struct km_error err;

    km_error_clear(&err);
    int r = cbor_decode(&t, data, size, &generous, &err);
    if (r == KM_OK) {
        if (t == NULL || cbor_root(t) == NULL)
            abort();
        (void)cbor_map_get_text(cbor_root(t), "pcrs");
        (void)cbor_map_get_int(cbor_root(t), -1);
    } else if (t != NULL || err.code != r || err.msg[0] == '\0') {
        abort();
    }
    cbor_tree_free(t);
}

static void fuzz_read_any(const uint8_t *data, size_t size)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    int r = attest_doc_read_any(&raw, &n, data, size, NULL);
    if (r == KM_OK) {
        if (raw == NULL || n == 0 || n > ATTEST_DOC_MAX_LEN)
            abort();
    } else if (raw != NULL || n != 0) {
        abort();
    }
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct attest_doc d;
    struct attest_pcr_policy pol;
    struct attest_verify_opts o;
    struct km_error err;
    enum attest_check failed;
    uint64_t at = 1;
    size_t root_len;
    const uint8_t *root = aws_root(&root_len);

    fuzz_cbor(data, size);
    fuzz_read_any(data, size);

    km_error_clear(&err);
    int r = attest_doc_parse(&d, data, size, &err);
    if (r == KM_OK) {
        if (d.module_id[0] == '\0' || d.timestamp_ms == 0 || d.certificate.len == 0 ||
            d.cabundle_len == 0 || d.payload.len == 0)
            abort();
        at = d.timestamp_ms / 1000;
        attest_doc_clear(&d);
    } else if (err.code != r || err.msg[0] == '\0' || d.cabundle_len != 0 ||
               d.certificate.data != NULL) {
        abort();
    }

    /* Past validity, a policy that wants PCR0 all zero (what debug-mode
     * documents carry), and a nonce no document has. */
    memset(&pol, 0, sizeof(pol));
    pol.nsets = 1;
    pol.sets[0].want[0] = true;
    memset(&o, 0, sizeof(o));
    o.root_der = root;
    o.root_der_len = root_len;
    o.at_unix = at ? at : 1;
    o.max_age_secs = 600;
    o.allow_debug = size % 2 == 1;
    o.pcrs = &pol;
    o.nonce = (const uint8_t *)"fuzz";
    o.nonce_len = 4;
    km_error_clear(&err);
    r = attest_verify(&d, &failed, data, size, &o, &err);
    if (r == KM_OK) {
        if (failed != ATTEST_CHECK_NONE || d.timestamp_ms == 0)
            abort();
        attest_doc_clear(&d);
    } else {
        const char *name = attest_check_name(failed);
        if (failed == ATTEST_CHECK_NONE || strncmp(err.msg, name, strlen(name)) != 0 ||
            d.certificate.data != NULL || d.payload.data != NULL)
            abort();
    }
    return 0;
}
