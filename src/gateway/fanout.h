/*
 * fanout.h - send one command to several enclaves at once and collect
 * every reply (the coordinator's parallel steps).
 *
 * All requests go out before any reply is awaited, over each enclave's
 * pool (pool_call_start / pool_call_wait: multiplexed, no thread per
 * call). Each call is a single attempt: the coordinator's step retry, with
 * back-off and the same command ids, is the one retry layer for this
 * traffic (coordinator.h), so failures are never retried twice over.
 */
#ifndef KM_GATEWAY_FANOUT_H
#define KM_GATEWAY_FANOUT_H

#include <stdint.h>

#include <jansson.h>

#include "common/uuid.h"
#include "gateway/enclaves.h"
#include "protocol/envelope.h"

struct fanout_call {
    /* in */
    uint32_t enclave_id;
    const char *cmd;
    json_t *args; /* owned: released by fanout_clear */
    struct uuid command_id;
    /* out */
    int rc;                 /* KM_OK (a reply: ok or error), or the transport error */
    struct env_reply reply; /* on KM_OK; rc is KM_ERR_REMOTE for an error reply */
    struct km_error err;
};

/* Sends calls[0..n) and waits for all; timeout_ms is their common deadline
 * (0 = 30 s). */
void fanout_run(struct enclave_mgr *em, struct fanout_call *calls, size_t n, uint32_t timeout_ms);

/* Releases args and replies of calls[0..n). */
void fanout_clear(struct fanout_call *calls, size_t n);

/*
 * The command id for one enclave's part of one coordinator step: derived
 * from (session id, step name, enclave id), so a step re-run after a crash
 * or a retry sends the same id and the enclave answers from its reply
 * cache instead of executing twice.
 */
void fanout_command_id(struct uuid *out, const char *session_id, const char *step,
                       uint32_t enclave_id);

#endif /* KM_GATEWAY_FANOUT_H */
