#include "client/rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/auth.h"
#include "common/banned.h"

struct rest_client {
    CURL *curl;
    char *base;
    uint32_t timeout_ms;
    char api_key[128]; /* "" = none */
    char *ca_file;     /* CURLOPT_CAINFO; NULL = the system store */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        KM_BUG("curl_global_init failed");
}

struct rest_client *rest_client_new(const char *base_url, uint32_t timeout_ms)
{
    pthread_once(&curl_once, curl_init_once);
    struct rest_client *c = xcalloc(1, sizeof(*c));
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        KM_BUG("curl_easy_init failed");
    c->base = xstrdup(base_url);
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->timeout_ms = timeout_ms ? timeout_ms : 30000;
    return c;
}

void rest_client_free(struct rest_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->ca_file);
    secure_free(c, sizeof(*c));
}

int rest_client_set_api_key(struct rest_client *c, const char *token)
{
    if (token == NULL || token[0] == '\0') {
        secure_wipe(c->api_key, sizeof(c->api_key));
        return KM_OK;
    }
    if (strlen(token) >= sizeof(c->api_key) || strpbrk(token, "\r\n") != NULL)
        return KM_ERR_INVALID;
    snprintf(c->api_key, sizeof(c->api_key), "%s", token);
    return KM_OK;
}

int rest_client_set_ca_file(struct rest_client *c, const char *path, struct km_error *err)
{
    if (path == NULL || path[0] == '\0') {
        free(c->ca_file);
        c->ca_file = NULL;
        return KM_OK;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return km_error_set(err, KM_ERR_IO, errno, "CA file %s cannot be read: %s", path,
                            strerror(errno));
    close(fd);
    free(c->ca_file);
    c->ca_file = xstrdup(path);
    return KM_OK;
}

void rest_response_clear(struct rest_response *r)
{
    json_decref(r->body);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

const char *rest_error_message(const struct rest_response *r)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));
    return m ? m : (r->text ? r->text : "");
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    return buf_put(b, p, n) == KM_OK ? n : 0; /* 0 aborts the transfer */
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct rest_response *r = ud;
    size_t n = size * nmemb;
    static const char name[] = "x-request-id:";
    if (n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        size_t vlen = n - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
            vlen--;
        snprintf(r->request_id, sizeof(r->request_id), "%.*s", (int)vlen, v);
    }
    return n;
}

/* Adds the three signature headers for (method, path, body). */
static int sign_headers(struct curl_slist **hdrs, const struct keypair *signer, const char *method,
                        const char *path, const char *body, size_t body_len, struct km_error *err)
{
    struct auth_request ar = {0};
    uint8_t sig[AUTH_SIG_LEN];
    char line[256], hex[2 * AUTH_SIG_LEN + 1];
    ar.method = method;
    ar.method_len = strlen(method);
    ar.path = path;
    ar.path_len = strlen(path);
    ar.timestamp = clock_wall_ms() / 1000u;
    if (secure_random(ar.nonce, sizeof(ar.nonce)) != KM_OK ||
        auth_body_hash(ar.body_hash, (const uint8_t *)body, body_len) != KM_OK ||
        auth_sign(sig, signer, &ar) != KM_OK)
        return km_error_set(err, KM_ERR_CRYPTO, 0, "cannot sign the request");
    snprintf(line, sizeof(line), "X-KeyMeld-Timestamp: %llu", (unsigned long long)ar.timestamp);
    *hdrs = curl_slist_append(*hdrs, line);
    hex_encode(hex, sizeof(hex), ar.nonce, sizeof(ar.nonce));
    snprintf(line, sizeof(line), "X-KeyMeld-Nonce: %s", hex);
    *hdrs = curl_slist_append(*hdrs, line);
    hex_encode(hex, sizeof(hex), sig, sizeof(sig));
    snprintf(line, sizeof(line), "X-KeyMeld-Signature: %s", hex);
    *hdrs = curl_slist_append(*hdrs, line);
    return KM_OK;
}

int rest_call(struct rest_client *c, struct rest_response *out, const char *method,
              const char *path, const json_t *body, const struct keypair *signer,
              struct km_error *err)
{
    memset(out, 0, sizeof(*out));
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    size_t text_len = text ? strlen(text) : 0;
    char *url = xmalloc(strlen(c->base) + strlen(path) + 1);
    memcpy(url, c->base, strlen(c->base));
    memcpy(url + strlen(c->base), path, strlen(path) + 1);

    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (text)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (c->api_key[0] != '\0') {
        char line[160];
        snprintf(line, sizeof(line), "Authorization: Bearer %s", c->api_key);
        hdrs = curl_slist_append(hdrs, line);
        secure_wipe(line, sizeof(line));
    }
    int r = signer ? sign_headers(&hdrs, signer, method, path, text, text_len, err) : KM_OK;

    struct buf resp;
    char curl_err[CURL_ERROR_SIZE] = "";
    buf_init(&resp, REST_MAX_RESPONSE);
    if (r == KM_OK) {
        CURL *h = c->curl;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        /* https:// only, never downgraded by a redirect (none are followed). */
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca_file != NULL)
            curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (text) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)text_len);
        }
        CURLcode cc = curl_easy_perform(h);
        if (cc == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
            const char *t = buf_cstr(&resp);
            out->text = xstrdup(t ? t : "");
            out->body = json_loads(out->text, 0, NULL);
        } else if (cc == CURLE_WRITE_ERROR) {
            r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "%s %s: response larger than %u bytes",
                             method, url, REST_MAX_RESPONSE);
        } else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) {
            r = km_error_set(err, KM_ERR_CRYPTO, 0,
                             "TLS verification of the gateway at %s failed: %s (trust its CA "
                             "with KEYMELD_CA_FILE=ca.pem, and use the host name or address "
                             "the certificate names)",
                             url, curl_err[0] ? curl_err : curl_easy_strerror(cc));
        } else if (cc == CURLE_SSL_CONNECT_ERROR && curl_err[0] != '\0') {
            r = km_error_set(err, KM_ERR_CONNECT, 0,
                             "cannot reach the gateway at %s: TLS handshake failed: %s (is it "
                             "serving HTTPS? use http:// for a plain HTTP gateway)",
                             url, curl_err);
        } else {
            r = km_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? KM_ERR_TIMEOUT : KM_ERR_CONNECT,
                             0, "cannot reach the gateway at %s: %s", url, curl_easy_strerror(cc));
        }
    }
    buf_release(&resp);
    curl_slist_free_all(hdrs);
    free(url);
    free(text);
    return r;
}
