#include "bitcoin/tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/ser.h"
#include "common/hex.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "common/banned.h"

/* Smallest serialized input: prevout 36, empty scriptSig 1, sequence 4. */
#define TX_MIN_INPUT_SIZE 41
/* Smallest serialized output: amount 8, empty scriptPubKey 1. */
#define TX_MIN_OUTPUT_SIZE 9

/* Parse state: a read-only view over the caller's bytes. */
struct rd {
    struct buf b;
    size_t len;
    struct km_error *err;
};

/* ---- memory ---------------------------------------------------------- */

static void bytes_set(struct tx_bytes *b, const uint8_t *p, size_t len)
{
    free(b->p);
    b->p = NULL;
    b->len = len;
    if (len > 0) {
        b->p = xmalloc(len);
        memcpy(b->p, p, len);
    }
}

static void input_release(struct tx_in *in)
{
    free(in->script_sig.p);
    for (size_t k = 0; k < in->n_witness; k++)
        free(in->witness[k].p);
    free(in->witness);
}

struct tx *tx_new(void)
{
    struct tx *tx = xcalloc(1, sizeof(*tx));
    tx->version = 2;
    return tx;
}

void tx_free(struct tx *tx)
{
    if (tx == NULL)
        return;
    for (size_t i = 0; i < tx->n_in; i++)
        input_release(&tx->in[i]);
    for (size_t i = 0; i < tx->n_out; i++)
        free(tx->out[i].script.p);
    free(tx->in);
    free(tx->out);
    free(tx);
}

/* Appends a zeroed input slot (arrays double, so growth is amortized). */
static struct tx_in *grow_in(struct tx *tx)
{
    if (tx->n_in == tx->cap_in) {
        tx->cap_in = tx->cap_in ? st_mult(tx->cap_in, 2) : 4;
        tx->in = xrealloc(tx->in, st_mult(tx->cap_in, sizeof(*tx->in)));
    }
    struct tx_in *in = &tx->in[tx->n_in++];
    memset(in, 0, sizeof(*in));
    return in;
}

static struct tx_out *grow_out(struct tx *tx)
{
    if (tx->n_out == tx->cap_out) {
        tx->cap_out = tx->cap_out ? st_mult(tx->cap_out, 2) : 4;
        tx->out = xrealloc(tx->out, st_mult(tx->cap_out, sizeof(*tx->out)));
    }
    struct tx_out *o = &tx->out[tx->n_out++];
    memset(o, 0, sizeof(*o));
    return o;
}

static struct tx_bytes *push_item(struct tx_in *in)
{
    /* Witness stacks are short; grow by doubling on powers of two. */
    size_t n = in->n_witness;
    if (n == 0 || (n & (n - 1)) == 0)
        in->witness = xrealloc(in->witness, st_mult(n ? n * 2 : 1, sizeof(*in->witness)));
    struct tx_bytes *it = &in->witness[in->n_witness++];
    it->p = NULL;
    it->len = 0;
    return it;
}

struct tx *tx_dup(const struct tx *src)
{
    struct tx *tx = tx_new();
    tx->version = src->version;
    tx->locktime = src->locktime;
    for (size_t i = 0; i < src->n_in; i++) {
        const struct tx_in *s = &src->in[i];
        struct tx_in *d = grow_in(tx);
        memcpy(d->prev_txid, s->prev_txid, TX_HASH_LEN);
        d->prev_vout = s->prev_vout;
        d->sequence = s->sequence;
        bytes_set(&d->script_sig, s->script_sig.p, s->script_sig.len);
        for (size_t k = 0; k < s->n_witness; k++)
            bytes_set(push_item(d), s->witness[k].p, s->witness[k].len);
    }
    for (size_t i = 0; i < src->n_out; i++)
        (void)tx_add_output(tx, src->out[i].amount, src->out[i].script.p, src->out[i].script.len);
    return tx;
}

/* ---- parsing --------------------------------------------------------- */

/* Maps a reader failure to a message naming what was being read. */
static int rd_fail(struct rd *rd, int r, const char *what)
{
    size_t off = ser_offset(&rd->b, rd->len);
    if (r == KM_ERR_INCOMPLETE)
        return km_error_set(rd->err, r, 0, "tx: ends early in %s (offset %zu)", what, off);
    if (r == KM_ERR_INVALID)
        return km_error_set(rd->err, r, 0, "tx: non-minimal CompactSize in %s (offset %zu)", what,
                            off);
    return km_error_set(rd->err, r, 0, "tx: %s: %s (offset %zu)", what, km_strerror(r), off);
}

static int rd_compact(struct rd *rd, uint64_t *v, const char *what)
{
    int r = ser_get_compact(&rd->b, v);
    return r == KM_OK ? KM_OK : rd_fail(rd, r, what);
}

static int rd_le32(struct rd *rd, uint32_t *v, const char *what)
{
    int r = ser_get_le32(&rd->b, v);
    return r == KM_OK ? KM_OK : rd_fail(rd, r, what);
}

/* A CompactSize-prefixed byte string of at most max bytes, copied. */
static int rd_bytes(struct rd *rd, struct tx_bytes *out, size_t max, const char *what)
{
    const uint8_t *p;
    uint64_t n;
    int r;

    if ((r = rd_compact(rd, &n, what)) != KM_OK)
        return r;
    if (n > max)
        return km_error_set(rd->err, KM_ERR_TOO_LARGE, 0,
                            "tx: %s is %llu bytes (limit %zu, offset %zu)", what,
                            (unsigned long long)n, max, ser_offset(&rd->b, rd->len));
    if ((r = ser_get_direct(&rd->b, &p, (size_t)n)) != KM_OK)
        return rd_fail(rd, r, what);
    bytes_set(out, p, (size_t)n);
    return KM_OK;
}

static int rd_count(struct rd *rd, uint64_t *n, uint64_t max, const char *what)
{
    int r = rd_compact(rd, n, what);
    if (r != KM_OK)
        return r;
    if (*n > max)
        return km_error_set(rd->err, KM_ERR_TOO_LARGE, 0, "tx: %s is %llu (limit %llu)", what,
                            (unsigned long long)*n, (unsigned long long)max);
    return KM_OK;
}

static int rd_inputs(struct rd *rd, struct tx *tx, uint64_t n)
{
    char what[64];
    int r;

    for (uint64_t i = 0; i < n; i++) {
        struct tx_in *in = grow_in(tx);
        snprintf(what, sizeof(what), "input %llu outpoint", (unsigned long long)i);
        if ((r = buf_get(&rd->b, in->prev_txid, TX_HASH_LEN)) != KM_OK)
            return rd_fail(rd, r, what);
        if ((r = rd_le32(rd, &in->prev_vout, what)) != KM_OK)
            return r;
        snprintf(what, sizeof(what), "input %llu scriptSig", (unsigned long long)i);
        if ((r = rd_bytes(rd, &in->script_sig, TX_MAX_SCRIPT_LEN, what)) != KM_OK)
            return r;
        snprintf(what, sizeof(what), "input %llu sequence", (unsigned long long)i);
        if ((r = rd_le32(rd, &in->sequence, what)) != KM_OK)
            return r;
    }
    return KM_OK;
}

static int rd_outputs(struct rd *rd, struct tx *tx)
{
    char what[64];
    uint64_t n;
    int r;

    if ((r = rd_count(rd, &n, TX_MAX_OUTPUTS, "output count")) != KM_OK)
        return r;
    if (n > buf_len(&rd->b) / TX_MIN_OUTPUT_SIZE)
        return km_error_set(rd->err, KM_ERR_INCOMPLETE, 0,
                            "tx: %llu outputs claimed but only %zu bytes left",
                            (unsigned long long)n, buf_len(&rd->b));
    for (uint64_t i = 0; i < n; i++) {
        struct tx_out *o = grow_out(tx);
        snprintf(what, sizeof(what), "output %llu amount", (unsigned long long)i);
        if ((r = ser_get_le64(&rd->b, &o->amount)) != KM_OK)
            return rd_fail(rd, r, what);
        snprintf(what, sizeof(what), "output %llu scriptPubKey", (unsigned long long)i);
        if ((r = rd_bytes(rd, &o->script, TX_MAX_SCRIPT_LEN, what)) != KM_OK)
            return r;
    }
    return KM_OK;
}

/* One witness item, kept or (TX_F_SKIP_WITNESS) only checked. */
static int rd_item(struct rd *rd, struct tx_in *in, unsigned flags, const char *what)
{
    const uint8_t *p;
    uint64_t n;
    int r;

    if (!(flags & TX_F_SKIP_WITNESS))
        return rd_bytes(rd, push_item(in), TX_MAX_SIZE, what);
    if ((r = rd_compact(rd, &n, what)) != KM_OK)
        return r;
    if (n > buf_len(&rd->b) || (r = ser_get_direct(&rd->b, &p, (size_t)n)) != KM_OK)
        return rd_fail(rd, KM_ERR_INCOMPLETE, what);
    return KM_OK;
}

static int rd_witnesses(struct rd *rd, struct tx *tx, unsigned flags)
{
    char what[64];
    uint64_t n, stacks = 0;
    int r;

    for (size_t i = 0; i < tx->n_in; i++) {
        snprintf(what, sizeof(what), "input %zu witness item count", i);
        if ((r = rd_count(rd, &n, TX_MAX_WITNESS_ITEMS, what)) != KM_OK)
            return r;
        if (n > buf_len(&rd->b))
            return km_error_set(rd->err, KM_ERR_INCOMPLETE, 0,
                                "tx: input %zu: %llu witness items claimed but only %zu bytes left",
                                i, (unsigned long long)n, buf_len(&rd->b));
        stacks += n > 0;
        for (uint64_t k = 0; k < n; k++) {
            snprintf(what, sizeof(what), "input %zu witness item %llu", i, (unsigned long long)k);
            if ((r = rd_item(rd, &tx->in[i], flags, what)) != KM_OK)
                return r;
        }
    }
    /* BIP-144: the marker is only allowed when some witness is non-empty
     * (Core: "Superfluous witness record"); this keeps round trips exact. */
    if (stacks == 0)
        return km_error_set(rd->err, KM_ERR_INVALID, 0,
                            "tx: segwit marker present but every witness is empty");
    return KM_OK;
}

/*
 * The body after nVersion. With witnesses allowed, a zero input count is
 * the BIP-144 marker: the next byte is the flag (1 = witness data follows;
 * 0 = an empty transaction, as Core reads it; anything else is unknown).
 */
static int rd_body(struct rd *rd, struct tx *tx, unsigned flags)
{
    uint64_t n_in;
    uint8_t seg = 0;
    int r;

    if ((r = rd_count(rd, &n_in, TX_MAX_INPUTS, "input count")) != KM_OK)
        return r;
    if (n_in == 0 && !(flags & TX_F_NO_WITNESS)) {
        if ((r = buf_get_u8(&rd->b, &seg)) != KM_OK)
            return rd_fail(rd, r, "segwit flag");
        if (seg == 0)
            return KM_OK; /* no inputs, no outputs */
        if (seg != 1)
            return km_error_set(rd->err, KM_ERR_INVALID, 0,
                                "tx: unknown segwit flag 0x%02x (offset %zu)", seg,
                                ser_offset(&rd->b, rd->len) - 1);
        if ((r = rd_count(rd, &n_in, TX_MAX_INPUTS, "input count")) != KM_OK)
            return r;
    }
    /* A claimed count the remaining bytes cannot hold ends early anyway;
     * say so before growing any array. */
    if (n_in > buf_len(&rd->b) / TX_MIN_INPUT_SIZE)
        return km_error_set(rd->err, KM_ERR_INCOMPLETE, 0,
                            "tx: %llu inputs claimed but only %zu bytes left",
                            (unsigned long long)n_in, buf_len(&rd->b));
    if ((r = rd_inputs(rd, tx, n_in)) != KM_OK)
        return r;
    if ((r = rd_outputs(rd, tx)) != KM_OK)
        return r;
    if (seg == 1 && (r = rd_witnesses(rd, tx, flags)) != KM_OK)
        return r;
    return KM_OK;
}

int tx_parse(struct tx **out, const uint8_t *p, size_t len, unsigned flags, struct km_error *err)
{
    struct tx *tx = NULL;
    struct rd rd;
    int r = KM_ERR_INTERNAL;

    *out = NULL;
    if (len > TX_MAX_SIZE)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "tx: %zu bytes (limit %u)", len, TX_MAX_SIZE);
    buf_view(&rd.b, p, len);
    rd.len = len;
    rd.err = err;
    tx = tx_new();
    if ((r = rd_le32(&rd, &tx->version, "version")) != KM_OK)
        goto out;
    if ((r = rd_body(&rd, tx, flags)) != KM_OK)
        goto out;
    if ((r = rd_le32(&rd, &tx->locktime, "locktime")) != KM_OK)
        goto out;
    if (buf_len(&rd.b) > 0) {
        r = km_error_set(err, KM_ERR_TRAILING_DATA, 0, "tx: %zu bytes after the transaction",
                         buf_len(&rd.b));
        goto out;
    }
    *out = tx;
    tx = NULL;
    r = KM_OK;
out:
    tx_free(tx);
    return r;
}

/* ---- serialization --------------------------------------------------- */

int tx_has_witness(const struct tx *tx)
{
    for (size_t i = 0; i < tx->n_in; i++)
        if (tx->in[i].n_witness > 0)
            return 1;
    return 0;
}

static int with_witness(const struct tx *tx, unsigned flags)
{
    return !(flags & TX_F_NO_WITNESS) && tx_has_witness(tx);
}

int tx_serialize(struct buf *b, const struct tx *tx, unsigned flags)
{
    int wit = with_witness(tx, flags);
    int r = ser_put_le32(b, tx->version);

    if (wit) {
        r = buf_put_u8(b, 0x00);
        r = buf_put_u8(b, 0x01);
    }
    r = ser_put_compact(b, tx->n_in);
    for (size_t i = 0; i < tx->n_in; i++) {
        const struct tx_in *in = &tx->in[i];
        r = buf_put(b, in->prev_txid, TX_HASH_LEN);
        r = ser_put_le32(b, in->prev_vout);
        r = ser_put_bytes(b, in->script_sig.p, in->script_sig.len);
        r = ser_put_le32(b, in->sequence);
    }
    r = ser_put_compact(b, tx->n_out);
    for (size_t i = 0; i < tx->n_out; i++) {
        r = ser_put_le64(b, tx->out[i].amount);
        r = ser_put_bytes(b, tx->out[i].script.p, tx->out[i].script.len);
    }
    for (size_t i = 0; wit && i < tx->n_in; i++) {
        r = ser_put_compact(b, tx->in[i].n_witness);
        for (size_t k = 0; k < tx->in[i].n_witness; k++)
            r = ser_put_bytes(b, tx->in[i].witness[k].p, tx->in[i].witness[k].len);
    }
    /* A failed append poisons b, so every later one fails with the same
     * code: the last result is the sequence's result. */
    r = ser_put_le32(b, tx->locktime);
    return r;
}

static size_t bytes_size(const struct tx_bytes *b)
{
    return st_add(ser_compact_len(b->len), b->len);
}

size_t tx_serialized_size(const struct tx *tx, unsigned flags)
{
    int wit = with_witness(tx, flags);
    size_t n = st_add(8, ser_compact_len(tx->n_in)); /* version, locktime */

    if (wit)
        n = st_add(n, 2);
    for (size_t i = 0; i < tx->n_in; i++) {
        n = st_add(n, 40 + bytes_size(&tx->in[i].script_sig));
        if (!wit)
            continue;
        n = st_add(n, ser_compact_len(tx->in[i].n_witness));
        for (size_t k = 0; k < tx->in[i].n_witness; k++)
            n = st_add(n, bytes_size(&tx->in[i].witness[k]));
    }
    n = st_add(n, ser_compact_len(tx->n_out));
    for (size_t i = 0; i < tx->n_out; i++)
        n = st_add(n, 8 + bytes_size(&tx->out[i].script));
    return n;
}

/* ---- hashes ---------------------------------------------------------- */

int tx_sha256d(uint8_t out[32], const uint8_t *p, size_t n)
{
    uint8_t h[32];
    int r = crypto_sha256_digest(h, p, n);
    if (r == KM_OK)
        r = crypto_sha256_digest(out, h, sizeof(h));
    if (r != KM_OK)
        memset(out, 0, 32);
    return r;
}

static int hash_serialization(uint8_t out[TX_HASH_LEN], const struct tx *tx, unsigned flags)
{
    struct buf b;
    int r;

    memset(out, 0, TX_HASH_LEN);
    buf_init(&b, 2u * TX_MAX_SIZE);
    if ((r = tx_serialize(&b, tx, flags)) == KM_OK)
        r = tx_sha256d(out, buf_peek(&b), buf_len(&b));
    buf_release(&b);
    return r;
}

int tx_txid(uint8_t out[TX_HASH_LEN], const struct tx *tx)
{
    return hash_serialization(out, tx, TX_F_NO_WITNESS);
}

int tx_wtxid(uint8_t out[TX_HASH_LEN], const struct tx *tx)
{
    return hash_serialization(out, tx, 0);
}

char *tx_id_hex(char out[2 * TX_HASH_LEN + 1], const uint8_t id[TX_HASH_LEN])
{
    uint8_t rev[TX_HASH_LEN];
    for (size_t i = 0; i < TX_HASH_LEN; i++)
        rev[i] = id[TX_HASH_LEN - 1 - i];
    return hex_encode(out, 2 * TX_HASH_LEN + 1, rev, TX_HASH_LEN);
}

/* ---- builders -------------------------------------------------------- */

size_t tx_add_input(struct tx *tx, const uint8_t prev_txid[TX_HASH_LEN], uint32_t prev_vout,
                    uint32_t sequence)
{
    struct tx_in *in = grow_in(tx);
    memcpy(in->prev_txid, prev_txid, TX_HASH_LEN);
    in->prev_vout = prev_vout;
    in->sequence = sequence;
    return tx->n_in - 1;
}

size_t tx_add_output(struct tx *tx, uint64_t amount, const uint8_t *script, size_t script_len)
{
    struct tx_out *o = grow_out(tx);
    o->amount = amount;
    bytes_set(&o->script, script, script_len);
    return tx->n_out - 1;
}

void tx_set_script_sig(struct tx *tx, size_t i, const uint8_t *p, size_t len)
{
    KM_ASSERT(i < tx->n_in);
    bytes_set(&tx->in[i].script_sig, p, len);
}

void tx_push_witness(struct tx *tx, size_t i, const uint8_t *p, size_t len)
{
    KM_ASSERT(i < tx->n_in);
    bytes_set(push_item(&tx->in[i]), p, len);
}
