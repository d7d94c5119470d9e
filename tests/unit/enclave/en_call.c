/*
 * en_call.c - see en_call.h.
 */
#include "en_call.h"

#include "test.h"

#include <string.h>

#include "common/uuid.h"
#include "common/banned.h"

int en_call(struct enclave *en, const char *cmd, json_t *args, struct tp_call *out)
{
    memset(out, 0, sizeof(*out));
    out->cmd = cmd;
    out->args = args;
    CHECK_OK(uuid_v7_new(&out->command_id));
    int r = enclave_handle(en, out);
    json_decref(out->args);
    out->args = NULL;
    return r;
}
