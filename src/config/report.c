/*
 * report.c - where values came from, and the `keymeld config check` report.
 *
 * The gateway logs the same per-enclave lines at start-up (the seed: "log
 * actual CIDs used for debugging"), so an operator can see at once that
 * KEYMELD_ENCLAVE_0_CID took effect, or that it did not.
 */
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/banned.h"

#define DESC_MAX 1400

char *cfg_quote(char *out, size_t outcap, const char *s, size_t len, size_t max)
{
    size_t o = 0;
    KM_ASSERT(outcap > 4);
    for (size_t i = 0; i < len && i < max && o + 4 < outcap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (len > max && o + 4 <= outcap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static const char *file_name(const struct cfg *c)
{
    return c->path != NULL ? c->path : "";
}

void cfg_diag_src(struct cfg_diag *d, enum cfg_severity sev, const struct cfg *c,
                  const struct cfg_src *s, const char *fmt, ...)
{
    char loc[sizeof(d->entries[0].loc)], msg[sizeof(d->entries[0].msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    switch (s->kind) {
    case CFG_SRC_ENV:
        snprintf(loc, sizeof(loc), "env %s", s->var);
        break;
    case CFG_SRC_FILE:
        snprintf(loc, sizeof(loc), "%.300s:%u", file_name(c), s->line);
        break;
    case CFG_SRC_DEFAULT:
    case CFG_SRC_UNSET:
    default:
        snprintf(loc, sizeof(loc), "%.300s", file_name(c));
        break;
    }
    cfg_diag_add(d, sev, loc, "%s", msg);
}

const char *cfg_environment_name(enum cfg_environment env)
{
    return env == CFG_PRODUCTION ? "Production" : "Development";
}

const char *cfg_field_key(enum cfg_field f)
{
    return (unsigned)f < CFG_F_COUNT ? cfg_field_defs[f].path : "?";
}

const char *cfg_enclave_field_key(enum cfg_enclave_field f)
{
    return (unsigned)f < CFG_EF_COUNT ? cfg_enclave_field_defs[f].path : "?";
}

const struct cfg_src *cfg_source(const struct cfg *c, enum cfg_field f)
{
    KM_ASSERT((unsigned)f < CFG_F_COUNT);
    return &c->src[f];
}

const char *cfg_database_url(const struct cfg *c)
{
    return c->database.url[0] ? c->database.url : c->database.path;
}

enum cfg_field cfg_database_field(const struct cfg *c)
{
    return c->database.url[0] ? CFG_F_DATABASE_URL : CFG_F_DATABASE_PATH;
}

char *cfg_database_describe(char *out, size_t outcap, const struct cfg *c)
{
    const char *u = cfg_database_url(c);
    const char *scheme = strstr(u, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon == NULL) /* no password in it */
        snprintf(out, outcap, "%s", u);
    else
        snprintf(out, outcap, "%.*s:***%s", (int)(colon - u), u, at);
    return out;
}

char *cfg_src_describe(char *out, size_t outcap, const struct cfg *c, const struct cfg_src *s)
{
    switch (s->kind) {
    case CFG_SRC_ENV:
        snprintf(out, outcap, "env %s", s->var);
        break;
    case CFG_SRC_FILE:
        if (s->var[0] != '\0')
            snprintf(out, outcap, "file %.300s:%u via ${%s}", file_name(c), s->line, s->var);
        else
            snprintf(out, outcap, "file %.300s:%u", file_name(c), s->line);
        break;
    case CFG_SRC_DEFAULT:
        snprintf(out, outcap, "default");
        break;
    case CFG_SRC_UNSET:
    default:
        snprintf(out, outcap, "not set");
        break;
    }
    return out;
}

char *cfg_enclave_env_name(char *out, size_t outcap, uint32_t id, const char *suffix)
{
    snprintf(out, outcap, "KEYMELD_ENCLAVE_%u_%s", id, suffix);
    return out;
}

/* Appends ", name value (source)" for one enclave field to out. */
static void describe_field(char *out, size_t outcap, const struct cfg *c,
                           const struct cfg_enclave *e, enum cfg_enclave_field f)
{
    const struct cfg_field_def *d = &cfg_enclave_field_defs[f];
    char val[TP_ADDR_STR_MAX], src[400];
    size_t used = strlen(out);
    if (e->src[f].kind == CFG_SRC_UNSET)
        snprintf(val, sizeof(val), "not set");
    else if (f == CFG_EF_TCP_HOST && e->tcp_host[0] == '\0')
        snprintf(val, sizeof(val), "localhost");
    else
        cfg_value_format(val, sizeof(val), d, e);
    if (e->src[f].kind == CFG_SRC_UNSET)
        snprintf(out + used, outcap - used, "%s%s not set",
                 used && out[used - 1] != '[' ? ", " : "", d->key);
    else
        snprintf(out + used, outcap - used, "%s%s %s (%s)",
                 used && out[used - 1] != '[' ? ", " : "", d->key, val,
                 cfg_src_describe(src, sizeof(src), c, &e->src[f]));
}

char *cfg_enclave_describe(char *out, size_t outcap, const struct cfg *c,
                           const struct cfg_enclave *e)
{
    static const enum cfg_enclave_field vsock[] = {CFG_EF_CID, CFG_EF_PORT, CFG_EF_TRANSPORT};
    static const enum cfg_enclave_field tcp[] = {CFG_EF_TCP_HOST, CFG_EF_PORT, CFG_EF_TRANSPORT};
    static const enum cfg_enclave_field unix_[] = {CFG_EF_UNIX_PATH, CFG_EF_TRANSPORT};
    const enum cfg_enclave_field *fields = vsock;
    size_t n = KM_ARRAY_LEN(vsock);
    if (e->transport == TP_KIND_TCP) {
        fields = tcp;
        n = KM_ARRAY_LEN(tcp);
    } else if (e->transport == TP_KIND_UNIX) {
        fields = unix_;
        n = KM_ARRAY_LEN(unix_);
    }
    char addr[TP_ADDR_STR_MAX];
    if (e->addr_ok)
        tp_addr_format(addr, sizeof(addr), &e->addr);
    else
        snprintf(addr, sizeof(addr), "(invalid address)");
    KM_ASSERT(outcap > 0);
    int w = snprintf(out, outcap, "%s  [", addr);
    if (w < 0 || (size_t)w >= outcap)
        return out;
    for (size_t i = 0; i < n; i++)
        describe_field(out, outcap, c, e, fields[i]);
    size_t used = strlen(out);
    snprintf(out + used, outcap - used, "]");
    return out;
}

static const char *origin_text(const struct cfg *c)
{
    switch (c->path_origin) {
    case CFG_PATH_ARG:
        return "from --config";
    case CFG_PATH_CONFIG_PATH:
        return "from CONFIG_PATH";
    case CFG_PATH_DEFAULT:
        return c->environment == CFG_PRODUCTION && c->src[CFG_F_ENVIRONMENT].kind == CFG_SRC_ENV
                   ? "default for KEYMELD_ENVIRONMENT=production"
                   : "default for the environment";
    case CFG_PATH_NONE:
        break;
    }
    return "given directly";
}

static void print_diags(FILE *out, const struct cfg_diag *d, enum cfg_severity sev,
                        const char *title)
{
    size_t total = sev == CFG_ERROR ? d->errors : d->warnings, shown = 0;
    if (total == 0)
        return;
    fprintf(out, "%s:\n", title);
    for (size_t i = 0; i < d->count; i++) {
        char line[sizeof(d->entries[0].loc) + sizeof(d->entries[0].msg) + 4];
        if (d->entries[i].severity != sev)
            continue;
        fprintf(out, "  %s\n", cfg_diag_format(line, sizeof(line), &d->entries[i]));
        shown++;
    }
    if (shown < total)
        fprintf(out, "  ... and %zu more (not shown)\n", total - shown);
}

void cfg_check_print(FILE *out, const struct cfg *c, const struct cfg_diag *d)
{
    char src[400], src2[400], line[DESC_MAX];
    fprintf(out, "Config: %s (%s)\n", c->path && c->path[0] ? c->path : "(none)", origin_text(c));
    fprintf(out, "Environment: %s (%s)\n", cfg_environment_name(c->environment),
            cfg_src_describe(src, sizeof(src), c, &c->src[CFG_F_ENVIRONMENT]));
    bool v6 = strchr(c->server.host, ':') != NULL;
    fprintf(out, "Server: %s%s%s:%u  [host (%s), port (%s)]\n", v6 ? "[" : "", c->server.host,
            v6 ? "]" : "", c->server.port,
            cfg_src_describe(src, sizeof(src), c, &c->src[CFG_F_SERVER_HOST]),
            cfg_src_describe(src2, sizeof(src2), c, &c->src[CFG_F_SERVER_PORT]));
    if (c->server.tls_cert_file[0] != '\0')
        fprintf(out, "TLS: HTTPS with %s  (%s)\n", c->server.tls_cert_file,
                cfg_src_describe(src, sizeof(src), c, &c->src[CFG_F_SERVER_TLS_CERT_FILE]));
    else
        fprintf(out, "TLS: none (plain HTTP%s)\n",
                c->server.allow_plain_http ? ": server.allow_plain_http, TLS ends in front" : "");
    fprintf(out, "Database: %s  (%s)\n", cfg_database_describe(line, sizeof(line), c),
            cfg_src_describe(src, sizeof(src), c, &c->src[cfg_database_field(c)]));
    fprintf(out, "Enclaves: %zu\n", c->enclaves.count);
    for (size_t i = 0; i < c->enclaves.count; i++) {
        const struct cfg_enclave *e = &c->enclaves.list[i];
        cfg_enclave_describe(line, sizeof(line), c, e);
        if (e->src[CFG_EF_ID].kind != CFG_SRC_UNSET)
            fprintf(out, "  enclave %u: %s\n", e->id, line);
        else
            fprintf(out, "  enclaves.enclaves[%zu] (no id): %s\n", i, line);
    }
    print_diags(out, d, CFG_WARNING, "Warnings");
    print_diags(out, d, CFG_ERROR, "Errors");
    if (d->errors == 0 && d->warnings == 0)
        fprintf(out, "Configuration OK\n");
    else if (d->errors == 0)
        fprintf(out, "Configuration OK (%zu warning%s)\n", d->warnings,
                d->warnings == 1 ? "" : "s");
    else
        fprintf(out, "Configuration invalid: %zu error(s)\n", d->errors);
}
