/*
 * provider_impl.h - what every attestation provider implements (private to
 * src/attest).
 */
#ifndef KM_ATTEST_PROVIDER_IMPL_H
#define KM_ATTEST_PROVIDER_IMPL_H

#include "attest/provider.h"

struct attest_provider_ops {
    const char *name;
    int (*attest)(struct attest_provider *p, uint8_t **doc, size_t *doc_len,
                  const struct attest_request *req, struct km_error *err);
    void (*free)(struct attest_provider *p);
};

/* Embedded first in each provider's own struct. */
struct attest_provider {
    const struct attest_provider_ops *ops;
    uint8_t pcr0[ATTEST_PCR_LEN];
};

/* Checks a request against the limits of provider.h. */
int attest_request_check(const struct attest_request *req, struct km_error *err);

#endif /* KM_ATTEST_PROVIDER_IMPL_H */
