/*
 * provider.c - the provider interface's dispatch and request limits.
 */
#include "attest/provider.h"

#include <string.h>

#include "attest/provider_impl.h"
#include "common/banned.h"

int attest_request_check(const struct attest_request *req, struct km_error *err)
{
    if (req->public_key_len > ATTEST_PUBLIC_KEY_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "public_key of %zu bytes (at most %u)",
                            req->public_key_len, ATTEST_PUBLIC_KEY_MAX);
    if (req->user_data_len > ATTEST_USER_DATA_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "user_data of %zu bytes (at most %u)",
                            req->user_data_len, ATTEST_USER_DATA_MAX);
    if (req->nonce_len > ATTEST_NONCE_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "nonce of %zu bytes (at most %u)",
                            req->nonce_len, ATTEST_NONCE_MAX);
    return KM_OK;
}

const char *attest_provider_name(const struct attest_provider *p)
{
    return p->ops->name;
}

void attest_provider_pcr0(const struct attest_provider *p, uint8_t out[ATTEST_PCR_LEN])
{
    memcpy(out, p->pcr0, ATTEST_PCR_LEN);
}

int attest_provider_attest(struct attest_provider *p, uint8_t **doc, size_t *doc_len,
                           const struct attest_request *req, struct km_error *err)
{
    *doc = NULL;
    *doc_len = 0;
    int r = attest_request_check(req, err);
    if (r != KM_OK)
        return r;
    return p->ops->attest(p, doc, doc_len, req, err);
}

void attest_provider_free(struct attest_provider *p)
{
    if (p != NULL)
        p->ops->free(p);
}
