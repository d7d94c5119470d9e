/*
 * test_join.c - every party on its own machine, with the `keymeld` CLI as
 * separate processes against a local stack (3 enclaves, a gateway):
 *
 *  - three key files (`keymeld key new`, mode 0600); the coordinator
 *    (`keymeld keygen --key OWN --invite A,B --invite-dir DIR`) writes two
 *    invitations that hold no plaintext secret and waits;
 *  - a party with the wrong key gets "this invitation is not for this key";
 *  - two `keymeld keygen join` processes (with --require-approval) run
 *    while the coordinator waits; all three report the same aggregate key
 *    and their session files hold only their own private key, and the
 *    others' public keys: the three key files' keys;
 *  - the coordinator signs (`keymeld sign --request-out`): the signing
 *    waits until both parties ran `keymeld approve` from their own session
 *    files; the signature verifies under the aggregate key, also by each
 *    party's own `keymeld verify --session`;
 *  - the coordinator signs a PSBT (`keymeld psbt sign --request-out
 *    --finalize`): a party given another PSBT refuses to approve (`keymeld
 *    approve --psbt`: not this PSBT's signing); with the right one each
 *    party sees the inputs, outputs and fee, approves, and the coordinator
 *    gets the transaction with a key path witness that verifies.
 */
#include "test.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../unit/cmd/cmd_test_support.h"
#include "bitcoin/psbt.h"
#include "common/base64.h"
#include "common/hex.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "crypto/schnorr.h"
#include "stack.h"
#include "common/banned.h"

#define MSG_HEX "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

/* Waits (up to 60 s, watching b) until path exists; fails if b exits first. */
static void wait_for_file(struct cmd_bg *b, const char *path)
{
    for (int i = 0; i < 6000; i++) {
        if (access(path, F_OK) == 0)
            return;
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            char *err = test_read_file(b->err_path, NULL);
            fail_msg("keymeld exited (status %d) before writing %s:\n%s",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1, path, err);
        }
        usleep(10000);
    }
    fail_msg("%s did not appear within 60 s", path);
}

static struct run run_sync(const char *const *args)
{
    return cmd_run(args, NULL, NULL, false);
}

/* `keymeld key new`: returns the printed public key (66 hex) in pk. */
static void key_new(const char *path, char pk[67])
{
    const char *args[] = {"key", "new", "--out", path, NULL};
    struct run r = run_sync(args);
    cmd_expect(&r, 0, NULL, NULL);
    CHECK(strlen(r.out) >= 66);
    memcpy(pk, r.out, 66);
    pk[66] = '\0';
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    run_free(&r);
}

/* The "aggregate key <hex>" of a keygen's output. */
static void aggregate_of(const char *out, char agg[67])
{
    const char *p = strstr(out, "aggregate key ");
    CHECK(p != NULL);
    memcpy(agg, p + strlen("aggregate key "), 66);
    agg[66] = '\0';
}

/* A session file: only the participants in `mine` have a private key. */
static void check_session_file(const char *path, size_t mine, const char pk[3][67])
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK(doc != NULL);
    json_t *parts = json_object_get(doc, "participants");
    CHECK_EQ(json_array_size(parts), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(parts, i);
        CHECK_EQ(json_object_get(p, "private_key") != NULL, i == mine);
        CHECK_EQ(json_object_get(p, "public_key") != NULL, i != mine);
        if (i != mine)
            CHECK_STR_EQ(json_string_value(json_object_get(p, "public_key")), pk[i]);
    }
    json_decref(doc);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
}

/* An invitation carries the session secret only encrypted. */
static void check_invitation(const char *path, const char *pk)
{
    char *text = test_read_file(path, NULL);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    CHECK(doc != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(doc, "public_key")), pk);
    CHECK(json_object_get(doc, "session_secret") == NULL);
    CHECK(strlen(json_string_value(json_object_get(doc, "encrypted_session_secret"))) > 64);
    json_decref(doc);
    free(text);
}

struct files {
    char dir[64];
    char key[3][128], session[3][128], invite[3][128], request[128], wrong[128];
    char psbt[128], other_psbt[128], psbt_request[128];
    char pk[3][67];
};

static void files_init(struct files *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/km_test_join_XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    for (size_t i = 0; i < 3; i++) {
        snprintf(f->key[i], sizeof(f->key[i]), "%s/key-%zu.json", f->dir, i);
        snprintf(f->session[i], sizeof(f->session[i]), "%s/session-%zu.json", f->dir, i);
        snprintf(f->invite[i], sizeof(f->invite[i]), "%s/invites/invite-%zu.json", f->dir, i);
    }
    snprintf(f->request, sizeof(f->request), "%s/request.json", f->dir);
    snprintf(f->wrong, sizeof(f->wrong), "%s/wrong.json", f->dir);
    snprintf(f->psbt, sizeof(f->psbt), "%s/spend.psbt", f->dir);
    snprintf(f->other_psbt, sizeof(f->other_psbt), "%s/other.psbt", f->dir);
    snprintf(f->psbt_request, sizeof(f->psbt_request), "%s/psbt-request.json", f->dir);
}

static void files_remove(struct files *f)
{
    const char *args[] = {"/bin/rm", "-rf", f->dir, NULL};
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execv(args[0], (char *const *)(uintptr_t)args);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
}

/* The two parties join while the coordinator waits; returns the common
 * aggregate key in agg. */
static void keygen_all(struct stack *s, struct files *f, char agg[67])
{
    char invites[2 * 67 + 1], invite_dir[96];
    snprintf(invites, sizeof(invites), "%s,%s", f->pk[1], f->pk[2]);
    snprintf(invite_dir, sizeof(invite_dir), "%s/invites", f->dir);
    const char *coord[] = {
        "keygen",      "--out",        f->session[0], "--key",     f->key[0],   "--invite",
        invites,       "--invite-dir", invite_dir,    "--gateway", s->base_url, "--trust-root",
        s->trust_root, "--pcrs",       s->pcrs_path,  "--wait",    "120",       NULL};
    struct cmd_bg cb;
    cmd_start(&cb, coord, NULL, NULL, false);
    wait_for_file(&cb, f->invite[2]);
    wait_for_file(&cb, f->invite[1]);
    check_invitation(f->invite[1], f->pk[1]);
    check_invitation(f->invite[2], f->pk[2]);

    /* Party 1's invitation opened with party 2's key. */
    const char *wrong[] = {"keygen",  "join",       "--invite", f->invite[1],   "--key",
                           f->key[2], "--out",      f->wrong,   "--trust-root", s->trust_root,
                           "--pcrs",  s->pcrs_path, NULL};
    struct run r = run_sync(wrong);
    cmd_expect(&r, 1, NULL, "this invitation is not for this key");
    CHECK(access(f->wrong, F_OK) != 0);
    run_free(&r);

    struct cmd_bg pb[3];
    for (size_t i = 1; i < 3; i++) {
        const char *join[] = {"keygen",
                              "join",
                              "--invite",
                              f->invite[i],
                              "--key",
                              f->key[i],
                              "--out",
                              f->session[i],
                              "--require-approval",
                              "--trust-root",
                              s->trust_root,
                              "--pcrs",
                              s->pcrs_path,
                              "--wait",
                              "120",
                              NULL};
        cmd_start(&pb[i], join, NULL, NULL, false);
    }
    struct run rc = cmd_finish(&cb);
    cmd_expect(&rc, 0, "completed", NULL);
    aggregate_of(rc.out, agg);
    run_free(&rc);
    for (size_t i = 1; i < 3; i++) {
        char mine[67];
        r = cmd_finish(&pb[i]);
        cmd_expect(&r, 0, "joined keygen", NULL);
        aggregate_of(r.out, mine);
        CHECK_STR_EQ(mine, agg);
        run_free(&r);
    }
    for (size_t i = 0; i < 3; i++)
        check_session_file(f->session[i], i, (const char(*)[67])f->pk);
}

/* The coordinator signs; the parties approve from their own files. */
static void sign_with_approvals(struct stack *s, struct files *f, const char *agg)
{
    const char *sign[] = {"sign",          "--session", f->session[0], "--message", MSG_HEX,
                          "--request-out", f->request,  "--wait",      "120",       NULL};
    struct cmd_bg sb;
    cmd_start(&sb, sign, NULL, NULL, false);
    wait_for_file(&sb, f->request);
    /* Nothing is signed before the parties approve. */
    json_error_t jerr;
    json_t *req = json_load_file(f->request, 0, &jerr);
    CHECK(req != NULL);
    const char *status[] = {"status",
                            "--session",
                            f->session[0],
                            "--signing",
                            json_string_value(json_object_get(req, "signing_session_id")),
                            NULL};
    struct run st = run_sync(status);
    json_decref(req);
    cmd_expect(&st, 0, "awaiting_approvals", NULL);
    run_free(&st);
    for (size_t i = 1; i < 3; i++) {
        const char *approve[] = {"approve",  "--session", f->session[i], "--request",
                                 f->request, "--gateway", s->base_url,   NULL};
        struct run r = run_sync(approve);
        cmd_expect(&r, 0, "approved signing", NULL);
        run_free(&r);
    }
    struct run r = cmd_finish(&sb);
    cmd_expect(&r, 0, NULL, NULL);
    uint8_t sig[64], msg[32], pk[33];
    CHECK_OK(hex_decode_exact(sig, sizeof(sig), r.out, 128));
    CHECK_OK(hex_decode_exact(msg, sizeof(msg), MSG_HEX, 64));
    CHECK_OK(hex_decode_exact(pk, sizeof(pk), agg, 66));
    CHECK_OK(schnorr_verify(sig, 64, msg, 32, pk + 1, 32));
    /* Each party checks it with its own session file (keymeld verify). */
    char sig_hex[129];
    memcpy(sig_hex, r.out, 128);
    sig_hex[128] = '\0';
    for (size_t i = 1; i < 3; i++) {
        const char *verify[] = {"verify", "--session",   f->session[i], "--message",
                                MSG_HEX,  "--signature", sig_hex,       NULL};
        struct run v = run_sync(verify);
        cmd_expect(&v, 0, "the signature verifies under", NULL);
        run_free(&v);
    }
    run_free(&r);
}

/* A PSBT spending 100000 sat of the group's output (key path) to a
 * foreign key and 60000 sat of change; other_change varies the change so
 * the PSBT's sighash differs. Returns the sighash of input 0. */
static void write_spend(const char *path, const uint8_t q[32], uint64_t change, uint8_t sighash[32])
{
    struct km_error err;
    struct psbt *psbt;
    uint8_t group_spk[TAPROOT_SPK_LEN], foreign_spk[TAPROOT_SPK_LEN], txid[32], foreign[32];
    taproot_script_pubkey(group_spk, q);
    memset(foreign, 0, sizeof(foreign));
    foreign[31] = 1; /* x = 1 is on the curve (y^2 = 8): a valid key nobody here holds */
    taproot_script_pubkey(foreign_spk, foreign);
    memset(txid, 0xd1, sizeof(txid));
    struct tx *tx = tx_new();
    tx_add_input(tx, txid, 0, TX_SEQUENCE_FINAL);
    tx_add_output(tx, 39000, foreign_spk, sizeof(foreign_spk));
    tx_add_output(tx, change, group_spk, sizeof(group_spk));
    CHECK_OK(psbt_new_v0(&psbt, tx, &err));
    tx_free(tx);
    CHECK_OK(psbt_in_set_witness_utxo(psbt, 0, 100000, group_spk, sizeof(group_spk), &err));
    CHECK_OK(psbt_sighash(sighash, psbt, 0, NULL, &err));
    struct buf b;
    buf_init(&b, PSBT_MAX_SIZE);
    CHECK_OK(psbt_serialize(&b, psbt));
    char *text = base64_encode(buf_peek(&b), buf_len(&b));
    FILE *fp = fopen(path, "w");
    CHECK_NOT_NULL(fp);
    CHECK(fputs(text, fp) >= 0);
    CHECK_EQ(fclose(fp), 0);
    free(text);
    buf_release(&b);
    psbt_free(psbt);
}

/* The coordinator signs a PSBT; the parties check it before approving. */
static void psbt_with_approvals(struct stack *s, struct files *f, const char *agg)
{
    uint8_t pk[33], sighash[32], other[32];
    CHECK_OK(hex_decode_exact(pk, sizeof(pk), agg, 66));
    write_spend(f->psbt, pk + 1, 60000, sighash);
    write_spend(f->other_psbt, pk + 1, 59000, other);
    const char *sign[] = {"psbt",   "sign",  "--session",     f->session[0],
                          "--psbt", f->psbt, "--request-out", f->psbt_request,
                          "--wait", "120",   "--finalize",    NULL};
    struct cmd_bg sb;
    cmd_start(&sb, sign, NULL, NULL, false);
    wait_for_file(&sb, f->psbt_request);

    const char *wrong[] = {"approve", "--session",   f->session[1], "--request", f->psbt_request,
                           "--psbt",  f->other_psbt, "--gateway",   s->base_url, NULL};
    struct run r = run_sync(wrong);
    cmd_expect(&r, 1, NULL, "is not the sighash of input 0 of this PSBT: not this PSBT's signing");
    CHECK(strstr(r.out, "approved") == NULL);
    run_free(&r);

    for (size_t i = 1; i < 3; i++) {
        const char *approve[] = {"approve",       "--session", f->session[i], "--request",
                                 f->psbt_request, "--psbt",    f->psbt,       "--network",
                                 "regtest",       "--gateway", s->base_url,   NULL};
        r = run_sync(approve);
        cmd_expect(&r, 0, "the request signs this PSBT", NULL);
        CHECK_NOT_NULL(strstr(r.out, "input 0: 100000 sat, the group signs it by its key path"));
        CHECK_NOT_NULL(strstr(r.out, "output 0: 39000 sat to bcrt1p"));
        CHECK_NOT_NULL(strstr(r.out, "output 1: 60000 sat to bcrt1p"));
        CHECK_NOT_NULL(strstr(r.out, "(the group's key: change)"));
        CHECK_NOT_NULL(strstr(r.out, "fee: 1000 sat"));
        CHECK_NOT_NULL(strstr(r.out, "approved signing"));
        run_free(&r);
    }
    r = cmd_finish(&sb);
    cmd_expect(&r, 0, NULL, "signed input 0");
    /* Line 2: the transaction; its witness is the key path signature. */
    size_t len;
    uint8_t *raw = cmd_hex_line(r.out, 1, &len);
    struct tx *tx;
    struct km_error err;
    CHECK_OK(tx_parse(&tx, raw, len, 0, &err));
    CHECK_EQ(tx->in[0].n_witness, 1);
    CHECK_EQ(tx->in[0].witness[0].len, 64);
    CHECK_OK(schnorr_verify(tx->in[0].witness[0].p, 64, sighash, 32, pk + 1, 32));
    tx_free(tx);
    free(raw);
    run_free(&r);
}

static void test_every_party_on_its_own_machine(void **state)
{
    (void)state;
    struct stack s = {0};
    struct files f;
    char agg[67];
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&s, 3);
    files_init(&f);
    for (size_t i = 0; i < 3; i++)
        key_new(f.key[i], f.pk[i]);
    keygen_all(&s, &f, agg);
    sign_with_approvals(&s, &f, agg);
    psbt_with_approvals(&s, &f, agg);
    files_remove(&f);
    stack_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_every_party_on_its_own_machine),
    };
    return RUN_TESTS("integration.join", tests);
}
