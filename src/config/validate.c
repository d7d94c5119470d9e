/*
 * validate.c - cross-field and per-environment rules (cfg_validate).
 *
 * Every message names what to change (a YAML key or an environment
 * variable) and is located at the source of the offending value, so an
 * error about a CID set by KEYMELD_ENCLAVE_0_CID points at that variable,
 * not at the file. Texts the original printed are kept where operators may
 * search for them (the seed's "Duplicate enclave CIDs detected").
 */
#include "config/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"

#define LABEL_MAX 48

struct vctx {
    struct cfg *c;
    struct cfg_diag *d;
};

/* "enclave 3", or "enclaves.enclaves[2]" when the entry has no id. */
static const char *label(char *out, size_t cap, const struct cfg_enclave *e, size_t idx)
{
    if (e->src[CFG_EF_ID].kind != CFG_SRC_UNSET)
        snprintf(out, cap, "enclave %u", e->id);
    else
        snprintf(out, cap, "enclaves.enclaves[%zu]", idx);
    return out;
}

/* The location of the enclave's list item. */
static struct cfg_src item_src(const struct cfg_enclave *e)
{
    struct cfg_src s = {.kind = CFG_SRC_FILE, .line = e->line};
    return s;
}

static bool is_vsock(const struct cfg_enclave *e)
{
    return e->transport == TP_KIND_VSOCK;
}

/* ---- Enclaves --------------------------------------------------------- */

static void check_count(struct vctx *v)
{
    const struct cfg_src *s = &v->c->src[CFG_F_ENCLAVES_LIST];
    if (s->kind == CFG_SRC_UNSET) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, s,
                     "enclaves.enclaves is missing: list at least 2 enclaves (e.g. '- id: 0' "
                     "with 'cid: 2' and 'port: 5000'; see config/development.yaml)");
        return;
    }
    if (v->c->enclaves.count < 2)
        cfg_diag_src(v->d, CFG_ERROR, v->c, s,
                     "at least 2 enclaves are required (MuSig2 signing spans several enclaves), "
                     "found %zu: add entries to enclaves.enclaves",
                     v->c->enclaves.count);
}

/* id, port, and cid/unix_path as the transport needs. false if one is missing. */
static bool check_required(struct vctx *v, const struct cfg_enclave *e, size_t idx)
{
    char who[LABEL_MAX];
    bool ok = true;
    label(who, sizeof(who), e, idx);
    struct cfg_src at = item_src(e);
    if (e->src[CFG_EF_ID].kind == CFG_SRC_UNSET) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &at,
                     "%s: missing id: add 'id: %zu' (ids name the enclave in logs and in "
                     "KEYMELD_ENCLAVE_<id>_* variables)",
                     who, idx);
        return false;
    }
    if (e->transport != TP_KIND_UNIX && e->src[CFG_EF_PORT].kind == CFG_SRC_UNSET) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &at,
                     "%s: missing port: add 'port: ...' or set KEYMELD_ENCLAVE_%u_PORT", who,
                     e->id);
        ok = false;
    }
    if (is_vsock(e) && e->src[CFG_EF_CID].kind == CFG_SRC_UNSET) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &at,
                     "%s: missing cid for transport vsock: add 'cid: 2' (development) or set "
                     "KEYMELD_ENCLAVE_%u_CID (production)",
                     who, e->id);
        ok = false;
    }
    if (e->transport == TP_KIND_UNIX && e->src[CFG_EF_UNIX_PATH].kind == CFG_SRC_UNSET) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &at,
                     "%s: transport unix needs unix_path (an absolute socket path) or "
                     "KEYMELD_ENCLAVE_%u_UNIX_PATH",
                     who, e->id);
        ok = false;
    }
    return ok;
}

static void build_vsock(struct vctx *v, struct cfg_enclave *e, const char *who)
{
    struct km_error err;
    if (e->cid == 0) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_CID],
                     "%s: CID 0 is reserved and never valid: use CID 2 in development, or the "
                     "enclave's CID from 'nitro-cli describe-enclaves' in production "
                     "(KEYMELD_ENCLAVE_%u_CID)",
                     who, e->id);
        return;
    }
    if (e->cid == TP_VSOCK_CID_ANY) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_CID],
                     "%s: CID %u is VMADDR_CID_ANY, which only a listener may use: set the "
                     "enclave's own CID",
                     who, e->cid);
        return;
    }
    if (tp_addr_vsock(&e->addr, e->cid, e->port, &err) != KM_OK) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_PORT], "%s: %s", who, err.msg);
        return;
    }
    e->addr_ok = true;
}

static void build_tcp(struct vctx *v, struct cfg_enclave *e, const char *who)
{
    struct km_error err;
    if (e->port > 65535) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_PORT],
                     "%s: TCP port %u is out of range 1..65535", who, e->port);
        return;
    }
    const char *host = e->tcp_host[0] ? e->tcp_host : "localhost";
    if (tp_addr_tcp(&e->addr, host, e->port, &err) != KM_OK) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_TCP_HOST],
                     "%s: %s: use a host name (letters, digits, '-', '.'), an IPv4 or an IPv6 "
                     "address",
                     who, err.msg);
        return;
    }
    e->addr_ok = true;
}

static void build_unix(struct vctx *v, struct cfg_enclave *e, const char *who)
{
    struct km_error err;
    if (tp_addr_unix(&e->addr, e->unix_path, &err) != KM_OK) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_UNIX_PATH], "%s: %s", who, err.msg);
        return;
    }
    e->addr_ok = true;
}

/* Settings that the chosen transport ignores are probably a mistake. */
static void warn_ignored(struct vctx *v, const struct cfg_enclave *e, const char *who)
{
    const char *t = tp_kind_name(e->transport);
    if (e->transport != TP_KIND_TCP && e->tcp_host[0] != '\0')
        cfg_diag_src(v->d, CFG_WARNING, v->c, &e->src[CFG_EF_TCP_HOST],
                     "%s: tcp_host is ignored with transport %s (set transport: tcp, or "
                     "KEYMELD_ENCLAVE_%u_TRANSPORT=tcp, to use it)",
                     who, t, e->id);
    if (e->transport != TP_KIND_UNIX && e->unix_path[0] != '\0')
        cfg_diag_src(v->d, CFG_WARNING, v->c, &e->src[CFG_EF_UNIX_PATH],
                     "%s: unix_path is ignored with transport %s", who, t);
}

static void build_addresses(struct vctx *v)
{
    for (size_t i = 0; i < v->c->enclaves.count; i++) {
        struct cfg_enclave *e = &v->c->enclaves.list[i];
        char who[LABEL_MAX];
        label(who, sizeof(who), e, i);
        e->addr_ok = false;
        memset(&e->addr, 0, sizeof(e->addr));
        if (!check_required(v, e, i))
            continue;
        warn_ignored(v, e, who);
        switch (e->transport) {
        case TP_KIND_VSOCK:
            build_vsock(v, e, who);
            break;
        case TP_KIND_TCP:
            build_tcp(v, e, who);
            break;
        case TP_KIND_UNIX:
            build_unix(v, e, who);
            break;
        }
    }
}

static void check_unique(struct vctx *v)
{
    const struct cfg_enclaves *en = &v->c->enclaves;
    for (size_t j = 1; j < en->count; j++) {
        const struct cfg_enclave *b = &en->list[j];
        for (size_t i = 0; i < j; i++) {
            const struct cfg_enclave *a = &en->list[i];
            if (a->src[CFG_EF_ID].kind != CFG_SRC_UNSET &&
                b->src[CFG_EF_ID].kind != CFG_SRC_UNSET && a->id == b->id) {
                cfg_diag_src(v->d, CFG_ERROR, v->c, &b->src[CFG_EF_ID],
                             "enclave id %u is used twice (enclaves.enclaves[%zu] at line %u "
                             "and [%zu]): give every enclave its own id",
                             b->id, i, a->line, j);
                break;
            }
        }
        /* Production vsock: "Duplicate enclave CIDs detected" says it all. */
        if (v->c->environment == CFG_PRODUCTION && is_vsock(b))
            continue;
        for (size_t i = 0; i < j; i++) {
            const struct cfg_enclave *a = &en->list[i];
            if (a->addr_ok && b->addr_ok && tp_addr_equal(&a->addr, &b->addr)) {
                char addr[TP_ADDR_STR_MAX];
                cfg_diag_src(v->d, CFG_ERROR, v->c, &b->src[CFG_EF_PORT],
                             "enclaves %u and %u both use %s: give each enclave its own address "
                             "(in development: CID 2 with ports 5000, 5001, 5002)",
                             a->id, b->id, tp_addr_format(addr, sizeof(addr), &b->addr));
                break;
            }
        }
    }
}

/* ---- CIDs (vsock only; the seed's development vs production rules) ---- */

static void check_cid_development(struct vctx *v, const struct cfg_enclave *e)
{
    if (e->cid < 3 || e->cid == TP_VSOCK_CID_ANY)
        return;
    cfg_diag_src(v->d, CFG_WARNING, v->c, &e->src[CFG_EF_CID],
                 "enclave %u: CID %u is a guest CID, but local development has no guest VMs: "
                 "connecting fails with \"No such device (os error 19)\"; use CID 2 (the host) "
                 "for all enclaves in development, with different ports",
                 e->id, e->cid);
}

static void check_cid_production(struct vctx *v, const struct cfg_enclave *e)
{
    if (e->cid == 1 || e->cid == 2) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, &e->src[CFG_EF_CID],
                     "enclave %u: CID %u (%s) is for development only: in production set "
                     "KEYMELD_ENCLAVE_%u_CID to the enclave's CID from 'nitro-cli "
                     "describe-enclaves'",
                     e->id, e->cid, e->cid == 1 ? "local loopback" : "the host", e->id);
        return;
    }
    if (e->src[CFG_EF_CID].kind != CFG_SRC_ENV)
        cfg_diag_src(v->d, CFG_WARNING, v->c, &e->src[CFG_EF_CID],
                     "enclave %u: CID %u is a template value from the file: Nitro assigns CIDs "
                     "when enclaves start, so export KEYMELD_ENCLAVE_%u_CID=<EnclaveCID from "
                     "'nitro-cli describe-enclaves'>",
                     e->id, e->cid, e->id);
}

/* One error per CID shared by several vsock enclaves. */
static void check_duplicate_cids(struct vctx *v)
{
    const struct cfg_enclaves *en = &v->c->enclaves;
    for (size_t i = 0; i < en->count; i++) {
        const struct cfg_enclave *a = &en->list[i];
        if (!a->addr_ok || !is_vsock(a))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = en->list[k].addr_ok && is_vsock(&en->list[k]) && en->list[k].cid == a->cid;
        if (seen)
            continue;
        char ids[160] = "";
        size_t n = 0, used = 0;
        const struct cfg_enclave *last = a;
        for (size_t k = i; k < en->count; k++) {
            const struct cfg_enclave *b = &en->list[k];
            if (!b->addr_ok || !is_vsock(b) || b->cid != a->cid)
                continue;
            int w = snprintf(ids + used, sizeof(ids) - used, "%s%u", n ? ", " : "", b->id);
            if (w > 0 && (size_t)w < sizeof(ids) - used)
                used += (size_t)w;
            n++;
            last = b;
        }
        if (n < 2)
            continue;
        char how[400];
        cfg_src_describe(how, sizeof(how), v->c, &v->c->src[CFG_F_ENVIRONMENT]);
        cfg_diag_src(v->d, CFG_ERROR, v->c, &last->src[CFG_EF_CID],
                     "Duplicate enclave CIDs detected: enclaves %s all use CID %u in production, "
                     "where each Nitro enclave has its own CID (set KEYMELD_ENCLAVE_<id>_CID from "
                     "'nitro-cli describe-enclaves'). Development mode allows a shared CID 2: if "
                     "this is a local setup, check KEYMELD_ENVIRONMENT (environment is production, "
                     "from %s)",
                     ids, a->cid, how);
    }
}

static void check_cids(struct vctx *v)
{
    const struct cfg_enclaves *en = &v->c->enclaves;
    for (size_t i = 0; i < en->count; i++) {
        const struct cfg_enclave *e = &en->list[i];
        if (!e->addr_ok || !is_vsock(e))
            continue;
        if (v->c->environment == CFG_PRODUCTION)
            check_cid_production(v, e);
        else
            check_cid_development(v, e);
    }
    if (v->c->environment == CFG_PRODUCTION)
        check_duplicate_cids(v);
}

/* ---- Everything else -------------------------------------------------- */

static const struct cfg_src *src_of(struct vctx *v, enum cfg_field f)
{
    return &v->c->src[f];
}

static bool host_ok(const char *h)
{
    if (h[0] == '\0')
        return false;
    for (const char *p = h; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == ':' ||
                  ch == '%';
        if (!ok)
            return false;
    }
    return true;
}

/* database.url: PostgreSQL (postgresql:// or postgres://) or sqlite:PATH;
 * in production a SQLite path must be absolute, as database.path. */
static void check_database_url(struct vctx *v)
{
    const char *u = v->c->database.url;
    char q[80];
    if (u[0] == '\0' || strncmp(u, "postgresql://", 13) == 0 || strncmp(u, "postgres://", 11) == 0)
        return;
    if (strncmp(u, "sqlite:", 7) != 0) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DATABASE_URL),
                     "database.url must be postgresql://USER@HOST:PORT/DB (or postgres://) or "
                     "sqlite:PATH (got '%s'), or set KEYMELD_DATABASE_URL",
                     cfg_quote(q, sizeof(q), u, strcspn(u, ":@"), 40));
        return;
    }
    const char *path = u + 7;
    if (strncmp(path, "//", 2) == 0)
        path += 2;
    if (path[0] == '\0')
        cfg_diag_src(
            v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DATABASE_URL),
            "database.url 'sqlite:' names no file: e.g. sqlite:/var/lib/keymeld/keymeld.db");
    else if (v->c->environment == CFG_PRODUCTION && path[0] != '/')
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DATABASE_URL),
                     "database.url must name an absolute SQLite path in production (got '%s')",
                     cfg_quote(q, sizeof(q), path, strlen(path), 60));
}

static void check_general(struct vctx *v)
{
    const struct cfg *c = v->c;
    char q[80];
    if (!host_ok(c->server.host))
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SERVER_HOST),
                     "server.host '%s' is not a host name or IP address: use e.g. 127.0.0.1 or "
                     "0.0.0.0 (or set KEYMELD_HOST)",
                     cfg_quote(q, sizeof(q), c->server.host, strlen(c->server.host), 40));
    if (c->database.url[0] == '\0' && c->database.path[0] == '\0')
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DATABASE_PATH),
                     "Database path cannot be empty: set database.path (e.g. "
                     "./data/keymeld-dev.db) or KEYMELD_DATABASE_PATH");
    check_database_url(v);
    if (c->kms.enabled && c->kms.key_id[0] == '\0')
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_KMS_KEY_ID),
                     "KMS key_id is required when KMS is enabled: set kms.key_id (e.g. "
                     "\"${KMS_KEY_ARN}\") or kms.enabled: false");
    if (c->kms.endpoint_url[0] != '\0' && strncmp(c->kms.endpoint_url, "http://", 7) != 0 &&
        strncmp(c->kms.endpoint_url, "https://", 8) != 0)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_KMS_ENDPOINT_URL),
                     "kms.endpoint_url must start with http:// or https:// (or be left empty "
                     "for the AWS default)");
    if (c->security.require_tls && c->security.allow_insecure_connections)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_ALLOW_INSECURE_CONNECTIONS),
                     "Configuration conflict: TLS is required but insecure connections are "
                     "allowed: set security.allow_insecure_connections: false or "
                     "security.require_tls: false");
    if (c->enclaves.max_retry_delay_ms < c->enclaves.initial_retry_delay_ms)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_ENCLAVES_MAX_RETRY_DELAY_MS),
                     "enclaves.max_retry_delay_ms (%u) is below enclaves.initial_retry_delay_ms "
                     "(%u): raise the maximum or lower the initial delay",
                     c->enclaves.max_retry_delay_ms, c->enclaves.initial_retry_delay_ms);
    if (c->logging.enable_file_output && c->logging.file_path[0] == '\0')
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_LOGGING_FILE_PATH),
                     "logging.enable_file_output is true but logging.file_path is empty: set a "
                     "path (e.g. logs/gateway.log)");
    if (c->security.enable_attestation && c->security.attestation_pcrs[0] == '\0')
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_ATTESTATION_PCRS),
                     "security.enable_attestation needs a PCR policy: set "
                     "security.attestation_pcrs to the file deploy/nitro writes (or "
                     "KEYMELD_ATTESTATION_PCRS)");
}

/* The body deadline against the largest body: a client that cannot send
 * max_request_size_bytes within body_timeout_secs at 1 MiB/s is cut off
 * while it uploads a body the size limit allows. */
static void check_body_deadline(struct vctx *v)
{
    const struct cfg_server *sv = &v->c->server;
    uint64_t need = (uint64_t)sv->max_request_size_bytes / sv->body_timeout_secs;
    if (need > (1u << 20))
        cfg_diag_src(v->d, CFG_WARNING, v->c, src_of(v, CFG_F_SERVER_BODY_TIMEOUT_SECS),
                     "server.body_timeout_secs (%u) is short for server.max_request_size_bytes "
                     "(%u): a client must send a body of that size at %llu KiB/s or faster, or "
                     "be cut off; raise server.body_timeout_secs or lower the size limit",
                     sv->body_timeout_secs, sv->max_request_size_bytes,
                     (unsigned long long)(need >> 10));
}

/* ---- CORS (server.cors_allowed_origins) ------------------------------- */

/* The origin's prefix up to end as a suggestion ("write 'https://x'"). */
static const char *suggest(char *why, size_t cap, const char *reason, const char *o,
                           const char *end)
{
    char q[CFG_CORS_ORIGIN_MAX + 8];
    snprintf(why, cap, "%s: write '%s'", reason,
             cfg_quote(q, sizeof(q), o, (size_t)(end - o), 120));
    return why;
}

static bool origin_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
}

/* The end of the host at h (a name, an IPv4 address or a bracketed IPv6
 * address); h itself when there is none or an IPv6 literal is unclosed. */
static const char *origin_host_end(const char *h, const char *end)
{
    const char *p = h;
    if (p < end && *p == '[') {
        for (p++; p < end && *p != ']'; p++) {
            bool hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
            if (!hex && *p != ':' && *p != '.')
                return h;
        }
        return p < end && p > h + 1 ? p + 1 : h;
    }
    while (p < end && origin_host_char(*p))
        p++;
    return p;
}

/*
 * Why o[0..len) is not an origin as browsers send it in their Origin
 * header: "http://" or "https://", a lower-case host, a port only when it
 * is not the scheme's default, nothing after. NULL when it is one. The
 * gateway compares the header with the list byte for byte, so an entry in
 * a form browsers never send would silently match nothing.
 */
static const char *origin_problem(const char *o, size_t len, char *why, size_t cap)
{
    const char *end = o + len;
    size_t skip = len > 7 && memcmp(o, "http://", 7) == 0    ? 7
                  : len > 8 && memcmp(o, "https://", 8) == 0 ? 8
                                                             : 0;
    if (skip == 0)
        return "it must start with http:// or https:// (in lower case)";
    const char *h = o + skip;
    for (const char *u = h; u < end && *u != '/' && *u != '?' && *u != '#'; u++) {
        if (*u >= 'A' && *u <= 'Z')
            return "the host must be in lower case, as browsers send it";
    }
    const char *p = origin_host_end(h, end), *host_end = p;
    if (p == h && (p == end || *p == ':' || *p == '/' || *p == '['))
        return "it has no host (a name, an IPv4 address or an IPv6 address in [...])";
    if (p < end && *p == ':') {
        const char *digits = ++p;
        unsigned long port = 0;
        while (p < end && *p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == digits || *digits == '0' || port > 65535)
            return "the port must be a number 1..65535";
        if (port == (skip == 8 ? 443u : 80u))
            return suggest(why, cap, "browsers leave out the scheme's default port", o, host_end);
    }
    if (p < end && (*p == '/' || *p == '?' || *p == '#'))
        return suggest(why, cap, "an origin has no path, query or trailing '/'", o, p);
    if (p < end)
        return "the host may hold only a-z, 0-9, '-' and '.' (no wildcards: list each origin)";
    return NULL;
}

/* One entry of the list (n: its 1-based position). */
static void check_cors_entry(struct vctx *v, const char *e, size_t len, size_t n)
{
    const struct cfg_src *at = src_of(v, CFG_F_SERVER_CORS_ALLOWED_ORIGINS);
    char q[CFG_CORS_ORIGIN_MAX + 8], why[CFG_CORS_ORIGIN_MAX + 200];
    if (len == 0) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, at,
                     "server.cors_allowed_origins: entry %zu is empty: remove the extra comma "
                     "(the list is comma-separated origins, e.g. "
                     "https://wallet.example.com,http://localhost:5173)",
                     n);
        return;
    }
    if (len > CFG_CORS_ORIGIN_MAX) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, at,
                     "server.cors_allowed_origins: entry %zu is %zu bytes long: at most %d "
                     "allowed",
                     n, len, CFG_CORS_ORIGIN_MAX);
        return;
    }
    if (len == 1 && e[0] == '*')
        return;
    const char *problem = origin_problem(e, len, why, sizeof(why));
    if (problem != NULL)
        cfg_diag_src(v->d, CFG_ERROR, v->c, at,
                     "server.cors_allowed_origins: '%s' is not an origin: %s (each entry is "
                     "scheme://host[:port] with http or https and no path, e.g. "
                     "https://wallet.example.com; or the whole list is \"*\")",
                     cfg_quote(q, sizeof(q), e, len, 120), problem);
}

/*
 * The list: comma-separated entries (spaces around each ignored), each an
 * origin, or "*" alone. In production "*" lets every web site call the
 * API from its visitors' browsers: a warning, like enable_cors alone.
 */
static void check_cors(struct vctx *v)
{
    const struct cfg_server *sv = &v->c->server;
    const struct cfg_src *at = src_of(v, CFG_F_SERVER_CORS_ALLOWED_ORIGINS);
    size_t n = 0;
    bool star = false;
    for (const char *p = sv->cors_allowed_origins; *p != '\0';) {
        size_t len = strcspn(p, ","), skip = len;
        const char *e = p;
        while (len > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            len--;
        }
        while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
            len--;
        check_cors_entry(v, e, len, ++n);
        star |= len == 1 && e[0] == '*';
        if (p[skip] == '\0')
            break;
        p += skip + 1;
        if (*p == '\0') /* a trailing comma: an empty last entry */
            check_cors_entry(v, p, 0, ++n);
    }
    if (n > CFG_CORS_MAX_ORIGINS)
        cfg_diag_src(v->d, CFG_ERROR, v->c, at,
                     "server.cors_allowed_origins lists %zu origins: at most %d are allowed", n,
                     CFG_CORS_MAX_ORIGINS);
    if (star && n > 1)
        cfg_diag_src(v->d, CFG_ERROR, v->c, at,
                     "server.cors_allowed_origins: '*' (every origin) cannot be combined with "
                     "other entries: give either \"*\" alone or the list of origins");
    if (v->c->environment != CFG_PRODUCTION)
        return;
    if (star && n == 1)
        cfg_diag_src(v->d, CFG_WARNING, v->c, at,
                     "CORS allows every origin in production (server.cors_allowed_origins is "
                     "\"*\"): any web site can call the API from its visitors' browsers; list "
                     "the wallet origins instead (e.g. https://wallet.example.com)");
    else if (n == 0 && sv->enable_cors)
        cfg_diag_src(v->d, CFG_WARNING, v->c, src_of(v, CFG_F_SERVER_ENABLE_CORS),
                     "CORS is enabled in production for every origin (server.enable_cors: true "
                     "without server.cors_allowed_origins). This may not be intended: set "
                     "server.enable_cors: false, or list the allowed origins in "
                     "server.cors_allowed_origins");
}

/* ---- HTTPS (server.tls_*) ---------------------------------------------- */

/* 127.0.0.0/8, ::1, ::ffff:127.x.y.z or the name "localhost": only this
 * machine can connect. Every other name or address counts as reachable
 * from the network. */
static bool host_is_loopback(const char *h)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(h, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

/* The file exists, is a regular file and this process can open it for
 * reading (the gateway reads it again when it starts). */
static bool check_readable(struct vctx *v, enum cfg_field f, const char *what, bool secret)
{
    const char *path = (const char *)v->c + cfg_field_defs[f].offset;
    const char *key = cfg_field_defs[f].path;
    char q[CFG_PATH_MAX + 8];
    cfg_quote(q, sizeof(q), path, strlen(path), 200);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, f),
                     "%s '%s' (the %s) cannot be read: %s: check the path and that the "
                     "gateway's user may read it",
                     key, q, what, strerror(e));
        return false;
    }
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!ok) {
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, f),
                     "%s '%s' (the %s) is not a regular file: give the path of a PEM file", key, q,
                     what);
        return false;
    }
    if (secret && (st.st_mode & S_IROTH) != 0)
        cfg_diag_src(v->d, CFG_WARNING, v->c, src_of(v, f),
                     "%s '%s' (the TLS private key) is readable by every user (mode %04o): "
                     "chmod o-rwx it",
                     key, q, (unsigned)(st.st_mode & 07777));
    return true;
}

static void check_tls(struct vctx *v)
{
    const struct cfg_server *sv = &v->c->server;
    bool cert = sv->tls_cert_file[0] != '\0', key = sv->tls_key_file[0] != '\0';
    if (cert != key) {
        enum cfg_field set = cert ? CFG_F_SERVER_TLS_CERT_FILE : CFG_F_SERVER_TLS_KEY_FILE;
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, set),
                     "%s is set but %s is not: HTTPS needs both the certificate (PEM, leaf first, "
                     "then intermediates) and its private key (PEM); set both, or neither for "
                     "plain HTTP",
                     cert ? "server.tls_cert_file" : "server.tls_key_file",
                     cert ? "server.tls_key_file" : "server.tls_cert_file");
        return;
    }
    if (!cert)
        return;
    check_readable(v, CFG_F_SERVER_TLS_CERT_FILE, "TLS certificate", false);
    check_readable(v, CFG_F_SERVER_TLS_KEY_FILE, "TLS private key", true);
}

/* Production: the API carries API keys and signing requests, so plain
 * HTTP is only accepted on loopback or when the operator says a
 * TLS-terminating proxy or load balancer is in front. */
static void check_plain_http_production(struct vctx *v)
{
    const struct cfg_server *sv = &v->c->server;
    if (sv->tls_cert_file[0] != '\0' || sv->tls_key_file[0] != '\0' || sv->allow_plain_http ||
        host_is_loopback(sv->host))
        return;
    char q[80];
    cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SERVER_HOST),
                 "Plain HTTP on a network address is not allowed in production: server.host is "
                 "'%s' and no TLS certificate is configured. Set server.tls_cert_file and "
                 "server.tls_key_file (PEM) to serve HTTPS, or, if a TLS-terminating proxy or "
                 "load balancer is in front of the gateway, set server.allow_plain_http: true "
                 "(or bind server.host / KEYMELD_HOST to 127.0.0.1 behind a local proxy)",
                 cfg_quote(q, sizeof(q), sv->host, strlen(sv->host), 60));
}

static void check_production(struct vctx *v)
{
    check_plain_http_production(v);

    const struct cfg *c = v->c;
    if (!c->security.enable_attestation)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_ENABLE_ATTESTATION),
                     "Attestation must be enabled in production: set "
                     "security.enable_attestation: true");
    if (c->server.open_reserve)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SERVER_OPEN_RESERVE),
                     "server.open_reserve lets anyone create keygens: it is for development "
                     "only; in production reserve needs an API key (keymeld apikey create)");
    if (c->security.attestation_allow_debug)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_ATTESTATION_ALLOW_DEBUG),
                     "Debug-mode enclaves have all-zero PCRs and prove nothing: set "
                     "security.attestation_allow_debug: false in production");
    if (!c->security.strict_validation)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_STRICT_VALIDATION),
                     "Strict validation must be enabled in production: set "
                     "security.strict_validation: true");
    if (c->security.allow_insecure_connections)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_ALLOW_INSECURE_CONNECTIONS),
                     "Insecure connections are not allowed in production: set "
                     "security.allow_insecure_connections: false");
    if (!c->security.require_tls)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SECURITY_REQUIRE_TLS),
                     "TLS must be required in production: set security.require_tls: true");
    if (c->development.present)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DEVELOPMENT_SECTION),
                     "Development configuration is not allowed in production: remove the "
                     "development: section");
    if (c->server.port == 8090 || c->server.port == 3000)
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_SERVER_PORT),
                     "Default development ports are not allowed in production: server.port is "
                     "%u; use another port (e.g. 443) or set KEYMELD_PORT",
                     c->server.port);
    if (c->database.url[0] == '\0' && c->database.path[0] != '\0' && c->database.path[0] != '/') {
        char q[80];
        cfg_diag_src(v->d, CFG_ERROR, v->c, src_of(v, CFG_F_DATABASE_PATH),
                     "database.path must be absolute in production (got '%s'): e.g. "
                     "/var/lib/keymeld/keymeld.db, or set KEYMELD_DATABASE_PATH",
                     cfg_quote(q, sizeof(q), c->database.path, strlen(c->database.path), 60));
    }
}

int cfg_validate(struct cfg *c, struct cfg_diag *diag)
{
    KM_ASSERT(c != NULL && diag != NULL);
    size_t errors = diag->errors;
    struct vctx v = {.c = c, .d = diag};
    check_count(&v);
    build_addresses(&v);
    check_unique(&v);
    check_cids(&v);
    check_general(&v);
    check_body_deadline(&v);
    check_cors(&v);
    check_tls(&v);
    if (c->environment == CFG_PRODUCTION)
        check_production(&v);
    return diag->errors > errors ? KM_ERR_CONFIG : KM_OK;
}
