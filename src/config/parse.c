/*
 * parse.c - the YAML node tree to struct cfg (cfg_parse).
 *
 * Order: defaults for development; `environment` (switching to production
 * defaults when the file says so); then every section in file order. A bad
 * value is reported at its file:line with its key path and leaves the
 * default in place, so one run reports every problem in the file.
 */
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "common/banned.h"

#define KEYPATH_MAX 160

struct pctx {
    struct cfg *c;
    const struct cfg_ytree *t;
    const struct cfg_getenv *env;
    struct cfg_diag *diag;
    const char *file;
};

static const struct cfg_ynode *ynode(const struct pctx *p, uint32_t i)
{
    KM_ASSERT(i < p->t->n);
    return &p->t->nodes[i];
}

static bool key_is(const struct cfg_ynode *k, const char *name)
{
    size_t n = strlen(name);
    return k->kind == CFG_Y_SCALAR && k->len == n && memcmp(k->text, name, n) == 0;
}

static void perr(struct pctx *p, uint32_t line, const char *fmt, ...) KM_PRINTF(3, 4);
static void pwarn(struct pctx *p, uint32_t line, const char *fmt, ...) KM_PRINTF(3, 4);

static void padd(struct pctx *p, enum cfg_severity sev, uint32_t line, const char *fmt, va_list ap)
    KM_PRINTF(4, 0);

static void padd(struct pctx *p, enum cfg_severity sev, uint32_t line, const char *fmt, va_list ap)
{
    char msg[480];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cfg_diag_at(p->diag, sev, p->file, line, "%s", msg);
}

static void perr(struct pctx *p, uint32_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    padd(p, CFG_ERROR, line, fmt, ap);
    va_end(ap);
}

static void pwarn(struct pctx *p, uint32_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    padd(p, CFG_WARNING, line, fmt, ap);
    va_end(ap);
}

/* ---- "did you mean" --------------------------------------------------- */

static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

struct suggest {
    const char *best;
    size_t dist;
};

static void suggest_try(struct suggest *s, const struct cfg_ynode *k, const char *cand)
{
    size_t d = edit_distance(k->text, k->len, cand, strlen(cand));
    if (d < s->dist && d <= 2 && d < k->len) {
        s->dist = d;
        s->best = cand;
    }
}

/* Candidates: the keys of section (NULL: the top level; "[]": an enclave). */
static const char *suggest_key(const struct cfg_ynode *k, const char *section)
{
    struct suggest s = {NULL, SIZE_MAX};
    if (section == NULL) {
        static const char *const top[] = {"environment", "server",      "database", "kms",
                                          "enclaves",    "coordinator", "logging",  "security",
                                          "audit",       "development"};
        for (size_t i = 0; i < KM_ARRAY_LEN(top); i++)
            suggest_try(&s, k, top[i]);
    } else if (strcmp(section, "[]") == 0) {
        for (size_t i = 0; i < CFG_EF_COUNT; i++)
            suggest_try(&s, k, cfg_enclave_field_defs[i].key);
    } else {
        for (size_t i = 0; i < CFG_F_COUNT; i++) {
            const struct cfg_field_def *d = &cfg_field_defs[i];
            if (d->section != NULL && strcmp(d->section, section) == 0)
                suggest_try(&s, k, d->key);
        }
    }
    return s.best;
}

static void unknown_key(struct pctx *p, const struct cfg_ynode *k, const char *prefix,
                        const char *section)
{
    char q[80];
    const char *best = suggest_key(k, section);
    cfg_quote(q, sizeof(q), k->text, k->len, 64);
    if (best != NULL)
        pwarn(p, k->line, "unknown key %s%s (ignored): did you mean %s?", prefix, q, best);
    else
        pwarn(p, k->line, "unknown key %s%s (ignored)", prefix, q);
}

/* ---- ${VAR} expansion ------------------------------------------------- */

static bool var_char(char ch, bool first)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

/* Appends s[0..n) to out (cap CFG_MAX_SCALAR). */
static bool put(char *out, size_t *olen, const char *s, size_t n)
{
    if (n > CFG_MAX_SCALAR - *olen)
        return false;
    memcpy(out + *olen, s, n);
    *olen += n;
    return true;
}

/*
 * Expands ${NAME} in the scalar v into out (CFG_MAX_SCALAR + 1 bytes,
 * NUL-terminated). "$${" writes a literal "${". The first variable used is
 * copied to var. Unset variables are refused, never left as literal text
 * (the original passed "${KMS_KEY_ARN}" through verbatim).
 */
static int expand(struct pctx *p, const struct cfg_ynode *v, const char *keypath, char *out,
                  size_t *outlen, char var[CFG_VAR_NAME_MAX + 1])
{
    const char *s = v->text;
    size_t len = v->len, olen = 0, i = 0;
    var[0] = '\0';
    while (i < len) {
        if (s[i] != '$' || i + 1 >= len || (s[i + 1] != '{' && s[i + 1] != '$')) {
            if (!put(out, &olen, s + i, 1))
                goto too_long;
            i++;
            continue;
        }
        if (s[i + 1] == '$') { /* "$$" then "{" is an escaped "${" */
            bool esc = i + 2 < len && s[i + 2] == '{';
            if (!put(out, &olen, esc ? "${" : "$$", 2))
                goto too_long;
            i += esc ? 3 : 2;
            continue;
        }
        size_t start = i + 2, end = start;
        while (end < len && s[end] != '}' && end - start <= CFG_VAR_NAME_MAX)
            end++;
        if (end >= len || s[end] != '}') {
            perr(p, v->line,
                 "%s: unterminated or overlong ${...} (names are at most %d characters; write "
                 "$${ for a literal ${)",
                 keypath, CFG_VAR_NAME_MAX);
            return KM_ERR_CONFIG;
        }
        char name[CFG_VAR_NAME_MAX + 1];
        size_t nlen = end - start;
        if (nlen > CFG_VAR_NAME_MAX) {
            perr(p, v->line, "%s: variable name in ${...} longer than %d characters", keypath,
                 CFG_VAR_NAME_MAX);
            return KM_ERR_CONFIG;
        }
        bool ok = nlen > 0;
        for (size_t j = 0; j < nlen; j++)
            ok = ok && var_char(s[start + j], j == 0);
        if (!ok) {
            char q[80];
            perr(p, v->line,
                 "%s: '${%s}' is not a variable reference: names use A-Z, a-z, 0-9 and _", keypath,
                 cfg_quote(q, sizeof(q), s + start, nlen, 40));
            return KM_ERR_CONFIG;
        }
        memcpy(name, s + start, nlen);
        name[nlen] = '\0';
        const char *val = p->env ? p->env->get(p->env->ctx, name) : NULL;
        if (val == NULL) {
            perr(p, v->line,
                 "%s: environment variable %s is not set (referenced as ${%s}): export it or "
                 "write the value in the file",
                 keypath, name, name);
            return KM_ERR_CONFIG;
        }
        if (var[0] == '\0')
            memcpy(var, name, nlen + 1);
        if (!put(out, &olen, val, strlen(val)))
            goto too_long;
        i = end + 1;
    }
    out[olen] = '\0';
    *outlen = olen;
    return KM_OK;
too_long:
    perr(p, v->line, "%s: value longer than %u bytes after expanding ${...}", keypath,
         CFG_MAX_SCALAR);
    return KM_ERR_CONFIG;
}

/* ---- Values ----------------------------------------------------------- */

static const char *expectation(const struct cfg_field_def *d)
{
    switch (d->type) {
    case CFG_T_BOOL:
        return "true or false";
    case CFG_T_U32:
    case CFG_T_F64:
        return "a number";
    case CFG_T_LIST:
        return "a list";
    case CFG_T_SECTION:
        return "a mapping";
    case CFG_T_STR:
    case CFG_T_ENVIRONMENT:
    case CFG_T_LOG_LEVEL:
    case CFG_T_LOG_FORMAT:
    case CFG_T_TRANSPORT:
        break;
    }
    return "a single value";
}

/* Sets one scalar field from node v; on error reports and keeps the old
 * value and source. */
static void parse_value(struct pctx *p, const struct cfg_field_def *d, void *base,
                        struct cfg_src *src, const char *keypath, const struct cfg_ynode *v)
{
    if (v->kind != CFG_Y_SCALAR) {
        perr(p, v->line, "%s: expected %s, got %s", keypath, expectation(d),
             cfg_ynode_kind_name(v));
        return;
    }
    if (cfg_ynode_is_null(v)) {
        if (d->type == CFG_T_STR) { /* `key:` or `key: null` = empty text */
            ((char *)base + d->offset)[0] = '\0';
            memset(src, 0, sizeof(*src));
            src->kind = CFG_SRC_FILE;
            src->line = v->line;
            return;
        }
        pwarn(p, v->line, "%s: no value given: %s", keypath,
              src->kind == CFG_SRC_DEFAULT ? "the default applies" : "it stays unset");
        return;
    }
    char *buf = xmalloc(CFG_MAX_SCALAR + 1);
    char var[CFG_VAR_NAME_MAX + 1];
    char why[300];
    size_t n;
    if (expand(p, v, keypath, buf, &n, var) != KM_OK)
        goto out;
    if (cfg_value_set(d, base, buf, n, v->plain, why, sizeof(why)) != KM_OK) {
        if (var[0] != '\0')
            perr(p, v->line, "%s: %s (after expanding ${%s})", keypath, why, var);
        else
            perr(p, v->line, "%s: %s", keypath, why);
        goto out;
    }
    memset(src, 0, sizeof(*src));
    src->kind = CFG_SRC_FILE;
    src->line = v->line;
    memcpy(src->var, var, sizeof(src->var));
out:
    free(buf);
}

/* ---- Sections --------------------------------------------------------- */

static int find_field(const char *section, const struct cfg_ynode *k)
{
    for (int f = 0; f < CFG_F_COUNT; f++) {
        const struct cfg_field_def *d = &cfg_field_defs[f];
        if (d->section != NULL && strcmp(d->section, section) == 0 && key_is(k, d->key))
            return f;
    }
    return -1;
}

static const struct cfg_ignored_key *find_ignored(const char *section, const struct cfg_ynode *k)
{
    for (const struct cfg_ignored_key *ik = cfg_ignored_keys; ik->key != NULL; ik++) {
        if (strcmp(ik->section, section) == 0 && key_is(k, ik->key))
            return ik;
    }
    return NULL;
}

static void parse_enclave(struct pctx *p, struct cfg_enclave *e, size_t idx,
                          const struct cfg_ynode *item)
{
    for (uint32_t ki = item->first; ki != CFG_Y_NONE;) {
        const struct cfg_ynode *k = ynode(p, ki), *v = ynode(p, k->next);
        ki = v->next;
        char path[KEYPATH_MAX];
        int f = -1;
        for (int i = 0; i < CFG_EF_COUNT && f < 0; i++) {
            if (key_is(k, cfg_enclave_field_defs[i].key))
                f = i;
        }
        if (f < 0) {
            snprintf(path, sizeof(path), "enclaves.enclaves[%zu].", idx);
            unknown_key(p, k, path, "[]");
            continue;
        }
        snprintf(path, sizeof(path), "enclaves.enclaves[%zu].%s", idx,
                 cfg_enclave_field_defs[f].key);
        parse_value(p, &cfg_enclave_field_defs[f], e, &e->src[f], path, v);
    }
}

static void parse_enclave_list(struct pctx *p, const struct cfg_ynode *v)
{
    struct cfg_enclaves *en = &p->c->enclaves;
    struct cfg_src *src = &p->c->src[CFG_F_ENCLAVES_LIST];
    memset(src, 0, sizeof(*src));
    src->kind = CFG_SRC_FILE;
    src->line = v->line;
    if (cfg_ynode_is_null(v))
        return;
    if (v->kind != CFG_Y_SEQ) {
        perr(p, v->line,
             "enclaves.enclaves: expected a list of enclaves (items starting with '- id: 0'), "
             "got %s",
             cfg_ynode_kind_name(v));
        return;
    }
    if (v->count > CFG_MAX_ENCLAVES) {
        perr(p, v->line, "enclaves.enclaves has %u entries: at most %d enclaves are supported",
             v->count, CFG_MAX_ENCLAVES);
        return;
    }
    en->list = XALLOC_ARRAY(struct cfg_enclave, v->count ? v->count : 1);
    size_t idx = 0;
    for (uint32_t ii = v->first; ii != CFG_Y_NONE; ii = ynode(p, ii)->next, idx++) {
        const struct cfg_ynode *item = ynode(p, ii);
        if (item->kind != CFG_Y_MAP) {
            perr(p, item->line,
                 "enclaves.enclaves[%zu]: expected a mapping (id:, cid:, port:, ...), got %s", idx,
                 cfg_ynode_kind_name(item));
            continue;
        }
        struct cfg_enclave *e = &en->list[en->count++];
        cfg_enclave_init(e, item->line);
        parse_enclave(p, e, idx, item);
    }
}

static void parse_section(struct pctx *p, const char *section, const struct cfg_ynode *v)
{
    if (cfg_ynode_is_null(v))
        return;
    if (v->kind != CFG_Y_MAP) {
        perr(p, v->line, "%s: expected a mapping of settings (key: value), got %s", section,
             cfg_ynode_kind_name(v));
        return;
    }
    char prefix[KEYPATH_MAX];
    snprintf(prefix, sizeof(prefix), "%s.", section);
    for (uint32_t ki = v->first; ki != CFG_Y_NONE;) {
        const struct cfg_ynode *k = ynode(p, ki), *val = ynode(p, k->next);
        int f = find_field(section, k);
        const struct cfg_ignored_key *ik;
        if (f == CFG_F_ENCLAVES_LIST) {
            parse_enclave_list(p, val);
        } else if (f >= 0) {
            const struct cfg_field_def *d = &cfg_field_defs[f];
            parse_value(p, d, p->c, &p->c->src[f], d->path, val);
        } else if ((ik = find_ignored(section, k)) != NULL) {
            pwarn(p, k->line, "%s.%s is accepted for compatibility but has no effect (%s)", section,
                  ik->key, ik->hint);
        } else {
            unknown_key(p, k, prefix, section);
        }
        ki = val->next;
    }
}

/* `environment` first: it selects the defaults of everything else. */
static void parse_environment(struct pctx *p, const struct cfg_ynode *root)
{
    for (uint32_t ki = root->first; ki != CFG_Y_NONE;) {
        const struct cfg_ynode *k = ynode(p, ki);
        ki = ynode(p, k->next)->next;
        if (!key_is(k, "environment"))
            continue;
        parse_value(p, &cfg_field_defs[CFG_F_ENVIRONMENT], p->c, &p->c->src[CFG_F_ENVIRONMENT],
                    "environment", ynode(p, k->next));
        if (p->c->environment != CFG_DEVELOPMENT)
            cfg_redefault(p->c);
        return;
    }
}

/* Returns KM_ERR_INVALID when the document is not a mapping at all. */
static int parse_root(struct pctx *p)
{
    if (p->t->root == CFG_Y_NONE)
        return KM_OK;
    const struct cfg_ynode *root = ynode(p, p->t->root);
    if (cfg_ynode_is_null(root))
        return KM_OK;
    if (root->kind != CFG_Y_MAP) {
        perr(p, root->line,
             "the top level must be a mapping of sections (environment:, server:, enclaves:, "
             "...), got %s",
             cfg_ynode_kind_name(root));
        return KM_ERR_INVALID;
    }
    parse_environment(p, root);
    for (uint32_t ki = root->first; ki != CFG_Y_NONE;) {
        const struct cfg_ynode *k = ynode(p, ki), *v = ynode(p, k->next);
        ki = v->next;
        if (key_is(k, "environment"))
            continue;
        if (k->len != strlen(k->text) || !cfg_is_section(k->text)) {
            unknown_key(p, k, "", NULL);
            continue;
        }
        if (key_is(k, "development")) {
            struct cfg_src *s = &p->c->src[CFG_F_DEVELOPMENT_SECTION];
            memset(s, 0, sizeof(*s));
            s->kind = CFG_SRC_FILE;
            s->line = k->line;
            p->c->development.present = true;
        }
        parse_section(p, k->text, v);
    }
    return KM_OK;
}

int cfg_parse(struct cfg *out, const uint8_t *data, size_t len, const char *source_name,
              const struct cfg_getenv *env, struct cfg_diag *diag)
{
    KM_ASSERT(out != NULL && diag != NULL && (data != NULL || len == 0));
    size_t errors = diag->errors;
    cfg_init(out, CFG_DEVELOPMENT);
    out->path = xstrdup(source_name ? source_name : "<input>");
    if (len > CFG_MAX_FILE_SIZE) {
        cfg_diag_at(diag, CFG_ERROR, out->path, 0,
                    "file is %zu bytes: a configuration may be at most %u bytes", len,
                    CFG_MAX_FILE_SIZE);
        return KM_ERR_TOO_LARGE;
    }
    struct cfg_ytree t;
    if (cfg_ytree_build(&t, data, len, out->path, diag) != KM_OK) {
        cfg_ytree_release(&t);
        return KM_ERR_INVALID;
    }
    struct pctx p = {.c = out, .t = &t, .env = env, .diag = diag, .file = out->path};
    int r = parse_root(&p);
    cfg_ytree_release(&t);
    if (r != KM_OK)
        return r;
    return diag->errors > errors ? KM_ERR_CONFIG : KM_OK;
}
