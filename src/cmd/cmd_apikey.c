/*
 * cmd_apikey.c - `keymeld apikey create|list|revoke`: operator API keys
 * (docs/API.md "API keys") through the gateway's operator routes, which
 * answer its own host only (run these on the gateway host).
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rest.h"
#include "cmd/opts.h"
#include "common/banned.h"

#define DEFAULT_GATEWAY "http://127.0.0.1:8090"

static const char *gateway_default(void)
{
    const char *g = getenv("KEYMELD_GATEWAY_URL");
    return g ? g : DEFAULT_GATEWAY;
}

/* One operator request; prints the error and returns 1 unless `want`. */
static int admin_call(const char *gateway, const char *method, const char *path, json_t *body,
                      long want, json_t **out)
{
    struct rest_client *c = cmd_rest_client(gateway, 30000);
    struct rest_response r;
    struct km_error err;
    int rc = CMD_EXIT_FAIL;
    *out = NULL;
    if (rest_call(c, &r, method, path, body, NULL, &err) != KM_OK) {
        fprintf(stderr, "keymeld apikey: %s\n", err.msg);
    } else {
        if (r.status == want && r.body != NULL) {
            *out = json_incref(r.body);
            rc = CMD_EXIT_OK;
        } else {
            fprintf(stderr, "keymeld apikey: HTTP %ld: %s\n", r.status, rest_error_message(&r));
        }
        rest_response_clear(&r);
    }
    json_decref(body);
    rest_client_free(c);
    return rc;
}

static void print_key(const json_t *k)
{
    printf("%s  %-20s  keygens/hour %-6lld live %-6lld participants %-6lld %s\n",
           json_string_value(json_object_get(k, "id")),
           json_string_value(json_object_get(k, "name")),
           (long long)json_integer_value(json_object_get(k, "keygens_per_hour")),
           (long long)json_integer_value(json_object_get(k, "live_keygens")),
           (long long)json_integer_value(json_object_get(k, "max_participants")),
           json_is_true(json_object_get(k, "revoked")) ? "REVOKED" : "active");
}

static void create_usage(FILE *out)
{
    fprintf(out, "usage: keymeld apikey create NAME [--keygens-per-hour N] [--live-keygens N]\n"
                 "                              [--max-participants N] [--gateway URL]\n"
                 "\n"
                 "Creates an operator API key and prints its token once (the gateway keeps only\n"
                 "its SHA-256): clients send it as \"Authorization: Bearer <token>\" (the CLI\n"
                 "reads KEYMELD_API_KEY). Quotas (0 = no limit): keygens reserved per hour\n"
                 "(default 100), keygens in progress at once (50), participants per keygen (100).\n"
                 "Run it on the gateway host: operator routes answer 127.0.0.1 only.\n");
}

static int apikey_create(int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    const char *name = NULL, *gateway = gateway_default();
    uint64_t per_hour = 100, live = 50, participants = 100;
    opts_init(&o, "keymeld apikey create", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && name == NULL)
            name = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld apikey create: one NAME only\n") > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            create_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--gateway", &bad))
            gateway = o.value;
        else if (opts_value(&o, "--keygens-per-hour", &bad))
            bad = bad || !opts_uint(&o, "--keygens-per-hour", 0, 1000000, &per_hour);
        else if (opts_value(&o, "--live-keygens", &bad))
            bad = bad || !opts_uint(&o, "--live-keygens", 0, 1000000, &live);
        else if (opts_value(&o, "--max-participants", &bad))
            bad = bad || !opts_uint(&o, "--max-participants", 0, 1000000, &participants);
        else
            bad = fprintf(stderr, "keymeld apikey create: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    if (!bad && name == NULL)
        bad = fprintf(stderr, "keymeld apikey create: NAME is required\n") > 0;
    if (bad) {
        fputc('\n', stderr);
        create_usage(stderr);
        return CMD_EXIT_USAGE;
    }
    json_t *out;
    int rc = admin_call(gateway, "POST", "/api/v1/admin/api-keys",
                        json_pack("{s:s, s:I, s:I, s:I}", "name", name, "keygens_per_hour",
                                  (json_int_t)per_hour, "live_keygens", (json_int_t)live,
                                  "max_participants", (json_int_t)participants),
                        201, &out);
    if (rc == CMD_EXIT_OK) {
        print_key(out);
        printf("token (shown once): %s\n", json_string_value(json_object_get(out, "token")));
    }
    json_decref(out);
    return rc;
}

/* Parses [--gateway URL] [--help] after a subcommand; the operand (if one
 * is wanted) in *operand. Returns -1 to go on, else the exit code. */
static int parse_common(const char *prog, const char *usage, int argc, char **argv,
                        const char **gateway, const char **operand)
{
    struct opts o;
    bool bad = false;
    opts_init(&o, prog, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND && operand != NULL && *operand == NULL)
            *operand = o.operand;
        else if (r == OPT_OPERAND)
            bad = fprintf(stderr, "unexpected operand '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            printf("%s", usage);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--gateway", &bad))
            *gateway = o.value;
        else
            bad = fprintf(stderr, "unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && operand != NULL && *operand == NULL)
        bad = fprintf(stderr, "KEY_ID is required\n") > 0;
    if (bad) {
        fprintf(stderr, "%s", usage);
        return CMD_EXIT_USAGE;
    }
    return -1;
}

static int apikey_list(int argc, char **argv)
{
    const char *gateway = gateway_default();
    int done = parse_common("keymeld apikey list", "usage: keymeld apikey list [--gateway URL]\n",
                            argc, argv, &gateway, NULL);
    if (done >= 0)
        return done;
    json_t *out;
    int rc = admin_call(gateway, "GET", "/api/v1/admin/api-keys", NULL, 200, &out);
    if (rc == CMD_EXIT_OK) {
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(out, "api_keys"), i, k) print_key(k);
    }
    json_decref(out);
    return rc;
}

static int apikey_revoke(int argc, char **argv)
{
    const char *gateway = gateway_default(), *id = NULL;
    int done = parse_common("keymeld apikey revoke",
                            "usage: keymeld apikey revoke KEY_ID [--gateway URL]\n", argc, argv,
                            &gateway, &id);
    if (done >= 0)
        return done;
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/admin/api-keys/%.40s", id);
    json_t *out;
    int rc = admin_call(gateway, "DELETE", path, NULL, 200, &out);
    if (rc == CMD_EXIT_OK)
        printf("%s revoked\n", id);
    json_decref(out);
    return rc;
}

int cmd_apikey(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"create", "NAME [--keygens-per-hour N] ...", "create an API key (token shown once)",
         apikey_create},
        {"list", "", "list API keys and their quotas", apikey_list},
        {"revoke", "KEY_ID", "revoke an API key", apikey_revoke},
    };
    return cmd_dispatch("keymeld apikey", sub, KM_ARRAY_LEN(sub), argc, argv);
}
