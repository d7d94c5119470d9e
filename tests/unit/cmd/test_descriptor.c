/*
 * test_descriptor.c - `keymeld descriptor`: a saved group's descriptor and
 * address, offline from the session file, for each keygen tweak.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bitcoin/address.h"
#include "client/keyfile.h"
#include "client/participant.h"
#include "cmd_test_support.h"
#include "common/banned.h"

static char dir[64];

/* A completed 3-party group with the given tweak, saved to dir/name;
 * its output key into xonly. */
static void save_group(const char *name, int tweak_type, uint8_t xonly[32], char *path, size_t cap)
{
    struct proto_tweak t = {.type = tweak_type};
    if (tweak_type == PROTO_TWEAK_PLAIN) {
        t.has_tweak = true;
        memset(t.tweak, 0x11, sizeof(t.tweak));
    }
    struct client_keygen k;
    CHECK_OK(client_keygen_new(&k, 3, &t));
    uint8_t pks[3][33];
    for (size_t i = 0; i < 3; i++) {
        k.users[i].enclave_id = (uint32_t)i;
        memcpy(k.users[i].enclave_pk, k.users[i].kp.pubkey, 33);
        memcpy(pks[i], k.users[i].kp.pubkey, 33);
    }
    k.coordinator_enclave_id = 0;
    memcpy(k.coordinator_pk, k.users[0].kp.pubkey, 33);
    CHECK_OK(
        participant_aggregate_key(k.aggregate, k.xonly, (const uint8_t(*)[33])pks, 3, &k.tweak));
    k.completed = true;
    memcpy(xonly, k.xonly, 32);
    snprintf(path, cap, "%s/%s", dir, name);
    struct km_error err;
    if (keyfile_save(path, &k, "http://127.0.0.1:1", &err) != KM_OK)
        fail_msg("keyfile_save: %s", err.msg);
    client_keygen_clear(&k);
}

static void test_taproot_group(void **state)
{
    (void)state;
    char path[128], want[ADDRESS_STR_MAX];
    uint8_t xonly[32];
    save_group("taproot.json", PROTO_TWEAK_UNSPENDABLE_TAPROOT, xonly, path, sizeof(path));

    const char *args[] = {"descriptor", "--session", path, NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    CHECK_OK(address_taproot(want, sizeof(want), ADDRESS_REGTEST, xonly));
    cmd_expect(&r, 0, "descriptor tr(musig(", NULL);
    CHECK_CONTAINS(r.out, want);
    CHECK_CONTAINS(r.out, "#"); /* the BIP-380 checksum */
    run_free(&r);

    const char *json_args[] = {"descriptor", "--session", path, "--network",
                               "mainnet",    "--json",    NULL};
    r = cmd_run(json_args, NULL, NULL, false);
    cmd_expect(&r, 0, NULL, NULL);
    json_t *o = json_loads(r.out, 0, NULL);
    CHECK_NOT_NULL(o);
    CHECK_OK(address_taproot(want, sizeof(want), ADDRESS_MAINNET, xonly));
    CHECK_STR_EQ(json_string_value(json_object_get(o, "address")), want);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "network")), "mainnet");
    CHECK(strncmp(json_string_value(json_object_get(o, "descriptor")), "tr(musig(", 9) == 0);
    json_decref(o);
    run_free(&r);
}

static void test_untweaked_and_unsupported(void **state)
{
    (void)state;
    char path[128], want[ADDRESS_STR_MAX];
    uint8_t xonly[32];
    save_group("plain-group.json", PROTO_TWEAK_NONE, xonly, path, sizeof(path));
    const char *args[] = {"descriptor", "--session", path, "--network", "testnet", NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    CHECK_OK(address_taproot(want, sizeof(want), ADDRESS_TESTNET, xonly));
    cmd_expect(&r, 0, "descriptor rawtr(musig(", NULL);
    CHECK_CONTAINS(r.out, want);
    run_free(&r);

    save_group("bip327-tweak.json", PROTO_TWEAK_PLAIN, xonly, path, sizeof(path));
    const char *args2[] = {"descriptor", "--session", path, NULL};
    r = cmd_run(args2, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, "which no descriptor can express");
    run_free(&r);

    const char *bad[] = {"descriptor", "--session", path, "--network", "moon", NULL};
    r = cmd_run(bad, NULL, NULL, false);
    cmd_expect(&r, 2, NULL, "unknown network 'moon'");
    run_free(&r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/km-descriptor-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"taproot.json", "plain-group.json", "bip327-tweak.json"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taproot_group),
        cmocka_unit_test(test_untweaked_and_unsupported),
    };
    return cmocka_run_group_tests_name("unit.cmd.descriptor", tests, setup, teardown);
}
