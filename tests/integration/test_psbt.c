/*
 * test_psbt.c - `keymeld psbt sign` end to end on the TCP test stack (3
 * enclave processes and a gateway): a BIP-86 group made by `keymeld keygen`,
 * a version 0 PSBT built here spending two P2TR outputs of the group's
 * output key (one SIGHASH_DEFAULT, one SIGHASH_ALL) and one foreign input
 * (already finalized by someone else), and an output paying the group:
 *
 *  - without --finalize: PSBT_IN_TAP_KEY_SIG on both group inputs verifies
 *    with BIP-340 under the output key for the sighash psbt_sighash gives
 *    here (the SIGHASH_ALL one carries the hash type byte); BIP-373
 *    participant keys (the untweaked aggregate -> the sorted participant
 *    keys) on those inputs and on the group's output; the foreign input's
 *    map is byte for byte the same;
 *  - with --finalize (PSBT on stdin, binary): the final witnesses hold the
 *    signatures, and the transaction printed in hex has them as witnesses
 *    and the unsigned transaction's txid;
 *  - script paths and other tweaks, in one signing session: an output of
 *    the NUMS key with two leaves naming the untweaked aggregate P (<P>
 *    OP_CHECKSIG and <P> OP_CHECKSIGVERIFY <other> OP_CHECKSIG), one with a
 *    leaf <Q> OP_CHECKSIG (Q the session's key), and a key path under P
 *    tweaked with a merkle root the keygen did not use: PSBT_IN_TAP_SCRIPT_SIG
 *    under (P, leaf hash) twice, (Q, leaf hash), PSBT_IN_TAP_KEY_SIG under
 *    the output key; --finalize makes the <key> OP_CHECKSIG witnesses
 *    (signature, script, control block) and the key path one, and leaves the
 *    two-key leaf's input to another finalizer;
 *  - refusals with exit 1 and a message: no input of the group's, a leaf
 *    naming the group's key that the spent output does not commit to, the
 *    group's untweaked key as the internal key of an output that is not
 *    that key under the input's merkle root, bytes that are not a PSBT; a
 *    missing option is a usage error (exit 2).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/cmd/cmd_test_support.h"
#include "bitcoin/psbt.h"
#include "client/keyfile.h"
#include "common/base64.h"
#include "common/hex.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "stack.h"
#include "common/banned.h"

#define NUSERS 3

struct env {
    struct stack stack;
    char session[256];
    struct client_keygen k;
    uint8_t group_spk[TAPROOT_SPK_LEN];
    uint8_t other_spk[TAPROOT_SPK_LEN]; /* a key that is not the group's */
};

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK_NOT_NULL(f);
    CHECK_EQ(fwrite(p, 1, n, f), n);
    CHECK_EQ(fclose(f), 0);
}

/* The group, made by the CLI with a BIP-86 tweak, and its session file read
 * back here for the keys. */
static void make_group(struct env *e)
{
    char count[8], gw[512];
    struct km_error err;
    snprintf(e->session, sizeof(e->session), "%s/group.json", e->stack.dir);
    snprintf(count, sizeof(count), "%d", NUSERS);
    const char *args[] = {"keygen",
                          "--out",
                          e->session,
                          "--participants",
                          count,
                          "--tweak",
                          "bip86",
                          "--gateway",
                          e->stack.base_url,
                          "--trust-root",
                          e->stack.trust_root,
                          "--pcrs",
                          e->stack.pcrs_path,
                          NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    cmd_expect(&r, 0, "completed", NULL);
    run_free(&r);
    if (keyfile_load(e->session, &e->k, gw, sizeof(gw), &err) != KM_OK)
        fail_msg("%s", err.msg);
    CHECK_EQ(e->k.tweak.type, PROTO_TWEAK_UNSPENDABLE_TAPROOT);
    taproot_script_pubkey(e->group_spk, e->k.xonly);
    taproot_script_pubkey(e->other_spk, e->k.users[0].kp.xonly);
}

static void prev_txid(uint8_t out[32], uint8_t tag)
{
    memset(out, tag, 32);
}

/*
 * inputs: 0 the group's (SIGHASH_DEFAULT), 1 foreign and finalized, 2 the
 * group's (SIGHASH_ALL); outputs: 0 the group's (change), 1 foreign.
 */
static struct psbt *make_psbt(const struct env *e)
{
    struct km_error err;
    struct psbt *psbt;
    struct tx *tx = tx_new();
    uint8_t txid[32];
    for (uint8_t i = 0; i < 3; i++) {
        prev_txid(txid, (uint8_t)(0xa0 + i));
        tx_add_input(tx, txid, i, TX_SEQUENCE_FINAL - 2);
    }
    tx_add_output(tx, 50000, e->group_spk, sizeof(e->group_spk));
    tx_add_output(tx, 240000, e->other_spk, sizeof(e->other_spk));
    CHECK_OK(psbt_new_v0(&psbt, tx, &err));
    tx_free(tx);
    CHECK_OK(psbt_in_set_witness_utxo(psbt, 0, 100000, e->group_spk, TAPROOT_SPK_LEN, &err));
    CHECK_OK(psbt_in_set_witness_utxo(psbt, 1, 90000, e->other_spk, TAPROOT_SPK_LEN, &err));
    CHECK_OK(psbt_in_set_witness_utxo(psbt, 2, 110000, e->group_spk, TAPROOT_SPK_LEN, &err));
    CHECK_OK(psbt_in_set_sighash_type(psbt, 2, SIGHASH_ALL, &err));
    uint8_t key = PSBT_IN_FINAL_SCRIPTWITNESS, wit[66] = {1, 64};
    memset(wit + 2, 0x5a, 64);
    CHECK_OK(psbt_record_set(psbt, PSBT_SCOPE_INPUT, 1, &key, 1, wit, sizeof(wit), &err));
    return psbt;
}

static uint8_t *serialize(const struct psbt *psbt, size_t *len)
{
    struct buf b;
    buf_init(&b, PSBT_MAX_SIZE);
    CHECK_OK(psbt_serialize(&b, psbt));
    *len = buf_len(&b);
    uint8_t *p = malloc(*len);
    CHECK_NOT_NULL(p);
    memcpy(p, buf_peek(&b), *len);
    buf_release(&b);
    return p;
}

/* Writes psbt to path, base64 or binary. */
static void save_psbt(const char *path, const struct psbt *psbt, bool binary)
{
    size_t len;
    uint8_t *p = serialize(psbt, &len);
    if (binary) {
        write_file(path, p, len);
    } else {
        char *text = base64_encode(p, len);
        write_file(path, text, strlen(text));
        free(text);
    }
    free(p);
}

/* Parses the base64 text (one line) at the start of s. */
static struct psbt *parse_text(const char *s)
{
    struct km_error err;
    struct psbt *psbt;
    uint8_t *bin;
    size_t n = strcspn(s, "\n"), len;
    CHECK_OK(base64_decode(&bin, &len, s, n, PSBT_MAX_SIZE, false));
    if (psbt_parse(&psbt, bin, len, &err) != KM_OK)
        fail_msg("output PSBT: %s", err.msg);
    free(bin);
    return psbt;
}

/* Every record of input map i of a and b is the same. */
static void expect_same_input(const struct psbt *a, const struct psbt *b, size_t i)
{
    size_t n = psbt_record_count(a, PSBT_SCOPE_INPUT, i);
    CHECK_EQ(psbt_record_count(b, PSBT_SCOPE_INPUT, i), n);
    for (size_t k = 0; k < n; k++) {
        struct psbt_record x, y;
        psbt_record_get(a, PSBT_SCOPE_INPUT, i, k, &x);
        psbt_record_get(b, PSBT_SCOPE_INPUT, i, k, &y);
        CHECK_EQ(x.key_len, y.key_len);
        CHECK_MEM_EQ(x.key, y.key, x.key_len);
        CHECK_EQ(x.value_len, y.value_len);
        CHECK_MEM_EQ(x.value, y.value, x.value_len);
    }
}

static void expect_sig(const struct env *e, const uint8_t *sig, size_t len, uint32_t hash_type,
                       const uint8_t sighash[32])
{
    CHECK_EQ(len, hash_type == SIGHASH_DEFAULT ? 64u : 65u);
    if (len == 65)
        CHECK_EQ(sig[64], hash_type);
    CHECK_OK(schnorr_verify(sig, 64, sighash, 32, e->k.xonly, 32));
}

/* The BIP-373 participants: the untweaked aggregate, the sorted keys. */
static void expect_participants(const struct env *e, const struct psbt_musig2_participants *m)
{
    uint8_t agg[33], xonly[32], keys[NUSERS][33];
    CHECK_EQ(m->n, NUSERS);
    memcpy(keys, m->keys, sizeof(keys));
    for (size_t i = 1; i < m->n; i++)
        CHECK(memcmp(m->keys + 33 * (i - 1), m->keys + 33 * i, 33) < 0);
    CHECK_OK(participant_aggregate_key(agg, xonly, (const uint8_t(*)[33])keys, NUSERS, NULL));
    CHECK_MEM_EQ(m->agg, agg, 33);
    uint8_t output[32];
    CHECK_OK(taproot_output_key(output, NULL, xonly, 32, NULL));
    CHECK_MEM_EQ(output, e->k.xonly, 32);
    for (size_t u = 0; u < NUSERS; u++) {
        bool found = false;
        for (size_t i = 0; i < m->n; i++)
            found |= memcmp(m->keys + 33 * i, e->k.users[u].kp.pubkey, 33) == 0;
        CHECK(found);
    }
}

static void expect_signed(const struct env *e, const struct psbt *in, const struct psbt *out,
                          const uint8_t sighash[3][32])
{
    const uint8_t *sig;
    size_t len;
    struct psbt_musig2_participants m;
    uint8_t ik[32];
    for (size_t i = 0; i < 3; i += 2) {
        CHECK_OK(psbt_in_tap_key_sig(out, i, &sig, &len));
        expect_sig(e, sig, len, i == 0 ? SIGHASH_DEFAULT : SIGHASH_ALL, sighash[i]);
        CHECK_OK(psbt_in_musig2_participants(out, i, 0, &m));
        expect_participants(e, &m);
        CHECK_OK(psbt_in_tap_internal_key(out, i, ik));
        CHECK_MEM_EQ(ik, m.agg + 1, 32);
    }
    expect_same_input(in, out, 1);
    CHECK_OK(psbt_out_musig2_participants(out, 0, 0, &m));
    expect_participants(e, &m);
    CHECK_ERR(psbt_out_musig2_participants(out, 1, 0, &m), KM_ERR_NOT_FOUND);
}

/* The final witness of input i: one element, the signature. */
static void expect_final(const struct env *e, const struct psbt *out, size_t i, uint32_t hash_type,
                         const uint8_t sighash[32])
{
    size_t n = psbt_record_count(out, PSBT_SCOPE_INPUT, i);
    bool found = false;
    for (size_t k = 0; k < n; k++) {
        struct psbt_record rec;
        psbt_record_get(out, PSBT_SCOPE_INPUT, i, k, &rec);
        CHECK(rec.type == PSBT_IN_FINAL_SCRIPTWITNESS || rec.type == PSBT_IN_WITNESS_UTXO);
        if (rec.type != PSBT_IN_FINAL_SCRIPTWITNESS)
            continue;
        found = true;
        CHECK_EQ(rec.value[0], 1);
        CHECK_EQ(rec.value[1], rec.value_len - 2);
        expect_sig(e, rec.value + 2, rec.value_len - 2, hash_type, sighash);
    }
    CHECK(found);
}

/* The transaction hex on the second line of stdout. */
static void expect_tx(const struct env *e, const struct psbt *in, const char *stdout_text,
                      const uint8_t sighash[3][32])
{
    struct km_error err;
    size_t len;
    uint8_t *raw = cmd_hex_line(stdout_text, 1, &len);
    struct tx *tx;
    if (tx_parse(&tx, raw, len, 0, &err) != KM_OK)
        fail_msg("transaction: %s", err.msg);
    free(raw);
    uint8_t a[32], b[32];
    CHECK_OK(tx_txid(a, tx));
    CHECK_OK(tx_txid(b, psbt_tx_direct(in)));
    CHECK_MEM_EQ(a, b, 32);
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ(tx->in[i].n_witness, 1);
    expect_sig(e, tx->in[0].witness[0].p, tx->in[0].witness[0].len, SIGHASH_DEFAULT, sighash[0]);
    expect_sig(e, tx->in[2].witness[0].p, tx->in[2].witness[0].len, SIGHASH_ALL, sighash[2]);
    CHECK_EQ(tx->in[1].witness[0].len, 64);
    CHECK_EQ(tx->in[1].witness[0].p[0], 0x5a);
    tx_free(tx);
}

static void test_sign_and_finalize(struct env *e)
{
    struct km_error err;
    char in_path[256], out_path[256], bin_path[256];
    uint8_t sighash[3][32];
    struct psbt *in = make_psbt(e);
    for (size_t i = 0; i < 3; i += 2)
        CHECK_OK(psbt_sighash(sighash[i], in, i, NULL, &err));
    snprintf(in_path, sizeof(in_path), "%s/in.psbt", e->stack.dir);
    snprintf(out_path, sizeof(out_path), "%s/out.psbt", e->stack.dir);
    snprintf(bin_path, sizeof(bin_path), "%s/in.bin", e->stack.dir);
    save_psbt(in_path, in, false);
    save_psbt(bin_path, in, true);

    const char *sign[] = {"psbt",  "sign",  "--session", e->session, "--psbt",
                          in_path, "--out", out_path,    NULL};
    struct run r = cmd_run(sign, NULL, NULL, false);
    cmd_expect(&r, 0, NULL, "signed inputs 0, 2");
    run_free(&r);
    size_t len;
    char *text = test_read_file(out_path, &len);
    struct psbt *out = parse_text(text);
    free(text);
    expect_signed(e, in, out, (const uint8_t(*)[32])sighash);
    psbt_free(out);

    const char *fin[] = {"psbt",   "sign", "--session",  e->session,
                         "--psbt", "-",    "--finalize", NULL};
    r = cmd_run(fin, NULL, bin_path, false);
    cmd_expect(&r, 0, NULL, NULL);
    out = parse_text(r.out);
    expect_final(e, out, 0, SIGHASH_DEFAULT, sighash[0]);
    expect_final(e, out, 2, SIGHASH_ALL, sighash[2]);
    expect_same_input(in, out, 1);
    expect_tx(e, in, r.out, (const uint8_t(*)[32])sighash);
    run_free(&r);
    psbt_free(out);
    psbt_free(in);
}

/* BIP-341's NUMS point H: an internal key nobody can spend by key path. */
static const uint8_t nums[32] = {0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b,
                                 0x60, 0x35, 0xe9, 0x7a, 0x5e, 0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec,
                                 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0};

/* A script tree of one or two leaves under the NUMS key. */
struct tree {
    size_t n;
    uint8_t script[2][67];
    size_t len[2];
    uint8_t hash[2][32];
    uint8_t output[32];
    uint8_t control[2][65];
    size_t control_len[2];
};

static size_t pk_leaf(uint8_t *script, const uint8_t key[32])
{
    script[0] = 0x20;
    memcpy(script + 1, key, 32);
    script[33] = 0xac; /* OP_CHECKSIG */
    return 34;
}

/* <a> OP_CHECKSIGVERIFY <b> OP_CHECKSIG */
static size_t two_key_leaf(uint8_t *script, const uint8_t a[32], const uint8_t b[32])
{
    pk_leaf(script, a);
    script[33] = 0xad;
    return 34 + pk_leaf(script + 34, b);
}

static void tree_finish(struct tree *t)
{
    uint8_t root[32];
    int parity;
    for (size_t i = 0; i < t->n; i++)
        taproot_leaf_hash(t->hash[i], TAPROOT_LEAF_TAPSCRIPT, t->script[i], t->len[i]);
    if (t->n == 1)
        memcpy(root, t->hash[0], 32);
    else
        taproot_branch_hash(root, t->hash[0], t->hash[1]);
    CHECK_OK(taproot_output_key(t->output, &parity, nums, 32, root));
    for (size_t i = 0; i < t->n; i++) {
        t->control[i][0] = (uint8_t)(TAPROOT_LEAF_TAPSCRIPT | parity);
        memcpy(t->control[i] + 1, nums, 32);
        t->control_len[i] = 33;
        if (t->n == 2) {
            memcpy(t->control[i] + 33, t->hash[1 - i], 32);
            t->control_len[i] = 65;
        }
    }
}

static void add_leaves(struct psbt *psbt, size_t i, const struct tree *t)
{
    struct km_error err;
    for (size_t k = 0; k < t->n; k++)
        CHECK_OK(psbt_in_set_tap_leaf_script(psbt, i, t->control[k], t->control_len[k],
                                             t->script[k], t->len[k], TAPROOT_LEAF_TAPSCRIPT,
                                             &err));
}

/* The untweaked aggregate P of the group (x-only and compressed). */
static void plain_key(const struct env *e, uint8_t xonly[32], uint8_t full[33])
{
    uint8_t keys[NUSERS][33];
    for (size_t u = 0; u < NUSERS; u++)
        memcpy(keys[u], e->k.users[u].kp.pubkey, 33);
    CHECK_OK(participant_aggregate_key(full, xonly, (const uint8_t(*)[33])keys, NUSERS, NULL));
}

/* The PSBT_IN_TAP_SCRIPT_SIG of input i under (key, leaf), verified. */
static void expect_script_sig(const struct psbt *out, size_t i, const uint8_t key[32],
                              const uint8_t leaf[32], const uint8_t sighash[32])
{
    struct psbt_tap_script_sig ss;
    for (size_t k = 0; psbt_in_tap_script_sig(out, i, k, &ss) == KM_OK; k++) {
        if (memcmp(ss.xonly, key, 32) != 0 || memcmp(ss.leaf_hash, leaf, 32) != 0)
            continue;
        CHECK_EQ(ss.sig_len, 64);
        CHECK_OK(schnorr_verify(ss.sig, 64, sighash, 32, key, 32));
        return;
    }
    fail_msg("input %zu: no PSBT_IN_TAP_SCRIPT_SIG for the leaf", i);
}

/* The final witness of input i, parsed. */
static void expect_leaf_witness(const struct psbt *out, size_t i, const uint8_t key[32],
                                const uint8_t sighash[32], const struct tree *t, size_t leaf)
{
    for (size_t k = 0; k < psbt_record_count(out, PSBT_SCOPE_INPUT, i); k++) {
        struct psbt_record rec;
        psbt_record_get(out, PSBT_SCOPE_INPUT, i, k, &rec);
        if (rec.type != PSBT_IN_FINAL_SCRIPTWITNESS)
            continue;
        const uint8_t *w = rec.value;
        CHECK_EQ(w[0], 3);
        CHECK_EQ(w[1], 64);
        CHECK_OK(schnorr_verify(w + 2, 64, sighash, 32, key, 32));
        CHECK_EQ(w[66], t->len[leaf]);
        CHECK_MEM_EQ(w + 67, t->script[leaf], t->len[leaf]);
        CHECK_EQ(w[67 + t->len[leaf]], t->control_len[leaf]);
        CHECK_MEM_EQ(w + 68 + t->len[leaf], t->control[leaf], t->control_len[leaf]);
        CHECK_EQ(rec.value_len, 68 + t->len[leaf] + t->control_len[leaf]);
        return;
    }
    fail_msg("input %zu: no final witness", i);
}

/*
 * inputs: 0 NUMS with leaves <P> CHECKSIG and <P> CHECKSIGVERIFY <other>
 * CHECKSIG; 1 NUMS with the leaf <Q> CHECKSIG; 2 the key path of P tweaked
 * with a merkle root of its own; 3 NUMS with only the two-key leaf.
 */
static void test_script_paths(struct env *e)
{
    struct km_error err;
    uint8_t p_x[32], p_full[33], root[32], kp_out[32], txid[32];
    struct tree both = {.n = 2}, q_leaf = {.n = 1}, two_key = {.n = 1};
    plain_key(e, p_x, p_full);
    both.len[0] = pk_leaf(both.script[0], p_x);
    both.len[1] = two_key_leaf(both.script[1], p_x, e->k.users[0].kp.xonly);
    tree_finish(&both);
    q_leaf.len[0] = pk_leaf(q_leaf.script[0], e->k.xonly);
    tree_finish(&q_leaf);
    two_key.len[0] = two_key_leaf(two_key.script[0], e->k.users[1].kp.xonly, p_x);
    tree_finish(&two_key);
    memset(root, 0x42, sizeof(root));
    CHECK_OK(taproot_output_key(kp_out, NULL, p_x, 32, root));

    struct tx *tx = tx_new();
    for (uint8_t i = 0; i < 4; i++) {
        prev_txid(txid, (uint8_t)(0xc0 + i));
        tx_add_input(tx, txid, i, TX_SEQUENCE_FINAL);
    }
    tx_add_output(tx, 30000, e->other_spk, sizeof(e->other_spk));
    struct psbt *in;
    CHECK_OK(psbt_new_v0(&in, tx, &err));
    tx_free(tx);
    const uint8_t *outs[4] = {both.output, q_leaf.output, kp_out, two_key.output};
    for (size_t i = 0; i < 4; i++) {
        uint8_t spk[TAPROOT_SPK_LEN];
        taproot_script_pubkey(spk, outs[i]);
        CHECK_OK(psbt_in_set_witness_utxo(in, i, 10000 * (i + 1), spk, sizeof(spk), &err));
    }
    add_leaves(in, 0, &both);
    add_leaves(in, 1, &q_leaf);
    CHECK_OK(psbt_in_set_tap_internal_key(in, 2, p_x, &err));
    CHECK_OK(psbt_in_set_tap_merkle_root(in, 2, root, &err));
    add_leaves(in, 3, &two_key);

    uint8_t sh_both[2][32], sh_q[32], sh_kp[32], sh_two[32];
    struct sighash_leaf leaf = {.codesep_pos = SIGHASH_NO_CODESEP};
    for (size_t k = 0; k < 2; k++) {
        memcpy(leaf.leaf_hash, both.hash[k], 32);
        CHECK_OK(psbt_sighash(sh_both[k], in, 0, &leaf, &err));
    }
    memcpy(leaf.leaf_hash, q_leaf.hash[0], 32);
    CHECK_OK(psbt_sighash(sh_q, in, 1, &leaf, &err));
    CHECK_OK(psbt_sighash(sh_kp, in, 2, NULL, &err));
    memcpy(leaf.leaf_hash, two_key.hash[0], 32);
    CHECK_OK(psbt_sighash(sh_two, in, 3, &leaf, &err));

    char path[256];
    snprintf(path, sizeof(path), "%s/script.psbt", e->stack.dir);
    save_psbt(path, in, false);
    const char *sign[] = {"psbt", "sign", "--session", e->session, "--psbt", path, NULL};
    struct run r = cmd_run(sign, NULL, NULL, false);
    cmd_expect(&r, 0, NULL,
               "signed inputs 0 (script path), 0 (script path), 1 (script path), 2, 3 (script "
               "path)");
    struct psbt *out = parse_text(r.out);
    run_free(&r);
    expect_script_sig(out, 0, p_x, both.hash[0], sh_both[0]);
    expect_script_sig(out, 0, p_x, both.hash[1], sh_both[1]);
    expect_script_sig(out, 1, e->k.xonly, q_leaf.hash[0], sh_q);
    expect_script_sig(out, 3, p_x, two_key.hash[0], sh_two);
    const uint8_t *sig;
    size_t len;
    CHECK_OK(psbt_in_tap_key_sig(out, 2, &sig, &len));
    CHECK_EQ(len, 64);
    CHECK_OK(schnorr_verify(sig, 64, sh_kp, 32, kp_out, 32));
    /* BIP-373 describes P (inputs 0, 2, 3), not Q inside a leaf (1). */
    struct psbt_musig2_participants m;
    for (size_t i = 0; i < 4; i++) {
        int got = psbt_in_musig2_participants(out, i, 0, &m);
        CHECK_EQ(got, i == 1 ? KM_ERR_NOT_FOUND : KM_OK);
        if (got == KM_OK)
            CHECK_MEM_EQ(m.agg, p_full, 33);
    }
    psbt_free(out);

    const char *fin[] = {"psbt",   "sign", "--session",  e->session,
                         "--psbt", path,   "--finalize", NULL};
    r = cmd_run(fin, NULL, NULL, false);
    cmd_expect(&r, 0, NULL, "input 3: signed by a leaf other than <key> OP_CHECKSIG");
    CHECK_NOT_NULL(strstr(r.err, "some inputs are not final"));
    out = parse_text(r.out);
    run_free(&r);
    expect_leaf_witness(out, 0, p_x, sh_both[0], &both, 0);
    expect_leaf_witness(out, 1, e->k.xonly, sh_q, &q_leaf, 0);
    expect_script_sig(out, 3, p_x, two_key.hash[0], sh_two);
    psbt_free(out);
    psbt_free(in);
}

/* A PSBT of one input, spending other_spk, with extra records. */
static void expect_refusal(struct env *e, void (*extra)(const struct env *, struct psbt *),
                           const char *message)
{
    struct km_error err;
    struct psbt *psbt;
    char path[256];
    uint8_t txid[32];
    struct tx *tx = tx_new();
    prev_txid(txid, 0xb0);
    tx_add_input(tx, txid, 0, TX_SEQUENCE_FINAL);
    tx_add_output(tx, 1000, e->other_spk, sizeof(e->other_spk));
    CHECK_OK(psbt_new_v0(&psbt, tx, &err));
    tx_free(tx);
    CHECK_OK(psbt_in_set_witness_utxo(psbt, 0, 2000, e->other_spk, TAPROOT_SPK_LEN, &err));
    if (extra != NULL)
        extra(e, psbt);
    snprintf(path, sizeof(path), "%s/refused.psbt", e->stack.dir);
    save_psbt(path, psbt, false);
    psbt_free(psbt);
    const char *args[] = {"psbt", "sign", "--session", e->session, "--psbt", path, NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, message);
    CHECK_EQ(r.out[0], '\0');
    run_free(&r);
}

/* A leaf <Q> OP_CHECKSIG that the spent output (other_spk) does not
 * commit to. */
static void add_script_path(const struct env *e, struct psbt *psbt)
{
    struct km_error err;
    uint8_t control[33], script[34];
    control[0] = TAPROOT_LEAF_TAPSCRIPT;
    memcpy(control + 1, e->k.users[1].kp.xonly, 32);
    script[0] = 0x20;
    memcpy(script + 1, e->k.xonly, 32);
    script[33] = 0xac; /* OP_CHECKSIG */
    CHECK_OK(psbt_in_set_tap_leaf_script(psbt, 0, control, sizeof(control), script, sizeof(script),
                                         TAPROOT_LEAF_TAPSCRIPT, &err));
}

/* The group's untweaked aggregate as the internal key of an output that
 * is not that key tweaked with the input's merkle root. */
static void add_internal_key(const struct env *e, struct psbt *psbt)
{
    struct km_error err;
    uint8_t keys[NUSERS][33], agg[33], internal[32], root[32];
    for (size_t u = 0; u < NUSERS; u++)
        memcpy(keys[u], e->k.users[u].kp.pubkey, 33);
    CHECK_OK(participant_aggregate_key(agg, internal, (const uint8_t(*)[33])keys, NUSERS, NULL));
    memset(root, 0x42, sizeof(root));
    CHECK_OK(psbt_in_set_tap_internal_key(psbt, 0, internal, &err));
    CHECK_OK(psbt_in_set_tap_merkle_root(psbt, 0, root, &err));
}

/* Not a PSBT, and a usage error. */
static void expect_bad_input(struct env *e)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/garbage.psbt", e->stack.dir);
    write_file(path, "cHNidP8!!not base64\n", 20);
    const char *args[] = {"psbt", "sign", "--session", e->session, "--psbt", path, NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, "not a PSBT");
    run_free(&r);
    const char *usage[] = {"psbt", "sign", "--psbt", path, NULL};
    r = cmd_run(usage, NULL, NULL, false);
    cmd_expect(&r, 2, NULL, "--session FILE and --psbt FILE|- are required");
    run_free(&r);
}

static void test_refusals(struct env *e)
{
    expect_refusal(e, NULL, "no input of this PSBT left to sign spends the group's key");
    expect_refusal(e, add_script_path,
                   "input 0: leaf 0: sighash: the control block and script do not commit to the "
                   "output key");
    expect_refusal(e, add_internal_key,
                   "input 0: its PSBT_IN_TAP_INTERNAL_KEY is the group's key, but the output it "
                   "spends is not that key tweaked with its PSBT_IN_TAP_MERKLE_ROOT");
    expect_bad_input(e);
}

static void test_psbt_sign(void **state)
{
    (void)state;
    struct env *e = calloc(1, sizeof(*e));
    CHECK_NOT_NULL(e);
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&e->stack, 3);
    make_group(e);
    test_sign_and_finalize(e);
    test_script_paths(e);
    test_refusals(e);
    client_keygen_clear(&e->k);
    stack_stop(&e->stack);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_psbt_sign),
    };
    return RUN_TESTS("integration.psbt", tests);
}
