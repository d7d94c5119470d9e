/*
 * load.c - choosing and reading the configuration file (cfg_load).
 *
 * Load order (DESIGN.md section 5): --config PATH, else CONFIG_PATH, else
 * config/<env>.yaml with env from KEYMELD_ENVIRONMENT (default development).
 * A missing file is an error, never a silent fall-back to built-in defaults
 * (the original's Helm chart set the wrong variable and the gateway quietly
 * ran development defaults in production).
 */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "common/banned.h"

#define LOAD_PATH_MAX 4096

/* Reads at most CFG_MAX_FILE_SIZE bytes of path. On success *data is
 * malloc'd (caller frees). On failure adds an error naming the file. */
static int read_file(const char *path, const char *hint, uint8_t **data, size_t *len,
                     struct cfg_diag *d)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_diag_add(d, CFG_ERROR, path, "cannot open the configuration file: %s%s",
                     strerror(errno), hint);
        return KM_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        cfg_diag_add(d, CFG_ERROR, path, "is a directory, not a configuration file%s", hint);
        return KM_ERR_IO;
    }
    size_t cap = CFG_MAX_FILE_SIZE + 1, n = 0;
    uint8_t *buf = xmalloc(cap);
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            cfg_diag_add(d, CFG_ERROR, path, "cannot read the configuration file: %s", strerror(e));
            return KM_ERR_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > CFG_MAX_FILE_SIZE) {
        free(buf);
        cfg_diag_add(d, CFG_ERROR, path,
                     "larger than %u bytes: this is not a KeyMeld configuration file",
                     CFG_MAX_FILE_SIZE);
        return KM_ERR_TOO_LARGE;
    }
    *data = buf;
    *len = n;
    return KM_OK;
}

struct choice {
    char path[LOAD_PATH_MAX];
    enum cfg_path_origin origin;
    enum cfg_environment env;
    const char *hint;
};

/* Picks the file. Returns KM_OK or KM_ERR_CONFIG (reported). */
static int choose_file(struct choice *ch, const struct cfg_load_opts *opts,
                       const struct cfg_getenv *env, struct cfg_diag *d)
{
    ch->env = CFG_DEVELOPMENT;
    if (opts->path != NULL) {
        if (opts->path[0] == '\0') {
            cfg_diag_add(d, CFG_ERROR, "--config", "needs a file name");
            return KM_ERR_CONFIG;
        }
        snprintf(ch->path, sizeof(ch->path), "%s", opts->path);
        ch->origin = CFG_PATH_ARG;
        ch->hint = " (check the --config argument)";
        return KM_OK;
    }
    const char *cp = env->get(env->ctx, "CONFIG_PATH");
    if (cp != NULL) {
        if (cp[0] == '\0') {
            cfg_diag_add(d, CFG_ERROR, "env CONFIG_PATH",
                         "set but empty: point it at a configuration file, or unset it to use "
                         "config/<environment>.yaml");
            return KM_ERR_CONFIG;
        }
        snprintf(ch->path, sizeof(ch->path), "%s", cp);
        ch->origin = CFG_PATH_CONFIG_PATH;
        ch->hint = " (CONFIG_PATH names it: fix or unset the variable)";
        return KM_OK;
    }
    const char *ke = env->get(env->ctx, "KEYMELD_ENVIRONMENT");
    if (ke != NULL) {
        char why[200];
        struct cfg tmp;
        cfg_init(&tmp, CFG_DEVELOPMENT);
        if (cfg_value_set(&cfg_field_defs[CFG_F_ENVIRONMENT], &tmp, ke, strlen(ke), true, why,
                          sizeof(why)) != KM_OK) {
            cfg_diag_add(d, CFG_ERROR, "env KEYMELD_ENVIRONMENT",
                         "invalid environment: %s (it also selects config/<environment>.yaml; "
                         "fix or unset KEYMELD_ENVIRONMENT)",
                         why);
            cfg_release(&tmp);
            return KM_ERR_CONFIG;
        }
        ch->env = tmp.environment;
        cfg_release(&tmp);
    }
    const char *base = opts->base_dir ? opts->base_dir : ".";
    const char *name = ch->env == CFG_PRODUCTION ? "production" : "development";
    if (strcmp(base, ".") == 0)
        snprintf(ch->path, sizeof(ch->path), "config/%s.yaml", name);
    else
        snprintf(ch->path, sizeof(ch->path), "%s/config/%s.yaml", base, name);
    ch->origin = CFG_PATH_DEFAULT;
    ch->hint = " (run from the repository root, pass --config FILE, or set CONFIG_PATH)";
    return KM_OK;
}

int cfg_load(struct cfg *out, const struct cfg_load_opts *opts, struct cfg_diag *diag)
{
    KM_ASSERT(out != NULL && diag != NULL);
    static const struct cfg_load_opts none;
    struct cfg_getenv process;
    if (opts == NULL)
        opts = &none;
    const struct cfg_getenv *env = opts->env;
    if (env == NULL) {
        cfg_getenv_process(&process);
        env = &process;
    }
    size_t errors = diag->errors;
    struct choice ch;
    memset(&ch, 0, sizeof(ch));
    if (choose_file(&ch, opts, env, diag) != KM_OK) {
        cfg_init(out, ch.env);
        return KM_ERR_CONFIG;
    }
    uint8_t *data;
    size_t len;
    if (read_file(ch.path, ch.hint, &data, &len, diag) != KM_OK) {
        cfg_init(out, ch.env);
        out->path = xstrdup(ch.path);
        out->path_origin = ch.origin;
        return KM_ERR_CONFIG;
    }
    int r = cfg_parse(out, data, len, ch.path, env, diag);
    free(data);
    out->path_origin = ch.origin;
    /* Unreadable YAML: overrides and rules would only add noise. */
    if (r == KM_OK || r == KM_ERR_CONFIG) {
        if (cfg_apply_env(out, env, diag) != KM_OK)
            r = KM_ERR_CONFIG;
        if (cfg_validate(out, diag) != KM_OK)
            r = KM_ERR_CONFIG;
    }
    return r == KM_OK && diag->errors == errors ? KM_OK : KM_ERR_CONFIG;
}
