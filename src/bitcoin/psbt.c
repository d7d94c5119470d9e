/*
 * psbt.c - PSBT maps: parse, serialize, raw records, the v0 and v2
 * constructors and the v2 transaction. Field formats live in psbt_check.c;
 * typed access, setters and sighashes in psbt_fields.c.
 */
#include "bitcoin/psbt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/psbt_impl.h"
#include "bitcoin/ser.h"
#include "common/xmalloc.h"
#include "common/banned.h"

static const uint8_t psbt_magic[5] = {0x70, 0x73, 0x62, 0x74, 0xff};

/* ---- memory ---------------------------------------------------------- */

static void rec_release(struct psbt_rec *r)
{
    free(r->key);
    free(r->value);
    memset(r, 0, sizeof(*r));
}

static void map_release(struct psbt_map *m)
{
    for (size_t k = 0; k < m->n; k++)
        rec_release(&m->r[k]);
    free(m->r);
    memset(m, 0, sizeof(*m));
}

void psbt_free(struct psbt *p)
{
    if (p == NULL)
        return;
    map_release(&p->global);
    for (size_t i = 0; i < p->n_in; i++) {
        map_release(&p->in[i].m);
        tx_free(p->in[i].nwu);
    }
    for (size_t o = 0; o < p->n_out; o++)
        map_release(&p->out[o]);
    free(p->in);
    free(p->out);
    tx_free(p->tx);
    free(p);
}

static struct psbt *psbt_alloc(uint32_t version)
{
    struct psbt *p = xcalloc(1, sizeof(*p));
    p->version = version;
    return p;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = xmalloc(n ? n : 1);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

/* Appends a zeroed record slot. */
static struct psbt_rec *map_append(struct psbt_map *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? st_mult(m->cap, 2) : 8;
        m->r = xrealloc(m->r, st_mult(m->cap, sizeof(*m->r)));
    }
    struct psbt_rec *r = &m->r[m->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static struct psbt_in *add_input_map(struct psbt *p)
{
    if (p->n_in == p->cap_in) {
        p->cap_in = p->cap_in ? st_mult(p->cap_in, 2) : 4;
        p->in = xrealloc(p->in, st_mult(p->cap_in, sizeof(*p->in)));
    }
    struct psbt_in *in = &p->in[p->n_in++];
    memset(in, 0, sizeof(*in));
    return in;
}

static struct psbt_map *add_output_map(struct psbt *p)
{
    if (p->n_out == p->cap_out) {
        p->cap_out = p->cap_out ? st_mult(p->cap_out, 2) : 4;
        p->out = xrealloc(p->out, st_mult(p->cap_out, sizeof(*p->out)));
    }
    struct psbt_map *m = &p->out[p->n_out++];
    memset(m, 0, sizeof(*m));
    return m;
}

/* A record from a key (type + key data) and a value, copied. */
static void rec_fill(struct psbt_rec *r, const uint8_t *key, size_t key_len, uint64_t type,
                     size_t type_len, const uint8_t *value, size_t value_len)
{
    r->key = dup_bytes(key, key_len);
    r->key_len = key_len;
    r->value = dup_bytes(value, value_len);
    r->value_len = value_len;
    r->type = type;
    r->type_len = type_len;
}

/* Builds CompactSize(type) || keydata into a fresh owned key. */
static void make_key(struct psbt_rec *r, uint64_t type, const uint8_t *kd, size_t kd_len)
{
    struct buf b;
    buf_init(&b, st_add(kd_len, 9));
    if (ser_put_compact(&b, type) != KM_OK || buf_put(&b, kd, kd_len) != KM_OK)
        KM_BUG("psbt: key of %zu bytes does not fit", kd_len);
    r->key = dup_bytes(buf_peek(&b), buf_len(&b));
    r->key_len = buf_len(&b);
    r->type = type;
    r->type_len = ser_compact_len(type);
    buf_release(&b);
}

/* Constructors' append: no validation (the caller builds valid values). */
static void map_put(struct psbt_map *m, uint64_t type, const uint8_t *value, size_t value_len)
{
    struct psbt_rec *r = map_append(m);
    make_key(r, type, NULL, 0);
    r->value = dup_bytes(value, value_len);
    r->value_len = value_len;
}

static void map_put_u32(struct psbt_map *m, uint64_t type, uint32_t v)
{
    uint8_t p[4];
    ser_store_le32(p, v);
    map_put(m, type, p, sizeof(p));
}

/* Replaces the value of a key-only record that must exist. */
static void map_replace_compact(struct psbt_map *m, uint64_t type, uint64_t v)
{
    struct psbt_rec *r = (struct psbt_rec *)(uintptr_t)psbt_map_get(m, type);
    uint8_t p[9];
    struct buf b;

    KM_ASSERT(r != NULL);
    buf_init(&b, sizeof(p));
    if (ser_put_compact(&b, v) != KM_OK)
        KM_BUG("psbt: CompactSize does not fit");
    free(r->value);
    r->value = dup_bytes(buf_peek(&b), buf_len(&b));
    r->value_len = buf_len(&b);
    buf_release(&b);
}

/* ---- lookups --------------------------------------------------------- */

int psbt_key_type(uint64_t *type, size_t *type_len, const uint8_t *key, size_t key_len)
{
    struct buf b;
    buf_view(&b, key, key_len);
    if (ser_get_compact(&b, type) != KM_OK)
        return KM_ERR_INVALID;
    *type_len = key_len - buf_len(&b);
    return KM_OK;
}

const struct psbt_map *psbt_map_of(const struct psbt *p, enum psbt_scope scope, size_t index)
{
    switch (scope) {
    case PSBT_SCOPE_GLOBAL:
        return &p->global;
    case PSBT_SCOPE_INPUT:
        if (index >= p->n_in)
            KM_BUG("psbt: input %zu of %zu", index, p->n_in);
        return &p->in[index].m;
    case PSBT_SCOPE_OUTPUT:
        if (index >= p->n_out)
            KM_BUG("psbt: output %zu of %zu", index, p->n_out);
        return &p->out[index];
    }
    KM_BUG("psbt: bad scope %d", (int)scope);
}

static struct psbt_map *map_of_mut(struct psbt *p, enum psbt_scope scope, size_t index)
{
    return (struct psbt_map *)(uintptr_t)psbt_map_of(p, scope, index);
}

const struct psbt_rec *psbt_map_find(const struct psbt_map *m, const uint8_t *key, size_t key_len)
{
    for (size_t k = 0; k < m->n; k++)
        if (m->r[k].key_len == key_len && memcmp(m->r[k].key, key, key_len) == 0)
            return &m->r[k];
    return NULL;
}

const struct psbt_rec *psbt_map_nth(const struct psbt_map *m, uint64_t type, size_t k)
{
    for (size_t j = 0; j < m->n; j++)
        if (m->r[j].type == type && k-- == 0)
            return &m->r[j];
    return NULL;
}

const struct psbt_rec *psbt_map_get(const struct psbt_map *m, uint64_t type)
{
    for (size_t j = 0; j < m->n; j++)
        if (m->r[j].type == type && m->r[j].key_len == m->r[j].type_len)
            return &m->r[j];
    return NULL;
}

void psbt_where(char *out, size_t cap, enum psbt_scope scope, size_t index)
{
    if (scope == PSBT_SCOPE_GLOBAL)
        snprintf(out, cap, "global");
    else
        snprintf(out, cap, "%s %zu", scope == PSBT_SCOPE_INPUT ? "input" : "output", index);
}

/* ---- parsing --------------------------------------------------------- */

struct rd {
    struct buf b;
    size_t len;
    size_t records; /* in all maps so far */
    struct km_error *err;
};

static int rd_fail(struct rd *rd, int r, const char *where, const char *what)
{
    size_t off = ser_offset(&rd->b, rd->len);
    if (r == KM_ERR_INCOMPLETE)
        return km_error_set(rd->err, r, 0, "psbt: %s: ends early in %s (offset %zu)", where, what,
                            off);
    return km_error_set(rd->err, KM_ERR_INVALID, 0,
                        "psbt: %s: non-minimal CompactSize in %s (offset %zu)", where, what, off);
}

/* One "<key> <value>" pair (the key length already read, non-zero). */
static int read_record(struct rd *rd, struct psbt_map *m, uint64_t key_len, const char *where)
{
    const uint8_t *key, *value;
    uint64_t type, value_len;
    size_t type_len;
    int r;

    if (key_len > PSBT_MAX_KEY_LEN)
        return km_error_set(
            rd->err, KM_ERR_TOO_LARGE, 0, "psbt: %s: key of %llu bytes (limit %u, offset %zu)",
            where, (unsigned long long)key_len, PSBT_MAX_KEY_LEN, ser_offset(&rd->b, rd->len));
    if ((r = ser_get_direct(&rd->b, &key, (size_t)key_len)) != KM_OK)
        return rd_fail(rd, r, where, "a key");
    if (psbt_key_type(&type, &type_len, key, (size_t)key_len) != KM_OK)
        return km_error_set(rd->err, KM_ERR_INVALID, 0,
                            "psbt: %s: key type is not a minimal CompactSize (offset %zu)", where,
                            ser_offset(&rd->b, rd->len) - (size_t)key_len);
    if ((r = ser_get_compact(&rd->b, &value_len)) != KM_OK)
        return rd_fail(rd, r, where, "a value length");
    if (value_len > PSBT_MAX_VALUE_LEN)
        return km_error_set(rd->err, KM_ERR_TOO_LARGE, 0,
                            "psbt: %s: value of %llu bytes (limit %u)", where,
                            (unsigned long long)value_len, PSBT_MAX_VALUE_LEN);
    if ((r = ser_get_direct(&rd->b, &value, (size_t)value_len)) != KM_OK)
        return rd_fail(rd, r, where, "a value");
    if (m->n == PSBT_MAX_MAP_RECORDS)
        return km_error_set(rd->err, KM_ERR_TOO_LARGE, 0, "psbt: %s: more than %u records", where,
                            PSBT_MAX_MAP_RECORDS);
    /* Each record costs a few dozen bytes of bookkeeping however small it
     * is: the total bounds that amplification. */
    if (rd->records++ == PSBT_MAX_RECORDS)
        return km_error_set(rd->err, KM_ERR_TOO_LARGE, 0,
                            "psbt: %s: more than %u records in the PSBT", where, PSBT_MAX_RECORDS);
    rec_fill(map_append(m), key, (size_t)key_len, type, type_len, value, (size_t)value_len);
    return KM_OK;
}

static int cmp_rec_key(const void *a, const void *b)
{
    const struct psbt_rec *x = *(const struct psbt_rec *const *)a;
    const struct psbt_rec *y = *(const struct psbt_rec *const *)b;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

/* BIP-174 "Handling Duplicated Keys": a map with a repeated key is
 * invalid. Sorting keeps this O(n log n) for large maps. */
static int check_duplicates(const struct psbt_map *m, enum psbt_scope scope, const char *where,
                            struct km_error *err)
{
    const struct psbt_rec **v;
    int r = KM_OK;

    if (m->n < 2)
        return KM_OK;
    v = xmalloc(st_mult(m->n, sizeof(*v)));
    for (size_t k = 0; k < m->n; k++)
        v[k] = &m->r[k];
    qsort(v, m->n, sizeof(*v), cmp_rec_key);
    for (size_t k = 1; k < m->n && r == KM_OK; k++) {
        if (cmp_rec_key(&v[k - 1], &v[k]) != 0)
            continue;
        const char *name = psbt_field_name(scope, v[k]->type);
        r = km_error_set(err, KM_ERR_INVALID, 0, "psbt: %s: duplicate key (%s%s0x%llx)", where,
                         name ? name : "", name ? ", type " : "type ",
                         (unsigned long long)v[k]->type);
    }
    free(v);
    return r;
}

/* <keypair>* 0x00 */
static int read_map(struct rd *rd, struct psbt_map *m, enum psbt_scope scope, size_t index)
{
    char where[32];
    uint64_t key_len;
    int r;

    psbt_where(where, sizeof(where), scope, index);
    for (;;) {
        if ((r = ser_get_compact(&rd->b, &key_len)) != KM_OK)
            return rd_fail(rd, r, where, "a key length");
        if (key_len == 0)
            break; /* the map's separator */
        if ((r = read_record(rd, m, key_len, where)) != KM_OK)
            return r;
    }
    return check_duplicates(m, scope, where, rd->err);
}

/* PSBT_GLOBAL_VERSION: absent means 0; 0 and 2 are the versions this
 * module implements (BIP-174 "Version Numbers": stop on an unknown one). */
static int read_version(struct psbt *p, struct km_error *err)
{
    const struct psbt_rec *r = psbt_map_get(&p->global, PSBT_GLOBAL_VERSION);
    uint32_t v;

    if (r == NULL)
        return KM_OK;
    if (r->value_len != 4)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: global: PSBT_GLOBAL_VERSION: value is %zu bytes (want 4)",
                            r->value_len);
    v = ser_load_le32(r->value);
    if (v != 0 && v != 2)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "psbt: version %u is not supported (0 and 2 are)", v);
    p->version = v;
    return KM_OK;
}

/* Validates every record of a map; keeps the parsed unsigned tx (global)
 * or non-witness UTXO (input). */
static int check_map(struct psbt *p, enum psbt_scope scope, size_t index, struct km_error *err)
{
    const struct psbt_map *m = psbt_map_of(p, scope, index);
    struct tx *tx = NULL;
    int r;

    for (size_t k = 0; k < m->n; k++) {
        if ((r = psbt_check_record(p->version, scope, index, &m->r[k], &tx, err)) != KM_OK)
            return r;
        if (tx == NULL)
            continue;
        if (scope == PSBT_SCOPE_GLOBAL) {
            tx_free(p->tx);
            p->tx = tx;
        } else {
            tx_free(p->in[index].nwu);
            p->in[index].nwu = tx;
        }
        tx = NULL;
    }
    return psbt_check_required(p->version, m, scope, index, err);
}

/* A v2 count (PSBT_GLOBAL_INPUT_COUNT / OUTPUT_COUNT). */
static int read_count(const struct psbt *p, uint64_t type, uint64_t max, size_t *out,
                      struct km_error *err)
{
    const struct psbt_rec *r = psbt_map_get(&p->global, type);
    struct buf b;
    uint64_t v;

    buf_view(&b, r->value, r->value_len);
    if (ser_get_compact(&b, &v) != KM_OK)
        return km_error_set(err, KM_ERR_INTERNAL, 0, "psbt: count unreadable");
    if (v > max)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "psbt: global: %s is %llu (limit %llu)",
                            psbt_field_name(PSBT_SCOPE_GLOBAL, type), (unsigned long long)v,
                            (unsigned long long)max);
    *out = (size_t)v;
    return KM_OK;
}

static int map_counts(const struct psbt *p, size_t *n_in, size_t *n_out, struct km_error *err)
{
    int r;

    if (p->version == 2) {
        if ((r = read_count(p, PSBT_GLOBAL_INPUT_COUNT, PSBT_MAX_INPUTS, n_in, err)) != KM_OK)
            return r;
        return read_count(p, PSBT_GLOBAL_OUTPUT_COUNT, PSBT_MAX_OUTPUTS, n_out, err);
    }
    *n_in = p->tx->n_in;
    *n_out = p->tx->n_out;
    if (*n_in > PSBT_MAX_INPUTS || *n_out > PSBT_MAX_OUTPUTS)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                            "psbt: the transaction has %zu inputs and %zu outputs (limits %u, %u)",
                            *n_in, *n_out, PSBT_MAX_INPUTS, PSBT_MAX_OUTPUTS);
    return KM_OK;
}

/* magic, global map, version, then the input and output maps. */
static int parse_maps(struct psbt *p, struct rd *rd)
{
    uint8_t magic[sizeof(psbt_magic)];
    size_t n_in, n_out;
    int r;

    if (buf_get(&rd->b, magic, sizeof(magic)) != KM_OK)
        return km_error_set(rd->err, KM_ERR_INCOMPLETE, 0, "psbt: %zu bytes (not a PSBT)", rd->len);
    if (memcmp(magic, psbt_magic, sizeof(magic)) != 0)
        return km_error_set(rd->err, KM_ERR_INVALID, 0,
                            "psbt: bad magic (want 70 73 62 74 ff: \"psbt\" 0xff)");
    if ((r = read_map(rd, &p->global, PSBT_SCOPE_GLOBAL, 0)) != KM_OK ||
        (r = read_version(p, rd->err)) != KM_OK ||
        (r = check_map(p, PSBT_SCOPE_GLOBAL, 0, rd->err)) != KM_OK ||
        (r = map_counts(p, &n_in, &n_out, rd->err)) != KM_OK)
        return r;
    for (size_t i = 0; i < n_in; i++) {
        add_input_map(p);
        if ((r = read_map(rd, &p->in[i].m, PSBT_SCOPE_INPUT, i)) != KM_OK ||
            (r = check_map(p, PSBT_SCOPE_INPUT, i, rd->err)) != KM_OK)
            return r;
    }
    for (size_t o = 0; o < n_out; o++) {
        add_output_map(p);
        if ((r = read_map(rd, &p->out[o], PSBT_SCOPE_OUTPUT, o)) != KM_OK ||
            (r = check_map(p, PSBT_SCOPE_OUTPUT, o, rd->err)) != KM_OK)
            return r;
    }
    return KM_OK;
}

int psbt_parse(struct psbt **out, const uint8_t *p, size_t len, struct km_error *err)
{
    struct psbt *ps = NULL;
    struct rd rd;
    int r = KM_ERR_INTERNAL;

    *out = NULL;
    if (len > PSBT_MAX_SIZE)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "psbt: %zu bytes (limit %u)", len,
                            PSBT_MAX_SIZE);
    buf_view(&rd.b, p, len);
    rd.len = len;
    rd.records = 0;
    rd.err = err;
    ps = psbt_alloc(0);
    if ((r = parse_maps(ps, &rd)) != KM_OK)
        goto out;
    if (buf_len(&rd.b) > 0) {
        r = km_error_set(err, KM_ERR_TRAILING_DATA, 0, "psbt: %zu bytes after the last map",
                         buf_len(&rd.b));
        goto out;
    }
    if (ps->version == 2 && (r = psbt_v2_build_tx(ps, err)) != KM_OK)
        goto out;
    for (size_t i = 0; i < ps->n_in; i++)
        if (ps->in[i].nwu != NULL && (r = psbt_check_nwu(ps, i, ps->in[i].nwu, err)) != KM_OK)
            goto out;
    *out = ps;
    ps = NULL;
    r = KM_OK;
out:
    psbt_free(ps);
    return r;
}

/* ---- serialization --------------------------------------------------- */

static int put_map(struct buf *b, const struct psbt_map *m)
{
    int r = KM_OK;
    for (size_t k = 0; k < m->n; k++) {
        r = ser_put_bytes(b, m->r[k].key, m->r[k].key_len);
        r = ser_put_bytes(b, m->r[k].value, m->r[k].value_len);
    }
    /* buf poisons on failure: the separator's result covers the map. */
    r = buf_put_u8(b, 0x00);
    return r;
}

int psbt_serialize(struct buf *b, const struct psbt *p)
{
    int r = buf_put(b, psbt_magic, sizeof(psbt_magic));
    r = put_map(b, &p->global);
    for (size_t i = 0; i < p->n_in; i++)
        r = put_map(b, &p->in[i].m);
    for (size_t o = 0; o < p->n_out; o++)
        r = put_map(b, &p->out[o]);
    return r;
}

/* ---- shape ----------------------------------------------------------- */

uint32_t psbt_version(const struct psbt *p)
{
    return p->version;
}

size_t psbt_input_count(const struct psbt *p)
{
    return p->n_in;
}

size_t psbt_output_count(const struct psbt *p)
{
    return p->n_out;
}

const struct tx *psbt_tx_direct(const struct psbt *p)
{
    return p->tx;
}

size_t psbt_record_count(const struct psbt *p, enum psbt_scope scope, size_t index)
{
    return psbt_map_of(p, scope, index)->n;
}

void psbt_record_get(const struct psbt *p, enum psbt_scope scope, size_t index, size_t k,
                     struct psbt_record *out)
{
    const struct psbt_map *m = psbt_map_of(p, scope, index);
    KM_ASSERT(k < m->n);
    const struct psbt_rec *r = &m->r[k];
    out->type = r->type;
    out->key = r->key;
    out->key_len = r->key_len;
    out->keydata = r->key + r->type_len;
    out->keydata_len = r->key_len - r->type_len;
    out->value = r->value;
    out->value_len = r->value_len;
}

/* ---- the v2 transaction ---------------------------------------------- */

static const uint8_t *get_value(const struct psbt_map *m, uint64_t type, size_t len)
{
    const struct psbt_rec *r = psbt_map_get(m, type);
    return r != NULL && r->value_len == len ? r->value : NULL;
}

/*
 * BIP-370 "Determining Lock Time": with no input requiring a lock time,
 * PSBT_GLOBAL_FALLBACK_LOCKTIME (default 0). Otherwise the lock type every
 * requiring input supports (height if both), at the maximum required value.
 */
static int v2_locktime(const struct psbt *p, uint32_t *out, struct km_error *err)
{
    int any = 0, time_ok = 1, height_ok = 1;
    uint32_t max_time = 0, max_height = 0;

    for (size_t i = 0; i < p->n_in; i++) {
        const uint8_t *t = get_value(&p->in[i].m, PSBT_IN_REQUIRED_TIME_LOCKTIME, 4);
        const uint8_t *h = get_value(&p->in[i].m, PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, 4);
        if (t == NULL && h == NULL)
            continue;
        any = 1;
        if (t != NULL && ser_load_le32(t) > max_time)
            max_time = ser_load_le32(t);
        if (h != NULL && ser_load_le32(h) > max_height)
            max_height = ser_load_le32(h);
        time_ok &= t != NULL;
        height_ok &= h != NULL;
    }
    if (!any) {
        const uint8_t *f = get_value(&p->global, PSBT_GLOBAL_FALLBACK_LOCKTIME, 4);
        *out = f != NULL ? ser_load_le32(f) : 0;
        return KM_OK;
    }
    if (!height_ok && !time_ok)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: the inputs require both a time and a height lock time");
    *out = height_ok ? max_height : max_time;
    return KM_OK;
}

static int v2_add_tx_input(struct tx *tx, const struct psbt_map *m, size_t i, struct km_error *err)
{
    const uint8_t *txid = get_value(m, PSBT_IN_PREVIOUS_TXID, 32);
    const uint8_t *vout = get_value(m, PSBT_IN_OUTPUT_INDEX, 4);
    const uint8_t *seq = get_value(m, PSBT_IN_SEQUENCE, 4);

    if (txid == NULL || vout == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: input %zu: PSBT_IN_PREVIOUS_TXID and OUTPUT_INDEX are required",
                            i);
    (void)tx_add_input(tx, txid, ser_load_le32(vout),
                       seq != NULL ? ser_load_le32(seq) : TX_SEQUENCE_FINAL);
    return KM_OK;
}

static int v2_add_tx_output(struct tx *tx, const struct psbt_map *m, size_t o, struct km_error *err)
{
    const uint8_t *amount = get_value(m, PSBT_OUT_AMOUNT, 8);
    const struct psbt_rec *script = psbt_map_get(m, PSBT_OUT_SCRIPT);

    if (amount == NULL || script == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: output %zu: PSBT_OUT_AMOUNT and SCRIPT are required", o);
    (void)tx_add_output(tx, ser_load_le64(amount), script->value, script->value_len);
    return KM_OK;
}

int psbt_v2_build_tx(struct psbt *p, struct km_error *err)
{
    const uint8_t *ver = get_value(&p->global, PSBT_GLOBAL_TX_VERSION, 4);
    struct tx *tx = NULL;
    int r = KM_ERR_INTERNAL;

    if (ver == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "psbt: PSBT_GLOBAL_TX_VERSION is required");
    tx = tx_new();
    tx->version = ser_load_le32(ver);
    if ((r = v2_locktime(p, &tx->locktime, err)) != KM_OK)
        goto out;
    for (size_t i = 0; i < p->n_in; i++)
        if ((r = v2_add_tx_input(tx, &p->in[i].m, i, err)) != KM_OK)
            goto out;
    for (size_t o = 0; o < p->n_out; o++)
        if ((r = v2_add_tx_output(tx, &p->out[o], o, err)) != KM_OK)
            goto out;
    tx_free(p->tx);
    p->tx = tx;
    tx = NULL;
    r = KM_OK;
out:
    tx_free(tx);
    return r;
}

int psbt_check_nwu(const struct psbt *p, size_t i, const struct tx *nwu, struct km_error *err)
{
    const struct tx_in *in = &p->tx->in[i];
    uint8_t txid[TX_HASH_LEN];
    char have[2 * TX_HASH_LEN + 1], want[2 * TX_HASH_LEN + 1];
    int r;

    if ((r = tx_txid(txid, nwu)) != KM_OK)
        return km_error_set(err, r, 0, "psbt: input %zu: cannot hash PSBT_IN_NON_WITNESS_UTXO", i);
    if (memcmp(txid, in->prev_txid, TX_HASH_LEN) != 0)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: input %zu: PSBT_IN_NON_WITNESS_UTXO is transaction %s but the "
                            "input spends %s",
                            i, tx_id_hex(have, txid), tx_id_hex(want, in->prev_txid));
    if (in->prev_vout >= nwu->n_out)
        return km_error_set(
            err, KM_ERR_INVALID, 0,
            "psbt: input %zu: spends output %u but PSBT_IN_NON_WITNESS_UTXO has %zu", i,
            in->prev_vout, nwu->n_out);
    return KM_OK;
}

/* ---- setting and removing records ------------------------------------ */

/* A candidate record, validated; *tx gets a parsed transaction value. */
static int prepare_record(struct psbt_rec *nr, struct tx **tx, const struct psbt *p,
                          enum psbt_scope scope, size_t index, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len, struct km_error *err)
{
    uint64_t type;
    size_t type_len;
    int r;

    if (key_len > PSBT_MAX_KEY_LEN || value_len > PSBT_MAX_VALUE_LEN)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                            "psbt: record of %zu + %zu bytes (limits %u, %u)", key_len, value_len,
                            PSBT_MAX_KEY_LEN, PSBT_MAX_VALUE_LEN);
    if (key_len == 0 || psbt_key_type(&type, &type_len, key, key_len) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: key does not start with a minimal CompactSize type");
    if (psbt_type_structural(scope, type))
        return km_error_set(err, KM_ERR_STATE, 0, "psbt: %s is set by the constructor only",
                            psbt_field_name(scope, type));
    rec_fill(nr, key, key_len, type, type_len, value, value_len);
    if ((r = psbt_check_record(p->version, scope, index, nr, tx, err)) != KM_OK)
        rec_release(nr);
    return r;
}

/* After a change to input i (or to the v2 transaction): rebuild, recheck
 * the input's non-witness UTXO. */
static int settle(struct psbt *p, enum psbt_scope scope, size_t index, uint64_t type,
                  struct km_error *err)
{
    int r;

    if (p->version == 2 && psbt_type_feeds_tx(scope, type) &&
        (r = psbt_v2_build_tx(p, err)) != KM_OK)
        return r;
    if (scope == PSBT_SCOPE_INPUT && p->in[index].nwu != NULL)
        return psbt_check_nwu(p, index, p->in[index].nwu, err);
    return KM_OK;
}

int psbt_record_set(struct psbt *p, enum psbt_scope scope, size_t index, const uint8_t *key,
                    size_t key_len, const uint8_t *value, size_t value_len, struct km_error *err)
{
    struct psbt_map *m = map_of_mut(p, scope, index);
    struct psbt_rec nr = {0}, *slot;
    struct tx *tx = NULL, *old_nwu = NULL;
    int r;

    if ((r = prepare_record(&nr, &tx, p, scope, index, key, key_len, value, value_len, err)) !=
        KM_OK)
        return r;
    slot = (struct psbt_rec *)(uintptr_t)psbt_map_find(m, key, key_len);
    if (slot == NULL && m->n == PSBT_MAX_MAP_RECORDS) {
        rec_release(&nr);
        tx_free(tx);
        return km_error_set(err, KM_ERR_LIMIT, 0, "psbt: map already has %u records",
                            PSBT_MAX_MAP_RECORDS);
    }
    /* Swap in the new record, keeping the old one to undo. */
    int appended = slot == NULL;
    struct psbt_rec old = {0};
    if (appended)
        slot = map_append(m);
    else
        old = *slot;
    *slot = nr;
    if (tx != NULL) {
        old_nwu = p->in[index].nwu;
        p->in[index].nwu = tx;
    }
    if ((r = settle(p, scope, index, nr.type, err)) != KM_OK) {
        rec_release(slot);
        if (appended)
            m->n--;
        else
            *slot = old;
        if (tx != NULL) {
            tx_free(p->in[index].nwu);
            p->in[index].nwu = old_nwu;
        }
        /* The previous state was consistent, so this cannot fail. */
        if (settle(p, scope, index, nr.type, NULL) != KM_OK)
            KM_BUG("psbt: cannot restore the previous state");
        return r;
    }
    if (!appended)
        rec_release(&old);
    tx_free(old_nwu);
    return KM_OK;
}

int psbt_record_remove(struct psbt *p, enum psbt_scope scope, size_t index, const uint8_t *key,
                       size_t key_len, struct km_error *err)
{
    struct psbt_map *m = map_of_mut(p, scope, index);
    const struct psbt_rec *found = psbt_map_find(m, key, key_len);
    struct tx *old_nwu = NULL;
    struct psbt_rec old;
    int r;

    if (found == NULL)
        return km_error_set(err, KM_ERR_NOT_FOUND, 0, "psbt: no such record");
    int key_only = found->key_len == found->type_len;
    if (psbt_type_structural(scope, found->type) ||
        (key_only && psbt_type_required(p->version, scope, found->type)))
        return km_error_set(err, KM_ERR_STATE, 0, "psbt: %s cannot be removed",
                            psbt_field_name(scope, found->type));
    size_t k = (size_t)(found - m->r);
    old = m->r[k];
    memmove(&m->r[k], &m->r[k + 1], (m->n - k - 1) * sizeof(*m->r));
    m->n--;
    if (scope == PSBT_SCOPE_INPUT && old.type == PSBT_IN_NON_WITNESS_UTXO && key_only) {
        old_nwu = p->in[index].nwu;
        p->in[index].nwu = NULL;
    }
    /* Dropping one of an input's two lock kinds can leave no lock time
     * that suits every input: then put everything back. */
    if ((r = settle(p, scope, index, old.type, err)) != KM_OK) {
        memmove(&m->r[k + 1], &m->r[k], (m->n - k) * sizeof(*m->r));
        m->r[k] = old;
        m->n++;
        if (old_nwu != NULL)
            p->in[index].nwu = old_nwu;
        if (settle(p, scope, index, old.type, NULL) != KM_OK)
            KM_BUG("psbt: cannot restore the previous state");
        return r;
    }
    rec_release(&old);
    tx_free(old_nwu);
    return KM_OK;
}

/* ---- constructors ---------------------------------------------------- */

int psbt_new_v0(struct psbt **out, const struct tx *tx, struct km_error *err)
{
    struct psbt *p = NULL;
    struct buf b;
    int r;

    *out = NULL;
    if (tx->n_in > PSBT_MAX_INPUTS || tx->n_out > PSBT_MAX_OUTPUTS)
        return km_error_set(err, KM_ERR_LIMIT, 0,
                            "psbt: %zu inputs and %zu outputs (limits %u, %u)", tx->n_in, tx->n_out,
                            PSBT_MAX_INPUTS, PSBT_MAX_OUTPUTS);
    for (size_t i = 0; i < tx->n_in; i++)
        if (tx->in[i].script_sig.len > 0 || tx->in[i].n_witness > 0)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "psbt: input %zu of the unsigned transaction is signed", i);
    buf_init(&b, PSBT_MAX_VALUE_LEN);
    if ((r = tx_serialize(&b, tx, TX_F_NO_WITNESS)) != KM_OK) {
        buf_release(&b);
        return km_error_set(err, r, 0, "psbt: the unsigned transaction: %s", km_strerror(r));
    }
    p = psbt_alloc(0);
    map_put(&p->global, PSBT_GLOBAL_UNSIGNED_TX, buf_peek(&b), buf_len(&b));
    buf_release(&b);
    p->tx = tx_dup(tx);
    for (size_t i = 0; i < tx->n_in; i++)
        add_input_map(p);
    for (size_t o = 0; o < tx->n_out; o++)
        add_output_map(p);
    *out = p;
    return KM_OK;
}

struct psbt *psbt_new_v2(uint32_t tx_version)
{
    struct psbt *p = psbt_alloc(2);
    uint8_t zero = 0;

    map_put_u32(&p->global, PSBT_GLOBAL_TX_VERSION, tx_version);
    map_put(&p->global, PSBT_GLOBAL_INPUT_COUNT, &zero, 1);
    map_put(&p->global, PSBT_GLOBAL_OUTPUT_COUNT, &zero, 1);
    map_put_u32(&p->global, PSBT_GLOBAL_VERSION, 2);
    if (psbt_v2_build_tx(p, NULL) != KM_OK)
        KM_BUG("psbt: empty v2 transaction");
    return p;
}

int psbt_v2_add_input(struct psbt *p, size_t *index, const uint8_t prev_txid[TX_HASH_LEN],
                      uint32_t prev_vout, uint32_t sequence, struct km_error *err)
{
    struct psbt_in *in;

    *index = 0;
    if (p->version != 2)
        return km_error_set(err, KM_ERR_STATE, 0, "psbt: inputs are added to v2 PSBTs only");
    if (p->n_in == PSBT_MAX_INPUTS)
        return km_error_set(err, KM_ERR_LIMIT, 0, "psbt: already %u inputs", PSBT_MAX_INPUTS);
    in = add_input_map(p);
    map_put(&in->m, PSBT_IN_PREVIOUS_TXID, prev_txid, TX_HASH_LEN);
    map_put_u32(&in->m, PSBT_IN_OUTPUT_INDEX, prev_vout);
    if (sequence != TX_SEQUENCE_FINAL)
        map_put_u32(&in->m, PSBT_IN_SEQUENCE, sequence);
    map_replace_compact(&p->global, PSBT_GLOBAL_INPUT_COUNT, p->n_in);
    if (psbt_v2_build_tx(p, NULL) != KM_OK)
        KM_BUG("psbt: v2 transaction after adding an input");
    *index = p->n_in - 1;
    return KM_OK;
}

int psbt_v2_add_output(struct psbt *p, size_t *index, uint64_t amount, const uint8_t *script,
                       size_t script_len, struct km_error *err)
{
    struct psbt_map *m;
    uint8_t a[8];

    *index = 0;
    if (p->version != 2)
        return km_error_set(err, KM_ERR_STATE, 0, "psbt: outputs are added to v2 PSBTs only");
    if (p->n_out == PSBT_MAX_OUTPUTS)
        return km_error_set(err, KM_ERR_LIMIT, 0, "psbt: already %u outputs", PSBT_MAX_OUTPUTS);
    if (amount > (uint64_t)INT64_MAX || script_len > TX_MAX_SCRIPT_LEN)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: output amount above 2^63-1 or script above %u bytes",
                            TX_MAX_SCRIPT_LEN);
    m = add_output_map(p);
    ser_store_le64(a, amount);
    map_put(m, PSBT_OUT_AMOUNT, a, sizeof(a));
    map_put(m, PSBT_OUT_SCRIPT, script, script_len);
    map_replace_compact(&p->global, PSBT_GLOBAL_OUTPUT_COUNT, p->n_out);
    if (psbt_v2_build_tx(p, NULL) != KM_OK)
        KM_BUG("psbt: v2 transaction after adding an output");
    *index = p->n_out - 1;
    return KM_OK;
}
