/*
 * ser.h - Bitcoin's wire primitives over struct buf (internal to
 * src/bitcoin): little-endian integers and CompactSize lengths.
 *
 * struct buf's own integer getters are big-endian (the project's frames);
 * Bitcoin serializes little-endian, so every tx and PSBT field goes through
 * these. Readers consume from the front of b and, like the buf getters,
 * consume nothing on failure. Writers append and poison b on failure
 * (buf.h), so a sequence of appends can be checked once.
 *
 * CompactSize (the "var_int" of the P2P protocol): one byte below 0xfd,
 * else 0xfd + u16, 0xfe + u32 or 0xff + u64, little-endian. Only the
 * shortest encoding is accepted (Bitcoin Core's ReadCompactSize, and
 * BIP-174 "must be minimally encoded"), which is what makes every parse in
 * this module round-trip byte for byte.
 */
#ifndef KM_BITCOIN_SER_H
#define KM_BITCOIN_SER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Raw little-endian loads and stores (no bounds: the caller has checked). */
uint32_t ser_load_le32(const uint8_t p[4]);
uint64_t ser_load_le64(const uint8_t p[8]);
void ser_store_le32(uint8_t p[4], uint32_t v);
void ser_store_le64(uint8_t p[8], uint64_t v);

/* Readers. Return KM_OK or KM_ERR_INCOMPLETE (b ends early). */
int ser_get_le32(struct buf *b, uint32_t *v) KM_WUR;
int ser_get_le64(struct buf *b, uint64_t *v) KM_WUR;

/*
 * Reads a CompactSize.
 * Returns: KM_OK; KM_ERR_INCOMPLETE (b ends early); KM_ERR_INVALID (not the
 *          shortest encoding). Nothing is consumed on failure.
 */
int ser_get_compact(struct buf *b, uint64_t *v) KM_WUR;

/*
 * Consumes n bytes and points *p at them (borrowed from b's memory, valid
 * while that memory is; *p is NULL when n is 0). Returns KM_OK or
 * KM_ERR_INCOMPLETE (fewer than n bytes left; nothing consumed).
 */
int ser_get_direct(struct buf *b, const uint8_t **p, size_t n) KM_WUR;

/* Number of bytes the CompactSize encoding of v takes (1, 3, 5 or 9). */
size_t ser_compact_len(uint64_t v);

/* Writers. Return KM_OK or the buf error (KM_ERR_TOO_LARGE, KM_ERR_NOMEM). */
int ser_put_le32(struct buf *b, uint32_t v) KM_WUR;
int ser_put_le64(struct buf *b, uint64_t v) KM_WUR;
int ser_put_compact(struct buf *b, uint64_t v) KM_WUR;
/* CompactSize(n) followed by p[0..n). */
int ser_put_bytes(struct buf *b, const uint8_t *p, size_t n) KM_WUR;

/* Offset of b's read position from the start of a view over len bytes, for
 * error messages ("at offset 42"). */
size_t ser_offset(const struct buf *b, size_t len);

#endif /* KM_BITCOIN_SER_H */
