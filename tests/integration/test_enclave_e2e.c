/*
 * test_enclave_e2e.c - three keymeld-enclave processes on 127.0.0.1 (TCP,
 * ephemeral ports); the driver plays the gateway over the transport pool:
 *  - keygen of 3 participants (one per enclave) with the BIP-86 tweak, then
 *    a batch of messages with per-item tweaks; every signature verifies
 *    with BIP-340 under its tweaked aggregate key;
 *  - 5 participants over 3 enclaves with two subsets and approvals, a
 *    subset-only signing;
 *  - an adaptor round trip (single, and, or), adapted and extracted;
 *  - several signing sessions in parallel from several threads;
 *  - SIGTERM: every enclave drains and exits 0.
 */
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs.h"
#include "common/banned.h"

struct env {
    char dir[64];
    struct procs p;
    struct drv d;
};

static void env_start(struct env *e)
{
    memset(e, 0, sizeof(*e));
    struct km_error err;
    struct drv_link link;
    snprintf(e->dir, sizeof(e->dir), "/tmp/km_e2e_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(e->dir));
    if (procs_start(&e->p, 3, e->dir, "info", NULL, &err) != KM_OK)
        fail_msg("%s", err.msg);
    drv_link_pools(&link, &e->p.pools);
    if (drv_init(&e->d, &link, 3, &err) != KM_OK)
        fail_msg("drv_init: %s", err.msg);
}

static void env_stop(struct env *e)
{
    CHECK_EQ(procs_stop(&e->p), 0);
    for (size_t i = 0; i < 3; i++)
        unlink(e->p.log[i]);
    rmdir(e->dir);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    env_start(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_stop(*state);
    free(*state);
    return 0;
}

static void run_keygen(struct env *e, struct drv_keygen *kg)
{
    struct km_error err;
    if (drv_keygen_run(&e->d, kg, &err) != KM_OK)
        fail_msg("keygen: %s", err.msg);
}

static void run_signing(struct env *e, struct drv_keygen *kg, struct drv_signing *sg)
{
    struct km_error err;
    if (drv_sign_run(&e->d, kg, sg, &err) != KM_OK)
        fail_msg("signing: %s", err.msg);
}

static void test_three_party_batch(void **state)
{
    struct env *e = *state;
    struct drv_keygen kg;
    struct drv_signing sg;
    drv_keygen_setup(&kg, 3, 3);
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    run_keygen(e, &kg);
    drv_signing_setup(&sg, 8);
    drv_item_set_tweak(&sg.items[2], PROTO_TWEAK_NONE, 0);
    drv_item_set_tweak(&sg.items[3], PROTO_TWEAK_TAPROOT_MERKLE_ROOT, 0xa5);
    drv_item_set_tweak(&sg.items[4], PROTO_TWEAK_PLAIN, 0x11);
    drv_item_set_tweak(&sg.items[5], PROTO_TWEAK_XONLY, 0x22);
    run_signing(e, &kg, &sg);
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
}

static void test_five_over_three_with_subsets(void **state)
{
    struct env *e = *state;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct km_error err;
    drv_keygen_setup(&kg, 5, 3);
    kg.users[1].require_approval = true;
    kg.users[3].require_approval = true;
    CHECK_OK(uuid_v7_new(&kg.subsets[0].id));
    kg.subsets[0].n = 2;
    kg.subsets[0].members[0] = 1;
    kg.subsets[0].members[1] = 4;
    CHECK_OK(uuid_v7_new(&kg.subsets[1].id));
    kg.subsets[1].n = 3;
    kg.subsets[1].members[0] = 0;
    kg.subsets[1].members[1] = 2;
    kg.subsets[1].members[2] = 3;
    kg.n_subsets = 2;
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    run_keygen(e, &kg);
    drv_signing_setup(&sg, 4);
    sg.items[1].subset = 0;
    sg.items[2].subset = 1;
    sg.items[3].subset = 1;
    run_signing(e, &kg, &sg);
    drv_signing_release(&sg);
    /* Only the first subset signs. */
    drv_signing_setup(&sg, 3);
    for (size_t i = 0; i < 3; i++)
        sg.items[i].subset = 0;
    run_signing(e, &kg, &sg);
    CHECK_EQ(sg.n_nonces, 2);
    CHECK_OK(drv_clear(&e->d, &sg.id, false, &err));
    drv_signing_release(&sg);
    CHECK_OK(drv_clear(&e->d, &kg.id, true, &err));
    drv_keygen_release(&kg);
}

static void test_adaptor_round_trip(void **state)
{
    struct env *e = *state;
    struct drv_keygen kg;
    struct drv_signing sg;
    drv_keygen_setup(&kg, 3, 3);
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    run_keygen(e, &kg);
    drv_signing_setup(&sg, 3);
    drv_item_add_adaptor(&sg.items[0], PROTO_ADAPTOR_SINGLE, 1);
    drv_item_add_adaptor(&sg.items[1], PROTO_ADAPTOR_AND, 2);
    drv_item_add_adaptor(&sg.items[1], PROTO_ADAPTOR_OR, 3);
    /* item 2 stays a plain signature in the same batch */
    run_signing(e, &kg, &sg);
    CHECK_EQ(sg.items[1].ar.n_results, 4);
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
}

struct par {
    struct drv *d;
    struct drv_keygen *kg;
    int failures;
    char msg[sizeof(((struct km_error *)0)->msg)];
};

static void *parallel_signer(void *arg)
{
    struct par *p = arg;
    for (int i = 0; i < 3; i++) {
        struct drv_signing sg;
        struct km_error err;
        drv_signing_setup(&sg, 2);
        if (drv_sign_run(p->d, p->kg, &sg, &err) != KM_OK) {
            p->failures++;
            snprintf(p->msg, sizeof(p->msg), "%s", err.msg);
        }
        drv_signing_release(&sg);
    }
    return NULL;
}

static void test_parallel_sessions(void **state)
{
    struct env *e = *state;
    struct drv_keygen kg;
    struct par par[6];
    pthread_t th[6];
    drv_keygen_setup(&kg, 3, 3);
    run_keygen(e, &kg);
    for (int i = 0; i < 6; i++) {
        par[i] = (struct par){.d = &e->d, .kg = &kg};
        CHECK_EQ(pthread_create(&th[i], NULL, parallel_signer, &par[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 6; i++)
        if (par[i].failures)
            fail_msg("thread %d: %s", i, par[i].msg);
    drv_keygen_release(&kg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_party_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_five_over_three_with_subsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adaptor_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_sessions, setup, teardown),
    };
    return RUN_TESTS("integration.enclave.e2e", tests);
}
