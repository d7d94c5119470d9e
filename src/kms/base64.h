/*
 * base64.h - standard base64 (RFC 4648, with padding) as the KMS JSON API
 * carries binary fields (AttestationDocument, CiphertextBlob,
 * CiphertextForRecipient).
 *
 * Never used on secrets: the plaintext data key never travels.
 */
#ifndef KM_KMS_BASE64_H
#define KM_KMS_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Base64 of p[0..n) with padding and no line breaks, as a malloc'ed
 * NUL-terminated string (free()). Aborts on out of memory. */
char *kms_b64_encode(const uint8_t *p, size_t n);

/*
 * Strictly decodes s[0..n): the standard alphabet, a length that is a
 * multiple of 4, '=' only as the final one or two characters, unused bits
 * zero; no whitespace. Returns KM_OK with *out (malloc'ed, free(); NULL
 * when *out_len is 0), KM_ERR_TOO_LARGE when the result would exceed max
 * bytes, or KM_ERR_INVALID. On failure *out is NULL and *out_len 0.
 */
int kms_b64_decode(uint8_t **out, size_t *out_len, const char *s, size_t n, size_t max) KM_WUR;

#endif /* KM_KMS_BASE64_H */
