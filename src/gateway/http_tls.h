/*
 * http_tls.h - the HTTPS server's certificate chain and private key
 * (http.c), replaceable while the server runs (SIGHUP: gateway.h).
 *
 * The pair is parsed once into GnuTLS objects and handed to libmicrohttpd
 * through MHD_OPTION_HTTPS_CERT_CALLBACK instead of MHD's fixed
 * MHD_OPTION_HTTPS_MEM_CERT/KEY. Each connection holds a reference on the
 * pair that is current when it is accepted (MHD_OPTION_NOTIFY_CONNECTION)
 * and its handshake uses that pair; http_tls_replace swaps the current
 * pair, so new connections get the new one while open ones keep theirs.
 * A pair is freed (GnuTLS wipes its key) when the last connection holding
 * it closes, or at http_tls_free. No PEM text is kept.
 *
 * Thread-safe: the current pair is swapped under a mutex.
 */
#ifndef KM_GATEWAY_HTTP_TLS_H
#define KM_GATEWAY_HTTP_TLS_H

#include <stddef.h>

#include <microhttpd.h>

#include "common/err.h"

/* Certificates of one chain at most (the server's, then intermediates). */
#define HTTP_TLS_MAX_CHAIN 16

/* Options the daemon needs (http_tls_mhd_options), MHD_OPTION_END not
 * included. */
#define HTTP_TLS_MHD_OPTIONS 3

struct http_tls;

/*
 * Parses and checks a pair: cert_pem the chain (PEM, leaf first), key_pem
 * its private key (PEM, unencrypted), both NUL-terminated contents. what
 * starts every error message ("cannot serve HTTPS on H:P"). Errors:
 * KM_ERR_INVALID (no PEM certificate / private key, an encrypted key, a
 * chain longer than HTTP_TLS_MAX_CHAIN), KM_ERR_CRYPTO (GnuTLS refused the
 * text, or the key is not the certificate's), KM_ERR_UNSUPPORTED (this
 * libmicrohttpd has no TLS or no certificate callback). The caller may wipe
 * and free both texts afterwards.
 */
int http_tls_new(struct http_tls **out, const char *cert_pem, const char *key_pem, const char *what,
                 struct km_error *err) KM_WUR;

/*
 * Checks a new pair as http_tls_new does and makes it the one new
 * connections get; connections already accepted keep theirs. On error
 * nothing changes: the current pair stays in use.
 */
int http_tls_replace(struct http_tls *t, const char *cert_pem, const char *key_pem,
                     const char *what, struct km_error *err) KM_WUR;

/* The current certificate: "subject CN=..., serial 0a1b..., expires
 * 2027-03-01T12:00:00Z" (EXPIRED appended when it is past that time). */
void http_tls_describe(struct http_tls *t, char *out, size_t cap);

/*
 * Fills opts[0..HTTP_TLS_MHD_OPTIONS) with the options that make a
 * libmicrohttpd daemon (started with MHD_USE_TLS) serve t: the certificate
 * callback, the GnuTLS priorities and an MHD_OPTION_NOTIFY_CONNECTION
 * notifier that holds the current pair for each accepted connection in
 * the connection's socket context (the certificate callback, to which
 * libmicrohttpd passes no closure, finds it there through the session).
 * The socket context is therefore this module's, and a daemon with a
 * notifier of its own must pass every notification on to this one (http.c
 * does). t must outlive the daemon (free it after MHD_stop_daemon).
 */
void http_tls_mhd_options(struct http_tls *t, struct MHD_OptionItem *opts);

/* Frees t and its current pair. Only after the daemon stopped (every
 * connection's reference is then released). NULL is a no-op. */
void http_tls_free(struct http_tls *t);

#endif /* KM_GATEWAY_HTTP_TLS_H */
