/*
 * keymeld_enclave.c - main() of `keymeld-enclave`, the signer process
 * (DESIGN.md §2, §4, §7; docs/PROTOCOL.md).
 *
 * Configured by environment variables (the seed's names), each overridden
 * by the matching flag; see usage() below. At start-up it creates its
 * keypair (memory only), binds its listener and logs the line operators
 * grep for ("VSock server listening on CID ANY, port 5000" or "TCP server
 * listening on 127.0.0.1:5000"). A bind failure names the address and the
 * cause and exits 1. SIGTERM/SIGINT stop accepting, let in-flight commands
 * finish and reply, then wipe every secret and exit 0.
 *
 * Exit codes: 0 clean shutdown, 1 start-up failure, 2 usage or
 * configuration error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "attest/provider.h"
#include "common/hex.h"
#include "common/log.h"
#include "enclave/enclave.h"
#include "enclave/keysource.h"
#include "kms/client.h"
#include "transport/addr.h"
#include "transport/server.h"
#include "transport/sock.h"
#include "common/banned.h"

#define COMP "main"

enum { EXIT_START = 1, EXIT_USAGE = 2 };

struct options {
    enum tp_kind transport;
    uint32_t port;
    bool has_cid;
    uint32_t cid;
    bool has_enclave_id;
    uint32_t enclave_id;
    char tcp_host[TP_HOST_MAX + 1];
    char unix_path[TP_UNIX_PATH_MAX + 1];
    enum log_level level;
    enum log_format format;
    uint32_t max_sessions;
    uint32_t workers;
    uint32_t idle_timeout_secs; /* 0 = never */
    uint32_t max_connections;
    uint32_t max_buffered_bytes;
    bool production;
    bool has_attestation;
    char attestation[16]; /* nsm | development | none */
    char dev_ca[TP_UNIX_PATH_MAX + 1];
    char sealer[16]; /* none | file | aws-kms */
    char kek_file[TP_UNIX_PATH_MAX + 1];
    char kms_key_id[KMS_KEY_ID_MAX + 1];
    char kms_region[64];
    char kms_endpoint[KMS_ENDPOINT_MAX + 1];
    bool has_kms_proxy_port;
    uint32_t kms_proxy_port;
    uint32_t kms_proxy_cid;
    bool kms_allow_http;
    char kms_ca_file[TP_UNIX_PATH_MAX + 1];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keymeld-enclave [options]\n"
            "\n"
            "The KeyMeld signer: holds its keypair and the participants' keys in memory\n"
            "and runs MuSig2 rounds for the gateway (docs/PROTOCOL.md).\n"
            "\n"
            "options (each overrides the environment variable in brackets):\n"
            "  --transport vsock|tcp|unix  listener kind [TRANSPORT_MODE] (default vsock)\n"
            "  --port N                    VSock or TCP port [VSOCK_PORT] (default 5000;\n"
            "                              0 = any free port, shown in the start-up line)\n"
            "  --cid N                     the CID this enclave expects to have\n"
            "                              [ENCLAVE_CID]; checked against the local CID\n"
            "  --enclave-id N              this enclave's id in the gateway configuration\n"
            "                              [ENCLAVE_ID]; unset: the first `configure` sets it\n"
            "  --tcp-host HOST             TCP listen address [TCP_HOST] (default 127.0.0.1)\n"
            "  --unix-path PATH            Unix socket path [UNIX_PATH] (transport unix)\n"
            "  --log-level LEVEL           trace|debug|info|warn|error [KEYMELD_LOG_LEVEL]\n"
            "                              (default info)\n"
            "  --log-format pretty|json    [KEYMELD_LOG_FORMAT] (default pretty)\n"
            "  --max-sessions N            live keygen + signing sessions\n"
            "                              [ENCLAVE_MAX_SESSIONS] (default %d)\n"
            "  --workers N                 command worker threads [ENCLAVE_WORKERS] (default 8)\n"
            "  --idle-timeout SECS         close a gateway connection silent this long\n"
            "                              [ENCLAVE_IDLE_TIMEOUT_SECS] (default %u; 0 = never)\n"
            "  --max-connections N         open connections; at the limit the longest idle one\n"
            "                              is closed for a new one [ENCLAVE_MAX_CONNECTIONS]\n"
            "                              (default %u)\n"
            "  --max-buffered-bytes N      read-buffer memory of all connections together\n"
            "                              [ENCLAVE_MAX_BUFFERED_BYTES] (default %zu, at least\n"
            "                              16777216); a connection whose partial frame would\n"
            "                              pass it is closed\n"
            "  --environment ENV           development|production [KEYMELD_ENVIRONMENT]\n"
            "                              (default development)\n"
            "  --attestation KIND          nsm|development|none [ATTESTATION] (default: nsm in\n"
            "                              production, none otherwise); production requires nsm\n"
            "  --attestation-dev-ca DIR    the development CA (`keymeld dev-ca init DIR`)\n"
            "                              [ATTESTATION_DEV_CA]; needed by development\n"
            "  --sealer KIND               none|file|aws-kms [SEALER] (default none): how the\n"
            "                              identity key survives restarts (docs/OPERATIONS.md);\n"
            "                              with a sealer the key arrives sealed in `configure`\n"
            "  --kek-file PATH             the file sealer's 32-byte key-encryption key\n"
            "                              [SEALER_KEK_FILE]\n"
            "  --kms-key-id ID             aws-kms: the KMS key (id, ARN or alias/NAME)\n"
            "                              [KMS_KEY_ID]; required with SEALER=aws-kms\n"
            "  --kms-region REGION         [KMS_REGION] (default us-east-1)\n"
            "  --kms-endpoint URL          [KMS_ENDPOINT] (default\n"
            "                              https://kms.REGION.amazonaws.com)\n"
            "  --kms-proxy-port N          the parent's vsock-proxy to KMS [KMS_PROXY_PORT]\n"
            "                              (default 8000 with --transport vsock; otherwise 0 =\n"
            "                              connect to the endpoint directly)\n"
            "  --kms-proxy-cid N           the vsock-proxy's CID [KMS_PROXY_CID] (default 3)\n"
            "  --kms-allow-http 0|1        accept an http:// KMS endpoint [KMS_ALLOW_HTTP]\n"
            "                              (tests only; refused in production)\n"
            "  --kms-ca-file PATH          PEM CA bundle for the KMS endpoint [KMS_CA_FILE]\n"
            "                              (default: libcurl's)\n"
            "  -h, --help                  this text\n"
            "  --version                   print the version\n",
            ENCLAVE_MAX_SESSIONS_DEFAULT, TP_SERVER_IDLE_TIMEOUT_DEFAULT_MS / 1000u,
            TP_SERVER_MAX_CONNECTIONS_DEFAULT, TP_SERVER_MAX_BUFFERED_DEFAULT);
}

/* Parses a decimal u32 in [lo, hi] without leading junk or trailing bytes. */
static int parse_u32(uint32_t *out, const char *s, uint32_t lo, uint32_t hi)
{
    char *end = NULL;
    if (s[0] < '0' || s[0] > '9')
        return KM_ERR_INVALID;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return KM_ERR_INVALID;
    *out = (uint32_t)v;
    return KM_OK;
}

/* Copies a non-empty string that fits. */
static int set_str(char *dst, size_t cap, const char *val)
{
    size_t n = strlen(val);
    if (n == 0 || n >= cap)
        return KM_ERR_INVALID;
    memcpy(dst, val, n + 1);
    return KM_OK;
}

/* Applies one setting by its variable name; src names it in errors
 * ("TRANSPORT_MODE" or "--transport"). */
static int apply(struct options *o, const char *var, const char *val, const char *src)
{
    int r = KM_ERR_INVALID;
    if (strcmp(var, "TRANSPORT_MODE") == 0) {
        r = tp_kind_parse(&o->transport, val);
    } else if (strcmp(var, "VSOCK_PORT") == 0) {
        r = parse_u32(&o->port, val, 0, 0xfffffffeu);
    } else if (strcmp(var, "ENCLAVE_CID") == 0) {
        r = parse_u32(&o->cid, val, 1, 0xfffffffeu);
        o->has_cid = r == KM_OK;
    } else if (strcmp(var, "ENCLAVE_ID") == 0) {
        r = parse_u32(&o->enclave_id, val, 0, UINT32_MAX);
        o->has_enclave_id = r == KM_OK;
    } else if (strcmp(var, "TCP_HOST") == 0) {
        r = set_str(o->tcp_host, sizeof(o->tcp_host), val);
    } else if (strcmp(var, "UNIX_PATH") == 0) {
        r = set_str(o->unix_path, sizeof(o->unix_path), val);
    } else if (strcmp(var, "KEYMELD_LOG_LEVEL") == 0) {
        r = log_level_parse(&o->level, val);
    } else if (strcmp(var, "KEYMELD_LOG_FORMAT") == 0) {
        r = log_format_parse(&o->format, val);
    } else if (strcmp(var, "ENCLAVE_MAX_SESSIONS") == 0) {
        r = parse_u32(&o->max_sessions, val, 1, 1000000);
    } else if (strcmp(var, "ENCLAVE_WORKERS") == 0) {
        r = parse_u32(&o->workers, val, 1, 256);
    } else if (strcmp(var, "ENCLAVE_IDLE_TIMEOUT_SECS") == 0) {
        r = parse_u32(&o->idle_timeout_secs, val, 0, 7u * 24u * 3600u);
    } else if (strcmp(var, "ENCLAVE_MAX_CONNECTIONS") == 0) {
        r = parse_u32(&o->max_connections, val, 1, 65536);
    } else if (strcmp(var, "ENCLAVE_MAX_BUFFERED_BYTES") == 0) {
        /* At least one frame of the largest size (16 MiB) must fit. */
        r = parse_u32(&o->max_buffered_bytes, val, 16u << 20, UINT32_MAX);
    } else if (strcmp(var, "KEYMELD_ENVIRONMENT") == 0) {
        r = strcmp(val, "production") == 0 || strcmp(val, "development") == 0 ? KM_OK
                                                                              : KM_ERR_INVALID;
        o->production = strcmp(val, "production") == 0;
    } else if (strcmp(var, "ATTESTATION") == 0) {
        r = strcmp(val, "nsm") == 0 || strcmp(val, "development") == 0 || strcmp(val, "none") == 0
                ? set_str(o->attestation, sizeof(o->attestation), val)
                : KM_ERR_INVALID;
        o->has_attestation = r == KM_OK;
    } else if (strcmp(var, "ATTESTATION_DEV_CA") == 0) {
        r = set_str(o->dev_ca, sizeof(o->dev_ca), val);
    } else if (strcmp(var, "SEALER") == 0) {
        r = strcmp(val, "none") == 0 || strcmp(val, "file") == 0 || strcmp(val, "aws-kms") == 0
                ? set_str(o->sealer, sizeof(o->sealer), val)
                : KM_ERR_INVALID;
    } else if (strcmp(var, "SEALER_KEK_FILE") == 0) {
        r = set_str(o->kek_file, sizeof(o->kek_file), val);
    } else if (strcmp(var, "KMS_KEY_ID") == 0) {
        r = set_str(o->kms_key_id, sizeof(o->kms_key_id), val);
    } else if (strcmp(var, "KMS_REGION") == 0) {
        r = set_str(o->kms_region, sizeof(o->kms_region), val);
    } else if (strcmp(var, "KMS_ENDPOINT") == 0) {
        r = set_str(o->kms_endpoint, sizeof(o->kms_endpoint), val);
    } else if (strcmp(var, "KMS_PROXY_PORT") == 0) {
        r = parse_u32(&o->kms_proxy_port, val, 0, 0xfffffffeu);
        o->has_kms_proxy_port = r == KM_OK;
    } else if (strcmp(var, "KMS_PROXY_CID") == 0) {
        r = parse_u32(&o->kms_proxy_cid, val, 1, 0xfffffffeu);
    } else if (strcmp(var, "KMS_ALLOW_HTTP") == 0) {
        r = strcmp(val, "0") == 0 || strcmp(val, "1") == 0 ? KM_OK : KM_ERR_INVALID;
        o->kms_allow_http = strcmp(val, "1") == 0;
    } else if (strcmp(var, "KMS_CA_FILE") == 0) {
        r = set_str(o->kms_ca_file, sizeof(o->kms_ca_file), val);
    }
    if (r != KM_OK)
        fprintf(stderr, "keymeld-enclave: invalid %s '%.100s'\n", src, val);
    return r;
}

static const struct {
    const char *flag;
    const char *var;
} flags[] = {
    {"--transport", "TRANSPORT_MODE"},
    {"--port", "VSOCK_PORT"},
    {"--cid", "ENCLAVE_CID"},
    {"--enclave-id", "ENCLAVE_ID"},
    {"--tcp-host", "TCP_HOST"},
    {"--unix-path", "UNIX_PATH"},
    {"--log-level", "KEYMELD_LOG_LEVEL"},
    {"--log-format", "KEYMELD_LOG_FORMAT"},
    {"--max-sessions", "ENCLAVE_MAX_SESSIONS"},
    {"--workers", "ENCLAVE_WORKERS"},
    {"--idle-timeout", "ENCLAVE_IDLE_TIMEOUT_SECS"},
    {"--max-connections", "ENCLAVE_MAX_CONNECTIONS"},
    {"--max-buffered-bytes", "ENCLAVE_MAX_BUFFERED_BYTES"},
    {"--environment", "KEYMELD_ENVIRONMENT"},
    {"--attestation", "ATTESTATION"},
    {"--attestation-dev-ca", "ATTESTATION_DEV_CA"},
    {"--sealer", "SEALER"},
    {"--kek-file", "SEALER_KEK_FILE"},
    {"--kms-key-id", "KMS_KEY_ID"},
    {"--kms-region", "KMS_REGION"},
    {"--kms-endpoint", "KMS_ENDPOINT"},
    {"--kms-proxy-port", "KMS_PROXY_PORT"},
    {"--kms-proxy-cid", "KMS_PROXY_CID"},
    {"--kms-allow-http", "KMS_ALLOW_HTTP"},
    {"--kms-ca-file", "KMS_CA_FILE"},
};

/* Environment first, then flags. Returns -1 to continue, else an exit
 * code (0 after --help/--version). */
static int load_options(struct options *o, int argc, char **argv)
{
    *o = (struct options){.transport = TP_KIND_VSOCK,
                          .port = 5000,
                          .tcp_host = "127.0.0.1",
                          .level = LOG_LEVEL_INFO,
                          .format = LOG_FORMAT_PRETTY,
                          .idle_timeout_secs = TP_SERVER_IDLE_TIMEOUT_DEFAULT_MS / 1000u,
                          .max_connections = TP_SERVER_MAX_CONNECTIONS_DEFAULT,
                          .max_buffered_bytes = TP_SERVER_MAX_BUFFERED_DEFAULT,
                          .sealer = "none",
                          .kms_region = "us-east-1",
                          .kms_proxy_cid = 3};
    for (size_t i = 0; i < KM_ARRAY_LEN(flags); i++) {
        const char *v = getenv(flags[i].var);
        if (v != NULL && apply(o, flags[i].var, v, flags[i].var) != KM_OK)
            return EXIT_USAGE;
    }
    int a = 1;
    while (a < argc) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[a], "--version") == 0) {
            printf("keymeld-enclave %s\n", KM_VERSION);
            return 0;
        }
        size_t i = 0;
        while (i < KM_ARRAY_LEN(flags) && strcmp(argv[a], flags[i].flag) != 0)
            i++;
        if (i == KM_ARRAY_LEN(flags) || a + 1 == argc) {
            fprintf(stderr, "keymeld-enclave: %s '%.100s'\n\n",
                    i == KM_ARRAY_LEN(flags) ? "unknown option" : "missing value for", argv[a]);
            usage(stderr);
            return EXIT_USAGE;
        }
        if (apply(o, flags[i].var, argv[a + 1], flags[i].flag) != KM_OK)
            return EXIT_USAGE;
        a += 2;
    }
    if (o->production && o->kms_allow_http) {
        fprintf(stderr, "keymeld-enclave: KMS_ALLOW_HTTP=1 is for tests: "
                        "KEYMELD_ENVIRONMENT=production talks to KMS over https only\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The listening address; port 0 asks for any free port. */
static int listen_addr(struct tp_addr *a, const struct options *o, struct km_error *err)
{
    int r;
    switch (o->transport) {
    case TP_KIND_VSOCK:
        r = tp_addr_vsock(a, TP_VSOCK_CID_ANY, o->port ? o->port : 1, err);
        if (r == KM_OK && o->port == 0)
            a->port = TP_VSOCK_PORT_ANY;
        return r;
    case TP_KIND_TCP:
        if (o->port > 65535)
            return km_error_set(err, KM_ERR_INVALID, 0, "TCP port %u out of range", o->port);
        r = tp_addr_tcp(a, o->tcp_host, o->port ? o->port : 1, err);
        if (r == KM_OK && o->port == 0)
            a->port = 0;
        return r;
    case TP_KIND_UNIX:
        if (o->unix_path[0] == '\0')
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "TRANSPORT_MODE=unix needs UNIX_PATH (or --unix-path)");
        return tp_addr_unix(a, o->unix_path, err);
    }
    return km_error_set(err, KM_ERR_INVALID, 0, "unknown transport");
}

/* ENCLAVE_CID is what the operator believes; the kernel knows. A mismatch
 * is normal in development (every enclave claims the host's CID 2). */
static void check_cid(const struct options *o)
{
    uint32_t local;
    if (tp_vsock_local_cid(&local) != KM_OK) {
        if (o->has_cid)
            log_info(COMP, "ENCLAVE_CID=%u (the local CID cannot be read here)", o->cid);
        return;
    }
    /* With only vsock_loopback loaded the kernel reports CID 1 (local),
     * and CID 2 (the host) still reaches this machine: development. */
    if (o->has_cid && o->cid == 2 && local == 1)
        log_info(COMP, "ENCLAVE_CID=2, local CID 1 (loopback VSock only): development setup");
    else if (o->has_cid && o->cid != local)
        log_warn(COMP,
                 "ENCLAVE_CID=%u but the local CID is %u (expected in development, where all "
                 "enclaves use CID 2; in production check KEYMELD_ENCLAVE_N_CID)",
                 o->cid, local);
    else
        log_info(COMP, "local CID %u", local);
}

static void log_listening(const struct options *o, const struct tp_addr *a, uint32_t port)
{
    if (a->kind == TP_KIND_VSOCK)
        log_info(COMP, "VSock server listening on CID ANY, port %u", port);
    else if (a->kind == TP_KIND_TCP)
        log_info(COMP, "TCP server listening on %s%s%s:%u", strchr(a->host, ':') ? "[" : "",
                 a->host, strchr(a->host, ':') ? "]" : "", port);
    else
        log_info(COMP, "Unix server listening on %s", o->unix_path);
}

static struct tp_server *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server != NULL)
        tp_server_stop(g_server);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* The development provider: the CA in o->dev_ca, PCR0 = SHA-384 of this
 * binary. */
static int open_development(struct attest_provider **out, const struct options *o,
                            struct km_error *err)
{
    if (o->dev_ca[0] == '\0')
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "ATTESTATION=development needs ATTESTATION_DEV_CA, a directory made "
                            "by `keymeld dev-ca init DIR`");
    uint8_t pcr0[ATTEST_PCR_LEN];
    int r = attest_dev_measure(pcr0, "/proc/self/exe", err);
    if (r != KM_OK)
        return r;
    char module_id[64];
    if (o->has_enclave_id)
        snprintf(module_id, sizeof(module_id), "development-enclave-%u", o->enclave_id);
    else
        snprintf(module_id, sizeof(module_id), "development-enclave");
    return attest_dev_new(out, o->dev_ca, pcr0, module_id, err);
}

/* Chooses the attestation provider (NULL for none). Production accepts
 * only nsm; returns KM_ERR_CONFIG / KM_ERR_IO with what to do. */
static int open_attestation(struct attest_provider **out, const struct options *o,
                            struct km_error *err)
{
    *out = NULL;
    const char *kind = o->has_attestation ? o->attestation : (o->production ? "nsm" : "none");
    if (o->production && strcmp(kind, "nsm") != 0)
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "KEYMELD_ENVIRONMENT=production requires ATTESTATION=nsm (got %s): "
                            "clients cannot trust an enclave key without a Nitro attestation",
                            kind);
    if (strcmp(kind, "nsm") == 0) {
        int r = attest_nsm_open(out, NULL, err);
        if (r != KM_OK)
            km_error_prefix(err, "ATTESTATION=nsm");
        return r;
    }
    if (strcmp(kind, "development") == 0)
        return open_development(out, o, err);
    log_warn(COMP, "ATTESTATION=none: this enclave cannot prove which code holds its key; "
                   "clients must use --insecure-skip-attestation to talk to it");
    return KM_OK;
}

static void log_attestation(const struct attest_provider *p)
{
    if (p == NULL)
        return;
    uint8_t pcr0[ATTEST_PCR_LEN];
    char hex[2 * ATTEST_PCR_LEN + 1];
    attest_provider_pcr0(p, pcr0);
    if (strcmp(attest_provider_name(p), "development") == 0)
        log_info(COMP,
                 "attestation: development (documents signed by the development CA; "
                 "PCR0 %s = SHA-384 of this binary)",
                 hex_encode(hex, sizeof(hex), pcr0, sizeof(pcr0)));
    else
        log_info(COMP, "attestation: %s", attest_provider_name(p));
}

/* SEALER=aws-kms: KMS_* settings; attest is the enclave's provider (KMS
 * gives the data key only to an attested enclave). */
static int open_kms(struct keysource **out, const struct options *o, struct attest_provider *attest,
                    struct km_error *err)
{
    char endpoint[KMS_ENDPOINT_MAX + 1];
    if (o->kms_key_id[0] == '\0')
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "SEALER=aws-kms needs KMS_KEY_ID, the KMS key that makes the data key "
                            "(its id, ARN or alias/NAME)");
    if (o->production && (attest == NULL || strcmp(attest_provider_name(attest), "nsm") != 0))
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "KEYMELD_ENVIRONMENT=production with SEALER=aws-kms requires "
                            "ATTESTATION=nsm");
    if (attest == NULL)
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "SEALER=aws-kms needs ATTESTATION=nsm (or development in tests): KMS "
                            "hands the data key only to an attested enclave");
    if (o->kms_endpoint[0] != '\0')
        snprintf(endpoint, sizeof(endpoint), "%s", o->kms_endpoint);
    else
        snprintf(endpoint, sizeof(endpoint), "https://kms.%s.amazonaws.com", o->kms_region);
    /* Only an enclave (VSock transport) has a parent with a vsock-proxy: a
     * development enclave on TCP or Unix connects to the endpoint itself. */
    uint32_t proxy_port = o->has_kms_proxy_port           ? o->kms_proxy_port
                          : o->transport == TP_KIND_VSOCK ? 8000
                                                          : 0;
    struct keysource_kms_config kc = {.key_id = o->kms_key_id,
                                      .region = o->kms_region,
                                      .endpoint = endpoint,
                                      .allow_http = o->kms_allow_http,
                                      .proxy_cid = o->kms_proxy_cid,
                                      .proxy_port = proxy_port,
                                      .ca_file = o->kms_ca_file[0] ? o->kms_ca_file : NULL};
    int r = keysource_kms_new(out, &kc, attest, err);
    if (r != KM_OK)
        return r;
    if (proxy_port != 0)
        log_info(COMP,
                 "sealer: aws-kms (key %s, region %s, endpoint %s through the vsock-proxy at CID "
                 "%u port %u); the identity key arrives sealed in configure, or is created and "
                 "sealed there with the AWS credentials the gateway hands over",
                 o->kms_key_id, o->kms_region, endpoint, o->kms_proxy_cid, proxy_port);
    else
        log_info(COMP,
                 "sealer: aws-kms (key %s, region %s, endpoint %s, connected directly); the "
                 "identity key arrives sealed in configure, or is created and sealed there with "
                 "the AWS credentials the gateway hands over",
                 o->kms_key_id, o->kms_region, endpoint);
    if (o->kms_allow_http)
        log_warn(COMP, "KMS_ALLOW_HTTP=1: KMS requests may travel unencrypted (tests only)");
    return KM_OK;
}

/* The key source of SEALER (NULL for none, said loudly). KM_ERR_CONFIG /
 * KM_ERR_IO / KM_ERR_INVALID with what to do. */
static int open_keysource(struct keysource **out, const struct options *o,
                          struct attest_provider *attest, struct km_error *err)
{
    *out = NULL;
    if (strcmp(o->sealer, "none") == 0) {
        log_warn(COMP, "SEALER=none: the identity key lives in memory only; a restart of this "
                       "enclave loses every keygen it served (set SEALER=file or aws-kms)");
        return KM_OK;
    }
    if (strcmp(o->sealer, "aws-kms") == 0)
        return open_kms(out, o, attest, err);
    if (o->kek_file[0] == '\0')
        return km_error_set(err, KM_ERR_CONFIG, 0,
                            "SEALER=file needs SEALER_KEK_FILE, a file of 32 random bytes (head -c "
                            "32 /dev/urandom > kek; a Kubernetes Secret or systemd credential)");
    bool loose = false;
    int r = keysource_file_new(out, o->kek_file, &loose, err);
    if (r == KM_OK && loose)
        log_warn(COMP, "the key-encryption key %s is readable by group or others: chmod 600 it",
                 o->kek_file);
    if (r == KM_OK)
        log_info(COMP,
                 "sealer: file (key-encryption key %s); the identity key arrives sealed "
                 "in configure, or is created and sealed there",
                 o->kek_file);
    return r;
}

/* Creates the enclave and serves until a signal; returns the exit code. */
static int serve(const struct options *o)
{
    struct km_error err;
    struct tp_addr addr;
    if (listen_addr(&addr, o, &err) != KM_OK) {
        log_error(COMP, "%s", err.msg);
        return EXIT_USAGE;
    }
    struct attest_provider *attest = NULL;
    int ar = open_attestation(&attest, o, &err);
    if (ar != KM_OK) {
        log_error(COMP, "refusing to start: %s", err.msg);
        return ar == KM_ERR_CONFIG ? EXIT_USAGE : EXIT_START;
    }
    log_attestation(attest);
    struct keysource *ks = NULL;
    ar = open_keysource(&ks, o, attest, &err);
    if (ar != KM_OK) {
        log_error(COMP, "refusing to start: %s", err.msg);
        attest_provider_free(attest);
        return ar == KM_ERR_CONFIG ? EXIT_USAGE : EXIT_START;
    }
    struct enclave_config ecfg = {.has_enclave_id = o->has_enclave_id,
                                  .enclave_id = o->enclave_id,
                                  .max_sessions = o->max_sessions,
                                  .attest = attest,
                                  .keysource = ks};
    struct enclave *en = enclave_new(&ecfg, &err);
    if (en == NULL) {
        log_error(COMP, "%s", err.msg);
        attest_provider_free(attest);
        keysource_free(ks);
        return EXIT_START;
    }
    uint8_t pk[33];
    char pkhex[67];
    if (enclave_public_key(en, pk))
        log_info(COMP, "enclave public key %s (key epoch %llu, in memory only)",
                 hex_encode(pkhex, sizeof(pkhex), pk, sizeof(pk)),
                 (unsigned long long)enclave_key_epoch(en));

    struct tp_server_config scfg = {.workers = o->workers,
                                    .idle_timeout_ms = o->idle_timeout_secs
                                                           ? o->idle_timeout_secs * 1000u
                                                           : TP_SERVER_NO_TIMEOUT,
                                    .max_connections = o->max_connections,
                                    .max_buffered_bytes = o->max_buffered_bytes};
    struct tp_server *srv = tp_server_new(&scfg, enclave_handle, en);
    int code = EXIT_START;
    if (tp_server_listen(srv, &addr, &err) != KM_OK) {
        log_error(COMP, "%s", err.msg);
    } else if (enclave_start_reaper(en, 1000) != KM_OK) {
        log_error(COMP, "cannot start the session reaper thread");
    } else {
        g_server = srv;
        install_signals();
        log_listening(o, &addr, tp_server_port(srv));
        if (tp_server_run(srv) == KM_OK)
            code = 0;
        g_server = NULL;
        uint32_t kg = 0, sg = 0;
        enclave_session_counts(en, &kg, &sg);
        log_info(COMP,
                 "shutting down: in-flight commands done; wiping %u keygen and %u signing "
                 "sessions and the enclave key",
                 kg, sg);
    }
    tp_server_free(srv);
    enclave_free(en);
    attest_provider_free(attest);
    keysource_free(ks);
    return code;
}

int main(int argc, char **argv)
{
    struct options o;
    struct km_error err;
    int code = load_options(&o, argc, argv);
    if (code >= 0)
        return code;
    if (log_configure(o.level, o.format, NULL, &err) != KM_OK) {
        fprintf(stderr, "keymeld-enclave: %s\n", err.msg);
        return EXIT_START;
    }
    /* A core dump would hold every secret in memory. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    log_info(COMP, "keymeld-enclave %s starting (transport %s)", KM_VERSION,
             tp_kind_name(o.transport));
    if (o.has_enclave_id)
        log_info(COMP, "enclave id %u", o.enclave_id);
    /* The CID only means something when the enclave listens on VSock. */
    if (o.transport == TP_KIND_VSOCK)
        check_cid(&o);
    code = serve(&o);
    log_info(COMP, "stopped");
    log_shutdown();
    return code;
}
