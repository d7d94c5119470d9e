/*
 * relay.h - private to src/kms: hands libcurl a socket the caller already
 * connected when libcurl cannot take it directly.
 *
 * libcurl 7.88.0 and 7.88.1 (Debian 12's) call connect() even on a socket
 * that CURLOPT_SOCKOPTFUNCTION reports as CURL_SOCKOPT_ALREADY_CONNECTED
 * (curl issue #10626, fixed in 8.0.0), which fails with EISCONN. There the
 * client points libcurl at a one-shot abstract Unix socket instead
 * (CURLOPT_ABSTRACT_UNIX_SOCKET) and this relay copies bytes between the
 * one connection it accepts (checked to come from this process) and the
 * connected socket. TLS stays end to end: libcurl still speaks it to the
 * endpoint's host name; the relay only sees ciphertext.
 */
#ifndef KM_KMS_RELAY_H
#define KM_KMS_RELAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define KMS_RELAY_NAME_MAX 48

struct kms_relay {
    char name[KMS_RELAY_NAME_MAX]; /* the abstract name, without its leading NUL */
    int listen_fd;
    int peer_fd; /* the caller's connected socket (owned) */
    int stop[2]; /* a pipe: writing to stop[1] ends the relay */
    uint32_t timeout_ms;
    pthread_t thread;
    bool running;
};

/* Whether this libcurl honours CURL_SOCKOPT_ALREADY_CONNECTED. */
bool kms_relay_needed(void);

/*
 * Takes ownership of the connected socket peer_fd (closed by
 * kms_relay_stop, or here on failure), listens on a fresh random abstract
 * name (r->name) and relays its first connection for at most timeout_ms.
 * KM_OK, or KM_ERR_IO with a message.
 */
int kms_relay_start(struct kms_relay *r, int peer_fd, uint32_t timeout_ms,
                    struct km_error *err) KM_WUR;

/* Ends the relay (whatever state it is in), joins it, closes every fd. */
void kms_relay_stop(struct kms_relay *r);

#endif /* KM_KMS_RELAY_H */
