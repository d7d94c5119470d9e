/*
 * envelope_fuzz.c - the gateway <-> enclave envelope decoders
 * (protocol/envelope.h) on arbitrary bytes: request and reply. A request
 * that decodes must re-encode and decode to the same id, command id, name
 * and arguments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/envelope.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env_request req;
    struct env_reply rep;
    struct km_error err;
    bool has_id;

    if (env_request_decode(&req, &has_id, data, size, &err) == KM_OK) {
        struct buf b;
        struct env_request again;
        buf_init(&b, 4 * size + 256);
        if (env_request_encode(&b, req.id, &req.command_id, req.cmd, req.args) != KM_OK ||
            env_request_decode(&again, &has_id, buf_peek(&b), buf_len(&b), &err) != KM_OK ||
            again.id != req.id || !uuid_equal(&again.command_id, &req.command_id) ||
            strcmp(again.cmd, req.cmd) != 0 || !json_equal(again.args, req.args))
            abort();
        env_request_clear(&again);
        env_request_clear(&req);
        buf_release(&b);
    }
    if (env_reply_decode(&rep, data, size, &err) == KM_OK) {
        struct buf b;
        buf_init(&b, 4 * size + 2048);
        int r = rep.ok ? env_reply_encode_ok(&b, rep.id, rep.result)
                       : env_reply_encode_error(&b, rep.id, rep.error.code, rep.error.message,
                                                rep.error.retryable);
        if (r != KM_OK)
            abort();
        env_reply_clear(&rep);
        buf_release(&b);
    }
    return 0;
}
