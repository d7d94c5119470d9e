/*
 * scalar.h - integers modulo the secp256k1 group order n, as 32-byte
 * big-endian arrays (internal to src/crypto).
 *
 * libsecp256k1 0.2 exposes no scalar type, so arithmetic goes through its
 * secret-key API (seckey_tweak_add/mul, seckey_negate), which is constant
 * time but refuses zero operands. The _var functions below handle the zero
 * cases with branches and are therefore for PUBLIC values only (hashes of
 * public data, tweaks, partial signatures). Secret arithmetic (musig.c
 * partial signing, adaptor.c) calls the seckey functions directly and is
 * arranged so that no operand can be zero (see the comments there).
 *
 * Every input must already be reduced (< n) unless stated otherwise.
 */
#ifndef KM_CRYPTO_SCALAR_H
#define KM_CRYPTO_SCALAR_H

#include <stdint.h>

#define SCALAR_LEN 32

/* The group order n, big-endian. */
extern const uint8_t scalar_order[SCALAR_LEN];

/* r = x mod n for any 256-bit x (one conditional subtraction). Constant
 * time: safe on secret-derived hashes (NonceGen). r may alias x. */
void scalar_reduce(uint8_t r[SCALAR_LEN], const uint8_t x[SCALAR_LEN]);

/* 1 if a < n (a canonical scalar), else 0. Variable time. */
int scalar_is_canonical_var(const uint8_t a[SCALAR_LEN]);

/* 1 if a == 0. Variable time. */
int scalar_is_zero_var(const uint8_t a[SCALAR_LEN]);

/* r = 1. */
void scalar_set_one(uint8_t r[SCALAR_LEN]);

/* r = a + b, a * b, -a (mod n). Variable time (public values only). r may
 * alias a or b. */
void scalar_add_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN],
                    const uint8_t b[SCALAR_LEN]);
void scalar_mul_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN],
                    const uint8_t b[SCALAR_LEN]);
void scalar_negate_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN]);

#endif /* KM_CRYPTO_SCALAR_H */
