/*
 * keymeld.c - main() of the `keymeld` command line (DESIGN.md section 2).
 *
 *   keymeld config check [--config FILE]
 *
 * Exit codes: 0 success, 1 the operation failed, 2 usage error. Later
 * subcommands (demo, enclave ping, keygen, sign, bench) are rows in the
 * table below; see cmd.h.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

static const struct cmd_entry commands[] = {
    {"config", "check [--config FILE]", "check the gateway configuration", cmd_config},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("keymeld %s\n", KM_VERSION);
        return CMD_EXIT_OK;
    }
    return cmd_dispatch("keymeld", commands, KM_ARRAY_LEN(commands), argc, argv);
}
