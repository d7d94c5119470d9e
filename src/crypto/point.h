/*
 * point.h - secp256k1 points that may be the point at infinity (internal to
 * src/crypto).
 *
 * libsecp256k1's secp256k1_pubkey cannot hold infinity, which BIP-327 needs
 * (cbytes_ext/cpoint_ext, nonce aggregation, R = R1 + b*R2). struct point
 * adds the flag. All operations here are VARIABLE TIME and for public points
 * and public scalars only; secret multiples of G go through
 * secp256k1_ec_pubkey_create (constant time) in the callers.
 */
#ifndef KM_CRYPTO_POINT_H
#define KM_CRYPTO_POINT_H

#include <stdint.h>

#include <secp256k1.h>

#include "common/err.h"

struct point {
    secp256k1_pubkey p; /* valid only when !inf */
    int inf;
};

/* r = infinity. */
void point_set_infinity(struct point *r);

/* cpoint: parses a 33-byte compressed point (first byte 2 or 3, x < p, on
 * the curve). Returns KM_OK or KM_ERR_INVALID. */
int point_parse(struct point *r, const uint8_t in[33]) KM_WUR;

/* cpoint_ext: like point_parse, but 33 zero bytes mean infinity. */
int point_parse_ext(struct point *r, const uint8_t in[33]) KM_WUR;

/* cbytes_ext: 33 zero bytes for infinity, else the compressed encoding. */
void point_serialize_ext(uint8_t out[33], const struct point *a);

/* xbytes(a) and has_even_y(a); a must not be infinity. */
void point_xbytes(uint8_t out[32], const struct point *a);
int point_has_even_y(const struct point *a);

/* r = a + b (either may be infinity). r may alias a or b. */
void point_add_var(struct point *r, const struct point *a, const struct point *b);

/* r = s * a for a public scalar s < n. r may alias a. */
void point_mul_var(struct point *r, const struct point *a, const uint8_t s[32]);

/* r = s * G for a public scalar s < n (zero gives infinity). */
void point_mul_gen(struct point *r, const uint8_t s[32]);

/* r = -a. r may alias a. */
void point_negate(struct point *r, const struct point *a);

/* 1 if a == b, else 0. */
int point_equal_var(const struct point *a, const struct point *b);

#endif /* KM_CRYPTO_POINT_H */
