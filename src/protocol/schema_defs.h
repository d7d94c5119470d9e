/*
 * schema_defs.h - macros that write struct proto_field tables (internal to
 * src/protocol). One line per JSON key:
 *
 *   FU32(proto_x, timeout_secs, 1, 86400, 0)
 *
 * names the struct, the member (whose name is also the JSON key, except
 * for FBLOB, which takes the key explicitly), the limits and the flags
 * (enum proto_field_flags). The _P variants record presence in a bool
 * member.
 */
#ifndef KM_PROTOCOL_SCHEMA_DEFS_H
#define KM_PROTOCOL_SCHEMA_DEFS_H

#include <stddef.h>

#include "protocol/schema.h"

#define PROTO_U53_MAX 9007199254740991ull /* 2^53-1: exact in every JSON parser */

#define PF_BASE_(st, key, fld, ty, fl)                                                             \
    .name = (key), .type = (ty), .flags = (fl), .off = offsetof(struct st, fld),                   \
    .present_off = PROTO_NO_PRESENT

#define FBOOL(st, fld, fl)                                                                         \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_BOOL, fl)                                                       \
    }
#define FU32(st, fld, lo, hi, fl)                                                                  \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_U32, fl), .min = (lo), .max = (hi)                              \
    }
#define FU64(st, fld, lo, hi, fl)                                                                  \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_U64, fl), .min = (lo), .max = (hi)                              \
    }
#define FUUID(st, fld, fl)                                                                         \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_UUID, fl)                                                       \
    }
#define FHEX(st, fld, n, fl)                                                                       \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_HEX, fl), .len = (n)                                            \
    }
#define FBLOB(st, key, fld, lo, hi, fl)                                                            \
    {                                                                                              \
        PF_BASE_(st, key, fld, PF_BLOB, fl), .min = (lo), .max = (hi)                              \
    }
#define FSTR(st, fld, hi, fl)                                                                      \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_STR, fl), .min = 0, .max = (hi)                                 \
    }
#define FENUM(st, fld, nm, fl)                                                                     \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_ENUM, fl), .names = (nm)                                        \
    }
#define FOBJ(st, fld, sch, fl)                                                                     \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_OBJECT, fl), .elem = (sch)                                      \
    }
#define FUUIDS(st, fld, cnt, lo, hi, fl)                                                           \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_UUIDS, fl), .count_off = offsetof(struct st, cnt), .min = (lo), \
                                               .max = (hi)                                         \
    }
#define FHEXARR(st, fld, cnt, n, lo, hi, fl)                                                       \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_HEX_ARRAY, fl), .count_off = offsetof(struct st, cnt),          \
                                                   .min = (lo), .max = (hi), .len = (n)            \
    }
#define FARR(st, fld, cnt, sch, lo, hi, fl)                                                        \
    {                                                                                              \
        PF_BASE_(st, #fld, fld, PF_ARRAY, fl), .count_off = offsetof(struct st, cnt), .min = (lo), \
                                               .max = (hi), .elem = (sch)                          \
    }

/* Optional values whose presence is recorded in the bool member `has`. */
#define FU32_P(st, fld, lo, hi, has)                                                               \
    {                                                                                              \
        .name = #fld, .type = PF_U32, .flags = PF_F_OPTIONAL, .off = offsetof(struct st, fld),     \
        .present_off = offsetof(struct st, has), .min = (lo), .max = (hi)                          \
    }
#define FHEX_P(st, fld, n, has)                                                                    \
    {                                                                                              \
        .name = #fld, .type = PF_HEX, .flags = PF_F_OPTIONAL, .off = offsetof(struct st, fld),     \
        .present_off = offsetof(struct st, has), .len = (n)                                        \
    }

/* The schema of struct proto_<nm> (declared by PROTO_CODEC(nm)). */
#define PROTO_SCHEMA(nm, label, flds, chk)                                                         \
    const struct proto_schema proto_##nm##_schema = {.name = (label),                              \
                                                     .size = sizeof(struct proto_##nm),            \
                                                     .fields = (flds),                             \
                                                     .nfields = sizeof(flds) / sizeof((flds)[0]),  \
                                                     .check = (chk)}

/* A file-local schema for array elements and embedded objects. */
#define PROTO_ELEM_SCHEMA(var, st, flds)                                                           \
    static const struct proto_schema var = {.name = #st,                                           \
                                            .size = sizeof(struct st),                             \
                                            .fields = (flds),                                      \
                                            .nfields = sizeof(flds) / sizeof((flds)[0])}

#endif /* KM_PROTOCOL_SCHEMA_DEFS_H */
