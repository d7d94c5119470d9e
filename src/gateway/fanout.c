#include "gateway/fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "crypto/thash.h"
#include "protocol/envelope.h"
#include "transport/frame.h"
#include "common/banned.h"

/* Whether every call carries the same arguments object: a step sends one
 * command to all its enclaves. */
static bool args_shared(const struct fanout_call *calls, size_t n)
{
    if (n < 2 || calls[0].args == NULL)
        return false;
    for (size_t i = 1; i < n; i++)
        if (calls[i].args != calls[0].args || strcmp(calls[i].cmd, calls[0].cmd) != 0)
            return false;
    return true;
}

void fanout_run(struct enclave_mgr *em, struct fanout_call *calls, size_t n, uint32_t timeout_ms)
{
    struct deadline dl = deadline_in_ms(timeout_ms ? timeout_ms : 30000);
    /* Shared arguments are encoded once, not once per enclave; if that
     * fails (too large), each call encodes them and reports it itself. */
    struct buf shared;
    buf_init(&shared, FRAME_MAX_DEFAULT);
    bool text = args_shared(calls, n) && env_dump_json(&shared, calls[0].args) == KM_OK;
    struct pool_call **pending = calloc(n ? n : 1, sizeof(*pending));
    if (pending == NULL)
        KM_BUG("out of memory");
    for (size_t i = 0; i < n; i++) {
        struct fanout_call *c = &calls[i];
        km_error_clear(&c->err);
        memset(&c->reply, 0, sizeof(c->reply));
        struct pool *p = enclave_mgr_pool(em, c->enclave_id);
        if (p == NULL)
            c->rc = km_error_set(&c->err, KM_ERR_NOT_FOUND, 0, "enclave %u is not configured",
                                 c->enclave_id);
        else if (text)
            c->rc = pool_call_start_text(p, &pending[i], c->cmd, &c->command_id, buf_peek(&shared),
                                         buf_len(&shared), dl, &c->err);
        else
            c->rc = pool_call_start(p, &pending[i], c->cmd, &c->command_id, c->args, dl, &c->err);
    }
    buf_release(&shared);
    for (size_t i = 0; i < n; i++) {
        struct fanout_call *c = &calls[i];
        if (pending[i] != NULL) {
            c->rc = pool_call_wait(pending[i], &c->reply, &c->err);
            if (c->rc == KM_OK && !c->reply.ok)
                c->rc = KM_ERR_REMOTE;
            if (c->rc == KM_OK || c->rc == KM_ERR_REMOTE)
                enclave_mgr_report_alive(em, c->enclave_id);
        }
        if (c->rc != KM_OK && c->rc != KM_ERR_REMOTE) {
            km_error_prefix(&c->err, "Command failed to %s: Enclave communication error",
                            enclave_mgr_describe_addr(em, c->enclave_id));
            /* The health view learns at once, not at the next probe. */
            enclave_mgr_report_failure(em, c->enclave_id, &c->err);
        }
    }
    free(pending);
}

void fanout_clear(struct fanout_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(calls[i].args);
        calls[i].args = NULL;
        env_reply_clear(&calls[i].reply);
    }
}

void fanout_command_id(struct uuid *out, const char *session_id, const char *step,
                       uint32_t enclave_id)
{
    struct thash h;
    uint8_t digest[32];
    thash_init(&h, "KeyMeld/command-id");
    thash_update_be32(&h, (uint32_t)strlen(session_id));
    thash_update(&h, session_id, strlen(session_id));
    thash_update_be32(&h, (uint32_t)strlen(step));
    thash_update(&h, step, strlen(step));
    thash_update_be32(&h, enclave_id);
    if (thash_final(&h, digest) != KM_OK)
        KM_BUG("SHA-256 failed");
    memcpy(out->b, digest, 16);
    out->b[6] = (uint8_t)(0x80 | (out->b[6] & 0x0f)); /* version 8: custom (RFC 9562) */
    out->b[8] = (uint8_t)(0x80 | (out->b[8] & 0x3f)); /* variant 10 */
}
