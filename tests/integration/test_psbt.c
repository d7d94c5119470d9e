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
 *  - refusals with exit 1 and a message: no input of the group's, a script
 *    path spend of the group's key, the group's untweaked key as the
 *    internal key of an output with a script tree, bytes that are not a
 *    PSBT; a missing option is a usage error (exit 2).
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
    const char *line = strchr(stdout_text, '\n');
    CHECK_NOT_NULL(line);
    line++;
    size_t hexlen = strcspn(line, "\n"), len;
    uint8_t *raw = malloc(hexlen / 2 + 1);
    CHECK_NOT_NULL(raw);
    CHECK_OK(hex_decode(raw, hexlen / 2 + 1, &len, line, hexlen));
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

/* The group's untweaked aggregate as the internal key of an output with a
 * script tree: a tweak the BIP-86 session does not apply. */
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
    expect_refusal(e, add_script_path, "input 0: spends the group's key by a Taproot script path");
    expect_refusal(e, add_internal_key, "input 0: its Taproot internal key is the group's key");
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
