/*
 * en_call.h - one command straight into enclave_handle (no driver, no
 * transport), for the enclave unit tests that hold a struct enclave.
 */
#ifndef KM_TESTS_EN_CALL_H
#define KM_TESTS_EN_CALL_H

#include <jansson.h>

#include "enclave/enclave.h"

/*
 * Fills out as a call of cmd with args (a new reference, consumed) and a
 * fresh command id, runs enclave_handle(en, out) and returns its result;
 * the reply stays in out. Fails the test if no id can be made.
 */
int en_call(struct enclave *en, const char *cmd, json_t *args, struct tp_call *out);

#endif /* KM_TESTS_EN_CALL_H */
