/*
 * cmd_session.c - client operations over the REST API, with the session
 * kept in a file between commands (src/client/keyfile.h):
 *
 *   keymeld keygen --out FILE [--participants N] [--tweak bip86|none]
 *   keymeld keygen --out FILE --invite PUBKEY[,PUBKEY...] --invite-dir DIR
 *   keymeld keygen join ...                          (cmd_join.c)
 *   keymeld sign --session FILE --message HEX [--message HEX]... [--approve]
 *                [--request-out FILE] [--wait SECS]
 *   keymeld status --session FILE [--signing ID]
 *
 * All take --gateway URL (default: the one saved in the file, else
 * $KEYMELD_GATEWAY_URL, else http://127.0.0.1:8090) and --json. keygen,
 * which encrypts keys to enclave keys, also takes the trust options
 * (--pcrs FILE, cmd.h); sign and status encrypt nothing to an enclave.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/address.h"
#include "client/attest.h"
#include "client/invite.h"
#include "client/keyfile.h"
#include "cmd/cmd_join.h"
#include "cmd/opts.h"
#include "common/hex.h"
#include "common/banned.h"

#define DEFAULT_GATEWAY "http://127.0.0.1:8090"

static const char *default_gateway(void)
{
    const char *g = getenv("KEYMELD_GATEWAY_URL");
    return g ? g : DEFAULT_GATEWAY;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
}

static int usage_error(const char *prog, void (*usage)(FILE *))
{
    (void)prog;
    fputc('\n', stderr);
    usage(stderr);
    return CMD_EXIT_USAGE;
}

/* ---- keygen ------------------------------------------------------------- */

static void keygen_usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld keygen --out FILE [--participants N] [--tweak bip86|none]\n"
            "                      [--invite PUBKEY[,PUBKEY...] --invite-dir DIR [--wait SECS]\n"
            "                       [--key FILE]]\n"
            "                      [--gateway URL] [--json] [--trust-root PEM]\n"
            "                      (--pcrs FILE | --insecure-skip-attestation)\n"
            "       keymeld keygen join --help\n"
            "\n"
            "Creates a MuSig2 keygen with N locally made participants (2..1000, default 3),\n"
            "waits for the aggregate key, checks it, and saves the session to FILE (mode\n"
            "0600: it holds the session secret and the private keys) for keymeld sign.\n"
            "With --invite, every party is on its own machine: the keygen has this\n"
            "coordinator and one participant per public key (from keymeld key new); an\n"
            "invitation per party is written to DIR/invite-<i>.json (the session secret\n"
            "encrypted to that party's key), then the command waits (default 600 s) until\n"
            "every party ran keymeld keygen join, and FILE holds only the coordinator's\n"
            "private key: a fresh one, or with --key the one in FILE (keymeld key new).\n"
            "--tweak bip86 (default) makes the key a BIP-86 key-path-only Taproot key.\n"
            "Each enclave's key is verified by its attestation document (root, PCR policy,\n"
            "fresh nonce) before a private key is encrypted to it.\n"
            "The operator API key reserve needs (unless the gateway runs with\n"
            "server.open_reserve, as the development stack does) comes from KEYMELD_API_KEY.\n"
            "\n" CMD_TRUST_USAGE);
}

/* --key: the coordinator (participant 0) signs with the party key in path. */
static int use_party_key(struct client_keygen *k, const char *path)
{
    struct keypair kp;
    struct km_error err;
    int r = client_party_key_load(path, &kp, &err);
    if (r != KM_OK) {
        fprintf(stderr, "keymeld keygen: %s\n", err.msg);
        return r;
    }
    r = client_keygen_use_key(k, 0, &kp);
    keypair_clear(&kp);
    if (r != KM_OK)
        fprintf(stderr, "keymeld keygen: cannot derive the auth key of %s\n", path);
    return r;
}

int cmd_keygen(int argc, char **argv)
{
    struct opts o;
    bool bad = false, json = false;
    const char *out = NULL, *gateway = default_gateway(), *tweak = "bip86";
    const char *invite = NULL, *invite_dir = NULL, *key = NULL;
    uint64_t n = 3, wait_secs = 600;
    bool n_given = false;
    struct cmd_trust_opts topts;
    if (argc >= 2 && strcmp(argv[1], "join") == 0)
        return cmd_keygen_join(argc - 1, argv + 1);
    cmd_trust_opts_init(&topts);
    opts_init(&o, "keymeld keygen", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld keygen: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            keygen_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--out", &bad))
            out = o.value;
        else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else if (opts_value(&o, "--tweak", &bad))
            tweak = o.value;
        else if (opts_value(&o, "--participants", &bad))
            bad = bad || !(n_given = opts_uint(&o, "--participants", 2, 1000, &n));
        else if (opts_value(&o, "--invite", &bad))
            invite = o.value;
        else if (opts_value(&o, "--invite-dir", &bad))
            invite_dir = o.value;
        else if (opts_value(&o, "--key", &bad))
            key = o.value;
        else if (opts_value(&o, "--wait", &bad))
            bad = bad || !opts_uint(&o, "--wait", 1, 86400, &wait_secs);
        else if (opts_flag(&o, "--json", NULL))
            json = true;
        else if (!cmd_trust_option(&o, &topts, &bad))
            bad = fprintf(stderr, "keymeld keygen: unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (invite == NULL) != (invite_dir == NULL))
        bad = fprintf(stderr, "keymeld keygen: --invite and --invite-dir go together\n") > 0;
    if (!bad && key != NULL && invite == NULL)
        bad = fprintf(stderr, "keymeld keygen: --key goes with --invite (the coordinator's own "
                              "key)\n") > 0;
    if (!bad && invite != NULL && n_given)
        bad = fprintf(stderr, "keymeld keygen: --invite sets the participants: no "
                              "--participants\n") > 0;
    if (!bad && invite != NULL)
        n = 1 + cmd_invite_count(invite);
    if (!bad && n > 1000)
        bad = fprintf(stderr, "keymeld keygen: at most 999 invited parties\n") > 0;
    if (!bad)
        bad = !cmd_trust_check(&topts, "keymeld keygen");
    struct proto_tweak tw = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    if (!bad && strcmp(tweak, "none") == 0)
        tw.type = PROTO_TWEAK_NONE;
    else if (!bad && strcmp(tweak, "bip86") != 0)
        bad = fprintf(stderr, "keymeld keygen: --tweak must be bip86 or none\n") > 0;
    if (!bad && out == NULL)
        bad = fprintf(stderr, "keymeld keygen: --out FILE is required\n") > 0;
    if (bad)
        return usage_error("keymeld keygen", keygen_usage);

    struct client_keygen k;
    struct client_trust trust;
    struct km_error err;
    if (cmd_trust_load(&trust, &topts, "keymeld keygen") != CMD_EXIT_OK)
        return CMD_EXIT_FAIL;
    if (client_keygen_new(&k, (size_t)n, &tw) != KM_OK) {
        client_trust_release(&trust);
        fprintf(stderr, "keymeld keygen: cannot make keys\n");
        return CMD_EXIT_FAIL;
    }
    if (key != NULL && use_party_key(&k, key) != KM_OK) {
        client_keygen_clear(&k);
        client_trust_release(&trust);
        return CMD_EXIT_FAIL;
    }
    k.trust = &trust;
    struct rest_client *c = cmd_rest_client(gateway, 30000);
    /* reserve needs an operator API key unless the gateway is in open mode. */
    int rc = rest_client_set_api_key(c, getenv("KEYMELD_API_KEY"));
    if (rc != KM_OK)
        km_error_set(&err, rc, 0, "KEYMELD_API_KEY is not a usable API key");
    else if (invite != NULL)
        rc = cmd_keygen_invite(c, &k, invite, invite_dir, gateway, (uint32_t)wait_secs, json, &err);
    else
        rc = client_keygen_run(c, &k, 3600, 60000, &err);
    if (rc == KM_OK)
        rc = keyfile_save(out, &k, gateway, &err);
    if (rc == KM_OK) {
        char agg[67], addr[ADDRESS_STR_MAX] = "?";
        hex_encode(agg, sizeof(agg), k.aggregate, 33);
        if (address_taproot(addr, sizeof(addr), ADDRESS_REGTEST, k.xonly) != KM_OK)
            addr[0] = '\0';
        if (json)
            print_json(json_pack("{s:b, s:s, s:s, s:s, s:s, s:i, s:b}", "ok", 1,
                                 "keygen_session_id", k.id_s, "aggregate_public_key", agg,
                                 "regtest_address", addr, "session_file", out, "participants",
                                 (int)k.nusers, "attestation_verified", !trust.insecure_skip));
        else
            printf("keygen %s completed\naggregate key %s\nregtest P2TR address %s\nsession "
                   "saved to %s (keep it secret)\nenclave attestation %s\n",
                   k.id_s, agg, addr, out,
                   trust.insecure_skip ? "NOT verified (--insecure-skip-attestation)" : "verified");
    } else {
        fprintf(stderr, "keymeld keygen: %s\n", err.msg);
    }
    rest_client_free(c);
    client_keygen_clear(&k);
    client_trust_release(&trust);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

/* ---- sign ----------------------------------------------------------------- */

static void sign_usage(FILE *out)
{
    fprintf(out, "usage: keymeld sign --session FILE --message HEX [--message HEX]...\n"
                 "                    [--approve] [--request-out FILE] [--wait SECS]\n"
                 "                    [--gateway URL] [--json]\n"
                 "\n"
                 "Signs 32-byte messages (64 hex characters each, up to 100) with the session of\n"
                 "FILE (from keymeld keygen): creates the signing session, approves it for every\n"
                 "participant that requires approval when --approve is given, waits, decrypts\n"
                 "and verifies each signature, and prints them. --approve approves only for the\n"
                 "participants whose private key FILE holds; --request-out writes the signing\n"
                 "request (its id, item ids and messages) for the other parties' keymeld\n"
                 "approve. --wait: how long to wait for the signatures (default 60 s).\n");
}

int cmd_sign(int argc, char **argv)
{
    struct opts o;
    bool bad = false, json = false, approve = false;
    const char *file = NULL, *gateway = NULL, *request_out = NULL;
    uint64_t wait_secs = 60;
    uint8_t(*msgs)[32] = calloc(PROTO_MAX_ITEMS, 32);
    size_t nmsgs = 0;
    opts_init(&o, "keymeld sign", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld sign: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            sign_usage(stdout);
            free(msgs);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            file = o.value;
        else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else if (opts_value(&o, "--message", &bad)) {
            if (!bad && nmsgs == PROTO_MAX_ITEMS)
                bad = fprintf(stderr, "keymeld sign: at most %d messages per signing session\n",
                              PROTO_MAX_ITEMS) > 0;
            else if (!bad && hex_decode_exact(msgs[nmsgs], 32, o.value, strlen(o.value)) != KM_OK)
                bad = fprintf(stderr,
                              "keymeld sign: --message '%.70s' is not 64 hex characters "
                              "(a 32-byte message, e.g. a sighash)\n",
                              o.value) > 0;
            nmsgs++;
        } else if (opts_flag(&o, "--approve", NULL))
            approve = true;
        else if (opts_value(&o, "--request-out", &bad))
            request_out = o.value;
        else if (opts_value(&o, "--wait", &bad))
            bad = bad || !opts_uint(&o, "--wait", 1, 86400, &wait_secs);
        else if (opts_flag(&o, "--json", NULL))
            json = true;
        else
            bad = fprintf(stderr, "keymeld sign: unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (file == NULL || nmsgs == 0))
        bad = fprintf(stderr, "keymeld sign: --session FILE and at least one --message\n") > 0;
    if (bad) {
        free(msgs);
        return usage_error("keymeld sign", sign_usage);
    }

    struct client_keygen k;
    struct client_signing s = {0};
    struct km_error err;
    char saved_gw[512];
    int rc = keyfile_load(file, &k, saved_gw, sizeof(saved_gw), &err);
    if (rc != KM_OK) {
        free(msgs);
        fprintf(stderr, "keymeld sign: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    struct rest_client *c = cmd_rest_client(gateway       ? gateway
                                            : saved_gw[0] ? saved_gw
                                                          : default_gateway(),
                                            30000);
    rc = client_signing_new(&s, (const uint8_t(*)[32])msgs, nmsgs);
    free(msgs);
    /* Without approvals to send, the create request itself waits for the
     * signatures (one request instead of two). */
    bool approvals = false;
    for (size_t i = 0; i < k.nusers; i++)
        approvals |= k.users[i].require_approval;
    if (rc == KM_OK)
        rc = client_sign_create(c, &k, &s, 600, approvals ? 0 : 30000, &err);
    if (rc == KM_OK && request_out != NULL && !client_signing_done(&s)) {
        rc = client_signing_request_save(request_out, &k, &s, &err);
        if (rc == KM_OK && !json) {
            fprintf(stderr, "signing %s: request written to %s for the approvers\n", s.id_s,
                    request_out);
            fflush(stderr);
        }
    }
    size_t me = 0; /* the first participant whose key is here reads the result */
    while (me + 1 < k.nusers && k.users[me].remote)
        me++;
    for (size_t i = 0; rc == KM_OK && approve && i < k.nusers; i++) {
        if (k.users[i].require_approval && !k.users[i].remote)
            rc = client_sign_approve(c, &k, &s, i, &err);
    }
    if (rc == KM_OK && !client_signing_done(&s))
        rc = client_sign_wait(c, &k, &s, me, (uint32_t)wait_secs * 1000u, &err);
    if (rc == KM_OK) {
        json_t *sigs = json_array();
        for (size_t i = 0; i < s.nitems; i++) {
            char hex[129];
            hex_encode(hex, sizeof(hex), s.sigs[i], 64);
            json_array_append_new(sigs, json_string(hex));
            if (!json)
                printf("%s\n", hex);
        }
        if (json)
            print_json(json_pack("{s:b, s:s, s:o}", "ok", 1, "signing_session_id", s.id_s,
                                 "signatures", sigs));
        else
            json_decref(sigs);
    } else {
        fprintf(stderr, "keymeld sign: %s\n", err.msg);
    }
    client_signing_clear(&s);
    client_keygen_clear(&k);
    rest_client_free(c);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

/* ---- status --------------------------------------------------------------- */

static void status_usage(FILE *out)
{
    fprintf(out, "usage: keymeld status --session FILE [--signing ID] [--gateway URL] [--json]\n"
                 "\n"
                 "Shows the keygen session of FILE as the gateway reports it, or with --signing\n"
                 "one of its signing sessions (read as the first participant).\n");
}

int cmd_status(int argc, char **argv)
{
    struct opts o;
    bool bad = false, json = false;
    const char *file = NULL, *gateway = NULL, *signing = NULL;
    opts_init(&o, "keymeld status", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld status: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            status_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            file = o.value;
        else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else if (opts_value(&o, "--signing", &bad))
            signing = o.value;
        else if (opts_flag(&o, "--json", NULL))
            json = true;
        else
            bad = fprintf(stderr, "keymeld status: unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    struct uuid sid;
    if (!bad && signing != NULL && uuid_parse(&sid, signing, strlen(signing)) != KM_OK)
        bad = fprintf(stderr, "keymeld status: --signing must be a UUID\n") > 0;
    if (!bad && file == NULL)
        bad = fprintf(stderr, "keymeld status: --session FILE is required\n") > 0;
    if (bad)
        return usage_error("keymeld status", status_usage);

    struct client_keygen k;
    struct km_error err;
    char saved_gw[512], path[256];
    if (keyfile_load(file, &k, saved_gw, sizeof(saved_gw), &err) != KM_OK) {
        fprintf(stderr, "keymeld status: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    struct rest_client *c = cmd_rest_client(gateway       ? gateway
                                            : saved_gw[0] ? saved_gw
                                                          : default_gateway(),
                                            30000);
    const struct keypair *signer = &k.session_auth;
    size_t me = 0; /* the first participant whose key is here */
    while (me + 1 < k.nusers && k.users[me].remote)
        me++;
    if (signing != NULL) {
        char sid_s[UUID_STR_LEN + 1];
        uuid_format(sid_s, &sid);
        snprintf(path, sizeof(path), "/api/v1/signing/%s/status/%s", sid_s, k.users[me].id_s);
        signer = &k.users[me].auth;
    } else {
        snprintf(path, sizeof(path), "/api/v1/keygen/%s/status", k.id_s);
    }
    struct rest_response r;
    int rc = rest_call(c, &r, "GET", path, NULL, signer, &err);
    if (rc == KM_OK) {
        if (json || r.body == NULL)
            printf("%s\n", r.text);
        else {
            printf("%s %s: %s\n", signing ? "signing" : "keygen", signing ? signing : k.id_s,
                   json_string_value(json_object_get(r.body, "status")));
            const char *e = json_string_value(json_object_get(r.body, "error"));
            if (e != NULL)
                printf("error: %s\n", e);
            if (r.status != 200)
                printf("HTTP %ld: %s\n", r.status, rest_error_message(&r));
        }
        rc = r.status == 200 ? KM_OK : KM_ERR_REMOTE;
        rest_response_clear(&r);
    } else {
        fprintf(stderr, "keymeld status: %s\n", err.msg);
    }
    rest_client_free(c);
    client_keygen_clear(&k);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}
