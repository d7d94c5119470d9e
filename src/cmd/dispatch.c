/*
 * dispatch.c - subcommand tables for the `keymeld` command line.
 */
#include "cmd/cmd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/rest.h"
#include "common/err.h"
#include "common/banned.h"

struct rest_client *cmd_rest_client(const char *url, unsigned timeout_ms)
{
    struct rest_client *c = rest_client_new(url, (uint32_t)timeout_ms);
    const char *ca = getenv("KEYMELD_CA_FILE");
    if (ca != NULL && ca[0] != '\0') {
        struct km_error err;
        if (rest_client_set_ca_file(c, ca, &err) != KM_OK)
            fprintf(stderr, "keymeld: KEYMELD_CA_FILE: %s (the system CA store is used)\n",
                    err.msg);
    }
    return c;
}

int cmd_is_help(const char *s)
{
    return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 || strcmp(s, "help") == 0;
}

void cmd_print_listing(FILE *out, const char *prog, const struct cmd_entry *table, size_t n)
{
    fprintf(out, "usage: %s <command> [options]\n\ncommands:\n", prog);
    for (size_t i = 0; i < n; i++) {
        char synopsis[96];
        snprintf(synopsis, sizeof(synopsis), "%s %s", table[i].name, table[i].args);
        fprintf(out, "  %-40s %s\n", synopsis, table[i].summary);
    }
    fprintf(out, "\nRun '%s <command> --help' for details.\n", prog);
}

int cmd_dispatch(const char *prog, const struct cmd_entry *table, size_t n, int argc, char **argv)
{
    if (argc < 2) {
        cmd_print_listing(stderr, prog, table, n);
        return CMD_EXIT_USAGE;
    }
    if (cmd_is_help(argv[1])) {
        cmd_print_listing(stdout, prog, table, n);
        return CMD_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], table[i].name) == 0)
            return table[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown command '%.100s'\n\n", prog, argv[1]);
    cmd_print_listing(stderr, prog, table, n);
    return CMD_EXIT_USAGE;
}
