/*
 * doc.h - an AWS Nitro attestation document: an untagged (or tag-18)
 * COSE_Sign1 array [protected, unprotected, payload, signature] whose
 * payload is the NSM's attestation map (docs/ATTESTATION.md "Format").
 *
 * attest_doc_parse() decodes and checks syntax only (AWS's step 1-2):
 *  - COSE: 4 elements; protected = bstr holding exactly {1: -35} (ES384);
 *    unprotected = a map; payload = bstr; signature = 96-byte bstr.
 *  - payload map (definite or indefinite length): module_id non-empty
 *    text; digest "SHA384"; timestamp uint > 0 (ms since the epoch); pcrs a
 *    map of 1..32 entries, keys 0..31, values of 32, 48 or 64 bytes;
 *    certificate bstr 1..1024; cabundle array of 1..16 bstr of 1..1024;
 *    optional public_key (1..1024), user_data (0..512), nonce (0..512), each
 *    absent or CBOR null meaning "not provided". Unknown keys are refused.
 * It does not check signatures, chains, times or policy: that is
 * attest_verify() (verify.h).
 *
 * A parsed document owns copies of every field (no pointers into the input).
 */
#ifndef KM_ATTEST_DOC_H
#define KM_ATTEST_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ATTEST_DOC_MAX_LEN    (32u * 1024u) /* a whole COSE_Sign1 document */
#define ATTEST_MAX_PCRS       32
#define ATTEST_PCR_MAX_LEN    64
#define ATTEST_PCR_LEN        48 /* SHA-384 */
#define ATTEST_MODULE_ID_MAX  128
#define ATTEST_CERT_MAX_LEN   1024
#define ATTEST_CABUNDLE_MAX   16
#define ATTEST_PUBLIC_KEY_MAX 1024
#define ATTEST_USER_DATA_MAX  512
#define ATTEST_NONCE_MAX      512
#define ATTEST_SIGNATURE_LEN  96 /* ES384: r || s */

struct attest_bytes {
    bool present; /* optional fields: false = absent or CBOR null */
    size_t len;
    uint8_t *data; /* owned; NULL when len == 0 */
};

struct attest_pcr {
    bool present;
    size_t len;
    uint8_t value[ATTEST_PCR_MAX_LEN];
};

struct attest_doc {
    char module_id[ATTEST_MODULE_ID_MAX + 1];
    uint64_t timestamp_ms;
    char digest[16];
    struct attest_pcr pcrs[ATTEST_MAX_PCRS];
    struct attest_bytes certificate; /* DER of the leaf */
    size_t cabundle_len;
    struct attest_bytes cabundle[ATTEST_CABUNDLE_MAX]; /* [root, interm_1, ...] */
    struct attest_bytes public_key;
    struct attest_bytes user_data;
    struct attest_bytes nonce;

    /* The COSE pieces the signature covers. */
    struct attest_bytes protected_header;
    struct attest_bytes payload;
    uint8_t signature[ATTEST_SIGNATURE_LEN];
};

/*
 * Decodes a raw COSE_Sign1 document (not base64) into *out.
 * Returns KM_OK, or KM_ERR_INCOMPLETE / KM_ERR_TRAILING_DATA /
 * KM_ERR_TOO_LARGE / KM_ERR_INVALID with a message naming the field in
 * *err; *out is cleared (attest_doc_clear) on failure. Release with
 * attest_doc_clear.
 */
int attest_doc_parse(struct attest_doc *out, const uint8_t *doc, size_t len,
                     struct km_error *err) KM_WUR;

void attest_doc_clear(struct attest_doc *d);

/* COSE Sig_structure ["Signature1", protected, h'', payload], CBOR-encoded,
 * hashed with SHA-384: what the ES384 signature signs. */
void attest_doc_sig_digest(const struct attest_doc *d, uint8_t out[48]);

/*
 * Accepts a document as a file holds it: raw CBOR (first byte 0x84 or the
 * tag 0xd2) or standard base64 (whitespace ignored). Returns KM_OK with
 * *out (malloc'ed raw bytes, free()) or KM_ERR_INVALID / KM_ERR_TOO_LARGE.
 */
int attest_doc_read_any(uint8_t **out, size_t *out_len, const uint8_t *in, size_t in_len,
                        struct km_error *err) KM_WUR;

#endif /* KM_ATTEST_DOC_H */
