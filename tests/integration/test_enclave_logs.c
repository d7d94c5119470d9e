/*
 * test_enclave_logs.c - no secret reaches the enclave logs. Three
 * keymeld-enclave processes run at debug level through keygen (5 users,
 * subsets, approvals, a tweak), a signing batch with adaptor items, and
 * refused inputs; then every log is searched, in lower- and upper-case hex,
 * for every participant private key, approval key, session secret, adaptor
 * secret and message. As a net for secrets the test cannot know (the
 * enclave keys, secret nonces), any run of 32+ hex digits other than a
 * 33-byte public key also fails the test.
 */
#include "test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hex.h"
#include "procs.h"
#include "common/banned.h"

struct secrets {
    size_t n;
    char hex[256][65];
};

static void add_secret(struct secrets *s, const uint8_t *p, size_t len)
{
    if (s->n == KM_ARRAY_LEN(s->hex))
        fail_msg("too many secrets");
    hex_encode(s->hex[s->n++], sizeof(s->hex[0]), p, len);
}

static void check_absent(const char *log, const char *text, const struct secrets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        char upper[65];
        size_t n = strlen(s->hex[i]);
        for (size_t k = 0; k <= n; k++)
            upper[k] = (char)toupper((unsigned char)s->hex[i][k]);
        if (strstr(text, s->hex[i]) != NULL || strstr(text, upper) != NULL)
            fail_msg("secret %zu found in %s", i, log);
    }
}

/* Any long hex run that is not a compressed public key is suspect. */
static void check_no_hex_blobs(const char *log, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t n = 0;
        while (isxdigit((unsigned char)p[n]))
            n++;
        bool pubkey = n == 66 && p[0] == '0' && (p[1] == '2' || p[1] == '3');
        if (n >= 32 && !pubkey)
            fail_msg("%s: a %zu-digit hex run: %.80s", log, n, p);
        p += n ? n : 1;
    }
}

static void run_flows(struct drv *d, struct drv_keygen *kg, struct secrets *s)
{
    struct km_error err;
    drv_keygen_setup(kg, 5, 3);
    kg->users[0].require_approval = true;
    kg->has_tweak = true;
    kg->tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    CHECK_OK(uuid_v7_new(&kg->subsets[0].id));
    kg->subsets[0].n = 2;
    kg->subsets[0].members[0] = 0;
    kg->subsets[0].members[1] = 4;
    kg->n_subsets = 1;
    CHECK_OK(drv_keygen_run(d, kg, &err));
    add_secret(s, kg->secret, 32);
    for (size_t i = 0; i < kg->n_users; i++) {
        add_secret(s, kg->users[i].kp.seckey, 32);
        add_secret(s, kg->users[i].auth.seckey, 32);
    }

    struct drv_signing sg;
    drv_signing_setup(&sg, 4);
    sg.items[1].subset = 0;
    drv_item_add_adaptor(&sg.items[2], PROTO_ADAPTOR_SINGLE, 1);
    drv_item_add_adaptor(&sg.items[3], PROTO_ADAPTOR_OR, 2);
    CHECK_OK(drv_sign_init(d, kg, &sg, &err));
    /* A refused round first (a nonce from a stranger), then the real one. */
    struct uuid real = sg.nonces[0].user_id;
    CHECK_OK(uuid_v7_new(&sg.nonces[0].user_id));
    CHECK_ERR(drv_sign_nonces(d, kg, &sg, &err), KM_ERR_REMOTE);
    sg.nonces[0].user_id = real;
    CHECK_OK(drv_sign_nonces(d, kg, &sg, &err));
    CHECK_OK(drv_sign_finalize(d, kg, &sg, &err));
    CHECK_OK(drv_sign_check(kg, &sg, &err));
    for (size_t i = 0; i < sg.n_items; i++) {
        add_secret(s, sg.items[i].msg, 32);
        for (size_t c = 0; c < sg.items[i].n_adaptors; c++)
            for (size_t k = 0; k < sg.items[i].adaptors[c].n_points; k++)
                add_secret(s, sg.items[i].adaptors[c].secrets[k], 32);
    }
    drv_signing_release(&sg);
    CHECK_OK(drv_clear(d, &kg->id, true, &err));
}

static void test_no_secret_in_debug_logs(void **state)
{
    (void)state;
    char dir[64];
    struct procs p;
    struct drv d;
    struct drv_link link;
    struct drv_keygen kg;
    struct km_error err;
    static struct secrets s;
    snprintf(dir, sizeof(dir), "/tmp/km_logs_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(dir));
    if (procs_start(&p, 3, dir, "debug", NULL, &err) != KM_OK)
        fail_msg("%s", err.msg);
    drv_link_pools(&link, &p.pools);
    CHECK_OK(drv_init(&d, &link, 3, &err));
    run_flows(&d, &kg, &s);
    CHECK_EQ(procs_stop(&p), 0);
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        char *text = procs_read_file(p.log[i], &len);
        CHECK_NOT_NULL(text);
        CHECK_CONTAINS(text, "DEBUG enclave: keygen"); /* it did log at debug */
        CHECK_CONTAINS(text, "DEBUG enclave: signing");
        check_absent(p.log[i], text, &s);
        check_no_hex_blobs(p.log[i], text);
        free(text);
        unlink(p.log[i]);
    }
    rmdir(dir);
    drv_keygen_release(&kg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_no_secret_in_debug_logs),
    };
    return RUN_TESTS("integration.enclave.logs", tests);
}
