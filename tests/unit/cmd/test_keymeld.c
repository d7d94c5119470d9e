/*
 * test_keymeld.c - runs the built `keymeld` binary
 * ($KEYMELD_TEST_BUILD_DIR/src/cmd/keymeld) on the shipped configurations,
 * with environment overrides, and checks exit codes and output.
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_test_support.h"
#include "common/banned.h"

/* Runs keymeld in the source directory, stdin from /dev/null (see
 * cmd_run). */
static struct run run_keymeld(const char *const *args, const char *const *vars)
{
    return cmd_run(args, vars, NULL, true);
}

/* Exit status and a needle in stdout. */
static void expect(struct run *r, int status, const char *needle)
{
    cmd_expect(r, status, needle, NULL);
}

static void test_shipped_configs_pass(void **state)
{
    (void)state;
    static const char *const files[] = {"config/development.yaml", "config/development-tcp.yaml",
                                        "config/development-k8s.yaml", "config/production.yaml"};
    for (size_t i = 0; i < KM_ARRAY_LEN(files); i++) {
        const char *args[] = {"config", "check", "--config", files[i], NULL};
        struct run r = run_keymeld(args, NULL);
        expect(&r, 0, "Configuration OK");
        CHECK_CONTAINS(r.out, "Enclaves: 3\n");
        CHECK(strstr(r.out, "Errors:") == NULL);
        run_free(&r);
    }
    const char *args[] = {"config", "check", "--config", "config/development.yaml", NULL};
    struct run r = run_keymeld(args, NULL);
    expect(&r, 0,
           "Config: config/development.yaml (from --config)\n"
           "Environment: Development (file config/development.yaml:");
    CHECK_CONTAINS(r.out, "  enclave 0: vsock://2:5000  [cid 2 (file config/development.yaml:");
    CHECK_CONTAINS(r.out, "Configuration OK\n");
    run_free(&r);

    const char *k8s[] = {"config", "check", "--config=config/development-k8s.yaml", NULL};
    r = run_keymeld(k8s, NULL);
    expect(&r, 0, "  enclave 2: tcp://keymeld-enclave-2:5000  [tcp_host keymeld-enclave-2");
    run_free(&r);
}

static void test_production_with_cid_overrides(void **state)
{
    (void)state;
    const char *args[] = {"config", "check", "--config", "config/production.yaml", NULL};
    /* Templates left in place: valid, with warnings naming the variables. */
    struct run r = run_keymeld(args, NULL);
    expect(&r, 0, "Environment: Production (file config/production.yaml:");
    CHECK_CONTAINS(r.out, "Warnings:\n");
    CHECK_CONTAINS(r.out, "export KEYMELD_ENCLAVE_0_CID=");
    CHECK_CONTAINS(r.out, "Configuration OK (3 warnings)\n");
    run_free(&r);

    const char *vars[] = {"KEYMELD_ENVIRONMENT=production", "KEYMELD_ENCLAVE_0_CID=16",
                          "KEYMELD_ENCLAVE_1_CID=17", "KEYMELD_ENCLAVE_2_CID=18", NULL};
    r = run_keymeld(args, vars);
    expect(&r, 0, "Environment: Production (env KEYMELD_ENVIRONMENT)\n");
    CHECK_CONTAINS(r.out, "  enclave 0: vsock://16:8000  [cid 16 (env KEYMELD_ENCLAVE_0_CID), "
                          "port 8000 (file config/production.yaml:");
    CHECK_CONTAINS(r.out, "  enclave 2: vsock://18:8000  [cid 18 (env KEYMELD_ENCLAVE_2_CID)");
    CHECK(strstr(r.out, "Warnings:") == NULL);
    CHECK_CONTAINS(r.out, "Configuration OK\n");
    run_free(&r);

    /* Two enclaves given the same CID. */
    const char *dup[] = {"KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=16",
                         "KEYMELD_ENCLAVE_2_CID=18", NULL};
    r = run_keymeld(args, dup);
    expect(&r, 1, "Errors:\n  env KEYMELD_ENCLAVE_1_CID: Duplicate enclave CIDs detected");
    CHECK_CONTAINS(r.out, "Configuration invalid: 1 error(s)\n");
    run_free(&r);
}

static void test_seed_troubleshooting_scenarios(void **state)
{
    (void)state;
    /* The development file run as production: the seed's "Duplicate
     * enclave CIDs detected", with the way out in the message. */
    const char *args[] = {"config", "check", "--config", "config/development.yaml", NULL};
    const char *prod[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    struct run r = run_keymeld(args, prod);
    expect(&r, 1, "Duplicate enclave CIDs detected");
    CHECK_CONTAINS(r.out, "Development mode allows a shared CID 2");
    CHECK_CONTAINS(r.out, "check KEYMELD_ENVIRONMENT");
    CHECK_CONTAINS(r.out, "env KEYMELD_ENVIRONMENT: overrides 'environment: development'");
    run_free(&r);

    /* Guest CID in development: the "No such device" hint. */
    const char *guest[] = {"KEYMELD_ENCLAVE_1_CID=3", NULL};
    r = run_keymeld(args, guest);
    expect(&r, 0, "env KEYMELD_ENCLAVE_1_CID: enclave 1: CID 3 is a guest CID");
    CHECK_CONTAINS(r.out, "No such device (os error 19)");
    run_free(&r);

    /* Seed's TCP variables on the development file. */
    const char *tcp[] = {"KEYMELD_ENCLAVE_0_TRANSPORT=tcp",
                         "KEYMELD_ENCLAVE_0_TCP_HOST=keymeld-enclave-0",
                         "KEYMELD_ENCLAVE_0_PORT=5000", NULL};
    r = run_keymeld(args, tcp);
    expect(&r, 0,
           "  enclave 0: tcp://keymeld-enclave-0:5000  [tcp_host keymeld-enclave-0 (env "
           "KEYMELD_ENCLAVE_0_TCP_HOST), port 5000 (env KEYMELD_ENCLAVE_0_PORT), "
           "transport tcp (env KEYMELD_ENCLAVE_0_TRANSPORT)]");
    run_free(&r);

    /* An override that does not parse is an error naming it. */
    const char *bad[] = {"KEYMELD_ENCLAVE_0_CID=sixteen", NULL};
    r = run_keymeld(args, bad);
    expect(&r, 1, "env KEYMELD_ENCLAVE_0_CID: invalid cid of enclave 0");
    run_free(&r);
}

static void test_load_order(void **state)
{
    (void)state;
    const char *args[] = {"config", "check", NULL};
    struct run r = run_keymeld(args, NULL);
    expect(&r, 0, "Config: config/development.yaml (default for the environment)\n");
    run_free(&r);

    const char *prod[] = {"KEYMELD_ENVIRONMENT=production", NULL};
    r = run_keymeld(args, prod);
    expect(&r, 0, "Config: config/production.yaml (default for KEYMELD_ENVIRONMENT=production)");
    run_free(&r);

    const char *cp[] = {"CONFIG_PATH=config/development-tcp.yaml", NULL};
    r = run_keymeld(args, cp);
    expect(&r, 0, "Config: config/development-tcp.yaml (from CONFIG_PATH)\n");
    run_free(&r);

    const char *missing[] = {"config", "check", "--config", "config/nope.yaml", NULL};
    r = run_keymeld(missing, NULL);
    expect(&r, 1, "config/nope.yaml: cannot open the configuration file: No such file");
    run_free(&r);
}

static void test_usage(void **state)
{
    (void)state;
    static const struct {
        const char *args[5];
        int status;
        const char *out, *err;
    } cases[] = {
        {{"--help"}, 0, "usage: keymeld <command>", ""},
        {{"config", "--help"}, 0, "usage: keymeld config <command>", ""},
        {{"config", "check", "--help"}, 0, "usage: keymeld config check [--config FILE]", ""},
        {{"--version"}, 0, "keymeld ", ""},
        {{NULL}, 2, "", "usage: keymeld <command>"},
        {{"frobnicate"}, 2, "", "keymeld: unknown command 'frobnicate'"},
        {{"config"}, 2, "", "usage: keymeld config <command>"},
        {{"config", "check", "--bogus"}, 2, "", "unexpected argument '--bogus'"},
        {{"config", "check", "--config"}, 2, "", "--config needs a file name"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct run r = run_keymeld(cases[i].args, NULL);
        if (r.status != cases[i].status)
            fail_msg("case %zu: exit %d, expected %d; stderr: %s", i, r.status, cases[i].status,
                     r.err);
        CHECK_CONTAINS(r.out, cases[i].out);
        CHECK_CONTAINS(r.err, cases[i].err);
        run_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_shipped_configs_pass),
        TEST(test_production_with_cid_overrides),
        TEST(test_seed_troubleshooting_scenarios),
        TEST(test_load_order),
        TEST(test_usage),
    };
    return RUN_TESTS("unit.cmd.keymeld", tests);
}
