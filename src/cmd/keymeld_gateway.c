/*
 * keymeld-gateway - the host side: REST API, SQLite store, coordinator and
 * one connection pool per enclave (DESIGN.md §5, §8; docs/API.md).
 *
 *   keymeld-gateway [--config FILE]
 *
 * Configuration: --config FILE, else $CONFIG_PATH, else
 * config/<$KEYMELD_ENVIRONMENT>.yaml, then the KEYMELD_* environment
 * overrides (docs/CONFIGURATION.md). Start-up logs the environment and every
 * enclave's effective address with the source of each value, as the seed
 * asks ("log actual CIDs used for debugging"). SIGINT/SIGTERM stop it
 * gracefully: no new requests, running steps finish, WAL checkpointed.
 * SIGHUP re-reads the TLS certificate and key (gateway_reload_tls).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "common/banned.h"

#define LOG_COMP "gateway"

static void usage(FILE *out)
{
    fprintf(out, "usage: keymeld-gateway [--config FILE]\n"
                 "\n"
                 "Runs the KeyMeld gateway: REST API, SQLite store and coordinator, talking to\n"
                 "the enclaves of the configuration over VSock, TCP or Unix sockets.\n"
                 "\n"
                 "  -c, --config FILE  YAML configuration; default: $CONFIG_PATH, else\n"
                 "                     config/<environment>.yaml with the environment from\n"
                 "                     $KEYMELD_ENVIRONMENT (default development)\n"
                 "  -h, --help         this text\n"
                 "  -V, --version      print the version\n"
                 "\n"
                 "Overrides: KEYMELD_ENVIRONMENT, KEYMELD_HOST, KEYMELD_PORT,\n"
                 "KEYMELD_DATABASE_PATH, KEYMELD_LOG_LEVEL, KEYMELD_LOG_FORMAT and, per enclave\n"
                 "id N, KEYMELD_ENCLAVE_N_CID, _PORT, _TRANSPORT, _TCP_HOST, _UNIX_PATH.\n"
                 "Check a configuration without starting: keymeld config check.\n"
                 "Signals: SIGINT/SIGTERM stop gracefully; SIGHUP re-reads the TLS\n"
                 "certificate and key files (new connections get them).\n");
}

/* Applies the configured logging; a file that cannot be opened is reported
 * and logging continues on stderr. */
static void setup_logging(const struct cfg *c)
{
    struct km_error err;
    const char *file = c->logging.enable_file_output ? c->logging.file_path : NULL;
    if (log_configure(c->logging.level, c->logging.format, file, &err) != KM_OK)
        log_warn(LOG_COMP, "%s; logging to stderr only", err.msg);
}

static void log_diagnostics(const struct cfg_diag *d)
{
    char line[900];
    for (size_t i = 0; i < d->count; i++) {
        cfg_diag_format(line, sizeof(line), &d->entries[i]);
        if (d->entries[i].severity == CFG_ERROR)
            log_error(LOG_COMP, "config: %s", line);
        else
            log_warn(LOG_COMP, "config: %s", line);
    }
}

static void log_startup(const struct cfg *c)
{
    char src[400], line[1200];
    cfg_src_describe(src, sizeof(src), c, cfg_source(c, CFG_F_ENVIRONMENT));
    log_info(LOG_COMP, "Starting KeyMeld Gateway v%s", KM_VERSION);
    log_info(LOG_COMP, "Configuration: %s", c->path && c->path[0] ? c->path : "(none)");
    log_info(LOG_COMP, "Environment: %s (%s)", cfg_environment_name(c->environment), src);
    for (size_t i = 0; i < c->enclaves.count; i++) {
        const struct cfg_enclave *e = &c->enclaves.list[i];
        cfg_enclave_describe(line, sizeof(line), c, e);
        log_info(LOG_COMP, "enclave %u: %s", e->id, line);
    }
    char db[CFG_URL_MAX + 1];
    log_info(LOG_COMP, "database: %s", cfg_database_describe(db, sizeof(db), c));
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("keymeld-gateway %s\n", KM_VERSION);
            return 0;
        }
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "keymeld-gateway: unexpected argument '%.100s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    /* Block the stop and reload signals before any thread starts, so they
     * all inherit the mask and only gateway_wait() receives them (a SIGHUP
     * no longer kills the process). */
    sigset_t sigs;
    gateway_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct cfg c;
    struct cfg_diag d;
    struct cfg_load_opts opts = {.path = path};
    cfg_diag_init(&d);
    int r = cfg_load(&c, &opts, &d);
    setup_logging(&c);
    log_diagnostics(&d);
    if (r != KM_OK) {
        log_error(LOG_COMP,
                  "invalid configuration (%zu error(s)); run `keymeld config check%s%s` "
                  "for the full report",
                  d.errors, path ? " --config " : "", path ? path : "");
        cfg_release(&c);
        cfg_diag_release(&d);
        return 1;
    }
    cfg_diag_release(&d);
    log_startup(&c);

    struct gateway gw;
    struct km_error err;
    if (gateway_start(&gw, &c, &err) != KM_OK) {
        log_error(LOG_COMP, "cannot start: %s", err.msg);
        cfg_release(&c);
        return 1;
    }
    int sig = gateway_wait(&gw);
    log_info(LOG_COMP, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    gateway_stop(&gw);
    cfg_release(&c);
    log_shutdown();
    return 0;
}
