/*
 * cmd_demo.c - `keymeld demo`: plays the coordinator and every participant
 * against a running gateway, like the original's demo:
 *
 *   1 fetch the enclaves' public keys (10 tries, then the seed's "Enclave
 *     public key still unavailable after 10 retries" with its hints)
 *   2 reserve a keygen, initialize it, register the participants; each
 *     enclave's key is attested (client/attest.h) before anything is
 *     encrypted to it
 *   3 wait for the aggregate key (progress on the way), print the BIP-86
 *     P2TR address it controls and what each enclave attested
 *   4 sign a batch of messages, decrypt and verify every signature locally
 *   5 print a summary with timings
 *
 * The keys are made here and live only in this process; the gateway and
 * the enclaves only ever see them encrypted.
 */
#include "cmd/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/doc.h"
#include "bitcoin/address.h"
#include "client/attest.h"
#include "client/session.h"
#include "cmd/opts.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "crypto/thash.h"
#include "common/banned.h"

#define PROG            "keymeld demo"
#define DEFAULT_GATEWAY "http://127.0.0.1:8090"
#define KEY_RETRIES     10

struct demo_opts {
    const char *gateway;
    uint64_t participants, messages;
    enum address_network network;
    bool json;
    struct cmd_trust_opts trust;
};

static void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld demo [--gateway URL] [--participants N] [--messages M]\n"
            "                    [--network regtest|testnet|mainnet] [--json]\n"
            "                    [--trust-root PEM] (--pcrs FILE | --insecure-skip-attestation)\n"
            "\n"
            "Runs a complete MuSig2 session against a running gateway: keygen with N\n"
            "participants (keys made locally, sent only ECIES-encrypted to the enclaves,\n"
            "each enclave's key verified by its attestation document first), the BIP-86\n"
            "Taproot address of the aggregate key, then a batch of M messages signed,\n"
            "decrypted and verified locally (BIP-340).\n"
            "\n"
            "  --gateway URL       default $KEYMELD_GATEWAY_URL, else " DEFAULT_GATEWAY "\n"
            "  --participants N    2..1000, default 3\n"
            "  --messages M        1..100, default 3\n"
            "  --network NET       address prefix: regtest (bcrt, default), testnet (tb),\n"
            "                      mainnet (bc)\n"
            "  --json              a JSON summary on stdout instead of the narration\n"
            "  (env KEYMELD_API_KEY: the operator API key reserve needs unless the gateway\n"
            "   runs with server.open_reserve, as the development stack does)\n" CMD_TRUST_USAGE
            "\n"
            "Start the stack first: make start (scripts/keymeld-dev start); the development\n"
            "stack's trust: --trust-root DEV_DIR/dev-ca/root.pem --pcrs DEV_DIR/pcrs.json\n"
            "(scripts/keymeld-dev demo passes them).\n"
            "Exit status: 0 every signature verified, 1 failure, 2 usage error.\n");
}

static int parse_demo(struct demo_opts *d, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *net = "regtest";
    memset(d, 0, sizeof(*d));
    d->gateway = getenv("KEYMELD_GATEWAY_URL") ? getenv("KEYMELD_GATEWAY_URL") : DEFAULT_GATEWAY;
    d->participants = 3;
    d->messages = 3;
    cmd_trust_opts_init(&d->trust);
    opts_init(&o, PROG, argc, argv);
    enum opt_result r;
    while (!bad && (r = opts_next(&o)) != OPT_END) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, PROG ": unexpected argument '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            demo_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--gateway", &bad))
            d->gateway = o.value;
        else if (opts_value(&o, "--participants", &bad))
            bad = bad || !opts_uint(&o, "--participants", 2, 1000, &d->participants);
        else if (opts_value(&o, "--messages", &bad))
            bad = bad || !opts_uint(&o, "--messages", 1, 100, &d->messages);
        else if (opts_value(&o, "--network", &bad))
            net = o.value;
        else if (opts_flag(&o, "--json", NULL))
            d->json = true;
        else if (!cmd_trust_option(&o, &d->trust, &bad))
            bad = fprintf(stderr, PROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad)
        bad = !cmd_trust_check(&d->trust, PROG);
    if (!bad) {
        if (strcmp(net, "regtest") == 0)
            d->network = ADDRESS_REGTEST;
        else if (strcmp(net, "testnet") == 0)
            d->network = ADDRESS_TESTNET;
        else if (strcmp(net, "mainnet") == 0)
            d->network = ADDRESS_MAINNET;
        else
            bad = fprintf(stderr, PROG ": --network must be regtest, testnet or mainnet\n") > 0;
    }
    if (bad) {
        fputc('\n', stderr);
        demo_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    return -1;
}

/* Narration, silent with --json. */
static bool quiet;

static void say(const char *fmt, ...) KM_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* Why the enclaves are not usable, from the gateway's readiness report. */
static void print_unavailable(struct rest_client *c)
{
    struct rest_response r;
    struct km_error err;
    if (rest_call(c, &r, "GET", "/health/ready", NULL, NULL, &err) != KM_OK)
        return;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.body, "unavailable"), i, e)
    {
        fprintf(stderr, "  enclave %lld (%s): %s\n",
                (long long)json_integer_value(json_object_get(e, "enclave_id")),
                json_string_value(json_object_get(e, "address")),
                json_string_value(json_object_get(e, "error")));
        const char *hint = json_string_value(json_object_get(e, "hint"));
        if (hint != NULL && hint[0])
            fprintf(stderr, "    %s\n", hint);
    }
    rest_response_clear(&r);
}

/* Step 1: every configured enclave reachable with a known key, as the
 * original demo required. Tries KEY_RETRIES times, one second apart, then
 * fails naming the enclaves that are not. */
static int wait_for_enclaves(struct rest_client *c, const char *gateway)
{
    for (int attempt = 1; attempt <= KEY_RETRIES; attempt++) {
        struct rest_response r;
        struct km_error err;
        int rc = rest_call(c, &r, "GET", "/api/v1/enclaves", NULL, NULL, &err);
        if (rc != KM_OK) {
            fprintf(stderr, "%s\nhint: is the stack running? start it with: make start\n", err.msg);
            return CMD_EXIT_FAIL;
        }
        size_t ready = 0, total = 0, i;
        json_t *e;
        json_array_foreach(json_object_get(r.body, "enclaves"), i, e)
        {
            total++;
            bool ok = json_is_true(json_object_get(e, "healthy")) &&
                      json_string_value(json_object_get(e, "public_key")) != NULL;
            ready += ok;
            if (ok && attempt == 1)
                say("      enclave %lld  %-24s %s\n",
                    (long long)json_integer_value(json_object_get(e, "enclave_id")),
                    json_string_value(json_object_get(e, "address")),
                    json_string_value(json_object_get(e, "public_key")));
        }
        rest_response_clear(&r);
        if (ready >= 2 && ready == total) {
            say("      %zu of %zu enclaves ready\n", ready, total);
            return CMD_EXIT_OK;
        }
        say("      enclave public keys unavailable (attempt %d/%d): %zu of %zu enclaves ready\n",
            attempt, KEY_RETRIES, ready, total);
        if (attempt < KEY_RETRIES)
            clock_sleep_ms(1000);
    }
    fprintf(stderr,
            "Enclave public key still unavailable after %d retries (gateway %s)\n"
            "  check the VSock proxies:     scripts/keymeld-dev vsock-proxy status\n"
            "  check enclaves listen:       grep \"server listening\" logs/enclave-*.log\n"
            "  test one enclave directly:   keymeld enclave ping vsock://2:5000 (or "
            "tcp://127.0.0.1:5000)\n"
            "what the gateway reports:\n",
            KEY_RETRIES, gateway);
    print_unavailable(c);
    return CMD_EXIT_FAIL;
}

/* Deterministic demo messages: SHA-256("keymeld demo message <i> <session>"). */
static void demo_messages(uint8_t (*msgs)[32], size_t n, const char *session)
{
    for (size_t i = 0; i < n; i++) {
        char text[128];
        int len = snprintf(text, sizeof(text), "keymeld demo message %zu %s", i, session);
        if (thash_sha256(msgs[i], text, (size_t)len) != KM_OK)
            abort();
    }
}

/* Two decimals, for a readable JSON summary. */
static double round2(double v)
{
    return (double)(int64_t)(v * 100.0 + 0.5) / 100.0;
}

static double ms_since(uint64_t t0)
{
    return (double)(clock_now_ns() - t0) / 1e6;
}

static int fail(const char *what, const struct km_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    return CMD_EXIT_FAIL;
}

/* The keygen attested every enclave it encrypted to; fetch each one's
 * document again (fresh nonce) to show what was attested. */
static int report_attestation(struct rest_client *c, const struct client_trust *trust,
                              const struct client_keygen *k, json_t *list)
{
    uint32_t ids[1 + 1000];
    const uint8_t *keys[1 + 1000];
    size_t n = 0;
    ids[n] = k->coordinator_enclave_id;
    keys[n++] = k->coordinator_pk;
    for (size_t i = 0; i < k->nusers && n < KM_ARRAY_LEN(ids); i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = ids[j] == k->users[i].enclave_id;
        if (!seen) {
            ids[n] = k->users[i].enclave_id;
            keys[n++] = k->users[i].enclave_pk;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t nonce[CLIENT_ATTEST_NONCE_LEN], key[PROTO_PUBKEY_LEN];
        struct attest_doc doc;
        enum attest_check failed;
        struct km_error err;
        int r = secure_random(nonce, sizeof(nonce));
        if (r != KM_OK) {
            fprintf(stderr, PROG ": no randomness for the attestation nonce\n");
            return CMD_EXIT_FAIL;
        }
        r = client_attest_fetch(c, trust, ids[i], nonce, sizeof(nonce), &doc, &failed, key, &err);
        if (r == KM_OK && memcmp(key, keys[i], PROTO_PUBKEY_LEN) != 0) {
            attest_doc_clear(&doc);
            r = km_error_set(&err, KM_ERR_CRYPTO, 0, "the enclave's key changed during the demo");
        }
        if (r != KM_OK) {
            fprintf(stderr, "enclave %u: attestation failed: %s\n", ids[i], err.msg);
            return CMD_EXIT_FAIL;
        }
        const char *kind = strncmp(doc.module_id, "development", 11) == 0 ? "development" : "nsm";
        char pcr0[2 * ATTEST_PCR_MAX_LEN + 1] = "";
        if (doc.pcrs[0].present)
            hex_encode(pcr0, sizeof(pcr0), doc.pcrs[0].value, doc.pcrs[0].len);
        say("      enclave %u: attested (%s) PCR0 %.16s...\n", ids[i], kind, pcr0);
        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:I}", "enclave_id",
                                              (json_int_t)ids[i], "attestation", kind, "module_id",
                                              doc.module_id, "pcr0", pcr0, "timestamp_ms",
                                              (json_int_t)doc.timestamp_ms));
        attest_doc_clear(&doc);
    }
    return CMD_EXIT_OK;
}

static int run_demo(const struct demo_opts *d)
{
    struct rest_client *c = cmd_rest_client(d->gateway, 30000);
    /* reserve needs an operator API key unless the gateway is in open mode. */
    if (rest_client_set_api_key(c, getenv("KEYMELD_API_KEY")) != KM_OK)
        fprintf(stderr, "keymeld demo: KEYMELD_API_KEY is not a usable API key: ignored\n");
    struct client_keygen k;
    struct client_signing s = {0};
    struct km_error err;
    struct proto_tweak bip86 = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    struct client_trust trust;
    json_t *attested = json_array();
    int rc = CMD_EXIT_FAIL;
    quiet = d->json;
    uint64_t t_all = clock_now_ns();

    /* Before anything else: a demo that cannot verify the enclaves must
     * not start a keygen. */
    if (cmd_trust_load(&trust, &d->trust, PROG) != CMD_EXIT_OK) {
        json_decref(attested);
        rest_client_free(c);
        return CMD_EXIT_FAIL;
    }

    say("KeyMeld demo: %llu participants, %llu message(s), gateway %s\n",
        (unsigned long long)d->participants, (unsigned long long)d->messages, d->gateway);
    say("[1/5] enclave public keys\n");
    if (wait_for_enclaves(c, d->gateway) != CMD_EXIT_OK) {
        client_trust_release(&trust);
        json_decref(attested);
        rest_client_free(c);
        return CMD_EXIT_FAIL;
    }
    if (client_keygen_new(&k, (size_t)d->participants, &bip86) != KM_OK) {
        client_trust_release(&trust);
        json_decref(attested);
        rest_client_free(c);
        fprintf(stderr, PROG ": cannot make keys (no randomness)\n");
        return CMD_EXIT_FAIL;
    }
    k.trust = &trust;

    uint64_t t_keygen = clock_now_ns();
    say("[2/5] keygen %s\n", k.id_s);
    if (client_keygen_reserve(c, &k, 3600, &err) != KM_OK) {
        rc = fail("reserve failed", &err);
        goto out;
    }
    say("      reserved: coordinator enclave %u; participants spread over the enclaves\n",
        k.coordinator_enclave_id);
    if (client_keygen_initialize(c, &k, &err) != KM_OK) {
        rc = fail("initialize failed", &err);
        goto out;
    }
    for (size_t i = 1; i < k.nusers; i++) {
        if (client_keygen_register(c, &k, i, &err) != KM_OK) {
            rc = fail("registration failed", &err);
            goto out;
        }
        say("      participant %zu of %zu registered (key encrypted to enclave %u)\n", i + 1,
            k.nusers, k.users[i].enclave_id);
    }
    say("[3/5] waiting for the aggregate key...\n");
    if (client_keygen_wait(c, &k, 60000, &err) != KM_OK) {
        rc = fail("keygen failed", &err);
        goto out;
    }
    double keygen_ms = ms_since(t_keygen);
    char agg[2 * PROTO_PUBKEY_LEN + 1], address[ADDRESS_STR_MAX];
    hex_encode(agg, sizeof(agg), k.aggregate, PROTO_PUBKEY_LEN);
    if (address_taproot(address, sizeof(address), d->network, k.xonly) != KM_OK)
        snprintf(address, sizeof(address), "?");
    say("      aggregate key (BIP-86 tweaked, checked against the participants' keys):\n"
        "        %s\n"
        "      P2TR address: %s\n",
        agg, address);
    if (trust.insecure_skip)
        say("      enclave attestation NOT verified (--insecure-skip-attestation)\n");
    else if (report_attestation(c, &trust, &k, attested) != CMD_EXIT_OK)
        goto out;

    uint8_t(*msgs)[32] = calloc(d->messages, 32);
    demo_messages(msgs, (size_t)d->messages, k.id_s);
    int sr = client_signing_new(&s, (const uint8_t(*)[32])msgs, (size_t)d->messages);
    free(msgs);
    if (sr != KM_OK) {
        fprintf(stderr, PROG ": cannot prepare the signing\n");
        goto out;
    }
    uint64_t t_sign = clock_now_ns();
    say("[4/5] signing %zu message(s) in session %s...\n", s.nitems, s.id_s);
    if (client_sign_create(c, &k, &s, 600, 30000, &err) != KM_OK ||
        (!client_signing_done(&s) && client_sign_wait(c, &k, &s, 0, 60000, &err) != KM_OK)) {
        rc = fail("signing failed", &err);
        goto out;
    }
    double sign_ms = ms_since(t_sign);
    say("[5/5] %zu of %zu BIP-340 signatures decrypted and verified under the aggregate key\n",
        s.nitems, s.nitems);
    for (size_t i = 0; i < s.nitems && i < 3; i++) {
        char sig[2 * PROTO_SIG_LEN + 1];
        hex_encode(sig, sizeof(sig), s.sigs[i], PROTO_SIG_LEN);
        say("      signature %zu: %s\n", i, sig);
    }
    double total_ms = ms_since(t_all);
    if (d->json) {
        json_t *o = json_pack(
            "{s:b, s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f}", "ok", 1, "keygen_session_id",
            k.id_s, "signing_session_id", s.id_s, "aggregate_public_key", agg, "address", address,
            "participants", (int)k.nusers, "signatures_verified", (int)s.nitems, "keygen_ms",
            round2(keygen_ms), "signing_ms", round2(sign_ms), "total_ms", round2(total_ms));
        json_object_set_new(o, "attestation", json_incref(attested));
        json_object_set_new(o, "attestation_verified", json_boolean(!trust.insecure_skip));
        char *js = json_dumps(o, JSON_COMPACT);
        printf("%s\n", js ? js : "{}");
        free(js);
        json_decref(o);
    } else {
        say("Summary:\n"
            "  keygen  %8.1f ms  (reserve to verified aggregate key, %zu participants)\n"
            "  signing %8.1f ms  (%zu message(s), request to verified signatures)\n"
            "  total   %8.1f ms\n"
            "KeyMeld demo complete.\n",
            keygen_ms, k.nusers, sign_ms, s.nitems, total_ms);
    }
    rc = CMD_EXIT_OK;
out:
    client_signing_clear(&s);
    client_keygen_clear(&k);
    client_trust_release(&trust);
    json_decref(attested);
    rest_client_free(c);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    struct demo_opts d;
    int r = parse_demo(&d, argc, argv);
    return r >= 0 ? r : run_demo(&d);
}
