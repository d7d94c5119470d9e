/*
 * nsm_response_fuzz.c - the NSM provider's reply decoder
 * (attest_nsm_decode_response, attest/provider.h) on arbitrary bytes: what
 * /dev/nsm answers is parsed with the same strict CBOR decoder as the
 * documents. Seeds: a success reply, error replies, and replies of the
 * wrong shape.
 *
 * Contract checked: never crashes, leaks or reads out of bounds; success
 * yields a non-empty document within ATTEST_DOC_MAX_LEN; every refusal
 * leaves *doc NULL with a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "attest/provider.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *doc = NULL;
    size_t len = 0;
    struct km_error err;
    km_error_clear(&err);
    int r = attest_nsm_decode_response(&doc, &len, data, size, &err);
    if (r == KM_OK && (doc == NULL || len == 0 || len > ATTEST_DOC_MAX_LEN))
        abort();
    if (r != KM_OK && (doc != NULL || err.msg[0] == '\0'))
        abort();
    free(doc);
    return 0;
}
