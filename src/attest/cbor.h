/*
 * cbor.h - a strict CBOR (RFC 8949) decoder and a small encoder, for the
 * COSE_Sign1 attestation documents of the Nitro Secure Module and the NSM
 * request/response messages (docs/ATTESTATION.md).
 *
 * Decoder. cbor_decode() parses one complete item into a tree whose
 * strings point into the caller's input (the input must outlive the tree).
 * Accepted: unsigned and negative integers, definite-length byte and text
 * strings, arrays and maps of definite or indefinite length (real Nitro
 * documents since 2025 use an indefinite-length payload map), tags, and the
 * simple values false, true, null and undefined. Refused, each with a
 * message naming the offset: truncated input (KM_ERR_INCOMPLETE), trailing
 * bytes (KM_ERR_TRAILING_DATA), non-shortest integer/length encodings,
 * indefinite-length strings, floats, other simple values, reserved
 * additional info, a "break" outside an indefinite container, text that is
 * not UTF-8, duplicate map keys, and anything past the limits
 * (KM_ERR_TOO_LARGE): input size, nesting depth, total item count, and the
 * element count of any one container. Never allocates from a count the
 * input claims: items are counted as they are read.
 *
 * Encoder. The cbor_put_* functions append the shortest encoding of one
 * item (definite lengths only) to a struct buf; a container is a head
 * (cbor_put_array / cbor_put_map) followed by its elements. Like every
 * buf append they poison the buffer on failure, so a sequence can be
 * checked once at the end.
 *
 * Pure: no I/O, no crypto.
 */
#ifndef KM_ATTEST_CBOR_H
#define KM_ATTEST_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

enum cbor_type {
    CBOR_UINT,   /* u = value */
    CBOR_NEGINT, /* value = -1 - u */
    CBOR_BYTES,  /* ptr/len */
    CBOR_TEXT,   /* ptr/len, valid UTF-8, not NUL-terminated */
    CBOR_ARRAY,  /* count = elements, items[0..count) */
    CBOR_MAP,    /* count = pairs, items[2i] = key, items[2i+1] = value */
    CBOR_TAG,    /* u = tag number, items[0] = the tagged item */
    CBOR_FALSE,
    CBOR_TRUE,
    CBOR_NULL,
    CBOR_UNDEFINED,
};

struct cbor_item {
    enum cbor_type type;
    bool indefinite; /* arrays and maps: encoded with indefinite length */
    uint64_t u;
    const uint8_t *ptr;
    size_t len;
    size_t count;
    struct cbor_item *items;
};

struct cbor_limits {
    size_t max_input;     /* bytes */
    size_t max_depth;     /* nesting of arrays, maps and tags; root = depth 1; at most 128 */
    size_t max_items;     /* items in the whole tree */
    size_t max_container; /* elements of one array, pairs of one map */
};

/* Limits for one Nitro attestation document (docs/ATTESTATION.md). */
#define CBOR_DOC_MAX_INPUT     (32u * 1024u)
#define CBOR_DOC_MAX_DEPTH     8
#define CBOR_DOC_MAX_ITEMS     512
#define CBOR_DOC_MAX_CONTAINER 64
extern const struct cbor_limits cbor_doc_limits;

struct cbor_tree;

/*
 * Decodes exactly one item from p[0..len).
 * Returns KM_OK with *out set (free with cbor_tree_free), or
 * KM_ERR_INCOMPLETE / KM_ERR_TRAILING_DATA / KM_ERR_TOO_LARGE /
 * KM_ERR_INVALID with *out NULL and a message naming what and where in *err.
 */
int cbor_decode(struct cbor_tree **out, const uint8_t *p, size_t len, const struct cbor_limits *lim,
                struct km_error *err) KM_WUR;

/* The root item. Borrowed from t. */
const struct cbor_item *cbor_root(const struct cbor_tree *t);

void cbor_tree_free(struct cbor_tree *t);

/* Map lookups: the value under a text key / an integer key (negative keys
 * are NEGINT items), or NULL when absent or m is not a map. */
const struct cbor_item *cbor_map_get_text(const struct cbor_item *m, const char *key);
const struct cbor_item *cbor_map_get_int(const struct cbor_item *m, int64_t key);

/* Whether a text item equals s. */
bool cbor_text_eq(const struct cbor_item *it, const char *s);

/* Encoder (shortest forms, definite lengths). */
int cbor_put_uint(struct buf *b, uint64_t v) KM_WUR;
int cbor_put_int(struct buf *b, int64_t v) KM_WUR; /* negative -> major type 1 */
int cbor_put_bytes(struct buf *b, const uint8_t *p, size_t len) KM_WUR;
int cbor_put_text(struct buf *b, const char *s) KM_WUR;
int cbor_put_text_n(struct buf *b, const char *s, size_t len) KM_WUR;
int cbor_put_array(struct buf *b, size_t count) KM_WUR;
int cbor_put_map(struct buf *b, size_t count) KM_WUR;
int cbor_put_tag(struct buf *b, uint64_t tag) KM_WUR;
int cbor_put_null(struct buf *b) KM_WUR;
int cbor_put_bool(struct buf *b, bool v) KM_WUR;

#endif /* KM_ATTEST_CBOR_H */
