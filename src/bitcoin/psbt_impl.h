/*
 * psbt_impl.h - the PSBT representation, shared by psbt.c (maps, parse,
 * serialize, records, construction), psbt_check.c (what each field may
 * hold) and psbt_fields.c (typed access, setters, sighashes). Internal to
 * src/bitcoin.
 *
 * Invariants of a struct psbt (parse and every setter keep them):
 *  - each record's key is CompactSize(type) || keydata, type_len bytes of
 *    type; keys are unique within a map; every record passed
 *    psbt_check_record for the PSBT's version;
 *  - n_in / n_out match the transaction; tx is the unsigned transaction
 *    (v0: parsed from PSBT_GLOBAL_UNSIGNED_TX; v2: assembled);
 *  - in[i].nwu is the parsed PSBT_IN_NON_WITNESS_UTXO (or NULL), and its
 *    txid is in[i]'s prevout txid with an output at the prevout index.
 */
#ifndef KM_BITCOIN_PSBT_IMPL_H
#define KM_BITCOIN_PSBT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "bitcoin/psbt.h"
#include "bitcoin/tx.h"
#include "common/err.h"

struct psbt_rec {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    uint64_t type;
    size_t type_len;
};

struct psbt_map {
    struct psbt_rec *r;
    size_t n, cap;
};

struct psbt_in {
    struct psbt_map m;
    struct tx *nwu;
};

struct psbt {
    uint32_t version;
    struct psbt_map global;
    struct psbt_in *in;
    size_t n_in, cap_in;
    struct psbt_map *out;
    size_t n_out, cap_out;
    struct tx *tx;
};

/* ---- psbt.c ---- */

/* Decodes the CompactSize type at the start of key. KM_OK or
 * KM_ERR_INVALID (empty, truncated or non-minimal). */
int psbt_key_type(uint64_t *type, size_t *type_len, const uint8_t *key, size_t key_len) KM_WUR;

/* The map of a scope (index checked: out of range is a BUG). */
const struct psbt_map *psbt_map_of(const struct psbt *p, enum psbt_scope scope, size_t index);

/* The record with exactly this key, or NULL. */
const struct psbt_rec *psbt_map_find(const struct psbt_map *m, const uint8_t *key, size_t key_len);

/* The k-th record of a type (in map order), or NULL. */
const struct psbt_rec *psbt_map_nth(const struct psbt_map *m, uint64_t type, size_t k);

/* The key-only record of a type (key == CompactSize(type)), or NULL. */
const struct psbt_rec *psbt_map_get(const struct psbt_map *m, uint64_t type);

/* "global", "input 3", "output 0". */
void psbt_where(char *out, size_t cap, enum psbt_scope scope, size_t index);

/* ---- psbt_check.c ---- */

/* The field's BIP name ("PSBT_IN_TAP_KEY_SIG"), or NULL if unknown. */
const char *psbt_field_name(enum psbt_scope scope, uint64_t type);

/*
 * Validates one record of a PSBT of this version: the version rules and
 * the field's key data and value format. For PSBT_GLOBAL_UNSIGNED_TX and
 * PSBT_IN_NON_WITNESS_UTXO, *tx_out (when not NULL) gets the parsed
 * transaction (caller frees). Returns KM_OK or KM_ERR_INVALID /
 * KM_ERR_TOO_LARGE / KM_ERR_UNSUPPORTED with a message.
 */
int psbt_check_record(uint32_t version, enum psbt_scope scope, size_t index,
                      const struct psbt_rec *r, struct tx **tx_out, struct km_error *err) KM_WUR;

/* The fields the version requires in a map. KM_OK or KM_ERR_INVALID. */
int psbt_check_required(uint32_t version, const struct psbt_map *m, enum psbt_scope scope,
                        size_t index, struct km_error *err) KM_WUR;

/* 1 if the type is structural (set only by the parser and the
 * constructors), else 0. */
int psbt_type_structural(enum psbt_scope scope, uint64_t type);

/* 1 if the version requires the type in its scope. */
int psbt_type_required(uint32_t version, enum psbt_scope scope, uint64_t type);

/* 1 if a v2 record of this type feeds the assembled transaction. */
int psbt_type_feeds_tx(enum psbt_scope scope, uint64_t type);

/* ---- psbt.c: the v2 transaction ---- */

/* Assembles p->tx from the v2 fields (replacing it). KM_OK or
 * KM_ERR_INVALID (no lock time satisfies every input). */
int psbt_v2_build_tx(struct psbt *p, struct km_error *err) KM_WUR;

/* Checks in[i].nwu against the prevout of input i of p->tx. */
int psbt_check_nwu(const struct psbt *p, size_t i, const struct tx *nwu,
                   struct km_error *err) KM_WUR;

#endif /* KM_BITCOIN_PSBT_IMPL_H */
