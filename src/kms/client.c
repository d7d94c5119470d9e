/*
 * client.c - KMS GenerateDataKey and Decrypt with a Recipient (client.h):
 * JSON bodies (jansson), SigV4 (sigv4.c), libcurl with an optional
 * pre-connected socket, and CiphertextForRecipient opened by cms.c.
 */
#include "kms/client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/doc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/base64.h"
#include "kms/cms.h"
#include "kms/relay.h"
#include "kms/sigv4.h"
#include "common/banned.h"

struct kms_client {
    char endpoint[KMS_ENDPOINT_MAX + 1]; /* scheme://host[:port], no trailing '/' */
    char host[KMS_ENDPOINT_MAX + 1];     /* the Host header: host[:port] */
    char resolve_host[KMS_ENDPOINT_MAX + 1];
    long port;
    char region[SIGV4_SCOPE_PART_MAX + 1];
    char ca_file[1024];
    uint32_t timeout_ms;
    kms_connect_fn connect;
    void *connect_ctx;
    bool use_relay; /* libcurl 7.88: see relay.h */

    pthread_mutex_t cred_lock;
    char access_key_id[SIGV4_ACCESS_KEY_MAX + 1];
    char secret_access_key[SIGV4_SECRET_MAX + 1];
    char session_token[SIGV4_TOKEN_MAX + 1]; /* "" = none */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        KM_BUG("curl_global_init failed");
}

/* ---- Configuration ------------------------------------------------------------- */

/* Copies s into out[cap] when 1 <= strlen(s) < cap and every byte is
 * printable ASCII other than space. */
static bool copy_field(char *out, size_t cap, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    memcpy(out, s, n + 1);
    return true;
}

static int parse_endpoint(struct kms_client *c, const char *endpoint, bool allow_http,
                          struct km_error *err)
{
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *port = NULL;
    CURLU *u = curl_url();
    int r = KM_OK;
    if (u == NULL)
        KM_BUG("out of memory");
    if (endpoint == NULL || strlen(endpoint) > KMS_ENDPOINT_MAX ||
        curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        r = km_error_set(err, KM_ERR_CONFIG, 0, "kms: endpoint \"%.100s\" is not a URL",
                         endpoint ? endpoint : "");
        goto out;
    }
    bool https = strcmp(scheme, "https") == 0;
    if (!https && !(strcmp(scheme, "http") == 0 && allow_http)) {
        r = km_error_set(err, KM_ERR_CONFIG, 0, "kms: endpoint %.100s: scheme must be https",
                         endpoint);
        goto out;
    }
    if ((curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && strcmp(path, "/") != 0) ||
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        r = km_error_set(err, KM_ERR_CONFIG, 0,
                         "kms: endpoint %.100s: no path or query allowed (requests go to /)",
                         endpoint);
        goto out;
    }
    char *end = NULL;
    c->port = strtol(port, &end, 10);
    long def = https ? 443 : 80;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s://%s:%ld", scheme, host, c->port);
    if (c->port == def)
        snprintf(c->host, sizeof(c->host), "%s", host);
    else
        snprintf(c->host, sizeof(c->host), "%s:%ld", host, c->port);
    /* CURLOPT_RESOLVE wants an IPv6 literal without brackets. */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[')
        snprintf(c->resolve_host, sizeof(c->resolve_host), "%.*s", (int)(hl - 2), host + 1);
    else
        snprintf(c->resolve_host, sizeof(c->resolve_host), "%s", host);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

/* Checks and stores credentials into the (locked) client. */
static int store_credentials(struct kms_client *c, const char *ak, const char *secret,
                             const char *token, struct km_error *err)
{
    char a[sizeof(c->access_key_id)], s[sizeof(c->secret_access_key)], t[sizeof(c->session_token)];
    int r = KM_OK;
    t[0] = '\0';
    if (!copy_field(a, sizeof(a), ak) || strpbrk(a, "/,;=") != NULL)
        r = km_error_set(err, KM_ERR_CONFIG, 0, "kms: bad access key id (1..%d characters)",
                         SIGV4_ACCESS_KEY_MAX);
    else if (!copy_field(s, sizeof(s), secret))
        r = km_error_set(err, KM_ERR_CONFIG, 0,
                         "kms: bad secret access key (1..%d printable characters)",
                         SIGV4_SECRET_MAX);
    else if (token != NULL && !copy_field(t, sizeof(t), token))
        r = km_error_set(err, KM_ERR_CONFIG, 0,
                         "kms: bad session token (1..%d printable characters)", SIGV4_TOKEN_MAX);
    if (r == KM_OK) {
        pthread_mutex_lock(&c->cred_lock);
        memcpy(c->access_key_id, a, sizeof(a));
        memcpy(c->secret_access_key, s, sizeof(s));
        memcpy(c->session_token, t, sizeof(t));
        pthread_mutex_unlock(&c->cred_lock);
    }
    secure_wipe(a, sizeof(a));
    secure_wipe(s, sizeof(s));
    secure_wipe(t, sizeof(t));
    return r;
}

int kms_client_new(struct kms_client **out, const struct kms_client_config *cfg,
                   struct km_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    struct kms_client *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->cred_lock, NULL);
    int r = parse_endpoint(c, cfg->endpoint, cfg->allow_http, err);
    if (r == KM_OK &&
        (!copy_field(c->region, sizeof(c->region), cfg->region) ||
         strspn(c->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->region)))
        r = km_error_set(err, KM_ERR_CONFIG, 0, "kms: bad region \"%.64s\"",
                         cfg->region ? cfg->region : "");
    if (r == KM_OK && cfg->ca_file != NULL &&
        !copy_field(c->ca_file, sizeof(c->ca_file), cfg->ca_file))
        r = km_error_set(err, KM_ERR_CONFIG, 0, "kms: bad CA file path");
    if (r == KM_OK)
        r = store_credentials(c, cfg->access_key_id, cfg->secret_access_key, cfg->session_token,
                              err);
    if (r != KM_OK) {
        kms_client_free(c);
        return r;
    }
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : KMS_DEFAULT_TIMEOUT_MS;
    c->connect = cfg->connect;
    c->connect_ctx = cfg->connect_ctx;
    c->use_relay = cfg->connect != NULL && kms_relay_needed();
    *out = c;
    return KM_OK;
}

void kms_client_free(struct kms_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->cred_lock);
    secure_free(c, sizeof(*c));
}

int kms_client_set_credentials(struct kms_client *c, const char *access_key_id,
                               const char *secret_access_key, const char *session_token,
                               struct km_error *err)
{
    return store_credentials(c, access_key_id, secret_access_key, session_token, err);
}

/* ---- One request ---------------------------------------------------------------- */

struct conn_ctx {
    struct kms_client *c;
    struct km_error err; /* the seam's failure, if any */
    bool failed;
};

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct conn_ctx *cc = ud;
    (void)addr;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    km_error_clear(&cc->err);
    int fd = cc->c->connect(cc->c->connect_ctx, &cc->err);
    if (fd < 0) {
        cc->failed = true;
        if (cc->err.msg[0] == '\0')
            km_error_set(&cc->err, KM_ERR_CONNECT, 0, "the connect callback failed");
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int socket_ready(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    (void)fd;
    (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return buf_put(ud, p, n) == KM_OK ? n : 0; /* 0 aborts the transfer */
}

/* The headers to sign and send. */
struct req_headers {
    char date[SIGV4_DATE_LEN + 1];
    char target[64];
    struct sigv4_header h[5];
    size_t n;
};

/* Signs the request (under the credential lock) and builds libcurl's
 * header list. */
static int sign_request(struct curl_slist **list, struct kms_client *c, struct req_headers *rh,
                        const char *body, struct km_error *err)
{
    struct sigv4_signature sig;
    struct buf line;
    int r;

    pthread_mutex_lock(&c->cred_lock);
    rh->h[rh->n++] = (struct sigv4_header){"Host", c->host};
    rh->h[rh->n++] = (struct sigv4_header){"Content-Type", KMS_CONTENT_TYPE};
    rh->h[rh->n++] = (struct sigv4_header){"X-Amz-Date", rh->date};
    rh->h[rh->n++] = (struct sigv4_header){"X-Amz-Target", rh->target};
    if (c->session_token[0] != '\0')
        rh->h[rh->n++] = (struct sigv4_header){"X-Amz-Security-Token", c->session_token};
    struct sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = NULL,
        .headers = rh->h,
        .nheaders = rh->n,
        .body = (const uint8_t *)body,
        .body_len = strlen(body),
        .region = c->region,
        .service = "kms",
        .amz_date = rh->date,
    };
    struct sigv4_credentials cred = {c->access_key_id, c->secret_access_key,
                                     c->session_token[0] != '\0' ? c->session_token : NULL};
    r = sigv4_sign(&sig, &req, &cred, err);
    buf_init(&line, SIGV4_TOKEN_MAX + 256);
    for (size_t i = 0; r == KM_OK && i < rh->n; i++) {
        buf_reset(&line);
        r = buf_putf(&line, "%s: %s", rh->h[i].name, rh->h[i].value);
        if (r == KM_OK)
            *list = curl_slist_append(*list, buf_cstr(&line));
    }
    pthread_mutex_unlock(&c->cred_lock);
    if (r == KM_OK) {
        buf_reset(&line);
        r = buf_putf(&line, "Authorization: %s", sig.authorization);
        if (r == KM_OK)
            *list = curl_slist_append(*list, buf_cstr(&line));
        /* No "Expect: 100-continue" round trip, no unsigned Accept. */
        *list = curl_slist_append(*list, "Expect:");
        *list = curl_slist_append(*list, "Accept:");
        if (*list == NULL)
            KM_BUG("out of memory");
    }
    buf_release(&line);
    sigv4_signature_clear(&sig);
    return r;
}

/* "com.amazonaws.kms#AccessDeniedException" -> "AccessDeniedException". */
static const char *short_type(const char *t)
{
    const char *h = strrchr(t, '#');
    return h != NULL ? h + 1 : t;
}

/* Turns a non-200 reply into KM_ERR_REMOTE naming the type and message. */
static int remote_error(const char *op, const char *endpoint, long status, const struct buf *body,
                        struct km_error *err)
{
    json_t *j = json_loadb((const char *)buf_peek(body), buf_len(body), 0, NULL);
    const char *type = json_string_value(json_object_get(j, "__type"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg == NULL)
        msg = json_string_value(json_object_get(j, "Message"));
    int r;
    if (type != NULL)
        r = km_error_set(err, KM_ERR_REMOTE, 0, "kms %s at %s: %.100s: %.200s (HTTP %ld)", op,
                         endpoint, short_type(type), msg ? msg : "(no message)", status);
    else
        r = km_error_set(err, KM_ERR_REMOTE, 0, "kms %s at %s: HTTP %ld without an error type", op,
                         endpoint, status);
    json_decref(j);
    return r;
}

/*
 * Hands libcurl the seam's socket: directly (CURL_SOCKOPT_ALREADY_CONNECTED)
 * or, on a libcurl that would connect() it again, through the relay.
 * false when the seam failed (cc says why).
 */
static bool attach_seam(CURL *h, struct kms_client *c, struct conn_ctx *cc,
                        struct curl_slist **resolve, struct kms_relay *relay)
{
    if (c->use_relay) {
        int fd = c->connect(c->connect_ctx, &cc->err);
        if (fd < 0 || kms_relay_start(relay, fd, c->timeout_ms, &cc->err) != KM_OK) {
            cc->failed = true;
            if (cc->err.msg[0] == '\0')
                km_error_set(&cc->err, KM_ERR_CONNECT, 0, "the connect callback failed");
            return false;
        }
        curl_easy_setopt(h, CURLOPT_ABSTRACT_UNIX_SOCKET, relay->name);
        return true;
    }
    /* No DNS in an enclave: give libcurl an address it never uses. */
    char entry[KMS_ENDPOINT_MAX + 32];
    snprintf(entry, sizeof(entry), "%s:%ld:127.0.0.1", c->resolve_host, c->port);
    *resolve = curl_slist_append(NULL, entry);
    curl_easy_setopt(h, CURLOPT_RESOLVE, *resolve);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, cc);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, socket_ready);
    return true;
}

/* One POST of text with headers hdrs: the libcurl code, the HTTP status
 * and the reply body in resp. */
static CURLcode perform(struct kms_client *c, long *status, struct buf *resp, struct conn_ctx *cc,
                        const char *text, struct curl_slist *hdrs)
{
    struct curl_slist *resolve = NULL;
    struct kms_relay relay = {.listen_fd = -1, .peer_fd = -1, .stop = {-1, -1}};
    char url[KMS_ENDPOINT_MAX + 8];
    CURLcode code = CURLE_COULDNT_CONNECT;

    *status = 0;
    snprintf(url, sizeof(url), "%s/", c->endpoint);
    CURL *h = curl_easy_init();
    if (h == NULL)
        KM_BUG("curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    if (c->ca_file[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->connect == NULL || attach_seam(h, c, cc, &resolve, &relay))
        code = curl_easy_perform(h);
    if (code == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    kms_relay_stop(&relay);
    curl_slist_free_all(resolve);
    return code;
}

/*
 * POSTs body to the endpoint as TrentService.<op>. KM_OK with *reply (a
 * JSON object) for HTTP 200; otherwise an error naming the endpoint.
 */
static int kms_call(struct kms_client *c, json_t **reply, const char *op, const json_t *body,
                    struct km_error *err)
{
    struct req_headers rh;
    struct curl_slist *hdrs = NULL;
    struct conn_ctx cc = {.c = c};
    struct buf resp;
    long status = 0;
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);

    *reply = NULL;
    if (text == NULL)
        KM_BUG("out of memory");
    memset(&rh, 0, sizeof(rh));
    sigv4_format_date(rh.date, time(NULL));
    snprintf(rh.target, sizeof(rh.target), "TrentService.%s", op);
    buf_init(&resp, KMS_RESPONSE_MAX);
    int r = sign_request(&hdrs, c, &rh, text, err);
    if (r != KM_OK)
        goto out;

    CURLcode code = perform(c, &status, &resp, &cc, text, hdrs);
    if (cc.failed) {
        r = km_error_set(err, cc.err.code != KM_OK ? cc.err.code : KM_ERR_CONNECT, cc.err.sys_errno,
                         "kms %s: cannot connect to %s: %s", op, c->endpoint, cc.err.msg);
    } else if (code == CURLE_WRITE_ERROR) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "kms %s at %s: reply over %u bytes", op,
                         c->endpoint, KMS_RESPONSE_MAX);
    } else if (code != CURLE_OK) {
        r = code == CURLE_OPERATION_TIMEDOUT     ? KM_ERR_TIMEOUT
            : code == CURLE_COULDNT_RESOLVE_HOST ? KM_ERR_RESOLVE
                                                 : KM_ERR_CONNECT;
        r = km_error_set(err, r, 0, "kms %s: cannot reach %s: %s", op, c->endpoint,
                         curl_easy_strerror(code));
    } else if (status != 200) {
        r = remote_error(op, c->endpoint, status, &resp, err);
    } else {
        *reply =
            json_loadb((const char *)buf_peek(&resp), buf_len(&resp), JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*reply)) {
            json_decref(*reply);
            *reply = NULL;
            r = km_error_set(err, KM_ERR_INVALID, 0, "kms %s at %s: reply is not a JSON object", op,
                             c->endpoint);
        }
    }
    log_debug("kms", "%s at %s: %s", op, c->endpoint, r == KM_OK ? "ok" : km_errname(r));
out:
    curl_slist_free_all(hdrs);
    buf_release(&resp);
    free(text);
    return r;
}

/* ---- The two operations ----------------------------------------------------------- */

static int check_inputs(const char *key_id, bool key_required, const uint8_t *doc, size_t doc_len,
                        EVP_PKEY *rsa, struct km_error *err)
{
    if (rsa == NULL || (doc == NULL && doc_len > 0))
        KM_BUG("kms: NULL argument");
    char id[KMS_KEY_ID_MAX + 1];
    if (key_id == NULL ? key_required : !copy_field(id, sizeof(id), key_id))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "kms: key id must be 1..%d printable characters", KMS_KEY_ID_MAX);
    if (doc_len == 0 || doc_len > ATTEST_DOC_MAX_LEN)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "kms: attestation document of %zu bytes (1..%u)", doc_len,
                            ATTEST_DOC_MAX_LEN);
    return KM_OK;
}

static json_t *recipient(const uint8_t *doc, size_t doc_len)
{
    char *b64 = base64_encode(doc, doc_len);
    json_t *r = json_pack("{s:s, s:s}", "AttestationDocument", b64, "KeyEncryptionAlgorithm",
                          KMS_KEY_ENCRYPTION_ALG);
    free(b64);
    if (r == NULL)
        KM_BUG("out of memory");
    return r;
}

/* Reads the base64 string field name of reply (at most max bytes). */
static int get_b64(uint8_t **out, size_t *out_len, const json_t *reply, const char *name,
                   size_t max, const char *op, struct km_error *err)
{
    const char *s = json_string_value(json_object_get(reply, name));
    if (s == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "kms %s: reply without %s", op, name);
    int r = base64_decode(out, out_len, s, strlen(s), max, false);
    if (r == KM_OK && *out_len == 0)
        r = KM_ERR_INVALID;
    if (r != KM_OK) {
        free(*out);
        *out = NULL;
        *out_len = 0;
        return km_error_set(err, r, 0, "kms %s: %s is not base64 of 1..%zu bytes", op, name, max);
    }
    return KM_OK;
}

/* CiphertextForRecipient -> the 32-byte data key. A Plaintext field means
 * the key travelled outside the envelope: refused. */
static int open_for_recipient(uint8_t plaintext[KMS_DATA_KEY_LEN], const json_t *reply,
                              EVP_PKEY *rsa, const char *op, struct km_error *err)
{
    const json_t *pt = json_object_get(reply, "Plaintext");
    if (pt != NULL && !json_is_null(pt) && !(json_is_string(pt) && json_string_length(pt) == 0))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "kms %s: reply carries a Plaintext despite the Recipient", op);
    uint8_t *cms = NULL;
    size_t cms_len = 0, n = 0;
    int r = get_b64(&cms, &cms_len, reply, "CiphertextForRecipient", KMS_CMS_MAX_INPUT, op, err);
    if (r == KM_OK) {
        r = kms_cms_open(plaintext, KMS_DATA_KEY_LEN, &n, cms, cms_len, rsa, err);
        if (r != KM_OK)
            km_error_prefix(err, "kms %s: CiphertextForRecipient", op);
    }
    if (r == KM_OK && n != KMS_DATA_KEY_LEN)
        r = km_error_set(err, KM_ERR_INVALID, 0, "kms %s: data key of %zu bytes (32 expected)", op,
                         n);
    free(cms);
    return r;
}

int kms_generate_data_key(struct kms_client *c, uint8_t plaintext[KMS_DATA_KEY_LEN], uint8_t **blob,
                          size_t *blob_len, const char *key_id, const uint8_t *attestation_doc,
                          size_t doc_len, EVP_PKEY *rsa_key, struct km_error *err)
{
    static const char op[] = "GenerateDataKey";
    json_t *body = NULL, *reply = NULL;

    *blob = NULL;
    *blob_len = 0;
    int r = check_inputs(key_id, true, attestation_doc, doc_len, rsa_key, err);
    if (r != KM_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:o}", "KeyId", key_id, "KeySpec", "AES_256", "Recipient",
                     recipient(attestation_doc, doc_len));
    if (body == NULL)
        KM_BUG("out of memory");
    r = kms_call(c, &reply, op, body, err);
    if (r == KM_OK)
        r = get_b64(blob, blob_len, reply, "CiphertextBlob", KMS_CIPHERTEXT_BLOB_MAX, op, err);
    if (r == KM_OK)
        r = open_for_recipient(plaintext, reply, rsa_key, op, err);
out:
    if (r != KM_OK) {
        secure_wipe(plaintext, KMS_DATA_KEY_LEN);
        free(*blob);
        *blob = NULL;
        *blob_len = 0;
    }
    json_decref(reply);
    json_decref(body);
    return r;
}

int kms_decrypt(struct kms_client *c, uint8_t plaintext[KMS_DATA_KEY_LEN], const uint8_t *blob,
                size_t blob_len, const char *key_id, const uint8_t *attestation_doc, size_t doc_len,
                EVP_PKEY *rsa_key, struct km_error *err)
{
    static const char op[] = "Decrypt";
    json_t *body = NULL, *reply = NULL;

    int r = check_inputs(key_id, false, attestation_doc, doc_len, rsa_key, err);
    if (r == KM_OK && (blob == NULL || blob_len == 0 || blob_len > KMS_CIPHERTEXT_BLOB_MAX))
        r = km_error_set(err, KM_ERR_INVALID, 0, "kms: ciphertext blob of %zu bytes (1..%d)",
                         blob_len, KMS_CIPHERTEXT_BLOB_MAX);
    if (r != KM_OK)
        goto out;
    char *b64 = base64_encode(blob, blob_len);
    body = json_pack("{s:s}", "CiphertextBlob", b64);
    free(b64);
    if (body == NULL ||
        (key_id != NULL && json_object_set_new(body, "KeyId", json_string(key_id)) != 0) ||
        json_object_set_new(body, "Recipient", recipient(attestation_doc, doc_len)) != 0)
        KM_BUG("out of memory");
    r = kms_call(c, &reply, op, body, err);
    if (r == KM_OK)
        r = open_for_recipient(plaintext, reply, rsa_key, op, err);
out:
    if (r != KM_OK)
        secure_wipe(plaintext, KMS_DATA_KEY_LEN);
    json_decref(reply);
    json_decref(body);
    return r;
}
