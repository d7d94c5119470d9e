#include "bitcoin/sighash.h"

#include <string.h>

#include <secp256k1.h>
#include <secp256k1_schnorrsig.h>

#include "bitcoin/ser.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "crypto/taproot.h"
#include "common/banned.h"

#define P2TR_SPK_LEN 34

int sighash_type_valid(unsigned hash_type)
{
    unsigned base = hash_type & ~SIGHASH_ANYONECANPAY;
    if (hash_type > 0xff)
        return 0;
    if (hash_type == SIGHASH_DEFAULT)
        return 1;
    return base >= SIGHASH_ALL && base <= SIGHASH_SINGLE;
}

static int is_p2tr(const struct sighash_spent *s)
{
    return s->script != NULL && s->script_len == P2TR_SPK_LEN && s->script[0] == 0x51 &&
           s->script[1] == 0x20;
}

/* SHA256 of what b holds (b is released). */
static int hash_buf(uint8_t out[32], struct buf *b, int r)
{
    if (r == KM_OK)
        r = crypto_sha256_digest(out, buf_peek(b), buf_len(b));
    buf_release(b);
    if (r != KM_OK)
        memset(out, 0, 32);
    return r;
}

/* CTxOut serialization: amount (8, LE) || CompactSize(len) || script. */
static int put_txout(struct buf *b, uint64_t amount, const uint8_t *script, size_t len)
{
    int r = ser_put_le64(b, amount);
    if (r == KM_OK)
        r = ser_put_bytes(b, script, len);
    return r;
}

static int precompute_inputs(struct sighash_precomp *pc, const struct tx *tx)
{
    struct buf prev, seq;
    int rp = KM_OK, rs = KM_OK, r;

    buf_init(&prev, st_add(st_mult(tx->n_in, 36), 1));
    buf_init(&seq, st_add(st_mult(tx->n_in, 4), 1));
    for (size_t i = 0; i < tx->n_in; i++) {
        rp = buf_put(&prev, tx->in[i].prev_txid, TX_HASH_LEN);
        rp = ser_put_le32(&prev, tx->in[i].prev_vout);
        rs = ser_put_le32(&seq, tx->in[i].sequence);
    }
    r = hash_buf(pc->sha_prevouts, &prev, rp);
    int r2 = hash_buf(pc->sha_sequences, &seq, rs);
    return r != KM_OK ? r : r2;
}

static int precompute_spent(struct sighash_precomp *pc, const struct tx *tx,
                            const struct sighash_spent *spent)
{
    struct buf amt, spk;
    size_t spk_max = 1;
    int ra = KM_OK, rk = KM_OK, r;

    for (size_t i = 0; i < tx->n_in; i++) {
        if (spent[i].script == NULL)
            return KM_OK; /* have_spent stays 0 */
        spk_max = st_add(spk_max, st_add(9, spent[i].script_len));
    }
    buf_init(&amt, st_add(st_mult(tx->n_in, 8), 1));
    buf_init(&spk, spk_max);
    for (size_t i = 0; i < tx->n_in; i++) {
        ra = ser_put_le64(&amt, spent[i].amount);
        rk = ser_put_bytes(&spk, spent[i].script, spent[i].script_len);
    }
    r = hash_buf(pc->sha_amounts, &amt, ra);
    int r2 = hash_buf(pc->sha_scriptpubkeys, &spk, rk);
    if (r == KM_OK && r2 == KM_OK)
        pc->have_spent = 1;
    return r != KM_OK ? r : r2;
}

static int precompute_outputs(struct sighash_precomp *pc, const struct tx *tx)
{
    struct buf b;
    size_t max = 1;
    int r = KM_OK;

    for (size_t i = 0; i < tx->n_out; i++)
        max = st_add(max, st_add(17, tx->out[i].script.len));
    buf_init(&b, max);
    for (size_t i = 0; i < tx->n_out; i++)
        r = put_txout(&b, tx->out[i].amount, tx->out[i].script.p, tx->out[i].script.len);
    return hash_buf(pc->sha_outputs, &b, r);
}

int sighash_precompute(struct sighash_precomp *pc, const struct tx *tx,
                       const struct sighash_spent *spent)
{
    int r;

    memset(pc, 0, sizeof(*pc));
    if ((r = precompute_inputs(pc, tx)) != KM_OK)
        return r;
    if (spent != NULL && (r = precompute_spent(pc, tx, spent)) != KM_OK)
        return r;
    return precompute_outputs(pc, tx);
}

/* A fixed-capacity writer: the message has a known maximum length. */
struct wr {
    uint8_t *p;
    size_t n;
};

static void w_put(struct wr *w, const void *p, size_t n)
{
    KM_ASSERT(n <= SIGHASH_MSG_MAX - w->n);
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void w_u8(struct wr *w, uint8_t v)
{
    w_put(w, &v, 1);
}

static void w_le32(struct wr *w, uint32_t v)
{
    uint8_t p[4];
    ser_store_le32(p, v);
    w_put(w, p, 4);
}

static void w_le64(struct wr *w, uint64_t v)
{
    uint8_t p[8];
    ser_store_le64(p, v);
    w_put(w, p, 8);
}

/* The checks BIP-341 makes before any message exists. */
static int check_args(const struct sighash_precomp *pc, const struct tx *tx,
                      const struct sighash_spent *spent, const struct sighash_args *a,
                      struct km_error *err)
{
    unsigned base = a->hash_type & 3u;
    int acp = (a->hash_type & SIGHASH_ANYONECANPAY) != 0;

    KM_ASSERT(a->input < tx->n_in);
    if (!sighash_type_valid(a->hash_type))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: input %zu: hash type 0x%02x is not a BIP-341 type", a->input,
                            a->hash_type);
    if (base == SIGHASH_SINGLE && a->input >= tx->n_out)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: input %zu: SIGHASH_SINGLE without a corresponding output "
                            "(the transaction has %zu outputs)",
                            a->input, tx->n_out);
    if (spent == NULL || spent[a->input].script == NULL || (!acp && !pc->have_spent))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: input %zu: the amounts and scriptPubKeys of %s are needed",
                            a->input, acp ? "this input's spent output" : "every spent output");
    if (!is_p2tr(&spent[a->input]))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: input %zu does not spend a P2TR output", a->input);
    if (a->annex != NULL && (a->annex_len == 0 || a->annex[0] != 0x50))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: input %zu: an annex must start with 0x50", a->input);
    return KM_OK;
}

/* "Data about this input" and the annex hash. */
static int write_input(struct wr *w, const struct tx *tx, const struct sighash_spent *spent,
                       const struct sighash_args *a)
{
    const struct tx_in *in = &tx->in[a->input];
    const struct sighash_spent *s = &spent[a->input];
    uint8_t ext_flag = a->leaf != NULL ? 1 : 0;
    uint8_t annex_present = a->annex != NULL ? 1 : 0;

    w_u8(w, (uint8_t)(ext_flag * 2 + annex_present));
    if (a->hash_type & SIGHASH_ANYONECANPAY) {
        w_put(w, in->prev_txid, TX_HASH_LEN);
        w_le32(w, in->prev_vout);
        w_le64(w, s->amount);
        w_u8(w, (uint8_t)s->script_len); /* 34: checked P2TR */
        w_put(w, s->script, s->script_len);
        w_le32(w, in->sequence);
    } else {
        w_le32(w, (uint32_t)a->input);
    }
    if (annex_present) {
        struct buf b;
        uint8_t h[32];
        buf_init(&b, st_add(a->annex_len, 10));
        int r = hash_buf(h, &b, ser_put_bytes(&b, a->annex, a->annex_len));
        if (r != KM_OK)
            return r;
        w_put(w, h, 32);
    }
    return KM_OK;
}

static int write_single_output(struct wr *w, const struct tx *tx, size_t input)
{
    const struct tx_out *o = &tx->out[input];
    struct buf b;
    uint8_t h[32];

    buf_init(&b, st_add(o->script.len, 18));
    int r = hash_buf(h, &b, put_txout(&b, o->amount, o->script.p, o->script.len));
    if (r == KM_OK)
        w_put(w, h, 32);
    return r;
}

int sighash_message(uint8_t msg[SIGHASH_MSG_MAX], size_t *msg_len, const struct sighash_precomp *pc,
                    const struct tx *tx, const struct sighash_spent *spent,
                    const struct sighash_args *a, struct km_error *err)
{
    struct wr w = {msg, 0};
    unsigned base = a->hash_type & 3u;
    int r;

    memset(msg, 0, SIGHASH_MSG_MAX);
    *msg_len = 0;
    if ((r = check_args(pc, tx, spent, a, err)) != KM_OK)
        return r;
    w_u8(&w, 0x00); /* sighash epoch */
    w_u8(&w, (uint8_t)a->hash_type);
    w_le32(&w, tx->version);
    w_le32(&w, tx->locktime);
    if (!(a->hash_type & SIGHASH_ANYONECANPAY)) {
        w_put(&w, pc->sha_prevouts, 32);
        w_put(&w, pc->sha_amounts, 32);
        w_put(&w, pc->sha_scriptpubkeys, 32);
        w_put(&w, pc->sha_sequences, 32);
    }
    if (base != SIGHASH_NONE && base != SIGHASH_SINGLE)
        w_put(&w, pc->sha_outputs, 32);
    if ((r = write_input(&w, tx, spent, a)) != KM_OK)
        goto fail;
    if (base == SIGHASH_SINGLE && (r = write_single_output(&w, tx, a->input)) != KM_OK)
        goto fail;
    if (a->leaf != NULL) {
        w_put(&w, a->leaf->leaf_hash, 32);
        w_u8(&w, 0x00); /* key_version */
        w_le32(&w, a->leaf->codesep_pos);
    }
    *msg_len = w.n;
    return KM_OK;
fail:
    memset(msg, 0, SIGHASH_MSG_MAX);
    return km_error_set(err, r, 0, "sighash: input %zu: hashing failed", a->input);
}

int sighash_taproot(uint8_t out[32], const struct sighash_precomp *pc, const struct tx *tx,
                    const struct sighash_spent *spent, const struct sighash_args *a,
                    struct km_error *err)
{
    static const char tag[] = "TapSighash";
    uint8_t msg[SIGHASH_MSG_MAX];
    size_t len;
    int r;

    memset(out, 0, 32);
    if ((r = sighash_message(msg, &len, pc, tx, spent, a, err)) != KM_OK)
        return r;
    if (!secp256k1_tagged_sha256(crypto_ctx(), out, (const unsigned char *)tag, sizeof(tag) - 1,
                                 msg, len)) {
        memset(out, 0, 32);
        return km_error_set(err, KM_ERR_CRYPTO, 0, "sighash: tagged hash failed");
    }
    return KM_OK;
}

int sighash_leaf_from_control(struct sighash_leaf *out, const uint8_t output_key[32],
                              const uint8_t *control, size_t control_len, const uint8_t *script,
                              size_t script_len, struct km_error *err)
{
    uint8_t node[32], q[32];
    size_t m;
    int parity, r;

    memset(out, 0, sizeof(*out));
    out->codesep_pos = SIGHASH_NO_CODESEP;
    if (control_len < 33 || (control_len - 33) % 32 != 0 || (control_len - 33) / 32 > 128)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sighash: control block is %zu bytes (want 33 + 32m, m <= 128)",
                            control_len);
    m = (control_len - 33) / 32;
    taproot_leaf_hash(node, (uint8_t)(control[0] & 0xfe), script, script_len);
    memcpy(out->leaf_hash, node, 32);
    for (size_t k = 0; k < m; k++)
        taproot_branch_hash(node, node, control + 33 + 32 * k);
    if ((r = taproot_output_key(q, &parity, control + 1, 32, node)) != KM_OK) {
        memset(out->leaf_hash, 0, 32);
        return km_error_set(err, r == KM_ERR_RANGE ? KM_ERR_CRYPTO : KM_ERR_INVALID, 0,
                            "sighash: control block internal key is not a valid x-only key");
    }
    if (memcmp(q, output_key, 32) != 0 || parity != (control[0] & 1)) {
        memset(out->leaf_hash, 0, 32);
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "sighash: the control block and script do not commit to the output "
                            "key");
    }
    return KM_OK;
}
