/*
 * enclave_attest.h - the gateway's attestation check of its enclaves
 * (security.enable_attestation; docs/ATTESTATION.md "The gateway").
 *
 * At start and whenever an enclave's key changes, the enclave manager asks
 * the enclave for a document with a fresh nonce (get_attestation) and
 * verifies it against the configured root and PCR policy, the nonce, the
 * freshness window and the key get_public_info reported. An enclave that
 * fails is not used (reported unhealthy, readiness 503 naming the check).
 * The verified document is kept and served, without a nonce, by
 * GET /api/v1/enclaves/{id}/attestation; clients still verify every
 * document themselves with a nonce of their own.
 */
#ifndef KM_GATEWAY_ENCLAVE_ATTEST_H
#define KM_GATEWAY_ENCLAVE_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "attest/doc.h"
#include "config/config.h"
#include "protocol/commands.h"
#include "transport/pool.h"

#define GW_ATTEST_PCR_HEX (2 * ATTEST_PCR_LEN + 1)

/* What a verified document says, for /health/detail and logs. */
struct gw_attest_summary {
    char provider[PROTO_ATTESTATION_NAME_MAX + 1]; /* "nsm", "development" */
    uint64_t key_epoch;                            /* the enclave's, as attested */
    char module_id[ATTEST_MODULE_ID_MAX + 1];
    uint64_t timestamp_ms;
    char pcr0[GW_ATTEST_PCR_HEX], pcr1[GW_ATTEST_PCR_HEX], pcr2[GW_ATTEST_PCR_HEX],
        pcr8[GW_ATTEST_PCR_HEX]; /* "" when absent */
};

struct gw_attest;

/* Loads the trust configuration of sec (root, PCR policy). *out is NULL
 * when attestation is off. KM_ERR_IO / KM_ERR_INVALID name the file. */
int gw_attest_new(struct gw_attest **out, const struct cfg_security *sec,
                  struct km_error *err) KM_WUR;

void gw_attest_free(struct gw_attest *a);

/* How often a verified enclave is attested again (ms): four fifths of the
 * freshness window, so the document the gateway keeps and serves without a
 * nonce is always fresh enough for a client, and a change of code (a new
 * image behind the same key) is noticed within that time. */
uint64_t gw_attest_refresh_ms(const struct gw_attest *a);

/*
 * Fetches a fresh document from the enclave behind pool and verifies it,
 * expecting key. On KM_OK: *doc (malloc'ed raw COSE_Sign1) and *summary.
 * On failure: KM_ERR_CRYPTO with "attestation failed: <check>: <why>" in
 * *err, or the transport / enclave error (an enclave started with
 * ATTESTATION=none answers invalid_state).
 */
int gw_attest_check(struct gw_attest *a, struct pool *pool, const uint8_t key[PROTO_PUBKEY_LEN],
                    uint8_t **doc, size_t *doc_len, struct gw_attest_summary *summary,
                    struct km_error *err) KM_WUR;

/*
 * Asks the enclave behind pool for a document (nonce may be NULL) without
 * verifying it: the relay behind ?nonce=. *res owned by the caller
 * (proto_attestation_result_clear).
 */
int gw_attest_fetch(struct pool *pool, const uint8_t *nonce, size_t nonce_len,
                    struct proto_attestation_result *res, struct km_error *err) KM_WUR;

#endif /* KM_GATEWAY_ENCLAVE_ATTEST_H */
