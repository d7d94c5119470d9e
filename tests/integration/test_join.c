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
 *    files; the signature verifies under the aggregate key.
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
#include "common/hex.h"
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
