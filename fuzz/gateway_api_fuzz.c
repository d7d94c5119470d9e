/*
 * gateway_api_fuzz.c - the REST route handlers of src/gateway in-process,
 * on arbitrary requests, without an HTTP server (docs/API.md).
 *
 * One struct gateway is built on the first call: a store in a temporary
 * directory (/dev/shm when writable; removed at exit, left behind by a
 * crash), an enclave manager over two TCP enclaves on 127.0.0.1 ports
 * that are bound but never listen (every connect is refused at once), and
 * a coordinator that is never started (handlers only queue work and wait
 * on change generations). The store is seeded with sessions in every
 * state, whose keys the harness knows, so requests get past the request
 * signature and reach the code behind it; a request that changed them
 * (a non-GET answered 200) makes the harness seed them again.
 *
 * Input:
 *   byte 0   the route: gw_routes[b % gw_routes_count]
 *   byte 1   path parameters: low nibble the first, high nibble the second
 *            (params[] below: seeded ids, unknown, nil, malformed)
 *   byte 2   low nibble: how the request is signed (enum auth_mode);
 *            high nibble: the ?wait_ms= value (wait_values below), and
 *            which malformed headers AUTH_GARBAGE sends
 *   rest     the body
 *
 * Findings: a crash, a sanitizer report, a leak, a KM_BUG, a handler that
 * sets no reply, a status outside 200..599, any 5xx other than 503 (the
 * enclaves are unreachable, so 503 is expected), a JSON reply that does
 * not parse, or an error reply that is not {"error":{"type","message",
 * "code"}} with code equal to the status.
 *
 * /metrics is not called: gateway_metrics() reads gw->http, which only a
 * running HTTP server provides.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "config/config.h"
#include "crypto/auth.h"
#include "crypto/keypair.h"
#include "gateway/api.h"
#include "gateway/gateway.h"
#include "gateway/replay.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seeded ids (docs/API.md's examples use the same shapes). */
#define K_RESERVED "0190f5e2-6c1a-7b3e-9a4d-000000000001"
#define K_COLLECT  "0190f5e2-6c1a-7b3e-9a4d-000000000002"
#define K_DONE     "0190f5e2-6c1a-7b3e-9a4d-000000000003"
/* Completed too, only reachable through a signing request's body: nobody
 * requires approval / the signing quota is used up. */
#define K_NO_APPROVAL "0190f5e2-6c1a-7b3e-9a4d-000000000004"
#define K_QUOTA       "0190f5e2-6c1a-7b3e-9a4d-000000000005"
#define S_AWAIT       "0190f5e3-0000-7000-8000-000000000001"
#define S_DONE        "0190f5e3-0000-7000-8000-000000000002"
#define S_QUOTA       "0190f5e3-0000-7000-8000-000000000003"
#define U_A           "0190f5e2-7000-7000-8000-00000000000a"
#define U_B           "0190f5e2-7000-7000-8000-00000000000b"
#define U_C           "0190f5e2-7000-7000-8000-00000000000c"
#define SUBSET        "0190f5e2-8000-7000-8000-000000000001"
/* Keys recorded for enclaves 0 and 1 at reserve (valid compressed points). */
#define ENCLAVE0_KEY "034866abff816124713355a6fb4b35c677b0c028c5ea8e4fef3a0f7988887df166"
#define ENCLAVE1_KEY "03142efcab94e23d11ade87d2a094ef10e4f26e7a66ecd1c5e6b39618e9d981fd3"

static const char *const params[16] = {
    K_RESERVED,
    K_COLLECT,
    K_DONE,
    S_AWAIT,
    S_DONE,
    U_A,
    U_B,
    U_C,
    "0190F5E2-6C1A-7B3E-9A4D-000000000003", /* K_DONE in upper case */
    "0190f5e2-6c1a-7b3e-9a4d-0000000000ff", /* well-formed, unknown */
    "00000000-0000-0000-0000-000000000000", /* nil */
    "0190f5e2-6c1a-7b3e-9a4d-00000000000",  /* one digit short */
    "0",                                    /* enclave 0 */
    "1",                                    /* enclave 1 */
    "4294967296",                           /* above UINT32_MAX */
    "%00x\xff",                             /* not UTF-8 */
};

static const char *const wait_values[16] = {
    NULL,   "0",  "1",  "2",  "",   "-1", "abc", "30001", "99999999999999999999999",
    "0002", " 1", "1 ", "+1", NULL, NULL, NULL,
};

enum auth_mode {
    AUTH_NONE = 0,
    AUTH_SESSION, /* the seeded sessions' key */
    AUTH_USER_A,  /* participants' auth keys */
    AUTH_USER_B,
    AUTH_USER_C,
    AUTH_SESSION_STALE, /* valid signature, timestamp an hour old */
    AUTH_SESSION_REUSE, /* a fixed nonce: replayed after its first use */
    AUTH_SESSION_WRONG, /* signature over another body */
    AUTH_GARBAGE,       /* malformed headers */
    AUTH_MODES
};

struct fuzz_state {
    struct cfg cfg;
    struct gateway gw;
    struct keypair session_key, user_key[3];
    char dir[64];
    int port_fds[2];
    uint64_t nonce_counter;
    bool verbose; /* GATEWAY_API_FUZZ_VERBOSE set: print every exchange */
};

static struct fuzz_state *state;

/* ---- set-up ------------------------------------------------------------ */

/* A 127.0.0.1 port that refuses connections: bound, never listening, kept
 * open so nothing else can take it. */
static uint16_t refusing_port(int *fd_out)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    *fd_out = fd;
    return ntohs(sa.sin_port);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (state == NULL)
        return;
    gw_replay_free(state->gw.replay);
    state->gw.replay = NULL;
    store_close(state->gw.store);
    state->gw.store = NULL;
    nftw(state->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void key_from_byte(struct keypair *kp, uint8_t b)
{
    uint8_t sk[32];
    memset(sk, b, sizeof(sk));
    if (keypair_init(kp, sk) != KM_OK)
        abort();
}

static void xonly_hex(char out[65], const struct keypair *kp)
{
    hex_encode(out, 65, kp->xonly, sizeof(kp->xonly));
}

static void make_config(struct fuzz_state *s)
{
    char yaml[1024];
    uint16_t p0 = refusing_port(&s->port_fds[0]), p1 = refusing_port(&s->port_fds[1]);
    snprintf(yaml, sizeof(yaml),
             "environment: development\n"
             "database:\n"
             "  path: %s/gw.db\n"
             "enclaves:\n"
             "  enclaves:\n"
             "    - {id: 0, transport: tcp, tcp_host: 127.0.0.1, port: %u}\n"
             "    - {id: 1, transport: tcp, tcp_host: 127.0.0.1, port: %u}\n"
             "  vsock_timeout_secs: 1\n"
             "  pool_acquire_timeout_secs: 1\n"
             "  max_retry_attempts: 1\n"
             "  initial_retry_delay_ms: 1\n"
             "coordinator:\n"
             "  max_retries: 1\n"
             "logging:\n"
             "  level: off\n",
             s->dir, p0, p1);
    struct cfg_diag d;
    cfg_diag_init(&d);
    if (cfg_parse(&s->cfg, (const uint8_t *)yaml, strlen(yaml), "fuzz.yaml", NULL, &d) != KM_OK ||
        cfg_validate(&s->cfg, &d) != KM_OK) {
        for (size_t i = 0; i < d.count; i++)
            fprintf(stderr, "config: %s\n", d.entries[i].msg);
        abort();
    }
    cfg_diag_release(&d);
}

static void must(int r, const char *what)
{
    if (r != KM_OK) {
        fprintf(stderr, "gateway_api_fuzz: seeding: %s: %s\n", what, km_strerror(r));
        abort();
    }
}

static void participant(struct store_participant *p, const char *user, uint32_t enclave,
                        const struct keypair *auth, bool approval)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->user_id, sizeof(p->user_id), "%s", user);
    p->enclave_id = enclave;
    static char key_ct[] = "c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7";
    p->encrypted_private_key = key_ct;
    xonly_hex(p->auth_pubkey, auth);
    p->require_signing_approval = approval;
}

/* doc as the JSON text the store keeps (the gateway's form); takes doc. */
static char *doc_text(json_t *doc)
{
    char *text = coord_doc_dump(doc);
    json_decref(doc);
    if (text == NULL)
        must(KM_ERR_NOMEM, "seed document");
    return text;
}

/* Reserves id with A (coordinator, enclave 0), B (enclave 1; requires
 * signing approval if approval), C (enclave 0) and one subset {A, B}; then
 * initializes it (and registers everyone) as far as upto says. */
static void seed_keygen(struct fuzz_state *s, const char *id, enum store_keygen_status upto,
                        bool approval, uint32_t max_signing)
{
    struct store *st = s->gw.store;
    struct store_participant slots[3];
    struct store_keygen k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.coordinator_user_id, sizeof(k.coordinator_user_id), "%s", U_A);
    k.coordinator_enclave_id = 0;
    k.timeout_secs = 86400;
    k.max_signing_sessions = max_signing;
    participant(&slots[0], U_A, 0, &s->user_key[0], false);
    participant(&slots[1], U_B, 1, &s->user_key[1], approval);
    participant(&slots[2], U_C, 0, &s->user_key[2], false);
    k.participants = slots;
    k.nparticipants = 3;
    must(store_keygen_set_enclave_key(&k, 0, ENCLAVE0_KEY), "enclave key");
    must(store_keygen_set_enclave_key(&k, 1, ENCLAVE1_KEY), "enclave key");
    k.subsets =
        doc_text(json_pack("[{s:s, s:[s, s]}]", "subset_id", SUBSET, "participants", U_A, U_B));
    static char tweak_ct[] = "abababababababababababababababab";
    k.encrypted_taproot_tweak = tweak_ct;
    must(store_keygen_reserve(st, &k, NULL, NULL), "reserve");
    free(k.subsets);
    if (upto == STORE_KEYGEN_RESERVED)
        return;

    char session_pk[65];
    xonly_hex(session_pk, &s->session_key);
    must(store_keygen_initialize(st, id, session_pk, "5e5e5e5e5e5e5e5e5e5e", &slots[0]),
         "initialize");
    if (upto == STORE_KEYGEN_COLLECTING)
        return;

    size_t registered, expected;
    bool running;
    must(store_keygen_register(st, id, &slots[1], &registered, &expected, &running), "register");
    must(store_keygen_register(st, id, &slots[2], &registered, &expected, &running), "register");
    char *state_json = doc_text(json_object());
    char *subsets = doc_text(json_pack("[{s:s, s:s}]", "subset_id", SUBSET,
                                       "encrypted_aggregate_public_key", "5555555555555555"));
    struct store_keygen_progress done = {
        .from_step = 0,
        .to_step = 5,
        .status = STORE_KEYGEN_COMPLETED,
        .state = state_json,
        .encrypted_aggregate_public_key = "dddddddddddddddd",
        .aggregate_check = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        .subset_results = subsets,
    };
    must(store_keygen_advance(st, id, &done), "complete keygen");
    free(state_json);
    free(subsets);
}

static void seed_signing(struct fuzz_state *s, const char *id, const char *keygen, bool completed)
{
    struct store *st = s->gw.store;
    struct store_signing sg;
    memset(&sg, 0, sizeof(sg));
    snprintf(sg.id, sizeof(sg.id), "%s", id);
    snprintf(sg.keygen_session_id, sizeof(sg.keygen_session_id), "%s", keygen);
    sg.status = completed ? STORE_SIGNING_RUNNING : STORE_SIGNING_AWAITING_APPROVALS;
    sg.timeout_secs = 86400;
    sg.items = doc_text(json_pack("[{s:s, s:s}]", "item_id", "0190f5e3-1000-7000-8000-000000000001",
                                  "encrypted_message", "5a5a5a5a5a5a5a5a"));
    must(store_signing_create(st, &sg), "create signing");
    free(sg.items);
    if (!completed)
        return;
    char *state_json = doc_text(json_object());
    char *results =
        doc_text(json_pack("[{s:s, s:s}]", "item_id", "0190f5e3-1000-7000-8000-000000000001",
                           "encrypted_signature", "9999999999999999"));
    struct store_signing_progress done = {
        .from_step = 0,
        .to_step = 3,
        .status = STORE_SIGNING_COMPLETED,
        .state = state_json,
        .results = results,
    };
    must(store_signing_advance(st, id, &done), "complete signing");
    free(state_json);
    free(results);
}

/* (Re)creates the seeded sessions; deleting a keygen deletes its signing
 * sessions. */
static void seed(struct fuzz_state *s)
{
    static const char *const keygens[] = {K_RESERVED, K_COLLECT, K_DONE, K_NO_APPROVAL, K_QUOTA};
    for (size_t i = 0; i < KM_ARRAY_LEN(keygens); i++) {
        int r = store_keygen_delete(s->gw.store, keygens[i]);
        if (r != KM_OK && r != KM_ERR_NOT_FOUND)
            must(r, "delete");
    }
    seed_keygen(s, K_RESERVED, STORE_KEYGEN_RESERVED, true, API_MAX_SIGNING_SESSIONS);
    seed_keygen(s, K_COLLECT, STORE_KEYGEN_COLLECTING, true, API_MAX_SIGNING_SESSIONS);
    seed_keygen(s, K_DONE, STORE_KEYGEN_COMPLETED, true, API_MAX_SIGNING_SESSIONS);
    seed_keygen(s, K_NO_APPROVAL, STORE_KEYGEN_COMPLETED, false, API_MAX_SIGNING_SESSIONS);
    seed_keygen(s, K_QUOTA, STORE_KEYGEN_COMPLETED, true, 1);
    seed_signing(s, S_AWAIT, K_DONE, false);
    seed_signing(s, S_DONE, K_DONE, true);
    seed_signing(s, S_QUOTA, K_QUOTA, false);
}

static struct fuzz_state *setup(void)
{
    struct fuzz_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->dir, sizeof(s->dir), "%s/km-gwfuzz-XXXXXX", base);
    if (mkdtemp(s->dir) == NULL)
        abort();
    make_config(s);
    log_set_level(LOG_LEVEL_OFF);

    struct store_options so;
    struct km_error err;
    store_options_default(&so, s->cfg.database.path);
    if (store_open(&s->gw.store, &so, &err) != KM_OK) {
        fprintf(stderr, "gateway_api_fuzz: %s\n", err.msg);
        abort();
    }
    s->gw.cfg = &s->cfg;
    s->gw.started_wall_ms = clock_wall_ms();
    s->gw.replay = gw_replay_new(s->gw.store);
    s->gw.enclaves = enclave_mgr_new(&s->cfg, s->gw.store, NULL, NULL, NULL);
    s->gw.coord = coord_new(&s->cfg, s->gw.store, s->gw.enclaves);
    key_from_byte(&s->session_key, 0x11);
    key_from_byte(&s->user_key[0], 0x22);
    key_from_byte(&s->user_key[1], 0x33);
    key_from_byte(&s->user_key[2], 0x44);
    seed(s);
    s->verbose = getenv("GATEWAY_API_FUZZ_VERBOSE") != NULL;
    state = s;
    atexit(cleanup);
    return s;
}

/* ---- one request --------------------------------------------------------- */

struct headers {
    char timestamp[32];
    char nonce[64];
    char signature[160];
    bool present;
};

struct req_ctx {
    struct headers h;
    const char *wait_ms;
};

static const char *lookup_header(void *ctx, const char *name)
{
    struct req_ctx *c = ctx;
    if (!c->h.present)
        return NULL;
    if (strcasecmp(name, GW_HDR_TIMESTAMP) == 0)
        return c->h.timestamp;
    if (strcasecmp(name, GW_HDR_NONCE) == 0)
        return c->h.nonce;
    if (strcasecmp(name, GW_HDR_SIGNATURE) == 0)
        return c->h.signature;
    return NULL;
}

static const char *lookup_query(void *ctx, const char *name)
{
    struct req_ctx *c = ctx;
    return strcmp(name, "wait_ms") == 0 ? c->wait_ms : NULL;
}

static void sign(struct fuzz_state *s, struct headers *h, enum auth_mode mode, const char *method,
                 const char *url, const uint8_t *body, size_t body_len)
{
    const struct keypair *kp = &s->session_key;
    if (mode >= AUTH_USER_A && mode <= AUTH_USER_C)
        kp = &s->user_key[mode - AUTH_USER_A];
    struct auth_request ar;
    memset(&ar, 0, sizeof(ar));
    ar.method = method;
    ar.method_len = strlen(method);
    ar.path = url;
    ar.path_len = strlen(url);
    ar.timestamp = clock_wall_ms() / 1000u;
    if (mode == AUTH_SESSION_STALE)
        ar.timestamp -= 3600;
    uint64_t n = mode == AUTH_SESSION_REUSE ? 0 : ++s->nonce_counter;
    for (size_t i = 0; i < 8; i++)
        ar.nonce[i] = (uint8_t)(n >> (8 * i));
    ar.nonce[15] = 0xa5;
    static const uint8_t other[] = "{}";
    if (mode == AUTH_SESSION_WRONG)
        body = other, body_len = 2;
    uint8_t sig[AUTH_SIG_LEN];
    if (auth_body_hash(ar.body_hash, body, body_len) != KM_OK || auth_sign(sig, kp, &ar) != KM_OK)
        abort();
    snprintf(h->timestamp, sizeof(h->timestamp), "%llu", (unsigned long long)ar.timestamp);
    hex_encode(h->nonce, sizeof(h->nonce), ar.nonce, sizeof(ar.nonce));
    hex_encode(h->signature, sizeof(h->signature), sig, sizeof(sig));
    h->present = true;
}

static void garbage_headers(struct headers *h, uint8_t sel)
{
    static const char *const ts[] = {"", "12a", "99999999999999999999", "1"};
    snprintf(h->timestamp, sizeof(h->timestamp), "%s", ts[sel & 3]);
    snprintf(h->nonce, sizeof(h->nonce), "%s",
             (sel & 4) ? "00112233445566778899AABBCCDDEEFF" : "0011");
    memset(h->signature, (sel & 8) ? 'f' : 'g', 128);
    h->signature[128] = '\0';
    h->present = true;
}

/* Writes the route's pattern with its {name} segments replaced by the
 * chosen parameters into out. Returns the number of parameters. */
static size_t build_path(char *out, size_t cap, const char *pattern, const char *p0, const char *p1)
{
    size_t n = 0, o = 0;
    for (const char *p = pattern; *p && o + 1 < cap;) {
        if (*p == '{') {
            const char *v = n == 0 ? p0 : p1;
            n++;
            int w = snprintf(out + o, cap - o, "%s", v);
            o = w < 0 || (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
            while (*p && *p != '}')
                p++;
            if (*p == '}')
                p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return n;
}

static bool is_health(http_handler_fn h)
{
    return h == api_health || h == api_health_ready || h == api_health_detail;
}

static void failure(const char *what, const struct http_route *rt, const char *url,
                    const struct http_response *resp)
{
    fprintf(stderr, "gateway_api_fuzz: %s: %s %s -> %u %.*s\n", what, rt->method, url, resp->status,
            (int)(buf_len(&resp->body) > 2000 ? 2000 : buf_len(&resp->body)),
            (const char *)buf_peek(&resp->body));
    abort();
}

static void check_reply(const struct http_route *rt, const char *url,
                        const struct http_response *resp)
{
    if (resp->status == 0)
        failure("handler set no reply", rt, url, resp);
    if (resp->status < 200 || resp->status > 599)
        failure("status out of range", rt, url, resp);
    if (resp->status >= 500 && resp->status != 503)
        failure("server error", rt, url, resp);
    if (resp->content_type == NULL || strcmp(resp->content_type, "application/json") != 0)
        failure("reply is not JSON", rt, url, resp);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf_peek(&resp->body), buf_len(&resp->body), 0, &jerr);
    if (j == NULL)
        failure("reply does not parse as JSON", rt, url, resp);
    if (resp->status >= 400 && !is_health(rt->handler)) {
        json_t *e = json_object_get(j, "error");
        if (json_object_size(j) != 1 || json_object_size(e) != 3 ||
            !json_is_string(json_object_get(e, "type")) ||
            !json_is_string(json_object_get(e, "message")) ||
            json_integer_value(json_object_get(e, "code")) != (json_int_t)resp->status)
            failure("malformed error body", rt, url, resp);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_state *s = state ? state : setup();
    if (size < 3)
        return 0;
    const struct http_route *rt = &gw_routes[data[0] % gw_routes_count];
    if (rt->handler == api_metrics)
        return 0; /* needs gw->http: see the file comment */
    const char *p0 = params[data[1] & 15], *p1 = params[data[1] >> 4];
    enum auth_mode mode = (enum auth_mode)((data[2] & 15) % AUTH_MODES);
    struct req_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.wait_ms = wait_values[data[2] >> 4];
    const uint8_t *body = size > 3 ? data + 3 : NULL;
    size_t body_len = size - 3;

    char path[512], match[512], url[600];
    size_t nparams = build_path(path, sizeof(path), rt->pattern, p0, p1);
    snprintf(url, sizeof(url), "%s%s%s", path, ctx.wait_ms ? "?wait_ms=" : "",
             ctx.wait_ms ? ctx.wait_ms : "");
    memcpy(match, path, sizeof(match));

    struct http_request req;
    memset(&req, 0, sizeof(req));
    int route = http_route_match(gw_routes, gw_routes_count, rt->method, match, &req);
    if (route < 0)
        abort(); /* every parameter is one non-empty segment: some route takes it */
    if (gw_routes[route].handler == api_metrics)
        return 0;
    if (route == (int)(rt - gw_routes) && req.nparams != nparams)
        abort(); /* the router lost a parameter */
    for (size_t i = 0; i < req.nparams; i++) {
        if (strchr(req.params[i], '/') != NULL)
            abort(); /* not terminated in place */
    }
    rt = &gw_routes[route];

    if (mode == AUTH_GARBAGE)
        garbage_headers(&ctx.h, data[2] >> 4);
    else if (mode != AUTH_NONE)
        sign(s, &ctx.h, mode, rt->method, url, body, body_len);
    snprintf(req.request_id, sizeof(req.request_id), "fuzz");
    req.method = rt->method;
    req.url = url;
    req.path = path;
    req.body = body;
    req.body_len = body_len;
    req.header = lookup_header;
    req.query = lookup_query;
    req.ctx = &ctx;

    struct http_response resp;
    memset(&resp, 0, sizeof(resp));
    buf_init(&resp.body, 64u << 20);
    rt->handler(&s->gw, &req, &resp);
    if (s->verbose)
        fprintf(stderr, "%s %s -> %u %.*s\n", rt->method, url, resp.status,
                (int)(buf_len(&resp.body) > 300 ? 300 : buf_len(&resp.body)),
                (const char *)buf_peek(&resp.body));
    check_reply(rt, url, &resp);
    if (strcmp(rt->method, "GET") != 0 && resp.status == 200)
        seed(s);
    buf_release(&resp.body);
    return 0;
}
