/*
 * en_fixture.h - N in-process enclaves behind the test driver
 * (tests/integration/driver.h), for the enclave unit tests.
 */
#ifndef KM_TESTS_EN_FIXTURE_H
#define KM_TESTS_EN_FIXTURE_H

#include "driver.h"

struct en_fixture {
    struct drv_inproc ip;
    struct drv d;
};

/* Creates n enclaves (cfg may be NULL) and runs drv_init. Fails the test
 * on error. */
void en_fixture_start(struct en_fixture *f, size_t n, const struct enclave_config *cfg);
void en_fixture_stop(struct en_fixture *f);

/* Runs a command on enclave e and returns the reply (env_reply_clear it);
 * the JSON args are parsed from text. */
int en_fixture_call(struct en_fixture *f, size_t e, const char *cmd, const char *args_json,
                    struct env_reply *reply);

/* Expects reply to be an error with this code and a message containing
 * want (may be NULL); clears it. */
void en_expect_error(struct env_reply *reply, const char *code, const char *want);

/* Keygen shapes for drv_keygen setups: the BIP-86 tweak; and, for 5 users,
 * two subsets ({0, 3} and {1, 2, 4}) with the BIP-86 tweak and user 4
 * requiring approval. */
void en_keygen_taproot(struct drv_keygen *kg);
void en_keygen_two_subsets(struct drv_keygen *kg);

#endif
