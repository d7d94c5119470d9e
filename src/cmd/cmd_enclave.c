/*
 * cmd_enclave.c - `keymeld enclave ping ADDRESS`: the seed's connectivity
 * test ("socat - VSOCK-CONNECT:2:5000"), with the product's own protocol.
 *
 * Connects to one enclave directly (no gateway), sends `ping`, then
 * `get_public_info`, and prints the round trip, the enclave id and its
 * public key. On failure it prints the error the gateway would log
 * ("Command failed to CID 3:5000: Enclave communication error: Failed to
 * connect: No such device (os error 19)") and the seed's fix as a hint.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/policy.h"
#include "attest/verify.h"
#include "client/rest.h"
#include "cmd/opts.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "protocol/commands.h"
#include "transport/hint.h"
#include "transport/pool.h"
#include "common/banned.h"

#define PROG "keymeld enclave ping"

static void ping_usage(FILE *out)
{
    fprintf(out, "usage: keymeld enclave ping ADDRESS [--count N] [--timeout MS] [--production] "
                 "[--json]\n"
                 "                            [--pcrs FILE] [--trust-root PEM]\n"
                 "\n"
                 "Connects to one enclave, sends ping and get_public_info, prints the round trip,\n"
                 "the enclave id and its public key, then asks for an attestation document with a\n"
                 "fresh nonce and shows its provider, module id and PCRs; with --pcrs it verifies\n"
                 "the document (root, chain, PCRs, nonce, key) and fails when it does not pass.\n"
                 "ADDRESS is vsock://CID:PORT, tcp://HOST:PORT\n"
                 "or unix:///PATH, e.g. vsock://2:5000 (an enclave on the development host) or\n"
                 "tcp://127.0.0.1:9000 (the same enclave through its socat debug proxy).\n"
                 "\n"
                 "  --count N       pings to send (default 1)\n"
                 "  --timeout MS    per request, connect included (default 5000)\n"
                 "  --production    give production advice on failure (CIDs from nitro-cli);\n"
                 "                  also when KEYMELD_ENVIRONMENT=production\n"
                 "  --json          one JSON object on stdout\n"
                 "  --pcrs FILE     PCR policy to verify against [KEYMELD_PCR_POLICY]\n"
                 "  --trust-root PEM  root certificate [KEYMELD_TRUST_ROOT] (default: the AWS\n"
                 "                  Nitro Enclaves root)\n"
                 "\n"
                 "Exit status: 0 reachable, 1 not reachable, 2 usage error.\n");
}

struct ping_opts {
    const char *address;
    uint64_t count, timeout_ms;
    bool production, json;
    const char *pcrs, *trust_root;
};

static int parse_ping(struct ping_opts *p, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *env = getenv("KEYMELD_ENVIRONMENT");
    memset(p, 0, sizeof(*p));
    p->count = 1;
    p->timeout_ms = 5000;
    p->production = env != NULL && (strcmp(env, "production") == 0 || strcmp(env, "prod") == 0);
    p->pcrs = getenv("KEYMELD_PCR_POLICY");
    p->trust_root = getenv("KEYMELD_TRUST_ROOT");
    opts_init(&o, PROG, argc, argv);
    enum opt_result r;
    while (!bad && (r = opts_next(&o)) != OPT_END) {
        if (r == OPT_OPERAND && p->address == NULL)
            p->address = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, PROG ": one ADDRESS only\n") > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            ping_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--count", &bad))
            bad = bad || !opts_uint(&o, "--count", 1, 1000, &p->count);
        else if (opts_value(&o, "--timeout", &bad))
            bad = bad || !opts_uint(&o, "--timeout", 1, 600000, &p->timeout_ms);
        else if (opts_flag(&o, "--production", NULL))
            p->production = true;
        else if (opts_flag(&o, "--json", NULL))
            p->json = true;
        else if (opts_value(&o, "--pcrs", &bad))
            p->pcrs = o.value;
        else if (opts_value(&o, "--trust-root", &bad))
            p->trust_root = o.value;
        else
            bad = fprintf(stderr, PROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && p->address == NULL)
        bad = fprintf(stderr, PROG ": ADDRESS is required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        ping_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    return -1; /* parsed: run */
}

static void print_failure(const struct ping_opts *p, const struct tp_addr *addr,
                          const struct km_error *err)
{
    char hint[600];
    tp_error_hint(hint, sizeof(hint), err, addr, -1, !p->production);
    if (p->json) {
        json_t *o = json_pack("{s:s, s:b, s:s, s:s}", "address", p->address, "ok", 0, "error",
                              err->msg, "hint", hint);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
        return;
    }
    fprintf(stderr, "%s\n", err->msg);
    if (hint[0])
        fprintf(stderr, "%s\n", hint);
}

/* What ping learned about the enclave's attestation. */
struct ping_attest {
    char provider[PROTO_ATTESTATION_NAME_MAX + 1];
    bool have_doc;
    struct attest_doc doc;
    const char *verdict; /* "verified", "FAILED", "not checked (no --pcrs)", "none" */
    char error[600];
};

/* Verifies the document against --pcrs / --trust-root, the nonce and the
 * key get_public_info reported. */
static int ping_verify(struct ping_attest *a, const struct ping_opts *p, const uint8_t *doc,
                       size_t doc_len, const uint8_t *nonce, size_t nonce_len,
                       const uint8_t key[PROTO_PUBKEY_LEN])
{
    struct attest_pcr_policy pol;
    struct attest_verify_opts vo = {.nonce = nonce,
                                    .nonce_len = nonce_len,
                                    .public_key = key,
                                    .public_key_len = PROTO_PUBKEY_LEN,
                                    .max_age_secs = 300,
                                    .pcrs = &pol};
    struct km_error err;
    uint8_t *root = NULL;
    size_t root_len = 0;
    enum attest_check failed = ATTEST_CHECK_NONE;
    int r =
        p->trust_root != NULL && p->trust_root[0] != '\0'
            ? attest_root_load(&root, &root_len, p->trust_root, &err)
            : attest_root_from_pem(&root, &root_len, (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                   strlen(attest_aws_nitro_root_g1_pem), &err);
    if (r == KM_OK)
        r = attest_pcr_policy_load(&pol, p->pcrs, &err);
    if (r == KM_OK) {
        vo.root_der = root;
        vo.root_der_len = root_len;
        struct attest_doc checked;
        r = attest_verify(&checked, &failed, doc, doc_len, &vo, &err);
        attest_doc_clear(&checked);
    }
    free(root);
    a->verdict = r == KM_OK ? "verified" : "FAILED";
    if (r != KM_OK)
        snprintf(a->error, sizeof(a->error), "%s", err.msg);
    return r;
}

/* get_attestation with a fresh nonce. KM_OK unless verification was asked
 * for and failed (or the enclave could not be asked). */
static int ping_attestation(struct ping_attest *a, const struct ping_opts *p, struct pool *pool,
                            const struct proto_public_info *info)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->provider, sizeof(a->provider), "%s",
             info->attestation[0] ? info->attestation : "none");
    a->verdict = "none";
    if (strcmp(a->provider, "none") == 0)
        return p->pcrs != NULL ? KM_ERR_STATE : KM_OK;
    if (!info->has_public_key) {
        a->verdict = "not checked (no identity key until the gateway configures the enclave)";
        return KM_OK;
    }
    uint8_t nonce[32];
    struct km_error err;
    if (secure_random(nonce, sizeof(nonce)) != KM_OK)
        return KM_ERR_IO;
    struct proto_get_attestation_args args = {.nonce = {.p = nonce, .len = sizeof(nonce)}};
    json_t *jargs = proto_get_attestation_args_encode(&args);
    struct env_reply reply;
    struct proto_attestation_result res = {0};
    int r =
        pool_request(pool, &reply, "get_attestation", NULL, jargs, (uint32_t)p->timeout_ms, &err);
    json_decref(jargs);
    if (r == KM_OK) {
        r = proto_attestation_result_decode(&res, reply.result, &err);
        env_reply_clear(&reply);
    }
    if (r == KM_OK)
        r = attest_doc_parse(&a->doc, res.document.p, res.document.len, &err);
    if (r != KM_OK) {
        a->verdict = "FAILED";
        snprintf(a->error, sizeof(a->error), "get_attestation: %s", err.msg);
        proto_attestation_result_clear(&res);
        return r;
    }
    a->have_doc = true;
    a->verdict = "not checked (no --pcrs)";
    if (p->pcrs != NULL && p->pcrs[0] != '\0')
        r = ping_verify(a, p, res.document.p, res.document.len, nonce, sizeof(nonce),
                        info->public_key);
    proto_attestation_result_clear(&res);
    return r;
}

static json_t *pcr_hex_json(const struct attest_doc *d, unsigned i)
{
    char hex[2 * ATTEST_PCR_MAX_LEN + 1];
    if (!d->pcrs[i].present)
        return json_null();
    return json_string(hex_encode(hex, sizeof(hex), d->pcrs[i].value, d->pcrs[i].len));
}

static json_t *ping_attest_json(const struct ping_attest *a)
{
    json_t *o = json_pack("{s:s, s:s}", "provider", a->provider, "verdict", a->verdict);
    if (a->error[0])
        json_object_set_new(o, "error", json_string(a->error));
    if (a->have_doc) {
        json_object_set_new(o, "module_id", json_string(a->doc.module_id));
        json_object_set_new(o, "pcrs",
                            json_pack("{s:o, s:o, s:o, s:o}", "0", pcr_hex_json(&a->doc, 0), "1",
                                      pcr_hex_json(&a->doc, 1), "2", pcr_hex_json(&a->doc, 2), "8",
                                      pcr_hex_json(&a->doc, 8)));
    }
    return o;
}

static void print_attest(const struct ping_attest *a)
{
    printf("attestation: %s", a->provider);
    if (a->have_doc) {
        printf(", module %s\n", a->doc.module_id);
        static const unsigned shown[] = {0, 1, 2, 8};
        for (size_t i = 0; i < KM_ARRAY_LEN(shown); i++) {
            json_t *h = pcr_hex_json(&a->doc, shown[i]);
            if (json_is_string(h))
                printf("  PCR%u %s\n", shown[i], json_string_value(h));
            json_decref(h);
        }
    } else {
        printf("\n");
    }
    printf("  verified: %s%s%s\n", a->verdict, a->error[0] ? ": " : "", a->error);
}

static int run_ping(const struct ping_opts *p)
{
    struct tp_addr addr;
    struct km_error err;
    if (tp_addr_parse(&addr, p->address, strlen(p->address), &err) != KM_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return CMD_EXIT_USAGE;
    }
    char desc[TP_ADDR_STR_MAX];
    tp_addr_describe(desc, sizeof(desc), &addr);
    /* One attempt per request: a ping reports what happened, not what a
     * retry would hide. */
    struct pool_config pc = {.connect_timeout_ms = (uint32_t)p->timeout_ms,
                             .request_timeout_ms = (uint32_t)p->timeout_ms,
                             .max_attempts = 1};
    struct pool *pool = pool_new(&addr, &pc);
    json_t *rtts = json_array();
    int rc = CMD_EXIT_OK;
    if (!p->json && strcmp(p->address, desc) == 0)
        printf("PING %s\n", p->address);
    else if (!p->json)
        printf("PING %s (%s)\n", p->address, desc);
    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t us;
        if (pool_ping(pool, &us, (uint32_t)p->timeout_ms, &err) != KM_OK) {
            print_failure(p, &addr, &err);
            rc = CMD_EXIT_FAIL;
            goto out;
        }
        json_array_append_new(rtts, json_real((double)us / 1000.0));
        if (!p->json)
            printf("pong from %s: time=%.2f ms\n", desc, (double)us / 1000.0);
    }

    struct env_reply reply;
    struct proto_public_info info;
    if (pool_request(pool, &reply, "get_public_info", NULL, NULL, (uint32_t)p->timeout_ms, &err) !=
        KM_OK) {
        print_failure(p, &addr, &err);
        rc = CMD_EXIT_FAIL;
        goto out;
    }
    if (proto_public_info_decode(&info, reply.result, &err) != KM_OK) {
        env_reply_clear(&reply);
        fprintf(stderr, "%s answered get_public_info with something else: %s\n", desc, err.msg);
        rc = CMD_EXIT_FAIL;
        goto out;
    }
    env_reply_clear(&reply);
    struct ping_attest att;
    if (ping_attestation(&att, p, pool, &info) != KM_OK)
        rc = CMD_EXIT_FAIL;
    if (strcmp(att.provider, "none") == 0 && p->pcrs != NULL)
        snprintf(att.error, sizeof(att.error), "the enclave runs without attestation");
    char pk[2 * PROTO_PUBKEY_LEN + 1] = "(none yet)";
    if (info.has_public_key)
        hex_encode(pk, sizeof(pk), info.public_key, PROTO_PUBKEY_LEN);
    if (p->json) {
        json_t *o = json_pack("{s:s, s:b, s:O, s:s, s:I, s:I, s:s, s:{s:i, s:i}}", "address",
                              p->address, "ok", 1, "rtt_ms", rtts, "public_key", pk, "key_epoch",
                              (json_int_t)info.key_epoch, "uptime_secs",
                              (json_int_t)info.uptime_secs, "version", info.version,
                              "active_sessions", "keygen", (int)info.active_sessions.keygen,
                              "signing", (int)info.active_sessions.signing);
        if (info.has_enclave_id)
            json_object_set_new(o, "enclave_id", json_integer(info.enclave_id));
        json_object_set_new(o, "attestation", ping_attest_json(&att));
        json_object_set_new(
            o, "identity_key",
            json_pack("{s:s, s:s, s:s}", "state", info.key_state[0] ? info.key_state : "ready",
                      "sealer", info.sealer[0] ? info.sealer : "none", "origin", info.key_origin));
        if (rc != CMD_EXIT_OK)
            json_object_set_new(o, "ok", json_false());
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        char id[16] = "?";
        if (info.has_enclave_id)
            snprintf(id, sizeof(id), "%u", info.enclave_id);
        printf("enclave %s, version %s, public key %s, key epoch %llu, up %llu s, sessions: %u "
               "keygen, %u signing\n",
               id, info.version, pk, (unsigned long long)info.key_epoch,
               (unsigned long long)info.uptime_secs, info.active_sessions.keygen,
               info.active_sessions.signing);
        printf("identity key: %s, sealer %s%s%s\n",
               info.has_public_key ? "ready" : "awaiting configure (the gateway sends it)",
               info.sealer[0] ? info.sealer : "none", info.key_origin[0] ? ", " : "",
               info.key_origin);
        print_attest(&att);
    }
    attest_doc_clear(&att.doc);
    proto_public_info_clear(&info);
out:
    json_decref(rtts);
    pool_free(pool);
    return rc;
}

static int enclave_ping(int argc, char **argv)
{
    struct ping_opts p;
    int r = parse_ping(&p, argc, argv);
    return r >= 0 ? r : run_ping(&p);
}

/* ---- keymeld enclave rotate-key ID ---------------------------------------- */

static void rotate_usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld enclave rotate-key ENCLAVE_ID [--gateway URL] [--timeout SECS]\n"
            "\n"
            "Rotates the enclave's identity key through its gateway (an operator route the\n"
            "gateway answers from its own host only): the enclave makes and seals a new key,\n"
            "re-encrypts every completed keygen's ciphertexts to it, then switches to it; the\n"
            "old sealed key is retired last. Refused while keygens using the enclave are in\n"
            "progress. An interrupted rotation resumes by itself when the gateway starts, or\n"
            "by running this again.\n"
            "\n"
            "  --gateway URL   default $KEYMELD_GATEWAY_URL, else http://127.0.0.1:8090\n"
            "  --timeout SECS  how long to wait for the rotation (default 600)\n"
            "\n"
            "Exit status: 0 rotated, 1 failure, 2 usage error.\n");
}

static int enclave_rotate_key(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *id = NULL;
    const char *gateway = getenv("KEYMELD_GATEWAY_URL");
    uint64_t timeout = 600;
    opts_init(&o, "keymeld enclave rotate-key", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && id == NULL)
            id = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld enclave rotate-key: one ENCLAVE_ID only\n") > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            rotate_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else if (opts_value(&o, "--timeout", &bad))
            bad = bad || !opts_uint(&o, "--timeout", 1, 86400, &timeout);
        else
            bad = fprintf(stderr, "keymeld enclave rotate-key: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    if (!bad && (id == NULL || strspn(id, "0123456789") != strlen(id) || strlen(id) > 10))
        bad =
            fprintf(stderr, "keymeld enclave rotate-key: ENCLAVE_ID (a number) is required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        rotate_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    struct rest_client *c =
        cmd_rest_client(gateway ? gateway : "http://127.0.0.1:8090", (uint32_t)(timeout * 1000));
    struct rest_response rr;
    struct km_error err;
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/admin/enclaves/%s/rotate-key", id);
    int rc = CMD_EXIT_FAIL;
    if (rest_call(c, &rr, "POST", path, NULL, NULL, &err) != KM_OK) {
        fprintf(stderr, "keymeld enclave rotate-key: %s\n", err.msg);
    } else {
        if (rr.status == 200) {
            json_t *b = rr.body;
            printf("enclave %s: key epoch %lld -> %lld, public key %s, %lld keygen(s) "
                   "re-encrypted%s\n",
                   id, (long long)json_integer_value(json_object_get(b, "old_key_epoch")),
                   (long long)json_integer_value(json_object_get(b, "key_epoch")),
                   json_string_value(json_object_get(b, "public_key")),
                   (long long)json_integer_value(json_object_get(b, "keygens_reencrypted")),
                   json_is_true(json_object_get(b, "resumed")) ? " (an interrupted rotation "
                                                                 "finished)"
                                                               : "");
            rc = CMD_EXIT_OK;
        } else {
            fprintf(stderr, "keymeld enclave rotate-key: HTTP %ld: %s\n", rr.status,
                    rest_error_message(&rr));
        }
        rest_response_clear(&rr);
    }
    rest_client_free(c);
    return rc;
}

int cmd_enclave(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"ping", "ADDRESS [--count N] [--json]", "connect to one enclave, ping it, show its key",
         enclave_ping},
        {"rotate-key", "ENCLAVE_ID [--gateway URL]",
         "rotate an enclave's identity key (re-encrypts every keygen to the new key)",
         enclave_rotate_key},
    };
    return cmd_dispatch("keymeld enclave", sub, KM_ARRAY_LEN(sub), argc, argv);
}
