/*
 * enclave_commands_fuzz.c - the command and payload codecs
 * (protocol/commands.h, protocol/payload.h) on arbitrary bytes.
 *
 * Input: one byte choosing the schema (every command's args and result, and
 * every payload inside an encrypted field), then the JSON text. Contract:
 * decoding never crashes or leaks; what decodes re-encodes to JSON that
 * decodes to the same encoding again (the codecs are canonical).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/commands.h"
#include "protocol/payload.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct proto_schema *pick(uint8_t sel)
{
    static const struct proto_schema *const payloads[] = {
        &proto_tweak_schema,     &proto_adaptor_configs_schema, &proto_nonce_data_schema,
        &proto_psig_data_schema, &proto_adaptor_results_schema, &proto_pool_nonce_schema,
    };
    /* 0..2*PROTO_CMD_COUNT_-1: command args/result pairs (2c args, 2c+1
     * result of command c); then the payloads. */
    size_t n = 2 * PROTO_CMD_COUNT_ + KM_ARRAY_LEN(payloads);
    size_t i = sel % n;
    if (i < 2 * PROTO_CMD_COUNT_) {
        const struct proto_command *pc = proto_command_get((enum proto_cmd)(i / 2));
        return i % 2 ? pc->result : pc->args;
    }
    return payloads[i - 2 * PROTO_CMD_COUNT_];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct km_error err;
    if (size == 0)
        return 0;
    const struct proto_schema *s = pick(data[0]);
    void *obj = calloc(1, s->size), *again = calloc(1, s->size);
    if (obj == NULL || again == NULL)
        abort();
    if (proto_decode_bytes(s, obj, data + 1, size - 1, &err) == KM_OK) {
        struct buf a, b;
        buf_init(&a, 64u << 20);
        buf_init(&b, 64u << 20);
        if (proto_encode_bytes(&a, s, obj) != KM_OK ||
            proto_decode_bytes(s, again, buf_peek(&a), buf_len(&a), &err) != KM_OK ||
            proto_encode_bytes(&b, s, again) != KM_OK || buf_len(&a) != buf_len(&b) ||
            memcmp(buf_peek(&a), buf_peek(&b), buf_len(&a)) != 0)
            abort();
        buf_release(&a);
        buf_release(&b);
        proto_clear(s, again);
        proto_clear(s, obj);
    }
    free(obj);
    free(again);
    return 0;
}
