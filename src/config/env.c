/*
 * env.c - environment access and overrides (cfg_apply_env).
 *
 * Rules (DESIGN.md section 5): a variable that is set must parse, or it is
 * an error naming it (the original ignored a bad KEYMELD_PORT and turned an
 * unknown KEYMELD_ENVIRONMENT into development). Only enclaves listed in the
 * file can be overridden; a KEYMELD_ENCLAVE_<id>_* variable for an id that
 * is not configured is reported as a warning, since it is almost always a
 * typo or a stale deployment script.
 */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/banned.h"

#define ENV_PREFIX_ENCLAVE "KEYMELD_ENCLAVE_"
#define ENV_SCAN_MAX       100000 /* environment entries looked at, at most */

extern char **environ;

static const char *process_get(const void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static const char *process_entry(const void *ctx, size_t i)
{
    (void)ctx;
    return environ != NULL ? environ[i] : NULL;
}

void cfg_getenv_process(struct cfg_getenv *out)
{
    out->get = process_get;
    out->entry = process_entry;
    out->ctx = NULL;
}

static const char *envp_get(const void *ctx, const char *name)
{
    const char *const *envp = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

static const char *envp_entry(const void *ctx, size_t i)
{
    const char *const *envp = ctx;
    return envp != NULL ? envp[i] : NULL;
}

void cfg_getenv_envp(struct cfg_getenv *out, const char *const *envp)
{
    out->get = envp_get;
    out->entry = envp_entry;
    out->ctx = envp;
}

/*
 * Applies variable var (if set) to field def at base. what names the target
 * in messages ("server.port", "CID of enclave 0").
 */
static void apply_one(const struct cfg_getenv *env, struct cfg_diag *d, const char *var,
                      const struct cfg_field_def *def, void *base, struct cfg_src *src,
                      const char *what)
{
    const char *val = env->get(env->ctx, var);
    if (val == NULL)
        return;
    char loc[CFG_VAR_NAME_MAX + 8];
    snprintf(loc, sizeof(loc), "env %s", var);
    size_t len = strnlen(val, CFG_MAX_SCALAR + 1);
    if (len == 0) {
        cfg_diag_add(d, CFG_ERROR, loc, "set but empty: give it a value for %s, or unset it", what);
        return;
    }
    if (len > CFG_MAX_SCALAR) {
        cfg_diag_add(d, CFG_ERROR, loc, "value longer than %u bytes", CFG_MAX_SCALAR);
        return;
    }
    char why[300];
    if (cfg_value_set(def, base, val, len, true, why, sizeof(why)) != KM_OK) {
        cfg_diag_add(d, CFG_ERROR, loc, "invalid %s: %s (fix or unset %s)", what, why, var);
        return;
    }
    memset(src, 0, sizeof(*src));
    src->kind = CFG_SRC_ENV;
    snprintf(src->var, sizeof(src->var), "%s", var);
}

/* KEYMELD_ENVIRONMENT wins over the file's `environment`, and says so when
 * they disagree (the original overrode it silently). */
static void apply_environment(struct cfg *c, const struct cfg_getenv *env, struct cfg_diag *d)
{
    struct cfg_src before_src = c->src[CFG_F_ENVIRONMENT];
    enum cfg_environment before = c->environment;
    apply_one(env, d, "KEYMELD_ENVIRONMENT", &cfg_field_defs[CFG_F_ENVIRONMENT], c,
              &c->src[CFG_F_ENVIRONMENT], "environment (development or production)");
    if (c->src[CFG_F_ENVIRONMENT].kind != CFG_SRC_ENV || c->environment == before)
        return;
    if (before_src.kind == CFG_SRC_FILE) {
        char where[400];
        cfg_src_describe(where, sizeof(where), c, &before_src);
        cfg_diag_add(d, CFG_WARNING, "env KEYMELD_ENVIRONMENT",
                     "overrides 'environment: %s' (%s): the effective environment is %s",
                     before == CFG_PRODUCTION ? "production" : "development", where,
                     cfg_environment_name(c->environment));
    }
    cfg_redefault(c);
}

static void apply_top(struct cfg *c, const struct cfg_getenv *env, struct cfg_diag *d)
{
    static const struct {
        const char *var;
        enum cfg_field field;
    } overrides[] = {
        {"KEYMELD_HOST", CFG_F_SERVER_HOST},
        {"KEYMELD_PORT", CFG_F_SERVER_PORT},
        {"KEYMELD_TLS_CERT_FILE", CFG_F_SERVER_TLS_CERT_FILE},
        {"KEYMELD_TLS_KEY_FILE", CFG_F_SERVER_TLS_KEY_FILE},
        {"KEYMELD_ALLOW_PLAIN_HTTP", CFG_F_SERVER_ALLOW_PLAIN_HTTP},
        {"KEYMELD_CORS_ALLOWED_ORIGINS", CFG_F_SERVER_CORS_ALLOWED_ORIGINS},
        {"KEYMELD_DATABASE_PATH", CFG_F_DATABASE_PATH},
        {"KEYMELD_DATABASE_URL", CFG_F_DATABASE_URL},
        {"KEYMELD_LOG_LEVEL", CFG_F_LOGGING_LEVEL},
        {"KEYMELD_LOG_FORMAT", CFG_F_LOGGING_FORMAT},
        {"KEYMELD_ENABLE_ATTESTATION", CFG_F_SECURITY_ENABLE_ATTESTATION},
        {"KEYMELD_ATTESTATION_ROOT", CFG_F_SECURITY_ATTESTATION_ROOT},
        {"KEYMELD_ATTESTATION_PCRS", CFG_F_SECURITY_ATTESTATION_PCRS},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(overrides); i++) {
        const struct cfg_field_def *def = &cfg_field_defs[overrides[i].field];
        apply_one(env, d, overrides[i].var, def, c, &c->src[overrides[i].field], def->path);
    }
}

static void apply_enclaves(struct cfg *c, const struct cfg_getenv *env, struct cfg_diag *d)
{
    for (size_t i = 0; i < c->enclaves.count; i++) {
        struct cfg_enclave *e = &c->enclaves.list[i];
        if (e->src[CFG_EF_ID].kind != CFG_SRC_FILE)
            continue; /* no id, no variable names */
        for (unsigned f = 0; f < CFG_EF_COUNT; f++) {
            if (cfg_enclave_env_suffix[f] == NULL)
                continue;
            char var[CFG_VAR_NAME_MAX + 1], what[64];
            cfg_enclave_env_name(var, sizeof(var), e->id, cfg_enclave_env_suffix[f]);
            snprintf(what, sizeof(what), "%s of enclave %u", cfg_enclave_field_defs[f].key, e->id);
            apply_one(env, d, var, &cfg_enclave_field_defs[f], e, &e->src[f], what);
        }
    }
}

static bool enclave_configured(const struct cfg *c, uint32_t id)
{
    for (size_t i = 0; i < c->enclaves.count; i++) {
        const struct cfg_enclave *e = &c->enclaves.list[i];
        if (e->src[CFG_EF_ID].kind == CFG_SRC_FILE && e->id == id)
            return true;
    }
    return false;
}

/* Checks one "KEYMELD_ENCLAVE_..." name (without "=VALUE"). */
static void check_enclave_var(const struct cfg *c, const char *name, size_t len, struct cfg_diag *d)
{
    char loc[CFG_VAR_NAME_MAX + 8];
    snprintf(loc, sizeof(loc), "env %.*s", (int)(len > CFG_VAR_NAME_MAX ? CFG_VAR_NAME_MAX : len),
             name);
    const char *p = name + strlen(ENV_PREFIX_ENCLAVE), *end = name + len;
    uint64_t id = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && id <= UINT32_MAX)
        id = id * 10 + (uint64_t)(*p++ - '0');
    bool ok_id = p > digits && id <= UINT32_MAX && !(p - digits > 1 && *digits == '0');
    const char *suffix = p < end && *p == '_' ? p + 1 : NULL;
    unsigned f = CFG_EF_COUNT;
    for (unsigned i = 0; suffix != NULL && i < CFG_EF_COUNT; i++) {
        const char *s = cfg_enclave_env_suffix[i];
        if (s != NULL && (size_t)(end - suffix) == strlen(s) && memcmp(suffix, s, strlen(s)) == 0)
            f = i;
    }
    if (!ok_id || f == CFG_EF_COUNT) {
        cfg_diag_add(d, CFG_WARNING, loc,
                     "not a KeyMeld variable (ignored): expected "
                     "KEYMELD_ENCLAVE_<id>_{CID,PORT,TRANSPORT,TCP_HOST,UNIX_PATH}");
        return;
    }
    if (!enclave_configured(c, (uint32_t)id))
        cfg_diag_add(d, CFG_WARNING, loc,
                     "no enclave with id %u in %s (ignored): environment variables cannot add "
                     "enclaves; add '- id: %u' to enclaves.enclaves",
                     (uint32_t)id, c->path && c->path[0] ? c->path : "the configuration",
                     (uint32_t)id);
}

static void warn_unknown_enclave_vars(const struct cfg *c, const struct cfg_getenv *env,
                                      struct cfg_diag *d)
{
    if (env->entry == NULL)
        return;
    size_t plen = strlen(ENV_PREFIX_ENCLAVE);
    for (size_t i = 0; i < ENV_SCAN_MAX; i++) {
        const char *entry = env->entry(env->ctx, i);
        if (entry == NULL)
            break;
        if (strncmp(entry, ENV_PREFIX_ENCLAVE, plen) != 0)
            continue;
        const char *eq = strchr(entry, '=');
        size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
        check_enclave_var(c, entry, len, d);
    }
}

int cfg_apply_env(struct cfg *c, const struct cfg_getenv *env, struct cfg_diag *diag)
{
    KM_ASSERT(c != NULL && env != NULL && env->get != NULL && diag != NULL);
    size_t errors = diag->errors;
    apply_environment(c, env, diag);
    apply_top(c, env, diag);
    apply_enclaves(c, env, diag);
    warn_unknown_enclave_vars(c, env, diag);
    return diag->errors > errors ? KM_ERR_CONFIG : KM_OK;
}
