/*
 * buf.h - the one growable byte buffer for untrusted bytes.
 *
 * Every buffer has a mandatory maximum set at init: an append that would make
 * the unread contents exceed it fails with KM_ERR_TOO_LARGE instead of
 * growing. A failed append releases the contents and poisons the buffer: all
 * later appends fail with the same code until buf_reset(), so a sequence of
 * appends can be checked once at the end (curl dynbuf).
 *
 * Layout: data[off .. len) are the unread bytes. Getters consume from the
 * front; putters append at the back. Integers are big-endian.
 *
 * Never put secrets in a struct buf: realloc may leave copies behind. Secrets
 * live in fixed-size arrays and are wiped with secure_wipe().
 *
 * Ownership: the struct is caller-owned (buf_init / buf_release). Pointers
 * returned by *_direct and buf_peek are borrowed and valid until the next
 * call that modifies the buffer.
 */
#ifndef KM_COMMON_BUF_H
#define KM_COMMON_BUF_H

#include <stdint.h>
#include <stddef.h>

#include "common/err.h"

enum buf_flags {
    BUF_F_VIEW = 1 << 0,     /* read-only view over caller memory */
    BUF_F_POISONED = 1 << 1, /* an append failed; see buf_reset() */
};

struct buf {
    uint8_t *data;
    size_t off;
    size_t len;
    size_t cap;
    size_t max;
    unsigned flags;
    int poison_err;
    uint32_t magic;
};

/* Initializes an empty buffer whose unread contents may never exceed max
 * bytes. max must be > 0. Allocates nothing until the first append. */
void buf_init(struct buf *b, size_t max);

/* Initializes b as a read-only view over p[0..len). Appends are a BUG. The
 * memory must outlive the view; buf_release() does not free it. */
void buf_view(struct buf *b, const void *p, size_t len);

/* Frees the storage. b stays initialized (same max) and empty. */
void buf_release(struct buf *b);

/* Empties the buffer, keeps its storage, clears the poison flag. */
void buf_reset(struct buf *b);

/* Number of unread bytes. */
size_t buf_len(const struct buf *b);

/* Borrowed pointer to the unread bytes (NULL when empty). */
const uint8_t *buf_peek(const struct buf *b);

/* Returns the unread bytes as a NUL-terminated string (the NUL is not
 * counted in buf_len). Borrowed. Returns NULL if the terminator cannot be
 * stored (out of memory). The bytes may contain embedded NULs: use buf_len. */
const char *buf_cstr(struct buf *b);

/* Ensures room to append n more bytes without reallocating.
 * Returns KM_OK, KM_ERR_TOO_LARGE (would exceed max) or KM_ERR_NOMEM. */
int buf_ensure(struct buf *b, size_t n) KM_WUR;

/* Writable space after the contents (call buf_ensure first), and how many
 * bytes of it exist. After writing k bytes there, call buf_commit(b, k). */
uint8_t *buf_tail_direct(struct buf *b);
size_t buf_tail_avail(const struct buf *b);
void buf_commit(struct buf *b, size_t n);

/* Appends. Return KM_OK, KM_ERR_TOO_LARGE or KM_ERR_NOMEM (poisoning b). */
int buf_put(struct buf *b, const void *p, size_t n) KM_WUR;
int buf_put_str(struct buf *b, const char *s) KM_WUR;
int buf_put_u8(struct buf *b, uint8_t v) KM_WUR;
int buf_put_u16(struct buf *b, uint16_t v) KM_WUR;
int buf_put_u32(struct buf *b, uint32_t v) KM_WUR;
int buf_put_u64(struct buf *b, uint64_t v) KM_WUR;
int buf_putf(struct buf *b, const char *fmt, ...) KM_WUR KM_PRINTF(2, 3);

/* Consumers. Return KM_OK or KM_ERR_INCOMPLETE (nothing consumed). */
int buf_get(struct buf *b, void *out, size_t n) KM_WUR;
int buf_get_u8(struct buf *b, uint8_t *v) KM_WUR;
int buf_get_u16(struct buf *b, uint16_t *v) KM_WUR;
int buf_get_u32(struct buf *b, uint32_t *v) KM_WUR;
int buf_get_u64(struct buf *b, uint64_t *v) KM_WUR;
int buf_consume(struct buf *b, size_t n) KM_WUR;

/* Big-endian helpers on raw memory (no bounds: the caller has checked). */
uint32_t buf_load_be32(const uint8_t p[4]);
void buf_store_be32(uint8_t p[4], uint32_t v);
uint64_t buf_load_be64(const uint8_t p[8]);
void buf_store_be64(uint8_t p[8], uint64_t v);

#endif /* KM_COMMON_BUF_H */
