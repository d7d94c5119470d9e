/*
 * nitro_fixture.h - the real Nitro attestation documents of
 * tests/data/nitro/ (README.md there) for the attest tests.
 */
#ifndef KM_TESTS_ATTEST_NITRO_FIXTURE_H
#define KM_TESTS_ATTEST_NITRO_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The good documents, each with a .json beside it. */
extern const char *const nitro_good_docs[];
extern const size_t nitro_ngood;

/* Path of tests/data/nitro/<name> (static buffer, valid until the next
 * call). */
const char *nitro_path(const char *name);

/* Raw COSE bytes of tests/data/nitro/<name>.b64 (malloc'ed, free()). Fails
 * the test on error. */
uint8_t *nitro_doc(const char *name, size_t *len);

/* tests/data/nitro/<name>.json (json_decref). Fails the test on error. */
json_t *nitro_json(const char *name);

/* DER of tests/data/nitro/aws_nitro_root_g1.pem (malloc'ed, free()). */
uint8_t *nitro_root(size_t *len);

/* Decodes a hex string of the .json into out (exactly n bytes). */
void nitro_unhex(uint8_t *out, size_t n, const char *hex);

/* The string / integer under key, failing the test when missing. */
const char *nitro_str(const json_t *obj, const char *key);
uint64_t nitro_uint(const json_t *obj, const char *key);

/* SHA-256 of p[0..n) as lower-case hex. */
void nitro_sha256_hex(char out[65], const uint8_t *p, size_t n);

#endif /* KM_TESTS_ATTEST_NITRO_FIXTURE_H */
