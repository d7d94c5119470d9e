/*
 * enclave_dispatch_fuzz.c - the enclave dispatcher (enclave/enclave.h)
 * driven in-process, as the request server would drive it.
 *
 * Input: a sequence of frames (4-byte big-endian length, then an envelope)
 * as read from one connection; each is decoded and handled in order by one
 * fresh enclave whose key is fixed (every byte ENCLAVE_FUZZ_KEY_BYTE), so
 * corpus sequences hold real ciphertexts for it and reach deep states:
 * tests/integration/gen_fuzz_corpus.c records them from real flows.
 * Contract: every request ends in a JSON object result or an error with a
 * snake_case code; nothing crashes, leaks or aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/enclave.h"
#include "transport/frame.h"
#include "common/banned.h"

#define ENCLAVE_FUZZ_KEY_BYTE 0x01
#define MAX_FRAMES            64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void handle_one(struct enclave *en, const uint8_t *p, size_t n)
{
    struct env_request req;
    struct km_error err;
    bool has_id;
    if (env_request_decode(&req, &has_id, p, n, &err) != KM_OK)
        return; /* the server answers invalid_request itself */
    struct tp_call call = {.id = req.id,
                           .command_id = req.command_id,
                           .cmd = req.cmd,
                           .args = req.args,
                           .peer = "fuzz"};
    int rc = enclave_handle(en, &call);
    if (rc == KM_OK ? !json_is_object(call.result)
                    : !env_is_snake_name(call.error.code, ENV_ERROR_CODE_MAX))
        abort();
    json_decref(call.result);
    env_request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[32];
    struct km_error err;
    memset(key, ENCLAVE_FUZZ_KEY_BYTE, sizeof(key));
    struct enclave_config cfg = {.has_enclave_id = true, .enclave_id = 0, .seckey = key};
    struct enclave *en = enclave_new(&cfg, &err);
    if (en == NULL)
        abort();
    for (int i = 0; i < MAX_FRAMES && size > 0; i++) {
        size_t off = 0, len = 0, used = 0;
        if (frame_decode(data, size, FRAME_MAX_DEFAULT, &off, &len, &used, NULL) != KM_OK)
            break;
        handle_one(en, data + off, len);
        data += used;
        size -= used;
    }
    enclave_free(en);
    return 0;
}
