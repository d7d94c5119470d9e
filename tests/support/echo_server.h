/*
 * echo_server.h - a small enclave stand-in for transport tests and
 * benchmarks: a tp_server speaking the real envelope with test commands.
 *
 *   ping                      -> {"pong":true}
 *   echo {...}                -> the args object back
 *   sleep {"ms":N}            -> {"slept":N} after N milliseconds
 *   blob {"size":N}           -> {"blob":"bbb..."} (N bytes)
 *   fail                      -> handler returns KM_ERR_INTERNAL without an
 *                                error message (injected failure)
 *   fail_with {"code","message","retryable"}
 *                             -> that error
 *   flaky {"failures":N}      -> retryable error "busy" for the first N
 *                                calls with a given command_id, then
 *                                {"calls":N+1}
 *   anything else             -> error "unknown_command"
 */
#ifndef KM_TESTS_ECHO_SERVER_H
#define KM_TESTS_ECHO_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "transport/server.h"

struct echo_server {
    struct tp_server *srv;
    pthread_t thread;
    uint32_t port;
    pthread_mutex_t lock;
    struct flaky_entry *flaky; /* command_id -> calls seen */
};

/* Starts listening on addr (port 0 = ephemeral) and serving in a thread.
 * cfg may be NULL. Aborts the test on failure. */
void echo_server_start(struct echo_server *es, const struct tp_addr *addr,
                       const struct tp_server_config *cfg);

/* Convenience: 127.0.0.1 on an ephemeral port. */
void echo_server_start_tcp(struct echo_server *es, const struct tp_server_config *cfg);

/* The tcp://127.0.0.1:<port> address of a server started with _tcp. */
void echo_server_addr(const struct echo_server *es, struct tp_addr *out);

/* Stops (gracefully: in-flight requests finish) and frees. */
void echo_server_stop(struct echo_server *es);

/* The handler, for servers run in other ways (km_test_server). */
int echo_server_handle(void *ud, struct tp_call *call);

#endif /* KM_TESTS_ECHO_SERVER_H */
