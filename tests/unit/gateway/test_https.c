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
 *     and text that is no PEM are refused when the server starts;
 *   - certificate reload (gateway_reload_tls, what SIGHUP does): after the
 *     files are replaced with a second certificate (another subject and
 *     serial, same CA) new connections get it while an open connection
 *     keeps the first; a pair that cannot be read, is not PEM, has an
 *     encrypted key or a key of another certificate is refused with an
 *     ERROR and the current certificate stays; a real SIGHUP to the
 *     process, received by gateway_wait, does the same reload.
 * Which certificate a connection got is read with a GnuTLS client.
 */
#include "test.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "client/rest.h"
#include "common/log.h"
#include "gateway/gateway.h"
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
    char *cert_b_pem; /* the renewed certificate: CN keymeld-test-b, serial 3 */
    char *key_b_pem;  /* its (new) private key */
};

#define SERIAL_A 2
#define SERIAL_B 3

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

/* A server certificate for IP 127.0.0.1, signed by the CA. */
static X509 *server_cert(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *cn, long serial)
{
    X509 *srv = new_cert(key, cn, serial);
    CHECK_EQ(X509_set_issuer_name(srv, X509_get_subject_name(ca)), 1);
    add_ext(srv, ca, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(srv, ca, NID_key_usage, "critical,digitalSignature");
    add_ext(srv, ca, NID_ext_key_usage, "serverAuth");
    add_ext(srv, ca, NID_subject_alt_name, "IP:127.0.0.1");
    add_ext(srv, ca, NID_authority_key_identifier, "keyid:always");
    CHECK(X509_sign(srv, ca_key, EVP_sha256()) > 0);
    return srv;
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
    EVP_PKEY *b_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(ca_key != NULL && srv_key != NULL && other != NULL && b_key != NULL);

    X509 *ca = new_cert(ca_key, "KeyMeld test CA", 1);
    CHECK_EQ(X509_set_issuer_name(ca, X509_get_subject_name(ca)), 1);
    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca, ca, NID_subject_key_identifier, "hash");
    CHECK(X509_sign(ca, ca_key, EVP_sha256()) > 0);

    X509 *srv = server_cert(ca, ca_key, srv_key, "127.0.0.1", SERIAL_A);
    X509 *srv_b = server_cert(ca, ca_key, b_key, "keymeld-test-b", SERIAL_B);

    char *ca_pem = cert_pem(ca);
    write_text(p->ca_file, ca_pem);
    free(ca_pem);
    p->cert_pem = cert_pem(srv);
    p->key_pem = key_pem(srv_key);
    p->other_key = key_pem(other);
    p->cert_b_pem = cert_pem(srv_b);
    p->key_b_pem = key_pem(b_key);
    X509_free(srv_b);
    EVP_PKEY_free(b_key);
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
    free(p->cert_b_pem);
    free(p->key_b_pem);
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

/* ---- Certificate reload ----------------------------------------------- */

/* A TLS connection of the test's own: GnuTLS without verification, since
 * what matters is which certificate the server presents. */
struct tls_conn {
    int fd;
    gnutls_session_t session;
    gnutls_certificate_credentials_t cred;
};

/* Connects and handshakes; returns the serial number of the certificate
 * the server presented. */
static long tls_open(struct tls_conn *c, uint16_t port)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    CHECK_EQ(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(gnutls_certificate_allocate_credentials(&c->cred), 0);
    CHECK_EQ(gnutls_init(&c->session, GNUTLS_CLIENT), 0);
    CHECK_EQ(gnutls_set_default_priority(c->session), 0);
    CHECK_EQ(gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, c->cred), 0);
    gnutls_transport_set_int(c->session, c->fd);
    int r;
    do
        r = gnutls_handshake(c->session);
    while (r < 0 && gnutls_error_is_fatal(r) == 0);
    if (r < 0)
        fail_msg("TLS handshake with 127.0.0.1:%u: %s", port, gnutls_strerror(r));
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->session, &n);
    CHECK(peers != NULL && n >= 1);
    const unsigned char *der = peers[0].data;
    X509 *x = d2i_X509(NULL, &der, (long)peers[0].size);
    CHECK_NOT_NULL(x);
    long serial = ASN1_INTEGER_get(X509_get0_serialNumber(x));
    X509_free(x);
    return serial;
}

/* GET /ok on the open connection (keep-alive); true for a 200. */
static bool tls_get_ok(struct tls_conn *c)
{
    static const char req[] = "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (gnutls_record_send(c->session, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        return false;
    char buf[4096] = "";
    size_t n = 0;
    while (n + 1 < sizeof(buf) && strstr(buf, "{\"ok\":true}") == NULL) {
        ssize_t got = gnutls_record_recv(c->session, buf + n, sizeof(buf) - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        buf[n] = '\0';
    }
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "{\"ok\":true}") != NULL;
}

static void tls_close(struct tls_conn *c)
{
    (void)gnutls_bye(c->session, GNUTLS_SHUT_WR);
    gnutls_deinit(c->session);
    gnutls_certificate_free_credentials(c->cred);
    close(c->fd);
}

/* The serial of the certificate a new connection is given (and served /ok). */
static long new_connection_serial(uint16_t port)
{
    struct tls_conn c;
    long serial = tls_open(&c, port);
    CHECK(tls_get_ok(&c));
    tls_close(&c);
    return serial;
}

/* A gateway reduced to what gateway_reload_tls and gateway_wait use: the
 * configuration's two file names and the HTTP server, here serving
 * certificate A from those files. */
struct reload_fixture {
    struct pki p;
    struct cfg *cfg;
    struct gateway gw;
    uint16_t port;
    char log_path[96];
};

static void fixture_start(struct reload_fixture *f)
{
    pki_make(&f->p);
    f->cfg = calloc(1, sizeof(*f->cfg));
    CHECK_NOT_NULL(f->cfg);
    snprintf(f->cfg->server.tls_cert_file, sizeof(f->cfg->server.tls_cert_file), "%s/tls.crt",
             f->p.dir);
    snprintf(f->cfg->server.tls_key_file, sizeof(f->cfg->server.tls_key_file), "%s/tls.key",
             f->p.dir);
    write_text(f->cfg->server.tls_cert_file, f->p.cert_pem);
    write_text(f->cfg->server.tls_key_file, f->p.key_pem);
    snprintf(f->log_path, sizeof(f->log_path), "%s/gateway.log", f->p.dir);
    struct km_error err;
    CHECK_OK(log_configure(LOG_LEVEL_INFO, LOG_FORMAT_PRETTY, f->log_path, &err));
    memset(&f->gw, 0, sizeof(f->gw));
    f->gw.cfg = f->cfg;
    f->gw.http = start_tls(&f->p, &f->port);
}

/* Stops the server and returns the log it wrote (malloc'ed). */
static char *fixture_stop(struct reload_fixture *f)
{
    http_server_stop(f->gw.http);
    log_shutdown();
    char *log = test_read_file(f->log_path, NULL);
    CHECK_NOT_NULL(log);
    unlink(f->log_path);
    unlink(f->cfg->server.tls_cert_file);
    unlink(f->cfg->server.tls_key_file);
    free(f->cfg);
    pki_free(&f->p);
    return log;
}

static void test_reload_tls_certificate(void **state)
{
    (void)state;
    struct reload_fixture f;
    fixture_start(&f);
    const char *cert = f.cfg->server.tls_cert_file, *key = f.cfg->server.tls_key_file;
    struct km_error err;

    /* Open before the reload: it keeps certificate A. */
    struct tls_conn old;
    CHECK_EQ(tls_open(&old, f.port), SERIAL_A);

    /* Refused pairs: an error each, and A is still what new connections get. */
    write_text(key, f.p.other_key);
    CHECK_ERR(gateway_reload_tls(&f.gw, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "TLS certificate not reloaded: the TLS library refused the "
                            "certificate or key (");
    CHECK_CONTAINS(err.msg, "server.tls_key_file its own private key");
    write_text(cert, f.p.key_pem);
    write_text(key, f.p.key_pem);
    CHECK_ERR(gateway_reload_tls(&f.gw, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "TLS certificate not reloaded: the TLS certificate is not PEM");
    write_text(cert, f.p.cert_b_pem);
    write_text(key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                    "-----END ENCRYPTED PRIVATE KEY-----\n");
    CHECK_ERR(gateway_reload_tls(&f.gw, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "TLS certificate not reloaded: the TLS private key is encrypted");
    CHECK_EQ(unlink(key), 0);
    CHECK_ERR(gateway_reload_tls(&f.gw, &err), KM_ERR_IO);
    CHECK_CONTAINS(err.msg, "TLS certificate not reloaded: server.tls_key_file '");
    CHECK_CONTAINS(err.msg, "tls.key' cannot be read: No such file or directory");
    CHECK_EQ(new_connection_serial(f.port), SERIAL_A);

    /* Certificate B in the files: new connections get it. */
    write_text(key, f.p.key_b_pem);
    CHECK_OK(gateway_reload_tls(&f.gw, &err));
    CHECK_EQ(new_connection_serial(f.port), SERIAL_B);
    char desc[400];
    http_server_tls_describe(f.gw.http, desc, sizeof(desc));
    CHECK_CONTAINS(desc, "subject CN=keymeld-test-b, serial 03, expires ");
    /* A client verifying against the CA accepts it (same CA and address). */
    char base[64];
    snprintf(base, sizeof(base), "https://127.0.0.1:%u", f.port);
    struct rest_response r;
    CHECK_OK(get_ok(base, f.p.ca_file, &r, &err));
    CHECK_EQ(r.status, 200);
    rest_response_clear(&r);
    /* The connection opened before goes on, with A (released when it
     * closes: ASan would see a use after free or a leak). */
    CHECK(tls_get_ok(&old));
    tls_close(&old);
    CHECK_EQ(new_connection_serial(f.port), SERIAL_B);

    char *log = fixture_stop(&f);
    CHECK_CONTAINS(log, " ERROR gateway: TLS certificate not reloaded: the TLS library refused "
                        "the certificate or key");
    CHECK_CONTAINS(log, "; still serving the previous certificate (subject CN=127.0.0.1, serial "
                        "02, expires ");
    CHECK_CONTAINS(log, " INFO gateway: TLS certificate reloaded from /tmp/km-https-");
    CHECK_CONTAINS(log, "/tls.crt: subject CN=keymeld-test-b, serial 03, expires ");
    CHECK_CONTAINS(log, "; new connections get it, open ones keep the previous one\n");
    CHECK(strstr(log, "PRIVATE KEY") == NULL);
    free(log);

    /* A plain HTTP server has nothing to reload. */
    struct http_server_config cfg = {.host = "127.0.0.1", .port = 0};
    struct gateway plain = {0};
    CHECK_OK(http_server_start(&plain.http, &cfg, routes, KM_ARRAY_LEN(routes), NULL, &err));
    CHECK_ERR(gateway_reload_tls(&plain, &err), KM_ERR_STATE);
    CHECK_ERR(http_server_tls_reload(plain.http, "x", "y", &err), KM_ERR_STATE);
    http_server_tls_describe(plain.http, desc, sizeof(desc));
    CHECK_EQ(desc[0], '\0');
    http_server_stop(plain.http);
}

struct waiter {
    struct gateway *gw;
    int sig;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->sig = gateway_wait(w->gw);
    return NULL;
}

/* kill -HUP to the process, as an operator does: gateway_wait (what
 * keymeld-gateway's main runs) receives it and reloads. */
static void test_sighup_reloads(void **state)
{
    (void)state;
    /* Blocked before any thread starts, as keymeld-gateway does, so only
     * gateway_wait receives them. */
    sigset_t sigs, old_mask;
    gateway_signals(&sigs);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &sigs, &old_mask), 0);
    struct reload_fixture f;
    fixture_start(&f);
    struct waiter w = {.gw = &f.gw, .sig = 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, waiter_main, &w), 0);
    CHECK_EQ(new_connection_serial(f.port), SERIAL_A);

    write_text(f.cfg->server.tls_cert_file, f.p.cert_b_pem);
    write_text(f.cfg->server.tls_key_file, f.p.key_b_pem);
    CHECK_EQ(kill(getpid(), SIGHUP), 0);
    long serial = SERIAL_A;
    for (int i = 0; i < 500 && serial != SERIAL_B; i++) {
        serial = new_connection_serial(f.port);
        if (serial != SERIAL_B)
            usleep(10000);
    }
    CHECK_EQ(serial, SERIAL_B);

    /* SIGTERM ends the wait (to the waiting thread only: no other thread
     * of the test process can take it). */
    CHECK_EQ(pthread_kill(th, SIGTERM), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(w.sig, SIGTERM);
    char *log = fixture_stop(&f);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old_mask, NULL), 0);
    CHECK_CONTAINS(log, " INFO gateway: received SIGHUP: reloading the TLS certificate\n");
    CHECK_CONTAINS(log, "/tls.crt: subject CN=keymeld-test-b, serial 03, expires ");
    free(log);
}

int main(void)
{
    /* The SIGHUP test first: no thread of an earlier test (one with the
     * signals unblocked) can be left to take the process's SIGHUP. */
    const struct CMUnitTest tests[] = {
        TEST(test_sighup_reloads),        TEST(test_https_with_trusted_ca),
        TEST(test_https_untrusted_fails), TEST(test_plain_http_to_tls_port),
        TEST(test_tls_refused_at_start),  TEST(test_reload_tls_certificate),
    };
    return RUN_TESTS("unit.gateway.https", tests);
}
