/*
 * cmd_config.c - `keymeld config check [--config FILE]`.
 *
 * Loads the configuration exactly as the gateway does (cfg_load: --config,
 * else CONFIG_PATH, else config/<KEYMELD_ENVIRONMENT>.yaml, then the
 * environment overrides and validation) and prints the report of
 * cfg_check_print(): environment, effective enclave addresses with the
 * source of every value, warnings and errors. Exit 0 when valid (warnings
 * allowed), 1 when not, 2 on a usage error.
 */
#include "cmd/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "config/config.h"
#include "common/banned.h"

static void check_usage(FILE *out)
{
    fprintf(out, "usage: keymeld config check [--config FILE]\n"
                 "\n"
                 "Loads the gateway configuration as the gateway would and prints the\n"
                 "environment, each enclave's effective address with the source of every\n"
                 "value (file:line, env VARIABLE or default), warnings and errors.\n"
                 "\n"
                 "  -c, --config FILE  the YAML file; default: $CONFIG_PATH, else\n"
                 "                     config/<environment>.yaml with the environment from\n"
                 "                     $KEYMELD_ENVIRONMENT (default development)\n"
                 "  -h, --help         this text\n"
                 "\n"
                 "Environment overrides: KEYMELD_ENVIRONMENT, KEYMELD_HOST, KEYMELD_PORT,\n"
                 "KEYMELD_DATABASE_PATH, KEYMELD_LOG_LEVEL, KEYMELD_LOG_FORMAT and, for each\n"
                 "enclave id N in the file, KEYMELD_ENCLAVE_N_CID, _PORT, _TRANSPORT,\n"
                 "_TCP_HOST, _UNIX_PATH (docs/CONFIGURATION.md).\n"
                 "\n"
                 "Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.\n");
}

static int usage_error(const char *fmt, ...) KM_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "keymeld config check: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n");
    check_usage(stderr);
    return CMD_EXIT_USAGE;
}

static int config_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cmd_is_help(a)) {
            check_usage(stdout);
            return CMD_EXIT_OK;
        }
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a file name", a);
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else {
            return usage_error("unexpected argument '%.100s'", a);
        }
    }
    struct cfg c;
    struct cfg_diag d;
    struct cfg_load_opts opts = {.path = path};
    cfg_diag_init(&d);
    int r = cfg_load(&c, &opts, &d);
    cfg_check_print(stdout, &c, &d);
    cfg_release(&c);
    cfg_diag_release(&d);
    return r == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

int cmd_config(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"check", "[--config FILE]", "load, override and validate; print the result", config_check},
    };
    return cmd_dispatch("keymeld config", sub, KM_ARRAY_LEN(sub), argc, argv);
}
