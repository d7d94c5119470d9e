/*
 * psbt_fields.c - typed access to the PSBT fields a Taproot MuSig2 signer
 * reads and writes (BIP-174, BIP-371, BIP-373), and the BIP-341 sighash of
 * each input. Records were validated when they entered the PSBT
 * (psbt_check.c), so decoding here cannot fail.
 */
#include "bitcoin/psbt.h"

#include <stdlib.h>
#include <string.h>

#include "bitcoin/psbt_impl.h"
#include "bitcoin/ser.h"
#include "common/xmalloc.h"
#include "common/banned.h"

/* An empty script must still read as "known" (script != NULL). */
static const uint8_t empty_script[1];

static const struct psbt_map *in_map(const struct psbt *p, size_t i)
{
    return psbt_map_of(p, PSBT_SCOPE_INPUT, i);
}

static const struct psbt_map *out_map(const struct psbt *p, size_t o)
{
    return psbt_map_of(p, PSBT_SCOPE_OUTPUT, o);
}

static const uint8_t *keydata(const struct psbt_rec *r)
{
    return r->key + r->type_len;
}

static size_t keydata_len(const struct psbt_rec *r)
{
    return r->key_len - r->type_len;
}

/* ---- getters --------------------------------------------------------- */

int psbt_in_witness_utxo(const struct psbt *p, size_t i, struct sighash_spent *out)
{
    const struct psbt_rec *r = psbt_map_get(in_map(p, i), PSBT_IN_WITNESS_UTXO);
    struct buf b;
    uint64_t n;

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    buf_view(&b, r->value, r->value_len);
    if (ser_get_le64(&b, &out->amount) != KM_OK || ser_get_compact(&b, &n) != KM_OK ||
        ser_get_direct(&b, &out->script, (size_t)n) != KM_OK)
        KM_BUG("psbt: a validated PSBT_IN_WITNESS_UTXO does not decode");
    out->script_len = (size_t)n;
    if (out->script == NULL)
        out->script = empty_script;
    return KM_OK;
}

int psbt_in_non_witness_utxo(const struct psbt *p, size_t i, const struct tx **out)
{
    (void)in_map(p, i);
    *out = p->in[i].nwu;
    return *out != NULL ? KM_OK : KM_ERR_NOT_FOUND;
}

int psbt_in_sighash_type(const struct psbt *p, size_t i, uint32_t *out)
{
    const struct psbt_rec *r = psbt_map_get(in_map(p, i), PSBT_IN_SIGHASH_TYPE);
    *out = r != NULL ? ser_load_le32(r->value) : 0;
    return r != NULL ? KM_OK : KM_ERR_NOT_FOUND;
}

int psbt_in_tap_key_sig(const struct psbt *p, size_t i, const uint8_t **sig, size_t *sig_len)
{
    const struct psbt_rec *r = psbt_map_get(in_map(p, i), PSBT_IN_TAP_KEY_SIG);
    *sig = r != NULL ? r->value : NULL;
    *sig_len = r != NULL ? r->value_len : 0;
    return r != NULL ? KM_OK : KM_ERR_NOT_FOUND;
}

int psbt_in_tap_script_sig(const struct psbt *p, size_t i, size_t k,
                           struct psbt_tap_script_sig *out)
{
    const struct psbt_rec *r = psbt_map_nth(in_map(p, i), PSBT_IN_TAP_SCRIPT_SIG, k);

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    out->xonly = keydata(r);
    out->leaf_hash = keydata(r) + 32;
    out->sig = r->value;
    out->sig_len = r->value_len;
    return KM_OK;
}

int psbt_in_tap_leaf_script(const struct psbt *p, size_t i, size_t k,
                            struct psbt_tap_leaf_script *out)
{
    const struct psbt_rec *r = psbt_map_nth(in_map(p, i), PSBT_IN_TAP_LEAF_SCRIPT, k);

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    out->control = keydata(r);
    out->control_len = keydata_len(r);
    out->script = r->value;
    out->script_len = r->value_len - 1;
    out->leaf_version = r->value[r->value_len - 1];
    return KM_OK;
}

static int decode_tap_bip32(const struct psbt_rec *r, struct psbt_tap_bip32 *out)
{
    struct buf b;
    uint64_t n;

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    out->xonly = keydata(r);
    buf_view(&b, r->value, r->value_len);
    if (ser_get_compact(&b, &n) != KM_OK ||
        ser_get_direct(&b, &out->leaf_hashes, (size_t)n * 32) != KM_OK ||
        ser_get_direct(&b, &out->fingerprint, 4) != KM_OK)
        KM_BUG("psbt: a validated TAP_BIP32_DERIVATION does not decode");
    out->n_leaf_hashes = (size_t)n;
    out->path_len = buf_len(&b) / 4;
    out->path = out->path_len > 0 ? buf_peek(&b) : NULL;
    return KM_OK;
}

int psbt_in_tap_bip32(const struct psbt *p, size_t i, size_t k, struct psbt_tap_bip32 *out)
{
    return decode_tap_bip32(psbt_map_nth(in_map(p, i), PSBT_IN_TAP_BIP32_DERIVATION, k), out);
}

int psbt_out_tap_bip32(const struct psbt *p, size_t o, size_t k, struct psbt_tap_bip32 *out)
{
    return decode_tap_bip32(psbt_map_nth(out_map(p, o), PSBT_OUT_TAP_BIP32_DERIVATION, k), out);
}

static int get32(const struct psbt_rec *r, uint8_t out[32])
{
    memset(out, 0, 32);
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    memcpy(out, r->value, 32);
    return KM_OK;
}

int psbt_in_tap_internal_key(const struct psbt *p, size_t i, uint8_t out[32])
{
    return get32(psbt_map_get(in_map(p, i), PSBT_IN_TAP_INTERNAL_KEY), out);
}

int psbt_in_tap_merkle_root(const struct psbt *p, size_t i, uint8_t out[32])
{
    return get32(psbt_map_get(in_map(p, i), PSBT_IN_TAP_MERKLE_ROOT), out);
}

int psbt_out_tap_internal_key(const struct psbt *p, size_t o, uint8_t out[32])
{
    return get32(psbt_map_get(out_map(p, o), PSBT_OUT_TAP_INTERNAL_KEY), out);
}

static int decode_participants(const struct psbt_rec *r, struct psbt_musig2_participants *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    out->agg = keydata(r);
    out->keys = r->value;
    out->n = r->value_len / 33;
    return KM_OK;
}

int psbt_in_musig2_participants(const struct psbt *p, size_t i, size_t k,
                                struct psbt_musig2_participants *out)
{
    return decode_participants(psbt_map_nth(in_map(p, i), PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS, k),
                               out);
}

int psbt_out_musig2_participants(const struct psbt *p, size_t o, size_t k,
                                 struct psbt_musig2_participants *out)
{
    return decode_participants(psbt_map_nth(out_map(p, o), PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS, k),
                               out);
}

static int decode_share(const struct psbt_rec *r, struct psbt_musig2_share *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return KM_ERR_NOT_FOUND;
    out->participant = keydata(r);
    out->agg = keydata(r) + 33;
    out->leaf_hash = keydata_len(r) == 98 ? keydata(r) + 66 : NULL;
    out->value = r->value;
    out->value_len = r->value_len;
    return KM_OK;
}

int psbt_in_musig2_pub_nonce(const struct psbt *p, size_t i, size_t k,
                             struct psbt_musig2_share *out)
{
    return decode_share(psbt_map_nth(in_map(p, i), PSBT_IN_MUSIG2_PUB_NONCE, k), out);
}

int psbt_in_musig2_partial_sig(const struct psbt *p, size_t i, size_t k,
                               struct psbt_musig2_share *out)
{
    return decode_share(psbt_map_nth(in_map(p, i), PSBT_IN_MUSIG2_PARTIAL_SIG, k), out);
}

/* ---- setters --------------------------------------------------------- */

/* Sets the record CompactSize(type) || kd -> value. */
static int set_field(struct psbt *p, enum psbt_scope scope, size_t index, uint64_t type,
                     const uint8_t *kd, size_t kd_len, const uint8_t *value, size_t value_len,
                     struct km_error *err)
{
    struct buf key;
    int r;

    buf_init(&key, st_add(kd_len, 9));
    if ((r = ser_put_compact(&key, type)) == KM_OK && (r = buf_put(&key, kd, kd_len)) == KM_OK)
        r = psbt_record_set(p, scope, index, buf_peek(&key), buf_len(&key), value, value_len, err);
    buf_release(&key);
    return r;
}

int psbt_in_set_witness_utxo(struct psbt *p, size_t i, uint64_t amount, const uint8_t *script,
                             size_t script_len, struct km_error *err)
{
    struct buf v;
    int r;

    buf_init(&v, st_add(script_len, 17));
    if ((r = ser_put_le64(&v, amount)) == KM_OK &&
        (r = ser_put_bytes(&v, script, script_len)) == KM_OK)
        r = set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_WITNESS_UTXO, NULL, 0, buf_peek(&v),
                      buf_len(&v), err);
    buf_release(&v);
    return r;
}

int psbt_in_set_non_witness_utxo(struct psbt *p, size_t i, const struct tx *prev,
                                 struct km_error *err)
{
    struct buf v;
    int r;

    buf_init(&v, PSBT_MAX_VALUE_LEN);
    if ((r = tx_serialize(&v, prev, 0)) != KM_OK)
        r = km_error_set(err, r, 0, "psbt: input %zu: PSBT_IN_NON_WITNESS_UTXO: %s", i,
                         km_strerror(r));
    else
        r = set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_NON_WITNESS_UTXO, NULL, 0, buf_peek(&v),
                      buf_len(&v), err);
    buf_release(&v);
    return r;
}

int psbt_in_set_sighash_type(struct psbt *p, size_t i, uint32_t hash_type, struct km_error *err)
{
    uint8_t v[4];
    ser_store_le32(v, hash_type);
    return set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_SIGHASH_TYPE, NULL, 0, v, sizeof(v), err);
}

/* BIP-341: a 65-byte signature carries an explicit hash type, never 0x00
 * (that is the 64-byte form). */
static int check_schnorr_sig(size_t i, const uint8_t *sig, size_t len, struct km_error *err)
{
    if (len == 64)
        return KM_OK;
    if (len == 65 && sig[64] != SIGHASH_DEFAULT && sighash_type_valid(sig[64]))
        return KM_OK;
    return km_error_set(err, KM_ERR_INVALID, 0,
                        "psbt: input %zu: a Taproot signature is 64 bytes, or 65 with a "
                        "non-default hash type",
                        i);
}

int psbt_in_set_tap_key_sig(struct psbt *p, size_t i, const uint8_t *sig, size_t sig_len,
                            struct km_error *err)
{
    int r = check_schnorr_sig(i, sig, sig_len, err);
    if (r != KM_OK)
        return r;
    return set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_KEY_SIG, NULL, 0, sig, sig_len, err);
}

int psbt_in_set_tap_script_sig(struct psbt *p, size_t i, const uint8_t xonly[32],
                               const uint8_t leaf_hash[32], const uint8_t *sig, size_t sig_len,
                               struct km_error *err)
{
    uint8_t kd[64];
    int r = check_schnorr_sig(i, sig, sig_len, err);

    if (r != KM_OK)
        return r;
    memcpy(kd, xonly, 32);
    memcpy(kd + 32, leaf_hash, 32);
    return set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_SCRIPT_SIG, kd, sizeof(kd), sig, sig_len,
                     err);
}

int psbt_in_set_tap_leaf_script(struct psbt *p, size_t i, const uint8_t *control,
                                size_t control_len, const uint8_t *script, size_t script_len,
                                uint8_t leaf_version, struct km_error *err)
{
    uint8_t *v = xmalloc(st_add(script_len, 1));
    int r;

    if (script_len > 0)
        memcpy(v, script, script_len);
    v[script_len] = leaf_version;
    r = set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_LEAF_SCRIPT, control, control_len, v,
                  script_len + 1, err);
    free(v);
    return r;
}

int psbt_in_set_tap_internal_key(struct psbt *p, size_t i, const uint8_t xonly[32],
                                 struct km_error *err)
{
    return set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_INTERNAL_KEY, NULL, 0, xonly, 32, err);
}

int psbt_in_set_tap_merkle_root(struct psbt *p, size_t i, const uint8_t root[32],
                                struct km_error *err)
{
    return set_field(p, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_MERKLE_ROOT, NULL, 0, root, 32, err);
}

static int set_participants(struct psbt *p, enum psbt_scope scope, size_t index, uint64_t type,
                            const uint8_t agg[33], const uint8_t *keys, size_t n,
                            struct km_error *err)
{
    if (n == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "psbt: MuSig2 participants: none given");
    return set_field(p, scope, index, type, agg, 33, keys, st_mult(n, 33), err);
}

int psbt_in_set_musig2_participants(struct psbt *p, size_t i, const uint8_t agg[33],
                                    const uint8_t *keys, size_t n, struct km_error *err)
{
    return set_participants(p, PSBT_SCOPE_INPUT, i, PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS, agg, keys,
                            n, err);
}

int psbt_out_set_musig2_participants(struct psbt *p, size_t o, const uint8_t agg[33],
                                     const uint8_t *keys, size_t n, struct km_error *err)
{
    return set_participants(p, PSBT_SCOPE_OUTPUT, o, PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS, agg, keys,
                            n, err);
}

static int set_share(struct psbt *p, size_t i, uint64_t type, const uint8_t participant[33],
                     const uint8_t agg[33], const uint8_t *leaf_hash, const uint8_t *value,
                     size_t value_len, struct km_error *err)
{
    uint8_t kd[98];
    size_t n = 66;

    memcpy(kd, participant, 33);
    memcpy(kd + 33, agg, 33);
    if (leaf_hash != NULL) {
        memcpy(kd + 66, leaf_hash, 32);
        n = 98;
    }
    return set_field(p, PSBT_SCOPE_INPUT, i, type, kd, n, value, value_len, err);
}

int psbt_in_set_musig2_pub_nonce(struct psbt *p, size_t i, const uint8_t participant[33],
                                 const uint8_t agg[33], const uint8_t *leaf_hash,
                                 const uint8_t nonce[66], struct km_error *err)
{
    return set_share(p, i, PSBT_IN_MUSIG2_PUB_NONCE, participant, agg, leaf_hash, nonce, 66, err);
}

int psbt_in_set_musig2_partial_sig(struct psbt *p, size_t i, const uint8_t participant[33],
                                   const uint8_t agg[33], const uint8_t *leaf_hash,
                                   const uint8_t psig[32], struct km_error *err)
{
    return set_share(p, i, PSBT_IN_MUSIG2_PARTIAL_SIG, participant, agg, leaf_hash, psig, 32, err);
}

/* ---- spent outputs and sighashes -------------------------------------- */

/* As psbt_in_spent_output, but KM_ERR_NOT_FOUND leaves err alone. */
static int spent_output(const struct psbt *p, size_t i, struct sighash_spent *out,
                        struct km_error *err)
{
    struct sighash_spent w, n = {0, NULL, 0};
    const struct tx *nwu = p->in[i].nwu;
    int have_w = psbt_in_witness_utxo(p, i, &w) == KM_OK;

    memset(out, 0, sizeof(*out));
    if (nwu != NULL) {
        /* The prevout index was checked against nwu when it was stored. */
        const struct tx_out *o = &nwu->out[p->tx->in[i].prev_vout];
        n.amount = o->amount;
        n.script = o->script.len > 0 ? o->script.p : empty_script;
        n.script_len = o->script.len;
    }
    if (!have_w && nwu == NULL)
        return KM_ERR_NOT_FOUND;
    if (have_w && nwu != NULL &&
        (w.amount != n.amount || w.script_len != n.script_len ||
         memcmp(w.script, n.script, w.script_len) != 0))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: input %zu: PSBT_IN_WITNESS_UTXO disagrees with output %u of "
                            "PSBT_IN_NON_WITNESS_UTXO",
                            i, p->tx->in[i].prev_vout);
    *out = have_w ? w : n;
    return KM_OK;
}

int psbt_in_spent_output(const struct psbt *p, size_t i, struct sighash_spent *out,
                         struct km_error *err)
{
    (void)in_map(p, i);
    int r = spent_output(p, i, out, err);
    if (r == KM_ERR_NOT_FOUND)
        return km_error_set(
            err, r, 0, "psbt: input %zu: no PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO", i);
    return r;
}

/* Every input's spent output; unknown ones get script NULL. */
static int gather(const struct psbt *p, struct sighash_spent *spent, struct km_error *err)
{
    for (size_t i = 0; i < p->n_in; i++) {
        int r = spent_output(p, i, &spent[i], err);
        if (r != KM_OK && r != KM_ERR_NOT_FOUND)
            return r;
    }
    return KM_OK;
}

static int input_hash_type(const struct psbt *p, size_t i, uint32_t *ht, struct km_error *err)
{
    if (psbt_in_sighash_type(p, i, ht) == KM_ERR_NOT_FOUND) {
        *ht = SIGHASH_DEFAULT;
        return KM_OK;
    }
    if (!sighash_type_valid(*ht))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: input %zu: PSBT_IN_SIGHASH_TYPE 0x%08x is not a BIP-341 hash "
                            "type",
                            i, *ht);
    return KM_OK;
}

/* The spent outputs input i's hash type commits to must be known. */
static int check_known(const struct psbt *p, const struct sighash_spent *spent, size_t i,
                       uint32_t ht, struct km_error *err)
{
    if (spent[i].script == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "psbt: input %zu: no PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO",
                            i);
    if (ht & SIGHASH_ANYONECANPAY)
        return KM_OK;
    for (size_t j = 0; j < p->n_in; j++)
        if (spent[j].script == NULL)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "psbt: input %zu: its sighash commits to every spent output, but "
                                "input %zu has no PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO",
                                i, j);
    return KM_OK;
}

static int input_sighash(uint8_t out[32], const struct psbt *p, const struct sighash_precomp *pc,
                         const struct sighash_spent *spent, size_t i, uint32_t ht,
                         const struct sighash_leaf *leaf, struct km_error *err)
{
    struct sighash_args a = {i, ht, leaf, NULL, 0};
    int r = check_known(p, spent, i, ht, err);
    if (r != KM_OK)
        return r;
    r = sighash_taproot(out, pc, p->tx, spent, &a, err);
    if (r != KM_OK && err != NULL)
        km_error_prefix(err, "psbt");
    return r;
}

int psbt_sighash(uint8_t out[32], const struct psbt *p, size_t i, const struct sighash_leaf *leaf,
                 struct km_error *err)
{
    struct sighash_spent *spent = xcalloc(p->n_in ? p->n_in : 1, sizeof(*spent));
    struct sighash_precomp pc;
    uint32_t ht;
    int r;

    memset(out, 0, 32);
    (void)in_map(p, i);
    if ((r = gather(p, spent, err)) == KM_OK && (r = input_hash_type(p, i, &ht, err)) == KM_OK &&
        (r = sighash_precompute(&pc, p->tx, spent)) == KM_OK)
        r = input_sighash(out, p, &pc, spent, i, ht, leaf, err);
    free(spent);
    return r;
}

static int spends_p2tr(const struct sighash_spent *s)
{
    return s->script != NULL && s->script_len == 34 && s->script[0] == 0x51 && s->script[1] == 0x20;
}

int psbt_sighash_all(struct psbt_sighash *out, const struct psbt *p, struct km_error *err)
{
    struct sighash_spent *spent = xcalloc(p->n_in ? p->n_in : 1, sizeof(*spent));
    struct sighash_precomp pc;
    int r;

    memset(out, 0, st_mult(p->n_in, sizeof(*out)));
    if ((r = gather(p, spent, err)) != KM_OK ||
        (r = sighash_precompute(&pc, p->tx, spent)) != KM_OK)
        goto out;
    for (size_t i = 0; i < p->n_in; i++) {
        if (!spends_p2tr(&spent[i]))
            continue;
        if ((r = input_hash_type(p, i, &out[i].hash_type, err)) != KM_OK ||
            (r = input_sighash(out[i].hash, p, &pc, spent, i, out[i].hash_type, NULL, err)) !=
                KM_OK)
            goto out;
        out[i].taproot = 1;
    }
out:
    if (r != KM_OK)
        memset(out, 0, st_mult(p->n_in, sizeof(*out)));
    free(spent);
    return r;
}
