/*
 * cmd_join.c - every party on its own machine (docs/INTEGRATION.md):
 *
 *   keymeld key new --out FILE                   a participant's own key
 *   keymeld keygen --out FILE --invite PUBKEY[,PUBKEY...] --invite-dir DIR
 *                                                the coordinator (cmd_keygen
 *                                                calls cmd_keygen_invite)
 *   keymeld keygen join --invite FILE --key FILE --out FILE
 *   keymeld approve --session FILE --request FILE [--signing ID]
 *                   [--psbt FILE [--network NAME]]
 *
 * The files are described in src/client/invite.h.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/attest.h"
#include "client/invite.h"
#include "client/keyfile.h"
#include "cmd/cmd_join.h"
#include "cmd/cmd_psbt.h"
#include "cmd/opts.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define DEFAULT_GATEWAY "http://127.0.0.1:8090"
/* How long an invitation is good for: the keygen's reserve timeout. */
#define INVITE_TIMEOUT_SECS 3600

static const char *default_gateway(void)
{
    const char *g = getenv("KEYMELD_GATEWAY_URL");
    return g ? g : DEFAULT_GATEWAY;
}

/* ---- key new ------------------------------------------------------------- */

static void key_new_usage(FILE *out)
{
    fprintf(out, "usage: keymeld key new --out FILE\n"
                 "\n"
                 "Makes a participant's private key and saves it to FILE (mode 0600, never\n"
                 "overwritten). Prints its public key: give that to the coordinator, who\n"
                 "invites it (keymeld keygen --invite PUBKEY).\n");
}

static int cmd_key_new(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *out = NULL;
    opts_init(&o, "keymeld key new", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld key new: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            key_new_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--out", &bad))
            out = o.value;
        else
            bad =
                fprintf(stderr, "keymeld key new: unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && out == NULL)
        bad = fprintf(stderr, "keymeld key new: --out FILE is required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        key_new_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    struct keypair kp;
    struct km_error err;
    int rc = keypair_generate(&kp);
    if (rc != KM_OK)
        km_error_set(&err, rc, 0, "cannot make a key");
    else
        rc = client_party_key_save(out, &kp, &err);
    if (rc == KM_OK) {
        char pk[67];
        printf("%s\n", hex_encode(pk, sizeof(pk), kp.pubkey, 33));
    } else {
        fprintf(stderr, "keymeld key new: %s\n", err.msg);
    }
    keypair_clear(&kp);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

static const struct cmd_entry key_commands[] = {
    {"new", "--out FILE", "make a participant's private key", cmd_key_new},
};

int cmd_key(int argc, char **argv)
{
    return cmd_dispatch("keymeld key", key_commands, KM_ARRAY_LEN(key_commands), argc, argv);
}

/* ---- keygen --invite (the coordinator) ---------------------------------------- */

size_t cmd_invite_count(const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

/* Sets users 1.. of k to the invited public keys of list (comma-separated
 * hex33): their private keys are theirs, so they are remote here. */
static int take_invited(struct client_keygen *k, const char *list, struct km_error *err)
{
    const char *p = list;
    for (size_t i = 1; i < k->nusers; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct client_user *u = &k->users[i];
        keypair_clear(&u->kp);
        keypair_clear(&u->auth);
        u->remote = true;
        if (hex_decode_exact(u->kp.pubkey, 33, p, len) != KM_OK)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "--invite: '%.*s' is not a public key (66 hex characters)",
                                (int)(len > 70 ? 70 : len), p);
        p = end ? end + 1 : p + len;
    }
    uint8_t agg[PROTO_PUBKEY_LEN], xonly[PROTO_XONLY_LEN];
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(k->nusers, PROTO_PUBKEY_LEN);
    for (size_t i = 0; i < k->nusers; i++)
        memcpy(pks[i], k->users[i].kp.pubkey, PROTO_PUBKEY_LEN);
    int r = participant_aggregate_key(agg, xonly, (const uint8_t(*)[PROTO_PUBKEY_LEN])pks,
                                      k->nusers, &k->tweak);
    free(pks);
    if (r != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "--invite: a public key is not a valid secp256k1 point");
    return KM_OK;
}

/* Writes dir/invite-<i>.json for every invited participant. */
static int write_invitations(const struct client_keygen *k, const char *dir, const char *gateway,
                             bool json, struct km_error *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return km_error_set(err, KM_ERR_IO, errno, "cannot create %s: %s", dir, strerror(errno));
    uint64_t expires = clock_wall_ms() / 1000u + INVITE_TIMEOUT_SECS;
    for (size_t i = 1; i < k->nusers; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/invite-%zu.json", dir, i);
        int r = client_invite_save(path, k, i, gateway, expires, err);
        if (r != KM_OK)
            return r;
        if (!json)
            printf("invitation for participant %zu written to %s\n", i, path);
    }
    fflush(stdout);
    return KM_OK;
}

int cmd_keygen_invite(struct rest_client *c, struct client_keygen *k, const char *list,
                      const char *dir, const char *gateway, uint32_t wait_secs, bool json,
                      struct km_error *err)
{
    int r = take_invited(k, list, err);
    if (r == KM_OK)
        r = client_keygen_reserve(c, k, INVITE_TIMEOUT_SECS, err);
    if (r == KM_OK)
        r = client_keygen_initialize(c, k, err);
    if (r == KM_OK)
        r = write_invitations(k, dir, gateway, json, err);
    if (r == KM_OK && !json) {
        printf("keygen %s: waiting up to %u s for the invited parties to join\n", k->id_s,
               wait_secs);
        fflush(stdout);
    }
    if (r == KM_OK)
        r = client_keygen_wait(c, k, wait_secs * 1000u, err);
    return r;
}

/* ---- keygen join (a party) ----------------------------------------------------- */

static void join_usage(FILE *out)
{
    fprintf(out, "usage: keymeld keygen join --invite FILE --key FILE --out FILE\n"
                 "                           [--require-approval] [--wait SECS] [--gateway URL]\n"
                 "                           [--json] [--trust-root PEM]\n"
                 "                           (--pcrs FILE | --insecure-skip-attestation)\n"
                 "\n"
                 "Joins the keygen of an invitation (from keymeld keygen --invite) as the party\n"
                 "whose key is in --key (keymeld key new): opens the session secret with that\n"
                 "key, looks up its slot, verifies its enclave's attestation, registers its key\n"
                 "encrypted to that enclave, waits (default 600 s) for the aggregate key,\n"
                 "recomputes it from every participant's public key, and saves a session file\n"
                 "(mode 0600) holding only this party's private key. With --require-approval\n"
                 "every signing waits for this party's keymeld approve.\n"
                 "\n" CMD_TRUST_USAGE);
}

struct join_args {
    const char *invite, *key, *out, *gateway;
    bool require_approval, json;
    uint64_t wait_secs;
    struct cmd_trust_opts topts;
};

/* Parses argv into *a; returns -1 to go on, else the exit code. */
static int join_parse(struct join_args *a, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    memset(a, 0, sizeof(*a));
    a->wait_secs = 600;
    cmd_trust_opts_init(&a->topts);
    opts_init(&o, "keymeld keygen join", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld keygen join: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            join_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--invite", &bad))
            a->invite = o.value;
        else if (opts_value(&o, "--key", &bad))
            a->key = o.value;
        else if (opts_value(&o, "--out", &bad))
            a->out = o.value;
        else if (opts_value(&o, "--gateway", &bad))
            a->gateway = o.value;
        else if (opts_value(&o, "--wait", &bad))
            bad = bad || !opts_uint(&o, "--wait", 1, 86400, &a->wait_secs);
        else if (opts_flag(&o, "--require-approval", NULL))
            a->require_approval = true;
        else if (opts_flag(&o, "--json", NULL))
            a->json = true;
        else if (!cmd_trust_option(&o, &a->topts, &bad))
            bad = fprintf(stderr, "keymeld keygen join: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    if (!bad)
        bad = !cmd_trust_check(&a->topts, "keymeld keygen join");
    if (!bad && (a->invite == NULL || a->key == NULL || a->out == NULL))
        bad = fprintf(stderr, "keymeld keygen join: --invite FILE, --key FILE and --out FILE are "
                              "required\n") > 0;
    if (!bad)
        return -1;
    fputc('\n', stderr);
    join_usage(stderr);
    return CMD_EXIT_USAGE;
}

static void join_report(const struct join_args *a, const struct client_keygen *k, size_t me,
                        const struct client_trust *trust)
{
    char agg[67];
    hex_encode(agg, sizeof(agg), k->aggregate, 33);
    if (a->json) {
        json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:s, s:i, s:b}", "ok", 1, "keygen_session_id",
                              k->id_s, "user_id", k->users[me].id_s, "aggregate_public_key", agg,
                              "session_file", a->out, "participants", (int)k->nusers,
                              "attestation_verified", !trust->insecure_skip);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
        return;
    }
    printf("joined keygen %s as %s\naggregate key %s (checked against the %zu participants' "
           "public keys)\nsession saved to %s (keep it secret)\nenclave attestation %s\n",
           k->id_s, k->users[me].id_s, agg, k->nusers, a->out,
           trust->insecure_skip ? "NOT verified (--insecure-skip-attestation)" : "verified");
}

int cmd_keygen_join(int argc, char **argv)
{
    struct join_args a;
    int rc = join_parse(&a, argc, argv);
    if (rc >= 0)
        return rc;
    struct keypair kp;
    struct client_keygen k;
    struct client_trust trust;
    struct km_error err;
    char gw[512];
    size_t me = 0;
    if (client_party_key_load(a.key, &kp, &err) != KM_OK) {
        fprintf(stderr, "keymeld keygen join: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    rc = client_invite_open(a.invite, &kp, &k, &me, gw, sizeof(gw), &err);
    keypair_clear(&kp);
    if (rc != KM_OK) {
        fprintf(stderr, "keymeld keygen join: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    if (cmd_trust_load(&trust, &a.topts, "keymeld keygen join") != CMD_EXIT_OK) {
        client_keygen_clear(&k);
        return CMD_EXIT_FAIL;
    }
    const char *gateway = a.gateway ? a.gateway : gw[0] ? gw : default_gateway();
    k.trust = &trust;
    k.users[me].require_approval = a.require_approval;
    struct rest_client *c = cmd_rest_client(gateway, 30000);
    rc = client_keygen_join(c, &k, me, &err);
    if (rc == KM_OK)
        rc = client_keygen_wait(c, &k, (uint32_t)a.wait_secs * 1000u, &err);
    if (rc == KM_OK)
        rc = keyfile_save(a.out, &k, gateway, &err);
    if (rc == KM_OK)
        join_report(&a, &k, me, &trust);
    else
        fprintf(stderr, "keymeld keygen join: %s\n", err.msg);
    rest_client_free(c);
    client_keygen_clear(&k);
    client_trust_release(&trust);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

/* ---- approve ------------------------------------------------------------------ */

static void approve_usage(FILE *out)
{
    fprintf(out, "usage: keymeld approve --session FILE --request FILE [--signing ID]\n"
                 "                       [--psbt FILE [--network NAME]] [--gateway URL]\n"
                 "\n"
                 "Gives the approval of this party (the participants of the session FILE that\n"
                 "hold a private key, from keymeld keygen join) for the signing request FILE\n"
                 "(from keymeld sign or keymeld psbt sign --request-out): signs its items,\n"
                 "messages included, with the participant's auth key. --signing ID, when\n"
                 "given, must be the request's.\n"
                 "Read the messages before approving: approving lets the group sign them.\n"
                 "  --psbt FILE  the PSBT the request signs (base64 or binary): approves only\n"
                 "               if the request's messages are exactly the sighashes\n"
                 "               keymeld psbt sign makes for it with this group, and prints\n"
                 "               its inputs, outputs and fee first\n"
                 "  --network    for the addresses printed: mainnet (default), testnet,\n"
                 "               signet or regtest\n");
}

int cmd_approve(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *file = NULL, *request = NULL, *signing = NULL, *gateway = NULL, *psbt = NULL;
    enum address_network net = ADDRESS_MAINNET;
    opts_init(&o, "keymeld approve", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld approve: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            approve_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            file = o.value;
        else if (opts_value(&o, "--request", &bad))
            request = o.value;
        else if (opts_value(&o, "--signing", &bad))
            signing = o.value;
        else if (opts_value(&o, "--psbt", &bad))
            psbt = o.value;
        else if (opts_value(&o, "--network", &bad)) {
            if (!bad && address_network_parse(&net, o.value, strlen(o.value)) != KM_OK)
                bad = fprintf(stderr,
                              "keymeld approve: --network: '%.60s' is not mainnet, "
                              "testnet, signet or regtest\n",
                              o.value) > 0;
        } else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else
            bad =
                fprintf(stderr, "keymeld approve: unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (file == NULL || request == NULL))
        bad = fprintf(stderr, "keymeld approve: --session FILE and --request FILE are required\n") >
              0;
    if (bad) {
        fputc('\n', stderr);
        approve_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    struct client_keygen k;
    struct client_signing s = {0};
    struct km_error err;
    char gw[512];
    int rc = keyfile_load(file, &k, gw, sizeof(gw), &err);
    if (rc != KM_OK) {
        fprintf(stderr, "keymeld approve: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    rc = client_signing_request_load(request, &k, &s, &err);
    if (rc == KM_OK && signing != NULL && strcmp(signing, s.id_s) != 0)
        rc = km_error_set(&err, KM_ERR_INVALID, 0, "%s is the request of signing %s, not %.60s",
                          request, s.id_s, signing);
    if (rc == KM_OK && psbt != NULL)
        rc = cmd_psbt_check_request(stdout, &k, &s, psbt, net, &err);
    struct rest_client *c = cmd_rest_client(gateway ? gateway
                                            : gw[0] ? gw
                                                    : default_gateway(),
                                            30000);
    for (size_t i = 0; rc == KM_OK && i < k.nusers; i++) {
        if (k.users[i].remote)
            continue;
        rc = client_sign_approve(c, &k, &s, i, &err);
        if (rc == KM_OK)
            printf("approved signing %s (%zu items) as %s\n", s.id_s, s.nitems, k.users[i].id_s);
    }
    if (rc != KM_OK)
        fprintf(stderr, "keymeld approve: %s\n", err.msg);
    rest_client_free(c);
    client_signing_clear(&s);
    client_keygen_clear(&k);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}
