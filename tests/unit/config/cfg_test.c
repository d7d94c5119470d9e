#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_test.h"
#include "common/banned.h"

const char cfgt_dev_yaml[] = "environment: development\n" /* 1 */
                             "enclaves:\n"                /* 2 */
                             "  enclaves:\n"              /* 3 */
                             "    - id: 0\n"              /* 4 */
                             "      cid: 2\n"             /* 5 */
                             "      port: 5000\n"         /* 6 */
                             "    - id: 1\n"              /* 7 */
                             "      cid: 2\n"             /* 8 */
                             "      port: 5001\n"         /* 9 */
                             "    - id: 2\n"              /* 10 */
                             "      cid: 2\n"             /* 11 */
                             "      port: 5002\n";        /* 12 */

const char cfgt_prod_yaml[] = "environment: production\n" /* 1 */
                              "enclaves:\n"               /* 2 */
                              "  enclaves:\n"             /* 3 */
                              "    - id: 0\n"             /* 4 */
                              "      cid: 3\n"            /* 5 */
                              "      port: 8000\n"        /* 6 */
                              "    - id: 1\n"             /* 7 */
                              "      cid: 4\n"            /* 8 */
                              "      port: 8000\n"        /* 9 */
                              "    - id: 2\n"             /* 10 */
                              "      cid: 5\n"            /* 11 */
                              "      port: 8000\n";       /* 12 */

int cfgt_parse(struct cfg *c, struct cfg_diag *d, const char *yaml, const char *const *envp)
{
    struct cfg_getenv env;
    static const char *const empty[] = {NULL};
    cfg_getenv_envp(&env, envp ? envp : empty);
    return cfg_parse(c, (const uint8_t *)yaml, strlen(yaml), "test.yaml", &env, d);
}

int cfgt_full(struct cfg *c, struct cfg_diag *d, const char *yaml, const char *const *envp)
{
    struct cfg_getenv env;
    static const char *const empty[] = {NULL};
    cfg_getenv_envp(&env, envp ? envp : empty);
    int r = cfg_parse(c, (const uint8_t *)yaml, strlen(yaml), "test.yaml", &env, d);
    if (r == KM_OK || r == KM_ERR_CONFIG) {
        r = cfg_apply_env(c, &env, d);
        (void)r;
        r = cfg_validate(c, d);
        (void)r;
    }
    return d->errors == 0 ? KM_OK : KM_ERR_CONFIG;
}

const struct cfg_diag_entry *cfgt_find(const struct cfg_diag *d, enum cfg_severity sev,
                                       const char *needle)
{
    for (size_t i = 0; i < d->count; i++) {
        char line[1024];
        if (d->entries[i].severity != sev)
            continue;
        if (strstr(cfg_diag_format(line, sizeof(line), &d->entries[i]), needle) != NULL)
            return &d->entries[i];
    }
    return NULL;
}

void cfgt_dump(const struct cfg_diag *d)
{
    for (size_t i = 0; i < d->count; i++) {
        char line[1024];
        fprintf(stderr, "  [%s] %s\n", d->entries[i].severity == CFG_ERROR ? "error" : "warning",
                cfg_diag_format(line, sizeof(line), &d->entries[i]));
    }
}

void cfgt_one_error(const struct cfg_diag *d, const char *loc, const char *needle)
{
    const struct cfg_diag_entry *e = NULL;
    for (size_t i = 0; i < d->count; i++) {
        if (d->entries[i].severity == CFG_ERROR)
            e = &d->entries[i];
    }
    if (d->errors != 1 || e == NULL) {
        cfgt_dump(d);
        fail_msg("expected exactly one error, got %zu", d->errors);
    }
    if (strcmp(e->loc, loc) != 0 || strstr(e->msg, needle) == NULL) {
        cfgt_dump(d);
        fail_msg("expected an error at '%s' containing '%s'", loc, needle);
    }
}

void cfgt_clean(const struct cfg_diag *d)
{
    if (d->errors != 0 || d->warnings != 0) {
        cfgt_dump(d);
        fail_msg("expected no diagnostics, got %zu error(s), %zu warning(s)", d->errors,
                 d->warnings);
    }
}

const char *cfgt_source_path(const char *rel)
{
    static char path[4096];
    const char *dir = getenv("KEYMELD_SOURCE_DIR");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("KEYMELD_SOURCE_DIR is not set (run the test through ctest)");
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return path;
}

const struct cfg_enclave *cfgt_enclave(const struct cfg *c, uint32_t id)
{
    for (size_t i = 0; i < c->enclaves.count; i++) {
        if (c->enclaves.list[i].id == id)
            return &c->enclaves.list[i];
    }
    return NULL;
}
