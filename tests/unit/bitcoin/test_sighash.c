/*
 * test_sighash.c - src/bitcoin/sighash against the official BIP-341 wallet
 * vectors (tests/data/vectors/bip341/wallet-test-vectors.json):
 *  - keyPathSpending: the unsigned transaction round-trips; hashPrevouts,
 *    hashAmounts, hashScriptPubkeys, hashSequences and hashOutputs; for
 *    each of the 7 inputs (hash types 0x00-0x03, 0x81-0x83) the sigMsg and
 *    sigHash, the tweak, and the expected witness signature verifying
 *    against the spent output key with our sighash;
 *  - scriptPubKey: leaf hashes, merkle root, tweak, output key and
 *    scriptPubKey, and every scriptPathControlBlocks entry accepted by
 *    sighash_leaf_from_control (and refused once tampered);
 * plus every hash type on the script path against a message assembled
 * independently here, the BIP-341 length formula, and the refusals.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/sighash.h"
#include "bitcoin/tx.h"
#include "btc_test.h"
#include "crypto/ctx.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "cvec.h"
#include "common/banned.h"

#define VECTORS "bip341/wallet-test-vectors.json"

static const unsigned all_types[] = {0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83};

/* ---- keyPathSpending -------------------------------------------------- */

struct kp_fixture {
    struct tx *tx;
    struct sighash_spent *spent;
    uint8_t **scripts;
    size_t n;
};

static void load_key_path(struct kp_fixture *f, const json_t *given)
{
    size_t len;
    uint8_t *raw = cvec_hex_alloc(json_object_get(given, "rawUnsignedTx"), &len);
    const json_t *utxos = json_object_get(given, "utxosSpent");
    struct km_error e;

    km_error_clear(&e);
    if (tx_parse(&f->tx, raw, len, 0, &e) != KM_OK)
        fail_msg("rawUnsignedTx: %s", e.msg);
    size_t blen;
    uint8_t *back = btc_tx_bytes(f->tx, 0, &blen);
    CHECK_EQ(blen, len);
    CHECK_MEM_EQ(back, raw, len);
    free(back);
    free(raw);

    f->n = json_array_size(utxos);
    CHECK_EQ(f->n, f->tx->n_in);
    f->spent = calloc(f->n, sizeof(*f->spent));
    f->scripts = calloc(f->n, sizeof(*f->scripts));
    for (size_t i = 0; i < f->n; i++) {
        const json_t *u = json_array_get(utxos, i);
        f->scripts[i] = cvec_hex_alloc(json_object_get(u, "scriptPubKey"), &f->spent[i].script_len);
        f->spent[i].script = f->scripts[i];
        f->spent[i].amount = (uint64_t)json_integer_value(json_object_get(u, "amountSats"));
    }
}

static void free_key_path(struct kp_fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->scripts[i]);
    free(f->scripts);
    free(f->spent);
    tx_free(f->tx);
}

static void check_hash(const uint8_t got[32], const json_t *inter, const char *name)
{
    uint8_t want[32];
    cvec_hex(want, 32, json_object_get(inter, name));
    if (memcmp(got, want, 32) != 0)
        fail_msg("%s differs", name);
}

/* The witness signature of the vector verifies with our sighash against
 * the output key in the spent scriptPubKey; the tweak matches too. */
static void check_signature(const struct sighash_spent *s, const json_t *in, const uint8_t sh[32],
                            unsigned ht)
{
    const json_t *given = json_object_get(in, "given"),
                 *inter = json_object_get(in, "intermediary");
    const json_t *wit = json_object_get(json_object_get(in, "expected"), "witness");
    uint8_t internal[32], tweak[32], root[32], out[32];
    const json_t *mr = json_object_get(given, "merkleRoot");
    size_t siglen;
    int parity;

    cvec_hex(internal, 32, json_object_get(inter, "internalPubkey"));
    if (!json_is_null(mr))
        cvec_hex(root, 32, mr);
    CHECK_OK(taproot_tweak(tweak, internal, json_is_null(mr) ? NULL : root));
    check_hash(tweak, inter, "tweak");
    CHECK_OK(taproot_output_key(out, &parity, internal, 32, json_is_null(mr) ? NULL : root));
    CHECK_MEM_EQ(out, s->script + 2, 32);

    uint8_t *sig = cvec_hex_alloc(json_array_get(wit, 0), &siglen);
    CHECK_EQ(siglen, ht == 0 ? 64 : 65);
    if (ht != 0)
        CHECK_EQ(sig[64], ht);
    CHECK_OK(schnorr_verify(sig, 64, sh, 32, out, 32));
    free(sig);
}

static void test_key_path_vectors(void **state)
{
    (void)state;
    json_t *v = cvec_load_json(VECTORS);
    const json_t *kp = json_object_get(v, "keyPathSpending"), *c, *in;
    size_t i, k, inputs = 0;

    json_array_foreach(kp, i, c)
    {
        struct kp_fixture f;
        struct sighash_precomp pc;
        const json_t *inter = json_object_get(c, "intermediary");

        load_key_path(&f, json_object_get(c, "given"));
        CHECK_OK(sighash_precompute(&pc, f.tx, f.spent));
        CHECK(pc.have_spent);
        check_hash(pc.sha_prevouts, inter, "hashPrevouts");
        check_hash(pc.sha_amounts, inter, "hashAmounts");
        check_hash(pc.sha_scriptpubkeys, inter, "hashScriptPubkeys");
        check_hash(pc.sha_sequences, inter, "hashSequences");
        check_hash(pc.sha_outputs, inter, "hashOutputs");

        json_array_foreach(json_object_get(c, "inputSpending"), k, in)
        {
            const json_t *given = json_object_get(in, "given");
            const json_t *im = json_object_get(in, "intermediary");
            struct sighash_args a = {0};
            uint8_t msg[SIGHASH_MSG_MAX], sh[32], want[SIGHASH_MSG_MAX];
            size_t len, wlen;
            struct km_error e;

            a.input = (size_t)json_integer_value(json_object_get(given, "txinIndex"));
            a.hash_type = (unsigned)json_integer_value(json_object_get(given, "hashType"));
            km_error_clear(&e);
            if (sighash_message(msg, &len, &pc, f.tx, f.spent, &a, &e) != KM_OK)
                fail_msg("input %zu: %s", a.input, e.msg);
            uint8_t *w = cvec_hex_alloc(json_object_get(im, "sigMsg"), &wlen);
            CHECK_EQ(len, wlen);
            CHECK_MEM_EQ(msg, w, len);
            memcpy(want, w, wlen);
            free(w);
            CHECK_OK(sighash_taproot(sh, &pc, f.tx, f.spent, &a, &e));
            check_hash(sh, im, "sigHash");
            check_signature(&f.spent[a.input], in, sh, a.hash_type);
            inputs++;
        }
        free_key_path(&f);
    }
    CHECK_EQ(inputs, 7);
    json_decref(v);
    print_message("bip341 keyPathSpending: %zu inputs (sigMsg, sigHash, signature), 5 "
                  "sub-hashes\n",
                  inputs);
}

/* ---- scriptPubKey ----------------------------------------------------- */

struct leaves {
    uint8_t hash[16][32];
    uint8_t *script[16];
    size_t script_len[16];
    size_t n;
};

static void tree_hash(uint8_t out[32], const json_t *node, struct leaves *lv)
{
    if (json_is_array(node)) {
        uint8_t l[32], r[32];
        CHECK_EQ(json_array_size(node), 2);
        tree_hash(l, json_array_get(node, 0), lv);
        tree_hash(r, json_array_get(node, 1), lv);
        taproot_branch_hash(out, l, r);
        return;
    }
    size_t id = (size_t)json_integer_value(json_object_get(node, "id"));
    int ver = (int)json_integer_value(json_object_get(node, "leafVersion"));
    CHECK(id < 16);
    lv->script[id] = cvec_hex_alloc(json_object_get(node, "script"), &lv->script_len[id]);
    taproot_leaf_hash(out, (uint8_t)ver, lv->script[id], lv->script_len[id]);
    memcpy(lv->hash[id], out, 32);
    if (id + 1 > lv->n)
        lv->n = id + 1;
}

static size_t check_control_blocks(const json_t *blocks, const struct leaves *lv,
                                   const uint8_t key[32])
{
    size_t k, n = 0;
    const json_t *cb;

    json_array_foreach(blocks, k, cb)
    {
        struct sighash_leaf leaf;
        struct km_error e;
        size_t len;
        uint8_t *control = cvec_hex_alloc(cb, &len);

        CHECK(k < lv->n);
        km_error_clear(&e);
        if (sighash_leaf_from_control(&leaf, key, control, len, lv->script[k], lv->script_len[k],
                                      &e) != KM_OK)
            fail_msg("control block %zu: %s", k, e.msg);
        CHECK_MEM_EQ(leaf.leaf_hash, lv->hash[k], 32);
        CHECK_EQ(leaf.codesep_pos, SIGHASH_NO_CODESEP);
        /* A flipped parity bit, path byte or script byte breaks it. */
        control[0] ^= 1;
        CHECK_ERR(sighash_leaf_from_control(&leaf, key, control, len, lv->script[k],
                                            lv->script_len[k], &e),
                  KM_ERR_CRYPTO);
        CHECK_CONTAINS(e.msg, "do not commit to the output key");
        control[0] ^= 1;
        control[len - 1] ^= 0x80;
        CHECK(sighash_leaf_from_control(&leaf, key, control, len, lv->script[k], lv->script_len[k],
                                        NULL) != KM_OK);
        CHECK_ERR(sighash_leaf_from_control(&leaf, key, control, len - 1, lv->script[k],
                                            lv->script_len[k], &e),
                  KM_ERR_INVALID);
        CHECK_CONTAINS(e.msg, "want 33 + 32m");
        free(control);
        n++;
    }
    return n;
}

static void test_script_pubkey_vectors(void **state)
{
    (void)state;
    json_t *v = cvec_load_json(VECTORS);
    const json_t *c;
    size_t i, cases = 0, blocks = 0;

    json_array_foreach(json_object_get(v, "scriptPubKey"), i, c)
    {
        const json_t *given = json_object_get(c, "given"),
                     *inter = json_object_get(c, "intermediary");
        const json_t *exp = json_object_get(c, "expected"),
                     *tree = json_object_get(given, "scriptTree");
        uint8_t internal[32], root[32], tweak[32], key[32], spk[34], want[34];
        struct leaves lv;
        int parity;

        memset(&lv, 0, sizeof(lv));
        cvec_hex(internal, 32, json_object_get(given, "internalPubkey"));
        if (!json_is_null(tree)) {
            tree_hash(root, tree, &lv);
            check_hash(root, inter, "merkleRoot");
            for (size_t k = 0; k < lv.n; k++) {
                uint8_t w[32];
                cvec_hex(w, 32, json_array_get(json_object_get(inter, "leafHashes"), k));
                CHECK_MEM_EQ(lv.hash[k], w, 32);
            }
        }
        const uint8_t *mr = json_is_null(tree) ? NULL : root;
        CHECK_OK(taproot_tweak(tweak, internal, mr));
        check_hash(tweak, inter, "tweak");
        CHECK_OK(taproot_output_key(key, &parity, internal, 32, mr));
        check_hash(key, inter, "tweakedPubkey");
        taproot_script_pubkey(spk, key);
        cvec_hex(want, 34, json_object_get(exp, "scriptPubKey"));
        CHECK_MEM_EQ(spk, want, 34);
        const json_t *cbs = json_object_get(exp, "scriptPathControlBlocks");
        if (cbs != NULL)
            blocks += check_control_blocks(cbs, &lv, key);
        for (size_t k = 0; k < 16; k++)
            free(lv.script[k]);
        cases++;
    }
    CHECK_EQ(cases, 7);
    CHECK(blocks >= 10);
    json_decref(v);
    print_message("bip341 scriptPubKey: %zu cases, %zu control blocks\n", cases, blocks);
}

/* ---- every hash type, script path, refusals --------------------------- */

struct fixture {
    struct tx *tx;
    uint8_t spks[3][34];
    struct sighash_spent spent[3];
    struct sighash_precomp pc;
};

/* Three inputs spending P2TR outputs, two outputs. */
static void make_fixture(struct fixture *f)
{
    uint8_t txid[32], key[32], out_spk[22] = {0x00, 0x14};

    f->tx = tx_new();
    f->tx->version = 2;
    f->tx->locktime = 840000;
    for (int i = 0; i < 3; i++) {
        memset(txid, 0x10 + i, sizeof(txid));
        (void)tx_add_input(f->tx, txid, (uint32_t)i, 0xfffffffd - (uint32_t)i);
        memset(key, 0x20 + i, sizeof(key));
        taproot_script_pubkey(f->spks[i], key);
        f->spent[i].amount = 100000u * (uint64_t)(i + 1);
        f->spent[i].script = f->spks[i];
        f->spent[i].script_len = 34;
    }
    memset(out_spk + 2, 0x33, 20);
    (void)tx_add_output(f->tx, 150000, out_spk, sizeof(out_spk));
    (void)tx_add_output(f->tx, 140000, f->spks[0], 34);
    CHECK_OK(sighash_precompute(&f->pc, f->tx, f->spent));
}

static uint8_t *le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

/* SHA256(amount || CompactSize(len) || script), computed here. */
static void sha256_of_output(uint8_t out[32], const struct tx_out *o)
{
    uint8_t buf[64];
    KM_ASSERT(o->script.len < 40);
    uint8_t *p = le64(buf, o->amount);
    *p++ = (uint8_t)o->script.len;
    memcpy(p, o->script.p, o->script.len);
    CHECK_OK(crypto_sha256_digest(out, buf, (size_t)(p - buf) + o->script.len));
}

/* BIP-341 SigMsg || BIP-342 extension, assembled from the spec's list. */
static size_t expected_message(uint8_t *m, const struct fixture *f, size_t input, unsigned ht,
                               const struct sighash_leaf *leaf)
{
    unsigned base = ht & 3;
    int acp = (ht & 0x80) != 0;
    uint8_t *p = m;

    *p++ = 0x00;
    *p++ = (uint8_t)ht;
    p = le32(p, f->tx->version);
    p = le32(p, f->tx->locktime);
    if (!acp) {
        memcpy(p, f->pc.sha_prevouts, 32);
        memcpy(p + 32, f->pc.sha_amounts, 32);
        memcpy(p + 64, f->pc.sha_scriptpubkeys, 32);
        memcpy(p + 96, f->pc.sha_sequences, 32);
        p += 128;
    }
    if (base != 2 && base != 3) {
        memcpy(p, f->pc.sha_outputs, 32);
        p += 32;
    }
    *p++ = leaf != NULL ? 2 : 0;
    if (acp) {
        memcpy(p, f->tx->in[input].prev_txid, 32);
        p = le32(p + 32, f->tx->in[input].prev_vout);
        p = le64(p, f->spent[input].amount);
        *p++ = 34;
        memcpy(p, f->spent[input].script, 34);
        p = le32(p + 34, f->tx->in[input].sequence);
    } else {
        p = le32(p, (uint32_t)input);
    }
    if (base == 3) {
        sha256_of_output(p, &f->tx->out[input]);
        p += 32;
    }
    if (leaf != NULL) {
        memcpy(p, leaf->leaf_hash, 32);
        p[32] = 0x00;
        p = le32(p + 33, leaf->codesep_pos);
    }
    return (size_t)(p - m);
}

static void test_every_hash_type(void **state)
{
    (void)state;
    struct fixture f;
    struct sighash_leaf leaf;
    static const uint8_t script[] = {0x20, 1, 2, 3, 0xac};
    size_t checked = 0;

    make_fixture(&f);
    taproot_leaf_hash(leaf.leaf_hash, TAPROOT_LEAF_TAPSCRIPT, script, sizeof(script));
    for (size_t t = 0; t < KM_ARRAY_LEN(all_types); t++) {
        unsigned ht = all_types[t];
        int acp = (ht & 0x80) != 0, none = (ht & 3) == 2;
        for (size_t input = 0; input < 2; input++) {
            for (int path = 0; path < 3; path++) {
                uint8_t msg[SIGHASH_MSG_MAX], want[SIGHASH_MSG_MAX], h1[32], h2[32];
                size_t len;
                struct sighash_args a = {input, ht, path ? &leaf : NULL, NULL, 0};
                leaf.codesep_pos = path == 2 ? 7 : SIGHASH_NO_CODESEP;

                CHECK_OK(sighash_message(msg, &len, &f.pc, f.tx, f.spent, &a, NULL));
                size_t wlen = expected_message(want, &f, input, ht, a.leaf);
                CHECK_EQ(len, wlen);
                CHECK_MEM_EQ(msg, want, len);
                /* BIP-341: 174 - 49 acp - 32 none (+ 1 epoch, + 37 ext). */
                CHECK_EQ(len, 1 + 174 - 49 * (size_t)acp - 32 * (size_t)none + (path ? 37 : 0));
                CHECK_OK(sighash_taproot(h1, &f.pc, f.tx, f.spent, &a, NULL));
                /* Different paths and hash types give different hashes. */
                a.leaf = path ? NULL : &leaf;
                CHECK_OK(sighash_taproot(h2, &f.pc, f.tx, f.spent, &a, NULL));
                CHECK(memcmp(h1, h2, 32) != 0);
                checked++;
            }
        }
    }
    /* An annex adds its 32-byte hash and sets spend_type bit 0. */
    static const uint8_t annex[] = {0x50, 0xaa, 0xbb};
    struct sighash_args a = {0, SIGHASH_DEFAULT, NULL, annex, sizeof(annex)};
    uint8_t msg[SIGHASH_MSG_MAX];
    size_t len;
    CHECK_OK(sighash_message(msg, &len, &f.pc, f.tx, f.spent, &a, NULL));
    CHECK_EQ(len, 1 + 174 + 32);
    CHECK_EQ(msg[1 + 1 + 8 + 128 + 32], 1);
    a.leaf = &leaf;
    a.hash_type = 0x83;
    CHECK_OK(sighash_message(msg, &len, &f.pc, f.tx, f.spent, &a, NULL));
    CHECK_EQ(len, 1 + 174 - 49 + 32 + 37); /* ANYONECANPAY|SINGLE, annex, script path */
    tx_free(f.tx);
    print_message("hash types: %zu key and script path messages match the spec layout\n", checked);
}

static void check_refused(const struct fixture *f, const struct sighash_spent *spent,
                          const struct sighash_args *a, const char *msg)
{
    uint8_t out[32], m[SIGHASH_MSG_MAX];
    size_t len = 99;
    struct km_error e;

    km_error_clear(&e);
    memset(out, 0xee, sizeof(out));
    CHECK_ERR(sighash_taproot(out, &f->pc, f->tx, spent, a, &e), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, msg);
    for (size_t i = 0; i < 32; i++)
        CHECK_EQ(out[i], 0);
    CHECK_ERR(sighash_message(m, &len, &f->pc, f->tx, spent, a, NULL), KM_ERR_INVALID);
    CHECK_EQ(len, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    static const unsigned bad_types[] = {0x04, 0x05, 0x80, 0x84, 0xff, 0x41, 0x100, 0x101};
    struct fixture f;
    struct sighash_args a = {0, 0, NULL, NULL, 0};

    make_fixture(&f);
    for (size_t k = 0; k < KM_ARRAY_LEN(bad_types); k++) {
        CHECK(!sighash_type_valid(bad_types[k]));
        a.hash_type = bad_types[k];
        check_refused(&f, f.spent, &a, "is not a BIP-341 type");
    }
    for (size_t k = 0; k < KM_ARRAY_LEN(all_types); k++)
        CHECK(sighash_type_valid(all_types[k]));

    /* SIGHASH_SINGLE for input 2 of a 2-output transaction. */
    a.input = 2;
    a.hash_type = SIGHASH_SINGLE;
    check_refused(&f, f.spent, &a, "input 2: SIGHASH_SINGLE without a corresponding output");
    a.hash_type = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY;
    check_refused(&f, f.spent, &a, "SIGHASH_SINGLE without a corresponding output");

    /* Another input's spent output unknown: fine only with ANYONECANPAY. */
    struct sighash_spent partial[3];
    struct sighash_precomp pc_partial;
    memcpy(partial, f.spent, sizeof(partial));
    partial[1].script = NULL;
    CHECK_OK(sighash_precompute(&pc_partial, f.tx, partial));
    CHECK(!pc_partial.have_spent);
    struct fixture g = f;
    g.pc = pc_partial;
    a.input = 0;
    a.hash_type = SIGHASH_ALL;
    check_refused(&g, partial, &a, "every spent output");
    a.hash_type = SIGHASH_ALL | SIGHASH_ANYONECANPAY;
    uint8_t h1[32], h2[32];
    CHECK_OK(sighash_taproot(h1, &g.pc, g.tx, partial, &a, NULL));
    CHECK_OK(sighash_taproot(h2, &f.pc, f.tx, f.spent, &a, NULL));
    CHECK_MEM_EQ(h1, h2, 32); /* ACP does not read the others */
    a.input = 1;
    check_refused(&g, partial, &a, "this input's spent output");
    check_refused(&f, NULL, &a, "are needed");

    /* The signing input must spend P2TR. */
    static const uint8_t p2wpkh[22] = {0x00, 0x14};
    struct sighash_spent other[3];
    memcpy(other, f.spent, sizeof(other));
    other[0].script = p2wpkh;
    other[0].script_len = sizeof(p2wpkh);
    struct fixture h = f;
    CHECK_OK(sighash_precompute(&h.pc, h.tx, other));
    a.input = 0;
    a.hash_type = SIGHASH_DEFAULT;
    check_refused(&h, other, &a, "input 0 does not spend a P2TR output");
    a.input = 1; /* a non-P2TR spent output elsewhere is fine */
    CHECK_OK(sighash_taproot(h1, &h.pc, h.tx, other, &a, NULL));

    /* Annex must start with 0x50. */
    static const uint8_t bad_annex[] = {0x51, 0x00};
    a.annex = bad_annex;
    a.annex_len = sizeof(bad_annex);
    check_refused(&f, f.spent, &a, "an annex must start with 0x50");
    a.annex_len = 0;
    check_refused(&f, f.spent, &a, "an annex must start with 0x50");
    tx_free(f.tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_key_path_vectors),
        TEST(test_script_pubkey_vectors),
        TEST(test_every_hash_type),
        TEST(test_refusals),
    };
    return RUN_TESTS("bitcoin.sighash", tests);
}
