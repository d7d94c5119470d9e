/*
 * btc_test.h - shared helpers of the bitcoin tests: the line-oriented
 * vector files of tests/data/bitcoin (README.md there), hex, and
 * serializing a tx or PSBT into a malloc'd buffer. Every helper fails the
 * running test on bad data.
 */
#ifndef KM_TESTS_BITCOIN_BTC_TEST_H
#define KM_TESTS_BITCOIN_BTC_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "bitcoin/psbt.h"
#include "bitcoin/tx.h"

#define BTC_LINE_FIELDS 8

/* One line split on spaces into n fields; the last field is the rest of
 * the line (a case name with spaces). */
struct btc_line {
    char *f[BTC_LINE_FIELDS];
    size_t n;
};

/* Reads tests/data/<rel>, each line split into nfields fields. Returns the
 * number of lines; free with btc_free_lines. */
size_t btc_read_lines(const char *rel, size_t nfields, struct btc_line **out);
void btc_free_lines(struct btc_line *lines, size_t n);

/* Hex to a malloc'd buffer (never NULL) / to exactly n bytes. */
uint8_t *btc_unhex(const char *hex, size_t *len);
void btc_unhex_n(uint8_t *out, size_t n, const char *hex);

/* Display-order (reversed) hex id to internal order. */
void btc_unhex_id(uint8_t out[32], const char *hex);

/* Serializations into malloc'd buffers. */
uint8_t *btc_tx_bytes(const struct tx *tx, unsigned flags, size_t *len);
uint8_t *btc_psbt_bytes(const struct psbt *p, size_t *len);

/* Parses bytes that must be a valid PSBT (fails the test otherwise). */
struct psbt *btc_psbt_ok(const uint8_t *p, size_t len);

#endif /* KM_TESTS_BITCOIN_BTC_TEST_H */
