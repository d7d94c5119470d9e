/*
 * internal.h - pieces shared by the files of src/config; not a public API.
 *
 *  ytree.c    YAML bytes -> a small node tree (libyaml events), with limits
 *  schema.c   the key tables: YAML key, type, range, dev/prod defaults
 *  parse.c    node tree -> struct cfg (cfg_parse)
 *  env.c      environment access and overrides (cfg_apply_env)
 *  validate.c cross-field and per-environment rules (cfg_validate)
 *  load.c     file choice and reading (cfg_load)
 *  report.c   sources, descriptions, the `config check` report
 */
#ifndef KM_CONFIG_INTERNAL_H
#define KM_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* ---- YAML node tree (ytree.c) ----------------------------------------- */

#define CFG_Y_NONE UINT32_MAX

enum cfg_ynode_kind {
    CFG_Y_SCALAR = 1,
    CFG_Y_MAP,
    CFG_Y_SEQ,
};

struct cfg_ynode {
    enum cfg_ynode_kind kind;
    uint32_t line; /* 1-based line where the node starts */
    bool plain;    /* scalar written without quotes or block indicator */
    char *text;    /* scalar: owned copy, NUL-terminated; len bytes (may hold NULs) */
    size_t len;
    uint32_t first; /* map/seq: first child; maps alternate key, value */
    uint32_t last;  /* map/seq: last child (for appending) */
    uint32_t next;  /* next sibling */
    uint32_t count; /* number of children (maps: 2 per key) */
};

struct cfg_ytree {
    struct cfg_ynode *nodes; /* owned */
    uint32_t n;
    uint32_t cap;
    uint32_t root; /* CFG_Y_NONE for an empty stream */
};

/*
 * Builds the tree of data[0..len). Refuses (with an error at file:line in
 * diag): malformed YAML, more than one document, anchors/aliases, tags,
 * nesting deeper than CFG_MAX_DEPTH, more than CFG_MAX_NODES nodes, a
 * mapping with more than CFG_MAX_MAP_KEYS keys, a scalar longer than
 * CFG_MAX_SCALAR, non-scalar or duplicate keys. Returns KM_OK or
 * KM_ERR_CONFIG; release t in both cases.
 */
int cfg_ytree_build(struct cfg_ytree *t, const uint8_t *data, size_t len, const char *file,
                    struct cfg_diag *diag) KM_WUR;
void cfg_ytree_release(struct cfg_ytree *t);

/* A scalar that YAML reads as null: plain "", "~", "null", "Null", "NULL". */
bool cfg_ynode_is_null(const struct cfg_ynode *n);

/* "a mapping" | "a list" | "a scalar"; for messages. */
const char *cfg_ynode_kind_name(const struct cfg_ynode *n);

/* ---- Schema (schema.c) ------------------------------------------------ */

enum cfg_type {
    CFG_T_BOOL = 1,
    CFG_T_U32,
    CFG_T_F64,
    CFG_T_STR,
    CFG_T_ENVIRONMENT,
    CFG_T_LOG_LEVEL,
    CFG_T_LOG_FORMAT,
    CFG_T_TRANSPORT,
    CFG_T_SECTION, /* a section's presence (development:) */
    CFG_T_LIST,    /* enclaves.enclaves */
};

struct cfg_field_def {
    const char *section; /* NULL: top level (or an enclave field) */
    const char *key;
    const char *path; /* "server.port", "enclaves.enclaves[].cid" */
    enum cfg_type type;
    size_t offset;        /* into struct cfg, or struct cfg_enclave */
    size_t size;          /* CFG_T_STR: capacity including the NUL */
    uint32_t min, max;    /* CFG_T_U32 range, inclusive */
    double fmin, fmax;    /* CFG_T_F64: fmin < value <= fmax */
    const char *def_dev;  /* default as text; NULL (and def_prod NULL): none */
    const char *def_prod; /* NULL: same as def_dev */
};

extern const struct cfg_field_def cfg_field_defs[CFG_F_COUNT];
extern const struct cfg_field_def cfg_enclave_field_defs[CFG_EF_COUNT];

/* Keys the original accepted that this implementation ignores (with a
 * warning saying so). NULL-terminated lists of {section, key, hint}. */
struct cfg_ignored_key {
    const char *section;
    const char *key;
    const char *hint;
};
extern const struct cfg_ignored_key cfg_ignored_keys[];

/* Known sections of the top level ("server", "enclaves", ...). */
bool cfg_is_section(const char *name);

/*
 * Parses text[0..len) (text[len] == '\0') for field d stored at base +
 * d->offset. plain: the text is an unquoted YAML scalar or an environment
 * value (numbers and booleans must be plain). On success stores the value
 * and returns KM_OK. Otherwise returns KM_ERR_INVALID or KM_ERR_RANGE,
 * leaves the field unchanged and writes the reason to why, e.g.
 * "expected a number between 1 and 65535, got 'abc'".
 */
int cfg_value_set(const struct cfg_field_def *d, void *base, const char *text, size_t len,
                  bool plain, char *why, size_t whycap) KM_WUR;

/* The field's current value as text ("8090", "true", "vsock", "info"). */
char *cfg_value_format(char *out, size_t outcap, const struct cfg_field_def *d, const void *base);

/* Sets field f of c to its default for c->environment (or UNSET). */
void cfg_field_set_default(struct cfg *c, enum cfg_field f);

/* Re-applies the defaults of c->environment to every field whose source is
 * CFG_SRC_DEFAULT or CFG_SRC_UNSET (after the environment changed). */
void cfg_redefault(struct cfg *c);

/* Initializes one enclave entry: transport vsock (default), rest unset. */
void cfg_enclave_init(struct cfg_enclave *e, uint32_t line);

/* ---- Helpers (report.c) ----------------------------------------------- */

/* Copies at most max bytes of s[0..len) to out for quoting in a message,
 * replacing control bytes with '?' and appending "..." when cut. */
char *cfg_quote(char *out, size_t outcap, const char *s, size_t len, size_t max);

/* Adds a diagnostic located at a value's source: "file:line" for FILE,
 * "env VAR" for ENV, the file name (or none) otherwise. */
void cfg_diag_src(struct cfg_diag *d, enum cfg_severity sev, const struct cfg *c,
                  const struct cfg_src *s, const char *fmt, ...) KM_PRINTF(5, 6);

/* Names of the per-enclave variables, in enum cfg_enclave_field order
 * (NULL for the id, which cannot be overridden). */
extern const char *const cfg_enclave_env_suffix[CFG_EF_COUNT];

#endif /* KM_CONFIG_INTERNAL_H */
