/*
 * test_verify.c - `keymeld verify`: every BIP-340 test vector with a 32-byte
 * message (tests/data/vectors/bip340/test-vectors.csv: indices 0-14; the
 * others sign messages of other lengths, which the command does not take)
 * gives exit 0 exactly when the vector says TRUE, with the key given x-only
 * and compressed; malformed arguments are clear errors.
 */
#include "test.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_test_support.h"
#include "common/banned.h"

#define VECTORS "tests/data/vectors/bip340/test-vectors.csv"

/* Field f (from 0) of a CSV line into out (lower-cased). */
static void field(char *out, size_t cap, const char *line, int f)
{
    for (int i = 0; i < f; i++) {
        line = strchr(line, ',');
        CHECK_NOT_NULL(line);
        line++;
    }
    size_t n = strcspn(line, ",\r\n");
    CHECK(n < cap);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)line[i]);
    out[n] = '\0';
}

static void verify(const char *key, const char *msg, const char *sig, int want)
{
    const char *args[] = {"verify", "--pubkey", key, "--message", msg, "--signature", sig, NULL};
    struct run r = cmd_run(args, NULL, NULL, false);
    if (want == 0)
        cmd_expect(&r, 0, "the signature verifies under", NULL);
    else
        cmd_expect(&r, 1, NULL, "keymeld verify: ");
    run_free(&r);
}

static void test_bip340_vectors(void **state)
{
    (void)state;
    char path[512], line[1024];
    snprintf(path, sizeof(path), "%s/" VECTORS, cmd_source_dir());
    FILE *f = fopen(path, "r");
    CHECK_NOT_NULL(f);
    CHECK_NOT_NULL(fgets(line, sizeof(line), f)); /* header */
    size_t n = 0, valid = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char key[80], msg[512], sig[200], result[16], compressed[84];
        field(key, sizeof(key), line, 2);
        field(msg, sizeof(msg), line, 4);
        field(sig, sizeof(sig), line, 5);
        field(result, sizeof(result), line, 6);
        if (strlen(msg) != 64)
            continue;
        bool ok = strcmp(result, "true") == 0;
        verify(key, msg, sig, ok ? 0 : 1);
        /* The compressed form (even Y, 02) names the same x-only key. */
        snprintf(compressed, sizeof(compressed), "02%s", key);
        verify(compressed, msg, sig, ok ? 0 : 1);
        n++;
        valid += ok;
    }
    fclose(f);
    CHECK_EQ(n, 15);
    CHECK_EQ(valid, 5);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char key[] = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
    static const char msg[] = "0000000000000000000000000000000000000000000000000000000000000000";
    static const char sig[] = "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca8215"
                              "25f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0";
    const char *short_msg[] = {"verify", "--pubkey",    key, "--message",
                               "00",     "--signature", sig, NULL};
    struct run r = cmd_run(short_msg, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, "--message: not 64 hex");
    run_free(&r);
    const char *bad_key[] = {"verify", "--pubkey",    "04", "--message",
                             msg,      "--signature", sig,  NULL};
    r = cmd_run(bad_key, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, "--pubkey: not 64 hex");
    run_free(&r);
    const char *both[] = {"verify",    "--pubkey", key,           "--session", "x.json",
                          "--message", msg,        "--signature", sig,         NULL};
    r = cmd_run(both, NULL, NULL, false);
    cmd_expect(&r, 2, NULL, "exactly one of --session FILE and --pubkey HEX");
    run_free(&r);
    const char *no_file[] = {
        "verify", "--session", "/nonexistent/x.json", "--message", msg, "--signature", sig, NULL};
    r = cmd_run(no_file, NULL, NULL, false);
    cmd_expect(&r, 1, NULL, "keymeld verify: ");
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_bip340_vectors),
        TEST(test_refusals),
    };
    return RUN_TESTS("unit.cmd.verify", tests);
}
