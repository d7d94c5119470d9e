/*
 * hex.h - hexadecimal encoding, constant time.
 *
 * Both directions run in time that depends only on the length, never on the
 * byte values, so they are safe for secrets (a session secret in hex on the
 * client side, an enclave key in a test).
 */
#ifndef KM_COMMON_HEX_H
#define KM_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Writes lower-case hex of p[0..n) and a NUL to out. outcap must be at least
 * 2*n + 1 (a smaller buffer is a BUG). Returns out. */
char *hex_encode(char *out, size_t outcap, const uint8_t *p, size_t n);

/* Decodes hex[0..hexlen) (either case, no prefix, no whitespace) into out.
 * Returns KM_OK and sets *outlen, KM_ERR_INVALID (odd length or a non-hex
 * character) or KM_ERR_TOO_LARGE (more than outcap bytes). On error out is
 * zeroed. */
int hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *hex, size_t hexlen) KM_WUR;

/* Like hex_decode but requires exactly n decoded bytes (hexlen == 2n);
 * otherwise KM_ERR_INVALID. */
int hex_decode_exact(uint8_t *out, size_t n, const char *hex, size_t hexlen) KM_WUR;

#endif /* KM_COMMON_HEX_H */
