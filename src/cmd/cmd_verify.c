/*
 * cmd_verify.c - `keymeld verify`: checks a BIP-340 signature offline, so
 * every party can check a signature the group made with its own copy of the
 * group's key (its session file) rather than trusting whoever sent it:
 *
 *   keymeld verify --message HEX --signature HEX (--session FILE | --pubkey HEX)
 *
 * The key is the session's output key (the aggregate after the keygen's
 * tweak, what keymeld sign and keymeld psbt sign's key paths verify under),
 * or a key given as 64 hex (x-only) or 66 hex (compressed; its x is used).
 */
#include <stdio.h>
#include <string.h>

#include "client/keyfile.h"
#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "common/hex.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

#define PROG "keymeld verify"

struct verify_args {
    const char *session, *pubkey, *message, *signature;
};

static void verify_usage(FILE *out)
{
    fprintf(out, "usage: " PROG " --message HEX --signature HEX (--session FILE | --pubkey HEX)\n"
                 "\n"
                 "Checks a BIP-340 signature (128 hex) of a 32-byte message (64 hex) under the\n"
                 "output key of the group saved in FILE (keymeld keygen or keygen join), or\n"
                 "under --pubkey (64 hex x-only, or 66 hex compressed). Offline. Exit 0 when it\n"
                 "verifies, 1 when it does not.\n");
}

static int parse_args(struct verify_args *a, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    memset(a, 0, sizeof(*a));
    opts_init(&o, PROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, PROG ": unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            verify_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            a->session = o.value;
        else if (opts_value(&o, "--pubkey", &bad))
            a->pubkey = o.value;
        else if (opts_value(&o, "--message", &bad))
            a->message = o.value;
        else if (opts_value(&o, "--signature", &bad))
            a->signature = o.value;
        else
            bad = fprintf(stderr, PROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (a->message == NULL || a->signature == NULL))
        bad = fprintf(stderr, PROG ": --message and --signature are required\n") > 0;
    if (!bad && (a->session == NULL) == (a->pubkey == NULL))
        bad = fprintf(stderr, PROG ": give exactly one of --session FILE and --pubkey HEX\n") > 0;
    if (!bad)
        return -1;
    fputc('\n', stderr);
    verify_usage(stderr);
    return CMD_EXIT_USAGE;
}

/* The x-only key to verify under, from --pubkey or the session file. */
static int load_key(uint8_t xonly[32], const struct verify_args *a, struct km_error *err)
{
    if (a->pubkey != NULL) {
        size_t len = strlen(a->pubkey);
        uint8_t full[33];
        if (len == 64 && hex_decode_exact(xonly, 32, a->pubkey, len) == KM_OK)
            return KM_OK;
        if (len == 66 && hex_decode_exact(full, 33, a->pubkey, len) == KM_OK &&
            (full[0] == 2 || full[0] == 3)) {
            memcpy(xonly, full + 1, 32);
            return KM_OK;
        }
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "--pubkey: not 64 hex (x-only) or 66 hex (compressed, 02/03)");
    }
    struct client_keygen k;
    char gw[512];
    int r = keyfile_load(a->session, &k, gw, sizeof(gw), err);
    if (r != KM_OK)
        return r;
    memcpy(xonly, k.xonly, 32);
    client_keygen_clear(&k);
    return KM_OK;
}

int cmd_verify(int argc, char **argv)
{
    struct verify_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;
    uint8_t msg[32], sig[64], key[32];
    struct km_error err;
    int r = KM_OK;
    if (strlen(a.message) != 64 || hex_decode_exact(msg, 32, a.message, 64) != KM_OK)
        r = km_error_set(&err, KM_ERR_INVALID, 0, "--message: not 64 hex (a 32-byte message)");
    else if (strlen(a.signature) != 128 || hex_decode_exact(sig, 64, a.signature, 128) != KM_OK)
        r = km_error_set(&err, KM_ERR_INVALID, 0, "--signature: not 128 hex (BIP-340)");
    else
        r = load_key(key, &a, &err);
    if (r != KM_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    char key_hex[65];
    hex_encode(key_hex, sizeof(key_hex), key, 32);
    if (schnorr_verify(sig, 64, msg, 32, key, 32) != KM_OK) {
        fprintf(stderr, PROG ": the signature does NOT verify under %s\n", key_hex);
        return CMD_EXIT_FAIL;
    }
    printf("the signature verifies under %s (BIP-340)\n", key_hex);
    return CMD_EXIT_OK;
}
