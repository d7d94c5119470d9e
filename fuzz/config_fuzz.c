/*
 * config_fuzz.c - the configuration loader on arbitrary bytes: cfg_parse,
 * then (when the YAML was readable) the environment overrides, validation
 * and the `config check` report, under two fake environments. Any crash,
 * sanitizer report, leak or KM_BUG is a finding.
 */
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const env_dev[] = {"KMS_KEY_ARN=arn:aws:kms:eu-west-1:1:key/k", "PORT=5000",
                                      "KEYMELD_ENCLAVE_1_TRANSPORT=tcp", "KEYMELD_ENCLAVE_7_CID=3",
                                      NULL};
static const char *const env_prod[] = {
    "KEYMELD_ENVIRONMENT=production", "KEYMELD_ENCLAVE_0_CID=16", "KEYMELD_ENCLAVE_1_CID=16",
    "KEYMELD_ENCLAVE_2_PORT=x",       "KEYMELD_PORT=8443",        NULL};

static void run(const uint8_t *data, size_t size, const char *const *envp, FILE *sink)
{
    struct cfg c;
    struct cfg_diag d;
    struct cfg_getenv env;
    cfg_diag_init(&d);
    cfg_getenv_envp(&env, envp);
    int r = cfg_parse(&c, data, size, "fuzz.yaml", &env, &d);
    if (r == KM_OK || r == KM_ERR_CONFIG) {
        r = cfg_apply_env(&c, &env, &d);
        r = cfg_validate(&c, &d);
    }
    (void)r;
    if (sink != NULL)
        cfg_check_print(sink, &c, &d);
    cfg_release(&c);
    cfg_diag_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL)
        sink = fopen("/dev/null", "w");
    run(data, size, env_dev, sink);
    run(data, size, env_prod, sink);
    return 0;
}
