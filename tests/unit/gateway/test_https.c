/*
 * test_https.c - the HTTP server (src/gateway/http.c) serving HTTPS, and
 * the REST client (src/client/rest.c) speaking it.
 *
 * A CA and a server certificate for IP 127.0.0.1 (EC P-256) are made at run
 * time with OpenSSL into a temporary directory (nothing is committed):
 *   - a client trusting the CA (rest_client_set_ca_file) gets 200;
 *   - a client on the system CA store, or naming the server by a name the
 *     certificate does not carry, fails with KM_ERR_CRYPTO;
 *   - plain HTTP to the TLS port never gets a 200;
 *   - a key that does not belong to the certificate, a lone certificate
 *     and text that is no PEM are refused when the server starts.
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/rest.h"
#include "gateway/http.h"
#include "common/banned.h"

static void h_ok(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    http_reply_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

static const struct http_route routes[] = {
    {"GET", "/ok", h_ok},
};

/* ---- A CA and a server certificate ------------------------------------ */

struct pki {
    char dir[64];
    char ca_file[96]; /* the CA certificate (PEM) */
    char *cert_pem;   /* server certificate, signed by the CA */
    char *key_pem;    /* its private key (PKCS#8) */
    char *other_key;  /* a key of no certificate */
};

static char *bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    CHECK(n > 0);
    char *s = malloc((size_t)n + 1);
    CHECK_NOT_NULL(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    CHECK_NOT_NULL(b);
    CHECK_EQ(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *s = bio_text(b);
    BIO_free(b);
    return s;
}

static char *cert_pem(X509 *c)
{
    BIO *b = BIO_new(BIO_s_mem());
    CHECK_NOT_NULL(b);
    CHECK_EQ(PEM_write_bio_X509(b, c), 1);
    char *s = bio_text(b);
    BIO_free(b);
    return s;
}

static void add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK_NOT_NULL(ext);
    CHECK_EQ(X509_add_ext(c, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *new_cert(EVP_PKEY *pub, const char *cn, long serial)
{
    X509 *c = X509_new();
    CHECK_NOT_NULL(c);
    CHECK_EQ(X509_set_version(c, 2), 1);
    CHECK_EQ(ASN1_INTEGER_set(X509_get_serialNumber(c), serial), 1);
    CHECK_EQ(X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0),
             1);
    CHECK_NOT_NULL(X509_gmtime_adj(X509_getm_notBefore(c), -3600));
    CHECK_NOT_NULL(X509_gmtime_adj(X509_getm_notAfter(c), 86400));
    CHECK_EQ(X509_set_pubkey(c, pub), 1);
    return c;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    CHECK_EQ(fputs(text, f) >= 0, 1);
    CHECK_EQ(fclose(f), 0);
}

static void pki_make(struct pki *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/km-https-XXXXXX");
    CHECK_NOT_NULL(mkdtemp(p->dir));
    snprintf(p->ca_file, sizeof(p->ca_file), "%s/ca.pem", p->dir);

    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(ca_key != NULL && srv_key != NULL && other != NULL);

    X509 *ca = new_cert(ca_key, "KeyMeld test CA", 1);
    CHECK_EQ(X509_set_issuer_name(ca, X509_get_subject_name(ca)), 1);
    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca, ca, NID_subject_key_identifier, "hash");
    CHECK(X509_sign(ca, ca_key, EVP_sha256()) > 0);

    X509 *srv = new_cert(srv_key, "127.0.0.1", 2);
    CHECK_EQ(X509_set_issuer_name(srv, X509_get_subject_name(ca)), 1);
    add_ext(srv, ca, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(srv, ca, NID_key_usage, "critical,digitalSignature");
    add_ext(srv, ca, NID_ext_key_usage, "serverAuth");
    add_ext(srv, ca, NID_subject_alt_name, "IP:127.0.0.1");
    add_ext(srv, ca, NID_authority_key_identifier, "keyid:always");
    CHECK(X509_sign(srv, ca_key, EVP_sha256()) > 0);

    char *ca_pem = cert_pem(ca);
    write_text(p->ca_file, ca_pem);
    free(ca_pem);
    p->cert_pem = cert_pem(srv);
    p->key_pem = key_pem(srv_key);
    p->other_key = key_pem(other);
    X509_free(srv);
    X509_free(ca);
    EVP_PKEY_free(other);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(ca_key);
}

static void pki_free(struct pki *p)
{
    unlink(p->ca_file);
    rmdir(p->dir);
    free(p->cert_pem);
    free(p->key_pem);
    free(p->other_key);
}

/* ---- Helpers ---------------------------------------------------------- */

static struct http_server *start_tls(const struct pki *p, uint16_t *port)
{
    struct http_server_config cfg = {.host = "127.0.0.1",
                                     .port = 0,
                                     .idle_timeout = 5,
                                     .tls_cert_pem = p->cert_pem,
                                     .tls_key_pem = p->key_pem};
    struct http_server *s = NULL;
    struct km_error err;
    if (http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err) != KM_OK)
        fail_msg("http_server_start: %s", err.msg);
    CHECK(http_server_tls(s));
    *port = http_server_port(s);
    CHECK_NE(*port, 0);
    return s;
}

static int get_ok(const char *base, const char *ca_file, struct rest_response *r,
                  struct km_error *err)
{
    struct rest_client *c = rest_client_new(base, 10000);
    if (ca_file != NULL)
        CHECK_OK(rest_client_set_ca_file(c, ca_file, NULL));
    int rc = rest_call(c, r, "GET", "/ok", NULL, NULL, err);
    rest_client_free(c);
    return rc;
}

/* ---- Tests ------------------------------------------------------------ */

static void test_https_with_trusted_ca(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p);
    uint16_t port;
    struct http_server *s = start_tls(&p, &port);
    char base[64];
    snprintf(base, sizeof(base), "https://127.0.0.1:%u", port);

    struct rest_response r;
    struct km_error err;
    if (get_ok(base, p.ca_file, &r, &err) != KM_OK)
        fail_msg("GET over HTTPS: %s", err.msg);
    CHECK_EQ(r.status, 200);
    CHECK(json_is_true(json_object_get(r.body, "ok")));
    CHECK(strlen(r.request_id) > 0);
    rest_response_clear(&r);

    /* The same client keeps its CA across requests (curl_easy_reset). */
    struct rest_client *c = rest_client_new(base, 10000);
    CHECK_OK(rest_client_set_ca_file(c, p.ca_file, NULL));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(rest_call(c, &r, "GET", "/ok", NULL, NULL, &err));
        CHECK_EQ(r.status, 200);
        rest_response_clear(&r);
    }
    /* Back to the system store: the test CA is no longer trusted. */
    CHECK_OK(rest_client_set_ca_file(c, NULL, NULL));
    CHECK_ERR(rest_call(c, &r, "GET", "/ok", NULL, NULL, &err), KM_ERR_CRYPTO);
    rest_client_free(c);

    http_server_stop(s);
    pki_free(&p);
}

static void test_https_untrusted_fails(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p);
    uint16_t port;
    struct http_server *s = start_tls(&p, &port);
    char base[64];
    struct rest_response r;
    struct km_error err;

    /* No CA given: the system store does not know the test CA. */
    snprintf(base, sizeof(base), "https://127.0.0.1:%u", port);
    CHECK_ERR(get_ok(base, NULL, &r, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "TLS verification of the gateway at https://127.0.0.1:");
    CHECK_CONTAINS(err.msg, "KEYMELD_CA_FILE");

    /* The CA is trusted but the certificate names 127.0.0.1 only. */
    snprintf(base, sizeof(base), "https://localhost:%u", port);
    int rc = get_ok(base, p.ca_file, &r, &err);
    if (rc == KM_ERR_CONNECT && strstr(err.msg, "resolve") != NULL) {
        /* No "localhost" in this machine's resolver: nothing to check. */
    } else {
        CHECK_ERR(rc, KM_ERR_CRYPTO);
        CHECK_CONTAINS(err.msg, "TLS verification");
    }

    /* A CA file that does not exist is refused when it is set. */
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope.pem", p.dir);
    struct rest_client *c = rest_client_new(base, 1000);
    CHECK_ERR(rest_client_set_ca_file(c, missing, &err), KM_ERR_IO);
    CHECK_CONTAINS(err.msg, "CA file ");
    CHECK_CONTAINS(err.msg, "nope.pem cannot be read: No such file or directory");
    rest_client_free(c);

    http_server_stop(s);
    pki_free(&p);
}

/* Reads what the server sends within 3 s (until it closes or buf is
 * full); returns the byte count. */
static size_t read_reply(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 3000) <= 0)
            break;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    return n;
}

static void test_plain_http_to_tls_port(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p);
    uint16_t port;
    struct http_server *s = start_tls(&p, &port);

    /* A raw plain-HTTP request: whatever comes back, it is no 200. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    static const char req[] = "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    CHECK_EQ(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    char buf[4096];
    read_reply(fd, buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) != 0);
    CHECK(strstr(buf, "\"ok\"") == NULL);
    close(fd);

    /* The REST client with http://: an error or a status that is not 200. */
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
    struct rest_response r;
    struct km_error err;
    if (get_ok(base, NULL, &r, &err) == KM_OK) {
        CHECK_NE(r.status, 200);
        rest_response_clear(&r);
    }

    /* The server still serves HTTPS afterwards. */
    snprintf(base, sizeof(base), "https://127.0.0.1:%u", port);
    CHECK_OK(get_ok(base, p.ca_file, &r, &err));
    CHECK_EQ(r.status, 200);
    rest_response_clear(&r);

    http_server_stop(s);
    pki_free(&p);
}

static void test_tls_refused_at_start(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p);
    struct http_server *s = NULL;
    struct km_error err;
    struct http_server_config cfg = {.host = "127.0.0.1", .port = 0};

    /* The key of another certificate. */
    cfg.tls_cert_pem = p.cert_pem;
    cfg.tls_key_pem = p.other_key;
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err), KM_ERR_CRYPTO);
    CHECK_NULL(s);
    CHECK_CONTAINS(err.msg, "cannot serve HTTPS on 127.0.0.1:0: the TLS library refused the "
                            "certificate or key");
    CHECK_CONTAINS(err.msg, "server.tls_key_file its own private key");

    /* One without the other. */
    cfg.tls_key_pem = NULL;
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "a TLS certificate was given without its private key");
    cfg.tls_cert_pem = NULL;
    cfg.tls_key_pem = p.key_pem;
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "a TLS key was given without its certificate");

    /* Not PEM: the key where the certificate goes, and the other way. */
    cfg.tls_cert_pem = p.key_pem;
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "the TLS certificate is not PEM");
    cfg.tls_cert_pem = p.cert_pem;
    cfg.tls_key_pem = p.cert_pem;
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "the TLS private key is not PEM");
    cfg.tls_key_pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                      "-----END ENCRYPTED PRIVATE KEY-----\n";
    CHECK_ERR(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "the TLS private key is encrypted");

    /* The caller's buffers may go once the server started: it keeps its
     * own copies. */
    char *cert = strdup(p.cert_pem), *key = strdup(p.key_pem);
    CHECK(cert != NULL && key != NULL);
    cfg.tls_cert_pem = cert;
    cfg.tls_key_pem = key;
    CHECK_OK(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err));
    memset(key, 0, strlen(key));
    memset(cert, 0, strlen(cert));
    free(key);
    free(cert);
    char base[64];
    snprintf(base, sizeof(base), "https://127.0.0.1:%u", http_server_port(s));
    struct rest_response r;
    CHECK_OK(get_ok(base, p.ca_file, &r, &err));
    CHECK_EQ(r.status, 200);
    rest_response_clear(&r);
    http_server_stop(s);

    /* Plain HTTP still works and says so. */
    cfg.tls_cert_pem = NULL;
    cfg.tls_key_pem = NULL;
    CHECK_OK(http_server_start(&s, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err));
    CHECK(!http_server_tls(s));
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", http_server_port(s));
    CHECK_OK(get_ok(base, NULL, &r, &err));
    CHECK_EQ(r.status, 200);
    rest_response_clear(&r);
    http_server_stop(s);
    pki_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_https_with_trusted_ca),
        TEST(test_https_untrusted_fails),
        TEST(test_plain_http_to_tls_port),
        TEST(test_tls_refused_at_start),
    };
    return RUN_TESTS("unit.gateway.https", tests);
}
