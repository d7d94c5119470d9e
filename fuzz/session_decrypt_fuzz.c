/*
 * session_decrypt_fuzz.c - session decryption (crypto/sessenc.h) of
 * arbitrary blobs under a fixed secret (00 01 .. 1f, the secret of the
 * committed seeds).
 *
 * Each input is tried with its own declared context (so the AEAD layer is
 * reached) and with a fixed one (the context check). Contract: no crash, a
 * refusal leaves a message and no output, a success has the size the layout
 * implies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sessenc.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_context(const uint8_t *secret, const char *ctx, const uint8_t *data, size_t size)
{
    struct km_error err;
    size_t outlen = 1;
    uint8_t *out = malloc(size + 1);

    if (out == NULL)
        return;
    km_error_clear(&err);
    int r = sessenc_decrypt(out, size, &outlen, &err, secret, ctx, data, size);
    if (r == KM_OK) {
        if (outlen != size - sessenc_blob_len(strlen(ctx), 0))
            abort();
    } else if (outlen != 0 || err.msg[0] == '\0') {
        abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t secret[SESSENC_SECRET_LEN];
    const uint8_t *ctx;
    size_t ctxlen;
    char own[SESSENC_CONTEXT_MAX + 1];

    for (int i = 0; i < SESSENC_SECRET_LEN; i++)
        secret[i] = (uint8_t)i;
    try_context(secret, "session_data", data, size);
    if (sessenc_peek_context(&ctx, &ctxlen, data, size) == KM_OK) {
        if (ctxlen == 0 || ctxlen > SESSENC_CONTEXT_MAX || ctx != data + 1)
            abort();
        memcpy(own, ctx, ctxlen);
        own[ctxlen] = '\0';
        if (strlen(own) > 0) /* a context with a NUL cannot be named */
            try_context(secret, own, data, size);
    }
    return 0;
}
