/*
 * psbt_check.c - what each known PSBT field may hold, per BIP-174 (v0
 * fields and the version columns), BIP-370 (v2 fields), BIP-371 (Taproot)
 * and BIP-373 (MuSig2). One table per scope maps a key type to its name,
 * the versions that allow it and a checker of its key data and value.
 * Unknown types pass (they are kept verbatim); proprietary keys must have
 * their identifier/subtype structure.
 */
#include "bitcoin/psbt_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <secp256k1.h>

#include "bitcoin/ser.h"
#include "crypto/ctx.h"
#include "common/banned.h"

#define V0 1u
#define V2 2u

#define XPUB_LEN          78
#define CONTROL_BASE_LEN  33
#define CONTROL_NODE_LEN  32
#define TAPROOT_MAX_DEPTH 128

/* What a checker sees. */
struct chk {
    const struct psbt_rec *r;
    const uint8_t *kd; /* key data after the type */
    size_t kd_len;
    const char *where;
    const char *name;
    struct tx **tx_out;
    struct km_error *err;
};

struct field {
    uint64_t type;
    const char *name;
    unsigned versions;
    int (*check)(const struct chk *c);
};

/* ---- messages -------------------------------------------------------- */

KM_PRINTF(3, 4) static int fail(const struct chk *c, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return km_error_set(c->err, code, 0, "psbt: %s: %s: %s", c->where, c->name, msg);
}

/* ---- shared shapes --------------------------------------------------- */

static int no_keydata(const struct chk *c)
{
    if (c->kd_len != 0)
        return fail(c, KM_ERR_INVALID, "key has %zu bytes of key data (want none)", c->kd_len);
    return KM_OK;
}

static int keydata_len(const struct chk *c, size_t want)
{
    if (c->kd_len != want)
        return fail(c, KM_ERR_INVALID, "key data is %zu bytes (want %zu)", c->kd_len, want);
    return KM_OK;
}

static int value_len(const struct chk *c, size_t want)
{
    if (c->r->value_len != want)
        return fail(c, KM_ERR_INVALID, "value is %zu bytes (want %zu)", c->r->value_len, want);
    return KM_OK;
}

static int valid_pubkey(const uint8_t *p, size_t len)
{
    secp256k1_pubkey pk;
    if (len != 33 && len != 65)
        return 0;
    return secp256k1_ec_pubkey_parse(crypto_ctx(), &pk, p, len);
}

static int valid_compressed(const uint8_t *p)
{
    return (p[0] == 0x02 || p[0] == 0x03) && valid_pubkey(p, 33);
}

/* Key data that is a full public key (33 or 65 bytes, on the curve). */
static int pubkey_keydata(const struct chk *c)
{
    if (c->kd_len != 33 && c->kd_len != 65)
        return fail(c, KM_ERR_INVALID, "public key is %zu bytes (want 33 or 65)", c->kd_len);
    if (!valid_pubkey(c->kd, c->kd_len))
        return fail(c, KM_ERR_INVALID, "invalid public key");
    return KM_OK;
}

/* <4 byte fingerprint> <32-bit LE path element>* */
static int keypath(const struct chk *c, size_t len)
{
    if (len < 4 || len % 4 != 0)
        return fail(c, KM_ERR_INVALID, "key origin is %zu bytes (want 4 + 4 per path element)",
                    len);
    return KM_OK;
}

static int sig64or65(const struct chk *c)
{
    size_t n = c->r->value_len;
    if (n != 64 && n != 65)
        return fail(c, KM_ERR_INVALID, "signature is %zu bytes (want 64 or 65)", n);
    return KM_OK;
}

/* Parses a transaction value; a tx that ends inside its value is
 * malformed, not incomplete (the value's length was stated). */
static int tx_value(const struct chk *c, unsigned flags, struct tx **out)
{
    int r = tx_parse(out, c->r->value, c->r->value_len, flags, c->err);
    if (r == KM_OK)
        return KM_OK;
    if (r != KM_ERR_TOO_LARGE)
        r = KM_ERR_INVALID;
    if (c->err != NULL) {
        c->err->code = r;
        km_error_prefix(c->err, "psbt: %s: %s", c->where, c->name);
    }
    return r;
}

/* ---- global ---------------------------------------------------------- */

static int chk_unsigned_tx(const struct chk *c)
{
    struct tx *tx = NULL;
    int r;

    if ((r = no_keydata(c)) != KM_OK || (r = tx_value(c, TX_F_NO_WITNESS, &tx)) != KM_OK)
        return r;
    for (size_t i = 0; i < tx->n_in; i++) {
        if (tx->in[i].script_sig.len > 0) {
            tx_free(tx);
            return fail(c, KM_ERR_INVALID, "input %zu has a scriptSig (must be empty)", i);
        }
    }
    if (c->tx_out != NULL)
        *c->tx_out = tx;
    else
        tx_free(tx);
    return KM_OK;
}

static int chk_xpub(const struct chk *c)
{
    int r = keydata_len(c, XPUB_LEN);
    return r != KM_OK ? r : keypath(c, c->r->value_len);
}

static int chk_u32(const struct chk *c)
{
    int r = no_keydata(c);
    return r != KM_OK ? r : value_len(c, 4);
}

static int chk_u8(const struct chk *c)
{
    int r = no_keydata(c);
    return r != KM_OK ? r : value_len(c, 1);
}

/* A value that is exactly one minimal CompactSize. */
static int chk_compact(const struct chk *c)
{
    struct buf b;
    uint64_t v;
    int r;

    if ((r = no_keydata(c)) != KM_OK)
        return r;
    buf_view(&b, c->r->value, c->r->value_len);
    if (ser_get_compact(&b, &v) != KM_OK || buf_len(&b) != 0)
        return fail(c, KM_ERR_INVALID, "value is not one minimal CompactSize");
    return KM_OK;
}

/* <CompactSize idlen> <id> <CompactSize subtype> <subkeydata> */
static int chk_proprietary(const struct chk *c)
{
    struct buf b;
    const uint8_t *id;
    uint64_t idlen, subtype;

    buf_view(&b, c->kd, c->kd_len);
    if (ser_get_compact(&b, &idlen) != KM_OK || idlen > buf_len(&b) ||
        ser_get_direct(&b, &id, (size_t)idlen) != KM_OK || ser_get_compact(&b, &subtype) != KM_OK)
        return fail(c, KM_ERR_INVALID, "key data is not <identifier> <subtype> <data>");
    return KM_OK;
}

/* ---- inputs ---------------------------------------------------------- */

static int chk_non_witness_utxo(const struct chk *c)
{
    struct tx *tx = NULL;
    int r;

    /* Kept for its txid and outputs only: its witnesses are checked, not
     * stored (the record keeps the bytes). */
    if ((r = no_keydata(c)) != KM_OK || (r = tx_value(c, TX_F_SKIP_WITNESS, &tx)) != KM_OK)
        return r;
    if (c->tx_out != NULL)
        *c->tx_out = tx;
    else
        tx_free(tx);
    return KM_OK;
}

/* <64-bit LE amount> <CompactSize len> <scriptPubKey>, nothing more. */
static int chk_witness_utxo(const struct chk *c)
{
    struct buf b;
    const uint8_t *spk;
    uint64_t amount, n;
    int r;

    if ((r = no_keydata(c)) != KM_OK)
        return r;
    buf_view(&b, c->r->value, c->r->value_len);
    if (ser_get_le64(&b, &amount) != KM_OK || ser_get_compact(&b, &n) != KM_OK ||
        n != buf_len(&b) || ser_get_direct(&b, &spk, (size_t)n) != KM_OK)
        return fail(c, KM_ERR_INVALID, "value is not <amount> <scriptPubKey>");
    if (n > TX_MAX_SCRIPT_LEN)
        return fail(c, KM_ERR_TOO_LARGE, "scriptPubKey is %llu bytes (limit %u)",
                    (unsigned long long)n, TX_MAX_SCRIPT_LEN);
    return KM_OK;
}

static int chk_partial_sig(const struct chk *c)
{
    return pubkey_keydata(c);
}

static int chk_bip32(const struct chk *c)
{
    int r = pubkey_keydata(c);
    return r != KM_OK ? r : keypath(c, c->r->value_len);
}

static int chk_bytes(const struct chk *c)
{
    return no_keydata(c);
}

/* A witness stack: <CompactSize n> (<CompactSize len> <item>)*n. */
static int chk_final_witness(const struct chk *c)
{
    struct buf b;
    const uint8_t *p;
    uint64_t n, len;
    int r;

    if ((r = no_keydata(c)) != KM_OK)
        return r;
    buf_view(&b, c->r->value, c->r->value_len);
    if (ser_get_compact(&b, &n) != KM_OK || n > buf_len(&b))
        return fail(c, KM_ERR_INVALID, "value is not a witness stack");
    for (uint64_t k = 0; k < n; k++) {
        if (ser_get_compact(&b, &len) != KM_OK || len > buf_len(&b) ||
            ser_get_direct(&b, &p, (size_t)len) != KM_OK)
            return fail(c, KM_ERR_INVALID, "witness item %llu is malformed", (unsigned long long)k);
    }
    if (buf_len(&b) != 0)
        return fail(c, KM_ERR_INVALID, "%zu bytes after the witness stack", buf_len(&b));
    return KM_OK;
}

static int chk_hash20_key(const struct chk *c)
{
    return keydata_len(c, 20);
}

static int chk_hash32_key(const struct chk *c)
{
    return keydata_len(c, 32);
}

static int chk_value32(const struct chk *c)
{
    int r = no_keydata(c);
    return r != KM_OK ? r : value_len(c, 32);
}

static int chk_time_lock(const struct chk *c)
{
    int r = chk_u32(c);
    if (r != KM_OK)
        return r;
    uint32_t v = ser_load_le32(c->r->value);
    if (v < PSBT_LOCKTIME_THRESHOLD)
        return fail(c, KM_ERR_INVALID, "%u is a block height, not a time", v);
    return KM_OK;
}

static int chk_height_lock(const struct chk *c)
{
    int r = chk_u32(c);
    if (r != KM_OK)
        return r;
    uint32_t v = ser_load_le32(c->r->value);
    if (v == 0 || v >= PSBT_LOCKTIME_THRESHOLD)
        return fail(c, KM_ERR_INVALID, "%u is not a block height in 1..499999999", v);
    return KM_OK;
}

static int chk_tap_key_sig(const struct chk *c)
{
    int r = no_keydata(c);
    return r != KM_OK ? r : sig64or65(c);
}

static int chk_tap_script_sig(const struct chk *c)
{
    int r = keydata_len(c, 64); /* xonly || leaf hash */
    return r != KM_OK ? r : sig64or65(c);
}

/* Key: a BIP-341 control block, 33 + 32m bytes with m <= 128. Value:
 * script || leaf version, so at least one byte. */
static int chk_tap_leaf_script(const struct chk *c)
{
    size_t n = c->kd_len;
    if (n < CONTROL_BASE_LEN || (n - CONTROL_BASE_LEN) % CONTROL_NODE_LEN != 0 ||
        (n - CONTROL_BASE_LEN) / CONTROL_NODE_LEN > TAPROOT_MAX_DEPTH)
        return fail(c, KM_ERR_INVALID, "control block is %zu bytes (want 33 + 32m, m <= 128)", n);
    if (c->r->value_len < 1)
        return fail(c, KM_ERR_INVALID, "value is empty (want script || leaf version)");
    return KM_OK;
}

/* <CompactSize n> <32-byte leaf hash>*n <fingerprint> <path>* */
static int tap_bip32_value(const struct chk *c)
{
    struct buf b;
    const uint8_t *p;
    uint64_t n;

    buf_view(&b, c->r->value, c->r->value_len);
    if (ser_get_compact(&b, &n) != KM_OK || n > buf_len(&b) / 32 ||
        ser_get_direct(&b, &p, (size_t)n * 32) != KM_OK)
        return fail(c, KM_ERR_INVALID, "value does not start with <n> <n leaf hashes>");
    return keypath(c, buf_len(&b));
}

static int chk_tap_bip32(const struct chk *c)
{
    int r = keydata_len(c, 32);
    return r != KM_OK ? r : tap_bip32_value(c);
}

static int chk_musig_participants(const struct chk *c)
{
    size_t n = c->r->value_len;

    if (c->kd_len != 33 || !valid_compressed(c->kd))
        return fail(c, KM_ERR_INVALID, "key data is not a compressed aggregate public key");
    if (n % 33 != 0)
        return fail(c, KM_ERR_INVALID, "value is %zu bytes (want 33 per participant)", n);
    for (size_t k = 0; k < n / 33; k++)
        if (!valid_compressed(c->r->value + 33 * k))
            return fail(c, KM_ERR_INVALID, "participant %zu is not a compressed public key", k);
    return KM_OK;
}

/* <participant 33> <aggregate 33> <leaf hash 32 or omitted> */
static int musig_share_keydata(const struct chk *c)
{
    if (c->kd_len != 66 && c->kd_len != 98)
        return fail(c, KM_ERR_INVALID, "key data is %zu bytes (want 66 or 98)", c->kd_len);
    if (!valid_compressed(c->kd))
        return fail(c, KM_ERR_INVALID, "participant is not a compressed public key");
    if (!valid_compressed(c->kd + 33))
        return fail(c, KM_ERR_INVALID, "aggregate is not a compressed public key");
    return KM_OK;
}

static int chk_musig_nonce(const struct chk *c)
{
    int r = musig_share_keydata(c);
    return r != KM_OK ? r : value_len(c, 66);
}

static int chk_musig_psig(const struct chk *c)
{
    int r = musig_share_keydata(c);
    return r != KM_OK ? r : value_len(c, 32);
}

/* ---- outputs --------------------------------------------------------- */

static int chk_amount(const struct chk *c)
{
    int r = no_keydata(c);
    if (r == KM_OK)
        r = value_len(c, 8);
    if (r == KM_OK && ser_load_le64(c->r->value) > (uint64_t)INT64_MAX)
        return fail(c, KM_ERR_INVALID, "amount is negative");
    return r;
}

static int chk_script(const struct chk *c)
{
    int r = no_keydata(c);
    if (r == KM_OK && c->r->value_len > TX_MAX_SCRIPT_LEN)
        return fail(c, KM_ERR_TOO_LARGE, "script is %zu bytes (limit %u)", c->r->value_len,
                    TX_MAX_SCRIPT_LEN);
    return r;
}

/*
 * Bitcoin Core's TaprootBuilder::Insert, occupancy only: leaves arrive in
 * depth-first order; a leaf at depth d merges with a pending sibling at d
 * and propagates up. branch[d] != 0: a subtree waits at depth d.
 */
struct tree {
    uint8_t branch[TAPROOT_MAX_DEPTH + 1];
    size_t n;
    int valid;
};

static void tree_insert(struct tree *t, size_t depth)
{
    if (depth + 1 < t->n) {
        t->valid = 0; /* a deeper branch is unfinished */
        return;
    }
    while (t->valid && t->n > depth && t->branch[depth]) {
        t->n--;
        if (depth == 0) {
            t->valid = 0; /* nothing above the root */
            return;
        }
        depth--;
    }
    if (t->n <= depth) {
        memset(t->branch + t->n, 0, depth + 1 - t->n);
        t->n = depth + 1;
    }
    t->branch[depth] = 1;
}

/* {<depth> <leaf version> <CompactSize len> <script>}+ forming a complete
 * tree (BIP-371 PSBT_OUT_TAP_TREE). */
static int chk_tap_tree(const struct chk *c)
{
    struct tree t = {{0}, 0, 1};
    struct buf b;
    const uint8_t *script;
    uint8_t depth, ver;
    uint64_t len;
    size_t k = 0;
    int r;

    if ((r = no_keydata(c)) != KM_OK)
        return r;
    buf_view(&b, c->r->value, c->r->value_len);
    if (c->r->value_len == 0)
        return fail(c, KM_ERR_INVALID, "the tree has no leaves");
    for (; buf_len(&b) > 0; k++) {
        if (buf_get_u8(&b, &depth) != KM_OK || buf_get_u8(&b, &ver) != KM_OK ||
            ser_get_compact(&b, &len) != KM_OK || len > buf_len(&b) ||
            ser_get_direct(&b, &script, (size_t)len) != KM_OK)
            return fail(c, KM_ERR_INVALID, "leaf %zu is malformed", k);
        if (depth > TAPROOT_MAX_DEPTH)
            return fail(c, KM_ERR_INVALID, "leaf %zu is at depth %u (limit 128)", k, depth);
        if (ver & 1)
            return fail(c, KM_ERR_INVALID, "leaf %zu has odd leaf version 0x%02x", k, ver);
        tree_insert(&t, depth);
        if (!t.valid)
            break;
    }
    if (!t.valid || t.n != 1 || !t.branch[0])
        return fail(c, KM_ERR_INVALID, "the leaf depths do not form a complete tree");
    return KM_OK;
}

/* ---- tables ---------------------------------------------------------- */

static const struct field global_fields[] = {
    {PSBT_GLOBAL_UNSIGNED_TX, "PSBT_GLOBAL_UNSIGNED_TX", V0, chk_unsigned_tx},
    {PSBT_GLOBAL_XPUB, "PSBT_GLOBAL_XPUB", V0 | V2, chk_xpub},
    {PSBT_GLOBAL_TX_VERSION, "PSBT_GLOBAL_TX_VERSION", V2, chk_u32},
    {PSBT_GLOBAL_FALLBACK_LOCKTIME, "PSBT_GLOBAL_FALLBACK_LOCKTIME", V2, chk_u32},
    {PSBT_GLOBAL_INPUT_COUNT, "PSBT_GLOBAL_INPUT_COUNT", V2, chk_compact},
    {PSBT_GLOBAL_OUTPUT_COUNT, "PSBT_GLOBAL_OUTPUT_COUNT", V2, chk_compact},
    {PSBT_GLOBAL_TX_MODIFIABLE, "PSBT_GLOBAL_TX_MODIFIABLE", V2, chk_u8},
    {PSBT_GLOBAL_VERSION, "PSBT_GLOBAL_VERSION", V0 | V2, chk_u32},
    {PSBT_GLOBAL_PROPRIETARY, "PSBT_GLOBAL_PROPRIETARY", V0 | V2, chk_proprietary},
};

static const struct field input_fields[] = {
    {PSBT_IN_NON_WITNESS_UTXO, "PSBT_IN_NON_WITNESS_UTXO", V0 | V2, chk_non_witness_utxo},
    {PSBT_IN_WITNESS_UTXO, "PSBT_IN_WITNESS_UTXO", V0 | V2, chk_witness_utxo},
    {PSBT_IN_PARTIAL_SIG, "PSBT_IN_PARTIAL_SIG", V0 | V2, chk_partial_sig},
    {PSBT_IN_SIGHASH_TYPE, "PSBT_IN_SIGHASH_TYPE", V0 | V2, chk_u32},
    {PSBT_IN_REDEEM_SCRIPT, "PSBT_IN_REDEEM_SCRIPT", V0 | V2, chk_bytes},
    {PSBT_IN_WITNESS_SCRIPT, "PSBT_IN_WITNESS_SCRIPT", V0 | V2, chk_bytes},
    {PSBT_IN_BIP32_DERIVATION, "PSBT_IN_BIP32_DERIVATION", V0 | V2, chk_bip32},
    {PSBT_IN_FINAL_SCRIPTSIG, "PSBT_IN_FINAL_SCRIPTSIG", V0 | V2, chk_bytes},
    {PSBT_IN_FINAL_SCRIPTWITNESS, "PSBT_IN_FINAL_SCRIPTWITNESS", V0 | V2, chk_final_witness},
    {PSBT_IN_RIPEMD160, "PSBT_IN_RIPEMD160", V0 | V2, chk_hash20_key},
    {PSBT_IN_SHA256, "PSBT_IN_SHA256", V0 | V2, chk_hash32_key},
    {PSBT_IN_HASH160, "PSBT_IN_HASH160", V0 | V2, chk_hash20_key},
    {PSBT_IN_HASH256, "PSBT_IN_HASH256", V0 | V2, chk_hash32_key},
    {PSBT_IN_PREVIOUS_TXID, "PSBT_IN_PREVIOUS_TXID", V2, chk_value32},
    {PSBT_IN_OUTPUT_INDEX, "PSBT_IN_OUTPUT_INDEX", V2, chk_u32},
    {PSBT_IN_SEQUENCE, "PSBT_IN_SEQUENCE", V2, chk_u32},
    {PSBT_IN_REQUIRED_TIME_LOCKTIME, "PSBT_IN_REQUIRED_TIME_LOCKTIME", V2, chk_time_lock},
    {PSBT_IN_REQUIRED_HEIGHT_LOCKTIME, "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME", V2, chk_height_lock},
    {PSBT_IN_TAP_KEY_SIG, "PSBT_IN_TAP_KEY_SIG", V0 | V2, chk_tap_key_sig},
    {PSBT_IN_TAP_SCRIPT_SIG, "PSBT_IN_TAP_SCRIPT_SIG", V0 | V2, chk_tap_script_sig},
    {PSBT_IN_TAP_LEAF_SCRIPT, "PSBT_IN_TAP_LEAF_SCRIPT", V0 | V2, chk_tap_leaf_script},
    {PSBT_IN_TAP_BIP32_DERIVATION, "PSBT_IN_TAP_BIP32_DERIVATION", V0 | V2, chk_tap_bip32},
    {PSBT_IN_TAP_INTERNAL_KEY, "PSBT_IN_TAP_INTERNAL_KEY", V0 | V2, chk_value32},
    {PSBT_IN_TAP_MERKLE_ROOT, "PSBT_IN_TAP_MERKLE_ROOT", V0 | V2, chk_value32},
    {PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS, "PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS", V0 | V2,
     chk_musig_participants},
    {PSBT_IN_MUSIG2_PUB_NONCE, "PSBT_IN_MUSIG2_PUB_NONCE", V0 | V2, chk_musig_nonce},
    {PSBT_IN_MUSIG2_PARTIAL_SIG, "PSBT_IN_MUSIG2_PARTIAL_SIG", V0 | V2, chk_musig_psig},
    {PSBT_IN_PROPRIETARY, "PSBT_IN_PROPRIETARY", V0 | V2, chk_proprietary},
};

static const struct field output_fields[] = {
    {PSBT_OUT_REDEEM_SCRIPT, "PSBT_OUT_REDEEM_SCRIPT", V0 | V2, chk_bytes},
    {PSBT_OUT_WITNESS_SCRIPT, "PSBT_OUT_WITNESS_SCRIPT", V0 | V2, chk_bytes},
    {PSBT_OUT_BIP32_DERIVATION, "PSBT_OUT_BIP32_DERIVATION", V0 | V2, chk_bip32},
    {PSBT_OUT_AMOUNT, "PSBT_OUT_AMOUNT", V2, chk_amount},
    {PSBT_OUT_SCRIPT, "PSBT_OUT_SCRIPT", V2, chk_script},
    {PSBT_OUT_TAP_INTERNAL_KEY, "PSBT_OUT_TAP_INTERNAL_KEY", V0 | V2, chk_value32},
    {PSBT_OUT_TAP_TREE, "PSBT_OUT_TAP_TREE", V0 | V2, chk_tap_tree},
    {PSBT_OUT_TAP_BIP32_DERIVATION, "PSBT_OUT_TAP_BIP32_DERIVATION", V0 | V2, chk_tap_bip32},
    {PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS, "PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS", V0 | V2,
     chk_musig_participants},
    {PSBT_OUT_PROPRIETARY, "PSBT_OUT_PROPRIETARY", V0 | V2, chk_proprietary},
};

static const struct field *find_field(enum psbt_scope scope, uint64_t type)
{
    const struct field *t = global_fields;
    size_t n = KM_ARRAY_LEN(global_fields);

    if (scope == PSBT_SCOPE_INPUT) {
        t = input_fields;
        n = KM_ARRAY_LEN(input_fields);
    } else if (scope == PSBT_SCOPE_OUTPUT) {
        t = output_fields;
        n = KM_ARRAY_LEN(output_fields);
    }
    for (size_t i = 0; i < n; i++)
        if (t[i].type == type)
            return &t[i];
    return NULL;
}

const char *psbt_field_name(enum psbt_scope scope, uint64_t type)
{
    const struct field *f = find_field(scope, type);
    return f != NULL ? f->name : NULL;
}

int psbt_check_record(uint32_t version, enum psbt_scope scope, size_t index,
                      const struct psbt_rec *r, struct tx **tx_out, struct km_error *err)
{
    const struct field *f = find_field(scope, r->type);
    char where[32];
    struct chk c = {r, r->key + r->type_len, r->key_len - r->type_len, where, NULL, tx_out, err};
    unsigned vbit = version == 2 ? V2 : V0;

    if (tx_out != NULL)
        *tx_out = NULL;
    if (f == NULL)
        return KM_OK; /* unknown: kept verbatim */
    psbt_where(where, sizeof(where), scope, index);
    c.name = f->name;
    if (!(f->versions & vbit))
        return fail(&c, KM_ERR_INVALID, "not allowed in a version %u PSBT", version);
    return f->check(&c);
}

/* The types each version requires, per scope (BIP-174 "Versions
 * Requiring Inclusion", BIP-370). */
int psbt_type_required(uint32_t version, enum psbt_scope scope, uint64_t type)
{
    if (version == 0)
        return scope == PSBT_SCOPE_GLOBAL && type == PSBT_GLOBAL_UNSIGNED_TX;
    switch (scope) {
    case PSBT_SCOPE_GLOBAL:
        return type == PSBT_GLOBAL_TX_VERSION || type == PSBT_GLOBAL_INPUT_COUNT ||
               type == PSBT_GLOBAL_OUTPUT_COUNT || type == PSBT_GLOBAL_VERSION;
    case PSBT_SCOPE_INPUT:
        return type == PSBT_IN_PREVIOUS_TXID || type == PSBT_IN_OUTPUT_INDEX;
    case PSBT_SCOPE_OUTPUT:
        return type == PSBT_OUT_AMOUNT || type == PSBT_OUT_SCRIPT;
    }
    return 0;
}

int psbt_check_required(uint32_t version, const struct psbt_map *m, enum psbt_scope scope,
                        size_t index, struct km_error *err)
{
    static const uint64_t candidates[] = {0x00, 0x02, 0x03, 0x04, 0x05, 0x0e, 0x0f, 0xfb};
    char where[32];

    psbt_where(where, sizeof(where), scope, index);
    for (size_t k = 0; k < KM_ARRAY_LEN(candidates); k++) {
        uint64_t t = candidates[k];
        if (!psbt_type_required(version, scope, t) || psbt_map_get(m, t) != NULL)
            continue;
        return km_error_set(err, KM_ERR_INVALID, 0, "psbt: %s: %s is required in a version %u PSBT",
                            where, psbt_field_name(scope, t), version);
    }
    return KM_OK;
}

int psbt_type_structural(enum psbt_scope scope, uint64_t type)
{
    return scope == PSBT_SCOPE_GLOBAL &&
           (type == PSBT_GLOBAL_UNSIGNED_TX || type == PSBT_GLOBAL_VERSION ||
            type == PSBT_GLOBAL_INPUT_COUNT || type == PSBT_GLOBAL_OUTPUT_COUNT);
}

int psbt_type_feeds_tx(enum psbt_scope scope, uint64_t type)
{
    switch (scope) {
    case PSBT_SCOPE_GLOBAL:
        return type == PSBT_GLOBAL_TX_VERSION || type == PSBT_GLOBAL_FALLBACK_LOCKTIME;
    case PSBT_SCOPE_INPUT:
        return type == PSBT_IN_PREVIOUS_TXID || type == PSBT_IN_OUTPUT_INDEX ||
               type == PSBT_IN_SEQUENCE || type == PSBT_IN_REQUIRED_TIME_LOCKTIME ||
               type == PSBT_IN_REQUIRED_HEIGHT_LOCKTIME;
    case PSBT_SCOPE_OUTPUT:
        return type == PSBT_OUT_AMOUNT || type == PSBT_OUT_SCRIPT;
    }
    return 0;
}
