/*
 * cvec.h - helpers for the official-vector tests: load a JSON file from
 * tests/data/vectors (test_vectors_dir) and decode hex fields. Every helper
 * fails the running test on malformed vector files.
 */
#ifndef KM_TESTS_CRYPTO_CVEC_H
#define KM_TESTS_CRYPTO_CVEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Parses <vectors dir>/<rel>; caller json_decref()s. */
json_t *cvec_load_json(const char *rel);

/* Reads <vectors dir>/<rel> into a malloc'd NUL-terminated buffer. */
char *cvec_load_text(const char *rel, size_t *len);

/* Decodes exactly n bytes of hex from a JSON string. */
void cvec_hex(uint8_t *out, size_t n, const json_t *str);

/* Decodes a hex string of any length into a malloc'd buffer (never NULL,
 * even for ""); *len gets the length. */
uint8_t *cvec_hex_alloc(const json_t *str, size_t *len);

/* Decodes a hex C string of exactly n bytes. */
void cvec_hex_str(uint8_t *out, size_t n, const char *hex);

/* Array element i of obj[key] as an integer / the element itself. */
size_t cvec_index(const json_t *arr, size_t i);

#endif /* KM_TESTS_CRYPTO_CVEC_H */
