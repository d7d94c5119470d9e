/*
 * cmd_descriptor.c - `keymeld descriptor`: a saved group's output
 * descriptor (BIP-386/390: tr(musig(...)) with its BIP-380 checksum) and
 * its address, for a wallet to watch or import (docs/INTEGRATION.md).
 *
 * Offline: everything comes from the session file (src/client/keyfile.h).
 * The descriptor is evaluated again by the descriptor parser and must give
 * the key the group's signatures verify under, or nothing is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bitcoin/address.h"
#include "bitcoin/descriptor.h"
#include "client/keyfile.h"
#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "common/xmalloc.h"
#include "common/banned.h"

static void descriptor_usage(FILE *out)
{
    fprintf(out, "usage: keymeld descriptor --session FILE [--network NAME] [--json]\n"
                 "\n"
                 "Prints the output descriptor of the group saved in FILE (from keymeld keygen):\n"
                 "tr(musig(KEYS)) for a key-path-only Taproot group (tweak unspendable_taproot),\n"
                 "rawtr(musig(KEYS)) for an untweaked one, with its BIP-380 checksum, and the\n"
                 "group's P2TR address on NAME (mainnet, testnet, signet or regtest; default\n"
                 "regtest). Groups made with a plain or x-only tweak have no descriptor form.\n");
}

static int group_tweak(const struct proto_tweak *t, enum descriptor_group_tweak *out,
                       const char **why)
{
    switch ((enum proto_tweak_type)t->type) {
    case PROTO_TWEAK_NONE:
        *out = DESCRIPTOR_GROUP_UNTWEAKED;
        return KM_OK;
    case PROTO_TWEAK_UNSPENDABLE_TAPROOT:
        *out = DESCRIPTOR_GROUP_TAPROOT;
        return KM_OK;
    case PROTO_TWEAK_TAPROOT_MERKLE_ROOT:
        *out = DESCRIPTOR_GROUP_MERKLE_ROOT;
        return KM_OK;
    case PROTO_TWEAK_PLAIN:
    case PROTO_TWEAK_XONLY:
        break;
    }
    *why = "its keygen used a plain or x-only BIP-327 tweak, which no descriptor can express";
    return KM_ERR_UNSUPPORTED;
}

/* The descriptor of k on net into *res (err says why not). */
static int describe(const struct client_keygen *k, enum address_network net,
                    struct descriptor_group_result *res, struct km_error *err)
{
    enum descriptor_group_tweak tweak;
    const char *why = NULL;
    if (group_tweak(&k->tweak, &tweak, &why) != KM_OK)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0, "keygen %s: %s", k->id_s, why);
    uint8_t(*pks)[33] = xcalloc(k->nusers, sizeof(*pks));
    for (size_t i = 0; i < k->nusers; i++)
        memcpy(pks[i], k->users[i].kp.pubkey, 33);
    struct descriptor_group g = {
        .pubkeys = (const uint8_t(*)[33])pks,
        .n = k->nusers,
        .tweak = tweak,
        .merkle_root = k->tweak.has_merkle_root ? k->tweak.merkle_root : NULL,
        .expect_output_key = k->xonly,
    };
    int r = descriptor_for_group(res, err, &g, net);
    free(pks);
    return r;
}

int cmd_descriptor(int argc, char **argv)
{
    struct opts o;
    bool bad = false, json = false;
    const char *file = NULL, *network = "regtest";
    opts_init(&o, "keymeld descriptor", argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, "keymeld descriptor: unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            descriptor_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            file = o.value;
        else if (opts_value(&o, "--network", &bad))
            network = o.value;
        else if (opts_flag(&o, "--json", NULL))
            json = true;
        else
            bad = fprintf(stderr, "keymeld descriptor: unknown option '%.60s'\n",
                          opts_current(&o)) > 0;
    }
    enum address_network net = ADDRESS_REGTEST;
    if (!bad && file == NULL)
        bad = fprintf(stderr, "keymeld descriptor: --session FILE is required\n") > 0;
    if (!bad && address_network_parse(&net, network, strlen(network)) != KM_OK)
        bad = fprintf(stderr,
                      "keymeld descriptor: unknown network '%.40s' (mainnet, testnet, signet or "
                      "regtest)\n",
                      network) > 0;
    if (bad) {
        descriptor_usage(stderr);
        return CMD_EXIT_USAGE;
    }

    struct client_keygen k;
    struct km_error err;
    char gateway[512];
    if (keyfile_load(file, &k, gateway, sizeof(gateway), &err) != KM_OK) {
        fprintf(stderr, "keymeld descriptor: %s\n", err.msg);
        return CMD_EXIT_FAIL;
    }
    struct descriptor_group_result res = {0};
    int rc = describe(&k, net, &res, &err);
    if (rc != KM_OK) {
        fprintf(stderr, "keymeld descriptor: %s\n", err.msg);
    } else if (json) {
        json_t *o2 =
            json_pack("{s:s, s:s, s:s, s:b}", "descriptor", res.descriptor, "address", res.address,
                      "network", address_network_name(net), "opaque", res.opaque != 0);
        char *text = o2 ? json_dumps(o2, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(o2);
    } else {
        printf("descriptor %s\naddress %s (%s)\n", res.descriptor, res.address,
               address_network_name(net));
        if (res.opaque)
            printf("note: the keygen's merkle root names no scripts here: the descriptor is the "
                   "output key alone\n");
    }
    descriptor_group_result_clear(&res);
    client_keygen_clear(&k);
    return rc == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}
