/*
 * schema.h - strict, table-driven JSON codecs for the enclave commands and
 * the plaintexts inside their encrypted fields (docs/PROTOCOL.md).
 *
 * Every message is a C struct described by a struct proto_schema: one
 * struct proto_field per JSON key, giving the key, its type, where the value
 * lives in the struct (offsetof) and its limits. One engine decodes, encodes
 * and frees every message, so each command costs a table, not a parser, and
 * one fuzz target covers them all.
 *
 * Decoding is strict (docs/PROTOCOL.md "Conventions"): the value must be a
 * JSON object (an array for root-array schemas); every key must be known;
 * required keys must be present; integers must be integers within their
 * range; UUIDs must parse and not be nil; hex must have the exact (or at
 * most the maximum) decoded length; arrays must respect their count limits
 * (a count above the maximum is KM_ERR_LIMIT, so the enclave can answer
 * "limit_exceeded"); strings must be printable ASCII. Fields flagged
 * PF_F_DISTINCT refuse repeated UUIDs (for arrays: repeated first fields).
 * A schema's optional check() runs last for cross-field rules.
 *
 * Memory: a decoded struct owns its arrays and blobs (heap); free them with
 * proto_clear(). Plain struct copies share them: copy with care. Decoders
 * never allocate more than the input contains (a JSON array of n elements
 * allocates n elements; its size was bounded by the frame limit).
 *
 * No secret ever passes through these codecs: private keys and session
 * secrets travel as ECIES or session-encrypted blobs, decrypted by the
 * enclave into fixed-size arrays (payload.h packs the bound plaintexts).
 */
#ifndef KM_PROTOCOL_SCHEMA_H
#define KM_PROTOCOL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

/* An owned byte string (a ciphertext), hex on the wire. */
struct proto_blob {
    uint8_t *p; /* heap, NULL when empty */
    size_t len;
};

enum proto_ftype {
    PF_BOOL,      /* bool */
    PF_U32,       /* uint32_t in [min, max] */
    PF_U64,       /* uint64_t in [min, max]; max <= 2^53-1 (exact in JSON) */
    PF_UUID,      /* struct uuid, not nil */
    PF_HEX,       /* uint8_t[len]: a hex string of exactly len bytes */
    PF_BLOB,      /* struct proto_blob: hex of min..max bytes */
    PF_STR,       /* char[max + 1]: printable ASCII, at most max bytes */
    PF_ENUM,      /* int: index into names[] */
    PF_OBJECT,    /* an embedded struct described by elem */
    PF_UUIDS,     /* struct uuid * with a size_t count: array of UUIDs */
    PF_HEX_ARRAY, /* uint8_t (*)[len] with a size_t count: array of hex */
    PF_ARRAY,     /* elem-structs * with a size_t count: array of objects */
};

enum proto_field_flags {
    PF_F_OPTIONAL = 1 << 0, /* may be absent (see present_off) */
    PF_F_DISTINCT = 1 << 1, /* PF_UUIDS / PF_ARRAY: no repeated (first) UUID */
};

#define PROTO_NO_PRESENT SIZE_MAX

struct proto_schema;

struct proto_field {
    const char *name;
    enum proto_ftype type;
    unsigned flags;                  /* enum proto_field_flags */
    size_t off;                      /* offsetof the value */
    size_t present_off;              /* optional scalars: offsetof a bool "present", or
                                      * PROTO_NO_PRESENT: absent = zero value, and the
                                      * encoder omits a zero/empty value */
    size_t count_off;                /* arrays: offsetof the size_t element count */
    uint64_t min, max;               /* integer ranges, blob lengths, array counts */
    size_t len;                      /* PF_HEX, PF_HEX_ARRAY: bytes per value */
    const struct proto_schema *elem; /* PF_OBJECT, PF_ARRAY */
    const char *const *names;        /* PF_ENUM: NULL-terminated */
};

struct proto_schema {
    const char *name; /* for messages: "keygen_init args" */
    size_t size;      /* sizeof the struct */
    const struct proto_field *fields;
    size_t nfields;
    /* The JSON value is an array, decoded into fields[0] (a PF_ARRAY). */
    bool root_array;
    /* Optional cross-field rule, run after a successful decode. Returns
     * KM_OK or KM_ERR_INVALID with a message. */
    int (*check)(const void *obj, struct km_error *err);
};

/*
 * Decodes json into *out (a struct of s->size bytes, overwritten).
 * Returns: KM_OK; KM_ERR_INVALID (wrong shape, type, range, unknown or
 *          missing key; message names the field path, e.g.
 *          "participants[2].user_id: not a UUID"); KM_ERR_LIMIT (an array
 *          longer than its maximum). On error *out is cleared.
 * Out: *out owns its arrays and blobs: proto_clear() it.
 */
int proto_decode(const struct proto_schema *s, void *out, const json_t *json,
                 struct km_error *err) KM_WUR;

/* Encodes *in. Returns a new reference (never NULL: out of memory
 * aborts). Fields are emitted in schema order; absent optional fields are
 * omitted. */
json_t *proto_encode(const struct proto_schema *s, const void *in);

/* Frees what *obj owns and zeroes it. A zeroed struct is a valid input. */
void proto_clear(const struct proto_schema *s, void *obj);

/*
 * Bytes <-> struct, for plaintexts carried inside encrypted fields.
 * proto_decode_bytes parses p[0..len) as one JSON value (UTF-8, no
 * duplicate keys, nothing after it) and decodes it like proto_decode.
 * proto_encode_bytes appends the compact JSON to out (KM_OK or a buf error).
 */
int proto_decode_bytes(const struct proto_schema *s, void *out, const uint8_t *p, size_t len,
                       struct km_error *err) KM_WUR;
int proto_encode_bytes(struct buf *out, const struct proto_schema *s, const void *in) KM_WUR;

/* Sets *blob to a heap copy of p[0..len) (len 0 gives an empty blob). */
void proto_blob_set(struct proto_blob *blob, const uint8_t *p, size_t len);
/* Frees and empties a blob. */
void proto_blob_clear(struct proto_blob *blob);

/*
 * Typed wrappers: PROTO_CODEC(foo) declares proto_foo_decode/_encode/_clear
 * over struct proto_foo and proto_foo_schema, so callers cannot pair a
 * struct with the wrong schema.
 */
#define PROTO_CODEC(nm)                                                                            \
    extern const struct proto_schema proto_##nm##_schema;                                          \
    KM_WUR static inline int proto_##nm##_decode(struct proto_##nm *out, const json_t *json,       \
                                                 struct km_error *err)                             \
    {                                                                                              \
        return proto_decode(&proto_##nm##_schema, out, json, err);                                 \
    }                                                                                              \
    static inline json_t *proto_##nm##_encode(const struct proto_##nm *in)                         \
    {                                                                                              \
        return proto_encode(&proto_##nm##_schema, in);                                             \
    }                                                                                              \
    static inline void proto_##nm##_clear(struct proto_##nm *obj)                                  \
    {                                                                                              \
        proto_clear(&proto_##nm##_schema, obj);                                                    \
    }

#endif /* KM_PROTOCOL_SCHEMA_H */
