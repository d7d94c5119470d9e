/*
 * cmd_attest.c - enclave attestation on the command line
 * (docs/ATTESTATION.md):
 *
 *   keymeld attest ENCLAVE_ID [--gateway URL] [--nonce HEX|--no-nonce] ...
 *       fetches one enclave's document through the gateway, verifies it and
 *       prints what it attests; exit 0 only when it is verified against a
 *       pinned PCR policy.
 *   keymeld attest verify FILE [--root PEM] [--pcrs FILE] [--at UNIX] ...
 *       verifies a saved document (base64 or raw CBOR) offline.
 *   keymeld dev-ca init DIR
 *       creates the development CA the development provider signs with.
 *
 * Also the trust options shared by the commands that encrypt to enclave
 * keys (keygen, demo): --trust-root, --pcrs, --insecure-skip-attestation.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/doc.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "client/attest.h"
#include "cmd/opts.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define DEFAULT_GATEWAY "http://127.0.0.1:8090"
#define INPUT_MAX       (64u * 1024u) /* a saved document, base64 or raw */
#define HEX_MAX         (2 * ATTEST_PUBLIC_KEY_MAX + 1)

/* ---- trust options (keygen, demo) ------------------------------------------ */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

void cmd_trust_opts_init(struct cmd_trust_opts *t)
{
    memset(t, 0, sizeof(*t));
    t->root = env_nonempty("KEYMELD_TRUST_ROOT");
    t->pcrs = env_nonempty("KEYMELD_PCR_POLICY");
    t->env_insecure = env_true("KEYMELD_INSECURE_SKIP_ATTESTATION");
}

bool cmd_trust_option(struct opts *o, struct cmd_trust_opts *t, bool *bad)
{
    if (opts_value(o, "--trust-root", bad)) {
        t->root = o->value;
        return true;
    }
    if (opts_value(o, "--pcrs", bad)) {
        t->pcrs = o->value;
        t->pcrs_flag = true;
        return true;
    }
    if (opts_flag(o, "--insecure-skip-attestation", NULL)) {
        t->insecure_flag = true;
        return true;
    }
    return false;
}

bool cmd_trust_check(const struct cmd_trust_opts *t, const char *prog)
{
    if (t->insecure_flag && t->pcrs_flag) {
        fprintf(stderr, "%s: --pcrs and --insecure-skip-attestation contradict each other\n", prog);
        return false;
    }
    return true;
}

int cmd_trust_load(struct client_trust *out, const struct cmd_trust_opts *t, const char *prog)
{
    struct km_error err;
    /* A policy given in any way beats the environment's insecure switch:
     * a stale KEYMELD_INSECURE_SKIP_ATTESTATION must not silently win. */
    if (t->insecure_flag || (t->env_insecure && t->pcrs == NULL)) {
        client_trust_insecure(out);
        fprintf(stderr,
                "\n"
                "  ************************************************************************\n"
                "  *  WARNING: attestation is NOT verified (%s).\n"
                "  *  Keys are encrypted to enclave keys nobody has checked: whoever runs\n"
                "  *  the gateway host can substitute its own key and read them.\n"
                "  *  For tests and ATTESTATION=none stacks only.\n"
                "  ************************************************************************\n"
                "\n",
                t->insecure_flag ? "--insecure-skip-attestation"
                                 : "KEYMELD_INSECURE_SKIP_ATTESTATION");
        return CMD_EXIT_OK;
    }
    if (client_trust_load(out, t->root, t->pcrs, &err) != KM_OK) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return CMD_EXIT_FAIL;
    }
    return CMD_EXIT_OK;
}

/* ---- printing a document ------------------------------------------------------ */

/* "2022-09-15T17:43:28.848Z", or "?" when out of range. */
static void iso_time(char *out, size_t cap, uint64_t ms)
{
    struct tm tm;
    time_t s = (time_t)(ms / 1000);
    if (ms / 1000 > (uint64_t)253402300799 /* 9999-12-31 */ || gmtime_r(&s, &tm) == NULL) {
        snprintf(out, cap, "?");
        return;
    }
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

static bool printable(const struct attest_bytes *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] < 0x20 || b->data[i] > 0x7e)
            return false;
    return b->len > 0;
}

static bool all_zero(const struct attest_pcr *p)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < p->len; i++)
        acc |= p->value[i];
    return acc == 0;
}

static bool debug_mode(const struct attest_doc *d)
{
    for (int i = 0; i < 3; i++)
        if (!d->pcrs[i].present || !all_zero(&d->pcrs[i]))
            return false;
    return true;
}

/* "development" for the development provider's documents, else "nsm". */
static const char *doc_kind(const struct attest_doc *d)
{
    return strncmp(d->module_id, "development", 11) == 0 ? "development" : "nsm";
}

static void print_bytes(const char *label, const struct attest_bytes *b, bool as_text)
{
    char hex[HEX_MAX];
    if (!b->present)
        printf("%-13s (none)\n", label);
    else if (as_text && printable(b))
        printf("%-13s %.*s\n", label, (int)b->len, (const char *)b->data);
    else if (b->len == 0)
        printf("%-13s (empty)\n", label);
    else
        printf("%-13s %s\n", label, hex_encode(hex, sizeof(hex), b->data, b->len));
}

static void print_doc(const struct attest_doc *d)
{
    char when[48], hex[2 * ATTEST_PCR_MAX_LEN + 1];
    static const int shown[] = {0, 1, 2, 8};
    iso_time(when, sizeof(when), d->timestamp_ms);
    printf("module_id:    %s\n", d->module_id);
    printf("timestamp:    %s (%llu ms)\n", when, (unsigned long long)d->timestamp_ms);
    printf("digest:       %s\n", d->digest);
    for (size_t i = 0; i < KM_ARRAY_LEN(shown); i++) {
        const struct attest_pcr *p = &d->pcrs[shown[i]];
        char label[16];
        snprintf(label, sizeof(label), "PCR%d:", shown[i]);
        if (p->present)
            printf("%-13s %s\n", label, hex_encode(hex, sizeof(hex), p->value, p->len));
        else
            printf("%-13s (absent)\n", label);
    }
    if (debug_mode(d))
        printf("debug mode:   yes (PCR0, PCR1 and PCR2 all zero)\n");
    print_bytes("public_key:", &d->public_key, false);
    print_bytes("user_data:", &d->user_data, true);
    print_bytes("nonce:", &d->nonce, false);
    printf("certificates: leaf + %zu in the bundle (root first)\n", d->cabundle_len);
}

static json_t *bytes_json(const struct attest_bytes *b)
{
    char hex[HEX_MAX];
    if (!b->present)
        return json_null();
    return json_string(b->len ? hex_encode(hex, sizeof(hex), b->data, b->len) : "");
}

/* Sets the document's fields on o; d NULL (undecodable) sets them null. */
static void doc_json(json_t *o, const struct attest_doc *d)
{
    if (d == NULL) {
        static const char *const keys[] = {"module_id", "timestamp_ms", "timestamp",
                                           "digest",    "pcrs",         "public_key",
                                           "user_data", "nonce",        "cabundle_len"};
        for (size_t i = 0; i < KM_ARRAY_LEN(keys); i++)
            json_object_set_new(o, keys[i], json_null());
        return;
    }
    char when[48], hex[2 * ATTEST_PCR_MAX_LEN + 1], idx[8];
    iso_time(when, sizeof(when), d->timestamp_ms);
    json_t *pcrs = json_object();
    /* PCR0-2 and 8 always (a debug enclave's zeros are the point), the
     * others when they hold anything. */
    for (int i = 0; i < ATTEST_MAX_PCRS; i++) {
        const struct attest_pcr *p = &d->pcrs[i];
        if (!p->present || (all_zero(p) && i > 2 && i != 8))
            continue;
        snprintf(idx, sizeof(idx), "%d", i);
        json_object_set_new(pcrs, idx, json_string(hex_encode(hex, sizeof(hex), p->value, p->len)));
    }
    json_object_set_new(o, "module_id", json_string(d->module_id));
    json_object_set_new(o, "timestamp_ms", json_integer((json_int_t)d->timestamp_ms));
    json_object_set_new(o, "timestamp", json_string(when));
    json_object_set_new(o, "digest", json_string(d->digest));
    json_object_set_new(o, "pcrs", pcrs);
    json_object_set_new(o, "public_key", bytes_json(&d->public_key));
    json_object_set_new(o, "user_data", bytes_json(&d->user_data));
    json_object_set_new(o, "nonce", bytes_json(&d->nonce));
    json_object_set_new(o, "cabundle_len", json_integer((json_int_t)d->cabundle_len));
    json_object_set_new(o, "debug_mode", json_boolean(debug_mode(d)));
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
}

/* The verifier's message without a leading "<check>: " (we print the
 * check's name ourselves). */
static const char *check_message(enum attest_check c, const char *msg)
{
    const char *name = attest_check_name(c);
    size_t n = strlen(name);
    if (strncmp(msg, name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static bool parse_hex_arg(uint8_t *out, size_t cap, size_t *len, const char *prog, const char *name,
                          const char *v)
{
    if (v == NULL)
        return false;
    if (v[0] == '\0' || hex_decode(out, cap, len, v, strlen(v)) != KM_OK) {
        fprintf(stderr, "%s: %s must be 1..%zu bytes of hex\n", prog, name, cap);
        return false;
    }
    return true;
}

static int load_root(uint8_t **der, size_t *der_len, const char *path, struct km_error *err)
{
    if (path != NULL)
        return attest_root_load(der, der_len, path, err);
    return attest_root_from_pem(der, der_len, (const uint8_t *)attest_aws_nitro_root_g1_pem,
                                strlen(attest_aws_nitro_root_g1_pem), err);
}

static void attest_usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld attest ENCLAVE_ID [--gateway URL] [--nonce HEX|--no-nonce]\n"
            "                      [--trust-root PEM] [--pcrs FILE] [--allow-debug] [--json]\n"
            "       keymeld attest verify FILE [--root PEM] [--pcrs FILE] [--at UNIX]\n"
            "                      [--nonce HEX] [--public-key HEX] [--max-age SECS]\n"
            "                      [--allow-debug] [--json]\n"
            "\n"
            "keymeld attest ENCLAVE_ID fetches the enclave's attestation document through the\n"
            "gateway (GET /api/v1/enclaves/ID/attestation) with a fresh nonce, verifies it and\n"
            "prints what it attests: module, time, PCRs, the enclave's public key. Exit 0 only\n"
            "when every check passes against a pinned PCR policy; without one it still prints\n"
            "the document (to find the PCRs to pin) but exits 1.\n"
            "\n"
            "  --gateway URL       default $KEYMELD_GATEWAY_URL, else " DEFAULT_GATEWAY "\n"
            "  --nonce HEX         the nonce to have attested (1..%u bytes; default: 32 fresh\n"
            "                      random bytes)\n"
            "  --no-nonce          ask for a document without a nonce\n"
            "  --trust-root PEM    default $KEYMELD_TRUST_ROOT, else the AWS Nitro root\n"
            "  --pcrs FILE         PCR policy; default $KEYMELD_PCR_POLICY\n"
            "  --allow-debug       accept a debug-mode enclave (PCR0-2 all zero)\n"
            "  --json              one JSON object on stdout\n"
            "\n"
            "keymeld attest verify FILE checks a saved document (base64 or raw CBOR; FILE -\n"
            "reads stdin, at most 64 KiB) and prints its fields, or the check that failed.\n"
            "\n"
            "  --root PEM          the pinned root (default: the AWS Nitro Enclaves Root-G1)\n"
            "  --pcrs FILE         PCR policy (default: PCRs are not checked)\n"
            "  --at UNIX           verification time in seconds (default: now)\n"
            "  --nonce HEX         the nonce the document must carry\n"
            "  --public-key HEX    the public key the document must carry\n"
            "  --max-age SECS      the document at most this old (default: not checked)\n"
            "  --allow-debug       accept a debug-mode enclave\n"
            "  --json              {\"ok\", \"failed_check\", \"error\", \"module_id\", ...}\n"
            "\n"
            "Exit status: 0 verified, 1 not verified (or not fetched), 2 usage error.\n",
            CLIENT_ATTEST_NONCE_LEN);
}

static int usage_error(void)
{
    fputc('\n', stderr);
    attest_usage(stderr);
    return CMD_EXIT_USAGE;
}

/* ---- keymeld attest verify FILE ---------------------------------------------- */

#define VPROG "keymeld attest verify"

struct verify_args {
    const char *file, *root, *pcrs;
    uint64_t at, max_age;
    bool allow_debug, json;
    uint8_t nonce[ATTEST_NONCE_MAX];
    size_t nonce_len;
    bool has_nonce;
    uint8_t public_key[ATTEST_PUBLIC_KEY_MAX];
    size_t public_key_len;
    bool has_public_key;
};

static int parse_verify(struct verify_args *a, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    memset(a, 0, sizeof(*a));
    opts_init(&o, VPROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && a->file == NULL)
            a->file = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, VPROG ": one FILE only, not also '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            attest_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--root", &bad))
            a->root = o.value;
        else if (opts_value(&o, "--pcrs", &bad))
            a->pcrs = o.value;
        else if (opts_value(&o, "--at", &bad))
            bad = bad || !opts_uint(&o, "--at", 1, (uint64_t)253402300799, &a->at);
        else if (opts_value(&o, "--max-age", &bad))
            bad = bad || !opts_uint(&o, "--max-age", 1, (uint64_t)100 * 365 * 86400, &a->max_age);
        else if (opts_value(&o, "--nonce", &bad))
            bad = bad || !(a->has_nonce = parse_hex_arg(a->nonce, sizeof(a->nonce), &a->nonce_len,
                                                        VPROG, "--nonce", o.value));
        else if (opts_value(&o, "--public-key", &bad))
            bad = bad || !(a->has_public_key =
                               parse_hex_arg(a->public_key, sizeof(a->public_key),
                                             &a->public_key_len, VPROG, "--public-key", o.value));
        else if (opts_flag(&o, "--allow-debug", NULL))
            a->allow_debug = true;
        else if (opts_flag(&o, "--json", NULL))
            a->json = true;
        else
            bad = fprintf(stderr, VPROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && a->file == NULL)
        bad = fprintf(stderr, VPROG ": FILE is required (- for stdin)\n") > 0;
    return bad ? usage_error() : -1;
}

/* Reads path ("-" = stdin), at most INPUT_MAX bytes; *out malloc'ed. */
static int read_input(uint8_t **out, size_t *len, const char *path, struct km_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "%.200s: cannot open: %s", path,
                            strerror(errno));
    uint8_t *p = xmalloc(INPUT_MAX + 1);
    size_t n = fread(p, 1, INPUT_MAX + 1, f);
    int r = KM_OK;
    if (ferror(f))
        r = km_error_set(err, KM_ERR_IO, 0, "%.200s: read error", is_stdin ? "stdin" : path);
    else if (n > INPUT_MAX)
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "%.200s: over %u bytes, not a document",
                         is_stdin ? "stdin" : path, INPUT_MAX);
    if (!is_stdin)
        fclose(f);
    if (r != KM_OK) {
        free(p);
        return r;
    }
    *out = p;
    *len = n;
    return KM_OK;
}

static int run_verify(const struct verify_args *a)
{
    struct km_error err;
    struct attest_pcr_policy policy;
    struct attest_doc doc, unverified;
    enum attest_check failed = ATTEST_CHECK_DECODE;
    uint8_t *input = NULL, *raw = NULL, *root = NULL;
    size_t input_len = 0, raw_len = 0, root_len = 0;
    bool decoded = false;
    int rc = CMD_EXIT_FAIL;
    memset(&policy, 0, sizeof(policy));
    memset(&doc, 0, sizeof(doc));
    memset(&unverified, 0, sizeof(unverified));

    if (load_root(&root, &root_len, a->root, &err) != KM_OK ||
        (a->pcrs != NULL && attest_pcr_policy_load(&policy, a->pcrs, &err) != KM_OK) ||
        read_input(&input, &input_len, a->file, &err) != KM_OK) {
        fprintf(stderr, VPROG ": %s\n", err.msg);
        goto out;
    }
    struct attest_verify_opts vo = {
        .root_der = root,
        .root_der_len = root_len,
        .at_unix = a->at,
        .max_age_secs = a->max_age,
        .pcrs = a->pcrs != NULL ? &policy : NULL,
        .allow_debug = a->allow_debug,
        .public_key = a->has_public_key ? a->public_key : NULL,
        .public_key_len = a->public_key_len,
        .nonce = a->has_nonce ? a->nonce : NULL,
        .nonce_len = a->nonce_len,
    };
    int r = attest_doc_read_any(&raw, &raw_len, input, input_len, &err);
    if (r == KM_OK)
        r = attest_verify(&doc, &failed, raw, raw_len, &vo, &err);
    else
        failed = ATTEST_CHECK_DECODE;
    if (r == KM_OK) {
        failed = ATTEST_CHECK_NONE;
        decoded = true;
    } else if (raw != NULL) {
        /* Show what the document claims even when it does not verify (an
         * expired one, say): labelled as not verified. */
        struct km_error perr;
        decoded = attest_doc_parse(&unverified, raw, raw_len, &perr) == KM_OK;
    }
    const struct attest_doc *shown = r == KM_OK ? &doc : decoded ? &unverified : NULL;
    const char *msg = r == KM_OK ? NULL : check_message(failed, err.msg);

    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(r == KM_OK));
        json_object_set_new(o, "failed_check",
                            r == KM_OK ? json_null() : json_string(attest_check_name(failed)));
        json_object_set_new(o, "error", msg ? json_string(msg) : json_null());
        doc_json(o, shown);
        json_object_set_new(o, "pcrs_checked", json_boolean(a->pcrs != NULL));
        print_json(o);
    } else {
        if (shown != NULL && r != KM_OK)
            printf("(decoded, NOT verified)\n");
        if (shown != NULL)
            print_doc(shown);
        if (a->pcrs == NULL)
            printf("pcrs:         not checked (no --pcrs FILE)\n");
        if (r == KM_OK)
            printf("verified:     yes\n");
        else
            printf("FAILED: %s: %s\n", attest_check_name(failed), msg);
    }
    rc = r == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
out:
    attest_doc_clear(&doc);
    attest_doc_clear(&unverified);
    free(input);
    free(raw);
    free(root);
    return rc;
}

static int attest_verify_cmd(int argc, char **argv)
{
    struct verify_args *a = xmalloc(sizeof(*a));
    int r = parse_verify(a, argc, argv);
    if (r < 0)
        r = run_verify(a);
    free(a);
    return r;
}

/* ---- keymeld attest ENCLAVE_ID ---------------------------------------------- */

#define FPROG "keymeld attest"

struct fetch_args {
    uint32_t enclave_id;
    const char *gateway, *root, *pcrs;
    bool no_nonce, allow_debug, json;
    uint8_t nonce[CLIENT_ATTEST_NONCE_LEN];
    size_t nonce_len;
};

static bool parse_id(uint32_t *out, const char *s)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static int parse_fetch(struct fetch_args *a, int argc, char **argv)
{
    struct opts o;
    bool bad = false, have_id = false, have_nonce = false;
    memset(a, 0, sizeof(*a));
    a->gateway =
        env_nonempty("KEYMELD_GATEWAY_URL") ? getenv("KEYMELD_GATEWAY_URL") : DEFAULT_GATEWAY;
    a->root = env_nonempty("KEYMELD_TRUST_ROOT");
    a->pcrs = env_nonempty("KEYMELD_PCR_POLICY");
    opts_init(&o, FPROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && !have_id) {
            have_id = true;
            if (!parse_id(&a->enclave_id, o.operand))
                bad = fprintf(stderr, FPROG ": ENCLAVE_ID must be a number, not '%.60s'\n",
                              o.operand) > 0;
        } else if (r == OPT_OPERAND)
            bad = fprintf(stderr, FPROG ": unexpected argument '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            attest_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--gateway", &bad))
            a->gateway = o.value;
        else if (opts_value(&o, "--trust-root", &bad))
            a->root = o.value;
        else if (opts_value(&o, "--pcrs", &bad))
            a->pcrs = o.value;
        else if (opts_value(&o, "--nonce", &bad))
            bad = bad || !(have_nonce = parse_hex_arg(a->nonce, sizeof(a->nonce), &a->nonce_len,
                                                      FPROG, "--nonce", o.value));
        else if (opts_flag(&o, "--no-nonce", NULL))
            a->no_nonce = true;
        else if (opts_flag(&o, "--allow-debug", NULL))
            a->allow_debug = true;
        else if (opts_flag(&o, "--json", NULL))
            a->json = true;
        else
            bad = fprintf(stderr, FPROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && !have_id)
        bad = fprintf(stderr, FPROG ": ENCLAVE_ID is required\n") > 0;
    if (!bad && have_nonce && a->no_nonce)
        bad = fprintf(stderr, FPROG ": --nonce and --no-nonce contradict each other\n") > 0;
    if (bad)
        return usage_error();
    if (!have_nonce && !a->no_nonce) {
        if (secure_random(a->nonce, sizeof(a->nonce)) != KM_OK) {
            fprintf(stderr, FPROG ": no randomness for the nonce\n");
            return CMD_EXIT_FAIL;
        }
        a->nonce_len = sizeof(a->nonce);
    }
    return -1;
}

static int run_fetch(const struct fetch_args *a)
{
    struct client_trust t;
    struct km_error err;
    struct attest_doc doc;
    enum attest_check failed = ATTEST_CHECK_DECODE;
    uint8_t key[PROTO_PUBKEY_LEN] = {0};
    memset(&t, 0, sizeof(t));
    memset(&doc, 0, sizeof(doc));

    /* Without a policy the document is still fetched and checked (root,
     * chain, nonce, key): that is how one finds the PCRs to pin. */
    if (load_root(&t.root_der, &t.root_der_len, a->root, &err) != KM_OK ||
        (a->pcrs != NULL && attest_pcr_policy_load(&t.pcrs, a->pcrs, &err) != KM_OK)) {
        fprintf(stderr, FPROG ": %s\n", err.msg);
        client_trust_release(&t);
        return CMD_EXIT_FAIL;
    }
    t.allow_debug = a->allow_debug;
    bool pinned = a->pcrs != NULL;

    struct rest_client *c = cmd_rest_client(a->gateway, 30000);
    int r = client_attest_fetch(c, &t, a->enclave_id, a->no_nonce ? NULL : a->nonce, a->nonce_len,
                                &doc, &failed, key, &err);
    rest_client_free(c);
    client_trust_release(&t);
    if (r == KM_ERR_CONNECT || r == KM_ERR_TIMEOUT || r == KM_ERR_REMOTE || r == KM_ERR_RESOLVE) {
        fprintf(stderr, FPROG ": %s\n", err.msg);
        if (r == KM_ERR_CONNECT || r == KM_ERR_RESOLVE)
            fprintf(stderr,
                    "hint: is the gateway at %s running? start the stack with: make start\n",
                    a->gateway);
        return CMD_EXIT_FAIL;
    }
    bool ok = r == KM_OK && pinned;
    const char *check = r == KM_OK ? "pcrs" : attest_check_name(failed);
    const char *msg = r == KM_OK ? "not pinned: pass --pcrs FILE or set KEYMELD_PCR_POLICY; "
                                   "every other check passed"
                                 : check_message(failed, err.msg);
    char nhex[2 * CLIENT_ATTEST_NONCE_LEN + 1] = "";
    if (!a->no_nonce)
        hex_encode(nhex, sizeof(nhex), a->nonce, a->nonce_len);

    if (a->json) {
        char khex[2 * PROTO_PUBKEY_LEN + 1];
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(ok));
        json_object_set_new(o, "failed_check", ok ? json_null() : json_string(check));
        json_object_set_new(o, "error", ok ? json_null() : json_string(msg));
        json_object_set_new(o, "enclave_id", json_integer(a->enclave_id));
        json_object_set_new(o, "gateway", json_string(a->gateway));
        json_object_set_new(o, "pcrs_pinned", json_boolean(pinned));
        json_object_set_new(o, "requested_nonce", a->no_nonce ? json_null() : json_string(nhex));
        doc_json(o, r == KM_OK ? &doc : NULL);
        if (r == KM_OK) {
            json_object_set_new(o, "attestation", json_string(doc_kind(&doc)));
            json_object_set_new(o, "gateway_public_key",
                                json_string(hex_encode(khex, sizeof(khex), key, PROTO_PUBKEY_LEN)));
        }
        print_json(o);
    } else {
        printf("enclave:      %u (gateway %s)\n", a->enclave_id, a->gateway);
        if (r == KM_OK) {
            printf("attestation:  %s\n", doc_kind(&doc));
            print_doc(&doc);
        } else {
            printf("nonce sent:   %s\n", a->no_nonce ? "(none)" : nhex);
        }
        if (ok)
            printf("verified:     yes\n");
        else
            printf("verified:     NO: %s: %s\n", check, msg);
    }
    attest_doc_clear(&doc);
    return ok ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

int cmd_attest(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, FPROG ": ENCLAVE_ID or verify FILE is required\n");
        return usage_error();
    }
    if (cmd_is_help(argv[1])) {
        attest_usage(stdout);
        return CMD_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return attest_verify_cmd(argc - 1, argv + 1);
    struct fetch_args a;
    int r = parse_fetch(&a, argc, argv);
    return r >= 0 ? r : run_fetch(&a);
}

/* ---- keymeld dev-ca init DIR ------------------------------------------------- */

static void dev_ca_usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld dev-ca init DIR\n"
            "\n"
            "Creates the development attestation CA in DIR (made 0700 if missing): a P-384\n"
            "root and an intermediate, keys 0600. The development provider signs its\n"
            "documents with it; clients trust it with --trust-root DIR/%s.\n"
            "A complete CA already there is left unchanged, so a stack restart keeps its\n"
            "trust root; a partial one is an error. A client that pins the AWS root never\n"
            "trusts it.\n"
            "\n"
            "Exit status: 0 created or already there, 1 failure, 2 usage error.\n",
            ATTEST_DEV_ROOT_CERT);
}

static int dev_ca_init(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *dir = NULL;
    opts_init(&o, "keymeld dev-ca init", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && dir == NULL)
            dir = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld dev-ca init: one DIR only\n") > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            dev_ca_usage(stdout);
            return CMD_EXIT_OK;
        } else
            bad = fprintf(stderr, "keymeld dev-ca init: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    if (!bad && dir == NULL)
        bad = fprintf(stderr, "keymeld dev-ca init: DIR is required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        dev_ca_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    struct km_error err;
    bool created = false;
    if (attest_dev_ca_init(dir, &created, &err) != KM_OK) {
        fprintf(stderr, "keymeld dev-ca init: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    if (created)
        printf("created development CA in %s (root %s/" ATTEST_DEV_ROOT_CERT ")\n", dir, dir);
    else
        printf("development CA in %s already exists (unchanged)\n", dir);
    return CMD_EXIT_OK;
}

/* ---- keymeld dev-ca pcrs BINARY OUT ----------------------------------------- */

static void dev_pcrs_usage(FILE *out)
{
    fprintf(out, "usage: keymeld dev-ca pcrs ENCLAVE_BINARY OUT\n"
                 "\n"
                 "Writes the PCR policy that pins a development enclave: one set with PCR0 =\n"
                 "SHA-384 of ENCLAVE_BINARY (what ATTESTATION=development reports) and PCR1 =\n"
                 "PCR2 = zero. The gateway (security.attestation_pcrs) and clients (--pcrs)\n"
                 "read it. Prints PCR0.\n"
                 "\n"
                 "Exit status: 0 written, 1 failure, 2 usage error.\n");
}

static int dev_ca_pcrs(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *args[2] = {NULL, NULL};
    size_t n = 0;
    opts_init(&o, "keymeld dev-ca pcrs", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && n < 2)
            args[n++] = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld dev-ca pcrs: ENCLAVE_BINARY and OUT only\n") > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            dev_pcrs_usage(stdout);
            return CMD_EXIT_OK;
        } else
            bad = fprintf(stderr, "keymeld dev-ca pcrs: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    if (!bad && n != 2)
        bad = fprintf(stderr, "keymeld dev-ca pcrs: ENCLAVE_BINARY and OUT are required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        dev_pcrs_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    struct km_error err;
    uint8_t pcr0[ATTEST_PCR_LEN], zero[ATTEST_PCR_LEN] = {0};
    char hex[2 * ATTEST_PCR_LEN + 1];
    if (attest_dev_measure(pcr0, args[0], &err) != KM_OK ||
        attest_pcr_policy_write(args[1], pcr0, zero, zero, NULL, &err) != KM_OK) {
        fprintf(stderr, "keymeld dev-ca pcrs: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    printf("%s\n", hex_encode(hex, sizeof(hex), pcr0, sizeof(pcr0)));
    return CMD_EXIT_OK;
}

int cmd_dev_ca(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"init", "DIR", "create the development attestation CA (idempotent)", dev_ca_init},
        {"pcrs", "ENCLAVE_BINARY OUT", "write the PCR policy pinning a development build",
         dev_ca_pcrs},
    };
    return cmd_dispatch("keymeld dev-ca", sub, KM_ARRAY_LEN(sub), argc, argv);
}
