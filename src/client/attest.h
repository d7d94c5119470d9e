/*
 * attest.h - the client's side of attestation: before anything is
 * ECIES-encrypted to an enclave key, fetch that enclave's attestation
 * document with a fresh nonce and verify it (docs/ATTESTATION.md).
 *
 * A struct client_trust holds what the client pins: the root certificate
 * (default: the AWS Nitro Enclaves Root-G1 shipped with the project), the
 * PCR policy (required: without it any Nitro enclave, including one the
 * host operator built, would pass) and the freshness window. It also
 * remembers the (enclave id, key) pairs it verified, so a keygen with many
 * participants on one enclave fetches one document per enclave.
 *
 * The insecure mode (--insecure-skip-attestation) verifies nothing and
 * says so on stderr once per process; it exists for tests and for stacks
 * that run with ATTESTATION=none.
 */
#ifndef KM_CLIENT_ATTEST_H
#define KM_CLIENT_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/verify.h"
#include "client/rest.h"
#include "common/err.h"
#include "protocol/commands.h"

#define CLIENT_ATTEST_MAX_AGE_DEFAULT 300 /* seconds */
#define CLIENT_ATTEST_NONCE_LEN       32
#define CLIENT_TRUST_CACHE            64

struct client_trust {
    bool insecure_skip; /* verify nothing (loud) */
    uint8_t *root_der;  /* owned */
    size_t root_der_len;
    struct attest_pcr_policy pcrs;
    bool allow_debug;      /* accept debug-mode (all-zero PCR0-2) enclaves */
    uint64_t max_age_secs; /* 0 = CLIENT_ATTEST_MAX_AGE_DEFAULT */
    uint64_t at_unix;      /* verification time; 0 = now (tests) */
    size_t nverified;
    struct {
        uint32_t enclave_id;
        uint8_t public_key[PROTO_PUBKEY_LEN];
    } verified[CLIENT_TRUST_CACHE];
};

/*
 * Loads the trust configuration: root_pem (NULL = the AWS Nitro root) and
 * pcrs_path (required). KM_ERR_IO / KM_ERR_INVALID name the file;
 * KM_ERR_CONFIG when pcrs_path is NULL. Release with client_trust_release.
 */
int client_trust_load(struct client_trust *t, const char *root_pem, const char *pcrs_path,
                      struct km_error *err) KM_WUR;

/* A trust that verifies nothing (--insecure-skip-attestation). */
void client_trust_insecure(struct client_trust *t);

void client_trust_release(struct client_trust *t);

/*
 * Makes sure public_key is enclave enclave_id's attested identity key:
 * GET /api/v1/enclaves/{id}/attestation?nonce=<fresh 32 bytes>, then
 * attest_verify with t's root, PCR policy and freshness, the nonce, and
 * public_key as the expected key. A pair verified before returns KM_OK at
 * once. out (may be NULL) receives the decoded document when one was
 * fetched (cleared otherwise).
 * Returns KM_OK, KM_ERR_CRYPTO ("enclave 1's key is not attested: pcrs:
 * ..."), or the REST error. Never KM_OK for an unverified key unless
 * t->insecure_skip.
 */
int client_attest_enclave(struct rest_client *c, struct client_trust *t, uint32_t enclave_id,
                          const uint8_t public_key[PROTO_PUBKEY_LEN], struct attest_doc *out,
                          struct km_error *err) KM_WUR;

/*
 * Fetches enclave_id's document (nonce may be NULL) and verifies it with
 * t but without an expected key: what `keymeld attest ID` shows. *key
 * receives the key the gateway says the enclave has (the document's
 * public_key must equal it). Returns as client_attest_enclave; *failed
 * names the failing check.
 */
int client_attest_fetch(struct rest_client *c, const struct client_trust *t, uint32_t enclave_id,
                        const uint8_t *nonce, size_t nonce_len, struct attest_doc *out,
                        enum attest_check *failed, uint8_t key[PROTO_PUBKEY_LEN],
                        struct km_error *err) KM_WUR;

#endif /* KM_CLIENT_ATTEST_H */
