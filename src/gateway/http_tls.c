/*
 * http_tls.c - the HTTPS server's certificate and key, replaceable while
 * the server runs (http_tls.h).
 */
#include "gateway/http_tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hex.h"
#include "common/xmalloc.h"
#include "common/banned.h"

/* GnuTLS priorities of the HTTPS server: its defaults without TLS 1.0/1.1
 * and DTLS. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* One certificate chain and its key, shared by the connections accepted
 * while it was current. */
struct http_tls_pair {
    gnutls_pcert_st certs[HTTP_TLS_MAX_CHAIN];
    unsigned ncerts;
    gnutls_privkey_t key; /* GnuTLS wipes it at gnutls_privkey_deinit */
    unsigned refs;        /* under http_tls.lock: being current + each connection */
    time_t not_after;
    char desc[320]; /* "subject ..., serial ..., expires ..." */
};

struct http_tls {
    pthread_mutex_t lock;
    struct http_tls_pair *current; /* never NULL */
};

static void pair_free(struct http_tls_pair *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->ncerts; i++)
        gnutls_pcert_deinit(&p->certs[i]);
    if (p->key != NULL)
        gnutls_privkey_deinit(p->key);
    free(p);
}

/* Drops one reference; the last one frees the pair (outside the lock). */
static void pair_release(struct http_tls *t, struct http_tls_pair *p)
{
    pthread_mutex_lock(&t->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (last)
        pair_free(p);
}

/* Text checks first: they name the mistake better than GnuTLS does. */
static int check_pem_text(const char *cert_pem, const char *key_pem, const char *what,
                          struct km_error *err)
{
    if (strstr(cert_pem, "-----BEGIN CERTIFICATE-----") == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "%s: the TLS certificate is not PEM (no -----BEGIN CERTIFICATE----- "
                            "line)",
                            what);
    if (strstr(key_pem, "-----BEGIN ") == NULL || strstr(key_pem, "PRIVATE KEY-----") == NULL)
        return km_error_set(
            err, KM_ERR_INVALID, 0,
            "%s: the TLS private key is not PEM (no -----BEGIN ... PRIVATE KEY----- "
            "line)",
            what);
    if (strstr(key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
        strstr(key_pem, "Proc-Type: 4,ENCRYPTED") != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "%s: the TLS private key is encrypted: give the key without a "
                            "passphrase (readable only by the gateway's user)",
                            what);
    if (strlen(cert_pem) >= UINT_MAX || strlen(key_pem) >= UINT_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "%s: the TLS certificate or key is too large",
                            what);
    return KM_OK;
}

static int refused(const char *what, int gnutls_err, struct km_error *err)
{
    return km_error_set(err, KM_ERR_CRYPTO, 0,
                        "%s: the TLS library refused the certificate or key (%s): check that "
                        "server.tls_cert_file holds the certificate (PEM, leaf first) and "
                        "server.tls_key_file its own private key",
                        what, gnutls_strerror(gnutls_err));
}

/* The key belongs to the certificate: checked by loading the pair into
 * throw-away credentials, GnuTLS's own test (a signature made with the key
 * verifies with the certificate's public key), as MHD_OPTION_HTTPS_MEM_KEY
 * did. */
static int check_pair(const gnutls_datum_t *cert, const gnutls_datum_t *key, const char *what,
                      struct km_error *err)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return km_error_set(err, KM_ERR_NOMEM, 0, "%s: out of memory", what);
    int g = gnutls_certificate_set_x509_key_mem2(cred, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    return g < 0 ? refused(what, g, err) : KM_OK;
}

/* Copies s into out, any byte outside printable ASCII as '?' (a log line
 * cannot be split by a certificate's subject). */
static void printable(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

/* Fills p->desc and p->not_after from the leaf certificate. */
static void pair_describe(struct http_tls_pair *p)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};
    uint8_t serial[32];
    size_t slen = sizeof(serial);
    char subject[160] = "?", serial_hex[2 * sizeof(serial) + 1] = "?", expires[32] = "?";
    p->not_after = 0;
    if (gnutls_x509_crt_init(&crt) >= 0 &&
        gnutls_x509_crt_import(crt, &p->certs[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
        if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0 && dn.data != NULL)
            printable(subject, sizeof(subject), (const char *)dn.data);
        if (gnutls_x509_crt_get_serial(crt, serial, &slen) >= 0)
            hex_encode(serial_hex, sizeof(serial_hex), serial, slen);
        p->not_after = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        if (p->not_after != (time_t)-1 && gmtime_r(&p->not_after, &tm) != NULL)
            strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
    snprintf(p->desc, sizeof(p->desc), "subject %s, serial %s, expires %s", subject, serial_hex,
             expires);
}

/* Parses and checks a pair into a new http_tls_pair with one reference. */
static int pair_load(struct http_tls_pair **out, const char *cert_pem, const char *key_pem,
                     const char *what, struct km_error *err)
{
    *out = NULL;
    int r = check_pem_text(cert_pem, key_pem, what, err);
    if (r != KM_OK)
        return r;
    gnutls_datum_t cd = {(unsigned char *)(uintptr_t)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)(uintptr_t)key_pem, (unsigned)strlen(key_pem)};
    r = check_pair(&cd, &kd, what, err);
    if (r != KM_OK)
        return r;
    struct http_tls_pair *p = xcalloc(1, sizeof(*p));
    p->ncerts = HTTP_TLS_MAX_CHAIN;
    int g = gnutls_pcert_list_import_x509_raw(p->certs, &p->ncerts, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0) {
        p->ncerts = 0; /* GnuTLS released what it had imported */
        pair_free(p);
        if (g == GNUTLS_E_SHORT_MEMORY_BUFFER)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "%s: the TLS certificate chain holds more than %d certificates",
                                what, HTTP_TLS_MAX_CHAIN);
        return refused(what, g, err);
    }
    g = gnutls_privkey_init(&p->key);
    if (g >= 0)
        g = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0) {
        pair_free(p);
        return refused(what, g, err);
    }
    pair_describe(p);
    p->refs = 1;
    *out = p;
    return KM_OK;
}

int http_tls_new(struct http_tls **out, const char *cert_pem, const char *key_pem, const char *what,
                 struct km_error *err)
{
    *out = NULL;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "%s: this libmicrohttpd was built without TLS support (install one "
                            "built with GnuTLS, or terminate TLS in a proxy and set "
                            "server.allow_plain_http)",
                            what);
    if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0,
                            "%s: this libmicrohttpd cannot take a certificate callback (built "
                            "with GnuTLS before 3.0)",
                            what);
    struct http_tls_pair *p = NULL;
    int r = pair_load(&p, cert_pem, key_pem, what, err);
    if (r != KM_OK)
        return r;
    struct http_tls *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->current = p;
    *out = t;
    return KM_OK;
}

int http_tls_replace(struct http_tls *t, const char *cert_pem, const char *key_pem,
                     const char *what, struct km_error *err)
{
    struct http_tls_pair *p = NULL;
    int r = pair_load(&p, cert_pem, key_pem, what, err);
    if (r != KM_OK)
        return r;
    pthread_mutex_lock(&t->lock);
    struct http_tls_pair *old = t->current;
    t->current = p;
    pthread_mutex_unlock(&t->lock);
    pair_release(t, old);
    return KM_OK;
}

void http_tls_describe(struct http_tls *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->lock);
    const struct http_tls_pair *p = t->current;
    bool expired = p->not_after > 0 && p->not_after < time(NULL);
    snprintf(out, cap, "%s%s", p->desc, expired ? " (EXPIRED)" : "");
    pthread_mutex_unlock(&t->lock);
}

/* MHD_OPTION_NOTIFY_CONNECTION: a connection holds the pair current when it
 * was accepted (before its handshake, which runs in the connection's own
 * thread) until it is closed (libmicrohttpd announces that after the
 * gnutls_deinit of its session). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    struct http_tls *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&t->lock);
        struct http_tls_pair *p = t->current;
        p->refs++;
        pthread_mutex_unlock(&t->lock);
        *socket_context = p;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        pair_release(t, *socket_context);
        *socket_context = NULL;
    }
}

/*
 * MHD_OPTION_HTTPS_CERT_CALLBACK: GnuTLS asks for the server's chain during
 * a handshake. libmicrohttpd sets each session's pointer to its connection
 * (gnutls_session_set_ptr; its own PSK callback reads it back the same
 * way), whose socket context is the pair on_connection holds for it. The
 * pair stays valid for the whole session: GnuTLS does not free what this
 * callback returns. No pair: the handshake fails rather than guess.
 */
static gnutls_certificate_retrieve_function2 retrieve_cert;
static int retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *privkey)
{
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct MHD_Connection *conn = gnutls_session_get_ptr(session);
    const union MHD_ConnectionInfo *ci =
        conn != NULL ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    struct http_tls_pair *p = ci != NULL ? ci->socket_context : NULL;
    if (p == NULL)
        return -1;
    *pcert = p->certs;
    *pcert_length = p->ncerts;
    *privkey = p->key;
    return 0;
}

void http_tls_mhd_options(struct http_tls *t, struct MHD_OptionItem *opts)
{
    /* Function pointers travel through intptr_t: MHD reads them back with
     * va_arg as the callback types. */
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                      (void *)(uintptr_t)retrieve_cert};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, t};
    opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                      (void *)(uintptr_t)HTTP_TLS_PRIORITIES};
}

void http_tls_free(struct http_tls *t)
{
    if (t == NULL)
        return;
    pair_release(t, t->current);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
