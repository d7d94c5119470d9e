/*
 * verify.h - verification of an AWS Nitro attestation document against a
 * pinned root and a policy (docs/ATTESTATION.md "Verification").
 *
 * attest_verify() runs every check in this order and stops at the first
 * that fails, reporting which one (enum attest_check) and why:
 *   decode     COSE/CBOR decoding and payload syntax (doc.h)
 *   signature  ES384 over the COSE Sig_structure with the leaf's P-384 key
 *   root       cabundle[0] is byte-for-byte the pinned root (a root the
 *              document brings is never trusted)
 *   chain      leaf <- cabundle[n-1] <- ... <- cabundle[1] <- root with
 *              OpenSSL's verifier (not X509_V_FLAG_X509_STRICT: AWS leaf
 *              certificates lack an Authority Key Identifier)
 *   validity   every certificate valid at the verification time
 *   freshness  the document's timestamp within max_age_secs before the
 *              verification time (and at most 5 minutes after it)
 *   debug      PCR0, PCR1 and PCR2 all zero (a debug-mode enclave) unless
 *              allow_debug
 *   pcrs       the document's PCRs match one of the allowed sets
 *   public_key equal to the key the caller is about to encrypt to
 *   nonce      equal to the caller's fresh nonce
 * Validity is reported apart from the rest of the chain so a caller can
 * tell "expired" from "forged".
 */
#ifndef KM_ATTEST_VERIFY_H
#define KM_ATTEST_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/doc.h"
#include "common/err.h"

enum attest_check {
    ATTEST_CHECK_NONE = 0, /* every check passed */
    ATTEST_CHECK_DECODE,
    ATTEST_CHECK_SIGNATURE,
    ATTEST_CHECK_ROOT,
    ATTEST_CHECK_CHAIN,
    ATTEST_CHECK_VALIDITY,
    ATTEST_CHECK_FRESHNESS,
    ATTEST_CHECK_DEBUG,
    ATTEST_CHECK_PCRS,
    ATTEST_CHECK_PUBLIC_KEY,
    ATTEST_CHECK_NONCE,
};

/* "decode", "signature", ... ("ok" for ATTEST_CHECK_NONE). */
const char *attest_check_name(enum attest_check c);

/* One allowed set of PCR values: every index with want[i] must equal
 * value[i]; others are not looked at. */
struct attest_pcr_set {
    bool want[ATTEST_MAX_PCRS];
    uint8_t value[ATTEST_MAX_PCRS][ATTEST_PCR_LEN];
};

#define ATTEST_POLICY_MAX_SETS 16

/* The PCR policy a client pins (policy.h reads it from a file). nsets == 0
 * means "no PCR pinning"; callers must ask for that explicitly. */
struct attest_pcr_policy {
    size_t nsets;
    struct attest_pcr_set sets[ATTEST_POLICY_MAX_SETS];
};

struct attest_verify_opts {
    const uint8_t *root_der; /* the pinned root certificate (DER); required */
    size_t root_der_len;
    uint64_t at_unix;                     /* verification time; 0 = now */
    uint64_t max_age_secs;                /* freshness window; 0 = not checked */
    const struct attest_pcr_policy *pcrs; /* NULL or nsets == 0: not checked */
    bool allow_debug;                     /* accept all-zero PCR0-2 */
    const uint8_t *public_key;            /* NULL: not checked */
    size_t public_key_len;
    const uint8_t *nonce; /* NULL: not checked */
    size_t nonce_len;
};

/*
 * Verifies doc[0..len) (raw COSE_Sign1). On success returns KM_OK,
 * *failed = ATTEST_CHECK_NONE and, when out is not NULL, the decoded
 * document in *out (release with attest_doc_clear).
 * On failure returns KM_ERR_CRYPTO (a check failed: *failed names it and
 * *err says why, e.g. "chain: certificate has expired at 2026-12-07T...")
 * or the decoder's code for undecodable input (*failed = DECODE); *out is
 * cleared. Never crashes on any input.
 */
int attest_verify(struct attest_doc *out, enum attest_check *failed, const uint8_t *doc, size_t len,
                  const struct attest_verify_opts *opts, struct km_error *err) KM_WUR;

#endif /* KM_ATTEST_VERIFY_H */
