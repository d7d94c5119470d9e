/*
 * procs.h - runs keymeld-enclave processes on 127.0.0.1 with ephemeral
 * ports (TRANSPORT_MODE=tcp, VSOCK_PORT=0), learns each port from its
 * start-up line "TCP server listening on 127.0.0.1:PORT", and opens one
 * pool per enclave. Each enclave's stderr goes to its own log file.
 *
 * SAFETY (DESIGN.md §4): TCP only; nothing here connects a VSock socket.
 */
#ifndef KM_TESTS_PROCS_H
#define KM_TESTS_PROCS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "driver.h"

struct procs {
    size_t n;
    pid_t pid[DRV_MAX_ENCLAVES];
    uint32_t port[DRV_MAX_ENCLAVES];
    char log[DRV_MAX_ENCLAVES][256];
    struct drv_pools pools;
};

/* The keymeld-enclave binary: $KEYMELD_ENCLAVE_BIN, else the path CMake
 * compiled in (KM_ENCLAVE_BIN). */
const char *procs_binary(void);

/*
 * Starts n enclaves (ENCLAVE_ID = index) logging at log_level into
 * <dir>/enclave-<i>.log, waits for their ports (10 s) and opens pools.
 * extra_env (NULL-terminated "NAME=VALUE", may be NULL) is added to each.
 * Returns KM_OK or an error in *err (processes already started are
 * stopped).
 */
int procs_start(struct procs *p, size_t n, const char *dir, const char *log_level,
                const char *const *extra_env, struct km_error *err);

/* SIGTERM to every enclave, then waits (10 s, then SIGKILL). Returns the
 * number of enclaves that did not exit with status 0. Frees the pools. */
int procs_stop(struct procs *p);

/* Reads a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *procs_read_file(const char *path, size_t *len);

#endif /* KM_TESTS_PROCS_H */
