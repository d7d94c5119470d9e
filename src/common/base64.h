/*
 * base64.h - standard base64 (RFC 4648 alphabet): AWS attestation
 * documents as tools print them, and the KMS JSON API's binary fields.
 * Never used on secrets.
 */
#ifndef KM_COMMON_BASE64_H
#define KM_COMMON_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Base64 of p[0..n) with padding and no line breaks, as a malloc'ed
 * NUL-terminated string (free()). Aborts on out of memory. */
char *base64_encode(const uint8_t *p, size_t n);

/*
 * Strictly decodes s[0..n): the standard alphabet, '=' only as the final
 * one or two characters of a length that is a multiple of 4, unused bits
 * zero, no whitespace. With padding_optional, unpadded input (some tools
 * drop the '=') is accepted too. Returns KM_OK with *out (malloc'ed,
 * free(); NULL when *out_len is 0), KM_ERR_TOO_LARGE when the result would
 * exceed max bytes, or KM_ERR_INVALID. On failure *out is NULL and
 * *out_len 0. Aborts on out of memory.
 */
int base64_decode(uint8_t **out, size_t *out_len, const char *s, size_t n, size_t max,
                  bool padding_optional) KM_WUR;

#endif /* KM_COMMON_BASE64_H */
